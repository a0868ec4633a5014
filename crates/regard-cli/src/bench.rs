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

impl SpawnedServer {
    fn pid(&self) -> u32 {
        self.child.id()
    }
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

/// CPU time (user + system, in clock ticks of 10 ms) a process has used, and the part its
/// writer thread used: per accepted event, these say what ingestion costs whatever else the
/// machine is running, which throughput alone does not.
fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let ticks = |stat: &str| -> Option<u64> {
        // Fields after the `(command)`: state is 0, utime 11, stime 12.
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    };
    let total = ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let mut writer = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        if stat.contains("(regard-writer)") {
            writer += ticks(&stat).unwrap_or(0);
        }
    }
    Some((total, writer))
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
    let server_pid = _server.as_ref().map(SpawnedServer::pid);
    let mut report = runtime.block_on(run_load(&args, &url, &write_key, server_pid))?;
    if let (Some(events), Some(map)) = (report["events"].as_u64(), report.as_object_mut()) {
        let per_event = |key: &str| {
            map.get(key).and_then(serde_json::Value::as_u64).map(|ticks| ticks as f64 * 1e4 / events.max(1) as f64)
        };
        let (server_us, writer_us) = (per_event("server_cpu_ticks"), per_event("writer_cpu_ticks"));
        map.insert("server_cpu_us_per_event".into(), serde_json::json!(server_us));
        map.insert("writer_cpu_us_per_event".into(), serde_json::json!(writer_us));
    }
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
        if let (Some(server), Some(writer)) =
            (report["server_cpu_us_per_event"].as_f64(), report["writer_cpu_us_per_event"].as_f64())
        {
            println!("  server CPU per accepted event: {server:.2} µs, of which the writer thread {writer:.2} µs");
        }
    }
    Ok(())
}

async fn run_load(
    args: &IngestBenchArgs,
    url: &str,
    write_key: &str,
    server_pid: Option<u32>,
) -> anyhow::Result<serde_json::Value> {
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
    let cpu_before = server_pid.and_then(cpu_ticks);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration.max(1))).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = server_pid.and_then(cpu_ticks);
    let cpu = cpu_before.zip(cpu_after).map(|(b, a)| (a.0.saturating_sub(b.0), a.1.saturating_sub(b.1)));
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
        "server_cpu_ticks": cpu.map(|c| c.0),
        "writer_cpu_ticks": cpu.map(|c| c.1),
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

/// Flags of `regard bench backfill`.
#[derive(Debug, Clone, Args)]
pub struct BackfillBenchArgs {
    /// Stored events to backfill over: the demo shop is generated with enough people for about
    /// this many (the exact count is printed).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Segments saved at once (the first N of the benchmark's ten).
    #[arg(long, default_value_t = 10)]
    pub segments: usize,
    /// Data directory to build the shop in, or to reuse when it holds one from an earlier run
    /// (the benchmark's segments are removed at the end); default: a temporary directory.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// Threads the backfill scans the log with (default: the engine's, up to 4).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Skip the SQL comparison.
    #[arg(long)]
    pub no_sql: bool,
    /// Do not ingest while the backfill runs (by default one client keeps sending batches).
    #[arg(long)]
    pub no_ingest: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The benchmark's ten segments: the five built-ins that count events, three catalog
/// interests, a checkout sequence and a property filter. Between them they read every
/// "Product Viewed", "Product Added", "Checkout Started" and "Order Completed" in the log, most
/// of them decompressed and their properties parsed.
pub const BACKFILL_SEGMENTS: [&str; 10] = [
    regard_core::segments::builtin::BUILTIN_SEGMENTS[2],
    regard_core::segments::builtin::BUILTIN_SEGMENTS[3],
    regard_core::segments::builtin::BUILTIN_SEGMENTS[4],
    regard_core::segments::builtin::BUILTIN_SEGMENTS[5],
    regard_core::segments::builtin::BUILTIN_SEGMENTS[6],
    r#"{"id": "coffee-fans", "name": "Coffee fans", "purpose": "personalization",
        "condition": {"catalog": {"category": "Coffee & Tea", "count": {"gte": 3}, "within_days": 30, "min_distinct_days": 2}}}"#,
    r#"{"id": "runners", "name": "Runners", "purpose": "personalization",
        "condition": {"catalog": {"category": "Running Shoes", "count": {"gte": 2}, "within_days": 60}}}"#,
    r#"{"id": "bedroom-shoppers", "name": "Bedroom shoppers", "purpose": "email",
        "condition": {"catalog": {"category": "Bedroom", "event": "Product Added", "count": {"gte": 2}, "within_days": 90}}}"#,
    r#"{"id": "checkout-abandoners", "name": "Checkout abandoners", "purpose": "email",
        "condition": {"sequence": {"first": {"name": "Checkout Started", "within_days": 14}, "then_never": {"name": "Order Completed"}}}}"#,
    r#"{"id": "big-spenders", "name": "Big spenders", "purpose": "personalization",
        "condition": {"event": {"name": "Order Completed", "where": [{"property": "revenue", "op": "gte", "value": 150}], "count": {"gte": 2}}}}"#,
];

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Stored events per person in the demo shop (305,088 stored of 5,000 people).
const DEMO_EVENTS_PER_USER: f64 = 61.0;

/// Fills an empty store with the demo shop, sized for about `events` stored events, through
/// the import path (dictionary compression included, as a real store).
fn generate_shop(engine: &regard_store::Engine, events: u64, quiet: bool) -> anyhow::Result<()> {
    let end_ms = now_ms().div_euclid(regard_core::time::DAY_MS) * regard_core::time::DAY_MS;
    let n_users = ((events as f64 / DEMO_EVENTS_PER_USER).ceil() as usize).max(10);
    let started = Instant::now();
    let shop =
        regard_demo::generate(&regard_demo::DemoConfig { end_ms, n_users, ..regard_demo::DemoConfig::default() });
    if !quiet {
        eprintln!(
            "generated the demo shop for {n_users} people ({} messages) in {:.1} s; loading it",
            shop.messages.len(),
            started.elapsed().as_secs_f64()
        );
    }
    let step = (shop.messages.len() / regard_store::codec::TRAINING_SAMPLES).max(1);
    let samples: Vec<String> =
        shop.messages.iter().step_by(step).take(regard_store::codec::TRAINING_SAMPLES).cloned().collect();
    engine.prime_dictionary_blocking(&samples).context("training the compression dictionary")?;
    engine.upsert_products_blocking(shop.products).context("storing the catalog")?;
    let mut text = String::with_capacity(shop.messages.iter().map(|m| m.len() + 1).sum());
    for message in &shop.messages {
        text.push_str(message);
        text.push('\n');
    }
    drop(shop.messages);
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(text.len() as u64) };
    let summary = crate::import::ingest_lines(engine, Box::new(std::io::Cursor::new(text.into_bytes())), &bar)?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!("stored {} events in {:.1} s", summary.stored, summary.elapsed.as_secs_f64());
    }
    Ok(())
}

/// Ingests batches of 100 views (with consent, so they are stored) until `stop`, through the
/// engine as the HTTP edge does; returns the events stored and the longest wait for an
/// acknowledgement, in ms.
fn live_load(engine: &regard_store::Engine, stop: &AtomicBool) -> anyhow::Result<(u64, f64)> {
    use regard_core::message::{Message, MessageContext, MessageKind};
    let (mut n, mut stored, mut longest_ms) = (0u64, 0u64, 0.0f64);
    let now = now_ms();
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<Message> = (0..100)
            .map(|_| {
                n += 1;
                let user = format!("live-{:04}", n % 1_000);
                let text = format!(
                    r#"{{"type":"track","event":"Product Viewed","messageId":"live-{now}-{n}","userId":"{user}","properties":{{"product_id":"sku-0001"}}}}"#
                );
                Message {
                    kind: MessageKind::Track,
                    message_id: format!("live-{now}-{n}"),
                    user_id: Some(user),
                    anonymous_id: None,
                    previous_id: None,
                    group_id: None,
                    name: Some("Product Viewed".into()),
                    timestamp_ms: now,
                    received_at_ms: now,
                    traits: None,
                    properties: Some(r#"{"product_id":"sku-0001"}"#.into()),
                    context: MessageContext {
                        consent_categories: vec![("Analytics".into(), true), ("Personalization".into(), true)],
                        ..MessageContext::default()
                    },
                    raw: engine.compress(&text),
                }
            })
            .collect();
        let sent = Instant::now();
        stored += u64::from(engine.ingest_blocking(batch)?.stored);
        longest_ms = longest_ms.max(sent.elapsed().as_secs_f64() * 1e3);
    }
    Ok((stored, longest_ms))
}

/// One segment's figures in the backfill bench.
struct BackfillRow {
    id: String,
    members: usize,
    sql_members: Option<usize>,
    sql_mismatches: Option<usize>,
    sql_ms: Option<f64>,
}

/// `regard bench backfill`: the time to backfill N new segments at once over the stored
/// history, and the same segments computed by SQL over the same events.
pub fn backfill(args: BackfillBenchArgs) -> anyhow::Result<()> {
    use regard_core::facts::ProfileId;
    use regard_core::segments::{check_definition, PolicyConfig};
    use regard_store::backfill::SegmentState;
    use std::collections::HashSet;
    let n_segments = args.segments.clamp(1, BACKFILL_SEGMENTS.len());
    let temporary = match &args.data {
        Some(_) => None,
        None => Some(tempfile_dir::TempDir::new("regard-bench-backfill")?),
    };
    let dir = args.data.clone().unwrap_or_else(|| temporary.as_ref().map(|t| t.path().to_owned()).unwrap_or_default());
    let mut config = regard_store::EngineConfig::new(&dir);
    config.sync = regard_store::SyncMode::Off;
    if let Some(threads) = args.threads {
        config.backfill_threads = threads.max(1);
    }
    let mut definitions: Vec<_> = BACKFILL_SEGMENTS
        .iter()
        .map(|json| check_definition(json, &PolicyConfig::default()).map(|d| (d, (*json).to_owned())))
        .collect::<Result<_, _>>()?;
    let bench_ids: Vec<String> = definitions.iter().map(|(d, _)| d.id().as_str().to_owned()).collect();
    definitions.truncate(n_segments);
    let ids: Vec<String> = bench_ids[..n_segments].to_vec();
    let engine = regard_store::Engine::open(config, &mut |_| {})?;
    if engine.reader().event_count()? == 0 {
        generate_shop(&engine, args.events, args.json)?;
    }
    // Saved segments would share their indexed matches with the benchmark's and spare it the
    // scan: remove the benchmark's own from an earlier run, refuse any other.
    let saved: Vec<String> = engine.state().segments().map(|s| s.definition.id().as_str().to_owned()).collect();
    if let Some(other) = saved.iter().find(|id| !bench_ids.contains(id)) {
        bail!("{} holds the saved segment {other:?}; run the benchmark on a store without segments", dir.display());
    }
    if !saved.is_empty() {
        // Deleting them retires their matches, so saving again reads the log again.
        let at_ms = now_ms();
        engine.apply_blocking(move |live, facts| {
            for id in &saved {
                live.delete_segment(id, at_ms, facts);
            }
        })?;
    }
    let events = engine.reader().event_count()?;
    let profiles = engine.state().profile_count();

    // Ingestion goes on while the history is read: a client sends batches of 100 views and
    // the bench records how long each waited for its acknowledgement.
    let stop = AtomicBool::new(false);
    let (backfill_s, live_events, live_max_ms) = std::thread::scope(|scope| -> anyhow::Result<(f64, u64, f64)> {
        let client = scope.spawn(|| if args.no_ingest { Ok((0, 0.0)) } else { live_load(&engine, &stop) });
        let started = Instant::now();
        let waited = (|| -> anyhow::Result<f64> {
            engine.save_segments_blocking(definitions.clone(), now_ms())?;
            loop {
                let statuses: Vec<_> = ids.iter().filter_map(|id| engine.segment_status(id)).collect();
                if let Some(SegmentState::Failed(message)) =
                    statuses.iter().map(|s| &s.state).find(|s| matches!(s, SegmentState::Failed(_)))
                {
                    bail!("the backfill failed: {message}");
                }
                if statuses.len() == ids.len() && statuses.iter().all(|s| s.is_ready()) {
                    return Ok(started.elapsed().as_secs_f64());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })();
        stop.store(true, Ordering::Relaxed);
        let (events, max_ms) = client.join().map_err(|_| anyhow::anyhow!("the ingesting client panicked"))??;
        Ok((waited?, events, max_ms))
    })?;
    let status = engine.segment_status(&ids[0]).context("a benchmark segment vanished")?;
    let scan_s = status.started_ms.zip(status.scanned_ms).map(|(a, b)| (b - a) as f64 / 1e3);
    let mut rows: Vec<BackfillRow> = ids
        .iter()
        .map(|id| BackfillRow {
            id: id.clone(),
            members: engine.state().segment_size(id).unwrap_or(0),
            sql_members: None,
            sql_mismatches: None,
            sql_ms: None,
        })
        .collect();

    let mut sql_s = None;
    let mut sql_build_s = None;
    let mut sql_events = None;
    if !args.no_sql {
        let baseline = regard_store::sql_baseline::SqlBaseline::build(&engine, &dir.join("sql-baseline.sqlite3"))?;
        sql_build_s = Some(baseline.build.as_secs_f64());
        sql_events = Some(baseline.events);
        let now = now_ms();
        let mut total = 0.0;
        for ((definition, _), row) in definitions.iter().zip(rows.iter_mut()) {
            let Some(sql) = regard_store::sql_baseline::segment_sql(definition, now) else { continue };
            let (members, elapsed) = baseline.members(&sql)?;
            let ours: HashSet<ProfileId> =
                engine.state().segment_members(&row.id).unwrap_or_default().into_iter().collect();
            let theirs: HashSet<ProfileId> = members.iter().copied().collect();
            row.sql_members = Some(members.len());
            row.sql_mismatches = Some(ours.symmetric_difference(&theirs).count());
            row.sql_ms = Some(elapsed.as_secs_f64() * 1e3);
            total += elapsed.as_secs_f64();
        }
        sql_s = Some(total);
        drop(baseline);
        let _ = std::fs::remove_file(dir.join("sql-baseline.sqlite3"));
    }
    // Leave a reused store as it was found, so the next run backfills again.
    if args.data.is_some() {
        let (at_ms, remove) = (now_ms(), ids.clone());
        engine.apply_blocking(move |live, facts| {
            for id in &remove {
                live.delete_segment(id, at_ms, facts);
            }
        })?;
    }
    engine.shutdown();

    let report = serde_json::json!({
        "events": events,
        "profiles": profiles,
        "segments": n_segments,
        "scan_threads": status_threads(&args),
        "backfill_seconds": backfill_s,
        "ingested_during_backfill": live_events,
        "longest_ack_during_backfill_ms": live_max_ms,
        "scan_seconds": scan_s,
        "sql_seconds": sql_s,
        "sql_build_seconds": sql_build_s,
        "sql_events": sql_events,
        "sql_over_regard": sql_s.map(|s| s / backfill_s),
        "rows": rows.iter().map(|r| serde_json::json!({
            "id": r.id, "members": r.members, "sql_members": r.sql_members, "sql_mismatches": r.sql_mismatches, "sql_ms": r.sql_ms,
        })).collect::<Vec<_>>(),
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "backfill bench: {events} stored events, {profiles} profiles, {n_segments} segments saved at once, {} scan threads",
        status_threads(&args)
    );
    match scan_s {
        Some(scan) => println!(
            "  regard: ready in {backfill_s:.2} s (scan {scan:.2} s, merge and memberships {:.2} s)",
            (backfill_s - scan).max(0.0)
        ),
        None => println!("  regard: ready in {backfill_s:.2} s"),
    }
    if !args.no_ingest {
        println!(
            "  meanwhile one client ingested {live_events} events in batches of 100; longest wait for an ack {live_max_ms:.1} ms"
        );
    }
    if let Some(sql) = sql_s {
        println!(
            "  SQL over the same {} events (uncompressed JSON, json_extract, one connection): {sql:.2} s = {:.1}x regard's time (copy built in {:.1} s, not counted)",
            sql_events.unwrap_or(0),
            sql / backfill_s,
            sql_build_s.unwrap_or(0.0)
        );
    }
    println!("  {:<22} {:>9} {:>9} {:>9} {:>10}", "segment", "members", "SQL", "differ", "SQL ms");
    for row in &rows {
        let show = |v: Option<usize>| v.map_or("-".to_owned(), |v| v.to_string());
        println!(
            "  {:<22} {:>9} {:>9} {:>9} {:>10}",
            row.id,
            row.members,
            show(row.sql_members),
            show(row.sql_mismatches),
            row.sql_ms.map_or("-".to_owned(), |ms| format!("{ms:.0}"))
        );
    }
    Ok(())
}

fn status_threads(args: &BackfillBenchArgs) -> usize {
    args.threads.unwrap_or_else(|| regard_store::EngineConfig::new(".").backfill_threads)
}
