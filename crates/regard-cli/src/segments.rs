//! `regard segments list|show|create|preview`, and the built-in segments of the demo.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use regard_core::segments::builtin::BUILTIN_SEGMENTS;
use regard_core::segments::{check_definition, PolicyConfig, SaveError, SegmentDefinition};
use regard_store::Engine;

use crate::config::StoreArgs;
use crate::serve::open_engine;

fn read_definition(file: &Path) -> anyhow::Result<(SegmentDefinition, String)> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    match check_definition(&text, &PolicyConfig::default()) {
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

/// Saves definitions (already checked) through the writer; returns each id with its version.
pub fn save_all(engine: &Engine, definitions: Vec<(SegmentDefinition, String)>) -> anyhow::Result<Vec<(String, u32)>> {
    let at_ms = now_ms();
    let mut saved = Vec::new();
    for (definition, json) in definitions {
        let id = definition.id().as_str().to_owned();
        let version = engine.save_segment_blocking(definition, json, at_ms).context("saving segments")??;
        saved.push((id, version));
    }
    Ok(saved)
}

/// Saves the built-in segments that the store does not have yet; returns how many.
pub fn install_builtins(engine: &Engine) -> anyhow::Result<usize> {
    let mut missing = Vec::new();
    for json in BUILTIN_SEGMENTS {
        let definition = check_definition(json, &PolicyConfig::default())?;
        if engine.state().segment(definition.id().as_str()).is_none() {
            missing.push((definition, json.to_owned()));
        }
    }
    Ok(save_all(engine, missing)?.len())
}

/// `regard segments create FILE`.
pub fn create(file: &Path, store: &StoreArgs) -> anyhow::Result<()> {
    let (definition, text) = read_definition(file)?;
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    for (id, version) in save_all(&engine, vec![(definition, text)])? {
        println!("saved segment {id} version {version}");
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
    let (definition, _) = read_definition(file)?;
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
