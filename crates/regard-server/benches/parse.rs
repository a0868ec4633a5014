//! Criterion bench of parsing Segment wire JSON into domain messages (the edge's CPU cost per
//! event).

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use regard_core::message::MessageKind;
use regard_server::wire::{parse_batch, parse_message, MessageEnvelope};

const TRACK: &str = r#"{"type":"track","event":"Product Viewed","messageId":"m-1","anonymousId":"anon-1","userId":"user-1","timestamp":"2026-11-01T12:00:00.000Z","properties":{"product_id":"sku-0001","category":"Coffee Beans","name":"Dark Roast","price":12.5,"currency":"USD"},"context":{"ip":"192.0.2.7","locale":"en-US","timezone":"America/New_York","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","page":{"path":"/p/sku-0001","url":"https://demo.regard.shop/p/sku-0001","referrer":"https://www.google.com/"},"consent":{"categoryPreferences":{"Analytics":true,"Personalization":true,"Advertising":false,"Email":true,"Profiling":true}}}}"#;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    let envelope = MessageEnvelope {
        kind: Some(MessageKind::Track),
        received_at_ms: 0,
        batch_sent_at_ms: None,
        batch_context: None,
        encode: None,
    };
    group.bench_function("parse_track_message", |b| b.iter(|| parse_message(TRACK, envelope).expect("valid")));
    let body = format!(r#"{{"batch":[{}]}}"#, vec![TRACK; 100].join(","));
    group.throughput(Throughput::Elements(100));
    group.bench_function("parse_batch_of_100", |b| {
        b.iter(|| {
            let batch = parse_batch(&body).expect("batch");
            let envelope = MessageEnvelope {
                kind: None,
                received_at_ms: 0,
                batch_sent_at_ms: None,
                batch_context: None,
                encode: None,
            };
            batch.messages.iter().map(|m| parse_message(m.get(), envelope).expect("valid")).collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
