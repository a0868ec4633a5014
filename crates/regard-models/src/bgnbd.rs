//! The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005, "Counting Your Customers the
//! Easy Way"), fitted by maximum likelihood on (x, t_x, T) summaries.
//!
//! While alive, a customer buys at Poisson rate λ ~ Gamma(r, α); after every repeat purchase they
//! drop out for good with probability p ~ Beta(a, b). Equation numbers below are the paper's.
//!
//! Everything is computed in log space or in forms without removable singularities, so the
//! functions stay accurate for large x and T, for P(alive) near zero and for a near 1; they return
//! an error rather than NaN when the inputs or parameters are out of their domain.

use crate::optimize::{self, MinimizeOptions, Objective};
use crate::rfm::CustomerSummary;
use crate::special::{
    cubic_through_symmetric_points, digamma_shift, hyp2f1, ln_gamma, ln_gamma_shift, log_add_exp,
    regularized_incomplete_beta, sum_series,
};
use crate::{FitReport, ModelError};

/// The four BG/NBD parameters. `alpha` is in the time unit of the data it was fitted on.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BgNbdParams {
    /// Shape of the Gamma distribution of purchase rates λ.
    pub r: f64,
    /// Rate parameter of the Gamma distribution of purchase rates λ; it has the dimension of time,
    /// so it is in the time unit of the data.
    pub alpha: f64,
    /// First shape of the Beta distribution of drop-out probabilities p.
    pub a: f64,
    /// Second shape of the Beta distribution of drop-out probabilities p.
    pub b: f64,
}

impl BgNbdParams {
    /// Checks that every parameter is positive and finite, the model's domain.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (name, value) in [("r", self.r), ("alpha", self.alpha), ("a", self.a), ("b", self.b)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ModelError::InvalidParameters(format!(
                    "BG/NBD `{name}` must be positive and finite, got {value}"
                )));
            }
        }
        Ok(())
    }
}

/// One customer's calibration history with a weight, the unit the likelihood is summed over.
/// A weight of n stands for n customers with the same history, which is how identical histories
/// are grouped to make fitting fast.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    /// x: the number of repeat purchases, a whole number.
    pub frequency: f64,
    /// t_x: the time of the last repeat purchase since the first purchase.
    pub recency: f64,
    /// T: the time since the first purchase at the end of calibration.
    pub age: f64,
    /// How many customers this history stands for (non-negative, need not be whole).
    pub weight: f64,
}

impl Observation {
    /// One customer with history (x, t_x, T).
    pub fn new(frequency: f64, recency: f64, age: f64) -> Self {
        Observation { frequency, recency, age, weight: 1.0 }
    }
}

impl From<&CustomerSummary> for Observation {
    fn from(summary: &CustomerSummary) -> Self {
        Observation::new(summary.frequency, summary.recency, summary.age)
    }
}

/// Checks a (x, t_x, T) history: x a whole number ≥ 0, 0 ≤ t_x ≤ T, all finite, and t_x = 0
/// when x = 0.
fn validate_history(frequency: f64, recency: f64, age: f64) -> Result<(), ModelError> {
    if !(frequency.is_finite() && frequency >= 0.0 && frequency == frequency.round()) {
        return Err(ModelError::input(
            "frequency",
            format!("must be a whole number of repeat purchases >= 0, got {frequency}"),
        ));
    }
    if !(recency.is_finite() && recency >= 0.0) {
        return Err(ModelError::input("recency", format!("must be finite and >= 0, got {recency}")));
    }
    if !(age.is_finite() && age >= recency) {
        return Err(ModelError::input("age", format!("must be finite and at least the recency {recency}, got {age}")));
    }
    if frequency == 0.0 && recency != 0.0 {
        return Err(ModelError::input(
            "recency",
            format!("must be 0 for a customer with no repeat purchase, got {recency}"),
        ));
    }
    Ok(())
}

/// Checks a prediction horizon.
fn validate_horizon(t: f64) -> Result<(), ModelError> {
    if !(t.is_finite() && t >= 0.0) {
        return Err(ModelError::input("horizon", format!("must be finite and >= 0, got {t}")));
    }
    Ok(())
}

/// The log-likelihood of one customer's history (x, t_x, T), FHL 2005 eq. (6), computed with a
/// log-sum-exp so that it stays finite when either branch underflows.
pub fn customer_log_likelihood(
    params: &BgNbdParams,
    frequency: f64,
    recency: f64,
    age: f64,
) -> Result<f64, ModelError> {
    params.validate()?;
    validate_history(frequency, recency, age)?;
    let BgNbdParams { r, alpha, a, b } = *params;
    let x = frequency;
    let base = ln_gamma_shift(r, x) + r * alpha.ln() + ln_gamma_shift(b, x) - ln_gamma_shift(a + b, x);
    let alive_branch = -(r + x) * (alpha + age).ln();
    let value = if x > 0.0 {
        let dropped_branch = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + recency).ln();
        base + log_add_exp(alive_branch, dropped_branch)
    } else {
        base + alive_branch
    };
    finite("log-likelihood", value)
}

/// The total weighted log-likelihood of `observations` at `params`: what [`fit`] maximises.
pub fn log_likelihood(params: &BgNbdParams, observations: &[Observation]) -> Result<f64, ModelError> {
    params.validate()?;
    let data = GroupedHistories::new(observations)?;
    let objective = NegativeMeanLogLikelihood { data: &data };
    let value = objective.value(&to_log_space(params));
    finite("log-likelihood", -value * data.total_weight)
}

/// P(alive | x, t_x, T): the probability that a customer with this history has not yet dropped
/// out at the end of calibration (FHL 2005 eq. (13)).
pub fn probability_alive(params: &BgNbdParams, frequency: f64, recency: f64, age: f64) -> Result<f64, ModelError> {
    params.validate()?;
    validate_history(frequency, recency, age)?;
    Ok(alive(params, frequency, recency, age))
}

/// P(alive) for validated inputs, as a logistic function of the log-odds of having dropped out,
/// which keeps it accurate down to the smallest doubles.
fn alive(params: &BgNbdParams, x: f64, recency: f64, age: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let BgNbdParams { r, alpha, a, b } = *params;
    let log_odds_dropped = a.ln() - (b + x - 1.0).ln() + (r + x) * ((age - recency) / (alpha + recency)).ln_1p();
    if log_odds_dropped > 0.0 {
        let odds_alive = (-log_odds_dropped).exp();
        odds_alive / (1.0 + odds_alive)
    } else {
        1.0 / (1.0 + log_odds_dropped.exp())
    }
}

/// E[Y(t) | x, t_x, T]: the expected number of purchases in the next `t` time units for a
/// customer with this calibration history (FHL 2005 eq. (10)).
pub fn expected_purchases(
    params: &BgNbdParams,
    t: f64,
    frequency: f64,
    recency: f64,
    age: f64,
) -> Result<f64, ModelError> {
    params.validate()?;
    validate_history(frequency, recency, age)?;
    validate_horizon(t)?;
    let if_alive = expected_purchases_if_alive(params, t, frequency, age)?;
    finite("expected purchases", if_alive * alive(params, frequency, recency, age))
}

/// E[X(t)]: the expected number of repeat purchases in the first `t` time units of a new
/// customer (FHL 2005 eq. (9)).
pub fn expected_purchases_unconditional(params: &BgNbdParams, t: f64) -> Result<f64, ModelError> {
    params.validate()?;
    validate_horizon(t)?;
    // A new customer is one with x = 0 and T = 0, who is alive by definition.
    expected_purchases_if_alive(params, t, 0.0, 0.0)
}

/// Below this 1 − z the series for the expectation needs more than ~40,000 terms, and the
/// hypergeometric transformation takes over.
const SERIES_MIN_ONE_MINUS_Z: f64 = 1e-3;

/// The expected purchases in (T, T + t] of a customer known to be alive at T:
/// (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^{r+x} 2F1(r+x, b+x; a+b+x−1; z)], z = t/(α+T+t).
///
/// That form has a removable singularity at a = 1 and, for x = 0, at a + b = 1. Euler's
/// transformation 2F1(A, B; C; z) = (1−z)^{C−A−B} 2F1(C−A, C−B; C; z) turns it into
///
///   c · E₁ − (1−z)^{a−1} Σ_{k≥1} (P)_k (a)_{k−1} z^k / (k! (c+1)_{k−1}),
///
/// with c = a+b+x−1, P = a+b−1−r and E₁ = (1 − (1−z)^{a−1}) / (a−1) (→ −ln(1−z) at a = 1), in
/// which nothing divides by a − 1 or by c. The series converges for z < 1, in about 40/(1−z)
/// terms; for horizons beyond ~1000 (α+T) the 1 − z transformation inside [`hyp2f1`] is used
/// on the original form, with a within 2e-3 of 1 handled by cubic interpolation in a through
/// a = 1 ± 1e-3, 1 ± 2e-3 (accurate to ~1e-10 relative in that corner only), and likewise in b
/// where c is a non-positive integer.
fn expected_purchases_if_alive(params: &BgNbdParams, t: f64, x: f64, age: f64) -> Result<f64, ModelError> {
    if t == 0.0 {
        return Ok(0.0);
    }
    let BgNbdParams { r, alpha, a, b } = *params;
    let one_minus_z = (alpha + age) / (alpha + age + t);
    let z = t / (alpha + age + t);
    if one_minus_z < SERIES_MIN_ONE_MINUS_Z {
        return expected_if_alive_by_transformation(params, z, one_minus_z, x);
    }
    let c = a + b + x - 1.0;
    let p = a + b - 1.0 - r;
    let ln_one_minus_z = one_minus_z.ln();
    let e1 = if a == 1.0 { -ln_one_minus_z } else { -((a - 1.0) * ln_one_minus_z).exp_m1() / (a - 1.0) };
    let positive_from = (-p - 1.0).max(0.0);
    let series =
        sum_series(p * z, z, positive_from, 4_000_000, |j| (p + j + 1.0) * (a + j) * z / ((c + j + 1.0) * (j + 2.0)))
            .map_err(|error| ModelError::numerical("expected purchases", error))?;
    let value = c * e1 - ((a - 1.0) * ln_one_minus_z).exp() * series;
    finite("expected purchases", value.max(0.0))
}

/// The original form of [`expected_purchases_if_alive`] through [`hyp2f1`], for z within 1e-3 of 1.
fn expected_if_alive_by_transformation(
    params: &BgNbdParams,
    z: f64,
    one_minus_z: f64,
    x: f64,
) -> Result<f64, ModelError> {
    let BgNbdParams { r, b, .. } = *params;
    let original_form = |a: f64, b: f64| -> Result<f64, ModelError> {
        let c = a + b + x - 1.0;
        let hypergeometric =
            hyp2f1(r + x, b + x, c, z).map_err(|error| ModelError::numerical("expected purchases", error))?;
        Ok(c / (a - 1.0) * (1.0 - ((r + x) * one_minus_z.ln()).exp() * hypergeometric))
    };
    // 2F1 is undefined where c = a + b + x − 1 is a non-positive integer (only possible for
    // x = 0 and a + b ≤ 1), though the expectation is not: interpolate in b across such a pole.
    const NEAR_POLE: f64 = 1e-6;
    const POLE_STEP: f64 = 1e-4;
    let across_poles = |a: f64| -> Result<f64, ModelError> {
        let c = a + b + x - 1.0;
        let pole = c.round();
        if pole <= 0.0 && (c - pole).abs() < NEAR_POLE {
            let b_at_pole = b - (c - pole);
            cubic_through_symmetric_points(b - b_at_pole, POLE_STEP, |offset| original_form(a, b_at_pole + offset))
        } else {
            original_form(a, b)
        }
    };
    const NEAR_ONE: f64 = 1e-3;
    let a = params.a;
    let value = if (a - 1.0).abs() < 2.0 * NEAR_ONE {
        cubic_through_symmetric_points(a - 1.0, NEAR_ONE, |offset| across_poles(1.0 + offset))?
    } else {
        across_poles(a)?
    };
    finite("expected purchases", value.max(0.0))
}

/// P(X(t) = n): the probability that a new customer makes exactly `n` repeat purchases in their
/// first `t` time units (FHL 2005 eq. (8)).
///
/// The second term's 1 − Σ_{j<n} NB(j) is the upper tail of a negative binomial, computed as the
/// regularised incomplete beta I_q(n, r) with q = t/(α+t), so it does not cancel to zero when
/// the tail is small.
pub fn probability_of_n_purchases(params: &BgNbdParams, t: f64, n: u64) -> Result<f64, ModelError> {
    params.validate()?;
    validate_horizon(t)?;
    if t == 0.0 {
        return Ok(if n == 0 { 1.0 } else { 0.0 });
    }
    let BgNbdParams { r, alpha, a, b } = *params;
    let n_f = n as f64;
    let ln_p0 = -(t / alpha).ln_1p();
    let ln_q = t.ln() - (alpha + t).ln();
    let ln_first = ln_gamma_shift(b, n_f) - ln_gamma_shift(a + b, n_f) + ln_gamma_shift(r, n_f) - ln_gamma(n_f + 1.0)
        + r * ln_p0
        + n_f * ln_q;
    let mut probability = ln_first.exp();
    if n > 0 {
        let ln_coefficient = a.ln() + ln_gamma_shift(b, n_f - 1.0) - ln_gamma_shift(a + b, n_f);
        let tail = regularized_incomplete_beta(n_f, r, ln_q.exp(), ln_p0.exp())
            .map_err(|error| ModelError::numerical("probability of n purchases", error))?;
        probability += ln_coefficient.exp() * tail;
    }
    finite("probability of n purchases", probability.clamp(0.0, 1.0))
}

/// Draws one customer's calibration history from the BG/NBD process: λ ~ Gamma(r, α), p ~
/// Beta(a, b), purchases at rate λ from time 0 until `age`, dropping out after each repeat
/// purchase with probability p. `uniform` must return independent draws from (0, 1); the
/// function does no I/O and owns no generator, so a seeded caller gets reproducible data.
pub fn simulate(params: &BgNbdParams, age: f64, uniform: &mut impl FnMut() -> f64) -> Result<Observation, ModelError> {
    params.validate()?;
    if !(age.is_finite() && age >= 0.0) {
        return Err(ModelError::input("age", format!("must be finite and >= 0, got {age}")));
    }
    let rate = sample_gamma(params.r, uniform) / params.alpha;
    let dropout_x = sample_gamma(params.a, uniform);
    let dropout_y = sample_gamma(params.b, uniform);
    let dropout = dropout_x / (dropout_x + dropout_y);
    let mut time = 0.0;
    let mut frequency = 0.0;
    let mut recency = 0.0;
    // A customer with rate zero (possible only through underflow) never buys again.
    if rate > 0.0 {
        loop {
            time += -open_unit(uniform).ln() / rate;
            if time > age {
                break;
            }
            frequency += 1.0;
            recency = time;
            if open_unit(uniform) < dropout {
                break;
            }
        }
    }
    Ok(Observation::new(frequency, recency, age))
}

/// A uniform draw kept strictly inside (0, 1), so its logarithm is finite.
fn open_unit(uniform: &mut impl FnMut() -> f64) -> f64 {
    uniform().clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON)
}

/// A Gamma(shape, 1) draw by Marsaglia & Tsang (2000), with the U^{1/shape} boost for shape < 1.
fn sample_gamma(shape: f64, uniform: &mut impl FnMut() -> f64) -> f64 {
    if shape < 1.0 {
        return sample_gamma(shape + 1.0, uniform) * open_unit(uniform).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        // A standard normal by Box–Muller.
        let normal = (-2.0 * open_unit(uniform).ln()).sqrt() * (2.0 * std::f64::consts::PI * open_unit(uniform)).cos();
        let v = (1.0 + c * normal).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = open_unit(uniform);
        if u.ln() < 0.5 * normal * normal + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Options of [`fit`].
#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    /// Where to start the search; by default r = a = b = 1 and α = the mean age, which puts α on
    /// the scale of the data whatever the time unit.
    pub initial: Option<BgNbdParams>,
}

/// Histories grouped into identical (x, t_x, T) triples, with the distinct values of each
/// coordinate kept apart so that the logarithms of α + t_x and α + T are computed once per
/// distinct value rather than once per customer.
struct GroupedHistories {
    /// Distinct x values, ascending.
    frequencies: Vec<f64>,
    /// Total weight of each distinct x.
    frequency_weights: Vec<f64>,
    /// Distinct t_x values.
    recencies: Vec<f64>,
    /// Distinct T values.
    ages: Vec<f64>,
    /// One entry per distinct triple, sorted by x.
    groups: Vec<Group>,
    /// The sum of all weights.
    total_weight: f64,
    /// The weighted mean of T, for the default starting α.
    mean_age: f64,
}

/// A distinct (x, t_x, T) triple as indices into [`GroupedHistories`], with its total weight.
#[derive(Debug, Clone, Copy)]
struct Group {
    frequency: u32,
    recency: u32,
    age: u32,
    weight: f64,
}

impl GroupedHistories {
    fn new(observations: &[Observation]) -> Result<Self, ModelError> {
        let mut keyed = Vec::with_capacity(observations.len());
        for (index, observation) in observations.iter().enumerate() {
            validate_history(observation.frequency, observation.recency, observation.age)
                .map_err(|error| ModelError::input("observations", format!("#{index}: {error}")))?;
            if !(observation.weight.is_finite() && observation.weight >= 0.0) {
                return Err(ModelError::input("observations", format!("#{index}: weight must be finite and >= 0")));
            }
            if observation.weight > 0.0 {
                // Adding 0.0 turns a -0.0 into +0.0 so that the bit patterns group equal values.
                keyed.push((
                    (observation.frequency + 0.0).to_bits(),
                    (observation.recency + 0.0).to_bits(),
                    (observation.age + 0.0).to_bits(),
                    observation.weight,
                ));
            }
        }
        // Non-negative doubles order like their bit patterns, so sorting the bits sorts the values.
        keyed.sort_unstable_by_key(|k| (k.0, k.1, k.2));
        let distinct = |values: Vec<u64>| -> Vec<u64> {
            let mut values = values;
            values.sort_unstable();
            values.dedup();
            values
        };
        let recency_bits = distinct(keyed.iter().map(|k| k.1).collect());
        let age_bits = distinct(keyed.iter().map(|k| k.2).collect());
        let mut frequencies = Vec::new();
        let mut frequency_weights = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut total_weight = 0.0;
        let mut weighted_age = 0.0;
        let mut previous = None;
        for (frequency, recency, age, weight) in keyed {
            total_weight += weight;
            weighted_age += weight * f64::from_bits(age);
            if frequencies.last().map(|f: &f64| f.to_bits()) != Some(frequency) {
                frequencies.push(f64::from_bits(frequency));
                frequency_weights.push(0.0);
            }
            if let Some(last) = frequency_weights.last_mut() {
                *last += weight;
            }
            let key = (frequency, recency, age);
            if previous == Some(key) {
                if let Some(group) = groups.last_mut() {
                    group.weight += weight;
                }
                continue;
            }
            previous = Some(key);
            groups.push(Group {
                frequency: (frequencies.len() - 1) as u32,
                recency: recency_bits.binary_search(&recency).unwrap_or(0) as u32,
                age: age_bits.binary_search(&age).unwrap_or(0) as u32,
                weight,
            });
        }
        if total_weight <= 0.0 {
            return Err(ModelError::InsufficientData("no customer with a positive weight".to_owned()));
        }
        Ok(GroupedHistories {
            frequencies,
            frequency_weights,
            recencies: recency_bits.into_iter().map(f64::from_bits).collect(),
            ages: age_bits.into_iter().map(f64::from_bits).collect(),
            groups,
            total_weight,
            mean_age: weighted_age / total_weight,
        })
    }
}

/// Parameters to the log-space coordinates the optimiser works in.
fn to_log_space(params: &BgNbdParams) -> [f64; 4] {
    [params.r.ln(), params.alpha.ln(), params.a.ln(), params.b.ln()]
}

/// Log-space coordinates back to parameters.
fn from_log_space(theta: &[f64; 4]) -> BgNbdParams {
    BgNbdParams { r: theta[0].exp(), alpha: theta[1].exp(), a: theta[2].exp(), b: theta[3].exp() }
}

/// −LL / Σ weights as a function of the log-parameters, with its analytic gradient.
struct NegativeMeanLogLikelihood<'a> {
    data: &'a GroupedHistories,
}

impl NegativeMeanLogLikelihood<'_> {
    fn evaluate(&self, theta: &[f64; 4], with_gradient: bool) -> (f64, [f64; 4]) {
        let BgNbdParams { r, alpha, a, b } = from_log_space(theta);
        let data = self.data;
        if !(r > 0.0 && alpha > 0.0 && a > 0.0 && b > 0.0 && r.is_finite() && alpha.is_finite())
            || !(a.is_finite() && b.is_finite())
        {
            return (f64::INFINITY, [0.0; 4]);
        }
        let ln_alpha = alpha.ln();
        let ln_ages: Vec<f64> = data.ages.iter().map(|age| (alpha + age).ln()).collect();
        let ln_recencies: Vec<f64> = data.recencies.iter().map(|t| (alpha + t).ln()).collect();
        let ln_a = a.ln();

        // Terms that depend on x only, weighted by the total weight of each x.
        let mut total = 0.0;
        let mut d_r = 0.0;
        let mut d_alpha = 0.0;
        let mut d_a = 0.0;
        let mut d_b = 0.0;
        let mut dropped_log_odds = Vec::with_capacity(data.frequencies.len());
        for (&x, &weight) in data.frequencies.iter().zip(&data.frequency_weights) {
            let base = ln_gamma_shift(r, x) + r * ln_alpha + ln_gamma_shift(b, x) - ln_gamma_shift(a + b, x);
            total += weight * base;
            dropped_log_odds.push(if x > 0.0 { ln_a - (b + x - 1.0).ln() } else { 0.0 });
            if with_gradient {
                d_r += weight * (digamma_shift(r, x) + ln_alpha);
                d_alpha += weight * r / alpha;
                d_a -= weight * digamma_shift(a + b, x);
                d_b += weight * (digamma_shift(b, x) - digamma_shift(a + b, x));
            }
        }

        let mut product_of_unit_factors = 1.0_f64;
        for group in &data.groups {
            let x = data.frequencies[group.frequency as usize];
            let shape = r + x;
            let ln_age = ln_ages[group.age as usize];
            let alive_branch = -shape * ln_age;
            let weight = group.weight;
            if x == 0.0 {
                total += weight * alive_branch;
                if with_gradient {
                    d_r -= weight * ln_age;
                    d_alpha -= weight * shape / (alpha + data.ages[group.age as usize]);
                }
                continue;
            }
            let ln_recency = ln_recencies[group.recency as usize];
            let dropped_branch = dropped_log_odds[group.frequency as usize] - shape * ln_recency;
            let difference = alive_branch - dropped_branch;
            let small = (-difference.abs()).exp();
            total += weight * alive_branch.max(dropped_branch);
            // The log-sum-exp's ln(1 + s), s ≤ 1, is the costliest step of the likelihood. For
            // unit weights the factors 1 + s are multiplied up and their logarithm taken once per
            // ~800 customers: each factor is at most 2, the product stays far from overflow,
            // and its rounding error (~1e-16 per factor) is far below what the fit resolves.
            if weight == 1.0 {
                product_of_unit_factors *= 1.0 + small;
                if product_of_unit_factors > 1e240 {
                    total += product_of_unit_factors.ln();
                    product_of_unit_factors = 1.0;
                }
            } else {
                total += weight * (1.0 + small).ln();
            }
            if with_gradient {
                // The posterior share of the "dropped after the last purchase" branch.
                let dropped_share = if difference > 0.0 { small / (1.0 + small) } else { 1.0 / (1.0 + small) };
                let alive_share = 1.0 - dropped_share;
                let inverse_age = 1.0 / (alpha + data.ages[group.age as usize]);
                let inverse_recency = 1.0 / (alpha + data.recencies[group.recency as usize]);
                d_r -= weight * (alive_share * ln_age + dropped_share * ln_recency);
                d_alpha -= weight * shape * (alive_share * inverse_age + dropped_share * inverse_recency);
                d_a += weight * dropped_share / a;
                d_b -= weight * dropped_share / (b + x - 1.0);
            }
        }
        total += product_of_unit_factors.ln();
        let scale = -1.0 / data.total_weight;
        let value = total * scale;
        if !value.is_finite() {
            return (f64::INFINITY, [0.0; 4]);
        }
        let gradient = [d_r * r * scale, d_alpha * alpha * scale, d_a * a * scale, d_b * b * scale];
        (value, gradient)
    }
}

impl Objective<4> for NegativeMeanLogLikelihood<'_> {
    fn value(&self, theta: &[f64; 4]) -> f64 {
        self.evaluate(theta, false).0
    }

    fn value_and_gradient(&self, theta: &[f64; 4]) -> (f64, [f64; 4]) {
        self.evaluate(theta, true)
    }
}

/// How far from its starting scale a log-parameter may go: e^18.4 ≈ 1e8 either way.
const LOG_RANGE: f64 = 18.420_680_743_952_367;

/// Parameter names in log-space order, for warnings.
const NAMES: [&str; 4] = ["r", "alpha", "a", "b"];

/// Fits BG/NBD by maximum likelihood on weighted (x, t_x, T) histories.
///
/// Identical histories are grouped first, so the cost grows with the number of distinct
/// histories rather than customers. The search runs over log-parameters: Nelder–Mead with
/// restarts to find the basin, then BFGS with the analytic gradient to polish the optimum. The
/// parameters are kept within a factor 1e8 of their starting scale; a parameter that ends on that
/// edge means the likelihood keeps rising towards a limiting model, and is reported as a warning
/// with `converged: false`. A flat or poorly determined likelihood (judged from the Hessian) is
/// reported as a warning too.
pub fn fit(observations: &[Observation], options: &FitOptions) -> Result<FitReport<BgNbdParams>, ModelError> {
    let data = GroupedHistories::new(observations)?;
    let age_scale = if data.mean_age > 0.0 { data.mean_age } else { 1.0 };
    let initial = match options.initial {
        Some(initial) => {
            initial.validate()?;
            initial
        }
        None => BgNbdParams { r: 1.0, alpha: age_scale, a: 1.0, b: 1.0 },
    };
    let ln_scale = age_scale.ln();
    let lower = [-LOG_RANGE, ln_scale - LOG_RANGE, -LOG_RANGE, -LOG_RANGE];
    let upper = [LOG_RANGE, ln_scale + LOG_RANGE, LOG_RANGE, LOG_RANGE];
    let objective = NegativeMeanLogLikelihood { data: &data };
    let start = to_log_space(&initial);
    if !objective.value(&start).is_finite() {
        return Err(ModelError::InvalidParameters(format!(
            "the likelihood is undefined at the initial parameters {initial:?}"
        )));
    }
    let minimum = optimize::minimize(&objective, start, lower, upper, &MinimizeOptions::default());
    if !minimum.value.is_finite() {
        return Err(ModelError::Numerical {
            context: "BG/NBD fit",
            message: "the optimiser found no point with a finite likelihood".to_owned(),
        });
    }

    let mut warnings = Vec::new();
    if data.frequencies.iter().all(|&x| x == 0.0) {
        warnings.push(
            "no customer made a repeat purchase: the drop-out parameters a and b are not \
             identified"
                .to_owned(),
        );
    }
    let report = optimize::finish_report(&objective, &minimum, data.total_weight, &NAMES, &mut warnings);
    let params = from_log_space(&minimum.theta);
    Ok(FitReport {
        params,
        log_likelihood: report.log_likelihood,
        iterations: minimum.iterations,
        converged: report.converged,
        warnings,
    })
}

/// Passes a finite value through and turns anything else into an internal fault.
fn finite(context: &'static str, value: f64) -> Result<f64, ModelError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::Numerical { context, message: format!("the result was {value}") })
    }
}

#[cfg(test)]
#[path = "bgnbd_tests.rs"]
mod tests;
