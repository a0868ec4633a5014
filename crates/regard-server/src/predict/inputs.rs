//! What the predictive models read from the event log: each person's orders (day, amount in
//! the base currency, whether a coupon or discount applied, the categories bought), their email
//! opens and clicks (for send time), and their product views, cart adds and purchases by catalog
//! category (for propensity).
//!
//! Categories are the catalog's leaf categories; a category whose path is sensitive under the
//! segment policy (health, pregnancy and baby...) is left out before any model sees it.

use regard_content::money::ExchangeRates;
use regard_core::facts::ProfileId;
use regard_core::live::LiveState;
use regard_core::segments::policy::{sensitive_category_path, PolicyConfig};
use regard_models::propensity::ActivityKind;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::Value;

/// The event names the models read.
pub const PREDICTIVE_EVENTS: [&str; 5] =
    ["Order Completed", "Product Viewed", "Product Added", "Email Opened", "Email Link Clicked"];

/// One order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// When (Unix ms).
    pub at_ms: i64,
    /// Its revenue and currency as sent, when it had one.
    pub amount: Option<(f64, Option<String>)>,
    /// Whether a coupon or a discount applied.
    pub discounted: bool,
}

/// Everything the models read about one person.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonInputs {
    /// Orders, in log order.
    pub orders: Vec<Order>,
    /// Email opens and clicks (Unix ms).
    pub engagement_ms: Vec<i64>,
    /// Views, cart adds and purchases: (Unix ms, category index, kind).
    pub activities: Vec<(i64, u32, ActivityKind)>,
    /// The time zone of their latest event that named one.
    pub timezone: Option<String>,
}

/// A category left out of the models, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExcludedCategory {
    /// The category.
    pub category: String,
    /// The sensitive category it falls in.
    pub sensitive_category: &'static str,
    /// What matched.
    pub reason: String,
}

/// Product ids to leaf-category indices, from the catalog.
#[derive(Debug, Clone, Default)]
pub struct CategoryMap {
    by_product: FxHashMap<String, Option<u32>>,
    by_name: FxHashMap<String, Option<u32>>,
    /// The categories models may use, by index.
    pub names: Vec<String>,
    /// The categories they may not, with the reason.
    pub excluded: Vec<ExcludedCategory>,
}

impl CategoryMap {
    /// The catalog's categories, sensitive ones marked out.
    pub fn from_live(live: &LiveState, policy: &PolicyConfig) -> CategoryMap {
        let mut map = CategoryMap::default();
        for product in live.products() {
            let index = map.category_of_path(&product.category_path, policy);
            map.by_product.insert(product.id.clone(), index);
        }
        map
    }

    fn category_of_path(&mut self, path: &[String], policy: &PolicyConfig) -> Option<u32> {
        let leaf = path.last()?.trim();
        if leaf.is_empty() {
            return None;
        }
        if let Some(known) = self.by_name.get(leaf) {
            return *known;
        }
        let index = match sensitive_category_path(path, policy) {
            Some((category, reason)) => {
                self.excluded.push(ExcludedCategory {
                    category: leaf.to_owned(),
                    sensitive_category: category.as_str(),
                    reason,
                });
                None
            }
            None => {
                self.names.push(leaf.to_owned());
                Some((self.names.len() - 1) as u32)
            }
        };
        self.by_name.insert(leaf.to_owned(), index);
        index
    }

    /// The category of a product (by catalog id), else of the event's own `category`
    /// property; `None` for an unknown or sensitive one.
    fn category(&mut self, product: &Value, policy: &PolicyConfig) -> Option<u32> {
        if let Some(id) = id_text(product.get("product_id")) {
            if let Some(known) = self.by_product.get(&id) {
                return *known;
            }
        }
        let text = product.get("category").and_then(Value::as_str)?;
        let path: Vec<String> = text.split('>').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        self.category_of_path(&path, policy)
    }
}

fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|v: &f64| v.is_finite())
}

/// Folds one stored event into a person's inputs.
pub fn read_event(
    inputs: &mut PersonInputs,
    categories: &mut CategoryMap,
    policy: &PolicyConfig,
    name: &str,
    at_ms: i64,
    raw: &str,
) {
    let Ok(message) = serde_json::from_str::<Value>(raw) else { return };
    if let Some(zone) = message.pointer("/context/timezone").and_then(Value::as_str).filter(|z| !z.is_empty()) {
        if inputs.timezone.as_deref() != Some(zone) {
            inputs.timezone = Some(zone.to_owned());
        }
    }
    let properties = &message["properties"];
    match name {
        "Email Opened" | "Email Link Clicked" => inputs.engagement_ms.push(at_ms),
        "Product Viewed" | "Product Added" => {
            let kind = if name == "Product Added" { ActivityKind::Cart } else { ActivityKind::View };
            if let Some(category) = categories.category(properties, policy) {
                inputs.activities.push((at_ms, category, kind));
            }
        }
        "Order Completed" => {
            let revenue = number(properties.get("revenue")).or_else(|| number(properties.get("total")));
            let lines = properties.get("products").and_then(Value::as_array);
            let from_lines = lines.map(|lines| {
                lines
                    .iter()
                    .map(|l| number(l.get("price")).unwrap_or(0.0) * number(l.get("quantity")).unwrap_or(1.0))
                    .sum::<f64>()
            });
            let amount = revenue.or(from_lines.filter(|v| *v > 0.0)).filter(|v| *v >= 0.0);
            let currency = properties.get("currency").and_then(Value::as_str).map(|c| c.trim().to_ascii_uppercase());
            let coupon = properties.get("coupon").and_then(Value::as_str).is_some_and(|c| !c.trim().is_empty());
            let discount = number(properties.get("discount")).is_some_and(|d| d > 0.0);
            inputs.orders.push(Order { at_ms, amount: amount.map(|a| (a, currency)), discounted: coupon || discount });
            let mut seen: Vec<u32> = Vec::new();
            for line in lines.into_iter().flatten() {
                if let Some(category) = categories.category(line, policy) {
                    if !seen.contains(&category) {
                        seen.push(category);
                        inputs.activities.push((at_ms, category, ActivityKind::Purchase));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Every person's inputs, from one pass over the log, filed under canonical profiles.
pub fn read_everyone(
    engine: &regard_store::Engine,
    policy: &PolicyConfig,
) -> Result<(FxHashMap<ProfileId, PersonInputs>, CategoryMap), String> {
    let mut categories = CategoryMap::from_live(&engine.state(), policy);
    let names: Vec<String> = PREDICTIVE_EVENTS.iter().map(|s| (*s).to_owned()).collect();
    let mut by_stored: FxHashMap<ProfileId, PersonInputs> = FxHashMap::default();
    engine
        .reader()
        .scan_events(&names, &mut |profile, name, at_ms, raw| {
            let inputs = by_stored.entry(profile).or_default();
            read_event(inputs, &mut categories, policy, name.unwrap_or(""), at_ms, raw);
        })
        .map_err(|e| format!("reading events: {e}"))?;
    // Merged profiles count as one person.
    let live = engine.state();
    let mut people: FxHashMap<ProfileId, PersonInputs> = FxHashMap::default();
    for (stored, inputs) in by_stored {
        let person = people.entry(live.canonical(stored)).or_default();
        if person.orders.is_empty() && person.engagement_ms.is_empty() && person.activities.is_empty() {
            *person = inputs;
        } else {
            person.orders.extend(inputs.orders);
            person.engagement_ms.extend(inputs.engagement_ms);
            person.activities.extend(inputs.activities);
            if inputs.timezone.is_some() {
                person.timezone = inputs.timezone;
            }
        }
    }
    for person in people.values_mut() {
        person.orders.sort_by_key(|o| o.at_ms);
    }
    Ok((people, categories))
}

/// One person's inputs, read from their own events (after a purchase).
pub fn read_person(
    engine: &regard_store::Engine,
    policy: &PolicyConfig,
    categories: &CategoryMap,
    profile: ProfileId,
) -> Result<PersonInputs, String> {
    let seqs: Vec<u64> = {
        let live = engine.state();
        let mut seqs: Vec<u64> = live
            .member_ids(live.canonical(profile))
            .into_iter()
            .filter_map(|id| live.profile(id))
            .flat_map(|p| p.timeline.iter().map(|e| e.seq))
            .collect();
        seqs.sort_unstable();
        seqs
    };
    let mut categories = categories.clone();
    let mut inputs = PersonInputs::default();
    for chunk in seqs.chunks(500) {
        let events = engine.reader().events_by_seq(chunk).map_err(|e| format!("reading events: {e}"))?;
        for event in events {
            let name = event.name.as_deref().unwrap_or("");
            if PREDICTIVE_EVENTS.contains(&name) {
                read_event(&mut inputs, &mut categories, policy, name, event.timestamp_ms, &event.raw);
            }
        }
    }
    inputs.orders.sort_by_key(|o| o.at_ms);
    Ok(inputs)
}

/// The currency amounts are compared in: the exchange-rate table's base, else the most common
/// order currency.
pub fn base_currency(people: &FxHashMap<ProfileId, PersonInputs>, rates: Option<&ExchangeRates>) -> Option<String> {
    if let Some(rates) = rates {
        return Some(rates.base.clone());
    }
    let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
    for order in people.values().flat_map(|p| &p.orders) {
        if let Some((_, Some(currency))) = &order.amount {
            *counts.entry(currency.as_str()).or_default() += 1;
        }
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0))).map(|(c, _)| c.to_owned())
}

/// An order's amount in the base currency; `None` when it has none or cannot be converted.
pub fn amount_in(order: &Order, base: Option<&str>, rates: Option<&ExchangeRates>) -> Option<f64> {
    let (amount, currency) = order.amount.as_ref()?;
    match (currency.as_deref(), base) {
        (None, _) | (_, None) => Some(*amount),
        (Some(from), Some(to)) if from == to => Some(*amount),
        (Some(from), Some(to)) => rates?.convert(*amount, from, to),
    }
}
