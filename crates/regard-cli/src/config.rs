//! Flags and environment shared by the commands, and the keys of an instance.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use rand::RngCore;
use regard_core::consent::{ConsentCategoryMap, ConsentMode, ConsentPurpose};
use regard_server::Keys;
use regard_store::{EngineConfig, SyncMode};

/// Where and how the embedded store keeps its data.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory of the embedded store.
    #[arg(long = "data", default_value = "./regard-data", env = "REGARD_DATA")]
    pub data: PathBuf,
    #[command(flatten)]
    pub common: CommonStoreArgs,
}

/// The demo's store: a directory of its own by default.
#[derive(Debug, Clone, Args)]
pub struct DemoStoreArgs {
    /// Data directory of the demo store.
    #[arg(long = "data", default_value = "./regard-demo-data")]
    pub data: PathBuf,
    #[command(flatten)]
    pub common: CommonStoreArgs,
}

/// Settings every store shares.
#[derive(Debug, Clone, Args)]
pub struct CommonStoreArgs {
    /// What an event with no consent information means: `opt-in` (GDPR: denied until
    /// granted) or `opt-out` (CCPA: granted until denied).
    #[arg(long, default_value = "opt-in", env = "REGARD_CONSENT_MODE")]
    pub consent_mode: String,
    /// How commits sync: `full` (survives power loss) or `normal` (survives a process crash).
    #[arg(long, default_value = "full", env = "REGARD_SYNC")]
    pub sync: String,
    /// A JSON file mapping consent-manager categories to purposes, e.g.
    /// `{"C0002": "analytics", "Marketing": ["email", "advertising"]}`; replaces the default table.
    #[arg(long, env = "REGARD_CONSENT_CATEGORIES")]
    pub consent_categories: Option<PathBuf>,
    /// How many days a messageId is remembered for de-duplication.
    #[arg(long, default_value_t = 7, env = "REGARD_DEDUP_DAYS")]
    pub dedup_days: u32,
    /// A JSON file with the operator's additions to the privacy policy segments and slots are
    /// checked against: sensitive traits, catalog categories, event properties and keywords,
    /// and traits people declared with the purposes they declared them for.
    #[arg(long, env = "REGARD_POLICY")]
    pub policy: Option<PathBuf>,
}

/// Where the server listens.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "REGARD_LISTEN")]
    pub listen: String,
    /// The header a trusted proxy puts the visitor's country in (ISO alpha-2); `none` to
    /// ignore headers. A forged header only changes the forger's own content.
    #[arg(long, default_value = "CF-IPCountry", env = "REGARD_COUNTRY_HEADER")]
    pub country_header: String,
    /// The header holding the visitor's region (the ISO 3166-2 subdivision code, `CA` or
    /// `US-CA`), read together with the country header; `none` to ignore.
    #[arg(long, default_value = "CF-Region-Code", env = "REGARD_REGION_HEADER")]
    pub region_header: String,
    /// A MaxMind-format database (.mmdb: GeoLite2-Country, GeoIP2-City...) to find a visitor's
    /// country from `context.ip` when no trusted header says it.
    #[arg(long, env = "REGARD_GEOIP_DB")]
    pub geoip_db: Option<PathBuf>,
    /// Serve the demo shop page at `/shop` (on by default under `regard demo`).
    #[arg(long, env = "REGARD_DEMO_SHOP")]
    pub demo_shop: bool,
    /// With `--demo-shop`: the `/shop` page carries a signed user token for this one userId, so
    /// signing in as them shows identified personalization. Demo only: anyone who can load the
    /// page may act as this user (`regard demo` picks one of its busiest customers).
    #[arg(long, env = "REGARD_DEMO_USER")]
    pub demo_user: Option<String>,
    /// Retrain the recommendation model every this many minutes (0: only at start-up and on
    /// `POST /v1/recommendations/train`).
    #[arg(long, default_value_t = 360, env = "REGARD_RECS_RETRAIN_MINUTES")]
    pub recs_retrain_minutes: u64,
    /// Refit the predictive models and recompute everyone's predictions every this many
    /// minutes (0: only at start-up and on `POST /v1/predictions/train`). A person's
    /// predictions are also refreshed within a second of each of their purchases.
    #[arg(long, default_value_t = 60, env = "REGARD_PREDICT_REFIT_MINUTES")]
    pub predict_refit_minutes: u64,
}

impl ServerArgs {
    /// Where visitors' countries come from, as the flags say.
    pub fn geo_resolver(&self) -> anyhow::Result<regard_server::content::GeoResolver> {
        let header = |flag: &str, value: &str| -> anyhow::Result<Option<regard_server::HeaderName>> {
            match value.trim() {
                "" | "none" => Ok(None),
                name => {
                    Ok(Some(axum_header_name(name).with_context(|| format!("{flag} {name:?} is not a header name"))?))
                }
            }
        };
        let country_header = header("--country-header", &self.country_header)?;
        let region_header = header("--region-header", &self.region_header)?;
        let database = match &self.geoip_db {
            Some(path) => Some(
                regard_server::content::GeoResolver::open_database(path)
                    .map_err(|e| anyhow::anyhow!("--geoip-db: {e}"))?,
            ),
            None => None,
        };
        Ok(regard_server::content::GeoResolver { country_header, region_header, database })
    }
}

fn axum_header_name(name: &str) -> Option<regard_server::HeaderName> {
    regard_server::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()
}

impl CommonStoreArgs {
    /// The privacy policy: the built-in one plus `--policy FILE`.
    pub fn policy(&self) -> anyhow::Result<std::sync::Arc<regard_core::segments::PolicyConfig>> {
        let Some(path) = &self.policy else { return Ok(std::sync::Arc::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading --policy {}", path.display()))?;
        let policy = regard_core::segments::PolicyConfig::from_json(&text)
            .map_err(|e| anyhow::anyhow!("--policy {}: {e}", path.display()))?;
        Ok(std::sync::Arc::new(policy))
    }

    /// The engine configuration for `data_dir`.
    pub fn engine_config(&self, data_dir: &Path) -> anyhow::Result<EngineConfig> {
        let mut config = EngineConfig::new(data_dir);
        config.live.policy = self.policy()?;
        config.live.consent_mode = ConsentMode::parse(&self.consent_mode)
            .with_context(|| format!("--consent-mode {:?}: use opt-in or opt-out", self.consent_mode))?;
        config.sync =
            SyncMode::parse(&self.sync).with_context(|| format!("--sync {:?}: use full, normal or off", self.sync))?;
        config.live.dedup_window_ms = i64::from(self.dedup_days.max(1)) * regard_core::time::DAY_MS;
        if let Some(path) = &self.consent_categories {
            config.live.consent_categories = load_category_map(path)?;
        }
        Ok(config)
    }
}

fn load_category_map(path: &Path) -> anyhow::Result<ConsentCategoryMap> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).with_context(|| format!("{}: expected a JSON object", path.display()))?;
    let mut entries = Vec::new();
    for (category, value) in object {
        let names: Vec<&str> = match &value {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
            _ => bail!("{}: {category:?} must map to a purpose or a list of purposes", path.display()),
        };
        let purposes = names
            .iter()
            .map(|n| {
                ConsentPurpose::parse(n)
                    .with_context(|| format!("{}: {category:?}: unknown purpose {n:?}", path.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        entries.push((category, purposes));
    }
    Ok(ConsentCategoryMap { entries })
}

/// The file in a data directory that holds the instance's keys.
pub const KEYS_FILE: &str = "keys.json";

fn random_key(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

/// The keys as `keys.json` holds them. Files written before user tokens have no secret; one is
/// generated and saved the first time such a file is read.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct KeysFile {
    write_key: String,
    admin_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_token_secret: Option<String>,
}

fn read_keys_file(path: &Path) -> anyhow::Result<Option<KeysFile>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let file: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
            for required in ["write_key", "admin_key"] {
                if !file.get(required).is_some_and(serde_json::Value::is_string) {
                    bail!("{}: {required} missing", path.display());
                }
            }
            Ok(Some(serde_json::from_value(file).with_context(|| format!("reading {}", path.display()))?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `keys` to `path` (mode 0600). A new file is created only if none exists, so two first
/// starts cannot both create keys; an existing one is replaced through a temporary file and a
/// rename, so a crash leaves the old keys or the new ones.
fn write_keys_file(path: &Path, keys: &KeysFile, create_new: bool) -> anyhow::Result<()> {
    let text = serde_json::to_string(keys)?;
    let temporary = path.with_extension("json.tmp");
    let target = if create_new { path.to_path_buf() } else { temporary.clone() };
    let mut options = std::fs::OpenOptions::new();
    if create_new {
        options.write(true).create_new(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&target).with_context(|| format!("creating {}", target.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    if !create_new {
        std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))?;
    }
    Ok(())
}

/// Shortest user-token secret accepted from the environment (generated ones have 48 hex digits).
const MIN_USER_TOKEN_SECRET_LEN: usize = 16;

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|k| !k.is_empty())
}

/// `REGARD_USER_TOKEN_SECRET` when set, refused when too short to resist guessing.
fn env_user_token_secret() -> anyhow::Result<Option<String>> {
    let secret = env_value("REGARD_USER_TOKEN_SECRET");
    if secret.as_ref().is_some_and(|secret| secret.len() < MIN_USER_TOKEN_SECRET_LEN) {
        bail!("REGARD_USER_TOKEN_SECRET must be at least {MIN_USER_TOKEN_SECRET_LEN} characters: it signs every user token");
    }
    Ok(secret)
}

/// The instance's keys and user-token secret: each from `REGARD_WRITE_KEY`,
/// `REGARD_ADMIN_KEY` and `REGARD_USER_TOKEN_SECRET` when set, else from `keys.json` in the data
/// dir; generated, saved (mode 0600) and printed once on first start. A `keys.json` from before
/// user tokens gets a secret added.
pub fn load_or_create_keys(data_dir: &Path) -> anyhow::Result<Keys> {
    let env_write = env_value("REGARD_WRITE_KEY");
    let env_admin = env_value("REGARD_ADMIN_KEY");
    let env_secret = env_user_token_secret()?;
    if let (Some(write_key), Some(admin_key), Some(user_token_secret)) = (&env_write, &env_admin, &env_secret) {
        return Ok(Keys {
            write_key: write_key.clone(),
            admin_key: admin_key.clone(),
            user_token_secret: user_token_secret.clone(),
        });
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(KEYS_FILE);
    let file = match read_keys_file(&path)? {
        Some(mut file) => {
            if file.user_token_secret.is_none() && env_secret.is_none() {
                file.user_token_secret = Some(random_key("uts"));
                write_keys_file(&path, &file, false)?;
                // Standard error: `regard token` prints only the token on standard output.
                eprintln!("Generated a user-token secret (saved in {}).", path.display());
            }
            file
        }
        None => {
            let file = KeysFile {
                write_key: random_key("wk"),
                admin_key: random_key("ak"),
                user_token_secret: Some(random_key("uts")),
            };
            write_keys_file(&path, &file, true)?;
            println!("Generated keys (saved in {}; shown only this once):", path.display());
            if env_write.is_none() {
                println!("  write key (public, ingest only): {}", file.write_key);
            }
            if env_admin.is_none() {
                println!("  admin key (secret):              {}", file.admin_key);
            }
            if env_secret.is_none() {
                println!("  user-token secret (secret, for your backend to sign user tokens; see the README)");
            }
            file
        }
    };
    Ok(Keys {
        write_key: env_write.unwrap_or(file.write_key),
        admin_key: env_admin.unwrap_or(file.admin_key),
        user_token_secret: env_secret.or(file.user_token_secret).context("no user-token secret")?,
    })
}

/// The user-token secret for `regard token`: `REGARD_USER_TOKEN_SECRET`, else the one in the
/// data dir's `keys.json` (added to an older file, as the server would). Unlike the server it
/// never creates keys: a token signed with a secret no server uses would be useless.
pub fn user_token_secret(data_dir: &Path) -> anyhow::Result<String> {
    if let Some(secret) = env_user_token_secret()? {
        return Ok(secret);
    }
    let path = data_dir.join(KEYS_FILE);
    if read_keys_file(&path)?.is_none() {
        bail!(
            "no {} in {}: start `regard serve --data {}` once to create the keys, or set REGARD_USER_TOKEN_SECRET",
            KEYS_FILE,
            data_dir.display(),
            data_dir.display()
        );
    }
    Ok(load_or_create_keys(data_dir)?.user_token_secret)
}
