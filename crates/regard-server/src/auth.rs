//! Keys and what each may do.
//!
//! The write key is public (it ships in browsers and apps): it may only ingest. The admin key
//! is secret and may do everything. Keys arrive as HTTP Basic (the key as user name, as Segment
//! SDKs send it), as a Bearer token, or as `writeKey` in a message body.

use axum::http::HeaderMap;
use base64::Engine as _;

use crate::error::{ApiError, ErrorCode};

/// The two keys of an instance.
#[derive(Clone)]
pub struct Keys {
    /// Public: ingest only.
    pub write_key: String,
    /// Secret: everything.
    pub admin_key: String,
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

impl Keys {
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
        Keys { write_key: "wk".into(), admin_key: "ak".into() }
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
}
