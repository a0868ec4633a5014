//! `regard eval recs` on the real binary, on the demo-shop sample of `regard-recs`.

mod common;

use common::*;

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../regard-recs/tests/data").join(name)
}

#[test]
fn eval_recs_prints_one_line_per_strategy_with_popular_as_the_baseline() {
    let output = regard()
        .args(["eval", "recs", "--interactions"])
        .arg(data("demo_interactions.csv"))
        .arg("--catalog")
        .arg(data("demo_catalog.csv"))
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["users_evaluated"], 128);
    assert_eq!(report["items"], 600);
    let strategies = report["strategies"].as_array().expect("strategies");
    assert_eq!(strategies[0]["name"], "popular");
    for line in strategies {
        for key in ["name", "hr_at_10", "ndcg_at_10", "mrr", "fit_seconds", "eval_seconds"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
        assert_eq!(line.as_object().map(|o| o.len()), Some(6), "{line}");
    }
    let hr = |name: &str| strategies.iter().find(|s| s["name"] == name).and_then(|s| s["hr_at_10"].as_f64());
    assert!(hr("fallback_chain") > hr("popular"), "{report}");
}

#[test]
fn eval_recs_names_the_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.csv");
    std::fs::write(&file, "user_id,item_id,timestamp\nu1,a,1700000000\nu1,b,2023-13-45\n").expect("write");
    let output = regard().args(["eval", "recs", "--interactions"]).arg(&file).output().expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3") && stderr.contains("timestamp"), "{stderr}");
}
