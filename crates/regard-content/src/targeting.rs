//! Who a variant is for: a condition in the segment language, evaluated at decision time
//! against the person and the request, plus the two things only a decision knows (the hour in
//! the person's time zone, and exclusion audiences).
//!
//! Behavioral conditions (events, sequences, purchases, catalog) are not allowed inline: they
//! belong in a segment, where the policy check, the thin-data guard, the real-time index and the
//! explanations already are. A variant targets such people with `{"segment": "..."}`. What is
//! left (traits, visitor, context, segments, scores) is cheap to evaluate per request.

use regard_core::segments::definition::{Condition, ContextField, SegmentDefinition, SegmentId};
use regard_core::segments::evaluate::{evaluate, ReasonDetail};
use regard_core::segments::policy::{self, PolicyConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decide::PersonFacts;
use crate::slot::SlotError;

/// A variant's audience.
#[derive(Debug, Clone, PartialEq)]
pub struct Targeting {
    /// Who qualifies; `None` targets everyone (the variant is then chosen by priority alone).
    pub when: Option<Condition>,
    /// Hours of the day in the person's time zone during which the variant may show.
    pub local_hours: Option<LocalHours>,
    /// Segments whose members never get this variant.
    pub exclude: Vec<SegmentId>,
}

/// A span of local hours, `from` inclusive to `to` exclusive; it wraps past midnight when
/// `from > to` (22 to 6 is the night).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalHours {
    /// First hour (0..=23).
    pub from: u8,
    /// Hour after the last (1..=24).
    pub to: u8,
}

impl LocalHours {
    /// Whether `hour` (0..=23) falls in the span.
    pub fn contains(self, hour: u8) -> bool {
        if self.from < self.to {
            (self.from..self.to).contains(&hour)
        } else {
            hour >= self.from || hour < self.to
        }
    }

    /// The part of the day, for explanations.
    pub fn describe(self) -> &'static str {
        match self.from {
            5..=11 => "morning",
            12..=16 => "afternoon",
            17..=21 => "evening",
            _ => "night",
        }
    }
}

/// How strong the data behind a choice is: the personalization level reported with every
/// decision, ordered from the least personal to the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Everyone sees this.
    Generic,
    /// Chosen from the request's context (campaign, referrer, device, country, time of day).
    Dynamic,
    /// Chosen from traits the person gave.
    Identity,
    /// Chosen from what the person did (segments, new or returning).
    Behavioral,
    /// Chosen from a model's prediction.
    Predictive,
}

impl Level {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Generic => "generic",
            Level::Dynamic => "dynamic",
            Level::Identity => "identity",
            Level::Behavioral => "behavioral",
            Level::Predictive => "predictive",
        }
    }

    /// Whether a choice at this level rests on stored data about the person (and so needs
    /// enough of it: the thin-data rung of the ladder).
    pub fn needs_history(self) -> bool {
        matches!(self, Level::Behavioral | Level::Predictive)
    }
}

/// One condition that held, for the decision log and the explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FiredCondition {
    /// JSON path of the condition in the slot definition.
    pub path: String,
    /// The level this condition speaks for.
    pub level: Level,
    /// The sentence addressed to the person.
    pub text: String,
}

/// The outcome of matching one variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// The variant applies, for these reasons.
    Yes(Vec<FiredCondition>),
    /// It does not apply.
    No,
    /// The person is in an exclusion audience.
    Excluded(SegmentId),
}

impl Targeting {
    /// Parses `when` (the segment condition language), `local_hours` and `exclude` from a
    /// variant's JSON, running the segment policy check on `when` so a variant cannot target
    /// what a segment may not. `path` prefixes error paths (e.g. `variants[2]`).
    pub fn parse(
        when: Option<&Value>,
        local_hours: Option<LocalHours>,
        exclude: &[String],
        path: &str,
        policy: &PolicyConfig,
    ) -> Result<Targeting, SlotError> {
        let when = match when {
            None | Some(Value::Null) => None,
            Some(condition) => Some(parse_when(condition, &format!("{path}.when"), policy)?),
        };
        if let Some(hours) = local_hours {
            if hours.from > 23 || hours.to == 0 || hours.to > 24 || hours.from == hours.to {
                return Err(SlotError::invalid(
                    format!("{path}.local_hours"),
                    "from must be 0..=23, to 1..=24, and they must differ",
                ));
            }
        }
        let exclude = parse_segment_ids(exclude, &format!("{path}.exclude"))?;
        Ok(Targeting { when, local_hours, exclude })
    }

    /// The segments this targeting refers to (to check they exist when saving).
    pub fn segments(&self) -> Vec<&SegmentId> {
        let mut out: Vec<&SegmentId> = self.exclude.iter().collect();
        if let Some(when) = &self.when {
            collect_segments(when, &mut out);
        }
        out
    }

    /// Matches the person and request at `now_ms`.
    pub fn matches(&self, person: &dyn PersonFacts, now_ms: i64) -> Match {
        if let Some(segment) = self.exclude.iter().find(|segment| person.is_member(segment)) {
            return Match::Excluded(segment.clone());
        }
        let mut fired = Vec::new();
        if let Some(hours) = self.local_hours {
            match person.local_hour() {
                Some(hour) if hours.contains(hour) => fired.push(FiredCondition {
                    path: "local_hours".to_owned(),
                    level: Level::Dynamic,
                    text: format!("It is {} where you are.", hours.describe()),
                }),
                _ => return Match::No,
            }
        }
        if let Some(when) = &self.when {
            let evaluation = evaluate(when, person.segment_facts(), now_ms);
            if !evaluation.member {
                return Match::No;
            }
            for reason in evaluation.reasons {
                let path = reason.path.replacen("condition", "when", 1);
                match &reason.detail {
                    ReasonDetail::Segment { id, member: true } => {
                        let level =
                            if person.is_predictive_segment(id) { Level::Predictive } else { Level::Behavioral };
                        for text in person.segment_explanations(id, now_ms) {
                            fired.push(FiredCondition { path: path.clone(), level, text });
                        }
                    }
                    // A "not in segment X" holds for nearly everyone; it is no reason to give.
                    ReasonDetail::Segment { member: false, .. } => {}
                    detail => fired.push(FiredCondition {
                        path,
                        level: detail_level(detail),
                        text: regard_core::segments::evaluate::explain(&reason),
                    }),
                }
            }
        }
        Match::Yes(fired)
    }
}

fn parse_when(value: &Value, path: &str, policy: &PolicyConfig) -> Result<Condition, SlotError> {
    let wrapped = serde_json::json!({
        "id": "variant-targeting",
        "name": "variant targeting",
        "purpose": "personalization",
        "condition": value,
    });
    let rename = |inner: &str| format!("{path}{}", inner.strip_prefix("condition").unwrap_or(inner));
    let definition =
        SegmentDefinition::parse_value(&wrapped).map_err(|e| SlotError::invalid(rename(e.path()), e.to_string()))?;
    let violations = policy::check(&definition, policy);
    if let Some(first) = violations.first() {
        return Err(SlotError::Policy { path: rename(&first.path), message: policy::describe(&violations) });
    }
    let condition = definition.condition().clone();
    if let Some(inner) = behavioral_path(&condition, "condition") {
        return Err(SlotError::invalid(
            rename(&inner),
            "event, never, not_within_days, sequence, purchases and catalog conditions belong in a segment; \
             target it with {\"segment\": \"<id>\"}",
        ));
    }
    Ok(condition)
}

/// The path of the first behavioral (event-history) condition, if any.
fn behavioral_path(condition: &Condition, path: &str) -> Option<String> {
    match condition {
        Condition::All(children) | Condition::Any(children) => {
            let kind = if matches!(condition, Condition::All(_)) { "all" } else { "any" };
            children.iter().enumerate().find_map(|(i, child)| behavioral_path(child, &format!("{path}.{kind}[{i}]")))
        }
        Condition::Not(child) => behavioral_path(child, &format!("{path}.not")),
        Condition::Event(_)
        | Condition::Never(_)
        | Condition::NotWithinDays(_)
        | Condition::Sequence(_)
        | Condition::Purchases(_)
        | Condition::Catalog(_) => Some(path.to_owned()),
        Condition::Trait(_)
        | Condition::Visitor(_)
        | Condition::Context(_)
        | Condition::Segment(_)
        | Condition::Score(_) => None,
    }
}

fn collect_segments<'a>(condition: &'a Condition, out: &mut Vec<&'a SegmentId>) {
    match condition {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|child| collect_segments(child, out));
        }
        Condition::Not(child) => collect_segments(child, out),
        Condition::Segment(id) => out.push(id),
        _ => {}
    }
}

fn detail_level(detail: &ReasonDetail) -> Level {
    match detail {
        ReasonDetail::Trait { .. } | ReasonDetail::Birthday { .. } => Level::Identity,
        ReasonDetail::Context { field, .. } => match field {
            // All context fields come from the request, not from stored data.
            ContextField::Country
            | ContextField::Region
            | ContextField::UtmSource
            | ContextField::UtmMedium
            | ContextField::UtmCampaign
            | ContextField::ReferrerDomain
            | ContextField::Device => Level::Dynamic,
        },
        ReasonDetail::Score { .. } => Level::Predictive,
        _ => Level::Behavioral,
    }
}

/// Parses a list of segment ids, naming the index of a bad one.
pub fn parse_segment_ids(ids: &[String], path: &str) -> Result<Vec<SegmentId>, SlotError> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| SegmentId::parse(id).map_err(|message| SlotError::invalid(format!("{path}[{i}]"), message)))
        .collect()
}
