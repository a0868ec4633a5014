//! One person's predictions from the population models: each value with its model, the fit's
//! date and a plain-language explanation, and for each prediction not served, the reason.
//! The same values, as numbers, become the person's model scores for `score` segment
//! conditions.

use regard_core::time::format_iso8601_ms;
use regard_models::bgnbd;
use regard_models::gamma_gamma::{self, ClvHorizon};
use regard_models::next_order::{predict_next_order, MIN_PURCHASES_FOR_CADENCE};
use regard_models::propensity::{build_examples, score_candidates, Activity};
use regard_models::send_time::next_occurrence;
use serde::Serialize;
use serde_json::{json, Value};

use super::fit::{engagement_counts, time_zone, FittedModels, PurchaseHistory, DAY_MS, UNIT_DAYS};
use super::inputs::PersonInputs;

/// The smallest mean dropout probability after a purchase, a / (a + b), at which BG/NBD's churn
/// risk is served: below it the fit has run to its no-dropout boundary (a → 0) and P(alive) is
/// 1 for everyone, which is no prediction.
pub const MIN_IDENTIFIED_DROPOUT: f64 = 1e-3;

/// How many categories a person's propensity lists.
pub const TOP_CATEGORIES: usize = 5;
/// The CLV horizon: 12 months of 4.345 weeks, discounted 1% a month.
pub const CLV_HORIZON: ClvHorizon =
    ClvHorizon { periods: 12, discount_rate_per_period: 0.01, time_units_per_period: 4.345 };

/// One served prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// What it predicts (`churn_risk`, `next_order_date`...).
    pub name: &'static str,
    /// The value: a number, a date, or an object.
    pub value: Value,
    /// The model that produced it.
    pub model: &'static str,
    /// When the population model was fitted.
    pub fitted_at: String,
    /// What it means for this person, in plain words.
    pub explanation: String,
    /// The figures behind it.
    pub details: Value,
}

/// A prediction that is not served, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotServed {
    /// Which prediction.
    pub name: &'static str,
    /// Why not, in plain words.
    pub reason: String,
}

/// Everything predicted for one person.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PersonPredictions {
    /// When computed (Unix ms).
    pub computed_at_ms: i64,
    /// Served values.
    pub predictions: Vec<Prediction>,
    /// Predictions not served for this person, with the reason.
    pub not_served: Vec<NotServed>,
    /// The values as named numbers, for segments.
    #[serde(skip)]
    pub scores: Vec<(String, f64)>,
}

impl PersonPredictions {
    fn serve(
        &mut self,
        models: &FittedModels,
        name: &'static str,
        model: &'static str,
        value: Value,
    ) -> &mut Prediction {
        self.predictions.push(Prediction {
            name,
            value,
            model,
            fitted_at: format_iso8601_ms(models.fitted_at_ms),
            explanation: String::new(),
            details: Value::Null,
        });
        self.predictions.last_mut().expect("just pushed")
    }

    fn refuse(&mut self, name: &'static str, reason: impl Into<String>) {
        self.not_served.push(NotServed { name, reason: reason.into() });
    }

    fn score(&mut self, name: impl Into<String>, value: f64) {
        if value.is_finite() {
            self.scores.push((name.into(), value));
        }
    }
}

fn percent(p: f64) -> String {
    format!("{:.0}%", (p * 100.0).clamp(0.0, 100.0))
}

fn date_of_day(day: f64) -> String {
    format_iso8601_ms((day * DAY_MS) as i64).chars().take(10).collect()
}

fn money(amount: f64, currency: Option<&str>) -> String {
    match currency {
        Some(code) => format!("{amount:.2} {code}"),
        None => format!("{amount:.2}"),
    }
}

/// The lowercase slug a category's propensity score is named with (`propensity.coffee_beans`).
pub fn category_slug(category: &str) -> String {
    let mut slug = String::with_capacity(category.len());
    for c in category.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    slug.trim_end_matches('_').to_owned()
}

/// Predicts everything the models can for one person as of `now_ms`.
pub fn predict_person(models: &FittedModels, inputs: &PersonInputs, now_ms: i64) -> PersonPredictions {
    let mut out = PersonPredictions { computed_at_ms: now_ms, ..PersonPredictions::default() };
    let now_day = now_ms as f64 / DAY_MS;
    let base = models.base_currency.as_deref();
    let history = PurchaseHistory::of(inputs, base, models.rates.as_ref());
    repeat_buying(models, &history, now_day, &mut out);
    next_order(models, &history, now_day, &mut out);
    send_time(models, inputs, now_ms, &mut out);
    offer(models, &history, &mut out);
    propensity(models, inputs, now_day, &mut out);
    out
}

fn repeat_buying(models: &FittedModels, history: &PurchaseHistory, now_day: f64, out: &mut PersonPredictions) {
    let Some(fit) = models.bgnbd.ready() else {
        let reason = models.bgnbd.reason().unwrap_or_default().to_owned();
        for name in ["churn_risk", "expected_orders_90d", "clv_12m"] {
            out.refuse(name, reason.clone());
        }
        return;
    };
    let Some(observation) = history.observation(now_day) else {
        for name in ["churn_risk", "expected_orders_90d", "clv_12m"] {
            out.refuse(name, "no orders yet: the repeat-buying model needs at least one");
        }
        return;
    };
    let params = &fit.params;
    let (x, t_x, age) = (observation.frequency, observation.recency, observation.age);
    let days_since_last = now_day - history.days.last().copied().unwrap_or(now_day);
    let orders = history.days.len();
    // BG/NBD cannot lose a customer before their second purchase (P(alive) = 1 at x = 0), so
    // churn risk is served from the second purchase day on.
    let dropout = params.a / (params.a + params.b);
    if orders < 2 {
        out.refuse("churn_risk", "one purchase day only: churn risk needs a repeat purchase to measure against");
    } else if dropout.is_nan() || dropout < MIN_IDENTIFIED_DROPOUT {
        out.refuse(
            "churn_risk",
            format!(
                "the store's orders show no measurable dropout: the fitted chance of leaving after a purchase is \
                 {dropout:.1e}, so churn risk would be 0 for everyone; lapsed customers are found by the \
                 behavioral segment instead"
            ),
        );
    } else if let Ok(p_alive) = bgnbd::probability_alive(params, x, t_x, age) {
        let churn = 1.0 - p_alive;
        let typical = t_x * UNIT_DAYS / x.max(1.0);
        let prediction = out.serve(models, "churn_risk", "bgnbd", json!(round(churn, 4)));
        prediction.explanation = format!(
            "You have ordered on {orders} days, about every {typical:.0} days, most recently {days_since_last:.0} days \
             ago. Customers with that pattern are {} likely to still be buying, so the risk that you have stopped is {}.",
            percent(p_alive),
            percent(churn)
        );
        prediction.details = json!({"p_alive": round(p_alive, 4), "orders": orders,
            "days_since_last_order": round(days_since_last, 1), "typical_gap_days": round(typical, 1)});
        out.score("churn_risk", churn);
        out.score("p_alive", p_alive);
    }
    if let (Ok(in_30), Ok(in_90)) = (
        bgnbd::expected_purchases(params, 30.0 / UNIT_DAYS, x, t_x, age),
        bgnbd::expected_purchases(params, 90.0 / UNIT_DAYS, x, t_x, age),
    ) {
        let prediction = out.serve(models, "expected_orders_90d", "bgnbd", json!(round(in_90, 3)));
        prediction.explanation = format!(
            "From your {orders} purchase day(s), the last {days_since_last:.0} days ago, we expect about {in_90:.1} \
             orders from you in the next 90 days ({in_30:.2} in the next 30)."
        );
        prediction.details = json!({"expected_orders_30d": round(in_30, 4)});
        out.score("expected_orders_30d", in_30);
        out.score("expected_orders_90d", in_90);
    }
    let Some(gamma) = models.gamma_gamma.ready() else {
        out.refuse("clv_12m", models.gamma_gamma.reason().unwrap_or_default().to_owned());
        return;
    };
    let (frequency, monetary) = history.spend().map_or((0.0, 0.0), |s| (s.frequency, s.monetary));
    let average = gamma_gamma::expected_average_profit(&gamma.params, frequency, monetary);
    let clv = gamma_gamma::customer_lifetime_value(params, &gamma.params, x, t_x, age, monetary, &CLV_HORIZON);
    if let (Ok(average), Ok(clv)) = (average, clv) {
        let currency = models.base_currency.as_deref();
        let prediction = out.serve(models, "clv_12m", "bgnbd+gamma_gamma", json!(round(clv, 2)));
        prediction.explanation = format!(
            "Expected spend over the next 12 months, discounted 1% a month: about {} orders are expected, at {} \
             each (your own average{} weighed with everyone's).",
            format_args!("{:.1}", clv / average.max(f64::MIN_POSITIVE)),
            money(average, currency),
            if frequency > 0.0 { format!(" of {}", money(monetary, currency)) } else { String::new() },
        );
        prediction.details = json!({"expected_order_value": round(average, 2), "currency": currency,
            "horizon_months": CLV_HORIZON.periods, "monthly_discount_rate": CLV_HORIZON.discount_rate_per_period});
        out.score("clv_12m", clv);
        out.score("expected_order_value", average);
    }
}

fn next_order(models: &FittedModels, history: &PurchaseHistory, now_day: f64, out: &mut PersonPredictions) {
    let (Some(fit), Some(prior)) = (models.bgnbd.ready(), models.cadence.ready()) else {
        let reason = models.bgnbd.reason().or(models.cadence.reason()).unwrap_or_default().to_owned();
        out.refuse("next_order_date", reason);
        return;
    };
    if history.days.len() < MIN_PURCHASES_FOR_CADENCE {
        out.refuse(
            "next_order_date",
            format!(
                "{} purchase day(s): a personal reorder date needs {MIN_PURCHASES_FOR_CADENCE}",
                history.days.len()
            ),
        );
        return;
    }
    match predict_next_order(&fit.params, UNIT_DAYS, prior, &history.days, now_day) {
        Ok(Some(next)) => {
            let prediction =
                out.serve(models, "next_order_date", "cadence+bgnbd", json!(date_of_day(next.expected_day)));
            prediction.explanation = format!(
                "You usually reorder about every {:.0} days ({} gaps of your own, weighed {} against other \
                 customers'). Your next order is expected around {}, most likely between {} and {}{}.",
                next.typical_gap_days,
                next.own_gaps,
                percent(next.own_weight),
                date_of_day(next.expected_day),
                date_of_day(next.low_day),
                date_of_day(next.high_day),
                if next.overdue { "; it is overdue" } else { "" }
            );
            prediction.details = json!({
                "low": date_of_day(next.low_day), "high": date_of_day(next.high_day),
                "interval_level": next.interval_level, "reminder_date": date_of_day(next.reminder_day),
                "typical_gap_days": round(next.typical_gap_days, 1), "own_gaps": next.own_gaps,
                "own_weight": round(next.own_weight, 3), "p_alive": round(next.p_alive, 4), "overdue": next.overdue,
            });
            out.score("days_until_next_order", next.expected_day - now_day);
            out.score("days_until_reorder_reminder", next.reminder_day - now_day);
        }
        Ok(None) => out.refuse("next_order_date", "too few purchase days for a personal cadence"),
        Err(error) => out.refuse("next_order_date", format!("could not be computed: {error}")),
    }
}

fn send_time(models: &FittedModels, inputs: &PersonInputs, now_ms: i64, out: &mut PersonPredictions) {
    let Some(model) = models.send_time.ready() else {
        out.refuse("best_send_time", models.send_time.reason().unwrap_or_default().to_owned());
        return;
    };
    let counts = engagement_counts(inputs);
    let mut best = model.predict(&counts);
    best.weekday = capitalized(&best.weekday);
    let zone_name = inputs.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
    let zone = time_zone(Some(&zone_name));
    let next = jiff::Timestamp::from_millisecond(now_ms)
        .map(|now| next_occurrence(best.hour_of_week, &zone, now).to_string())
        .unwrap_or_default();
    let prediction = out.serve(
        models,
        "best_send_time",
        "send_time",
        json!({"weekday": best.weekday, "hour": best.hour, "timezone": zone_name}),
    );
    prediction.explanation = if best.own_events == 0 {
        format!(
            "We have no email opens or clicks from you yet, so this is when people most often open our emails, in \
             your time zone: {} at {}:00.",
            best.weekday, best.hour
        )
    } else {
        format!(
            "From your {} email opens and clicks (weighed {} against everyone's pattern), {} at {}:00 in your time \
             zone ({zone_name}) is when you are most likely to read.",
            best.own_events,
            percent(best.own_weight),
            best.weekday,
            best.hour
        )
    };
    prediction.details = json!({"hour_of_week": best.hour_of_week, "own_events": best.own_events,
        "own_weight": round(best.own_weight, 3), "probability": round(best.probability, 4), "next_at": next});
    out.score("best_send_hour_of_week", best.hour_of_week as f64);
}

fn offer(models: &FittedModels, history: &PurchaseHistory, out: &mut PersonPredictions) {
    let Some(fit) = models.offer.ready() else {
        out.refuse("offer_sensitivity", models.offer.reason().unwrap_or_default().to_owned());
        return;
    };
    if history.orders == 0 {
        out.refuse("offer_sensitivity", "no orders yet: offer sensitivity is measured on orders");
        return;
    }
    let sensitivity = fit.params.predict(history.orders, history.discounted);
    let prediction = out.serve(models, "offer_sensitivity", "offer", json!(round(sensitivity.share, 4)));
    prediction.explanation = format!(
        "{} of your {} orders used a coupon or discount; weighed with everyone's {}, we estimate {} of your orders \
         come with an offer. It is used to choose offers, never to raise a price.",
        sensitivity.discounted,
        sensitivity.purchases,
        percent(sensitivity.population_share),
        percent(sensitivity.share)
    );
    prediction.details = json!({"orders": sensitivity.purchases, "discounted": sensitivity.discounted,
        "own_weight": round(sensitivity.own_weight, 3), "population_share": round(sensitivity.population_share, 4)});
    out.score("offer_sensitivity", sensitivity.share);
}

fn propensity(models: &FittedModels, inputs: &PersonInputs, now_day: f64, out: &mut PersonPredictions) {
    let Some(fit) = models.propensity.ready() else {
        out.refuse("category_propensity", models.propensity.reason().unwrap_or_default().to_owned());
        return;
    };
    let activities: Vec<Activity> = inputs
        .activities
        .iter()
        .map(|&(at_ms, category, kind)| Activity { user: 0, category, kind, day: at_ms as f64 / DAY_MS })
        .filter(|a| a.day <= now_day)
        .collect();
    let mut scored = score_candidates(&fit.model, &activities, now_day);
    if scored.is_empty() {
        out.refuse(
            "category_propensity",
            format!(
                "no views, cart adds or orders in a category in the last {:.0} days",
                fit.model.config.lookback_days
            ),
        );
        return;
    }
    scored.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.cmp(&b.1)));
    let name = |category: u32| models.categories.get(category as usize).cloned().unwrap_or_default();
    let top: Vec<Value> = scored
        .iter()
        .take(TOP_CATEGORIES)
        .map(|&(_, category, p)| json!({"category": name(category), "probability": round(p, 4)}))
        .collect();
    let (_, best_category, best_p) = scored[0];
    // The main reason: the feature that lifts this pair most above the average candidate.
    let reason = build_examples(&activities, now_day, &fit.model.config)
        .into_iter()
        .find(|example| example.category == best_category)
        .and_then(|example| {
            fit.model
                .contributions(&example.features)
                .into_iter()
                .find(|c| c.contribution > 0.0 && c.value > c.mean)
                .map(|c| format!(", mainly from your {} (more than most people's)", c.description))
        })
        .unwrap_or_default();
    let prediction = out.serve(models, "category_propensity", "propensity", Value::Array(top));
    prediction.explanation = format!(
        "From your views, cart adds and orders by category in the last {:.0} days, the category you are most \
         likely to buy from in the next {:.0} days is {} ({}){reason}.",
        fit.model.config.lookback_days,
        fit.model.config.horizon_days,
        name(best_category),
        percent(best_p)
    );
    prediction.details = json!({"auc": round(fit.evaluation.auc, 4), "baseline_auc": round(fit.evaluation.baseline_auc, 4),
        "horizon_days": fit.model.config.horizon_days});
    for &(_, category, p) in &scored {
        out.score(format!("propensity.{}", category_slug(&name(category))), p);
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_slugs_are_lowercase_words_joined_by_underscores() {
        assert_eq!(category_slug("Coffee Beans"), "coffee_beans");
        assert_eq!(category_slug("Plants & Seeds"), "plants_seeds");
        assert_eq!(category_slug("  Tea "), "tea");
    }
}
