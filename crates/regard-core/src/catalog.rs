//! The product catalog: what a shop sells, as recommendations, segments and templates need it.

use serde::{Deserialize, Serialize};

/// Whether a product is bought once for years or used up and bought again.
///
/// Recommendations use it to avoid the "mattress ads after the mattress" failure: a durable
/// purchase suppresses its category for a while, a consumable invites a reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Bought rarely (furniture, appliances, mattresses).
    Durable,
    /// Used up and reordered (coffee, vitamins, pet food).
    Consumable,
    /// The operator has not said; models may learn it from repeat rates.
    #[default]
    Unknown,
}

/// One product of the catalog.
///
/// Prices are kept as the decimal the operator supplied, in the product's currency; conversion
/// to the visitor's currency happens at render time through the configured exchange rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// The operator's product id, as events reference it (`properties.product_id`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Category path from the root, e.g. `["Home", "Bedroom", "Mattresses"]`.
    pub category_path: Vec<String>,
    /// Price in `currency`, when known.
    pub price: Option<f64>,
    /// ISO 4217 code of `price`.
    pub currency: Option<String>,
    /// Product page URL.
    pub url: Option<String>,
    /// Image URL.
    pub image: Option<String>,
    /// Whether it can be bought now; out-of-stock items are never recommended.
    pub in_stock: bool,
    /// Durable or consumable.
    pub durability: Durability,
    /// Any further attributes the operator keeps (brand, colour, size...).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Why a catalog record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ProductError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Product {
    /// Checks the invariants every stored product keeps: a non-empty id and name, a
    /// non-negative finite price, a three-letter currency code.
    pub fn validate(&self) -> Result<(), ProductError> {
        if self.id.trim().is_empty() {
            return Err(ProductError { field: "id", message: "must not be empty".into() });
        }
        if self.id.len() > 256 {
            return Err(ProductError { field: "id", message: "must be at most 256 bytes".into() });
        }
        if self.name.trim().is_empty() {
            return Err(ProductError { field: "name", message: "must not be empty".into() });
        }
        if let Some(price) = self.price {
            if !price.is_finite() || price < 0.0 {
                return Err(ProductError {
                    field: "price",
                    message: format!("must be a non-negative number, got {price}"),
                });
            }
        }
        if let Some(currency) = &self.currency {
            if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(ProductError {
                    field: "currency",
                    message: format!("must be an ISO 4217 code such as USD, got {currency:?}"),
                });
            }
        }
        Ok(())
    }

    /// Parses a category path written as `"Home > Bedroom > Mattresses"` or `"Home/Bedroom"`.
    pub fn parse_category_path(text: &str) -> Vec<String> {
        let separator = if text.contains('>') { '>' } else { '/' };
        text.split(separator).map(str::trim).filter(|part| !part.is_empty()).map(str::to_owned).collect()
    }

    /// The leaf category, or the empty string for an uncategorised product.
    pub fn category(&self) -> &str {
        self.category_path.last().map(String::as_str).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> Product {
        Product {
            id: "p1".into(),
            name: "French press".into(),
            category_path: vec!["Kitchen".into(), "Coffee".into()],
            price: Some(29.5),
            currency: Some("EUR".into()),
            url: None,
            image: None,
            in_stock: true,
            durability: Durability::Durable,
            attributes: Default::default(),
        }
    }

    #[test]
    fn category_paths_parse_with_either_separator() {
        assert_eq!(Product::parse_category_path("Home > Bedroom> Mattresses"), ["Home", "Bedroom", "Mattresses"]);
        assert_eq!(Product::parse_category_path("Home/Bedroom"), ["Home", "Bedroom"]);
        assert!(Product::parse_category_path("  ").is_empty());
    }

    #[test]
    fn invalid_products_name_their_field() {
        let mut p = product();
        assert!(p.validate().is_ok());
        p.price = Some(-1.0);
        assert_eq!(p.validate().unwrap_err().field, "price");
        p = product();
        p.currency = Some("EURO".into());
        assert_eq!(p.validate().unwrap_err().field, "currency");
        p = product();
        p.id = " ".into();
        assert_eq!(p.validate().unwrap_err().field, "id");
    }
}
