//! Compatibility with a real Segment SDK: the PyPI package `segment-analytics-python`, pointed
//! at the real server, sends every message type; each must be stored exactly once.
//!
//! The test needs Python 3 and the package. It uses `REGARD_TEST_PYTHON` when set (`.ci/run`
//! sets it), else creates a venv under `target/` and installs the package from PyPI.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

const SDK: &str = "segment-analytics-python==2.4.0";

fn python() -> PathBuf {
    if let Ok(python) = std::env::var("REGARD_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyvenv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python).args(["-c", "import segment.analytics"]).status().is_ok_and(|s| s.success());
    if !ready {
        let status =
            Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 is needed for this test");
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(&python).args(["-m", "pip", "install", "--quiet", SDK]).status().expect("pip");
        assert!(status.success(), "pip install {SDK} failed");
    }
    python
}

const SCRIPT: &str = r#"
import json, sys
from segment.analytics import Client

host, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
errors = []
client = Client(key, host=host, gzip=True, upload_size=40, max_retries=3, on_error=lambda e, batch: errors.append(str(e)))
sent = []
consent = {"consent": {"categoryPreferences": {"Analytics": True, "Personalization": True}}}
for i in range(n):
    user = "sdk-user-%d" % (i % 17)
    anon = "sdk-anon-%d" % (i % 23)
    kind = i % 6
    mid = "sdk-%d" % i
    if kind == 0:
        client.identify(user, {"name": "User %d" % i, "email": "u%d@example.com" % i}, context=consent, anonymous_id=anon, message_id=mid)
    elif kind == 1:
        client.track(user, "Product Viewed", {"product_id": "sku-%d" % i, "price": 9.5}, context=consent, message_id=mid)
    elif kind == 2:
        client.page(user, "Shop", "Home", {"url": "https://shop.example.com/"}, context=consent, message_id=mid)
    elif kind == 3:
        client.screen(user, "App", "Cart", {"items": 2}, context=consent, message_id=mid)
    elif kind == 4:
        client.group(user, "org-%d" % (i % 3), {"plan": "pro"}, context=consent, message_id=mid)
    else:
        client.alias("sdk-old-%d" % i, user, context=consent, message_id=mid)
    sent.append(mid)
client.flush()
client.join()
print(json.dumps({"sent": sent, "errors": errors}))
"#;

#[test]
fn every_message_the_python_sdk_sends_is_stored_exactly_once() {
    let python = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path(), &[]);
    let output =
        Command::new(&python).args(["-c", SCRIPT, &server.base, WRITE_KEY, "600"]).output().expect("run python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("script output");
    assert_eq!(report["errors"], serde_json::json!([]), "the SDK reported errors");
    let sent: Vec<String> = serde_json::from_value(report["sent"].clone()).expect("ids");
    assert_eq!(sent.len(), 600);
    let stored = stored_message_ids(dir.path());
    for id in &sent {
        assert_eq!(stored.get(id), Some(&1), "message {id} stored {:?} times", stored.get(id));
    }
    assert_eq!(stored.len(), sent.len());
}
