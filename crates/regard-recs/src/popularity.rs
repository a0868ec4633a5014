//! Popularity: the fallback every other strategy ends in, and a strategy of its own.
//!
//! Global popularity is an item's summed strength over users (distinct users when weights are
//! one and nothing decays); per category it is the same ranking restricted to the category;
//! per country it counts the weighted events of the country's users in the last week, widening
//! to the last month and then all time when a country is too quiet, and remembers which window
//! it used so the explanation tells the truth ("Popular in Germany this week"). Trending
//! compares an item's rate in the recent window with its rate over a longer baseline before it.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::catalog::ItemCatalog;
use crate::interactions::{CountryCode, InteractionLog, ItemIdx, KindWeights};
use crate::matrix::SparseRows;

const DAY_SECS: f64 = 86_400.0;

/// Settings of popularity and trending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopularityConfig {
    /// The recent window of per-country popularity and of trending, in days.
    pub recent_days: f64,
    /// The baseline window before the recent one that trending compares against, in days.
    pub trending_baseline_days: f64,
    /// A window with fewer weighted events than this is widened (per country) or ignored (trending).
    pub min_window_events: f64,
    /// Items kept per category, country and trending list.
    pub list_len: usize,
}

impl Default for PopularityConfig {
    fn default() -> Self {
        PopularityConfig { recent_days: 7.0, trending_baseline_days: 28.0, min_window_events: 20.0, list_len: 200 }
    }
}

/// The time window a popularity list was counted over, which explanations name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PopularityWindow {
    /// The recent window (a week by default).
    Recent,
    /// The last 30 days.
    Month,
    /// All of the training data.
    AllTime,
}

impl PopularityWindow {
    /// The words appended to "Popular in Germany", given the recent window's length in days.
    pub fn phrase(self, recent_days: f64) -> String {
        match self {
            PopularityWindow::Recent if (recent_days - 7.0).abs() < 0.5 => " this week".to_owned(),
            PopularityWindow::Recent if (recent_days - 1.0).abs() < 0.5 => " today".to_owned(),
            PopularityWindow::Recent => format!(" in the last {} days", recent_days.round()),
            PopularityWindow::Month => " this month".to_owned(),
            PopularityWindow::AllTime => String::new(),
        }
    }
}

/// A ranked list of items with their popularity.
pub(crate) type RankedItems = Vec<(ItemIdx, f32)>;

/// All popularity lists of a model.
#[derive(Debug, Clone, Default)]
pub(crate) struct Popularity {
    /// Every item with any interaction, best first.
    pub global: RankedItems,
    /// Per category index, best first, at most `list_len`.
    pub by_category: Vec<RankedItems>,
    /// Per country, with the window counted over.
    pub by_country: FxHashMap<CountryCode, (PopularityWindow, RankedItems)>,
    /// Rising items, best first.
    pub trending: RankedItems,
    /// The recent window in days, for explanations.
    pub recent_days: f64,
}

/// Best first, ties to the smaller index; zero scores dropped.
fn ranked(scores: impl Iterator<Item = (u32, f32)>, limit: usize) -> RankedItems {
    let mut list: RankedItems = scores.filter(|(_, s)| *s > 0.0).map(|(i, s)| (ItemIdx(i), s)).collect();
    list.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    list.truncate(limit);
    list
}

impl Popularity {
    /// Counts every list from the log, the strength matrix's transpose and the catalogue.
    pub(crate) fn build(
        log: &InteractionLog,
        item_users: &SparseRows,
        catalog: &ItemCatalog,
        kind_weights: &KindWeights,
        reference_secs: i64,
        config: &PopularityConfig,
    ) -> Popularity {
        let n_items = catalog.len();
        let strength: Vec<f32> = (0..n_items)
            .map(
                |item| {
                    if item < item_users.n_rows() {
                        item_users.row(item).iter().map(|e| e.value).sum()
                    } else {
                        0.0
                    }
                },
            )
            .collect();
        let global = ranked(strength.iter().enumerate().map(|(i, s)| (i as u32, *s)), usize::MAX);
        let by_category = catalog
            .category_items
            .iter()
            .map(|items| ranked(items.iter().map(|i| (i.0, strength[i.index()])), config.list_len))
            .collect();

        let recent_start = reference_secs - (config.recent_days * DAY_SECS) as i64;
        let month_start = reference_secs - (30.0 * DAY_SECS) as i64;
        let baseline_start = recent_start - (config.trending_baseline_days * DAY_SECS) as i64;
        // Per country: weighted events over all time, the month and the recent window.
        let mut country_counts: FxHashMap<(CountryCode, u32), [f32; 3]> = FxHashMap::default();
        let mut country_totals: FxHashMap<CountryCode, [f32; 3]> = FxHashMap::default();
        let mut recent = vec![0.0_f32; n_items];
        let mut baseline = vec![0.0_f32; n_items];
        for interaction in &log.interactions {
            let weight = kind_weights.of(interaction.kind) * interaction.weight;
            let time = interaction.timestamp_secs;
            if time > reference_secs {
                continue;
            }
            let windows = [1.0, f32::from(u8::from(time >= month_start)), f32::from(u8::from(time >= recent_start))];
            if let Some(country) = log.user_country.get(interaction.user.index()).copied().flatten() {
                let counts = country_counts.entry((country, interaction.item.0)).or_default();
                let totals = country_totals.entry(country).or_default();
                for w in 0..3 {
                    counts[w] += weight * windows[w];
                    totals[w] += weight * windows[w];
                }
            }
            if time >= recent_start {
                recent[interaction.item.index()] += weight;
            } else if time >= baseline_start {
                baseline[interaction.item.index()] += weight;
            }
        }
        let mut per_country: FxHashMap<CountryCode, Vec<(u32, [f32; 3])>> = FxHashMap::default();
        for ((country, item), counts) in country_counts {
            per_country.entry(country).or_default().push((item, counts));
        }
        let by_country = per_country
            .into_iter()
            .map(|(country, items)| {
                let totals = country_totals.get(&country).copied().unwrap_or_default();
                let (window, slot) = if f64::from(totals[2]) >= config.min_window_events {
                    (PopularityWindow::Recent, 2)
                } else if f64::from(totals[1]) >= config.min_window_events {
                    (PopularityWindow::Month, 1)
                } else {
                    (PopularityWindow::AllTime, 0)
                };
                (country, (window, ranked(items.iter().map(|(i, c)| (*i, c[slot])), config.list_len)))
            })
            .collect();

        let total_recent: f32 = recent.iter().sum();
        let trending = if f64::from(total_recent) < config.min_window_events {
            Vec::new()
        } else {
            // Rate per day in the recent window over the baseline rate, with a prior of a few
            // baseline events so that an item seen three times is not "trending" by itself.
            let prior = 5.0_f32;
            let recent_days = config.recent_days as f32;
            let baseline_days = config.trending_baseline_days.max(1.0) as f32;
            ranked(
                recent.iter().zip(&baseline).enumerate().map(|(item, (&r, &b))| {
                    let score = if r < 3.0 { 0.0 } else { (r / recent_days) / ((b + prior) / baseline_days) };
                    (item as u32, score)
                }),
                config.list_len,
            )
        };
        Popularity { global, by_category, by_country, trending, recent_days: config.recent_days }
    }

    /// Heap bytes held, for memory reports.
    pub(crate) fn heap_bytes(&self) -> usize {
        let list = |l: &RankedItems| l.capacity() * 8 + 24;
        list(&self.global)
            + self.by_category.iter().map(list).sum::<usize>()
            + self.by_country.values().map(|(_, l)| list(l) + 16).sum::<usize>()
            + list(&self.trending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::{InteractionKind, ItemMeta};
    use crate::matrix::StrengthRule;

    #[test]
    fn country_lists_widen_their_window_when_the_week_is_quiet_and_say_so() {
        let day = 86_400;
        let now = 100 * day;
        let mut log = InteractionLog::new();
        log.set_item_meta("a", ItemMeta { category_path: vec!["Coffee".into()], ..ItemMeta::default() });
        log.set_item_meta("b", ItemMeta { category_path: vec!["Coffee".into()], ..ItemMeta::default() });
        let de = CountryCode::parse("DE").unwrap();
        let fr = CountryCode::parse("FR").unwrap();
        for u in 0..30 {
            let user = format!("de{u}");
            log.set_user_country(&user, de);
            log.push(&user, if u < 20 { "b" } else { "a" }, InteractionKind::View, now - day, 1.0);
            let user = format!("fr{u}");
            log.set_user_country(&user, fr);
            log.push(&user, "a", InteractionKind::View, now - 50 * day, 1.0);
        }
        let rule = StrengthRule {
            kind_weights: KindWeights::default(),
            half_life_secs: None,
            reference_secs: now,
            max_items_per_user: 10,
        };
        let catalog = ItemCatalog::build(&log, &[]);
        let item_users = SparseRows::user_items(&log.interactions, log.n_users(), &rule).transpose(log.n_items());
        let popularity =
            Popularity::build(&log, &item_users, &catalog, &KindWeights::default(), now, &PopularityConfig::default());
        let (window, list) = &popularity.by_country[&de];
        assert_eq!(*window, PopularityWindow::Recent);
        assert_eq!(list[0].0, catalog.idx("b").unwrap());
        assert_eq!(window.phrase(7.0), " this week");
        let (window, list) = &popularity.by_country[&fr];
        assert_eq!(*window, PopularityWindow::AllTime);
        assert_eq!(list[0].0, catalog.idx("a").unwrap());
        assert_eq!(popularity.global[0].0, catalog.idx("a").unwrap(), "40 users against 20");
        assert_eq!(popularity.by_category[0].len(), 2);
        assert_eq!(popularity.trending[0].0, catalog.idx("b").unwrap());
    }
}
