//! The demo shop in a real browser: `regard serve --demo-shop` (the real binary, with the keys it
//! creates itself), three slots made through the admin API, and `e2e/shop.test.mjs` driving
//! headless Chromium through regard.js: a returning visitor, a campaign visitor who accepts the
//! consent banner, one who declines, and one who signs in, first as a user the page has no token
//! for, then as the demo user it carries a signed token for.
//!
//! Needs Node.js 20+ and Chromium; it fails (never skips) without them, saying how to install
//! them. `.ci/run` installs both.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::Server;

/// How long the browser run may take before it counts as hung.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

/// The userId the demo page carries a user token for.
const DEMO_USER: &str = "e2e-shopper";

/// Starts the real binary over `data` with keys of its own making (none from the environment).
fn start_server(data: &Path) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_regard"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--demo-shop", "--demo-user", DEMO_USER, "--consent-mode", "opt-in"])
        .arg("--data")
        .arg(data)
        .env_remove("REGARD_WRITE_KEY")
        .env_remove("REGARD_ADMIN_KEY")
        .env_remove("REGARD_USER_TOKEN_SECRET")
        .env("REGARD_LOG", "warn");
    common::spawn_server(command)
}

/// The keys `regard serve` generated into the data directory.
fn created_keys(data: &Path) -> (String, String) {
    let path = data.join("keys.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let keys: Value = serde_json::from_str(&text).expect("keys.json is JSON");
    let key = |name: &str| keys[name].as_str().unwrap_or_else(|| panic!("{name} missing in keys.json")).to_owned();
    (key("write_key"), key("admin_key"))
}

fn slots() -> [Value; 3] {
    [
        json!({"id": "home_hero", "name": "Home hero", "kind": "web_hero", "variants": [
            {"id": "summer", "priority": 20,
             "when": {"context": {"field": "utm_campaign", "op": "equals", "value": "summer-sale"}},
             "template": "<h2>Summer sale: 20% off</h2>"},
            {"id": "welcome_back", "priority": 10, "when": {"visitor": "returning"}, "template": "<h2>Welcome back</h2>"}],
            "default": {"template": "<h2>Our bestsellers</h2>"}}),
        json!({"id": "home_banner", "name": "Home banner", "kind": "banner", "variants": [
            {"id": "newsletter", "priority": 10,
             "when": {"context": {"field": "utm_source", "op": "equals", "value": "newsletter"}},
             "template": "<p>Thanks for reading our newsletter: free delivery this week.</p>"}],
            "default": {"template": "<p>Free delivery on orders over €50.</p>"}}),
        json!({"id": "product_row", "name": "Product row", "kind": "product_row",
            "default": {"template": "<h2>Popular this week</h2>"}}),
    ]
}

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

/// Runs `command` to completion, for at most `limit`, capturing its output.
fn run(mut command: Command, limit: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {description}: {e}"));
    let capture = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = capture(Box::new(child.stdout.take().expect("stdout")));
    let stderr = capture(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{description} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") }
}

fn show(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Node.js, Chromium and the e2e packages, or a panic that says how to get them.
fn check_prerequisites(chromium: &Path) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "Node.js 20+ is needed for the browser test: apt-get install -y nodejs npm (or see https://nodejs.org)"
    );
    assert!(
        chromium.exists(),
        "Chromium is needed for the browser test at {} (set CHROMIUM to use another): apt-get install -y chromium",
        chromium.display()
    );
    if !e2e_dir().join("node_modules/playwright-core").exists() {
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(e2e_dir());
        let output = run(npm, Duration::from_secs(300));
        assert!(output.status.success(), "`npm ci` in e2e/ failed (is npm installed?)\n{}", show(&output));
    }
}

#[test]
fn demo_shop_visitors_see_the_right_content_in_chromium() {
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()));
    check_prerequisites(&chromium);

    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path());
    let (write_key, admin_key) = created_keys(dir.path());
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    for slot in slots() {
        let response =
            client.post(format!("{}/v1/slots", server.base)).bearer_auth(&admin_key).json(&slot).send().expect("slot");
        let status = response.status();
        assert!(status.is_success(), "creating slot {}: {status} {}", slot["id"], response.text().unwrap_or_default());
    }

    let mut node = Command::new("node");
    node.arg("shop.test.mjs")
        .current_dir(e2e_dir())
        .env("REGARD_URL", &server.base)
        .env("REGARD_WRITE_KEY", &write_key)
        .env("REGARD_ADMIN_KEY", &admin_key)
        .env("REGARD_DEMO_USER", DEMO_USER)
        .env("CHROMIUM", &chromium);
    let output = run(node, BROWSER_TIMEOUT);
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(output.status.success(), "e2e/shop.test.mjs failed\n{}", show(&output));
}
