//! `regard segments preview` on the real binary.

mod common;

use common::*;

#[test]
fn segment_preview_counts_members_and_refuses_creepy_drafts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64;
    let mut lines = Vec::new();
    for (user, views) in [("fan", 3), ("browser", 1)] {
        for i in 0..views {
            let ts = regard_core::time::format_iso8601_ms(now - (i + 1) * 86_400_000);
            lines.push(format!(
                r#"{{"type":"track","event":"Product Viewed","messageId":"{user}-{i}","userId":"{user}","timestamp":"{ts}","properties":{{"category":"Sports > Running Shoes"}},"context":{{"consent":{{"categoryPreferences":{{"Analytics":true,"Personalization":true}}}}}}}}"#
            ));
        }
    }
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, lines.join("\n")).expect("write");
    let output =
        regard().args(["import", "events", "--quiet", "--data"]).arg(&data).arg(&events).output().expect("import");
    assert!(output.status.success());

    let draft = dir.path().join("fans.json");
    std::fs::write(
        &draft,
        r#"{"id": "fans", "name": "Running fans", "purpose": "personalization",
            "condition": {"catalog": {"category": "Running Shoes", "event": "Product Viewed", "count": {"gte": 3}, "within_days": 7}}}"#,
    )
    .expect("write");
    let output = regard().args(["segments", "preview", "--data"]).arg(&data).arg(&draft).output().expect("preview");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 members of 2 eligible profiles"), "{stdout}");
    assert!(stdout.contains("fan: You viewed Running Shoes 3 times in the last 7 days."), "{stdout}");

    let output = regard().args(["segments", "create", "--data"]).arg(&data).arg(&draft).output().expect("create");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("saved segment fans version 1"), "{stdout}");
    // `create` follows the backfill over the stored views until the segment is ready.
    assert!(stdout.contains("segment fans is ready: 1 members (4 stored events covered"), "{stdout}");
    // With --no-wait it returns once saved; the start-up of the next process finishes the job.
    let browsers = dir.path().join("browsers.json");
    std::fs::write(
        &browsers,
        r#"{"id": "browsers", "name": "Browsers", "purpose": "personalization",
            "condition": {"event": {"name": "Product Viewed", "count": {"gte": 2}, "min_distinct_days": 2, "within_days": 30}}}"#,
    )
    .expect("write");
    let output = regard()
        .args(["segments", "create", "--no-wait", "--data"])
        .arg(&data)
        .arg(&browsers)
        .output()
        .expect("create");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("saved segment browsers version 1") && !stdout.contains("is ready"), "{stdout}");
    let output = regard().args(["segments", "list", "--data"]).arg(&data).output().expect("list");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Running fans"));
    let output = regard().args(["segments", "show", "fans", "--data"]).arg(&data).output().expect("show");
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"Running Shoes\""));
    let server = start_server(&data, &[]);
    let memberships: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/profiles/fan/segments", server.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .expect("get")
        .json()
        .expect("json");
    let ids: Vec<&str> =
        memberships["segments"].as_array().into_iter().flatten().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, ["browsers", "fans"], "{memberships}");
    let status: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/segments/browsers/status", server.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(status["state"], "ready", "rebuilt from the log at start-up: {status}");
    drop(server);

    let creepy = dir.path().join("creepy.json");
    std::fs::write(
        &creepy,
        r#"{"id": "expecting", "name": "Expecting", "purpose": "advertising",
            "condition": {"all": [{"event": {"name": "Order Completed", "where": [{"property": "name", "op": "contains", "value": "prenatal vitamins"}]}},
                                  {"event": {"name": "Order Completed", "where": [{"property": "name", "op": "contains", "value": "unscented lotion"}]}}]}}"#,
    )
    .expect("write");
    let output = regard().args(["segments", "preview", "--data"]).arg(&data).arg(&creepy).output().expect("preview");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("refused: condition.all[0]"), "{stderr}");
    assert!(stderr.contains("pregnancy"), "{stderr}");
}

#[test]
fn the_backfill_bench_agrees_with_sql_on_every_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = regard()
        .args(["bench", "backfill", "--events", "6000", "--json", "--data"])
        .arg(dir.path().join("shop"))
        .output()
        .expect("bench");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(report["events"].as_u64().is_some_and(|n| n > 3_000), "{report}");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 10);
    for row in rows {
        assert_eq!(row["sql_members"], row["members"], "{row}");
        assert_eq!(row["sql_mismatches"], 0, "{row}");
    }
    assert!(rows.iter().any(|row| row["members"].as_u64() > Some(0)), "{report}");
}

#[test]
fn the_operators_policy_file_refuses_what_it_marks_sensitive_in_segments_and_slots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"sensitive_traits": {"income_band": "financial_distress"}}"#).expect("policy");
    let segment = dir.path().join("segment.json");
    std::fs::write(
        &segment,
        r#"{"id": "low-income", "name": "Low income", "purpose": "personalization",
            "condition": {"trait": {"name": "income_band", "op": "equals", "value": "low"}}}"#,
    )
    .expect("segment");
    // Without the policy the trait is an ordinary one; with it, the save is refused.
    let output = regard().args(["segments", "preview", "--data"]).arg(&data).arg(&segment).output().expect("preview");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = regard()
        .args(["segments", "create", "--data"])
        .arg(&data)
        .arg("--policy")
        .arg(&policy)
        .arg(&segment)
        .output()
        .expect("create");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("income_band") && stderr.contains("financial_distress"), "{stderr}");
    // Slots are held to the same policy: targeting and templates.
    let slot = dir.path().join("slot.json");
    std::fs::write(
        &slot,
        r#"{"id": "hero", "name": "Hero", "kind": "web_hero", "default": {"template": "Hello"},
            "variants": [{"id": "v", "template": "Your band: {{ traits.income_band }}"}]}"#,
    )
    .expect("slot");
    let output = regard()
        .env("REGARD_POLICY", &policy)
        .args(["slots", "create", "--data"])
        .arg(&data)
        .arg(&slot)
        .output()
        .expect("slots create");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("variants[0].template") && stderr.contains("income_band"), "{stderr}");
    // A bad policy file is named with its field.
    std::fs::write(&policy, r#"{"sensitive_traits": {"income_band": "gossip"}}"#).expect("policy");
    let output =
        regard().args(["slots", "list", "--data"]).arg(&data).arg("--policy").arg(&policy).output().expect("list");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("sensitive_traits.income_band"), "{stderr}");
}
