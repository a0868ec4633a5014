//! Keys and what each may do.
//!
//! The write key is public (it ships in browsers and apps): it may only ingest. The admin key
//! is secret and may do everything. Keys arrive as HTTP Basic (the key as user name, as Segment
//! SDKs send it), as a Bearer token, or as `writeKey` in a message body.
//!
//! With the write key, a userId is only a claim: decisions, explanations and recommendations
//! use what Regard knows about a signed-in person only when a user token signed with the
//! instance's secret comes along (see [`crate::user_token`] and [`UserProof`]).

use axum::http::HeaderMap;
use base64::Engine as _;
use regard_core::message::IdentityKind;
use regard_core::profile::Profile;

use crate::error::{ApiError, ErrorCode};
use crate::user_token::{USER_TOKEN_HEADER, USER_TOKEN_HEADER_DISPLAY};

/// The keys of an instance, and the secret its user tokens are signed with.
#[derive(Clone)]
pub struct Keys {
    /// Public: ingest only.
    pub write_key: String,
    /// Secret: everything.
    pub admin_key: String,
    /// Secret, shared with the operator's backend only: the HMAC key of user tokens.
    pub user_token_secret: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys { .. }")
    }
}

/// What a presented key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Ingestion only.
    Write,
    /// Everything.
    Admin,
}

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credential in the `Authorization` header, if any.
pub fn credential(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value =
        value.to_str().map_err(|_| ApiError::new(ErrorCode::Unauthorized, "the Authorization header is not text"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.trim().to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "the Basic credentials are not valid base64 text"))?;
        let user = decoded.split_once(':').map_or(decoded.as_str(), |(user, _)| user);
        return Ok(Some(user.to_owned()));
    }
    Err(ApiError::new(ErrorCode::Unauthorized, "use Basic (the key as user name) or Bearer authorization"))
}

/// A user token as a request carried it, with the name of the place it came in (a body
/// field, a query parameter or the header), so that a refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedToken<'a> {
    /// The token's text.
    pub token: &'a str,
    /// Where it was sent: `userToken`, `user_token` or `X-Regard-User-Token`.
    pub field: &'static str,
}

/// The user token of a request: the explicit field (`explicit`, named `explicit_field`) when
/// present, else the `X-Regard-User-Token` header. An empty value counts as none, so a page
/// template may render an empty attribute for a visitor who is not signed in.
pub fn presented_user_token<'a>(
    headers: &'a HeaderMap,
    explicit: Option<&'a str>,
    explicit_field: &'static str,
) -> Result<Option<PresentedToken<'a>>, ApiError> {
    if let Some(token) = explicit.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(PresentedToken { token, field: explicit_field }));
    }
    let Some(value) = headers.get(USER_TOKEN_HEADER) else { return Ok(None) };
    let token = value.to_str().map_err(|_| {
        ApiError::field(ErrorCode::InvalidUserToken, USER_TOKEN_HEADER_DISPLAY, "the user token header is not text")
    })?;
    Ok(Some(token.trim())
        .filter(|t| !t.is_empty())
        .map(|token| PresentedToken { token, field: USER_TOKEN_HEADER_DISPLAY }))
}

/// Whom a browser-facing request may be personalized for: what the key and the user token
/// prove about the request's userId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserProof {
    /// The admin key: the operator's backend may decide for anyone.
    Operator,
    /// The write key with a valid user token for the request's userId.
    Signed,
    /// The write key and a userId without a token: the userId is only a claim, and nothing
    /// Regard knows about that user may be used.
    Claimed,
    /// No userId in the request (a token without one is ignored).
    Anonymous,
}

impl UserProof {
    /// Whether the request's userId may be used to find the person.
    pub fn trusts_user_id(self) -> bool {
        matches!(self, UserProof::Operator | UserProof::Signed)
    }

    /// Whether the request may be personalized from `profile`, found by an anonymousId (or by
    /// a userId this proof trusts). An anonymousId is the browser's own, but anyone may send
    /// one, and an identify with the write key can tie any anonymousId to any userId: so a
    /// profile tied to a userId serves only the operator or the holder of that user's token.
    pub fn may_use(self, profile: &Profile, user_id: Option<&str>) -> bool {
        let mut user_ids = profile.identities.iter().filter(|(kind, _)| *kind == IdentityKind::UserId);
        match self {
            UserProof::Operator => true,
            UserProof::Signed => {
                let signed = user_id.unwrap_or_default();
                let mut user_ids = user_ids.peekable();
                user_ids.peek().is_none() || user_ids.any(|(_, id)| &**id == signed)
            }
            UserProof::Claimed | UserProof::Anonymous => user_ids.next().is_none(),
        }
    }
}

/// The sentence added to explanations when a userId came without a valid token, or an
/// anonymousId led to a signed-in person's profile, and so that person's data was not used.
pub const UNSIGNED_USER_EXPLANATION: &str =
    "What Regard knows about your account was not used: identified personalization needs a signed user token.";

impl Keys {
    /// What the request's key and user token prove about `user_id` at `now_secs`: 401
    /// (`invalid_user_token`, naming where the token came) for a token that is malformed,
    /// forged, expired or another user's. With the admin key the token is not looked at.
    pub fn user_proof(
        &self,
        access: Access,
        user_id: Option<&str>,
        token: Option<PresentedToken<'_>>,
        now_secs: u64,
    ) -> Result<UserProof, ApiError> {
        match (access, user_id, token) {
            (Access::Admin, _, _) => Ok(UserProof::Operator),
            (Access::Write, None, _) => Ok(UserProof::Anonymous),
            (Access::Write, Some(_), None) => Ok(UserProof::Claimed),
            (Access::Write, Some(user_id), Some(presented)) => {
                crate::user_token::verify(&self.user_token_secret, presented.token, user_id, now_secs).map_err(
                    |error| ApiError::field(ErrorCode::InvalidUserToken, presented.field, error.to_string()),
                )?;
                Ok(UserProof::Signed)
            }
        }
    }

    /// What `key` allows, or 401.
    pub fn access(&self, key: Option<&str>) -> Result<Access, ApiError> {
        match key {
            None => {
                Err(ApiError::new(ErrorCode::Unauthorized, "a key is required (Basic with the write key, or Bearer)"))
            }
            Some(key) if same(key, &self.admin_key) => Ok(Access::Admin),
            Some(key) if same(key, &self.write_key) => Ok(Access::Write),
            Some(_) => Err(ApiError::new(ErrorCode::Unauthorized, "the key is not valid")),
        }
    }

    /// Checks that the request carries the admin key: 401 without a valid key, 403 with the
    /// write key.
    pub fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self.access(credential(headers)?.as_deref())? {
            Access::Admin => Ok(()),
            Access::Write => Err(ApiError::new(
                ErrorCode::Forbidden,
                "this route needs the admin key; the write key may only ingest",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn keys() -> Keys {
        Keys { write_key: "wk".into(), admin_key: "ak".into(), user_token_secret: "uts".into() }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn basic_auth_carries_the_key_as_user_name() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("wk:");
        let key = credential(&headers(&format!("Basic {encoded}"))).expect("parse");
        assert_eq!(keys().access(key.as_deref()).expect("valid"), Access::Write);
    }

    #[test]
    fn the_write_key_is_forbidden_on_admin_routes() {
        assert_eq!(keys().require_admin(&headers("Bearer wk")).expect_err("403").code, ErrorCode::Forbidden);
        assert_eq!(keys().require_admin(&headers("Bearer nope")).expect_err("401").code, ErrorCode::Unauthorized);
        assert_eq!(keys().require_admin(&HeaderMap::new()).expect_err("401").code, ErrorCode::Unauthorized);
        assert!(keys().require_admin(&headers("Bearer ak")).is_ok());
    }

    #[test]
    fn a_user_id_is_trusted_only_with_the_admin_key_or_its_token() {
        let keys = keys();
        let now = 1_000;
        let token = crate::user_token::sign("uts", "alice", now + 60);
        let presented = |token| Some(PresentedToken { token, field: "userToken" });
        let proof = |access, user, token| keys.user_proof(access, user, token, now);
        assert_eq!(proof(Access::Admin, Some("alice"), None), Ok(UserProof::Operator));
        assert_eq!(proof(Access::Admin, Some("alice"), presented("forged")), Ok(UserProof::Operator));
        assert_eq!(proof(Access::Write, Some("alice"), presented(&token)), Ok(UserProof::Signed));
        assert_eq!(proof(Access::Write, Some("alice"), None), Ok(UserProof::Claimed));
        assert_eq!(proof(Access::Write, None, presented(&token)), Ok(UserProof::Anonymous));
        let refused = proof(Access::Write, Some("bob"), presented(&token)).expect_err("another user's token");
        assert_eq!((refused.code, refused.field.as_deref()), (ErrorCode::InvalidUserToken, Some("userToken")));
        assert_eq!(refused.code.status().as_u16(), 401);
    }

    #[test]
    fn the_explicit_token_wins_over_the_header_and_empty_means_none() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_user_token(&headers, Some(" "), "userToken"), Ok(None));
        headers.insert(USER_TOKEN_HEADER, HeaderValue::from_static("from-header"));
        let from_header = presented_user_token(&headers, None, "userToken").expect("text").expect("a token");
        assert_eq!((from_header.token, from_header.field), ("from-header", "X-Regard-User-Token"));
        let explicit = presented_user_token(&headers, Some("from-body"), "userToken").expect("text").expect("a token");
        assert_eq!((explicit.token, explicit.field), ("from-body", "userToken"));
    }
}
