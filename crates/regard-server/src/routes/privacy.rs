//! `POST /v1/privacy/requests` and `GET /v1/privacy/requests` (admin): data subject requests
//! (access, erase, anonymize), each carried out at once and kept with its status and deadline.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};
use crate::privacy::{
    deadline_days, erase_person, export_person, mask, request_id, request_view, PrivacyError, REQUEST_KINDS,
};
use crate::AppState;
use regard_store::content::PrivacyRequestRow;

/// The body of `POST /v1/privacy/requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyRequestBody {
    /// `access`, `erase` or `anonymize`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The person's userId.
    #[serde(rename = "userId", default)]
    pub user_id: Option<String>,
    /// Or their anonymousId.
    #[serde(rename = "anonymousId", default)]
    pub anonymous_id: Option<String>,
    /// `gdpr` (default, 30 days) or `ccpa` (45 days).
    #[serde(default)]
    pub regulation: Option<String>,
    /// For access: `json` (default, the request record with the export inside) or `zip` (the
    /// export as a ZIP of CSV files plus `export.json`).
    #[serde(default)]
    pub format: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::field(ErrorCode::InvalidField, field, message)
}

fn blocking_error(error: PrivacyError) -> ApiError {
    match error {
        PrivacyError::NotFound(_) => ApiError::field(ErrorCode::NotFound, "userId", error.to_string()),
        PrivacyError::Store(message) => ApiError::new(ErrorCode::Internal, message),
    }
}

/// `POST /v1/privacy/requests`: carries out an access, erasure or anonymization request now.
/// Access answers with the export document; erasure and anonymization with what was removed
/// (the profile then answers 404, and models that learned from the person are retrained).
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    state.keys.require_admin(&headers)?;
    let body: PrivacyRequestBody = serde_json::from_slice(&body).map_err(|e| {
        let field = ["type", "userId", "anonymousId", "regulation", "format"]
            .into_iter()
            .find(|f| e.to_string().contains(&format!("`{f}`")))
            .unwrap_or("body");
        invalid(field, format!("the request body is not a valid privacy request: {e}"))
    })?;
    if !REQUEST_KINDS.contains(&body.kind.as_str()) {
        return Err(invalid("type", format!("{:?} is not a request type: use access, erase or anonymize", body.kind)));
    }
    let zip = match body.format.as_deref() {
        None | Some("json") => false,
        Some("zip") if body.kind == "access" => true,
        Some("zip") => return Err(invalid("format", "only an access request has an export to put in a ZIP")),
        Some(other) => return Err(invalid("format", format!("{other:?} is not a format: use json or zip"))),
    };
    let regulation = body.regulation.clone().unwrap_or_else(|| "gdpr".to_owned());
    let Some(days) = deadline_days(&regulation) else {
        return Err(invalid("regulation", format!("{regulation:?} is not supported: use gdpr or ccpa")));
    };
    let subject = match (body.user_id.as_deref(), body.anonymous_id.as_deref()) {
        (Some(id), _) if !id.trim().is_empty() => id.to_owned(),
        (_, Some(id)) if !id.trim().is_empty() => id.to_owned(),
        _ => return Err(invalid("userId", "a request names the person by userId or anonymousId")),
    };
    let now_ms = state.clock.now_ms();
    // An erasure's log entry never holds the id in the clear, not even while it runs.
    let logged_subject = if body.kind == "access" { subject.clone() } else { mask(&subject) };
    let mut row = PrivacyRequestRow {
        id: request_id(now_ms),
        kind: body.kind.clone(),
        subject: logged_subject,
        regulation,
        status: "received".to_owned(),
        received_ms: now_ms,
        deadline_ms: now_ms + days * 86_400_000,
        completed_ms: None,
        result: None,
    };
    let content = state.content.clone();
    let saved = row.clone();
    tokio::task::spawn_blocking(move || content.store.save_privacy_request(&saved))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "a task failed"))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;

    let task_state = state.clone();
    let kind = body.kind.clone();
    let key = subject.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<Value, PrivacyError> {
        let state = task_state;
        match kind.as_str() {
            "access" => {
                let predictions = state
                    .engine
                    .state()
                    .find_profile(&key)
                    .map(|p| p.id)
                    .and_then(|id| state.predict.of_profile(&state.engine, id))
                    .map(|p| serde_json::to_value(&*p).unwrap_or_default());
                export_person(&state.engine, &state.content.store, predictions, &key, now_ms)
            }
            _ => {
                let report = erase_person(&state.engine, &state.content.store, &key, kind == "anonymize", now_ms)?;
                // Models learned from the person: retrain them without.
                crate::routes::predict::spawn_training(&state).ok();
                let (recs, engine) = (state.recs.clone(), state.engine.clone());
                let _ = std::thread::Builder::new().name("regard-recs-train".to_owned()).spawn(move || {
                    if let Err(error) = recs.train(&engine, regard_recs::RecsConfig::default(), now_ms) {
                        tracing::info!(%error, "recommendations not retrained after an erasure");
                    }
                });
                Ok(serde_json::to_value(report).unwrap_or_default())
            }
        }
    })
    .await
    .map_err(|_| ApiError::new(ErrorCode::Internal, "a task failed"))?;

    let completed_ms = state.clock.now_ms();
    let (status, answer) = match outcome {
        Ok(value) => {
            row.status = "completed".to_owned();
            row.completed_ms = Some(completed_ms);
            if body.kind == "access" {
                row.result =
                    Some(json!({"exported_events": value["events"].as_array().map_or(0, Vec::len)}).to_string());
            } else {
                row.subject = mask(&subject);
                row.result = Some(value.to_string());
            }
            (StatusCode::OK, Ok(value))
        }
        Err(error) => {
            row.status = "failed".to_owned();
            row.completed_ms = Some(completed_ms);
            row.result = Some(json!({"error": error.to_string()}).to_string());
            (StatusCode::NOT_FOUND, Err(error))
        }
    };
    let content = state.content.clone();
    let saved = row.clone();
    tokio::task::spawn_blocking(move || content.store.save_privacy_request(&saved))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "a task failed"))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    match answer {
        Ok(value) if zip => {
            let bytes =
                crate::privacy::export_zip(&value).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            let disposition = format!("attachment; filename=\"regard-export-{}.zip\"", row.id);
            Ok((
                status,
                [
                    (axum::http::header::CONTENT_TYPE, "application/zip".to_owned()),
                    (axum::http::header::CONTENT_DISPOSITION, disposition),
                ],
                bytes,
            )
                .into_response())
        }
        Ok(value) => {
            let mut view = request_view(&row, completed_ms);
            let key = if body.kind == "access" { "export" } else { "erasure" };
            view[key] = value;
            Ok((status, Json(view)).into_response())
        }
        Err(error) => Err(blocking_error(error)),
    }
}

/// `GET /v1/privacy/requests`: every request with its status, deadline and whether it is overdue.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let content = state.content.clone();
    let rows = tokio::task::spawn_blocking(move || content.store.privacy_requests())
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "a task failed"))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let now_ms = state.clock.now_ms();
    Ok(Json(json!({"requests": rows.iter().map(|r| request_view(r, now_ms)).collect::<Vec<_>>()})))
}
