//! A small box-constrained minimiser for smooth likelihoods of a handful of parameters:
//! Nelder–Mead with restarts to find the basin robustly, then BFGS with analytic gradients to
//! polish the optimum to the precision the reference figures need.
//!
//! The models minimise the negative mean log-likelihood over log-parameters, so every coordinate is
//! dimensionless and of order one, and the box keeps the parameters inside [1e-8, 1e8]-ish ranges
//! where all formulas stay finite. An objective signals an undefined point by returning +∞; the
//! minimiser never accepts such a point, so it can never report a value it did not attain.

// Small dense linear algebra reads best with explicit indices, as in the textbooks it follows.
#![allow(clippy::needless_range_loop)]

/// A function of `N` variables to minimise, with its gradient.
pub(crate) trait Objective<const N: usize> {
    /// The value at `theta`, or +∞ where it is undefined (never NaN).
    fn value(&self, theta: &[f64; N]) -> f64;
    /// The value and gradient at `theta`; the value is +∞ where it is undefined.
    fn value_and_gradient(&self, theta: &[f64; N]) -> (f64, [f64; N]);
}

/// Knobs of [`minimize`]; the defaults suit log-likelihoods scaled per observation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MinimizeOptions {
    /// Side of the initial Nelder–Mead simplex in each coordinate.
    pub(crate) simplex_step: f64,
    /// Nelder–Mead stops when the spread of values across the simplex is below this (absolute).
    pub(crate) simplex_value_tolerance: f64,
    /// Side of the fresh simplex of each restart.
    pub(crate) restart_simplex_step: f64,
    /// Nelder–Mead iteration budget per run.
    pub(crate) max_simplex_iterations: usize,
    /// Number of Nelder–Mead restarts from the best point after the first run.
    pub(crate) restarts: usize,
    /// BFGS iteration budget.
    pub(crate) max_gradient_iterations: usize,
    /// BFGS stops when every component of the projected gradient is below this.
    pub(crate) gradient_tolerance: f64,
    /// The optimum counts as converged when the final projected gradient is below this.
    pub(crate) accept_gradient: f64,
}

impl Default for MinimizeOptions {
    fn default() -> Self {
        MinimizeOptions {
            simplex_step: 0.5,
            // Per observation: 1e-4 is a fraction of one log-likelihood unit on data sets of a few
            // thousand customers, statistically meaningless, so the simplex only has to find the
            // basin; BFGS then polishes to the gradient tolerance far more cheaply.
            simplex_value_tolerance: 1e-4,
            restart_simplex_step: 0.1,
            max_simplex_iterations: 2_000,
            restarts: 2,
            max_gradient_iterations: 500,
            gradient_tolerance: 1e-10,
            accept_gradient: 1e-6,
        }
    }
}

/// What [`minimize`] found.
#[derive(Debug, Clone)]
pub(crate) struct Minimum<const N: usize> {
    /// The best point seen.
    pub(crate) theta: [f64; N],
    /// The objective at `theta` (finite unless no finite point was ever found).
    pub(crate) value: f64,
    /// The gradient at `theta`.
    pub(crate) gradient: [f64; N],
    /// Nelder–Mead plus BFGS iterations.
    pub(crate) iterations: usize,
    /// Whether the projected gradient at `theta` is below the acceptance threshold.
    pub(crate) gradient_small: bool,
    /// Which coordinates ended on their lower or upper bound.
    pub(crate) at_bound: [bool; N],
    /// Whether an iteration budget ran out.
    pub(crate) budget_exhausted: bool,
}

/// Minimises `objective` inside the box [`lower`, `upper`] starting from `start`.
pub(crate) fn minimize<const N: usize>(
    objective: &impl Objective<N>,
    start: [f64; N],
    lower: [f64; N],
    upper: [f64; N],
    options: &MinimizeOptions,
) -> Minimum<N> {
    let clamp = |theta: [f64; N]| -> [f64; N] {
        let mut out = theta;
        for i in 0..N {
            out[i] = out[i].clamp(lower[i], upper[i]);
        }
        out
    };
    let mut iterations = 0;
    let mut budget_exhausted = false;

    let first = nelder_mead(objective, clamp(start), &clamp, options);
    iterations += first.iterations;
    budget_exhausted |= first.budget_exhausted;
    let (mut best_theta, mut best_value) = (first.theta, first.value);
    // Nelder–Mead can stall on a degenerate simplex; a fresh simplex around the best point either
    // confirms it or moves on.
    for _ in 0..options.restarts {
        let restart_options = MinimizeOptions { simplex_step: options.restart_simplex_step, ..*options };
        let again = nelder_mead(objective, best_theta, &clamp, &restart_options);
        iterations += again.iterations;
        budget_exhausted |= again.budget_exhausted;
        let improved = best_value - again.value > options.simplex_value_tolerance;
        if again.value < best_value {
            best_theta = again.theta;
            best_value = again.value;
        }
        if !improved {
            break;
        }
    }

    let polished = bfgs(objective, best_theta, &lower, &upper, options);
    iterations += polished.iterations;
    budget_exhausted |= polished.budget_exhausted;
    let (theta, value, gradient) = if polished.value <= best_value {
        (polished.theta, polished.value, polished.gradient)
    } else {
        let (value, gradient) = objective.value_and_gradient(&best_theta);
        (best_theta, value, gradient)
    };
    let mut at_bound = [false; N];
    for i in 0..N {
        at_bound[i] = theta[i] <= lower[i] || theta[i] >= upper[i];
    }
    let projected = project_gradient(&theta, &gradient, &lower, &upper);
    let gradient_small =
        value.is_finite() && projected.iter().all(|g| g.is_finite() && g.abs() <= options.accept_gradient);
    Minimum { theta, value, gradient, iterations, gradient_small, at_bound, budget_exhausted }
}

/// The outcome of one optimiser run.
struct Run<const N: usize> {
    theta: [f64; N],
    value: f64,
    gradient: [f64; N],
    iterations: usize,
    budget_exhausted: bool,
}

/// Nelder–Mead with the standard coefficients (reflection 1, expansion 2, contraction ½, shrink ½),
/// every trial point clamped into the box.
fn nelder_mead<const N: usize>(
    objective: &impl Objective<N>,
    start: [f64; N],
    clamp: &impl Fn([f64; N]) -> [f64; N],
    options: &MinimizeOptions,
) -> Run<N> {
    let evaluate = |theta: &[f64; N]| -> f64 {
        let value = objective.value(theta);
        if value.is_nan() {
            f64::INFINITY
        } else {
            value
        }
    };
    let mut vertices: Vec<([f64; N], f64)> = Vec::with_capacity(N + 1);
    vertices.push((start, evaluate(&start)));
    for i in 0..N {
        let mut vertex = start;
        vertex[i] += options.simplex_step;
        vertex = clamp(vertex);
        if vertex[i] == start[i] {
            // The start sits on the upper bound of this coordinate: step inward instead.
            vertex[i] -= options.simplex_step;
            vertex = clamp(vertex);
        }
        vertices.push((vertex, evaluate(&vertex)));
    }

    let mut iterations = 0;
    let mut budget_exhausted = true;
    while iterations < options.max_simplex_iterations {
        vertices.sort_by(|left, right| left.1.total_cmp(&right.1));
        let best = vertices[0].1;
        let worst = vertices[N].1;
        let spread_small = best.is_finite() && (worst - best).abs() <= options.simplex_value_tolerance;
        let size_small = vertices[1..]
            .iter()
            .all(|(vertex, _)| vertex.iter().zip(vertices[0].0.iter()).all(|(v, b)| (v - b).abs() <= 1e-9));
        if spread_small || size_small {
            budget_exhausted = false;
            break;
        }
        iterations += 1;

        let mut centroid = [0.0; N];
        for (vertex, _) in &vertices[..N] {
            for i in 0..N {
                centroid[i] += vertex[i] / N as f64;
            }
        }
        let along = |coefficient: f64| -> [f64; N] {
            let mut point = [0.0; N];
            for i in 0..N {
                point[i] = centroid[i] + coefficient * (vertices[N].0[i] - centroid[i]);
            }
            clamp(point)
        };
        let reflected = along(-1.0);
        let reflected_value = evaluate(&reflected);
        if reflected_value < best {
            let expanded = along(-2.0);
            let expanded_value = evaluate(&expanded);
            vertices[N] = if expanded_value < reflected_value {
                (expanded, expanded_value)
            } else {
                (reflected, reflected_value)
            };
            continue;
        }
        if reflected_value < vertices[N - 1].1 {
            vertices[N] = (reflected, reflected_value);
            continue;
        }
        let (contracted, limit) =
            if reflected_value < worst { (along(-0.5), reflected_value) } else { (along(0.5), worst) };
        let contracted_value = evaluate(&contracted);
        if contracted_value < limit {
            vertices[N] = (contracted, contracted_value);
            continue;
        }
        let anchor = vertices[0].0;
        for (vertex, value) in vertices.iter_mut().skip(1) {
            for i in 0..N {
                vertex[i] = anchor[i] + 0.5 * (vertex[i] - anchor[i]);
            }
            *vertex = clamp(*vertex);
            *value = evaluate(vertex);
        }
    }
    vertices.sort_by(|left, right| left.1.total_cmp(&right.1));
    Run { theta: vertices[0].0, value: vertices[0].1, gradient: [0.0; N], iterations, budget_exhausted }
}

/// The gradient with the components that push against an active bound set to zero.
fn project_gradient<const N: usize>(
    theta: &[f64; N],
    gradient: &[f64; N],
    lower: &[f64; N],
    upper: &[f64; N],
) -> [f64; N] {
    let mut projected = *gradient;
    for i in 0..N {
        let pinned_low = theta[i] <= lower[i] && gradient[i] > 0.0;
        let pinned_high = theta[i] >= upper[i] && gradient[i] < 0.0;
        if pinned_low || pinned_high {
            projected[i] = 0.0;
        }
    }
    projected
}

/// Largest move of any log-parameter in one BFGS step; a factor e² guards against overflow from
/// a wild quasi-Newton step on a flat likelihood.
const MAX_STEP: f64 = 2.0;

/// Values closer than this, relative, are indistinguishable: a few units in the last place of a
/// sum over thousands of terms.
const ROUNDING_FLOOR: f64 = 16.0 * f64::EPSILON;

/// Projected BFGS with an Armijo backtracking line search.
fn bfgs<const N: usize>(
    objective: &impl Objective<N>,
    start: [f64; N],
    lower: &[f64; N],
    upper: &[f64; N],
    options: &MinimizeOptions,
) -> Run<N> {
    let identity = || {
        let mut h = [[0.0; N]; N];
        for (i, row) in h.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        h
    };
    let mut theta = start;
    let (mut value, mut gradient) = objective.value_and_gradient(&theta);
    let mut inverse_hessian = identity();
    let mut fresh = true;
    let mut iterations = 0;
    let mut budget_exhausted = true;
    if !value.is_finite() {
        return Run { theta, value: f64::INFINITY, gradient, iterations, budget_exhausted: false };
    }
    while iterations < options.max_gradient_iterations {
        let projected = project_gradient(&theta, &gradient, lower, upper);
        if projected.iter().all(|g| g.abs() <= options.gradient_tolerance) {
            budget_exhausted = false;
            break;
        }
        iterations += 1;
        let mut direction = [0.0; N];
        for i in 0..N {
            if projected[i] == 0.0 && gradient[i] != 0.0 {
                continue;
            }
            for j in 0..N {
                direction[i] -= inverse_hessian[i][j] * projected[j];
            }
        }
        let slope: f64 = (0..N).map(|i| direction[i] * projected[i]).sum();
        if slope >= 0.0 || !slope.is_finite() {
            inverse_hessian = identity();
            fresh = true;
            direction = projected.map(|g| -g);
        }
        let longest = direction.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
        if longest > MAX_STEP {
            direction = direction.map(|d| d * MAX_STEP / longest);
        }

        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            let mut trial = theta;
            for i in 0..N {
                trial[i] = (theta[i] + step * direction[i]).clamp(lower[i], upper[i]);
            }
            let (trial_value, trial_gradient) = objective.value_and_gradient(&trial);
            let decrease: f64 = (0..N).map(|i| gradient[i] * (trial[i] - theta[i])).sum();
            if trial_value.is_finite() && trial_value <= value + 1e-4 * decrease {
                accepted = Some((trial, trial_value, trial_gradient));
                break;
            }
            // A rejected trial whose value the objective cannot tell from the current one means
            // the search has reached the objective's rounding floor: shorter steps only repeat
            // that verdict (on the CDNOW master file they cost two thirds of the gradients).
            if (trial_value - value).abs() <= ROUNDING_FLOOR * value.abs() {
                break;
            }
            step *= 0.5;
        }
        let Some((next, next_value, next_gradient)) = accepted else {
            if fresh {
                // Even a tiny steepest-descent step does not decrease the value: this is as
                // far as double precision goes.
                budget_exhausted = false;
                break;
            }
            inverse_hessian = identity();
            fresh = true;
            continue;
        };
        let mut s = [0.0; N];
        let mut y = [0.0; N];
        for i in 0..N {
            s[i] = next[i] - theta[i];
            y[i] = next_gradient[i] - gradient[i];
        }
        let sy: f64 = (0..N).map(|i| s[i] * y[i]).sum();
        let yy: f64 = (0..N).map(|i| y[i] * y[i]).sum();
        let ss: f64 = (0..N).map(|i| s[i] * s[i]).sum();
        let no_progress = (value - next_value).abs() <= 1e-16 * value.abs().max(1.0) && ss.sqrt() <= 1e-13;
        theta = next;
        value = next_value;
        gradient = next_gradient;
        if no_progress {
            budget_exhausted = false;
            break;
        }
        if sy > 1e-12 * (ss * yy).sqrt() && sy > 0.0 {
            if fresh {
                // Nocedal & Wright (6.20): scale the first inverse Hessian to the curvature seen.
                let scale = sy / yy;
                inverse_hessian = identity().map(|row| row.map(|h| h * scale));
                fresh = false;
            }
            bfgs_update(&mut inverse_hessian, &s, &y, sy);
        }
    }
    Run { theta, value, gradient, iterations, budget_exhausted }
}

/// The BFGS update of the inverse Hessian: H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ.
fn bfgs_update<const N: usize>(h: &mut [[f64; N]; N], s: &[f64; N], y: &[f64; N], sy: f64) {
    let rho = 1.0 / sy;
    let mut hy = [0.0; N];
    for i in 0..N {
        for j in 0..N {
            hy[i] += h[i][j] * y[j];
        }
    }
    let yhy: f64 = (0..N).map(|i| y[i] * hy[i]).sum();
    for i in 0..N {
        for j in 0..N {
            h[i][j] += -rho * (s[i] * hy[j] + hy[i] * s[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

/// Standard errors of the log-parameters at a minimum of a per-observation objective, from the
/// inverse of the finite-difference Hessian of the analytic gradient, or `None` when that Hessian
/// is not positive definite (a flat or saddle-shaped likelihood).
pub(crate) fn log_space_standard_errors<const N: usize>(
    objective: &impl Objective<N>,
    theta: &[f64; N],
    total_weight: f64,
) -> Option<[f64; N]> {
    let h = 1e-5;
    let mut hessian = [[0.0; N]; N];
    for j in 0..N {
        let mut forward = *theta;
        let mut backward = *theta;
        forward[j] += h;
        backward[j] -= h;
        let (_, g_forward) = objective.value_and_gradient(&forward);
        let (_, g_backward) = objective.value_and_gradient(&backward);
        for i in 0..N {
            hessian[i][j] = (g_forward[i] - g_backward[i]) / (2.0 * h);
        }
    }
    for i in 0..N {
        for j in 0..i {
            let mean = 0.5 * (hessian[i][j] + hessian[j][i]);
            hessian[i][j] = mean;
            hessian[j][i] = mean;
        }
    }
    let inverse = invert_positive_definite(&hessian)?;
    let mut errors = [0.0; N];
    for i in 0..N {
        let variance = inverse[i][i] / total_weight;
        if !(variance.is_finite() && variance > 0.0) {
            return None;
        }
        errors[i] = variance.sqrt();
    }
    Some(errors)
}

/// Inverts a symmetric positive-definite matrix by Cholesky factorisation, or `None` when it is
/// not positive definite.
fn invert_positive_definite<const N: usize>(matrix: &[[f64; N]; N]) -> Option<[[f64; N]; N]> {
    let mut lower = [[0.0; N]; N];
    for i in 0..N {
        for j in 0..=i {
            let mut sum = matrix[i][j];
            for k in 0..j {
                sum -= lower[i][k] * lower[j][k];
            }
            if i == j {
                if !(sum > 0.0 && sum.is_finite()) {
                    return None;
                }
                lower[i][i] = sum.sqrt();
            } else {
                lower[i][j] = sum / lower[j][j];
            }
        }
    }
    // Solve L Lᵀ X = I column by column.
    let mut inverse = [[0.0; N]; N];
    for column in 0..N {
        let mut forward = [0.0; N];
        for i in 0..N {
            let mut sum = if i == column { 1.0 } else { 0.0 };
            for k in 0..i {
                sum -= lower[i][k] * forward[k];
            }
            forward[i] = sum / lower[i][i];
        }
        for i in (0..N).rev() {
            let mut sum = forward[i];
            for k in i + 1..N {
                sum -= lower[k][i] * inverse[k][column];
            }
            inverse[i][column] = sum / lower[i][i];
        }
    }
    Some(inverse)
}

/// The verdict on a minimum: the attained log-likelihood and whether it counts as converged,
/// with warnings appended for everything that weakens it.
pub(crate) struct Verdict {
    pub(crate) log_likelihood: f64,
    pub(crate) converged: bool,
}

/// Judges a minimum of a negative mean log-likelihood (shared by the models of this crate).
pub(crate) fn finish_report<const N: usize>(
    objective: &impl Objective<N>,
    minimum: &Minimum<N>,
    total_weight: f64,
    names: &[&str; N],
    warnings: &mut Vec<String>,
) -> Verdict {
    let mut converged = minimum.gradient_small;
    for (i, name) in names.iter().enumerate() {
        if minimum.at_bound[i] {
            converged = false;
            let value = minimum.theta[i].exp();
            warnings.push(format!(
                "`{name}` ran to the edge of its search range ({value:.3e}): the likelihood keeps \
                 improving towards a limiting model, so no interior maximum exists; treat the \
                 fitted parameters as a boundary solution"
            ));
        }
    }
    if minimum.budget_exhausted {
        warnings.push("the optimiser used up its iteration budget".to_owned());
    }
    if !minimum.gradient_small {
        let largest = minimum.gradient.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
        warnings.push(format!(
            "the optimiser stopped where the gradient is still {largest:.2e} per customer; the \
             parameters may not be at the maximum"
        ));
    }
    if converged {
        match log_space_standard_errors(objective, &minimum.theta, total_weight) {
            None => warnings.push(
                "the likelihood is flat or not concave at the optimum: some parameters are not \
                 identified by these data"
                    .to_owned(),
            ),
            Some(errors) => {
                for (name, error) in names.iter().zip(errors) {
                    if error > 1.0 {
                        warnings.push(format!(
                            "`{name}` is poorly determined: its standard error in log space is \
                             {error:.2} (a factor {:.1} either way)",
                            error.exp()
                        ));
                    }
                }
            }
        }
    }
    Verdict { log_likelihood: -minimum.value * total_weight, converged }
}

/// Asserts that an objective's analytic gradient matches central differences at `theta`: the
/// check every model's likelihood test makes.
#[cfg(test)]
pub(crate) fn assert_gradient<const N: usize>(objective: &impl Objective<N>, theta: [f64; N]) {
    let (_, gradient) = objective.value_and_gradient(&theta);
    for i in 0..N {
        let step = 1e-5;
        let (mut forward, mut backward) = (theta, theta);
        forward[i] += step;
        backward[i] -= step;
        let numeric = (objective.value(&forward) - objective.value(&backward)) / (2.0 * step);
        assert!(
            (gradient[i] - numeric).abs() <= 1e-6 * numeric.abs().max(1.0),
            "θ = {theta:?}, i = {i}: {gradient:?} vs {numeric}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rosenbrock function, the classic curved valley, shifted to a minimum at (1, 1).
    struct Rosenbrock;

    impl Objective<2> for Rosenbrock {
        fn value(&self, theta: &[f64; 2]) -> f64 {
            let [x, y] = *theta;
            (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
        }
        fn value_and_gradient(&self, theta: &[f64; 2]) -> (f64, [f64; 2]) {
            let [x, y] = *theta;
            let gradient = [-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)];
            (self.value(theta), gradient)
        }
    }

    #[test]
    fn rosenbrock_valley_is_followed_to_its_minimum() {
        let found = minimize(&Rosenbrock, [-1.2, 1.0], [-10.0; 2], [10.0; 2], &MinimizeOptions::default());
        assert!(found.gradient_small, "{found:?}");
        assert!((found.theta[0] - 1.0).abs() < 1e-8, "{found:?}");
        assert!((found.theta[1] - 1.0).abs() < 1e-8, "{found:?}");
        assert!(!found.at_bound.iter().any(|b| *b));
    }

    #[test]
    fn minimum_outside_the_box_ends_on_the_bound() {
        // The unconstrained minimum (1, 1) lies outside [-5, 0.5] in x.
        let found = minimize(&Rosenbrock, [-1.2, 1.0], [-5.0, -5.0], [0.5, 5.0], &MinimizeOptions::default());
        assert_eq!(found.theta[0], 0.5);
        assert!(found.at_bound[0]);
        assert!((found.theta[1] - 0.25).abs() < 1e-8, "{found:?}");
    }

    #[test]
    fn undefined_regions_are_never_reported_as_the_minimum() {
        /// A bowl centred at 3 that is undefined (+∞) left of 1.
        struct Cliff;
        impl Objective<1> for Cliff {
            fn value(&self, theta: &[f64; 1]) -> f64 {
                self.value_and_gradient(theta).0
            }
            fn value_and_gradient(&self, theta: &[f64; 1]) -> (f64, [f64; 1]) {
                if theta[0] < 1.0 {
                    (f64::INFINITY, [f64::NAN])
                } else {
                    ((theta[0] - 3.0).powi(2), [2.0 * (theta[0] - 3.0)])
                }
            }
        }
        let found = minimize(&Cliff, [1.5], [-10.0], [10.0], &MinimizeOptions::default());
        assert!((found.theta[0] - 3.0).abs() < 1e-9, "{found:?}");
        assert!(found.value.is_finite());
    }

    #[test]
    fn standard_errors_of_a_quadratic_are_its_inverse_curvature() {
        /// f = (x² + 4y²)/2 per observation, so the Hessian is diag(1, 4).
        struct Bowl;
        impl Objective<2> for Bowl {
            fn value(&self, theta: &[f64; 2]) -> f64 {
                0.5 * (theta[0] * theta[0] + 4.0 * theta[1] * theta[1])
            }
            fn value_and_gradient(&self, theta: &[f64; 2]) -> (f64, [f64; 2]) {
                (self.value(theta), [theta[0], 4.0 * theta[1]])
            }
        }
        let errors = log_space_standard_errors(&Bowl, &[0.0, 0.0], 100.0).expect("definite");
        assert!((errors[0] - 0.1).abs() < 1e-9);
        assert!((errors[1] - 0.05).abs() < 1e-9);
    }
}
