//! The embedded store: raw facts in one SQLite file in WAL mode.
//!
//! Tables hold facts only (events, receipts of reduced events, reduced counts, identity links,
//! merges, trait changes, consent changes, catalog). The event log has no secondary index:
//! appends stay fast, and the per-profile index lives in memory as derived state.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use regard_core::catalog::Product;
use regard_core::consent::{ConsentPurpose, ConsentSource};
use regard_core::facts::{
    ConsentFact, ErasureFact, FactBatch, IdentityFact, MergeFact, ProfileId, SegmentFact, TraitFact,
};
use regard_core::live::{LiveState, StoredEventColumns};
use regard_core::message::{IdentityKind, MessageKind, RawMessage};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "regard.sqlite3";

/// Storage faults. None of them is the client's fault; the edge maps them to 5xx.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row could not be read back (corruption or a newer schema).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The database was written by a newer Regard.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    TooNew {
        /// Found version.
        found: i64,
        /// Newest known version.
        supported: i64,
    },
    /// A thread or channel of the store failed (the decision log writer, for instance).
    #[error("store I/O: {0}")]
    Io(String),
}

impl StoreError {
    /// A file-system fault outside SQLite (dictionary training, for instance).
    pub fn from_io(error: std::io::Error) -> StoreError {
        StoreError::Corrupt { table: "dictionaries", detail: error.to_string() }
    }
}

/// How hard a commit syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// fsync the WAL on every commit: survives a process kill and a power cut.
    #[default]
    Full,
    /// fsync only at checkpoints: survives a process kill, may lose the last commits on power
    /// loss.
    Normal,
    /// Never fsync: for throwaway bulk loads only.
    Off,
}

impl SyncMode {
    /// Parses `full`, `normal` or `off`.
    pub fn parse(text: &str) -> Option<SyncMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "full" => Some(SyncMode::Full),
            "normal" => Some(SyncMode::Normal),
            "off" => Some(SyncMode::Off),
            _ => None,
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
            SyncMode::Off => "OFF",
        }
    }
}

/// Versioned schema migrations; index `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    profile_id INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    name TEXT,
    message_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    codec INTEGER NOT NULL,
    raw BLOB NOT NULL
);
CREATE TABLE dictionaries (id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, dictionary BLOB NOT NULL);
CREATE TABLE receipts (message_id TEXT NOT NULL, received_ms INTEGER NOT NULL);
CREATE TABLE reduced_counts (
    day INTEGER NOT NULL, kind INTEGER NOT NULL, name TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (day, kind, name)
) WITHOUT ROWID;
CREATE TABLE identities (
    id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, value TEXT NOT NULL,
    profile_id INTEGER NOT NULL, at_ms INTEGER NOT NULL
);
CREATE TABLE merges (id INTEGER PRIMARY KEY, from_id INTEGER NOT NULL, into_id INTEGER NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE trait_changes (
    id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL, key TEXT NOT NULL, value_json TEXT NOT NULL,
    at_ms INTEGER NOT NULL, message_id TEXT NOT NULL
);
CREATE INDEX trait_changes_by_profile ON trait_changes (profile_id);
CREATE TABLE consents (
    id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL, purpose TEXT NOT NULL, granted INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, source TEXT NOT NULL, policy_version TEXT
);
CREATE INDEX consents_by_profile ON consents (profile_id);
CREATE TABLE products (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE segments (
    id INTEGER PRIMARY KEY, segment_id TEXT NOT NULL, version INTEGER NOT NULL,
    definition TEXT NOT NULL, at_ms INTEGER NOT NULL, deleted INTEGER NOT NULL
);
CREATE TABLE segment_changes (
    id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL, segment_id TEXT NOT NULL,
    entered INTEGER NOT NULL, at_ms INTEGER NOT NULL
);
"#,
    // v3: the product a product event is about (an order: its lines' product ids as a JSON
    // array), for "recently viewed" and recommendations without decoding messages. Rows
    // stored before it have NULL.
    "ALTER TABLE events ADD COLUMN product_id TEXT;",
    // v4: erasure. Tombstones are salted hashes of erased people's ids (the salt lives in
    // `meta`), so replayed old messages cannot re-create them.
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE tombstones (hash TEXT PRIMARY KEY, at_ms INTEGER NOT NULL) WITHOUT ROWID;
"#,
];

fn configure(connection: &Connection, sync: SyncMode) -> Result<(), StoreError> {
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", sync.pragma())?;
    connection.pragma_update(None, "foreign_keys", "OFF")?;
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    connection.pragma_update(None, "cache_size", -65_536)?;
    // Deleted rows (erasure) are overwritten with zeros, not just unlinked.
    connection.pragma_update(None, "secure_delete", "ON")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::TooNew { found: version, supported });
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = connection.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Deletes every row of an erased person, after (with `keep_counts`) adding their events to
/// the anonymous daily counts, and stores their tombstones.
fn erase(tx: &rusqlite::Transaction<'_>, erasure: &ErasureFact) -> Result<(), StoreError> {
    let ids: Vec<String> = erasure.profile_ids.iter().map(|id| id.to_string()).collect();
    let list = ids.join(",");
    if erasure.keep_counts {
        tx.execute(
            &format!(
                "INSERT INTO reduced_counts (day, kind, name, count)
                 SELECT ts_ms / {DAY_MS}, kind, COALESCE(name, ''), count(*) FROM events
                 WHERE profile_id IN ({list}) GROUP BY 1, 2, 3
                 ON CONFLICT (day, kind, name) DO UPDATE SET count = count + excluded.count"
            ),
            [],
        )?;
    }
    tx.execute(
        &format!(
            "DELETE FROM receipts WHERE message_id IN (SELECT message_id FROM events WHERE profile_id IN ({list}))"
        ),
        [],
    )?;
    for table in ["events", "identities", "trait_changes", "consents", "segment_changes"] {
        tx.execute(&format!("DELETE FROM {table} WHERE profile_id IN ({list})"), [])?;
    }
    tx.execute(&format!("DELETE FROM merges WHERE from_id IN ({list}) OR into_id IN ({list})"), [])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO tombstones (hash, at_ms) VALUES (?1, ?2) ON CONFLICT (hash) DO UPDATE SET at_ms = excluded.at_ms",
    )?;
    for hash in &erasure.tombstones {
        insert.execute(params![hash, erasure.at_ms])?;
    }
    Ok(())
}

/// Milliseconds in a day, as the reduced counts bucket them.
const DAY_MS: i64 = 86_400_000;

/// Random bytes from the OS (for the tombstone salt), with a time-and-address fallback.
fn getrandom_bytes(out: &mut [u8]) {
    use std::io::Read;
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(out)).is_ok() {
        return;
    }
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
    }
}

fn corrupt(table: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt { table, detail: detail.into() }
}

/// The writing side of the embedded store. Owned by the writer thread.
pub struct SqliteStore {
    connection: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

/// How much a replay loaded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    /// Events replayed.
    pub events: u64,
    /// Identity links replayed.
    pub identities: u64,
    /// Products loaded.
    pub products: u64,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database in `data_dir`.
    pub fn open(data_dir: &Path, sync: SyncMode) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(DATABASE_FILE);
        let mut connection = Connection::open(&path)?;
        configure(&connection, sync)?;
        migrate(&mut connection)?;
        Ok(SqliteStore { connection, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a batch of facts in one transaction and syncs as configured.
    pub fn commit(&mut self, facts: &FactBatch) -> Result<(), StoreError> {
        if facts.is_empty() {
            return Ok(());
        }
        let tx = self.connection.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (seq, profile_id, kind, name, message_id, ts_ms, received_ms, codec, raw, product_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for e in &facts.events {
                use rusqlite::types::{ToSqlOutput, ValueRef};
                let (codec, raw) = match &e.raw {
                    RawMessage::Text(text) => (0, ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))),
                    RawMessage::Compressed { dictionary, bytes } => {
                        (*dictionary, ToSqlOutput::Borrowed(ValueRef::Blob(bytes)))
                    }
                };
                insert.execute(params![
                    e.seq as i64,
                    e.profile_id as i64,
                    e.kind.code(),
                    e.name,
                    e.message_id,
                    e.timestamp_ms,
                    e.received_at_ms,
                    codec,
                    raw,
                    e.product_id
                ])?;
            }
            let mut insert = tx.prepare_cached("INSERT INTO receipts (message_id, received_ms) VALUES (?1, ?2)")?;
            for r in &facts.receipts {
                insert.execute(params![r.message_id, r.received_at_ms])?;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO reduced_counts (day, kind, name, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (day, kind, name) DO UPDATE SET count = count + excluded.count",
            )?;
            for (key, count) in &facts.reduced_counts {
                upsert.execute(params![key.day, key.kind.code(), key.name, *count as i64])?;
            }
            let mut insert =
                tx.prepare_cached("INSERT INTO identities (kind, value, profile_id, at_ms) VALUES (?1, ?2, ?3, ?4)")?;
            for i in &facts.identities {
                insert.execute(params![i.kind.code(), i.value, i.profile_id as i64, i.at_ms])?;
            }
            let mut insert = tx.prepare_cached("INSERT INTO merges (from_id, into_id, at_ms) VALUES (?1, ?2, ?3)")?;
            for m in &facts.merges {
                insert.execute(params![m.from as i64, m.into as i64, m.at_ms])?;
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO trait_changes (profile_id, key, value_json, at_ms, message_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for t in &facts.traits {
                insert.execute(params![t.profile_id as i64, t.key, t.value_json, t.at_ms, t.message_id])?;
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO consents (profile_id, purpose, granted, at_ms, source, policy_version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for c in &facts.consents {
                insert.execute(params![
                    c.profile_id as i64,
                    c.purpose.as_str(),
                    c.granted,
                    c.at_ms,
                    c.source.as_str(),
                    c.policy_version
                ])?;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO products (id, doc) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO segments (segment_id, version, definition, at_ms, deleted) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for f in &facts.segments {
                insert.execute(params![f.segment_id, f.version, f.definition_json, f.at_ms, f.deleted])?;
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO segment_changes (profile_id, segment_id, entered, at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for m in &facts.memberships {
                insert.execute(params![m.profile_id as i64, m.segment_id, m.entered, m.at_ms])?;
            }
            for p in &facts.products {
                let doc = serde_json::to_string(p).map_err(|e| corrupt("products", e.to_string()))?;
                upsert.execute(params![p.id, doc])?;
            }
            for erasure in &facts.erasures {
                erase(&tx, erasure)?;
            }
        }
        tx.commit()?;
        if !facts.erasures.is_empty() {
            // Move the zeroed pages out of the WAL into the database file and empty the WAL, so
            // the erased bytes are gone from both files.
            self.connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// The store's secret salt for tombstone hashes, made on first use.
    pub fn tombstone_salt(&mut self) -> Result<String, StoreError> {
        let existing: Option<String> = self
            .connection
            .query_row("SELECT value FROM meta WHERE key = 'tombstone_salt'", [], |row| row.get(0))
            .optional()?;
        if let Some(salt) = existing {
            return Ok(salt);
        }
        let mut bytes = [0u8; 16];
        getrandom_bytes(&mut bytes);
        let salt: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.connection.execute("INSERT INTO meta (key, value) VALUES ('tombstone_salt', ?1)", params![salt])?;
        Ok(salt)
    }

    /// Stores a trained dictionary and returns its id.
    pub fn insert_dictionary(&mut self, dictionary: &[u8], created_ms: i64) -> Result<u32, StoreError> {
        self.connection.execute(
            "INSERT INTO dictionaries (created_ms, dictionary) VALUES (?1, ?2)",
            params![created_ms, dictionary],
        )?;
        Ok(self.connection.last_insert_rowid() as u32)
    }

    /// The newest dictionary, if any was trained.
    pub fn latest_dictionary(&self) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        Ok(self
            .connection
            .query_row("SELECT id, dictionary FROM dictionaries ORDER BY id DESC LIMIT 1", [], |row| {
                Ok((row.get::<_, i64>(0)? as u32, row.get::<_, Vec<u8>>(1)?))
            })
            .optional()?)
    }

    /// Rebuilds `state` from every stored fact. `progress` is called with the number of events
    /// replayed so far, now and then.
    pub fn replay(&mut self, state: &mut LiveState, progress: &mut dyn FnMut(u64)) -> Result<ReplayStats, StoreError> {
        let mut stats = ReplayStats::default();
        state.set_tombstone_salt(&self.tombstone_salt()?);
        let c = &self.connection;
        let mut rows = c.prepare("SELECT hash, at_ms FROM tombstones")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            state.replay_tombstone(row.get(0)?, row.get(1)?);
        }
        drop(rows);
        let mut rows = c.prepare("SELECT kind, value, profile_id, at_ms FROM identities ORDER BY id")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let code: u8 = row.get(0)?;
            let kind = IdentityKind::from_code(code).ok_or_else(|| corrupt("identities", format!("kind {code}")))?;
            let fact = IdentityFact {
                kind,
                value: row.get(1)?,
                profile_id: row.get::<_, i64>(2)? as ProfileId,
                at_ms: row.get(3)?,
            };
            state.replay_identity(&fact);
            stats.identities += 1;
        }
        let mut rows = c.prepare("SELECT from_id, into_id, at_ms FROM merges ORDER BY id")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            state.replay_merge(&MergeFact {
                from: row.get::<_, i64>(0)? as ProfileId,
                into: row.get::<_, i64>(1)? as ProfileId,
                at_ms: row.get(2)?,
            });
        }
        let mut rows =
            c.prepare("SELECT profile_id, key, value_json, at_ms, message_id FROM trait_changes ORDER BY id")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            state.replay_trait(&TraitFact {
                profile_id: row.get::<_, i64>(0)? as ProfileId,
                key: row.get(1)?,
                value_json: row.get(2)?,
                at_ms: row.get(3)?,
                message_id: row.get(4)?,
            });
        }
        let mut rows =
            c.prepare("SELECT profile_id, purpose, granted, at_ms, source, policy_version FROM consents ORDER BY id")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            state.replay_consent(&consent_from_row(row)?);
        }
        let mut rows = c.prepare(
            "SELECT seq, profile_id, kind, name, message_id, ts_ms, received_ms, product_id FROM events ORDER BY seq",
        )?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let code: u8 = row.get(2)?;
            let kind = MessageKind::from_code(code).ok_or_else(|| corrupt("events", format!("kind {code}")))?;
            let name: Option<&str> = row.get_ref(3)?.as_str_or_null().map_err(|e| corrupt("events", e.to_string()))?;
            let message_id: &str = row.get_ref(4)?.as_str().map_err(|e| corrupt("events", e.to_string()))?;
            let product_id: Option<&str> =
                row.get_ref(7)?.as_str_or_null().map_err(|e| corrupt("events", e.to_string()))?;
            state.replay_event(&StoredEventColumns {
                seq: row.get::<_, i64>(0)? as u64,
                profile_id: row.get::<_, i64>(1)? as ProfileId,
                kind,
                name,
                message_id,
                timestamp_ms: row.get(5)?,
                received_at_ms: row.get(6)?,
                product_id,
            });
            stats.events += 1;
            if stats.events % 100_000 == 0 {
                progress(stats.events);
            }
        }
        let mut rows = c.prepare("SELECT message_id, received_ms FROM receipts ORDER BY rowid")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let message_id: &str = row.get_ref(0)?.as_str().map_err(|e| corrupt("receipts", e.to_string()))?;
            state.replay_receipt(message_id, row.get(1)?);
        }
        let mut rows = c.prepare("SELECT doc FROM products")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let doc: &str = row.get_ref(0)?.as_str().map_err(|e| corrupt("products", e.to_string()))?;
            let product: Product = serde_json::from_str(doc).map_err(|e| corrupt("products", e.to_string()))?;
            state.replay_product(product);
            stats.products += 1;
        }
        let mut rows = c.prepare("SELECT segment_id, version, definition, at_ms, deleted FROM segments ORDER BY id")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let fact = SegmentFact {
                segment_id: row.get(0)?,
                version: row.get(1)?,
                definition_json: row.get(2)?,
                at_ms: row.get(3)?,
                deleted: row.get(4)?,
            };
            if let Err(error) = state.replay_segment(&fact) {
                tracing::warn!(segment = %fact.segment_id, %error, "a stored segment definition no longer reads; skipped");
            }
        }
        progress(stats.events);
        Ok(stats)
    }
}

fn consent_from_row(row: &rusqlite::Row<'_>) -> Result<ConsentFact, StoreError> {
    let purpose: String = row.get(1)?;
    let source: String = row.get(4)?;
    Ok(ConsentFact {
        profile_id: row.get::<_, i64>(0)? as ProfileId,
        purpose: ConsentPurpose::parse(&purpose).ok_or_else(|| corrupt("consents", format!("purpose {purpose}")))?,
        granted: row.get(2)?,
        at_ms: row.get(3)?,
        source: ConsentSource::parse(&source).ok_or_else(|| corrupt("consents", format!("source {source}")))?,
        policy_version: row.get(5)?,
    })
}

/// What [`SqliteReader::scan_events`] calls for each event: (profile id it was filed under,
/// name, time, raw JSON).
pub type EventVisitor<'a> = dyn FnMut(ProfileId, Option<&str>, i64, &str) + 'a;

/// A stored event as read back for the API.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Log position (also the paging cursor).
    pub seq: u64,
    /// The profile it was filed under.
    pub profile_id: ProfileId,
    /// Segment call.
    pub kind: MessageKind,
    /// Event or page name.
    pub name: Option<String>,
    /// messageId.
    pub message_id: String,
    /// Corrected event time.
    pub timestamp_ms: i64,
    /// Arrival time.
    pub received_at_ms: i64,
    /// The message as received.
    pub raw: String,
}

/// Read-only connections for the API, used concurrently with the writer.
pub struct SqliteReader {
    connections: Vec<Mutex<Connection>>,
    dictionaries: Mutex<FxHashMap<u32, Arc<crate::codec::Decoder>>>,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader").field("connections", &self.connections.len()).finish()
    }
}

impl SqliteReader {
    /// Opens `n` read-only connections to the database in `data_dir` (which must exist).
    pub fn open(data_dir: &Path, n: usize) -> Result<SqliteReader, StoreError> {
        let path = data_dir.join(DATABASE_FILE);
        let connections = (0..n.max(1))
            .map(|_| {
                let c = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(SqliteReader { connections, dictionaries: Mutex::default() })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        for slot in &self.connections {
            if let Some(connection) = slot.try_lock() {
                return f(&connection);
            }
        }
        let connection = self.connections[0].lock();
        f(&connection)
    }

    /// The events with the given seqs, in the order asked (missing ones skipped).
    pub fn events_by_seq(&self, seqs: &[u64]) -> Result<Vec<StoredEvent>, StoreError> {
        self.with(|c| {
            let mut select = c.prepare_cached(
                "SELECT seq, profile_id, kind, name, message_id, ts_ms, received_ms, codec, raw FROM events WHERE seq = ?1",
            )?;
            let mut out = Vec::with_capacity(seqs.len());
            for &seq in seqs {
                let event = select
                    .query_row([seq as i64], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, u8>(2)?,
                            row.get::<_, Option<String>>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, i64>(5)?,
                            row.get::<_, i64>(6)?,
                            row.get::<_, u32>(7)?,
                            row.get_ref(8)?.as_bytes().map_err(|e| rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Blob, Box::new(e)))?.to_vec(),
                        ))
                    })
                    .optional()?;
                if let Some((seq, profile_id, kind, name, message_id, ts, received, codec, bytes)) = event {
                    let kind = MessageKind::from_code(kind).ok_or_else(|| corrupt("events", format!("kind {kind}")))?;
                    let raw = self.decode(c, codec, bytes)?;
                    out.push(StoredEvent {
                        seq: seq as u64,
                        profile_id: profile_id as ProfileId,
                        kind,
                        name,
                        message_id,
                        timestamp_ms: ts,
                        received_at_ms: received,
                        raw,
                    });
                }
            }
            Ok(out)
        })
    }

    fn decode(&self, connection: &Connection, codec: u32, bytes: Vec<u8>) -> Result<String, StoreError> {
        if codec == 0 {
            return String::from_utf8(bytes).map_err(|e| corrupt("events", e.to_string()));
        }
        let cached = self.dictionaries.lock().get(&codec).cloned();
        let dictionary = match cached {
            Some(dictionary) => dictionary,
            None => {
                let dictionary: Vec<u8> = connection
                    .query_row("SELECT dictionary FROM dictionaries WHERE id = ?1", [codec], |row| row.get(0))
                    .optional()?
                    .ok_or_else(|| corrupt("events", format!("dictionary {codec} is missing")))?;
                let decoder = Arc::new(crate::codec::Decoder::new(codec, &dictionary));
                self.dictionaries.lock().insert(codec, Arc::clone(&decoder));
                decoder
            }
        };
        dictionary.decompress(&bytes).map_err(|e| corrupt("events", format!("undecodable message: {e}")))
    }

    /// Trait changes of the given profile ids, newest first, at most `limit`.
    pub fn trait_history(&self, profile_ids: &[ProfileId], limit: usize) -> Result<Vec<TraitFact>, StoreError> {
        self.with(|c| {
            let mut select = c.prepare_cached(
                "SELECT profile_id, key, value_json, at_ms, message_id FROM trait_changes
                 WHERE profile_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let mut out = Vec::new();
            for &id in profile_ids {
                let rows = select.query_map(params![id as i64, limit as i64], |row| {
                    Ok(TraitFact {
                        profile_id: row.get::<_, i64>(0)? as ProfileId,
                        key: row.get(1)?,
                        value_json: row.get(2)?,
                        at_ms: row.get(3)?,
                        message_id: row.get(4)?,
                    })
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            out.sort_by_key(|fact| std::cmp::Reverse(fact.at_ms));
            out.truncate(limit);
            Ok(out)
        })
    }

    /// Consent changes of the given profile ids, newest first.
    pub fn consent_history(&self, profile_ids: &[ProfileId]) -> Result<Vec<ConsentFact>, StoreError> {
        self.with(|c| {
            let mut select = c.prepare_cached(
                "SELECT profile_id, purpose, granted, at_ms, source, policy_version FROM consents
                 WHERE profile_id = ?1 ORDER BY id DESC",
            )?;
            let mut out = Vec::new();
            for &id in profile_ids {
                let mut rows = select.query([id as i64])?;
                while let Some(row) = rows.next()? {
                    out.push(consent_from_row(row)?);
                }
            }
            out.sort_by_key(|fact| std::cmp::Reverse(fact.at_ms));
            Ok(out)
        })
    }

    /// The ids of the compression dictionaries that contain any of `needles` (an erased
    /// person's ids and trait values): a dictionary is trained on early messages, so it can
    /// hold fragments of them.
    pub fn dictionaries_containing(&self, needles: &[String]) -> Result<Vec<u32>, StoreError> {
        self.with(|c| {
            let mut select = c.prepare_cached("SELECT id, dictionary FROM dictionaries ORDER BY id")?;
            let mut rows = select.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let bytes: Vec<u8> = row.get(1)?;
                let found =
                    needles.iter().filter(|n| n.len() >= 4).any(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()));
                if found {
                    out.push(row.get::<_, i64>(0)? as u32);
                }
            }
            Ok(out)
        })
    }

    /// Reduced-form counts (events kept without `analytics` consent): (day, kind, name, count).
    pub fn reduced_counts(&self) -> Result<Vec<(i64, MessageKind, String, u64)>, StoreError> {
        self.with(|c| {
            let mut select =
                c.prepare_cached("SELECT day, kind, name, count FROM reduced_counts ORDER BY day, kind, name")?;
            let mut rows = select.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let code: u8 = row.get(1)?;
                let kind =
                    MessageKind::from_code(code).ok_or_else(|| corrupt("reduced_counts", format!("kind {code}")))?;
                out.push((row.get(0)?, kind, row.get(2)?, row.get::<_, i64>(3)? as u64));
            }
            Ok(out)
        })
    }

    /// Streams every stored event whose name is in `names` (all events when `names` is empty),
    /// in log order, with its message decoded: the history scan behind segment previews and
    /// backfills. `visit` gets (profile id the event was filed under, name, time, raw JSON).
    pub fn scan_events(&self, names: &[String], visit: &mut EventVisitor<'_>) -> Result<u64, StoreError> {
        self.with(|c| {
            let sql = if names.is_empty() {
                "SELECT profile_id, name, ts_ms, codec, raw FROM events ORDER BY seq".to_owned()
            } else {
                let marks = vec!["?"; names.len()].join(",");
                format!("SELECT profile_id, name, ts_ms, codec, raw FROM events WHERE name IN ({marks}) ORDER BY seq")
            };
            let mut select = c.prepare(&sql)?;
            let mut rows = select.query(rusqlite::params_from_iter(names.iter()))?;
            let mut n = 0;
            while let Some(row) = rows.next()? {
                let bytes = row.get_ref(4)?.as_bytes().map_err(|e| corrupt("events", e.to_string()))?.to_vec();
                let raw = self.decode(c, row.get(3)?, bytes)?;
                let name: Option<String> = row.get(1)?;
                visit(row.get::<_, i64>(0)? as ProfileId, name.as_deref(), row.get(2)?, &raw);
                n += 1;
            }
            Ok(n)
        })
    }

    /// Total number of stored events.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        self.with(|c| Ok(c.query_row("SELECT count(*) FROM events", [], |row| row.get::<_, i64>(0))? as u64))
    }
}
