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
pub const USER_TOKEN_SECRET: &str = "test-user-token-secret";

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// A user token for `user_id` valid for an hour, as the operator's backend would sign it.
pub fn user_token(user_id: &str) -> String {
    regard_server::user_token::sign(USER_TOKEN_SECRET, user_id, now_secs() + 3_600)
}

/// A running server over a temporary store (removed when dropped).
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The state the router serves, for tests that start background work themselves.
    pub state: AppState,
    pub _dir: tempfile::TempDir,
}

impl TestApp {
    /// One request with the key as HTTP Basic user name (as SDKs send it) and a JSON body;
    /// answers the status and the JSON body (null when there is none).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.client.get(url),
            "PUT" => self.client.put(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url),
        };
        if let Some(key) = key {
            request = request.basic_auth(key, Some(""));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }
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
    let keys = Keys {
        write_key: options.write_key.into(),
        admin_key: ADMIN_KEY.into(),
        user_token_secret: USER_TOKEN_SECRET.into(),
    };
    let mut state = AppState::new(engine, keys, content);
    state.demo_shop = options.demo_shop;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestApp { base, client: reqwest::Client::new(), state, _dir: dir }
}
