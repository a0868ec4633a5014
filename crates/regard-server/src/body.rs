//! Request bodies: size limits before and after gzip.

use std::io::Read;

use axum::body::Body;
use axum::http::HeaderMap;

use crate::error::{ApiError, ErrorCode};

/// Reads a body of at most `limit` bytes, inflating gzip (`Content-Encoding: gzip`) and
/// applying the same limit to the inflated size, so a small bomb cannot become a large body.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<String, ApiError> {
    let too_large =
        || ApiError::new(ErrorCode::PayloadTooLarge, format!("the request body may be at most {limit} bytes"));
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let bytes = match encoding.as_str() {
        "" | "identity" => bytes.to_vec(),
        "gzip" | "x-gzip" => {
            let mut inflated = Vec::with_capacity(bytes.len() * 4);
            flate2::read::MultiGzDecoder::new(&bytes[..]).take(limit as u64 + 1).read_to_end(&mut inflated).map_err(
                |e| ApiError::new(ErrorCode::InvalidJson, format!("the gzip body could not be inflated: {e}")),
            )?;
            if inflated.len() > limit {
                return Err(too_large());
            }
            inflated
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedEncoding,
                format!("Content-Encoding {other:?} is not supported; use gzip"),
            ))
        }
    };
    String::from_utf8(bytes).map_err(|_| ApiError::new(ErrorCode::InvalidJson, "the body is not UTF-8 text"))
}
