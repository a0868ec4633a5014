//! `POST /v1/decide` (write key: browsers call it), `GET /v1/decisions/{id}/why` (write key:
//! the person asking about their own decision, whose id is unguessable) and
//! `GET /v1/profiles/{id}/decisions` (admin).
//!
//! With the write key a userId is only a claim: a decision uses what Regard knows about a
//! signed-in person only with a valid user token for them (`userToken` in the body or the
//! `X-Regard-User-Token` header), and "why" of such a decision needs the same token. Without
//! one the decision rests on the anonymous visitor alone, and its explanation says so.
//!
//! Deciding reads the live state and the content snapshot in memory; its only write is the
//! decision log's batched append.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use regard_content::decide::{device_from_user_agent, url_host, DecideError, Person, RequestContext, SlotDecision};
use regard_content::template::{Campaign, PageContext};
use regard_core::consent::ConsentPurpose;
use regard_core::time::{format_iso8601_ms, parse_iso8601_ms};
use regard_store::content::DecisionRecord;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::{presented_user_token, Access, UserProof, UNSIGNED_USER_EXPLANATION};
use crate::body::read_body;
use crate::error::{ApiError, ApiQuery, ErrorCode};
use crate::user_token::{unix_secs, USER_TOKEN_HEADER_DISPLAY};
use crate::AppState;

/// Most slots one request may ask for.
pub const MAX_SLOTS_PER_REQUEST: usize = 20;
/// Largest decide request body.
pub const MAX_DECIDE_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideRequest {
    #[serde(rename = "userId", default)]
    user_id: Option<String>,
    #[serde(rename = "anonymousId", default)]
    anonymous_id: Option<String>,
    /// The user token for `userId`, when the page has it in hand rather than in the header.
    #[serde(rename = "userToken", default)]
    user_token: Option<String>,
    slots: Vec<String>,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    #[serde(rename = "writeKey", default)]
    _write_key: Option<String>,
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(512).collect())
}

/// Reads `utm_*` parameters from a URL's query string.
fn campaign_from_url(url: &str) -> Campaign {
    let mut campaign = Campaign::default();
    let Some(query) = url.split_once('?').map(|(_, q)| q.split('#').next().unwrap_or(q)) else { return campaign };
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        if value.is_empty() {
            continue;
        }
        match key {
            "utm_source" => campaign.source = Some(value),
            "utm_medium" => campaign.medium = Some(value),
            "utm_campaign" => campaign.name = Some(value),
            "utm_term" => campaign.term = Some(value),
            "utm_content" => campaign.content = Some(value),
            _ => {}
        }
    }
    campaign
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).chars().take(256).collect()
}

/// The request context of a decision, from Segment-style `context` and the request headers.
fn request_context(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    context: &Map<String, Value>,
) -> RequestContext {
    let empty = Map::new();
    let page = context.get("page").and_then(Value::as_object).unwrap_or(&empty);
    let url = text(page, "url");
    let mut campaign = context
        .get("campaign")
        .and_then(Value::as_object)
        .map(|c| Campaign {
            source: text(c, "source"),
            medium: text(c, "medium"),
            name: text(c, "name"),
            term: text(c, "term"),
            content: text(c, "content"),
        })
        .unwrap_or_default();
    if campaign.source.is_none() && campaign.name.is_none() {
        if let Some(url) = &url {
            campaign = campaign_from_url(url);
        }
    }
    let referrer = text(page, "referrer");
    let user_agent = text(context, "userAgent")
        .or_else(|| headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned));
    // The IP for the country database: what the SDK says, else the first hop a proxy names,
    // else the connection's peer. A forged value only changes the forger's own content.
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|ip| ip.trim().parse().ok());
    let ip: Option<IpAddr> = text(context, "ip").and_then(|ip| ip.parse().ok()).or(forwarded).or(peer);
    let consent = context
        .get("consent")
        .and_then(|c| c.get("categoryPreferences"))
        .and_then(Value::as_object)
        .map(|prefs| {
            let pairs: Vec<(String, bool)> =
                prefs.iter().filter_map(|(k, v)| v.as_bool().map(|b| (k.clone(), b))).collect();
            state.engine.state().config().consent_categories.map_preferences(&pairs)
        })
        .and_then(|decisions| {
            decisions.into_iter().find(|(purpose, _)| *purpose == ConsentPurpose::Personalization).map(|(_, g)| g)
        });
    let (country, region) = state.geo.locate(headers, ip);
    RequestContext {
        country,
        region,
        campaign,
        referrer_domain: referrer.as_deref().and_then(url_host),
        device: user_agent.as_deref().map(|ua| device_from_user_agent(ua).to_owned()),
        locale: text(context, "locale"),
        timezone: text(context, "timezone"),
        page: Some(PageContext { url, path: text(page, "path"), referrer, title: text(page, "title") })
            .filter(|p| p.url.is_some() || p.path.is_some()),
        personalization_consent: consent,
    }
}

/// A fresh request id, 32 hex digits: the time in milliseconds (48 bits) then 80 random bits.
/// Its decisions' ids add the slot's position (see [`regard_store::content::decision_id`]).
/// Knowing one is what lets a browser ask "why?", and 80 random bits are not guessed; the time
/// prefix makes the decision log's key grow at its end, so appending stays cheap.
fn request_id(now_ms: i64) -> String {
    let random = rand::random::<u128>() & ((1u128 << 80) - 1);
    format!("{:012x}{random:020x}", (now_ms.max(0) as u64) & 0xffff_ffff_ffff)
}

/// `POST /v1/decide`: `{"userId"?, "anonymousId"?, "userToken"?, "slots": [...], "context"?}` →
/// `{"decisions": [{"decision_id", "slot", "variant", "content", "level", "explanation"}]}`.
pub async fn decide(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let access = state.keys.access(crate::auth::credential(&headers)?.as_deref())?;
    let text_body = read_body(&headers, body, MAX_DECIDE_BYTES).await?;
    let request: DecideRequest = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text_body))
        .map_err(|e| {
            let path = e.path().to_string();
            let code = if e.inner().is_syntax() || e.inner().is_eof() {
                ErrorCode::InvalidJson
            } else {
                ErrorCode::InvalidField
            };
            if e.inner().to_string().starts_with("missing field") {
                ApiError::field(ErrorCode::MissingField, "slots", e.inner().to_string())
            } else {
                ApiError::field(code, if path == "." { String::new() } else { path }, e.inner().to_string())
            }
        })?;
    if request.slots.is_empty() || request.slots.len() > MAX_SLOTS_PER_REQUEST {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            "slots",
            format!("ask for 1 to {MAX_SLOTS_PER_REQUEST} slots"),
        ));
    }
    for (field, value) in [("userId", &request.user_id), ("anonymousId", &request.anonymous_id)] {
        if value.as_ref().is_some_and(|v| v.is_empty() || v.len() > 256) {
            return Err(ApiError::field(ErrorCode::InvalidField, field, "must be 1 to 256 characters"));
        }
    }
    let snapshot = state.content.snapshot();
    for (i, slot) in request.slots.iter().enumerate() {
        if snapshot.slot(slot).is_none() {
            return Err(ApiError::field(ErrorCode::NotFound, format!("slots[{i}]"), format!("no slot {slot:?}")));
        }
    }
    let peer = peer.map(|axum::Extension(axum::extract::ConnectInfo(address))| address.ip());
    let context = request_context(&state, &headers, peer, request.context.as_ref().unwrap_or(&Map::new()));
    let now_ms = state.clock.now_ms();
    let token = presented_user_token(&headers, request.user_token.as_deref(), "userToken")?;
    let proof = state.keys.user_proof(access, request.user_id.as_deref(), token, unix_secs(now_ms))?;
    // The profile to decide from, and whether a signed-in person's data was held back for want
    // of their token (the explanation then says so). A claimed userId always adds the sentence,
    // whether or not Regard knows that user, so the answer does not tell who has an account.
    let find = |live: &regard_core::live::LiveState| -> (Option<u64>, bool) {
        let user_id = request.user_id.as_deref();
        if let Some(profile) = user_id.filter(|_| proof.trusts_user_id()).and_then(|id| live.find_by_user_id(id)) {
            return (Some(profile.id), false);
        }
        let claimed = proof == UserProof::Claimed;
        match request.anonymous_id.as_deref().and_then(|id| live.find_by_anonymous_id(id)) {
            Some(profile) if proof.may_use(profile, user_id) => (Some(profile.id), claimed),
            Some(_) => (None, true),
            None => (None, claimed),
        }
    };
    // Recommendation lists are filled only when a requested slot shows one.
    let wants_lists = request.slots.iter().filter_map(|s| snapshot.slot(s)).any(|slot| {
        slot.definition.default_recommend.is_some() || slot.definition.variants.iter().any(|v| v.recommend.is_some())
    });
    let model = if wants_lists { state.recs.model() } else { None };
    let (decisions, profile_id, withheld): (Vec<Result<SlotDecision, DecideError>>, Option<u64>, bool) = {
        let live = state.engine.state();
        let (profile_id, withheld) = find(&live);
        let profile = profile_id.and_then(|id| live.profile(id));
        let recently_viewed = profile.map(|p| crate::views::recently_viewed(&live, p)).unwrap_or_default();
        let history = match (model.as_deref(), profile) {
            (Some(model), Some(p)) if live.allows(p, ConsentPurpose::Personalization) => {
                crate::recs::history_of(model, p)
            }
            _ => Vec::new(),
        };
        let cart = crate::recs::cart_of(&history);
        let recommender = model.as_deref().map(|model| crate::recs::DecisionRecommender {
            model,
            live: &live,
            history: &history,
            cart: &cart,
            user: profile.and_then(|p| model.user_idx(&crate::recs::user_key(live.canonical(p.id)))),
            country: context.country.as_deref().and_then(regard_recs::CountryCode::parse),
            now_secs: now_ms.div_euclid(1000),
        });
        let mut person = Person::read(&live, profile_id, &context, snapshot.settings(), now_ms)
            .with_recently_viewed(recently_viewed);
        if let Some(recommender) = &recommender {
            person = person.with_recommender(recommender);
        }
        (request.slots.iter().map(|slot| snapshot.decide(slot, &person, now_ms)).collect(), profile_id, withheld)
    };
    // Only a userId the key or a token vouches for is logged as the decision's person: "why"
    // then asks for that person's token.
    let logged_user_id = request.user_id.clone().filter(|_| proof.trusts_user_id());
    let mut answers = Vec::with_capacity(decisions.len());
    let mut records = Vec::with_capacity(decisions.len());
    let request_key = request_id(now_ms);
    for (index, decision) in decisions.into_iter().enumerate() {
        let mut decision = decision.map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        if withheld {
            decision.explanation = format!("{} {UNSIGNED_USER_EXPLANATION}", decision.explanation);
        }
        let id = regard_store::content::decision_id(&request_key, index);
        answers.push(json!({
            "decision_id": id,
            "slot": decision.slot,
            "variant": decision.variant,
            "content": decision.content,
            "level": decision.level,
            "explanation": decision.explanation,
        }));
        records.push(DecisionRecord {
            decision_id: id,
            at_ms: now_ms,
            profile_id,
            user_id: logged_user_id.clone(),
            anonymous_id: request.anonymous_id.clone(),
            slot: decision.slot.clone(),
            variant: decision.variant.clone(),
            level: decision.level.as_str().to_owned(),
            purpose: decision.purpose.map(str::to_owned),
            explanation: decision.explanation.clone(),
            detail: json!({
                "conditions": decision.conditions,
                "skipped": decision.skipped,
                "consent": decision.consent,
                "slot_version": decision.slot_version,
                "snapshot_version": snapshot.version(),
            })
            .to_string(),
        });
    }
    state.metrics.count_decisions(records.len() as u64);
    state.content.store.log_decisions(records).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(Json(json!({ "decisions": answers })))
}

/// The JSON view of a logged decision.
pub fn decision_view(record: &DecisionRecord) -> Value {
    let detail: Value = serde_json::from_str(&record.detail).unwrap_or(Value::Null);
    let reasons: Vec<Value> = detail
        .get("conditions")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(|c| c.get("text").cloned()).collect())
        .unwrap_or_default();
    json!({
        "decision_id": record.decision_id,
        "at": format_iso8601_ms(record.at_ms),
        "slot": record.slot,
        "variant": record.variant,
        "level": record.level,
        "purpose": record.purpose,
        "explanation": record.explanation,
        "reasons": reasons,
        "detail": detail,
    })
}

/// Query of `GET /v1/decisions/{id}/why`.
#[derive(Debug, Default, Deserialize)]
pub struct WhyQuery {
    /// The user token of the person the decision was for, when not sent in the header.
    pub user_token: Option<String>,
}

/// `GET /v1/decisions/{id}/why`: the explanation of one decision, and what it rested on. With
/// the write key, a decision made for a signed-in person needs that person's user token.
pub async fn why(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<WhyQuery>,
) -> Result<Json<Value>, ApiError> {
    let access = state.keys.access(crate::auth::credential(&headers)?.as_deref())?;
    let not_found = || ApiError::field(ErrorCode::NotFound, "id", format!("no decision {id:?}"));
    if id.len() != 34 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let content = state.content.clone();
    let lookup = id.clone();
    let record = tokio::task::spawn_blocking(move || content.store.decision(&lookup))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the read task failed"))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
        .ok_or_else(not_found)?;
    if let (Access::Write, Some(user_id)) = (access, record.user_id.as_deref()) {
        let token = presented_user_token(&headers, query.user_token.as_deref(), "user_token")?.ok_or_else(|| {
            ApiError::field(
                ErrorCode::InvalidUserToken,
                USER_TOKEN_HEADER_DISPLAY,
                "this decision was made for a signed-in person: send their user token",
            )
        })?;
        state.keys.user_proof(access, Some(user_id), Some(token), unix_secs(state.clock.now_ms()))?;
    }
    let mut view = decision_view(&record);
    if let Some(map) = view.as_object_mut() {
        // The person sees the sentences; the operator's detail stays in the admin view.
        map.remove("detail");
    }
    Ok(Json(view))
}

/// Query of the profile's decision log.
#[derive(Debug, Deserialize)]
pub struct DecisionsQuery {
    /// At most this many (default 50, at most 1,000).
    pub limit: Option<usize>,
    /// Only decisions before this time (ISO 8601), to page back.
    pub before: Option<String>,
}

/// `GET /v1/profiles/{id}/decisions`: what was personalized for this person, when, and why.
pub async fn of_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DecisionsQuery>,
) -> Result<Json<Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let before_ms = match &query.before {
        Some(text) => Some(
            parse_iso8601_ms(text)
                .ok_or_else(|| ApiError::field(ErrorCode::InvalidField, "before", "must be an ISO 8601 time"))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 1_000);
    let ids: Vec<u64> = {
        let live = state.engine.state();
        let profile = live
            .find_profile(&id)
            .ok_or_else(|| ApiError::field(ErrorCode::NotFound, "id", format!("no profile is known by {id:?}")))?;
        live.member_ids(profile.id)
    };
    let content = state.content.clone();
    let records = tokio::task::spawn_blocking(move || content.store.decisions_for(&ids, before_ms, limit))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the read task failed"))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let next_before = (records.len() == limit).then(|| records.last().map(|r| format_iso8601_ms(r.at_ms))).flatten();
    Ok(Json(json!({
        "decisions": records.iter().map(decision_view).collect::<Vec<_>>(),
        "next_before": next_before,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_parameters_come_from_the_page_url() {
        let campaign = campaign_from_url("https://shop.test/?utm_source=news%20letter&utm_campaign=summer-sale#top");
        assert_eq!(campaign.source.as_deref(), Some("news letter"));
        assert_eq!(campaign.name.as_deref(), Some("summer-sale"));
        assert_eq!(campaign.medium, None);
        assert_eq!(campaign_from_url("https://shop.test/").name, None);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn request_ids_are_32_hex_digits_time_ordered_and_differ() {
        let (a, b) = (request_id(1_780_000_000_000), request_id(1_780_000_000_001));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        // Later decisions sort after earlier ones.
        assert!(a < b, "{a} {b}");
        assert_ne!(request_id(5), request_id(5));
    }
}
