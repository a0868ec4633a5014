//! Data subject rights: the access export (everything held on a person, with the reasons), and
//! erasure or anonymization (every row of the person in every table, in-memory state included,
//! with tombstones against replayed old events). Used by `POST /v1/privacy/requests` and by
//! `regard privacy export|erase`, which run the same code on the same store.

use regard_core::message::IdentityKind;
use regard_core::segments::explain;
use regard_core::time::format_iso8601_ms;
use regard_store::content::{ContentStore, PrivacyRequestRow};
use regard_store::Engine;
use serde::Serialize;
use serde_json::{json, Value};

use crate::views::{event_view, profile_view};

/// Days a request may take under each regulation: GDPR Art. 12(3) (one month), CCPA (45 days).
pub fn deadline_days(regulation: &str) -> Option<i64> {
    match regulation {
        "gdpr" => Some(30),
        "ccpa" => Some(45),
        _ => None,
    }
}

/// The kinds of request.
pub const REQUEST_KINDS: [&str; 3] = ["access", "erase", "anonymize"];

/// Why a privacy operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// Nobody is known by the id.
    #[error("no profile is known by {0:?} (userId, anonymousId or internal id)")]
    NotFound(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(String),
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErasureReport {
    /// Profiles removed (the person and every profile merged into them).
    pub profiles: usize,
    /// Their stored events deleted.
    pub events: usize,
    /// Decide requests removed from the decision log.
    pub decision_log_rows: usize,
    /// Ids remembered as salted hashes so replayed old events are dropped.
    pub tombstones: usize,
    /// Whether their events were first kept as anonymous daily counts.
    pub kept_anonymous_counts: bool,
    /// Compression dictionaries that still hold fragments of their ids or traits (a dictionary
    /// is trained on the store's first messages); empty when none do. Rewriting the events
    /// compressed with such a dictionary is not built yet, so this is reported, not hidden.
    pub dictionaries_with_fragments: Vec<u32>,
}

/// Masks an id for the request log once the person is gone: `us***42`.
pub use regard_store::content::mask_subject as mask;

/// Everything held on the person known by `key`: identities, traits with their history,
/// consents with their history, events, segment memberships with their reasons, predictions
/// with their explanations, the decision log, messages sent and experiments (none yet: those
/// features are not built).
pub fn export_person(
    engine: &Engine,
    content: &ContentStore,
    predictions: Option<Value>,
    key: &str,
    now_ms: i64,
) -> Result<Value, PrivacyError> {
    let (mut view, member_ids, seqs, memberships) = {
        let live = engine.state();
        let profile = live.find_profile(key).ok_or_else(|| PrivacyError::NotFound(key.to_owned()))?;
        let member_ids = live.member_ids(profile.id);
        let mut seqs: Vec<u64> = member_ids
            .iter()
            .filter_map(|id| live.profile(*id))
            .flat_map(|p| p.timeline.iter().map(|e| e.seq))
            .collect();
        seqs.sort_unstable();
        let memberships: Vec<Value> = live
            .memberships(profile.id)
            .into_iter()
            .map(|segment| {
                let reasons: Vec<String> =
                    live.segment_reasons(profile.id, segment, now_ms).unwrap_or_default().iter().map(explain).collect();
                let purpose = live.segment(segment).map(|s| s.definition.purpose().as_str());
                json!({"segment": segment, "purpose": purpose, "reasons": reasons})
            })
            .collect();
        (profile_view(&live, profile), member_ids, seqs, memberships)
    };
    let reader = engine.reader();
    let store = |e: regard_store::StoreError| PrivacyError::Store(e.to_string());
    let trait_history = reader.trait_history(&member_ids, usize::MAX).map_err(store)?;
    let consent_history = reader.consent_history(&member_ids).map_err(store)?;
    let mut events = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(500) {
        events.extend(reader.events_by_seq(chunk).map_err(store)?.iter().map(event_view));
    }
    let decisions = content.decisions_for(&member_ids, None, usize::MAX >> 1).map_err(store)?;
    let map = view.as_object_mut().expect("a profile view is an object");
    map.insert(
        "trait_history".into(),
        trait_history
            .iter()
            .map(|t| {
                json!({"trait": t.key, "value": serde_json::from_str::<Value>(&t.value_json).unwrap_or(Value::Null),
                       "at": format_iso8601_ms(t.at_ms), "messageId": t.message_id})
            })
            .collect(),
    );
    map.insert(
        "consent_history".into(),
        consent_history
            .iter()
            .map(|c| {
                json!({"purpose": c.purpose.as_str(), "granted": c.granted, "at": format_iso8601_ms(c.at_ms),
                       "source": c.source.as_str(), "policy_version": c.policy_version})
            })
            .collect(),
    );
    map.insert("events".into(), Value::Array(events));
    map.insert("segments".into(), Value::Array(memberships));
    map.insert("predictions".into(), predictions.unwrap_or_else(|| json!({"predictions": [], "not_served": []})));
    map.insert(
        "decisions".into(),
        decisions
            .iter()
            .map(|d| {
                json!({"decision_id": d.decision_id, "at": format_iso8601_ms(d.at_ms), "slot": d.slot,
                       "variant": d.variant, "level": d.level, "explanation": d.explanation})
            })
            .collect(),
    );
    map.insert("messages_sent".into(), json!([]));
    map.insert("experiments".into(), json!([]));
    map.insert("exported_at".into(), json!(format_iso8601_ms(now_ms)));
    Ok(view)
}

/// Erases (or, with `keep_counts`, anonymizes) the person known by `key`: their profile and
/// every profile merged into it leave memory and every table of both stores, with tombstones
/// against replayed old events. The caller retrains models that learned from them.
pub fn erase_person(
    engine: &Engine,
    content: &ContentStore,
    key: &str,
    keep_counts: bool,
    now_ms: i64,
) -> Result<ErasureReport, PrivacyError> {
    let (events, ids, needles): (usize, Vec<String>, Vec<String>) = {
        let live = engine.state();
        let profile = live.find_profile(key).ok_or_else(|| PrivacyError::NotFound(key.to_owned()))?;
        let members = live.member_ids(profile.id);
        let people: Vec<_> = members.iter().filter_map(|id| live.profile(*id)).collect();
        let events = people.iter().map(|p| p.timeline.len()).sum();
        let ids: Vec<String> = people.iter().flat_map(|p| p.identities.iter().map(|(_, v)| v.to_string())).collect();
        let mut needles = ids.clone();
        for person in &people {
            for value in &person.traits {
                if let Ok(Value::String(text)) = serde_json::from_str::<Value>(&value.value_json) {
                    needles.push(text);
                }
            }
        }
        (events, ids, needles)
    };
    let owned_key = key.to_owned();
    let erased = engine
        .apply_blocking(move |live, facts| {
            let tombstones = live.tombstone_count();
            live.erase_person(&owned_key, now_ms, keep_counts, facts)
                .map(|ids| (ids, live.tombstone_count() - tombstones))
        })
        .map_err(|e| PrivacyError::Store(e.to_string()))?;
    let Some((profile_ids, tombstones)) = erased else { return Err(PrivacyError::NotFound(key.to_owned())) };
    let decision_log_rows =
        content.erase_decisions(&profile_ids, &ids).map_err(|e| PrivacyError::Store(e.to_string()))?;
    let dictionaries_with_fragments =
        engine.reader().dictionaries_containing(&needles).map_err(|e| PrivacyError::Store(e.to_string()))?;
    if !dictionaries_with_fragments.is_empty() {
        tracing::warn!(
            ?dictionaries_with_fragments,
            "an erased person's ids or traits appear in a compression dictionary"
        );
    }
    Ok(ErasureReport {
        dictionaries_with_fragments,
        profiles: profile_ids.len(),
        events,
        decision_log_rows,
        tombstones,
        kept_anonymous_counts: keep_counts,
    })
}

/// The access export as a ZIP of CSV files, one per part of the document (events, trait
/// history, consent history, segments, predictions, decisions...; the profile's own fields in
/// `profile.csv`), plus the whole document as `export.json`: the form a person can open in a
/// spreadsheet.
pub fn export_zip(document: &Value) -> Result<Vec<u8>, PrivacyError> {
    use std::io::Write;
    let failed = |e: &dyn std::fmt::Display| PrivacyError::Store(format!("writing the ZIP: {e}"));
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let cell = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut profile_rows: Vec<[String; 2]> = Vec::new();
    for (part, value) in document.as_object().into_iter().flatten() {
        let rows: Vec<&serde_json::Map<String, Value>> = match value {
            Value::Array(items) if items.iter().all(Value::is_object) => {
                items.iter().filter_map(Value::as_object).collect()
            }
            // A part that is an object of lists (predictions) becomes one file per list.
            Value::Object(map) if map.values().any(|v| v.is_array()) && part != "traits" => {
                for (inner, list) in map {
                    if let Value::Array(items) = list {
                        let rows: Vec<_> = items.iter().filter_map(Value::as_object).collect();
                        write_csv(&mut archive, options, &format!("{part}_{inner}.csv"), &rows, &cell)?;
                    } else {
                        profile_rows.push([format!("{part}.{inner}"), cell(list)]);
                    }
                }
                continue;
            }
            other => {
                profile_rows.push([part.clone(), cell(other)]);
                continue;
            }
        };
        write_csv(&mut archive, options, &format!("{part}.csv"), &rows, &cell)?;
    }
    let mut profile = csv::Writer::from_writer(Vec::new());
    profile.write_record(["field", "value"]).map_err(|e| failed(&e))?;
    for row in &profile_rows {
        profile.write_record(row).map_err(|e| failed(&e))?;
    }
    let bytes = profile.into_inner().map_err(|e| failed(&e))?;
    archive.start_file("profile.csv", options).map_err(|e| failed(&e))?;
    archive.write_all(&bytes).map_err(|e| failed(&e))?;
    archive.start_file("export.json", options).map_err(|e| failed(&e))?;
    let json = serde_json::to_vec_pretty(document).map_err(|e| failed(&e))?;
    archive.write_all(&json).map_err(|e| failed(&e))?;
    Ok(archive.finish().map_err(|e| failed(&e))?.into_inner())
}

fn write_csv(
    archive: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    options: zip::write::SimpleFileOptions,
    name: &str,
    rows: &[&serde_json::Map<String, Value>],
    cell: &dyn Fn(&Value) -> String,
) -> Result<(), PrivacyError> {
    use std::io::Write;
    let failed = |e: &dyn std::fmt::Display| PrivacyError::Store(format!("writing {name}: {e}"));
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&columns).map_err(|e| failed(&e))?;
    for row in rows {
        let record: Vec<String> = columns.iter().map(|c| row.get(*c).map(cell).unwrap_or_default()).collect();
        writer.write_record(&record).map_err(|e| failed(&e))?;
    }
    let bytes = writer.into_inner().map_err(|e| failed(&e))?;
    archive.start_file(name, options).map_err(|e| failed(&e))?;
    archive.write_all(&bytes).map_err(|e| failed(&e))
}

/// The identity kinds an id may be, for reports.
pub fn identity_kind_name(kind: IdentityKind) -> &'static str {
    match kind {
        IdentityKind::UserId => "userId",
        IdentityKind::AnonymousId => "anonymousId",
    }
}

/// A new request id: time-ordered hex.
pub fn request_id(now_ms: i64) -> String {
    format!("pr_{:012x}{:08x}", now_ms.max(0), rand::random::<u32>())
}

/// A request row as the API shows it.
pub fn request_view(row: &PrivacyRequestRow, now_ms: i64) -> Value {
    json!({
        "id": row.id,
        "type": row.kind,
        "subject": row.subject,
        "regulation": row.regulation,
        "status": row.status,
        "received_at": format_iso8601_ms(row.received_ms),
        "deadline": format_iso8601_ms(row.deadline_ms),
        "overdue": row.completed_ms.is_none() && now_ms > row.deadline_ms,
        "completed_at": row.completed_ms.map(format_iso8601_ms),
        "result": row.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_two_characters_at_each_end() {
        assert_eq!(mask("user-00784"), "us***84");
        assert_eq!(mask("abc"), "***");
        assert_eq!(deadline_days("ccpa"), Some(45));
        assert_eq!(deadline_days("lgpd"), None);
    }
}
