//! Fitting cost of BG/NBD on the CDNOW sample (2,357 customers), on the full CDNOW cohort (23,570,
//! when `CDNOW_master.txt` is at hand) and on 1,000,000 synthetic customers drawn from the CDNOW
//! fit, plus Gamma-Gamma fitting and per-customer prediction.
//!
//! Run with `cargo bench -p regard-models --bench fit`. Goals: ≤ 5 ms on the sample, ≤ 20 ms on
//! the master file, ≤ 2 s on the million; `scripts/compare_lifetimes.py` times lifetimes 0.11.3 on
//! the same data (BENCHMARKS.md).
//!
//! The send-time, next-order and offer models are timed on 100,000 synthetic people each
//! (`-- 'send_time_fit|next_order|offer_fit'`); they run nightly over a whole customer base, so
//! the goal is well under a second apiece.

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use rand::{Rng, SeedableRng};
use regard_models::bgnbd::{self, BgNbdParams, FitOptions, Observation};
use regard_models::gamma_gamma::{self, SpendObservation};
use regard_models::{next_order, offer, send_time};

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

/// The full CDNOW cohort (23,570 customers), summarised with `rfm` from `CDNOW_master.txt` in the
/// shared data folder or at `REGARD_CDNOW_MASTER`; `None` (and the bench skipped) when absent.
fn cdnow_master() -> Option<Vec<regard_models::rfm::CustomerSummary>> {
    use regard_models::rfm::{self, TimeUnit, Transaction};
    let path = std::env::var("REGARD_CDNOW_MASTER")
        .unwrap_or_else(|_| format!("{}/../../../shared/data/cdnow/CDNOW_master.txt", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(path).ok()?;
    let transactions: Vec<Transaction> = text
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Transaction {
                customer_id: fields[0].to_owned(),
                date: rfm::parse_date(fields[1]).expect("YYYYMMDD"),
                amount: fields[3].parse().expect("dollars"),
            }
        })
        .collect();
    let calibration_end = jiff::civil::date(1997, 9, 30);
    Some(rfm::summarize(&transactions, calibration_end, None, TimeUnit::Weeks).expect("valid dates"))
}

fn cdnow_master_fit(c: &mut Criterion) {
    let Some(master) = cdnow_master() else {
        eprintln!("skipping the CDNOW master benches: CDNOW_master.txt not found (set REGARD_CDNOW_MASTER)");
        return;
    };
    let customers: Vec<Observation> = master.iter().map(|s| Observation::new(s.frequency, s.recency, s.age)).collect();
    let buyers: Vec<SpendObservation> = master
        .iter()
        .filter(|s| s.frequency > 0.0 && s.monetary > 0.0)
        .map(|s| SpendObservation::new(s.frequency, s.monetary))
        .collect();
    let report = bgnbd::fit(&customers, &FitOptions::default()).expect("fit");
    eprintln!(
        "CDNOW master: {} customers, BG/NBD {:?}, LL {:.5}",
        customers.len(),
        report.params,
        report.log_likelihood
    );
    c.bench_with_input(BenchmarkId::new("bgnbd_fit/cdnow_master", customers.len()), &customers, |b, data| {
        b.iter(|| bgnbd::fit(data, &FitOptions::default()).expect("fit"))
    });
    c.bench_with_input(
        BenchmarkId::new("gamma_gamma_fit/cdnow_master_repeat_buyers", buyers.len()),
        &buyers,
        |b, data| b.iter(|| gamma_gamma::fit(data).expect("fit")),
    );
}

/// A standard normal draw by Box–Muller, for the synthetic populations below.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `n` people's opens per local hour of the week: each has a favourite evening hour on a
/// favourite day and 1–40 opens, 70% within an hour of the favourite and the rest anywhere.
fn synthetic_send_time_users(n: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let favourite = rng.gen_range(0..7) * 24 + rng.gen_range(17..23);
            let mut counts = vec![0_u32; send_time::HOURS_PER_WEEK];
            for _ in 0..rng.gen_range(1..=40) {
                let hour = if rng.gen::<f64>() < 0.7 {
                    (favourite + rng.gen_range(0..3) + send_time::HOURS_PER_WEEK - 1) % send_time::HOURS_PER_WEEK
                } else {
                    rng.gen_range(0..send_time::HOURS_PER_WEEK)
                };
                counts[hour] += 1;
            }
            counts
        })
        .collect()
}

fn send_time_fit(c: &mut Criterion) {
    let users = synthetic_send_time_users(100_000, 168);
    let model = send_time::fit_send_time(&users).expect("fit");
    eprintln!("send time, 100,000 synthetic people: κ {:.2}, warnings {:?}", model.concentration, model.warnings);
    let mut group = c.benchmark_group("send_time_fit");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("synthetic", users.len()), &users, |b, data| {
        b.iter(|| send_time::fit_send_time(data).expect("fit"))
    });
    group.finish();
}

/// `n` customers' purchase days: 3 to 12 occasions, a log-normal cadence around a month and a
/// log-normal spread of gaps, regular for a third of them.
fn synthetic_purchase_days(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|customer_idx| {
            let cadence = 30.0 * (0.5 * standard_normal(&mut rng)).exp();
            let spread = if customer_idx % 3 == 0 { 0.05 } else { rng.gen_range(0.2..0.8) };
            let mut day = f64::from(rng.gen_range(0..90_u32));
            let mut days = vec![day];
            for _ in 1..rng.gen_range(3..=12) {
                day += (cadence * (spread * standard_normal(&mut rng)).exp()).round().max(1.0);
                days.push(day);
            }
            days
        })
        .collect()
}

fn next_order(c: &mut Criterion) {
    let customers = synthetic_purchase_days(100_000, 28);
    let gaps: Vec<Vec<f64>> =
        customers.iter().map(|days| days.windows(2).map(|pair| pair[1] - pair[0]).collect()).collect();
    let prior = next_order::fit_cadence_prior(&gaps).expect("fit");
    eprintln!("next order, 100,000 synthetic customers: {prior:?}");
    let mut group = c.benchmark_group("next_order");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("cadence_prior_fit", gaps.len()), &gaps, |b, data| {
        b.iter(|| next_order::fit_cadence_prior(data).expect("fit"))
    });
    group.bench_with_input(BenchmarkId::new("predict", customers.len()), &customers, |b, data| {
        b.iter(|| {
            let mut reminders = 0.0;
            for days in data {
                let now = days[days.len() - 1] + 10.0;
                let prediction = next_order::predict_next_order(&CDNOW, 7.0, &prior, days, now).expect("valid");
                reminders += prediction.map_or(0.0, |prediction| prediction.reminder_day);
            }
            reminders
        })
    });
    group.finish();
}

/// `n` customers' (purchases, discounted purchases): 1 to 20 purchases, each discounted with
/// the customer's propensity drawn from Beta(2, 6) (the 2nd smallest of 7 uniforms).
fn synthetic_offer_counts(n: usize, seed: u64) -> Vec<(u32, u32)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut uniforms: Vec<f64> = (0..7).map(|_| rng.gen()).collect();
            uniforms.sort_by(f64::total_cmp);
            let propensity = uniforms[1];
            let purchases = rng.gen_range(1..=20_u32);
            let discounted = (0..purchases).filter(|_| rng.gen::<f64>() < propensity).count() as u32;
            (purchases, discounted)
        })
        .collect()
}

fn offer_fit(c: &mut Criterion) {
    let counts = synthetic_offer_counts(100_000, 26);
    let report = offer::fit_offer_prior(&counts).expect("fit");
    eprintln!("offer, 100,000 synthetic customers: {:?}, warnings {:?}", report.params, report.warnings);
    let mut group = c.benchmark_group("offer_fit");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("synthetic", counts.len()), &counts, |b, data| {
        b.iter(|| offer::fit_offer_prior(data).expect("fit"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Millisecond-scale benches need ~10 s for criterion's 100 linear samples.
    config = Criterion::default().measurement_time(Duration::from_secs(10));
    targets = bgnbd_fit, gamma_gamma_fit, predict, cdnow_master_fit, send_time_fit, next_order, offer_fit
}
criterion_main!(benches);
