//! Times the writer's two halves on pre-built messages, outside criterion:
//! `cargo run --release -p regard-store --example write_path -- [N]`.

use std::time::Instant;

use regard_core::consent::ConsentMode;
use regard_core::facts::FactBatch;
use regard_core::live::{LiveConfig, LiveState};
use regard_core::message::{Message, MessageContext, MessageKind};
use regard_store::{SqliteStore, SyncMode};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let messages: Vec<Message> = (0..n)
        .map(|i| {
            let user = i % 50_000;
            let raw = format!(
                r#"{{"type":"track","event":"Product Viewed","messageId":"m-{i}","anonymousId":"anon-{user}","timestamp":"2026-11-01T12:00:00.000Z","properties":{{"product_id":"sku-{p:04}","category":"Coffee Beans","name":"Dark Roast","price":12.5,"currency":"USD"}},"context":{{"ip":"192.0.2.7","locale":"en-US","timezone":"America/New_York","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","page":{{"path":"/p/sku-{p:04}","url":"https://demo.regard.shop/p/sku-{p:04}","referrer":"https://www.google.com/"}}}}}}"#,
                p = i % 500
            );
            Message {
                kind: MessageKind::Track,
                message_id: format!("m-{i}"),
                user_id: None,
                anonymous_id: Some(format!("anon-{user}")),
                previous_id: None,
                group_id: None,
                name: Some("Product Viewed".into()),
                timestamp_ms: 1_790_000_000_000 + i as i64 * 1_000,
                received_at_ms: 1_790_000_000_000 + i as i64 * 1_000,
                traits: None,
                properties: None,
                context: MessageContext {
                    locale: Some("en-US".into()),
                    timezone: Some("America/New_York".into()),
                    consent_categories: vec![("Analytics".into(), true), ("Personalization".into(), true)],
                    ..MessageContext::default()
                },
                raw: raw.into(),
            }
        })
        .collect();
    let mut live = LiveState::new(LiveConfig { consent_mode: ConsentMode::OptIn, ..LiveConfig::default() });
    let mut batches = Vec::new();
    let started = Instant::now();
    let mut iter = messages.into_iter();
    loop {
        let chunk: Vec<Message> = iter.by_ref().take(10_000).collect();
        if chunk.is_empty() {
            break;
        }
        let mut facts = FactBatch::default();
        for m in chunk {
            live.apply_message(m, &mut facts);
        }
        batches.push(facts);
    }
    let apply = started.elapsed();
    let dir = std::env::temp_dir().join(format!("regard-write-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for sync in [SyncMode::Normal, SyncMode::Full] {
        let _ = std::fs::remove_file(dir.join(regard_store::sqlite::DATABASE_FILE));
        let mut store = SqliteStore::open(&dir, sync).expect("store");
        let started = Instant::now();
        for facts in &batches {
            store.commit(facts).expect("commit");
        }
        let commit = started.elapsed();
        println!(
            "{n} events: apply {:.2} µs/event ({:.0}/s); commit sync={sync:?} {:.2} µs/event ({:.0}/s)",
            apply.as_secs_f64() * 1e6 / n as f64,
            n as f64 / apply.as_secs_f64(),
            commit.as_secs_f64() * 1e6 / n as f64,
            n as f64 / commit.as_secs_f64()
        );
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{}{suffix}", regard_store::sqlite::DATABASE_FILE)));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
