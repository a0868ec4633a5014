//! The single writer: group commit of everything that changes state.
//!
//! **Invariant:** a reply of `Ok` is sent only after the transaction holding the message's
//! facts has committed (and synced, per [`SyncMode`]). Live state is updated just before the
//! commit, so a concurrent reader may see a change up to one group commit before it is
//! durable; if a commit fails the writer stops, every waiting and later sender gets an error,
//! and a restart rebuilds the live state from what is on disk.
//!
//! Beside the writer run the `regard-ticker` thread (it asks the writer, every second, to apply
//! the segment changes time alone brings) and the `regard-backfill` thread: it reads the stored
//! history of new segments' event matches on its own connections while ingestion goes on, and
//! sends what it found to the writer as ordinary changes, so the writer stays the only one to
//! change the live state.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use regard_core::catalog::Product;
use regard_core::facts::{FactBatch, ProfileId};
use regard_core::live::{ApplyOutcome, ConsentUpdate, LiveConfig, LiveState};
use regard_core::message::Message;
use tokio::sync::{mpsc, oneshot};

use regard_core::segments::backfill::{BackfillMatcher, BackfillRequest};
use regard_core::segments::SegmentDefinition;
use rustc_hash::FxHashMap;

use crate::backfill::{BackfillProgress, Decoders, JobProgress, SegmentStatus};
use crate::codec::{Codec, CurrentCodec, TRAINING_SAMPLES};
use crate::sqlite::{ReplayStats, SqliteReader, SqliteStore, StoreError, SyncMode};
use crate::stats::EngineStats;

/// The lock file that keeps two processes from writing one data directory.
pub const LOCK_FILE: &str = "regard.lock";

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the database lives (created if missing).
    pub data_dir: PathBuf,
    /// How commits sync.
    pub sync: SyncMode,
    /// Live-state settings (consent mode, dedup window).
    pub live: LiveConfig,
    /// A group commit takes at most about this many messages.
    pub max_group_messages: usize,
    /// Requests waiting for the writer before senders are told to back off.
    pub queue_capacity: usize,
    /// How long a sender waits for room in the queue before giving up.
    pub enqueue_timeout: Duration,
    /// Read connections for the API.
    pub read_connections: usize,
    /// Threads (each with its own read connection) a segment backfill scans the log with.
    pub backfill_threads: usize,
}

impl EngineConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            sync: SyncMode::Full,
            live: LiveConfig::default(),
            max_group_messages: 20_000,
            queue_capacity: 8_192,
            enqueue_timeout: Duration::from_secs(2),
            read_connections: 4,
            backfill_threads: std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4),
        }
    }
}

/// Why the engine could not take a write.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The queue stayed full: the client should retry later.
    #[error("the writer is overloaded; retry later")]
    Overloaded,
    /// The writer has stopped (shutdown, or a failed commit).
    #[error("the writer has stopped: {0}")]
    Stopped(String),
    /// The data directory is used by another process.
    #[error("data directory {0} is in use by another regard process")]
    Locked(PathBuf),
    /// A storage fault.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file-system fault around the store.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What became of the messages of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReceipt {
    /// Stored whole.
    pub stored: u32,
    /// Retries dropped.
    pub duplicates: u32,
    /// Kept in reduced form (no `analytics` consent).
    pub reduced: u32,
    /// Dropped: about an erased person and from before the erasure.
    pub erased: u32,
}

/// A queued ingestion; [`PendingIngest::wait`] returns once it is durable.
#[derive(Debug)]
pub struct PendingIngest(oneshot::Receiver<Result<IngestReceipt, String>>);

impl PendingIngest {
    /// Blocks until the writer has committed the messages.
    pub fn wait(self) -> Result<IngestReceipt, EngineError> {
        match self.0.blocking_recv() {
            Ok(Ok(receipt)) => Ok(receipt),
            Ok(Err(fault)) => Err(EngineError::Stopped(fault)),
            Err(_) => Err(EngineError::Stopped("writer gone".into())),
        }
    }
}

enum Command {
    Ingest(Vec<Message>, oneshot::Sender<Result<IngestReceipt, String>>),
    Consent(ConsentUpdate, oneshot::Sender<Result<Option<ProfileId>, String>>),
    Products(Vec<Product>, oneshot::Sender<Result<usize, String>>),
    Dictionary(Vec<u8>, oneshot::Sender<Result<u32, String>>),
    Apply(ApplyFn, oneshot::Sender<Result<(), String>>),
}

/// A change to the live state run by the writer, in order with everything else; the facts it
/// appends are committed before the caller hears back.
type ApplyFn = Box<dyn FnOnce(&mut LiveState, &mut FactBatch) + Send>;

impl Command {
    fn weight(&self) -> usize {
        match self {
            Command::Ingest(messages, _) => messages.len(),
            Command::Consent(..) => 1,
            Command::Products(products, _) => products.len(),
            Command::Dictionary(..) => 0,
            Command::Apply(..) => 1,
        }
    }
}

enum Outcome {
    Dictionary,
    Applied,
    Ingest(IngestReceipt),
    Consent(Option<ProfileId>),
    Products(usize),
}

/// The writer's queue, shared with the threads that feed it; emptied at shutdown.
type WriterQueue = Arc<Mutex<Option<mpsc::Sender<Command>>>>;

/// A backfill request on its way to the background thread, with the copy of the catalog its
/// category matches read.
struct BackfillWork {
    request: BackfillRequest,
    catalog: Option<FxHashMap<String, Vec<String>>>,
}

/// The storage engine: live state, the writer thread, the backfill thread and read connections.
pub struct Engine {
    stopping: Arc<std::sync::atomic::AtomicBool>,
    ticker: Mutex<Option<JoinHandle<()>>>,
    backfiller: Mutex<Option<JoinHandle<()>>>,
    backfills: Arc<BackfillProgress>,
    sender: WriterQueue,
    state: Arc<RwLock<LiveState>>,
    reader: Arc<SqliteReader>,
    stats: Arc<EngineStats>,
    writer: Mutex<Option<JoinHandle<()>>>,
    config: EngineConfig,
    replay: ReplayStats,
    codec: CurrentCodec,
    _lock: File,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("data_dir", &self.config.data_dir).finish()
    }
}

fn lock_data_dir(dir: &Path) -> Result<File, EngineError> {
    std::fs::create_dir_all(dir)?;
    let file = File::options().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::Locked(dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

impl Engine {
    /// Opens the store in the configured directory, rebuilds the live state from its facts and
    /// starts the writer thread. `progress` hears how many events were replayed.
    pub fn open(config: EngineConfig, progress: &mut dyn FnMut(u64)) -> Result<Engine, EngineError> {
        let lock = lock_data_dir(&config.data_dir)?;
        let mut store = SqliteStore::open(&config.data_dir, config.sync)?;
        let mut state = LiveState::new(config.live.clone());
        let replay = store.replay(&mut state, progress)?;
        let reader = Arc::new(SqliteReader::open(&config.data_dir, config.read_connections)?);
        let decoders = Arc::new(Decoders::default());
        rebuild_segment_index(&mut state, &config, &decoders)?;
        let codec = CurrentCodec::default();
        if let Some((id, dictionary)) = store.latest_dictionary()? {
            codec.publish(Codec::new(id, &dictionary));
        }
        let state = Arc::new(RwLock::new(state));
        let stats = Arc::new(EngineStats::default());
        let backfills = Arc::new(BackfillProgress::default());
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let sender: WriterQueue = Arc::new(Mutex::new(Some(sender)));
        let (backfill_sender, backfill_receiver) = std::sync::mpsc::channel::<BackfillWork>();
        let writer = {
            let state = Arc::clone(&state);
            let stats = Arc::clone(&stats);
            let max_group = config.max_group_messages.max(1);
            let codec = codec.clone();
            let backfills = Arc::clone(&backfills);
            std::thread::Builder::new().name("regard-writer".into()).spawn(move || {
                run_writer(store, state, stats, receiver, max_group, codec, backfill_sender, backfills)
            })?
        };
        let backfiller = {
            let context = BackfillContext {
                data_dir: config.data_dir.clone(),
                threads: config.backfill_threads,
                decoders,
                backfills: Arc::clone(&backfills),
                writer: Arc::clone(&sender),
                stopping: Arc::clone(&stopping),
            };
            std::thread::Builder::new()
                .name("regard-backfill".into())
                .spawn(move || run_backfills(backfill_receiver, context))?
        };
        let ticker = {
            let sender = sender.lock().clone();
            let stopping = Arc::clone(&stopping);
            std::thread::Builder::new().name("regard-ticker".into()).spawn(move || {
                if let Some(sender) = sender {
                    run_ticker(sender, stopping)
                }
            })?
        };
        Ok(Engine {
            stopping,
            ticker: Mutex::new(Some(ticker)),
            backfiller: Mutex::new(Some(backfiller)),
            backfills,
            sender,
            state,
            reader,
            stats,
            writer: Mutex::new(Some(writer)),
            config,
            replay,
            codec,
            _lock: lock,
        })
    }

    /// What the start-up replay loaded.
    pub fn replay_stats(&self) -> ReplayStats {
        self.replay
    }

    /// The settings the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// A read guard on the live state. Hold it briefly: the writer waits for it.
    pub fn state(&self) -> RwLockReadGuard<'_, LiveState> {
        self.state.read()
    }

    /// Read connections to the stored facts.
    pub fn reader(&self) -> &SqliteReader {
        &self.reader
    }

    /// Compresses a message's JSON for storage with the store's current dictionary (plain
    /// text until one is trained). Call it on request threads, so the writer only stores bytes.
    pub fn compress(&self, text: &str) -> regard_core::message::RawMessage {
        self.codec.compress(text)
    }

    /// The writer's counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Whether the writer is still accepting work.
    pub fn is_healthy(&self) -> bool {
        self.sender.lock().as_ref().is_some_and(|s| !s.is_closed())
    }

    fn sender(&self) -> Result<mpsc::Sender<Command>, EngineError> {
        self.sender.lock().clone().ok_or_else(|| EngineError::Stopped("shut down".into()))
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
    ) -> Result<T, EngineError> {
        let sender = self.sender()?;
        let (reply, answer) = oneshot::channel();
        match tokio::time::timeout(self.config.enqueue_timeout, sender.send(make(reply))).await {
            Err(_) => return Err(EngineError::Overloaded),
            Ok(Err(_)) => return Err(EngineError::Stopped("writer gone".into())),
            Ok(Ok(())) => {}
        }
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(fault)) => Err(EngineError::Stopped(fault)),
            Err(_) => Err(EngineError::Stopped("writer gone".into())),
        }
    }

    fn submit_blocking<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
    ) -> Result<T, EngineError> {
        submit_blocking(&self.sender, make)
    }

    /// Ingests messages; returns once they are durable.
    pub async fn ingest(&self, messages: Vec<Message>) -> Result<IngestReceipt, EngineError> {
        self.submit(|reply| Command::Ingest(messages, reply)).await
    }

    /// Ingests messages from a non-async thread (bulk import); returns once they are durable.
    pub fn ingest_blocking(&self, messages: Vec<Message>) -> Result<IngestReceipt, EngineError> {
        self.submit_blocking(|reply| Command::Ingest(messages, reply))
    }

    /// Queues messages from a non-async thread and returns a handle to wait on, so a bulk
    /// importer can keep several groups in flight while the writer commits.
    pub fn ingest_pipelined(&self, messages: Vec<Message>) -> Result<PendingIngest, EngineError> {
        let sender = self.sender()?;
        let (reply, answer) = oneshot::channel();
        sender
            .blocking_send(Command::Ingest(messages, reply))
            .map_err(|_| EngineError::Stopped("writer gone".into()))?;
        Ok(PendingIngest(answer))
    }

    /// Records consent decisions; returns the profile once durable (None when the update named
    /// no id).
    pub async fn set_consent(&self, update: ConsentUpdate) -> Result<Option<ProfileId>, EngineError> {
        self.submit(|reply| Command::Consent(update, reply)).await
    }

    /// Upserts catalog products; returns once durable.
    pub async fn upsert_products(&self, products: Vec<Product>) -> Result<usize, EngineError> {
        self.submit(|reply| Command::Products(products, reply)).await
    }

    /// Runs `change` on the live state in the writer, in order with all other writes, and
    /// returns its result once the facts it appended are durable.
    pub async fn apply<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut LiveState, &mut FactBatch) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let (boxed, slot) = boxed_change(change);
        self.submit(|reply| Command::Apply(boxed, reply)).await?;
        take_result(&slot)
    }

    /// [`Engine::apply`] from a non-async thread.
    pub fn apply_blocking<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut LiveState, &mut FactBatch) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let (boxed, slot) = boxed_change(change);
        self.submit_blocking(|reply| Command::Apply(boxed, reply))?;
        take_result(&slot)
    }

    /// Saves a checked segment definition as its next version and returns the version once the
    /// save is durable. Matches the index already covers are reused; the stored history of new
    /// ones is read by the background backfill thread while ingestion goes on, and
    /// [`Engine::segment_status`] reports its progress until the segment is ready. A segment
    /// with nothing to read (traits and visits only, or an empty store) is ready on return.
    pub async fn save_segment(
        &self,
        definition: SegmentDefinition,
        definition_json: String,
        at_ms: i64,
    ) -> Result<u32, EngineError> {
        self.apply(move |live, facts| live.save_segment(definition, definition_json, at_ms, facts)).await
    }

    /// [`Engine::save_segment`] from a non-async thread, for several definitions at once: they
    /// are saved in one step, so their backfills share one pass over the log.
    pub fn save_segments_blocking(
        &self,
        definitions: Vec<(SegmentDefinition, String)>,
        at_ms: i64,
    ) -> Result<Vec<u32>, EngineError> {
        self.apply_blocking(move |live, facts| {
            definitions
                .into_iter()
                .map(|(definition, json)| live.save_segment(definition, json, at_ms, facts))
                .collect()
        })
    }

    /// Where a saved segment's memberships stand: backfilling (with progress), ready, or
    /// failed. `None` when there is no such segment.
    pub fn segment_status(&self, id: &str) -> Option<SegmentStatus> {
        let readiness = self.state.read().segment_readiness(id)?.clone();
        Some(crate::backfill::segment_status(&readiness, &self.backfills))
    }

    /// [`Engine::segment_status`] for a caller already holding the live state's read guard
    /// (taking a second one could deadlock behind a waiting writer).
    pub fn segment_status_in(&self, live: &LiveState, id: &str) -> Option<SegmentStatus> {
        Some(crate::backfill::segment_status(live.segment_readiness(id)?, &self.backfills))
    }

    /// Whether stored messages are compressed yet.
    pub fn is_compressing(&self) -> bool {
        self.codec.is_trained()
    }

    /// Trains a compression dictionary from sample messages and installs it before a bulk
    /// load, so the whole load is stored compressed (a live server trains on its own first
    /// messages instead). Does nothing when a dictionary is already in use.
    pub fn prime_dictionary_blocking(&self, samples: &[String]) -> Result<(), EngineError> {
        if self.is_compressing() || samples.len() < 100 {
            return Ok(());
        }
        let dictionary = crate::codec::train(samples).map_err(|e| EngineError::Store(StoreError::from_io(e)))?;
        self.submit_blocking(|reply| Command::Dictionary(dictionary, reply)).map(|_| ())
    }

    /// Upserts catalog products from a non-async thread.
    pub fn upsert_products_blocking(&self, products: Vec<Product>) -> Result<usize, EngineError> {
        self.submit_blocking(|reply| Command::Products(products, reply))
    }

    /// Stops taking work, lets the writer commit everything already queued, and waits for it.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.lock().take() {
            let _ = ticker.join();
        }
        // A running backfill sees `stopping` and gives up; it is redone at the next start-up,
        // which rebuilds the index from the log.
        drop(self.sender.lock().take());
        if let Some(handle) = self.writer.lock().take() {
            if handle.join().is_err() {
                tracing::error!("the writer thread panicked during shutdown");
            }
        }
        if let Some(handle) = self.backfiller.lock().take() {
            if handle.join().is_err() {
                tracing::error!("the backfill thread panicked during shutdown");
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Collects the first messages of a store without a dictionary and trains one on a separate
/// thread, so the writer never waits for training.
struct DictionaryTrainer {
    samples: Vec<String>,
    training: Option<std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>>,
    done: bool,
}

impl DictionaryTrainer {
    fn new(trained: bool) -> DictionaryTrainer {
        DictionaryTrainer { samples: Vec::new(), training: None, done: trained }
    }

    fn observe(&mut self, group: &[Command]) {
        if self.done || self.training.is_some() {
            return;
        }
        for command in group {
            if let Command::Ingest(messages, _) = command {
                for message in messages {
                    if let Some(text) = message.raw.as_text() {
                        if self.samples.len() < TRAINING_SAMPLES {
                            self.samples.push(text.to_owned());
                        }
                    }
                }
            }
        }
        if self.samples.len() >= TRAINING_SAMPLES {
            let samples = std::mem::take(&mut self.samples);
            let (sender, receiver) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new().name("regard-dictionary".into()).spawn(move || {
                let _ = sender.send(crate::codec::train(&samples));
            });
            match spawned {
                Ok(_) => self.training = Some(receiver),
                Err(error) => {
                    tracing::warn!(%error, "could not start dictionary training; messages stay uncompressed");
                    self.done = true;
                }
            }
        }
    }

    fn install(
        &mut self,
        store: &mut SqliteStore,
        codec: &CurrentCodec,
        dictionary: Vec<u8>,
    ) -> Result<u32, StoreError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let id = store.insert_dictionary(&dictionary, now_ms)?;
        codec.publish(Codec::new(id, &dictionary));
        self.done = true;
        self.samples = Vec::new();
        tracing::info!(dictionary = id, bytes = dictionary.len(), "installed a compression dictionary");
        Ok(id)
    }

    fn finish(&mut self, store: &mut SqliteStore, codec: &CurrentCodec) {
        let Some(receiver) = &self.training else {
            return;
        };
        let result = match receiver.try_recv() {
            Ok(result) => result,
            Err(std::sync::mpsc::TryRecvError::Empty) => return,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Err(std::io::Error::other("training thread died")),
        };
        self.training = None;
        self.done = true;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match result.map_err(StoreError::from_io).and_then(|dictionary| {
            let id = store.insert_dictionary(&dictionary, now_ms)?;
            Ok((id, dictionary))
        }) {
            Ok((id, dictionary)) => {
                tracing::info!(dictionary = id, bytes = dictionary.len(), "trained a compression dictionary");
                codec.publish(Codec::new(id, &dictionary));
            }
            Err(error) => {
                tracing::warn!(%error, "dictionary training failed; messages stay uncompressed")
            }
        }
    }
}

/// Boxes a typed change for the writer, with the slot its result lands in.
fn boxed_change<T: Send + 'static>(
    change: impl FnOnce(&mut LiveState, &mut FactBatch) -> T + Send + 'static,
) -> (ApplyFn, Arc<Mutex<Option<T>>>) {
    let slot = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    (Box::new(move |live, facts| *out.lock() = Some(change(live, facts))), slot)
}

fn take_result<T>(slot: &Mutex<Option<T>>) -> Result<T, EngineError> {
    slot.lock().take().ok_or_else(|| EngineError::Stopped("the change did not run".into()))
}

/// How often time-driven segment changes are applied.
const TICK: Duration = Duration::from_secs(1);

/// Sends the writer a tick every second, so memberships that depend only on time passing
/// (a view leaving its 7-day window) change without any new event.
fn run_ticker(sender: mpsc::Sender<Command>, stopping: Arc<std::sync::atomic::AtomicBool>) {
    let mut last = Instant::now();
    while !stopping.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < TICK {
            continue;
        }
        last = Instant::now();
        let (reply, _answer) = oneshot::channel();
        let tick: ApplyFn = Box::new(|live, facts| {
            live.expire_segments(now_ms(), facts);
        });
        if sender.blocking_send(Command::Apply(tick, reply)).is_err() {
            return;
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Sends a command to the writer from a non-async thread and waits for its answer.
fn submit_blocking<T>(
    queue: &Mutex<Option<mpsc::Sender<Command>>>,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
) -> Result<T, EngineError> {
    let sender = queue.lock().clone().ok_or_else(|| EngineError::Stopped("shut down".into()))?;
    let (reply, answer) = oneshot::channel();
    sender.blocking_send(make(reply)).map_err(|_| EngineError::Stopped("writer gone".into()))?;
    drop(sender);
    match answer.blocking_recv() {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(fault)) => Err(EngineError::Stopped(fault)),
        Err(_) => Err(EngineError::Stopped("writer gone".into())),
    }
}

/// Runs a change in the writer from a non-async thread that is not the engine's owner (the
/// backfill thread).
fn apply_via<T: Send + 'static>(
    queue: &Mutex<Option<mpsc::Sender<Command>>>,
    change: impl FnOnce(&mut LiveState, &mut FactBatch) -> T + Send + 'static,
) -> Result<T, EngineError> {
    let (boxed, slot) = boxed_change(change);
    submit_blocking(queue, |reply| Command::Apply(boxed, reply))?;
    take_result(&slot)
}

/// Rebuilds the segment index from the event log at start-up, with the same parallel scan as
/// a backfill, and computes every membership. The membership-change log is not rewritten:
/// nothing changed, the state was only rebuilt. A backfill cut short by a crash or a shutdown
/// is thereby redone.
fn rebuild_segment_index(state: &mut LiveState, config: &EngineConfig, decoders: &Decoders) -> Result<(), StoreError> {
    let request = state.rebuild_request();
    let catalog = if request.needs_catalog() { state.catalog_category_paths() } else { FxHashMap::default() };
    let matcher = BackfillMatcher::new(&[request], catalog);
    let never = std::sync::atomic::AtomicBool::new(false);
    let signals = crate::backfill::scan_history(
        &config.data_dir,
        decoders,
        &matcher,
        config.backfill_threads,
        &JobProgress::default(),
        &never,
    )?;
    let now = now_ms();
    state.load_signals(&signals, now);
    state.refresh_all_segments(now, &mut FactBatch::default());
    Ok(())
}

/// What the backfill thread works with.
struct BackfillContext {
    data_dir: PathBuf,
    threads: usize,
    decoders: Arc<Decoders>,
    backfills: Arc<BackfillProgress>,
    writer: WriterQueue,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// Profiles whose memberships one writer step recomputes after a backfill: small enough that
/// ingestion never waits long, since each chunk is one change among the writer's groups.
const REFRESH_CHUNK: u64 = 20_000;

/// The backfill thread: takes the requests the writer hands over after committing the saves
/// that made them, reads their history from the log (several requests that arrive together
/// share one pass), and sends what it found back to the writer to merge. Memberships are then
/// recomputed in chunks of profiles, and the segments marked ready.
fn run_backfills(requests: std::sync::mpsc::Receiver<BackfillWork>, context: BackfillContext) {
    while let Ok(first) = requests.recv() {
        // Saves arriving together (a CLI saving several files, a script) share one pass.
        std::thread::sleep(Duration::from_millis(20));
        let mut batch = vec![first];
        while let Ok(more) = requests.try_recv() {
            batch.push(more);
        }
        if context.stopping.load(Ordering::Relaxed) {
            return;
        }
        let jobs: Vec<u64> = batch.iter().map(|w| w.request.job).collect();
        let mut catalog: FxHashMap<String, Vec<String>> = FxHashMap::default();
        for work in &mut batch {
            catalog.extend(work.catalog.take().unwrap_or_default());
        }
        let requests_now: Vec<BackfillRequest> = batch.into_iter().map(|w| w.request).collect();
        let matcher = BackfillMatcher::new(&requests_now, catalog);
        let started = Instant::now();
        let pass = context.backfills.start(&jobs, matcher.upto_seq(), now_ms());
        let scan = crate::backfill::scan_history(
            &context.data_dir,
            &context.decoders,
            &matcher,
            context.threads,
            &pass,
            &context.stopping,
        );
        if context.stopping.load(Ordering::Relaxed) {
            return;
        }
        let signals = match scan {
            Ok(signals) => signals,
            Err(error) => {
                let message = format!("reading the event log failed: {error}");
                tracing::error!(?jobs, %message, "segment backfill failed");
                crate::backfill::finish(&pass, true, now_ms());
                let failed = jobs.clone();
                if apply_via(&context.writer, move |live, _| live.fail_backfill(&failed, &message, now_ms())).is_err() {
                    return;
                }
                continue;
            }
        };
        let scanned_in = started.elapsed();
        let n_signals = signals.len();
        crate::backfill::merging(&pass, now_ms());
        if finish_backfill(&context, &jobs, signals).is_err() {
            // The writer stopped: the next start-up rebuilds everything from the log.
            return;
        }
        crate::backfill::finish(&pass, false, now_ms());
        tracing::info!(
            ?jobs,
            events = matcher.upto_seq(),
            matches = n_signals,
            scan_ms = scanned_in.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "segment backfill done"
        );
    }
}

/// Merges a backfill's signals in the writer, recomputes the segments it completes for every
/// profile in chunks, and marks them ready.
fn finish_backfill(
    context: &BackfillContext,
    jobs: &[u64],
    signals: Vec<regard_core::segments::backfill::BackfillSignal>,
) -> Result<(), EngineError> {
    let merged_jobs = jobs.to_vec();
    let slots = apply_via(&context.writer, move |live, _| live.merge_backfill(&merged_jobs, &signals))?;
    if !slots.is_empty() {
        let slots = Arc::new(slots);
        let mut from = 0;
        loop {
            let (chunk, to) = (Arc::clone(&slots), from + REFRESH_CHUNK);
            let more = apply_via(&context.writer, move |live, facts| {
                live.refresh_profiles(&chunk, from, to, now_ms(), facts)
            })?;
            if !more {
                break;
            }
            from = to;
        }
    }
    apply_via(&context.writer, |live, _| live.complete_backfill(now_ms()))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_writer(
    mut store: SqliteStore,
    state: Arc<RwLock<LiveState>>,
    stats: Arc<EngineStats>,
    mut receiver: mpsc::Receiver<Command>,
    max_group: usize,
    codec: CurrentCodec,
    backfill_sender: std::sync::mpsc::Sender<BackfillWork>,
    backfills: Arc<BackfillProgress>,
) {
    let mut trainer = DictionaryTrainer::new(codec.is_trained());
    let mut facts = FactBatch::default();
    let mut group: Vec<Command> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut backfill_work: Vec<BackfillWork> = Vec::new();
    while let Some(first) = receiver.blocking_recv() {
        let mut weight = first.weight();
        group.push(first);
        // Take whatever else is already waiting: arrivals during the previous commit form the
        // next group, so group size adapts to load without any timer.
        while weight < max_group {
            match receiver.try_recv() {
                Ok(command) => {
                    weight += command.weight();
                    group.push(command);
                }
                Err(_) => break,
            }
        }
        trainer.observe(&group);
        let started = Instant::now();
        {
            let mut live = state.write();
            for command in &mut group {
                outcomes.push(apply(&mut live, command, &mut facts));
            }
            if live.has_backfill_requests() {
                for request in live.take_backfill_requests() {
                    let catalog = request.needs_catalog().then(|| live.catalog_category_paths());
                    backfill_work.push(BackfillWork { request, catalog });
                }
            }
        }
        let result = store.commit(&facts);
        stats.commit_latency.record(started.elapsed());
        match result {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.messages_committed.fetch_add(weight as u64, Ordering::Relaxed);
                for (command, outcome) in group.drain(..).zip(outcomes.drain(..)) {
                    match command {
                        Command::Dictionary(dictionary, answer) => {
                            let _ =
                                answer.send(trainer.install(&mut store, &codec, dictionary).map_err(|e| e.to_string()));
                        }
                        command => reply(command, outcome, &stats),
                    }
                }
                facts.clear();
                trainer.finish(&mut store, &codec);
                // Only now is every event up to each request's `upto_seq` readable.
                for work in backfill_work.drain(..) {
                    backfills.queue(work.request.job, work.request.upto_seq());
                    if backfill_sender.send(work).is_err() {
                        tracing::error!("the backfill thread is gone; backfills wait for the next start-up");
                    }
                }
            }
            Err(fault) => {
                let message = format!("commit failed: {fault}; restart to rebuild state from disk");
                tracing::error!(%message);
                for command in group.drain(..) {
                    fail(command, &message);
                }
                receiver.close();
                while let Ok(command) = receiver.try_recv() {
                    fail(command, &message);
                }
                return;
            }
        }
    }
}

fn apply(live: &mut LiveState, command: &mut Command, facts: &mut FactBatch) -> Outcome {
    match command {
        Command::Ingest(messages, _) => {
            let mut receipt = IngestReceipt::default();
            for message in messages.drain(..) {
                match live.apply_message(message, facts) {
                    ApplyOutcome::Stored => receipt.stored += 1,
                    ApplyOutcome::Duplicate => receipt.duplicates += 1,
                    ApplyOutcome::Reduced => receipt.reduced += 1,
                    ApplyOutcome::Erased => receipt.erased += 1,
                }
            }
            Outcome::Ingest(receipt)
        }
        Command::Consent(update, _) => Outcome::Consent(live.apply_consent(update.clone(), facts)),
        Command::Products(products, _) => {
            let n = products.len();
            live.apply_products(std::mem::take(products), facts);
            Outcome::Products(n)
        }
        Command::Dictionary(..) => Outcome::Dictionary,
        Command::Apply(change, _) => {
            let change = std::mem::replace(change, Box::new(|_, _| {}));
            change(live, facts);
            Outcome::Applied
        }
    }
}

fn reply(command: Command, outcome: Outcome, stats: &EngineStats) {
    match (command, outcome) {
        (Command::Ingest(_, reply), Outcome::Ingest(receipt)) => {
            stats.events_stored.fetch_add(u64::from(receipt.stored), Ordering::Relaxed);
            stats.events_duplicate.fetch_add(u64::from(receipt.duplicates), Ordering::Relaxed);
            stats.events_reduced.fetch_add(u64::from(receipt.reduced), Ordering::Relaxed);
            let _ = reply.send(Ok(receipt));
        }
        (Command::Consent(_, reply), Outcome::Consent(id)) => {
            let _ = reply.send(Ok(id));
        }
        (Command::Products(_, reply), Outcome::Products(n)) => {
            let _ = reply.send(Ok(n));
        }
        (Command::Dictionary(..), Outcome::Dictionary) => {}
        (Command::Apply(_, reply), Outcome::Applied) => {
            let _ = reply.send(Ok(()));
        }
        (command, _) => fail(command, "internal: outcome does not match command"),
    }
}

fn fail(command: Command, message: &str) {
    match command {
        Command::Ingest(_, reply) => {
            let _ = reply.send(Err(message.to_owned()));
        }
        Command::Consent(_, reply) => {
            let _ = reply.send(Err(message.to_owned()));
        }
        Command::Products(_, reply) => {
            let _ = reply.send(Err(message.to_owned()));
        }
        Command::Dictionary(_, reply) => {
            let _ = reply.send(Err(message.to_owned()));
        }
        Command::Apply(_, reply) => {
            let _ = reply.send(Err(message.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regard_core::consent::ConsentMode;
    use regard_core::message::{MessageContext, MessageKind};

    fn track(id: &str, anonymous_id: &str) -> Message {
        Message {
            kind: MessageKind::Track,
            message_id: id.into(),
            user_id: None,
            anonymous_id: Some(anonymous_id.into()),
            previous_id: None,
            group_id: None,
            name: Some("Product Viewed".into()),
            timestamp_ms: 1_000,
            received_at_ms: 1_000,
            traits: None,
            properties: None,
            context: MessageContext::default(),
            raw: format!(r#"{{"messageId":"{id}"}}"#).into(),
        }
    }

    fn config(dir: &Path) -> EngineConfig {
        let mut config = EngineConfig::new(dir);
        config.live.consent_mode = ConsentMode::OptOut;
        config
    }

    #[test]
    fn acknowledged_messages_survive_a_reopen_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let engine = Engine::open(config(dir.path()), &mut |_| {}).expect("open");
            let receipt =
                engine.ingest_blocking(vec![track("a", "x"), track("b", "x"), track("a", "x")]).expect("ingest");
            assert_eq!(receipt, IngestReceipt { stored: 2, duplicates: 1, reduced: 0, erased: 0 });
        }
        let engine = Engine::open(config(dir.path()), &mut |_| {}).expect("reopen");
        assert_eq!(engine.replay_stats().events, 2);
        let receipt = engine.ingest_blocking(vec![track("b", "x"), track("c", "x")]).expect("ingest");
        assert_eq!(receipt, IngestReceipt { stored: 1, duplicates: 1, reduced: 0, erased: 0 });
        assert_eq!(engine.reader().event_count().expect("count"), 3);
        assert_eq!(engine.state().find_profile("x").map(|p| p.timeline.len()), Some(3));
    }

    #[test]
    fn messages_are_compressed_once_a_dictionary_is_trained_and_read_back_intact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let texts: Vec<String> = (0..TRAINING_SAMPLES + 10)
            .map(|i| format!(r#"{{"type":"track","event":"Product Viewed","messageId":"c{i}","anonymousId":"u{}","properties":{{"sku":"sku-{:04}"}}}}"#, i % 97, i % 500))
            .collect();
        {
            let engine = Engine::open(config(dir.path()), &mut |_| {}).expect("open");
            let first: Vec<Message> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| Message { raw: t.as_str().into(), ..track(&format!("c{i}"), &format!("u{}", i % 97)) })
                .collect();
            engine.ingest_blocking(first).expect("ingest");
            // Training runs beside the writer; the next commit publishes the dictionary.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !engine.codec.is_trained() && Instant::now() < deadline {
                engine.ingest_blocking(vec![]).expect("nudge");
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(engine.codec.is_trained(), "no dictionary after 30 s");
            let text = r#"{"type":"track","event":"Product Viewed","messageId":"late","anonymousId":"u1","properties":{"sku":"sku-0042"}}"#;
            let raw = engine.compress(text);
            assert!(matches!(raw, regard_core::message::RawMessage::Compressed { .. }));
            engine.ingest_blocking(vec![Message { raw, ..track("late", "u1") }]).expect("ingest");
        }
        let engine = Engine::open(config(dir.path()), &mut |_| {}).expect("reopen");
        assert!(engine.codec.is_trained(), "the dictionary is a stored fact");
        let seqs: Vec<u64> =
            engine.state().find_profile("u1").expect("profile").timeline.iter().map(|e| e.seq).collect();
        let events = engine.reader().events_by_seq(&seqs).expect("read");
        let late = events.iter().find(|e| e.message_id == "late").expect("late event");
        assert!(late.raw.contains(r#""sku":"sku-0042""#), "{}", late.raw);
        assert!(events.iter().any(|e| e.raw.starts_with(r#"{"type":"track""#) && e.message_id != "late"));
    }

    #[test]
    fn saved_segments_are_facts_that_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = r#"{"id": "buyers", "name": "Buyers", "purpose": "email", "condition": {"purchases": {"count": {"gte": 1}}}}"#;
        {
            let engine = Engine::open(config(dir.path()), &mut |_| {}).expect("open");
            let definition = regard_core::segments::SegmentDefinition::parse_str(json).expect("valid");
            let version = engine
                .apply_blocking(move |live, facts| live.save_segment(definition, json.to_owned(), 5, facts))
                .expect("save");
            assert_eq!(version, 1);
            let definition = regard_core::segments::SegmentDefinition::parse_str(json).expect("valid");
            let version = engine
                .apply_blocking(move |live, facts| live.save_segment(definition, json.to_owned(), 6, facts))
                .expect("save");
            assert_eq!(version, 2);
        }
        let engine = Engine::open(config(dir.path()), &mut |_| {}).expect("reopen");
        let live = engine.state();
        let saved = live.segment("buyers").expect("segment replayed");
        assert_eq!((saved.version, saved.updated_ms), (2, 6));
    }

    fn order(id: &str, user: &str, at_ms: i64) -> Message {
        Message {
            name: Some("Order Completed".into()),
            timestamp_ms: at_ms,
            received_at_ms: at_ms,
            user_id: Some(user.into()),
            ..track(id, &format!("anon-{user}"))
        }
    }

    fn wait_ready(engine: &Engine, id: &str) -> SegmentStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = engine.segment_status(id).expect("segment");
            if status.state != crate::backfill::SegmentState::Backfilling || Instant::now() > deadline {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn purchases(engine: &Engine, user: &str) -> String {
        let live = engine.state();
        let id = live.find_profile(user).expect("profile").id;
        regard_core::segments::explain(&live.segment_reasons(id, "loyal", now_ms()).expect("reasons")[0])
    }

    #[test]
    fn a_backfill_runs_beside_ingestion_counts_each_event_once_and_is_redone_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = r#"{"id": "loyal", "name": "Loyal", "purpose": "email", "condition": {"purchases": {"count": {"gte": 2005}}}}"#;
        let now = now_ms();
        {
            let engine = Engine::open(config(dir.path()), &mut |_| {}).expect("open");
            let history: Vec<Message> = (0..2_000).map(|i| order(&format!("h{i}"), "x", now - 1_000_000 + i)).collect();
            engine.ingest_blocking(history).expect("ingest");
            let definition = SegmentDefinition::parse_str(json).expect("valid");
            engine.save_segments_blocking(vec![(definition, json.to_owned())], now).expect("save");
            // Ingestion goes on while the history is read; these five are counted live.
            let live: Vec<Message> = (0..5).map(|i| order(&format!("l{i}"), "x", now - 10 + i)).collect();
            assert_eq!(engine.ingest_blocking(live).expect("ingest").stored, 5);
            let status = wait_ready(&engine, "loyal");
            assert!(status.is_ready(), "{status:?}");
            assert_eq!((status.scanned, status.total), (2_000, 2_000));
            assert_eq!(purchases(&engine, "x"), "You have made 2005 purchases.");
            assert!(engine.state().is_member(engine.state().find_profile("x").expect("x").id, "loyal"));
            // Saved and shut down at once: the backfill is abandoned...
            let other = json.replace("loyal", "loyal-again");
            let definition = SegmentDefinition::parse_str(&other).expect("valid");
            engine.save_segments_blocking(vec![(definition, other)], now).expect("save");
        }
        // ...and the start-up rebuild reads the whole history for every segment.
        let engine = Engine::open(config(dir.path()), &mut |_| {}).expect("reopen");
        for id in ["loyal", "loyal-again"] {
            let status = engine.segment_status(id).expect("segment");
            assert!(status.is_ready() && status.saved_ms.is_none(), "{id}: {status:?}");
        }
        assert_eq!(purchases(&engine, "x"), "You have made 2005 purchases.");
    }

    #[test]
    fn a_second_process_cannot_open_the_same_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Engine::open(config(dir.path()), &mut |_| {}).expect("open");
        assert!(matches!(Engine::open(config(dir.path()), &mut |_| {}), Err(EngineError::Locked(_))));
    }

    #[test]
    fn reduced_messages_are_deduplicated_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(dir.path());
        cfg.live.consent_mode = ConsentMode::OptIn;
        {
            let engine = Engine::open(cfg.clone(), &mut |_| {}).expect("open");
            assert_eq!(engine.ingest_blocking(vec![track("r", "y")]).expect("ingest").reduced, 1);
        }
        let engine = Engine::open(cfg, &mut |_| {}).expect("reopen");
        assert_eq!(engine.ingest_blocking(vec![track("r", "y")]).expect("ingest").duplicates, 1);
        let counts = engine.reader().reduced_counts().expect("counts");
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].3, 1);
        assert_eq!(engine.reader().event_count().expect("count"), 0);
    }
}
