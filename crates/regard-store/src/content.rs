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
    -- One row per decide request: its slot decisions share the person, the time and the
    -- context, and one row instead of one per slot keeps the log's appends cheap.
    CREATE TABLE decisions (
        request_id TEXT PRIMARY KEY, -- 32 hex digits, time-ordered; decision ids add 2 digits
        at_ms INTEGER NOT NULL,
        profile_id INTEGER,
        user_id TEXT,
        anonymous_id TEXT,
        decisions TEXT NOT NULL      -- JSON array: slot, variant, level, purpose, explanation, detail
    );
    CREATE INDEX decisions_profile ON decisions (profile_id, at_ms);",
    // v2: data subject requests, with their status and deadline. Once an erasure is done the
    // subject is kept only masked.
    "CREATE TABLE privacy_requests (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        regulation TEXT NOT NULL,
        status TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        deadline_ms INTEGER NOT NULL,
        completed_ms INTEGER,
        result TEXT
    ) WITHOUT ROWID;",
];

/// An id masked for the request log once the person is gone: `us***42` (two characters at each
/// end; `***` for ids of four characters or fewer).
pub fn mask_subject(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 4 {
        return "***".to_owned();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}***{tail}")
}

/// One data subject request (access, erasure, anonymization) with its status and deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyRequestRow {
    /// Its id.
    pub id: String,
    /// `access`, `erase` or `anonymize`.
    pub kind: String,
    /// Whom it is about: the id as given, masked once an erasure or anonymization is done.
    pub subject: String,
    /// `gdpr` (30 days) or `ccpa` (45 days).
    pub regulation: String,
    /// `received`, `completed` or `failed`.
    pub status: String,
    /// When it arrived (Unix ms).
    pub received_ms: i64,
    /// When it must be answered by (Unix ms).
    pub deadline_ms: i64,
    /// When it was answered.
    pub completed_ms: Option<i64>,
    /// What was done, as JSON.
    pub result: Option<String>,
}

/// One logged decision: what was shown to whom, when, at which level, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// Unguessable id, returned with the decision: its request's id (32 hex digits) and the
    /// slot's position in the request (2 hex digits); see [`decision_id`].
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

/// The id of the `index`-th decision of the request `request_id` (32 hex digits).
pub fn decision_id(request_id: &str, index: usize) -> String {
    format!("{request_id}{:02x}", index.min(255))
}

/// Splits a decision id into its request id and index.
fn split_decision_id(decision_id: &str) -> Option<(&str, usize)> {
    if decision_id.len() != 34 || !decision_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (request, index) = decision_id.split_at(32);
    Some((request, usize::from_str_radix(index, 16).ok()?))
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
    log: Mutex<Option<Sender<Vec<DecisionRecord>>>>,
    unwritten: Arc<Mutex<FxHashMap<String, Vec<DecisionRecord>>>>,
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
    // Erased decisions are overwritten with zeros, not just unlinked.
    connection.pragma_update(None, "secure_delete", "ON")?;
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
        let unwritten: Arc<Mutex<FxHashMap<String, Vec<DecisionRecord>>>> = Arc::default();
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

    /// Queues the decisions of one request for the log (they must share the request's id,
    /// time and person). They are readable at once and written within ~20 ms.
    pub fn log_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        let Some(request_id) = records.first().and_then(|r| split_decision_id(&r.decision_id)).map(|(r, _)| r) else {
            return Err(StoreError::Io("decision ids must be 34 hex digits".to_owned()));
        };
        self.unwritten.lock().insert(request_id.to_owned(), records.clone());
        let log = self.log.lock();
        let sender = log.as_ref().ok_or_else(|| StoreError::Io("the decision log is closed".to_owned()))?;
        sender.send(records).map_err(|_| StoreError::Io("the decision log writer stopped".to_owned()))
    }

    /// One decision by id.
    pub fn decision(&self, decision_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        let Some((request_id, index)) = split_decision_id(decision_id) else { return Ok(None) };
        if let Some(records) = self.unwritten.lock().get(request_id) {
            return Ok(records.iter().find(|r| r.decision_id == decision_id).cloned());
        }
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached(&format!("{SELECT_REQUEST} WHERE request_id = ?1"))?;
        let Some(records) = statement.query_row([request_id], read_request).optional()? else { return Ok(None) };
        Ok(records?.into_iter().nth(index).filter(|r| r.decision_id == decision_id))
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
            .flatten()
            .filter(|r| r.profile_id.is_some_and(|id| profile_ids.contains(&id)) && r.at_ms < before)
            .cloned()
            .collect();
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached(&format!(
            "{SELECT_REQUEST} WHERE profile_id = ?1 AND at_ms < ?2 ORDER BY at_ms DESC LIMIT ?3"
        ))?;
        for id in profile_ids {
            let rows = statement.query_map(params![*id as i64, before, limit as i64], read_request)?;
            for row in rows {
                for record in row?? {
                    if !out.iter().any(|r| r.decision_id == record.decision_id) {
                        out.push(record);
                    }
                }
            }
        }
        out.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| a.decision_id.cmp(&b.decision_id)));
        out.truncate(limit);
        Ok(out)
    }

    /// Deletes every logged decision about these profiles or ids (an erasure), then checkpoints
    /// so the zeroed pages leave the WAL. Returns how many requests' rows went.
    pub fn erase_decisions(&self, profile_ids: &[u64], ids: &[String]) -> Result<usize, StoreError> {
        self.flush();
        let connection = self.connection.lock();
        let mut deleted = 0;
        for id in profile_ids {
            deleted += connection.execute("DELETE FROM decisions WHERE profile_id = ?1", params![*id as i64])?;
        }
        for id in ids {
            deleted +=
                connection.execute("DELETE FROM decisions WHERE user_id = ?1 OR anonymous_id = ?1", params![id])?;
            // Earlier requests about the person keep only the masked id.
            connection.execute(
                "UPDATE privacy_requests SET subject = ?2 WHERE subject = ?1",
                params![id, mask_subject(id)],
            )?;
        }
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(deleted)
    }

    /// Records a privacy request or updates its status.
    pub fn save_privacy_request(&self, request: &PrivacyRequestRow) -> Result<(), StoreError> {
        let connection = self.connection.lock();
        connection.execute(
            "INSERT INTO privacy_requests
                 (id, kind, subject, regulation, status, received_ms, deadline_ms, completed_ms, result)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, status = excluded.status,
                 completed_ms = excluded.completed_ms, result = excluded.result",
            params![
                request.id,
                request.kind,
                request.subject,
                request.regulation,
                request.status,
                request.received_ms,
                request.deadline_ms,
                request.completed_ms,
                request.result
            ],
        )?;
        Ok(())
    }

    /// Every privacy request, newest first.
    pub fn privacy_requests(&self) -> Result<Vec<PrivacyRequestRow>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached(
            "SELECT id, kind, subject, regulation, status, received_ms, deadline_ms, completed_ms, result
             FROM privacy_requests ORDER BY received_ms DESC, id DESC",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(PrivacyRequestRow {
                id: row.get(0)?,
                kind: row.get(1)?,
                subject: row.get(2)?,
                regulation: row.get(3)?,
                status: row.get(4)?,
                received_ms: row.get(5)?,
                deadline_ms: row.get(6)?,
                completed_ms: row.get(7)?,
                result: row.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
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

const SELECT_REQUEST: &str = "SELECT request_id, at_ms, profile_id, user_id, anonymous_id, decisions FROM decisions";

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredDecision {
    slot: String,
    variant: String,
    level: String,
    purpose: Option<String>,
    explanation: String,
    detail: Box<serde_json::value::RawValue>,
}

/// A stored request row, expanded into its decisions (an error for a row that does not read).
fn read_request(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Vec<DecisionRecord>, StoreError>> {
    let request_id: String = row.get(0)?;
    let at_ms: i64 = row.get(1)?;
    let profile_id = row.get::<_, Option<i64>>(2)?.map(|id| id as u64);
    let user_id: Option<String> = row.get(3)?;
    let anonymous_id: Option<String> = row.get(4)?;
    let json: String = row.get(5)?;
    let stored: Vec<StoredDecision> = match serde_json::from_str(&json) {
        Ok(stored) => stored,
        Err(e) => return Ok(Err(StoreError::Corrupt { table: "decisions", detail: e.to_string() })),
    };
    Ok(Ok(stored
        .into_iter()
        .enumerate()
        .map(|(i, d)| DecisionRecord {
            decision_id: decision_id(&request_id, i),
            at_ms,
            profile_id,
            user_id: user_id.clone(),
            anonymous_id: anonymous_id.clone(),
            slot: d.slot,
            variant: d.variant,
            level: d.level,
            purpose: d.purpose,
            explanation: d.explanation,
            detail: d.detail.get().to_owned(),
        })
        .collect()))
}

fn run_log_writer(
    mut connection: Connection,
    receiver: Receiver<Vec<DecisionRecord>>,
    unwritten: &Mutex<FxHashMap<String, Vec<DecisionRecord>>>,
) {
    let mut batch: Vec<Vec<DecisionRecord>> = Vec::with_capacity(LOG_BATCH);
    loop {
        let first = match receiver.recv() {
            Ok(records) => records,
            Err(_) => return,
        };
        batch.push(first);
        let deadline = std::time::Instant::now() + LOG_FLUSH_INTERVAL;
        let mut closed = false;
        while batch.len() < LOG_BATCH {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match receiver.recv_timeout(left) {
                Ok(records) => batch.push(records),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        // A failed write is retried a few times; records stay readable meanwhile.
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
            for records in &batch {
                if let Some((request_id, _)) = records.first().and_then(|r| split_decision_id(&r.decision_id)) {
                    unwritten.remove(request_id);
                }
            }
        }
        batch.clear();
        if closed {
            return;
        }
    }
}

fn write_batch(connection: &mut Connection, batch: &[Vec<DecisionRecord>]) -> Result<(), rusqlite::Error> {
    let tx = connection.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO decisions (request_id, at_ms, profile_id, user_id, anonymous_id, decisions)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut json = String::with_capacity(4096);
        for records in batch {
            let Some(first) = records.first() else { continue };
            let Some((request_id, _)) = split_decision_id(&first.decision_id) else { continue };
            json.clear();
            json.push('[');
            for (i, r) in records.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                let detail = serde_json::value::RawValue::from_string(r.detail.clone())
                    .unwrap_or_else(|_| serde_json::value::RawValue::from_string("null".to_owned()).expect("null"));
                let stored = StoredDecision {
                    slot: r.slot.clone(),
                    variant: r.variant.clone(),
                    level: r.level.clone(),
                    purpose: r.purpose.clone(),
                    explanation: r.explanation.clone(),
                    detail,
                };
                json.push_str(&serde_json::to_string(&stored).unwrap_or_else(|_| "null".to_owned()));
            }
            json.push(']');
            insert.execute(params![
                request_id,
                first.at_ms,
                first.profile_id.map(|id| id as i64),
                first.user_id,
                first.anonymous_id,
                json
            ])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(request: u32, index: usize, profile: u64, at_ms: i64) -> DecisionRecord {
        DecisionRecord {
            decision_id: decision_id(&format!("{request:032x}"), index),
            at_ms,
            profile_id: Some(profile),
            user_id: Some("u1".to_owned()),
            anonymous_id: None,
            slot: "home_hero".to_owned(),
            variant: "default".to_owned(),
            level: "generic".to_owned(),
            purpose: None,
            explanation: "standard".to_owned(),
            detail: "{\"k\":1}".to_owned(),
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
        let id = |request: u32, index: usize| decision_id(&format!("{request:032x}"), index);
        {
            let store = ContentStore::open(dir.path()).unwrap();
            store.log_decisions(vec![record(1, 0, 7, 10), record(1, 1, 7, 10)]).unwrap();
            store.log_decisions(vec![record(2, 0, 7, 20)]).unwrap();
            store.log_decisions(vec![record(3, 0, 8, 30)]).unwrap();
            assert_eq!(store.decision(&id(1, 1)).unwrap().unwrap().at_ms, 10);
            store.flush();
            assert_eq!(store.decision(&id(1, 1)).unwrap().unwrap().decision_id, id(1, 1));
            store.put_setting("stores", "[]", 1).unwrap();
        }
        let store = ContentStore::open(dir.path()).unwrap();
        let mine = store.decisions_for(&[7], None, 10).unwrap();
        assert_eq!(mine.iter().map(|r| r.decision_id.clone()).collect::<Vec<_>>(), [id(2, 0), id(1, 0), id(1, 1)]);
        assert_eq!(mine[2].detail, "{\"k\":1}");
        assert_eq!(store.decisions_for(&[7, 8], Some(30), 10).unwrap().len(), 3);
        assert!(store.decision(&id(1, 2)).unwrap().is_none());
        assert!(store.decision(&id(9, 0)).unwrap().is_none());
        assert!(store.decision("nope").unwrap().is_none());
        assert!(store
            .log_decisions(vec![DecisionRecord { decision_id: "short".into(), ..record(4, 0, 7, 1) }])
            .is_err());
        assert_eq!(store.setting("stores").unwrap().as_deref(), Some("[]"));
    }
}
