//! The one way the integration tests start Regard: the real router on a real port over a
//! temporary store.

#![allow(dead_code)]

use std::sync::Arc;

use regard_core::consent::ConsentMode;
use regard_server::content::ContentService;
use regard_server::{router, AppState, Keys};
use regard_store::{Engine, EngineConfig};

pub const WRITE_KEY: &str = "test-write-key";
pub const ADMIN_KEY: &str = "test-admin-key";

/// A running server over a temporary store (removed when dropped).
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub _dir: tempfile::TempDir,
}

/// How to start it.
pub struct Options<'a> {
    pub consent_mode: ConsentMode,
    pub write_key: &'a str,
    pub demo_shop: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { consent_mode: ConsentMode::OptOut, write_key: WRITE_KEY, demo_shop: false }
    }
}

/// Starts the router with `options` on a free loopback port.
pub async fn spawn(options: Options<'_>) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EngineConfig::new(dir.path());
    config.live.consent_mode = options.consent_mode;
    let engine = Arc::new(Engine::open(config, &mut |_| {}).expect("engine"));
    let content = Arc::new(ContentService::open(dir.path(), Arc::default()).expect("content store"));
    let keys = Keys { write_key: options.write_key.into(), admin_key: ADMIN_KEY.into() };
    let mut state = AppState::new(engine, keys, content);
    state.demo_shop = options.demo_shop;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestApp { base, client: reqwest::Client::new(), _dir: dir }
}
