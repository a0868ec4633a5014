//! `POST /v1/catalog` (upsert products) and `GET /v1/catalog/{id}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use regard_core::catalog::Product;

use crate::body::read_body;
use crate::error::{ApiError, ErrorCode};
use crate::wire::product_from_json;
use crate::AppState;

/// Largest catalog upload in one request.
pub const MAX_CATALOG_BYTES: usize = 16 * 1024 * 1024;

/// Parses a catalog body: a JSON array of products, or JSON lines (one product a line).
/// Errors name the item (`[3].price`) or the line (`line 4: price`).
pub fn parse_catalog(text: &str) -> Result<Vec<Product>, ApiError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))?;
        return items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                serde_json::Value::Object(object) => product_from_json(object).map_err(|e| e.within(&format!("[{i}]"))),
                _ => Err(ApiError::field(ErrorCode::InvalidField, format!("[{i}]"), "each product must be an object")),
            })
            .collect();
    }
    let mut products = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at_line = |e: ApiError| {
            let field = e.field.clone().unwrap_or_default();
            ApiError {
                field: Some(format!("line {}{}{}", i + 1, if field.is_empty() { "" } else { ": " }, field)),
                ..e
            }
        };
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).map_err(|e| at_line(ApiError::new(ErrorCode::InvalidJson, e.to_string())))?;
        products.push(product_from_json(object).map_err(at_line)?);
    }
    Ok(products)
}

/// Upserts products (admin). Answers how many were stored.
pub async fn upsert(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.keys.require_admin(&headers)?;
    let text = read_body(&headers, body, MAX_CATALOG_BYTES).await?;
    let products = parse_catalog(&text)?;
    let new_items = products.clone();
    let n = state.engine.upsert_products(products).await?;
    // New products get recommendation neighbours at once, without waiting for a retrain.
    let recs = state.recs.clone();
    let spawned = std::thread::Builder::new().name("regard-recs-new-items".to_owned()).spawn(move || {
        recs.add_new_items(&new_items);
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start adding new items to the recommendation model");
    }
    Ok(Json(serde_json::json!({"success": true, "upserted": n})))
}

/// One product (admin).
pub async fn get_product(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Product>, ApiError> {
    state.keys.require_admin(&headers)?;
    let live = state.engine.state();
    live.product(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::field(ErrorCode::NotFound, "id", format!("no product {id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_errors_name_the_line() {
        let text = "{\"id\":\"a\",\"name\":\"A\"}\n\n{\"id\":\"b\"}\n";
        let error = parse_catalog(text).expect_err("missing name");
        assert_eq!(error.field.as_deref(), Some("line 3: name"));
        assert_eq!(parse_catalog("[{\"id\":\"a\",\"name\":\"A\"}]").expect("array").len(), 1);
        assert_eq!(parse_catalog("[{\"id\":\"a\"}]").expect_err("array item").field.as_deref(), Some("[0].name"));
    }
}
