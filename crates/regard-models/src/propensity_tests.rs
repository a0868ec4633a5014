use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// Asserts the AUC of a small table of scores and labels.
fn check_auc(scores: &[f64], labels: &[bool], expected: Option<f64>) {
    let actual = auc(scores, labels);
    match (actual, expected) {
        (Some(actual), Some(expected)) => {
            assert!((actual - expected).abs() < 1e-12, "scores {scores:?}: AUC {actual}, expected {expected}")
        }
        _ => assert_eq!(actual, expected, "scores {scores:?}"),
    }
}

#[test]
fn auc_counts_ties_as_half_a_win() {
    let (t, f) = (true, false);
    // Positives 0.9, 0.8, 0.3 against negatives 0.8, 0.3, 0.1: 0.9 wins 3; 0.8 ties 0.8 and wins
    // 2 (2.5); 0.3 loses to 0.8, ties 0.3 and wins 1 (1.5). 7 of 9 pairs.
    check_auc(&[0.9, 0.8, 0.8, 0.3, 0.3, 0.1], &[t, f, t, t, f, f], Some(7.0 / 9.0));
    check_auc(&[0.1, 0.2, 0.3, 0.4], &[f, f, t, t], Some(1.0));
    check_auc(&[0.1, 0.2, 0.3, 0.4], &[t, t, f, f], Some(0.0));
    check_auc(&[0.5, 0.5, 0.5], &[t, f, f], Some(0.5));
    check_auc(&[f64::NEG_INFINITY, 0.0, f64::INFINITY], &[f, t, t], Some(1.0));
}

#[test]
fn auc_is_undefined_without_both_classes_or_with_nan() {
    check_auc(&[0.1, 0.2], &[true, true], None);
    check_auc(&[], &[], None);
    check_auc(&[0.1, f64::NAN], &[true, false], None);
    check_auc(&[0.1, 0.2], &[true], None);
}

/// Examples whose labels follow a known logistic model of independent uniform features.
fn logistic_examples(n: usize, intercept: f64, weights: &PropensityFeatures, seed: u64) -> Vec<Example> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let features: PropensityFeatures = std::array::from_fn(|_| rng.gen_range(-1.0..3.0));
            let eta = intercept + weights.iter().zip(&features).map(|(w, x)| w * x).sum::<f64>();
            Example {
                user: i as u32,
                category: 0,
                features,
                baseline_score: 0.0,
                label: rng.gen::<f64>() < sigmoid(eta),
            }
        })
        .collect()
}

#[test]
fn fit_recovers_known_coefficients_of_synthetic_logistic_data() {
    let truth = [0.8, -0.5, 0.0, 0.3, 1.1, -0.9, 0.4, -0.2, 0.6];
    let examples = logistic_examples(100_000, -1.5, &truth, 11);
    let config = PropensityConfig { l2: 0.0, ..PropensityConfig::default() };
    let report = fit_propensity(&examples, &config).expect("fit");
    assert!(report.converged, "{report:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Standard errors at n = 100,000 with these spreads are about 0.01; allow five of them.
    assert!((report.params.intercept + 1.5).abs() < 0.08, "intercept {}", report.params.intercept);
    for (j, (fitted, expected)) in report.params.weights.iter().zip(&truth).enumerate() {
        assert!((fitted - expected).abs() < 0.05, "{}: fitted {fitted}, expected {expected}", FEATURES[j].name);
    }
}

#[test]
fn fit_refuses_a_set_with_only_one_class() {
    let mut examples = logistic_examples(100, 0.0, &[0.0; FEATURE_COUNT], 3);
    for example in &mut examples {
        example.label = false;
    }
    let error = fit_propensity(&examples, &PropensityConfig::default()).expect_err("no positives");
    assert!(matches!(error, ModelError::InsufficientData(_)), "{error}");
    assert!(fit_propensity(&[], &PropensityConfig::default()).is_err());
}

#[test]
fn fit_refuses_invalid_windows_and_non_finite_features() {
    let examples = logistic_examples(100, 0.0, &[0.0; FEATURE_COUNT], 4);
    for config in [
        PropensityConfig { horizon_days: 0.0, ..PropensityConfig::default() },
        PropensityConfig { lookback_days: f64::NAN, ..PropensityConfig::default() },
        PropensityConfig { l2: -1.0, ..PropensityConfig::default() },
    ] {
        let error = fit_propensity(&examples, &config).expect_err("invalid config");
        assert!(error.is_user_error());
    }
    let mut broken = examples;
    broken[7].features[3] = f64::INFINITY;
    assert!(fit_propensity(&broken, &PropensityConfig::default()).is_err());
}

/// A shorthand for one activity.
fn act(user: u32, category: u32, kind: ActivityKind, day: f64) -> Activity {
    Activity { user, category, kind, day }
}

#[test]
fn build_examples_never_lets_activity_after_the_cutoff_into_features() {
    use ActivityKind::{Cart, Purchase, View};
    let config = PropensityConfig { horizon_days: 30.0, lookback_days: 90.0, l2: 1.0 };
    let cutoff = 100.0;
    let past = vec![
        act(1, 10, View, 95.0),
        act(1, 10, Cart, 99.5),
        act(1, 10, Purchase, 100.0), // exactly at the cutoff: a feature, not a label
        act(1, 11, View, 8.0),       // before the lookback: history only
        act(1, 11, Purchase, 5.0),
        act(2, 10, View, 10.0), // exactly cutoff − lookback: outside (cutoff − lookback, cutoff]
        act(2, 12, View, 60.0),
    ];
    let mut with_future = past.clone();
    with_future.extend([
        act(1, 10, View, 100.5),
        act(1, 10, Purchase, 101.0),
        act(1, 11, Purchase, 110.0),
        act(2, 12, Cart, 129.0),
        act(2, 12, Purchase, 130.0), // exactly at cutoff + horizon: a label
        act(2, 13, Purchase, 105.0), // a new pair: not a candidate
        act(3, 10, View, 100.1),     // a new person: not a candidate
        act(1, 10, Purchase, 131.0), // after the horizon: nothing
    ]);

    let before = build_examples(&past, cutoff, &config);
    let after = build_examples(&with_future, cutoff, &config);
    let pairs = |examples: &[Example]| examples.iter().map(|e| (e.user, e.category)).collect::<Vec<_>>();
    assert_eq!(pairs(&before), vec![(1, 10), (2, 12)]);
    assert_eq!(pairs(&after), pairs(&before));
    for (without, with) in before.iter().zip(&after) {
        assert_eq!(without.features, with.features, "pair ({}, {})", with.user, with.category);
        assert_eq!(without.baseline_score, with.baseline_score);
        assert!(!without.label);
    }
    assert!(after.iter().all(|example| example.label));

    let ln = |count: f64| f64::ln_1p(count);
    // Person 1 viewed, carted and bought in category 10 before the cutoff, and bought in
    // category 11 long before; all 3 of their lookback activities are in category 10.
    assert_eq!(before[0].features, [ln(1.0), ln(1.0), ln(1.0), ln(1.0), ln(1.0), 0.0, 0.0, ln(2.0), 1.0]);
    // Person 2 viewed category 12 40 days before the cutoff and never bought there: days since
    // purchase is capped at the lookback; their view of category 10 is too old to count.
    assert_eq!(before[1].features, [0.0, 0.0, ln(1.0), 0.0, 0.0, ln(40.0), ln(90.0), 0.0, 1.0]);
}

/// A shop where each person has an interest in each of a few categories, views a category at a
/// rate proportional to that interest, and on any day buys with a probability that grows with
/// the views of the week before.
fn synthetic_world(users: u32, categories: u32, days: u32, seed: u64) -> Vec<Activity> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut activities = Vec::new();
    for user in 0..users {
        for category in 0..categories {
            // Most pairs are dormant; a few are keen (an exponential with a small mean).
            let interest = -0.15 * rng.gen::<f64>().ln() * if rng.gen::<f64>() < 0.3 { 1.0 } else { 0.05 };
            let mut recent_views: Vec<f64> = Vec::new();
            for day in 0..days {
                let day = f64::from(day);
                recent_views.retain(|&viewed| day - viewed < 7.0);
                let mut views_today = 0;
                while rng.gen::<f64>() < interest / (1.0 + interest) && views_today < 10 {
                    views_today += 1;
                }
                for _ in 0..views_today {
                    let at = day + rng.gen::<f64>();
                    activities.push(act(user, category, ActivityKind::View, at));
                    recent_views.push(at);
                    if rng.gen::<f64>() < 0.1 {
                        activities.push(act(user, category, ActivityKind::Cart, at + 0.01));
                    }
                }
                let buy = 1.0 - (-0.02 * recent_views.len() as f64).exp();
                if rng.gen::<f64>() < buy {
                    activities.push(act(user, category, ActivityKind::Purchase, day + rng.gen::<f64>()));
                }
            }
        }
    }
    activities
}

#[test]
fn time_split_on_a_world_driven_by_views_ranks_buyers_well() {
    let activities = synthetic_world(1_500, 4, 200, 2024);
    let config = PropensityConfig { horizon_days: 30.0, lookback_days: 90.0, l2: 1.0 };
    let evaluation = evaluate_time_split(&activities, 200.0, &config).expect("evaluation");
    assert_eq!(evaluation.train_cutoff_day, 140.0);
    assert_eq!(evaluation.test_cutoff_day, 170.0);
    assert!(evaluation.train_positives >= 100 && evaluation.test_positives >= 100, "{evaluation:?}");
    assert!(evaluation.auc > 0.7, "{evaluation:?}");
    assert!(evaluation.auc >= evaluation.baseline_auc, "{evaluation:?}");
    // Recent views drive purchases here, so the model must lean on them.
    let views_7d = evaluation.model.weights[0];
    assert!(views_7d > 0.0, "views_7d weight {views_7d}");
}

#[test]
fn time_split_without_buyers_is_refused() {
    let activities: Vec<Activity> =
        (0..50).map(|day| act(day % 5, day % 3, ActivityKind::View, f64::from(day) * 2.0)).collect();
    let error = evaluate_time_split(&activities, 100.0, &PropensityConfig::default()).expect_err("no buyers");
    assert!(matches!(error, ModelError::InsufficientData(_)), "{error}");
}

#[test]
fn scoring_uses_the_candidates_and_features_of_the_scoring_day() {
    let activities = synthetic_world(300, 3, 120, 5);
    let config = PropensityConfig { horizon_days: 30.0, lookback_days: 60.0, l2: 1.0 };
    let report = fit_propensity(&build_examples(&activities, 60.0, &config), &config).expect("fit");
    let scores = score_candidates(&report.params, &activities, 120.0);
    let examples = build_examples(&activities, 120.0, &config);
    assert_eq!(scores.len(), examples.len());
    for (score, example) in scores.iter().zip(&examples) {
        assert_eq!((score.0, score.1), (example.user, example.category));
        assert_eq!(score.2, report.params.probability(&example.features));
        assert!(score.2 > 0.0 && score.2 < 1.0);
    }
}

#[test]
fn explanation_names_the_feature_that_raises_the_probability_most() {
    let mut model = PropensityModel {
        feature_names: FEATURES.map(|feature| feature.name),
        weights: [0.0; FEATURE_COUNT],
        intercept: -2.0,
        feature_means: [1.0; FEATURE_COUNT],
        base_rate: 0.1,
        config: PropensityConfig::default(),
    };
    model.weights[1] = 0.5; // views_30d
    model.weights[4] = 2.0; // purchases_lookback
    model.weights[5] = -1.0; // days_since_activity
    let mut features = [1.0; FEATURE_COUNT];
    features[1] = 4.0; // +1.5
    features[4] = 1.5; // +1.0
    features[5] = 0.0; // +1.0
    let top = model.explain(&features);
    assert_eq!((top.name, top.contribution), ("views_30d", 1.5));
    let all = model.contributions(&features);
    assert_eq!(all.len(), FEATURE_COUNT);
    assert_eq!(all[0], top);
    let expected_log_odds: f64 = -2.0 + 0.5 * 4.0 + 2.0 * 1.5;
    assert!((model.probability(&features) - sigmoid(expected_log_odds)).abs() < 1e-15);
}
