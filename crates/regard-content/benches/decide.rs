//! One request's decisions in-process: reading the person from the live state and deciding three
//! slots (the `regard bench decide` request shape, without HTTP).

#![allow(missing_docs, reason = "criterion_group! generates an undocumented public function")]

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use regard_content::decide::{ContentSnapshot, Person, RequestContext, StoredSlot};
use regard_content::slot::SlotDefinition;
use regard_content::template::{ContentSettings, LintPolicy};
use regard_core::consent::ConsentMode;
use regard_core::facts::FactBatch;
use regard_core::live::{LiveConfig, LiveState};
use regard_core::message::{Message, MessageContext, MessageKind};
use regard_core::segments::PolicyConfig;

const NOW: i64 = 1_780_000_000_000;
const DAY: i64 = 86_400_000;

fn message(id: usize, kind: MessageKind, at_ms: i64) -> Message {
    Message {
        kind,
        message_id: format!("m{id}"),
        user_id: Some("user-1".to_owned()),
        anonymous_id: Some("anon-1".to_owned()),
        previous_id: None,
        group_id: None,
        name: (kind != MessageKind::Identify).then(|| "Product Viewed".to_owned()),
        timestamp_ms: at_ms,
        received_at_ms: at_ms,
        traits: (kind == MessageKind::Identify).then(|| {
            serde_json::json!({"first_name": "Sarah", "email": "sarah@example.com", "locale": "fr-FR", "currency": "EUR",
                               "country": "FR", "city": "Paris", "timezone": "Europe/Paris", "plan": "pro"})
            .as_object()
            .cloned()
            .unwrap_or_default()
        }),
        properties: Some(format!("{{\"product_id\": \"sku-{}\", \"price\": 20}}", id % 7).into()),
        context: MessageContext {
            consent_categories: vec![("analytics".into(), true), ("personalization".into(), true)],
            ..MessageContext::default()
        },
        raw: "{}".into(),
    }
}

fn slots() -> Vec<Arc<StoredSlot>> {
    let hero = r#"{"id": "home_hero", "name": "Hero", "kind": "web_hero", "variants": [
        {"id": "campaign", "priority": 30, "when": {"context": {"field": "utm_campaign", "op": "equals", "value": "x"}}, "template": "<h2>Campaign</h2>"},
        {"id": "pro", "priority": 20, "when": {"trait": {"name": "plan", "op": "equals", "value": "pro"}},
         "template": "<h2>Bonjour {{ traits.first_name }}</h2><p>Free shipping over {{ 50 | money('USD') }}</p>"},
        {"id": "back", "priority": 10, "when": {"visitor": "returning"}, "template": "<h2>Welcome back</h2>"}],
        "default": {"template": "<h2>Bestsellers</h2>"}}"#;
    let banner = r#"{"id": "home_banner", "name": "Banner", "kind": "banner", "variants": [
        {"id": "eu", "when": {"context": {"field": "country", "op": "in", "value": ["DE", "FR"]}}, "template": "EU shipping over {{ 50 | money('EUR') }}"}],
        "default": {"template": "Free returns"}}"#;
    let row = r#"{"id": "product_row", "name": "Row", "kind": "product_row", "variants": [
        {"id": "recent", "when": {"visitor": "returning"},
         "template": "<ul>{% for p in recently_viewed[:4] %}<li>{{ p.name }}</li>{% endfor %}</ul>"}],
        "default": {"template": "<p>Popular</p>"}}"#;
    [hero, banner, row]
        .iter()
        .map(|json| {
            let definition = SlotDefinition::parse_str(json, &PolicyConfig::default()).expect("slot");
            Arc::new(StoredSlot { definition, json: (*json).to_owned(), version: 1, updated_ms: NOW })
        })
        .collect()
}

fn decide(c: &mut Criterion) {
    let mut live = LiveState::new(LiveConfig { consent_mode: ConsentMode::OptIn, ..LiveConfig::default() });
    let mut facts = FactBatch::default();
    live.apply_message(message(0, MessageKind::Identify, NOW - 30 * DAY), &mut facts);
    for i in 1..60 {
        live.apply_message(message(i, MessageKind::Track, NOW - 30 * DAY + i as i64 * DAY / 2), &mut facts);
    }
    let rates = serde_json::from_str(r#"{"base":"USD","rates":{"EUR":0.92}}"#).expect("rates");
    let settings = ContentSettings { exchange_rates: Some(rates), stores: Vec::new() };
    let snapshot = ContentSnapshot::build(1, slots(), settings, &LintPolicy::default()).expect("snapshot");
    let profile = live.find_by_user_id("user-1").map(|p| p.id);
    let request = RequestContext { country: Some("FR".to_owned()), ..RequestContext::default() };
    let names = ["home_hero", "home_banner", "product_row"];
    c.bench_function("decide_3_slots_known_person", |b| {
        b.iter(|| {
            let person = Person::read(&live, profile, &request, snapshot.settings(), NOW);
            for name in names {
                black_box(snapshot.decide(name, &person, NOW).expect("decides"));
            }
        })
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
