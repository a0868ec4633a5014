//! The content store: slot definitions (every version), content settings (exchange rates,
//! stores), and the decision log.
//!
//! It lives in its own SQLite file (`content.sqlite3` beside the event store) so that the
//! decision log's appends never wait on, nor delay, the event writer's group commits. Decisions
//! are appended by a background thread in batches (the only disk write a decision causes);
//! until a batch is written, its records are answered from memory, so `why` works at once.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use rustc_hash::FxHashMap;

use crate::sqlite::StoreError;

/// File name of the content store inside the data directory.
pub const CONTENT_FILE: &str = "content.sqlite3";

/// A decision log batch is written after this long, or sooner when it is full.
const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Records per decision-log transaction at most.
const LOG_BATCH: usize = 4096;

const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE slots (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        definition TEXT,            -- NULL marks a deletion
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (id, version)
    ) WITHOUT ROWID;
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE decisions (
        decision_id TEXT PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        profile_id INTEGER,
        user_id TEXT,
        anonymous_id TEXT,
        slot TEXT NOT NULL,
        variant TEXT NOT NULL,
        level TEXT NOT NULL,
        purpose TEXT,
        explanation TEXT NOT NULL,
        detail TEXT NOT NULL        -- JSON: conditions fired, variants skipped, consent basis, versions
    );
    CREATE INDEX decisions_profile ON decisions (profile_id, at_ms);",
];

/// One logged decision: what was shown to whom, when, at which level, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// Unguessable id, returned with the decision.
    pub decision_id: String,
    /// When it was taken (Unix ms).
    pub at_ms: i64,
    /// The profile it was taken for, when Regard knew the person.
    pub profile_id: Option<u64>,
    /// The userId the request named.
    pub user_id: Option<String>,
    /// The anonymousId the request named.
    pub anonymous_id: Option<String>,
    /// The slot.
    pub slot: String,
    /// The variant shown.
    pub variant: String,
    /// The personalization level used.
    pub level: String,
    /// The consent purpose relied on.
    pub purpose: Option<String>,
    /// The explanation given.
    pub explanation: String,
    /// JSON with the conditions that fired, the variants skipped, the consent basis and the
    /// slot version.
    pub detail: String,
}

/// A stored slot version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSlotRow {
    /// Slot id.
    pub id: String,
    /// Version, from 1.
    pub version: u32,
    /// Its JSON definition.
    pub definition: String,
    /// When it was saved.
    pub updated_ms: i64,
}

/// The content store (see the module docs).
pub struct ContentStore {
    path: PathBuf,
    connection: Mutex<Connection>,
    log: Mutex<Option<Sender<DecisionRecord>>>,
    unwritten: Arc<Mutex<FxHashMap<String, DecisionRecord>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ContentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.busy_timeout(Duration::from_secs(5))?;
    Ok(connection)
}

impl ContentStore {
    /// Opens (creating and migrating) the content store in `data_dir` and starts the decision
    /// log's writer thread.
    pub fn open(data_dir: &Path) -> Result<ContentStore, StoreError> {
        let path = data_dir.join(CONTENT_FILE);
        let mut connection = open_connection(&path)?;
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = connection.transaction()?;
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        let log_connection = open_connection(&path)?;
        let unwritten: Arc<Mutex<FxHashMap<String, DecisionRecord>>> = Arc::default();
        let (sender, receiver) = channel();
        let writer_unwritten = unwritten.clone();
        let writer = std::thread::Builder::new()
            .name("regard-decision-log".to_owned())
            .spawn(move || run_log_writer(log_connection, receiver, &writer_unwritten))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(ContentStore {
            path,
            connection: Mutex::new(connection),
            log: Mutex::new(Some(sender)),
            unwritten,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The latest version of every slot that is not deleted.
    pub fn load_slots(&self) -> Result<Vec<StoredSlotRow>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare(
            "SELECT s.id, s.version, s.definition, s.updated_ms FROM slots s
             WHERE s.version = (SELECT MAX(version) FROM slots WHERE id = s.id) AND s.definition IS NOT NULL
             ORDER BY s.id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(StoredSlotRow {
                id: row.get(0)?,
                version: row.get(1)?,
                definition: row.get(2)?,
                updated_ms: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest version number of a slot (deleted or not), 0 if it never existed.
    fn latest_version(connection: &Connection, id: &str) -> Result<u32, StoreError> {
        Ok(connection.query_row("SELECT COALESCE(MAX(version), 0) FROM slots WHERE id = ?1", [id], |row| row.get(0))?)
    }

    /// Stores the next version of a slot; returns its version.
    pub fn save_slot(&self, id: &str, definition: &str, at_ms: i64) -> Result<u32, StoreError> {
        let connection = self.connection.lock();
        let version = Self::latest_version(&connection, id)? + 1;
        connection.execute(
            "INSERT INTO slots (id, version, definition, updated_ms) VALUES (?1, ?2, ?3, ?4)",
            params![id, version, definition, at_ms],
        )?;
        Ok(version)
    }

    /// Marks a slot deleted (its history is kept for the decision log's sake).
    pub fn delete_slot(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        let connection = self.connection.lock();
        let version = Self::latest_version(&connection, id)? + 1;
        connection.execute(
            "INSERT INTO slots (id, version, definition, updated_ms) VALUES (?1, ?2, NULL, ?3)",
            params![id, version, at_ms],
        )?;
        Ok(())
    }

    /// A setting's JSON value.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let connection = self.connection.lock();
        Ok(connection.query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| row.get(0)).optional()?)
    }

    /// Sets a setting's JSON value.
    pub fn put_setting(&self, key: &str, value: &str, at_ms: i64) -> Result<(), StoreError> {
        let connection = self.connection.lock();
        connection.execute(
            "INSERT INTO settings (key, value, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
            params![key, value, at_ms],
        )?;
        Ok(())
    }

    /// Queues decisions for the log. They are readable at once and written within ~20 ms.
    pub fn log_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        {
            let mut unwritten = self.unwritten.lock();
            for record in &records {
                unwritten.insert(record.decision_id.clone(), record.clone());
            }
        }
        let log = self.log.lock();
        let sender = log.as_ref().ok_or_else(|| StoreError::Io("the decision log is closed".to_owned()))?;
        for record in records {
            sender.send(record).map_err(|_| StoreError::Io("the decision log writer stopped".to_owned()))?;
        }
        Ok(())
    }

    /// One decision by id.
    pub fn decision(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        if let Some(record) = self.unwritten.lock().get(decision_id) {
            return Ok(Some(record.clone()));
        }
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached(&format!("{SELECT_DECISION} WHERE decision_id = ?1"))?;
        Ok(statement.query_row([decision_id], read_decision).optional()?)
    }

    /// The decisions taken for any of `profile_ids`, newest first, at most `limit`, older than
    /// `before_ms` when given.
    pub fn decisions_for(
        &self,
        profile_ids: &[u64],
        before_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let before = before_ms.unwrap_or(i64::MAX);
        let mut out: Vec<DecisionRecord> = self
            .unwritten
            .lock()
            .values()
            .filter(|r| r.profile_id.is_some_and(|id| profile_ids.contains(&id)) && r.at_ms < before)
            .cloned()
            .collect();
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached(&format!(
            "{SELECT_DECISION} WHERE profile_id = ?1 AND at_ms < ?2 ORDER BY at_ms DESC LIMIT ?3"
        ))?;
        for id in profile_ids {
            let rows = statement.query_map(params![*id as i64, before, limit as i64], read_decision)?;
            for row in rows {
                let row = row?;
                if !out.iter().any(|r| r.decision_id == row.decision_id) {
                    out.push(row);
                }
            }
        }
        out.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| a.decision_id.cmp(&b.decision_id)));
        out.truncate(limit);
        Ok(out)
    }

    /// Waits until every queued decision is written (for tests and shutdown).
    pub fn flush(&self) {
        for _ in 0..500 {
            if self.unwritten.lock().is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Writes what is queued and stops the log writer.
    pub fn shutdown(&self) {
        self.log.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

impl Drop for ContentStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

const SELECT_DECISION: &str = "SELECT decision_id, at_ms, profile_id, user_id, anonymous_id, slot, variant, level, \
                               purpose, explanation, detail FROM decisions";

fn read_decision(row: &rusqlite::Row<'_>) -> rusqlite::Result<DecisionRecord> {
    Ok(DecisionRecord {
        decision_id: row.get(0)?,
        at_ms: row.get(1)?,
        profile_id: row.get::<_, Option<i64>>(2)?.map(|id| id as u64),
        user_id: row.get(3)?,
        anonymous_id: row.get(4)?,
        slot: row.get(5)?,
        variant: row.get(6)?,
        level: row.get(7)?,
        purpose: row.get(8)?,
        explanation: row.get(9)?,
        detail: row.get(10)?,
    })
}

fn run_log_writer(
    mut connection: Connection,
    receiver: Receiver<DecisionRecord>,
    unwritten: &Mutex<FxHashMap<String, DecisionRecord>>,
) {
    let mut batch: Vec<DecisionRecord> = Vec::with_capacity(LOG_BATCH);
    loop {
        let first = match receiver.recv() {
            Ok(record) => record,
            Err(_) => return,
        };
        batch.push(first);
        let deadline = std::time::Instant::now() + LOG_FLUSH_INTERVAL;
        let mut closed = false;
        while batch.len() < LOG_BATCH {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match receiver.recv_timeout(left) {
                Ok(record) => batch.push(record),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        // A failed write is retried with the next batch; records stay readable meanwhile.
        let mut attempts = 0;
        while let Err(error) = write_batch(&mut connection, &batch) {
            attempts += 1;
            tracing::error!(%error, attempts, "decision log write failed");
            if attempts >= 5 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100 * attempts));
        }
        {
            let mut unwritten = unwritten.lock();
            for record in &batch {
                unwritten.remove(&record.decision_id);
            }
        }
        batch.clear();
        if closed {
            return;
        }
    }
}

fn write_batch(connection: &mut Connection, batch: &[DecisionRecord]) -> Result<(), rusqlite::Error> {
    let tx = connection.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO decisions (decision_id, at_ms, profile_id, user_id, anonymous_id, slot, variant, \
             level, purpose, explanation, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for r in batch {
            insert.execute(params![
                r.decision_id,
                r.at_ms,
                r.profile_id.map(|id| id as i64),
                r.user_id,
                r.anonymous_id,
                r.slot,
                r.variant,
                r.level,
                r.purpose,
                r.explanation,
                r.detail
            ])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, profile: u64, at_ms: i64) -> DecisionRecord {
        DecisionRecord {
            decision_id: id.to_owned(),
            at_ms,
            profile_id: Some(profile),
            user_id: Some("u1".to_owned()),
            anonymous_id: None,
            slot: "home_hero".to_owned(),
            variant: "default".to_owned(),
            level: "generic".to_owned(),
            purpose: None,
            explanation: "standard".to_owned(),
            detail: "{}".to_owned(),
        }
    }

    #[test]
    fn slots_keep_versions_and_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        assert_eq!(store.save_slot("a", "{\"v\":1}", 1).unwrap(), 1);
        assert_eq!(store.save_slot("a", "{\"v\":2}", 2).unwrap(), 2);
        assert_eq!(store.save_slot("b", "{}", 3).unwrap(), 1);
        store.delete_slot("b", 4).unwrap();
        let slots = store.load_slots().unwrap();
        assert_eq!(slots.len(), 1);
        assert_eq!((slots[0].id.as_str(), slots[0].version, slots[0].definition.as_str()), ("a", 2, "{\"v\":2}"));
        // A slot created again after deletion continues its version numbers.
        assert_eq!(store.save_slot("b", "{}", 5).unwrap(), 3);
    }

    #[test]
    fn decisions_are_readable_at_once_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = ContentStore::open(dir.path()).unwrap();
            store.log_decisions(vec![record("d1", 7, 10), record("d2", 7, 20), record("d3", 8, 30)]).unwrap();
            assert_eq!(store.decision("d2").unwrap().unwrap().at_ms, 20);
            store.flush();
            assert_eq!(store.decision("d2").unwrap().unwrap().at_ms, 20);
            store.put_setting("stores", "[]", 1).unwrap();
        }
        let store = ContentStore::open(dir.path()).unwrap();
        let mine = store.decisions_for(&[7], None, 10).unwrap();
        assert_eq!(mine.iter().map(|r| r.decision_id.as_str()).collect::<Vec<_>>(), ["d2", "d1"]);
        assert_eq!(store.decisions_for(&[7, 8], Some(30), 10).unwrap().len(), 2);
        assert!(store.decision("nope").unwrap().is_none());
        assert_eq!(store.setting("stores").unwrap().as_deref(), Some("[]"));
    }
}
