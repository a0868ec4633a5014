//! `POST /v1/user-tokens` (admin): signs a user token, for operators whose backend has no HMAC
//! library at hand (the format is in [`crate::user_token`]; signing it locally saves a request).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use regard_core::time::format_iso8601_ms;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::read_body;
use crate::error::{ApiError, ErrorCode};
use crate::AppState;

/// Lifetime of a token when the request names none: an hour, about a visit.
pub const DEFAULT_TTL_SECS: u64 = 3_600;
/// Longest lifetime a token may be given: 30 days. A token cannot be revoked before it expires
/// (short of changing the secret), so a leaked one should not last long.
pub const MAX_TTL_SECS: u64 = 30 * 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserTokenRequest {
    #[serde(rename = "userId")]
    user_id: String,
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

/// `POST /v1/user-tokens`: `{"userId", "ttl_seconds"?}` → `{"token", "userId", "expires_at"}`.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let text = read_body(&headers, body, 4 * 1024).await?;
    let request: UserTokenRequest = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text))
        .map_err(|e| {
            let message = e.inner().to_string();
            if e.inner().is_syntax() || e.inner().is_eof() {
                ApiError::new(ErrorCode::InvalidJson, message)
            } else if message.starts_with("missing field") {
                ApiError::field(ErrorCode::MissingField, "userId", message)
            } else {
                let path = e.path().to_string();
                ApiError::field(ErrorCode::InvalidField, if path == "." { String::new() } else { path }, message)
            }
        })?;
    if request.user_id.is_empty() || request.user_id.len() > 256 {
        return Err(ApiError::field(ErrorCode::InvalidField, "userId", "must be 1 to 256 characters"));
    }
    let ttl_secs = request.ttl_seconds.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            "ttl_seconds",
            format!("must be 1 to {MAX_TTL_SECS} (30 days)"),
        ));
    }
    let now_secs = crate::user_token::unix_secs(state.clock.now_ms());
    let expires_at_secs = now_secs + ttl_secs;
    let token = crate::user_token::sign(&state.keys.user_token_secret, &request.user_id, expires_at_secs);
    Ok(Json(json!({
        "token": token,
        "userId": request.user_id,
        "expires_at": format_iso8601_ms((expires_at_secs * 1000) as i64),
    })))
}
