//! How many customers BG/NBD needs before it beats a simple rule: the study behind the
//! server's population threshold (ARCHITECTURE.md, "Predictions").
//!
//! For each sample size n, 40 random subsets of the CDNOW sample (2,357 customers, 39 weeks of
//! calibration, 39 of holdout) are fitted; each fit predicts the holdout purchases of all 2,357
//! customers, and its mean absolute error is compared with the rule "a customer keeps buying at
//! their own calibration rate" (x / T per week), which needs no fit at all.
//!
//! Run with `cargo run --release -p regard-models --example threshold_study`.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use regard_models::bgnbd::{self, FitOptions, Observation};

const HOLDOUT_WEEKS: f64 = 39.0;
const DRAWS: usize = 40;

fn main() {
    let path = format!("{}/tests/data/cdnow_sample_summary_cal39_holdout39.csv", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the CDNOW summary fixture");
    let customers: Vec<(Observation, f64)> = text
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<f64> = line.split(',').map(|c| c.trim().parse().expect("a number")).collect();
            (Observation::new(cells[1], cells[2], cells[3]), cells[5])
        })
        .collect();
    let rule_mae =
        customers.iter().map(|(o, actual)| (o.frequency / o.age * HOLDOUT_WEEKS - actual).abs()).sum::<f64>()
            / customers.len() as f64;
    println!("customers: {}; own-rate rule MAE on the holdout: {rule_mae:.4}", customers.len());
    println!(
        "| customers in the fit | repeat buyers (median) | converged | model MAE (median) | MAE 90th pct | draws beating \
         the rule | converged draws beating it |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2005);
    for n in [50, 100, 200, 300, 500, 1000, 2357] {
        let mut maes = Vec::new();
        let mut repeaters = Vec::new();
        let mut converged = 0;
        let mut converged_beating = 0;
        for _ in 0..DRAWS {
            let subset: Vec<Observation> = customers.choose_multiple(&mut rng, n).map(|(o, _)| *o).collect();
            repeaters.push(subset.iter().filter(|o| o.frequency > 0.0).count());
            let Ok(fit) = bgnbd::fit(&subset, &FitOptions::default()) else { continue };
            if fit.converged {
                converged += 1;
            }
            let mae = customers
                .iter()
                .map(|(o, actual)| {
                    let predicted =
                        bgnbd::expected_purchases(&fit.params, HOLDOUT_WEEKS, o.frequency, o.recency, o.age)
                            .unwrap_or(f64::NAN);
                    (predicted - actual).abs()
                })
                .sum::<f64>()
                / customers.len() as f64;
            if fit.converged && mae < rule_mae {
                converged_beating += 1;
            }
            maes.push(if mae.is_finite() { mae } else { f64::INFINITY });
        }
        maes.sort_by(f64::total_cmp);
        repeaters.sort_unstable();
        let beating = maes.iter().filter(|m| **m < rule_mae).count();
        let median = maes.get(maes.len() / 2).copied().unwrap_or(f64::NAN);
        let p90 = maes.get(maes.len() * 9 / 10).copied().unwrap_or(f64::NAN);
        println!(
            "| {n} | {} | {converged}/{DRAWS} | {median:.4} | {p90:.4} | {beating}/{DRAWS} | \
             {converged_beating}/{converged} |",
            repeaters[repeaters.len() / 2]
        );
    }
}
