//! Criterion benches of the write path's core: applying messages to the live state, and
//! committing the resulting facts to SQLite, separately, so BENCHMARKS.md can say which bounds
//! ingestion.

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use regard_core::consent::ConsentMode;
use regard_core::facts::FactBatch;
use regard_core::live::{LiveConfig, LiveState};
use regard_core::message::{Message, MessageContext, MessageKind};
use regard_store::{SqliteStore, SyncMode};

const GROUP: usize = 10_000;

/// A realistic track message: the raw text is what the demo store and the load generator send.
fn messages(offset: usize, n: usize) -> Vec<Message> {
    (offset..offset + n)
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
                    consent_categories: vec![
                        ("Analytics".into(), true),
                        ("Personalization".into(), true),
                        ("Advertising".into(), true),
                        ("Email".into(), true),
                        ("Profiling".into(), true),
                    ],
                    ..MessageContext::default()
                },
                raw: raw.into(),
            }
        })
        .collect()
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("live_state");
    group.throughput(Throughput::Elements(GROUP as u64));
    let mut live = LiveState::new(LiveConfig { consent_mode: ConsentMode::OptIn, ..LiveConfig::default() });
    let mut offset = 0;
    group.bench_function("apply_10k_track_messages", |b| {
        b.iter_batched(
            || {
                offset += GROUP;
                messages(offset, GROUP)
            },
            |batch| {
                let mut facts = FactBatch::default();
                for m in batch {
                    live.apply_message(m, &mut facts);
                }
                facts
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// The i-th segment of the ingest benchmark's mix (the same as `regard bench ingest
/// --segments`): a quarter count this load's own "Product Viewed" events by catalog category,
/// a quarter purchases, a quarter cart sequences, a quarter traits or visits.
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

/// Applying track messages with 0 and with 100 saved segments: the writer's per-event cost of
/// keeping memberships up to date (the ingest goal allows at most 20% less throughput).
fn apply_with_segments(c: &mut Criterion) {
    let mut group = c.benchmark_group("live_state_segments");
    group.throughput(Throughput::Elements(GROUP as u64));
    group.sample_size(20);
    for n_segments in [0, 100] {
        let mut live = LiveState::new(LiveConfig { consent_mode: ConsentMode::OptOut, ..LiveConfig::default() });
        let mut facts = FactBatch::default();
        for i in 0..n_segments {
            let json = bench_segment(i);
            let definition = regard_core::segments::SegmentDefinition::parse_str(&json).expect("valid");
            live.save_segment(definition, json, 0, &mut facts);
        }
        let mut offset = 0;
        group.bench_function(format!("apply_10k_views_{n_segments}_segments"), |b| {
            b.iter_batched(
                || {
                    offset += GROUP;
                    let mut batch = messages(offset, GROUP);
                    for (k, m) in batch.iter_mut().enumerate() {
                        // As in `regard bench ingest`: one event time for all, so only a
                        // profile's first event opens a visit.
                        m.timestamp_ms = 1_793_534_400_000;
                        m.received_at_ms = 1_795_910_400_000 + (offset + k) as i64;
                        let product = (offset + k) % 500;
                        m.properties = Some(
                            format!(r#"{{"product_id":"sku-{product:04}","category":"Coffee Beans","name":"Dark Roast {product}","price":12.5,"currency":"USD"}}"#)
                                .into(),
                        );
                    }
                    batch
                },
                |batch| {
                    let mut facts = FactBatch::default();
                    for m in batch {
                        live.apply_message(m, &mut facts);
                    }
                    facts
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("sqlite_commit");
    group.throughput(Throughput::Elements(GROUP as u64));
    group.sample_size(20);
    for sync in [SyncMode::Full, SyncMode::Normal] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(dir.path(), sync).expect("store");
        let mut live = LiveState::new(LiveConfig { consent_mode: ConsentMode::OptIn, ..LiveConfig::default() });
        let mut offset = 0;
        group.bench_function(format!("commit_10k_events_sync_{sync:?}").to_lowercase(), |b| {
            b.iter_batched(
                || {
                    offset += GROUP;
                    let mut facts = FactBatch::default();
                    for m in messages(offset, GROUP) {
                        live.apply_message(m, &mut facts);
                    }
                    facts
                },
                |facts| store.commit(&facts).expect("commit"),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Membership lookup with 100 saved segments and 20,000 profiles: the decision path's cost.
fn segment_lookup(c: &mut Criterion) {
    let mut live = LiveState::new(LiveConfig { consent_mode: ConsentMode::OptOut, ..LiveConfig::default() });
    let mut facts = FactBatch::default();
    for i in 0..100 {
        let json = format!(
            r#"{{"id": "s{i}", "name": "S{i}", "purpose": "personalization", "condition": {{"event": {{"name": "Product Viewed", "count": {{"gte": {}}}, "within_days": 30}}}}}}"#,
            2 + i % 5
        );
        let definition = regard_core::segments::SegmentDefinition::parse_str(&json).expect("valid");
        live.save_segment(definition, json, 0, &mut facts);
    }
    // 100,000 views spread over 20,000 profiles (five each).
    for (i, mut m) in messages(0, 100_000).into_iter().enumerate() {
        m.anonymous_id = Some(format!("anon-{}", i % 20_000));
        live.apply_message(m, &mut facts);
    }
    let profile = live.find_profile("anon-5").map(|p| p.id).unwrap_or(1);
    c.bench_function("segment_membership_lookup_100_segments", |b| {
        b.iter(|| criterion::black_box(live.is_member(criterion::black_box(profile), criterion::black_box("s57"))))
    });
}

criterion_group!(benches, apply, apply_with_segments, commit, segment_lookup);
criterion_main!(benches);
