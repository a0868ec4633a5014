//! L2-regularised logistic regression fitted by Newton's method (iteratively reweighted least
//! squares) for a handful of features, as the category propensity model needs.
//!
//! The features are standardised before the fit, so one penalty weight means the same for every
//! feature and the Newton system stays well conditioned; the coefficients are turned back to the
//! original scale at the end. With `N` features the Hessian is (N + 1) × (N + 1), small enough to
//! solve by Cholesky in every iteration. Each step is damped by a backtracking line search, so the
//! penalised log-likelihood never decreases and a fit can never end on NaN.

// Small dense linear algebra reads best with explicit indices, as in the textbooks it follows.
#![allow(clippy::needless_range_loop)]

/// Newton iterations allowed; a regularised fit needs 5–10, a separable unregularised one never
/// stops on its own.
const MAX_ITERATIONS: usize = 100;

/// The fit stops when the Newton decrement g·Δ (twice the predicted gain of a full step, in
/// log-likelihood units) falls below this: the objective is then within 1e-9 of its maximum.
const DECREMENT_TOLERANCE: f64 = 1e-9;

/// A standardised coefficient beyond this (one standard deviation of the feature multiplying the
/// odds by e^15 ≈ 3 million) means the data separate the classes rather than inform a slope.
const SEPARATION_COEFFICIENT: f64 = 15.0;

/// Halvings of a step the line search may try before it gives up on a direction.
const MAX_STEP_HALVINGS: usize = 40;

/// A logistic regression on the original feature scale: P(y) = σ(intercept + weights · x).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogisticFit<const N: usize> {
    /// The intercept on the original scale.
    pub(crate) intercept: f64,
    /// One weight per feature on the original scale; 0 for a feature that never varies.
    pub(crate) weights: [f64; N],
    /// The mean of each feature over the rows, the reference point for explanations.
    pub(crate) means: [f64; N],
    /// The unpenalised log-likelihood at the fit, summed over rows.
    pub(crate) log_likelihood: f64,
    /// Newton iterations used.
    pub(crate) iterations: usize,
    /// Whether the Newton decrement fell below its tolerance within the budget at finite,
    /// believable coefficients (not on the way to infinity, see `separated`).
    pub(crate) converged: bool,
    /// Whether the classes look (quasi-)separable: a standardised coefficient ran beyond
    /// [`SEPARATION_COEFFICIENT`], so the likelihood keeps growing as the weights grow.
    pub(crate) separated: bool,
    /// Features that took the same value in every row (their weight is fixed at 0).
    pub(crate) constant_features: Vec<usize>,
}

/// ln(1 + e^η) without overflow for large |η|.
fn log_one_plus_exp(eta: f64) -> f64 {
    if eta > 0.0 {
        eta + (-eta).exp().ln_1p()
    } else {
        eta.exp().ln_1p()
    }
}

/// The logistic function 1 / (1 + e^−η), stable for large |η|.
pub(crate) fn sigmoid(eta: f64) -> f64 {
    if eta >= 0.0 {
        1.0 / (1.0 + (-eta).exp())
    } else {
        let e = eta.exp();
        e / (1.0 + e)
    }
}

/// Solves `matrix · x = rhs` for a symmetric positive definite `matrix` (row-major, `dim` × `dim`,
/// only the lower triangle read) by Cholesky; `None` when the matrix is not positive definite.
fn cholesky_solve(matrix: &[f64], rhs: &[f64], dim: usize) -> Option<Vec<f64>> {
    let mut lower = vec![0.0; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            let mut sum = matrix[i * dim + j];
            for k in 0..j {
                sum -= lower[i * dim + k] * lower[j * dim + k];
            }
            if i == j {
                if !(sum > 0.0 && sum.is_finite()) {
                    return None;
                }
                lower[i * dim + i] = sum.sqrt();
            } else {
                lower[i * dim + j] = sum / lower[j * dim + j];
            }
        }
    }
    let mut solution = rhs.to_vec();
    for i in 0..dim {
        let mut sum = solution[i];
        for k in 0..i {
            sum -= lower[i * dim + k] * solution[k];
        }
        solution[i] = sum / lower[i * dim + i];
    }
    for i in (0..dim).rev() {
        let mut sum = solution[i];
        for k in i + 1..dim {
            sum -= lower[k * dim + i] * solution[k];
        }
        solution[i] = sum / lower[i * dim + i];
    }
    solution.iter().all(|x| x.is_finite()).then_some(solution)
}

/// The rows as standardised design vectors: z₀ = 1, zⱼ = (xⱼ − μⱼ)/σⱼ (0 for constant columns).
struct Standardised<'a, R, F, const N: usize> {
    rows: &'a [R],
    features: F,
    means: [f64; N],
    inverse_scales: [f64; N],
}

impl<R, F: Fn(&R) -> &[f64; N], const N: usize> Standardised<'_, R, F, N> {
    /// The standardised features of one row (without the leading 1).
    fn z(&self, row: &R) -> [f64; N] {
        let x = (self.features)(row);
        let mut z = [0.0; N];
        for j in 0..N {
            z[j] = (x[j] - self.means[j]) * self.inverse_scales[j];
        }
        z
    }

    /// The linear predictor of a row at `beta` (intercept first).
    fn eta(&self, beta: &[f64], z: &[f64; N]) -> f64 {
        let mut eta = beta[0];
        for j in 0..N {
            eta += beta[j + 1] * z[j];
        }
        eta
    }

    /// The unpenalised log-likelihood at `beta`.
    fn log_likelihood(&self, beta: &[f64], label: &impl Fn(&R) -> bool) -> f64 {
        let mut total = 0.0;
        for row in self.rows {
            let eta = self.eta(beta, &self.z(row));
            total += if label(row) { eta } else { 0.0 } - log_one_plus_exp(eta);
        }
        total
    }
}

/// The L2 penalty (l2/2)·Σ βⱼ² over the feature coefficients (not the intercept).
fn penalty(beta: &[f64], l2: f64) -> f64 {
    0.5 * l2 * beta[1..].iter().map(|b| b * b).sum::<f64>()
}

/// Fits P(label) = σ(b₀ + w·x) by maximising Σ log-likelihood − (l2/2)·Σ ŵⱼ², where ŵ are the
/// coefficients of the standardised features. The caller guarantees at least one row of each
/// label and finite features.
pub(crate) fn fit<R, const N: usize>(
    rows: &[R],
    features: impl Fn(&R) -> &[f64; N],
    label: impl Fn(&R) -> bool,
    l2: f64,
) -> LogisticFit<N> {
    let count = rows.len().max(1) as f64;
    let mut means = [0.0; N];
    for row in rows {
        let x = features(row);
        for j in 0..N {
            means[j] += x[j] / count;
        }
    }
    let mut variances = [0.0; N];
    for row in rows {
        let x = features(row);
        for j in 0..N {
            variances[j] += (x[j] - means[j]).powi(2) / count;
        }
    }
    let mut inverse_scales = [0.0; N];
    let mut constant_features = Vec::new();
    for j in 0..N {
        // A spread this small relative to the mean is rounding, not information.
        if variances[j].sqrt() > 1e-12 * (1.0 + means[j].abs()) {
            inverse_scales[j] = 1.0 / variances[j].sqrt();
        } else {
            constant_features.push(j);
        }
    }
    let data = Standardised { rows, features, means, inverse_scales };

    let dim = N + 1;
    let positives = rows.iter().filter(|row| label(row)).count() as f64;
    let base_rate = (positives / count).clamp(1e-12, 1.0 - 1e-12);
    let mut beta = vec![0.0; dim];
    beta[0] = (base_rate / (1.0 - base_rate)).ln();
    let mut objective = data.log_likelihood(&beta, &label) - penalty(&beta, l2);
    let mut iterations = 0;
    let mut converged = false;

    while iterations < MAX_ITERATIONS {
        iterations += 1;
        let mut gradient = vec![0.0; dim];
        let mut hessian = vec![0.0; dim * dim];
        let mut design = vec![0.0; dim];
        for row in rows {
            let z = data.z(row);
            let probability = sigmoid(data.eta(&beta, &z));
            let residual = if label(row) { 1.0 } else { 0.0 } - probability;
            let weight = probability * (1.0 - probability);
            design[0] = 1.0;
            design[1..].copy_from_slice(&z);
            for i in 0..dim {
                gradient[i] += residual * design[i];
                let weighted = weight * design[i];
                for k in 0..=i {
                    hessian[i * dim + k] += weighted * design[k];
                }
            }
        }
        for j in 1..dim {
            gradient[j] -= l2 * beta[j];
            hessian[j * dim + j] += l2;
        }
        for &j in &constant_features {
            // A constant column carries no information: pin its coefficient at 0.
            hessian[(j + 1) * dim + j + 1] += 1.0;
        }
        // Near separation the curvature vanishes; a little ridge on the diagonal keeps the
        // system solvable and only shortens the step.
        let mut step = None;
        let mut jitter = 0.0;
        for _ in 0..12 {
            let mut damped = hessian.clone();
            for i in 0..dim {
                damped[i * dim + i] += jitter;
            }
            step = cholesky_solve(&damped, &gradient, dim);
            if step.is_some() {
                break;
            }
            jitter = if jitter == 0.0 { 1e-10 * count } else { jitter * 10.0 };
        }
        let Some(step) = step else { break };
        let decrement: f64 = gradient.iter().zip(&step).map(|(g, s)| g * s).sum();
        if !decrement.is_finite() {
            break;
        }
        if decrement < DECREMENT_TOLERANCE {
            converged = true;
            break;
        }
        let mut scale = 1.0;
        let mut accepted = false;
        for _ in 0..MAX_STEP_HALVINGS {
            let trial: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
            let trial_objective = data.log_likelihood(&trial, &label) - penalty(&trial, l2);
            // Armijo: accept a step that gains at least a small share of what the model promised.
            if trial_objective.is_finite() && trial_objective >= objective + 1e-4 * scale * decrement {
                beta = trial;
                objective = trial_objective;
                accepted = true;
                break;
            }
            scale *= 0.5;
        }
        if !accepted {
            // No step along the Newton direction gains anything: the objective is flat to
            // rounding here, which is as converged as floating point allows.
            converged = decrement < 1e-6 * (1.0 + objective.abs());
            break;
        }
    }

    let separated = beta[1..].iter().any(|b| b.abs() > SEPARATION_COEFFICIENT);
    let mut weights = [0.0; N];
    let mut intercept = beta[0];
    for j in 0..N {
        weights[j] = beta[j + 1] * data.inverse_scales[j];
        intercept -= weights[j] * data.means[j];
    }
    LogisticFit {
        intercept,
        weights,
        means: data.means,
        log_likelihood: data.log_likelihood(&beta, &label),
        iterations,
        converged: converged && !separated,
        separated,
        constant_features,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Rows drawn from a known logistic model with two correlated features.
    fn synthetic(n: usize, intercept: f64, weights: [f64; 2], seed: u64) -> Vec<([f64; 2], bool)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let a: f64 = rng.gen_range(-2.0..2.0);
                let b: f64 = 0.5 * a + rng.gen_range(0.0..3.0);
                let p = sigmoid(intercept + weights[0] * a + weights[1] * b);
                ([a, b], rng.gen::<f64>() < p)
            })
            .collect()
    }

    #[test]
    fn newton_recovers_the_coefficients_of_synthetic_logistic_data() {
        let rows = synthetic(200_000, -1.0, [1.5, -0.7], 7);
        let fit = fit(&rows, |row| &row.0, |row| row.1, 0.0);
        assert!(fit.converged, "{fit:?}");
        // Standard errors at n = 200,000 are about 0.01; allow four of them.
        assert!((fit.intercept + 1.0).abs() < 0.04, "{fit:?}");
        assert!((fit.weights[0] - 1.5).abs() < 0.04, "{fit:?}");
        assert!((fit.weights[1] + 0.7).abs() < 0.04, "{fit:?}");
        assert!(fit.iterations < 15, "{fit:?}");
    }

    #[test]
    fn the_penalty_shrinks_the_weights_towards_zero() {
        let rows = synthetic(2_000, -1.0, [1.5, -0.7], 8);
        let loose = fit(&rows, |row| &row.0, |row| row.1, 0.0);
        let tight = fit(&rows, |row| &row.0, |row| row.1, 1_000.0);
        assert!(tight.weights[0].abs() < loose.weights[0].abs());
        assert!(tight.weights[1].abs() < loose.weights[1].abs());
    }

    #[test]
    fn separable_data_without_a_penalty_stays_finite_and_says_it_did_not_converge() {
        let rows: Vec<([f64; 1], bool)> = (0..100).map(|i| ([f64::from(i)], i >= 50)).collect();
        let fit = fit(&rows, |row| &row.0, |row| row.1, 0.0);
        assert!(fit.intercept.is_finite() && fit.weights[0].is_finite() && fit.log_likelihood.is_finite());
        assert!(fit.weights[0] > 0.0);
        assert!(!fit.converged && fit.separated, "{fit:?}");
    }

    #[test]
    fn a_constant_feature_gets_weight_zero() {
        let rows: Vec<([f64; 2], bool)> = (0..100).map(|i| ([f64::from(i % 7), 3.0], i % 3 == 0)).collect();
        let fit = fit(&rows, |row| &row.0, |row| row.1, 0.0);
        assert_eq!(fit.weights[1], 0.0);
        assert_eq!(fit.constant_features, vec![1]);
        assert!(fit.converged);
    }

    #[test]
    fn cholesky_solves_a_small_system_and_refuses_an_indefinite_one() {
        let solution = cholesky_solve(&[4.0, 0.0, 2.0, 3.0], &[2.0, 5.0], 2).expect("positive definite");
        // [[4, 2], [2, 3]] x = [2, 5] → x = [−0.5, 2].
        assert!((solution[0] + 0.5).abs() < 1e-12 && (solution[1] - 2.0).abs() < 1e-12);
        assert!(cholesky_solve(&[1.0, 0.0, 2.0, 1.0], &[1.0, 1.0], 2).is_none());
    }
}
