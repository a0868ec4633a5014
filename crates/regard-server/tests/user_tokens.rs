//! Signed user tokens through the real router: with the write key, decisions, "why" and
//! recommendations use a signed-in person's data only with a valid token for them; refused
//! tokens answer 401 naming where they came; the admin key needs none and mints them.

mod common;

use common::{now_secs, user_token, TestApp, ADMIN_KEY, USER_TOKEN_SECRET, WRITE_KEY};
use serde_json::{json, Value};

const TOKEN_SENTENCE: &str = "identified personalization needs a signed user token";

impl TestApp {
    /// One request with optional extra headers; answers the status and the JSON body.
    async fn request(
        &self,
        method: &str,
        path: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = if method == "GET" { self.client.get(url) } else { self.client.post(url) };
        request = request.basic_auth(key, Some(""));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The first decision of a decide request, asserting a 200.
    async fn decision(&self, key: &str, headers: &[(&str, &str)], body: Value) -> Value {
        let (status, answer) = self.request("POST", "/v1/decide", key, headers, Some(body)).await;
        assert_eq!(status, 200, "{answer}");
        answer["decisions"][0].clone()
    }
}

fn iso_days_ago(days: f64) -> String {
    let ms = now_secs() as i64 * 1000 - (days * 86_400_000.0) as i64;
    regard_core::time::format_iso8601_ms(ms)
}

/// A page view by a signed-in user (with `anonymous` as their browser's id, when given).
fn page(id: &str, user: Option<&str>, anonymous: Option<&str>, days_ago: f64) -> Value {
    let mut message = json!({"type": "page", "name": "Home", "messageId": id, "timestamp": iso_days_ago(days_ago),
        "context": {"consent": {"categoryPreferences": {"analytics": true, "personalization": true}}}});
    if let Some(user) = user {
        message["userId"] = json!(user);
    }
    if let Some(anonymous) = anonymous {
        message["anonymousId"] = json!(anonymous);
    }
    message
}

/// A slot that welcomes returning visitors back and shows everyone else the default.
fn hero() -> Value {
    json!({"id": "hero", "name": "Hero", "kind": "web_hero",
        "variants": [{"id": "welcome_back", "when": {"visitor": "returning"}, "template": "<h2>Welcome back</h2>"}],
        "default": {"template": "<h2>Bestsellers</h2>"}})
}

/// A store where alice (signed in) and an anonymous visitor have each visited twice, days
/// apart, and a browser id that an identify tied to alice.
async fn app_with_visitors() -> TestApp {
    let app = common::spawn(common::Options::default()).await;
    let (status, body) = app.request("POST", "/v1/slots", ADMIN_KEY, &[], Some(hero())).await;
    assert_eq!(status, 201, "{body}");
    let batch = [
        page("a1", Some("alice"), None, 3.0),
        page("a2", Some("alice"), None, 0.01),
        page("v1", None, Some("visitor"), 3.0),
        page("v2", None, Some("visitor"), 0.01),
        // Anyone may send this with the public key: it ties a browser id to alice.
        page("l1", Some("alice"), Some("linked-browser"), 0.0),
    ];
    let (status, body) = app.request("POST", "/v1/batch", WRITE_KEY, &[], Some(json!({"batch": batch}))).await;
    assert_eq!(status, 200, "{body}");
    app
}

fn slots(mut body: Value) -> Value {
    body["slots"] = json!(["hero"]);
    body
}

#[tokio::test]
async fn a_user_id_without_a_token_gets_generic_content_and_is_told_why() {
    let app = app_with_visitors().await;
    let decision = app.decision(WRITE_KEY, &[], slots(json!({"userId": "alice"}))).await;
    assert_eq!((decision["variant"].as_str(), decision["level"].as_str()), (Some("default"), Some("generic")));
    assert!(decision["explanation"].as_str().unwrap().contains(TOKEN_SENTENCE), "{decision}");
    // Someone Regard has never heard of is answered the same way: no account is revealed.
    let stranger = app.decision(WRITE_KEY, &[], slots(json!({"userId": "nobody"}))).await;
    assert_eq!(stranger["explanation"], decision["explanation"], "{stranger}");
}

#[tokio::test]
async fn a_valid_token_in_the_body_or_the_header_personalizes() {
    let app = app_with_visitors().await;
    let token = user_token("alice");
    let decision = app.decision(WRITE_KEY, &[], slots(json!({"userId": "alice", "userToken": token}))).await;
    assert_eq!((decision["variant"].as_str(), decision["level"].as_str()), (Some("welcome_back"), Some("behavioral")));
    assert!(!decision["explanation"].as_str().unwrap().contains(TOKEN_SENTENCE), "{decision}");
    let header = [("X-Regard-User-Token", token.as_str())];
    let decision = app.decision(WRITE_KEY, &header, slots(json!({"userId": "alice"}))).await;
    assert_eq!(decision["variant"], "welcome_back", "{decision}");
}

#[tokio::test]
async fn the_admin_key_personalizes_without_a_token() {
    let app = app_with_visitors().await;
    let decision = app.decision(ADMIN_KEY, &[], slots(json!({"userId": "alice"}))).await;
    assert_eq!(decision["variant"], "welcome_back", "{decision}");
    let decision = app.decision(ADMIN_KEY, &[], slots(json!({"anonymousId": "linked-browser"}))).await;
    assert_eq!(decision["variant"], "welcome_back", "{decision}");
}

#[tokio::test]
async fn expired_tampered_and_other_users_tokens_answer_401_naming_the_field() {
    let app = app_with_visitors().await;
    let now = now_secs();
    let alice = user_token("alice");
    let tampered = {
        let (head, signature) = alice.rsplit_once('.').unwrap();
        let first = if signature.starts_with('A') { 'B' } else { 'A' };
        format!("{head}.{first}{}", &signature[1..])
    };
    let cases = [
        ("expired", regard_server::user_token::sign(USER_TOKEN_SECRET, "alice", now - 1)),
        ("tampered", tampered),
        ("another user's", user_token("bob")),
        ("another instance's", regard_server::user_token::sign("another-secret", "alice", now + 3_600)),
        ("malformed", "not-a-token".to_owned()),
    ];
    for (what, token) in &cases {
        let body = slots(json!({"userId": "alice", "userToken": token}));
        let (status, answer) = app.request("POST", "/v1/decide", WRITE_KEY, &[], Some(body)).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_user_token", "{what}: {answer}");
        assert_eq!(answer["error"]["field"], "userToken", "{what}: {answer}");
        let header = [("X-Regard-User-Token", token.as_str())];
        let (status, answer) =
            app.request("POST", "/v1/decide", WRITE_KEY, &header, Some(slots(json!({"userId": "alice"})))).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (401, Some("X-Regard-User-Token")), "{what}: {answer}");
    }
    // The messages say what is wrong.
    let body = slots(json!({"userId": "alice", "userToken": cases[0].1}));
    let (_, answer) = app.request("POST", "/v1/decide", WRITE_KEY, &[], Some(body)).await;
    assert!(answer["error"]["message"].as_str().unwrap().contains("expired"), "{answer}");
}

#[tokio::test]
async fn an_anonymous_id_tied_to_a_user_needs_that_users_token() {
    let app = app_with_visitors().await;
    // A purely anonymous visitor is personalized from their own browsing, as before.
    let decision = app.decision(WRITE_KEY, &[], slots(json!({"anonymousId": "visitor"}))).await;
    assert_eq!(decision["variant"], "welcome_back", "{decision}");
    assert!(!decision["explanation"].as_str().unwrap().contains(TOKEN_SENTENCE), "{decision}");
    // A browser id tied to alice resolves to her profile: not without her token.
    let decision = app.decision(WRITE_KEY, &[], slots(json!({"anonymousId": "linked-browser"}))).await;
    assert_eq!(decision["variant"], "default", "{decision}");
    assert!(decision["explanation"].as_str().unwrap().contains(TOKEN_SENTENCE), "{decision}");
    // Another user's token does not open it either.
    let bob = user_token("bob");
    let body = slots(json!({"userId": "bob", "userToken": bob, "anonymousId": "linked-browser"}));
    assert_eq!(app.decision(WRITE_KEY, &[], body).await["variant"], "default");
    // Hers does.
    let body = slots(json!({"userId": "alice", "userToken": user_token("alice"), "anonymousId": "linked-browser"}));
    assert_eq!(app.decision(WRITE_KEY, &[], body).await["variant"], "welcome_back");
    // A claimed userId with an anonymous visitor's id: the visitor's own browsing, and the note.
    let decision = app.decision(WRITE_KEY, &[], slots(json!({"userId": "alice", "anonymousId": "visitor"}))).await;
    assert_eq!(decision["variant"], "welcome_back", "{decision}");
    assert!(decision["explanation"].as_str().unwrap().contains(TOKEN_SENTENCE), "{decision}");
}

#[tokio::test]
async fn why_of_a_signed_in_decision_needs_that_users_token() {
    let app = app_with_visitors().await;
    let token = user_token("alice");
    let decision = app.decision(WRITE_KEY, &[], slots(json!({"userId": "alice", "userToken": token}))).await;
    let why = format!("/v1/decisions/{}/why", decision["decision_id"].as_str().unwrap());
    let (status, answer) = app.request("GET", &why, WRITE_KEY, &[], None).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(
        (answer["error"]["code"].as_str(), answer["error"]["field"].as_str()),
        (Some("invalid_user_token"), Some("X-Regard-User-Token"))
    );
    let (status, answer) =
        app.request("GET", &format!("{why}?user_token={}", user_token("bob")), WRITE_KEY, &[], None).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (401, Some("user_token")), "{answer}");
    let (status, answer) = app.request("GET", &format!("{why}?user_token={token}"), WRITE_KEY, &[], None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["explanation"], decision["explanation"]);
    let (status, _) = app.request("GET", &why, WRITE_KEY, &[("X-Regard-User-Token", &token)], None).await;
    assert_eq!(status, 200);
    assert_eq!(app.request("GET", &why, ADMIN_KEY, &[], None).await.0, 200);

    // A decision for a claimed userId used nothing about them: its id is enough to ask.
    let decision = app.decision(WRITE_KEY, &[], slots(json!({"userId": "alice"}))).await;
    let why = format!("/v1/decisions/{}/why", decision["decision_id"].as_str().unwrap());
    let (status, answer) = app.request("GET", &why, WRITE_KEY, &[], None).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["explanation"].as_str().unwrap().contains(TOKEN_SENTENCE), "{answer}");
}

#[tokio::test]
async fn the_admin_key_mints_tokens_that_the_write_key_can_use() {
    let app = app_with_visitors().await;
    let (status, minted) = app
        .request("POST", "/v1/user-tokens", ADMIN_KEY, &[], Some(json!({"userId": "alice", "ttl_seconds": 600})))
        .await;
    assert_eq!(status, 200, "{minted}");
    let expires_ms = regard_core::time::parse_iso8601_ms(minted["expires_at"].as_str().unwrap()).unwrap();
    assert!((expires_ms / 1000 - (now_secs() as i64 + 600)).abs() <= 5, "{minted}");
    let token = minted["token"].as_str().unwrap();
    let decision = app.decision(WRITE_KEY, &[], slots(json!({"userId": "alice", "userToken": token}))).await;
    assert_eq!(decision["variant"], "welcome_back", "{decision}");

    let (status, _) = app.request("POST", "/v1/user-tokens", ADMIN_KEY, &[], Some(json!({"userId": "alice"}))).await;
    assert_eq!(status, 200, "the lifetime has a default");
    assert_eq!(app.request("POST", "/v1/user-tokens", WRITE_KEY, &[], Some(json!({"userId": "a"}))).await.0, 403);
    for (body, field) in [
        (json!({"ttl_seconds": 60}), "userId"),
        (json!({"userId": ""}), "userId"),
        (json!({"userId": "a", "ttl_seconds": 0}), "ttl_seconds"),
        (json!({"userId": "a", "ttl_seconds": 100_000_000}), "ttl_seconds"),
        (json!({"userId": "a", "ttl_seconds": "soon"}), "ttl_seconds"),
        (json!({"userId": "a", "colour": 1}), "colour"),
    ] {
        let (status, answer) = app.request("POST", "/v1/user-tokens", ADMIN_KEY, &[], Some(body.clone())).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{body} → {answer}");
    }
}

#[tokio::test]
async fn browsers_may_send_the_token_header_cross_origin() {
    let app = app_with_visitors().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/decide", app.base))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, x-regard-user-token")
        .send()
        .await
        .expect("preflight");
    let allowed = response.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("x-regard-user-token"), "{allowed}");
}

/// Shoppers whose views train the recommendation model: everyone who views p1 views p2 too.
async fn app_with_model() -> TestApp {
    let app = common::spawn(common::Options::default()).await;
    let catalog: Vec<Value> = (1..=4)
        .map(|i| json!({"id": format!("p{i}"), "name": format!("Product {i}"), "category": "Kitchen", "price": 10.0}))
        .collect();
    let (status, body) = app.request("POST", "/v1/catalog", ADMIN_KEY, &[], Some(json!(catalog))).await;
    assert!((200..300).contains(&status), "{status} {body}");
    let mut batch = Vec::new();
    for u in 0..30 {
        for product in ["p1", "p2"] {
            batch.push(json!({"type": "track", "event": "Product Viewed", "messageId": format!("m{u}{product}"),
                "userId": format!("u{u}"), "properties": {"product_id": product},
                "context": {"consent": {"categoryPreferences": {"analytics": true, "personalization": true}}}}));
        }
    }
    batch.push(json!({"type": "track", "event": "Product Viewed", "messageId": "alice-p1", "userId": "alice",
        "properties": {"product_id": "p1"},
        "context": {"consent": {"categoryPreferences": {"analytics": true, "personalization": true}}}}));
    let (status, body) = app.request("POST", "/v1/batch", WRITE_KEY, &[], Some(json!({"batch": batch}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.request("POST", "/v1/recommendations/train", ADMIN_KEY, &[], Some(json!({}))).await;
    assert_eq!(status, 202, "{body}");
    for _ in 0..300 {
        let (_, status) = app.request("GET", "/v1/recommendations/status", ADMIN_KEY, &[], None).await;
        if status["state"] == "ready" {
            return app;
        }
        assert_ne!(status["state"], "failed", "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("training did not finish");
}

#[tokio::test]
async fn recommendations_for_a_user_need_their_token() {
    let app = app_with_model().await;
    let (status, body) = app.request("GET", "/v1/recommendations?user=alice&n=3", WRITE_KEY, &[], None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["personalized"], false, "{body}");
    assert!(body["explanation"].as_str().unwrap().contains(TOKEN_SENTENCE), "{body}");

    let path = format!("/v1/recommendations?user=alice&n=3&user_token={}", user_token("alice"));
    let (status, body) = app.request("GET", &path, WRITE_KEY, &[], None).await;
    assert_eq!((status, &body["personalized"]), (200, &json!(true)), "{body}");
    let header = user_token("alice");
    let (_, body) = app
        .request("GET", "/v1/recommendations?user=alice&n=3", WRITE_KEY, &[("X-Regard-User-Token", &header)], None)
        .await;
    assert_eq!(body["personalized"], true, "{body}");
    let (_, body) = app.request("GET", "/v1/recommendations?user=alice&n=3", ADMIN_KEY, &[], None).await;
    assert_eq!(body["personalized"], true, "{body}");

    let path = format!("/v1/recommendations?user=alice&n=3&user_token={}", user_token("bob"));
    let (status, body) = app.request("GET", &path, WRITE_KEY, &[], None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str(), body["error"]["field"].as_str()),
        (401, Some("invalid_user_token"), Some("user_token")),
        "{body}"
    );
    // Similar items are the same for everyone: a token there is a mistake worth naming.
    let path = format!("/v1/items/p1/similar?user_token={}", user_token("alice"));
    let (status, body) = app.request("GET", &path, WRITE_KEY, &[], None).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("user_token")), "{body}");
}
