use regard_core::consent::ConsentMode;
use regard_core::facts::FactBatch;
use regard_core::live::{LiveConfig, LiveState};
use regard_core::message::{Message, MessageContext, MessageKind};
use regard_core::time::{DAY_MS, HOUR_MS};

use super::*;

const NOW: i64 = 1_780_000_000_000;

fn message(id: &str, anonymous: &str, at_ms: i64, granted: bool) -> Message {
    let context = MessageContext {
        consent_categories: vec![("analytics".into(), true), ("personalization".into(), granted)],
        ..MessageContext::default()
    };
    Message {
        kind: MessageKind::Page,
        message_id: id.to_owned(),
        user_id: None,
        anonymous_id: Some(anonymous.to_owned()),
        previous_id: None,
        group_id: None,
        name: Some("Home".to_owned()),
        timestamp_ms: at_ms,
        received_at_ms: at_ms,
        traits: None,
        properties: None,
        context,
        raw: "{}".into(),
    }
}

fn identify(id: &str, anonymous: &str, traits: serde_json::Value, at_ms: i64) -> Message {
    let mut m = message(id, anonymous, at_ms, true);
    m.kind = MessageKind::Identify;
    m.name = None;
    m.user_id = Some(format!("user-{anonymous}"));
    m.traits = traits.as_object().cloned();
    m
}

/// Visitors: `returning` (two visits days apart), `fresh` (one visit), `refuser` (returning,
/// but said no to personalization), `pro` (a trait).
fn live() -> LiveState {
    let mut live = LiveState::new(LiveConfig { consent_mode: ConsentMode::OptIn, ..LiveConfig::default() });
    let mut facts = FactBatch::default();
    live.apply_message(message("r1", "returning", NOW - 2 * DAY_MS, true), &mut facts);
    live.apply_message(message("r2", "returning", NOW - 2 * DAY_MS + 60_000, true), &mut facts);
    live.apply_message(message("r3", "returning", NOW - 60_000, true), &mut facts);
    live.apply_message(message("f1", "fresh", NOW - 60_000, true), &mut facts);
    live.apply_message(message("o1", "refuser", NOW - 2 * DAY_MS, false), &mut facts);
    live.apply_message(message("o2", "refuser", NOW - 60_000, false), &mut facts);
    live.apply_message(
        identify(
            "p1",
            "pro",
            serde_json::json!({"plan": "pro", "first_name": "Ada", "timezone": "Europe/Berlin"}),
            NOW,
        ),
        &mut facts,
    );
    live
}

const HERO: &str = r#"{
  "id": "home_hero", "name": "Home hero", "kind": "web_hero",
  "variants": [
    {"id": "summer", "priority": 30,
     "when": {"context": {"field": "utm_campaign", "op": "equals", "value": "summer-sale"}},
     "template": "<h2>Summer sale</h2>"},
    {"id": "pro", "priority": 20, "when": {"trait": {"name": "plan", "op": "equals", "value": "pro"}},
     "template": "<h2>Hi {{ traits.first_name }}, your pro tools</h2>"},
    {"id": "welcome_back", "priority": 10, "when": {"visitor": "returning"}, "template": "<h2>Welcome back</h2>"}
  ],
  "default": {"template": "<h2>Bestsellers</h2>"}
}"#;

fn snapshot(json: &str) -> ContentSnapshot {
    let slot = SlotDefinition::parse_str(json, &regard_core::segments::PolicyConfig::default()).unwrap();
    let stored = Arc::new(StoredSlot { definition: slot, json: json.to_owned(), version: 1, updated_ms: NOW });
    ContentSnapshot::build(1, vec![stored], ContentSettings::default(), &LintPolicy::default()).unwrap()
}

fn decide_for(live: &LiveState, anonymous: &str, request: &RequestContext) -> SlotDecision {
    let snapshot = snapshot(HERO);
    let profile = live.find_by_anonymous_id(anonymous).map(|p| p.id);
    let person = Person::read(live, profile, request, snapshot.settings(), NOW);
    snapshot.decide("home_hero", &person, NOW).unwrap()
}

#[test]
fn a_returning_visitor_is_welcomed_back_and_told_why() {
    let live = live();
    let decision = decide_for(&live, "returning", &RequestContext::default());
    assert_eq!(decision.variant, "welcome_back");
    assert_eq!(decision.level, Level::Behavioral);
    assert_eq!(decision.content, "<h2>Welcome back</h2>");
    assert_eq!(decision.explanation, "You are seeing this because you have visited before.");
    assert_eq!(decision.purpose, Some("personalization"));
}

#[test]
fn a_campaign_visitor_gets_the_campaign_and_a_first_visit_gets_the_default() {
    let live = live();
    let mut request = RequestContext::default();
    request.campaign.name = Some("summer-sale".to_owned());
    let decision = decide_for(&live, "fresh", &request);
    assert_eq!((decision.variant.as_str(), decision.level), ("summer", Level::Dynamic));
    assert!(decision.explanation.contains("summer-sale"), "{}", decision.explanation);
    let decision = decide_for(&live, "fresh", &RequestContext::default());
    assert_eq!((decision.variant.as_str(), decision.level), ("default", Level::Generic));
    assert_eq!(decision.explanation, GENERIC_EXPLANATION);
    assert_eq!(decision.purpose, None);
}

#[test]
fn an_opted_out_person_gets_generic_content_and_the_explanation_says_so() {
    let live = live();
    let mut request = RequestContext::default();
    request.campaign.name = Some("summer-sale".to_owned());
    let decision = decide_for(&live, "refuser", &request);
    assert_eq!((decision.variant.as_str(), decision.level), ("default", Level::Generic));
    assert!(decision.explanation.contains("turned off personalization"), "{}", decision.explanation);
    assert_eq!(decision.consent, ConsentBasis::OptedOut);
    // Saying no in the request itself wins over a stored yes, at once.
    request.personalization_consent = Some(false);
    let decision = decide_for(&live, "returning", &request);
    assert_eq!(decision.variant, "default");
    // An unknown visitor under opt-in has not said yes.
    let decision = decide_for(&live, "stranger", &RequestContext::default());
    assert_eq!(decision.consent, ConsentBasis::NotGranted);
    assert!(decision.explanation.contains("not turned on personalization"), "{}", decision.explanation);
}

#[test]
fn traits_give_identity_content_with_the_name_once() {
    let live = live();
    let decision = decide_for(&live, "pro", &RequestContext::default());
    assert_eq!((decision.variant.as_str(), decision.level), ("pro", Level::Identity));
    assert_eq!(decision.content, "<h2>Hi Ada, your pro tools</h2>");
    assert_eq!(decision.explanation, "You are seeing this because your plan is pro.");
}

#[test]
fn local_hours_follow_the_person_time_zone() {
    let live = live();
    let json = r#"{"id": "greeting", "name": "Greeting", "kind": "banner",
      "variants": [{"id": "night", "local_hours": {"from": 22, "to": 6}, "template": "Night owl?"},
                   {"id": "day", "local_hours": {"from": 6, "to": 22}, "template": "Hello"}],
      "default": {"template": "Hi"}}"#;
    let snapshot = snapshot(json);
    let profile = live.find_by_anonymous_id("pro").map(|p| p.id);
    let request = RequestContext::default();
    let person = Person::read(&live, profile, &request, snapshot.settings(), NOW);
    let berlin_hour = local_hour("Europe/Berlin", NOW).unwrap();
    let decision = snapshot.decide("greeting", &person, NOW).unwrap();
    let expected = if (6..22).contains(&berlin_hour) { "day" } else { "night" };
    assert_eq!(decision.variant, expected, "hour {berlin_hour} in Berlin");
    assert_eq!(decision.level, Level::Dynamic);
    // Without a known zone, time-of-day variants do not apply.
    let person =
        Person::read(&live, live.find_by_anonymous_id("returning").map(|p| p.id), &request, snapshot.settings(), NOW);
    assert_eq!(snapshot.decide("greeting", &person, NOW).unwrap().variant, "default");
    let _ = HOUR_MS;
}

#[test]
fn an_unknown_slot_is_an_error() {
    let live = live();
    let snapshot = snapshot(HERO);
    let request = RequestContext::default();
    let person = Person::read(&live, None, &request, snapshot.settings(), NOW);
    assert_eq!(snapshot.decide("nope", &person, NOW).unwrap_err(), DecideError::UnknownSlot("nope".to_owned()));
}

#[test]
fn user_agents_urls_and_countries() {
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
    assert_eq!(device_from_user_agent(iphone), "mobile");
    assert_eq!(device_from_user_agent("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"), "tablet");
    assert_eq!(device_from_user_agent("Mozilla/5.0 (Linux; Android 14; SM-X700) Safari/537.36"), "tablet");
    assert_eq!(device_from_user_agent("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"), "mobile");
    assert_eq!(device_from_user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"), "desktop");
    assert_eq!(url_host("https://user@www.Google.com:443/search?q=x").as_deref(), Some("www.google.com"));
    assert_eq!(url_host("android-app://com.google.android.gm/").as_deref(), Some("com.google.android.gm"));
    assert_eq!(url_host(""), None);
    assert_eq!(country_of_locale("de-AT").as_deref(), Some("AT"));
    assert_eq!(country_of_locale("de"), None);
    assert_eq!(currency_of_country("at"), Some("EUR"));
    assert_eq!(currency_of_country("ZZ"), None);
}

#[test]
fn explanations_join_reasons_into_one_sentence() {
    let fired = |text: &str, level| FiredCondition { path: "when".into(), level, text: text.into() };
    assert_eq!(
        explain_fired(
            &[
                fired("You viewed Running Shoes 3 times in the last 7 days.", Level::Behavioral),
                fired("You are visiting from DE.", Level::Dynamic),
                fired("You viewed Running Shoes 3 times in the last 7 days.", Level::Behavioral),
            ],
            Level::Behavioral
        ),
        "You are seeing this because you viewed Running Shoes 3 times in the last 7 days, and you are visiting from DE."
    );
    assert_eq!(explain_fired(&[], Level::Generic), GENERIC_EXPLANATION);
}

struct FixedRecommender;

impl Recommender for FixedRecommender {
    fn recommend(&self, spec: &RecommendSpec, personal: bool, _shared_context: bool) -> Vec<ProductCard> {
        let label = if personal { "for-you" } else { "popular" };
        (0..spec.n)
            .map(|i| ProductCard {
                id: format!("{label}-{i}"),
                name: format!("{label} {i}"),
                explanation: Some(if personal { "Because you viewed X".into() } else { "Popular this week".into() }),
                ..ProductCard::default()
            })
            .collect()
    }
}

struct EmptyRecommender;

impl Recommender for EmptyRecommender {
    fn recommend(&self, _spec: &RecommendSpec, _personal: bool, _shared_context: bool) -> Vec<ProductCard> {
        Vec::new()
    }
}

const ROW: &str = r#"{"id": "row", "name": "Row", "kind": "product_row",
  "variants": [{"id": "for_you", "when": {"visitor": "returning"}, "recommend": {"n": 2},
                "template": "{% for p in recommendations %}[{{ p.name }}: {{ p.explanation }}]{% endfor %}"}],
  "default": {"recommend": {"strategy": ["popular"], "n": 3},
              "template": "{% for p in recommendations %}[{{ p.name }}]{% endfor %}"}}"#;

#[test]
fn recommendation_variants_fill_the_list_and_the_default_stays_generic() {
    let live = live();
    let snapshot = snapshot(ROW);
    let request = RequestContext::default();
    let recommender = FixedRecommender;
    let returning = live.find_by_anonymous_id("returning").map(|p| p.id);
    let person = Person::read(&live, returning, &request, snapshot.settings(), NOW).with_recommender(&recommender);
    let decision = snapshot.decide("row", &person, NOW).unwrap();
    assert_eq!(decision.variant, "for_you");
    assert_eq!(decision.level, Level::Behavioral);
    assert_eq!(decision.content, "[for-you 0: Because you viewed X][for-you 1: Because you viewed X]");
    // Opted out: the default, with generic lists only.
    let refuser = live.find_by_anonymous_id("refuser").map(|p| p.id);
    let person = Person::read(&live, refuser, &request, snapshot.settings(), NOW).with_recommender(&recommender);
    let decision = snapshot.decide("row", &person, NOW).unwrap();
    assert_eq!((decision.variant.as_str(), decision.level), ("default", Level::Generic));
    assert_eq!(decision.content, "[popular 0][popular 1][popular 2]");
    // No model yet: the personal variant steps aside.
    let empty = EmptyRecommender;
    let person = Person::read(&live, returning, &request, snapshot.settings(), NOW).with_recommender(&empty);
    let decision = snapshot.decide("row", &person, NOW).unwrap();
    assert_eq!(decision.variant, "default");
    assert_eq!(decision.skipped[0].reason, "no_recommendations");
}

#[test]
fn the_default_may_only_recommend_generically() {
    let personal_default = ROW.replace(r#""strategy": ["popular"]"#, r#""strategy": ["popular", "also_bought"]"#);
    let error =
        SlotDefinition::parse_str(&personal_default, &regard_core::segments::PolicyConfig::default()).unwrap_err();
    assert_eq!(error.path(), "default.recommend.strategy[1]");
    let unnamed = ROW.replace(r#""strategy": ["popular"], "#, "");
    let error = SlotDefinition::parse_str(&unnamed, &regard_core::segments::PolicyConfig::default()).unwrap_err();
    assert_eq!(error.path(), "default.recommend.strategy");
    let too_many = ROW.replace(r#""n": 2"#, r#""n": 50"#);
    let error = SlotDefinition::parse_str(&too_many, &regard_core::segments::PolicyConfig::default()).unwrap_err();
    assert_eq!(error.path(), "variants[0].recommend.n");
}
