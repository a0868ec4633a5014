//! Domain state turned into the API's JSON, by hand, so the wire shape is decided here.

use regard_core::consent::ConsentPurpose;
use regard_core::live::{LiveState, PROFILE_ID_PREFIX};
use regard_core::message::{IdentityKind, MessageKind};
use regard_core::profile::Profile;
use regard_core::time::format_iso8601_ms;
use regard_store::StoredEvent;
use serde_json::{json, Map, Value};

/// A profile's internal id as the API shows it.
pub fn profile_key(id: u64) -> String {
    format!("{PROFILE_ID_PREFIX}{id}")
}

/// Consent per purpose: the recorded decision and whether the purpose is allowed now under
/// the instance's consent mode.
pub fn consent_view(live: &LiveState, profile: &Profile) -> Value {
    let mut out = Map::new();
    for purpose in ConsentPurpose::ALL {
        let decision = profile.consent.decision(purpose);
        out.insert(
            purpose.as_str().to_owned(),
            json!({
                "state": match decision { Some(d) if d.granted => "granted", Some(_) => "denied", None => "unset" },
                "allowed": live.allows(profile, purpose),
                "at": decision.map(|d| format_iso8601_ms(d.at_ms)),
                "source": decision.map(|d| d.source.as_str()),
                "policy_version": decision.and_then(|d| d.policy_version.clone()),
            }),
        );
    }
    Value::Object(out)
}

fn trait_value(json_text: &str) -> Value {
    serde_json::from_str(json_text).unwrap_or(Value::Null)
}

/// The live part of `GET /v1/profiles/{id}` (stored history is added by the handler).
pub fn profile_view(live: &LiveState, profile: &Profile) -> Value {
    let mut traits = Map::new();
    let mut sorted: Vec<_> = profile.traits.iter().collect();
    sorted.sort_by(|a, b| live.symbols.name(a.key).cmp(live.symbols.name(b.key)));
    for t in sorted {
        traits.insert(live.symbols.name(t.key).to_owned(), trait_value(&t.value_json));
    }
    let ids_of = |kind: IdentityKind| -> Vec<&str> {
        profile.identities.iter().filter(|(k, _)| *k == kind).map(|(_, v)| &**v).collect()
    };
    let mut by_type = Map::new();
    for kind in MessageKind::ALL {
        by_type.insert(kind.as_str().to_owned(), json!(profile.kind_counts[kind.index()]));
    }
    let mut by_event: Vec<(&str, u32)> = profile.name_counts.iter().map(|(n, c)| (live.symbols.name(*n), *c)).collect();
    by_event.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let merged: Vec<String> =
        live.member_ids(profile.id).into_iter().filter(|&id| id != profile.id).map(profile_key).collect();
    json!({
        "id": profile_key(profile.id),
        "identities": {
            "user_ids": ids_of(IdentityKind::UserId),
            "anonymous_ids": ids_of(IdentityKind::AnonymousId),
        },
        "merged_profile_ids": merged,
        "traits": traits,
        "consent_mode": live.config().consent_mode.as_str(),
        "consents": consent_view(live, profile),
        "counters": {
            "events": profile.timeline.len(),
            "by_type": by_type,
            "by_event": by_event.into_iter().map(|(n, c)| (n.to_owned(), json!(c))).collect::<Map<_, _>>(),
        },
        "sessions": profile.sessions,
        "visitor": profile.visitor_kind().as_str(),
        "first_seen": profile.first_seen_ms().map(format_iso8601_ms),
        "last_seen": profile.last_seen_ms().map(format_iso8601_ms),
        "last_locale": profile.last_locale.map(|s| live.symbols.name(s)),
        "last_timezone": profile.last_timezone.map(|s| live.symbols.name(s)),
    })
}

/// One stored event: its messageId, type, name, properties, context and times.
pub fn event_view(event: &StoredEvent) -> Value {
    let raw: Value = serde_json::from_str(&event.raw).unwrap_or(Value::Null);
    let pick = |key: &str| raw.get(key).cloned().unwrap_or(Value::Null);
    let properties = match event.kind {
        MessageKind::Identify | MessageKind::Group => pick("traits"),
        _ => pick("properties"),
    };
    let mut out = json!({
        "seq": event.seq,
        "messageId": event.message_id,
        "type": event.kind.as_str(),
        "name": event.name,
        "properties": properties,
        "context": pick("context"),
        "timestamp": format_iso8601_ms(event.timestamp_ms),
        "receivedAt": format_iso8601_ms(event.received_at_ms),
        "profile_id": profile_key(event.profile_id),
    });
    if let (Some(original), Some(map)) = (raw.get("timestamp").or(raw.get("originalTimestamp")), out.as_object_mut()) {
        map.insert("originalTimestamp".into(), original.clone());
    }
    out
}

/// The products a person viewed most recently, newest first, as template cards (resolved
/// against the catalog; products no longer in it are left out).
pub fn recently_viewed(live: &LiveState, profile: &Profile) -> Vec<regard_content::template::ProductCard> {
    live.recently_viewed(profile.id)
        .into_iter()
        .filter_map(|id| live.product(id))
        .map(|product| regard_content::template::ProductCard {
            id: product.id.clone(),
            name: product.name.clone(),
            price: product.price,
            currency: product.currency.clone(),
            category: Some(product.category().to_owned()).filter(|c| !c.is_empty()),
            url: product.url.clone(),
            image_url: product.image.clone(),
            explanation: None,
            strategy: None,
        })
        .collect()
}
