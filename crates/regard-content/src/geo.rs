//! The nearest store to a visitor, and how far it is.
//!
//! "Your nearest store is in Lyon, 3.2 km away" needs the visitor's coordinates, but the page must
//! never show them: knowing where someone stands is precise location data. So the only thing this
//! module hands to templates is a [`StoreDistance`], which describes the store and the distance
//! rounded to 100 m, and nothing about the person.

use serde::{Deserialize, Serialize};

/// The mean Earth radius (IUGG, R1), in kilometres.
pub const EARTH_MEAN_RADIUS_KM: f64 = 6371.0088;

/// Why a store definition cannot be used; each variant names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// A required text field is empty or blank.
    #[error("`{field}` must not be empty")]
    EmptyField {
        /// The empty field: `id` or `name`.
        field: &'static str,
    },
    /// A coordinate is outside its range or not a number.
    #[error("`{field}` must be between {min} and {max}, got {value}")]
    CoordinateOutOfRange {
        /// The coordinate: `latitude` or `longitude`.
        field: &'static str,
        /// The value as given.
        value: f64,
        /// The lowest valid value.
        min: f64,
        /// The highest valid value.
        max: f64,
    },
}

/// A physical store an operator lists, so content can point a visitor to the closest one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    /// The operator's identifier for the store.
    pub id: String,
    /// The name shown to visitors ("Regard Lyon Part-Dieu").
    pub name: String,
    /// The city shown to visitors.
    #[serde(default)]
    pub city: Option<String>,
    /// Latitude in decimal degrees, WGS 84.
    pub latitude: f64,
    /// Longitude in decimal degrees, WGS 84.
    pub longitude: f64,
    /// The store's page.
    #[serde(default)]
    pub url: Option<String>,
    /// The street address shown to visitors (the store's, never the visitor's).
    #[serde(default)]
    pub address: Option<String>,
}

impl Store {
    /// Checks the identifiers are present and the coordinates on Earth, naming the first bad field.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.id.trim().is_empty() {
            return Err(StoreError::EmptyField { field: "id" });
        }
        if self.name.trim().is_empty() {
            return Err(StoreError::EmptyField { field: "name" });
        }
        check_coordinate("latitude", self.latitude, 90.0)?;
        check_coordinate("longitude", self.longitude, 180.0)?;
        Ok(())
    }
}

fn check_coordinate(field: &'static str, value: f64, limit: f64) -> Result<(), StoreError> {
    // A NaN fails the range test too, so it is reported rather than silently compared.
    if (-limit..=limit).contains(&value) {
        Ok(())
    } else {
        Err(StoreError::CoordinateOutOfRange { field, value, min: -limit, max: limit })
    }
}

/// The great-circle distance in kilometres between two points given in decimal degrees, by the
/// haversine formula on a sphere of the mean Earth radius. Good to about 0.5 % anywhere, which is
/// far finer than "3.2 km away" needs.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let half_delta_phi = (lat2 - lat1).to_radians() / 2.0;
    let half_delta_lambda = (lon2 - lon1).to_radians() / 2.0;
    let h = half_delta_phi.sin().powi(2) + phi1.cos() * phi2.cos() * half_delta_lambda.sin().powi(2);
    // Rounding can push `h` a hair above 1 for antipodal points, where asin would return NaN;
    // `clamp` (unlike `min`) still lets a NaN coordinate through as NaN.
    2.0 * EARTH_MEAN_RADIUS_KM * h.sqrt().clamp(0.0, 1.0).asin()
}

/// The store closest to the given point, with its distance in kilometres. Stores whose coordinates
/// are not numbers are skipped; the first of equally close stores wins. `None` when there are no
/// usable stores or the point itself is not a valid coordinate.
pub fn nearest_store(stores: &[Store], latitude: f64, longitude: f64) -> Option<(&Store, f64)> {
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return None;
    }
    let mut nearest: Option<(&Store, f64)> = None;
    for store in stores {
        let distance_km = haversine_km(latitude, longitude, store.latitude, store.longitude);
        if distance_km.is_nan() {
            continue;
        }
        if nearest.is_none_or(|(_, best_km)| distance_km < best_km) {
            nearest = Some((store, distance_km));
        }
    }
    nearest
}

/// What a template may know about the nearest store: the store and how far it is, never the
/// visitor's coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreDistance {
    /// The store's name.
    pub name: String,
    /// The store's city.
    pub city: Option<String>,
    /// The store's page.
    pub url: Option<String>,
    /// The store's street address.
    pub address: Option<String>,
    /// The distance in kilometres, rounded to 0.1 km so it cannot be used to triangulate the
    /// visitor more finely than that.
    pub distance_km: f64,
}

impl StoreDistance {
    /// Describes `store` at `distance_km`, rounding the distance to 0.1 km.
    pub fn new(store: &Store, distance_km: f64) -> StoreDistance {
        StoreDistance {
            name: store.name.clone(),
            city: store.city.clone(),
            url: store.url.clone(),
            address: store.address.clone(),
            distance_km: (distance_km * 10.0).round() / 10.0,
        }
    }

    /// The nearest of `stores` to the given point, ready for a template; see [`nearest_store`].
    pub fn nearest(stores: &[Store], latitude: f64, longitude: f64) -> Option<StoreDistance> {
        nearest_store(stores, latitude, longitude).map(|(store, distance_km)| StoreDistance::new(store, distance_km))
    }
}

#[cfg(test)]
#[path = "geo_tests.rs"]
mod tests;
