//! `/v1/slots` (admin): create, list, read, change and delete slots; and
//! `/v1/settings/{exchange-rates,stores}`: the tables templates format prices and find the
//! nearest store with.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use regard_content::decide::StoredSlot;
use regard_content::geo::Store;
use regard_content::money::ExchangeRates;
use regard_core::time::format_iso8601_ms;
use serde_json::{json, Value};

use crate::body::read_body;
use crate::content::{EXCHANGE_RATES, STORES};
use crate::error::{ApiError, ErrorCode};
use crate::AppState;

/// Largest slot definition accepted (variants with their templates).
pub const MAX_SLOT_BYTES: usize = 512 * 1024;

/// The JSON view of a stored slot.
pub fn slot_view(slot: &StoredSlot) -> Value {
    let definition: Value = serde_json::from_str(&slot.json).unwrap_or(Value::Null);
    json!({
        "id": slot.definition.id,
        "name": slot.definition.name,
        "kind": slot.definition.kind,
        "version": slot.version,
        "updated_at": format_iso8601_ms(slot.updated_ms),
        "variants": slot.definition.variants.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        "definition": definition,
    })
}

async fn save(state: &AppState, headers: &HeaderMap, body: Body, path_id: Option<&str>) -> Result<Value, ApiError> {
    state.keys.require_admin(headers)?;
    let text = read_body(headers, body, MAX_SLOT_BYTES).await?;
    let definition = {
        let live = state.engine.state();
        state.content.check(&text, &live)?
    };
    if let Some(path_id) = path_id {
        if definition.id != path_id {
            return Err(ApiError::field(
                ErrorCode::InvalidField,
                "id",
                format!("the body's id {:?} differs from the URL's {path_id:?}", definition.id),
            ));
        }
    }
    let content = state.content.clone();
    let at_ms = state.clock.now_ms();
    let must_exist = Some(path_id.is_some());
    let stored = tokio::task::spawn_blocking(move || content.save(&definition, &text, must_exist, at_ms))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the save task failed"))??;
    Ok(slot_view(&stored))
}

/// `POST /v1/slots`: creates a slot (201); 409 when the id is taken.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((StatusCode::CREATED, Json(save(&state, &headers, body, None).await?)))
}

/// `PUT /v1/slots/{id}`: saves the next version of a slot.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(save(&state, &headers, body, Some(&id)).await?))
}

/// `GET /v1/slots`: every slot.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let snapshot = state.content.snapshot();
    let slots: Vec<Value> = snapshot.slots().into_iter().map(|slot| slot_view(slot)).collect();
    Ok(Json(json!({ "slots": slots })))
}

/// `GET /v1/slots/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let snapshot = state.content.snapshot();
    let slot =
        snapshot.slot(&id).ok_or_else(|| ApiError::field(ErrorCode::NotFound, "id", format!("no slot {id:?}")))?;
    Ok(Json(slot_view(slot)))
}

/// `DELETE /v1/slots/{id}` (204).
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.keys.require_admin(&headers)?;
    let content = state.content.clone();
    let at_ms = state.clock.now_ms();
    let lookup = id.clone();
    let deleted = tokio::task::spawn_blocking(move || content.delete(&lookup, at_ms))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the delete task failed"))??;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::field(ErrorCode::NotFound, "id", format!("no slot {id:?}")))
    }
}

fn setting_key(name: &str) -> Result<&'static str, ApiError> {
    match name {
        EXCHANGE_RATES => Ok(EXCHANGE_RATES),
        STORES => Ok(STORES),
        other => Err(ApiError::field(
            ErrorCode::NotFound,
            "key",
            format!("no setting {other:?}; the settings are exchange-rates and stores"),
        )),
    }
}

/// `GET /v1/settings/{key}`.
pub async fn get_setting(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let key = setting_key(&key)?;
    let value = match state.content.setting(key)? {
        Some(json) => serde_json::from_str(&json).unwrap_or(Value::Null),
        None if key == STORES => json!([]),
        None => Value::Null,
    };
    Ok(Json(value))
}

/// `PUT /v1/settings/{key}`: replaces the exchange-rate table (`{"base": "USD", "rates":
/// {"EUR": 0.92}}`) or the store list (`[{"id", "name", "latitude", "longitude", ...}]`).
pub async fn put_setting(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let key = setting_key(&key)?;
    let text = read_body(&headers, body, MAX_SLOT_BYTES).await?;
    let bad = |e: serde_path_to_error::Error<serde_json::Error>| {
        ApiError::field(ErrorCode::InvalidField, e.path().to_string(), e.inner().to_string())
    };
    let canonical = if key == EXCHANGE_RATES {
        let rates: ExchangeRates =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text)).map_err(bad)?;
        rates.validate().map_err(|e| {
            use regard_content::money::ExchangeRatesError as E;
            let field = match &e {
                E::InvalidCurrencyCode { field, .. }
                | E::InvalidRate { field, .. }
                | E::BaseRateNotOne { field, .. } => field.clone(),
            };
            ApiError::field(ErrorCode::InvalidField, field, e.to_string())
        })?;
        serde_json::to_string(&rates).unwrap_or_default()
    } else {
        let stores: Vec<Store> =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text)).map_err(bad)?;
        for (i, store) in stores.iter().enumerate() {
            store.validate().map_err(|e| {
                use regard_content::geo::StoreError as E;
                let field = match &e {
                    E::EmptyField { field } | E::CoordinateOutOfRange { field, .. } => *field,
                };
                ApiError::field(ErrorCode::InvalidField, format!("[{i}].{field}"), e.to_string())
            })?;
        }
        serde_json::to_string(&stores).unwrap_or_default()
    };
    let content = state.content.clone();
    let at_ms = state.clock.now_ms();
    let stored = canonical.clone();
    tokio::task::spawn_blocking(move || content.put_setting(key, &stored, at_ms))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the settings task failed"))??;
    Ok(Json(serde_json::from_str(&canonical).unwrap_or(Value::Null)))
}
