//! `regard import catalog|events`: bulk loads into the embedded store through the same writer
//! as the server, with parsing spread over the cores and several groups in flight.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use regard_core::catalog::Product;
use regard_core::message::Message;
use regard_server::wire::{parse_message, product_from_json, MessageEnvelope};
use regard_server::SystemClock;
use regard_store::{Engine, PendingIngest};

use crate::config::StoreArgs;
use crate::serve::open_engine;

/// Lines parsed together and committed as one group.
const CHUNK_LINES: usize = 8_192;
/// Groups queued at the writer at once.
const IN_FLIGHT: usize = 4;
/// Bad lines reported one by one before only counting them.
const MAX_REPORTED_ERRORS: u64 = 1_000;

/// What an import did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportSummary {
    /// Non-empty lines read.
    pub lines: u64,
    /// Messages stored whole.
    pub stored: u64,
    /// Retries of messages already stored.
    pub duplicates: u64,
    /// Messages kept only in reduced form (no analytics consent).
    pub reduced: u64,
    /// Lines refused.
    pub rejected: u64,
    /// Messages about erased people, from before their erasure: dropped.
    pub erased: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl ImportSummary {
    fn print(&self) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "imported {} lines in {:.2} s ({:.0} lines/s): {} stored, {} duplicates, {} reduced (no analytics consent), {} rejected",
            self.lines,
            secs,
            self.lines as f64 / secs,
            self.stored,
            self.duplicates,
            self.reduced,
            self.rejected
        );
        if self.erased > 0 {
            println!("{} messages were about people erased since, and were dropped", self.erased);
        }
    }
}

fn open_input(file: &Path) -> anyhow::Result<(Box<dyn Read + Send>, Option<u64>)> {
    if file.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let handle = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = handle.metadata().ok().map(|m| m.len());
    Ok((Box::new(handle), size))
}

fn progress_bar(total_bytes: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = match total_bytes {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// `regard import events FILE`.
pub fn events(file: &Path, store: &StoreArgs, quiet: bool) -> anyhow::Result<ImportSummary> {
    let config = store.common.engine_config(&store.data)?;
    let engine = open_engine(config)?;
    if file.as_os_str() != "-" && !engine.is_compressing() {
        // Train the compression dictionary on the file's first lines, so all of it is stored
        // compressed.
        let (input, _) = open_input(file)?;
        let samples: Vec<String> = BufReader::new(input)
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.trim().is_empty())
            .take(regard_store::codec::TRAINING_SAMPLES)
            .collect();
        engine.prime_dictionary_blocking(&samples).context("training the compression dictionary")?;
    }
    let (input, size) = open_input(file)?;
    let bar = progress_bar(size, quiet);
    let summary = ingest_lines(&engine, input, &bar)?;
    bar.finish_and_clear();
    engine.shutdown();
    summary.print();
    let stats = engine.stats();
    let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed).max(1);
    println!(
        "writer: {} group commits of {:.0} messages on average, busy {:.2} s ({:.0}% of the import)",
        commits,
        stats.messages_committed.load(std::sync::atomic::Ordering::Relaxed) as f64 / commits as f64,
        stats.commit_latency.total().as_secs_f64(),
        100.0 * stats.commit_latency.total().as_secs_f64() / summary.elapsed.as_secs_f64().max(1e-9)
    );
    Ok(summary)
}

type Chunk = (usize, u64, Vec<(u64, String)>);
/// Rejected lines of a chunk: (line number, reason).
type LineErrors = Vec<(u64, String)>;
type Parsed = (usize, Vec<Message>, LineErrors);

/// Imports Segment messages, one JSON object a line, from `input` into `engine`.
pub fn ingest_lines(engine: &Engine, input: Box<dyn Read + Send>, bar: &ProgressBar) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(IN_FLIGHT * 2);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let (parsed_tx, parsed_rx) = mpsc::sync_channel::<Parsed>(IN_FLIGHT * 2);
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8);
    std::thread::scope(|scope| -> anyhow::Result<ImportSummary> {
        let reader = {
            let bytes_read = Arc::clone(&bytes_read);
            scope.spawn(move || -> anyhow::Result<()> {
                let mut lines = BufReader::with_capacity(1 << 20, input);
                let mut chunk = Vec::with_capacity(CHUNK_LINES);
                let mut index = 0;
                let mut line_no = 0u64;
                loop {
                    let mut line = String::new();
                    let n = lines.read_line(&mut line).context("reading input")?;
                    if n == 0 {
                        break;
                    }
                    line_no += 1;
                    bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                    if line.trim().is_empty() {
                        continue;
                    }
                    chunk.push((line_no, line));
                    if chunk.len() == CHUNK_LINES {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_LINES));
                        if chunk_tx.send((index, line_no, full)).is_err() {
                            return Ok(());
                        }
                        index += 1;
                    }
                }
                if !chunk.is_empty() {
                    let _ = chunk_tx.send((index, line_no, chunk));
                }
                Ok(())
            })
        };
        for _ in 0..workers {
            let chunk_rx = Arc::clone(&chunk_rx);
            let parsed_tx = parsed_tx.clone();
            scope.spawn(move || {
                let clock = SystemClock;
                let encode = |text: &str| engine.compress(text);
                loop {
                    let next = chunk_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok((index, _, lines))) = next else {
                        return;
                    };
                    let received_at_ms = regard_core::time::Clock::now_ms(&clock);
                    let mut messages = Vec::with_capacity(lines.len());
                    let mut errors = Vec::new();
                    for (line_no, line) in lines {
                        let envelope = MessageEnvelope {
                            kind: None,
                            received_at_ms,
                            batch_sent_at_ms: None,
                            batch_context: None,
                            encode: Some(&encode),
                        };
                        match parse_message(line.trim_end(), envelope) {
                            Ok(parsed) => messages.push(parsed.message),
                            Err(e) => {
                                let field = e.field.map(|f| format!("{f}: ")).unwrap_or_default();
                                errors.push((line_no, format!("{field}{}", e.message)));
                            }
                        }
                    }
                    if parsed_tx.send((index, messages, errors)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(parsed_tx);
        let mut summary = ImportSummary::default();
        let mut waiting: BTreeMap<usize, (Vec<Message>, LineErrors)> = BTreeMap::new();
        let mut next_index = 0;
        let mut in_flight: VecDeque<PendingIngest> = VecDeque::new();
        let settle = |pending: PendingIngest, summary: &mut ImportSummary| -> anyhow::Result<()> {
            let receipt = pending.wait().context("the writer failed")?;
            summary.stored += u64::from(receipt.stored);
            summary.duplicates += u64::from(receipt.duplicates);
            summary.reduced += u64::from(receipt.reduced);
            summary.erased += u64::from(receipt.erased);
            Ok(())
        };
        for (index, messages, errors) in parsed_rx {
            waiting.insert(index, (messages, errors));
            // Submit in file order, so identity links and retries resolve as they were sent.
            while let Some((messages, errors)) = waiting.remove(&next_index) {
                next_index += 1;
                summary.lines += (messages.len() + errors.len()) as u64;
                for (line_no, reason) in errors {
                    summary.rejected += 1;
                    if summary.rejected <= MAX_REPORTED_ERRORS {
                        bar.suspend(|| eprintln!("line {line_no}: {reason}"));
                    }
                }
                if in_flight.len() >= IN_FLIGHT {
                    if let Some(oldest) = in_flight.pop_front() {
                        settle(oldest, &mut summary)?;
                    }
                }
                if !messages.is_empty() {
                    in_flight.push_back(engine.ingest_pipelined(messages).context("the writer stopped")?);
                }
                bar.set_position(bytes_read.load(Ordering::Relaxed));
                bar.set_message(format!("{} lines", summary.lines));
            }
        }
        for pending in in_flight {
            settle(pending, &mut summary)?;
        }
        reader.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
        if summary.rejected > MAX_REPORTED_ERRORS {
            eprintln!("... and {} more rejected lines", summary.rejected - MAX_REPORTED_ERRORS);
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    })
}

/// Reads products from CSV (a header row; columns as `POST /v1/catalog` fields) or JSON
/// lines. Bad rows are reported with their line number and skipped.
pub fn read_catalog(file: &Path) -> anyhow::Result<(Vec<Product>, Vec<String>)> {
    let (input, _) = open_input(file)?;
    let is_csv = file.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut products = Vec::new();
    let mut errors = Vec::new();
    if is_csv {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
        let headers = reader.headers().context("reading the CSV header")?.clone();
        for record in reader.records() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    errors.push(format!("line {line}: {e}"));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            let object: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .zip(record.iter())
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.trim().to_owned(), serde_json::Value::String(v.trim().to_owned())))
                .collect();
            match product_from_json(object) {
                Ok(product) => products.push(product),
                Err(e) => errors.push(format!("line {line}: {}: {}", e.field.unwrap_or_default(), e.message)),
            }
        }
    } else {
        for (i, line) in BufReader::new(input).lines().enumerate() {
            let line = line.context("reading input")?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
                .map_err(|e| format!("line {}: {e}", i + 1))
                .and_then(|object| {
                    product_from_json(object)
                        .map_err(|e| format!("line {}: {}: {}", i + 1, e.field.unwrap_or_default(), e.message))
                });
            match parsed {
                Ok(product) => products.push(product),
                Err(e) => errors.push(e),
            }
        }
    }
    Ok((products, errors))
}

/// `regard import catalog FILE`.
pub fn catalog(file: &Path, store: &StoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (products, errors) = read_catalog(file)?;
    for error in &errors {
        eprintln!("{error}");
    }
    let config = store.common.engine_config(&store.data)?;
    let engine = open_engine(config)?;
    let n = products.len();
    for chunk in products.chunks(5_000) {
        engine.upsert_products_blocking(chunk.to_vec()).context("the writer failed")?;
    }
    engine.shutdown();
    println!("imported {n} products in {:.2} s; {} rows rejected", started.elapsed().as_secs_f64(), errors.len());
    Ok(())
}
