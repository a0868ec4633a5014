//! Category propensity on a real export: the time-split AUC of the model against the baseline
//! rule, and the fitted weights, from the CSVs `scripts/demo_interactions.py` writes.
//!
//! ```sh
//! cargo run --release -p regard-cli -- demo --data /tmp/pdemo --no-serve --export /tmp/pdemo-exp
//! python3 scripts/demo_interactions.py /tmp/pdemo-exp /tmp/pdemo-csv
//! cargo run --release -p regard-models --example propensity_eval -- \
//!     /tmp/pdemo-csv/interactions.csv /tmp/pdemo-csv/catalog.csv [--lookback 180] [--horizon 30] \
//!     [--l2 1] [--depth 1] [--end-day D] [--users N] [--drop FEATURE]...
//! ```
//!
//! `interactions.csv` needs the columns `user_id,item_id,kind,timestamp` (kind `view`, `cart` or
//! `purchase`; an RFC 3339 timestamp) and `catalog.csv` the columns `id` (or `item_id`) and
//! `category`, a path like `Home > Coffee`; `--depth 1` keeps only its first level. The split
//! ends at the last activity unless `--end-day` (days since 1970-01-01) says otherwise.
//! `--users N` keeps about N people (every k-th one to appear), to see how the fit fares on a
//! smaller shop. Each `--drop` zeroes one feature before fitting, to see what it is worth.

// An example is a small program: its errors go to the terminal.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::error::Error;

use regard_models::propensity::{self, Activity, ActivityKind, PropensityConfig, FEATURES};

/// The command line.
struct Arguments {
    interactions: String,
    catalog: String,
    config: PropensityConfig,
    depth: Option<usize>,
    end_day: Option<f64>,
    users: Option<u32>,
    dropped: Vec<usize>,
}

fn parse_arguments() -> Result<Arguments, Box<dyn Error>> {
    let mut raw = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut config = PropensityConfig::default();
    let (mut depth, mut end_day, mut users, mut dropped) = (None, None, None, Vec::new());
    while let Some(argument) = raw.next() {
        let mut value = || raw.next().ok_or(format!("{argument} needs a value"));
        match argument.as_str() {
            "--lookback" => config.lookback_days = value()?.parse()?,
            "--horizon" => config.horizon_days = value()?.parse()?,
            "--l2" => config.l2 = value()?.parse()?,
            "--depth" => depth = Some(value()?.parse()?),
            "--end-day" => end_day = Some(value()?.parse()?),
            "--users" => users = Some(value()?.parse()?),
            "--drop" => {
                let name = value()?;
                let index = FEATURES.iter().position(|f| f.name == name).ok_or(format!("no feature `{name}`"))?;
                dropped.push(index);
            }
            _ => positional.push(argument),
        }
    }
    let [interactions, catalog] = <[String; 2]>::try_from(positional)
        .map_err(|_| "usage: propensity_eval INTERACTIONS.csv CATALOG.csv [options]")?;
    Ok(Arguments { interactions, catalog, config, depth, end_day, users, dropped })
}

/// The index of a header column, trying each name in turn.
fn column(headers: &csv::StringRecord, names: &[&str]) -> Result<usize, Box<dyn Error>> {
    names
        .iter()
        .find_map(|name| headers.iter().position(|header| header == *name))
        .ok_or_else(|| format!("no column {names:?} in {headers:?}").into())
}

/// Gives each distinct string a dense id in order of first sight.
fn intern(ids: &mut HashMap<String, u32>, key: &str) -> u32 {
    let next = ids.len() as u32;
    *ids.entry(key.to_owned()).or_insert(next)
}

fn main() -> Result<(), Box<dyn Error>> {
    let arguments = parse_arguments()?;

    let mut category_ids = HashMap::new();
    let mut item_categories: HashMap<String, u32> = HashMap::new();
    let mut catalog = csv::Reader::from_path(&arguments.catalog)?;
    let headers = catalog.headers()?.clone();
    let (id_column, category_column) = (column(&headers, &["id", "item_id"])?, column(&headers, &["category"])?);
    for record in catalog.records() {
        let record = record?;
        let path: Vec<&str> = record[category_column].split(" > ").collect();
        let kept = arguments.depth.map_or(path.len(), |depth| depth.min(path.len()));
        let category = intern(&mut category_ids, &path[..kept].join(" > "));
        item_categories.insert(record[id_column].to_owned(), category);
    }

    let mut user_ids = HashMap::new();
    let mut activities = Vec::new();
    let mut unknown_items = 0_usize;
    let mut reader = csv::Reader::from_path(&arguments.interactions)?;
    let headers = reader.headers()?.clone();
    let user_column = column(&headers, &["user_id"])?;
    let item_column = column(&headers, &["item_id"])?;
    let kind_column = column(&headers, &["kind"])?;
    let time_column = column(&headers, &["timestamp"])?;
    for record in reader.records() {
        let record = record?;
        let Some(&category) = item_categories.get(&record[item_column]) else {
            unknown_items += 1;
            continue;
        };
        let kind = match &record[kind_column] {
            "view" => ActivityKind::View,
            "cart" => ActivityKind::Cart,
            "purchase" => ActivityKind::Purchase,
            other => return Err(format!("unknown kind `{other}`").into()),
        };
        let timestamp: jiff::Timestamp = record[time_column].parse()?;
        let day = timestamp.as_millisecond() as f64 / 86_400_000.0;
        activities.push(Activity { user: intern(&mut user_ids, &record[user_column]), category, kind, day });
    }
    if let Some(wanted) = arguments.users {
        let step = (user_ids.len() as u32 / wanted.max(1)).max(1);
        activities.retain(|activity| activity.user % step == 0);
        user_ids.retain(|_, id| *id % step == 0);
    }
    let last_day = activities.iter().map(|activity| activity.day).fold(f64::NEG_INFINITY, f64::max);
    let first_day = activities.iter().map(|activity| activity.day).fold(f64::INFINITY, f64::min);
    let end_day = arguments.end_day.unwrap_or(last_day);
    println!(
        "{} activities of {} people in {} categories over {:.0} days ({unknown_items} rows with unknown items skipped)",
        activities.len(),
        user_ids.len(),
        category_ids.len(),
        last_day - first_day
    );

    let config = &arguments.config;
    let started = std::time::Instant::now();
    let evaluation = propensity::evaluate_time_split(&activities, end_day, config)?;
    let elapsed = started.elapsed();
    println!(
        "config {config:?}; train cutoff day {:.1}: {} pairs, {} positive; test cutoff day {:.1}: {} pairs, {} positive",
        evaluation.train_cutoff_day,
        evaluation.train_examples,
        evaluation.train_positives,
        evaluation.test_cutoff_day,
        evaluation.test_examples,
        evaluation.test_positives
    );
    println!(
        "AUC model {:.4}, baseline {:.4} (evaluate_time_split took {:.0} ms)",
        evaluation.auc,
        evaluation.baseline_auc,
        elapsed.as_secs_f64() * 1e3
    );
    for warning in &evaluation.warnings {
        println!("warning: {warning}");
    }
    for (j, feature) in FEATURES.iter().enumerate() {
        println!(
            "  {:<20} weight {:>8.4}  mean {:>7.3}",
            feature.name, evaluation.model.weights[j], evaluation.model.feature_means[j]
        );
    }

    if !arguments.dropped.is_empty() {
        // Ablation: the same split with the chosen features held at zero.
        let ablate = |examples: &mut Vec<propensity::Example>| {
            for example in examples.iter_mut() {
                for &j in &arguments.dropped {
                    example.features[j] = 0.0;
                }
            }
        };
        let mut train = propensity::build_examples(&activities, evaluation.train_cutoff_day, config);
        let mut test = propensity::build_examples(&activities, evaluation.test_cutoff_day, config);
        ablate(&mut train);
        ablate(&mut test);
        let model = propensity::fit_propensity(&train, config)?.params;
        let scores: Vec<f64> = test.iter().map(|example| model.probability(&example.features)).collect();
        let labels: Vec<bool> = test.iter().map(|example| example.label).collect();
        let names: Vec<&str> = arguments.dropped.iter().map(|&j| FEATURES[j].name).collect();
        println!("without {names:?}: AUC {:.4}", propensity::auc(&scores, &labels).unwrap_or(f64::NAN));
    }
    Ok(())
}
