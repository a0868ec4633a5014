//! Regard's storage: the raw facts on disk and the single writer that puts them there.
//!
//! [`engine::Engine`] owns the only writing connection, on its own thread. HTTP handlers and
//! importers send it parsed messages over a bounded channel; it applies what is waiting to the
//! live state, writes the resulting facts in one transaction (group commit), syncs once, and
//! only then answers every waiting sender. Readers use separate connections and never block
//! the writer (SQLite WAL mode).
//!
//! Threading rule: only the writer thread writes to the database or takes the live state's
//! write lock. The `regard-backfill` thread reads the event log for new segments on its own
//! connections and hands what it found to the writer ([`backfill`]).

pub mod backfill;
pub mod codec;
pub mod content;
pub mod engine;
pub mod segments;
pub mod sql_baseline;
pub mod sqlite;
pub mod stats;

pub use engine::{Engine, EngineConfig, EngineError, IngestReceipt, PendingIngest};
pub use sqlite::{SqliteReader, SqliteStore, StoreError, StoredEvent, SyncMode};
