//! `regard demo`: generates the demo shop (see the `regard-demo` crate), loads it through the
//! normal import path, and serves it.

use std::io::Cursor;

use anyhow::Context;
use regard_core::time::{parse_iso8601_ms, DAY_MS};
use regard_demo::{generate, DemoConfig};

use crate::config::{load_or_create_keys, DemoStoreArgs, ServerArgs};
use crate::import::ingest_lines;
use crate::serve::{open_engine, serve_engine};

/// Flags of `regard demo`.
#[derive(Debug)]
pub struct DemoArgs {
    pub store: DemoStoreArgs,
    pub server: ServerArgs,
    pub seed: u64,
    pub end_date: Option<String>,
    pub users: usize,
    pub fresh: bool,
    pub no_serve: bool,
    pub export: Option<std::path::PathBuf>,
}

fn end_of_history_ms(end_date: Option<&str>) -> anyhow::Result<i64> {
    match end_date {
        Some(text) => parse_iso8601_ms(text).with_context(|| format!("--end-date {text:?}: use YYYY-MM-DD")),
        None => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
            Ok(now.div_euclid(DAY_MS) * DAY_MS)
        }
    }
}

/// `regard demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let data = &args.store.data;
    if args.fresh && data.exists() {
        std::fs::remove_dir_all(data).with_context(|| format!("removing {}", data.display()))?;
    }
    let config = args.store.common.engine_config(data)?;
    let keys = load_or_create_keys(data)?;
    let engine = open_engine(config)?;
    let empty = engine.reader().event_count()? == 0 && engine.state().product_count() == 0;
    if empty {
        let end_ms = end_of_history_ms(args.end_date.as_deref())?;
        let demo_config = DemoConfig { seed: args.seed, end_ms, n_users: args.users, ..DemoConfig::default() };
        let started = std::time::Instant::now();
        let shop = generate(&demo_config);
        println!(
            "Generated the demo shop in {:.2} s: {} products, {} users, {} events (seed {}).",
            started.elapsed().as_secs_f64(),
            shop.products.len(),
            shop.summary.n_users,
            shop.messages.len(),
            args.seed
        );
        let step = (shop.messages.len() / regard_store::codec::TRAINING_SAMPLES).max(1);
        let samples: Vec<String> =
            shop.messages.iter().step_by(step).take(regard_store::codec::TRAINING_SAMPLES).cloned().collect();
        engine.prime_dictionary_blocking(&samples).context("training the compression dictionary")?;
        let mut text = String::with_capacity(shop.messages.iter().map(|m| m.len() + 1).sum());
        for message in &shop.messages {
            text.push_str(message);
            text.push('\n');
        }
        drop(shop.messages);
        if let Some(dir) = &args.export {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut catalog = String::new();
            for product in &shop.products {
                catalog.push_str(&serde_json::to_string(product)?);
                catalog.push('\n');
            }
            std::fs::write(dir.join("catalog.jsonl"), catalog).context("writing catalog.jsonl")?;
            std::fs::write(dir.join("events.jsonl"), &text).context("writing events.jsonl")?;
            println!("Wrote {0}/catalog.jsonl and {0}/events.jsonl.", dir.display());
        }
        engine.upsert_products_blocking(shop.products).context("storing the catalog")?;
        let bar = indicatif::ProgressBar::new(text.len() as u64);
        let summary = ingest_lines(&engine, Box::new(Cursor::new(text.into_bytes())), &bar)?;
        bar.finish_and_clear();
        println!(
            "Loaded {} events in {:.2} s: {} stored, {} kept only as counts (no analytics consent), {} rejected.",
            summary.lines,
            summary.elapsed.as_secs_f64(),
            summary.stored,
            summary.reduced,
            summary.rejected
        );
    } else {
        println!("Using the existing demo store in {} (pass --fresh to rebuild it).", data.display());
    }
    let installed = crate::segments::install_builtins(&engine)?;
    if installed > 0 {
        println!("Saved {installed} built-in segments (regard segments list).");
    }
    {
        let content = crate::serve::open_content(data, engine.config().live.policy.clone())?;
        let installed = crate::slots::install_demo(&engine, &content)?;
        content.store.shutdown();
        if installed > 0 {
            println!("Saved {installed} demo slot{} (regard slots list).", if installed == 1 { "" } else { "s" });
        }
    }
    let host = args.server.listen.clone();
    // Show a real, busy, identified customer rather than an id that may not exist.
    let showcase = {
        let live = engine.state();
        live.profiles()
            .filter_map(|p| p.user_id().map(|u| (p.timeline.len(), std::cmp::Reverse(u.to_owned()))))
            .max()
            .map(|(_, std::cmp::Reverse(user))| user)
            .unwrap_or_else(|| "user-00001".to_owned())
    };
    // With the write key, identified personalization needs a user token; the demo signs one
    // for its showcase customer (`regard token --user ID` signs others).
    let showcase_token = {
        let now_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        regard_server::user_token::sign(&keys.user_token_secret, &showcase, now_secs + 86_400)
    };
    println!();
    println!("Try it (admin key in {}/keys.json):", data.display());
    println!("  curl -H 'Authorization: Bearer {}' http://{host}/v1/profiles/{showcase}", keys.admin_key);
    println!("  curl -H 'Authorization: Bearer {}' http://{host}/v1/profiles/{showcase}/segments", keys.admin_key);
    println!("  curl -H 'Authorization: Bearer {}' http://{host}/v1/segments/lapsed-customers/members", keys.admin_key);
    println!(
        "  curl -u '{}:' http://{host}/v1/track -d '{{\"userId\":\"{showcase}\",\"event\":\"Product Viewed\"}}'",
        keys.write_key
    );
    println!(
        "  curl -u '{}:' -H 'X-Regard-User-Token: {showcase_token}' http://{host}/v1/decide -d '{{\"userId\":\"{showcase}\",\"slots\":[\"home_hero\",\"home_banner\",\"product_row\"]}}'",
        keys.write_key
    );
    println!(
        "  curl -u '{}:' -H 'X-Regard-User-Token: {showcase_token}' 'http://{host}/v1/recommendations?user={showcase}&n=4'   (once the model is trained, a few seconds after start)",
        keys.write_key
    );
    println!(
        "  curl -H 'Authorization: Bearer {}' http://{host}/v1/profiles/{showcase}/predictions   (churn risk, CLV, next order...)",
        keys.admin_key
    );
    println!("  curl -H 'Authorization: Bearer {}' http://{host}/v1/predictions/status", keys.admin_key);
    println!("  open http://{host}/shop   (the demo shop page, personalized by /regard.js; sign in as {showcase})");
    println!("  curl http://{host}/metrics");
    if args.no_serve {
        engine.shutdown();
        return Ok(());
    }
    let mut server = args.server.clone();
    server.demo_shop = true;
    server.demo_user = server.demo_user.or(Some(showcase));
    serve_engine(engine, keys, &server)
}
