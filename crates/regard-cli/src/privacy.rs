//! `regard privacy export ID` and `regard privacy erase ID [--anonymize]`: the data subject
//! requests of `POST /v1/privacy/requests`, run offline on a store's data directory, recorded
//! in the same request log.

use std::path::PathBuf;

use anyhow::Context;
use regard_server::privacy::{erase_person, export_person, mask, request_id};
use regard_store::content::PrivacyRequestRow;

use crate::config::StoreArgs;
use crate::serve::{open_content, open_engine};

/// `regard privacy export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The person: userId, anonymousId or internal profile id.
    pub id: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Write the document here instead of printing it (required for `--format zip`).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// `json` (one document) or `zip` (a CSV file per part, plus `export.json`).
    #[arg(long, default_value = "json", value_parser = ["json", "zip"])]
    pub format: String,
}

/// `regard privacy erase`.
#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// The person: userId, anonymousId or internal profile id.
    pub id: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep their events as anonymous daily counts (anonymization) before erasing them.
    #[arg(long)]
    pub anonymize: bool,
    /// The regulation whose deadline the request log shows: gdpr (30 days) or ccpa (45).
    #[arg(long, default_value = "gdpr", value_parser = ["gdpr", "ccpa"])]
    pub regulation: String,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn request(kind: &str, subject: String, regulation: &str, now: i64) -> PrivacyRequestRow {
    let days = regard_server::privacy::deadline_days(regulation).unwrap_or(30);
    PrivacyRequestRow {
        id: request_id(now),
        kind: kind.to_owned(),
        subject,
        regulation: regulation.to_owned(),
        status: "completed".to_owned(),
        received_ms: now,
        deadline_ms: now + days * 86_400_000,
        completed_ms: Some(now),
        result: None,
    }
}

/// `regard privacy export ID`.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    if args.format == "zip" && args.output.is_none() {
        anyhow::bail!("--format zip needs --output FILE.zip (a ZIP is not printed to the terminal)");
    }
    let engine = open_engine(args.store.common.engine_config(&args.store.data)?)?;
    let content = open_content(&engine.config().data_dir, engine.config().live.policy.clone())?;
    let now = now_ms();
    let result = export_person(&engine, &content.store, None, &args.id, now);
    if let Ok(document) = &result {
        let mut row = request("access", args.id.clone(), "gdpr", now);
        row.result =
            Some(serde_json::json!({"exported_events": document["events"].as_array().map_or(0, Vec::len)}).to_string());
        content.store.save_privacy_request(&row)?;
    }
    engine.shutdown();
    content.store.shutdown();
    let document = result.map_err(|e| anyhow::anyhow!(e))?;
    if args.format == "zip" {
        let path = args.output.as_ref().context("--output is required")?;
        let bytes = regard_server::privacy::export_zip(&document).map_err(|e| anyhow::anyhow!(e))?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote the export of {} to {} (a CSV per part, and export.json).", args.id, path.display());
        return Ok(());
    }
    let text = serde_json::to_string_pretty(&document)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("Wrote the export of {} to {}.", args.id, path.display());
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// `regard privacy erase ID`.
pub fn erase(args: &EraseArgs) -> anyhow::Result<()> {
    let engine = open_engine(args.store.common.engine_config(&args.store.data)?)?;
    let content = open_content(&engine.config().data_dir, engine.config().live.policy.clone())?;
    let now = now_ms();
    let result = erase_person(&engine, &content.store, &args.id, args.anonymize, now);
    if let Ok(report) = &result {
        let kind = if args.anonymize { "anonymize" } else { "erase" };
        let mut row = request(kind, mask(&args.id), &args.regulation, now);
        row.result = Some(serde_json::to_string(report)?);
        content.store.save_privacy_request(&row)?;
    }
    engine.shutdown();
    content.store.shutdown();
    let report = result.map_err(|e| anyhow::anyhow!(e))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "Erased {} profile(s) and {} event(s); models that learned from them are retrained when the server next starts.",
        report.profiles, report.events
    );
    Ok(())
}
