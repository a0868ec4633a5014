//! Tests of the next-order prediction: the quantile functions against closed forms and reference
//! values, recovery of a known cadence prior from simulated customers, and the behaviour the
//! reminders rely on.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::optimize::assert_gradient;

/// The lifetimes 0.11.3 fit on CDNOW, in weeks, as a realistic population model.
const CDNOW: BgNbdParams =
    BgNbdParams { r: 0.2425929282798217, alpha: 4.413532265271817, a: 0.7928859664406721, b: 2.4257523826257996 };

/// A standard normal draw by Box–Muller.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// One simulated customer's gaps in days: `count` log-normal gaps around `cadence_days` with
/// log-spread `spread`.
fn gaps(rng: &mut ChaCha8Rng, cadence_days: f64, spread: f64, count: usize) -> Vec<f64> {
    (0..count).map(|_| cadence_days * (spread * normal(rng)).exp()).collect()
}

/// Customers drawn from the model itself: ln cadence ~ N(`mean_log_gap`, `between_sd`²),
/// σᵢ² = σ₀² ν₀ / χ²_ν₀ with a whole ν₀, 2 to 12 gaps each.
fn model_population(
    rng: &mut ChaCha8Rng,
    customers: usize,
    mean_log_gap: f64,
    between_sd: f64,
    within_sd: f64,
    within_df: usize,
) -> Vec<Vec<f64>> {
    (0..customers)
        .map(|_| {
            let cadence = (mean_log_gap + between_sd * normal(rng)).exp();
            let chi_square: f64 = (0..within_df).map(|_| normal(rng).powi(2)).sum();
            let spread = within_sd * (within_df as f64 / chi_square).sqrt();
            let count = rng.gen_range(2..=12);
            gaps(rng, cadence, spread, count)
        })
        .collect()
}

/// A coffee shop's customers: a third replenish like clockwork (log-spread 0.03–0.1), the rest buy
/// when it occurs to them (0.3–0.8); cadences around a month.
fn coffee_shop_population(rng: &mut ChaCha8Rng, customers: usize) -> Vec<Vec<f64>> {
    (0..customers)
        .map(|customer_idx| {
            let cadence = (30.0_f64.ln() + 0.4 * normal(rng)).exp();
            let spread = if customer_idx % 3 == 0 { rng.gen_range(0.03..0.1) } else { rng.gen_range(0.3..0.8) };
            let count = rng.gen_range(2..=10);
            gaps(rng, cadence, spread, count)
        })
        .collect()
}

/// Purchase days from a first day and gaps.
fn purchase_days(first_day: f64, gaps_days: &[f64]) -> Vec<f64> {
    let mut days = vec![first_day];
    for gap in gaps_days {
        let next = days[days.len() - 1] + gap;
        days.push(next);
    }
    days
}

/// The prior fitted on a simulated coffee shop of 3,000 customers.
fn coffee_shop_prior() -> CadencePrior {
    let mut rng = ChaCha8Rng::seed_from_u64(28);
    fit_cadence_prior(&coffee_shop_population(&mut rng, 3_000)).expect("fit")
}

/// Predicts for `gaps_days` starting at day 100, with now one day after the last purchase.
fn predict_for(prior: &CadencePrior, gaps_days: &[f64]) -> Option<NextOrderPrediction> {
    let days = purchase_days(100.0, gaps_days);
    let now = days[days.len() - 1] + 1.0;
    predict_next_order(&CDNOW, 7.0, prior, &days, now).expect("valid")
}

#[test]
fn normal_quantile_matches_reference_values() {
    // Reference values: √2 erfinv(2p − 1) in mpmath 1.3 at 40 digits.
    let table = [
        (0.5, 0.0),
        (0.6, 0.2533471031357997),
        (0.9, 1.2815515655446004),
        (0.975, 1.959963984540054),
        (0.999, 3.090232306167813),
        (0.02, -2.053748910631823),
        (1e-10, -6.361340902404056),
    ];
    for (probability, expected) in table {
        let actual = normal_quantile(probability);
        assert!(
            (actual - expected).abs() <= 2e-9 * expected.abs().max(1.0),
            "p = {probability}: {actual} vs {expected}"
        );
    }
    for probability in [1e-5, 0.01, 0.3] {
        assert!((normal_quantile(1.0 - probability) + normal_quantile(probability)).abs() < 1e-6, "{probability}");
    }
    assert!(normal_quantile(0.0) == f64::NEG_INFINITY && normal_quantile(1.0) == f64::INFINITY);
    assert!(normal_quantile(f64::NAN).is_nan() && normal_quantile(1.5).is_nan());
}

#[test]
fn student_t_quantile_matches_closed_forms_and_reference_values() {
    let check = |probability: f64, df: f64, expected: f64| {
        let actual = student_t_quantile(probability, df).expect("defined");
        assert!(
            (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "p = {probability}, df = {df}: {actual} vs {expected}"
        );
    };
    for probability in [0.001, 0.1, 0.2, 0.5, 0.8, 0.9, 0.975, 0.999] {
        // One degree of freedom is the Cauchy distribution: tan(π(p − ½)).
        check(probability, 1.0, (std::f64::consts::PI * (probability - 0.5)).tan());
        // Two: (2p − 1) / √(2p(1 − p)).
        check(probability, 2.0, (2.0 * probability - 1.0) / (2.0 * probability * (1.0 - probability)).sqrt());
        check(probability, 1e12, normal_quantile(probability));
        // Either side of the switch to the Cornish–Fisher expansion.
        let below = student_t_quantile(probability, 9_999.999).expect("defined");
        let above = student_t_quantile(probability, 10_000.0).expect("defined");
        // The expansion inherits the ~1e-9 relative error of the normal quantile it starts from.
        assert!((below - above).abs() <= 5e-9 * below.abs().max(1.0), "p = {probability}: {below} vs {above}");
    }
    // Reference values: the root of ½ I_{ν/(ν+t²)}(ν/2, ½) = tail by bisection in mpmath 1.3 at
    // 40 digits.
    check(0.975, 10.0, 2.228_138_851_986_275);
    check(0.9, 4.5, 1.5008853175085575);
    check(0.2, 7.0, -0.896029644313765);
    check(0.9, 0.3, 64.78654563709689);
    assert!(student_t_quantile(0.0, 3.0).is_err());
    assert!(student_t_quantile(0.5, f64::NAN).is_err());
}

#[test]
fn student_t_quantile_inverts_the_distribution_function_for_any_df() {
    for df in [0.15, 0.5, 1.3, 3.7, 30.0, 9_999.0] {
        for probability in [1e-6, 0.01, 0.1, 0.2, 0.45, 0.55, 0.8, 0.9, 0.99, 1.0 - 1e-6] {
            let t: f64 = student_t_quantile(probability, df).expect("defined");
            let t2 = t * t;
            let tail =
                0.5 * regularized_incomplete_beta(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2)).expect("defined");
            let lower = if t < 0.0 { tail } else { 1.0 - tail };
            assert!(
                (lower - probability).abs() <= 1e-10 * probability.min(1.0 - probability),
                "df {df}, p {probability}: t {t}"
            );
        }
    }
}

#[test]
fn fit_recovers_a_known_cadence_prior() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let population = model_population(&mut rng, 4_000, 30.0_f64.ln(), 0.5, 0.25, 4);
    let prior = fit_cadence_prior(&population).expect("fit");
    assert_eq!(prior.customers, 4_000);
    assert!((prior.mean_log_gap_days - 30.0_f64.ln()).abs() < 0.04, "{prior:?}");
    assert!((prior.between_sd - 0.5).abs() < 0.05, "{prior:?}");
    assert!((prior.within_sd - 0.25).abs() < 0.03, "{prior:?}");
    assert!(prior.within_df > 2.0 && prior.within_df < 8.0, "{prior:?}");
}

#[test]
fn likelihood_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let population = model_population(&mut rng, 300, 30.0_f64.ln(), 0.5, 0.25, 4);
    let summaries: Vec<GapSummary> = population.iter().map(|gaps| GapSummary::new(gaps)).collect();
    let within = WithinVarianceLikelihood::new(&summaries);
    for theta in [[-3.0, 0.5], [-1.0, 2.0], [-4.0, -1.5], [-2.8, 6.0]] {
        assert_gradient(&within, theta);
    }
    let moderated: Vec<(f64, f64)> = summaries
        .iter()
        .map(|summary| (summary.mean_log_gap, summary.moderated_variance(0.06, 3.0) / summary.gaps))
        .collect();
    let between = BetweenVarianceLikelihood { customers: &moderated };
    for theta in [[-6.0], [-1.4], [0.5]] {
        assert_gradient(&between, theta);
    }
}

#[test]
fn regular_coffee_buyer_is_predicted_on_cadence_and_reminded_a_few_days_early() {
    let prior = coffee_shop_prior();
    let prediction = predict_for(&prior, &[28.0, 28.0, 27.0, 29.0, 28.0]).expect("five gaps");
    let last_day = 100.0 + 140.0;
    let expected_after = prediction.expected_day - last_day;
    let reminder_after = prediction.reminder_day - last_day;
    assert!((expected_after - 28.0).abs() <= 1.5, "expected {expected_after} days after: {prediction:?} {prior:?}");
    assert!((24.0..=27.0).contains(&reminder_after), "reminder {reminder_after} days after: {prediction:?} {prior:?}");
    assert!(prediction.low_day < prediction.reminder_day && prediction.reminder_day < prediction.expected_day);
    assert!(prediction.expected_day < prediction.high_day);
    assert_eq!(prediction.own_gaps, 5);
    assert_eq!(prediction.interval_level, INTERVAL_LEVEL);
    assert!(!prediction.overdue);
}

#[test]
fn erratic_customer_gets_a_wider_interval_than_a_regular_one() {
    let prior = coffee_shop_prior();
    let regular = predict_for(&prior, &[28.0, 28.0, 27.0, 29.0, 28.0]).expect("five gaps");
    let erratic = predict_for(&prior, &[12.0, 45.0, 20.0, 60.0, 28.0]).expect("five gaps");
    let width = |prediction: &NextOrderPrediction| prediction.high_day - prediction.low_day;
    assert!(width(&erratic) > 3.0 * width(&regular), "{erratic:?} vs {regular:?}");
}

#[test]
fn fewer_than_three_purchases_give_no_prediction() {
    let prior = coffee_shop_prior();
    for days in [vec![], vec![10.0], vec![10.0, 38.0]] {
        let now = days.last().copied().unwrap_or(0.0) + 5.0;
        assert_eq!(predict_next_order(&CDNOW, 7.0, &prior, &days, now).expect("valid"), None, "{days:?}");
    }
}

#[test]
fn own_weight_grows_with_the_number_of_gaps() {
    let prior = coffee_shop_prior();
    let mut previous = 0.0;
    for count in 2..=12 {
        let prediction = predict_for(&prior, &vec![21.0; count]).expect("enough gaps");
        assert!(prediction.own_weight > previous, "{count} gaps: {prediction:?}");
        assert!(prediction.own_weight < 1.0);
        previous = prediction.own_weight;
    }
}

#[test]
fn few_gaps_are_shrunk_toward_the_population_cadence() {
    let prior = coffee_shop_prior();
    let population_cadence = prior.mean_log_gap_days.exp();
    let short = predict_for(&prior, &[10.0, 10.0]).expect("two gaps");
    assert!(short.typical_gap_days > 10.0 && short.typical_gap_days < population_cadence, "{short:?}");
}

#[test]
fn customer_far_past_their_cadence_is_overdue() {
    let prior = coffee_shop_prior();
    let days = purchase_days(0.0, &[28.0, 28.0, 27.0, 29.0, 28.0]);
    let last_day = days[days.len() - 1];
    let on_time = predict_next_order(&CDNOW, 7.0, &prior, &days, last_day + 20.0).expect("valid").expect("5 gaps");
    let late = predict_next_order(&CDNOW, 7.0, &prior, &days, last_day + 90.0).expect("valid").expect("5 gaps");
    assert!(!on_time.overdue && late.overdue, "{on_time:?} {late:?}");
    // Waiting does not move the cadence; it lowers the chance the customer is still active.
    assert_eq!(on_time.expected_day, late.expected_day);
    assert!(late.p_alive < on_time.p_alive);
}

#[test]
fn p_alive_is_bgnbd_at_now_in_the_models_units() {
    let prior = coffee_shop_prior();
    let days = [3.0, 31.0, 60.0, 87.0];
    let prediction = predict_next_order(&CDNOW, 7.0, &prior, &days, 150.0).expect("valid").expect("3 gaps");
    let expected = bgnbd::probability_alive(&CDNOW, 3.0, 84.0 / 7.0, 147.0 / 7.0).expect("valid");
    assert_eq!(prediction.p_alive, expected);
}

#[test]
fn prior_without_between_spread_predicts_the_population_cadence() {
    let prior = CadencePrior {
        mean_log_gap_days: 30.0_f64.ln(),
        between_sd: 0.0,
        within_sd: 0.3,
        within_df: 4.0,
        customers: 9,
    };
    let prediction = predict_for(&prior, &[7.0, 7.0, 7.0]).expect("three gaps");
    assert_eq!(prediction.own_weight, 0.0);
    assert!((prediction.typical_gap_days - 30.0).abs() < 1e-9, "{prediction:?}");
}

#[test]
fn reminder_is_never_before_the_day_after_the_last_purchase() {
    let prior = CadencePrior { mean_log_gap_days: 0.0, between_sd: 0.5, within_sd: 1.5, within_df: 1.0, customers: 9 };
    let prediction = predict_for(&prior, &[0.5, 1.0, 0.5]).expect("three gaps");
    assert_eq!(prediction.reminder_day, 102.0 + 1.0);
}

#[test]
fn tiny_gaps_are_raised_to_half_a_day() {
    let prior = coffee_shop_prior();
    let tiny = predict_for(&prior, &[0.01, 0.02, 0.01]).expect("three gaps");
    let half_day = predict_for(&prior, &[0.5, 0.5, 0.5]).expect("three gaps");
    assert_eq!(tiny.typical_gap_days, half_day.typical_gap_days);
}

#[test]
fn bad_inputs_are_errors() {
    let prior = coffee_shop_prior();
    let days = [0.0, 28.0, 56.0];
    let predict = |unit_days: f64, prior: &CadencePrior, days: &[f64], now: f64| {
        predict_next_order(&CDNOW, unit_days, prior, days, now)
    };
    assert!(predict(0.0, &prior, &days, 60.0).is_err());
    assert!(predict(f64::NAN, &prior, &days, 60.0).is_err());
    assert!(predict(7.0, &prior, &[0.0, 28.0, f64::NAN], 60.0).is_err());
    assert!(predict(7.0, &prior, &[0.0, 56.0, 28.0], 60.0).is_err());
    assert!(predict(7.0, &prior, &[0.0, 28.0, 28.0], 60.0).is_err());
    assert!(predict(7.0, &prior, &days, 50.0).is_err());
    assert!(predict(7.0, &prior, &days, f64::INFINITY).is_err());
    let broken = CadencePrior { within_sd: f64::NAN, ..prior.clone() };
    assert!(predict(7.0, &broken, &days, 60.0).is_err());
    let absurd = CadencePrior { within_sd: 1e3, ..prior.clone() };
    assert!(predict(7.0, &absurd, &days, 60.0).is_err());
    assert!(predict(7.0, &prior, &[-1e308, 0.0, 1e308], 1e308).is_err());
    let bad_model = BgNbdParams { r: -1.0, ..CDNOW };
    assert!(predict_next_order(&bad_model, 7.0, &prior, &days, 60.0).is_err());

    assert!(matches!(fit_cadence_prior(&[]), Err(ModelError::InsufficientData(_))));
    assert!(matches!(fit_cadence_prior(&[vec![30.0, 31.0], vec![5.0]]), Err(ModelError::InsufficientData(_))));
    assert!(fit_cadence_prior(&[vec![30.0, -1.0], vec![5.0, 6.0]]).is_err());
    assert!(fit_cadence_prior(&[vec![30.0, f64::NAN], vec![5.0, 6.0]]).is_err());
}

#[test]
fn identical_gaps_everywhere_give_a_finite_prior() {
    let population = vec![vec![30.0; 4]; 50];
    let prior = fit_cadence_prior(&population).expect("fit");
    assert!((prior.mean_log_gap_days - 30.0_f64.ln()).abs() < 1e-9, "{prior:?}");
    assert!(prior.within_sd >= MIN_WITHIN_SD * 0.5 && prior.within_df.is_finite(), "{prior:?}");
    let prediction = predict_for(&prior, &[30.0, 30.0, 30.0]).expect("three gaps");
    assert!((prediction.expected_day - (100.0 + 90.0 + 30.0)).abs() < 1e-6, "{prediction:?}");
}
