//! The content service: slots and settings in the content store, and the compiled snapshot
//! decisions read.
//!
//! Decisions load the current [`ContentSnapshot`] through an `ArcSwap` (one atomic load, no
//! lock); a slot or settings change builds a whole new snapshot off the hot path and swaps it
//! in, so a decision sees either the old definitions or the new ones, never a mix.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::HeaderMap;
use parking_lot::Mutex;
use regard_content::decide::{ContentSnapshot, StoredSlot};
use regard_content::geo::Store;
use regard_content::money::ExchangeRates;
use regard_content::slot::{SlotDefinition, SlotError};
use regard_content::template::{ContentSettings, LintPolicy};
use regard_core::live::LiveState;
use regard_core::segments::PolicyConfig;
use regard_store::content::ContentStore;
use regard_store::sqlite::StoreError;

use crate::error::{ApiError, ErrorCode};

/// Settings key of the exchange-rate table.
pub const EXCHANGE_RATES: &str = "exchange-rates";
/// Settings key of the store list.
pub const STORES: &str = "stores";

/// Slots, settings, the decision log and the live snapshot.
pub struct ContentService {
    /// The content store (slots, settings, decision log).
    pub store: ContentStore,
    snapshot: ArcSwap<ContentSnapshot>,
    lint: LintPolicy,
    policy: Arc<PolicyConfig>,
    /// Serializes definition changes so two saves cannot lose each other's snapshot.
    changes: Mutex<u64>,
}

impl std::fmt::Debug for ContentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentService").field("version", &self.snapshot.load().version()).finish_non_exhaustive()
    }
}

/// Turns a refused slot into the API's error, naming the field.
pub fn slot_error(error: SlotError) -> ApiError {
    let message = error.to_string();
    match error {
        SlotError::Invalid { path, .. } => ApiError::field(ErrorCode::InvalidField, path, message),
        SlotError::Policy { path, .. } => ApiError::field(ErrorCode::PolicyViolation, path, message),
        SlotError::Template { path, kind, .. } => {
            let code = if kind == "template_syntax" || kind == "template_unknown" {
                ErrorCode::InvalidField
            } else {
                ErrorCode::TemplateRejected
            };
            ApiError::field(code, path, message)
        }
        SlotError::UnknownSegment { path, .. } => ApiError::field(ErrorCode::InvalidField, path, message),
    }
}

impl ContentService {
    /// Opens the content store in `data_dir` and compiles what it holds.
    pub fn open(data_dir: &Path, policy: Arc<PolicyConfig>) -> Result<ContentService, StoreError> {
        let store = ContentStore::open(data_dir)?;
        let lint = LintPolicy { policy: (*policy).clone(), ..LintPolicy::default() };
        let service = ContentService {
            store,
            snapshot: ArcSwap::from_pointee(ContentSnapshot::empty()),
            lint,
            policy,
            changes: Mutex::new(0),
        };
        let mut version = service.changes.lock();
        match service.compile(*version + 1, &[]) {
            Ok(snapshot) => {
                *version += 1;
                service.snapshot.store(Arc::new(snapshot));
            }
            // A slot saved by an older build that this one refuses must not stop the server:
            // it is skipped (and logged); the others serve.
            Err(error) => tracing::error!(%error, "content snapshot could not be built at start-up"),
        }
        drop(version);
        Ok(service)
    }

    /// The snapshot decisions read now.
    pub fn snapshot(&self) -> Arc<ContentSnapshot> {
        self.snapshot.load_full()
    }

    /// The policy the slots' targeting is checked against.
    pub fn policy(&self) -> &PolicyConfig {
        &self.policy
    }

    fn settings(&self) -> Result<ContentSettings, StoreError> {
        let exchange_rates = match self.store.setting(EXCHANGE_RATES)? {
            Some(json) => serde_json::from_str::<ExchangeRates>(&json).ok(),
            None => None,
        };
        let stores = match self.store.setting(STORES)? {
            Some(json) => serde_json::from_str::<Vec<Store>>(&json).unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(ContentSettings { exchange_rates, stores })
    }

    /// Builds a snapshot from the store, skipping (and logging) slots that no longer compile.
    fn compile(&self, version: u64, skip: &[&str]) -> Result<ContentSnapshot, String> {
        let settings = self.settings().map_err(|e| e.to_string())?;
        let rows = self.store.load_slots().map_err(|e| e.to_string())?;
        let mut slots = Vec::with_capacity(rows.len());
        for row in rows {
            if skip.contains(&row.id.as_str()) {
                continue;
            }
            match SlotDefinition::parse_str(&row.definition, &self.policy) {
                Ok(definition) => slots.push(Arc::new(StoredSlot {
                    definition,
                    json: row.definition,
                    version: row.version,
                    updated_ms: row.updated_ms,
                })),
                Err(error) => tracing::error!(slot = %row.id, %error, "stored slot no longer parses; skipped"),
            }
        }
        loop {
            match ContentSnapshot::build(version, slots.clone(), settings.clone(), &self.lint) {
                Ok(snapshot) => return Ok(snapshot),
                Err((id, error)) => {
                    tracing::error!(slot = %id, %error, "stored slot no longer compiles; skipped");
                    let before = slots.len();
                    slots.retain(|slot| slot.definition.id != id);
                    if slots.len() == before {
                        return Err(error.to_string());
                    }
                }
            }
        }
    }

    fn rebuild(&self, version: &mut u64) -> Result<(), ApiError> {
        let snapshot = self.compile(*version + 1, &[]).map_err(|e| ApiError::new(ErrorCode::Internal, e))?;
        *version += 1;
        self.snapshot.store(Arc::new(snapshot));
        Ok(())
    }

    /// Checks a slot (shape, policy, segments exist, templates lint and compile) without saving.
    pub fn check(&self, json: &str, live: &LiveState) -> Result<SlotDefinition, ApiError> {
        let definition = SlotDefinition::parse_str(json, &self.policy).map_err(slot_error)?;
        for (path, segment) in definition.segments() {
            if live.segment(segment.as_str()).is_none() {
                return Err(slot_error(SlotError::UnknownSegment { path, segment: segment.as_str().to_owned() }));
            }
        }
        let lists = definition
            .variants
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.recommend.as_ref().map(|r| (format!("variants[{i}]"), r)))
            .chain(definition.default_recommend.as_ref().map(|r| ("default".to_owned(), r)));
        for (path, spec) in lists {
            for (j, strategy) in spec.strategy.iter().enumerate() {
                if let Err(error) = strategy.parse::<regard_recs::Strategy>() {
                    let field = format!("{path}.recommend.strategy[{j}]");
                    return Err(ApiError::field(ErrorCode::InvalidField, field, error.to_string()));
                }
            }
        }
        let settings = self.snapshot.load().settings().clone();
        ContentSnapshot::check_slot(&definition, &settings, &self.lint).map_err(slot_error)?;
        Ok(definition)
    }

    /// Saves a checked slot as its next version and swaps in a snapshot that has it.
    /// `must_exist`: `Some(true)` for an update (404 if absent), `Some(false)` for a create (409
    /// if present).
    pub fn save(
        &self,
        definition: &SlotDefinition,
        json: &str,
        must_exist: Option<bool>,
        at_ms: i64,
    ) -> Result<Arc<StoredSlot>, ApiError> {
        let mut version = self.changes.lock();
        let exists = self.snapshot.load().slot(&definition.id).is_some();
        match must_exist {
            Some(true) if !exists => {
                return Err(ApiError::field(ErrorCode::NotFound, "id", format!("no slot {:?}", definition.id)))
            }
            Some(false) if exists => {
                return Err(ApiError::field(
                    ErrorCode::Conflict,
                    "id",
                    format!("slot {:?} exists; PUT /v1/slots/{} to change it", definition.id, definition.id),
                ))
            }
            _ => {}
        }
        self.store.save_slot(&definition.id, json, at_ms).map_err(internal)?;
        self.rebuild(&mut version)?;
        self.snapshot
            .load()
            .slot(&definition.id)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the saved slot did not compile"))
    }

    /// Deletes a slot; false when there was none.
    pub fn delete(&self, id: &str, at_ms: i64) -> Result<bool, ApiError> {
        let mut version = self.changes.lock();
        if self.snapshot.load().slot(id).is_none() {
            return Ok(false);
        }
        self.store.delete_slot(id, at_ms).map_err(internal)?;
        self.rebuild(&mut version)?;
        Ok(true)
    }

    /// Replaces a setting (already validated JSON) and recompiles.
    pub fn put_setting(&self, key: &str, json: &str, at_ms: i64) -> Result<(), ApiError> {
        let mut version = self.changes.lock();
        self.store.put_setting(key, json, at_ms).map_err(internal)?;
        self.rebuild(&mut version)
    }

    /// A setting's stored JSON.
    pub fn setting(&self, key: &str) -> Result<Option<String>, ApiError> {
        self.store.setting(key).map_err(internal)
    }
}

fn internal(error: StoreError) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("content store: {error}"))
}

/// Where a visitor's country and region come from: headers set by a trusted proxy
/// (Cloudflare's `CF-IPCountry` and `CF-Region-Code`, say) or, when the operator supplies a
/// MaxMind-format database, the IP.
#[derive(Default)]
pub struct GeoResolver {
    /// The header to read, when the operator trusts one.
    pub country_header: Option<axum::http::HeaderName>,
    /// The header holding the subdivision code (`CA` for California), with the country header.
    pub region_header: Option<axum::http::HeaderName>,
    /// The IP database.
    pub database: Option<maxminddb::Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoResolver")
            .field("country_header", &self.country_header)
            .field("database", &self.database.is_some())
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow)]
    registered_country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    subdivisions: Vec<IsoCode<'a>>,
}

#[derive(serde::Deserialize)]
struct IsoCode<'a> {
    iso_code: Option<&'a str>,
}

impl GeoResolver {
    /// Reads a `.mmdb` file (GeoLite2-Country, GeoIP2-City or any file with `country.iso_code`).
    pub fn open_database(path: &Path) -> Result<maxminddb::Reader<Vec<u8>>, String> {
        maxminddb::Reader::open_readfile(path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The country (ISO alpha-2, upper case) of a request: the trusted header first, then the IP
    /// database for `ip`.
    pub fn country(&self, headers: &HeaderMap, ip: Option<IpAddr>) -> Option<String> {
        self.locate(headers, ip).0
    }

    /// The country and the region (ISO 3166-2, `US-CA`) of a request, each when known: the
    /// trusted headers first, then the IP database for `ip`.
    pub fn locate(&self, headers: &HeaderMap, ip: Option<IpAddr>) -> (Option<String>, Option<String>) {
        let header = |name: &Option<axum::http::HeaderName>| {
            name.as_ref().and_then(|name| headers.get(name)).and_then(|v| v.to_str().ok()).map(str::trim)
        };
        if let Some(country) = header(&self.country_header).and_then(country_code) {
            let region = header(&self.region_header).and_then(|code| region_code(&country, code));
            return (Some(country), region);
        }
        let (Some(database), Some(ip)) = (self.database.as_ref(), ip) else { return (None, None) };
        let Some(record) = database.lookup::<CountryRecord<'_>>(ip).ok().flatten() else { return (None, None) };
        let country = record.country.or(record.registered_country).and_then(|c| c.iso_code).and_then(country_code);
        let region = match (&country, record.subdivisions.first().and_then(|s| s.iso_code)) {
            (Some(country), Some(code)) => region_code(country, code),
            _ => None,
        };
        (country, region)
    }
}

/// `US` + `CA` → `US-CA`: a subdivision code of one to three letters or digits.
fn region_code(country: &str, code: &str) -> Option<String> {
    let code = code.trim();
    let code = code.strip_prefix(&format!("{country}-")).unwrap_or(code);
    let valid = (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then(|| format!("{country}-{}", code.to_ascii_uppercase()))
}

/// A two-letter country code, upper-cased; Cloudflare's `XX` (unknown) and `T1` (Tor) are none.
pub fn country_code(text: &str) -> Option<String> {
    let text = text.trim();
    let valid = text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic());
    let code = text.to_ascii_uppercase();
    (valid && code != "XX" && code != "T1").then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> maxminddb::Reader<Vec<u8>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/country-test.mmdb");
        GeoResolver::open_database(&path).expect("test database")
    }

    #[test]
    fn the_country_comes_from_the_trusted_header_then_the_ip_database() {
        let resolver = GeoResolver {
            country_header: Some(axum::http::HeaderName::from_static("cf-ipcountry")),
            region_header: Some(axum::http::HeaderName::from_static("cf-region-code")),
            database: Some(database()),
        };
        let mut headers = HeaderMap::new();
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        assert_eq!(resolver.country(&headers, ip("192.0.2.44")).as_deref(), Some("DE"));
        assert_eq!(resolver.country(&headers, ip("198.51.100.1")).as_deref(), Some("JP"));
        // A record with only the registered country still answers.
        assert_eq!(resolver.country(&headers, ip("203.0.113.9")).as_deref(), Some("FR"));
        assert_eq!(resolver.country(&headers, ip("2001:db8::1")).as_deref(), Some("CA"));
        assert_eq!(resolver.country(&headers, ip("10.1.2.3")), None);
        assert_eq!(resolver.country(&headers, None), None);
        assert_eq!(resolver.locate(&headers, ip("192.0.2.44")), (Some("DE".into()), Some("DE-BY".into())));
        headers.insert("cf-ipcountry", "gb".parse().unwrap());
        assert_eq!(resolver.country(&headers, ip("192.0.2.44")).as_deref(), Some("GB"));
        headers.insert("cf-region-code", "sct".parse().unwrap());
        assert_eq!(resolver.locate(&headers, None), (Some("GB".into()), Some("GB-SCT".into())));
        headers.insert("cf-region-code", "not a code".parse().unwrap());
        assert_eq!(resolver.locate(&headers, None).1, None);
        headers.remove("cf-region-code");
        // Cloudflare's "unknown" and "Tor" codes are not countries: fall back to the IP.
        headers.insert("cf-ipcountry", "XX".parse().unwrap());
        assert_eq!(resolver.country(&headers, ip("192.0.2.44")).as_deref(), Some("DE"));
        headers.insert("cf-ipcountry", "T1".parse().unwrap());
        assert_eq!(resolver.country(&headers, None), None);
        // Without a trusted header configured, the header is ignored.
        let untrusting = GeoResolver::default();
        headers.insert("cf-ipcountry", "GB".parse().unwrap());
        assert_eq!(untrusting.country(&headers, ip("192.0.2.44")), None);
    }

    #[test]
    fn a_missing_or_broken_database_is_a_clear_error() {
        let error = GeoResolver::open_database(Path::new("/nonexistent/geo.mmdb")).unwrap_err();
        assert!(error.contains("/nonexistent/geo.mmdb"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        assert!(GeoResolver::open_database(&path).is_err());
    }
}
