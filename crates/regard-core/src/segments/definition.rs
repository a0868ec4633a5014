//! A segment definition: who belongs to an audience, written as JSON by the operator and parsed
//! once, at save time, into types that can only hold valid conditions.
//!
//! The condition tree is walked by hand so that every error names the JSON path of the bad part
//! (`condition.all[2].event.within_days: must be between 1 and 3650`); the bodies of the leaves
//! are read with serde (`deny_unknown_fields`, snake_case) and then checked.

use serde::Deserialize;
use serde_json::Value;

use crate::consent::ConsentPurpose;
use crate::profile::VisitorKind;
use crate::time::{parse_iso8601_ms, DAY_MS, HOUR_MS};

/// The deepest a condition tree may nest, so that evaluation cost stays predictable.
pub const MAX_DEPTH: usize = 16;
/// The most conditions one definition may hold, for the same reason.
pub const MAX_NODES: usize = 256;
/// The longest look-back window in days (ten years).
pub const MAX_WINDOW_DAYS: u32 = 3650;
/// The longest look-back window in hours (one year); longer windows are written in days.
pub const MAX_WINDOW_HOURS: u32 = 8760;
/// The event a purchase is recorded as, following Segment's e-commerce spec.
pub const ORDER_COMPLETED: &str = "Order Completed";
/// The event a catalog condition counts when it does not name one.
pub const PRODUCT_VIEWED: &str = "Product Viewed";

const MAX_IN_VALUES: usize = 1000;
const MAX_NAME_LEN: usize = 200;
const MAX_ID_LEN: usize = 64;

/// Why a segment definition could not be read. Every variant names where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// The text is not JSON at all.
    #[error("definition is not valid JSON: {0}")]
    Json(String),
    /// A part of the definition is missing, misspelt or out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// JSON path of the bad part, e.g. `condition.all[2].event.within_days`.
        path: String,
        /// What is wrong with it, in words the operator can act on.
        message: String,
    },
    /// The condition tree is deeper or larger than [`MAX_DEPTH`] / [`MAX_NODES`].
    #[error("{path}: {message}")]
    TooComplex {
        /// JSON path of the node where the limit was crossed.
        path: String,
        /// Which limit, and what it is.
        message: String,
    },
}

impl DefinitionError {
    /// The JSON path of the problem (empty for malformed JSON).
    pub fn path(&self) -> &str {
        match self {
            DefinitionError::Json(_) => "",
            DefinitionError::Invalid { path, .. } | DefinitionError::TooComplex { path, .. } => path,
        }
    }
}

fn invalid(path: &str, message: impl Into<String>) -> DefinitionError {
    DefinitionError::Invalid { path: path.to_owned(), message: message.into() }
}

/// What a segment is for. Membership may only be used for this purpose, so the person's consent
/// for the matching [`ConsentPurpose`] governs it, and the policy check judges it by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentPurpose {
    /// Tailoring content and recommendations on the operator's own site.
    Personalization,
    /// Choosing who receives an email.
    Email,
    /// Exporting an ad audience.
    Advertising,
    /// Counting and reporting only.
    Analytics,
}

impl SegmentPurpose {
    /// The consent purpose a person must have granted for their membership to be used.
    pub fn consent_purpose(self) -> ConsentPurpose {
        match self {
            SegmentPurpose::Personalization => ConsentPurpose::Personalization,
            SegmentPurpose::Email => ConsentPurpose::Email,
            SegmentPurpose::Advertising => ConsentPurpose::Advertising,
            SegmentPurpose::Analytics => ConsentPurpose::Analytics,
        }
    }

    /// The purpose's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentPurpose::Personalization => "personalization",
            SegmentPurpose::Email => "email",
            SegmentPurpose::Advertising => "advertising",
            SegmentPurpose::Analytics => "analytics",
        }
    }
}

/// A segment id: lowercase ASCII letters, digits, `-` and `_`, at most 64 bytes. Ids appear in
/// URLs, exports and other segments' conditions, so they are kept plain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(String);

impl SegmentId {
    /// Parses an id, saying what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<SegmentId, String> {
        if text.is_empty() || text.len() > MAX_ID_LEN {
            return Err(format!("must be 1 to {MAX_ID_LEN} characters, got {}", text.len()));
        }
        if !text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
            return Err(format!("must use only a-z, 0-9, '-' and '_', got {text:?}"));
        }
        Ok(SegmentId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A checked segment definition. The only way to get one is [`SegmentDefinition::parse_str`] or
/// [`SegmentDefinition::parse_value`], so holding one proves every part of it is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDefinition {
    id: SegmentId,
    name: String,
    description: Option<String>,
    purpose: SegmentPurpose,
    condition: Condition,
}

impl SegmentDefinition {
    /// Parses a definition from JSON text.
    pub fn parse_str(text: &str) -> Result<SegmentDefinition, DefinitionError> {
        let value: Value = serde_json::from_str(text).map_err(|e| DefinitionError::Json(e.to_string()))?;
        SegmentDefinition::parse_value(&value)
    }

    /// Parses a definition from a JSON value.
    pub fn parse_value(value: &Value) -> Result<SegmentDefinition, DefinitionError> {
        let object = value.as_object().ok_or_else(|| invalid("", "a segment definition must be a JSON object"))?;
        for key in object.keys() {
            if !["id", "name", "description", "purpose", "condition"].contains(&key.as_str()) {
                return Err(invalid(key, "unknown field; expected id, name, description, purpose or condition"));
            }
        }
        let id_text = required_str(object.get("id"), "id")?;
        let id = SegmentId::parse(id_text).map_err(|message| invalid("id", message))?;
        let name = non_empty_name(required_str(object.get("name"), "name")?, "name")?;
        let description = match object.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(invalid("description", "must be a string")),
        };
        let purpose_value = object.get("purpose").ok_or_else(|| invalid("purpose", "is required"))?;
        let purpose = SegmentPurpose::deserialize(purpose_value).map_err(|e| invalid("purpose", e.to_string()))?;
        let condition_value = object.get("condition").ok_or_else(|| invalid("condition", "is required"))?;
        let mut n_nodes = 0;
        let condition = parse_condition(condition_value, "condition", 1, &mut n_nodes)?;
        if condition.references(&id) {
            return Err(invalid("condition", format!("segment {:?} must not refer to itself", id.as_str())));
        }
        Ok(SegmentDefinition { id, name, description, purpose, condition })
    }

    /// The segment's id.
    pub fn id(&self) -> &SegmentId {
        &self.id
    }

    /// The operator's name for the segment.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator's longer description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// What membership may be used for.
    pub fn purpose(&self) -> SegmentPurpose {
        self.purpose
    }

    /// Who belongs.
    pub fn condition(&self) -> &Condition {
        &self.condition
    }
}

/// One condition of a segment, freely combined with `all`, `any` and `not`.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every child holds.
    All(Vec<Condition>),
    /// At least one child holds.
    Any(Vec<Condition>),
    /// The child does not hold.
    Not(Box<Condition>),
    /// A test on a profile trait.
    Trait(TraitCondition),
    /// The person did an event, a number of times, in a window.
    Event(EventCondition),
    /// The person never did an event (in a window, or ever).
    Never(NeverCondition),
    /// The person did an event, but not in the last N days.
    NotWithinDays(NotWithinDaysCondition),
    /// The person did one thing and never another after it.
    Sequence(SequenceCondition),
    /// Recency and frequency of purchases.
    Purchases(PurchasesCondition),
    /// Events about products of a catalog category.
    Catalog(CatalogCondition),
    /// First visit or returning visitor.
    Visitor(VisitorKind),
    /// A test on the current visit's context (country, UTM, referrer, device).
    Context(ContextCondition),
    /// Membership of another segment.
    Segment(SegmentId),
    /// A test on a model's score (churn risk, propensity...).
    Score(ScoreCondition),
}

impl Condition {
    /// Whether this condition, anywhere inside, refers to segment `id`.
    pub fn references(&self, id: &SegmentId) -> bool {
        match self {
            Condition::All(children) | Condition::Any(children) => children.iter().any(|c| c.references(id)),
            Condition::Not(child) => child.references(id),
            Condition::Segment(other) => other == id,
            _ => false,
        }
    }
}

/// A test on a trait's value.
#[derive(Debug, Clone, PartialEq)]
pub enum TraitTest {
    /// Equal to a scalar (strings compare case-insensitively, numbers numerically).
    Equals(Value),
    /// Present and not equal to a scalar.
    NotEquals(Value),
    /// Equal to one of the scalars.
    In(Vec<Value>),
    /// Present and not null.
    Exists,
    /// Absent or null.
    NotExists,
    /// A number greater than this.
    Gt(f64),
    /// A number at least this.
    Gte(f64),
    /// A number less than this.
    Lt(f64),
    /// A number at most this.
    Lte(f64),
    /// A date or instant before this one (Unix ms).
    Before(i64),
    /// A date or instant after this one (Unix ms).
    After(i64),
    /// A `YYYY-MM-DD` or `--MM-DD` birthday whose next anniversary is at most this many days away.
    BirthdayWithinDays(u32),
}

/// A condition on one trait.
#[derive(Debug, Clone, PartialEq)]
pub struct TraitCondition {
    /// The trait's name, as identify calls send it.
    pub name: String,
    /// The test.
    pub test: TraitTest,
}

/// An operator on an event property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    /// Equal to a scalar.
    Equals,
    /// Present and not equal to a scalar.
    NotEquals,
    /// Equal to one of an array of scalars.
    In,
    /// A string containing the text, or an array containing the value.
    Contains,
    /// A number greater than the value.
    Gt,
    /// A number at least the value.
    Gte,
    /// A number less than the value.
    Lt,
    /// A number at most the value.
    Lte,
    /// Present and not null.
    Exists,
}

/// A test on one event property (`"where": [{"property": "category", "op": "equals", ...}]`).
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyFilter {
    /// The property name, a key of the event's `properties`.
    pub property: String,
    /// The operator.
    pub op: FilterOp,
    /// The operand (`Null` for `exists`); its shape has been checked against `op`.
    pub value: Value,
}

impl PropertyFilter {
    /// Whether an event's properties pass this filter. Offered so that every caller matches
    /// events the same way.
    pub fn matches(&self, properties: &serde_json::Map<String, Value>) -> bool {
        self.matches_value(properties.get(&self.property))
    }

    /// Whether the filtered property's value (`None` when the event lacks it) passes: for
    /// callers that read only the properties filters name.
    pub fn matches_value(&self, actual: Option<&Value>) -> bool {
        let actual = match actual {
            Some(Value::Null) | None => return false,
            Some(actual) => actual,
        };
        match self.op {
            FilterOp::Exists => true,
            FilterOp::Equals => scalar_eq(actual, &self.value),
            FilterOp::NotEquals => !scalar_eq(actual, &self.value),
            FilterOp::In => self.value.as_array().is_some_and(|options| options.iter().any(|o| scalar_eq(actual, o))),
            FilterOp::Contains => match actual {
                Value::String(text) => {
                    self.value.as_str().is_some_and(|needle| text.to_lowercase().contains(&needle.to_lowercase()))
                }
                Value::Array(items) => items.iter().any(|item| scalar_eq(item, &self.value)),
                _ => false,
            },
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => {
                match (as_number(actual), self.value.as_f64()) {
                    (Some(a), Some(b)) => match self.op {
                        FilterOp::Gt => a > b,
                        FilterOp::Gte => a >= b,
                        FilterOp::Lt => a < b,
                        _ => a <= b,
                    },
                    _ => false,
                }
            }
        }
    }
}

/// Which events a condition is about: a name, property filters, and for catalog conditions a
/// category. The caller of the evaluator finds the matching events (it owns the indexes).
#[derive(Debug, Clone, PartialEq)]
pub struct EventMatch {
    /// The event name (track name, or page name).
    pub name: String,
    /// Every filter must pass.
    pub filters: Vec<PropertyFilter>,
    /// When set, the event's `product_id` (looked up in the catalog) or its `category` property
    /// must lie in this category anywhere along its path (compared case-insensitively).
    pub category: Option<String>,
}

impl EventMatch {
    /// Whether an event with this name and these properties matches, apart from the catalog
    /// category, which needs the catalog (see [`EventMatch::category_matches`]).
    pub fn matches_name_and_filters(&self, name: &str, properties: &serde_json::Map<String, Value>) -> bool {
        name == self.name && self.filters.iter().all(|filter| filter.matches(properties))
    }

    /// Whether a category path (from the catalog, or parsed from a `category` property) lies in
    /// this match's category. True when the match names no category.
    pub fn category_matches(&self, category_path: &[String]) -> bool {
        match &self.category {
            None => true,
            Some(wanted) => {
                let wanted_path = crate::catalog::Product::parse_category_path(wanted);
                let n = wanted_path.len();
                n > 0
                    && category_path.windows(n).any(|window| {
                        window.iter().zip(&wanted_path).all(|(have, want)| have.eq_ignore_ascii_case(want))
                    })
            }
        }
    }
}

/// How many matching events a condition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CountBound {
    /// At least this many.
    Gte(u32),
    /// At most this many (zero included).
    Lte(u32),
    /// Exactly this many.
    Eq(u32),
}

impl CountBound {
    /// Whether `count` satisfies the bound.
    pub fn holds(self, count: usize) -> bool {
        let count = count as u64;
        match self {
            CountBound::Gte(n) => count >= u64::from(n),
            CountBound::Lte(n) => count <= u64::from(n),
            CountBound::Eq(n) => count == u64::from(n),
        }
    }
}

impl Default for CountBound {
    /// At least once.
    fn default() -> Self {
        CountBound::Gte(1)
    }
}

/// The time window events are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// All of history.
    Ever,
    /// The last `days` days: events strictly after `now - days`.
    LastDays(u32),
    /// The last `hours` hours: events strictly after `now - hours`.
    LastHours(u32),
    /// A fixed half-open range `[start_ms, end_ms)`; a bare end date means the start of that day.
    Between {
        /// First included instant (Unix ms).
        start_ms: i64,
        /// First excluded instant (Unix ms).
        end_ms: i64,
    },
}

impl Window {
    /// The window's length for sliding windows.
    pub fn sliding_ms(self) -> Option<i64> {
        match self {
            Window::LastDays(days) => Some(i64::from(days) * DAY_MS),
            Window::LastHours(hours) => Some(i64::from(hours) * HOUR_MS),
            Window::Ever | Window::Between { .. } => None,
        }
    }

    /// Whether an event at `at_ms` lies in the window at `now_ms`. Events after `now_ms` (a
    /// device clock ahead of ours) have not happened yet.
    pub fn contains(self, at_ms: i64, now_ms: i64) -> bool {
        if at_ms > now_ms {
            return false;
        }
        match self {
            Window::Ever => true,
            Window::LastDays(_) | Window::LastHours(_) => {
                self.sliding_ms().is_some_and(|length_ms| at_ms > now_ms.saturating_sub(length_ms))
            }
            Window::Between { start_ms, end_ms } => start_ms <= at_ms && at_ms < end_ms,
        }
    }
}

/// The person did an event, a number of times, in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCondition {
    /// Which events.
    pub event: EventMatch,
    /// How many (default at least one).
    pub count: CountBound,
    /// When.
    pub window: Window,
    /// Thin-data guard: matches must fall on at least this many distinct UTC days.
    pub min_distinct_days: Option<u32>,
}

/// The person never did an event, in a window or ever.
#[derive(Debug, Clone, PartialEq)]
pub struct NeverCondition {
    /// Which events.
    pub event: EventMatch,
    /// The window (`Ever` when none is given).
    pub window: Window,
}

/// The person did an event at some time, but not in the last `days` days.
#[derive(Debug, Clone, PartialEq)]
pub struct NotWithinDaysCondition {
    /// Which events.
    pub event: EventMatch,
    /// The quiet period in days.
    pub days: u32,
}

/// The person did `first` (in its window) and, since the latest such event, never `then_never`.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceCondition {
    /// The first step.
    pub first: EventMatch,
    /// The window the first step must fall in.
    pub first_window: Window,
    /// What must not have followed.
    pub then_never: EventMatch,
}

/// Recency and frequency of `Order Completed`.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchasesCondition {
    /// How many purchases (default at least one).
    pub count: CountBound,
    /// The window purchases are counted in (`Ever` by default).
    pub window: Window,
    /// The latest purchase is at least this many days old (a lapsed customer).
    pub last_before_days: Option<u32>,
    /// The latest purchase is less than this many days old (a recent customer).
    pub last_within_days: Option<u32>,
}

impl PurchasesCondition {
    /// The events a purchase condition counts.
    pub fn event_match() -> EventMatch {
        EventMatch { name: ORDER_COMPLETED.to_owned(), filters: Vec::new(), category: None }
    }
}

/// Events about products of one catalog category.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogCondition {
    /// The category as written (`"Running Shoes"` or `"Sports > Running Shoes"`).
    pub category: String,
    /// Which events, with `category` set (the event name defaults to `Product Viewed`).
    pub event: EventMatch,
    /// How many (default at least one).
    pub count: CountBound,
    /// When.
    pub window: Window,
    /// Thin-data guard: matches must fall on at least this many distinct UTC days.
    pub min_distinct_days: Option<u32>,
}

/// A field of the visit's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextField {
    /// ISO country code, from the IP address or the locale.
    Country,
    /// ISO 3166-2 subdivision (`US-CA`, `DE-BY`), from a trusted proxy header or the IP database.
    Region,
    /// `utm_source`.
    UtmSource,
    /// `utm_medium`.
    UtmMedium,
    /// `utm_campaign`.
    UtmCampaign,
    /// The referring site's domain.
    ReferrerDomain,
    /// `mobile`, `tablet` or `desktop`.
    Device,
}

impl ContextField {
    /// The field's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextField::Country => "country",
            ContextField::Region => "region",
            ContextField::UtmSource => "utm_source",
            ContextField::UtmMedium => "utm_medium",
            ContextField::UtmCampaign => "utm_campaign",
            ContextField::ReferrerDomain => "referrer_domain",
            ContextField::Device => "device",
        }
    }
}

/// The context field equals one of `values` (case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextCondition {
    /// Which field.
    pub field: ContextField,
    /// Accepted values (one for `equals`).
    pub values: Vec<String>,
}

/// A comparison of a score with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreOp {
    /// Greater than.
    Gt,
    /// At least.
    Gte,
    /// Less than.
    Lt,
    /// At most.
    Lte,
}

/// A model's score compared with a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreCondition {
    /// The score's name (`churn_risk`).
    pub name: String,
    /// The comparison.
    pub op: ScoreOp,
    /// The threshold (finite).
    pub value: f64,
}

impl ScoreCondition {
    /// Whether `score` passes.
    pub fn holds(&self, score: f64) -> bool {
        match self.op {
            ScoreOp::Gt => score > self.value,
            ScoreOp::Gte => score >= self.value,
            ScoreOp::Lt => score < self.value,
            ScoreOp::Lte => score <= self.value,
        }
    }
}

// ----- Wire shapes of the leaves, read with serde and then checked. -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTrait {
    name: String,
    op: WireTraitOp,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum WireTraitOp {
    Equals,
    NotEquals,
    In,
    Exists,
    NotExists,
    Gt,
    Gte,
    Lt,
    Lte,
    Before,
    After,
    BirthdayWithinDays,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFilter {
    property: String,
    op: FilterOp,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    name: String,
    #[serde(default, rename = "where")]
    filters: Vec<WireFilter>,
    count: Option<CountBound>,
    within_days: Option<u32>,
    within_hours: Option<u32>,
    between: Option<(String, String)>,
    min_distinct_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireNever {
    name: String,
    #[serde(default, rename = "where")]
    filters: Vec<WireFilter>,
    within_days: Option<u32>,
    within_hours: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireNotWithinDays {
    name: String,
    #[serde(default, rename = "where")]
    filters: Vec<WireFilter>,
    days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSequence {
    first: WireNever,
    then_never: WireStep,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireStep {
    name: String,
    #[serde(default, rename = "where")]
    filters: Vec<WireFilter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePurchases {
    count: Option<CountBound>,
    within_days: Option<u32>,
    last_before_days: Option<u32>,
    last_within_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCatalog {
    category: String,
    event: Option<String>,
    count: Option<CountBound>,
    within_days: Option<u32>,
    within_hours: Option<u32>,
    between: Option<(String, String)>,
    min_distinct_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireVisitor {
    New,
    Returning,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum WireContextOp {
    Equals,
    In,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireContext {
    field: ContextField,
    op: WireContextOp,
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireScore {
    name: String,
    op: ScoreOp,
    value: f64,
}

const CONDITION_KINDS: &str =
    "all, any, not, trait, event, never, not_within_days, sequence, purchases, catalog, visitor, context, segment, score";

fn parse_condition(value: &Value, path: &str, depth: usize, n_nodes: &mut usize) -> Result<Condition, DefinitionError> {
    if depth > MAX_DEPTH {
        return Err(DefinitionError::TooComplex {
            path: path.to_owned(),
            message: format!("conditions may nest at most {MAX_DEPTH} levels deep"),
        });
    }
    *n_nodes += 1;
    if *n_nodes > MAX_NODES {
        return Err(DefinitionError::TooComplex {
            path: path.to_owned(),
            message: format!("a definition may hold at most {MAX_NODES} conditions"),
        });
    }
    let object = value.as_object().filter(|object| object.len() == 1).ok_or_else(|| {
        invalid(path, format!("a condition must be an object with exactly one of: {CONDITION_KINDS}"))
    })?;
    let Some((kind, body)) = object.iter().next() else {
        return Err(invalid(path, "a condition must not be empty"));
    };
    let here = format!("{path}.{kind}");
    let read_error = |e: serde_json::Error| invalid(&here, e.to_string());
    match kind.as_str() {
        "all" | "any" => {
            let items = body.as_array().ok_or_else(|| invalid(&here, "must be an array of conditions"))?;
            if items.is_empty() {
                return Err(invalid(&here, "must hold at least one condition"));
            }
            let mut children = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                children.push(parse_condition(item, &format!("{here}[{i}]"), depth + 1, n_nodes)?);
            }
            Ok(if kind == "all" { Condition::All(children) } else { Condition::Any(children) })
        }
        "not" => Ok(Condition::Not(Box::new(parse_condition(body, &here, depth + 1, n_nodes)?))),
        "trait" => {
            let wire = WireTrait::deserialize(body).map_err(read_error)?;
            Ok(Condition::Trait(check_trait(wire, &here)?))
        }
        "event" => {
            let wire = WireEvent::deserialize(body).map_err(read_error)?;
            let event = check_event_match(&wire.name, wire.filters, None, &here)?;
            let window = check_window(wire.within_days, wire.within_hours, wire.between, &here)?;
            let count = check_count(wire.count, &here)?;
            let min_distinct_days = check_distinct_days(wire.min_distinct_days, &here)?;
            Ok(Condition::Event(EventCondition { event, count, window, min_distinct_days }))
        }
        "never" => {
            let wire = WireNever::deserialize(body).map_err(read_error)?;
            let event = check_event_match(&wire.name, wire.filters, None, &here)?;
            let window = check_window(wire.within_days, wire.within_hours, None, &here)?;
            Ok(Condition::Never(NeverCondition { event, window }))
        }
        "not_within_days" => {
            let wire = WireNotWithinDays::deserialize(body).map_err(read_error)?;
            let event = check_event_match(&wire.name, wire.filters, None, &here)?;
            let days = check_days(wire.days, &format!("{here}.days"))?;
            Ok(Condition::NotWithinDays(NotWithinDaysCondition { event, days }))
        }
        "sequence" => {
            let wire = WireSequence::deserialize(body).map_err(read_error)?;
            let first_path = format!("{here}.first");
            let first = check_event_match(&wire.first.name, wire.first.filters, None, &first_path)?;
            let first_window = check_window(wire.first.within_days, wire.first.within_hours, None, &first_path)?;
            let then_path = format!("{here}.then_never");
            let then_never = check_event_match(&wire.then_never.name, wire.then_never.filters, None, &then_path)?;
            Ok(Condition::Sequence(SequenceCondition { first, first_window, then_never }))
        }
        "purchases" => {
            let wire = WirePurchases::deserialize(body).map_err(read_error)?;
            let count = check_count(wire.count, &here)?;
            let window = check_window(wire.within_days, None, None, &here)?;
            let last_before_days =
                wire.last_before_days.map(|d| check_days(d, &format!("{here}.last_before_days"))).transpose()?;
            let last_within_days =
                wire.last_within_days.map(|d| check_days(d, &format!("{here}.last_within_days"))).transpose()?;
            if let (Some(before), Some(within)) = (last_before_days, last_within_days) {
                if before >= within {
                    return Err(invalid(
                        &format!("{here}.last_within_days"),
                        "must be greater than last_before_days, or no purchase can satisfy both",
                    ));
                }
            }
            Ok(Condition::Purchases(PurchasesCondition { count, window, last_before_days, last_within_days }))
        }
        "catalog" => {
            let wire = WireCatalog::deserialize(body).map_err(read_error)?;
            let category = wire.category.trim().to_owned();
            if crate::catalog::Product::parse_category_path(&category).is_empty() {
                return Err(invalid(&format!("{here}.category"), "must name a catalog category"));
            }
            let event_name = wire.event.unwrap_or_else(|| PRODUCT_VIEWED.to_owned());
            let event = check_event_match(&event_name, Vec::new(), Some(category.clone()), &here)?;
            let window = check_window(wire.within_days, wire.within_hours, wire.between, &here)?;
            let count = check_count(wire.count, &here)?;
            let min_distinct_days = check_distinct_days(wire.min_distinct_days, &here)?;
            Ok(Condition::Catalog(CatalogCondition { category, event, count, window, min_distinct_days }))
        }
        "visitor" => Ok(Condition::Visitor(match WireVisitor::deserialize(body).map_err(read_error)? {
            WireVisitor::New => VisitorKind::New,
            WireVisitor::Returning => VisitorKind::Returning,
        })),
        "context" => {
            let wire = WireContext::deserialize(body).map_err(read_error)?;
            let value_path = format!("{here}.value");
            let values = match (wire.op, &wire.value) {
                (WireContextOp::Equals, Value::String(text)) => vec![text.clone()],
                (WireContextOp::In, Value::Array(items)) if !items.is_empty() && items.len() <= MAX_IN_VALUES => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid(&value_path, "must be an array of strings"))?,
                (WireContextOp::Equals, _) => return Err(invalid(&value_path, "must be a string")),
                (WireContextOp::In, _) => {
                    return Err(invalid(&value_path, format!("must be an array of 1 to {MAX_IN_VALUES} strings")))
                }
            };
            Ok(Condition::Context(ContextCondition { field: wire.field, values }))
        }
        "segment" => {
            let text = body.as_str().ok_or_else(|| invalid(&here, "must be a segment id string"))?;
            Ok(Condition::Segment(SegmentId::parse(text).map_err(|message| invalid(&here, message))?))
        }
        "score" => {
            let wire = WireScore::deserialize(body).map_err(read_error)?;
            let name = non_empty_name(&wire.name, &format!("{here}.name"))?;
            if !wire.value.is_finite() {
                return Err(invalid(&format!("{here}.value"), "must be a finite number"));
            }
            Ok(Condition::Score(ScoreCondition { name, op: wire.op, value: wire.value }))
        }
        other => Err(invalid(path, format!("unknown condition {other:?}; expected one of: {CONDITION_KINDS}"))),
    }
}

fn required_str<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a str, DefinitionError> {
    match value {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(invalid(path, "must be a string")),
        None => Err(invalid(path, "is required")),
    }
}

fn non_empty_name(text: &str, path: &str) -> Result<String, DefinitionError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_NAME_LEN {
        return Err(invalid(path, format!("must be 1 to {MAX_NAME_LEN} characters")));
    }
    Ok(trimmed.to_owned())
}

fn check_days(days: u32, path: &str) -> Result<u32, DefinitionError> {
    if !(1..=MAX_WINDOW_DAYS).contains(&days) {
        return Err(invalid(path, format!("must be between 1 and {MAX_WINDOW_DAYS}")));
    }
    Ok(days)
}

fn check_count(count: Option<CountBound>, path: &str) -> Result<CountBound, DefinitionError> {
    let count = count.unwrap_or_default();
    if count == CountBound::Gte(0) {
        return Err(invalid(&format!("{path}.count"), "gte 0 always holds; leave the condition out instead"));
    }
    Ok(count)
}

fn check_distinct_days(days: Option<u32>, path: &str) -> Result<Option<u32>, DefinitionError> {
    days.map(|d| check_days(d, &format!("{path}.min_distinct_days"))).transpose()
}

fn check_window(
    within_days: Option<u32>,
    within_hours: Option<u32>,
    between: Option<(String, String)>,
    path: &str,
) -> Result<Window, DefinitionError> {
    match (within_days, within_hours, between) {
        (None, None, None) => Ok(Window::Ever),
        (Some(days), None, None) => Ok(Window::LastDays(check_days(days, &format!("{path}.within_days"))?)),
        (None, Some(hours), None) => {
            if !(1..=MAX_WINDOW_HOURS).contains(&hours) {
                return Err(invalid(
                    &format!("{path}.within_hours"),
                    format!("must be between 1 and {MAX_WINDOW_HOURS}"),
                ));
            }
            Ok(Window::LastHours(hours))
        }
        (None, None, Some((start, end))) => {
            let between_path = format!("{path}.between");
            let start_ms = parse_iso8601_ms(&start)
                .ok_or_else(|| invalid(&format!("{between_path}[0]"), format!("not an ISO date: {start:?}")))?;
            let end_ms = parse_iso8601_ms(&end)
                .ok_or_else(|| invalid(&format!("{between_path}[1]"), format!("not an ISO date: {end:?}")))?;
            if end_ms <= start_ms {
                return Err(invalid(&between_path, "the end must come after the start"));
            }
            Ok(Window::Between { start_ms, end_ms })
        }
        _ => Err(invalid(path, "give at most one of within_days, within_hours and between")),
    }
}

fn check_event_match(
    name: &str,
    filters: Vec<WireFilter>,
    category: Option<String>,
    path: &str,
) -> Result<EventMatch, DefinitionError> {
    let name = non_empty_name(name, &format!("{path}.name"))?;
    let mut checked = Vec::with_capacity(filters.len());
    for (i, filter) in filters.into_iter().enumerate() {
        let filter_path = format!("{path}.where[{i}]");
        let property = non_empty_name(&filter.property, &format!("{filter_path}.property"))?;
        let value_path = format!("{filter_path}.value");
        let shape_ok = match filter.op {
            FilterOp::Exists => filter.value.is_null(),
            FilterOp::Equals | FilterOp::NotEquals => is_scalar(&filter.value),
            FilterOp::In => filter
                .value
                .as_array()
                .is_some_and(|items| !items.is_empty() && items.len() <= MAX_IN_VALUES && items.iter().all(is_scalar)),
            FilterOp::Contains => is_scalar(&filter.value),
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => {
                filter.value.as_f64().is_some_and(f64::is_finite)
            }
        };
        if !shape_ok {
            let expected = match filter.op {
                FilterOp::Exists => "must be left out for exists",
                FilterOp::In => "must be a non-empty array of strings, numbers or booleans",
                FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => "must be a number",
                _ => "must be a string, number or boolean",
            };
            return Err(invalid(&value_path, expected));
        }
        checked.push(PropertyFilter { property, op: filter.op, value: filter.value });
    }
    Ok(EventMatch { name, filters: checked, category })
}

fn check_trait(wire: WireTrait, path: &str) -> Result<TraitCondition, DefinitionError> {
    let name = non_empty_name(&wire.name, &format!("{path}.name"))?;
    let value_path = format!("{path}.value");
    let value = wire.value;
    let number = || value.as_f64().filter(|n| n.is_finite()).ok_or_else(|| invalid(&value_path, "must be a number"));
    let date = || {
        value
            .as_str()
            .and_then(parse_iso8601_ms)
            .ok_or_else(|| invalid(&value_path, "must be an ISO date such as \"2026-01-31\""))
    };
    let scalar = || {
        if is_scalar(&value) {
            Ok(value.clone())
        } else {
            Err(invalid(&value_path, "must be a string, number or boolean"))
        }
    };
    let test = match wire.op {
        WireTraitOp::Equals => TraitTest::Equals(scalar()?),
        WireTraitOp::NotEquals => TraitTest::NotEquals(scalar()?),
        WireTraitOp::In => match &value {
            Value::Array(items) if !items.is_empty() && items.len() <= MAX_IN_VALUES && items.iter().all(is_scalar) => {
                TraitTest::In(items.clone())
            }
            _ => return Err(invalid(&value_path, "must be a non-empty array of strings, numbers or booleans")),
        },
        WireTraitOp::Exists | WireTraitOp::NotExists => {
            if !value.is_null() {
                return Err(invalid(&value_path, "must be left out for exists and not_exists"));
            }
            if matches!(wire.op, WireTraitOp::Exists) {
                TraitTest::Exists
            } else {
                TraitTest::NotExists
            }
        }
        WireTraitOp::Gt => TraitTest::Gt(number()?),
        WireTraitOp::Gte => TraitTest::Gte(number()?),
        WireTraitOp::Lt => TraitTest::Lt(number()?),
        WireTraitOp::Lte => TraitTest::Lte(number()?),
        WireTraitOp::Before => TraitTest::Before(date()?),
        WireTraitOp::After => TraitTest::After(date()?),
        WireTraitOp::BirthdayWithinDays => match value.as_u64() {
            Some(days) if days <= 366 => TraitTest::BirthdayWithinDays(days as u32),
            _ => return Err(invalid(&value_path, "must be a whole number of days between 0 and 366")),
        },
    };
    Ok(TraitCondition { name, test })
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Reads a number, or a string holding one (SDKs often send numbers as strings).
pub(crate) fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// Scalar equality as people mean it: strings case-insensitively, numbers by value.
pub(crate) fn scalar_eq(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(b)) => a.trim().eq_ignore_ascii_case(b.trim()) || a.trim() == b.trim(),
        (Value::Number(_), _) | (_, Value::Number(_)) => match (as_number(actual), as_number(expected)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        _ => actual == expected,
    }
}
