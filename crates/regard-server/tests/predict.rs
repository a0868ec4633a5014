//! Predictions through the real router: a synthetic shop of 400 customers with 200 days of
//! orders, product views and email opens; the models fit behind their thresholds, each
//! prediction carries its explanation, score segments follow, a purchase refreshes the buyer,
//! and a thin store or a person without `profiling` consent gets reasons instead of values.

mod common;

use std::time::Duration;

use common::{spawn, Options, TestApp, ADMIN_KEY, WRITE_KEY};
use rand::{Rng, SeedableRng};
use regard_core::time::format_iso8601_ms;
use serde_json::{json, Value};

const DAY_MS: i64 = 86_400_000;
const CATEGORIES: [&str; 4] = ["Coffee Beans", "Tea", "Running Shoes", "Cookware"];

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}

fn event(user: &str, name: &str, at_ms: i64, properties: Value, profiling: bool) -> Value {
    json!({
        "type": "track", "userId": user, "event": name, "timestamp": format_iso8601_ms(at_ms),
        "messageId": format!("{user}-{name}-{at_ms}"),
        "properties": properties,
        "context": {"timezone": "Europe/Berlin", "consent": {"categoryPreferences": {"Profiling": profiling}}},
    })
}

fn order(user: &str, at_ms: i64, category: &str, amount: f64, coupon: bool) -> Value {
    let mut properties = json!({"order_id": format!("o-{user}-{at_ms}"), "revenue": amount, "currency": "EUR",
        "products": [{"product_id": format!("p-{category}"), "category": category, "price": amount, "quantity": 1}]});
    if coupon {
        properties["coupon"] = json!("SAVE15");
    }
    event(user, "Order Completed", at_ms, properties, true)
}

fn view(user: &str, at_ms: i64, category: &str) -> Value {
    event(user, "Product Viewed", at_ms, json!({"product_id": format!("p-{category}"), "category": category}), true)
}

/// A shop: 400 customers ordering from one favourite category every 10–60 days on average over 200 days
/// until they drop out (after each order: 3% for the loyal half, 50% for the others),
/// each order preceded by views of it, and some window shopping in another category; a third open emails, mostly on Tuesday evenings; plus
/// `coffee` (every 28 days), `lapsed` (weekly, stopped 120 days ago), `once` (one order) and
/// `private` (regular, but no profiling consent).
fn shop(now: i64) -> Vec<Value> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    // Browsing and email draw from their own stream, so the orders stay as they are.
    let mut other = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut messages = Vec::new();
    let start = now - 200 * DAY_MS;
    for c in 0..400 {
        let user = format!("c{c}");
        let category = CATEGORIES[c % CATEGORIES.len()];
        let gap_days: i64 = rng.gen_range(10..60);
        // Loyal customers and drifters: a spread of dropout chances, as in retail.
        let dropout: f64 = if rng.gen_bool(0.5) { 0.03 } else { 0.5 };
        let mut at = start + rng.gen_range(0..40) * DAY_MS + rng.gen_range(0..DAY_MS);
        while at < now - DAY_MS {
            messages.push(view(&user, at - 2 * 3_600_000, category));
            messages.push(view(&user, at - 3_600_000, category));
            messages.push(order(&user, at, category, rng.gen_range(20.0..80.0), rng.gen_bool(0.2)));
            // Coffee and tea are replenished on a rhythm (±15%); the rest is bought at random
            // (Poisson, as BG/NBD assumes: exponential gaps around the person's mean).
            let gap = if c % CATEGORIES.len() < 2 {
                gap_days as f64 * rng.gen_range(0.85..1.15)
            } else {
                -(gap_days as f64) * (1.0 - rng.gen::<f64>()).ln()
            };
            at += ((gap.max(1.0)) * DAY_MS as f64) as i64;
            // Customers drop out after any purchase, as BG/NBD assumes (without dropouts its
            // dropout probability runs to zero and the fit is refused).
            if rng.gen_bool(dropout) {
                break;
            }
        }
        // Window shopping: views of another category that never lead to an order.
        let browsed = CATEGORIES[(c + 1 + other.gen_range(0..3)) % CATEGORIES.len()];
        for _ in 0..other.gen_range(2..12) {
            messages.push(view(&user, now - other.gen_range(1..150) * DAY_MS, browsed));
        }
        if c % 3 == 0 {
            for _ in 0..other.gen_range(3..9) {
                // Evenings at 19:00 Berlin (18:00 UTC in winter) for most opens, random for the rest.
                let day = now - other.gen_range(1..180) * DAY_MS;
                let at = if other.gen_bool(0.7) { day - day.rem_euclid(DAY_MS) + 18 * 3_600_000 } else { day };
                messages.push(event(&user, "Email Opened", at, json!({"campaign": "weekly"}), true));
            }
        }
    }
    for k in 0..7 {
        let at = now - (7 - k) * 28 * DAY_MS + 3 * DAY_MS;
        messages.push(view("coffee", at - 3_600_000, "Coffee Beans"));
        messages.push(view("coffee", at - 1_800_000, "Coffee Beans"));
        messages.push(order("coffee", at, "Coffee Beans", 24.0, false));
    }
    for k in 0..10 {
        messages.push(order("lapsed", now - 190 * DAY_MS + k * 7 * DAY_MS, "Tea", 15.0, false));
    }
    messages.push(order("once", now - 20 * DAY_MS, "Cookware", 90.0, false));
    for k in 0..5 {
        let mut private = order("private", now - 150 * DAY_MS + k * 30 * DAY_MS, "Tea", 30.0, false);
        private["context"]["consent"]["categoryPreferences"]["Profiling"] = json!(false);
        messages.push(private);
    }
    messages
}

async fn send_all(app: &TestApp, messages: Vec<Value>) {
    for chunk in messages.chunks(300) {
        let (status, body) = app.send("POST", "/v1/batch", Some(WRITE_KEY), Some(json!({"batch": chunk}))).await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn fit(app: &TestApp) -> Value {
    let (status, body) = app.send("POST", "/v1/predictions/train", Some(ADMIN_KEY), None).await;
    assert_eq!(status, 202, "{body}");
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, status) = app.send("GET", "/v1/predictions/status", Some(ADMIN_KEY), None).await;
        if status["state"] == "ready" {
            return status;
        }
        assert_ne!(status["state"], "failed", "{status}");
    }
    panic!("the models were not fitted within 20 s");
}

async fn predictions(app: &TestApp, user: &str) -> Value {
    let (status, body) = app.send("GET", &format!("/v1/profiles/{user}/predictions"), Some(ADMIN_KEY), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn served<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body["predictions"].as_array()?.iter().find(|p| p["name"] == name)
}

fn refused(body: &Value, name: &str) -> Option<String> {
    body["not_served"].as_array()?.iter().find(|p| p["name"] == name).map(|p| p["reason"].to_string())
}

fn day_of(date: &Value) -> i64 {
    let text = date.as_str().expect("a date");
    regard_core::time::parse_iso8601_ms(&format!("{text}T00:00:00Z")).expect("ISO date") / DAY_MS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_are_served_with_explanations_and_feed_segments() {
    let app = spawn(Options::default()).await;
    let now = now_ms();
    send_all(&app, shop(now)).await;
    let segment = json!({"id": "at-risk", "name": "At risk", "purpose": "personalization",
        "condition": {"score": {"name": "churn_risk", "op": "gt", "value": 0.5}}});
    let (status, body) = app.send("POST", "/v1/segments", Some(ADMIN_KEY), Some(segment)).await;
    assert_eq!(status, 201, "{body}");

    let report = fit(&app).await;
    let models = &report["models"];
    for model in ["bgnbd", "gamma_gamma", "cadence", "send_time", "offer", "propensity"] {
        assert_eq!(models[model]["state"], "ready", "{model}: {}", models[model]);
    }
    assert!(models["population"]["customers"].as_u64().unwrap_or(0) >= 400, "{}", models["population"]);

    // The 28-day coffee buyer: next order about 28 days after the last, reminded a few days before.
    let coffee = predictions(&app, "coffee").await;
    assert_eq!(coffee["profiling_consent"], true);
    let next = served(&coffee, "next_order_date").unwrap_or_else(|| panic!("{coffee}"));
    let last_order_day = (now - 28 * DAY_MS + 3 * DAY_MS) / DAY_MS;
    let expected = day_of(&next["value"]);
    assert!((expected - (last_order_day + 28)).abs() <= 2, "{next}");
    let reminder = day_of(&next["details"]["reminder_date"]);
    assert!(reminder < expected && reminder >= expected - 6, "{next}");
    assert!(day_of(&next["details"]["low"]) <= expected && expected <= day_of(&next["details"]["high"]));
    assert!(next["explanation"].as_str().unwrap_or("").contains("every 28 days"), "{next}");
    assert_eq!(next["model"], "cadence+bgnbd");
    assert!(next["fitted_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let churn = served(&coffee, "churn_risk").expect("churn risk");
    assert!(churn["value"].as_f64().expect("a number") < 0.3, "{churn}");
    let propensity = served(&coffee, "category_propensity").expect("propensity");
    assert_eq!(propensity["value"][0]["category"], "Coffee Beans", "{propensity}");
    for prediction in coffee["predictions"].as_array().expect("a list") {
        assert!(prediction["explanation"].as_str().is_some_and(|e| e.len() > 40), "{prediction}");
    }

    // Weekly for ten weeks, silent for four months: at risk, and in the score segment.
    let lapsed = predictions(&app, "lapsed").await;
    let risk = served(&lapsed, "churn_risk").expect("churn risk")["value"].as_f64().expect("a number");
    assert!(risk > 0.5, "{lapsed}");
    let (_, segments) = app.send("GET", "/v1/profiles/lapsed/segments", Some(ADMIN_KEY), None).await;
    assert!(segments.to_string().contains("at-risk"), "{segments}");
    let (_, segments) = app.send("GET", "/v1/profiles/coffee/segments", Some(ADMIN_KEY), None).await;
    assert!(!segments.to_string().contains("at-risk"), "{segments}");

    // A slot can target a score directly; the decision says it is predictive, and why.
    let slot = json!({"id": "winback", "name": "Win-back", "kind": "banner", "variants": [
        {"id": "we_miss_you", "priority": 10, "when": {"score": {"name": "churn_risk", "op": "gt", "value": 0.5}},
         "template": "It has been a while. Here is what is new."}],
        "default": {"template": "Welcome!"}});
    let (status, body) = app.send("POST", "/v1/slots", Some(ADMIN_KEY), Some(slot)).await;
    assert_eq!(status, 201, "{body}");
    // With the write key, as a signed-in browser asks: the user's token comes along.
    let decide =
        |user: &'static str| json!({"userId": user, "userToken": common::user_token(user), "slots": ["winback"]});
    let (_, answer) = app.send("POST", "/v1/decide", Some(WRITE_KEY), Some(decide("lapsed"))).await;
    let decision = &answer["decisions"][0];
    assert_eq!((decision["variant"].as_str(), decision["level"].as_str()), (Some("we_miss_you"), Some("predictive")));
    assert!(answer.to_string().contains("risk of having stopped buying"), "{answer}");
    let (_, answer) = app.send("POST", "/v1/decide", Some(WRITE_KEY), Some(decide("coffee"))).await;
    assert_eq!(answer["decisions"][0]["variant"], "default", "{answer}");
    // Without profiling consent the score is unknown to decisions too.
    let (_, answer) = app.send("POST", "/v1/decide", Some(WRITE_KEY), Some(decide("private"))).await;
    assert_eq!(answer["decisions"][0]["variant"], "default", "{answer}");

    // One order: no churn risk or cadence, each with its reason.
    let once = predictions(&app, "once").await;
    assert!(refused(&once, "churn_risk").is_some_and(|r| r.contains("repeat")), "{once}");
    assert!(refused(&once, "next_order_date").is_some_and(|r| r.contains("purchase day")), "{once}");
    assert!(served(&once, "clv_12m").is_some(), "{once}");

    // No profiling consent: nothing computed or served.
    let private = predictions(&app, "private").await;
    assert_eq!(private["profiling_consent"], false);
    assert_eq!(private["predictions"], json!([]));
    assert!(private["not_served"].to_string().contains("profiling consent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_refreshes_the_buyers_predictions_without_a_refit() {
    let app = spawn(Options::default()).await;
    let now = now_ms();
    send_all(&app, shop(now)).await;
    fit(&app).await;
    regard_server::predict::start_worker(&app.state, 0);
    let before = predictions(&app, "lapsed").await;
    let risk_before = served(&before, "churn_risk").expect("churn risk")["value"].as_f64().expect("a number");
    // The lapsed customer comes back today.
    send_all(&app, vec![order("lapsed", now - 60_000, "Tea", 15.0, false)]).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after = predictions(&app, "lapsed").await;
        if after["computed_at"] != before["computed_at"] {
            let risk_after = served(&after, "churn_risk").expect("churn risk")["value"].as_f64().expect("a number");
            assert!(risk_after < 0.05 && risk_after < risk_before, "{before} -> {after}");
            let (_, segments) = app.send("GET", "/v1/profiles/lapsed/segments", Some(ADMIN_KEY), None).await;
            assert!(!segments.to_string().contains("at-risk"), "{segments}");
            return;
        }
    }
    panic!("the buyer's predictions were not refreshed within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thin_store_serves_no_model_and_says_why() {
    let app = spawn(Options::default()).await;
    let now = now_ms();
    let mut messages = Vec::new();
    for c in 0..20 {
        for k in 0..3 {
            messages.push(order(&format!("t{c}"), now - (90 - 30 * k) * DAY_MS, "Tea", 20.0, false));
        }
    }
    send_all(&app, messages).await;
    let report = fit(&app).await;
    let bgnbd = &report["models"]["bgnbd"];
    assert_eq!(bgnbd["state"], "not_served");
    assert!(bgnbd["reason"].as_str().is_some_and(|r| r.contains("20 customers") && r.contains("300")), "{bgnbd}");
    let body = predictions(&app, "t1").await;
    assert_eq!(body["predictions"], json!([]), "{body}");
    for name in ["churn_risk", "clv_12m", "next_order_date", "best_send_time", "category_propensity"] {
        assert!(refused(&body, name).is_some(), "{name}: {body}");
    }
    let (status, body) = app.send("GET", "/v1/profiles/nobody/predictions", Some(ADMIN_KEY), None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["field"], "id");
    let (status, _) = app.send("GET", "/v1/profiles/t1/predictions", Some(WRITE_KEY), None).await;
    assert_eq!(status, 403, "the write key cannot read predictions");
}
