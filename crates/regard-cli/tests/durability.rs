//! A 2xx means durable: kill -9 the real server mid-stream, restart it, and find every
//! acknowledged message exactly once.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn message(id: &str, user: usize) -> serde_json::Value {
    json!({"type": "track", "event": "Product Viewed", "messageId": id, "anonymousId": format!("anon-{user}"),
           "properties": {"product_id": "sku-1"}})
}

#[test]
fn acknowledged_messages_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path(), &["--consent-mode", "opt-out"]);
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let stop_at = Instant::now() + Duration::from_millis(1_500);
    let mut workers = Vec::new();
    for worker in 0..6 {
        let (client, base, acked) = (client.clone(), server.base.clone(), Arc::clone(&acked));
        workers.push(std::thread::spawn(move || {
            let mut n = 0;
            // Keep sending until the server dies (after the kill below) or the time is up.
            while Instant::now() < stop_at + Duration::from_secs(2) {
                let ids: Vec<String> =
                    (0..if worker % 2 == 0 { 50 } else { 1 }).map(|i| format!("w{worker}-{n}-{i}")).collect();
                n += 1;
                let (path, body) = if ids.len() == 1 {
                    ("/v1/track", message(&ids[0], worker))
                } else {
                    ("/v1/batch", json!({"batch": ids.iter().map(|id| message(id, worker)).collect::<Vec<_>>()}))
                };
                match client.post(format!("{base}{path}")).basic_auth(WRITE_KEY, Some("")).json(&body).send() {
                    Ok(response) if response.status().is_success() => acked.lock().expect("lock").extend(ids),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1_500));
    let mut server = server;
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reap");
    for worker in workers {
        worker.join().expect("worker");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 200, "only {} messages were acknowledged before the kill", acked.len());

    let stored = stored_message_ids(dir.path());
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains_key(*id)).take(5).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(stored.values().all(|&n| n == 1), "some message stored twice");

    // After a restart the live state is rebuilt and retries are still recognised.
    let server = start_server(dir.path(), &["--consent-mode", "opt-out"]);
    let some: Vec<&String> = acked.iter().take(100).collect();
    let body = json!({"batch": some.iter().map(|id| message(id, 0)).collect::<Vec<_>>()});
    let answer: serde_json::Value = client
        .post(format!("{}/v1/batch", server.base))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&body)
        .send()
        .expect("retry")
        .json()
        .expect("json");
    assert_eq!(answer["duplicates"], json!(some.len()), "{answer}");
    let profile: serde_json::Value = client
        .get(format!("{}/v1/profiles/anon-0", server.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .expect("profile")
        .json()
        .expect("json");
    let stored_for_anon_0 = stored.keys().filter(|id| id.starts_with("w0-")).count();
    assert_eq!(profile["counters"]["events"], json!(stored_for_anon_0), "{profile}");
}

#[test]
fn sigterm_shuts_down_gracefully_keeping_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start_server(dir.path(), &["--consent-mode", "opt-out"]);
    let client = reqwest::blocking::Client::new();
    for i in 0..20 {
        let response = client
            .post(format!("{}/v1/track", server.base))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&message(&format!("t{i}"), 1))
            .send()
            .expect("send");
        assert!(response.status().is_success());
    }
    let pid = server.child.id().to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(status.success());
    let exit = wait_exit(&mut server.child, Duration::from_secs(20)).expect("server did not stop on SIGTERM");
    assert!(exit.success(), "exit status {exit:?}");
    assert_eq!(stored_message_ids(dir.path()).len(), 20);
}
