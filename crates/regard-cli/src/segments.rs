//! `regard segments ...`.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use regard_core::segments::{check_definition, PolicyConfig, SaveError};

use crate::config::StoreArgs;
use crate::serve::open_engine;

/// `regard segments preview FILE`: prints the policy verdict, the size and sample members.
pub fn preview(file: &Path, store: &StoreArgs, sample: usize) -> anyhow::Result<()> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    let definition = match check_definition(&text, &PolicyConfig::default()) {
        Ok(definition) => definition,
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
    };
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let preview = regard_store::segments::preview(&engine, &definition, now_ms, sample)?;
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
