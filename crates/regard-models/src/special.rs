//! Special functions the models need: ln Γ, digamma and the Gaussian hypergeometric function 2F1.
//!
//! The standard library has no stable `ln_gamma`, and pulling in a numerics crate for three
//! functions is not worth the dependency, so they live here. Each is accurate to a few units in the
//! last place over the arguments the models use and is tested against 40-digit values (mpmath).

use std::f64::consts::PI;

/// ln √(2π), the constant of Stirling's series.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Relative size below which a further series term no longer changes a double.
const SERIES_EPS: f64 = 1e-17;

/// Arguments are shifted up to this value before the asymptotic series is used; at 15 the first
/// omitted Stirling term is below 1e-18.
const STIRLING_MIN: f64 = 15.0;

/// Why a special function could not produce a trustworthy value. These are internal faults: the
/// public functions validate their inputs before any of this runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumericalError(pub(crate) String);

/// ln Γ(x) for x > 0; NaN outside that domain.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x >= STIRLING_MIN {
        return stirling_ln_gamma(x);
    }
    // Γ(x) = Γ(x + n) / (x (x+1) ... (x+n-1)); the product of at most 15 factors below 15 cannot
    // overflow, and one logarithm of it is both faster and more accurate than a sum of many.
    let mut shifted = x;
    let mut product = 1.0;
    while shifted < STIRLING_MIN {
        product *= shifted;
        shifted += 1.0;
    }
    stirling_ln_gamma(shifted) - product.ln()
}

/// Stirling's series for ln Γ(x), accurate to double precision for x ≥ 15.
fn stirling_ln_gamma(x: f64) -> f64 {
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // Coefficients B_{2k} / (2k (2k-1)) for k = 1..7.
    let series = inv
        * (1.0 / 12.0
            + inv2
                * (-1.0 / 360.0
                    + inv2
                        * (1.0 / 1260.0
                            + inv2
                                * (-1.0 / 1680.0
                                    + inv2 * (1.0 / 1188.0 + inv2 * (-691.0 / 360_360.0 + inv2 / 156.0))))));
    (x - 0.5) * x.ln() - x + LN_SQRT_2PI + series
}

/// ln Γ(x + n) − ln Γ(x) for x > 0 and a whole n ≥ 0, accurate even when the two logarithms are
/// large and nearly equal.
pub(crate) fn ln_gamma_shift(x: f64, n: f64) -> f64 {
    if n == 0.0 {
        return 0.0;
    }
    if n <= 24.0 {
        // A short product is exact to rounding, unlike the difference of two large ln Γ values.
        let mut product = 1.0;
        let mut k = 0.0;
        while k < n {
            product *= x + k;
            k += 1.0;
        }
        if product.is_finite() && product > 0.0 {
            return product.ln();
        }
    }
    ln_gamma(x + n) - ln_gamma(x)
}

/// The digamma function ψ(x) = d ln Γ(x) / dx for x > 0; NaN outside that domain.
pub(crate) fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut shifted = x;
    let mut correction = 0.0;
    while shifted < 12.0 {
        correction -= 1.0 / shifted;
        shifted += 1.0;
    }
    let inv = 1.0 / shifted;
    let inv2 = inv * inv;
    // Asymptotic series with coefficients B_{2k} / (2k) for k = 1..7.
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32_760.0 - inv2 / 12.0))))));
    correction + shifted.ln() - 0.5 * inv - series
}

/// ψ(x + n) − ψ(x) for x > 0 and a whole n ≥ 0, exact to rounding for small n.
pub(crate) fn digamma_shift(x: f64, n: f64) -> f64 {
    if n <= 64.0 {
        let mut sum = 0.0;
        let mut k = 0.0;
        while k < n {
            sum += 1.0 / (x + k);
            k += 1.0;
        }
        return sum;
    }
    digamma(x + n) - digamma(x)
}

/// sin(πx) with the argument reduced first, so that it is exactly zero at the integers.
fn sin_pi(x: f64) -> f64 {
    let y = x.rem_euclid(2.0);
    if y == 0.0 || y == 1.0 {
        return 0.0;
    }
    if y < 0.5 {
        (PI * y).sin()
    } else if y < 1.5 {
        (PI * (1.0 - y)).sin()
    } else {
        (PI * (y - 2.0)).sin()
    }
}

/// ln |Γ(x)| and the sign of Γ(x) for any real x; the sign is 0 at the poles (the non-positive
/// integers), where 1/Γ is zero.
pub(crate) fn ln_gamma_signed(x: f64) -> (f64, f64) {
    if x > 0.0 {
        return (ln_gamma(x), 1.0);
    }
    // Reflection: Γ(x) Γ(1 − x) = π / sin(πx), and Γ(1 − x) > 0 here.
    let sine = sin_pi(x);
    if sine == 0.0 {
        return (f64::INFINITY, 0.0);
    }
    (PI.ln() - sine.abs().ln() - ln_gamma(1.0 - x), sine.signum())
}

/// The ratio Γ(n1) Γ(n2) / (Γ(d1) Γ(d2)), zero when a denominator argument is a pole.
fn gamma_ratio(n1: f64, n2: f64, d1: f64, d2: f64) -> f64 {
    let (ln_n1, s_n1) = ln_gamma_signed(n1);
    let (ln_n2, s_n2) = ln_gamma_signed(n2);
    let (ln_d1, s_d1) = ln_gamma_signed(d1);
    let (ln_d2, s_d2) = ln_gamma_signed(d2);
    if s_d1 == 0.0 || s_d2 == 0.0 {
        return 0.0;
    }
    s_n1 * s_n2 * s_d1 * s_d2 * (ln_n1 + ln_n2 - ln_d1 - ln_d2).exp()
}

/// True when x is a non-positive integer (a pole of Γ, or a terminating Pochhammer symbol).
fn is_non_positive_integer(x: f64) -> bool {
    x <= 0.0 && x == x.round()
}

/// Sums a hypergeometric-type power series Σ_k t_k whose term ratio t_{k+1}/t_k is
/// `ratio(k)`, starting from t_0 = `first`, with convergence control.
///
/// The sum stops when the estimated tail is below [`SERIES_EPS`] times the sum: once all
/// Pochhammer factors are positive (k > `positive_from`), the ratio of these series tends
/// monotonically to its limit `limit_ratio`, so with ρ = max(next ratio, limit) < 1 the tail is
/// at most |t_k| ρ / (1 − ρ) (exactly so once the ratio is monotone, which the tests against
/// 40-digit values confirm in practice). It fails
/// rather than returning a number it cannot vouch for: when `max_terms` is reached, or when
/// cancellation between large terms of alternating sign leaves fewer than about 8 good digits.
pub(crate) fn sum_series(
    first: f64,
    limit_ratio: f64,
    positive_from: f64,
    max_terms: usize,
    mut ratio: impl FnMut(f64) -> f64,
) -> Result<f64, NumericalError> {
    let mut term = first;
    let mut sum = first;
    let mut largest = first.abs();
    for k in 0..max_terms {
        let kf = k as f64;
        let rho = ratio(kf);
        term *= rho;
        if term == 0.0 {
            return checked_sum(sum, largest);
        }
        sum += term;
        largest = largest.max(term.abs());
        if !sum.is_finite() {
            return Err(NumericalError(format!("series overflowed after {k} terms")));
        }
        if kf + 1.0 > positive_from {
            let bound = ratio(kf + 1.0).abs().max(limit_ratio.abs());
            if bound < 1.0 && term.abs() * bound / (1.0 - bound) <= SERIES_EPS * sum.abs() {
                return checked_sum(sum, largest);
            }
        }
    }
    Err(NumericalError(format!("series did not converge in {max_terms} terms")))
}

/// Rejects a series sum that lost most of its digits to cancellation.
fn checked_sum(sum: f64, largest: f64) -> Result<f64, NumericalError> {
    if largest > 1e8 * sum.abs() {
        return Err(NumericalError(format!(
            "series lost its precision to cancellation (largest term {largest:e}, sum {sum:e})"
        )));
    }
    Ok(sum)
}

/// Above this z the Gauss series of 2F1 converges slowly and the 1 − z transformation is used.
const HYP2F1_DIRECT_MAX_Z: f64 = 0.75;

/// The 1 − z transformation is avoided when c − a − b is this close to an integer, where its two
/// terms blow up and cancel.
const HYP2F1_NEAR_INTEGER: f64 = 1e-5;

/// Term budget of the Gauss series; it converges for any z < 1, in about 40 / (1 − z) terms.
const HYP2F1_MAX_TERMS: usize = 4_000_000;

/// The Gaussian hypergeometric function 2F1(a, b; c; z) for real parameters and 0 ≤ z < 1.
///
/// Near z = 0 the Gauss series is summed directly with convergence control. Above z = 0.75 it
/// converges slowly, so the connection formula to 1 − z (Abramowitz & Stegun 15.3.6) is used,
/// whose two series converge fast. That formula breaks down when c − a − b is an integer; within
/// 1e-5 of one the direct series (which always converges, if slowly) is summed instead, and if even
/// that runs out of terms (z within ~1e-5 of 1) the value is interpolated by a cubic through four
/// values of c at which c − a − b is 2e-5 and 4e-5 away from the integer (accurate to ~1e-11).
pub(crate) fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, NumericalError> {
    if !(a.is_finite() && b.is_finite() && c.is_finite() && (0.0..1.0).contains(&z)) {
        return Err(NumericalError(format!("2F1({a}, {b}; {c}; {z}) is outside the supported domain 0 <= z < 1")));
    }
    if is_non_positive_integer(c) {
        return Err(NumericalError(format!("2F1 is undefined for c = {c}, a non-positive integer")));
    }
    if z == 0.0 || a == 0.0 || b == 0.0 {
        return Ok(1.0);
    }
    let terminates = is_non_positive_integer(a) || is_non_positive_integer(b);
    if z <= HYP2F1_DIRECT_MAX_Z || terminates {
        return hyp2f1_series(a, b, c, z, HYP2F1_MAX_TERMS);
    }
    let m = c - a - b;
    if (m - m.round()).abs() > HYP2F1_NEAR_INTEGER {
        return hyp2f1_one_minus_z(a, b, c, z);
    }
    match hyp2f1_series(a, b, c, z, HYP2F1_MAX_TERMS) {
        Ok(value) => Ok(value),
        Err(_) => {
            // Interpolate in c through four points at c − a − b = round(m) ± δ, ± 2δ, where the
            // transformation is well conditioned; the cubic's error is O(δ⁴).
            let delta = 2.0 * HYP2F1_NEAR_INTEGER;
            let centre = c + (m.round() - m);
            cubic_through_symmetric_points(c - centre, delta, |offset| hyp2f1_one_minus_z(a, b, centre + offset, z))
        }
    }
}

/// Evaluates at `target` the cubic through f(−2δ), f(−δ), f(δ), f(2δ): a way round a removable
/// singularity at 0 that keeps the sample points away from it.
pub(crate) fn cubic_through_symmetric_points<E>(
    target: f64,
    delta: f64,
    mut f: impl FnMut(f64) -> Result<f64, E>,
) -> Result<f64, E> {
    let nodes = [-2.0 * delta, -delta, delta, 2.0 * delta];
    let mut value = 0.0;
    for (i, node) in nodes.iter().enumerate() {
        let mut weight = 1.0;
        for (j, other) in nodes.iter().enumerate() {
            if i != j {
                weight *= (target - other) / (node - other);
            }
        }
        value += weight * f(*node)?;
    }
    Ok(value)
}

/// The Gauss series Σ (a)_k (b)_k / ((c)_k k!) z^k.
fn hyp2f1_series(a: f64, b: f64, c: f64, z: f64, max_terms: usize) -> Result<f64, NumericalError> {
    let positive_from = (-a).max(-b).max(-c).max(0.0);
    sum_series(1.0, z, positive_from, max_terms, |k| (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z)
}

/// The connection formula from z to 1 − z (A&S 15.3.6), valid when c − a − b is not an integer.
fn hyp2f1_one_minus_z(a: f64, b: f64, c: f64, z: f64) -> Result<f64, NumericalError> {
    let w = 1.0 - z;
    let m = c - a - b;
    let first_coefficient = gamma_ratio(c, m, c - a, c - b);
    let second_coefficient = gamma_ratio(c, -m, a, b);
    let first = if first_coefficient == 0.0 {
        0.0
    } else {
        first_coefficient * hyp2f1_series(a, b, 1.0 - m, w, HYP2F1_MAX_TERMS)?
    };
    let second = if second_coefficient == 0.0 {
        0.0
    } else {
        second_coefficient * w.powf(m) * hyp2f1_series(c - a, c - b, 1.0 + m, w, HYP2F1_MAX_TERMS)?
    };
    let value = first + second;
    if !value.is_finite() {
        return Err(NumericalError(format!("2F1({a}, {b}; {c}; {z}) overflowed in the 1 - z transformation")));
    }
    Ok(value)
}

/// The regularised incomplete beta function I_x(a, b) for a, b > 0, given x and y = 1 − x both
/// computed accurately by the caller (so that neither loses digits to a subtraction).
///
/// Uses the continued fraction of Numerical Recipes §6.4 (modified Lentz), on I_x(a, b) directly
/// when x < (a + 1)/(a + b + 2) and on 1 − I_y(b, a) otherwise, where it converges fast.
pub(crate) fn regularized_incomplete_beta(a: f64, b: f64, x: f64, y: f64) -> Result<f64, NumericalError> {
    if !(a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)) {
        return Err(NumericalError(format!("incomplete beta I_{x}({a}, {b}) is outside its domain")));
    }
    if x == 0.0 {
        return Ok(0.0);
    }
    if y == 0.0 {
        return Ok(1.0);
    }
    if x < (a + 1.0) / (a + b + 2.0) {
        incomplete_beta_fraction(a, b, x, y)
    } else {
        Ok(1.0 - incomplete_beta_fraction(b, a, y, x)?)
    }
}

/// x^a y^b / (a B(a, b)) times the continued fraction for I_x(a, b).
fn incomplete_beta_fraction(a: f64, b: f64, x: f64, y: f64) -> Result<f64, NumericalError> {
    const TINY: f64 = 1e-300;
    let ln_front = a * x.ln() + b * y.ln() - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)) - a.ln();
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut fraction = d;
    for m in 1..100_000 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 + even * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + even / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        fraction *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 + odd * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + odd / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        fraction *= delta;
        if (delta - 1.0).abs() <= 1e-16 {
            return Ok(ln_front.exp() * fraction);
        }
    }
    Err(NumericalError(format!("incomplete beta continued fraction for I_{x}({a}, {b}) did not converge")))
}

/// ln(e^u + e^v) without overflow or underflow.
pub(crate) fn log_add_exp(u: f64, v: f64) -> f64 {
    let (high, low) = if u >= v { (u, v) } else { (v, u) };
    if low == f64::NEG_INFINITY {
        return high;
    }
    high + (low - high).exp().ln_1p()
}

#[cfg(test)]
#[path = "special_tests.rs"]
mod tests;
