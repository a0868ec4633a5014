//! `regard segments list|show|create|preview`, and the built-in segments of the demo.
//!
//! `create` saves through the engine like the API does; the new segment's stored history is
//! then read by the engine's background backfill, and `create` follows it with a progress bar
//! until the segment is ready (`--no-wait` returns at once: the backfill then stops with the
//! process and is redone when the store next opens, whose start-up rebuilds the index).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use regard_core::segments::builtin::BUILTIN_SEGMENTS;
use regard_core::segments::{check_definition, PolicyConfig, SaveError, SegmentDefinition};
use regard_store::backfill::SegmentState;
use regard_store::Engine;

use crate::config::StoreArgs;
use crate::serve::open_engine;

fn read_definition(file: &Path, policy: &PolicyConfig) -> anyhow::Result<(SegmentDefinition, String)> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    match check_definition(&text, policy) {
        Ok(definition) => Ok((definition, text)),
        Err(SaveError::Policy(violations)) => {
            for violation in &violations {
                eprintln!("refused: {violation}");
            }
            anyhow::bail!(
                "{}: the policy check refused the definition ({} violations)",
                file.display(),
                violations.len()
            );
        }
        Err(error) => anyhow::bail!("{}: {error}", file.display()),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Saves definitions (already checked) through the writer in one step, so their backfills
/// share one pass over the log; returns each id with its version.
pub fn save_all(engine: &Engine, definitions: Vec<(SegmentDefinition, String)>) -> anyhow::Result<Vec<(String, u32)>> {
    let ids: Vec<String> = definitions.iter().map(|(d, _)| d.id().as_str().to_owned()).collect();
    let versions = engine.save_segments_blocking(definitions, now_ms()).context("saving segments")?;
    Ok(ids.into_iter().zip(versions).collect())
}

/// Waits until every segment in `ids` is ready, showing the backfill's progress on `bar`;
/// fails when a backfill does.
pub fn wait_ready(engine: &Engine, ids: &[String], bar: &ProgressBar) -> anyhow::Result<()> {
    loop {
        let mut waiting = None;
        for id in ids {
            let status = engine.segment_status(id).with_context(|| format!("segment {id:?} disappeared"))?;
            match &status.state {
                SegmentState::Ready => {}
                SegmentState::Failed(message) => {
                    bar.abandon();
                    anyhow::bail!("the backfill of segment {id} failed: {message}");
                }
                SegmentState::Backfilling => {
                    waiting.get_or_insert((id, status));
                }
            }
        }
        let Some((id, status)) = waiting else {
            bar.finish_and_clear();
            return Ok(());
        };
        bar.set_length(status.total.max(1));
        bar.set_position(status.scanned.min(status.total));
        bar.set_message(format!("{id}: {}", status.phase.map_or("backfilling", |p| p.as_str())));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn backfill_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(1);
    let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Saves the built-in segments that the store does not have yet and waits until they are
/// ready (the demo shows their members next); returns how many were saved.
pub fn install_builtins(engine: &Engine) -> anyhow::Result<usize> {
    let mut missing = Vec::new();
    for json in BUILTIN_SEGMENTS {
        let definition = check_definition(json, &engine.config().live.policy)?;
        if engine.state().segment(definition.id().as_str()).is_none() {
            missing.push((definition, json.to_owned()));
        }
    }
    let saved = save_all(engine, missing)?;
    let ids: Vec<String> = saved.iter().map(|(id, _)| id.clone()).collect();
    wait_ready(engine, &ids, &backfill_bar(true))?;
    Ok(saved.len())
}

/// `regard segments create FILE [--no-wait]`.
pub fn create(file: &Path, store: &StoreArgs, no_wait: bool) -> anyhow::Result<()> {
    let (definition, text) = read_definition(file, &*store.common.policy()?)?;
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    let started = Instant::now();
    let saved = save_all(&engine, vec![(definition, text)])?;
    for (id, version) in &saved {
        println!("saved segment {id} version {version}");
    }
    if !no_wait {
        let ids: Vec<String> = saved.iter().map(|(id, _)| id.clone()).collect();
        wait_ready(&engine, &ids, &backfill_bar(false))?;
        for id in &ids {
            let size = engine.state().segment_size(id).unwrap_or(0);
            let scanned = engine.segment_status(id).map_or(0, |s| s.scanned);
            println!(
                "segment {id} is ready: {size} members ({scanned} stored events covered, {:.2} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    engine.shutdown();
    Ok(())
}

/// `regard segments list`.
pub fn list(store: &StoreArgs) -> anyhow::Result<()> {
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    let live = engine.state();
    println!("{:<24} {:>3}  {:<16} name", "id", "v", "purpose");
    for segment in live.segments() {
        println!(
            "{:<24} {:>3}  {:<16} {}",
            segment.definition.id().as_str(),
            segment.version,
            segment.definition.purpose().consent_purpose().as_str(),
            segment.definition.name()
        );
    }
    Ok(())
}

/// `regard segments show ID`.
pub fn show(id: &str, store: &StoreArgs) -> anyhow::Result<()> {
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    let live = engine.state();
    let segment = live.segment(id).with_context(|| format!("no segment {id:?}"))?;
    let value: serde_json::Value = serde_json::from_str(&segment.definition_json)?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    println!("version {} saved {}", segment.version, regard_core::time::format_iso8601_ms(segment.updated_ms));
    Ok(())
}

/// `regard segments preview FILE`: prints the policy verdict, the size and sample members.
pub fn preview(file: &Path, store: &StoreArgs, sample: usize) -> anyhow::Result<()> {
    let (definition, _) = read_definition(file, &*store.common.policy()?)?;
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    let preview = regard_store::segments::preview(&engine, &definition, now_ms(), sample)?;
    println!(
        "{} ({}): policy check passed; {} members of {} eligible profiles ({} profiles, {} events scanned, {:.0} ms)",
        definition.name(),
        definition.id().as_str(),
        preview.size,
        preview.eligible,
        preview.profiles,
        preview.events_scanned,
        preview.elapsed.as_secs_f64() * 1e3
    );
    for member in &preview.sample {
        let who = member.user_id.clone().unwrap_or_else(|| format!("prof_{}", member.profile_id));
        println!("  {who}: {}", member.reasons.join(" "));
    }
    engine.shutdown();
    Ok(())
}
