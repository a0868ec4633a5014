use super::*;

fn store(id: &str, city: &str, latitude: f64, longitude: f64) -> Store {
    Store {
        id: id.to_owned(),
        name: format!("Regard {city}"),
        city: Some(city.to_owned()),
        latitude,
        longitude,
        url: Some(format!("https://example.com/stores/{id}")),
        address: None,
    }
}

fn sample_stores() -> Vec<Store> {
    vec![
        store("par", "Paris", 48.8566, 2.3522),
        store("lon", "London", 51.5074, -0.1278),
        store("lyo", "Lyon", 45.7640, 4.8357),
    ]
}

#[track_caller]
fn check_distance(from: (f64, f64), to: (f64, f64), expected_km: f64, tolerance_km: f64) {
    let got = haversine_km(from.0, from.1, to.0, to.1);
    assert!((got - expected_km).abs() <= tolerance_km, "got {got} km, want {expected_km} ± {tolerance_km}");
    let back = haversine_km(to.0, to.1, from.0, from.1);
    assert!((got - back).abs() < 1e-9, "distance must be symmetric: {got} vs {back}");
}

#[test]
fn haversine_matches_published_distances() {
    // Paris (Notre-Dame) to London (Charing Cross): 343.5 km great-circle, the commonly cited figure.
    check_distance((48.8566, 2.3522), (51.5074, -0.1278), 343.5, 1.0);
    // Sydney to Melbourne city centres: 713 km.
    check_distance((-33.8688, 151.2093), (-37.8136, 144.9631), 713.0, 2.0);
    // JFK to LAX: 3,983 km on the WGS 84 ellipsoid (gcmap.com); a sphere is within 0.5 % of it.
    check_distance((40.6413, -73.7781), (33.9416, -118.4085), 3983.0, 20.0);
    // Antipodes: half the circumference of the mean sphere, without NaN from rounding.
    check_distance((0.0, 0.0), (0.0, 180.0), std::f64::consts::PI * EARTH_MEAN_RADIUS_KM, 1e-6);
    check_distance((12.5, 7.25), (12.5, 7.25), 0.0, 1e-12);
}

#[test]
fn nearest_store_picks_the_closest_with_its_distance() {
    let stores = sample_stores();
    // Versailles is about 17 km from central Paris.
    let (nearest, distance_km) = nearest_store(&stores, 48.8049, 2.1204).unwrap();
    assert_eq!(nearest.id, "par");
    assert!((distance_km - 17.8).abs() < 1.0, "{distance_km}");
    // Brighton is nearer London than Paris.
    assert_eq!(nearest_store(&stores, 50.8225, -0.1372).unwrap().0.id, "lon");
}

#[test]
fn nearest_store_is_none_without_stores_or_a_valid_point() {
    assert_eq!(nearest_store(&[], 48.8, 2.3), None);
    let stores = sample_stores();
    assert_eq!(nearest_store(&stores, f64::NAN, 2.3), None);
    assert_eq!(nearest_store(&stores, 91.0, 2.3), None);
    assert_eq!(nearest_store(&stores, 48.8, -180.5), None);
}

#[test]
fn stores_with_unusable_coordinates_are_skipped() {
    let mut stores = sample_stores();
    stores.insert(0, store("bad", "Nowhere", f64::NAN, 2.3522));
    assert_eq!(nearest_store(&stores, 48.8566, 2.3522).unwrap().0.id, "par");
    assert_eq!(nearest_store(&stores[..1], 48.8566, 2.3522), None);
}

#[test]
fn ties_go_to_the_first_store() {
    let stores = vec![store("a", "A", 10.0, 10.0), store("b", "B", 10.0, 10.0)];
    assert_eq!(nearest_store(&stores, 11.0, 11.0).unwrap().0.id, "a");
}

#[test]
fn store_distance_carries_the_store_and_a_rounded_distance_only() {
    let stores = sample_stores();
    let described = StoreDistance::new(&stores[2], 3.249);
    assert_eq!(described.distance_km, 3.2);
    assert_eq!(described.name, "Regard Lyon");
    assert_eq!(StoreDistance::new(&stores[2], 3.25).distance_km, 3.3);
    let json = serde_json::to_value(&described).unwrap();
    let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["address", "city", "distance_km", "name", "url"]);
    let nearest = StoreDistance::nearest(&stores, 45.75, 4.85).unwrap();
    assert_eq!(nearest.city.as_deref(), Some("Lyon"));
}

#[test]
fn store_validation_names_the_bad_field() {
    let valid = store("par", "Paris", 48.8566, 2.3522);
    assert_eq!(valid.validate(), Ok(()));
    let check = |edit: fn(&mut Store), field: &str| {
        let mut edited = valid.clone();
        edit(&mut edited);
        let error = edited.validate().unwrap_err();
        let named = match &error {
            StoreError::EmptyField { field } | StoreError::CoordinateOutOfRange { field, .. } => *field,
        };
        assert_eq!(named, field, "{error}");
        assert!(error.to_string().contains(&format!("`{field}`")), "{error}");
    };
    check(|s| s.id = String::new(), "id");
    check(|s| s.name = "  ".to_owned(), "name");
    check(|s| s.latitude = 90.5, "latitude");
    check(|s| s.latitude = f64::NAN, "latitude");
    check(|s| s.longitude = -181.0, "longitude");
    let mut edge = valid.clone();
    edge.latitude = -90.0;
    edge.longitude = 180.0;
    assert_eq!(edge.validate(), Ok(()));
}

#[test]
fn stores_deserialize_with_optional_fields_absent() {
    let parsed: Store =
        serde_json::from_str(r#"{"id":"lyo","name":"Regard Lyon","latitude":45.764,"longitude":4.8357}"#).unwrap();
    assert_eq!(parsed.city, None);
    assert_eq!(parsed.validate(), Ok(()));
}

#[test]
fn a_coordinate_that_is_not_a_number_gives_no_distance() {
    assert!(haversine_km(f64::NAN, 0.0, 0.0, 0.0).is_nan());
    assert!(haversine_km(0.0, 0.0, 0.0, f64::INFINITY).is_nan());
}
