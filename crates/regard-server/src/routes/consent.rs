//! `POST /v1/consent`: the operator's backend records consent decisions.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use regard_core::consent::{ConsentPurpose, ConsentSource};
use regard_core::live::{ConsentUpdate, PROFILE_ID_PREFIX};
use regard_core::time::parse_iso8601_ms;
use serde::Deserialize;

use crate::body::read_body;
use crate::error::{ApiError, ErrorCode};
use crate::views::consent_view;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    #[serde(rename = "userId", default)]
    user_id: Option<String>,
    #[serde(rename = "anonymousId", default)]
    anonymous_id: Option<String>,
    purposes: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "policyVersion", alias = "policy_version", default)]
    policy_version: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

/// Records consent decisions for a person (created if unknown) and answers their consent
/// state. Body: `{"userId" | "anonymousId", "purposes": {"email": false, ...},
/// "policyVersion"?, "timestamp"?}`.
pub async fn set_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let text = read_body(&headers, body, 64 * 1024).await?;
    let request: ConsentRequest = serde_json::from_str(&text).map_err(|e| {
        let code = if e.is_data() { ErrorCode::InvalidField } else { ErrorCode::InvalidJson };
        ApiError::new(code, e.to_string())
    })?;
    if request.user_id.as_deref().is_none_or(str::is_empty) && request.anonymous_id.as_deref().is_none_or(str::is_empty)
    {
        return Err(ApiError::field(ErrorCode::MissingField, "userId", "a userId or an anonymousId is required"));
    }
    if request.purposes.is_empty() {
        return Err(ApiError::field(ErrorCode::MissingField, "purposes", "name at least one purpose"));
    }
    let mut decisions = Vec::new();
    for (name, value) in &request.purposes {
        let purpose = ConsentPurpose::parse(name).ok_or_else(|| {
            ApiError::field(
                ErrorCode::InvalidField,
                format!("purposes.{name}"),
                "unknown purpose; use analytics, personalization, email, advertising or profiling",
            )
        })?;
        let granted = value.as_bool().ok_or_else(|| {
            ApiError::field(ErrorCode::InvalidField, format!("purposes.{name}"), "must be true or false")
        })?;
        decisions.push((purpose, granted));
    }
    let at_ms = match request.timestamp.as_deref() {
        Some(text) => parse_iso8601_ms(text)
            .ok_or_else(|| ApiError::field(ErrorCode::InvalidField, "timestamp", "not an ISO-8601 date-time"))?,
        None => state.clock.now_ms(),
    };
    let update = ConsentUpdate {
        user_id: request.user_id.filter(|s| !s.is_empty()),
        anonymous_id: request.anonymous_id.filter(|s| !s.is_empty()),
        decisions,
        source: ConsentSource::Api,
        policy_version: request.policy_version,
        at_ms,
    };
    let profile_id = state.engine.set_consent(update).await?;
    let live = state.engine.state();
    let profile = profile_id
        .and_then(|id| live.profile(id))
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the profile vanished after the update"))?;
    Ok(Json(serde_json::json!({
        "profile_id": format!("{PROFILE_ID_PREFIX}{}", profile.id),
        "consents": consent_view(&live, profile),
    })))
}
