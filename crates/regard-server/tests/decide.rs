//! Slots and decisions through the real router: CRUD with its checks, the fallback ladder,
//! exclusion audiences, consent, currency formatting, "why", and the decision log.

use regard_core::consent::ConsentMode;
use serde_json::{json, Value};

mod common;

use common::{TestApp, ADMIN_KEY, WRITE_KEY};

async fn spawn_app() -> TestApp {
    common::spawn(common::Options { consent_mode: ConsentMode::OptIn, ..Default::default() }).await
}

impl TestApp {
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(method, path, Some(ADMIN_KEY), body).await
    }

    async fn write(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(WRITE_KEY), Some(body)).await
    }

    async fn decide(&self, body: Value) -> Value {
        let (status, answer) = self.write("/v1/decide", body).await;
        assert_eq!(status, 200, "{answer}");
        answer["decisions"][0].clone()
    }

    /// Saves a built-in segment and waits until it is ready.
    async fn builtin_segment(&self, id: &str) {
        let json = regard_core::segments::builtin::BUILTIN_SEGMENTS
            .iter()
            .find(|json| json.contains(&format!("\"id\": \"{id}\"")))
            .expect("builtin");
        let (status, body) = self.admin("POST", "/v1/segments", Some(serde_json::from_str(json).unwrap())).await;
        assert!(status == 201 || status == 202, "{status} {body}");
        for _ in 0..200 {
            let (_, segment) = self.admin("GET", &format!("/v1/segments/{id}"), None).await;
            let state = segment["status"]["state"].as_str();
            if state.is_none() || state == Some("ready") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("segment {id} never became ready");
    }
}

fn iso_days_ago(days: f64) -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
        - (days * 86_400_000.0) as i64;
    regard_core::time::format_iso8601_ms(ms)
}

fn consent(personalization: bool) -> Value {
    json!({"categoryPreferences": {"analytics": true, "personalization": personalization}})
}

fn page(id: &str, anonymous: &str, days_ago: f64, personalization: bool) -> Value {
    json!({"type": "page", "name": "Home", "messageId": id, "anonymousId": anonymous,
           "timestamp": iso_days_ago(days_ago), "context": {"consent": consent(personalization)}})
}

fn hero() -> Value {
    json!({
        "id": "home_hero", "name": "Home hero", "kind": "web_hero",
        "variants": [
            {"id": "summer", "priority": 30,
             "when": {"context": {"field": "utm_campaign", "op": "equals", "value": "summer-sale"}},
             "template": "<h2>Summer sale from {{ 20 | money('USD') }}</h2>"},
            {"id": "customer", "priority": 20, "when": {"segment": "purchasers"}, "template": "<h2>Thanks for your order</h2>"},
            {"id": "welcome_back", "priority": 10, "when": {"visitor": "returning"}, "exclude": ["purchasers"],
             "template": "<h2>Welcome back</h2>"}
        ],
        "default": {"template": "<h2>Bestsellers</h2>"}
    })
}

#[tokio::test]
async fn slots_are_checked_on_save_and_named_errors_come_back() {
    let app = spawn_app().await;
    // Unknown segment.
    let (status, body) = app.admin("POST", "/v1/slots", Some(hero())).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "variants[customer]");
    app.builtin_segment("purchasers").await;
    // The name twice is creepy.
    let mut twice = hero();
    twice["variants"][0]["template"] = json!("Hi {{ traits.first_name }}! Great to see you, {{ traits.first_name }}.");
    let (status, body) = app.admin("POST", "/v1/slots", Some(twice)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("template_rejected")), "{body}");
    assert_eq!(body["error"]["field"], "variants[0].template");
    // A sensitive field.
    let mut sensitive = hero();
    sensitive["default"]["template"] = json!("{{ traits.health_condition }}");
    let (status, body) = app.admin("POST", "/v1/slots", Some(sensitive)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("template_rejected")), "{body}");
    assert_eq!(body["error"]["field"], "default.template");
    // Sensitive targeting.
    let mut targeting = hero();
    targeting["variants"][1]["when"] = json!({"trait": {"name": "pregnancy_due_date", "op": "exists"}});
    let (status, body) = app.admin("POST", "/v1/slots", Some(targeting)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("policy_violation")), "{body}");
    // A template syntax error names the template.
    let mut syntax = hero();
    syntax["variants"][2]["template"] = json!("{% if %}");
    let (status, body) = app.admin("POST", "/v1/slots", Some(syntax)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("variants[2].template")), "{body}");
    // The good one saves; a second create conflicts; the write key may not manage slots.
    let (status, body) = app.admin("POST", "/v1/slots", Some(hero())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(app.admin("POST", "/v1/slots", Some(hero())).await.0, 409);
    assert_eq!(app.send("POST", "/v1/slots", Some(WRITE_KEY), Some(hero())).await.0, 403);
    let (status, body) = app.admin("PUT", "/v1/slots/home_hero", Some(hero())).await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(2)));
    let (_, list) = app.admin("GET", "/v1/slots", None).await;
    assert_eq!(list["slots"].as_array().map(Vec::len), Some(1));
    // Settings are validated field by field.
    let (status, body) =
        app.admin("PUT", "/v1/settings/exchange-rates", Some(json!({"base": "USD", "rates": {"EUR": -1}}))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("rates.EUR")), "{body}");
    let (status, body) = app
        .admin("PUT", "/v1/settings/stores", Some(json!([{"id": "s", "name": "S", "latitude": 91, "longitude": 0}])))
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("[0].latitude")), "{body}");
    assert_eq!(app.admin("DELETE", "/v1/slots/home_hero", None).await.0, 204);
    assert_eq!(app.admin("GET", "/v1/slots/home_hero", None).await.0, 404);
}

#[tokio::test]
async fn the_ladder_picks_by_context_history_exclusion_and_consent() {
    let app = spawn_app().await;
    app.builtin_segment("purchasers").await;
    assert_eq!(app.admin("POST", "/v1/slots", Some(hero())).await.0, 201);
    app.admin("PUT", "/v1/settings/exchange-rates", Some(json!({"base": "USD", "rates": {"EUR": 0.5}}))).await;

    // A returning visitor: two visits days apart.
    for (id, days) in [("r1", 3.0), ("r2", 0.01)] {
        assert_eq!(app.write("/v1/page", page(id, "returning", days, true)).await.0, 200);
    }
    let decision = app.decide(json!({"anonymousId": "returning", "slots": ["home_hero"]})).await;
    assert_eq!((decision["variant"].as_str(), decision["level"].as_str()), (Some("welcome_back"), Some("behavioral")));
    assert_eq!(decision["explanation"], "You are seeing this because you have visited before.");
    assert_eq!(decision["content"], "<h2>Welcome back</h2>");

    // The same person buys: the exclusion audience keeps "welcome back" away, the customer
    // variant takes over in the same request that ingests the order.
    let order = json!({"type": "track", "event": "Order Completed", "messageId": "o1", "anonymousId": "returning",
                       "properties": {"order_id": "1", "revenue": 30}, "context": {"consent": consent(true)}});
    assert_eq!(app.write("/v1/track", order).await.0, 200);
    let decision = app.decide(json!({"anonymousId": "returning", "slots": ["home_hero"]})).await;
    assert_eq!(decision["variant"], "customer", "{decision}");
    assert!(decision["explanation"].as_str().unwrap().contains("purchase"), "{decision}");

    // A campaign visitor with a German locale: the price is converted and formatted.
    assert_eq!(app.write("/v1/page", page("c1", "campaign", 0.0, true)).await.0, 200);
    let decision = app
        .decide(json!({"anonymousId": "campaign", "slots": ["home_hero"],
                       "context": {"locale": "de-DE",
                                   "page": {"url": "https://shop.test/?utm_source=mail&utm_campaign=summer-sale"}}}))
        .await;
    assert_eq!((decision["variant"].as_str(), decision["level"].as_str()), (Some("summer"), Some("dynamic")));
    assert_eq!(decision["content"], "<h2>Summer sale from 10,00\u{a0}€</h2>", "{decision}");

    // Country and region come from the trusted proxy's headers.
    let mut regional = hero();
    regional["id"] = json!("regional");
    regional["variants"] = json!([{"id": "bay", "when": {"context": {"field": "region", "op": "equals", "value": "US-CA"}},
                                   "template": "Same-day delivery in the Bay Area"}]);
    assert_eq!(app.admin("POST", "/v1/slots", Some(regional)).await.0, 201);
    let response = app
        .client
        .post(format!("{}/v1/decide", app.base))
        .basic_auth(WRITE_KEY, Some(""))
        .header("CF-IPCountry", "US")
        .header("CF-Region-Code", "CA")
        .json(&json!({"anonymousId": "campaign", "slots": ["regional"]}))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["decisions"][0]["variant"], "bay", "{answer}");
    assert!(answer["decisions"][0]["explanation"].as_str().unwrap().contains("region US-CA"), "{answer}");

    // An opted-out person with a campaign still gets the default, and is told why.
    for (id, days) in [("x1", 3.0), ("x2", 0.01)] {
        app.write("/v1/page", page(id, "refuser", days, false)).await;
    }
    let decision = app
        .decide(json!({"anonymousId": "refuser", "slots": ["home_hero"],
                       "context": {"campaign": {"name": "summer-sale"}}}))
        .await;
    assert_eq!((decision["variant"].as_str(), decision["level"].as_str()), (Some("default"), Some("generic")));
    assert!(decision["explanation"].as_str().unwrap().contains("turned off personalization"), "{decision}");
    // A stranger under opt-in has not said yes; saying yes in the request is enough.
    let decision = app
        .decide(json!({"anonymousId": "stranger", "slots": ["home_hero"],
                                     "context": {"campaign": {"name": "summer-sale"}}}))
        .await;
    assert_eq!(decision["variant"], "default");
    let decision = app
        .decide(json!({"anonymousId": "stranger", "slots": ["home_hero"],
                       "context": {"campaign": {"name": "summer-sale"}, "consent": consent(true)}}))
        .await;
    assert_eq!(decision["variant"], "summer");
}

#[tokio::test]
async fn why_and_the_decision_log_answer_what_was_personalized() {
    let app = spawn_app().await;
    app.builtin_segment("purchasers").await;
    app.admin("POST", "/v1/slots", Some(hero())).await;
    for (id, days) in [("r1", 3.0), ("r2", 0.01)] {
        app.write("/v1/page", page(id, "returning", days, true)).await;
    }
    let decision = app.decide(json!({"anonymousId": "returning", "slots": ["home_hero"]})).await;
    let id = decision["decision_id"].as_str().unwrap().to_owned();
    // The person may ask with the public key; the answer has sentences, not internals.
    let (status, why) = app.send("GET", &format!("/v1/decisions/{id}/why"), Some(WRITE_KEY), None).await;
    assert_eq!(status, 200, "{why}");
    assert_eq!(why["explanation"], decision["explanation"]);
    assert_eq!(why["reasons"], json!(["You have visited before."]));
    assert_eq!(why["purpose"], "personalization");
    assert!(why.get("detail").is_none());
    assert_eq!(
        app.send("GET", "/v1/decisions/0000000000000000000000000000000000/why", Some(WRITE_KEY), None).await.0,
        404
    );
    assert_eq!(app.send("GET", &format!("/v1/decisions/{id}/why"), None, None).await.0, 401);
    // The operator sees the log per profile, including the conditions and the consent basis.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, log) = app.admin("GET", "/v1/profiles/returning/decisions", None).await;
    assert_eq!(status, 200, "{log}");
    let entry = &log["decisions"][0];
    assert_eq!(entry["decision_id"], id.as_str());
    assert_eq!(entry["variant"], "welcome_back");
    assert_eq!(entry["detail"]["consent"], "granted");
    assert_eq!(entry["detail"]["conditions"][0]["path"], "when");
    assert_eq!(entry["detail"]["conditions"][0]["level"], "behavioral");
    assert_eq!(app.send("GET", "/v1/profiles/returning/decisions", Some(WRITE_KEY), None).await.0, 403);
}

#[tokio::test]
async fn bad_decide_requests_name_the_field() {
    let app = spawn_app().await;
    app.builtin_segment("purchasers").await;
    app.admin("POST", "/v1/slots", Some(hero())).await;
    let cases = [
        (json!({"anonymousId": "a", "slots": ["nope"]}), 404, "slots[0]"),
        (json!({"anonymousId": "a", "slots": []}), 400, "slots"),
        (json!({"anonymousId": "a"}), 400, "slots"),
        (json!({"anonymousId": "a", "slots": "home_hero"}), 400, "slots"),
        (json!({"anonymousId": "", "slots": ["home_hero"]}), 400, "anonymousId"),
        (json!({"anonymousId": "a", "slots": ["home_hero"], "colour": 1}), 400, "colour"),
    ];
    for (body, status, field) in cases {
        let (got, answer) = app.write("/v1/decide", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["error"]["field"].as_str().unwrap_or(""), field, "{body} → {answer}");
    }
    let (status, _) = app.send("POST", "/v1/decide", None, Some(json!({"slots": ["home_hero"]}))).await;
    assert_eq!(status, 401);
}
