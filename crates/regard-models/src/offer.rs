//! Offer sensitivity: the share of a customer's purchases made with a discount or coupon,
//! shrunk toward the population's, so that "buys only on sale" is claimed of a customer only when
//! their history shows it.
//!
//! The model is the beta-binomial: each customer's propensity to use a discount is drawn from a
//! Beta(a, b) across customers, and each of their purchases is discounted with that propensity.
//! A customer with k discounted purchases out of n then has posterior mean share
//! (a + k) / (a + b + n): their own share weighs n / (n + a + b), the population's a / (a + b)
//! the rest. (a, b) are fitted by maximum marginal likelihood over all customers (empirical Bayes).

use crate::optimize::{self, MinimizeOptions, Objective};
use crate::special::{digamma_shift, ln_gamma, ln_gamma_shift};
use crate::{FitReport, ModelError};

/// The largest prior strength a + b a fit may reach. When customers' discount shares vary no
/// more than chance, the likelihood keeps rising as a + b grows; at 1e5 a customer with a
/// thousand purchases still moves their estimate by under 1% of the way, so the cap changes no
/// prediction that matters, and it keeps the numbers finite.
pub const MAX_PRIOR_STRENGTH: f64 = 1e5;

/// The smallest prior strength a + b a fit may reach: at 1e-3 customers are all-or-nothing, and
/// a single purchase decides a customer's share.
pub const MIN_PRIOR_STRENGTH: f64 = 1e-3;

/// The prior strength a + b used when the data cannot identify it (nobody or everybody used a
/// discount, or nobody bought twice): two pseudo-purchases, a weak prior that lets a customer's
/// own history take over quickly.
pub const UNIDENTIFIED_PRIOR_STRENGTH: f64 = 2.0;

/// Bound on the log-odds of the population share in the search, |logit| ≤ 40 (shares within
/// 4e-18 of 0 or 1).
const MAX_LOG_ODDS: f64 = 40.0;

/// The population's discount habit: a Beta(a, b) over customers' propensities to buy with a
/// discount.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OfferPrior {
    /// First Beta shape: the prior's pseudo-count of discounted purchases.
    pub a: f64,
    /// Second Beta shape: the prior's pseudo-count of full-price purchases.
    pub b: f64,
    /// The number of customers (with at least one purchase) the prior was fitted on.
    pub customers: usize,
}

/// One customer's estimated share of discounted purchases.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OfferSensitivity {
    /// The posterior mean share of purchases made with a discount, (a + k) / (a + b + n).
    pub share: f64,
    /// n: the customer's purchases.
    pub purchases: u32,
    /// k: how many of them were discounted.
    pub discounted: u32,
    /// n / (n + a + b): the weight of the customer's own share against the population's.
    pub own_weight: f64,
    /// a / (a + b): the share of a customer with no purchases, for comparison.
    pub population_share: f64,
}

impl OfferPrior {
    /// The shapes as used for predictions: a hand-built prior with a shape that is not positive
    /// and finite is read as the uniform Beta(1, 1), so that a prediction is never NaN.
    fn shapes(&self) -> (f64, f64) {
        let valid = |shape: f64| shape.is_finite() && shape > 0.0;
        if valid(self.a) && valid(self.b) && (self.a + self.b).is_finite() {
            (self.a, self.b)
        } else {
            (1.0, 1.0)
        }
    }

    /// a / (a + b): the mean propensity to buy with a discount across customers.
    pub fn population_share(&self) -> f64 {
        let (a, b) = self.shapes();
        a / (a + b)
    }

    /// The posterior offer sensitivity of a customer with `discounted` of `purchases` bought with
    /// a discount. A `discounted` above `purchases` is read as `purchases`.
    pub fn predict(&self, purchases: u32, discounted: u32) -> OfferSensitivity {
        let (a, b) = self.shapes();
        let discounted = discounted.min(purchases);
        let n = f64::from(purchases);
        let k = f64::from(discounted);
        OfferSensitivity {
            share: (a + k) / (a + b + n),
            purchases,
            discounted,
            own_weight: n / (n + a + b),
            population_share: a / (a + b),
        }
    }
}

/// Customers grouped into distinct (n, k) histories with their counts.
struct GroupedCounts {
    /// (n, k, customers) per distinct history with n > 0.
    groups: Vec<(f64, f64, f64)>,
    /// The number of customers with n > 0.
    customers: f64,
}

impl GroupedCounts {
    fn new(counts: &[(u32, u32)]) -> Result<Self, ModelError> {
        let mut histories = Vec::with_capacity(counts.len());
        for (customer_idx, &(purchases, discounted)) in counts.iter().enumerate() {
            if discounted > purchases {
                return Err(ModelError::input(
                    "counts",
                    format!("customer #{customer_idx} has {discounted} discounted purchases out of only {purchases}"),
                ));
            }
            if purchases > 0 {
                histories.push((purchases, discounted));
            }
        }
        histories.sort_unstable();
        let mut groups: Vec<(f64, f64, f64)> = Vec::new();
        let mut previous = None;
        for (purchases, discounted) in histories.iter().copied() {
            if previous == Some((purchases, discounted)) {
                if let Some(last) = groups.last_mut() {
                    last.2 += 1.0;
                }
            } else {
                groups.push((f64::from(purchases), f64::from(discounted), 1.0));
                previous = Some((purchases, discounted));
            }
        }
        Ok(GroupedCounts { groups, customers: histories.len() as f64 })
    }

    /// Σ k and Σ n over all customers.
    fn totals(&self) -> (f64, f64) {
        self.groups.iter().fold((0.0, 0.0), |(k, n), group| (k + group.2 * group.1, n + group.2 * group.0))
    }

    /// Σ ln C(n, k): the part of the log-likelihood that does not depend on (a, b).
    fn log_binomial_coefficients(&self) -> f64 {
        self.groups
            .iter()
            .map(|&(n, k, customers)| customers * (ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)))
            .sum()
    }
}

/// 1 / (1 + e^−x), without overflow for large |x|.
fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// (a, b) from θ = (logit of the population share, ln of the prior strength a + b); the share's
/// complement is computed as logistic(−θ₀) so that b keeps its digits when the share is near 1.
fn shapes_from(theta: &[f64; 2]) -> (f64, f64) {
    let strength = theta[1].exp();
    (strength * logistic(theta[0]), strength * logistic(-theta[0]))
}

/// The negative mean beta-binomial log-likelihood (without the binomial coefficients) over θ:
/// per customer ln Γ(a + k) − ln Γ(a) + ln Γ(b + n − k) − ln Γ(b) − ln Γ(a + b + n) + ln Γ(a + b).
///
/// Working in (share, strength) rather than (a, b) keeps the common degenerate case (no
/// overdispersion, a + b → ∞ at a fixed share) on one coordinate, so the search can follow it to
/// the cap without distorting the share.
struct NegativeMeanLogLikelihood<'a> {
    data: &'a GroupedCounts,
}

impl NegativeMeanLogLikelihood<'_> {
    fn evaluate(&self, theta: &[f64; 2], with_gradient: bool) -> (f64, [f64; 2]) {
        let (a, b) = shapes_from(theta);
        let strength = theta[1].exp();
        if !(a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite()) {
            return (f64::INFINITY, [0.0; 2]);
        }
        let mut total = 0.0;
        let mut d_a = 0.0;
        let mut d_b = 0.0;
        for &(n, k, customers) in &self.data.groups {
            total += customers * (ln_gamma_shift(a, k) + ln_gamma_shift(b, n - k) - ln_gamma_shift(strength, n));
            if with_gradient {
                let d_strength = digamma_shift(strength, n);
                d_a += customers * (digamma_shift(a, k) - d_strength);
                d_b += customers * (digamma_shift(b, n - k) - d_strength);
            }
        }
        let scale = -1.0 / self.data.customers;
        let value = total * scale;
        if !value.is_finite() {
            return (f64::INFINITY, [0.0; 2]);
        }
        // ∂a/∂θ₀ = a(1 − μ) = ab/(a+b), ∂b/∂θ₀ = −ab/(a+b); ∂a/∂θ₁ = a, ∂b/∂θ₁ = b.
        let cross = a * b / strength;
        (value, [(d_a - d_b) * cross * scale, (d_a * a + d_b * b) * scale])
    }
}

impl Objective<2> for NegativeMeanLogLikelihood<'_> {
    fn value(&self, theta: &[f64; 2]) -> f64 {
        self.evaluate(theta, false).0
    }

    fn value_and_gradient(&self, theta: &[f64; 2]) -> (f64, [f64; 2]) {
        self.evaluate(theta, true)
    }
}

/// Fits the population's [`OfferPrior`] by maximum marginal likelihood on customers'
/// (purchases, discounted purchases) counts.
///
/// Customers with no purchase carry no information and are skipped; it is an error when none is
/// left, or when a customer has more discounted purchases than purchases. The degenerate cases
/// each return a usable prior with a warning and `converged: false`:
///
/// * nobody (or everybody) ever used a discount: the share has no interior maximum; it is set to
///   the Jeffreys estimate (K + ½)/(N + 1) of the pooled counts, and the strength, which the
///   data cannot identify, to [`UNIDENTIFIED_PRIOR_STRENGTH`];
/// * nobody bought twice: the strength is not identified and set the same way, the share is the
///   pooled share;
/// * shares vary no more than chance (no overdispersion): a + b runs to
///   [`MAX_PRIOR_STRENGTH`] and stops there.
pub fn fit_offer_prior(counts: &[(u32, u32)]) -> Result<FitReport<OfferPrior>, ModelError> {
    let data = GroupedCounts::new(counts)?;
    if data.customers == 0.0 {
        return Err(ModelError::InsufficientData(
            "no customer with a purchase to learn discount habits from".to_owned(),
        ));
    }
    let customers = data.customers as usize;
    let (discounted, purchases) = data.totals();
    let objective = NegativeMeanLogLikelihood { data: &data };
    let log_likelihood_at = |a: f64, b: f64| -> f64 {
        let theta = [(a / b).ln(), (a + b).ln()];
        -objective.value(&theta) * data.customers + data.log_binomial_coefficients()
    };
    let unidentified = |share: f64, warning: String| -> Result<FitReport<OfferPrior>, ModelError> {
        let a = UNIDENTIFIED_PRIOR_STRENGTH * share;
        let b = UNIDENTIFIED_PRIOR_STRENGTH * (1.0 - share);
        let log_likelihood = log_likelihood_at(a, b);
        if !log_likelihood.is_finite() {
            return Err(ModelError::Numerical {
                context: "offer prior fit",
                message: format!("the log-likelihood at a = {a}, b = {b} is {log_likelihood}"),
            });
        }
        Ok(FitReport {
            params: OfferPrior { a, b, customers },
            log_likelihood,
            iterations: 0,
            converged: false,
            warnings: vec![warning],
        })
    };

    if discounted == 0.0 || discounted == purchases {
        let what =
            if discounted == 0.0 { "nobody has used a discount" } else { "every purchase was made with a discount" };
        let share = (discounted + 0.5) / (purchases + 1.0);
        return unidentified(
            share,
            format!(
                "{what}, so the population share has no interior maximum: it is \
                 set to the Jeffreys estimate {share:.3e} and the prior strength, which these data \
                 cannot identify, to {UNIDENTIFIED_PRIOR_STRENGTH}"
            ),
        );
    }
    if data.groups.iter().all(|group| group.0 == 1.0) {
        return unidentified(
            discounted / purchases,
            format!(
                "nobody has bought twice, so how much customers differ in their use of discounts is \
                 unknown: the prior strength is set to {UNIDENTIFIED_PRIOR_STRENGTH}"
            ),
        );
    }

    let share = discounted / purchases;
    let start = [(share / (1.0 - share)).ln(), UNIDENTIFIED_PRIOR_STRENGTH.ln()];
    let lower = [-MAX_LOG_ODDS, MIN_PRIOR_STRENGTH.ln()];
    let upper = [MAX_LOG_ODDS, MAX_PRIOR_STRENGTH.ln()];
    let minimum = optimize::minimize(&objective, start, lower, upper, &MinimizeOptions::default());
    if !minimum.value.is_finite() {
        return Err(ModelError::Numerical {
            context: "offer prior fit",
            message: "the optimiser found no point with a finite likelihood".to_owned(),
        });
    }
    let (a, b) = shapes_from(&minimum.theta);
    let mut warnings = Vec::new();
    if minimum.theta[1] >= upper[1] {
        warnings.push(format!(
            "customers' discount shares vary no more than chance around the population's \
             ({:.3}): the prior strength a + b ran to its cap {MAX_PRIOR_STRENGTH:.0e}, so a \
             customer's own history barely moves their estimate",
            a / (a + b)
        ));
    }
    if minimum.theta[1] <= lower[1] {
        warnings.push(format!(
            "customers look all-or-nothing about discounts: the prior strength a + b ran to its \
             floor {MIN_PRIOR_STRENGTH:.0e}, so a single purchase decides a customer's share"
        ));
    }
    if minimum.theta[0].abs() >= MAX_LOG_ODDS {
        warnings.push("the population share ran to the edge of its range".to_owned());
    }
    if minimum.budget_exhausted {
        warnings.push("the optimiser used up its iteration budget".to_owned());
    }
    let at_bound = minimum.at_bound.iter().any(|&bound| bound);
    if !minimum.gradient_small && !at_bound {
        warnings.push("the optimiser stopped short of the maximum".to_owned());
    }
    Ok(FitReport {
        params: OfferPrior { a, b, customers },
        log_likelihood: -minimum.value * data.customers + data.log_binomial_coefficients(),
        iterations: minimum.iterations,
        converged: minimum.gradient_small && !at_bound,
        warnings,
    })
}

#[cfg(test)]
#[path = "offer_tests.rs"]
mod tests;
