//! Saved segments: CRUD, members, a profile's segments, the backfill status, and
//! `POST /v1/segments/preview` (the size and sample members of a draft, after the same policy
//! check saving runs).
//!
//! Saving answers 201 (create) or 200 (update) when the segment is ready at once: nothing had
//! to be read from the stored history (its event matches were indexed already, it tests only
//! traits and visits, or the store is empty). Otherwise it answers 202 Accepted while a
//! background backfill reads the history; `GET /v1/segments/{id}/status` (also in `Location`)
//! follows it to `ready`. Until then memberships count only events stored since the save, and
//! every view of them says `"ready": false`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use regard_core::live::{LiveState, SavedSegment};
use regard_core::segments::{check_definition, explain, DefinitionError, SaveError};
use regard_core::time::format_iso8601_ms;
use regard_store::backfill::{SegmentState, SegmentStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::read_body;
use crate::error::{ApiError, ApiQuery, ErrorCode};
use crate::views::profile_key;
use crate::AppState;

/// Largest definition accepted.
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;

/// Turns a refused definition into the API's error: the field is the JSON path of the (first)
/// offending condition.
pub fn save_error(error: SaveError) -> ApiError {
    match error {
        SaveError::Definition(DefinitionError::Json(message)) => ApiError::new(ErrorCode::InvalidJson, message),
        SaveError::Definition(DefinitionError::Invalid { path, message })
        | SaveError::Definition(DefinitionError::TooComplex { path, message }) => {
            ApiError::field(ErrorCode::InvalidField, path, message)
        }
        SaveError::Policy(violations) => {
            let message = violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            match violations.into_iter().next() {
                Some(first) => ApiError::field(ErrorCode::PolicyViolation, first.path, message),
                None => ApiError::new(ErrorCode::PolicyViolation, message),
            }
        }
    }
}

/// Query of the preview.
#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    /// How many members to show (default 10, at most 100).
    pub sample: Option<usize>,
}

/// Evaluates a draft definition (the request body) over every profile's stored history.
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<PreviewQuery>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let text = read_body(&headers, body, MAX_DEFINITION_BYTES).await?;
    let definition = check_definition(&text, &state.engine.config().live.policy).map_err(save_error)?;
    let sample = query.sample.unwrap_or(10).min(100);
    let now_ms = state.clock.now_ms();
    let engine = state.engine.clone();
    let result = tokio::task::spawn_blocking(move || {
        regard_store::segments::preview(&engine, &definition, now_ms, sample).map(|p| (p, definition))
    })
    .await
    .map_err(|_| ApiError::new(ErrorCode::Internal, "the preview task failed"))?;
    let (preview, definition) = result?;
    Ok(Json(json!({
        "id": definition.id().as_str(),
        "name": definition.name(),
        "purpose": definition.purpose().consent_purpose().as_str(),
        "policy": "accepted",
        "size": preview.size,
        "profiles": preview.profiles,
        "eligible_profiles": preview.eligible,
        "events_scanned": preview.events_scanned,
        "elapsed_ms": preview.elapsed.as_secs_f64() * 1e3,
        "sample": preview.sample.iter().map(|m| json!({
            "profile_id": profile_key(m.profile_id),
            "user_id": m.user_id,
            "reasons": m.reasons,
        })).collect::<Vec<_>>(),
    })))
}

fn segment_view(segment: &SavedSegment) -> Value {
    let definition: Value = serde_json::from_str(&segment.definition_json).unwrap_or(Value::Null);
    json!({
        "id": segment.definition.id().as_str(),
        "name": segment.definition.name(),
        "description": segment.definition.description(),
        "purpose": segment.definition.purpose().consent_purpose().as_str(),
        "version": segment.version,
        "updated_at": regard_core::time::format_iso8601_ms(segment.updated_ms),
        "definition": definition,
    })
}

/// A segment's backfill status as the API shows it.
pub fn status_view(status: &SegmentStatus, now_ms: i64) -> Value {
    let mut view = json!({
        "state": match status.state {
            SegmentState::Backfilling => "backfilling",
            SegmentState::Ready => "ready",
            SegmentState::Failed(_) => "failed",
        },
        "ready": status.is_ready(),
        "scanned": status.scanned,
        "total": status.total,
        "percent": (status.percent() * 10.0).round() / 10.0,
        "started_at": status.saved_ms.map(format_iso8601_ms),
    });
    let Some(map) = view.as_object_mut() else { return view };
    match &status.state {
        SegmentState::Backfilling => {
            map.insert("phase".into(), json!(status.phase.map(|p| p.as_str())));
            map.insert("scan_started_at".into(), json!(status.started_ms.map(format_iso8601_ms)));
            map.insert("elapsed_ms".into(), json!(status.saved_ms.map(|saved| (now_ms - saved).max(0))));
        }
        SegmentState::Ready => {
            map.insert("ready_at".into(), json!(status.finished_ms.map(format_iso8601_ms)));
            let duration = status.saved_ms.zip(status.finished_ms).map(|(saved, ready)| (ready - saved).max(0));
            map.insert("duration_ms".into(), json!(duration));
        }
        SegmentState::Failed(message) => {
            map.insert("failed_at".into(), json!(status.finished_ms.map(format_iso8601_ms)));
            map.insert("message".into(), json!(message));
        }
    }
    view
}

/// A segment with its size and status.
fn full_view(state: &AppState, live: &LiveState, segment: &SavedSegment) -> Value {
    let mut view = segment_view(segment);
    let id = segment.definition.id().as_str();
    if let Some(map) = view.as_object_mut() {
        if let Some(size) = live.segment_size(id) {
            map.insert("size".into(), json!(size));
        }
        if let Some(status) = state.engine.segment_status_in(live, id) {
            map.insert("status".into(), status_view(&status, state.clock.now_ms()));
        }
    }
    view
}

fn no_segment(id: &str) -> ApiError {
    ApiError::field(ErrorCode::NotFound, "id", format!("no segment {id:?}"))
}

async fn save(state: &AppState, text: String, path_id: Option<String>) -> Result<Response, ApiError> {
    let definition = check_definition(&text, &state.engine.config().live.policy).map_err(save_error)?;
    let id = definition.id().as_str().to_owned();
    if let Some(path_id) = &path_id {
        if *path_id != id {
            return Err(ApiError::field(
                ErrorCode::InvalidField,
                "id",
                format!("the body's id {id:?} differs from the URL's {path_id:?}"),
            ));
        }
    }
    let creating = path_id.is_none();
    let exists = state.engine.state().segment(&id).is_some();
    if creating && exists {
        return Err(ApiError::field(
            ErrorCode::Conflict,
            "id",
            format!("segment {id:?} exists; PUT /v1/segments/{id} to change it"),
        ));
    }
    if !creating && !exists {
        return Err(no_segment(&id));
    }
    state.engine.save_segment(definition, text, state.clock.now_ms()).await?;
    let ready = state.engine.segment_status(&id).is_some_and(|s| s.is_ready());
    let view = {
        let live = state.engine.state();
        live.segment(&id).map(|segment| full_view(state, &live, segment)).unwrap_or(Value::Null)
    };
    let status_url = format!("/v1/segments/{id}/status");
    Ok(match (ready, creating) {
        (true, true) => (StatusCode::CREATED, Json(view)).into_response(),
        (true, false) => (StatusCode::OK, Json(view)).into_response(),
        (false, _) => (StatusCode::ACCEPTED, [(header::LOCATION, status_url)], Json(view)).into_response(),
    })
}

/// `POST /v1/segments`: saves a new segment after the policy check: 201 when it is ready at
/// once, 202 while its history is backfilled.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    state.keys.require_admin(&headers)?;
    let text = read_body(&headers, body, MAX_DEFINITION_BYTES).await?;
    save(&state, text, None).await
}

/// `PUT /v1/segments/{id}`: saves a new version of a segment: 200 when it is ready at once,
/// 202 while its new matches are backfilled.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    state.keys.require_admin(&headers)?;
    let text = read_body(&headers, body, MAX_DEFINITION_BYTES).await?;
    save(&state, text, Some(id)).await
}

/// `GET /v1/segments`: every saved segment, with its size and status.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let live = state.engine.state();
    let segments: Vec<Value> = live.segments().map(|segment| full_view(&state, &live, segment)).collect();
    Ok(Json(json!({ "segments": segments })))
}

/// `GET /v1/segments/{id}`: the definition, size and backfill status.
pub async fn get_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let live = state.engine.state();
    live.segment(&id).map(|s| Json(full_view(&state, &live, s))).ok_or_else(|| no_segment(&id))
}

/// `GET /v1/segments/{id}/status`: where the segment's backfill stands (poll it after a 202).
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let status = state.engine.segment_status(&id).ok_or_else(|| no_segment(&id))?;
    let mut view = status_view(&status, state.clock.now_ms());
    if let Some(map) = view.as_object_mut() {
        map.insert("id".into(), json!(id));
    }
    Ok(Json(view))
}

/// `DELETE /v1/segments/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let now_ms = state.clock.now_ms();
    let key = id.clone();
    let deleted = state.engine.apply(move |live, facts| live.delete_segment(&key, now_ms, facts)).await?;
    if deleted {
        Ok(Json(json!({"deleted": true, "id": id})))
    } else {
        Err(no_segment(&id))
    }
}

/// Query of the members listing.
#[derive(Debug, Deserialize)]
pub struct MembersQuery {
    /// Page size (default 100, at most 1,000).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/segments/{id}/members`: members now, in profile order, with their reasons.
pub async fn members(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiQuery(query): ApiQuery<MembersQuery>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::field(ErrorCode::InvalidField, "limit", "must be a whole number from 1 to 1000"));
    }
    let after: u64 = match query.cursor.as_deref() {
        None | Some("") => 0,
        Some(text) => text
            .strip_prefix(regard_core::live::PROFILE_ID_PREFIX)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::field(ErrorCode::InvalidField, "cursor", "not a cursor from a previous page"))?,
    };
    let now_ms = state.clock.now_ms();
    let status = state.engine.segment_status(&id);
    let live = state.engine.state();
    let members = live.segment_members(&id).ok_or_else(|| no_segment(&id))?;
    let page: Vec<u64> = members.iter().copied().filter(|m| *m > after).take(limit).collect();
    let next = (page.len() == limit && members.last().is_some_and(|last| Some(last) != page.last()))
        .then(|| page.last().map(|p| profile_key(*p)))
        .flatten();
    let rows: Vec<Value> = page
        .iter()
        .map(|p| {
            let reasons: Vec<String> =
                live.segment_reasons(*p, &id, now_ms).unwrap_or_default().iter().map(explain).collect();
            let user_id = live.profile(*p).and_then(|profile| profile.user_id().map(str::to_owned));
            json!({"profile_id": profile_key(*p), "user_id": user_id, "reasons": reasons})
        })
        .collect();
    // While backfilling, the members are those the events since the save put in: say so.
    let ready = status.as_ref().is_some_and(SegmentStatus::is_ready);
    let status = status.map(|s| status_view(&s, now_ms));
    Ok(Json(
        json!({"segment": id, "ready": ready, "status": status, "size": members.len(), "members": rows, "next_cursor": next}),
    ))
}

/// `GET /v1/profiles/{id}/segments`: the segments a profile is in now, each with the reasons
/// in plain language, and those withheld because the purpose lacks consent.
pub async fn of_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let now_ms = state.clock.now_ms();
    let live = state.engine.state();
    let profile = live
        .find_profile(&id)
        .ok_or_else(|| ApiError::field(ErrorCode::NotFound, "id", format!("no profile is known by {id:?}")))?;
    let segments: Vec<Value> = live
        .memberships(profile.id)
        .into_iter()
        .filter_map(|segment_id| {
            let saved = live.segment(segment_id)?;
            let reasons: Vec<String> =
                live.segment_reasons(profile.id, segment_id, now_ms).unwrap_or_default().iter().map(explain).collect();
            let ready = live.segment_readiness(segment_id).is_some_and(|r| r.is_ready());
            Some(json!({
                "id": segment_id,
                "name": saved.definition.name(),
                "purpose": saved.definition.purpose().consent_purpose().as_str(),
                "ready": ready,
                "reasons": reasons,
            }))
        })
        .collect();
    let withheld: Vec<&str> = live
        .segments()
        .filter(|s| !live.allows(profile, s.definition.purpose().consent_purpose()))
        .map(|s| s.definition.id().as_str())
        .collect();
    Ok(Json(json!({"profile_id": profile_key(profile.id), "segments": segments, "withheld_for_consent": withheld})))
}
