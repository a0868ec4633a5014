//! Operations: `/healthz`, `/metrics`, the reduced-form counts, and the 404 answer.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use regard_core::time::{format_iso8601_ms, DAY_MS};
use serde_json::json;

use crate::error::{ApiError, ErrorCode};
use crate::AppState;

/// 200 while the writer accepts work, 503 after it stopped.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let healthy = state.engine.is_healthy();
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if healthy { "ok" } else { "writer_stopped" }}))).into_response()
}

/// Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(&state.engine);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The anonymous daily counts of events kept without `analytics` consent (admin), so an
/// operator can see how much data consent withholds.
pub async fn reduced_counts(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let engine = state.engine.clone();
    let rows = tokio::task::spawn_blocking(move || engine.reader().reduced_counts())
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "a read task failed"))??;
    let days: Vec<_> = rows
        .into_iter()
        .map(|(day, kind, name, count)| {
            json!({"day": &format_iso8601_ms(day * DAY_MS)[..10], "type": kind.as_str(), "name": name, "count": count})
        })
        .collect();
    Ok(Json(json!({"reason": "no_analytics_consent", "counts": days})))
}

/// Unknown routes answer in the API's error format.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}
