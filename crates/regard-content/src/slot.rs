//! Slots: the places where content varies (a web hero, a product row, a banner, an email block,
//! an in-app message), each with targeted variants and a generic default.
//!
//! A slot is saved as JSON, checked here (shape, ids, targeting through the segment policy
//! check) and then compiled into a [`crate::decide::ContentSnapshot`] together with its
//! templates (which are linted there).

use regard_core::segments::definition::SegmentId;
use regard_core::segments::policy::PolicyConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::targeting::{parse_segment_ids, LocalHours, Targeting};

/// At most this many variants per slot: the decision walks them all in the worst case.
pub const MAX_VARIANTS: usize = 32;
/// Ids are short, URL-safe names.
pub const MAX_ID_LEN: usize = 64;
/// A template may be this long at most.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// Why a slot definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// Malformed or out of range; `path` names the field.
    #[error("{path}: {message}")]
    Invalid {
        /// JSON path of the offending field.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A variant's targeting breaks the privacy policy.
    #[error("{path}: {message}")]
    Policy {
        /// JSON path of the offending condition.
        path: String,
        /// Every violation, described.
        message: String,
    },
    /// A template failed its lint or did not compile.
    #[error("{path}: {message}")]
    Template {
        /// JSON path of the template.
        path: String,
        /// The template error.
        message: String,
        /// The lint that refused it (`syntax`, `name_used_more_than_once`, `sensitive_field`...).
        kind: String,
    },
    /// A referenced segment does not exist.
    #[error("{path}: no segment {segment:?}")]
    UnknownSegment {
        /// Where it is referenced.
        path: String,
        /// The missing segment.
        segment: String,
    },
}

impl SlotError {
    /// An `Invalid` error.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> SlotError {
        SlotError::Invalid { path: path.into(), message: message.into() }
    }

    /// The JSON path the error is about.
    pub fn path(&self) -> &str {
        match self {
            SlotError::Invalid { path, .. }
            | SlotError::Policy { path, .. }
            | SlotError::Template { path, .. }
            | SlotError::UnknownSegment { path, .. } => path,
        }
    }
}

/// What kind of place a slot is; it tells dashboards and SDKs how to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// The large banner at the top of a page.
    WebHero,
    /// A row of product cards.
    ProductRow,
    /// A strip or box of promotional content.
    Banner,
    /// A block inside an email template.
    EmailBlock,
    /// A message shown inside an app.
    InApp,
}

/// A checked slot.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotDefinition {
    /// Unique id (`home_hero`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// What kind of place it is.
    pub kind: SlotKind,
    /// Optional note for operators.
    pub description: Option<String>,
    /// Members of these segments always get the default (exclusion audiences: existing
    /// customers never see acquisition messaging).
    pub exclude: Vec<SegmentId>,
    /// Behavioral and predictive variants need at least this many stored events on the
    /// profile; below it the ladder falls to identity, dynamic or generic content.
    pub min_events: u32,
    /// Targeted variants, tried by descending priority (then in order).
    pub variants: Vec<VariantDefinition>,
    /// The generic content everyone may see.
    pub default_template: String,
    /// Products the default shows (generic strategies only).
    pub default_recommend: Option<RecommendSpec>,
}

/// A checked variant.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantDefinition {
    /// Unique within the slot.
    pub id: String,
    /// Higher goes first.
    pub priority: i32,
    /// Who it is for.
    pub targeting: Targeting,
    /// The minijinja template.
    pub template: String,
    /// Products to fill the template's `recommendations` with, when the variant shows some.
    pub recommend: Option<RecommendSpec>,
}

/// A recommendation list a variant shows: the strategies in fallback order (empty: the
/// engine's default chain) and how many items. Strategy names are checked by the server, which
/// knows the recommendation engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendSpec {
    /// Strategies in fallback order.
    #[serde(default)]
    pub strategy: Vec<String>,
    /// Items wanted (1 to 20).
    #[serde(default = "default_recommend_n")]
    pub n: usize,
    /// Leave out what is in the person's cart.
    #[serde(default)]
    pub exclude_cart: bool,
}

fn default_recommend_n() -> usize {
    4
}

/// Strategies that use nothing stored about the person: the only ones the generic default may
/// show, and the only ones served without `personalization` consent.
pub const GENERIC_STRATEGIES: [&str; 4] = ["popular", "popular_in_country", "popular_in_category", "trending"];

/// The generic variant's id in decisions and logs.
pub const DEFAULT_VARIANT: &str = "default";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSlot {
    id: String,
    name: String,
    kind: SlotKind,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    min_events: Option<u32>,
    #[serde(default)]
    variants: Vec<WireVariant>,
    default: WireDefault,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireVariant {
    id: String,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    when: Option<Value>,
    #[serde(default)]
    local_hours: Option<LocalHours>,
    #[serde(default)]
    exclude: Vec<String>,
    template: String,
    #[serde(default)]
    recommend: Option<RecommendSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDefault {
    template: String,
    #[serde(default)]
    recommend: Option<RecommendSpec>,
}

fn check_recommend(spec: &Option<RecommendSpec>, path: &str, generic_only: bool) -> Result<(), SlotError> {
    let Some(spec) = spec else { return Ok(()) };
    if spec.n == 0 || spec.n > 20 {
        return Err(SlotError::invalid(format!("{path}.recommend.n"), "must be 1 to 20"));
    }
    if generic_only {
        if spec.strategy.is_empty() {
            return Err(SlotError::invalid(
                format!("{path}.recommend.strategy"),
                format!("the default is generic: name its strategies, from {}", GENERIC_STRATEGIES.join(", ")),
            ));
        }
        let personal = spec.strategy.iter().enumerate().find(|(_, s)| !GENERIC_STRATEGIES.contains(&s.as_str()));
        if let Some((i, s)) = personal {
            return Err(SlotError::invalid(
                format!("{path}.recommend.strategy[{i}]"),
                format!(
                    "{s:?} uses the person's history; the generic default may use {}",
                    GENERIC_STRATEGIES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The default for [`SlotDefinition::min_events`]: two signals, never one.
pub const DEFAULT_MIN_EVENTS: u32 = 2;

impl SlotDefinition {
    /// Parses and checks a slot from JSON text. Segment existence is checked by the caller
    /// (see [`SlotDefinition::segments`]); templates are linted when compiled.
    pub fn parse_str(text: &str, policy: &PolicyConfig) -> Result<SlotDefinition, SlotError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let wire: WireSlot = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            SlotError::invalid(if path == "." { String::new() } else { path }, e.inner().to_string())
        })?;
        check_id(&wire.id, "id")?;
        if wire.name.trim().is_empty() {
            return Err(SlotError::invalid("name", "must not be empty"));
        }
        if wire.variants.len() > MAX_VARIANTS {
            return Err(SlotError::invalid("variants", format!("at most {MAX_VARIANTS} variants per slot")));
        }
        check_template(&wire.default.template, "default.template")?;
        check_recommend(&wire.default.recommend, "default", true)?;
        let exclude = parse_segment_ids(&wire.exclude, "exclude")?;
        let mut variants: Vec<VariantDefinition> = Vec::with_capacity(wire.variants.len());
        for (i, variant) in wire.variants.into_iter().enumerate() {
            let path = format!("variants[{i}]");
            check_id(&variant.id, &format!("{path}.id"))?;
            if variant.id == DEFAULT_VARIANT {
                return Err(SlotError::invalid(format!("{path}.id"), "\"default\" is the generic variant's id"));
            }
            if variants.iter().any(|v| v.id == variant.id) {
                return Err(SlotError::invalid(format!("{path}.id"), format!("duplicate variant id {:?}", variant.id)));
            }
            check_template(&variant.template, &format!("{path}.template"))?;
            check_recommend(&variant.recommend, &path, false)?;
            let targeting =
                Targeting::parse(variant.when.as_ref(), variant.local_hours, &variant.exclude, &path, policy)?;
            variants.push(VariantDefinition {
                id: variant.id,
                priority: variant.priority,
                targeting,
                template: variant.template,
                recommend: variant.recommend,
            });
        }
        // Stable: equal priorities keep their written order.
        variants.sort_by_key(|variant| std::cmp::Reverse(variant.priority));
        Ok(SlotDefinition {
            id: wire.id,
            name: wire.name,
            kind: wire.kind,
            description: wire.description,
            exclude,
            min_events: wire.min_events.unwrap_or(DEFAULT_MIN_EVENTS),
            variants,
            default_template: wire.default.template,
            default_recommend: wire.default.recommend,
        })
    }

    /// Every segment the slot refers to, with the JSON path of the reference.
    pub fn segments(&self) -> Vec<(String, &SegmentId)> {
        let mut out: Vec<(String, &SegmentId)> = self.exclude.iter().map(|s| ("exclude".to_owned(), s)).collect();
        for variant in &self.variants {
            for segment in variant.targeting.segments() {
                out.push((format!("variants[{}]", variant.id), segment));
            }
        }
        out
    }

    /// The template name a variant compiles under (unique across slots).
    pub fn template_name(&self, variant_id: &str) -> String {
        format!("{}/{}", self.id, variant_id)
    }
}

fn check_id(id: &str, path: &str) -> Result<(), SlotError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SlotError::invalid(path, format!("must be 1 to {MAX_ID_LEN} characters of a-z, 0-9, _ and -")))
    }
}

fn check_template(template: &str, path: &str) -> Result<(), SlotError> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(SlotError::invalid(path, format!("at most {MAX_TEMPLATE_BYTES} bytes")));
    }
    Ok(())
}

#[cfg(test)]
#[path = "slot_tests.rs"]
mod tests;
