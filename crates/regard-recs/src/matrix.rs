//! The user × item strength matrix every collaborative model reads, in compressed sparse rows.
//!
//! All events of one user on one item collapse into one entry whose value is the sum of their
//! kind weights, each decayed by its age (`0.5^(age / half_life)`), plus a flag saying whether
//! any of them was a purchase. Rows are sorted by column index, so merges and transposes are
//! linear; there is no hash map anywhere on the training path.

use crate::interactions::{Interaction, InteractionKind, KindWeights};

/// One stored cell of a sparse row: the column (an item or user index) and its strength.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Entry {
    /// The column index.
    pub idx: u32,
    /// The decayed, kind-weighted strength (> 0).
    pub value: f32,
}

/// A sparse matrix in compressed rows, with a purchase flag per entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct SparseRows {
    offsets: Vec<usize>,
    entries: Vec<Entry>,
    purchased: Vec<bool>,
}

/// How raw interactions become strengths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StrengthRule {
    /// Weight per interaction kind.
    pub kind_weights: KindWeights,
    /// Half-life of an interaction's weight in seconds; `None` for no decay.
    pub half_life_secs: Option<f64>,
    /// The instant ages are measured from (the training's "now").
    pub reference_secs: i64,
    /// Only a user's most recent this-many distinct items are kept, which bounds the
    /// co-occurrence pass (its cost grows with the square of a row's length).
    pub max_items_per_user: usize,
}

impl StrengthRule {
    /// The strength one interaction contributes.
    pub fn strength(&self, kind: InteractionKind, weight: f32, timestamp_secs: i64) -> f32 {
        let base = self.kind_weights.of(kind) * weight;
        match self.half_life_secs {
            Some(half_life) if half_life > 0.0 => {
                let age = (self.reference_secs - timestamp_secs).max(0) as f64;
                base * (0.5_f64).powf(age / half_life) as f32
            }
            _ => base,
        }
    }
}

impl SparseRows {
    /// The number of rows.
    pub fn n_rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Row `row`'s entries, sorted by column.
    pub fn row(&self, row: usize) -> &[Entry] {
        &self.entries[self.offsets[row]..self.offsets[row + 1]]
    }

    /// Row `row`'s purchase flags, aligned with [`SparseRows::row`].
    pub fn purchased(&self, row: usize) -> &[bool] {
        &self.purchased[self.offsets[row]..self.offsets[row + 1]]
    }

    /// Heap bytes held, for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * std::mem::size_of::<usize>()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.purchased.capacity()
    }

    /// Builds the user × item matrix from interactions (users and items are dense indices below
    /// `n_users` and `n_items`; entries with a non-positive strength are dropped).
    pub fn user_items(interactions: &[Interaction], n_users: usize, rule: &StrengthRule) -> SparseRows {
        #[derive(Clone, Copy)]
        struct Raw {
            item: u32,
            value: f32,
            timestamp_secs: i64,
            purchased: bool,
        }
        // A counting sort by user: one pass to count, one to place.
        let mut starts = vec![0_usize; n_users + 1];
        for interaction in interactions {
            starts[interaction.user.index() + 1] += 1;
        }
        for user in 0..n_users {
            starts[user + 1] += starts[user];
        }
        let mut cursor = starts.clone();
        let mut raw = vec![Raw { item: 0, value: 0.0, timestamp_secs: 0, purchased: false }; interactions.len()];
        for interaction in interactions {
            let slot = &mut cursor[interaction.user.index()];
            raw[*slot] = Raw {
                item: interaction.item.0,
                value: rule.strength(interaction.kind, interaction.weight, interaction.timestamp_secs),
                timestamp_secs: interaction.timestamp_secs,
                purchased: interaction.kind == InteractionKind::Purchase,
            };
            *slot += 1;
        }
        let mut offsets = Vec::with_capacity(n_users + 1);
        let mut entries = Vec::with_capacity(interactions.len());
        let mut purchased = Vec::with_capacity(interactions.len());
        let mut merged: Vec<Raw> = Vec::new();
        offsets.push(0);
        for user in 0..n_users {
            let events = &mut raw[starts[user]..starts[user + 1]];
            events.sort_unstable_by_key(|r| r.item);
            merged.clear();
            for event in events.iter() {
                match merged.last_mut() {
                    Some(last) if last.item == event.item => {
                        last.value += event.value;
                        last.timestamp_secs = last.timestamp_secs.max(event.timestamp_secs);
                        last.purchased |= event.purchased;
                    }
                    _ => merged.push(*event),
                }
            }
            merged.retain(|r| r.value > 0.0 && r.value.is_finite());
            if merged.len() > rule.max_items_per_user {
                merged.sort_unstable_by_key(|r| std::cmp::Reverse(r.timestamp_secs));
                merged.truncate(rule.max_items_per_user);
                merged.sort_unstable_by_key(|r| r.item);
            }
            for r in &merged {
                entries.push(Entry { idx: r.item, value: r.value });
                purchased.push(r.purchased);
            }
            offsets.push(entries.len());
        }
        SparseRows { offsets, entries, purchased }
    }

    /// The transpose (item × user from user × item), rows again sorted by column.
    pub fn transpose(&self, n_cols: usize) -> SparseRows {
        let mut offsets = vec![0_usize; n_cols + 1];
        for entry in &self.entries {
            offsets[entry.idx as usize + 1] += 1;
        }
        for col in 0..n_cols {
            offsets[col + 1] += offsets[col];
        }
        let mut cursor = offsets.clone();
        let mut entries = vec![Entry { idx: 0, value: 0.0 }; self.entries.len()];
        let mut purchased = vec![false; self.entries.len()];
        for row in 0..self.n_rows() {
            for (entry, &bought) in self.row(row).iter().zip(self.purchased(row)) {
                let slot = &mut cursor[entry.idx as usize];
                entries[*slot] = Entry { idx: row as u32, value: entry.value };
                purchased[*slot] = bought;
                *slot += 1;
            }
        }
        SparseRows { offsets, entries, purchased }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::{ItemIdx, UserIdx};

    fn event(user: u32, item: u32, kind: InteractionKind, timestamp_secs: i64) -> Interaction {
        Interaction { user: UserIdx(user), item: ItemIdx(item), kind, timestamp_secs, weight: 1.0 }
    }

    fn rule() -> StrengthRule {
        StrengthRule {
            kind_weights: KindWeights::default(),
            half_life_secs: Some(100.0),
            reference_secs: 200,
            max_items_per_user: 2,
        }
    }

    #[test]
    fn events_on_one_pair_add_up_with_decay_and_remember_a_purchase() {
        let events = [
            event(0, 3, InteractionKind::View, 200),
            event(0, 3, InteractionKind::Purchase, 100),
            event(1, 1, InteractionKind::View, 0),
        ];
        let matrix = SparseRows::user_items(&events, 2, &rule());
        assert_eq!(matrix.row(0), &[Entry { idx: 3, value: 1.0 + 4.0 * 0.5 }]);
        assert_eq!(matrix.purchased(0), &[true]);
        assert_eq!(matrix.row(1), &[Entry { idx: 1, value: 0.25 }]);
        let items = matrix.transpose(4);
        assert_eq!(items.row(3), &[Entry { idx: 0, value: 3.0 }]);
        assert!(items.row(0).is_empty());
    }

    #[test]
    fn only_the_most_recent_items_of_a_long_history_are_kept() {
        let events = [
            event(0, 5, InteractionKind::View, 10),
            event(0, 1, InteractionKind::View, 30),
            event(0, 9, InteractionKind::View, 20),
        ];
        let matrix = SparseRows::user_items(&events, 1, &rule());
        let items: Vec<u32> = matrix.row(0).iter().map(|e| e.idx).collect();
        assert_eq!(items, vec![1, 9]);
    }
}
