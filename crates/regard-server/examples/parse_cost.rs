//! Measures the edge's CPU per message on a JSON-lines file, single-threaded: parse only, and
//! parse plus dictionary compression.
//! `cargo run --release -p regard-server --example parse_cost -- FILE.jsonl`

use std::time::Instant;

use regard_server::wire::{parse_message, MessageEnvelope};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: parse_cost FILE.jsonl");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(path).expect("read the file");
    let lines: Vec<&str> = text.lines().take(100_000).collect();
    let envelope =
        MessageEnvelope { kind: None, received_at_ms: 0, batch_sent_at_ms: None, batch_context: None, encode: None };
    let started = Instant::now();
    let mut n = 0;
    for line in &lines {
        n += usize::from(parse_message(line, envelope).is_ok());
    }
    let parse = started.elapsed();
    let samples: Vec<String> = lines.iter().step_by(10).take(8_000).map(|s| s.to_string()).collect();
    let size: usize =
        std::env::var("DICT_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(regard_store::codec::DICTIONARY_BYTES);
    let dictionary = regard_store::codec::train_with_size(&samples, size).expect("train a dictionary");
    let codec = regard_store::codec::Codec::new(1, &dictionary);
    let encode = |t: &str| codec.compress(t);
    let envelope = MessageEnvelope { encode: Some(&encode), ..envelope };
    let started = Instant::now();
    let mut bytes = 0;
    for line in &lines {
        if let Ok(m) = parse_message(line, envelope) {
            bytes += m.message.raw.len();
        }
    }
    let both = started.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / lines.len() as f64;
    println!(
        "{n} messages of {:.0} bytes: parse {:.2} µs/message; parse + compress {:.2} µs/message ({:.0} bytes stored)",
        lines.iter().map(|l| l.len()).sum::<usize>() as f64 / lines.len() as f64,
        per(parse),
        per(both),
        bytes as f64 / lines.len() as f64
    );
}
