//! `GET /v1/privacy/register` (admin): the record of processing (GDPR Art. 30) generated from
//! this instance's configuration, its live segments, its slots and its models. The register
//! itself is built in [`crate::register`]; this handler only gathers what it reads.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;

use crate::error::ApiError;
use crate::register::{self, Register};
use crate::AppState;

/// `GET /v1/privacy/register`: each processing activity (purpose, legal basis, data categories,
/// retention, recipients, and the segments, slots, models and flows that use it), each data
/// category with who uses which of its fields, the sensitive categories excluded, the caveats,
/// and a plain-language summary for a privacy policy.
pub async fn register(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Register>, ApiError> {
    state.keys.require_admin(&headers)?;
    let models = register::serving_models(&state.recs, &state.predict);
    let snapshot = state.content.snapshot();
    let live = state.engine.state();
    Ok(Json(register::from_live(&live, &snapshot, models, state.clock.now_ms())))
}
