//! Browser-facing assets and the CORS rules of the routes a browser may call.
//!
//! `GET /regard.js` serves the browser script compiled into the binary; `GET /shop` serves the
//! demo shop page when the instance runs with `--demo-shop`. The script usually runs on the
//! operator's own site, another origin than Regard's, so the routes the public write key may use
//! (ingestion, `/v1/decide`, `/v1/decisions/{id}/why`, the script itself) answer CORS preflights
//! and allow any origin. No request carries cookies, so `*` is safe. Admin routes get no CORS
//! headers at all: a browser page on another origin cannot read their answers.
//!
//! With `--demo-user ID` the demo page also carries a user token for that one userId, signed at
//! each load, so the demo can show identified personalization without a backend of its own to
//! sign tokens. That is for the demo only: whoever loads the page may act as that user.

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};
use crate::AppState;

/// The browser script, as shipped in `assets/regard.js`.
pub const REGARD_JS: &str = include_str!("../../assets/regard.js");

/// The demo shop page; `{{WRITE_KEY}}` is replaced with the instance's write key, and
/// `{{DEMO_USER}}` / `{{DEMO_USER_TOKEN}}` with the demo user and a token for them (or nothing).
const SHOP_HTML: &str = include_str!("../../assets/shop.html");

/// How long browsers and proxies may keep the script before asking again. Short, so a new
/// release reaches visitors within minutes; the ETag makes the revalidation cheap.
const REGARD_JS_CACHE_CONTROL: &str = "public, max-age=300";

/// How long a browser may reuse a preflight answer (Chromium caps this at two hours).
const PREFLIGHT_MAX_AGE_SECS: &str = "7200";

/// FNV-1a over the script, computed at compile time: the script's ETag changes with its bytes.
const REGARD_JS_HASH: u64 = fnv1a(REGARD_JS.as_bytes());

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The script's strong ETag.
pub fn regard_js_etag() -> String {
    format!("\"{REGARD_JS_HASH:016x}\"")
}

/// Whether an `If-None-Match` header names `etag` (or is `*`).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// `GET /regard.js`: the browser script, with a short cache lifetime and an ETag.
pub async fn regard_js(headers: HeaderMap) -> Response {
    let etag = regard_js_etag();
    let cache_headers = [(CACHE_CONTROL, REGARD_JS_CACHE_CONTROL.to_owned()), (ETAG, etag.clone())];
    if matches_etag(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, cache_headers).into_response();
    }
    let content_type = [(CONTENT_TYPE, "application/javascript; charset=utf-8".to_owned())];
    (content_type, cache_headers, REGARD_JS).into_response()
}

/// Escapes text for an HTML attribute value or element content.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// How long the demo user's token lasts from the page load: a day of trying the demo.
const DEMO_USER_TOKEN_TTL_SECS: u64 = 86_400;

/// The demo user and a user token for them, as the demo page carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser<'a> {
    /// The userId the demo may sign in as.
    pub user_id: &'a str,
    /// A token signed for that userId.
    pub token: &'a str,
}

/// The demo shop page for `write_key`, with the demo user's token when there is one.
pub fn shop_page(write_key: &str, demo_user: Option<DemoUser<'_>>) -> String {
    SHOP_HTML
        .replace("{{WRITE_KEY}}", &escape_html(write_key))
        .replace("{{DEMO_USER}}", &escape_html(demo_user.map_or("", |demo| demo.user_id)))
        .replace("{{DEMO_USER_TOKEN}}", &escape_html(demo_user.map_or("", |demo| demo.token)))
}

/// The page may load only this server's script and talk only to this server; its own small
/// inline script and styles are allowed.
const SHOP_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; \
                        img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// `GET /shop`: the demo shop homepage, only when the instance runs with `--demo-shop`.
pub async fn shop(State(state): State<AppState>) -> Result<Response, ApiError> {
    if !state.demo_shop {
        return Err(ApiError::new(ErrorCode::NotFound, "no such route"));
    }
    let headers =
        [(CONTENT_TYPE, "text/html; charset=utf-8"), (CACHE_CONTROL, "no-cache"), (CONTENT_SECURITY_POLICY, SHOP_CSP)];
    let token = state.demo_user.as_deref().map(|user_id| {
        let now_secs = crate::user_token::unix_secs(state.clock.now_ms());
        crate::user_token::sign(&state.keys.user_token_secret, user_id, now_secs + DEMO_USER_TOKEN_TTL_SECS)
    });
    let demo_user =
        state.demo_user.as_deref().zip(token.as_deref()).map(|(user_id, token)| DemoUser { user_id, token });
    Ok((headers, shop_page(&state.keys.write_key, demo_user)).into_response())
}

/// The routes that the public write key may use from a browser on another origin.
pub fn is_cors_route(path: &str) -> bool {
    const EXACT: [&str; 9] = [
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/decide",
        "/regard.js",
    ];
    if EXACT.contains(&path) {
        return true;
    }
    path.strip_prefix("/v1/decisions/")
        .and_then(|rest| rest.strip_suffix("/why"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Middleware: answers CORS preflights for the browser routes and marks their answers (errors
/// included, so the script can read them) readable from any origin. Other routes pass through.
pub async fn cors(request: Request, next: Next) -> Response {
    if !is_cors_route(request.uri().path()) {
        return next.run(request).await;
    }
    let allow_any_origin = (ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    if request.method() == Method::OPTIONS {
        let headers = [
            allow_any_origin,
            (ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS")),
            (
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type, Content-Encoding, X-Regard-User-Token"),
            ),
            (ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS)),
        ];
        return (StatusCode::NO_CONTENT, headers).into_response();
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(allow_any_origin.0, allow_any_origin.1);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_routes_get_cors_and_admin_routes_do_not() {
        let cases = [
            ("/v1/track", true),
            ("/v1/batch", true),
            ("/v1/decide", true),
            ("/v1/decisions/0123456789abcdef0123456789abcdef/why", true),
            ("/regard.js", true),
            ("/v1/decisions//why", false),
            ("/v1/decisions/a/b/why", false),
            ("/v1/import", false),
            ("/v1/slots", false),
            ("/v1/profiles/a", false),
            ("/v1/consent", false),
            ("/shop", false),
            ("/v1/track/", false),
        ];
        for (path, expected) in cases {
            assert_eq!(is_cors_route(path), expected, "{path}");
        }
    }

    #[test]
    fn the_shop_page_carries_the_escaped_write_key() {
        let page = shop_page("wk\"><script>&'", None);
        assert!(page.contains("data-write-key=\"wk&quot;&gt;&lt;script&gt;&amp;&#39;\""));
        assert!(page.contains("data-demo-user=\"\""));
        assert!(!page.contains("{{"), "every placeholder is filled");
    }

    #[test]
    fn the_shop_page_carries_the_escaped_demo_user_and_token() {
        let page = shop_page("wk", Some(DemoUser { user_id: "user-\"1", token: "v1.abc.1.sig" }));
        assert!(page.contains("data-demo-user=\"user-&quot;1\""), "{page}");
        assert!(page.contains("data-demo-user-token=\"v1.abc.1.sig\""), "{page}");
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = regard_js_etag();
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, HeaderValue::from_str(value).expect("header"));
            matches_etag(&headers, &etag)
        };
        assert!(check(&etag));
        assert!(check(&format!("\"other\", W/{etag}")));
        assert!(check("*"));
        assert!(!check("\"other\""));
        assert_eq!(etag.len(), 18);
    }
}
