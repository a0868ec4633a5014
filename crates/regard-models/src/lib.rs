//! Regard's predictive customer models: from a purchase log to per-customer summaries, the
//! BG/NBD model of repeat buying (Fader, Hardie & Lee 2005), the Gamma-Gamma model of spend, and
//! customer lifetime value, with the holdout evaluation behind `regard eval clv`.
//!
//! This crate owns the mathematics and nothing else: no files, no sockets, no clocks, no async,
//! no threads. It parses only the text or reader it is handed. Every function is deterministic
//! and single-threaded, so callers may run it on any thread they like. Results are tested against
//! the published CDNOW figures and 40-digit reference values (see `tests/data/README.md`).
//!
//! * [`rfm`] turns transactions into (x, t_x, T, z̄) summaries and reads transaction CSVs.
//! * [`bgnbd`] fits BG/NBD by maximum likelihood and predicts purchases and P(alive).
//! * [`gamma_gamma`] fits the spend model and computes CLV.
//! * [`evaluate`] runs the calibration/holdout evaluation and shapes its JSON report.
//! * [`next_order`] predicts a repeat customer's next order day, with an interval and a reminder day.
//! * [`send_time`] picks each person's best local hour of the week to receive a message.
//! * [`offer`] estimates each customer's share of purchases made with a discount.
//! * [`propensity`] predicts which categories a person will buy from next, and measures how well.

pub mod bgnbd;
mod error;
pub mod evaluate;
pub mod gamma_gamma;
mod logistic;
pub mod next_order;
pub mod offer;
mod optimize;
pub mod propensity;
pub mod rfm;
pub mod send_time;
mod special;

pub use error::ModelError;

/// The outcome of a maximum-likelihood fit, for any of the crate's models.
///
/// A fit always returns the best parameters it found and the log-likelihood it attained there
/// (never NaN); `converged` and `warnings` say how far to trust them. A flat likelihood, a
/// parameter running to the edge of its range, or an exhausted iteration budget each leave a
/// warning in plain words, so a caller can show them rather than silently use a poor model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FitReport<P> {
    /// The maximum-likelihood parameters (or the best point found if not converged).
    pub params: P,
    /// The full, un-normalised log-likelihood at `params`, summed over the weighted data.
    pub log_likelihood: f64,
    /// Optimiser iterations used (Nelder–Mead and BFGS together).
    pub iterations: usize,
    /// Whether the optimiser reached an interior point where the gradient vanishes.
    pub converged: bool,
    /// Plain-language notes on anything that weakens the fit.
    pub warnings: Vec<String>,
}
