//! The engine of `regard eval clv`: fit BG/NBD and Gamma-Gamma on a calibration period of a
//! transaction log and, when a holdout period follows, compare predicted with actual repeat
//! purchases per calibration frequency, as in Fig. 5 of Fader, Hardie & Lee (2005).

use jiff::civil::Date;
use serde_json::{json, Value};

use crate::bgnbd::{self, BgNbdParams, Observation};
use crate::gamma_gamma::{self, GammaGammaParams, SpendObservation};
use crate::rfm::{self, CustomerSummary, TimeUnit};
use crate::{FitReport, ModelError};

/// What `regard eval clv` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalClvOptions {
    /// The last day of the calibration period (inclusive).
    pub calibration_end: Date,
    /// The last day of the holdout period (inclusive), if the log runs past calibration.
    pub holdout_end: Option<Date>,
    /// The time unit of t_x, T and the fitted α.
    pub time_unit: TimeUnit,
}

/// The full outcome of an evaluation, including the fit warnings that the JSON report leaves
/// out, so that a CLI can print them.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvEvaluation {
    /// Customers acquired by the calibration end.
    pub customers: usize,
    /// The time unit of the fit.
    pub time_unit: TimeUnit,
    /// The BG/NBD fit on all customers.
    pub bgnbd: FitReport<BgNbdParams>,
    /// The Gamma-Gamma fit on repeat buyers with positive mean spend; `None` when there are none.
    pub gamma_gamma: Option<FitReport<GammaGammaParams>>,
    /// The holdout comparison, when a holdout end was given.
    pub holdout: Option<HoldoutComparison>,
}

/// Predicted against actual repeat purchases in the holdout period.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutComparison {
    /// Length of the holdout in the fit's time unit.
    pub length: f64,
    /// Purchase days observed in the holdout, summed over customers.
    pub actual_total: u64,
    /// Σ E[Y(length) | x, t_x, T] over customers.
    pub predicted_total: f64,
    /// Mean actual and predicted holdout purchases per calibration frequency 0..=6 and 7+.
    pub by_frequency: Vec<FrequencyBin>,
}

/// One bar pair of the paper's Fig. 5: customers with the same calibration frequency.
#[derive(Debug, Clone, PartialEq)]
pub struct FrequencyBin {
    /// "0" to "6", or "7+".
    pub frequency: String,
    /// Customers in the bin.
    pub customers: usize,
    /// Mean actual holdout purchases (`None` for an empty bin).
    pub actual_mean: Option<f64>,
    /// Mean predicted holdout purchases (`None` for an empty bin).
    pub predicted_mean: Option<f64>,
}

/// Frequencies at and above this share the last bin, as in the paper.
const TOP_BIN: usize = 7;

/// Runs the evaluation on a transaction CSV (see [`rfm::read_transactions_csv`]) and returns the
/// JSON report
/// `{"customers", "time_unit", "bgnbd": {"r", "alpha", "a", "b", "log_likelihood"},
/// "gamma_gamma": {"p", "q", "v", "log_likelihood"} | null, "holdout": {"actual_total",
/// "predicted_total", "by_frequency": [{"frequency", "customers", "actual_mean",
/// "predicted_mean"}]} | null}`.
pub fn evaluate_clv(csv_text: &str, options: &EvalClvOptions) -> Result<Value, ModelError> {
    Ok(evaluate_clv_report(csv_text, options)?.to_json())
}

/// Like [`evaluate_clv`] but returns the typed outcome with the fit warnings.
pub fn evaluate_clv_report(csv_text: &str, options: &EvalClvOptions) -> Result<ClvEvaluation, ModelError> {
    let transactions = rfm::parse_transactions_csv(csv_text)?;
    let summaries = rfm::summarize(&transactions, options.calibration_end, options.holdout_end, options.time_unit)?;
    evaluate_summaries(&summaries, options)
}

/// Runs the evaluation on customer summaries already made by [`rfm::summarize`] with the same
/// options.
pub fn evaluate_summaries(
    summaries: &[CustomerSummary],
    options: &EvalClvOptions,
) -> Result<ClvEvaluation, ModelError> {
    if summaries.is_empty() {
        return Err(ModelError::InsufficientData(format!(
            "no customer made a first purchase on or before the calibration end {}",
            options.calibration_end
        )));
    }
    let observations: Vec<Observation> = summaries.iter().map(Observation::from).collect();
    let bgnbd_fit = bgnbd::fit(&observations, &bgnbd::FitOptions::default())?;

    let spend: Vec<SpendObservation> = summaries
        .iter()
        .filter(|s| s.frequency > 0.0 && s.monetary > 0.0)
        .map(|s| SpendObservation::new(s.frequency, s.monetary))
        .collect();
    let gamma_gamma_fit = if spend.is_empty() { None } else { Some(gamma_gamma::fit(&spend)?) };

    let holdout = match options.holdout_end {
        None => None,
        Some(end) => Some(compare_holdout(
            summaries,
            &bgnbd_fit.params,
            holdout_length(options.calibration_end, end, options.time_unit)?,
        )?),
    };
    Ok(ClvEvaluation {
        customers: summaries.len(),
        time_unit: options.time_unit,
        bgnbd: bgnbd_fit,
        gamma_gamma: gamma_gamma_fit,
        holdout,
    })
}

/// The holdout length in the time unit.
fn holdout_length(calibration_end: Date, holdout_end: Date, unit: TimeUnit) -> Result<f64, ModelError> {
    let days = calibration_end
        .until(holdout_end)
        .map_err(|error| ModelError::input("holdout end", error.to_string()))?
        .get_days();
    if days <= 0 {
        return Err(ModelError::input(
            "holdout end",
            format!("{holdout_end} is not after the calibration end {calibration_end}"),
        ));
    }
    Ok(f64::from(days) / unit.days())
}

/// Predicts every customer's holdout purchases and compares them with the actual counts.
fn compare_holdout(
    summaries: &[CustomerSummary],
    params: &BgNbdParams,
    length: f64,
) -> Result<HoldoutComparison, ModelError> {
    let mut actual_total = 0.0;
    let mut predicted_total = 0.0;
    let mut customers = [0_usize; TOP_BIN + 1];
    let mut actual = [0.0; TOP_BIN + 1];
    let mut predicted = [0.0; TOP_BIN + 1];
    for summary in summaries {
        let observed = summary.holdout_frequency.ok_or_else(|| {
            ModelError::input("summaries", format!("customer `{}` has no holdout count", summary.customer_id))
        })?;
        let expected = bgnbd::expected_purchases(params, length, summary.frequency, summary.recency, summary.age)?;
        let bin = (summary.frequency as usize).min(TOP_BIN);
        customers[bin] += 1;
        actual[bin] += observed;
        predicted[bin] += expected;
        actual_total += observed;
        predicted_total += expected;
    }
    let by_frequency = (0..=TOP_BIN)
        .map(|bin| {
            let count = customers[bin];
            let mean = |sum: f64| (count > 0).then(|| sum / count as f64);
            FrequencyBin {
                frequency: if bin == TOP_BIN { format!("{TOP_BIN}+") } else { bin.to_string() },
                customers: count,
                actual_mean: mean(actual[bin]),
                predicted_mean: mean(predicted[bin]),
            }
        })
        .collect();
    Ok(HoldoutComparison { length, actual_total: actual_total as u64, predicted_total, by_frequency })
}

/// The report in the documented key order, for printing: `serde_json::Value` sorts its keys, so
/// a CLI that wants the order of the documentation serialises the [`ClvEvaluation`] itself.
#[derive(serde::Serialize)]
struct ReportView<'a> {
    customers: usize,
    time_unit: &'static str,
    bgnbd: BgNbdView,
    gamma_gamma: Option<GammaGammaView>,
    holdout: Option<HoldoutView<'a>>,
}

/// The `bgnbd` object of the report.
#[derive(serde::Serialize)]
struct BgNbdView {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    log_likelihood: f64,
}

/// The `gamma_gamma` object of the report.
#[derive(serde::Serialize)]
struct GammaGammaView {
    p: f64,
    q: f64,
    v: f64,
    log_likelihood: f64,
}

/// The `holdout` object of the report.
#[derive(serde::Serialize)]
struct HoldoutView<'a> {
    actual_total: u64,
    predicted_total: f64,
    by_frequency: Vec<BinView<'a>>,
}

/// One entry of `holdout.by_frequency`.
#[derive(serde::Serialize)]
struct BinView<'a> {
    frequency: &'a str,
    customers: usize,
    actual_mean: Option<f64>,
    predicted_mean: Option<f64>,
}

impl serde::Serialize for ClvEvaluation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bgnbd = &self.bgnbd;
        ReportView {
            customers: self.customers,
            time_unit: self.time_unit.as_str(),
            bgnbd: BgNbdView {
                r: bgnbd.params.r,
                alpha: bgnbd.params.alpha,
                a: bgnbd.params.a,
                b: bgnbd.params.b,
                log_likelihood: bgnbd.log_likelihood,
            },
            gamma_gamma: self.gamma_gamma.as_ref().map(|fit| GammaGammaView {
                p: fit.params.p,
                q: fit.params.q,
                v: fit.params.v,
                log_likelihood: fit.log_likelihood,
            }),
            holdout: self.holdout.as_ref().map(|holdout| HoldoutView {
                actual_total: holdout.actual_total,
                predicted_total: holdout.predicted_total,
                by_frequency: holdout
                    .by_frequency
                    .iter()
                    .map(|bin| BinView {
                        frequency: &bin.frequency,
                        customers: bin.customers,
                        actual_mean: bin.actual_mean,
                        predicted_mean: bin.predicted_mean,
                    })
                    .collect(),
            }),
        }
        .serialize(serializer)
    }
}

impl ClvEvaluation {
    /// The JSON report of `regard eval clv`, shaped as documented on [`evaluate_clv`]. Its keys
    /// come out sorted (that is how `serde_json::Value` stores them); serialise the
    /// `ClvEvaluation` directly to print them in the documented order.
    pub fn to_json(&self) -> Value {
        let bgnbd = &self.bgnbd;
        let gamma_gamma = self.gamma_gamma.as_ref().map(|fit| {
            json!({
                "p": fit.params.p,
                "q": fit.params.q,
                "v": fit.params.v,
                "log_likelihood": fit.log_likelihood,
            })
        });
        let holdout = self.holdout.as_ref().map(|holdout| {
            let bins: Vec<Value> = holdout
                .by_frequency
                .iter()
                .map(|bin| {
                    json!({
                        "frequency": bin.frequency,
                        "customers": bin.customers,
                        "actual_mean": bin.actual_mean,
                        "predicted_mean": bin.predicted_mean,
                    })
                })
                .collect();
            json!({
                "actual_total": holdout.actual_total,
                "predicted_total": holdout.predicted_total,
                "by_frequency": bins,
            })
        });
        json!({
            "customers": self.customers,
            "time_unit": self.time_unit.as_str(),
            "bgnbd": {
                "r": bgnbd.params.r,
                "alpha": bgnbd.params.alpha,
                "a": bgnbd.params.a,
                "b": bgnbd.params.b,
                "log_likelihood": bgnbd.log_likelihood,
            },
            "gamma_gamma": gamma_gamma,
            "holdout": holdout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(holdout_end: Option<&str>) -> EvalClvOptions {
        EvalClvOptions {
            calibration_end: "2020-03-31".parse().expect("date"),
            holdout_end: holdout_end.map(|d| d.parse().expect("date")),
            time_unit: TimeUnit::Weeks,
        }
    }

    /// A small log: customers buying every 1..=9 weeks from January, some until June.
    fn small_log() -> String {
        let mut text = String::from("customer_id,date,amount\n");
        for customer in 0..60_i64 {
            let gap = 1 + customer % 9;
            let stop = if customer % 3 == 0 { 60 } else { 170 };
            let mut day = customer % 20;
            while day < stop {
                let date = jiff::civil::date(2020, 1, 1).checked_add(jiff::Span::new().days(day)).expect("in range");
                text.push_str(&format!("c{customer},{date},{}\n", 10 + customer % 7));
                day += gap * 7;
            }
        }
        text
    }

    #[test]
    fn report_has_exactly_the_documented_shape() {
        let report = evaluate_clv(&small_log(), &options(Some("2020-06-30"))).expect("evaluates");
        let keys = |value: &Value| -> Vec<String> {
            let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(&report), ["bgnbd", "customers", "gamma_gamma", "holdout", "time_unit"]);
        assert_eq!(keys(&report["bgnbd"]), ["a", "alpha", "b", "log_likelihood", "r"]);
        assert_eq!(keys(&report["gamma_gamma"]), ["log_likelihood", "p", "q", "v"]);
        assert_eq!(keys(&report["holdout"]), ["actual_total", "by_frequency", "predicted_total"]);
        let bins = report["holdout"]["by_frequency"].as_array().expect("array");
        let labels: Vec<&str> = bins.iter().filter_map(|b| b["frequency"].as_str()).collect();
        assert_eq!(labels, ["0", "1", "2", "3", "4", "5", "6", "7+"]);
        assert_eq!(report["customers"], 60);
        assert_eq!(report["time_unit"], "weeks");
    }

    #[test]
    fn serialised_evaluation_keeps_the_documented_key_order_and_content() {
        let evaluation = evaluate_clv_report(&small_log(), &options(Some("2020-06-30"))).expect("evaluates");
        let text = serde_json::to_string(&evaluation).expect("serialises");
        let positions: Vec<usize> = ["\"customers\"", "\"time_unit\"", "\"bgnbd\"", "\"gamma_gamma\"", "\"holdout\""]
            .iter()
            .map(|key| text.find(key).expect("key present"))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        let value = serde_json::to_value(&evaluation).expect("serialises");
        assert_eq!(value, evaluation.to_json());
    }

    #[test]
    fn clockwork_buyers_far_from_the_model_get_warnings_not_a_silent_fit() {
        // The small log's customers buy at exact intervals and none visibly drops out, so the
        // drop-out parameters run off along a ridge (a → 0, b → ∞) and spend is constant.
        let evaluation = evaluate_clv_report(&small_log(), &options(Some("2020-06-30"))).expect("evaluates");
        assert!(!evaluation.bgnbd.warnings.is_empty(), "{:?}", evaluation.bgnbd);
        let spend = evaluation.gamma_gamma.expect("repeat buyers exist");
        assert!(!spend.converged || !spend.warnings.is_empty(), "{spend:?}");
        assert!(evaluation.bgnbd.log_likelihood.is_finite());
    }

    #[test]
    fn holdout_is_null_without_a_holdout_end() {
        let report = evaluate_clv(&small_log(), &options(None)).expect("evaluates");
        assert!(report["holdout"].is_null());
        assert!(report["bgnbd"]["r"].as_f64().is_some());
    }

    #[test]
    fn bad_input_is_a_user_error() {
        let table = [
            ("customer_id,date,amount\n", "no customer"),
            ("customer_id,date,amount\nc1,2020-01-01,x\n", "line 2"),
            ("customer_id,date,amount\nc1,2021-01-01,1\n", "no customer"),
        ];
        for (text, expected) in table {
            let error = evaluate_clv(text, &options(None)).expect_err("bad input");
            assert!(error.is_user_error());
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
