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

/// Flags of `regard eval recs`.
#[derive(Debug, Clone, Args)]
pub struct RecsArgs {
    /// CSV with a header holding at least `user_id,item_id,timestamp` (Unix seconds or
    /// ISO-8601; extra columns are ignored).
    #[arg(long)]
    pub interactions: PathBuf,
    /// Catalogue CSV (`id`, `category`, `price`, ...): its items join the ranked catalogue and
    /// its categories enable the category-affinity strategy.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// ALS latent factors.
    #[arg(long, default_value_t = regard_recs::als::AlsConfig::default().factors)]
    pub factors: usize,
    /// ALS regularization λ.
    #[arg(long, default_value_t = regard_recs::als::AlsConfig::default().regularization)]
    pub regularization: f32,
    /// ALS confidence weight α (confidence 1 + α·r).
    #[arg(long, default_value_t = regard_recs::als::AlsConfig::default().alpha)]
    pub alpha: f32,
    /// ALS sweeps.
    #[arg(long, default_value_t = regard_recs::als::AlsConfig::default().iterations)]
    pub iterations: usize,
    /// Item-kNN neighbours kept per item.
    #[arg(long, default_value_t = regard_recs::itemknn::ItemItemConfig::default().top_k)]
    pub top_k: usize,
    /// Item-kNN minimum number of users sharing two items.
    #[arg(long, default_value_t = regard_recs::itemknn::ItemItemConfig::default().min_support)]
    pub min_support: u32,
    /// Half-life in days of a history item's weight in the `*_recent` strategies.
    #[arg(long, default_value_t = regard_recs::RecsConfig::default().history_half_life_days)]
    pub history_half_life_days: f64,
}

/// `regard eval recs`: prints the JSON report on stdout.
pub fn recs(args: &RecsArgs) -> anyhow::Result<()> {
    use regard_recs::eval::{evaluate, prepare, EvalOptions};
    let open = |path: &PathBuf| std::fs::File::open(path).with_context(|| format!("reading {}", path.display()));
    let interactions = std::io::BufReader::new(open(&args.interactions)?);
    let catalog = args.catalog.as_ref().map(open).transpose()?.map(std::io::BufReader::new);
    let data = prepare(interactions, catalog).with_context(|| {
        let files = [Some(&args.interactions), args.catalog.as_ref()];
        files.iter().flatten().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ")
    })?;
    let mut options = EvalOptions::default();
    options.als.factors = args.factors;
    options.als.regularization = args.regularization;
    options.als.alpha = args.alpha;
    options.als.iterations = args.iterations;
    options.item_item.top_k = args.top_k;
    options.item_item.min_support = args.min_support;
    options.history_half_life_days = args.history_half_life_days;
    let report = evaluate(&data, &options)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
