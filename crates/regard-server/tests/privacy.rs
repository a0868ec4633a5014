//! Data subject requests through the real router: an access export holds every part of the
//! person; an erasure leaves no trace in the store's files (WAL included), answers 404, and
//! drops replayed old events; anonymization keeps only anonymous daily counts.

mod common;

use common::{spawn, Options, TestApp, ADMIN_KEY, WRITE_KEY};
use serde_json::{json, Value};

const USER: &str = "erin-5f3a9c71";
const EMAIL: &str = "erin.5f3a9c71@example.org";

fn data_files_contain(app: &TestApp, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(app._dir.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        }
    }
    found
}

async fn person(app: &TestApp, user: &str, email: &str) {
    let batch = json!({"batch": [
        {"type": "identify", "userId": user, "anonymousId": format!("anon-{user}"), "messageId": format!("{user}-1"),
         "timestamp": "2026-11-01T10:00:00Z", "traits": {"email": email, "first_name": "Erin", "city": "Leeds"}},
        {"type": "track", "userId": user, "event": "Product Viewed", "messageId": format!("{user}-2"),
         "timestamp": "2026-11-02T10:00:00Z", "properties": {"product_id": "p1", "category": "Tea"}},
        {"type": "track", "userId": user, "event": "Product Viewed", "messageId": format!("{user}-3"),
         "timestamp": "2026-11-03T10:00:00Z", "properties": {"product_id": "p1", "category": "Tea"}},
        {"type": "track", "userId": user, "event": "Order Completed", "messageId": format!("{user}-4"),
         "timestamp": "2026-11-04T10:00:00Z", "properties": {"order_id": format!("o-{user}"), "revenue": 12.5,
         "products": [{"product_id": "p1", "price": 12.5}]}},
    ]});
    let (status, body) = app.send("POST", "/v1/batch", Some(WRITE_KEY), Some(batch)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .send("POST", "/v1/consent", Some(ADMIN_KEY), Some(json!({"userId": user, "purposes": {"email": false}})))
        .await;
    assert!(status < 300, "{body}");
}

async fn request(app: &TestApp, body: Value) -> (u16, Value) {
    app.send("POST", "/v1/privacy/requests", Some(ADMIN_KEY), Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_exports_everything_and_erasure_leaves_no_trace() {
    let app = spawn(Options::default()).await;
    let segment = json!({"id": "buyers", "name": "Buyers", "purpose": "personalization",
        "condition": {"purchases": {"count": {"gte": 1}}}});
    assert_eq!(app.send("POST", "/v1/segments", Some(ADMIN_KEY), Some(segment)).await.0, 201);
    person(&app, USER, EMAIL).await;
    person(&app, "bystander-77", "bystander.77@example.org").await;
    let (status, body) =
        app.send("POST", "/v1/decide", Some(ADMIN_KEY), Some(json!({"userId": USER, "slots": ["none"]}))).await;
    assert!(status == 200 || status == 404, "{body}");
    app.state.content.store.flush();

    // Access: every part of the person is there.
    let (status, access) = request(&app, json!({"type": "access", "userId": USER})).await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(access["status"], "completed");
    let export = &access["export"];
    assert_eq!(export["events"].as_array().map(Vec::len), Some(4), "{export}");
    assert!(export.to_string().contains(EMAIL));
    assert!(export["trait_history"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(export["consent_history"].to_string().contains("\"email\""), "{}", export["consent_history"]);
    assert!(export["segments"].to_string().contains("buyers"), "{}", export["segments"]);
    for part in ["identities", "predictions", "decisions", "messages_sent", "experiments"] {
        assert!(!export[part].is_null(), "{part} missing from the export");
    }

    // The same export as a ZIP of CSVs: a file per part, the events one row each.
    let response = app
        .client
        .post(format!("{}/v1/privacy/requests", app.base))
        .basic_auth(ADMIN_KEY, Some(""))
        .json(&json!({"type": "access", "userId": USER, "format": "zip"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.expect("body");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a ZIP");
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    for file in ["events.csv", "trait_history.csv", "consent_history.csv", "segments.csv", "profile.csv", "export.json"]
    {
        assert!(names.iter().any(|n| n == file), "{file} missing from {names:?}");
    }
    let mut events = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("events.csv").expect("events.csv"), &mut events).expect("read");
    assert_eq!(events.lines().count(), 5, "a header and 4 events: {events}");
    let (status, body) = request(&app, json!({"type": "erase", "userId": USER, "format": "zip"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("format")), "{body}");

    // Before the erasure the files hold the person (so the check below can fail).
    assert!(!data_files_contain(&app, EMAIL).is_empty(), "the email should be stored before the erasure");

    let (status, erased) = request(&app, json!({"type": "erase", "userId": USER, "regulation": "ccpa"})).await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["erasure"]["profiles"], 1, "{erased}");
    assert_eq!(erased["erasure"]["events"], 4, "{erased}");
    assert!(erased["erasure"]["tombstones"].as_u64().unwrap_or(0) >= 2, "{erased}");
    assert_eq!(erased["subject"], "er***71");
    assert_eq!(erased["erasure"]["dictionaries_with_fragments"], json!([]), "{erased}");

    let (status, _) = app.send("GET", &format!("/v1/profiles/{USER}"), Some(ADMIN_KEY), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.send("GET", "/v1/profiles/bystander-77", Some(ADMIN_KEY), None).await;
    assert_eq!(status, 200, "the bystander is untouched");
    for needle in [EMAIL, USER, &format!("anon-{USER}"), &format!("o-{USER}")] {
        let files = data_files_contain(&app, needle);
        assert!(files.is_empty(), "{needle:?} is still in {files:?}");
    }
    assert!(!data_files_contain(&app, "bystander.77@example.org").is_empty());

    // A replayed old event does not bring the person back.
    let replay = json!({"type": "track", "userId": USER, "event": "Product Viewed", "messageId": "replayed-1",
        "timestamp": "2026-11-05T10:00:00Z", "properties": {"product_id": "p1"}});
    let (status, body) = app.send("POST", "/v1/track", Some(WRITE_KEY), Some(replay)).await;
    assert_eq!((status, body["erased"].as_u64()), (200, Some(1)), "{body}");
    let (status, _) = app.send("GET", &format!("/v1/profiles/{USER}"), Some(ADMIN_KEY), None).await;
    assert_eq!(status, 404);

    // The requests are listed with their deadlines, the erased subject masked.
    let (status, list) = app.send("GET", "/v1/privacy/requests", Some(ADMIN_KEY), None).await;
    assert_eq!(status, 200);
    let requests = list["requests"].as_array().expect("a list");
    assert_eq!(requests.len(), 3, "two accesses (JSON and ZIP) and the erasure: {list}");
    assert!(requests.iter().all(|r| r["status"] == "completed" && r["deadline"].is_string()), "{list}");
    assert!(!list.to_string().contains(USER), "the request log must not keep the erased id: {list}");
    let ccpa = requests.iter().find(|r| r["type"] == "erase").expect("the erasure");
    assert_eq!(ccpa["regulation"], "ccpa");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymization_keeps_only_anonymous_counts() {
    let app = spawn(Options::default()).await;
    person(&app, "ana-0192", "ana.0192@example.org").await;
    let count = |stats: &Value| -> u64 {
        stats["counts"].as_array().into_iter().flatten().filter_map(|c| c["count"].as_u64()).sum()
    };
    let (_, before) = app.send("GET", "/v1/stats/reduced", Some(ADMIN_KEY), None).await;
    let (status, body) = request(&app, json!({"type": "anonymize", "anonymousId": "anon-ana-0192"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["erasure"]["kept_anonymous_counts"], true);
    let (_, after) = app.send("GET", "/v1/stats/reduced", Some(ADMIN_KEY), None).await;
    assert_eq!(count(&after), count(&before) + 4, "{before} -> {after}");
    assert!(data_files_contain(&app, "ana.0192@example.org").is_empty());
    let (status, _) = app.send("GET", "/v1/profiles/ana-0192", Some(ADMIN_KEY), None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field() {
    let app = spawn(Options::default()).await;
    for (body, status, field) in [
        (json!({"type": "delete", "userId": "x"}), 400, "type"),
        (json!({"type": "erase"}), 400, "userId"),
        (json!({"type": "erase", "userId": "x", "regulation": "lgpd"}), 400, "regulation"),
        (json!({"type": "access", "userId": "nobody"}), 404, "userId"),
    ] {
        let (got, answer) = request(&app, body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }
    let (status, _) =
        app.send("POST", "/v1/privacy/requests", Some(WRITE_KEY), Some(json!({"type": "access", "userId": "x"}))).await;
    assert_eq!(status, 403, "the write key cannot ask for a person's data");
}
