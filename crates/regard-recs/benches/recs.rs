//! Training and query cost of the recommendation core on 1.5 million synthetic interactions
//! (100,000 users, 20,000 items in 50 categories, Zipf item popularity, Pareto user activity,
//! sessions of views, carts and purchases; see `regard_recs::synthetic`).
//!
//! Run with `cargo bench -p regard-recs --bench recs`. Goals (issue 5, 2 cores): item-item
//! training ≤ 2 s, ALS ≤ 10 s, a 10-item recommendation ≤ 100 µs in-process. Training is timed
//! by part from the model's own [`TrainingReport`](regard_recs::model::TrainingReport), so the
//! item-item figure is the strength matrix plus the neighbour lists, and the ALS figure the
//! factorisation alone.
//!
//! The `*_exact` query entries run the same requests on a second model trained with
//! [`AlsSearch::Exhaustive`] (every item scored in f32, as before the quantized search): the
//! baseline of the same run. Both models return the same lists; the bench checks it on the
//! histories of 1,000 users before timing. `default_chain_1000_users` cycles through those
//! histories, so its time is the mean over users rather than one user's.

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use regard_recs::als::AlsConfig;
use regard_recs::synthetic::{generate, SyntheticConfig};
use regard_recs::{AlsSearch, HistoryEvent, InteractionLog, RecsConfig, RecsModel, RecsRequest, RuleInputs, Strategy};

fn shop() -> InteractionLog {
    generate(&SyntheticConfig::default())
}

fn training(c: &mut Criterion) {
    let log = shop();
    eprintln!(
        "synthetic shop: {} users, {} items, {} interactions",
        log.n_users(),
        log.n_items(),
        log.interactions.len()
    );
    let mut group = c.benchmark_group("train_1.5M");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("item_item", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let model = RecsModel::train(&log, RecsConfig { als: None, ..RecsConfig::default() }).expect("trains");
                let report = model.training_report();
                total += Duration::from_secs_f64(report.matrix_seconds + report.item_item_seconds);
            }
            total
        })
    });
    group.bench_function("als_64_factors_15_iterations", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let model = RecsModel::train(&log, RecsConfig::default()).expect("trains");
                total += Duration::from_secs_f64(model.training_report().als_seconds);
            }
            total
        })
    });
    group.finish();
}

fn recommend(c: &mut Criterion) {
    let log = shop();
    let model = RecsModel::train(&log, RecsConfig { als: Some(AlsConfig::default()), ..RecsConfig::default() })
        .expect("trains");
    // Training is deterministic (every parallel part sums in a fixed order), so this is the
    // same factorisation as `model`'s.
    let exhaustive = RecsModel::train(&log, RecsConfig { als_search: AlsSearch::Exhaustive, ..RecsConfig::default() })
        .expect("trains");
    let report = model.training_report();
    let memory = model.memory();
    eprintln!("training: {report:?}");
    eprintln!("memory: {memory:?}");
    // The 20 most recent events of a user with a typical history.
    let user = log.users.get("user-000123").expect("user");
    let mut history = HistoryEvent::all_of(&log, user);
    history.sort_by_key(|e| std::cmp::Reverse(e.timestamp_secs));
    history.truncate(20);
    let now = log.interactions.iter().map(|i| i.timestamp_secs).max().unwrap_or(0);
    let histories = recent_histories(&log, 1_000);
    let chains: [&[Strategy]; 3] = [&[], &[Strategy::Als], &[Strategy::Hybrid]];
    for history in &histories {
        for strategies in chains {
            let request = RecsRequest { history, now_secs: now, n: 10, strategies, ..RecsRequest::default() };
            assert_eq!(model.recommend(&request), exhaustive.recommend(&request), "{strategies:?}");
        }
    }
    eprintln!("quantized and exhaustive ALS search: the same lists for {} users × 3 chains", histories.len());
    let mut group = c.benchmark_group("recommend_10");
    for (name, strategies) in [
        ("default_chain", &[][..]),
        ("item_knn", &[Strategy::ItemKnn][..]),
        ("als", &[Strategy::Als][..]),
        ("popular_in_country", &[Strategy::PopularInCountry, Strategy::Popular][..]),
        ("also_bought", &[Strategy::AlsoBought, Strategy::Popular][..]),
    ] {
        let request = RecsRequest {
            history: &history,
            country: regard_recs::CountryCode::parse("DE"),
            now_secs: now,
            n: 10,
            strategies,
            rules: RuleInputs::default(),
            ..RecsRequest::default()
        };
        assert_eq!(model.recommend(&request).len(), 10, "{name}");
        group.bench_function(name, |b| b.iter(|| black_box(model.recommend(black_box(&request)))));
        if matches!(name, "default_chain" | "als") {
            assert_eq!(model.recommend(&request), exhaustive.recommend(&request), "{name}");
            let exact = format!("{name}_exact");
            group.bench_function(&exact, |b| b.iter(|| black_box(exhaustive.recommend(black_box(&request)))));
        }
    }
    for (name, served) in [("default_chain_1000_users", &model), ("default_chain_1000_users_exact", &exhaustive)] {
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % histories.len();
                let request = RecsRequest { history: &histories[next], now_secs: now, n: 10, ..RecsRequest::default() };
                black_box(served.recommend(black_box(&request)))
            })
        });
    }
    group.finish();
}

/// The 20 most recent events of `n` users spread over the whole population.
fn recent_histories(log: &InteractionLog, n: usize) -> Vec<Vec<HistoryEvent>> {
    let mut by_user: Vec<Vec<HistoryEvent>> = vec![Vec::new(); log.n_users()];
    for i in &log.interactions {
        by_user[i.user.index()].push(HistoryEvent { item: i.item, kind: i.kind, timestamp_secs: i.timestamp_secs });
    }
    let step = (log.n_users() / n).max(1);
    by_user
        .into_iter()
        .step_by(step)
        .take(n)
        .map(|mut history| {
            history.sort_by_key(|e| std::cmp::Reverse(e.timestamp_secs));
            history.truncate(20);
            history
        })
        .collect()
}

criterion_group!(benches, training, recommend);
criterion_main!(benches);
