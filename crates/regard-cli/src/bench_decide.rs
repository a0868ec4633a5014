//! `regard bench decide`: decisions per second and latency on the demo store, over loopback.
//!
//! It builds the demo store if the data directory has none (`regard demo --no-serve`), starts
//! `regard serve` on it as a child process, and runs two phases against `/v1/decide` with three
//! slots per request for the demo's customers, returning visitors and campaign arrivals:
//!
//! 1. **fixed rate** (open loop, default 5,000 requests/s): each request has a scheduled send
//!    time and its latency is counted from then, so a stall cannot hide queued requests
//!    (no coordinated omission). The server's own time per request comes from its
//!    `/metrics` histogram for the route.
//! 2. **saturation** (closed loop): N connections send as fast as answers come back.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;

/// Flags of `regard bench decide`.
#[derive(Debug, Clone, Args)]
pub struct DecideBenchArgs {
    /// The demo store to serve (built with `regard demo --no-serve` if absent).
    #[arg(long = "data", default_value = "./regard-demo-data")]
    pub data: std::path::PathBuf,
    /// Requests per second of the fixed-rate phase.
    #[arg(long, default_value_t = 5_000)]
    pub rate: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before each phase is measured.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Slots per request.
    #[arg(long, value_delimiter = ',', default_value = "home_hero,home_banner,product_row")]
    pub slots: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

struct Server {
    child: std::process::Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(args: &DecideBenchArgs) -> anyhow::Result<(Server, String, String, String)> {
    let exe = std::env::current_exe()?;
    if !args.data.join(crate::config::KEYS_FILE).exists() {
        eprintln!("building the demo store in {} ...", args.data.display());
        let status = Command::new(&exe)
            .args(["demo", "--no-serve", "--data"])
            .arg(&args.data)
            .env("REGARD_LOG", "warn")
            .stdout(Stdio::null())
            .status()
            .context("running regard demo")?;
        if !status.success() {
            bail!("regard demo --no-serve failed");
        }
    }
    let keys = crate::config::load_or_create_keys(&args.data)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(&exe)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&args.data)
        .env("REGARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting regard serve")?;
    let server = Server { child };
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("the server did not start listening within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((server, format!("http://127.0.0.1:{port}"), keys.write_key, keys.user_token_secret))
}

/// The i-th request body: demo customers (some returning, some arriving from a campaign, some on
/// phones), each with the signed user token their shop's backend would hand the browser (so the
/// server verifies it, as in production), and a share of visitors the store has never seen.
fn request_body(i: u64, slots: &[String], token_secret: Option<&str>) -> String {
    let user = (i.wrapping_mul(2_654_435_761) % 5_000) + 1;
    let who = if i % 10 == 9 {
        format!(r#""anonymousId":"bench-visitor-{i}""#)
    } else {
        let user_id = format!("user-{user:05}");
        match token_secret {
            Some(secret) => {
                let expires = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() + 86_400)
                    .unwrap_or(u64::MAX / 2);
                let token = regard_server::user_token::sign(secret, &user_id, expires);
                format!(r#""userId":"{user_id}","userToken":"{token}""#)
            }
            None => format!(r#""userId":"{user_id}""#),
        }
    };
    let url = match i % 4 {
        0 => "https://demo.regard.shop/?utm_source=google&utm_medium=cpc&utm_campaign=running-shoes",
        1 => "https://demo.regard.shop/?utm_source=newsletter&utm_medium=email&utm_campaign=coffee-club",
        _ => "https://demo.regard.shop/",
    };
    let agent = if i.is_multiple_of(3) {
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
    } else {
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
    };
    let slots = slots.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(",");
    format!(
        r#"{{{who},"slots":[{slots}],"context":{{"page":{{"url":"{url}","path":"/","referrer":"https://www.google.com/"}},"userAgent":"{agent}","locale":"en-US","timezone":"America/New_York"}}}}"#
    )
}

/// The server's histogram of `/v1/decide` as (bucket bound in seconds, cumulative count).
async fn server_histogram(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<(f64, u64)>> {
    let text = client.get(format!("{url}/metrics")).send().await?.text().await?;
    let prefix = "regard_http_request_duration_seconds_bucket{route=\"/v1/decide\",le=\"";
    let mut buckets = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(prefix) {
            let (bound, count) = rest.split_once("\"} ").context("metrics line")?;
            let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse()? };
            buckets.push((bound, count.trim().parse()?));
        }
    }
    Ok(buckets)
}

/// The smallest bucket bound under which `q` of the requests between two scrapes fell.
fn server_quantile(before: &[(f64, u64)], after: &[(f64, u64)], q: f64) -> Option<(f64, f64)> {
    let count = |list: &[(f64, u64)], bound: f64| list.iter().find(|(b, _)| *b == bound).map_or(0, |(_, c)| *c);
    let total = after.last().map(|(_, c)| *c)?.saturating_sub(before.last().map_or(0, |(_, c)| *c));
    if total == 0 {
        return None;
    }
    for (bound, cumulative) in after {
        let n = cumulative.saturating_sub(count(before, *bound));
        if n as f64 >= q * total as f64 {
            let under_1ms = after
                .iter()
                .find(|(b, _)| *b == 0.001)
                .map(|(_, c)| c.saturating_sub(count(before, 0.001)) as f64 / total as f64)
                .unwrap_or(0.0);
            return Some((*bound, under_1ms));
        }
    }
    None
}

struct Phase {
    requests: u64,
    errors: u64,
    seconds: f64,
    latency: Histogram<u64>,
}

async fn run_phase(
    client: &reqwest::Client,
    url: &str,
    write_key: &str,
    token_secret: &str,
    args: &DecideBenchArgs,
    rate: Option<u64>,
) -> anyhow::Result<Phase> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let connections = args.connections.max(1);
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let (client, endpoint, key) = (client.clone(), format!("{url}/v1/decide"), write_key.to_owned());
        let (measuring, stop, requests, errors) = (measuring.clone(), stop.clone(), requests.clone(), errors.clone());
        let slots = args.slots.clone();
        let token_secret = token_secret.to_owned();
        // Each connection sends every `interval`, offset so the connections interleave.
        let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r.max(1) as f64));
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut i = connection as u64;
            let start =
                Instant::now() + interval.map_or(Duration::ZERO, |d| d.mul_f64(connection as f64 / connections as f64));
            let mut next = start;
            while !stop.load(Ordering::Relaxed) {
                let scheduled = match interval {
                    Some(interval) => {
                        let now = Instant::now();
                        if next > now {
                            tokio::time::sleep(next - now).await;
                        }
                        let at = next;
                        next += interval;
                        at
                    }
                    None => Instant::now(),
                };
                let body = request_body(i, &slots, Some(&token_secret));
                i += connections as u64;
                let result = client
                    .post(&endpoint)
                    .basic_auth(&key, Some(""))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match result {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let _ = response.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    let _ = latency.record(scheduled.elapsed().as_micros().max(1) as u64);
                    requests.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
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
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for task in tasks {
        latency.add(task.await?)?;
    }
    Ok(Phase { requests: requests.load(Ordering::Relaxed), errors: errors.load(Ordering::Relaxed), seconds, latency })
}

/// `regard bench decide`.
pub fn decide(args: DecideBenchArgs) -> anyhow::Result<()> {
    let (_server, url, write_key, token_secret) = start_server(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
        // One request up front: the slots must exist (the demo installs them).
        let probe = client
            .post(format!("{url}/v1/decide"))
            .basic_auth(&write_key, Some(""))
            .body(request_body(0, &args.slots, Some(&token_secret)))
            .send()
            .await?;
        if !probe.status().is_success() {
            bail!("decide failed: {} {}", probe.status(), probe.text().await.unwrap_or_default());
        }
        let before = server_histogram(&client, &url).await?;
        let fixed = run_phase(&client, &url, &write_key, &token_secret, &args, Some(args.rate)).await?;
        let after = server_histogram(&client, &url).await?;
        let saturated = run_phase(&client, &url, &write_key, &token_secret, &args, None).await?;
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let server = server_quantile(&before, &after, 0.99);
        let slots = args.slots.len() as f64;
        Ok::<_, anyhow::Error>(serde_json::json!({
            "slots_per_request": args.slots.len(),
            "connections": args.connections,
            "fixed_rate": {
                "target_requests_per_sec": args.rate,
                "requests_per_sec": fixed.requests as f64 / fixed.seconds,
                "errors": fixed.errors,
                "client_latency_ms": {"p50": ms(&fixed.latency, 0.5), "p99": ms(&fixed.latency, 0.99),
                                      "p999": ms(&fixed.latency, 0.999), "max": fixed.latency.max() as f64 / 1000.0},
                "server_p99_at_most_ms": server.map(|(bound, _)| bound * 1000.0),
                "server_share_under_1ms": server.map(|(_, share)| share),
            },
            "saturation": {
                "requests_per_sec": saturated.requests as f64 / saturated.seconds,
                "decisions_per_sec": saturated.requests as f64 * slots / saturated.seconds,
                "errors": saturated.errors,
                "client_latency_ms": {"p50": ms(&saturated.latency, 0.5), "p99": ms(&saturated.latency, 0.99)},
            },
        }))
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let f = &report["fixed_rate"];
    let s = &report["saturation"];
    println!(
        "decide bench: {} slots/request, {} connections, {} s per phase, demo store {}",
        args.slots.len(),
        args.connections,
        args.duration,
        args.data.display()
    );
    println!(
        "  fixed rate {} req/s: achieved {:.0} req/s, errors {}; client latency ms p50 {:.3} p99 {:.3} p99.9 {:.3}; \
         server p99 <= {} ms ({:.2}% under 1 ms)",
        args.rate,
        f["requests_per_sec"].as_f64().unwrap_or(0.0),
        f["errors"],
        f["client_latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        f["client_latency_ms"]["p99"].as_f64().unwrap_or(0.0),
        f["client_latency_ms"]["p999"].as_f64().unwrap_or(0.0),
        f["server_p99_at_most_ms"].as_f64().map_or("?".to_owned(), |v| format!("{v}")),
        f["server_share_under_1ms"].as_f64().unwrap_or(0.0) * 100.0,
    );
    println!(
        "  saturation: {:.0} req/s = {:.0} decisions/s, errors {}; client latency ms p50 {:.3} p99 {:.3}",
        s["requests_per_sec"].as_f64().unwrap_or(0.0),
        s["decisions_per_sec"].as_f64().unwrap_or(0.0),
        s["errors"],
        s["client_latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        s["client_latency_ms"]["p99"].as_f64().unwrap_or(0.0),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_are_valid_json_with_the_slots() {
        for i in 0..20 {
            let body: serde_json::Value =
                serde_json::from_str(&request_body(i, &["a".into(), "b".into()], Some("a-secret-of-16+chars")))
                    .unwrap();
            assert_eq!(body["slots"], serde_json::json!(["a", "b"]));
            assert!(body.get("userId").is_some() || body.get("anonymousId").is_some());
        }
    }

    #[test]
    fn server_quantiles_come_from_bucket_differences() {
        let before = vec![(0.0005, 10), (0.001, 10), (f64::INFINITY, 10)];
        let after = vec![(0.0005, 100), (0.001, 109), (f64::INFINITY, 110)];
        // 100 new requests: 90 under 0.5 ms, 99 under 1 ms, 100 in all.
        assert_eq!(server_quantile(&before, &after, 0.9), Some((0.0005, 0.99)));
        assert_eq!(server_quantile(&before, &after, 0.99), Some((0.001, 0.99)));
        assert_eq!(server_quantile(&after, &after, 0.99), None);
    }
}
