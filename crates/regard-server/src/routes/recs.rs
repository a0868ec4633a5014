//! `GET /v1/recommendations` and `GET /v1/items/{id}/similar` (write key), and training:
//! `POST /v1/recommendations/train`, `GET /v1/recommendations/status` (admin).
//!
//! With the write key, a person's list uses a signed-in person's history only with a valid
//! user token for them (`user_token` or the `X-Regard-User-Token` header); without one, `user`
//! may still name an anonymous visitor not tied to any userId.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use regard_core::consent::ConsentPurpose;
use regard_recs::{BusinessFilter, CountryCode, ItemIdx, Recommendation, RecsModel, RecsRequest, RuleInputs, Strategy};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{presented_user_token, UserProof, UNSIGNED_USER_EXPLANATION};
use crate::error::{ApiError, ApiQuery, ErrorCode};
use crate::recs::history_of;
use crate::AppState;

/// Most items one list may hold.
pub const MAX_ITEMS: usize = 50;

/// Query of `GET /v1/recommendations` and `GET /v1/items/{id}/similar`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecsQuery {
    /// userId or anonymousId (`/v1/recommendations` only).
    pub user: Option<String>,
    /// The user token for `user` as a userId, when not sent in the header
    /// (`/v1/recommendations` only).
    pub user_token: Option<String>,
    /// Strategies in fallback order, comma-separated; default: the configured chain.
    pub strategy: Option<String>,
    /// Items wanted (default 10, at most 50).
    pub n: Option<usize>,
    /// Product ids to leave out, comma-separated.
    pub exclude: Option<String>,
    /// Only this category (a path prefix).
    pub category: Option<String>,
    /// Only items at or above this price.
    pub min_price: Option<f64>,
    /// Only items at or below this price.
    pub max_price: Option<f64>,
    /// `web` (default) or `email`: a shared context gets no sensitive items.
    pub context: Option<String>,
    /// ISO country for popular-in-country when the person has none.
    pub country: Option<String>,
    /// Leave out what is in the person's cart (`true`/`false`, default false).
    pub exclude_cart: Option<bool>,
}

fn list(text: &Option<String>) -> Vec<String> {
    text.as_deref()
        .map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn model(state: &AppState) -> Result<Arc<RecsModel>, ApiError> {
    state.recs.model().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "no recommendation model is trained yet: POST /v1/recommendations/train or `regard train recs`",
        )
    })
}

fn strategies(query: &RecsQuery) -> Result<Vec<Strategy>, ApiError> {
    list(&query.strategy)
        .iter()
        .map(|s| s.parse::<Strategy>().map_err(|e| ApiError::field(ErrorCode::InvalidField, "strategy", e.to_string())))
        .collect()
}

fn item_view(model: &RecsModel, live: &regard_core::live::LiveState, r: &Recommendation) -> Value {
    let id = model.item_id(r.item);
    let product = live.product(id);
    json!({
        "id": id,
        "name": product.map(|p| p.name.as_str()),
        "price": product.and_then(|p| p.price),
        "currency": product.and_then(|p| p.currency.as_deref()),
        "url": product.and_then(|p| p.url.as_deref()),
        "category": product.map(|p| p.category()),
        "score": r.score,
        "strategy": r.strategy.as_str(),
        "explanation": r.explanation,
    })
}

struct Prepared {
    n: usize,
    exclude: Vec<ItemIdx>,
    filter: BusinessFilter,
    shared: bool,
    strategies: Vec<Strategy>,
}

fn prepare(query: &RecsQuery, model: &RecsModel) -> Result<Prepared, ApiError> {
    let n = query.n.unwrap_or(10);
    if n == 0 || n > MAX_ITEMS {
        return Err(ApiError::field(ErrorCode::InvalidField, "n", format!("must be 1 to {MAX_ITEMS}")));
    }
    let shared = match query.context.as_deref() {
        None | Some("web") => false,
        Some("email") => true,
        Some(other) => {
            return Err(ApiError::field(ErrorCode::InvalidField, "context", format!("{other:?}: use web or email")))
        }
    };
    for (field, value) in [("min_price", query.min_price), ("max_price", query.max_price)] {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(ApiError::field(ErrorCode::InvalidField, field, "must be a number at least 0"));
        }
    }
    Ok(Prepared {
        n,
        exclude: list(&query.exclude).iter().filter_map(|id| model.item_idx(id)).collect(),
        filter: BusinessFilter {
            category: query.category.clone(),
            min_price: query.min_price,
            max_price: query.max_price,
        },
        shared,
        strategies: strategies(query)?,
    })
}

/// `GET /v1/recommendations?user=&strategy=&n=&exclude=&category=&min_price=&max_price=&context=`:
/// items for a person, each with the strategy that produced it and a sentence saying why.
/// Without `personalization` consent only non-personal strategies run (popular in the country
/// given, then popular), and the answer says so.
pub async fn for_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<RecsQuery>,
) -> Result<Json<Value>, ApiError> {
    let access = state.keys.access(crate::auth::credential(&headers)?.as_deref())?;
    let now_ms = state.clock.now_ms();
    let token = presented_user_token(&headers, query.user_token.as_deref(), "user_token")?;
    let proof = state.keys.user_proof(access, query.user.as_deref(), token, crate::user_token::unix_secs(now_ms))?;
    let model = model(&state)?;
    let prepared = prepare(&query, &model)?;
    let (profile, personalized, history, country, withheld) = {
        let live = state.engine.state();
        // A userId only with the admin key or its token; an anonymousId only while it is tied
        // to no userId (or to the one the token is for).
        let profile = query.user.as_deref().and_then(|id| {
            proof
                .trusts_user_id()
                .then(|| live.find_by_user_id(id))
                .flatten()
                .or_else(|| live.find_by_anonymous_id(id).filter(|p| proof.may_use(p, Some(id))))
        });
        // Said whenever a tokenless `user` found no anonymous visitor, known user or not, so
        // the answer does not tell who has an account.
        let withheld = proof == UserProof::Claimed && profile.is_none();
        let personalized = profile.is_some_and(|p| live.allows(p, ConsentPurpose::Personalization));
        let history = match profile {
            Some(p) if personalized => history_of(&model, p),
            _ => Vec::new(),
        };
        let trait_country = profile
            .filter(|_| personalized)
            .and_then(|p| live.symbols.get("country").and_then(|s| p.trait_json(s)))
            .and_then(|json| serde_json::from_str::<String>(json).ok());
        (profile.map(|p| live.canonical(p.id)), personalized, history, trait_country, withheld)
    };
    let country = country.or(query.country.clone()).as_deref().and_then(CountryCode::parse);
    let cart = crate::recs::cart_of(&history);
    let generic = [Strategy::PopularInCountry, Strategy::Popular];
    let strategies: &[Strategy] = if personalized { &prepared.strategies } else { &generic };
    let request = RecsRequest {
        history: &history,
        user: profile.filter(|_| personalized).and_then(|p| model.user_idx(&crate::recs::user_key(p))),
        country,
        anchor: None,
        now_secs: now_ms.div_euclid(1000),
        n: prepared.n,
        strategies,
        rules: RuleInputs {
            cart: &cart,
            exclude_cart: query.exclude_cart.unwrap_or(false),
            exclude: &prepared.exclude,
            shared_context: prepared.shared,
            filter: prepared.filter.clone(),
            ..RuleInputs::default()
        },
    };
    let items = model.recommend(&request);
    let live = state.engine.state();
    Ok(Json(json!({
        "user": query.user,
        "personalized": personalized,
        "explanation": if personalized {
            "Chosen from what you viewed and bought here, and what people with similar tastes bought.".to_owned()
        } else if withheld {
            format!("Popular items: nothing about you was used to choose them. {UNSIGNED_USER_EXPLANATION}")
        } else {
            "Popular items: nothing about you was used to choose them.".to_owned()
        },
        "items": items.iter().map(|r| item_view(&model, &live, r)).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/items/{id}/similar?n=&strategy=&exclude=&category=&context=`: items to show next to
/// one (also bought, similar content, popular in its category).
pub async fn similar(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RecsQuery>,
) -> Result<Json<Value>, ApiError> {
    state.keys.access(crate::auth::credential(&headers)?.as_deref())?;
    for (field, given) in [("user", query.user.is_some()), ("user_token", query.user_token.is_some())] {
        if given {
            return Err(ApiError::field(ErrorCode::InvalidField, field, "similar items are the same for everyone"));
        }
    }
    let model = model(&state)?;
    let prepared = prepare(&query, &model)?;
    let item = model
        .item_idx(&id)
        .ok_or_else(|| ApiError::field(ErrorCode::NotFound, "id", format!("no item {id:?} in the trained model")))?;
    let request = RecsRequest {
        history: &[],
        user: None,
        country: query.country.as_deref().and_then(CountryCode::parse),
        anchor: Some(item),
        now_secs: state.clock.now_ms().div_euclid(1000),
        n: prepared.n,
        strategies: &prepared.strategies,
        rules: RuleInputs {
            exclude: &prepared.exclude,
            shared_context: prepared.shared,
            filter: prepared.filter.clone(),
            ..RuleInputs::default()
        },
    };
    let items = model.similar_items(item, &request);
    let live = state.engine.state();
    Ok(Json(json!({
        "item": id,
        "items": items.iter().map(|r| item_view(&model, &live, r)).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/recommendations/train` (admin): retrains from the store in the background (202);
/// queries keep the current model until the new one is ready.
pub async fn train(State(state): State<AppState>, headers: HeaderMap) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.keys.require_admin(&headers)?;
    let (recs, engine, now_ms) = (state.recs.clone(), state.engine.clone(), state.clock.now_ms());
    std::thread::Builder::new()
        .name("regard-recs-train".to_owned())
        .spawn(move || {
            if let Err(error) = recs.train(&engine, regard_recs::RecsConfig::default(), now_ms) {
                tracing::warn!(%error, "recommendation training failed");
            }
        })
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("starting training: {e}")))?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "training", "status_url": "/v1/recommendations/status"}))))
}

/// `GET /v1/recommendations/status` (admin): the training state and what the model was trained on.
pub async fn status(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let mut view = serde_json::to_value(state.recs.status()).unwrap_or(Value::Null);
    if let (Some(model), Some(map)) = (state.recs.model(), view.as_object_mut()) {
        map.insert("memory".into(), serde_json::to_value(model.memory()).unwrap_or(Value::Null));
    }
    Ok(Json(view))
}
