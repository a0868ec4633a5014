//! The raw facts recommendations learn from: who did what with which item, and when.
//!
//! Users and items arrive as the operator's string ids and are interned into dense `u32`
//! indices ([`UserIdx`], [`ItemIdx`]) once, at the edge, so every model below works on
//! arrays indexed by position. [`InteractionLog`] holds the interactions with the per-item
//! catalogue data ([`ItemMeta`]) and the per-user country. The CSV readers here take any
//! reader or string and report a bad row by its line number; they are the only parsing this
//! crate does.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use regard_core::catalog::Durability;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::RecsError;

/// A dense item index: the position of an item in the model's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemIdx(pub u32);

/// A dense user index: the position of a user in the model's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserIdx(pub u32);

/// A dense category index: one full category path (`Home > Bedroom > Mattresses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CategoryIdx(pub u32);

impl ItemIdx {
    /// The index as a `usize`, for indexing arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl UserIdx {
    /// The index as a `usize`, for indexing arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case (`DE`), parsed once at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses two ASCII letters in any case.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.trim().as_bytes();
        match bytes {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(CountryCode([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// The code itself (`DE`).
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// The English name shown in explanations ("Popular in Germany this week"), for the
    /// countries a shop most often sells to; `None` for the others, which explanations then
    /// name by code.
    pub fn english_name(&self) -> Option<&'static str> {
        COUNTRY_NAMES.iter().find(|(code, _)| *code == self.as_str()).map(|(_, name)| *name)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CountryCode::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a two-letter country code")))
    }
}

/// Names of common countries for explanations; a country missing here is named by its code.
const COUNTRY_NAMES: &[(&str, &str)] = &[
    ("AR", "Argentina"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("BE", "Belgium"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("CL", "Chile"),
    ("CN", "China"),
    ("CO", "Colombia"),
    ("CZ", "the Czech Republic"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("EG", "Egypt"),
    ("ES", "Spain"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("GB", "the United Kingdom"),
    ("GR", "Greece"),
    ("HK", "Hong Kong"),
    ("HU", "Hungary"),
    ("ID", "Indonesia"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IN", "India"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("KR", "South Korea"),
    ("MX", "Mexico"),
    ("MY", "Malaysia"),
    ("NG", "Nigeria"),
    ("NL", "the Netherlands"),
    ("NO", "Norway"),
    ("NZ", "New Zealand"),
    ("PH", "the Philippines"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("RO", "Romania"),
    ("SA", "Saudi Arabia"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("TH", "Thailand"),
    ("TR", "Turkey"),
    ("TW", "Taiwan"),
    ("UA", "Ukraine"),
    ("AE", "the United Arab Emirates"),
    ("US", "the United States"),
    ("VN", "Vietnam"),
    ("ZA", "South Africa"),
];

/// What a person did with an item. The order is the strength of the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    /// Looked at the product page.
    View,
    /// Put it in the cart.
    Cart,
    /// Bought it.
    Purchase,
}

impl InteractionKind {
    /// The kind as written in CSV files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            InteractionKind::View => "view",
            InteractionKind::Cart => "cart",
            InteractionKind::Purchase => "purchase",
        }
    }

    /// Reads a kind from the short names (`view`, `cart`, `purchase`) or the Segment e-commerce
    /// event names (`Product Viewed`, `Product Added`, `Order Completed`...).
    pub fn parse(text: &str) -> Option<Self> {
        let lowered = text.trim().to_ascii_lowercase().replace(['_', '-'], " ");
        match lowered.as_str() {
            "view" | "viewed" | "product viewed" | "product clicked" | "detail" | "click" => {
                Some(InteractionKind::View)
            }
            "cart" | "add to cart" | "addtocart" | "product added" | "added" => Some(InteractionKind::Cart),
            "purchase" | "purchased" | "buy" | "order completed" | "transaction" | "order" => {
                Some(InteractionKind::Purchase)
            }
            _ => None,
        }
    }
}

impl FromStr for InteractionKind {
    type Err = RecsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        InteractionKind::parse(text)
            .ok_or_else(|| RecsError::config("kind", format!("`{text}` is not one of view, cart, purchase")))
    }
}

/// How much each kind of interaction counts towards an item's strength for a user.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KindWeights {
    /// Weight of a view.
    pub view: f32,
    /// Weight of an add to cart.
    pub cart: f32,
    /// Weight of a purchase.
    pub purchase: f32,
}

impl Default for KindWeights {
    /// A purchase says more than a cart, which says more than a view; the ratios are the
    /// usual 1 : 2 : 4 of e-commerce recommenders and are worth tuning by offline evaluation.
    fn default() -> Self {
        KindWeights { view: 1.0, cart: 2.0, purchase: 4.0 }
    }
}

impl KindWeights {
    /// The weight of one interaction kind.
    pub fn of(&self, kind: InteractionKind) -> f32 {
        match kind {
            InteractionKind::View => self.view,
            InteractionKind::Cart => self.cart,
            InteractionKind::Purchase => self.purchase,
        }
    }
}

/// One interaction: the unit every model here is trained on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    /// Who.
    pub user: UserIdx,
    /// Which item.
    pub item: ItemIdx,
    /// What they did.
    pub kind: InteractionKind,
    /// When, in Unix seconds.
    pub timestamp_secs: i64,
    /// A multiplier on the kind's weight (1 for a plain event; a quantity or a rating may go here).
    pub weight: f32,
}

/// A string-id ↔ dense-index table: ids get indices 0, 1, 2... in the order they are first seen.
#[derive(Debug, Clone, Default)]
pub struct Interner {
    keys: Vec<String>,
    index: FxHashMap<String, u32>,
}

impl Interner {
    /// The index of `key`, assigning the next one if it is new.
    pub fn intern(&mut self, key: &str) -> u32 {
        if let Some(&idx) = self.index.get(key) {
            return idx;
        }
        let idx = self.keys.len() as u32;
        self.keys.push(key.to_owned());
        self.index.insert(key.to_owned(), idx);
        idx
    }

    /// The index of `key`, if known.
    pub fn get(&self, key: &str) -> Option<u32> {
        self.index.get(key).copied()
    }

    /// The id at `idx`. Panics on an index this interner never gave out.
    pub fn key(&self, idx: u32) -> &str {
        &self.keys[idx as usize]
    }

    /// All ids in index order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The number of ids.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no id was interned.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Heap bytes held (ids twice: once in the list, once as map keys), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.keys.iter().map(|k| k.capacity() + std::mem::size_of::<String>()).sum();
        strings * 2 + self.index.capacity() * std::mem::size_of::<u32>()
    }
}

/// What the catalogue says about an item, as far as recommendations need it. Everything is
/// optional: an item seen only in interactions gets the defaults (in stock, durability unknown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemMeta {
    /// Display name, for explanations ("Customers who bought the French press ...").
    pub title: Option<String>,
    /// Category path from the root, e.g. `["Home", "Bedroom", "Mattresses"]`.
    pub category_path: Vec<String>,
    /// Price in the catalogue's currency.
    pub price: Option<f64>,
    /// Whether it can be bought now (at training time; serving passes live stock as a rule input).
    pub in_stock: bool,
    /// Durable (suppresses its category after a purchase) or consumable (invites a reorder).
    pub durability: Durability,
    /// For a consumable, the typical time between two purchases by one person.
    pub reorder_interval_secs: Option<i64>,
    /// A sensitive product (health, intimacy...) never shown in a shared context such as email.
    pub sensitive: bool,
    /// The market the item is sold in, when the shop is split by country.
    pub country: Option<CountryCode>,
    /// Further attributes (brand, colour, roast...), compared by content similarity.
    pub attributes: Vec<(String, String)>,
}

impl Default for ItemMeta {
    fn default() -> Self {
        ItemMeta {
            title: None,
            category_path: Vec::new(),
            price: None,
            in_stock: true,
            durability: Durability::Unknown,
            reorder_interval_secs: None,
            sensitive: false,
            country: None,
            attributes: Vec::new(),
        }
    }
}

impl ItemMeta {
    /// The catalogue product as recommendations see it, so that serving converts the store's
    /// catalog without knowing this crate's internals.
    pub fn from_product(product: &regard_core::catalog::Product) -> Self {
        let attributes = product
            .attributes
            .iter()
            .filter_map(|(key, value)| match value {
                serde_json::Value::String(s) => Some((key.clone(), s.clone())),
                serde_json::Value::Number(n) => Some((key.clone(), n.to_string())),
                serde_json::Value::Bool(b) => Some((key.clone(), b.to_string())),
                _ => None,
            })
            .collect();
        ItemMeta {
            title: Some(product.name.clone()),
            category_path: product.category_path.clone(),
            price: product.price,
            in_stock: product.in_stock,
            durability: product.durability,
            attributes,
            ..ItemMeta::default()
        }
    }

    /// The path joined for display and as the category's key (`Home > Bedroom`).
    pub fn category_key(&self) -> Option<String> {
        (!self.category_path.is_empty()).then(|| self.category_path.join(" > "))
    }
}

/// Interactions with their users, items, item metadata and user countries: the input of training.
#[derive(Debug, Clone, Default)]
pub struct InteractionLog {
    /// User ids ↔ indices.
    pub users: Interner,
    /// Item ids ↔ indices.
    pub items: Interner,
    /// The interactions, in any order.
    pub interactions: Vec<Interaction>,
    /// Catalogue data per item index (same length as `items`).
    pub item_meta: Vec<ItemMeta>,
    /// Country per user index (same length as `users`).
    pub user_country: Vec<Option<CountryCode>>,
}

impl InteractionLog {
    /// An empty log.
    pub fn new() -> Self {
        InteractionLog::default()
    }

    /// The index of item `key`, adding it with default metadata if new.
    pub fn item(&mut self, key: &str) -> ItemIdx {
        let idx = self.items.intern(key);
        if idx as usize == self.item_meta.len() {
            self.item_meta.push(ItemMeta::default());
        }
        ItemIdx(idx)
    }

    /// The index of user `key`, adding it if new.
    pub fn user(&mut self, key: &str) -> UserIdx {
        let idx = self.users.intern(key);
        if idx as usize == self.user_country.len() {
            self.user_country.push(None);
        }
        UserIdx(idx)
    }

    /// Records one interaction by string ids.
    pub fn push(&mut self, user: &str, item: &str, kind: InteractionKind, timestamp_secs: i64, weight: f32) {
        let user = self.user(user);
        let item = self.item(item);
        self.interactions.push(Interaction { user, item, kind, timestamp_secs, weight });
    }

    /// Sets (or replaces) an item's catalogue data, adding the item if new.
    pub fn set_item_meta(&mut self, key: &str, meta: ItemMeta) -> ItemIdx {
        let item = self.item(key);
        self.item_meta[item.index()] = meta;
        item
    }

    /// Sets a user's country, adding the user if new.
    pub fn set_user_country(&mut self, key: &str, country: CountryCode) {
        let user = self.user(key);
        self.user_country[user.index()] = Some(country);
    }

    /// The number of users.
    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    /// The number of items (with or without interactions).
    pub fn n_items(&self) -> usize {
        self.items.len()
    }
}

/// Reads a timestamp as Unix seconds (an integer or a decimal), an ISO-8601 instant
/// (`2024-03-01T12:00:00Z`, with any offset), or a civil date-time or date taken as UTC.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs.is_finite().then(|| secs.floor() as i64);
    }
    if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        return Some(instant.as_second());
    }
    if let Ok(civil) = text.parse::<jiff::civil::DateTime>() {
        return civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_second());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_second());
    }
    None
}

/// Which columns of an interactions CSV are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InteractionColumns {
    /// Only `user_id,item_id,timestamp`; every other column is ignored (the `regard eval recs`
    /// protocol, where each user–item pair counts once whatever happened).
    Protocol,
    /// Also the optional `kind` (or `event`, `event_type`), `weight` and `country` columns.
    WithKindWeightCountry,
}

/// Reads an interactions CSV with a header naming at least `user_id,item_id,timestamp` (in any
/// order; extra columns are ignored unless `columns` asks for them) into `log`, and returns the
/// number of rows read. Rows without a kind are purchases of weight 1. A bad row stops the read
/// with its 1-based line number.
pub fn read_interactions_csv<R: Read>(
    reader: R,
    columns: InteractionColumns,
    log: &mut InteractionLog,
) -> Result<usize, RecsError> {
    let mut csv_reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(reader);
    let headers = csv_reader.headers().map_err(csv_error)?.clone();
    let find = |names: &[&str]| headers.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)));
    let found = || headers.iter().collect::<Vec<_>>().join(",");
    let user_col =
        find(&["user_id", "user"]).ok_or_else(|| RecsError::MissingColumn { column: "user_id", found: found() })?;
    let item_col = find(&["item_id", "item", "product_id"])
        .ok_or_else(|| RecsError::MissingColumn { column: "item_id", found: found() })?;
    let time_col = find(&["timestamp", "time", "ts"])
        .ok_or_else(|| RecsError::MissingColumn { column: "timestamp", found: found() })?;
    let (kind_col, weight_col, country_col) = match columns {
        InteractionColumns::Protocol => (None, None, None),
        InteractionColumns::WithKindWeightCountry => {
            (find(&["kind", "event", "event_type"]), find(&["weight"]), find(&["country"]))
        }
    };
    let mut record = csv::StringRecord::new();
    let mut rows = 0;
    loop {
        match csv_reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        let cell = |col: usize, name: &str| -> Result<&str, RecsError> {
            match record.get(col) {
                Some(value) if !value.is_empty() => Ok(value),
                _ => Err(RecsError::InvalidRow { line, message: format!("`{name}` is empty or missing") }),
            }
        };
        let user = cell(user_col, "user_id")?;
        let item = cell(item_col, "item_id")?;
        let time_text = cell(time_col, "timestamp")?;
        let timestamp_secs = parse_timestamp(time_text).ok_or_else(|| RecsError::InvalidRow {
            line,
            message: format!("`timestamp` {time_text:?} is neither Unix seconds nor ISO-8601"),
        })?;
        let kind = match kind_col.and_then(|c| record.get(c)).filter(|v| !v.is_empty()) {
            None => InteractionKind::Purchase,
            Some(text) => InteractionKind::parse(text).ok_or_else(|| RecsError::InvalidRow {
                line,
                message: format!("`kind` {text:?} is not one of view, cart, purchase"),
            })?,
        };
        let weight = match weight_col.and_then(|c| record.get(c)).filter(|v| !v.is_empty()) {
            None => 1.0,
            Some(text) => match text.parse::<f32>() {
                Ok(w) if w.is_finite() && w >= 0.0 => w,
                _ => {
                    return Err(RecsError::InvalidRow {
                        line,
                        message: format!("`weight` {text:?} is not a non-negative number"),
                    })
                }
            },
        };
        if let Some(text) = country_col.and_then(|c| record.get(c)).filter(|v| !v.is_empty()) {
            let country = CountryCode::parse(text).ok_or_else(|| RecsError::InvalidRow {
                line,
                message: format!("`country` {text:?} is not a two-letter code"),
            })?;
            log.set_user_country(user, country);
        }
        log.push(user, item, kind, timestamp_secs, weight);
        rows += 1;
    }
    Ok(rows)
}

/// Reads a catalogue CSV into `log`'s item metadata and returns the number of items read. The
/// header names the columns as `regard import catalog` does: `id` (or `item_id`, `product_id`),
/// and optionally `name` (or `title`), `category` (or `category_path`, `A > B > C`), `price`,
/// `in_stock`, `durability` (`durable`, `consumable`), `reorder_days`, `sensitive`, `country`;
/// any other non-empty column becomes an attribute.
pub fn read_catalog_csv<R: Read>(reader: R, log: &mut InteractionLog) -> Result<usize, RecsError> {
    let mut csv_reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(reader);
    let headers: Vec<String> =
        csv_reader.headers().map_err(csv_error)?.iter().map(|h| h.to_ascii_lowercase()).collect();
    let id_col = headers
        .iter()
        .position(|h| h == "id" || h == "item_id" || h == "product_id")
        .ok_or_else(|| RecsError::MissingColumn { column: "id", found: headers.join(",") })?;
    let mut record = csv::StringRecord::new();
    let mut rows = 0;
    loop {
        match csv_reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        let bad = |message: String| RecsError::InvalidRow { line, message };
        let id = record.get(id_col).filter(|v| !v.is_empty()).ok_or_else(|| bad("`id` is empty or missing".into()))?;
        let mut meta = ItemMeta::default();
        for (col, value) in record.iter().enumerate() {
            if col == id_col || value.is_empty() {
                continue;
            }
            let Some(name) = headers.get(col) else { continue };
            match name.as_str() {
                "name" | "title" => meta.title = Some(value.to_owned()),
                "category" | "category_path" => {
                    meta.category_path = regard_core::catalog::Product::parse_category_path(value)
                }
                "price" => {
                    meta.price = Some(
                        value
                            .parse::<f64>()
                            .ok()
                            .filter(|p| p.is_finite() && *p >= 0.0)
                            .ok_or_else(|| bad(format!("`price` {value:?} is not a non-negative number")))?,
                    )
                }
                "in_stock" => {
                    meta.in_stock =
                        parse_bool(value).ok_or_else(|| bad(format!("`in_stock` {value:?} is not true or false")))?
                }
                "sensitive" => {
                    meta.sensitive =
                        parse_bool(value).ok_or_else(|| bad(format!("`sensitive` {value:?} is not true or false")))?
                }
                "durability" => {
                    meta.durability = match value.to_ascii_lowercase().as_str() {
                        "durable" => Durability::Durable,
                        "consumable" => Durability::Consumable,
                        "unknown" => Durability::Unknown,
                        _ => return Err(bad(format!("`durability` {value:?} is not durable, consumable or unknown"))),
                    }
                }
                "reorder_days" => {
                    let days = value
                        .parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && *d > 0.0)
                        .ok_or_else(|| bad(format!("`reorder_days` {value:?} is not a positive number")))?;
                    meta.reorder_interval_secs = Some((days * 86_400.0) as i64);
                }
                "country" => {
                    meta.country = Some(
                        CountryCode::parse(value)
                            .ok_or_else(|| bad(format!("`country` {value:?} is not a two-letter code")))?,
                    )
                }
                _ => meta.attributes.push((name.clone(), value.to_owned())),
            }
        }
        log.set_item_meta(id, meta);
        rows += 1;
    }
    Ok(rows)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Some(true),
        "false" | "0" | "no" | "n" => Some(false),
        _ => None,
    }
}

fn csv_error(error: csv::Error) -> RecsError {
    let line = error.position().map_or(0, |p| p.line());
    match error.into_kind() {
        csv::ErrorKind::Io(io) => RecsError::Io(io),
        other => RecsError::InvalidRow { line, message: format!("{other:?}") },
    }
}

/// Purchases at time 0, one per `(user, item)` pair: the smallest interaction list unit tests
/// build matrices from.
#[cfg(test)]
pub(crate) fn test_purchases(pairs: &[(u32, u32)]) -> Vec<Interaction> {
    pairs
        .iter()
        .map(|&(user, item)| Interaction {
            user: UserIdx(user),
            item: ItemIdx(item),
            kind: InteractionKind::Purchase,
            timestamp_secs: 0,
            weight: 1.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_unix_seconds_or_iso_8601() {
        let check = |text: &str, expected: Option<i64>| assert_eq!(parse_timestamp(text), expected, "{text}");
        check("881250949", Some(881_250_949));
        check("881250949.75", Some(881_250_949));
        check("2024-03-01T12:00:00Z", Some(1_709_294_400));
        check("2024-03-01T13:00:00+01:00", Some(1_709_294_400));
        check("2024-03-01T12:00:00", Some(1_709_294_400));
        check("2024-03-01", Some(1_709_251_200));
        check("yesterday", None);
        check("", None);
    }

    #[test]
    fn interactions_csv_ignores_extra_columns_and_names_the_bad_line() {
        let mut log = InteractionLog::new();
        let text = "rating,item_id,user_id,timestamp\n5,a,u1,10\n3,b,u1,2024-01-01\n";
        assert_eq!(read_interactions_csv(text.as_bytes(), InteractionColumns::Protocol, &mut log).unwrap(), 2);
        assert_eq!(log.n_users(), 1);
        assert_eq!(log.n_items(), 2);
        assert_eq!(log.interactions[1].timestamp_secs, 1_704_067_200);

        let bad = "user_id,item_id,timestamp\nu1,a,10\nu2,b,soon\n";
        let error = read_interactions_csv(bad.as_bytes(), InteractionColumns::Protocol, &mut InteractionLog::new());
        assert!(matches!(error, Err(RecsError::InvalidRow { line: 3, .. })), "{error:?}");
        let missing = read_interactions_csv("user_id,item\nu,a\n".as_bytes(), InteractionColumns::Protocol, &mut log);
        assert!(matches!(missing, Err(RecsError::MissingColumn { column: "timestamp", .. })), "{missing:?}");
    }

    #[test]
    fn interactions_csv_reads_kinds_weights_and_countries_when_asked() {
        let mut log = InteractionLog::new();
        let text =
            "user_id,item_id,timestamp,event,country,weight\nu1,a,1,Product Viewed,de,\nu1,b,2,Order Completed,DE,2\n";
        read_interactions_csv(text.as_bytes(), InteractionColumns::WithKindWeightCountry, &mut log).unwrap();
        assert_eq!(log.interactions[0].kind, InteractionKind::View);
        assert_eq!(log.interactions[1].kind, InteractionKind::Purchase);
        assert_eq!(log.interactions[1].weight, 2.0);
        assert_eq!(log.user_country[0].map(|c| c.to_string()), Some("DE".to_owned()));
    }

    #[test]
    fn catalog_csv_fills_item_metadata() {
        let mut log = InteractionLog::new();
        let text = "id,name,category,price,durability,brand,reorder_days\nsku-1,French press,Kitchen > Coffee Makers,39.5,durable,Bodum,\nsku-2,Kenya AA,Coffee & Tea > Coffee,12,consumable,,30\n";
        assert_eq!(read_catalog_csv(text.as_bytes(), &mut log).unwrap(), 2);
        let press = &log.item_meta[0];
        assert_eq!(press.category_path, vec!["Kitchen", "Coffee Makers"]);
        assert_eq!(press.durability, Durability::Durable);
        assert_eq!(press.attributes, vec![("brand".to_owned(), "Bodum".to_owned())]);
        assert_eq!(log.item_meta[1].reorder_interval_secs, Some(30 * 86_400));
        let bad = read_catalog_csv("id,price\nx,cheap\n".as_bytes(), &mut log);
        assert!(matches!(bad, Err(RecsError::InvalidRow { line: 2, .. })), "{bad:?}");
    }

    #[test]
    fn country_codes_parse_in_any_case_and_name_common_countries() {
        assert_eq!(CountryCode::parse("de").map(|c| c.english_name()), Some(Some("Germany")));
        assert_eq!(CountryCode::parse("ZZ").map(|c| c.english_name()), Some(None));
        assert_eq!(CountryCode::parse("DEU"), None);
    }
}
