//! `regard import events|catalog` on the real binary: bad lines are named, the rest goes in.

mod common;

use common::*;

#[test]
fn event_import_reports_bad_lines_and_loads_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.jsonl");
    let mut lines = Vec::new();
    for i in 0..500 {
        lines.push(format!(
            r#"{{"type":"track","event":"Product Viewed","messageId":"imp-{i}","userId":"user-{}","timestamp":"2026-10-01T00:00:00Z","context":{{"consent":{{"categoryPreferences":{{"Analytics":true}}}}}}}}"#,
            i % 7
        ));
    }
    lines.insert(10, "{not json".into());
    lines.insert(20, r#"{"type":"track","userId":"u"}"#.into());
    lines.insert(30, String::new());
    lines.push(r#"{"type":"track","event":"Product Viewed","messageId":"imp-3","userId":"user-3"}"#.into());
    std::fs::write(&file, lines.join("\n")).expect("write");
    let data = dir.path().join("data");
    let output = regard().args(["import", "events", "--quiet", "--data"]).arg(&data).arg(&file).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("line 11: "), "{stderr}");
    assert!(stderr.contains("line 21: event: track needs an event name"), "{stderr}");
    assert!(stdout.contains("500 stored, 1 duplicates, 0 reduced (no analytics consent), 2 rejected"), "{stdout}");
    assert_eq!(stored_message_ids(&data).len(), 500);

    // A second import of the same file stores nothing new.
    let output = regard().args(["import", "events", "--quiet", "--data"]).arg(&data).arg(&file).output().expect("run");
    assert!(String::from_utf8_lossy(&output.stdout).contains("0 stored, 501 duplicates"));
}

#[test]
fn catalog_import_reads_csv_and_names_bad_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("catalog.csv");
    std::fs::write(
        &file,
        "id,name,category,price,currency,in_stock,durable,brand\n\
         sku-1,French press,Kitchen > Coffee,29.50,EUR,true,true,Bodum\n\
         sku-2,Beans,Coffee > Beans,twelve,EUR,true,false,\n\
         sku-3,Mattress,Home > Bedroom,799,EUR,false,true,Sleepy\n",
    )
    .expect("write");
    let data = dir.path().join("data");
    let output = regard().args(["import", "catalog", "--data"]).arg(&data).arg(&file).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("line 3: price"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("imported 2 products"));
    let server = start_server(&data, &[]);
    let product: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/catalog/sku-3", server.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(product["in_stock"], false);
    assert_eq!(product["attributes"]["brand"], "Sleepy");
}

#[test]
fn a_running_server_keeps_importers_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = start_server(dir.path(), &[]);
    let file = dir.path().join("e.jsonl");
    std::fs::write(&file, "").expect("write");
    let output =
        regard().args(["import", "events", "--quiet", "--data"]).arg(dir.path()).arg(&file).output().expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("in use by another regard process"));
}
