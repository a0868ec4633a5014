//! Segments over stored history: a definition evaluated for every profile from the event log
//! and the live state. `POST /v1/segments/preview` and `regard segments preview` use it to
//! show the size and sample members of a draft before it is saved. (Saved segments are
//! backfilled by [`crate::backfill`], whose parallel scan reads only the properties matches
//! need; previews still parse each message whole.)

use std::time::{Duration, Instant};

use regard_core::facts::ProfileId;
use regard_core::live::LiveState;
use regard_core::profile::{Profile, VisitorKind};
use regard_core::segments::definition::{ContextField, EventMatch, PurchasesCondition};
use regard_core::segments::{evaluate, explain, Condition, ScoreSource, SegmentDefinition, SegmentFacts, SegmentId};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::{Map, Value};

use crate::sqlite::StoreError;
use crate::Engine;

/// One member shown in a preview, with the reasons in plain language.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewMember {
    /// The profile.
    pub profile_id: ProfileId,
    /// Its first userId, if identified.
    pub user_id: Option<String>,
    /// Why it is in the segment, one sentence per fact.
    pub reasons: Vec<String>,
}

/// What a draft segment would contain now.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPreview {
    /// Members now.
    pub size: usize,
    /// Profiles considered.
    pub profiles: usize,
    /// Profiles whose consent allows the segment's purpose (the only ones that can be members).
    pub eligible: usize,
    /// Stored events read.
    pub events_scanned: u64,
    /// Up to the requested number of members, with explanations.
    pub sample: Vec<PreviewMember>,
    /// Time taken.
    pub elapsed: Duration,
}

/// Every event match a condition asks about.
fn event_matches(condition: &Condition, out: &mut Vec<EventMatch>) {
    match condition {
        Condition::All(children) | Condition::Any(children) => children.iter().for_each(|c| event_matches(c, out)),
        Condition::Not(child) => event_matches(child, out),
        Condition::Event(c) => out.push(c.event.clone()),
        Condition::Catalog(c) => out.push(c.event.clone()),
        Condition::Never(c) => out.push(c.event.clone()),
        Condition::NotWithinDays(c) => out.push(c.event.clone()),
        Condition::Sequence(c) => {
            out.push(c.first.clone());
            out.push(c.then_never.clone());
        }
        Condition::Purchases(_) => out.push(PurchasesCondition::event_match()),
        Condition::Trait(_)
        | Condition::Visitor(_)
        | Condition::Context(_)
        | Condition::Segment(_)
        | Condition::Score(_) => {}
    }
}

/// A stored event reduced to what the definition's matches read.
struct SeenEvent {
    name: String,
    timestamp_ms: i64,
    properties: Map<String, Value>,
}

/// The context of a profile's latest event, for `context` conditions.
#[derive(Default, Clone)]
struct LastContext {
    timestamp_ms: i64,
    fields: Vec<(ContextField, String)>,
}

fn context_fields(message: &Value) -> Vec<(ContextField, String)> {
    let context = &message["context"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let mut out = Vec::new();
    for (field, value) in [
        (ContextField::UtmSource, &context["campaign"]["source"]),
        (ContextField::UtmMedium, &context["campaign"]["medium"]),
        (ContextField::UtmCampaign, &context["campaign"]["name"]),
    ] {
        if let Some(v) = text(value) {
            out.push((field, v));
        }
    }
    if let Some(referrer) = text(&context["page"]["referrer"]) {
        let host = referrer.split("://").nth(1).unwrap_or(&referrer).split(['/', '?', '#']).next().unwrap_or("");
        let host = host.strip_prefix("www.").unwrap_or(host);
        if !host.is_empty() {
            out.push((ContextField::ReferrerDomain, host.to_ascii_lowercase()));
        }
    }
    if let Some(agent) = text(&context["userAgent"]) {
        let lower = agent.to_ascii_lowercase();
        let device = if lower.contains("ipad") || lower.contains("tablet") {
            "tablet"
        } else if lower.contains("mobi") || lower.contains("iphone") || lower.contains("android") {
            "mobile"
        } else {
            "desktop"
        };
        out.push((ContextField::Device, device.to_owned()));
    }
    if let Some(country) = text(&context["location"]["country"]) {
        out.push((ContextField::Country, country));
    }
    out
}

/// What the evaluator may ask about one profile, answered from the scan and the live state.
struct HistoryFacts<'a> {
    live: &'a LiveState,
    profile: &'a Profile,
    events: &'a [SeenEvent],
    context: Option<&'a LastContext>,
}

impl ScoreSource for HistoryFacts<'_> {
    fn score(&self, _name: &str) -> Option<f64> {
        // No model serves scores yet; a score condition holds for nobody.
        None
    }
}

impl SegmentFacts for HistoryFacts<'_> {
    fn trait_value(&self, name: &str) -> Option<Value> {
        let key = self.live.symbols.get(name)?;
        serde_json::from_str(self.profile.trait_json(key)?).ok()
    }

    fn matching_events(&self, event: &EventMatch) -> Vec<i64> {
        self.events
            .iter()
            .filter(|e| event.matches_name_and_filters(&e.name, &e.properties))
            .filter(|e| self.live.event_in_category(event, &e.properties))
            .map(|e| e.timestamp_ms)
            .collect()
    }

    fn visitor_kind(&self) -> VisitorKind {
        self.profile.visitor_kind()
    }

    fn context(&self, field: ContextField) -> Option<String> {
        if field == ContextField::Country {
            if let Some(Value::String(country)) = self.trait_value("country") {
                return Some(country);
            }
        }
        self.context?.fields.iter().find(|(f, _)| *f == field).map(|(_, v)| v.clone())
    }

    fn is_member(&self, _segment: &SegmentId) -> bool {
        // Saved segments are not maintained yet; a draft cannot lean on one.
        false
    }
}

/// Evaluates `definition` for every profile over its stored history, as of `now_ms`.
pub fn preview(
    engine: &Engine,
    definition: &SegmentDefinition,
    now_ms: i64,
    sample_size: usize,
) -> Result<SegmentPreview, StoreError> {
    let started = Instant::now();
    let mut matches = Vec::new();
    event_matches(definition.condition(), &mut matches);
    let names: Vec<String> = matches.iter().map(|m| m.name.clone()).collect::<FxHashSet<_>>().into_iter().collect();
    let mut keys: FxHashSet<String> = ["product_id", "category", "products"].into_iter().map(str::to_owned).collect();
    for m in &matches {
        keys.extend(m.filters.iter().map(|f| f.property.clone()));
    }
    let mut events: FxHashMap<ProfileId, Vec<SeenEvent>> = FxHashMap::default();
    let mut contexts: FxHashMap<ProfileId, LastContext> = FxHashMap::default();
    let wants_context = uses_context(definition.condition());
    let mut scanned = 0;
    if !names.is_empty() || wants_context {
        // With context conditions every event is read, to know each profile's latest visit.
        let filter = if wants_context { Vec::new() } else { names.clone() };
        scanned = engine.reader().scan_events(&filter, &mut |profile_id, name, timestamp_ms, raw| {
            let Ok(message) = serde_json::from_str::<Value>(raw) else { return };
            if wants_context {
                let last = contexts.entry(profile_id).or_default();
                if timestamp_ms >= last.timestamp_ms {
                    *last = LastContext { timestamp_ms, fields: context_fields(&message) };
                }
            }
            let Some(name) = name.filter(|n| names.iter().any(|wanted| wanted == n)) else { return };
            let properties = match message.get("properties") {
                Some(Value::Object(all)) => {
                    all.iter().filter(|(k, _)| keys.contains(k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
                }
                _ => Map::new(),
            };
            events.entry(profile_id).or_default().push(SeenEvent { name: name.to_owned(), timestamp_ms, properties });
        })?;
    }
    let live = engine.state();
    // Events were filed under the profile id of their time; merges since then point elsewhere.
    let mut by_profile: FxHashMap<ProfileId, Vec<SeenEvent>> = FxHashMap::default();
    for (id, list) in events {
        by_profile.entry(live.canonical(id)).or_default().extend(list);
    }
    let mut context_by_profile: FxHashMap<ProfileId, LastContext> = FxHashMap::default();
    for (id, context) in contexts {
        let entry = context_by_profile.entry(live.canonical(id)).or_default();
        if context.timestamp_ms >= entry.timestamp_ms {
            *entry = context;
        }
    }
    let purpose = definition.purpose().consent_purpose();
    let mut preview = SegmentPreview {
        size: 0,
        profiles: live.profile_count(),
        eligible: 0,
        events_scanned: scanned,
        sample: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut ids: Vec<ProfileId> = live.profiles().map(|p| p.id).collect();
    ids.sort_unstable();
    for id in ids {
        let Some(profile) = live.profile(id) else { continue };
        if !live.allows(profile, purpose) {
            continue;
        }
        preview.eligible += 1;
        let facts = HistoryFacts {
            live: &live,
            profile,
            events: by_profile.get(&id).map(Vec::as_slice).unwrap_or(&[]),
            context: context_by_profile.get(&id),
        };
        let evaluation = evaluate(definition.condition(), &facts, now_ms);
        if evaluation.member {
            preview.size += 1;
            if preview.sample.len() < sample_size {
                preview.sample.push(PreviewMember {
                    profile_id: id,
                    user_id: profile.user_id().map(str::to_owned),
                    reasons: evaluation.reasons.iter().map(explain).collect(),
                });
            }
        }
    }
    preview.elapsed = started.elapsed();
    Ok(preview)
}

fn uses_context(condition: &Condition) -> bool {
    match condition {
        Condition::All(children) | Condition::Any(children) => children.iter().any(uses_context),
        Condition::Not(child) => uses_context(child),
        Condition::Context(_) => true,
        _ => false,
    }
}
