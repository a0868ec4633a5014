//! `GET /v1/profiles/{id}` and `GET /v1/profiles/{id}/events`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use regard_core::profile::TimelineEntry;
use regard_core::time::format_iso8601_ms;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiQuery, ErrorCode};
use crate::views::{event_view, profile_view};
use crate::AppState;

/// How many recent events a profile shows.
pub const RECENT_EVENTS: usize = 20;
/// How many trait changes a profile shows.
pub const TRAIT_HISTORY: usize = 100;
/// Largest page of events.
pub const MAX_PAGE: usize = 1_000;

fn not_found(id: &str) -> ApiError {
    ApiError::field(
        ErrorCode::NotFound,
        "id",
        format!("no profile is known by {id:?} (userId, anonymousId or internal id)"),
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| ApiError::new(ErrorCode::Internal, "a read task failed"))?
}

/// A profile: traits (with their history), identities, consents, counters and recent events.
pub async fn get_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let (mut view, member_ids, recent): (Value, Vec<u64>, Vec<u64>) = {
        let live = state.engine.state();
        let profile = live.find_profile(&id).ok_or_else(|| not_found(&id))?;
        let recent = profile.timeline.iter().rev().take(RECENT_EVENTS).map(|e| e.seq).collect();
        (profile_view(&live, profile), live.member_ids(profile.id), recent)
    };
    let engine = state.engine.clone();
    let (events, history, consent_history) = blocking(move || {
        let reader = engine.reader();
        Ok((
            reader.events_by_seq(&recent)?,
            reader.trait_history(&member_ids, TRAIT_HISTORY)?,
            reader.consent_history(&member_ids)?,
        ))
    })
    .await?;
    if let Some(map) = view.as_object_mut() {
        map.insert("recent_events".into(), Value::Array(events.iter().map(event_view).collect()));
        map.insert(
            "trait_history".into(),
            Value::Array(
                history
                    .iter()
                    .map(|t| {
                        json!({
                            "trait": t.key,
                            "value": serde_json::from_str::<Value>(&t.value_json).unwrap_or(Value::Null),
                            "at": format_iso8601_ms(t.at_ms),
                            "messageId": t.message_id,
                        })
                    })
                    .collect(),
            ),
        );
        map.insert(
            "consent_history".into(),
            Value::Array(
                consent_history
                    .iter()
                    .map(|c| {
                        json!({
                            "purpose": c.purpose.as_str(),
                            "granted": c.granted,
                            "at": format_iso8601_ms(c.at_ms),
                            "source": c.source.as_str(),
                            "policy_version": c.policy_version,
                        })
                    })
                    .collect(),
            ),
        );
    }
    Ok(Json(view))
}

/// Query of the events listing.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Page size (default 50, at most 1,000).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn parse_cursor(text: &str) -> Option<TimelineEntry> {
    let (ts, seq) = text.split_once('.')?;
    Some(TimelineEntry { timestamp_ms: ts.parse().ok()?, seq: seq.parse().ok()? })
}

/// A profile's events, newest first, in pages.
pub async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::field(
                    ErrorCode::InvalidField,
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                ))
            }
        },
    };
    let cursor =
        match query.cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(parse_cursor(text).ok_or_else(|| {
                ApiError::field(ErrorCode::InvalidField, "cursor", "not a cursor from a previous page")
            })?),
        };
    let (page, next) = {
        let live = state.engine.state();
        let profile = live.find_profile(&id).ok_or_else(|| not_found(&id))?;
        let end = match cursor {
            Some(c) => profile.timeline.partition_point(|e| *e < c),
            None => profile.timeline.len(),
        };
        let start = end.saturating_sub(limit);
        let page: Vec<TimelineEntry> = profile.timeline[start..end].iter().rev().copied().collect();
        let next = (start > 0).then(|| page.last().map(|e| format!("{}.{}", e.timestamp_ms, e.seq))).flatten();
        (page, next)
    };
    let engine = state.engine.clone();
    let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
    let events = blocking(move || Ok(engine.reader().events_by_seq(&seqs)?)).await?;
    Ok(Json(json!({
        "events": events.iter().map(event_view).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
