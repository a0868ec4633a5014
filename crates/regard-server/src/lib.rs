//! Regard's HTTP edge: the only crate that knows HTTP and wire JSON.
//!
//! It speaks the Segment Tracking API for ingestion (so existing SDKs only change their host),
//! plus Regard's own admin API (profiles, consent, catalog) and operations endpoints. DTOs are
//! converted to domain types by hand in [`wire`] and [`views`], so the core can change without
//! breaking the API. Handlers never write to the store themselves: they hand parsed messages
//! to the [`regard_store::Engine`] and answer once it has committed them.

pub mod auth;
pub mod body;
pub mod content;
pub mod error;
pub mod metrics;
pub mod predict;
pub mod privacy;
pub mod recs;
pub mod register;
pub mod routes;
pub mod user_token;
pub mod views;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use regard_core::time::Clock;
use regard_store::Engine;

pub use auth::Keys;
pub use axum::http::HeaderName;
pub use error::{ApiError, ErrorCode};

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    }
}

/// Everything a handler needs, shared by all of them.
#[derive(Clone)]
pub struct AppState {
    /// The storage engine.
    pub engine: Arc<Engine>,
    /// The instance's keys.
    pub keys: Keys,
    /// Edge counters.
    pub metrics: Arc<metrics::ServerMetrics>,
    /// The clock that stamps `receivedAt`.
    pub clock: Arc<dyn Clock>,
    /// Slots, settings, the decision log and the snapshot decisions read.
    pub content: Arc<content::ContentService>,
    /// Where visitors' countries come from.
    pub geo: Arc<content::GeoResolver>,
    /// Whether `/shop` serves the demo shop page.
    pub demo_shop: bool,
    /// The one userId the demo shop page carries a signed user token for (demo only).
    pub demo_user: Option<String>,
    /// The recommendation model serving now, and its training.
    pub recs: Arc<recs::RecsService>,
    /// The predictive models serving now, everyone's predictions, and their refits.
    pub predict: Arc<predict::PredictService>,
}

impl AppState {
    /// State over an engine and its content service, with the wall clock and the country taken
    /// from Cloudflare's `CF-IPCountry` header when present.
    pub fn new(engine: Arc<Engine>, keys: Keys, content: Arc<content::ContentService>) -> AppState {
        let geo = content::GeoResolver {
            country_header: Some(axum::http::HeaderName::from_static("cf-ipcountry")),
            region_header: Some(axum::http::HeaderName::from_static("cf-region-code")),
            database: None,
        };
        AppState {
            engine,
            keys,
            metrics: Arc::new(metrics::ServerMetrics::default()),
            clock: Arc::new(SystemClock),
            content,
            geo: Arc::new(geo),
            demo_shop: false,
            demo_user: None,
            recs: Arc::default(),
            predict: Arc::default(),
        }
    }
}

/// The full router.
pub fn router(state: AppState) -> Router {
    use routes::{catalog, consent, decide, ingest, ops, profiles, recs as recs_routes, segments, slots};
    Router::new()
        .route("/v1/identify", post(ingest::identify))
        .route("/v1/track", post(ingest::track))
        .route("/v1/page", post(ingest::page))
        .route("/v1/screen", post(ingest::screen))
        .route("/v1/group", post(ingest::group))
        .route("/v1/alias", post(ingest::alias))
        .route("/v1/batch", post(ingest::batch))
        .route("/v1/import", post(ingest::batch))
        .route("/v1/consent", post(consent::set_consent))
        .route("/v1/catalog", post(catalog::upsert))
        .route("/v1/catalog/{id}", get(catalog::get_product))
        .route("/v1/profiles/{id}", get(profiles::get_profile))
        .route("/v1/profiles/{id}/events", get(profiles::list_events))
        .route("/v1/segments", post(segments::create).get(segments::list))
        .route("/v1/segments/preview", post(segments::preview))
        .route("/v1/segments/{id}", get(segments::get_one).put(segments::update).delete(segments::delete))
        .route("/v1/segments/{id}/members", get(segments::members))
        .route("/v1/segments/{id}/status", get(segments::status))
        .route("/v1/profiles/{id}/segments", get(segments::of_profile))
        .route("/v1/slots", post(slots::create).get(slots::list))
        .route("/v1/slots/{id}", get(slots::get_one).put(slots::update).delete(slots::delete))
        .route("/v1/settings/{key}", get(slots::get_setting).put(slots::put_setting))
        .route("/v1/decide", post(decide::decide))
        .route("/v1/recommendations", get(recs_routes::for_user))
        .route("/v1/recommendations/train", post(recs_routes::train))
        .route("/v1/recommendations/status", get(recs_routes::status))
        .route("/v1/items/{id}/similar", get(recs_routes::similar))
        .route("/v1/profiles/{id}/predictions", get(routes::predict::of_profile))
        .route("/v1/predictions/train", post(routes::predict::train))
        .route("/v1/predictions/status", get(routes::predict::status))
        .route("/v1/privacy/register", get(routes::privacy_register::register))
        .route("/v1/privacy/requests", post(routes::privacy::create).get(routes::privacy::list))
        .route("/v1/decisions/{id}/why", get(decide::why))
        .route("/v1/user-tokens", post(routes::user_tokens::create))
        .route("/v1/profiles/{id}/decisions", get(decide::of_profile))
        .route("/v1/stats/reduced", get(ops::reduced_counts))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/regard.js", get(routes::assets::regard_js))
        .route("/shop", get(routes::assets::shop))
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), measure))
        .layer(axum::middleware::from_fn(routes::assets::cors))
        .with_state(state)
}

async fn measure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(route.as_deref().unwrap_or("other"), started.elapsed());
    response
}
