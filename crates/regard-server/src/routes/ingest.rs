//! The Segment Tracking API: `/v1/identify`, `/track`, `/page`, `/screen`, `/group`,
//! `/alias`, `/batch` and `/import`.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use regard_core::message::{Message, MessageKind};
use serde::Serialize;

use crate::auth::credential;
use crate::body::read_body;
use crate::error::ApiError;
use crate::wire::{parse_batch, parse_message, MessageEnvelope, MAX_BATCH_BYTES, MAX_MESSAGE_BYTES};
use crate::AppState;

/// The answer to an ingestion call: Segment's `{"success": true}` plus what became of the
/// messages.
#[derive(Debug, Serialize)]
pub struct IngestResponse {
    /// Always true on 200, as Segment answers.
    pub success: bool,
    /// Messages stored whole.
    pub stored: u32,
    /// Retries already stored before.
    pub duplicates: u32,
    /// Messages kept only as anonymous counts for lack of `analytics` consent.
    pub reduced: u32,
    /// Messages dropped because they are about a person who was erased, from before the
    /// erasure (a replayed old event must not re-create them).
    pub erased: u32,
}

async fn ingest(state: &AppState, messages: Vec<Message>) -> Result<Json<IngestResponse>, ApiError> {
    // Buyers' predictions are refreshed after their purchase (by the prediction worker).
    let buyers: Vec<(Option<String>, Option<String>)> = messages
        .iter()
        .filter(|m| m.kind == MessageKind::Track && m.name.as_deref() == Some("Order Completed"))
        .map(|m| (m.user_id.clone(), m.anonymous_id.clone()))
        .collect();
    let receipt = state.engine.ingest(messages).await?;
    if !buyers.is_empty() && state.predict.models().is_some() {
        let live = state.engine.state();
        for (user_id, anonymous_id) in &buyers {
            let profile = user_id
                .as_deref()
                .and_then(|id| live.find_by_user_id(id))
                .or_else(|| anonymous_id.as_deref().and_then(|id| live.find_by_anonymous_id(id)));
            if let Some(profile) = profile {
                state.predict.mark_dirty(profile.id);
            }
        }
    }
    Ok(Json(IngestResponse {
        success: true,
        stored: receipt.stored,
        duplicates: receipt.duplicates,
        reduced: receipt.reduced,
        erased: receipt.erased,
    }))
}

fn authorize(state: &AppState, header_key: Option<String>, body_key: Option<String>) -> Result<(), ApiError> {
    state.keys.access(header_key.or(body_key).as_deref()).map(|_| ())
}

async fn single(
    state: AppState,
    kind: MessageKind,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let result = async {
        let header_key = credential(&headers)?;
        let text = read_body(&headers, body, MAX_MESSAGE_BYTES).await?;
        // The stored copy is compressed here, on a request thread, so the writer only stores bytes.
        let encode = |text: &str| state.engine.compress(text);
        let envelope = MessageEnvelope {
            kind: Some(kind),
            received_at_ms: state.clock.now_ms(),
            batch_sent_at_ms: None,
            batch_context: None,
            encode: Some(&encode),
        };
        let parsed = parse_message(&text, envelope);
        // Authenticate before reporting validation errors, so strangers learn nothing.
        let body_key = parsed.as_ref().ok().and_then(|p| p.write_key.clone());
        authorize(&state, header_key, body_key)?;
        ingest(&state, vec![parsed?.message]).await
    }
    .await;
    if let Err(error) = &result {
        state.metrics.reject(error.code, 1);
    }
    result
}

/// `POST /v1/batch` and `/v1/import`: many messages of any type; all are accepted or, if one
/// is invalid, none (the error names the item).
pub async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let mut rejected = 1;
    let result = async {
        let header_key = credential(&headers)?;
        let text = read_body(&headers, body, MAX_BATCH_BYTES).await?;
        let envelope = parse_batch(&text);
        let body_key = envelope.as_ref().ok().and_then(|e| e.write_key.clone());
        if header_key.is_none() && body_key.is_none() {
            // SDKs that put writeKey in each message rather than in the envelope.
            let first_key = envelope
                .as_ref()
                .ok()
                .and_then(|e| e.messages.first())
                .and_then(|raw| serde_json::from_str::<FirstKey>(raw.get()).ok())
                .and_then(|k| k.write_key);
            authorize(&state, None, first_key)?;
        } else {
            authorize(&state, header_key, body_key)?;
        }
        let envelope = envelope?;
        rejected = envelope.messages.len().max(1) as u64;
        let received_at_ms = state.clock.now_ms();
        let encode = |text: &str| state.engine.compress(text);
        let mut messages = Vec::with_capacity(envelope.messages.len());
        for (i, raw) in envelope.messages.iter().enumerate() {
            let item = MessageEnvelope {
                kind: None,
                received_at_ms,
                batch_sent_at_ms: envelope.sent_at_ms,
                batch_context: envelope.context,
                encode: Some(&encode),
            };
            let parsed = parse_message(raw.get(), item).map_err(|e| e.within(&format!("batch[{i}]")))?;
            messages.push(parsed.message);
        }
        ingest(&state, messages).await
    }
    .await;
    if let Err(error) = &result {
        state.metrics.reject(error.code, rejected);
    }
    result
}

#[derive(serde::Deserialize)]
struct FirstKey {
    #[serde(rename = "writeKey", default)]
    write_key: Option<String>,
}

macro_rules! single_route {
    ($name:ident, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        pub async fn $name(
            State(state): State<AppState>,
            headers: HeaderMap,
            body: Body,
        ) -> Result<Json<IngestResponse>, ApiError> {
            single(state, $kind, headers, body).await
        }
    };
}

single_route!(identify, MessageKind::Identify, "`POST /v1/identify`: who the user is.");
single_route!(track, MessageKind::Track, "`POST /v1/track`: something the user did.");
single_route!(page, MessageKind::Page, "`POST /v1/page`: a page view.");
single_route!(screen, MessageKind::Screen, "`POST /v1/screen`: a screen view.");
single_route!(group, MessageKind::Group, "`POST /v1/group`: account membership.");
single_route!(alias, MessageKind::Alias, "`POST /v1/alias`: two ids are one person.");
