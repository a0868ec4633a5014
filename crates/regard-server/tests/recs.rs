//! Recommendations served from the store's own events: training on demand, a person's list
//! with strategies and explanations, similar items, consent, and bad input.

mod common;

use common::{user_token, TestApp, ADMIN_KEY, WRITE_KEY};
use serde_json::{json, Value};

impl TestApp {
    async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.send("GET", path, Some(key), None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(key), Some(body)).await
    }

    /// A person's list with the write key and their user token, as a signed-in browser asks.
    async fn recommendations(&self, user: &str, query: &str) -> (u16, Value) {
        let path = format!("/v1/recommendations?user={user}&user_token={}{query}", user_token(user));
        self.get(&path, WRITE_KEY).await
    }
}

fn event(n: usize, user: &str, name: &str, product: &str, personalization: bool) -> Value {
    let properties = if name == "Order Completed" {
        json!({"order_id": format!("o{n}"), "products": [{"product_id": product}]})
    } else {
        json!({"product_id": product})
    };
    json!({"type": "track", "event": name, "messageId": format!("m{n}"), "userId": user,
           "timestamp": format!("2026-11-{:02}T10:00:00.000Z", 1 + n % 27), "properties": properties,
           "context": {"consent": {"categoryPreferences": {"analytics": true, "personalization": personalization}}}})
}

/// Forty shoppers: everyone who buys the grinder also looks at the beans and the kettle.
async fn shop() -> TestApp {
    let app = common::spawn(common::Options::default()).await;
    let catalog = (1..=6)
        .map(|i| json!({"id": format!("p{i}"), "name": format!("Product {i}"), "category": "Kitchen > Coffee", "price": 10.0 * i as f64, "currency": "USD"}))
        .collect::<Vec<_>>();
    let response = app
        .client
        .post(format!("{}/v1/catalog", app.base))
        .bearer_auth(ADMIN_KEY)
        .json(&catalog)
        .send()
        .await
        .expect("catalog");
    assert!(response.status().is_success());
    let mut batch = Vec::new();
    let mut n = 0;
    for u in 0..40 {
        let user = format!("u{u}");
        for product in ["p1", "p2", "p3"] {
            n += 1;
            batch.push(event(n, &user, "Product Viewed", product, true));
        }
        if u % 2 == 0 {
            n += 1;
            batch.push(event(n, &user, "Order Completed", "p1", true));
        }
        if u % 5 == 0 {
            n += 1;
            batch.push(event(n, &user, "Product Viewed", "p4", true));
        }
    }
    n += 1;
    batch.push(event(n, "newcomer", "Product Viewed", "p1", true));
    n += 1;
    batch.push(event(n, "private", "Product Viewed", "p1", false));
    let (status, body) = app.post("/v1/batch", WRITE_KEY, json!({"batch": batch})).await;
    assert_eq!(status, 200, "{body}");
    app
}

async fn trained(app: &TestApp) {
    assert_eq!(app.get("/v1/recommendations?user=u1", WRITE_KEY).await.0, 503);
    let (status, body) = app.post("/v1/recommendations/train", ADMIN_KEY, json!({})).await;
    assert_eq!(status, 202, "{body}");
    for _ in 0..300 {
        let (_, status) = app.get("/v1/recommendations/status", ADMIN_KEY).await;
        if status["state"] == "ready" {
            assert!(status["interactions"].as_u64().unwrap() > 100, "{status}");
            return;
        }
        assert_ne!(status["state"], "failed", "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("training did not finish");
}

#[tokio::test]
async fn a_person_gets_items_with_strategies_and_reasons_and_rules_hold() {
    let app = shop().await;
    trained(&app).await;
    let (status, body) = app.recommendations("newcomer", "&n=3").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["personalized"], true);
    let items = body["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.len() <= 3, "{body}");
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    // What people who looked at p1 also looked at comes first.
    assert!(ids.contains(&"p2") || ids.contains(&"p3"), "{body}");
    for item in items {
        assert!(item["strategy"].as_str().is_some_and(|s| !s.is_empty()), "{item}");
        assert!(item["explanation"].as_str().is_some_and(|s| !s.is_empty()), "{item}");
        assert!(item["name"].as_str().unwrap().starts_with("Product "), "{item}");
    }
    // An explicit exclusion and a price ceiling hold.
    let (_, body) = app.recommendations("newcomer", "&n=5&exclude=p2&max_price=25").await;
    for item in body["items"].as_array().unwrap() {
        assert_ne!(item["id"], "p2", "{body}");
        assert!(item["price"].as_f64().unwrap() <= 25.0, "{body}");
    }
    // A cart add reaches the model at once (from the profile, no retrain): what is in the cart
    // is not offered back, by the popular strategy either, which would otherwise list it.
    let (_, body) = app.recommendations("newcomer", "&n=5&strategy=popular").await;
    let before: Vec<Value> = body["items"].as_array().unwrap().clone();
    assert!(before.iter().any(|i| i["id"] == "p4"), "{body}");
    let added = event(9_000, "newcomer", "Product Added", "p4", true);
    assert_eq!(app.post("/v1/track", WRITE_KEY, added).await.0, 200);
    for query in ["&n=5&strategy=popular", "&n=5&exclude_cart=true"] {
        let (_, body) = app.recommendations("newcomer", query).await;
        assert!(body["items"].as_array().unwrap().iter().all(|i| i["id"] != "p4"), "{query}: {body}");
    }
    // A product added to the catalog after training gets neighbours without a retrain.
    let response = app
        .client
        .post(format!("{}/v1/catalog", app.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!([{"id": "p7", "name": "Product 7", "category": "Kitchen > Coffee", "price": 70.0, "currency": "USD"}]))
        .send()
        .await
        .expect("catalog");
    assert!(response.status().is_success());
    let mut similar = Value::Null;
    for _ in 0..200 {
        let (status, body) = app.get("/v1/items/p7/similar?n=3", WRITE_KEY).await;
        if status == 200 {
            similar = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(similar["items"].as_array().is_some_and(|items| !items.is_empty()), "{similar}");
    // Similar items are the same for everyone.
    let (status, body) = app.get("/v1/items/p1/similar?n=2", WRITE_KEY).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["items"].as_array().unwrap().is_empty(), "{body}");
    assert!(body["items"].as_array().unwrap().iter().all(|i| i["id"] != "p1"), "{body}");
}

#[tokio::test]
async fn without_personalization_consent_only_popular_items_are_given() {
    let app = shop().await;
    trained(&app).await;
    let (status, body) = app.recommendations("private", "&n=3").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["personalized"], false);
    assert!(body["explanation"].as_str().unwrap().contains("nothing about you"), "{body}");
    for item in body["items"].as_array().unwrap() {
        assert!(item["strategy"].as_str().unwrap().starts_with("popular"), "{item}");
    }
}

#[tokio::test]
async fn bad_recommendation_requests_name_the_field() {
    let app = shop().await;
    trained(&app).await;
    for (path, status, field) in [
        ("/v1/recommendations?user=u1&n=0", 400, "n"),
        ("/v1/recommendations?user=u1&n=500", 400, "n"),
        ("/v1/recommendations?user=u1&strategy=magic", 400, "strategy"),
        ("/v1/recommendations?user=u1&context=sms", 400, "context"),
        ("/v1/items/nope/similar", 404, "id"),
        ("/v1/recommendations?user=u1&n=many", 400, "n"),
        ("/v1/recommendations?user=u1&colour=red", 400, "colour"),
    ] {
        let (got, body) = app.get(path, WRITE_KEY).await;
        assert_eq!((got, body["error"]["field"].as_str()), (status, Some(field)), "{path}: {body}");
    }
    assert_eq!(app.post("/v1/recommendations/train", WRITE_KEY, json!({})).await.0, 403);
}

#[tokio::test]
async fn recommendation_slots_fill_decisions_and_fall_back_to_popular() {
    let app = shop().await;
    trained(&app).await;
    let row = json!({
        "id": "row", "name": "Row", "kind": "product_row",
        "variants": [{"id": "for_you", "recommend": {"n": 2},
                      "template": "{% for p in recommendations %}{{ p.id }}={{ p.strategy }};{% endfor %}"}],
        "default": {"recommend": {"strategy": ["popular"], "n": 2},
                    "template": "{% for p in recommendations %}{{ p.id }}={{ p.strategy }};{% endfor %}"}
    });
    let mut bad = row.clone();
    bad["variants"][0]["recommend"]["strategy"] = json!(["magic"]);
    let (status, body) = app.post("/v1/slots", ADMIN_KEY, bad).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("variants[0].recommend.strategy[0]")), "{body}");
    let (status, body) = app.post("/v1/slots", ADMIN_KEY, row).await;
    assert_eq!(status, 201, "{body}");
    let decide = |user: &'static str| {
        let app = &app;
        async move {
            let body = json!({"userId": user, "userToken": user_token(user), "slots": ["row"]});
            let (status, body) = app.post("/v1/decide", WRITE_KEY, body).await;
            assert_eq!(status, 200, "{body}");
            body["decisions"][0].clone()
        }
    };
    let decision = decide("u1").await;
    assert_eq!((decision["variant"].as_str(), decision["level"].as_str()), (Some("for_you"), Some("behavioral")));
    let content = decision["content"].as_str().unwrap();
    assert_eq!(content.matches(';').count(), 2, "{decision}");
    // u1 viewed p1, p2 and p3 already: the personal list brings what they have not seen.
    eprintln!("u1 sees {content}");
    assert!(!content.contains("p2=") && !content.contains("p3="), "{decision}");
    // Without personalization consent: the generic default, popular items only.
    let decision = decide("private").await;
    assert_eq!(decision["variant"], "default", "{decision}");
    assert!(decision["content"].as_str().unwrap().contains("=popular;"), "{decision}");
    assert!(decision["explanation"].as_str().unwrap().contains("turned off personalization"), "{decision}");
}
