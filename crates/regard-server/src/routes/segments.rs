//! `POST /v1/segments/preview`: the size and sample members of a draft segment, after the
//! same policy check saving will run.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use regard_core::segments::{check_definition, DefinitionError, PolicyConfig, SaveError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::read_body;
use crate::error::{ApiError, ErrorCode};
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
    Query(query): Query<PreviewQuery>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let text = read_body(&headers, body, MAX_DEFINITION_BYTES).await?;
    let definition = check_definition(&text, &PolicyConfig::default()).map_err(save_error)?;
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
