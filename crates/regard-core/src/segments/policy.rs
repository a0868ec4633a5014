//! The policy check run when a segment is saved: the privacy line.
//!
//! Three rules. A segment must not infer a sensitive attribute (health, pregnancy, religion...)
//! from behavior, whatever its polarity: excluding "people who bought prenatal vitamins" still
//! needs the inference. Self-declared (zero-party) traits may be used, but only for the purposes
//! the person gave them for. And an interest must rest on more than one signal, so one
//! ten-second view does not put someone in an audience. Every violation is reported, not only
//! the first, so the operator can fix a definition in one pass.

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::definition::{
    CatalogCondition, Condition, CountBound, EventCondition, EventMatch, SegmentDefinition, TraitCondition, TraitTest,
    ORDER_COMPLETED,
};
use crate::catalog::Product;
use crate::consent::ConsentPurpose;

/// A special category of personal data (GDPR art. 9 and its neighbours) that segments must not
/// infer from behavior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensitiveCategory {
    /// Physical or mental health, medication, treatment.
    HealthAndMedical,
    /// Pregnancy, fertility, newborns.
    PregnancyAndBaby,
    /// Religious or philosophical belief.
    Religion,
    /// Sexual orientation or sex life.
    SexualOrientation,
    /// Racial or ethnic origin.
    Ethnicity,
    /// Political opinions.
    PoliticalOpinions,
    /// Trade union membership.
    TradeUnion,
    /// Debt, bankruptcy, financial hardship.
    FinancialDistress,
    /// Coordinates or street-level location.
    PreciseLocation,
    /// Children and teenagers.
    Minors,
}

impl SensitiveCategory {
    /// Every category, in declaration order.
    pub const ALL: [SensitiveCategory; 10] = [
        SensitiveCategory::HealthAndMedical,
        SensitiveCategory::PregnancyAndBaby,
        SensitiveCategory::Religion,
        SensitiveCategory::SexualOrientation,
        SensitiveCategory::Ethnicity,
        SensitiveCategory::PoliticalOpinions,
        SensitiveCategory::TradeUnion,
        SensitiveCategory::FinancialDistress,
        SensitiveCategory::PreciseLocation,
        SensitiveCategory::Minors,
    ];

    /// Parses a wire name (`health_and_medical`), case-insensitively.
    pub fn parse(text: &str) -> Option<SensitiveCategory> {
        SensitiveCategory::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The category's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SensitiveCategory::HealthAndMedical => "health_and_medical",
            SensitiveCategory::PregnancyAndBaby => "pregnancy_and_baby",
            SensitiveCategory::Religion => "religion",
            SensitiveCategory::SexualOrientation => "sexual_orientation",
            SensitiveCategory::Ethnicity => "ethnicity",
            SensitiveCategory::PoliticalOpinions => "political_opinions",
            SensitiveCategory::TradeUnion => "trade_union",
            SensitiveCategory::FinancialDistress => "financial_distress",
            SensitiveCategory::PreciseLocation => "precise_location",
            SensitiveCategory::Minors => "minors",
        }
    }

    /// The built-in keywords and phrases, matched case-insensitively on whole words (a final
    /// plural `s`/`es` is allowed).
    pub fn keywords(self) -> &'static [&'static str] {
        match self {
            SensitiveCategory::HealthAndMedical => &[
                "vitamin",
                "prenatal",
                "pharmacy",
                "medication",
                "medicine",
                "prescription",
                "diagnosis",
                "clinic",
                "therapy",
                "therapist",
                "health & wellness",
                "health condition",
                "medical",
                "symptom",
                "disease",
                "diabetes",
                "cancer",
                "hiv",
                "mental health",
                "depression",
                "fertility",
                "contraceptive",
                "contraception",
                "weight loss",
                "addiction",
                "rehab",
                "disability",
            ],
            SensitiveCategory::PregnancyAndBaby => &[
                "prenatal",
                "pregnancy",
                "pregnant",
                "maternity",
                "baby",
                "babies",
                "unscented lotion",
                "nursery",
                "newborn",
                "diaper",
                "breastfeeding",
                "due date",
                "ovulation",
            ],
            SensitiveCategory::Religion => &[
                "religion",
                "religious",
                "bible",
                "quran",
                "koran",
                "torah",
                "church",
                "mosque",
                "synagogue",
                "prayer",
                "halal",
                "kosher",
                "christian",
                "muslim",
                "jewish",
                "hindu",
                "buddhist",
            ],
            SensitiveCategory::SexualOrientation => &[
                "sexual orientation",
                "lgbt",
                "lgbtq",
                "gay",
                "lesbian",
                "bisexual",
                "transgender",
                "queer",
                "pride month",
            ],
            SensitiveCategory::Ethnicity => {
                &["ethnicity", "ethnic", "racial", "hispanic", "latino", "latina", "african american", "afro"]
            }
            SensitiveCategory::PoliticalOpinions => &[
                "political",
                "politics",
                "political party",
                "democrat",
                "republican",
                "election",
                "campaign donation",
                "voting intention",
            ],
            SensitiveCategory::TradeUnion => {
                &["trade union", "labor union", "labour union", "union dues", "union member"]
            }
            SensitiveCategory::FinancialDistress => &[
                "debt relief",
                "debt-relief",
                "payday loan",
                "bankruptcy",
                "collections",
                "debt consolidation",
                "debt collector",
                "foreclosure",
                "insolvency",
                "credit repair",
                "eviction",
            ],
            SensitiveCategory::PreciseLocation => &[
                "latitude",
                "longitude",
                "lat",
                "lng",
                "lon",
                "gps",
                "geolocation",
                "coordinates",
                "precise location",
                "street address",
                "home address",
            ],
            SensitiveCategory::Minors => &[
                "kids",
                "kid",
                "teen",
                "teenager",
                "children",
                "child",
                "minor",
                "under 13",
                "under 16",
                "under 18",
                "age under 16",
            ],
        }
    }
}

/// Which rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyRule {
    /// A behavioral condition (event, catalog, sequence, context, score) touches a sensitive
    /// category: the segment would infer it.
    SensitiveInference(SensitiveCategory),
    /// A trait condition reads a sensitive trait that the person did not declare for this use.
    SensitiveTrait(SensitiveCategory),
    /// A zero-party trait is used for a purpose the person did not give it for.
    ZeroPartyPurpose,
    /// An interest rests on a single signal.
    ThinData,
}

impl PolicyRule {
    /// The sensitive category involved, when there is one.
    pub fn category(self) -> Option<SensitiveCategory> {
        match self {
            PolicyRule::SensitiveInference(category) | PolicyRule::SensitiveTrait(category) => Some(category),
            PolicyRule::ZeroPartyPurpose | PolicyRule::ThinData => None,
        }
    }
}

/// One reason a definition was refused, naming the condition by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyViolation {
    /// JSON path of the offending part, e.g. `condition.all[0].catalog.category`.
    pub path: String,
    /// The rule broken (and the sensitive category, when there is one).
    pub rule: PolicyRule,
    /// A sentence the operator can act on.
    pub reason: String,
}

impl std::fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Joins violations into one line for error messages.
pub fn describe(violations: &[PolicyViolation]) -> String {
    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The operator's additions to the built-in policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Extra keywords or phrases per category, matched like the built-in ones.
    pub extra_keywords: Vec<(String, SensitiveCategory)>,
    /// Catalog categories the operator knows are sensitive (matched against each level of a
    /// catalog condition's category path, case-insensitively).
    pub sensitive_catalog_categories: Vec<(String, SensitiveCategory)>,
    /// Event property names whose use in a filter is sensitive (`diagnosis_code`).
    pub sensitive_event_properties: Vec<(String, SensitiveCategory)>,
    /// Trait names that are sensitive (`blood_type`).
    pub sensitive_traits: Vec<(String, SensitiveCategory)>,
    /// Traits the person declared themselves, with the purposes they declared them for.
    pub zero_party_traits: FxHashMap<String, Vec<ConsentPurpose>>,
    /// Events that record a transaction rather than an interest; a single one is enough.
    pub transactional_events: Vec<String>,
}

impl Default for PolicyConfig {
    /// No additions, and Segment's e-commerce transactional events.
    fn default() -> Self {
        PolicyConfig {
            extra_keywords: Vec::new(),
            sensitive_catalog_categories: Vec::new(),
            sensitive_event_properties: Vec::new(),
            sensitive_traits: Vec::new(),
            zero_party_traits: FxHashMap::default(),
            transactional_events: [ORDER_COMPLETED, "Product Added", "Checkout Started", "Signed Up"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl PolicyConfig {
    /// Reads the operator's policy file:
    /// `{"sensitive_traits": {"income_band": "financial_distress"}, "sensitive_catalog_categories":
    /// {"Pharmacy": "health_and_medical"}, "sensitive_event_properties": {...}, "extra_keywords":
    /// {"fertility app": "pregnancy_and_baby"}, "zero_party_traits": {"preferred_roast":
    /// ["personalization", "email"]}, "transactional_events": [...]}`; every key is optional and
    /// adds to the built-in policy (`transactional_events` replaces the default list). Errors
    /// name the field.
    pub fn from_json(text: &str) -> Result<PolicyConfig, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let object = value.as_object().ok_or("the policy must be a JSON object")?;
        let mut config = PolicyConfig::default();
        for (key, body) in object {
            let categories = |field: &str| -> Result<Vec<(String, SensitiveCategory)>, String> {
                let map = body.as_object().ok_or_else(|| format!("{field}: must map names to categories"))?;
                map.iter()
                    .map(|(name, category)| {
                        let text = category.as_str().unwrap_or("");
                        let category = SensitiveCategory::parse(text).ok_or_else(|| {
                            let known = SensitiveCategory::ALL.map(SensitiveCategory::as_str).join(", ");
                            format!("{field}.{name}: {category} is not a sensitive category ({known})")
                        })?;
                        Ok((name.clone(), category))
                    })
                    .collect()
            };
            match key.as_str() {
                "extra_keywords" => config.extra_keywords = categories(key)?,
                "sensitive_catalog_categories" => config.sensitive_catalog_categories = categories(key)?,
                "sensitive_event_properties" => config.sensitive_event_properties = categories(key)?,
                "sensitive_traits" => config.sensitive_traits = categories(key)?,
                "zero_party_traits" => {
                    let map = body.as_object().ok_or("zero_party_traits: must map trait names to purposes")?;
                    for (name, purposes) in map {
                        let list =
                            purposes.as_array().ok_or_else(|| format!("zero_party_traits.{name}: must be a list"))?;
                        let parsed = list
                            .iter()
                            .map(|p| {
                                p.as_str()
                                    .and_then(ConsentPurpose::parse)
                                    .ok_or_else(|| format!("zero_party_traits.{name}: {p} is not a consent purpose"))
                            })
                            .collect::<Result<Vec<_>, String>>()?;
                        config.zero_party_traits.insert(name.clone(), parsed);
                    }
                }
                "transactional_events" => {
                    let list = body.as_array().ok_or("transactional_events: must be a list of event names")?;
                    config.transactional_events = list
                        .iter()
                        .map(|e| {
                            e.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| format!("transactional_events: {e} is not a name"))
                        })
                        .collect::<Result<_, String>>()?;
                }
                other => return Err(format!("{other}: unknown field")),
            }
        }
        Ok(config)
    }
}

/// Judges a parsed definition; an empty list means it may be saved.
pub fn check(definition: &SegmentDefinition, config: &PolicyConfig) -> Vec<PolicyViolation> {
    let mut checker = Checker { config, purpose: definition.purpose().consent_purpose(), violations: Vec::new() };
    checker.condition(definition.condition(), "condition", false);
    checker.violations
}

struct Checker<'a> {
    config: &'a PolicyConfig,
    purpose: ConsentPurpose,
    violations: Vec<PolicyViolation>,
}

impl Checker<'_> {
    /// Walks the tree; `negated` tells whether an odd number of `not`s is above, because an
    /// excluded behavior is not an interest (the thin-data rule) but is still an inference.
    fn condition(&mut self, condition: &Condition, path: &str, negated: bool) {
        match condition {
            Condition::All(children) | Condition::Any(children) => {
                let kind = if matches!(condition, Condition::All(_)) { "all" } else { "any" };
                for (i, child) in children.iter().enumerate() {
                    self.condition(child, &format!("{path}.{kind}[{i}]"), negated);
                }
            }
            Condition::Not(child) => self.condition(child, &format!("{path}.not"), !negated),
            Condition::Trait(condition) => self.trait_condition(condition, &format!("{path}.trait")),
            Condition::Event(condition) => {
                let here = format!("{path}.event");
                self.event_match(&condition.event, &here);
                if !negated {
                    self.thin_data(condition, &here);
                }
            }
            Condition::Never(condition) => self.event_match(&condition.event, &format!("{path}.never")),
            Condition::NotWithinDays(condition) => {
                self.event_match(&condition.event, &format!("{path}.not_within_days"))
            }
            Condition::Sequence(condition) => {
                self.event_match(&condition.first, &format!("{path}.sequence.first"));
                self.event_match(&condition.then_never, &format!("{path}.sequence.then_never"));
            }
            Condition::Catalog(condition) => {
                let here = format!("{path}.catalog");
                self.catalog(condition, &here);
                if !negated {
                    self.thin_data_catalog(condition, &here);
                }
            }
            Condition::Context(condition) => {
                for value in &condition.values {
                    self.behavioral_text(value, &format!("{path}.context.value"), "the visit's context value");
                }
            }
            Condition::Score(condition) => {
                self.behavioral_text(&condition.name, &format!("{path}.score.name"), "the predicted score");
            }
            Condition::Purchases(_) | Condition::Visitor(_) | Condition::Segment(_) => {}
        }
    }

    fn refuse(&mut self, path: String, rule: PolicyRule, reason: String) {
        let violation = PolicyViolation { path, rule, reason };
        if !self.violations.contains(&violation) {
            self.violations.push(violation);
        }
    }

    fn behavioral_text(&mut self, text: &str, path: &str, what: &str) {
        for (category, keyword) in sensitive_matches(text, &self.config.extra_keywords) {
            self.refuse(
                path.to_owned(),
                PolicyRule::SensitiveInference(category),
                format!(
                    "{what} {text:?} contains {keyword:?}: a segment must not infer {} from behavior",
                    category.as_str()
                ),
            );
        }
    }

    fn event_match(&mut self, event: &EventMatch, path: &str) {
        self.behavioral_text(&event.name, &format!("{path}.name"), "the event name");
        for (i, filter) in event.filters.iter().enumerate() {
            let filter_path = format!("{path}.where[{i}]");
            self.behavioral_text(&filter.property, &format!("{filter_path}.property"), "the property name");
            for (name, category) in &self.config.sensitive_event_properties {
                if name.eq_ignore_ascii_case(&filter.property) {
                    self.refuse(
                        format!("{filter_path}.property"),
                        PolicyRule::SensitiveInference(*category),
                        format!(
                            "the property {:?} is marked sensitive ({}) by the operator",
                            filter.property,
                            category.as_str()
                        ),
                    );
                }
            }
            for text in strings_in(&filter.value) {
                self.behavioral_text(text, &format!("{filter_path}.value"), "the filter value");
            }
        }
    }

    fn catalog(&mut self, condition: &CatalogCondition, path: &str) {
        let category_path = format!("{path}.category");
        self.behavioral_text(&condition.category, &category_path, "the catalog category");
        let levels = Product::parse_category_path(&condition.category);
        for (name, category) in &self.config.sensitive_catalog_categories {
            if levels.iter().any(|level| level.eq_ignore_ascii_case(name.trim())) {
                self.refuse(
                    category_path.clone(),
                    PolicyRule::SensitiveInference(*category),
                    format!(
                        "the catalog category {name:?} is marked sensitive ({}) by the operator",
                        category.as_str()
                    ),
                );
            }
        }
        self.behavioral_text(&condition.event.name, &format!("{path}.event"), "the event name");
    }

    fn is_transactional(&self, event_name: &str) -> bool {
        self.config.transactional_events.iter().any(|name| name.eq_ignore_ascii_case(event_name))
    }

    fn thin_data(&mut self, condition: &EventCondition, path: &str) {
        if !self.is_transactional(&condition.event.name) && single_signal(condition.count, condition.min_distinct_days)
        {
            self.refuse(
                format!("{path}.count"),
                PolicyRule::ThinData,
                format!(
                    "one {:?} is too thin a signal for an interest: ask for count gte 2 or min_distinct_days 2",
                    condition.event.name
                ),
            );
        }
    }

    fn thin_data_catalog(&mut self, condition: &CatalogCondition, path: &str) {
        if !self.is_transactional(&condition.event.name) && single_signal(condition.count, condition.min_distinct_days)
        {
            self.refuse(
                format!("{path}.count"),
                PolicyRule::ThinData,
                format!(
                    "one {:?} of {:?} is too thin a signal for an interest: ask for count gte 2 or min_distinct_days 2",
                    condition.event.name, condition.category
                ),
            );
        }
    }

    fn trait_condition(&mut self, condition: &TraitCondition, path: &str) {
        let name_path = format!("{path}.name");
        // Age below 18 targets children whatever the person declared: their data needs a
        // parent's consent, which a segment cannot check.
        if normalize(&condition.name) == "age" && targets_minors(&condition.test) {
            self.refuse(
                format!("{path}.value"),
                PolicyRule::SensitiveTrait(SensitiveCategory::Minors),
                "an age below 18 targets minors".to_owned(),
            );
        }
        if let Some(purposes) = self.config.zero_party_traits.get(&condition.name) {
            if !purposes.contains(&self.purpose) {
                let given = purposes.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
                self.refuse(
                    name_path,
                    PolicyRule::ZeroPartyPurpose,
                    format!(
                        "the person declared {:?} for {} only, not for {}",
                        condition.name,
                        if given.is_empty() { "no purpose" } else { &given },
                        self.purpose.as_str()
                    ),
                );
            }
            return;
        }
        let mut found: Vec<(SensitiveCategory, String)> =
            sensitive_matches(&condition.name, &self.config.extra_keywords)
                .into_iter()
                .map(|(category, keyword)| (category, format!("contains {keyword:?}")))
                .collect();
        for (name, category) in &self.config.sensitive_traits {
            if name.eq_ignore_ascii_case(&condition.name) {
                found.push((*category, "is marked sensitive by the operator".to_owned()));
            }
        }
        for (category, why) in found {
            self.refuse(
                name_path.clone(),
                PolicyRule::SensitiveTrait(category),
                format!(
                    "the trait {:?} {why} ({}); only a trait the person declared for this purpose may be used",
                    condition.name,
                    category.as_str()
                ),
            );
        }
        let values: Vec<&Value> = match &condition.test {
            TraitTest::Equals(value) | TraitTest::NotEquals(value) => vec![value],
            TraitTest::In(values) => values.iter().collect(),
            _ => Vec::new(),
        };
        for text in values.into_iter().flat_map(strings_in) {
            for (category, keyword) in sensitive_matches(text, &self.config.extra_keywords) {
                self.refuse(
                    format!("{path}.value"),
                    PolicyRule::SensitiveTrait(category),
                    format!("the trait value {text:?} contains {keyword:?} ({})", category.as_str()),
                );
            }
        }
    }
}

/// The sensitive category a field name (a trait, an event property, a template variable) falls
/// in, with the keyword or operator mark that put it there; `None` when the name is not
/// sensitive. Content templates are linted with this so they cannot print what segments may not
/// use.
pub fn sensitive_field(name: &str, config: &PolicyConfig) -> Option<(SensitiveCategory, String)> {
    if let Some((_, category)) = config.sensitive_traits.iter().find(|(field, _)| field.eq_ignore_ascii_case(name)) {
        return Some((*category, "marked sensitive by the operator".to_owned()));
    }
    if let Some((_, category)) =
        config.sensitive_event_properties.iter().find(|(field, _)| field.eq_ignore_ascii_case(name))
    {
        return Some((*category, "marked sensitive by the operator".to_owned()));
    }
    sensitive_matches(name, &config.extra_keywords)
        .into_iter()
        .next()
        .map(|(category, keyword)| (category, format!("contains {keyword:?}")))
}

/// The sensitive category a catalog category path (e.g. `["Health & Wellness", "Vitamins"]`)
/// falls in: any level matching a built-in keyword or the operator's sensitive catalog
/// categories. Models use it to leave such categories out entirely (no propensity to buy
/// vitamins or baby care is ever computed), as segments may not infer them.
pub fn sensitive_category_path(levels: &[String], config: &PolicyConfig) -> Option<(SensitiveCategory, String)> {
    for level in levels {
        if let Some((_, category)) =
            config.sensitive_catalog_categories.iter().find(|(name, _)| level.eq_ignore_ascii_case(name.trim()))
        {
            return Some((*category, format!("{level:?} is marked sensitive by the operator")));
        }
        if let Some((category, keyword)) = sensitive_matches(level, &config.extra_keywords).into_iter().next() {
            return Some((category, format!("{level:?} contains {keyword:?}")));
        }
    }
    None
}

fn single_signal(count: CountBound, min_distinct_days: Option<u32>) -> bool {
    let count_demands_two = match count {
        CountBound::Gte(n) | CountBound::Eq(n) => n >= 2,
        // At most N includes zero: it describes a lack of interest, not an interest.
        CountBound::Lte(_) => true,
    };
    !count_demands_two && min_distinct_days.unwrap_or(0) < 2
}

fn targets_minors(test: &TraitTest) -> bool {
    let below_18 = |value: &Value| super::definition::as_number(value).is_some_and(|age| age < 18.0);
    match test {
        TraitTest::Lt(n) => *n <= 18.0,
        TraitTest::Lte(n) => *n < 18.0,
        TraitTest::Equals(value) => below_18(value),
        TraitTest::In(values) => values.iter().any(below_18),
        _ => false,
    }
}

fn strings_in(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Lowercases and turns every run of non-alphanumeric characters into one space, so that
/// `"Health & Wellness > Vitamins"`, `"debt-relief"` and `"due_date"` compare as words.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() {
            out.push(ch);
        } else if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

/// Whether `phrase` occurs in `text` as whole words; the phrase's last word may carry a plural
/// `s` or `es`.
fn contains_phrase(text_words: &[&str], phrase: &str) -> bool {
    let phrase_words: Vec<&str> = phrase.split(' ').filter(|w| !w.is_empty()).collect();
    let n = phrase_words.len();
    if n == 0 || text_words.len() < n {
        return false;
    }
    text_words.windows(n).any(|window| {
        window.iter().zip(&phrase_words).enumerate().all(|(i, (have, want))| {
            have == want
                || (i == n - 1 && (have.strip_suffix('s') == Some(want) || have.strip_suffix("es") == Some(want)))
        })
    })
}

/// The categories whose keywords (built-in or extra) occur in `text`, once per category, with
/// the first keyword found.
fn sensitive_matches(text: &str, extra: &[(String, SensitiveCategory)]) -> Vec<(SensitiveCategory, String)> {
    let normalized = normalize(text);
    let words: Vec<&str> = normalized.split(' ').filter(|w| !w.is_empty()).collect();
    let mut found: Vec<(SensitiveCategory, String)> = Vec::new();
    let built_in = SensitiveCategory::ALL
        .into_iter()
        .flat_map(|category| category.keywords().iter().map(move |keyword| (category, (*keyword).to_owned())));
    let extra = extra.iter().map(|(keyword, category)| (*category, keyword.clone()));
    for (category, keyword) in built_in.chain(extra) {
        if found.iter().any(|(c, _)| *c == category) {
            continue;
        }
        if contains_phrase(&words, &normalize(&keyword)) {
            found.push((category, keyword));
        }
    }
    found
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
