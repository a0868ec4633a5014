//! Fitting cost of BG/NBD on the CDNOW sample (2,357 customers) and on 1,000,000 synthetic
//! customers drawn from the CDNOW fit, plus Gamma-Gamma fitting and per-customer prediction.
//!
//! Run with `cargo bench -p regard-models --bench fit`. Goals: ≤ 5 ms on the sample, ≤ 2 s on
//! the million; lifetimes 0.11.3 takes 65–73 ms for the sample on the same machine
//! (`tests/data/cdnow_reference_results.json`).

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use rand::{Rng, SeedableRng};
use regard_models::bgnbd::{self, BgNbdParams, FitOptions, Observation};
use regard_models::gamma_gamma::{self, SpendObservation};

/// The lifetimes 0.11.3 fit on CDNOW, the model the synthetic customers are drawn from.
const CDNOW: BgNbdParams =
    BgNbdParams { r: 0.2425929282798217, alpha: 4.413532265271817, a: 0.7928859664406721, b: 2.4257523826257996 };

/// Reads a fixture of the test suite.
fn fixture(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).expect("fixture is present")
}

/// The numeric columns of a CSV fixture with a header, row by row.
fn numeric_rows(name: &str) -> Vec<Vec<f64>> {
    fixture(name)
        .lines()
        .skip(1)
        .map(|line| line.split(',').map(|cell| cell.trim().parse().expect("numeric cell")).collect())
        .collect()
}

/// `n` customers drawn from the CDNOW model with CDNOW's shape: first purchases spread over the
/// 84 days of a quarter, a calibration end 189–273 days later, times recorded in whole days and
/// expressed in weeks, as a real purchase log summarised by `rfm` would be.
fn synthetic_customers(n: usize, seed: u64) -> Vec<Observation> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let age_days = f64::from(rng.gen_range(189_u32..=273));
            let mut uniform = || rng.gen::<f64>();
            let drawn = bgnbd::simulate(&CDNOW, age_days / 7.0, &mut uniform).expect("valid");
            let recency_days = (drawn.recency * 7.0).floor();
            Observation::new(drawn.frequency, recency_days / 7.0, age_days / 7.0)
        })
        .collect()
}

fn bgnbd_fit(c: &mut Criterion) {
    let sample: Vec<Observation> = numeric_rows("cdnow_customers_summary.csv")
        .iter()
        .map(|row| Observation::new(row[1], row[2], row[3]))
        .collect();
    let mut group = c.benchmark_group("bgnbd_fit");
    group.bench_with_input(BenchmarkId::new("cdnow_sample", sample.len()), &sample, |b, data| {
        b.iter(|| bgnbd::fit(data, &FitOptions::default()).expect("fit"))
    });

    let million = synthetic_customers(1_000_000, 2005);
    let report = bgnbd::fit(&million, &FitOptions::default()).expect("fit");
    eprintln!(
        "1,000,000 synthetic customers: fitted {:?}, LL {:.3}, converged {}, {} iterations, \
         warnings {:?}",
        report.params, report.log_likelihood, report.converged, report.iterations, report.warnings
    );
    // Each fit takes most of a second: ten flat samples are enough and keep the run short.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_with_input(BenchmarkId::new("synthetic", million.len()), &million, |b, data| {
        b.iter(|| bgnbd::fit(data, &FitOptions::default()).expect("fit"))
    });
    group.finish();
}

fn gamma_gamma_fit(c: &mut Criterion) {
    let buyers: Vec<SpendObservation> = numeric_rows("cdnow_customers_summary_with_transactions.csv")
        .iter()
        .filter(|row| row[1] > 0.0)
        .map(|row| SpendObservation::new(row[1], row[4]))
        .collect();
    c.bench_function("gamma_gamma_fit/cdnow_repeat_buyers/946", |b| b.iter(|| gamma_gamma::fit(&buyers).expect("fit")));
}

fn predict(c: &mut Criterion) {
    let sample: Vec<Vec<f64>> = numeric_rows("cdnow_customers_summary.csv");
    c.bench_function("bgnbd_predict/expected_39w_and_p_alive/2357", |b| {
        b.iter(|| {
            let mut total = 0.0;
            for row in &sample {
                total += bgnbd::expected_purchases(&CDNOW, 39.0, row[1], row[2], row[3]).expect("valid");
                total += bgnbd::probability_alive(&CDNOW, row[1], row[2], row[3]).expect("valid");
            }
            total
        })
    });
}

criterion_group! {
    name = benches;
    // Millisecond-scale benches need ~10 s for criterion's 100 linear samples.
    config = Criterion::default().measurement_time(Duration::from_secs(10));
    targets = bgnbd_fit, gamma_gamma_fit, predict
}
criterion_main!(benches);
