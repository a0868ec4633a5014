//! The record of processing through the real router: a segment and a slot saved through the API
//! appear under the data categories they read and the purposes they serve, and only the admin
//! key may read the register.

use regard_core::consent::ConsentMode;
use serde_json::{json, Value};

mod common;

use common::{TestApp, ADMIN_KEY, WRITE_KEY};

async fn spawn_app(consent_mode: ConsentMode) -> TestApp {
    common::spawn(common::Options { consent_mode, ..Default::default() }).await
}

impl TestApp {
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(method, path, Some(ADMIN_KEY), body).await
    }

    async fn register(&self) -> Value {
        let (status, register) = self.admin("GET", "/v1/privacy/register", None).await;
        assert_eq!(status, 200, "{register}");
        register
    }
}

fn by_id<'v>(list: &'v Value, id: &str) -> &'v Value {
    list.as_array().and_then(|items| items.iter().find(|item| item["id"] == id)).unwrap_or(&Value::Null)
}

/// The `uses` of `user` in `register.data_categories[category].used_by[kind]`, as `(kind, name)`.
fn uses(register: &Value, category: &str, kind: &str, user: &str) -> Vec<(String, String)> {
    let entry = by_id(&by_id(&register["data_categories"], category)["used_by"][kind], user);
    entry["uses"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| (f["kind"].as_str().unwrap_or("").to_owned(), f["name"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn pair(kind: &str, name: &str) -> (String, String) {
    (kind.to_owned(), name.to_owned())
}

#[tokio::test]
async fn saved_segments_and_slots_appear_under_their_categories_and_purposes() {
    let app = spawn_app(ConsentMode::OptIn).await;
    let segment = json!({
        "id": "newsletter-fans", "name": "Newsletter fans", "purpose": "email",
        "condition": {"all": [
            {"trait": {"name": "email_opt_in", "op": "equals", "value": true}},
            {"event": {"name": "Product Viewed", "count": {"gte": 2}, "within_days": 30}}
        ]}
    });
    let (status, body) = app.admin("POST", "/v1/segments", Some(segment)).await;
    assert!(status == 201 || status == 202, "{status} {body}");
    let slot = json!({
        "id": "home_hero", "name": "Home hero", "kind": "web_hero",
        "variants": [
            {"id": "fans", "when": {"segment": "newsletter-fans"}, "template": "<h2>Hi {{ traits.first_name }}</h2>"},
            {"id": "france", "when": {"context": {"field": "country", "op": "equals", "value": "FR"}},
             "template": "<h2>Bonjour</h2>"}
        ],
        "default": {"template": "<h2>Bestsellers</h2>"}
    });
    let (status, body) = app.admin("POST", "/v1/slots", Some(slot)).await;
    assert_eq!(status, 201, "{body}");

    let register = app.register().await;
    assert_eq!(register["consent_mode"], "opt-in");
    assert!(register["generated_at"].as_str().is_some_and(|at| at.ends_with('Z')), "{}", register["generated_at"]);

    // The segment, under the categories it reads.
    assert_eq!(uses(&register, "profile_traits", "segments", "newsletter-fans"), vec![pair("trait", "email_opt_in")]);
    assert_eq!(uses(&register, "event_history", "segments", "newsletter-fans"), vec![pair("event", "Product Viewed")]);
    // The slot, under the segment's membership and what the segment and its own template read.
    assert_eq!(
        uses(&register, "segment_memberships", "slots", "home_hero"),
        vec![pair("segment_membership", "newsletter-fans")]
    );
    let slot_traits = uses(&register, "profile_traits", "slots", "home_hero");
    assert!(slot_traits.contains(&pair("trait", "email_opt_in")), "{slot_traits:?}");
    assert!(slot_traits.contains(&pair("trait", "first_name")), "{slot_traits:?}");
    assert_eq!(uses(&register, "visit_context", "slots", "home_hero"), vec![pair("context", "country")]);

    // The purposes: the segment serves email, the slot personalization, both on consent.
    let email = by_id(&register["activities"], "email");
    assert_eq!(email["in_use"], true);
    assert_eq!(email["legal_basis"]["basis"], "consent");
    assert_eq!(email["recipients"], "none (self-hosted; no data leaves this server)");
    assert!(by_id(&email["used_by"]["segments"], "newsletter-fans").is_object());
    let personalization = by_id(&register["activities"], "personalization");
    assert!(by_id(&personalization["used_by"]["slots"], "home_hero").is_object());
    assert!(by_id(&personalization["used_by"]["models"], "recommendations").is_object());
    assert_eq!(personalization["used_by"]["flows"], json!([]));
    assert_eq!(by_id(&register["activities"], "advertising")["in_use"], false);
    let purposes = &by_id(&register["data_categories"], "profile_traits")["purposes"];
    assert!(purposes.as_array().is_some_and(|p| p.contains(&json!("email")) && p.contains(&json!("personalization"))));

    // Retention is honest, the policy's exclusions are listed, and the summary names the uses.
    let history = by_id(&register["data_categories"], "event_history");
    assert_eq!(history["retention"]["intended_days"], 395);
    assert_eq!(history["retention"]["enforced"], false);
    assert_eq!(register["sensitive_categories_excluded"][0]["category"], "health_and_medical");
    let summary = register["summary"].as_str().unwrap_or("");
    assert!(summary.contains("\u{201c}Newsletter fans\u{201d}"), "{summary}");
    assert!(summary.contains("choose the content and product recommendations you see"), "{summary}");
}

#[tokio::test]
async fn opt_out_mode_rests_analytics_on_legitimate_interest() {
    let app = spawn_app(ConsentMode::OptOut).await;
    let register = app.register().await;
    assert_eq!(register["consent_mode"], "opt-out");
    let analytics = by_id(&register["activities"], "analytics");
    assert_eq!(analytics["legal_basis"]["basis"], "legitimate_interest");
    assert_eq!(analytics["legal_basis"]["article"], "GDPR Art. 6(1)(f)");
    let bgnbd = by_id(&register["models"], "bgnbd");
    assert_eq!(bgnbd["state"], "not_fitted_yet", "{bgnbd}");
}

#[tokio::test]
async fn only_the_admin_key_reads_the_register() {
    let app = spawn_app(ConsentMode::OptIn).await;
    assert_eq!(app.send("GET", "/v1/privacy/register", Some(WRITE_KEY), None).await.0, 403);
    assert_eq!(app.send("GET", "/v1/privacy/register", None, None).await.0, 401);
}
