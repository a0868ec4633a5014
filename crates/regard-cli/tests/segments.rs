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
    assert!(String::from_utf8_lossy(&output.stdout).contains("saved segment fans version 1"));
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
    assert_eq!(memberships["segments"][0]["id"], "fans", "{memberships}");
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
