//! The one error format of the API: `{"error": {"code", "message", "field"}}`.
//!
//! Codes are stable; clients may switch on them. Storage faults become HTTP errors only here.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use regard_store::EngineError;
use serde::Serialize;

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No key, or a key that is not Regard's (401).
    Unauthorized,
    /// A valid key without the right to this route (403).
    Forbidden,
    /// A user token that is malformed, forged, expired or another user's, or none where a
    /// decision about a signed-in person needs one (401); the field names where it was sent.
    InvalidUserToken,
    /// The body is not JSON, or not the JSON shape expected (400).
    InvalidJson,
    /// A field has a wrong type or value (400).
    InvalidField,
    /// A required field is missing (400).
    MissingField,
    /// The request body is larger than allowed (413).
    PayloadTooLarge,
    /// One message of a batch is larger than 32 KB (400).
    MessageTooLarge,
    /// A Content-Encoding other than gzip or identity (415).
    UnsupportedEncoding,
    /// No such resource (404).
    NotFound,
    /// The writer queue is full; retry after a moment (503).
    Overloaded,
    /// The writer has stopped; the server needs a restart (503).
    Unavailable,
    /// The resource exists already (409).
    Conflict,
    /// A segment definition that infers a sensitive attribute, or demands too little signal
    /// (422); the message lists every violation, the field names the first.
    PolicyViolation,
    /// A content template refused by its lints: it uses the person's name more than once, or
    /// prints a sensitive field (422).
    TemplateRejected,
    /// A fault of Regard's own (500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status for this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized | ErrorCode::InvalidUserToken => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::InvalidJson | ErrorCode::InvalidField | ErrorCode::MissingField | ErrorCode::MessageTooLarge => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Overloaded | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::PolicyViolation | ErrorCode::TemplateRejected => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code's wire name, also the `reason` label of rejection metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidUserToken => "invalid_user_token",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::UnsupportedEncoding => "unsupported_encoding",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::PolicyViolation => "policy_violation",
            ErrorCode::TemplateRejected => "template_rejected",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Internal => "internal",
        }
    }

    /// Every code, for metrics and documentation.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::InvalidUserToken,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidField,
        ErrorCode::MissingField,
        ErrorCode::PayloadTooLarge,
        ErrorCode::MessageTooLarge,
        ErrorCode::UnsupportedEncoding,
        ErrorCode::NotFound,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
        ErrorCode::PolicyViolation,
        ErrorCode::TemplateRejected,
        ErrorCode::Conflict,
        ErrorCode::Internal,
    ];
}

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What kind of error.
    pub code: ErrorCode,
    /// A sentence for a person.
    pub message: String,
    /// The offending field, as a path (`batch[3].timestamp`), when there is one.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), field: None }
    }

    /// An error naming a field.
    pub fn field(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), field: Some(field.into()) }
    }

    /// The same error with its field path prefixed (`batch[3].` + `timestamp`).
    pub fn within(mut self, prefix: &str) -> ApiError {
        self.field = Some(match self.field.take() {
            Some(field) if field.starts_with('[') => format!("{prefix}{field}"),
            Some(field) => format!("{prefix}.{field}"),
            None => prefix.to_owned(),
        });
        self
    }
}

impl std::fmt::Display for ApiError {
    /// `field: message (code)`, for command-line tools that reuse the API's checks.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) if !field.is_empty() => write!(f, "{field}: {} ({})", self.message, self.code.as_str()),
            _ => write!(f, "{} ({})", self.message, self.code.as_str()),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: ErrorCode,
    message: &'a str,
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            ErrorBody { error: ErrorDetail { code: self.code, message: &self.message, field: self.field.as_deref() } };
        let mut response = (self.code.status(), axum::Json(body)).into_response();
        if matches!(self.code, ErrorCode::Overloaded) {
            response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        }
        if matches!(self.code, ErrorCode::Unauthorized) {
            response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"regard\""));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::Overloaded => ApiError::new(ErrorCode::Overloaded, "the writer is busy; retry after a moment"),
            EngineError::Stopped(reason) => {
                ApiError::new(ErrorCode::Unavailable, format!("the store is unavailable: {reason}"))
            }
            other => {
                tracing::error!(error = %other, "storage fault");
                ApiError::new(ErrorCode::Internal, "internal storage error")
            }
        }
    }
}

impl From<regard_store::StoreError> for ApiError {
    fn from(error: regard_store::StoreError) -> ApiError {
        tracing::error!(%error, "storage fault");
        ApiError::new(ErrorCode::Internal, "internal storage error")
    }
}

/// A query-string extractor whose failures answer in the API's error format (axum's own
/// `Query` answers plain text), naming the field when the message does.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let message = rejection.body_text();
                // serde names the field in backticks ("unknown field `colour`", "missing field `n`");
                // a value error reads "n: invalid digit found in string".
                let field = message.split('`').nth(1).map(str::to_owned).or_else(|| {
                    let detail = message.rsplit("query string: ").next()?;
                    let (name, _) = detail.split_once(": ")?;
                    (!name.contains(' ')).then(|| name.to_owned())
                });
                Err(match field {
                    Some(field) => ApiError::field(ErrorCode::InvalidField, field, message),
                    None => ApiError::new(ErrorCode::InvalidField, message),
                })
            }
        }
    }
}
