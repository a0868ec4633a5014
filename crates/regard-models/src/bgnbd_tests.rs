//! Unit tests of the BG/NBD internals: identities the formulas must satisfy, the seams between
//! computational paths, and robustness at the edges. The published CDNOW figures are checked in
//! `tests/cdnow.rs`.

use rand::{Rng, SeedableRng};

use super::*;

/// The lifetimes 0.11.3 fit on the CDNOW sample (`tests/data/cdnow_reference_results.json`).
const CDNOW: BgNbdParams =
    BgNbdParams { r: 0.2425929282798217, alpha: 4.413532265271817, a: 0.7928859664406721, b: 2.4257523826257996 };

/// Asserts `actual` is within `relative` of `expected`.
fn check(what: &str, actual: f64, expected: f64, relative: f64) {
    let error = (actual - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
    assert!(error <= relative, "{what}: got {actual:e}, expected {expected:e}, relative error {error:e}");
}

#[test]
fn probabilities_of_n_purchases_sum_to_one_and_to_the_expectation() {
    for t in [0.5, 10.0, 39.0, 200.0] {
        let mut total = 0.0;
        let mut mean = 0.0;
        for n in 0..20_000_u64 {
            let p = probability_of_n_purchases(&CDNOW, t, n).expect("valid");
            total += p;
            mean += n as f64 * p;
            if n > 50 && p < 1e-18 {
                break;
            }
        }
        check(&format!("sum at t={t}"), total, 1.0, 1e-12);
        let expected = expected_purchases_unconditional(&CDNOW, t).expect("valid");
        check(&format!("mean at t={t}"), mean, expected, 1e-10);
    }
}

#[test]
fn expectation_is_continuous_through_a_equal_one() {
    for x in [0.0, 3.0] {
        let at = |a: f64| {
            let params = BgNbdParams { a, ..CDNOW };
            expected_purchases(&params, 39.0, x, 10.0 * x.min(1.0), 38.0).expect("valid")
        };
        let exact = at(1.0);
        check("a = 1 - 1e-9", at(1.0 - 1e-9), exact, 1e-8);
        check("a = 1 + 1e-9", at(1.0 + 1e-9), exact, 1e-8);
    }
}

#[test]
fn expectation_is_continuous_where_a_plus_b_equals_one() {
    let at = |b: f64| {
        let params = BgNbdParams { a: 0.4, b, ..CDNOW };
        expected_purchases_unconditional(&params, 20.0).expect("valid")
    };
    check("a + b = 1", at(0.6), 0.5 * (at(0.6 - 1e-7) + at(0.6 + 1e-7)), 1e-10);
}

#[test]
fn series_and_hypergeometric_transformation_agree_where_they_meet() {
    // Just above and below 1 - z = 1e-3 the two computational paths must agree.
    for (a, x) in [(0.79, 0.0), (2.5, 0.0), (0.79, 4.0), (1.0005, 2.0)] {
        let params = BgNbdParams { a, ..CDNOW };
        let age = 30.0;
        let t_series = 990.0 * (params.alpha + age);
        let t_transform = 1010.0 * (params.alpha + age);
        let series = expected_purchases_if_alive(&params, t_series, x, age).expect("series");
        let transformed = expected_purchases_if_alive(&params, t_transform, x, age).expect("2F1");
        let via_2f1_at_series_point = expected_if_alive_by_transformation(
            &params,
            t_series / (params.alpha + age + t_series),
            (params.alpha + age) / (params.alpha + age + t_series),
            x,
        )
        .expect("2F1");
        check("paths agree", via_2f1_at_series_point, series, 1e-10);
        assert!(transformed > series, "expectation grows with the horizon");
    }
}

#[test]
fn extreme_histories_give_finite_answers() {
    let table = [
        // (x, t_x, T): a heavy buyer long gone, a heavy buyer just seen, a long-lived one-timer.
        (500.0, 1.0, 5_000.0),
        (500.0, 4_999.0, 5_000.0),
        (0.0, 0.0, 1e6),
        (1.0, 1e-9, 1e6),
    ];
    for (x, t_x, age) in table {
        let ll = customer_log_likelihood(&CDNOW, x, t_x, age).expect("valid");
        let alive = probability_alive(&CDNOW, x, t_x, age).expect("valid");
        let expected = expected_purchases(&CDNOW, 52.0, x, t_x, age).expect("valid");
        // A density in t_x, the likelihood may exceed 1; it must only be finite.
        assert!(ll.is_finite(), "LL({x}, {t_x}, {age}) = {ll}");
        assert!((0.0..=1.0).contains(&alive), "P(alive) = {alive}");
        assert!(expected.is_finite() && expected >= 0.0, "E = {expected}");
    }
    // The heavy buyer who vanished 4,999 weeks ago is as good as gone.
    let gone = probability_alive(&CDNOW, 500.0, 1.0, 5_000.0).expect("valid");
    assert!(gone < 1e-300, "P(alive) = {gone}");
}

#[test]
fn grouped_likelihood_equals_the_sum_over_customers() {
    let histories = [
        (0.0, 0.0, 38.86),
        (0.0, 0.0, 38.86),
        (2.0, 30.43, 38.86),
        (7.0, 29.43, 38.86),
        (2.0, 30.43, 38.86),
        (1.0, 1.71, 32.0),
    ];
    let observations: Vec<Observation> = histories.iter().map(|&(x, t_x, age)| Observation::new(x, t_x, age)).collect();
    let summed: f64 =
        histories.iter().map(|&(x, t_x, age)| customer_log_likelihood(&CDNOW, x, t_x, age).expect("valid")).sum();
    let grouped = log_likelihood(&CDNOW, &observations).expect("valid");
    check("grouped", grouped, summed, 1e-14);
}

#[test]
fn analytic_gradient_matches_finite_differences() {
    let observations: Vec<Observation> =
        [(0.0, 0.0, 38.86), (2.0, 30.43, 38.86), (7.0, 29.43, 38.86), (1.0, 1.71, 32.0), (30.0, 10.0, 39.0)]
            .iter()
            .map(|&(x, t_x, age)| Observation::new(x, t_x, age))
            .collect();
    let data = GroupedHistories::new(&observations).expect("valid");
    let objective = NegativeMeanLogLikelihood { data: &data };
    let theta = to_log_space(&CDNOW);
    let (_, gradient) = objective.value_and_gradient(&theta);
    for i in 0..4 {
        let h = 1e-6;
        let mut forward = theta;
        let mut backward = theta;
        forward[i] += h;
        backward[i] -= h;
        let numeric = (objective.value(&forward) - objective.value(&backward)) / (2.0 * h);
        assert!((numeric - gradient[i]).abs() < 1e-8, "d/d{}: analytic {} numeric {numeric}", NAMES[i], gradient[i]);
    }
}

#[test]
fn invalid_inputs_are_user_errors_not_nan() {
    let bad_params = BgNbdParams { r: -1.0, ..CDNOW };
    let table: [(&str, Result<f64, ModelError>); 7] = [
        ("negative r", probability_alive(&bad_params, 1.0, 1.0, 2.0)),
        ("fractional x", probability_alive(&CDNOW, 1.5, 1.0, 2.0)),
        ("recency beyond age", probability_alive(&CDNOW, 1.0, 3.0, 2.0)),
        ("recency without repeats", probability_alive(&CDNOW, 0.0, 1.0, 2.0)),
        ("NaN age", expected_purchases(&CDNOW, 1.0, 1.0, 1.0, f64::NAN)),
        ("negative horizon", expected_purchases(&CDNOW, -1.0, 1.0, 1.0, 2.0)),
        ("infinite horizon", expected_purchases_unconditional(&CDNOW, f64::INFINITY)),
    ];
    for (what, result) in table {
        let error = result.expect_err(what);
        assert!(error.is_user_error(), "{what}: {error}");
    }
    assert!(fit(&[], &FitOptions::default()).is_err());
}

/// Draws `customers` histories from `params` with ages spread over 27–39 weeks, rounded to whole
/// days as real data are.
fn synthetic(params: &BgNbdParams, customers: usize, seed: u64) -> Vec<Observation> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..customers)
        .map(|_| {
            let age_days = rng.gen_range(189..=273) as f64;
            let mut uniform = || rng.gen::<f64>();
            let drawn = simulate(params, age_days / 7.0, &mut uniform).expect("valid");
            let recency_days = (drawn.recency * 7.0).floor();
            Observation::new(drawn.frequency, recency_days / 7.0, age_days / 7.0)
        })
        .collect()
}

#[test]
fn fit_recovers_the_parameters_it_simulated_from() {
    let observations = synthetic(&CDNOW, 20_000, 7);
    let report = fit(&observations, &FitOptions::default()).expect("fit");
    assert!(report.converged, "{report:?}");
    // With 20,000 customers (about 8.5× CDNOW) the standard errors are roughly a third of the
    // paper's (r 0.0126, alpha 0.378, a 0.186, b 0.705); allow about four of them.
    let fitted = report.params;
    check("r", fitted.r, CDNOW.r, 0.1);
    check("alpha", fitted.alpha, CDNOW.alpha, 0.15);
    check("a", fitted.a, CDNOW.a, 0.45);
    check("b", fitted.b, CDNOW.b, 0.55);
}

#[test]
fn fit_without_repeat_buyers_reports_instead_of_pretending() {
    let observations: Vec<Observation> = (0..50).map(|i| Observation::new(0.0, 0.0, 10.0 + i as f64)).collect();
    let report = fit(&observations, &FitOptions::default()).expect("fit");
    assert!(report.log_likelihood.is_finite());
    assert!(!report.converged || !report.warnings.is_empty(), "{report:?}");
    assert!(report.warnings.iter().any(|w| w.contains("not")), "{:?}", report.warnings);
}

#[test]
fn weights_stand_for_repeated_customers() {
    let single = [Observation::new(2.0, 30.0, 38.0), Observation::new(0.0, 0.0, 38.0)];
    let weighted = [Observation { weight: 3.0, ..single[0] }, Observation { weight: 2.0, ..single[1] }];
    let repeated = [single[0], single[0], single[0], single[1], single[1]];
    check(
        "weighted",
        log_likelihood(&CDNOW, &weighted).expect("valid"),
        log_likelihood(&CDNOW, &repeated).expect("valid"),
        1e-14,
    );
}

#[test]
fn long_horizons_and_degenerate_parameters_match_mpmath() {
    // E[Y(t) | x, t_x, T] from FHL 2005 eq. (10) in mpmath at 40 digits (80 for the c = 0 row,
    // where the printed form is 0 · ∞ and the value is its limit). The first rows take the
    // hypergeometric-transformation path (1 − z < 1e-3), two of them with a within 2e-3 of 1.
    let cdnow = [CDNOW.r, CDNOW.alpha, CDNOW.a, CDNOW.b];
    let near_one = [CDNOW.r, CDNOW.alpha, 1.0005, CDNOW.b];
    let table: [([f64; 4], f64, f64, f64, f64, f64); 8] = [
        (cdnow, 10_000.0, 0.0, 0.0, 0.0, 15.055072233370435),
        (cdnow, 100_000.0, 0.0, 0.0, 0.0, 29.59016246443118),
        (cdnow, 5_000.0, 2.0, 30.43, 38.86, 19.445228518385715),
        (cdnow, 1e6, 7.0, 29.43, 38.86, 188.64497776051266),
        (near_one, 20_000.0, 0.0, 0.0, 0.0, 10.044634119837031),
        (near_one, 20_000.0, 3.0, 20.0, 39.0, 12.227670208611402),
        ([CDNOW.r, CDNOW.alpha, 3.5, CDNOW.b], 50_000.0, 1.0, 5.0, 39.0, 0.22257579524052798),
        // a + b − 1 = 0 exactly: c = 0 in 2F1(r, b; c; z).
        ([1.5, 0.01, 0.4, 0.6], 52.0, 0.0, 0.0, 0.0, 224.21784769474234),
    ];
    for ([r, alpha, a, b], t, x, t_x, age, expected) in table {
        let params = BgNbdParams { r, alpha, a, b };
        let actual = expected_purchases(&params, t, x, t_x, age).expect("valid");
        check(&format!("E[Y({t})] at {params:?}, x = {x}"), actual, expected, 1e-9);
    }
}
