//! Writes the synthetic customers of `benches/fit.rs` as CSV (`frequency,recency,T`, weeks) on
//! standard output, so `scripts/compare_lifetimes.py` can time `lifetimes` on the very customers
//! the bench fits, and prints Regard's fit of them on standard error for comparison.
//!
//! ```sh
//! cargo run --release -p regard-models --example synthetic_customers -- 1000000 > /tmp/synthetic_1m.csv
//! ```
//!
//! The generator must stay identical to `synthetic_customers` in `benches/fit.rs` (same model,
//! same seed 2005, same draws in the same order); the fitted log-likelihood printed by both
//! shows that it does.

// An example is a small program: its errors go to the terminal.
#![allow(missing_docs)]

use std::error::Error;
use std::io::Write;

use rand::{Rng, SeedableRng};
use regard_models::bgnbd::{self, BgNbdParams, FitOptions, Observation};

/// The lifetimes 0.11.3 fit on CDNOW, the model the synthetic customers are drawn from.
const CDNOW: BgNbdParams =
    BgNbdParams { r: 0.2425929282798217, alpha: 4.413532265271817, a: 0.7928859664406721, b: 2.4257523826257996 };

/// The bench's generator: first purchases spread over a quarter, a calibration end 189–273 days
/// later, times recorded in whole days and expressed in weeks.
fn synthetic_customers(n: usize, seed: u64) -> Result<Vec<Observation>, Box<dyn Error>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let age_days = f64::from(rng.gen_range(189_u32..=273));
            let mut uniform = || rng.gen::<f64>();
            let drawn = bgnbd::simulate(&CDNOW, age_days / 7.0, &mut uniform)?;
            let recency_days = (drawn.recency * 7.0).floor();
            Ok(Observation::new(drawn.frequency, recency_days / 7.0, age_days / 7.0))
        })
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let count: usize = std::env::args().nth(1).map_or(Ok(1_000_000), |text| text.parse())?;
    let customers = synthetic_customers(count, 2005)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    writeln!(out, "frequency,recency,T")?;
    for customer in &customers {
        // Shortest round-trip formatting: Python parses back exactly these doubles.
        writeln!(out, "{},{},{}", customer.frequency, customer.recency, customer.age)?;
    }
    out.flush()?;
    let report = bgnbd::fit(&customers, &FitOptions::default())?;
    eprintln!("{count} synthetic customers: Regard fit {:?}, LL {:.3}", report.params, report.log_likelihood);
    Ok(())
}
