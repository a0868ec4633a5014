//! `regard eval ...`: offline evaluation of Regard's models on a user's own files.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use regard_models::evaluate::{evaluate_clv_report, EvalClvOptions};
use regard_models::rfm::{parse_date, TimeUnit};

/// Flags of `regard eval clv`.
#[derive(Debug, Clone, Args)]
pub struct ClvArgs {
    /// CSV with a header holding at least `customer_id,date,amount` (several rows on one day
    /// are one purchase).
    #[arg(long)]
    pub transactions: PathBuf,
    /// Last day of the calibration period (YYYY-MM-DD).
    #[arg(long)]
    pub calibration_end: String,
    /// Last day of the holdout period (YYYY-MM-DD); without it no holdout comparison.
    #[arg(long)]
    pub holdout_end: Option<String>,
    /// Time unit of recency, age and the fitted alpha: `weeks` or `days`.
    #[arg(long, default_value = "weeks")]
    pub time_unit: String,
}

/// `regard eval clv`: prints the JSON report on stdout and fit warnings on stderr.
pub fn clv(args: &ClvArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.transactions)
        .with_context(|| format!("reading {}", args.transactions.display()))?;
    let calibration_end = parse_date(&args.calibration_end)
        .with_context(|| format!("--calibration-end {:?}: use YYYY-MM-DD", args.calibration_end))?;
    let holdout_end = match &args.holdout_end {
        Some(text) => Some(parse_date(text).with_context(|| format!("--holdout-end {text:?}: use YYYY-MM-DD"))?),
        None => None,
    };
    let time_unit: TimeUnit =
        args.time_unit.parse().map_err(|_| anyhow::anyhow!("--time-unit {:?}: use weeks or days", args.time_unit))?;
    let options = EvalClvOptions { calibration_end, holdout_end, time_unit };
    let report = evaluate_clv_report(&text, &options).with_context(|| format!("{}", args.transactions.display()))?;
    for warning in &report.bgnbd.warnings {
        eprintln!("warning: bgnbd: {warning}");
    }
    if let Some(spend) = &report.gamma_gamma {
        for warning in &spend.warnings {
            eprintln!("warning: gamma_gamma: {warning}");
        }
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
