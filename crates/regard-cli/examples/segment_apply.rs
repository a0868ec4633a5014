//! The writer's per-event cost of keeping segment memberships, outside criterion and without
//! disk: applies the load of `regard bench ingest` (views from 100,000 users, one event time)
//! to a live state with N saved segments of the benchmark mix, and prints the time per event.
//! `cargo run --release -p regard-cli --example segment_apply -- [EVENTS] [SEGMENTS]`. It uses
//! the binary's allocator (mimalloc) and reports CPU time, which a busy machine blurs less than
//! wall time.

use std::time::Instant;

/// The allocator of the `regard` binary, so the figures match the server's writer.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use regard_core::consent::ConsentMode;
use regard_core::facts::FactBatch;
use regard_core::live::{LiveConfig, LiveState};
use regard_core::message::{Message, MessageContext, MessageKind};

/// The i-th segment of the ingest benchmark's mix (as `regard bench ingest --segments`).
fn bench_segment(i: usize) -> String {
    let countries = ["DE", "US", "FR", "GB"];
    let categories = ["Coffee Beans", "Tea", "Running Shoes", "Mattresses", "Garden", "Books"];
    let condition = match i % 4 {
        0 => format!(
            r#"{{"catalog": {{"category": "{}", "event": "Product Viewed", "count": {{"gte": {}}}, "within_days": {}}}}}"#,
            categories[i % categories.len()],
            2 + i % 5,
            7 + i % 30
        ),
        1 => format!(r#"{{"purchases": {{"count": {{"gte": {}}}, "last_before_days": {}}}}}"#, 1 + i % 4, 30 + i),
        2 => format!(
            r#"{{"sequence": {{"first": {{"name": "Product Added", "within_days": {}}}, "then_never": {{"name": "Order Completed"}}}}}}"#,
            1 + i % 14
        ),
        _ => format!(
            r#"{{"any": [{{"trait": {{"name": "country", "op": "equals", "value": "{}"}}}}, {{"visitor": "returning"}}]}}"#,
            countries[i % 4]
        ),
    };
    format!(
        r#"{{"id": "bench-{i}", "name": "Bench segment {i}", "purpose": "personalization", "condition": {condition}}}"#
    )
}

/// CPU time this process has used (user + system), from `/proc/self/stat`: unlike wall time,
/// it does not count the time other processes on a busy machine take.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks of 10 ms).
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let n_segments: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut live = LiveState::new(LiveConfig { consent_mode: ConsentMode::OptOut, ..LiveConfig::default() });
    let mut facts = FactBatch::default();
    for i in 0..n_segments {
        let json = bench_segment(i);
        let definition = regard_core::segments::SegmentDefinition::parse_str(&json).expect("valid");
        live.save_segment(definition, json, 0, &mut facts);
    }
    let messages: Vec<Message> = (0..n)
        .map(|i| {
            let user = (i as u64).wrapping_mul(2_654_435_761) % 100_000;
            let product = i % 500;
            Message {
                kind: MessageKind::Track,
                message_id: format!("bench-{i}"),
                user_id: Some(format!("user-{user:08}")),
                anonymous_id: Some(format!("anon-{user:08}")),
                previous_id: None,
                group_id: None,
                name: Some("Product Viewed".into()),
                timestamp_ms: 1_793_534_400_000,
                received_at_ms: 1_795_910_400_000 + i as i64,
                traits: None,
                properties: Some(
                    format!(r#"{{"product_id":"sku-{product:04}","category":"Coffee Beans","name":"Dark Roast {product}","price":12.5,"currency":"USD"}}"#)
                        .into(),
                ),
                context: MessageContext {
                    locale: Some("en-US".into()),
                    timezone: Some("America/New_York".into()),
                    ..MessageContext::default()
                },
                raw: "{}".into(),
            }
        })
        .collect();
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    for chunk in messages.chunks(10_000) {
        for m in chunk {
            live.apply_message(m.clone(), &mut facts);
        }
        facts.clear();
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_started;
    println!(
        "{n} events, {n_segments} segments: {:.3} µs/event CPU, {:.3} µs/event wall ({} profiles, {} scheduled checks)",
        cpu * 1e6 / n as f64,
        elapsed.as_secs_f64() * 1e6 / n as f64,
        live.profile_count(),
        live.scheduled_segment_checks()
    );
}
