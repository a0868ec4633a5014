//! Special functions checked against 40-digit values computed with mpmath 1.3.0
//! (`mp.loggamma`, `mp.digamma`, `mp.hyp2f1` at `mp.dps = 40`).

use super::*;

/// Asserts that `actual` is within `relative` of `expected` (or within `relative` absolutely when
/// `expected` is zero).
fn check(what: &str, actual: f64, expected: f64, relative: f64) {
    let scale = expected.abs().max(if expected == 0.0 { 1.0 } else { 0.0 });
    let error = (actual - expected).abs() / scale;
    assert!(
        error <= relative,
        "{what}: got {actual:e}, expected {expected:e}, relative error {error:e} > {relative:e}"
    );
}

#[test]
fn ln_gamma_matches_mpmath_from_tiny_to_huge_arguments() {
    let table: [(f64, f64); 12] = [
        (1e-08, 18.42068073818021),
        (0.2425929282798217, 1.3198162966613016),
        (0.5, 0.5723649429247001),
        (1.0, 0.0),
        (1.5, -0.12078223763524522),
        (2.0, 0.0),
        (3.7, 1.428072326665388),
        (14.999, 25.18854687054693),
        (15.0, 25.19122118273868),
        (35.0, 88.58082754219768),
        (1234.5, 7550.550901077895),
        (10000000.0, 151180949.3694739),
    ];
    for (x, expected) in table {
        // Below 15 the argument is shifted up and a logarithm of ~25 subtracted, so the error is
        // a few ulps of 25 (absolute); above, it is relative. Both are far below what the
        // likelihoods need.
        let actual = ln_gamma(x);
        if x < 15.0 {
            assert!((actual - expected).abs() < 1e-14, "ln_gamma({x}) = {actual}");
        } else {
            check(&format!("ln_gamma({x})"), actual, expected, 4e-16);
        }
    }
}

#[test]
fn ln_gamma_shift_agrees_with_the_difference_of_logarithms() {
    for (x, n) in [(0.2425929282798217, 0.0), (0.24, 1.0), (0.24, 7.0), (2.4, 30.0), (0.5, 500.0)] {
        let expected = ln_gamma(x + n) - ln_gamma(x);
        check(&format!("shift({x}, {n})"), ln_gamma_shift(x, n), expected, 1e-14);
    }
}

#[test]
fn digamma_matches_mpmath() {
    let table = [
        (1e-06, -1000000.5772140201),
        (0.2425929282798217, -4.358490549409993),
        (1.0, -0.5772156649015329),
        (2.5, 0.7031566406452432),
        (11.9, 2.4339335368825377),
        (12.0, 2.442661679975812),
        (100.0, 4.600161852738087),
        (1000000.0, 13.815510057964191),
    ];
    for (x, expected) in table {
        check(&format!("digamma({x})"), digamma(x), expected, 1e-15);
    }
}

#[test]
fn digamma_shift_agrees_with_the_difference_of_digammas() {
    for (x, n) in [(0.24, 3.0), (2.4, 64.0), (2.4, 65.0), (0.79, 1000.0)] {
        check(&format!("digamma_shift({x}, {n})"), digamma_shift(x, n), digamma(x + n) - digamma(x), 1e-13);
    }
}

#[test]
fn gamma_of_negative_arguments_has_the_right_sign_and_size() {
    // Γ(-0.5) = -2√π and Γ(-1.5) = 4√π/3.
    let (ln_abs, sign) = ln_gamma_signed(-0.5);
    check("Γ(-0.5)", sign * ln_abs.exp(), -2.0 * PI.sqrt(), 1e-14);
    let (ln_abs, sign) = ln_gamma_signed(-1.5);
    check("Γ(-1.5)", sign * ln_abs.exp(), 4.0 * PI.sqrt() / 3.0, 1e-14);
    assert_eq!(ln_gamma_signed(-3.0).1, 0.0, "a pole has sign 0");
}

#[test]
fn hyp2f1_matches_mpmath_across_series_transformation_and_degenerate_cases() {
    // (a, b, c, z, 2F1) with mpmath; the comment says which path each row exercises.
    let table = [
        // Closed forms: -ln(1-z)/z and arcsin(√z)/√z.
        (1.0, 1.0, 2.0, 0.5, 1.3862943611198906),
        (0.5, 0.5, 1.5, 0.25, std::f64::consts::FRAC_PI_3),
        // The CDNOW conditional expectation for customer 1 (direct series).
        (2.2425929282798216, 4.4257523826258, 4.218638349066472, 0.4740285110678558, 4.574346296237716),
        // The CDNOW unconditional expectation at t = 78, 0.999 and 1 - 1e-7 (1 - z transformation).
        (0.2425929282798217, 2.4257523826257996, 2.2186383490664716, 0.9464465101305745, 2.386986055671178),
        (0.2425929282798217, 2.4257523826257996, 2.2186383490664716, 0.999, 11.063817756692705),
        (0.2425929282798217, 2.4257523826257996, 2.2186383490664716, 0.9999999, 652.4846074513027),
        // Large parameters, as for a customer with 50 repeat purchases.
        (50.24, 52.43, 52.22, 0.3, 65126573.78287142),
        (50.24, 52.43, 52.22, 0.8, 1.8205824010606686e+35),
        // Negative c, where (c)_k changes sign.
        (0.3, 0.4, -0.5, 0.6, 0.36938811709553654),
        (0.3, 0.4, -0.5, 0.9, -5.256748884373618),
        // c - a - b exactly and nearly an integer (direct series and interpolation fallbacks).
        (1.5, 2.5, 5.0, 0.9, 3.2605368922819773),
        (1.5, 2.5, 5.000003, 0.95, 3.8947811987498553),
        (1.5, 2.5, 5.000003, 0.9999999, 5.432445584229022),
        // A terminating series and a strongly divergent one near z = 1.
        (-3.0, 2.5, 1.7, 0.99, -0.012133346581875993),
        (2.0, 3.0, 1.0, 0.95, 463999.9999999983),
        (0.7, 0.2, 0.9, 0.999999, 3.43768843263705),
    ];
    for (a, b, c, z, expected) in table {
        let actual = hyp2f1(a, b, c, z).expect("2F1 should evaluate");
        check(&format!("2F1({a}, {b}; {c}; {z})"), actual, expected, 1e-11);
    }
}

#[test]
fn hyp2f1_refuses_arguments_outside_its_domain() {
    assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_err());
    assert!(hyp2f1(1.0, 1.0, 2.0, -0.5).is_err());
    assert!(hyp2f1(1.0, 1.0, -2.0, 0.5).is_err());
    assert!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5).is_err());
}

#[test]
fn log_add_exp_neither_overflows_nor_underflows() {
    check("large", log_add_exp(1000.0, 1000.0), 1000.0 + 2f64.ln(), 1e-16);
    check("small", log_add_exp(-1000.0, -1001.0), -1000.0 + (-1f64).exp().ln_1p(), 1e-16);
    assert_eq!(log_add_exp(3.0, f64::NEG_INFINITY), 3.0);
}

#[test]
fn incomplete_beta_matches_mpmath_on_both_sides_of_the_switch() {
    // (a, b, x, I_x(a, b)) with mpmath `betainc(a, b, 0, x, regularized=True)`.
    let table = [
        (1.0, 0.2425929282798217, 0.5, 0.15477516006969072),
        (3.0, 0.2425929282798217, 0.9464, 0.3290258146495264),
        (2.0, 0.24, 0.001, 1.4887544179537114e-07),
        (50.0, 0.5, 0.3, 6.800825885173812e-28),
        (0.5, 50.0, 0.01, 0.6826956021258024),
        (5.0, 3.0, 0.999, 0.9999999651048741),
        (0.2, 0.3, 0.5, 0.6058293182473327),
        (200.0, 250.0, 0.45, 0.594975689667392),
    ];
    for (a, b, x, expected) in table {
        let actual = regularized_incomplete_beta(a, b, x, 1.0 - x).expect("in domain");
        // The prefactor x^a y^b / B(a, b) is exponentiated from logarithms of size ~a + b, so
        // its relative error grows like (a + b) ε.
        check(&format!("I_{x}({a}, {b})"), actual, expected, 1e-15 * (a + b).max(20.0));
    }
}
