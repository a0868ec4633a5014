//! Fitting the population models from everyone's inputs, each behind its data threshold.
//!
//! A model is fitted only when the store holds enough data for it to beat simple behavioral
//! rules (see [`Thresholds`]); otherwise it is [`ModelState::NotServed`] with the reason, and
//! no prediction that needs it is served: decisions then fall back to segments and identity.

use regard_content::money::ExchangeRates;
use regard_core::facts::ProfileId;
use regard_models::bgnbd::{self, BgNbdParams, FitOptions, Observation};
use regard_models::gamma_gamma::{self, GammaGammaParams, SpendObservation};
use regard_models::next_order::{fit_cadence_prior, CadencePrior};
use regard_models::offer::{fit_offer_prior, OfferPrior};
use regard_models::propensity::{
    build_examples, evaluate_time_split, fit_propensity, Activity, PropensityConfig, PropensityEvaluation,
    PropensityModel,
};
use regard_models::send_time::{fit_send_time, hour_of_week, SendTimeModel, HOURS_PER_WEEK};
use regard_models::FitReport;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::inputs::{amount_in, ExcludedCategory, PersonInputs};

/// Milliseconds in a day.
pub const DAY_MS: f64 = 86_400_000.0;
/// The BG/NBD time unit, in days: weeks, as in the literature.
pub const UNIT_DAYS: f64 = 7.0;

/// The data each model needs before it is used. Chosen so that a model is fitted only on
/// data where it has been shown to beat simple rules (see ARCHITECTURE.md, "Predictions").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// People with at least one order (BG/NBD, Gamma-Gamma, offer sensitivity).
    pub min_customers: usize,
    /// People with at least two orders on different days (BG/NBD's repeat rate, Gamma-Gamma).
    pub min_repeat_customers: usize,
    /// Days between the first order in the store and now.
    pub min_history_days: f64,
    /// People with at least three orders (the population cadence prior).
    pub min_cadence_customers: usize,
    /// Email opens and clicks in all (send time).
    pub min_engagement_events: usize,
    /// People with at least one open or click (send time).
    pub min_engaged_people: usize,
    /// Positive labels on each side of the propensity time split.
    pub min_propensity_positives: usize,
    /// The AUC the propensity model must reach on the later split, and beat the count rule by
    /// at least `min_propensity_auc_margin`.
    pub min_propensity_auc: f64,
    /// See `min_propensity_auc`.
    pub min_propensity_auc_margin: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_customers: 300,
            min_repeat_customers: 100,
            min_history_days: 90.0,
            min_cadence_customers: 50,
            min_engagement_events: 500,
            min_engaged_people: 50,
            min_propensity_positives: 100,
            min_propensity_auc: 0.65,
            min_propensity_auc_margin: 0.01,
        }
    }
}

/// A population model, or why it is not served.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelState<T> {
    /// Fitted and used.
    Ready {
        /// The fit.
        fit: T,
    },
    /// Not used; predictions that need it are not served.
    NotServed {
        /// Why, in plain words.
        reason: String,
    },
}

impl<T> ModelState<T> {
    /// The fit, when ready.
    pub fn ready(&self) -> Option<&T> {
        match self {
            ModelState::Ready { fit } => Some(fit),
            ModelState::NotServed { .. } => None,
        }
    }

    /// Why it is not served, if it is not.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ModelState::Ready { .. } => None,
            ModelState::NotServed { reason } => Some(reason),
        }
    }

    fn not_served(reason: impl Into<String>) -> Self {
        ModelState::NotServed { reason: reason.into() }
    }
}

/// The propensity model and its evaluation on the time split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropensityFit {
    /// The model, refitted on the latest full horizon.
    pub model: PropensityModel,
    /// Its AUC on the later split, against the count rule.
    pub evaluation: PropensityEvaluation,
}

/// What the store holds, as the thresholds count it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Population {
    /// People with any input.
    pub people: usize,
    /// People with at least one order.
    pub customers: usize,
    /// People with orders on at least two days.
    pub repeat_customers: usize,
    /// People with orders on at least three days.
    pub cadence_customers: usize,
    /// Days from the first order to now.
    pub history_days: f64,
    /// Email opens and clicks.
    pub engagement_events: usize,
    /// People with one or more.
    pub engaged_people: usize,
    /// Orders with an amount in the base currency.
    pub orders_with_amount: usize,
    /// Correlation of repeat-order count and average order value among repeat customers:
    /// Gamma-Gamma assumes they are independent.
    pub frequency_spend_correlation: Option<f64>,
}

/// Every population model, as fitted at one time.
#[derive(Debug, Clone, Serialize)]
pub struct FittedModels {
    /// When (Unix ms); predictions are as of this time.
    pub fitted_at_ms: i64,
    /// The currency of monetary values.
    pub base_currency: Option<String>,
    /// The data the thresholds saw.
    pub population: Population,
    /// The thresholds in force.
    pub thresholds: Thresholds,
    /// BG/NBD (time unit: weeks).
    pub bgnbd: ModelState<FitReport<BgNbdParams>>,
    /// Gamma-Gamma.
    pub gamma_gamma: ModelState<FitReport<GammaGammaParams>>,
    /// The population's inter-purchase cadence.
    pub cadence: ModelState<CadencePrior>,
    /// The population's hour-of-week pattern and its prior strength.
    pub send_time: ModelState<SendTimeModel>,
    /// The population's discount share and its prior strength.
    pub offer: ModelState<FitReport<OfferPrior>>,
    /// Category propensity.
    pub propensity: ModelState<PropensityFit>,
    /// The leaf categories propensity covers, by index.
    pub categories: Vec<String>,
    /// Categories left out as sensitive.
    pub excluded_categories: Vec<ExcludedCategory>,
    /// Seconds spent fitting.
    pub fit_seconds: f64,
    /// The exchange rates amounts were converted with (not serialized).
    #[serde(skip)]
    pub rates: Option<ExchangeRates>,
}

/// One person's purchase history as the repeat-buying models read it.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseHistory {
    /// Distinct purchase days (days since the Unix epoch), ascending.
    pub days: Vec<f64>,
    /// The amount spent on each of those days, when known.
    pub day_amounts: Vec<Option<f64>>,
    /// Orders, and those with a coupon or discount.
    pub orders: u32,
    /// See `orders`.
    pub discounted: u32,
}

impl PurchaseHistory {
    /// Reads one person's orders; several orders on one day are one purchase, as in the
    /// literature.
    pub fn of(inputs: &PersonInputs, base: Option<&str>, rates: Option<&ExchangeRates>) -> PurchaseHistory {
        let mut days: Vec<f64> = Vec::new();
        let mut day_amounts: Vec<Option<f64>> = Vec::new();
        for order in &inputs.orders {
            let day = (order.at_ms as f64 / DAY_MS).floor();
            let amount = amount_in(order, base, rates);
            if days.last() == Some(&day) {
                if let Some(last) = day_amounts.last_mut() {
                    *last = match (*last, amount) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                }
            } else {
                days.push(day);
                day_amounts.push(amount);
            }
        }
        let orders = inputs.orders.len() as u32;
        let discounted = inputs.orders.iter().filter(|o| o.discounted).count() as u32;
        PurchaseHistory { days, day_amounts, orders, discounted }
    }

    /// BG/NBD's (x, t_x, T) in weeks, as of `now_day`.
    pub fn observation(&self, now_day: f64) -> Option<Observation> {
        let first = *self.days.first()?;
        let last = *self.days.last()?;
        let age = ((now_day - first) / UNIT_DAYS).max((last - first) / UNIT_DAYS);
        Some(Observation::new((self.days.len() - 1) as f64, (last - first) / UNIT_DAYS, age))
    }

    /// Gamma-Gamma's (x, mean repeat spend), when there are repeat purchases with amounts.
    pub fn spend(&self) -> Option<SpendObservation> {
        let repeat: Vec<f64> = self.day_amounts.iter().skip(1).filter_map(|a| *a).filter(|a| *a > 0.0).collect();
        if repeat.is_empty() {
            return None;
        }
        let mean = repeat.iter().sum::<f64>() / repeat.len() as f64;
        Some(SpendObservation::new(repeat.len() as f64, mean))
    }

    /// The gaps between purchase days.
    pub fn gaps(&self) -> Vec<f64> {
        self.days.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// A person's opens and clicks per local hour of the week.
pub fn engagement_counts(inputs: &PersonInputs) -> Vec<u32> {
    let mut counts = vec![0u32; HOURS_PER_WEEK];
    let zone = time_zone(inputs.timezone.as_deref());
    for &at_ms in &inputs.engagement_ms {
        if let Ok(timestamp) = jiff::Timestamp::from_millisecond(at_ms) {
            counts[hour_of_week(timestamp, &zone) % HOURS_PER_WEEK] += 1;
        }
    }
    counts
}

/// The IANA zone by name, or UTC when it is unknown.
pub fn time_zone(name: Option<&str>) -> jiff::tz::TimeZone {
    name.and_then(|n| jiff::tz::TimeZone::get(n).ok()).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// Fits every population model whose threshold is met.
pub fn fit_models(
    people: &FxHashMap<ProfileId, PersonInputs>,
    categories: (Vec<String>, Vec<ExcludedCategory>),
    base_currency: Option<String>,
    rates: Option<ExchangeRates>,
    thresholds: Thresholds,
    now_ms: i64,
    propensity_config: &PropensityConfig,
) -> FittedModels {
    let started = std::time::Instant::now();
    let now_day = now_ms as f64 / DAY_MS;
    let histories: Vec<PurchaseHistory> = people
        .values()
        .filter(|p| !p.orders.is_empty())
        .map(|p| PurchaseHistory::of(p, base_currency.as_deref(), rates.as_ref()))
        .collect();
    let first_day = histories.iter().filter_map(|h| h.days.first()).copied().fold(f64::INFINITY, f64::min);
    let mut population = Population {
        people: people.len(),
        customers: histories.len(),
        repeat_customers: histories.iter().filter(|h| h.days.len() >= 2).count(),
        cadence_customers: histories.iter().filter(|h| h.days.len() >= 3).count(),
        history_days: if first_day.is_finite() { (now_day - first_day).max(0.0) } else { 0.0 },
        engagement_events: people.values().map(|p| p.engagement_ms.len()).sum(),
        engaged_people: people.values().filter(|p| !p.engagement_ms.is_empty()).count(),
        orders_with_amount: people
            .values()
            .flat_map(|p| &p.orders)
            .filter(|o| amount_in(o, base_currency.as_deref(), rates.as_ref()).is_some())
            .count(),
        frequency_spend_correlation: None,
    };

    let bgnbd = fit_bgnbd(&histories, &population, &thresholds, now_day);
    let spend: Vec<SpendObservation> = histories.iter().filter_map(PurchaseHistory::spend).collect();
    population.frequency_spend_correlation = correlation(&spend);
    let gamma_gamma = if spend.len() < thresholds.min_repeat_customers {
        ModelState::not_served(format!(
            "{} repeat customers have order amounts; Gamma-Gamma needs {}",
            spend.len(),
            thresholds.min_repeat_customers
        ))
    } else {
        match gamma_gamma::fit(&spend) {
            Ok(fit) => ModelState::Ready { fit },
            Err(error) => ModelState::not_served(format!("the spend model could not be fitted: {error}")),
        }
    };
    let cadence = if bgnbd.ready().is_none() {
        ModelState::not_served("the next order date needs the BG/NBD model, which is not served")
    } else if population.cadence_customers < thresholds.min_cadence_customers {
        ModelState::not_served(format!(
            "{} customers have 3 or more orders; the population cadence needs {}",
            population.cadence_customers, thresholds.min_cadence_customers
        ))
    } else {
        let gaps: Vec<Vec<f64>> = histories.iter().filter(|h| h.days.len() >= 3).map(PurchaseHistory::gaps).collect();
        match fit_cadence_prior(&gaps) {
            Ok(prior) => ModelState::Ready { fit: prior },
            Err(error) => ModelState::not_served(format!("the cadence prior could not be fitted: {error}")),
        }
    };
    let send_time = if population.engagement_events < thresholds.min_engagement_events
        || population.engaged_people < thresholds.min_engaged_people
    {
        ModelState::not_served(format!(
            "{} email opens and clicks from {} people; send-time optimization needs {} from {}",
            population.engagement_events,
            population.engaged_people,
            thresholds.min_engagement_events,
            thresholds.min_engaged_people
        ))
    } else {
        let counts: Vec<Vec<u32>> =
            people.values().filter(|p| !p.engagement_ms.is_empty()).map(engagement_counts).collect();
        match fit_send_time(&counts) {
            Ok(model) => ModelState::Ready { fit: model },
            Err(error) => ModelState::not_served(format!("the send-time model could not be fitted: {error}")),
        }
    };
    let offer = if population.customers < thresholds.min_customers {
        ModelState::not_served(format!(
            "{} customers; offer sensitivity needs {}",
            population.customers, thresholds.min_customers
        ))
    } else {
        let counts: Vec<(u32, u32)> = histories.iter().map(|h| (h.orders, h.discounted)).collect();
        match fit_offer_prior(&counts) {
            Ok(fit) => ModelState::Ready { fit },
            Err(error) => ModelState::not_served(format!("offer sensitivity could not be fitted: {error}")),
        }
    };
    let propensity = fit_propensity_model(people, &thresholds, now_day, propensity_config);
    FittedModels {
        fitted_at_ms: now_ms,
        base_currency,
        population,
        thresholds,
        bgnbd,
        gamma_gamma,
        cadence,
        send_time,
        offer,
        propensity,
        categories: categories.0,
        excluded_categories: categories.1,
        fit_seconds: started.elapsed().as_secs_f64(),
        rates,
    }
}

fn fit_bgnbd(
    histories: &[PurchaseHistory],
    population: &Population,
    thresholds: &Thresholds,
    now_day: f64,
) -> ModelState<FitReport<BgNbdParams>> {
    if population.customers < thresholds.min_customers {
        return ModelState::not_served(format!(
            "{} customers have ordered; churn risk, CLV and purchase forecasts need {}",
            population.customers, thresholds.min_customers
        ));
    }
    if population.repeat_customers < thresholds.min_repeat_customers {
        return ModelState::not_served(format!(
            "{} customers have ordered on two or more days; the repeat-buying model needs {}",
            population.repeat_customers, thresholds.min_repeat_customers
        ));
    }
    if population.history_days < thresholds.min_history_days {
        return ModelState::not_served(format!(
            "the order history spans {:.0} days; the repeat-buying model needs {:.0}",
            population.history_days, thresholds.min_history_days
        ));
    }
    let observations: Vec<Observation> = histories.iter().filter_map(|h| h.observation(now_day)).collect();
    match bgnbd::fit(&observations, &FitOptions::default()) {
        Ok(fit) if fit.converged => ModelState::Ready { fit },
        Ok(fit) => ModelState::not_served(format!(
            "the repeat-buying model did not converge ({}); its predictions are not served",
            fit.warnings.join("; ")
        )),
        Err(error) => ModelState::not_served(format!("the repeat-buying model could not be fitted: {error}")),
    }
}

fn fit_propensity_model(
    people: &FxHashMap<ProfileId, PersonInputs>,
    thresholds: &Thresholds,
    now_day: f64,
    config: &PropensityConfig,
) -> ModelState<PropensityFit> {
    let activities = activities_of(people);
    if activities.is_empty() {
        return ModelState::not_served("no product views, cart adds or orders with a catalog category are stored");
    }
    let evaluation = match evaluate_time_split(&activities, now_day, config) {
        Ok(evaluation) => evaluation,
        Err(error) => return ModelState::not_served(format!("the time split could not be evaluated: {error}")),
    };
    let positives = evaluation.train_positives.min(evaluation.test_positives);
    if positives < thresholds.min_propensity_positives {
        return ModelState::not_served(format!(
            "{positives} purchases in a category follow the split points; category propensity needs {}",
            thresholds.min_propensity_positives
        ));
    }
    if evaluation.auc < thresholds.min_propensity_auc
        || evaluation.auc < evaluation.baseline_auc + thresholds.min_propensity_auc_margin
    {
        return ModelState::not_served(format!(
            "on the last {} days the model's AUC is {:.3} against {:.3} for counting views, carts and \
             purchases; it is served only when it reaches {:.2} and beats the count by {:.2}",
            config.horizon_days,
            evaluation.auc,
            evaluation.baseline_auc,
            thresholds.min_propensity_auc,
            thresholds.min_propensity_auc_margin
        ));
    }
    // Refit on the latest complete horizon, then score as of now.
    let examples = build_examples(&activities, now_day - config.horizon_days, config);
    match fit_propensity(&examples, config) {
        Ok(fit) => ModelState::Ready { fit: PropensityFit { model: fit.params, evaluation } },
        Err(error) => ModelState::not_served(format!("category propensity could not be fitted: {error}")),
    }
}

/// Every person's category activity, numbered by a dense person index.
pub fn activities_of(people: &FxHashMap<ProfileId, PersonInputs>) -> Vec<Activity> {
    let mut activities = Vec::new();
    for (index, person) in people.values().enumerate() {
        for &(at_ms, category, kind) in &person.activities {
            activities.push(Activity { user: index as u32, category, kind, day: at_ms as f64 / DAY_MS });
        }
    }
    activities
}

fn correlation(spend: &[SpendObservation]) -> Option<f64> {
    if spend.len() < 3 {
        return None;
    }
    let n = spend.len() as f64;
    let (mx, my) =
        (spend.iter().map(|s| s.frequency).sum::<f64>() / n, spend.iter().map(|s| s.monetary).sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for s in spend {
        let (dx, dy) = (s.frequency - mx, s.monetary - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let r = sxy / (sxx * syy).sqrt();
    r.is_finite().then_some(r)
}
