//! Item-item collaborative filtering: for every item, its top-k neighbours by co-occurrence
//! over users ("customers who bought this also bought...").
//!
//! Training walks the items in blocks on all cores. For item `i` it visits each user `u` of
//! `i` and each other item `j` of `u`, adding into dense per-thread arrays indexed by `j` (a
//! sparse accumulator: a touched list resets only what was written), so the pass costs
//! Σ_u |items(u)|² additions and no hashing. Similarities below the minimum support (users who
//! share both items) are dropped, so one shared buyer never makes a pattern; the top k by
//! score are kept, which bounds memory at `k × items` neighbours of 12 bytes each.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::interactions::{ItemIdx, KindWeights};
use crate::matrix::{Entry, SparseRows};
use crate::parallel;
use crate::RecsError;

/// How two items' co-occurrence is normalised into a similarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    /// Σ r_ui·r_uj / (‖r_i‖·‖r_j‖): favours items with a similar audience, whatever their size.
    #[default]
    Cosine,
    /// Weighted Jaccard (Ružička): Σ min(r_ui, r_uj) / Σ max(r_ui, r_uj).
    Jaccard,
    /// Σ min(r_ui, r_uj) · users / (Σ r_ui · Σ r_uj): how much more often than chance two items
    /// meet; with unit weights exactly the association-rule lift. Favours niche pairs.
    Lift,
}

impl Similarity {
    /// The measure's name as configurations and reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Similarity::Cosine => "cosine",
            Similarity::Jaccard => "jaccard",
            Similarity::Lift => "lift",
        }
    }
}

impl std::str::FromStr for Similarity {
    type Err = RecsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "cosine" => Ok(Similarity::Cosine),
            "jaccard" => Ok(Similarity::Jaccard),
            "lift" => Ok(Similarity::Lift),
            other => Err(RecsError::config("similarity", format!("`{other}` is not one of cosine, jaccard, lift"))),
        }
    }
}

/// Settings of item-item training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemItemConfig {
    /// The similarity measure.
    pub similarity: Similarity,
    /// Half-life of an interaction's weight, in days; `None` for no decay.
    pub half_life_days: Option<f64>,
    /// Fewest users who must share two items for them to be neighbours (≥ 1; 2 by default, so
    /// one shared buyer is not a pattern).
    pub min_support: u32,
    /// Neighbours kept per item.
    pub top_k: usize,
    /// Weight of views, carts and purchases in a user's strength for an item.
    pub kind_weights: KindWeights,
    /// Only each user's most recent this-many distinct items are used.
    pub max_items_per_user: usize,
}

impl Default for ItemItemConfig {
    fn default() -> Self {
        ItemItemConfig {
            similarity: Similarity::Cosine,
            half_life_days: Some(90.0),
            min_support: 2,
            top_k: 50,
            kind_weights: KindWeights::default(),
            max_items_per_user: 500,
        }
    }
}

impl ItemItemConfig {
    /// Refuses settings that would make training meaningless or unbounded.
    pub fn validate(&self) -> Result<(), RecsError> {
        if self.min_support == 0 {
            return Err(RecsError::config("min_support", "must be at least 1"));
        }
        if self.top_k == 0 {
            return Err(RecsError::config("top_k", "must be at least 1"));
        }
        if self.max_items_per_user == 0 {
            return Err(RecsError::config("max_items_per_user", "must be at least 1"));
        }
        if let Some(days) = self.half_life_days {
            if !(days.is_finite() && days > 0.0) {
                return Err(RecsError::config("half_life_days", "must be a positive number of days"));
            }
        }
        Ok(())
    }
}

/// One neighbour of an item: 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Neighbour {
    /// The neighbouring item.
    pub item: ItemIdx,
    /// Its similarity to the item whose neighbour it is (higher is closer).
    pub score: f32,
    /// Users who interacted with both (saturates at 65,535).
    pub support: u16,
    /// Users who bought both (saturates), which decides between "also bought" and
    /// "also viewed" in explanations.
    pub bought_together: u16,
}

/// The trained neighbour lists of all items, in one flat array.
#[derive(Debug, Clone, Default)]
pub struct ItemNeighbours {
    offsets: Vec<u32>,
    entries: Vec<Neighbour>,
    /// Per item: ‖r_i‖ (cosine) or Σ_u r_ui (Jaccard, lift), kept to score items added later.
    mass: Vec<f32>,
    n_users: u32,
    similarity: Similarity,
    min_support: u32,
    top_k: usize,
}

/// Best first: higher score, then the smaller item index.
pub(crate) fn by_score_then_item(a: &Neighbour, b: &Neighbour) -> Ordering {
    b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal).then(a.item.cmp(&b.item))
}

/// Per-thread scratch of the co-occurrence pass.
struct Accumulator {
    co_occurrence: Vec<f32>,
    support: Vec<u32>,
    bought_together: Vec<u32>,
    touched: Vec<u32>,
    candidates: Vec<Neighbour>,
}

impl ItemNeighbours {
    /// Trains the neighbour lists from the user × item matrix and its transpose.
    pub(crate) fn train(
        user_items: &SparseRows,
        item_users: &SparseRows,
        config: &ItemItemConfig,
        threads: usize,
    ) -> ItemNeighbours {
        let n_items = item_users.n_rows();
        let similarity = config.similarity;
        let mass: Vec<f32> = (0..n_items).map(|item| item_mass(similarity, item_users.row(item))).collect();
        let scratch = || Accumulator {
            co_occurrence: vec![0.0; n_items],
            support: vec![0; n_items],
            bought_together: vec![0; n_items],
            touched: Vec::new(),
            candidates: Vec::new(),
        };
        let n_users = user_items.n_rows() as u32;
        let blocks = parallel::map_blocks(n_items, 128, parallel::worker_count(threads), scratch, |items, acc| {
            items
                .map(|item| {
                    let item_rows = (item_users.row(item), item_users.purchased(item));
                    match similarity {
                        Similarity::Cosine => accumulate::<false>(item as u32, item_rows, user_items, acc),
                        Similarity::Jaccard | Similarity::Lift => {
                            accumulate::<true>(item as u32, item_rows, user_items, acc)
                        }
                    }
                    select(item, acc, &mass, similarity, n_users, config)
                })
                .collect::<Vec<_>>()
        });
        let mut offsets = Vec::with_capacity(n_items + 1);
        let mut entries = Vec::with_capacity(blocks.iter().flatten().map(Vec::len).sum());
        offsets.push(0);
        for list in blocks.into_iter().flatten() {
            entries.extend_from_slice(&list);
            offsets.push(entries.len() as u32);
        }
        ItemNeighbours {
            offsets,
            entries,
            mass,
            n_users,
            similarity,
            min_support: config.min_support,
            top_k: config.top_k,
        }
    }

    /// The neighbours of `item`, best first; empty for an item added after training or unknown.
    pub fn of(&self, item: ItemIdx) -> &[Neighbour] {
        let idx = item.index();
        if idx + 1 >= self.offsets.len() {
            return &[];
        }
        &self.entries[self.offsets[idx] as usize..self.offsets[idx + 1] as usize]
    }

    /// The number of items the lists were trained for.
    pub fn n_items(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Neighbours stored over all items.
    pub fn n_neighbours(&self) -> usize {
        self.entries.len()
    }

    /// Heap bytes held: 12 per neighbour, 4 per item of offsets and 4 of mass.
    pub fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 4
            + self.entries.capacity() * std::mem::size_of::<Neighbour>()
            + self.mass.capacity() * 4
    }

    /// The neighbours of an item that was not in training, from its users' training rows:
    /// `column` lists the item's users (indices into `user_items`) with their strength and
    /// whether they bought it. The same similarity, support threshold and k apply as in training.
    pub(crate) fn neighbours_of_new_item(
        &self,
        column: &[(u32, f32, bool)],
        user_items: &SparseRows,
    ) -> Vec<Neighbour> {
        use rustc_hash::FxHashMap;
        let use_min = self.similarity != Similarity::Cosine;
        let mut sums: FxHashMap<u32, (f32, u32, u32)> = FxHashMap::default();
        let mut own_mass = 0.0_f32;
        for &(user, value, bought) in column {
            own_mass += if use_min { value } else { value * value };
            let user = user as usize;
            if user >= user_items.n_rows() {
                continue;
            }
            for (entry, &other_bought) in user_items.row(user).iter().zip(user_items.purchased(user)) {
                let slot = sums.entry(entry.idx).or_insert((0.0, 0, 0));
                slot.0 += if use_min { value.min(entry.value) } else { value * entry.value };
                slot.1 += 1;
                slot.2 += u32::from(bought && other_bought);
            }
        }
        if !use_min {
            own_mass = own_mass.sqrt();
        }
        let mut list: Vec<Neighbour> = sums
            .into_iter()
            .filter(|(_, (_, support, _))| *support >= self.min_support)
            .map(|(item, (co, support, together))| Neighbour {
                item: ItemIdx(item),
                score: normalise(self.similarity, co, own_mass, self.mass[item as usize], self.n_users),
                support: support.min(u32::from(u16::MAX)) as u16,
                bought_together: together.min(u32::from(u16::MAX)) as u16,
            })
            .filter(|n| n.score > 0.0 && n.score.is_finite())
            .collect();
        list.sort_unstable_by(by_score_then_item);
        list.truncate(self.top_k);
        list
    }
}

/// ‖r_i‖ for cosine, Σ r_ui otherwise.
fn item_mass(similarity: Similarity, users: &[Entry]) -> f32 {
    match similarity {
        Similarity::Cosine => users.iter().map(|e| e.value * e.value).sum::<f32>().sqrt(),
        Similarity::Jaccard | Similarity::Lift => users.iter().map(|e| e.value).sum(),
    }
}

fn normalise(similarity: Similarity, co: f32, mass_a: f32, mass_b: f32, n_users: u32) -> f32 {
    match similarity {
        Similarity::Cosine => co / (mass_a * mass_b),
        Similarity::Jaccard => co / (mass_a + mass_b - co),
        Similarity::Lift => co * n_users as f32 / (mass_a * mass_b),
    }
}

/// Adds item `item`'s co-occurrences into the accumulator: products of strengths when `MIN` is
/// false (cosine), minima when true (Jaccard, lift).
fn accumulate<const MIN: bool>(
    item: u32,
    (users, bought): (&[Entry], &[bool]),
    user_items: &SparseRows,
    acc: &mut Accumulator,
) {
    for (user_entry, &bought_item) in users.iter().zip(bought) {
        let user = user_entry.idx as usize;
        let r_ui = user_entry.value;
        for (other, &bought_other) in user_items.row(user).iter().zip(user_items.purchased(user)) {
            let j = other.idx as usize;
            if other.idx == item {
                continue;
            }
            if acc.support[j] == 0 {
                acc.touched.push(other.idx);
            }
            acc.support[j] += 1;
            acc.co_occurrence[j] += if MIN { r_ui.min(other.value) } else { r_ui * other.value };
            acc.bought_together[j] += u32::from(bought_item & bought_other);
        }
    }
}

/// Turns the accumulated sums of one item into its top-k list and resets the accumulator.
fn select(
    item: usize,
    acc: &mut Accumulator,
    mass: &[f32],
    similarity: Similarity,
    n_users: u32,
    config: &ItemItemConfig,
) -> Vec<Neighbour> {
    acc.candidates.clear();
    for &j in &acc.touched {
        let j = j as usize;
        let support = acc.support[j];
        if support >= config.min_support {
            let score = normalise(similarity, acc.co_occurrence[j], mass[item], mass[j], n_users);
            if score > 0.0 && score.is_finite() {
                acc.candidates.push(Neighbour {
                    item: ItemIdx(j as u32),
                    score,
                    support: support.min(u32::from(u16::MAX)) as u16,
                    bought_together: acc.bought_together[j].min(u32::from(u16::MAX)) as u16,
                });
            }
        }
        acc.co_occurrence[j] = 0.0;
        acc.support[j] = 0;
        acc.bought_together[j] = 0;
    }
    acc.touched.clear();
    let k = config.top_k;
    if acc.candidates.len() > k {
        acc.candidates.select_nth_unstable_by(k - 1, by_score_then_item);
        acc.candidates.truncate(k);
    }
    acc.candidates.sort_unstable_by(by_score_then_item);
    acc.candidates.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::{Interaction, InteractionKind, UserIdx};
    use crate::matrix::StrengthRule;

    /// Users 0–2 bought items 0 and 1; user 3 bought 0 and 2; user 2 also viewed 3.
    fn neighbours(similarity: Similarity, min_support: u32) -> ItemNeighbours {
        let pairs: &[(u32, u32, InteractionKind)] = &[
            (0, 0, InteractionKind::Purchase),
            (0, 1, InteractionKind::Purchase),
            (1, 0, InteractionKind::Purchase),
            (1, 1, InteractionKind::Purchase),
            (2, 0, InteractionKind::Purchase),
            (2, 1, InteractionKind::View),
            (2, 3, InteractionKind::View),
            (3, 0, InteractionKind::Purchase),
            (3, 2, InteractionKind::Purchase),
        ];
        let interactions: Vec<Interaction> = pairs
            .iter()
            .map(|&(user, item, kind)| Interaction {
                user: UserIdx(user),
                item: ItemIdx(item),
                kind,
                timestamp_secs: 0,
                weight: 1.0,
            })
            .collect();
        let rule = StrengthRule {
            kind_weights: KindWeights { view: 1.0, cart: 1.0, purchase: 1.0 },
            half_life_secs: None,
            reference_secs: 0,
            max_items_per_user: 100,
        };
        let user_items = SparseRows::user_items(&interactions, 4, &rule);
        let item_users = user_items.transpose(4);
        let config = ItemItemConfig { similarity, min_support, ..ItemItemConfig::default() };
        ItemNeighbours::train(&user_items, &item_users, &config, 2)
    }

    #[test]
    fn one_shared_buyer_is_not_a_pattern() {
        let model = neighbours(Similarity::Cosine, 2);
        let of_0: Vec<u32> = model.of(ItemIdx(0)).iter().map(|n| n.item.0).collect();
        assert_eq!(of_0, vec![1], "item 2 shares only user 3 with item 0");
        assert!(model.of(ItemIdx(2)).is_empty());
        let loose = neighbours(Similarity::Cosine, 1);
        assert_eq!(loose.of(ItemIdx(0)).len(), 3);
    }

    #[test]
    fn cosine_jaccard_and_lift_match_hand_computation() {
        // Items 0 and 1: 3 shared users; |users(0)| = 4, |users(1)| = 3; 4 users in all.
        let check = |similarity, expected: f32| {
            let model = neighbours(similarity, 2);
            let n = model.of(ItemIdx(0))[0];
            assert_eq!(n.item, ItemIdx(1));
            assert!((n.score - expected).abs() < 1e-6, "{similarity:?}: {} vs {expected}", n.score);
            assert_eq!(n.support, 3);
            assert_eq!(n.bought_together, 2, "user 2 only viewed item 1");
        };
        check(Similarity::Cosine, 3.0 / (4.0_f32.sqrt() * 3.0_f32.sqrt()));
        check(Similarity::Jaccard, 3.0 / (4.0 + 3.0 - 3.0));
        check(Similarity::Lift, 3.0 * 4.0 / (4.0 * 3.0));
    }

    #[test]
    fn a_new_item_gets_neighbours_from_its_users_training_rows() {
        let pairs = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)];
        let interactions = crate::interactions::test_purchases(&pairs);
        let rule = StrengthRule {
            kind_weights: KindWeights::default(),
            half_life_secs: None,
            reference_secs: 0,
            max_items_per_user: 100,
        };
        let user_items = SparseRows::user_items(&interactions, 3, &rule);
        let model = ItemNeighbours::train(&user_items, &user_items.transpose(2), &ItemItemConfig::default(), 1);
        let column = [(0, 4.0, true), (1, 4.0, true), (2, 4.0, false)];
        let list = model.neighbours_of_new_item(&column, &user_items);
        assert_eq!(list.iter().map(|n| n.item.0).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(list[1].bought_together, 2);
        // Item 0 has exactly the new item's three users, each at strength 4: cosine 1.
        assert!((list[0].score - 1.0).abs() < 1e-5);
        assert!((list[1].score - 32.0 / (48.0_f32.sqrt() * 32.0_f32.sqrt())).abs() < 1e-5);
    }
}
