//! The rules that keep recommendations from being creepy or incompetent, as one filter stage
//! every strategy's candidates pass through.
//!
//! Its inputs are explicit so that serving can pass what only it knows: the person's recent
//! history (purchases come from it), the cart, an exclude list, live stock, whether the context
//! is shared (an email), and business filters. [`RuleFilter::admit`] answers for one candidate
//! with the rule that refused it, and counts admitted items per category for diversity.

use regard_core::catalog::Durability;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::catalog::ItemCatalog;
use crate::interactions::{CategoryIdx, InteractionKind, ItemIdx};
use crate::HistoryEvent;

const DAY_SECS: f64 = 86_400.0;

/// Operator settings of the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesConfig {
    /// After a durable purchase its category is suppressed for this many days.
    pub durable_suppression_days: f64,
    /// The reorder interval of a consumable the catalogue and the log say nothing about, in days.
    pub default_reorder_days: f64,
    /// At most this many items of one category in one list (`None`: no limit).
    pub max_per_category: Option<usize>,
    /// Category names (any level of the path, case-insensitive) that are sensitive on top of
    /// the segment policy's built-in sensitive keywords.
    pub sensitive_categories: Vec<String>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            durable_suppression_days: 180.0,
            default_reorder_days: 30.0,
            max_per_category: Some(3),
            sensitive_categories: Vec::new(),
        }
    }
}

/// Business filters a request or a slot may set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BusinessFilter {
    /// Only items whose category path has this prefix (`Kitchen` or `Kitchen > Coffee Makers`).
    pub category: Option<String>,
    /// Only items at or above this price.
    pub min_price: Option<f64>,
    /// Only items at or below this price.
    pub max_price: Option<f64>,
}

/// What serving knows about this one request, besides the history.
#[derive(Debug, Clone, Default)]
pub struct RuleInputs<'a> {
    /// Items in the person's cart now.
    pub cart: &'a [ItemIdx],
    /// Whether items in the cart are left out (a slot's choice).
    pub exclude_cart: bool,
    /// Items the request excludes explicitly.
    pub exclude: &'a [ItemIdx],
    /// Items out of stock now (on top of the catalogue's `in_stock` at training time).
    pub out_of_stock: &'a [ItemIdx],
    /// The list will be seen in a shared context (an email, a shared screen): no sensitive items.
    pub shared_context: bool,
    /// Business filters.
    pub filter: BusinessFilter,
    /// Overrides the configured diversity limit for this request.
    pub max_per_category: Option<usize>,
}

/// Why a candidate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Bought recently, and not a consumable whose reorder time has come.
    JustBought,
    /// In the category of a recent durable purchase.
    CategorySuppressed,
    /// Out of stock.
    OutOfStock,
    /// On the request's exclude list.
    Excluded,
    /// In the cart, and the request leaves cart items out.
    InCart,
    /// Sensitive, and the context is shared.
    Sensitive,
    /// Outside the business filters (category or price).
    Filtered,
    /// Its category already has the most items one list may hold.
    CategoryFull,
}

/// The rules for one request, ready to judge candidates. Build one per request.
#[derive(Debug)]
pub struct RuleFilter<'a> {
    catalog: &'a ItemCatalog,
    inputs: &'a RuleInputs<'a>,
    just_bought: FxHashSet<ItemIdx>,
    suppressed_categories: FxHashSet<CategoryIdx>,
    category_filter: Option<Vec<String>>,
    max_per_category: Option<usize>,
    per_category: FxHashMap<CategoryIdx, usize>,
}

impl<'a> RuleFilter<'a> {
    /// Prepares the rules from the configuration, the request's inputs and the person's history
    /// at `now_secs`.
    pub fn new(
        catalog: &'a ItemCatalog,
        config: &RulesConfig,
        inputs: &'a RuleInputs<'a>,
        history: &[HistoryEvent],
        now_secs: i64,
    ) -> RuleFilter<'a> {
        let mut last_purchase: FxHashMap<ItemIdx, i64> = FxHashMap::default();
        for event in history.iter().filter(|e| e.kind == InteractionKind::Purchase && e.item.index() < catalog.len()) {
            let time = last_purchase.entry(event.item).or_insert(event.timestamp_secs);
            *time = (*time).max(event.timestamp_secs);
        }
        let default_reorder_secs = (config.default_reorder_days * DAY_SECS) as i64;
        let suppression_secs = (config.durable_suppression_days * DAY_SECS) as i64;
        let mut just_bought = FxHashSet::default();
        let mut suppressed_categories = FxHashSet::default();
        for (&item, &bought_at) in &last_purchase {
            match catalog.durability(item) {
                Durability::Consumable => {
                    if now_secs - bought_at < catalog.reorder_interval_secs(item, default_reorder_secs) {
                        just_bought.insert(item);
                    }
                }
                Durability::Durable => {
                    just_bought.insert(item);
                    if now_secs - bought_at < suppression_secs {
                        if let Some(category) = catalog.category(item) {
                            suppressed_categories.insert(category);
                        }
                    }
                }
                Durability::Unknown => {
                    just_bought.insert(item);
                }
            }
        }
        let category_filter = inputs.filter.category.as_deref().map(regard_core::catalog::Product::parse_category_path);
        RuleFilter {
            catalog,
            inputs,
            just_bought,
            suppressed_categories,
            category_filter,
            max_per_category: inputs.max_per_category.or(config.max_per_category),
            per_category: FxHashMap::default(),
        }
    }

    /// Whether the rules allow `item`, not counting diversity.
    pub fn check(&self, item: ItemIdx) -> Result<(), Rejection> {
        let inputs = self.inputs;
        if item.index() >= self.catalog.len() {
            return Err(Rejection::Excluded);
        }
        if inputs.exclude.contains(&item) {
            return Err(Rejection::Excluded);
        }
        let meta = self.catalog.meta(item);
        if !meta.in_stock || inputs.out_of_stock.contains(&item) {
            return Err(Rejection::OutOfStock);
        }
        if inputs.exclude_cart && inputs.cart.contains(&item) {
            return Err(Rejection::InCart);
        }
        if self.just_bought.contains(&item) {
            return Err(Rejection::JustBought);
        }
        if self.catalog.category(item).is_some_and(|c| self.suppressed_categories.contains(&c)) {
            return Err(Rejection::CategorySuppressed);
        }
        if inputs.shared_context && self.catalog.is_sensitive(item) {
            return Err(Rejection::Sensitive);
        }
        if let Some(prefix) = &self.category_filter {
            let matches = prefix.len() <= meta.category_path.len()
                && prefix.iter().zip(&meta.category_path).all(|(p, c)| p.eq_ignore_ascii_case(c));
            if !matches {
                return Err(Rejection::Filtered);
            }
        }
        let price = meta.price;
        if let Some(min) = inputs.filter.min_price {
            if price.is_none_or(|p| p < min) {
                return Err(Rejection::Filtered);
            }
        }
        if let Some(max) = inputs.filter.max_price {
            if price.is_none_or(|p| p > max) {
                return Err(Rejection::Filtered);
            }
        }
        Ok(())
    }

    /// Checks `item` and, if it passes, counts it towards its category's diversity limit.
    pub fn admit(&mut self, item: ItemIdx) -> Result<(), Rejection> {
        self.check(item)?;
        if let (Some(limit), Some(category)) = (self.max_per_category, self.catalog.category(item)) {
            let count = self.per_category.entry(category).or_insert(0);
            if *count >= limit {
                return Err(Rejection::CategoryFull);
            }
            *count += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::{InteractionLog, ItemMeta};

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_000 * DAY;

    fn catalog() -> ItemCatalog {
        let mut log = InteractionLog::new();
        let mut add = |id: &str, path: &[&str], price: f64, durability: Durability, in_stock: bool| {
            let meta = ItemMeta {
                title: Some(id.to_owned()),
                category_path: path.iter().map(|p| (*p).to_owned()).collect(),
                price: Some(price),
                durability,
                in_stock,
                reorder_interval_secs: (durability == Durability::Consumable).then_some(30 * DAY),
                ..ItemMeta::default()
            };
            log.set_item_meta(id, meta);
        };
        add("coffee", &["Coffee & Tea", "Coffee"], 12.0, Durability::Consumable, true);
        add("mattress", &["Home", "Mattresses"], 900.0, Durability::Durable, true);
        add("mattress-2", &["Home", "Mattresses"], 700.0, Durability::Unknown, true);
        add("lamp", &["Home", "Lighting"], 40.0, Durability::Unknown, true);
        add("lamp-2", &["Home", "Lighting"], 60.0, Durability::Unknown, true);
        add("lamp-3", &["Home", "Lighting"], 80.0, Durability::Unknown, true);
        add("tent", &["Outdoor", "Tents"], 300.0, Durability::Unknown, false);
        add("vitamins", &["Health & Wellness", "Vitamins"], 20.0, Durability::Consumable, true);
        ItemCatalog::build(&log, &[])
    }

    fn idx(catalog: &ItemCatalog, id: &str) -> ItemIdx {
        catalog.idx(id).expect("item")
    }

    fn bought(catalog: &ItemCatalog, id: &str, days_ago: i64) -> HistoryEvent {
        HistoryEvent { item: idx(catalog, id), kind: InteractionKind::Purchase, timestamp_secs: NOW - days_ago * DAY }
    }

    /// The verdict on `id` for one request.
    fn check(catalog: &ItemCatalog, inputs: &RuleInputs, history: &[HistoryEvent], id: &str) -> Result<(), Rejection> {
        RuleFilter::new(catalog, &RulesConfig::default(), inputs, history, NOW).check(idx(catalog, id))
    }

    #[test]
    fn a_just_bought_item_is_excluded_until_a_consumable_is_due_again() {
        let catalog = catalog();
        let inputs = RuleInputs::default();
        assert_eq!(check(&catalog, &inputs, &[bought(&catalog, "coffee", 10)], "coffee"), Err(Rejection::JustBought));
        assert_eq!(check(&catalog, &inputs, &[bought(&catalog, "coffee", 31)], "coffee"), Ok(()));
        assert_eq!(check(&catalog, &inputs, &[bought(&catalog, "lamp", 400)], "lamp"), Err(Rejection::JustBought));
        assert_eq!(check(&catalog, &inputs, &[], "coffee"), Ok(()));
    }

    #[test]
    fn a_durable_purchase_suppresses_its_category_for_the_configured_time() {
        let catalog = catalog();
        let inputs = RuleInputs::default();
        let recent = [bought(&catalog, "mattress", 20)];
        assert_eq!(check(&catalog, &inputs, &recent, "mattress-2"), Err(Rejection::CategorySuppressed));
        assert_eq!(check(&catalog, &inputs, &recent, "lamp"), Ok(()), "another category of the same root");
        let long_ago = [bought(&catalog, "mattress", 200)];
        assert_eq!(check(&catalog, &inputs, &long_ago, "mattress-2"), Ok(()));
        assert_eq!(check(&catalog, &inputs, &long_ago, "mattress"), Err(Rejection::JustBought));
    }

    #[test]
    fn out_of_stock_items_are_excluded_by_catalogue_or_live_stock() {
        let catalog = catalog();
        assert_eq!(check(&catalog, &RuleInputs::default(), &[], "tent"), Err(Rejection::OutOfStock));
        let lamp = [idx(&catalog, "lamp")];
        let inputs = RuleInputs { out_of_stock: &lamp, ..RuleInputs::default() };
        assert_eq!(check(&catalog, &inputs, &[], "lamp"), Err(Rejection::OutOfStock));
    }

    #[test]
    fn the_exclude_list_and_the_cart_when_asked_are_left_out() {
        let catalog = catalog();
        let lamp = [idx(&catalog, "lamp")];
        let excluded = RuleInputs { exclude: &lamp, ..RuleInputs::default() };
        assert_eq!(check(&catalog, &excluded, &[], "lamp"), Err(Rejection::Excluded));
        let in_cart = RuleInputs { cart: &lamp, exclude_cart: true, ..RuleInputs::default() };
        assert_eq!(check(&catalog, &in_cart, &[], "lamp"), Err(Rejection::InCart));
        let cart_allowed = RuleInputs { cart: &lamp, exclude_cart: false, ..RuleInputs::default() };
        assert_eq!(check(&catalog, &cart_allowed, &[], "lamp"), Ok(()));
    }

    #[test]
    fn sensitive_categories_are_hidden_in_shared_contexts_only() {
        let catalog = catalog();
        let shared = RuleInputs { shared_context: true, ..RuleInputs::default() };
        assert_eq!(check(&catalog, &shared, &[], "vitamins"), Err(Rejection::Sensitive));
        assert_eq!(check(&catalog, &shared, &[], "lamp"), Ok(()));
        assert_eq!(check(&catalog, &RuleInputs::default(), &[], "vitamins"), Ok(()));
    }

    #[test]
    fn business_filters_keep_a_category_prefix_and_a_price_range() {
        let catalog = catalog();
        let filter =
            BusinessFilter { category: Some("home > lighting".into()), min_price: Some(50.0), max_price: Some(70.0) };
        let inputs = RuleInputs { filter, ..RuleInputs::default() };
        assert_eq!(check(&catalog, &inputs, &[], "lamp-2"), Ok(()));
        assert_eq!(check(&catalog, &inputs, &[], "lamp"), Err(Rejection::Filtered), "too cheap");
        assert_eq!(check(&catalog, &inputs, &[], "lamp-3"), Err(Rejection::Filtered), "too dear");
        assert_eq!(check(&catalog, &inputs, &[], "mattress-2"), Err(Rejection::Filtered), "other category");
        let root_only = RuleInputs {
            filter: BusinessFilter { category: Some("Home".into()), ..BusinessFilter::default() },
            ..RuleInputs::default()
        };
        assert_eq!(check(&catalog, &root_only, &[], "mattress-2"), Ok(()));
    }

    #[test]
    fn diversity_caps_items_per_category() {
        let catalog = catalog();
        let inputs = RuleInputs { max_per_category: Some(2), ..RuleInputs::default() };
        let mut filter = RuleFilter::new(&catalog, &RulesConfig::default(), &inputs, &[], NOW);
        assert_eq!(filter.admit(idx(&catalog, "lamp")), Ok(()));
        assert_eq!(filter.admit(idx(&catalog, "lamp-2")), Ok(()));
        assert_eq!(filter.admit(idx(&catalog, "lamp-3")), Err(Rejection::CategoryFull));
        assert_eq!(filter.admit(idx(&catalog, "mattress-2")), Ok(()));
    }
}
