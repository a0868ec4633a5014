//! Browser-facing routes: the `/regard.js` script, the demo shop page, and CORS on the routes the
//! write key may use from another origin. The real router on a real port over a temporary store.

use reqwest::Method;

mod common;

use common::{TestApp, ADMIN_KEY, WRITE_KEY};

const ORIGIN: &str = "https://shop.example";

async fn spawn_app_with(demo_shop: bool, write_key: &str) -> TestApp {
    common::spawn(common::Options { demo_shop, write_key, ..Default::default() }).await
}

async fn spawn_app() -> TestApp {
    spawn_app_with(false, WRITE_KEY).await
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

impl TestApp {
    async fn preflight(&self, path: &str, method: &str) -> reqwest::Response {
        self.client
            .request(Method::OPTIONS, format!("{}{path}", self.base))
            .header("origin", ORIGIN)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization, content-type")
            .send()
            .await
            .expect("preflight")
    }
}

#[tokio::test]
async fn regard_js_is_served_as_javascript_with_a_short_cache_and_an_etag() {
    let app = spawn_app().await;
    let response = app.client.get(format!("{}/regard.js", app.base)).send().await.expect("get");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "content-type").as_deref(), Some("application/javascript; charset=utf-8"));
    assert_eq!(header(&response, "cache-control").as_deref(), Some("public, max-age=300"));
    let etag = header(&response, "etag").expect("an ETag");
    assert_eq!(etag, regard_server::routes::assets::regard_js_etag());
    let body = response.text().await.expect("body");
    assert_eq!(body, include_str!("../assets/regard.js"));

    let response = app
        .client
        .get(format!("{}/regard.js", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(response.status().as_u16(), 304);
    assert_eq!(header(&response, "etag"), Some(etag));
    assert!(response.text().await.expect("body").is_empty());
}

#[tokio::test]
async fn the_script_talks_only_to_its_own_server() {
    let script = include_str!("../assets/regard.js");
    // Every request goes to `api`, which is the script's own origin unless data-api says otherwise.
    assert_eq!(script.matches("fetch(").count(), 1, "one fetch call site");
    assert!(script.contains("fetch(api + path"));
    assert!(!script.contains("innerText") && !script.contains("eval("));
    // Only the server's rendered content becomes markup; the "why?" answer is text.
    assert_eq!(script.matches("innerHTML").count(), 1);
    assert!(script.contains("el.innerHTML = d.content;"));
    assert!(script.contains("out.textContent = ' ' + (w.explanation"));
}

#[tokio::test]
async fn browser_routes_answer_preflights_from_any_origin() {
    let app = spawn_app().await;
    let cases = [
        ("/v1/page", "POST"),
        ("/v1/track", "POST"),
        ("/v1/identify", "POST"),
        ("/v1/batch", "POST"),
        ("/v1/decide", "POST"),
        ("/v1/decisions/0123456789abcdef0123456789abcdef/why", "GET"),
        ("/regard.js", "GET"),
    ];
    for (path, method) in cases {
        let response = app.preflight(path, method).await;
        assert_eq!(response.status().as_u16(), 204, "{path}");
        assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"), "{path}");
        assert_eq!(header(&response, "access-control-allow-methods").as_deref(), Some("GET, POST, OPTIONS"), "{path}");
        let allowed = header(&response, "access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
        for needed in ["authorization", "content-type", "content-encoding"] {
            assert!(allowed.contains(needed), "{path}: {allowed}");
        }
        assert!(header(&response, "access-control-max-age").is_some(), "{path}");
    }
}

#[tokio::test]
async fn browser_route_answers_are_readable_cross_origin_errors_included() {
    let app = spawn_app().await;
    let page = serde_json::json!({"type": "page", "anonymousId": "a-1", "messageId": "p-1", "name": "Home"});
    let response = app
        .client
        .post(format!("{}/v1/page", app.base))
        .header("origin", ORIGIN)
        .basic_auth(WRITE_KEY, Some(""))
        .json(&page)
        .send()
        .await
        .expect("page");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"));

    let response =
        app.client.post(format!("{}/v1/track", app.base)).header("origin", ORIGIN).send().await.expect("401");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"));

    let response = app
        .client
        .get(format!("{}/v1/decisions/0123456789abcdef0123456789abcdef/why", app.base))
        .header("origin", ORIGIN)
        .bearer_auth(WRITE_KEY)
        .send()
        .await
        .expect("why");
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"));

    let response = app.client.get(format!("{}/regard.js", app.base)).header("origin", ORIGIN).send().await.expect("js");
    assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"));
}

#[tokio::test]
async fn admin_routes_get_no_cors_headers() {
    let app = spawn_app().await;
    for (path, method) in
        [("/v1/slots", "POST"), ("/v1/profiles/a-1", "GET"), ("/v1/consent", "POST"), ("/v1/import", "POST")]
    {
        let response = app.preflight(path, method).await;
        assert_ne!(response.status().as_u16(), 204, "{path}");
        assert_eq!(header(&response, "access-control-allow-origin"), None, "{path}");
        assert_eq!(header(&response, "access-control-allow-methods"), None, "{path}");
    }
    let response = app
        .client
        .get(format!("{}/v1/slots", app.base))
        .header("origin", ORIGIN)
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("slots");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn the_demo_shop_is_served_only_with_demo_shop() {
    let app = spawn_app().await;
    let response = app.client.get(format!("{}/shop", app.base)).send().await.expect("shop");
    assert_eq!(response.status().as_u16(), 404);

    let app = spawn_app_with(true, "wk-\"<shop>&").await;
    let response = app.client.get(format!("{}/shop", app.base)).send().await.expect("shop");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert!(header(&response, "content-security-policy").is_some_and(|csp| csp.contains("default-src 'self'")));
    let page = response.text().await.expect("body");
    assert!(page.contains(r#"<script src="/regard.js" data-write-key="wk-&quot;&lt;shop&gt;&amp;""#), "{page}");
    assert!(page.contains(r#"data-require-consent="true""#));
    assert!(!page.contains("{{WRITE_KEY}}"));
    for slot in ["home_hero", "home_banner", "product_row"] {
        assert!(page.contains(&format!(r#"data-regard-slot="{slot}""#)), "{slot}");
    }
    // Self-contained: nothing is loaded from another host.
    for external in ["src=\"http", "src=\"//", "href=\"http", "href=\"//", "url(", "@import"] {
        assert!(!page.contains(external), "{external}");
    }
}
