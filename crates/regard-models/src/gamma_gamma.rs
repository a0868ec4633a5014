//! The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV: Using
//! Iso-Value Curves for Customer Base Analysis", and Fader & Hardie's note "The Gamma-Gamma Model
//! of Monetary Value"), and customer lifetime value combining it with BG/NBD.
//!
//! Each purchase of a customer is worth z ~ Gamma(p, ν), with ν ~ Gamma(q, v) across customers,
//! so a customer's mean spend over x purchases, z̄, has a closed-form likelihood and posterior
//! mean. The model assumes spend is independent of the purchase process and needs z̄ > 0.

use crate::bgnbd::{self, BgNbdParams};
use crate::optimize::{self, MinimizeOptions, Objective};
use crate::special::{digamma, ln_gamma};
use crate::{FitReport, ModelError};

/// The three Gamma-Gamma parameters; `v` is in the currency of the spend data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GammaGammaParams {
    /// Shape of the spend distribution of a single purchase.
    pub p: f64,
    /// Shape of the distribution of customers' spend rates ν.
    pub q: f64,
    /// Scale of the distribution of customers' spend rates ν, in currency units.
    pub v: f64,
}

impl GammaGammaParams {
    /// Checks that every parameter is positive and finite, the model's domain.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (name, value) in [("p", self.p), ("q", self.q), ("v", self.v)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ModelError::InvalidParameters(format!(
                    "Gamma-Gamma `{name}` must be positive and finite, got {value}"
                )));
            }
        }
        Ok(())
    }

    /// The population mean spend per purchase, p v / (q − 1), or an error when q ≤ 1 makes it
    /// infinite.
    pub fn population_mean_spend(&self) -> Result<f64, ModelError> {
        self.validate()?;
        if self.q <= 1.0 {
            return Err(ModelError::InvalidParameters(format!(
                "the mean spend is infinite when q <= 1 (q = {})",
                self.q
            )));
        }
        Ok(self.p * self.v / (self.q - 1.0))
    }
}

/// One repeat buyer's spend history with a weight, the unit the Gamma-Gamma likelihood is
/// summed over.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpendObservation {
    /// x: the number of repeat purchases the mean is over (> 0).
    pub frequency: f64,
    /// z̄: the mean spend per repeat purchase (> 0).
    pub monetary: f64,
    /// How many customers this history stands for.
    pub weight: f64,
}

impl SpendObservation {
    /// One customer with x purchases of mean value z̄.
    pub fn new(frequency: f64, monetary: f64) -> Self {
        SpendObservation { frequency, monetary, weight: 1.0 }
    }
}

/// The log-likelihood of one customer's mean spend z̄ over x purchases:
/// ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln v + (px−1) ln z̄ + px ln x − (px+q) ln(x z̄ + v).
pub fn customer_log_likelihood(params: &GammaGammaParams, frequency: f64, monetary: f64) -> Result<f64, ModelError> {
    params.validate()?;
    validate_spend(frequency, monetary)?;
    let GammaGammaParams { p, q, v } = *params;
    let px = p * frequency;
    let value =
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * v.ln() + (px - 1.0) * monetary.ln() + px * frequency.ln()
            - (px + q) * (frequency * monetary + v).ln();
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::Numerical { context: "Gamma-Gamma log-likelihood", message: format!("the result was {value}") })
    }
}

/// Checks a spend history: x > 0 and z̄ > 0, both finite.
fn validate_spend(frequency: f64, monetary: f64) -> Result<(), ModelError> {
    if !(frequency.is_finite() && frequency > 0.0) {
        return Err(ModelError::input(
            "frequency",
            format!("the spend model needs at least one repeat purchase, got x = {frequency}"),
        ));
    }
    if !(monetary.is_finite() && monetary > 0.0) {
        return Err(ModelError::input(
            "monetary",
            format!("the spend model needs a positive mean spend, got {monetary}"),
        ));
    }
    Ok(())
}

/// The total weighted Gamma-Gamma log-likelihood of `observations`: what [`fit`] maximises.
pub fn log_likelihood(params: &GammaGammaParams, observations: &[SpendObservation]) -> Result<f64, ModelError> {
    params.validate()?;
    let data = GroupedSpend::new(observations)?;
    let objective = NegativeMeanLogLikelihood { data: &data };
    let value = -objective.value(&to_log_space(params)) * data.total_weight;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::Numerical { context: "Gamma-Gamma log-likelihood", message: format!("the result was {value}") })
    }
}

/// E[M | x, z̄]: the expected spend per future purchase of a customer, a credibility-weighted
/// mix of the population mean and their own mean, (p v + p x z̄) / (p x + q − 1). For x = 0 it is
/// the population mean p v / (q − 1), as in lifetimes.
pub fn expected_average_profit(params: &GammaGammaParams, frequency: f64, monetary: f64) -> Result<f64, ModelError> {
    params.validate()?;
    if !(frequency.is_finite() && frequency >= 0.0) {
        return Err(ModelError::input("frequency", format!("must be finite and >= 0, got {frequency}")));
    }
    if frequency == 0.0 {
        return params.population_mean_spend();
    }
    if !monetary.is_finite() {
        return Err(ModelError::input("monetary", format!("must be finite, got {monetary}")));
    }
    let GammaGammaParams { p, q, v } = *params;
    let denominator = p * frequency + q - 1.0;
    if denominator <= 0.0 {
        return Err(ModelError::InvalidParameters(format!(
            "the expected spend is infinite when p x + q <= 1 (p x + q = {})",
            denominator + 1.0
        )));
    }
    Ok((p * v + p * frequency * monetary) / denominator)
}

/// How the CLV horizon is cut into discounting periods.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClvHorizon {
    /// Number of periods to sum over (12 for a year of months).
    pub periods: u32,
    /// Discount rate per period (0.01 for 1 % a month).
    pub discount_rate_per_period: f64,
    /// Length of one period in the time unit of the BG/NBD fit (4.345 weeks per month, as in
    /// lifetimes; 30 days per month).
    pub time_units_per_period: f64,
}

/// The discounted expected value of a customer's purchases over the horizon, following
/// lifetimes' `customer_lifetime_value` (discrete steps, end-of-period discounting):
///
///   CLV = Σ_{k=1..K} E[M | x, z̄] · (E[Y(kΔ) | x, t_x, T] − E[Y((k−1)Δ) | x, t_x, T]) / (1 + d)^k
///
/// with Δ = `time_units_per_period`, d = `discount_rate_per_period`, E[M] from
/// [`expected_average_profit`] and E[Y] from [`bgnbd::expected_purchases`].
pub fn customer_lifetime_value(
    bgnbd: &BgNbdParams,
    gamma_gamma: &GammaGammaParams,
    frequency: f64,
    recency: f64,
    age: f64,
    monetary: f64,
    horizon: &ClvHorizon,
) -> Result<f64, ModelError> {
    if !(horizon.time_units_per_period.is_finite() && horizon.time_units_per_period > 0.0) {
        return Err(ModelError::input(
            "time units per period",
            format!("must be positive, got {}", horizon.time_units_per_period),
        ));
    }
    if !(horizon.discount_rate_per_period.is_finite() && horizon.discount_rate_per_period > -1.0) {
        return Err(ModelError::input(
            "discount rate",
            format!("must be above -1, got {}", horizon.discount_rate_per_period),
        ));
    }
    let spend = expected_average_profit(gamma_gamma, frequency, monetary)?;
    let mut value = 0.0;
    let mut previous = 0.0;
    let mut discount = 1.0;
    for k in 1..=horizon.periods {
        let cumulative =
            bgnbd::expected_purchases(bgnbd, f64::from(k) * horizon.time_units_per_period, frequency, recency, age)?;
        discount /= 1.0 + horizon.discount_rate_per_period;
        value += spend * (cumulative - previous) * discount;
        previous = cumulative;
    }
    Ok(value)
}

/// Spend histories grouped by identical (x, z̄), with the logarithms that do not depend on the
/// parameters computed once.
struct GroupedSpend {
    /// Distinct x values, ascending.
    frequencies: Vec<f64>,
    /// Total weight of each distinct x.
    frequency_weights: Vec<f64>,
    /// Distinct (x, z̄) pairs.
    groups: Vec<SpendGroup>,
    total_weight: f64,
    /// Weighted mean of z̄, the scale of v.
    mean_spend: f64,
}

/// A distinct (x, z̄) pair with its weight and data-only terms.
struct SpendGroup {
    frequency: u32,
    x: f64,
    monetary: f64,
    /// ln z̄ + ln x, the data part of the p-gradient.
    ln_monetary_plus_ln_x: f64,
    /// ln z̄.
    ln_monetary: f64,
    weight: f64,
}

impl GroupedSpend {
    fn new(observations: &[SpendObservation]) -> Result<Self, ModelError> {
        let mut keyed = Vec::with_capacity(observations.len());
        for (index, observation) in observations.iter().enumerate() {
            validate_spend(observation.frequency, observation.monetary)
                .map_err(|error| ModelError::input("observations", format!("#{index}: {error}")))?;
            if !(observation.weight.is_finite() && observation.weight >= 0.0) {
                return Err(ModelError::input("observations", format!("#{index}: weight must be finite and >= 0")));
            }
            if observation.weight > 0.0 {
                keyed.push((observation.frequency.to_bits(), observation.monetary.to_bits(), observation.weight));
            }
        }
        keyed.sort_unstable_by_key(|k| (k.0, k.1));
        let mut frequencies: Vec<f64> = Vec::new();
        let mut frequency_weights = Vec::new();
        let mut groups: Vec<SpendGroup> = Vec::new();
        let mut total_weight = 0.0;
        let mut weighted_spend = 0.0;
        for (frequency_bits, monetary_bits, weight) in keyed {
            let x = f64::from_bits(frequency_bits);
            let monetary = f64::from_bits(monetary_bits);
            total_weight += weight;
            weighted_spend += weight * monetary;
            if frequencies.last().map(|f| f.to_bits()) != Some(frequency_bits) {
                frequencies.push(x);
                frequency_weights.push(0.0);
            }
            if let Some(last) = frequency_weights.last_mut() {
                *last += weight;
            }
            if let Some(group) = groups.last_mut() {
                if group.x.to_bits() == frequency_bits && group.monetary.to_bits() == monetary_bits {
                    group.weight += weight;
                    continue;
                }
            }
            groups.push(SpendGroup {
                frequency: (frequencies.len() - 1) as u32,
                x,
                monetary,
                ln_monetary_plus_ln_x: monetary.ln() + x.ln(),
                ln_monetary: monetary.ln(),
                weight,
            });
        }
        if total_weight <= 0.0 {
            return Err(ModelError::InsufficientData(
                "the spend model needs at least one repeat buyer with positive spend".to_owned(),
            ));
        }
        Ok(GroupedSpend {
            frequencies,
            frequency_weights,
            groups,
            total_weight,
            mean_spend: weighted_spend / total_weight,
        })
    }
}

/// Parameters to log-space coordinates.
fn to_log_space(params: &GammaGammaParams) -> [f64; 3] {
    [params.p.ln(), params.q.ln(), params.v.ln()]
}

/// Log-space coordinates back to parameters.
fn from_log_space(theta: &[f64; 3]) -> GammaGammaParams {
    GammaGammaParams { p: theta[0].exp(), q: theta[1].exp(), v: theta[2].exp() }
}

/// −LL / Σ weights as a function of the log-parameters, with its analytic gradient.
struct NegativeMeanLogLikelihood<'a> {
    data: &'a GroupedSpend,
}

impl NegativeMeanLogLikelihood<'_> {
    fn evaluate(&self, theta: &[f64; 3], with_gradient: bool) -> (f64, [f64; 3]) {
        let GammaGammaParams { p, q, v } = from_log_space(theta);
        if !(p > 0.0 && q > 0.0 && v > 0.0 && p.is_finite() && q.is_finite() && v.is_finite()) {
            return (f64::INFINITY, [0.0; 3]);
        }
        let data = self.data;
        let ln_v = v.ln();
        let ln_gamma_q = ln_gamma(q);
        let digamma_q = if with_gradient { digamma(q) } else { 0.0 };
        // Per distinct x: ln Γ(px+q) − ln Γ(px), and the digammas of the gradient.
        let mut per_x = Vec::with_capacity(data.frequencies.len());
        let mut total = 0.0;
        let mut d_p = 0.0;
        let mut d_q = 0.0;
        for (&x, &weight) in data.frequencies.iter().zip(&data.frequency_weights) {
            let px = p * x;
            total += weight * (ln_gamma(px + q) - ln_gamma(px) - ln_gamma_q + q * ln_v);
            if with_gradient {
                let digamma_sum = digamma(px + q);
                d_p += weight * x * (digamma_sum - digamma(px));
                d_q += weight * (digamma_sum - digamma_q + ln_v);
            }
            per_x.push(px);
        }
        let mut d_v = 0.0;
        for group in &data.groups {
            let px = per_x[group.frequency as usize];
            let pooled = group.x * group.monetary + v;
            let ln_pooled = pooled.ln();
            let weight = group.weight;
            total += weight * ((px - 1.0) * group.ln_monetary + px * group.x.ln() - (px + q) * ln_pooled);
            if with_gradient {
                d_p += weight * group.x * (group.ln_monetary_plus_ln_x - ln_pooled);
                d_q -= weight * ln_pooled;
                d_v += weight * (q / v - (px + q) / pooled);
            }
        }
        let scale = -1.0 / data.total_weight;
        let value = total * scale;
        if !value.is_finite() {
            return (f64::INFINITY, [0.0; 3]);
        }
        (value, [d_p * p * scale, d_q * q * scale, d_v * v * scale])
    }
}

impl Objective<3> for NegativeMeanLogLikelihood<'_> {
    fn value(&self, theta: &[f64; 3]) -> f64 {
        self.evaluate(theta, false).0
    }

    fn value_and_gradient(&self, theta: &[f64; 3]) -> (f64, [f64; 3]) {
        self.evaluate(theta, true)
    }
}

/// How far from its starting scale a log-parameter may go: e^18.4 ≈ 1e8 either way.
const LOG_RANGE: f64 = 18.420_680_743_952_367;

/// Fits the Gamma-Gamma model by maximum likelihood on repeat buyers' (x, z̄).
///
/// Pass only customers with x > 0 and z̄ > 0 (the others carry no spend information; an
/// observation outside that domain is refused). The search mirrors [`bgnbd::fit`]: Nelder–Mead
/// with restarts over log-parameters, then BFGS with the analytic gradient, starting from
/// p = 1, q = 2, v = the mean z̄. A fitted q ≤ 1 (infinite mean spend) is reported as a warning.
pub fn fit(observations: &[SpendObservation]) -> Result<FitReport<GammaGammaParams>, ModelError> {
    let data = GroupedSpend::new(observations)?;
    let spend_scale = data.mean_spend;
    let initial = GammaGammaParams { p: 1.0, q: 2.0, v: spend_scale };
    let objective = NegativeMeanLogLikelihood { data: &data };
    let ln_scale = spend_scale.ln();
    let minimum = optimize::minimize(
        &objective,
        to_log_space(&initial),
        [-LOG_RANGE, -LOG_RANGE, ln_scale - LOG_RANGE],
        [LOG_RANGE, LOG_RANGE, ln_scale + LOG_RANGE],
        &MinimizeOptions::default(),
    );
    if !minimum.value.is_finite() {
        return Err(ModelError::Numerical {
            context: "Gamma-Gamma fit",
            message: "the optimiser found no point with a finite likelihood".to_owned(),
        });
    }
    let mut warnings = Vec::new();
    let verdict = optimize::finish_report(&objective, &minimum, data.total_weight, &["p", "q", "v"], &mut warnings);
    let params = from_log_space(&minimum.theta);
    if params.q <= 1.0 {
        warnings.push(format!(
            "q = {:.4} <= 1: the population mean spend is infinite, so expected spend is \
             defined only for repeat buyers with p x + q > 1",
            params.q
        ));
    }
    Ok(FitReport {
        params,
        log_likelihood: verdict.log_likelihood,
        iterations: minimum.iterations,
        converged: verdict.converged,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lifetimes 0.11.3 Gamma-Gamma fit on CDNOW (`tests/data/cdnow_reference_results.json`).
    const CDNOW: GammaGammaParams =
        GammaGammaParams { p: 6.248802496072247, q: 3.744588460923599, v: 15.447748064939473 };

    fn check(what: &str, actual: f64, expected: f64, relative: f64) {
        let error = (actual - expected).abs() / expected.abs();
        assert!(error <= relative, "{what}: got {actual}, expected {expected}");
    }

    #[test]
    fn expected_spend_of_a_one_timer_is_the_population_mean() {
        // README of the reference data: p v / (q − 1) = 35.171.
        let mean = expected_average_profit(&CDNOW, 0.0, 0.0).expect("valid");
        check("population mean", mean, 35.1710021525, 1e-10);
    }

    #[test]
    fn expected_spend_moves_from_the_population_mean_towards_the_own_mean() {
        let mean = CDNOW.population_mean_spend().expect("finite");
        let mut previous_gap = f64::INFINITY;
        for x in [1.0, 2.0, 10.0, 100.0] {
            let expected = expected_average_profit(&CDNOW, x, 100.0).expect("valid");
            assert!(expected > mean && expected < 100.0);
            let gap = 100.0 - expected;
            assert!(gap < previous_gap, "more purchases weigh the own mean more");
            previous_gap = gap;
        }
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let observations = [
            SpendObservation::new(1.0, 11.77),
            SpendObservation::new(2.0, 22.35),
            SpendObservation::new(7.0, 73.74),
            SpendObservation::new(7.0, 73.74),
        ];
        let data = GroupedSpend::new(&observations).expect("valid");
        let objective = NegativeMeanLogLikelihood { data: &data };
        let theta = to_log_space(&CDNOW);
        let (_, gradient) = objective.value_and_gradient(&theta);
        for i in 0..3 {
            let h = 1e-6;
            let mut forward = theta;
            let mut backward = theta;
            forward[i] += h;
            backward[i] -= h;
            let numeric = (objective.value(&forward) - objective.value(&backward)) / (2.0 * h);
            assert!((numeric - gradient[i]).abs() < 1e-8, "component {i}");
        }
    }

    #[test]
    fn grouped_likelihood_equals_the_sum_over_customers() {
        let pairs = [(1.0, 11.77), (2.0, 22.35), (2.0, 22.35), (7.0, 73.74)];
        let observations: Vec<SpendObservation> = pairs.iter().map(|&(x, m)| SpendObservation::new(x, m)).collect();
        let summed: f64 = pairs.iter().map(|&(x, m)| customer_log_likelihood(&CDNOW, x, m).expect("valid")).sum();
        check("grouped", log_likelihood(&CDNOW, &observations).expect("valid"), summed, 1e-14);
    }

    #[test]
    fn spend_outside_the_model_domain_is_refused() {
        let table = [
            SpendObservation::new(0.0, 10.0),
            SpendObservation::new(1.0, 0.0),
            SpendObservation::new(1.0, -5.0),
            SpendObservation::new(1.0, f64::NAN),
        ];
        for observation in table {
            let error = fit(&[observation]).expect_err("outside the domain");
            assert!(error.is_user_error(), "{observation:?}: {error}");
        }
        let infinite_mean = GammaGammaParams { q: 0.5, ..CDNOW };
        assert!(expected_average_profit(&infinite_mean, 0.0, 0.0).is_err());
    }

    #[test]
    fn clv_without_discount_is_spend_times_expected_purchases() {
        let bgnbd = BgNbdParams {
            r: 0.2425929282798217,
            alpha: 4.413532265271817,
            a: 0.7928859664406721,
            b: 2.4257523826257996,
        };
        let horizon = ClvHorizon { periods: 12, discount_rate_per_period: 0.0, time_units_per_period: 4.345 };
        let clv = customer_lifetime_value(&bgnbd, &CDNOW, 2.0, 30.43, 38.86, 22.35, &horizon).expect("valid");
        let spend = expected_average_profit(&CDNOW, 2.0, 22.35).expect("valid");
        let purchases = bgnbd::expected_purchases(&bgnbd, 12.0 * 4.345, 2.0, 30.43, 38.86).expect("valid");
        check("undiscounted CLV", clv, spend * purchases, 1e-12);
    }
}
