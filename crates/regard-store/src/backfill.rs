//! Reading segment matches from the event log: the parallel scan behind background backfills
//! and the start-up rebuild, and the progress a backfill reports while it runs.
//!
//! A scan splits the log's seq range over a few threads, each on its own read-only connection.
//! SQLite skips events of other names by their `name` column; an event whose matches read no
//! property is not even decompressed; the others are decompressed into a reused buffer and
//! only their `properties` member is parsed, keeping only the keys some match reads. The scan
//! never touches the live state: it returns what it found for the writer to merge.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use regard_core::segments::backfill::{BackfillMatcher, BackfillSignal};
use rusqlite::{Connection, OpenFlags};
use rustc_hash::FxHashMap;

use crate::codec::Decoder;
use crate::sqlite::{StoreError, DATABASE_FILE};

/// Rows between two progress updates (and checks for shutdown).
const PROGRESS_EVERY: u64 = 4_096;

/// Where a backfill job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BackfillPhase {
    /// Waiting for the background thread (another backfill is running).
    Queued,
    /// Reading the event log.
    Scanning,
    /// Merging what it read into the index and recomputing memberships, in the writer.
    Merging,
    /// Finished.
    Done,
    /// Failed.
    Failed,
}

impl BackfillPhase {
    fn from_code(code: u8) -> BackfillPhase {
        match code {
            0 => BackfillPhase::Queued,
            1 => BackfillPhase::Scanning,
            2 => BackfillPhase::Merging,
            3 => BackfillPhase::Done,
            _ => BackfillPhase::Failed,
        }
    }

    /// The phase as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillPhase::Queued => "queued",
            BackfillPhase::Scanning => "scanning",
            BackfillPhase::Merging => "merging",
            BackfillPhase::Done => "done",
            BackfillPhase::Failed => "failed",
        }
    }
}

/// The progress of one pass over the log (shared by the jobs it serves), updated by the scan
/// threads without locks.
#[derive(Debug, Default)]
pub struct JobProgress {
    /// Log positions (seqs) covered so far.
    pub scanned: AtomicU64,
    /// Log positions to cover: the last seq the pass reads.
    pub total: AtomicU64,
    phase: AtomicU8,
    started_ms: AtomicI64,
    scanned_ms: AtomicI64,
    finished_ms: AtomicI64,
}

impl JobProgress {
    /// Where the job stands.
    pub fn phase(&self) -> BackfillPhase {
        BackfillPhase::from_code(self.phase.load(Ordering::Relaxed))
    }

    fn set_phase(&self, phase: BackfillPhase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// When the scan started (Unix ms), once it has.
    pub fn started_ms(&self) -> Option<i64> {
        Some(self.started_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    /// When the scan ended and merging began (Unix ms).
    pub fn scanned_ms(&self) -> Option<i64> {
        Some(self.scanned_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    /// When the job finished or failed (Unix ms).
    pub fn finished_ms(&self) -> Option<i64> {
        Some(self.finished_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }
}

/// Every backfill job's progress, by job number: what `GET /v1/segments/{id}/status` reads.
#[derive(Debug, Default)]
pub struct BackfillProgress {
    jobs: Mutex<FxHashMap<u64, Arc<JobProgress>>>,
}

impl BackfillProgress {
    /// Records a job the writer has just handed to the background.
    pub(crate) fn queue(&self, job: u64, total: u64) {
        let progress = JobProgress::default();
        progress.total.store(total, Ordering::Relaxed);
        self.jobs.lock().insert(job, Arc::new(progress));
    }

    /// Starts one pass over the log for several jobs; they share its progress from now on.
    pub(crate) fn start(&self, jobs: &[u64], total: u64, now_ms: i64) -> Arc<JobProgress> {
        let progress = Arc::new(JobProgress::default());
        progress.total.store(total, Ordering::Relaxed);
        progress.started_ms.store(now_ms, Ordering::Relaxed);
        progress.set_phase(BackfillPhase::Scanning);
        let mut all = self.jobs.lock();
        for job in jobs {
            all.insert(*job, Arc::clone(&progress));
        }
        progress
    }

    /// A job's progress, if the writer has handed it over.
    pub fn get(&self, job: u64) -> Option<Arc<JobProgress>> {
        self.jobs.lock().get(&job).cloned()
    }
}

/// Marks a pass as merging (the scan is done) at `now_ms`.
pub(crate) fn merging(progress: &JobProgress, now_ms: i64) {
    progress.scanned_ms.store(now_ms, Ordering::Relaxed);
    progress.set_phase(BackfillPhase::Merging);
}

/// Marks a pass as finished (or failed) at `now_ms`.
pub(crate) fn finish(progress: &JobProgress, failed: bool, now_ms: i64) {
    progress.finished_ms.store(now_ms, Ordering::Relaxed);
    progress.set_phase(if failed { BackfillPhase::Failed } else { BackfillPhase::Done });
}

/// Prepared decompression dictionaries, shared by the scan threads of an engine.
#[derive(Debug, Default)]
pub struct Decoders(Mutex<FxHashMap<u32, Arc<Decoder>>>);

impl Decoders {
    /// Prepares every stored dictionary not prepared yet.
    fn load(&self, connection: &Connection) -> Result<(), StoreError> {
        let mut select = connection.prepare("SELECT id, dictionary FROM dictionaries")?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let id: u32 = row.get(0)?;
            if self.0.lock().contains_key(&id) {
                continue;
            }
            let dictionary: Vec<u8> = row.get(1)?;
            self.0.lock().insert(id, Arc::new(Decoder::new(id, &dictionary)));
        }
        Ok(())
    }

    fn get(&self, id: u32) -> Option<Arc<Decoder>> {
        self.0.lock().get(&id).cloned()
    }
}

/// Why a scan stopped early.
fn stopped() -> StoreError {
    StoreError::Io("the scan was stopped by a shutdown".into())
}

/// Reads the events the matcher wants from the log (seqs `1..=matcher.upto_seq()`) on
/// `threads` threads, and returns every match found, sorted by (profile, match, time).
/// `progress` counts log positions covered; `stopping` aborts the scan.
pub fn scan_history(
    data_dir: &Path,
    decoders: &Decoders,
    matcher: &BackfillMatcher,
    threads: usize,
    progress: &JobProgress,
    stopping: &AtomicBool,
) -> Result<Vec<BackfillSignal>, StoreError> {
    let upto = matcher.upto_seq();
    let names = matcher.names();
    if upto == 0 || names.is_empty() {
        progress.scanned.store(upto, Ordering::Relaxed);
        return Ok(Vec::new());
    }
    let path = data_dir.join(DATABASE_FILE);
    let threads = threads.clamp(1, 16) as u64;
    let step = upto.div_ceil(threads);
    let ranges: Vec<(u64, u64)> =
        (0..threads).map(|i| (i * step, ((i + 1) * step).min(upto))).filter(|(lo, hi)| lo < hi).collect();
    let parts: Vec<Result<Vec<BackfillSignal>, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|&(lo, hi)| {
                let (path, names) = (&path, &names);
                scope.spawn(move || scan_range(path, decoders, matcher, names, lo, hi, progress, stopping))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(StoreError::Io("a scan thread panicked".into()))))
            .collect()
    });
    let mut signals = Vec::new();
    for part in parts {
        signals.extend(part?);
    }
    // Each part is sorted: a stable sort merges the runs in linear time.
    signals.sort();
    Ok(signals)
}

/// One scan thread: the events with seq in `(lo, hi]`.
#[allow(clippy::too_many_arguments)]
fn scan_range(
    path: &Path,
    decoders: &Decoders,
    matcher: &BackfillMatcher,
    names: &[String],
    lo: u64,
    hi: u64,
    progress: &JobProgress,
    stopping: &AtomicBool,
) -> Result<Vec<BackfillSignal>, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    decoders.load(&connection)?;
    let marks = vec!["?"; names.len()].join(",");
    let sql = format!(
        "SELECT seq, profile_id, name, ts_ms, codec, raw FROM events WHERE seq > ? AND seq <= ? AND name IN ({marks})"
    );
    let mut select = connection.prepare(&sql)?;
    let mut params: Vec<rusqlite::types::Value> = vec![(lo as i64).into(), (hi as i64).into()];
    params.extend(names.iter().map(|n| rusqlite::types::Value::from(n.clone())));
    let mut rows = select.query(rusqlite::params_from_iter(params))?;
    let corrupt = |detail: String| StoreError::Corrupt { table: "events", detail };
    let mut out: Vec<BackfillSignal> = Vec::new();
    let mut matched: Vec<u32> = Vec::new();
    let mut plain: Vec<u8> = Vec::new();
    let mut decoder: Option<Arc<Decoder>> = None;
    let (mut reported, mut n) = (lo, 0u64);
    while let Some(row) = rows.next()? {
        let seq = row.get::<_, i64>(0)? as u64;
        let profile_id = row.get::<_, i64>(1)? as u64;
        let name = row.get_ref(2)?.as_str().map_err(|e| corrupt(e.to_string()))?;
        let timestamp_ms: i64 = row.get(3)?;
        let json: &str = if matcher.needs_message(name) {
            let codec: u32 = row.get(4)?;
            let bytes = row.get_ref(5)?.as_bytes().map_err(|e| corrupt(e.to_string()))?;
            if codec == 0 {
                std::str::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))?
            } else {
                if decoder.as_ref().is_none_or(|d| d.dictionary_id() != codec) {
                    decoder =
                        Some(decoders.get(codec).ok_or_else(|| corrupt(format!("dictionary {codec} is missing")))?);
                }
                if let Some(decoder) = &decoder {
                    decoder
                        .decompress_into(bytes, &mut plain)
                        .map_err(|e| corrupt(format!("undecodable message: {e}")))?;
                }
                std::str::from_utf8(&plain).map_err(|e| corrupt(e.to_string()))?
            }
        } else {
            ""
        };
        matched.clear();
        matcher.match_stored(seq, name, json, &mut matched);
        out.extend(matched.iter().map(|number| (profile_id, *number, timestamp_ms)));
        n += 1;
        if n % PROGRESS_EVERY == 0 {
            progress.scanned.fetch_add(seq - reported, Ordering::Relaxed);
            reported = seq;
            if stopping.load(Ordering::Relaxed) {
                return Err(stopped());
            }
        }
    }
    progress.scanned.fetch_add(hi - reported, Ordering::Relaxed);
    out.sort_unstable();
    Ok(out)
}

/// Where a saved segment's memberships stand, for the API and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentState {
    /// Its stored history is being read; memberships count only events since the save.
    Backfilling,
    /// Memberships reflect the whole stored history.
    Ready,
    /// The backfill failed (the message says why); memberships count only events since the
    /// save. Saving the segment again retries.
    Failed(String),
}

/// A saved segment's backfill status: `GET /v1/segments/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentStatus {
    /// Backfilling, ready or failed.
    pub state: SegmentState,
    /// While backfilling: queued, scanning or merging.
    pub phase: Option<BackfillPhase>,
    /// Log positions the backfill has covered.
    pub scanned: u64,
    /// Log positions it covers in all (the log's end when the segment was saved).
    pub total: u64,
    /// When this version was saved (Unix ms); `None` when rebuilt at start-up.
    pub saved_ms: Option<i64>,
    /// When the scan started (Unix ms).
    pub started_ms: Option<i64>,
    /// When the scan ended and merging began (Unix ms).
    pub scanned_ms: Option<i64>,
    /// When the segment became ready, or the backfill failed (Unix ms).
    pub finished_ms: Option<i64>,
}

impl SegmentStatus {
    /// Covered share of the log, 0 to 100 (100 when there was nothing to read).
    pub fn percent(&self) -> f64 {
        if self.state == SegmentState::Ready || self.total == 0 {
            100.0
        } else {
            (self.scanned as f64 * 100.0 / self.total as f64).min(100.0)
        }
    }

    /// Whether memberships reflect the whole stored history.
    pub fn is_ready(&self) -> bool {
        self.state == SegmentState::Ready
    }
}

/// Combines a segment's readiness (from the live state) with its jobs' progress.
pub(crate) fn segment_status(
    readiness: &regard_core::segments::backfill::Readiness,
    progress: &BackfillProgress,
) -> SegmentStatus {
    use regard_core::segments::backfill::ReadinessState;
    let mut passes: Vec<Arc<JobProgress>> = Vec::new();
    let mut phase: Option<BackfillPhase> = None;
    for job in &readiness.jobs {
        match progress.get(*job) {
            Some(pass) => {
                if !passes.iter().any(|p| Arc::ptr_eq(p, &pass)) {
                    passes.push(pass);
                }
            }
            None => phase = Some(BackfillPhase::Queued),
        }
    }
    let unfinished = passes.iter().map(|p| p.phase()).filter(|p| *p < BackfillPhase::Done).min();
    phase = match (phase, unfinished) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let (state, finished_ms) = match &readiness.state {
        ReadinessState::Backfilling => (SegmentState::Backfilling, None),
        ReadinessState::Ready { ready_ms } => (SegmentState::Ready, Some(*ready_ms)),
        ReadinessState::Failed { failed_ms, message } => (SegmentState::Failed(message.clone()), Some(*failed_ms)),
    };
    SegmentStatus {
        phase: if state == SegmentState::Backfilling { Some(phase.unwrap_or(BackfillPhase::Merging)) } else { None },
        state,
        scanned: passes.iter().map(|p| p.scanned.load(Ordering::Relaxed)).sum(),
        total: passes.iter().map(|p| p.total.load(Ordering::Relaxed)).sum(),
        saved_ms: readiness.saved_ms,
        started_ms: passes.iter().filter_map(|p| p.started_ms()).min(),
        scanned_ms: passes.iter().filter_map(|p| p.scanned_ms()).max(),
        finished_ms,
    }
}
