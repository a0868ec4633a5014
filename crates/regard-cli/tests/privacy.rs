//! `regard privacy export|erase` on the real binary: each call reopens the store, so this also
//! shows that an erasure and its tombstones survive a restart, and that re-importing the
//! person's old events does not bring them back.

mod common;

use common::*;

const USER: &str = "quinn-84c2e6";
const EMAIL: &str = "quinn.84c2e6@example.net";

fn events_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut lines = vec![serde_json::json!({"type": "identify", "userId": USER, "messageId": "q-1",
        "timestamp": "2026-10-01T09:00:00Z", "traits": {"email": EMAIL},
        "context": {"consent": {"categoryPreferences": {"Analytics": true, "Personalization": true}}}})];
    for i in 2..=6 {
        lines.push(serde_json::json!({"type": "track", "userId": USER, "event": "Product Viewed",
            "messageId": format!("q-{i}"), "timestamp": format!("2026-10-0{i}T09:00:00Z"),
            "properties": {"product_id": "p-9"},
            "context": {"consent": {"categoryPreferences": {"Analytics": true}}}}));
    }
    let file = dir.join("quinn.jsonl");
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&file, text.join("\n") + "\n").expect("write");
    file
}

fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())))
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn export_then_erase_survives_a_restart_and_a_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = events_file(dir.path());
    let import = regard().args(["import", "events", "--quiet", "--data"]).arg(&data).arg(&file).output().expect("run");
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));

    let export = regard().args(["privacy", "export", USER, "--data"]).arg(&data).output().expect("run");
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let document: serde_json::Value = serde_json::from_slice(&export.stdout).expect("JSON");
    assert_eq!(document["events"].as_array().map(Vec::len), Some(6), "{document}");
    assert!(document.to_string().contains(EMAIL));
    assert!(!files_containing(&data, EMAIL).is_empty(), "stored before the erasure");
    let zip_path = dir.path().join("quinn.zip");
    let zipped = regard()
        .args(["privacy", "export", USER, "--format", "zip", "--output"])
        .arg(&zip_path)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    assert!(zipped.status.success(), "{}", String::from_utf8_lossy(&zipped.stderr));
    assert!(std::fs::read(&zip_path).is_ok_and(|b| b.starts_with(b"PK")), "a ZIP file");
    let unprintable = regard().args(["privacy", "export", USER, "--format", "zip", "--data"]).arg(&data).output();
    let unprintable = unprintable.expect("run");
    assert!(!unprintable.status.success() && String::from_utf8_lossy(&unprintable.stderr).contains("--output"));

    let erase = regard().args(["privacy", "erase", USER, "--data"]).arg(&data).output().expect("run");
    assert!(erase.status.success(), "{}", String::from_utf8_lossy(&erase.stderr));
    let report: serde_json::Value = serde_json::from_slice(&erase.stdout).expect("JSON");
    assert_eq!((report["profiles"].as_u64(), report["events"].as_u64()), (Some(1), Some(6)), "{report}");
    for needle in [EMAIL, USER] {
        assert!(files_containing(&data, needle).is_empty(), "{needle} left in {:?}", files_containing(&data, needle));
    }

    // The same old events again (new process, so the tombstones came back from disk).
    let again = regard().args(["import", "events", "--quiet", "--data"]).arg(&data).arg(&file).output().expect("run");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let summary = String::from_utf8_lossy(&again.stdout);
    assert!(summary.contains("0 stored") && summary.contains("6 messages were about people erased"), "{summary}");
    let export = regard().args(["privacy", "export", USER, "--data"]).arg(&data).output().expect("run");
    assert!(!export.status.success(), "the erased person must not come back");
    assert!(String::from_utf8_lossy(&export.stderr).contains(USER));
    assert!(files_containing(&data, EMAIL).is_empty());
}
