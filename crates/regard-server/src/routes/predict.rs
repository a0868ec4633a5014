//! `GET /v1/profiles/{id}/predictions`, `POST /v1/predictions/train` and
//! `GET /v1/predictions/status` (all admin).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use regard_core::consent::ConsentPurpose;
use regard_core::time::format_iso8601_ms;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};
use crate::AppState;

/// Starts a refit on its own thread; the serving models stay until it finishes.
pub fn spawn_training(state: &AppState) -> Result<(), ApiError> {
    let (predict, engine, now_ms) = (state.predict.clone(), state.engine.clone(), state.clock.now_ms());
    let rates = state.content.snapshot().settings().exchange_rates.clone();
    std::thread::Builder::new()
        .name("regard-predict-train".to_owned())
        .spawn(move || {
            if let Err(error) = predict.train(&engine, rates, now_ms) {
                tracing::warn!(%error, "fitting the predictive models failed");
            }
        })
        .map(|_| ())
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("starting training: {e}")))
}

/// `GET /v1/profiles/{id}/predictions`: each prediction with its model, the fit's date and a
/// plain-language explanation; each prediction not served with the reason (thin data, no
/// `profiling` consent, models not fitted yet).
pub async fn of_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let (profile_id, user_id, allows) = {
        let live = state.engine.state();
        let profile = live.find_profile(&id).ok_or_else(|| {
            ApiError::field(
                ErrorCode::NotFound,
                "id",
                format!("no profile is known by {id:?} (userId, anonymousId or internal id)"),
            )
        })?;
        let user_id = profile
            .identities
            .iter()
            .find(|(kind, _)| *kind == regard_core::message::IdentityKind::UserId)
            .map(|(_, v)| v.to_string());
        (profile.id, user_id, live.allows(profile, ConsentPurpose::Profiling))
    };
    let models = state.predict.models();
    let base = json!({
        "profileId": profile_id.to_string(),
        "userId": user_id,
        "profiling_consent": allows,
        "models_fitted_at": models.as_ref().map(|m| format_iso8601_ms(m.fitted_at_ms)),
    });
    let mut view = base;
    let map = view.as_object_mut().expect("an object");
    if !allows {
        map.insert("predictions".into(), json!([]));
        map.insert(
            "not_served".into(),
            json!([{"name": "all", "reason": "this person has not given profiling consent: no prediction is computed or served"}]),
        );
        return Ok(Json(view));
    }
    if models.is_none() {
        map.insert("predictions".into(), json!([]));
        map.insert(
            "not_served".into(),
            json!([{"name": "all", "reason": "the predictive models have not been fitted yet (see /v1/predictions/status)"}]),
        );
        return Ok(Json(view));
    }
    match state.predict.of_profile(&state.engine, profile_id) {
        Some(predictions) => {
            map.insert("computed_at".into(), json!(format_iso8601_ms(predictions.computed_at_ms)));
            map.insert("predictions".into(), serde_json::to_value(&predictions.predictions).unwrap_or_default());
            map.insert("not_served".into(), serde_json::to_value(&predictions.not_served).unwrap_or_default());
        }
        None => {
            map.insert("predictions".into(), json!([]));
            map.insert(
                "not_served".into(),
                json!([{"name": "all", "reason": "no orders, product views or email engagement are stored for this person yet"}]),
            );
        }
    }
    Ok(Json(view))
}

/// `POST /v1/predictions/train`: refits every model from the store in the background (202).
pub async fn train(State(state): State<AppState>, headers: HeaderMap) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.keys.require_admin(&headers)?;
    spawn_training(&state)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "training", "status_url": "/v1/predictions/status"}))))
}

/// `GET /v1/predictions/status`: the fit state, each model's parameters or the reason it is not
/// served, the data thresholds and what the store holds against them.
pub async fn status(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let mut view = serde_json::to_value(state.predict.status()).unwrap_or(Value::Null);
    if let (Some(models), Some(map)) = (state.predict.models(), view.as_object_mut()) {
        map.insert("models".into(), serde_json::to_value(&*models).unwrap_or(Value::Null));
        map.insert("pending_refreshes".into(), json!(state.predict.pending()));
    }
    Ok(Json(view))
}
