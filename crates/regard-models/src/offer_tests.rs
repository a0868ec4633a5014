//! Tests of offer sensitivity: recovery of known Beta shapes from simulated customers, the
//! degenerate populations, and the shrinkage of single customers.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::optimize::assert_gradient;

/// A Beta(a, b) draw for whole a, b: the a-th smallest of a + b − 1 uniforms.
fn beta(rng: &mut ChaCha8Rng, a: usize, b: usize) -> f64 {
    let mut uniforms: Vec<f64> = (0..a + b - 1).map(|_| rng.gen()).collect();
    uniforms.sort_by(f64::total_cmp);
    uniforms[a - 1]
}

/// Customers with 1 to 20 purchases each, each purchase discounted with the customer's
/// propensity, drawn by `propensity`.
fn customers(
    rng: &mut ChaCha8Rng,
    count: usize,
    mut propensity: impl FnMut(&mut ChaCha8Rng) -> f64,
) -> Vec<(u32, u32)> {
    (0..count)
        .map(|_| {
            let share = propensity(rng);
            let purchases = rng.gen_range(1..=20_u32);
            let discounted = (0..purchases).filter(|_| rng.gen::<f64>() < share).count() as u32;
            (purchases, discounted)
        })
        .collect()
}

/// The prior fitted on 5,000 customers with propensities from Beta(2, 6).
fn fitted_beta_2_6() -> FitReport<OfferPrior> {
    let mut rng = ChaCha8Rng::seed_from_u64(26);
    fit_offer_prior(&customers(&mut rng, 5_000, |rng| beta(rng, 2, 6))).expect("fit")
}

#[test]
fn known_beta_shapes_are_recovered() {
    let report = fitted_beta_2_6();
    let OfferPrior { a, b, customers } = report.params;
    assert_eq!(customers, 5_000);
    assert!((a - 2.0).abs() < 0.3 && (b - 6.0).abs() < 0.9, "{report:?}");
    assert!(report.converged && report.warnings.is_empty(), "{report:?}");
    assert!(report.log_likelihood < 0.0 && report.log_likelihood.is_finite());
}

#[test]
fn likelihood_gradient_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let data = GroupedCounts::new(&customers(&mut rng, 500, |rng| beta(rng, 1, 3))).expect("valid");
    let objective = NegativeMeanLogLikelihood { data: &data };
    for theta in [[-1.0, 0.7], [0.3, -2.0], [-2.5, 5.0], [-1.1, 11.0]] {
        assert_gradient(&objective, theta);
    }
}

#[test]
fn log_likelihood_is_the_sum_of_beta_binomial_probabilities() {
    let counts = [(3, 1), (5, 0), (2, 2), (7, 3), (3, 1), (1, 0)];
    let report = fit_offer_prior(&counts).expect("fit");
    let OfferPrior { a, b, .. } = report.params;
    let ln_beta = |x: f64, y: f64| ln_gamma(x) + ln_gamma(y) - ln_gamma(x + y);
    let expected: f64 = counts
        .iter()
        .map(|&(n, k)| {
            let (n, k) = (f64::from(n), f64::from(k));
            ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0) + ln_beta(a + k, b + n - k) - ln_beta(a, b)
        })
        .sum();
    assert!((report.log_likelihood - expected).abs() < 1e-9, "{report:?} vs {expected}");
}

#[test]
fn customer_without_purchases_gets_the_population_share() {
    let prior = fitted_beta_2_6().params;
    let sensitivity = prior.predict(0, 0);
    assert_eq!(sensitivity.share, prior.population_share());
    assert_eq!(sensitivity.own_weight, 0.0);
    assert!((prior.population_share() - 0.25).abs() < 0.02, "{prior:?}");
}

#[test]
fn ten_of_ten_discounted_is_well_above_the_population_but_below_one() {
    let prior = fitted_beta_2_6().params;
    let sensitivity = prior.predict(10, 10);
    assert!(sensitivity.share > sensitivity.population_share + 0.3, "{sensitivity:?}");
    assert!(sensitivity.share < 0.9, "{sensitivity:?}");
    assert!((sensitivity.own_weight - 10.0 / (10.0 + prior.a + prior.b)).abs() < 1e-15);
    assert_eq!((sensitivity.purchases, sensitivity.discounted), (10, 10));
}

#[test]
fn predictions_are_shrunk_monotonically_toward_the_population() {
    let prior = fitted_beta_2_6().params;
    // Ever more full-price purchases pull the share ever further below the population's.
    let mut previous_share = prior.population_share();
    for purchases in [1, 2, 5, 20, 100] {
        let sensitivity = prior.predict(purchases, 0);
        assert!(sensitivity.share < previous_share && sensitivity.share > 0.0, "{sensitivity:?}");
        previous_share = sensitivity.share;
    }
    // More than `purchases` discounted is read as all of them, not as a share above 1.
    assert_eq!(prior.predict(3, 7), prior.predict(3, 3));
}

#[test]
fn nobody_using_a_discount_gives_a_small_share_and_a_warning() {
    let report = fit_offer_prior(&[(4, 0), (2, 0), (9, 0), (0, 0)]).expect("fit");
    assert_eq!(report.params.customers, 3);
    assert!((report.params.population_share() - 0.5 / 16.0).abs() < 1e-12, "{report:?}");
    assert!((report.params.a + report.params.b - UNIDENTIFIED_PRIOR_STRENGTH).abs() < 1e-12);
    assert!(!report.converged && report.warnings.len() == 1, "{report:?}");
    assert!(report.log_likelihood.is_finite());
    // A later customer who always uses one still stands out.
    assert!(report.params.predict(5, 5).share > 0.5);
}

#[test]
fn everybody_always_using_a_discount_gives_a_large_share_and_a_warning() {
    let report = fit_offer_prior(&[(4, 4), (2, 2), (9, 9)]).expect("fit");
    assert!((report.params.population_share() - 15.5 / 16.0).abs() < 1e-12, "{report:?}");
    assert!(!report.converged && report.warnings.len() == 1, "{report:?}");
}

#[test]
fn single_purchases_only_leave_the_strength_unidentified() {
    let report = fit_offer_prior(&[(1, 1), (1, 0), (1, 0), (1, 0)]).expect("fit");
    assert!((report.params.population_share() - 0.25).abs() < 1e-12, "{report:?}");
    assert!(!report.converged && report.warnings.len() == 1, "{report:?}");
}

#[test]
fn no_overdispersion_caps_the_prior_strength_with_a_warning() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let report = fit_offer_prior(&customers(&mut rng, 5_000, |_| 0.3)).expect("fit");
    let strength = report.params.a + report.params.b;
    assert!(strength >= MAX_PRIOR_STRENGTH * 0.999, "{report:?}");
    assert!(!report.converged && report.warnings.len() == 1, "{report:?}");
    assert!((report.params.population_share() - 0.3).abs() < 0.01, "{report:?}");
    assert!(report.params.predict(10, 10).share < 0.31);
}

#[test]
fn bad_inputs_are_errors() {
    assert!(matches!(fit_offer_prior(&[]), Err(ModelError::InsufficientData(_))));
    assert!(matches!(fit_offer_prior(&[(0, 0), (0, 0)]), Err(ModelError::InsufficientData(_))));
    assert!(matches!(fit_offer_prior(&[(3, 1), (2, 5)]), Err(ModelError::InvalidInput { .. })));
}

#[test]
fn hand_built_invalid_prior_predicts_without_nan() {
    let prior = OfferPrior { a: f64::NAN, b: -1.0, customers: 0 };
    let sensitivity = prior.predict(4, 1);
    assert_eq!(sensitivity.population_share, 0.5);
    assert!((sensitivity.share - 2.0 / 6.0).abs() < 1e-15);
}
