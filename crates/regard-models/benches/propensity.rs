//! Cost of the category propensity model on a synthetic shop of 100,000 people: building the
//! training examples, fitting the logistic regression, and scoring every candidate pair.
//!
//! Run with `cargo bench -p regard-models --bench propensity`. The server refits nightly and
//! scores on demand, so the fit may take seconds; scoring everyone should stay well under that.

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use rand::{Rng, SeedableRng};
use regard_models::propensity::{self, Activity, ActivityKind, PropensityConfig};

/// Days of history in the synthetic shop.
const HISTORY_DAYS: f64 = 365.0;

/// An exponential draw with the given mean.
fn exponential(rng: &mut impl Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.gen::<f64>()).ln()
}

/// A year of views, cart adds and purchases of `users` people over 20 categories: each person
/// browses 1–5 categories, each at their own rate; a view is followed by a cart add one time in
/// eight and by a purchase within days one time in twenty-five, so recent views predict buying.
fn synthetic_shop(users: u32, seed: u64) -> Vec<Activity> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut activities = Vec::new();
    for user in 0..users {
        let interests = rng.gen_range(1..=5);
        for _ in 0..interests {
            let category = rng.gen_range(0..20_u32);
            // Mean days between views: from a few days for keen people to months for idle ones.
            let mean_gap_days = 2.0 + exponential(&mut rng, 40.0);
            let mut day = exponential(&mut rng, mean_gap_days);
            while day < HISTORY_DAYS {
                activities.push(Activity { user, category, kind: ActivityKind::View, day });
                if rng.gen::<f64>() < 0.125 {
                    activities.push(Activity { user, category, kind: ActivityKind::Cart, day: day + 0.01 });
                }
                if rng.gen::<f64>() < 0.04 {
                    let bought = day + exponential(&mut rng, 3.0);
                    activities.push(Activity { user, category, kind: ActivityKind::Purchase, day: bought });
                }
                day += exponential(&mut rng, mean_gap_days);
            }
        }
    }
    // An event store hands activities over in time order, the hardest order to regroup by pair.
    activities.sort_by(|left, right| left.day.total_cmp(&right.day));
    activities
}

fn propensity_100k(c: &mut Criterion) {
    let activities = synthetic_shop(100_000, 2026);
    let config = PropensityConfig::default();
    let train_cutoff = HISTORY_DAYS - 2.0 * config.horizon_days;
    let examples = propensity::build_examples(&activities, train_cutoff, &config);
    let positives = examples.iter().filter(|example| example.label).count();
    let report = propensity::fit_propensity(&examples, &config).expect("fit");
    let evaluation = propensity::evaluate_time_split(&activities, HISTORY_DAYS, &config).expect("evaluation");
    eprintln!(
        "100,000 people: {} activities, {} training pairs ({positives} positive), {} Newton iterations, \
         warnings {:?}; time-split AUC {:.4} (baseline {:.4})",
        activities.len(),
        examples.len(),
        report.iterations,
        report.warnings,
        evaluation.auc,
        evaluation.baseline_auc
    );

    let mut group = c.benchmark_group("propensity");
    // Each step takes a sizeable fraction of a second: ten flat samples keep the run short.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_with_input(BenchmarkId::new("build_examples", activities.len()), &activities, |b, data| {
        b.iter(|| propensity::build_examples(data, train_cutoff, &config))
    });
    group.bench_with_input(BenchmarkId::new("fit_propensity", examples.len()), &examples, |b, data| {
        b.iter(|| propensity::fit_propensity(data, &config).expect("fit"))
    });
    group.bench_with_input(BenchmarkId::new("score_candidates", activities.len()), &activities, |b, data| {
        b.iter(|| propensity::score_candidates(&report.params, data, HISTORY_DAYS))
    });
    group.finish();
}

criterion_group!(benches, propensity_100k);
criterion_main!(benches);
