//! API tests: the real router on a real port over a temporary store.

use std::io::Write;

use regard_core::consent::ConsentMode;
use serde_json::{json, Value};

mod common;

use common::{TestApp, ADMIN_KEY, WRITE_KEY};

async fn spawn_app_with(mode: ConsentMode) -> TestApp {
    common::spawn(common::Options { consent_mode: mode, ..Default::default() }).await
}

async fn spawn_app() -> TestApp {
    spawn_app_with(ConsentMode::OptOut).await
}

impl TestApp {
    async fn post_write(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post_admin(&self, path: &str, body: String) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get_admin(&self, path: &str) -> (u16, Value) {
        let response =
            self.client.get(format!("{}{path}", self.base)).bearer_auth(ADMIN_KEY).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls a segment's status until its backfill is done, and returns the last status.
    async fn wait_ready(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (code, status) = self.get_admin(&format!("/v1/segments/{id}/status")).await;
            assert_eq!(code, 200, "{status}");
            if status["state"] != "backfilling" || std::time::Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn raw_post(&self, path: &str, auth: Option<(&str, bool)>, body: Vec<u8>, gzip: bool) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        request = match auth {
            Some((key, true)) => request.bearer_auth(key),
            Some((key, false)) => request.basic_auth(key, Some("")),
            None => request,
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn track(message_id: &str, anonymous_id: &str) -> Value {
    json!({"type": "track", "event": "Product Viewed", "messageId": message_id, "anonymousId": anonymous_id,
           "properties": {"product_id": "sku-1"}, "timestamp": "2026-11-01T10:00:00.000Z"})
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn error_of(body: &Value) -> (&str, Option<&str>) {
    (body["error"]["code"].as_str().unwrap_or("?"), body["error"]["field"].as_str())
}

#[tokio::test]
async fn keys_gate_every_route() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&track("k1", "a")).expect("json");
    assert_eq!(app.raw_post("/v1/track", None, body.clone(), false).await.0, 401);
    assert_eq!(app.raw_post("/v1/track", Some(("nope", false)), body.clone(), false).await.0, 401);
    assert_eq!(app.raw_post("/v1/track", Some((WRITE_KEY, false)), body.clone(), false).await.0, 200);
    let (status, error) = app.raw_post("/v1/catalog", Some((WRITE_KEY, true)), b"[]".to_vec(), false).await;
    assert_eq!((status, error_of(&error).0), (403, "forbidden"));
    let response =
        app.client.get(format!("{}/v1/profiles/a", app.base)).bearer_auth(WRITE_KEY).send().await.expect("get");
    assert_eq!(response.status().as_u16(), 403);
    let response = app.client.get(format!("{}/v1/profiles/a", app.base)).send().await.expect("get");
    assert_eq!(response.status().as_u16(), 401);
    // Segment SDKs may carry the key in the body instead.
    let mut with_key = track("k2", "a");
    with_key["writeKey"] = json!(WRITE_KEY);
    assert_eq!(app.raw_post("/v1/track", None, serde_json::to_vec(&with_key).expect("json"), false).await.0, 200);
}

#[tokio::test]
async fn a_retried_batch_is_stored_once_and_gzip_is_accepted() {
    let app = spawn_app().await;
    let batch = json!({"batch": [track("m1", "anon-1"), track("m2", "anon-1"), track("m1", "anon-1")]});
    let compressed = gzip(&serde_json::to_vec(&batch).expect("json"));
    let (status, body) = app.raw_post("/v1/batch", Some((WRITE_KEY, false)), compressed.clone(), true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["stored"].as_u64(), body["duplicates"].as_u64()), (Some(2), Some(1)));
    let (_, body) = app.raw_post("/v1/import", Some((WRITE_KEY, false)), compressed, true).await;
    assert_eq!((body["stored"].as_u64(), body["duplicates"].as_u64()), (Some(0), Some(3)));
    let (_, events) = app.get_admin("/v1/profiles/anon-1/events").await;
    assert_eq!(events["events"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn size_limits_follow_segment() {
    let app = spawn_app().await;
    let big_message =
        json!({"type": "track", "event": "x", "anonymousId": "a", "properties": {"pad": "p".repeat(33 * 1024)}});
    let (status, body) = app.post_write("/v1/batch", json!({"batch": [track("ok", "a"), big_message.clone()]})).await;
    assert_eq!((status, error_of(&body)), (400, ("message_too_large", Some("batch[1]"))));
    let (status, body) = app.post_write("/v1/track", big_message).await;
    assert_eq!((status, error_of(&body).0), (413, "payload_too_large"));
    let many: Vec<Value> = (0..4_000).map(|i| track(&format!("big-{i}"), "a")).collect();
    let (status, body) = app.post_write("/v1/batch", json!({ "batch": many })).await;
    assert_eq!((status, error_of(&body).0), (413, "payload_too_large"));
    // A gzip bomb is measured after inflating.
    let bomb = gzip(format!(r#"{{"batch":[],"pad":"{}"}}"#, "0".repeat(2 * 1024 * 1024)).as_bytes());
    assert!(bomb.len() < 100 * 1024);
    let (status, _) = app.raw_post("/v1/batch", Some((WRITE_KEY, false)), bomb, true).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_field() {
    let app = spawn_app().await;
    type Case<'a> = (&'a str, Value, (&'a str, Option<&'a str>));
    let cases: Vec<Case<'_>> = vec![
        ("/v1/track", json!({"anonymousId": "a"}), ("missing_field", Some("event"))),
        ("/v1/identify", json!({"traits": {"name": "x"}}), ("missing_field", Some("userId"))),
        ("/v1/page", json!({"anonymousId": "a", "timestamp": "last tuesday"}), ("invalid_field", Some("timestamp"))),
        (
            "/v1/batch",
            json!({"batch": [track("a", "b"), {"type": "tracks", "anonymousId": "x"}]}),
            ("invalid_field", Some("batch[1].type")),
        ),
        ("/v1/batch", json!({"batch": "nope"}), ("invalid_field", Some("batch"))),
        ("/v1/alias", json!({"userId": "u"}), ("missing_field", Some("previousId"))),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = app.post_write(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(error_of(&answer), expected, "{path} {body}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, answer) = app.raw_post("/v1/track", Some((WRITE_KEY, false)), b"{not json".to_vec(), false).await;
    assert_eq!((status, error_of(&answer).0), (400, "invalid_json"));
    let (status, answer) = app.raw_post("/v1/track", Some((WRITE_KEY, false)), vec![0xff, 0xfe], false).await;
    assert_eq!((status, error_of(&answer).0), (400, "invalid_json"));
    let (status, answer) = app.get_admin("/v2/nothing").await;
    assert_eq!((status, error_of(&answer).0), (404, "not_found"));
    let (status, answer) = app.get_admin("/v1/profiles/nobody/events").await;
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test]
async fn an_anonymous_visitor_who_logs_in_keeps_his_history() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.post_write("/v1/track", track(&format!("h{i}"), "device-1")).await;
    }
    app.post_write("/v1/page", json!({"anonymousId": "device-2", "name": "Home", "messageId": "p1"})).await;
    let identify = |id: &str, anonymous: &str| {
        json!({"messageId": id, "userId": "user-42", "anonymousId": anonymous,
               "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "country": "GB"}})
    };
    let (status, _) = app.post_write("/v1/identify", identify("i1", "device-1")).await;
    assert_eq!(status, 200);
    app.post_write("/v1/identify", identify("i2", "device-2")).await;
    let (status, profile) = app.get_admin("/v1/profiles/user-42").await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["counters"]["events"], json!(6));
    assert_eq!(profile["counters"]["by_type"]["track"], json!(3));
    assert_eq!(profile["counters"]["by_event"]["Product Viewed"], json!(3));
    assert_eq!(profile["traits"]["email"], json!("ada@example.com"));
    assert_eq!(profile["identities"]["anonymous_ids"].as_array().map(Vec::len), Some(2));
    assert_eq!(profile["merged_profile_ids"].as_array().map(Vec::len), Some(1));
    assert!(profile["recent_events"].as_array().is_some_and(|e| e.len() == 6));
    let id = profile["id"].as_str().expect("id").to_owned();
    assert_eq!(app.get_admin(&format!("/v1/profiles/{id}")).await.1["id"], json!(id));
    assert_eq!(app.get_admin("/v1/profiles/device-2").await.1["id"], json!(id));
    // Trait history: a later identify changes the country.
    app.post_write("/v1/identify", json!({"messageId": "i3", "userId": "user-42", "traits": {"country": "FR"}})).await;
    let (_, profile) = app.get_admin("/v1/profiles/user-42").await;
    assert_eq!(profile["traits"]["country"], json!("FR"));
    let history = profile["trait_history"].as_array().expect("history");
    assert!(history.iter().any(|h| h["trait"] == "country" && h["value"] == "GB"));
    assert!(history.iter().any(|h| h["trait"] == "country" && h["value"] == "FR"));
}

#[tokio::test]
async fn events_page_with_a_cursor() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..25)
        .map(|i| {
            json!({"type": "track", "event": "Step", "messageId": format!("e{i}"), "anonymousId": "pager",
                   "timestamp": format!("2026-11-01T10:{i:02}:00.000Z"), "properties": {"i": i}})
        })
        .collect();
    app.post_write("/v1/batch", json!({ "batch": batch })).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app.get_admin(&format!("/v1/profiles/pager/events?limit=10&cursor={cursor}")).await;
        assert_eq!(status, 200, "{page}");
        for event in page["events"].as_array().expect("events") {
            assert!(
                event["messageId"].is_string() && event["timestamp"].is_string() && event["receivedAt"].is_string()
            );
            assert_eq!(event["type"], "track");
            assert_eq!(event["name"], "Step");
            seen.push(event["properties"]["i"].as_i64().expect("i"));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, (0..25).rev().collect::<Vec<i64>>());
    let (status, answer) = app.get_admin("/v1/profiles/pager/events?limit=abc").await;
    assert_eq!((status, error_of(&answer)), (400, ("invalid_field", Some("limit"))));
    let (status, answer) = app.get_admin("/v1/profiles/pager/events?cursor=zzz").await;
    assert_eq!((status, error_of(&answer)), (400, ("invalid_field", Some("cursor"))));
}

#[tokio::test]
async fn clock_skew_is_corrected_from_sent_at() {
    let app = spawn_app().await;
    // The device clock is a year fast: the event happened 5 s before it was sent.
    let message = json!({"event": "Skewed", "anonymousId": "skew", "messageId": "s1",
        "timestamp": "2027-12-01T00:00:00.000Z", "sentAt": "2027-12-01T00:00:05.000Z"});
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64;
    app.post_write("/v1/track", message).await;
    let (_, page) = app.get_admin("/v1/profiles/skew/events").await;
    let event = &page["events"][0];
    let ts = regard_core::time::parse_iso8601_ms(event["timestamp"].as_str().expect("ts")).expect("parse");
    assert!((ts - (before - 5_000)).abs() < 3_000, "corrected {ts} vs received {before}");
    assert_eq!(event["originalTimestamp"], "2027-12-01T00:00:00.000Z");
}

#[tokio::test]
async fn without_analytics_consent_only_counts_are_kept() {
    let app = spawn_app_with(ConsentMode::OptIn).await;
    let (status, body) = app.post_write("/v1/track", track("c1", "shy")).await;
    assert_eq!((status, body["reduced"].as_u64()), (200, Some(1)));
    assert_eq!(app.get_admin("/v1/profiles/shy").await.0, 404);
    let metrics =
        app.client.get(format!("{}/metrics", app.base)).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("regard_events_reduced_total{reason=\"no_analytics_consent\"} 1"), "{metrics}");
    let (_, reduced) = app.get_admin("/v1/stats/reduced").await;
    assert_eq!(reduced["counts"][0]["name"], "Product Viewed");
    assert_eq!(reduced["counts"][0]["count"], 1);

    // A consent banner grants analytics through Segment's consent context.
    let mut granted = track("c2", "shy");
    granted["context"] = json!({"consent": {"categoryPreferences": {"Analytics": true, "Advertising": false}}});
    let (_, body) = app.post_write("/v1/track", granted).await;
    assert_eq!(body["stored"].as_u64(), Some(1));
    let (_, profile) = app.get_admin("/v1/profiles/shy").await;
    assert_eq!(profile["consents"]["analytics"]["state"], "granted");
    assert_eq!(profile["consents"]["analytics"]["source"], "segment_context");
    assert_eq!(profile["consents"]["advertising"]["state"], "denied");
    assert_eq!(profile["consents"]["email"]["allowed"], false);

    // The operator's backend revokes it: later events are reduced again.
    let (status, answer) = app
        .post_admin(
            "/v1/consent",
            json!({"anonymousId": "shy", "purposes": {"analytics": false}, "policyVersion": "2026-11"}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["consents"]["analytics"]["state"], "denied");
    assert_eq!(answer["consents"]["analytics"]["policy_version"], "2026-11");
    let (_, body) = app.post_write("/v1/track", track("c3", "shy")).await;
    assert_eq!(body["reduced"].as_u64(), Some(1));
    let (_, profile) = app.get_admin("/v1/profiles/shy").await;
    assert_eq!(profile["counters"]["events"], 1);
    assert_eq!(profile["consent_history"].as_array().map(Vec::len), Some(3));

    // Identify traits can carry consent too.
    let identify = json!({"userId": "u-consent", "messageId": "c4", "traits": {"email": "c@example.org", "consent": {"analytics": true, "email": true}}});
    let (_, body) = app.post_write("/v1/identify", identify).await;
    assert_eq!(body["stored"].as_u64(), Some(1));
    let (_, profile) = app.get_admin("/v1/profiles/u-consent").await;
    assert_eq!(profile["consents"]["email"]["source"], "identify_traits");
    assert!(profile["traits"].get("consent").is_none());

    let bad = [
        (json!({"purposes": {"email": true}}), Some("userId")),
        (json!({"userId": "x", "purposes": {"telepathy": true}}), Some("purposes.telepathy")),
        (json!({"userId": "x", "purposes": {"email": "yes"}}), Some("purposes.email")),
    ];
    for (body, field) in bad {
        let (status, answer) = app.post_admin("/v1/consent", body.to_string()).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, field), "{answer}");
    }
}

#[tokio::test]
async fn the_catalog_takes_arrays_and_json_lines() {
    let app = spawn_app().await;
    let array = json!([{"id": "sku-1", "name": "French press", "category": "Kitchen > Coffee", "price": 29.5, "currency": "EUR", "durable": true}]);
    let (status, body) = app.post_admin("/v1/catalog", array.to_string()).await;
    assert_eq!((status, body["upserted"].as_u64()), (200, Some(1)));
    let lines = "{\"id\":\"sku-2\",\"name\":\"Beans\",\"category_path\":[\"Coffee\",\"Beans\"],\"price\":\"12.00\",\"durability\":\"consumable\"}\n";
    assert_eq!(app.post_admin("/v1/catalog", lines.into()).await.0, 200);
    let (status, product) = app.get_admin("/v1/catalog/sku-1").await;
    assert_eq!(status, 200);
    assert_eq!(product["category_path"], json!(["Kitchen", "Coffee"]));
    assert_eq!(product["durability"], "durable");
    let (status, answer) = app
        .post_admin("/v1/catalog", "{\"id\":\"a\",\"name\":\"A\"}\n{\"id\":\"b\",\"name\":\"B\",\"price\":-3}\n".into())
        .await;
    assert_eq!((status, error_of(&answer)), (400, ("invalid_field", Some("line 2: price"))));
    assert_eq!(app.get_admin("/v1/catalog/a").await.0, 404, "a rejected upload stores nothing");
}

#[tokio::test]
async fn health_and_metrics_report_the_pipeline() {
    let app = spawn_app().await;
    let health = app.client.get(format!("{}/healthz", app.base)).send().await.expect("health");
    assert_eq!(health.status().as_u16(), 200);
    app.post_write("/v1/track", track("x1", "m")).await;
    app.post_write("/v1/track", json!({"anonymousId": "m"})).await;
    let metrics =
        app.client.get(format!("{}/metrics", app.base)).send().await.expect("metrics").text().await.expect("text");
    for needle in [
        "regard_events_accepted_total{outcome=\"stored\"} 1",
        "regard_events_rejected_total{reason=\"missing_field\"} 1",
        "regard_http_request_duration_seconds_bucket{route=\"/v1/track\",le=\"+Inf\"} 2",
        "regard_store_commit_duration_seconds_count",
        "regard_profiles 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
}

fn iso_days_ago(days: f64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64;
    regard_core::time::format_iso8601_ms(now - (days * 86_400_000.0) as i64)
}

#[tokio::test]
async fn a_draft_segment_previews_its_size_members_and_reasons() {
    let app = spawn_app().await;
    let catalog = json!([
        {"id": "shoe-1", "name": "Trail runner", "category": "Sports > Running Shoes", "price": 120},
        {"id": "mug-1", "name": "Mug", "category": "Kitchen > Mugs", "price": 9}
    ]);
    assert_eq!(app.post_admin("/v1/catalog", catalog.to_string()).await.0, 200);
    let view = |id: &str, user: &str, product: &str, days: f64| {
        json!({"type": "track", "event": "Product Viewed", "messageId": id, "userId": user,
               "properties": {"product_id": product}, "timestamp": iso_days_ago(days)})
    };
    let batch = vec![
        view("a1", "runner", "shoe-1", 1.0),
        view("a2", "runner", "shoe-1", 3.0),
        view("a3", "runner", "shoe-1", 6.0),
        view("b1", "glancer", "shoe-1", 1.0),
        view("c1", "former", "shoe-1", 20.0),
        view("c2", "former", "shoe-1", 21.0),
        view("c3", "former", "shoe-1", 22.0),
        view("d1", "mugger", "mug-1", 1.0),
        view("d2", "mugger", "mug-1", 2.0),
        view("d3", "mugger", "mug-1", 3.0),
    ];
    let (status, _) = app.post_write("/v1/batch", json!({ "batch": batch })).await;
    assert_eq!(status, 200);
    let draft = json!({"id": "running-shoe-fans", "name": "Running shoe fans", "purpose": "personalization",
        "condition": {"catalog": {"category": "Running Shoes", "event": "Product Viewed", "count": {"gte": 3}, "within_days": 7}}});
    let (status, preview) = app.post_admin("/v1/segments/preview", draft.to_string()).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["size"], 1, "{preview}");
    assert_eq!(preview["profiles"], 4);
    assert_eq!(preview["sample"][0]["user_id"], "runner");
    let reasons = preview["sample"][0]["reasons"].to_string();
    assert!(reasons.contains("Running Shoes 3 times in the last 7 days"), "{reasons}");

    // The policy check refuses inferring a sensitive attribute from behavior, naming the condition.
    let creepy = json!({"id": "debt", "name": "Debt", "purpose": "email",
        "condition": {"event": {"name": "Page Viewed", "where": [{"property": "path", "op": "contains", "value": "debt relief"}], "count": {"gte": 3}}}});
    let (status, error) = app.post_admin("/v1/segments/preview", creepy.to_string()).await;
    assert_eq!((status, error["error"]["code"].as_str()), (422, Some("policy_violation")), "{error}");
    assert!(error["error"]["field"].as_str().is_some_and(|f| f.starts_with("condition")), "{error}");
    assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("financial")), "{error}");

    let broken = json!({"id": "x", "name": "X", "purpose": "email", "condition": {"event": {"name": "A", "within_days": 0, "count": {"gte": 2}}}});
    let (status, error) = app.post_admin("/v1/segments/preview", broken.to_string()).await;
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("condition.event.within_days")), "{error}");
}

#[tokio::test]
async fn saved_segments_answer_members_and_each_profiles_memberships_with_reasons() {
    let app = spawn_app().await;
    let buy = |id: &str, user: &str, days: f64| {
        json!({"type": "track", "event": "Order Completed", "messageId": id, "userId": user,
               "properties": {"order_id": id, "revenue": 20}, "timestamp": iso_days_ago(days)})
    };
    let batch = vec![
        buy("o1", "loyal", 5.0),
        buy("o2", "loyal", 35.0),
        buy("o3", "loyal", 65.0),
        buy("o4", "lapsed", 120.0),
        buy("o5", "lapsed", 150.0),
        buy("o6", "once", 2.0),
    ];
    app.post_write("/v1/batch", json!({ "batch": batch })).await;
    let repeat = json!({"id": "repeat-purchasers", "name": "Repeat purchasers", "purpose": "personalization",
        "condition": {"purchases": {"count": {"gte": 3}}}});
    // The orders are stored already: the segment is accepted and backfilled in the background.
    let (status, saved) = app.post_admin("/v1/segments", repeat.to_string()).await;
    assert_eq!((status, saved["version"].as_u64()), (202, Some(1)), "{saved}");
    assert_eq!(saved["status"]["ready"], false, "{saved}");
    assert_eq!(app.wait_ready("repeat-purchasers").await["state"], "ready");
    let (status, error) = app.post_admin("/v1/segments", repeat.to_string()).await;
    assert_eq!((status, error_of(&error).0), (409, "conflict"));
    // Its purchase match is indexed now: a second segment over it is ready at once.
    let lapsed = json!({"id": "lapsed", "name": "Lapsed customers", "purpose": "email",
        "condition": {"purchases": {"count": {"gte": 2}, "last_before_days": 90}}});
    assert_eq!(app.post_admin("/v1/segments", lapsed.to_string()).await.0, 201);

    let (_, list) = app.get_admin("/v1/segments").await;
    assert_eq!(list["segments"].as_array().map(Vec::len), Some(2));
    let (_, members) = app.get_admin("/v1/segments/repeat-purchasers/members").await;
    assert_eq!(members["size"], 1, "{members}");
    assert_eq!(members["members"][0]["user_id"], "loyal");

    let (status, of_loyal) = app.get_admin("/v1/profiles/loyal/segments").await;
    assert_eq!(status, 200, "{of_loyal}");
    assert_eq!(of_loyal["segments"][0]["id"], "repeat-purchasers");
    assert!(of_loyal["segments"][0]["reasons"].to_string().contains("3 purchases"), "{of_loyal}");
    let (_, of_lapsed) = app.get_admin("/v1/profiles/lapsed/segments").await;
    assert_eq!(of_lapsed["segments"][0]["id"], "lapsed", "{of_lapsed}");
    assert!(of_lapsed["segments"][0]["reasons"].to_string().contains("120 days ago"), "{of_lapsed}");

    // Revoking the purpose withdraws the membership at once.
    app.post_admin("/v1/consent", json!({"userId": "lapsed", "purposes": {"email": false}}).to_string()).await;
    let (_, of_lapsed) = app.get_admin("/v1/profiles/lapsed/segments").await;
    assert_eq!(of_lapsed["segments"], json!([]), "{of_lapsed}");
    assert_eq!(of_lapsed["withheld_for_consent"], json!(["lapsed"]));

    // A new version, then deletion.
    let mut stricter = repeat.clone();
    stricter["condition"] = json!({"purchases": {"count": {"gte": 4}}});
    let response = app
        .client
        .put(format!("{}/v1/segments/repeat-purchasers", app.base))
        .bearer_auth(ADMIN_KEY)
        .body(stricter.to_string())
        .send()
        .await
        .expect("put");
    assert_eq!(response.status().as_u16(), 200);
    let (_, one) = app.get_admin("/v1/segments/repeat-purchasers").await;
    assert_eq!(one["version"], 2);
    let (_, members) = app.get_admin("/v1/segments/repeat-purchasers/members").await;
    assert_eq!(members["size"], 0);
    let status = app
        .client
        .delete(format!("{}/v1/segments/lapsed", app.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("delete")
        .status();
    assert_eq!(status.as_u16(), 200);
    assert_eq!(app.get_admin("/v1/segments/lapsed").await.0, 404);
    assert_eq!(app.get_admin("/v1/profiles/nobody/segments").await.0, 404);
}

#[tokio::test]
async fn an_event_changes_memberships_before_its_request_is_answered() {
    let app = spawn_app().await;
    let buyers = json!({"id": "buyers", "name": "Buyers", "purpose": "personalization",
        "condition": {"purchases": {"count": {"gte": 1}}}});
    assert_eq!(app.post_admin("/v1/segments", buyers.to_string()).await.0, 201);
    let order =
        json!({"event": "Order Completed", "userId": "fresh", "messageId": "rt1", "properties": {"revenue": 12}});
    let (status, _) = app.post_write("/v1/track", order).await;
    assert_eq!(status, 200);
    let (_, segments) = app.get_admin("/v1/profiles/fresh/segments").await;
    assert_eq!(segments["segments"][0]["id"], "buyers", "{segments}");
    assert_eq!(segments["segments"][0]["reasons"][0], "You have made 1 purchase.");
    let (_, members) = app.get_admin("/v1/segments/buyers/members").await;
    assert_eq!(members["size"], 1);
    let metrics =
        app.client.get(format!("{}/metrics", app.base)).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("regard_segment_members{segment=\"buyers\"} 1"), "{metrics}");
}

#[tokio::test]
async fn a_backfill_runs_beside_ingestion_and_counts_every_event_once() {
    let app = spawn_app().await;
    let order = |id: String, days: f64| {
        json!({"type": "track", "event": "Order Completed", "messageId": id, "userId": "steady",
               "properties": {"revenue": 20}, "timestamp": iso_days_ago(days)})
    };
    let history: Vec<Value> = (0..300).map(|i| order(format!("h{i}"), 10.0 + f64::from(i) / 100.0)).collect();
    assert_eq!(app.post_write("/v1/batch", json!({ "batch": history })).await.0, 200);
    let loyal = json!({"id": "loyal", "name": "Loyal", "purpose": "personalization",
        "condition": {"purchases": {"count": {"gte": 305}}}});
    let response = app
        .client
        .post(format!("{}/v1/segments", app.base))
        .bearer_auth(ADMIN_KEY)
        .body(loyal.to_string())
        .send()
        .await
        .expect("create");
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(response.headers()["location"], "/v1/segments/loyal/status");
    // Ingestion is answered while the backfill is queued or running.
    for i in 0..5 {
        let (code, _) = app.post_write("/v1/track", order(format!("live{i}"), 1.0)).await;
        assert_eq!(code, 200);
    }
    let status = app.wait_ready("loyal").await;
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!((status["scanned"].as_u64(), status["total"].as_u64()), (Some(300), Some(300)), "{status}");
    assert_eq!(status["percent"], 100.0);
    assert!(status["duration_ms"].as_i64().is_some() && status["ready_at"].is_string(), "{status}");
    let (_, one) = app.get_admin("/v1/segments/loyal").await;
    assert_eq!(one["status"]["state"], "ready", "{one}");
    let (_, members) = app.get_admin("/v1/segments/loyal/members").await;
    assert_eq!((members["ready"].as_bool(), members["size"].as_u64()), (Some(true), Some(1)), "{members}");
    assert_eq!(members["members"][0]["reasons"][0], "You have made 305 purchases.", "each order counted once");
    let (_, mine) = app.get_admin("/v1/profiles/steady/segments").await;
    assert_eq!(mine["segments"][0]["ready"], true, "{mine}");
    assert_eq!(app.get_admin("/v1/segments/nothing/status").await.0, 404);
}
