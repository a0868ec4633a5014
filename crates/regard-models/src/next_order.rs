//! When a repeat customer is due to buy again: a predicted next order day with an interval and a
//! reminder day, from the customer's own inter-purchase cadence shrunk toward the population's.
//!
//! The model works on the logarithm of the gaps between purchase occasions, in days. Customer i
//! has a typical log gap μᵢ and a spread σᵢ of their gaps around it:
//!
//! * μᵢ ~ N(m, τ²) across customers (τ is [`CadencePrior::between_sd`]);
//! * σᵢ² ~ scaled-inverse-χ²(ν₀, σ₀²) across customers (σ₀ is [`CadencePrior::within_sd`], ν₀ is
//!   [`CadencePrior::within_df`]), so that a coffee buyer who reorders like clockwork and an
//!   occasional buyer each keep their own spread, moderated toward the population's as in
//!   limma's moderated t (Smyth 2004, "Linear models and empirical Bayes methods for assessing
//!   differential expression");
//! * each log gap ~ N(μᵢ, σᵢ²).
//!
//! [`fit_cadence_prior`] estimates (m, τ, σ₀, ν₀) by empirical Bayes over the customers with at
//! least two gaps. [`predict_next_order`] updates μᵢ with the customer's own gaps (normal-normal,
//! precision-weighted) and predicts the next gap with the moderated Student t in log space, whose
//! quantiles give the interval and the reminder day.
//!
//! The BG/NBD model contributes P(alive) and only that. Its posterior purchase rate
//! (r + x)/(α + T) is computed from the very purchases whose gaps the cadence model already uses,
//! so mixing it into the cadence prior would count those purchases twice; and its Poisson
//! assumption is exactly what a regular customer violates. What BG/NBD knows that the gaps do not
//! is the chance that the customer has left for good, which a caller should weigh before sending
//! a reminder.

use crate::bgnbd::{self, BgNbdParams};
use crate::optimize::{self, MinimizeOptions, Objective};
use crate::special::{digamma, ln_gamma, regularized_incomplete_beta};
use crate::ModelError;

/// The fewest distinct purchase occasions a customer needs for a cadence prediction: three
/// occasions give two gaps, the least from which a customer's own spread can be estimated.
pub const MIN_PURCHASES_FOR_CADENCE: usize = 3;

/// The fewest customers with two or more gaps [`fit_cadence_prior`] accepts: the between-customer
/// spread is not identified by a single customer. Dozens are needed for a stable prior.
pub const MIN_CUSTOMERS_FOR_PRIOR: usize = 2;

/// Gaps shorter than this many days are raised to it before taking logarithms, so that two
/// purchase occasions hours apart do not produce a log gap near minus infinity.
pub const MIN_GAP_DAYS: f64 = 0.5;

/// The smallest within-customer spread of log gaps, about half a day on a monthly cadence.
/// Gaps recorded in whole days can be exactly equal, and a spread of zero would claim certainty
/// the day-level data cannot give.
pub const MIN_WITHIN_SD: f64 = 0.02;

/// The probability covered by [`NextOrderPrediction::low_day`]..[`NextOrderPrediction::high_day`].
pub const INTERVAL_LEVEL: f64 = 0.8;

/// The predictive probability that the customer has already reordered by the reminder day.
///
/// At 0.2 four in five reminders arrive before the reorder. The interval's low end (0.1) would
/// catch one more in ten but, for an irregular customer, weeks before they think of buying.
pub const REMINDER_QUANTILE: f64 = 0.2;

/// Bounds of the estimated prior degrees of freedom ν₀. Below 0.1 the moderated t has almost no
/// finite moments; above 1000 it is a normal for every practical purpose.
const WITHIN_DF_RANGE: (f64, f64) = (0.1, 1000.0);

/// Bounds of the estimated between-customer variance τ² of log gaps.
const BETWEEN_VARIANCE_RANGE: (f64, f64) = (1e-8, 100.0);

/// The population's cadence: an empirical-Bayes prior over customers' log inter-purchase gaps.
///
/// It carries what a single customer's handful of gaps cannot: where cadences usually lie, how
/// much they differ between customers, and how regular customers usually are.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CadencePrior {
    /// m: the population mean of customers' typical log gap, ln(days); e^m is the typical cadence.
    pub mean_log_gap_days: f64,
    /// τ: the spread of customers' typical log gaps around m; 0.5 means cadences differ by a
    /// factor e^0.5 ≈ 1.65 either way for about two customers in three.
    pub between_sd: f64,
    /// σ₀: the typical spread of one customer's log gaps around their own cadence.
    pub within_sd: f64,
    /// ν₀: how many gaps' worth of evidence `within_sd` counts for against a customer's own
    /// spread. Small when customers differ much in regularity, large when they are alike.
    pub within_df: f64,
    /// The number of customers (with two or more gaps) the prior was fitted on.
    pub customers: usize,
}

impl CadencePrior {
    /// Checks that every field is finite and in its domain, as a hand-built prior might not be.
    pub fn validate(&self) -> Result<(), ModelError> {
        let fields = [
            ("mean_log_gap_days", self.mean_log_gap_days, f64::NEG_INFINITY),
            ("between_sd", self.between_sd, 0.0),
            ("within_sd", self.within_sd, f64::MIN_POSITIVE),
            ("within_df", self.within_df, f64::MIN_POSITIVE),
        ];
        for (name, value, least) in fields {
            if !(value.is_finite() && value >= least) {
                return Err(ModelError::InvalidParameters(format!(
                    "cadence prior `{name}` must be finite and at least {least}, got {value}"
                )));
            }
        }
        Ok(())
    }
}

/// One customer's log gaps reduced to what the model needs.
#[derive(Debug, Clone, Copy)]
struct GapSummary {
    /// The number of gaps n.
    gaps: f64,
    /// The mean log gap ȳ.
    mean_log_gap: f64,
    /// The sample variance of the log gaps, floored at [`MIN_WITHIN_SD`]², on n − 1 degrees of
    /// freedom.
    variance: f64,
}

impl GapSummary {
    /// Summarises gaps in days, of which there must be at least two.
    fn new(gaps_days: &[f64]) -> Self {
        let n = gaps_days.len() as f64;
        let log_gap = |gap: f64| gap.max(MIN_GAP_DAYS).ln();
        let mean_log_gap = gaps_days.iter().map(|&gap| log_gap(gap)).sum::<f64>() / n;
        let squares: f64 = gaps_days.iter().map(|&gap| (log_gap(gap) - mean_log_gap).powi(2)).sum();
        let variance = (squares / (n - 1.0)).max(MIN_WITHIN_SD * MIN_WITHIN_SD);
        GapSummary { gaps: n, mean_log_gap, variance }
    }

    /// The degrees of freedom of `variance`.
    fn df(&self) -> f64 {
        self.gaps - 1.0
    }

    /// The customer's within-variance moderated toward the prior's σ₀² with weight ν₀.
    fn moderated_variance(&self, within_variance: f64, within_df: f64) -> f64 {
        (within_df * within_variance + self.df() * self.variance) / (within_df + self.df())
    }
}

/// Fits the population's [`CadencePrior`] by empirical Bayes.
///
/// `gaps_per_customer` holds each customer's gaps between consecutive purchase occasions, in
/// days (finite, ≥ 0; gaps under [`MIN_GAP_DAYS`] are raised to it). Only customers with two or
/// more gaps inform the prior, the same customers [`predict_next_order`] predicts for.
///
/// The within-customer parameters (σ₀², ν₀) maximise the likelihood of the customers' sample
/// variances, each σ₀² times an F(nᵢ − 1, ν₀) variable under the model. The between-customer
/// variance τ² then maximises the likelihood of the customers' mean log gaps, each N(m, τ² +
/// s̃ᵢ²/nᵢ) with s̃ᵢ² the moderated within-variance, with m profiled out as their
/// precision-weighted mean.
pub fn fit_cadence_prior(gaps_per_customer: &[Vec<f64>]) -> Result<CadencePrior, ModelError> {
    let mut summaries = Vec::new();
    for (customer_idx, gaps) in gaps_per_customer.iter().enumerate() {
        if let Some(bad) = gaps.iter().find(|gap| !(gap.is_finite() && **gap >= 0.0)) {
            return Err(ModelError::input(
                "gaps_per_customer",
                format!("customer #{customer_idx} has a gap of {bad} days; gaps must be finite and >= 0"),
            ));
        }
        if gaps.len() >= 2 {
            summaries.push(GapSummary::new(gaps));
        }
    }
    if summaries.len() < MIN_CUSTOMERS_FOR_PRIOR {
        return Err(ModelError::InsufficientData(format!(
            "a cadence prior needs at least {MIN_CUSTOMERS_FOR_PRIOR} customers with two or more gaps \
             ({MIN_PURCHASES_FOR_CADENCE} purchase occasions), found {}",
            summaries.len()
        )));
    }

    let (within_variance, within_df) = fit_within_variance(&summaries)?;
    let moderated: Vec<(f64, f64)> = summaries
        .iter()
        .map(|summary| (summary.mean_log_gap, summary.moderated_variance(within_variance, within_df) / summary.gaps))
        .collect();
    let between_variance = fit_between_variance(&moderated)?;
    let mean_log_gap_days = precision_weighted_mean(&moderated, between_variance);
    let prior = CadencePrior {
        mean_log_gap_days,
        between_sd: between_variance.sqrt(),
        within_sd: within_variance.sqrt(),
        within_df,
        customers: summaries.len(),
    };
    prior.validate().map_err(|error| ModelError::Numerical {
        context: "cadence prior fit",
        message: format!("the fit produced an invalid prior: {error}"),
    })?;
    Ok(prior)
}

/// The negative mean log-likelihood of the customers' sample variances over (ln σ₀², ln ν₀).
///
/// Under the model sᵢ²/σ₀² ~ F(dᵢ, ν₀), dᵢ = nᵢ − 1; dropping the terms free of the parameters,
/// one customer contributes
/// (ν₀/2) ln ν₀ + (ν₀/2) ln σ₀² − ((dᵢ+ν₀)/2) ln(ν₀σ₀² + dᵢsᵢ²) + ln Γ((dᵢ+ν₀)/2) − ln Γ(ν₀/2).
struct WithinVarianceLikelihood {
    /// (dᵢ, dᵢ sᵢ²) per customer.
    customers: Vec<(f64, f64)>,
    /// Distinct dᵢ with the number of customers having each, for the ln Γ terms.
    df_counts: Vec<(f64, f64)>,
}

impl WithinVarianceLikelihood {
    fn new(summaries: &[GapSummary]) -> Self {
        let customers: Vec<(f64, f64)> =
            summaries.iter().map(|summary| (summary.df(), summary.df() * summary.variance)).collect();
        let mut dfs: Vec<f64> = customers.iter().map(|customer| customer.0).collect();
        dfs.sort_by(f64::total_cmp);
        let mut df_counts: Vec<(f64, f64)> = Vec::new();
        for df in dfs {
            match df_counts.last_mut() {
                Some(last) if last.0 == df => last.1 += 1.0,
                _ => df_counts.push((df, 1.0)),
            }
        }
        WithinVarianceLikelihood { customers, df_counts }
    }

    fn evaluate(&self, theta: &[f64; 2]) -> (f64, [f64; 2]) {
        let variance = theta[0].exp();
        let df = theta[1].exp();
        if !(variance.is_finite() && variance > 0.0 && df.is_finite() && df > 0.0) {
            return (f64::INFINITY, [0.0; 2]);
        }
        let count = self.customers.len() as f64;
        let mut total = count * 0.5 * df * (df.ln() + variance.ln());
        let mut d_variance = count * 0.5 * df / variance;
        let mut d_df = count * 0.5 * (df.ln() + 1.0 + variance.ln());
        for &(customer_df, sum_of_squares) in &self.customers {
            let pooled = df * variance + sum_of_squares;
            let half_total_df = 0.5 * (customer_df + df);
            total -= half_total_df * pooled.ln();
            d_variance -= half_total_df * df / pooled;
            d_df -= 0.5 * pooled.ln() + half_total_df * variance / pooled;
        }
        for &(customer_df, customers) in &self.df_counts {
            total += customers * (ln_gamma(0.5 * (customer_df + df)) - ln_gamma(0.5 * df));
            d_df += customers * 0.5 * (digamma(0.5 * (customer_df + df)) - digamma(0.5 * df));
        }
        let scale = -1.0 / count;
        let value = total * scale;
        if !value.is_finite() {
            return (f64::INFINITY, [0.0; 2]);
        }
        (value, [d_variance * variance * scale, d_df * df * scale])
    }
}

impl Objective<2> for WithinVarianceLikelihood {
    fn value(&self, theta: &[f64; 2]) -> f64 {
        self.evaluate(theta).0
    }

    fn value_and_gradient(&self, theta: &[f64; 2]) -> (f64, [f64; 2]) {
        self.evaluate(theta)
    }
}

/// Maximum-likelihood (σ₀², ν₀), each kept within its range.
fn fit_within_variance(summaries: &[GapSummary]) -> Result<(f64, f64), ModelError> {
    let objective = WithinVarianceLikelihood::new(summaries);
    let largest = summaries.iter().fold(0.0_f64, |most, summary| most.max(summary.variance));
    let pooled: f64 = summaries.iter().map(|summary| summary.df() * summary.variance).sum::<f64>()
        / summaries.iter().map(GapSummary::df).sum::<f64>();
    let lower = [(MIN_WITHIN_SD * MIN_WITHIN_SD).ln() - 1.0, WITHIN_DF_RANGE.0.ln()];
    let upper = [largest.ln() + 1.0, WITHIN_DF_RANGE.1.ln()];
    let start = [pooled.ln(), 4.0_f64.ln()];
    let minimum = optimize::minimize(&objective, start, lower, upper, &MinimizeOptions::default());
    if !minimum.value.is_finite() {
        return Err(ModelError::Numerical {
            context: "cadence prior fit",
            message: "no finite likelihood for the within-customer spread".to_owned(),
        });
    }
    Ok((minimum.theta[0].exp(), minimum.theta[1].exp()))
}

/// m̂ = Σ wᵢ ȳᵢ / Σ wᵢ with wᵢ = 1 / (τ² + vᵢ), for (ȳᵢ, vᵢ) pairs.
fn precision_weighted_mean(customers: &[(f64, f64)], between_variance: f64) -> f64 {
    let mut weighted = 0.0;
    let mut total_weight = 0.0;
    for &(mean, sampling_variance) in customers {
        let weight = 1.0 / (between_variance + sampling_variance);
        weighted += weight * mean;
        total_weight += weight;
    }
    weighted / total_weight
}

/// The negative mean profile log-likelihood of τ² (over ln τ²) for customers' mean log gaps ȳᵢ
/// with sampling variances vᵢ: −½ Σ [ln(τ² + vᵢ) + (ȳᵢ − m̂)² / (τ² + vᵢ)] with m̂ profiled out.
struct BetweenVarianceLikelihood<'a> {
    /// (ȳᵢ, vᵢ) per customer.
    customers: &'a [(f64, f64)],
}

impl BetweenVarianceLikelihood<'_> {
    fn evaluate(&self, theta: &[f64; 1]) -> (f64, [f64; 1]) {
        let between_variance = theta[0].exp();
        if !(between_variance.is_finite() && between_variance > 0.0) {
            return (f64::INFINITY, [0.0]);
        }
        let mean = precision_weighted_mean(self.customers, between_variance);
        let mut total = 0.0;
        let mut derivative = 0.0;
        for &(customer_mean, sampling_variance) in self.customers {
            let variance = between_variance + sampling_variance;
            let squared = (customer_mean - mean).powi(2);
            total += variance.ln() + squared / variance;
            // By the envelope theorem m̂'s own dependence on τ² drops out of the derivative.
            derivative += 1.0 / variance - squared / (variance * variance);
        }
        let scale = 0.5 / self.customers.len() as f64;
        let value = total * scale;
        if !value.is_finite() {
            return (f64::INFINITY, [0.0]);
        }
        (value, [derivative * between_variance * scale])
    }
}

impl Objective<1> for BetweenVarianceLikelihood<'_> {
    fn value(&self, theta: &[f64; 1]) -> f64 {
        self.evaluate(theta).0
    }

    fn value_and_gradient(&self, theta: &[f64; 1]) -> (f64, [f64; 1]) {
        self.evaluate(theta)
    }
}

/// Maximum-likelihood τ², within its range (its lower bound stands for "no detectable
/// difference between customers' cadences").
fn fit_between_variance(customers: &[(f64, f64)]) -> Result<f64, ModelError> {
    let objective = BetweenVarianceLikelihood { customers };
    let count = customers.len() as f64;
    let mean = customers.iter().map(|customer| customer.0).sum::<f64>() / count;
    let spread = customers.iter().map(|customer| (customer.0 - mean).powi(2)).sum::<f64>() / count;
    let lower = [BETWEEN_VARIANCE_RANGE.0.ln()];
    let upper = [BETWEEN_VARIANCE_RANGE.1.ln()];
    let start = [spread.clamp(1e-4, 10.0).ln()];
    let minimum = optimize::minimize(&objective, start, lower, upper, &MinimizeOptions::default());
    if !minimum.value.is_finite() {
        return Err(ModelError::Numerical {
            context: "cadence prior fit",
            message: "no finite likelihood for the between-customer spread".to_owned(),
        });
    }
    Ok(minimum.theta[0].exp())
}

/// One customer's predicted next order, on the day scale of the purchase days it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NextOrderPrediction {
    /// The predictive median day of the next order: as likely before as after. (The predictive
    /// mean of a log-scale distribution is pulled late by its long right tail, so the median is
    /// the better single day to show.)
    pub expected_day: f64,
    /// The low end of the central `interval_level` predictive interval.
    pub low_day: f64,
    /// The high end of the central `interval_level` predictive interval.
    pub high_day: f64,
    /// The probability the interval covers, [`INTERVAL_LEVEL`].
    pub interval_level: f64,
    /// When to remind: the day by which the customer has reordered with probability
    /// [`REMINDER_QUANTILE`], never before the day after the last purchase. It may already be in
    /// the past, which means "remind now".
    pub reminder_day: f64,
    /// The customer's posterior typical gap e^μ in days, the cadence the prediction rests on.
    pub typical_gap_days: f64,
    /// The number of the customer's own gaps used.
    pub own_gaps: usize,
    /// The share (0..1) of the customer's own mean log gap in the posterior cadence; the rest is
    /// the population's.
    pub own_weight: f64,
    /// P(alive) at `now_day` from BG/NBD: the chance there will be a next order at all.
    pub p_alive: f64,
    /// Whether `now_day` is already past `high_day`: the customer has missed their cadence.
    pub overdue: bool,
}

/// Predicts a customer's next order from their purchase occasions.
///
/// `purchase_days` are the customer's distinct purchase occasions (several orders on one day
/// are one), strictly ascending, in days since any fixed origin; `now_day` is on the same scale
/// and not before the last purchase. `bgnbd` is expressed in time units of `unit_days` days (7.0
/// when fitted in weeks), and is used only for P(alive), with frequency x = occasions − 1,
/// recency t_x = last − first and age T = now − first, converted to those units.
///
/// Returns `Ok(None)` below [`MIN_PURCHASES_FOR_CADENCE`] occasions.
pub fn predict_next_order(
    bgnbd: &BgNbdParams,
    unit_days: f64,
    prior: &CadencePrior,
    purchase_days: &[f64],
    now_day: f64,
) -> Result<Option<NextOrderPrediction>, ModelError> {
    if !(unit_days.is_finite() && unit_days > 0.0) {
        return Err(ModelError::input("unit_days", format!("must be finite and positive, got {unit_days}")));
    }
    prior.validate()?;
    if let Some(bad) = purchase_days.iter().find(|day| !day.is_finite()) {
        return Err(ModelError::input("purchase_days", format!("must be finite, got {bad}")));
    }
    if let Some(pair) = purchase_days.windows(2).find(|pair| pair[1] <= pair[0]) {
        return Err(ModelError::input(
            "purchase_days",
            format!(
                "must be distinct purchase occasions in ascending order, but {} is followed by {}",
                pair[0], pair[1]
            ),
        ));
    }
    let (Some(&first_day), Some(&last_day)) = (purchase_days.first(), purchase_days.last()) else {
        return Ok(None);
    };
    if !(now_day.is_finite() && now_day >= last_day) {
        return Err(ModelError::input(
            "now_day",
            format!("must be finite and not before the last purchase day {last_day}, got {now_day}"),
        ));
    }
    if purchase_days.len() < MIN_PURCHASES_FOR_CADENCE {
        return Ok(None);
    }

    let gaps_days: Vec<f64> = purchase_days.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let summary = GapSummary::new(&gaps_days);
    let within_variance = prior.within_sd * prior.within_sd;
    let moderated_variance = summary.moderated_variance(within_variance, prior.within_df);
    let between_variance = prior.between_sd * prior.between_sd;
    // Normal-normal update, written so that τ = 0 (no between-customer spread) needs no division
    // by zero: the weight of the customer's mean is nτ² / (nτ² + s̃²).
    let own_weight = summary.gaps * between_variance / (summary.gaps * between_variance + moderated_variance);
    let posterior_log_gap = prior.mean_log_gap_days + own_weight * (summary.mean_log_gap - prior.mean_log_gap_days);
    let posterior_variance = own_weight * moderated_variance / summary.gaps;
    let predictive_scale = (moderated_variance + posterior_variance).sqrt();
    let predictive_df = prior.within_df + summary.df();

    let interval_t = student_t_quantile(0.5 + 0.5 * INTERVAL_LEVEL, predictive_df)?;
    let reminder_t = student_t_quantile(REMINDER_QUANTILE, predictive_df)?;
    let day_at = |offset: f64| last_day + (posterior_log_gap + offset * predictive_scale).exp();
    let typical_gap_days = posterior_log_gap.exp();
    let expected_day = last_day + typical_gap_days;
    let low_day = day_at(-interval_t);
    let high_day = day_at(interval_t);
    let reminder_day = day_at(reminder_t).max(last_day + 1.0);

    let p_alive = bgnbd::probability_alive(
        bgnbd,
        summary.gaps,
        (last_day - first_day) / unit_days,
        (now_day - first_day) / unit_days,
    )?;
    let prediction = NextOrderPrediction {
        expected_day,
        low_day,
        high_day,
        interval_level: INTERVAL_LEVEL,
        reminder_day,
        typical_gap_days,
        own_gaps: gaps_days.len(),
        own_weight,
        p_alive,
        overdue: now_day > high_day,
    };
    let numbers = [expected_day, low_day, high_day, reminder_day, typical_gap_days, own_weight, p_alive];
    if numbers.iter().any(|number| !number.is_finite()) {
        // Only inputs far outside any calendar (days near 1e300, log-gap spreads in the hundreds)
        // get here; every step above is finite for plausible ones.
        return Err(ModelError::input(
            "purchase_days",
            format!("the prediction is not finite ({prediction:?}): the days or the cadence prior are out of range"),
        ));
    }
    Ok(Some(prediction))
}

/// Φ⁻¹(p), the standard normal quantile, for 0 < p < 1 (±∞ at 0 and 1, NaN outside).
///
/// Acklam's rational approximation (P. J. Acklam, "An algorithm for computing the inverse normal
/// cumulative distribution function", 2003): relative error below 1.15e-9 everywhere, which is
/// far below what an interval of purchase days can resolve.
pub(crate) fn normal_quantile(probability: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const LOW_REGION: f64 = 0.024_25;

    if probability.is_nan() || !(0.0..=1.0).contains(&probability) {
        return f64::NAN;
    }
    if probability == 0.0 {
        return f64::NEG_INFINITY;
    }
    if probability == 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if probability < LOW_REGION {
        tail((-2.0 * probability.ln()).sqrt())
    } else if probability <= 1.0 - LOW_REGION {
        let q = probability - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - probability).ln()).sqrt())
    }
}

/// From this many degrees of freedom on, the Cornish–Fisher expansion of the t quantile through
/// ν⁻³ (Abramowitz & Stegun 26.7.5; the first omitted term is below 1e-12 for |z| < 5 here, so
/// the error is the normal quantile's ~1e-9) is used instead of inverting the incomplete beta
/// function, which loses digits to the cancelling ln Γ(ν/2) terms when ν is large.
const CORNISH_FISHER_MIN_DF: f64 = 1e4;

/// The Student t quantile with `df` > 0 degrees of freedom, for 0 < `probability` < 1.
///
/// Newton's method on the upper tail ½ I_{ν/(ν+t²)}(ν/2, ½), started from the Cornish–Fisher
/// expansion around the normal quantile and safeguarded by bisection inside a bracket, so it
/// converges for any df, however heavy the tails.
pub(crate) fn student_t_quantile(probability: f64, df: f64) -> Result<f64, ModelError> {
    if !(probability > 0.0 && probability < 1.0 && df > 0.0 && !df.is_nan()) {
        return Err(ModelError::Numerical {
            context: "Student t quantile",
            message: format!("undefined for probability {probability} and df {df}"),
        });
    }
    if probability == 0.5 {
        return Ok(0.0);
    }
    let sign = if probability > 0.5 { 1.0 } else { -1.0 };
    let upper_tail = if probability > 0.5 { 1.0 - probability } else { probability };
    let z = normal_quantile(1.0 - upper_tail);
    let z2 = z * z;
    let cornish_fisher = z
        + z * (z2 + 1.0) / (4.0 * df)
        + z * ((5.0 * z2 + 16.0) * z2 + 3.0) / (96.0 * df * df)
        + z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / (384.0 * df * df * df);
    if df >= CORNISH_FISHER_MIN_DF {
        return Ok(sign * cornish_fisher);
    }
    let tail_above = |t: f64| -> Result<f64, ModelError> {
        let t2 = t * t;
        let x = df / (df + t2);
        let y = t2 / (df + t2);
        regularized_incomplete_beta(0.5 * df, 0.5, x, y)
            .map(|value| 0.5 * value)
            .map_err(|error| ModelError::numerical("Student t quantile", error))
    };
    let ln_density_constant = ln_gamma(0.5 * (df + 1.0)) - ln_gamma(0.5 * df) - 0.5 * (df * std::f64::consts::PI).ln();
    let density = |t: f64| (ln_density_constant - 0.5 * (df + 1.0) * (t * t / df).ln_1p()).exp();

    // Safeguarded Newton: [low, high] always brackets the root (high is unbounded until a point
    // past the root is seen), and a step leaving it is replaced by bisection, geometric while the
    // bracket spans orders of magnitude, as it can for very heavy tails.
    let mut t = if cornish_fisher.is_finite() && cornish_fisher > 0.0 { cornish_fisher } else { z };
    let mut low = 0.0_f64;
    let mut high = f64::INFINITY;
    for _ in 0..200 {
        let excess = tail_above(t)? - upper_tail;
        if excess > 0.0 {
            low = t;
        } else {
            high = t;
        }
        let newton = t + excess / density(t);
        let next = if newton > low && newton < high && newton.is_finite() {
            newton
        } else if !high.is_finite() {
            2.0 * t
        } else if low > 0.0 && high > 4.0 * low {
            (low * high).sqrt()
        } else {
            0.5 * (low + high)
        };
        if (next - t).abs() <= 1e-12 * t || (high.is_finite() && high - low <= 1e-15 * high) {
            return Ok(sign * next);
        }
        t = next;
    }
    Err(ModelError::Numerical {
        context: "Student t quantile",
        message: format!("did not converge for probability {probability} and df {df}"),
    })
}

#[cfg(test)]
#[path = "next_order_tests.rs"]
mod tests;
