//! The items as a trained model knows them: ids, catalogue data, categories, and what the
//! purchase log taught about each one's repeat buying.
//!
//! The catalogue may say an item is durable or consumable; when it does not, the log decides:
//! a category that almost nobody buys twice is durable (no mattresses after the mattress), an
//! item that a good share of its buyers rebuy is consumable, with the median gap between two
//! purchases as its reorder interval.

use regard_core::catalog::Durability;
use regard_core::segments::{policy, PolicyConfig};
use serde::Serialize;

use crate::interactions::{CategoryIdx, InteractionKind, InteractionLog, Interner, ItemIdx, ItemMeta};

/// A category with at least this many buyers and fewer than [`DURABLE_REPEAT_RATE`] of them
/// buying twice is learned to be durable.
const DURABLE_MIN_BUYERS: u32 = 30;
/// See [`DURABLE_MIN_BUYERS`].
const DURABLE_REPEAT_RATE: f64 = 0.02;
/// An item with at least this many repeat buyers, making up at least
/// [`CONSUMABLE_REPEAT_RATE`] of its buyers, is learned to be consumable.
const CONSUMABLE_MIN_REPEATERS: u32 = 3;
/// See [`CONSUMABLE_MIN_REPEATERS`].
const CONSUMABLE_REPEAT_RATE: f64 = 0.15;
/// Two purchases of one item by one person less than a day apart are one purchase.
const SAME_PURCHASE_SECS: i64 = 86_400;

/// What the purchase log says about buying an item again.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct RepeatBuying {
    /// Distinct buyers.
    pub buyers: u32,
    /// Buyers who bought it again at least a day later.
    pub repeat_buyers: u32,
    /// The median time between two purchases by one buyer, when anyone bought twice.
    pub median_gap_secs: Option<i64>,
}

/// The items of a model: ids, catalogue data, categories and learned repeat buying.
#[derive(Debug, Clone, Default)]
pub struct ItemCatalog {
    pub(crate) keys: Interner,
    pub(crate) meta: Vec<ItemMeta>,
    /// Leaf category of each item (its full path), if it has one.
    pub(crate) category: Vec<Option<CategoryIdx>>,
    /// Full category paths (`Home > Bedroom`) ↔ indices.
    pub(crate) categories: Interner,
    /// Items of each category, by index.
    pub(crate) category_items: Vec<Vec<ItemIdx>>,
    pub(crate) repeat: Vec<RepeatBuying>,
    /// Repeat buying summed over each category's items.
    pub(crate) category_repeat: Vec<RepeatBuying>,
    /// Whether each item is sensitive: flagged by the catalogue, or its category path matches
    /// the sensitive-category keywords of the segment policy or the configured categories.
    pub(crate) sensitive: Vec<bool>,
}

impl ItemCatalog {
    /// Builds the catalogue from a log: categories, sensitivity and learned repeat buying.
    pub(crate) fn build(log: &InteractionLog, extra_sensitive_categories: &[String]) -> ItemCatalog {
        let mut catalog =
            ItemCatalog { keys: log.items.clone(), meta: log.item_meta.clone(), ..ItemCatalog::default() };
        for item in 0..catalog.meta.len() {
            catalog.index_item(item, extra_sensitive_categories);
        }
        catalog.learn_repeat_buying(log);
        catalog
    }

    /// Adds one item's category and sensitivity to the indexes (the item's meta is in place).
    pub(crate) fn index_item(&mut self, item: usize, extra_sensitive_categories: &[String]) {
        let meta = &self.meta[item];
        let category = meta.category_key().map(|key| {
            let idx = self.categories.intern(&key) as usize;
            if idx == self.category_items.len() {
                self.category_items.push(Vec::new());
                self.category_repeat.push(RepeatBuying::default());
            }
            self.category_items[idx].push(ItemIdx(item as u32));
            CategoryIdx(idx as u32)
        });
        let policy_config = PolicyConfig::default();
        let sensitive = meta.sensitive
            || meta.category_path.iter().any(|part| {
                policy::sensitive_field(part, &policy_config).is_some()
                    || extra_sensitive_categories.iter().any(|s| s.eq_ignore_ascii_case(part))
            });
        if item == self.category.len() {
            self.category.push(category);
            self.sensitive.push(sensitive);
            self.repeat.push(RepeatBuying::default());
        } else {
            self.category[item] = category;
            self.sensitive[item] = sensitive;
        }
    }

    fn learn_repeat_buying(&mut self, log: &InteractionLog) {
        let mut purchases: Vec<(u32, u32, i64)> = log
            .interactions
            .iter()
            .filter(|i| i.kind == InteractionKind::Purchase)
            .map(|i| (i.item.0, i.user.0, i.timestamp_secs))
            .collect();
        purchases.sort_unstable();
        let mut gaps: Vec<i64> = Vec::new();
        let mut start = 0;
        while start < purchases.len() {
            let item = purchases[start].0;
            let mut end = start;
            while end < purchases.len() && purchases[end].0 == item {
                end += 1;
            }
            let mut stats = RepeatBuying::default();
            gaps.clear();
            let mut user_start = start;
            while user_start < end {
                let user = purchases[user_start].1;
                let mut user_end = user_start;
                let mut last: Option<i64> = None;
                let mut repeated = false;
                while user_end < end && purchases[user_end].1 == user {
                    let time = purchases[user_end].2;
                    match last {
                        Some(previous) if time - previous < SAME_PURCHASE_SECS => {}
                        Some(previous) => {
                            gaps.push(time - previous);
                            repeated = true;
                            last = Some(time);
                        }
                        None => last = Some(time),
                    }
                    user_end += 1;
                }
                stats.buyers += 1;
                stats.repeat_buyers += u32::from(repeated);
                user_start = user_end;
            }
            if !gaps.is_empty() {
                let middle = gaps.len() / 2;
                stats.median_gap_secs = Some(*gaps.select_nth_unstable(middle).1);
            }
            let item = item as usize;
            if item < self.repeat.len() {
                self.repeat[item] = stats;
                if let Some(category) = self.category[item] {
                    let total = &mut self.category_repeat[category.0 as usize];
                    total.buyers += stats.buyers;
                    total.repeat_buyers += stats.repeat_buyers;
                }
            }
            start = end;
        }
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// True when there is no item.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// The item with id `key`.
    pub fn idx(&self, key: &str) -> Option<ItemIdx> {
        self.keys.get(key).map(ItemIdx)
    }

    /// The operator's id of an item.
    pub fn key(&self, item: ItemIdx) -> &str {
        self.keys.key(item.0)
    }

    /// An item's catalogue data.
    pub fn meta(&self, item: ItemIdx) -> &ItemMeta {
        &self.meta[item.index()]
    }

    /// The name explanations use: the title, else the id.
    pub fn title(&self, item: ItemIdx) -> &str {
        self.meta[item.index()].title.as_deref().unwrap_or_else(|| self.keys.key(item.0))
    }

    /// An item's leaf category.
    pub fn category(&self, item: ItemIdx) -> Option<CategoryIdx> {
        self.category.get(item.index()).copied().flatten()
    }

    /// The display name of a category: its leaf (`Mattresses`).
    pub fn category_name(&self, category: CategoryIdx) -> &str {
        let path = self.categories.key(category.0);
        path.rsplit(" > ").next().unwrap_or(path)
    }

    /// The full path of a category (`Home > Bedroom > Mattresses`).
    pub fn category_path(&self, category: CategoryIdx) -> &str {
        self.categories.key(category.0)
    }

    /// What the log says about rebuying an item.
    pub fn repeat_buying(&self, item: ItemIdx) -> RepeatBuying {
        self.repeat.get(item.index()).copied().unwrap_or_default()
    }

    /// Whether an item is sensitive (never shown in a shared context).
    pub fn is_sensitive(&self, item: ItemIdx) -> bool {
        self.sensitive.get(item.index()).copied().unwrap_or(false)
    }

    /// The durability the rules act on: the catalogue's word when it gives one, else what the
    /// log shows (see the module documentation), else unknown.
    pub fn durability(&self, item: ItemIdx) -> Durability {
        let meta = &self.meta[item.index()];
        if meta.durability != Durability::Unknown {
            return meta.durability;
        }
        let stats = self.repeat_buying(item);
        if stats.repeat_buyers >= CONSUMABLE_MIN_REPEATERS
            && f64::from(stats.repeat_buyers) >= CONSUMABLE_REPEAT_RATE * f64::from(stats.buyers)
        {
            return Durability::Consumable;
        }
        if let Some(category) = self.category(item) {
            let total = self.category_repeat[category.0 as usize];
            if total.buyers >= DURABLE_MIN_BUYERS
                && f64::from(total.repeat_buyers) < DURABLE_REPEAT_RATE * f64::from(total.buyers)
            {
                return Durability::Durable;
            }
        }
        Durability::Unknown
    }

    /// How long after a purchase a consumable is due again: the catalogue's interval, else the
    /// median gap learned from the log, else `default_secs`.
    pub fn reorder_interval_secs(&self, item: ItemIdx, default_secs: i64) -> i64 {
        self.meta[item.index()]
            .reorder_interval_secs
            .or(self.repeat_buying(item).median_gap_secs)
            .unwrap_or(default_secs)
    }

    /// Heap bytes held (ids, metadata excluding attribute strings, indexes), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes()
            + self.meta.capacity() * std::mem::size_of::<ItemMeta>()
            + self.category.capacity() * 8
            + self.repeat.capacity() * std::mem::size_of::<RepeatBuying>()
            + self.sensitive.capacity()
            + self.categories.heap_bytes()
            + self.category_items.iter().map(|c| c.capacity() * 4 + 24).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(purchases: &[(&str, &str, i64)], categories: &[(&str, &str)]) -> InteractionLog {
        let mut log = InteractionLog::new();
        for (item, category) in categories {
            log.set_item_meta(
                item,
                ItemMeta { category_path: vec!["Shop".into(), (*category).into()], ..ItemMeta::default() },
            );
        }
        for (user, item, time) in purchases {
            log.push(user, item, InteractionKind::Purchase, *time, 1.0);
        }
        log
    }

    #[test]
    fn rebought_items_are_learned_consumable_with_their_median_gap() {
        let day = 86_400;
        let mut purchases = Vec::new();
        let users: Vec<String> = (0..10).map(|u| format!("u{u}")).collect();
        for (u, user) in users.iter().enumerate() {
            purchases.push((user.as_str(), "coffee", 0));
            if u < 4 {
                purchases.push((user.as_str(), "coffee", 30 * day + u as i64 * day));
            }
        }
        let log = log_with(&purchases, &[("coffee", "Coffee")]);
        let catalog = ItemCatalog::build(&log, &[]);
        let coffee = catalog.idx("coffee").unwrap();
        assert_eq!(catalog.repeat_buying(coffee).repeat_buyers, 4);
        assert_eq!(catalog.durability(coffee), Durability::Consumable);
        assert_eq!(catalog.reorder_interval_secs(coffee, 7 * day), 32 * day);
    }

    #[test]
    fn a_category_nobody_buys_twice_is_learned_durable() {
        let users: Vec<String> = (0..40).map(|u| format!("u{u}")).collect();
        let purchases: Vec<(&str, &str, i64)> = users
            .iter()
            .enumerate()
            .map(|(u, user)| (user.as_str(), if u % 2 == 0 { "m1" } else { "m2" }, 0))
            .collect();
        let log = log_with(&purchases, &[("m1", "Mattresses"), ("m2", "Mattresses"), ("pillow", "Pillows")]);
        let catalog = ItemCatalog::build(&log, &[]);
        assert_eq!(catalog.durability(catalog.idx("m1").unwrap()), Durability::Durable);
        assert_eq!(catalog.durability(catalog.idx("pillow").unwrap()), Durability::Unknown);
        assert_eq!(catalog.category_name(catalog.category(catalog.idx("m2").unwrap()).unwrap()), "Mattresses");
    }

    #[test]
    fn health_categories_and_flagged_items_are_sensitive() {
        let log = log_with(&[], &[("vitamins", "Vitamins"), ("mug", "Mugs"), ("book", "Self-help")]);
        let catalog = ItemCatalog::build(&log, &["self-help".to_owned()]);
        assert!(catalog.is_sensitive(catalog.idx("vitamins").unwrap()));
        assert!(!catalog.is_sensitive(catalog.idx("mug").unwrap()));
        assert!(catalog.is_sensitive(catalog.idx("book").unwrap()));
    }
}
