//! Testing one event against the event matches that saved segments count, cheaply: read only
//! the properties some match looks at, work out the catalog categories the event is about once,
//! and only when a match asks for a category.
//!
//! The writer runs this for every stored event whose name a segment counts, and a backfill runs
//! it over the stored history on other threads; both must match events the same way, so both
//! go through [`NameMatches`].

use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashMap;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::definition::EventMatch;
use crate::catalog::Product;

/// Where the category of an event's `product_id` comes from: the live catalog, or a copy of its
/// category paths taken for a backfill.
pub trait CategoryLookup {
    /// The category path of a product, when the catalog knows it.
    fn category_path(&self, product_id: &str) -> Option<&[String]>;
}

impl CategoryLookup for FxHashMap<String, Vec<String>> {
    fn category_path(&self, product_id: &str) -> Option<&[String]> {
        self.get(product_id).map(Vec::as_slice)
    }
}

/// The properties a category needs: the product, its category, and the items of an order.
const CATEGORY_KEYS: [&str; 3] = ["product_id", "category", "products"];

/// One registered match of a name, with its category path parsed once.
#[derive(Debug, Clone)]
struct NamedMatch {
    number: u32,
    event: EventMatch,
    /// The wanted category path, when the match names one (empty: it can never match).
    category_path: Option<Vec<String>>,
}

/// Every event match of one event name, prepared for testing events of that name.
#[derive(Debug, Clone, Default)]
pub struct NameMatches {
    entries: Vec<NamedMatch>,
    keys: Vec<String>,
}

/// The properties of one event that its name's matches read, borrowed from the event's JSON
/// text: nothing is built for properties no match reads, nor for strings without escapes.
#[derive(Debug, Default)]
pub struct EventProperties<'a> {
    values: Vec<(&'a str, &'a RawValue)>,
}

impl<'a> EventProperties<'a> {
    /// A property's JSON text, if the event has it.
    pub fn raw(&self, key: &str) -> Option<&'a RawValue> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// A property's value, built on demand (filters compare values).
    pub fn value(&self, key: &str) -> Option<Value> {
        self.raw(key).and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// A string property, borrowed when it has no escapes; `None` when absent or not a string.
    pub fn text(&self, key: &str) -> Option<Cow<'a, str>> {
        let raw = self.raw(key)?.get();
        match serde_json::from_str::<&'a str>(raw) {
            Ok(text) => Some(Cow::Borrowed(text)),
            Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
        }
    }

    /// How many properties were kept.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl NameMatches {
    /// Adds a match (whose name is this one's) under its number.
    pub fn add(&mut self, number: u32, event: EventMatch) {
        let category_path = event.category.as_deref().map(Product::parse_category_path);
        for filter in &event.filters {
            if !self.keys.contains(&filter.property) {
                self.keys.push(filter.property.clone());
            }
        }
        if category_path.is_some() {
            for key in CATEGORY_KEYS {
                if !self.keys.iter().any(|k| k == key) {
                    self.keys.push(key.to_owned());
                }
            }
        }
        self.entries.push(NamedMatch { number, event, category_path });
    }

    /// The match numbers, in the order they were added.
    pub fn numbers(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|e| e.number)
    }

    /// Whether no match is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes a match (no saved segment counts it any more).
    pub fn remove(&mut self, number: u32) {
        let entries = std::mem::take(&mut self.entries);
        self.keys.clear();
        for entry in entries.into_iter().filter(|e| e.number != number) {
            self.add(entry.number, entry.event);
        }
    }

    /// Every match: (number, what it matches).
    pub fn matches(&self) -> impl Iterator<Item = (u32, &EventMatch)> + '_ {
        self.entries.iter().map(|e| (e.number, &e.event))
    }

    /// The registered match with this number.
    pub fn find(&self, event: &EventMatch) -> Option<u32> {
        self.entries.iter().find(|e| e.event == *event).map(|e| e.number)
    }

    /// Whether testing an event needs its properties at all (a bare "Order Completed" does not).
    pub fn reads_properties(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Reads the properties the matches look at from a `properties` object's JSON text,
    /// skipping the others. Text that is not an object reads as none.
    pub fn read_properties<'a>(&'a self, properties_json: &'a str) -> EventProperties<'a> {
        if self.keys.is_empty() {
            return EventProperties::default();
        }
        let mut deserializer = serde_json::Deserializer::from_str(properties_json);
        PickedMap(&self.keys).deserialize(&mut deserializer).unwrap_or_default()
    }

    /// [`NameMatches::read_properties`] from a whole stored message: only its `properties`
    /// member is read, the rest is skipped.
    pub fn read_message_properties<'a>(&'a self, message_json: &'a str) -> EventProperties<'a> {
        if self.keys.is_empty() {
            return EventProperties::default();
        }
        let mut deserializer = serde_json::Deserializer::from_str(message_json);
        MessageProperties(&self.keys).deserialize(&mut deserializer).ok().flatten().unwrap_or_default()
    }

    /// Appends to `out` the number of every match an event of this name with these properties
    /// satisfies.
    pub fn matched(&self, properties: &EventProperties<'_>, catalog: &dyn CategoryLookup, out: &mut Vec<u32>) {
        // The event's own category, and its items', are worked out once, and only if some
        // match asks for a category.
        let mut own: Option<PathRef<'_>> = None;
        let mut items: Option<Option<Value>> = None;
        for entry in &self.entries {
            if !entry.event.filters.iter().all(|f| f.matches_value(properties.value(&f.property).as_ref())) {
                continue;
            }
            if let Some(wanted) = &entry.category_path {
                let own = own.get_or_insert_with(|| own_path(properties, catalog));
                if !own.contains(wanted) {
                    let items = items.get_or_insert_with(|| properties.value("products"));
                    if !items_contain(items.as_ref(), wanted, catalog) {
                        continue;
                    }
                }
            }
            out.push(entry.number);
        }
    }
}

/// Where an event's own category path comes from.
enum PathRef<'a> {
    /// The catalog's path of its `product_id`.
    Catalog(&'a [String]),
    /// Its `category` property, as written ("Sports > Running Shoes"), split once.
    Text(Vec<Cow<'a, str>>),
    /// Neither.
    Unknown,
}

impl PathRef<'_> {
    fn contains(&self, wanted: &[String]) -> bool {
        match self {
            PathRef::Catalog(path) => path_contains(path, wanted),
            PathRef::Text(path) => path_contains(path, wanted),
            PathRef::Unknown => false,
        }
    }
}

fn own_path<'a>(properties: &EventProperties<'a>, catalog: &'a dyn CategoryLookup) -> PathRef<'a> {
    if let Some(path) = properties.text("product_id").and_then(|id| catalog.category_path(&id)) {
        return PathRef::Catalog(path);
    }
    match properties.text("category") {
        // The same reading as `Product::parse_category_path`, borrowing the segments.
        Some(Cow::Borrowed(text)) => PathRef::Text(split_path(text).map(Cow::Borrowed).collect()),
        Some(Cow::Owned(text)) => PathRef::Text(split_path(&text).map(|s| Cow::Owned(s.to_owned())).collect()),
        None => PathRef::Unknown,
    }
}

/// The segments of a category as written, as [`Product::parse_category_path`] reads them.
fn split_path(text: &str) -> impl Iterator<Item = &str> {
    let separator = if text.contains('>') { '>' } else { '/' };
    text.split(separator).map(str::trim).filter(|part| !part.is_empty())
}

/// Whether any item of a `products` array is in the wanted category.
fn items_contain(items: Option<&Value>, wanted: &[String], catalog: &dyn CategoryLookup) -> bool {
    let Some(Value::Array(items)) = items else { return false };
    items.iter().filter_map(Value::as_object).any(|item| {
        match item.get("product_id").and_then(Value::as_str).and_then(|id| catalog.category_path(id)) {
            Some(path) => path_contains(path, wanted),
            None => item.get("category").and_then(Value::as_str).is_some_and(|text| text_path_contains(text, wanted)),
        }
    })
}

/// [`path_contains`] on a category as written, without building its path.
fn text_path_contains(text: &str, wanted: &[String]) -> bool {
    let (n, total) = (wanted.len(), split_path(text).count());
    n > 0
        && total >= n
        && (0..=total - n).any(|start| {
            split_path(text).skip(start).take(n).zip(wanted).all(|(have, want)| have.eq_ignore_ascii_case(want))
        })
}

/// Whether `wanted` (a category path) appears anywhere along `path`, ignoring ASCII case.
pub fn path_contains<S: AsRef<str>>(path: &[S], wanted: &[String]) -> bool {
    let n = wanted.len();
    n > 0
        && path
            .windows(n)
            .any(|window| window.iter().zip(wanted).all(|(have, want)| have.as_ref().eq_ignore_ascii_case(want)))
}

/// The category path of one product reference (an event's properties, or one item of its
/// `products`): from the catalog by `product_id`, else from its `category` property.
pub fn category_path_of<'a>(properties: &Map<String, Value>, catalog: &'a dyn CategoryLookup) -> Cow<'a, [String]> {
    if let Some(path) = properties.get("product_id").and_then(Value::as_str).and_then(|id| catalog.category_path(id)) {
        return Cow::Borrowed(path);
    }
    Cow::Owned(properties.get("category").and_then(Value::as_str).map(Product::parse_category_path).unwrap_or_default())
}

/// Every category path an event is about: its product's, and each item's of a `products` array.
pub fn category_paths<'a>(properties: &Map<String, Value>, catalog: &'a dyn CategoryLookup) -> Vec<Cow<'a, [String]>> {
    let mut paths = vec![category_path_of(properties, catalog)];
    if let Some(Value::Array(items)) = properties.get("products") {
        paths.extend(items.iter().filter_map(Value::as_object).map(|item| category_path_of(item, catalog)));
    }
    paths
}

/// Reads a JSON object keeping only the listed keys, as borrowed JSON text; the other values
/// are skipped unbuilt.
struct PickedMap<'k>(&'k [String]);

impl<'de: 'k, 'k> DeserializeSeed<'de> for PickedMap<'k> {
    type Value = EventProperties<'k>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'k, 'k> Visitor<'de> for PickedMap<'k> {
    type Value = EventProperties<'k>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut out = EventProperties::default();
        while let Some(picked) = access.next_key_seed(KeyPosition(self.0))? {
            match picked {
                Some(i) => {
                    let value: &'de RawValue = access.next_value()?;
                    // A repeated key: the last one wins, as when the message was read.
                    out.values.retain(|(k, _)| *k != self.0[i]);
                    out.values.push((self.0[i].as_str(), value));
                }
                None => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// Reads a key and says where it is in a list of wanted keys, without allocating it.
struct KeyPosition<'k>(&'k [String]);

impl<'de> DeserializeSeed<'de> for KeyPosition<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyPosition<'_> {
    type Value = Option<usize>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|k| k == key))
    }
}

/// Reads a whole message keeping only the wanted keys of its `properties`.
struct MessageProperties<'k>(&'k [String]);

const PROPERTIES: [&str; 1] = ["properties"];

impl<'de: 'k, 'k> DeserializeSeed<'de> for MessageProperties<'k> {
    type Value = Option<EventProperties<'k>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'k, 'k> Visitor<'de> for MessageProperties<'k> {
    type Value = Option<EventProperties<'k>>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_properties) = access.next_key_seed(KeyIs(&PROPERTIES))? {
            if is_properties {
                // `null` or a non-object reads as no properties.
                found = access.next_value_seed(OptionalPickedMap(self.0))?;
            } else {
                access.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Reads a key and says whether it is one of a few fixed names.
struct KeyIs<'k>(&'k [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.contains(&key))
    }
}

/// A [`PickedMap`] that reads anything other than an object as `None`.
struct OptionalPickedMap<'k>(&'k [String]);

impl<'de: 'k, 'k> DeserializeSeed<'de> for OptionalPickedMap<'k> {
    type Value = Option<EventProperties<'k>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de: 'k, 'k> Visitor<'de> for OptionalPickedMap<'k> {
    type Value = Option<EventProperties<'k>>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a properties object")
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        PickedMap(self.0).visit_map(access).map(Some)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::definition::{FilterOp, PropertyFilter};

    fn view(category: Option<&str>, filters: Vec<PropertyFilter>) -> EventMatch {
        EventMatch { name: "Product Viewed".into(), filters, category: category.map(str::to_owned) }
    }

    fn catalog() -> FxHashMap<String, Vec<String>> {
        let mut catalog = FxHashMap::default();
        catalog.insert("sku-1".to_owned(), vec!["Sports".to_owned(), "Running Shoes".to_owned()]);
        catalog
    }

    /// Checks the matches found from a whole message, and from its `properties` alone, against
    /// the expected numbers and against a reference reading of fully parsed properties.
    fn check(matches: &NameMatches, message: &str, expected: &[u32]) {
        let catalog = catalog();
        let mut out = Vec::new();
        matches.matched(&matches.read_message_properties(message), &catalog, &mut out);
        assert_eq!(out, expected, "{message}");
        let parsed: Value = serde_json::from_str(message).expect("json");
        let properties_text = parsed.get("properties").map(Value::to_string).unwrap_or_default();
        let mut from_properties = Vec::new();
        matches.matched(&matches.read_properties(&properties_text), &catalog, &mut from_properties);
        assert_eq!(from_properties, expected, "{message}");
        let map = parsed.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let paths = category_paths(&map, &catalog);
        let reference: Vec<u32> = matches
            .entries
            .iter()
            .filter(|e| e.event.filters.iter().all(|f| f.matches(&map)))
            .filter(|e| e.category_path.as_ref().is_none_or(|wanted| paths.iter().any(|p| path_contains(p, wanted))))
            .map(|e| e.number)
            .collect();
        assert_eq!(reference, expected, "the reference reading of {message}");
    }

    #[test]
    fn only_the_properties_a_match_reads_are_kept_and_categories_come_from_the_catalog_or_the_event() {
        let mut matches = NameMatches::default();
        matches.add(0, view(None, Vec::new()));
        matches.add(1, view(Some("running shoes"), Vec::new()));
        let pricey = PropertyFilter { property: "price".into(), op: FilterOp::Gte, value: Value::from(100) };
        matches.add(2, view(None, vec![pricey]));
        matches.add(3, view(Some("Kitchen > Mugs"), Vec::new()));
        assert!(matches.reads_properties());
        let message = r#"{"type":"track","event":"Product Viewed","context":{"page":{"url":"x"}},"properties":{"product_id":"sku-1","price":120,"name":"Trail","nested":{"a":[1,2]}}}"#;
        assert_eq!(matches.read_message_properties(message).len(), 2, "name and nested are skipped");
        assert_eq!(matches.read_message_properties(message).text("product_id").as_deref(), Some("sku-1"));
        check(&matches, message, &[0, 1, 2]);
        check(&matches, r#"{"properties":{"category":"Kitchen > Mugs","price":3}}"#, &[0, 3]);
        check(
            &matches,
            r#"{"properties":{"products":[{"product_id":"sku-1"},{"category":"Kitchen/Mugs"}]}}"#,
            &[0, 1, 3],
        );
        check(&matches, r#"{"properties":{"category":"Kitchen \u003e Mugs"}}"#, &[0, 3]);
        check(&matches, r#"{"properties":null}"#, &[0]);
        check(&matches, r#"{"event":"Product Viewed"}"#, &[0]);
        assert!(matches.read_properties("not json").is_empty());
    }

    #[test]
    fn a_bare_name_reads_no_properties() {
        let mut matches = NameMatches::default();
        matches.add(4, EventMatch { name: "Order Completed".into(), filters: Vec::new(), category: None });
        assert!(!matches.reads_properties());
        assert!(matches.read_message_properties(r#"{"properties":{"revenue":3}}"#).is_empty());
    }
}
