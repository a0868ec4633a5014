//! Serving recommendations: a model trained from the store's own events, held in an `ArcSwap`
//! and swapped whole when a retrain finishes, so queries never wait for training.
//!
//! Interactions come from "Product Viewed" and "Product Added" (`properties.product_id`) and
//! "Order Completed" (`properties.products[].product_id`), filed under each event's profile as it
//! is now (merged profiles count as one person). The catalog gives item names, categories,
//! prices, stock and durability; the `country` trait gives popular-in-country.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use regard_core::facts::ProfileId;
use regard_core::live::PROFILE_ID_PREFIX;
use regard_recs::{CountryCode, HistoryEvent, InteractionKind, InteractionLog, ItemMeta, RecsConfig, RecsModel};
use regard_store::Engine;
use serde::Serialize;
use serde_json::Value;

/// The event names training and history read.
pub const INTERACTION_EVENTS: [&str; 3] = ["Product Viewed", "Product Added", "Order Completed"];

/// What training did last.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrainStatus {
    /// `untrained`, `training`, `ready` or `failed`.
    pub state: &'static str,
    /// When the serving model was trained (Unix ms).
    pub trained_at_ms: Option<i64>,
    /// Interactions, people and items it was trained on.
    pub interactions: u64,
    /// People.
    pub users: usize,
    /// Items.
    pub items: usize,
    /// Seconds spent reading the store.
    pub read_seconds: f64,
    /// Seconds spent training.
    pub train_seconds: f64,
    /// Why the last training failed.
    pub message: Option<String>,
}

/// The serving model and its training status.
#[derive(Default)]
pub struct RecsService {
    model: ArcSwapOption<RecsModel>,
    status: Mutex<TrainStatus>,
    training: Mutex<()>,
}

impl std::fmt::Debug for RecsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecsService").field("status", &*self.status.lock()).finish_non_exhaustive()
    }
}

/// The key a profile is trained under.
pub fn user_key(profile: ProfileId) -> String {
    format!("{PROFILE_ID_PREFIX}{profile}")
}

/// The product ids and the interaction kind of one stored event's JSON.
pub fn products_of(name: &str, raw: &str) -> (InteractionKind, Vec<String>) {
    let kind = match name {
        "Order Completed" => InteractionKind::Purchase,
        "Product Added" => InteractionKind::Cart,
        _ => InteractionKind::View,
    };
    let Ok(message) = serde_json::from_str::<Value>(raw) else { return (kind, Vec::new()) };
    let properties = &message["properties"];
    let id = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut ids: Vec<String> = properties.get("product_id").and_then(id).into_iter().collect();
    if let Some(products) = properties.get("products").and_then(Value::as_array) {
        ids.extend(products.iter().filter_map(|p| p.get("product_id").and_then(id)));
    }
    (kind, ids)
}

impl RecsService {
    /// The model serving now, if one was trained.
    pub fn model(&self) -> Option<Arc<RecsModel>> {
        self.model.load_full()
    }

    /// The training status.
    pub fn status(&self) -> TrainStatus {
        let mut status = self.status.lock().clone();
        if status.state.is_empty() {
            status.state = "untrained";
        }
        status
    }

    /// Gives catalog products the serving model does not know yet neighbours of their own
    /// (content similarity, no retrain) and swaps the extended model in. Serialized with
    /// training, so a retrain in progress finishes first (it reads the catalog itself).
    pub fn add_new_items(&self, products: &[regard_core::catalog::Product]) -> usize {
        let _one_at_a_time = self.training.lock();
        let Some(mut model) = self.model.load_full() else { return 0 };
        let mut added = 0;
        for product in products {
            if model.item_idx(&product.id).is_some() {
                continue;
            }
            match model.with_new_item(&product.id, ItemMeta::from_product(product), &[]) {
                Ok(next) => {
                    model = Arc::new(next);
                    added += 1;
                }
                Err(error) => tracing::warn!(product = %product.id, %error, "could not add a new item to the model"),
            }
        }
        if added > 0 {
            self.model.store(Some(model));
        }
        added
    }

    /// Reads the store and trains a model, then swaps it in. Runs on the caller's thread (a
    /// background thread or the CLI); queries keep using the previous model meanwhile. A second
    /// call while one trains waits for it.
    pub fn train(&self, engine: &Engine, config: RecsConfig, now_ms: i64) -> Result<TrainStatus, String> {
        let _one_at_a_time = self.training.lock();
        self.status.lock().state = "training";
        let result = train_from_store(engine, config);
        let mut status = self.status.lock();
        match result {
            Ok((model, mut report)) => {
                report.trained_at_ms = Some(now_ms);
                report.state = "ready";
                self.model.store(Some(Arc::new(model)));
                *status = report.clone();
                Ok(report)
            }
            Err(message) => {
                status.state = if self.model.load().is_some() { "ready" } else { "failed" };
                status.message = Some(message.clone());
                Err(message)
            }
        }
    }
}

fn train_from_store(engine: &Engine, config: RecsConfig) -> Result<(RecsModel, TrainStatus), String> {
    let started = Instant::now();
    let names: Vec<String> = INTERACTION_EVENTS.iter().map(|s| (*s).to_owned()).collect();
    let mut events: Vec<(ProfileId, InteractionKind, i64, Vec<String>)> = Vec::new();
    engine
        .reader()
        .scan_events(&names, &mut |profile, name, at_ms, raw| {
            let (kind, ids) = products_of(name.unwrap_or(""), raw);
            if !ids.is_empty() {
                events.push((profile, kind, at_ms, ids));
            }
        })
        .map_err(|e| format!("reading events: {e}"))?;
    let mut log = InteractionLog::new();
    let mut interactions = 0u64;
    {
        // The lock is held only to map ids, after the scan.
        let live = engine.state();
        for product in live.products() {
            log.set_item_meta(&product.id, ItemMeta::from_product(product));
        }
        let country = live.symbols.get("country");
        for (profile, kind, at_ms, ids) in &events {
            let canonical = live.canonical(*profile);
            let key = user_key(canonical);
            for id in ids {
                log.push(&key, id, *kind, at_ms.div_euclid(1000), 1.0);
                interactions += 1;
            }
            if let Some(code) = country
                .and_then(|symbol| live.profile(canonical)?.trait_json(symbol))
                .and_then(|json| serde_json::from_str::<String>(json).ok())
                .and_then(|text| CountryCode::parse(&text))
            {
                log.set_user_country(&key, code);
            }
        }
    }
    let read_seconds = started.elapsed().as_secs_f64();
    if interactions == 0 {
        return Err("no product views, cart adds or orders with product ids are stored yet".to_owned());
    }
    let trained = Instant::now();
    let model = RecsModel::train(&log, config).map_err(|e| format!("training: {e}"))?;
    let status = TrainStatus {
        state: "ready",
        trained_at_ms: None,
        interactions,
        users: log.n_users(),
        items: log.n_items(),
        read_seconds,
        train_seconds: trained.elapsed().as_secs_f64(),
        message: None,
    };
    Ok((model, status))
}

/// A person's recent history as the model reads it: the product views, cart adds and
/// purchases the profile keeps in memory (purchases feed the "just bought" rules).
pub fn history_of(model: &RecsModel, profile: &regard_core::profile::Profile) -> Vec<HistoryEvent> {
    use regard_core::profile::ProductAction;
    profile
        .product_events
        .iter()
        .filter_map(|event| {
            let kind = match event.action {
                ProductAction::Viewed => InteractionKind::View,
                ProductAction::Added => InteractionKind::Cart,
                ProductAction::Purchased => InteractionKind::Purchase,
            };
            Some(HistoryEvent {
                item: model.item_idx(&event.product)?,
                kind,
                timestamp_secs: event.at_ms.div_euclid(1000),
            })
        })
        .collect()
}

/// What is in the person's cart now: products added since their latest purchase.
pub fn cart_of(history: &[HistoryEvent]) -> Vec<regard_recs::ItemIdx> {
    let last_purchase = history
        .iter()
        .filter(|e| e.kind == InteractionKind::Purchase)
        .map(|e| e.timestamp_secs)
        .max()
        .unwrap_or(i64::MIN);
    let mut cart: Vec<regard_recs::ItemIdx> = history
        .iter()
        .filter(|e| e.kind == InteractionKind::Cart && e.timestamp_secs > last_purchase)
        .map(|e| e.item)
        .collect();
    cart.sort_unstable_by_key(|item| item.0);
    cart.dedup();
    cart
}

/// Recommendation lists for one decide request: the trained model, the person's history (read
/// before the decision) and the live catalog for the product cards.
pub struct DecisionRecommender<'a> {
    /// The model serving now.
    pub model: &'a RecsModel,
    /// The live state (for product names, prices and links).
    pub live: &'a regard_core::live::LiveState,
    /// The person's recent product events, when they allow personalization.
    pub history: &'a [HistoryEvent],
    /// What is in their cart now (see [`cart_of`]).
    pub cart: &'a [regard_recs::ItemIdx],
    /// The person as a training user.
    pub user: Option<regard_recs::UserIdx>,
    /// The person's (or the request's) country.
    pub country: Option<CountryCode>,
    /// Now, in Unix seconds.
    pub now_secs: i64,
}

impl regard_content::decide::Recommender for DecisionRecommender<'_> {
    fn recommend(
        &self,
        spec: &regard_content::slot::RecommendSpec,
        personal: bool,
        shared_context: bool,
    ) -> Vec<regard_content::template::ProductCard> {
        let generic = regard_content::slot::GENERIC_STRATEGIES;
        let mut strategies: Vec<regard_recs::Strategy> = spec
            .strategy
            .iter()
            .filter(|s| personal || generic.contains(&s.as_str()))
            .filter_map(|s| s.parse().ok())
            .collect();
        if !personal && strategies.is_empty() {
            strategies = vec![regard_recs::Strategy::PopularInCountry, regard_recs::Strategy::Popular];
        }
        let request = regard_recs::RecsRequest {
            history: if personal { self.history } else { &[] },
            user: self.user.filter(|_| personal),
            country: self.country,
            anchor: None,
            now_secs: self.now_secs,
            n: spec.n,
            strategies: &strategies,
            rules: regard_recs::RuleInputs {
                cart: if personal { self.cart } else { &[] },
                exclude_cart: spec.exclude_cart,
                shared_context,
                ..Default::default()
            },
        };
        self.model
            .recommend(&request)
            .into_iter()
            .filter_map(|r| {
                let product = self.live.product(self.model.item_id(r.item))?;
                Some(regard_content::template::ProductCard {
                    id: product.id.clone(),
                    name: product.name.clone(),
                    price: product.price,
                    currency: product.currency.clone(),
                    category: Some(product.category().to_owned()).filter(|c| !c.is_empty()),
                    url: product.url.clone(),
                    image_url: product.image.clone(),
                    explanation: Some(r.explanation),
                    strategy: Some(r.strategy.as_str().to_owned()),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids_come_from_product_id_and_order_lines() {
        let (kind, ids) = products_of("Product Viewed", r#"{"properties": {"product_id": "sku-1"}}"#);
        assert_eq!((kind, ids), (InteractionKind::View, vec!["sku-1".to_owned()]));
        let order = r#"{"properties": {"order_id": "o", "products": [{"product_id": "a"}, {"product_id": 7}, {}]}}"#;
        assert_eq!(products_of("Order Completed", order), (InteractionKind::Purchase, vec!["a".into(), "7".into()]));
        assert_eq!(products_of("Product Added", "not json").1, Vec::<String>::new());
        assert_eq!(products_of("Product Added", r#"{"properties": {"product_id": ""}}"#).1, Vec::<String>::new());
    }

    #[test]
    fn the_cart_is_what_was_added_since_the_last_purchase() {
        let event =
            |item: u32, kind, timestamp_secs| HistoryEvent { item: regard_recs::ItemIdx(item), kind, timestamp_secs };
        let history = [
            event(1, InteractionKind::Cart, 10),
            event(1, InteractionKind::Purchase, 20),
            event(2, InteractionKind::Cart, 30),
            event(3, InteractionKind::View, 40),
            event(2, InteractionKind::Cart, 50),
            event(4, InteractionKind::Cart, 60),
        ];
        assert_eq!(cart_of(&history), vec![regard_recs::ItemIdx(2), regard_recs::ItemIdx(4)]);
        assert!(cart_of(&history[..2]).is_empty());
    }
}
