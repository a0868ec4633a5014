//! `regard train predict` on the real binary over a demo store: every model's fit or reason,
//! the thresholds, and one person's predictions; a profile that does not exist is named.

mod common;

use common::*;

#[test]
fn train_predict_fits_the_demo_store_and_explains_one_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let demo = regard()
        .args(["demo", "--no-serve", "--users", "1500", "--end-date", "2026-11-29", "--data"])
        .arg(&data)
        .output()
        .expect("run demo");
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    // The demo names a busy identified customer in its examples.
    let stdout = String::from_utf8_lossy(&demo.stdout);
    let showcase = stdout
        .split("/v1/profiles/")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !(c.is_alphanumeric() || c == '-')).next())
        .expect("the demo prints a profile to try")
        .to_owned();

    let output = regard()
        .args(["train", "predict", "--quiet", "--profile", &showcase, "--data"])
        .arg(&data)
        .output()
        .expect("run train predict");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["state"], "ready", "{report}");
    let models = &report["models"];
    assert!(models["population"]["customers"].as_u64().unwrap_or(0) > 300, "{}", models["population"]);
    for model in ["bgnbd", "gamma_gamma", "cadence", "send_time", "offer", "propensity"] {
        let state = models[model]["state"].as_str().unwrap_or("");
        assert!(state == "ready" || state == "not_served", "{model}: {}", models[model]);
        if state == "not_served" {
            assert!(models[model]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{model}");
        }
    }
    assert_eq!(models["propensity"]["state"], "ready", "{}", models["propensity"]);
    // Baby care and vitamins are sensitive: no propensity is ever computed for them.
    let excluded = models["excluded_categories"].to_string();
    assert!(excluded.contains("pregnancy_and_baby") && excluded.contains("health_and_medical"), "{excluded}");
    assert!(!models["categories"].to_string().contains("Vitamins"));
    assert!(report["profile"].is_object(), "{report}");
    assert!(models["thresholds"]["min_customers"].as_u64().is_some());

    let missing = regard()
        .args(["train", "predict", "--quiet", "--profile", "nobody-at-all", "--data"])
        .arg(&data)
        .output()
        .expect("run train predict");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nobody-at-all"));
}
