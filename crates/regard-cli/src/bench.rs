//! `regard bench ingest`: a load generator for ingestion over loopback HTTP.
//!
//! By default it starts `regard serve` as a child process on a temporary store (so the server
//! and the generator are separate processes sharing the machine, as in production on one
//! box), drives it for a fixed time with N keep-alive connections, and prints accepted
//! events/s and latency percentiles.

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;

/// Flags of `regard bench ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestBenchArgs {
    /// Base URL of a running server; default: start one on a temporary store.
    #[arg(long)]
    pub url: Option<String>,
    /// Write key of that server.
    #[arg(long, env = "REGARD_WRITE_KEY")]
    pub write_key: Option<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Messages per `/v1/batch` request (ignored in track mode).
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// `batch` (POST /v1/batch) or `track` (one POST /v1/track per event).
    #[arg(long, value_enum, default_value = "batch")]
    pub mode: IngestMode,
    /// Sync mode of the spawned server (`full` or `normal`).
    #[arg(long, default_value = "full")]
    pub sync: String,
    /// Distinct users the messages come from.
    #[arg(long, default_value_t = 100_000)]
    pub users: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Saved segments to create on the server before the load (a realistic mix: a quarter
    /// count the benchmark's own event, the rest other events, traits and visits).
    #[arg(long, default_value_t = 0)]
    pub segments: usize,
    /// Admin key of the server (with --url and --segments).
    #[arg(long, env = "REGARD_ADMIN_KEY")]
    pub admin_key: Option<String>,
}

/// The i-th benchmark segment.
fn bench_segment(i: usize) -> serde_json::Value {
    let countries = ["DE", "US", "FR", "GB"];
    let categories = ["Coffee Beans", "Tea", "Running Shoes", "Mattresses", "Garden", "Books"];
    let condition = match i % 4 {
        0 => serde_json::json!({"catalog": {"category": categories[i % categories.len()], "event": "Product Viewed",
                "count": {"gte": 2 + i % 5}, "within_days": 7 + i % 30}}),
        1 => serde_json::json!({"purchases": {"count": {"gte": 1 + i % 4}, "last_before_days": 30 + i}}),
        2 => {
            serde_json::json!({"sequence": {"first": {"name": "Product Added", "within_days": 1 + i % 14}, "then_never": {"name": "Order Completed"}}})
        }
        _ => serde_json::json!({"any": [{"trait": {"name": "country", "op": "equals", "value": countries[i % 4]}},
                                         {"visitor": "returning"}]}),
    };
    serde_json::json!({"id": format!("bench-{i}"), "name": format!("Bench segment {i}"), "purpose": "personalization", "condition": condition})
}

/// What the generator sends.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum IngestMode {
    /// Batches through `/v1/batch`.
    Batch,
    /// Single events through `/v1/track`.
    Track,
}

const BENCH_ADMIN_KEY: &str = "bench-admin-key";

struct SpawnedServer {
    child: Child,
    _dir: tempfile_dir::TempDir,
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny temporary-directory guard, so the binary does not depend on a test crate.
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> std::io::Result<TempDir> {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&path)?;
            Ok(TempDir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn spawn_server(sync: &str) -> anyhow::Result<(SpawnedServer, String, String)> {
    let dir = tempfile_dir::TempDir::new("regard-bench")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let write_key = "bench-write-key".to_owned();
    let child = Command::new(std::env::current_exe()?)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--consent-mode",
            "opt-out",
            "--sync",
            sync,
            "--data",
        ])
        .arg(dir.path())
        .env("REGARD_WRITE_KEY", &write_key)
        .env("REGARD_ADMIN_KEY", BENCH_ADMIN_KEY)
        .env("REGARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting regard serve")?;
    let server = SpawnedServer { child, _dir: dir };
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the spawned server did not start listening within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((server, url, write_key))
}

/// Appends one realistic track message (about 480 bytes) to `out`.
fn write_message(out: &mut String, connection: usize, n: u64, users: u64) {
    let user = (n.wrapping_mul(2_654_435_761) ^ connection as u64) % users.max(1);
    let product = n % 500;
    let _ = write!(
        out,
        r#"{{"type":"track","event":"Product Viewed","messageId":"bench-{connection}-{n}","anonymousId":"anon-{user:08}","userId":"user-{user:08}","timestamp":"2026-11-01T12:00:00.000Z","properties":{{"product_id":"sku-{product:04}","category":"Coffee Beans","name":"Dark Roast {product}","price":12.5,"currency":"USD"}},"context":{{"ip":"192.0.2.7","locale":"en-US","timezone":"America/New_York","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","page":{{"path":"/p/sku-{product:04}","url":"https://demo.regard.shop/p/sku-{product:04}","referrer":"https://www.google.com/"}}}}}}"#
    );
}

struct Totals {
    requests: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
}

/// `regard bench ingest`.
pub fn ingest(args: IngestBenchArgs) -> anyhow::Result<()> {
    let (_server, url, write_key) = match &args.url {
        Some(url) => {
            let key = args.write_key.clone().context("--write-key (or REGARD_WRITE_KEY) is needed with --url")?;
            (None, url.trim_end_matches('/').to_owned(), key)
        }
        None => {
            let (server, url, key) = spawn_server(&args.sync)?;
            (Some(server), url, key)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.segments > 0 {
        let admin_key = match &args.url {
            Some(_) => args
                .admin_key
                .clone()
                .context("--admin-key (or REGARD_ADMIN_KEY) is needed with --url and --segments")?,
            None => BENCH_ADMIN_KEY.to_owned(),
        };
        runtime.block_on(async {
            let client = reqwest::Client::new();
            for i in 0..args.segments {
                let response = client
                    .post(format!("{url}/v1/segments"))
                    .bearer_auth(&admin_key)
                    .json(&bench_segment(i))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("creating segment {i}: {} {}", response.status(), response.text().await.unwrap_or_default());
                }
            }
            Ok(())
        })?;
    }
    let report = runtime.block_on(run_load(&args, &url, &write_key))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "ingest bench: mode={:?} segments={} connections={} batch={} measured={}s server={}",
            args.mode,
            args.segments,
            args.connections,
            if args.mode == IngestMode::Batch { args.batch_size } else { 1 },
            args.duration,
            match &args.url {
                Some(url) => url.clone(),
                None => format!("spawned child process (sync={})", args.sync),
            }
        );
        println!(
            "  accepted events/s: {:.0}   requests/s: {:.0}   errors: {}",
            report["events_per_sec"].as_f64().unwrap_or(0.0),
            report["requests_per_sec"].as_f64().unwrap_or(0.0),
            report["errors"]
        );
        println!(
            "  request latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            report["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p90"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p999"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["max"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}

async fn run_load(args: &IngestBenchArgs, url: &str, write_key: &str) -> anyhow::Result<serde_json::Value> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
    let endpoint = match args.mode {
        IngestMode::Batch => format!("{url}/v1/batch"),
        IngestMode::Track => format!("{url}/v1/track"),
    };
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals { requests: AtomicU64::new(0), events: AtomicU64::new(0), errors: AtomicU64::new(0) });
    let mut tasks = Vec::new();
    for connection in 0..args.connections.max(1) {
        let client = client.clone();
        let endpoint = endpoint.clone();
        let write_key = write_key.to_owned();
        let measuring = Arc::clone(&measuring);
        let stop = Arc::clone(&stop);
        let totals = Arc::clone(&totals);
        let batch_size = if args.mode == IngestMode::Batch { args.batch_size.max(1) } else { 1 };
        let mode = args.mode;
        let users = args.users;
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
            let mut n = 0u64;
            let mut body = String::with_capacity(batch_size * 520 + 64);
            while !stop.load(Ordering::Relaxed) {
                body.clear();
                if mode == IngestMode::Batch {
                    body.push_str(r#"{"batch":["#);
                    for i in 0..batch_size {
                        if i > 0 {
                            body.push(',');
                        }
                        write_message(&mut body, connection, n, users);
                        n += 1;
                    }
                    body.push_str("]}");
                } else {
                    write_message(&mut body, connection, n, users);
                    n += 1;
                }
                let started = Instant::now();
                let result = client
                    .post(&endpoint)
                    .basic_auth(&write_key, Some(""))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let ok = matches!(&result, Ok(r) if r.status().is_success());
                if let Ok(response) = result {
                    let _ = response.bytes().await;
                }
                if measuring.load(Ordering::Relaxed) {
                    let _ = latency.record(started.elapsed().as_micros().max(1) as u64);
                    totals.requests.fetch_add(1, Ordering::Relaxed);
                    if ok {
                        totals.events.fetch_add(batch_size as u64, Ordering::Relaxed);
                    } else {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latency
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration.max(1))).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for task in tasks {
        latency.add(task.await?)?;
    }
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(serde_json::json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "connections": args.connections,
        "batch_size": if args.mode == IngestMode::Batch { args.batch_size } else { 1 },
        "seconds": elapsed,
        "requests": totals.requests.load(Ordering::Relaxed),
        "events": totals.events.load(Ordering::Relaxed),
        "errors": totals.errors.load(Ordering::Relaxed),
        "events_per_sec": totals.events.load(Ordering::Relaxed) as f64 / elapsed,
        "requests_per_sec": totals.requests.load(Ordering::Relaxed) as f64 / elapsed,
        "latency_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p999": ms(0.999), "max": latency.max() as f64 / 1000.0},
    }))
}

/// Flags of `regard bench profiles`.
#[derive(Debug, Clone, Args)]
pub struct ProfilesBenchArgs {
    /// Profiles to build.
    #[arg(long, default_value_t = 1_000_000)]
    pub profiles: usize,
    /// Stored events per profile (their timeline entries are part of the hot state).
    #[arg(long, default_value_t = 20)]
    pub events_per_profile: usize,
}

fn resident_bytes() -> u64 {
    // /proc/self/statm: size resident shared text lib data dt, in pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// `regard bench profiles`: builds N identified profiles with typical traits, consent and
/// events in a live state (no disk), and reports resident memory per profile.
pub fn profiles(args: ProfilesBenchArgs) -> anyhow::Result<()> {
    use regard_core::facts::FactBatch;
    use regard_core::live::{LiveConfig, LiveState};
    use regard_core::message::{Message, MessageContext, MessageKind};
    let before = resident_bytes();
    let mut live =
        LiveState::new(LiveConfig { consent_mode: regard_core::consent::ConsentMode::OptIn, ..LiveConfig::default() });
    let started = Instant::now();
    let consent =
        vec![("Analytics".to_owned(), true), ("Personalization".to_owned(), true), ("Email".to_owned(), false)];
    let mut facts = FactBatch::default();
    let mut n = 0u64;
    for p in 0..args.profiles {
        let traits = serde_json::json!({"name": format!("User {p}"), "email": format!("user{p}@example.com"), "country": "DE",
            "city": "Berlin", "locale": "de-DE", "currency": "EUR", "timezone": "Europe/Berlin", "birthday": "1990-04-01"});
        let identify = Message {
            kind: MessageKind::Identify,
            message_id: format!("i{p}"),
            user_id: Some(format!("user-{p:08}")),
            anonymous_id: Some(format!("anon-{p:08}-6f1c-4c2e-9a57")),
            previous_id: None,
            group_id: None,
            name: None,
            timestamp_ms: 1_700_000_000_000,
            received_at_ms: 1_700_000_000_000,
            traits: traits.as_object().cloned(),
            properties: None,
            context: MessageContext { consent_categories: consent.clone(), ..MessageContext::default() },
            raw: "{}".into(),
        };
        live.apply_message(identify, &mut facts);
        for e in 0..args.events_per_profile {
            n += 1;
            let name = ["Product Viewed", "Product Added", "Order Completed", "Products Searched"][e % 4];
            let track = Message {
                kind: MessageKind::Track,
                message_id: format!("e{n}"),
                user_id: Some(format!("user-{p:08}")),
                anonymous_id: None,
                previous_id: None,
                group_id: None,
                name: Some(name.to_owned()),
                timestamp_ms: 1_700_000_000_000 + e as i64 * 3_600_000,
                received_at_ms: 1_700_000_000_000,
                traits: None,
                properties: None,
                context: MessageContext::default(),
                raw: "{}".into(),
            };
            live.apply_message(track, &mut facts);
        }
        // Facts would go to disk; drop them so only the live state is measured.
        facts.clear();
    }
    let elapsed = started.elapsed();
    let after = resident_bytes();
    let dedup = live.remembered_message_ids();
    let approx: usize = live.profiles().map(|p| p.approx_bytes(&live.symbols)).sum();
    let per_profile_rss = (after.saturating_sub(before)) as f64 / args.profiles.max(1) as f64;
    println!(
        "profiles bench: {} profiles x {} events built in {:.2} s",
        args.profiles,
        args.events_per_profile,
        elapsed.as_secs_f64()
    );
    println!(
        "  resident memory: {:.0} bytes/profile (whole process delta, includes the identity index and {} remembered messageIds)",
        per_profile_rss, dedup
    );
    println!(
        "  profile structs alone (counted capacities): {:.0} bytes/profile, of which timeline {} bytes/event",
        approx as f64 / args.profiles.max(1) as f64,
        std::mem::size_of::<regard_core::profile::TimelineEntry>()
    );
    Ok(())
}
