//! The `regard` binary: serve, demo, import, bench.
//!
//! Everything here is wiring: parse flags, open the engine, start the server or run a job.
//! The logic lives in the library crates.

/// mimalloc: the write path allocates and frees many small strings per message on several
/// threads; glibc malloc spent about a fifth of the import's CPU there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod bench_decide;
mod config;
mod demo;
mod eval;
mod import;
mod privacy;
mod privacy_register;
mod segments;
mod serve;
mod slots;
mod token;
mod train;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Regard: a self-hosted, first-party personalization engine.
#[derive(Debug, Parser)]
#[command(name = "regard", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text", env = "REGARD_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the HTTP server on the embedded store.
    Serve {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(flatten)]
        server: config::ServerArgs,
    },
    /// Build a realistic demo shop in a fresh data dir and serve it.
    Demo {
        #[command(flatten)]
        store: config::DemoStoreArgs,
        #[command(flatten)]
        server: config::ServerArgs,
        /// Seed of the generator: the same seed gives the same shop.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Last day of generated history (YYYY-MM-DD); default: today (UTC).
        #[arg(long)]
        end_date: Option<String>,
        /// Number of users.
        #[arg(long, default_value_t = 5_000)]
        users: usize,
        /// Delete the data dir first.
        #[arg(long)]
        fresh: bool,
        /// Build the store and exit without serving.
        #[arg(long)]
        no_serve: bool,
        /// Also write the generated shop as `catalog.jsonl` and `events.jsonl` into this
        /// directory (for `regard import`, other tools, or benchmarks).
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Import data into the embedded store (the server must not be running on it).
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Behavioral segments.
    Segments {
        #[command(subcommand)]
        what: SegmentsCommand,
    },
    /// Slots: the places where content varies, their variants and templates.
    Slots {
        #[command(subcommand)]
        what: SlotsCommand,
    },
    /// Train models from the store's own events.
    Train {
        #[command(subcommand)]
        what: TrainCommand,
    },
    /// Privacy: the record of processing, and data subject rights on the store (export
    /// everything held on a person, erase or anonymize them; the server must not be running
    /// on the same data directory).
    Privacy {
        #[command(subcommand)]
        what: PrivacyCommand,
    },
    /// Offline evaluation of models on your own data.
    Eval {
        #[command(subcommand)]
        what: EvalCommand,
    },
    /// Benchmarks and load generators.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Print a signed user token for a userId (for trying identified personalization with the
    /// write key; a real site's backend signs its own).
    Token(token::TokenArgs),
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Products from CSV (header row) or JSON lines.
    Catalog {
        /// The file (`.csv`, `.jsonl`, `.json`); `-` for standard input (JSON lines).
        file: PathBuf,
        #[command(flatten)]
        store: config::StoreArgs,
    },
    /// Segment messages, one JSON object a line.
    Events {
        /// The file; `-` for standard input.
        file: PathBuf,
        #[command(flatten)]
        store: config::StoreArgs,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SegmentsCommand {
    /// List saved segments.
    List {
        #[command(flatten)]
        store: config::StoreArgs,
    },
    /// Show one segment's definition.
    Show {
        /// The segment id.
        id: String,
        #[command(flatten)]
        store: config::StoreArgs,
    },
    /// Save a segment from a JSON file (a new version if the id exists), after the policy check,
    /// and follow its backfill over the stored history with a progress bar until it is ready.
    Create {
        /// The definition (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        store: config::StoreArgs,
        /// Return once saved, without waiting for the backfill (it then completes when the store
        /// next opens).
        #[arg(long)]
        no_wait: bool,
    },
    /// Policy-check a draft definition (a JSON file) and show its size and sample members with
    /// their reasons, evaluated over the stored history (the server must not run on the store).
    Preview {
        /// The definition (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        store: config::StoreArgs,
        /// Members to show.
        #[arg(long, default_value_t = 10)]
        sample: usize,
    },
}

#[derive(Debug, Subcommand)]
enum SlotsCommand {
    /// List slots.
    List {
        #[command(flatten)]
        store: config::StoreArgs,
    },
    /// Show one slot's definition.
    Show {
        /// The slot id.
        id: String,
        #[command(flatten)]
        store: config::StoreArgs,
    },
    /// Create a slot from a JSON file, after its targeting policy check and template lints.
    Create {
        /// The definition (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        store: config::StoreArgs,
    },
    /// Save a new version of an existing slot from a JSON file.
    Update {
        /// The definition (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        store: config::StoreArgs,
    },
    /// Delete a slot.
    Delete {
        /// The slot id.
        id: String,
        #[command(flatten)]
        store: config::StoreArgs,
    },
    /// Show what a person would see in some slots, with the level and the explanation.
    Decide(slots::DecideArgs),
}

#[derive(Debug, Subcommand)]
enum TrainCommand {
    /// The recommendation model (item-item, ALS, popularity), from product views, cart adds and
    /// orders; prints what it was trained on.
    Recs {
        #[command(flatten)]
        store: config::StoreArgs,
        /// Hide the spinner.
        #[arg(long)]
        quiet: bool,
    },
    /// The predictive models (BG/NBD, Gamma-Gamma, cadence, send time, offer sensitivity,
    /// category propensity) with their data thresholds; prints each model's fit or the reason
    /// it is not served (the server fits the same way at start-up and on a schedule).
    Predict {
        #[command(flatten)]
        store: config::StoreArgs,
        /// Also print the predictions of this person (userId, anonymousId or internal id).
        #[arg(long)]
        profile: Option<String>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PrivacyCommand {
    /// Print (or write) the access export of a person: identities, traits with their history,
    /// consents, events, segments with reasons, the decision log.
    Export(privacy::ExportArgs),
    /// Erase a person from every table and the in-memory state, with tombstones against
    /// replayed old events; `--anonymize` keeps their events as anonymous daily counts.
    Erase(privacy::EraseArgs),
    /// The record of processing (GDPR Art. 30) generated from the configuration: each purpose
    /// with its legal basis, data categories, retention and the segments, slots and models that
    /// use them, and a plain-language summary for a privacy policy.
    Register(privacy_register::RegisterArgs),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Fit BG/NBD and Gamma-Gamma on a transaction log and compare predictions with a holdout.
    Clv(eval::ClvArgs),
    /// Leave-latest-out evaluation of the recommendation strategies on an interaction log.
    Recs(eval::RecsArgs),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Load generator for ingestion over loopback HTTP.
    Ingest(bench::IngestBenchArgs),
    /// Resident memory per profile of hot state.
    Profiles(bench::ProfilesBenchArgs),
    /// Backfill of new segments over stored history, against the same segments in SQL.
    Backfill(bench::BackfillBenchArgs),
    /// Decisions per second and latency on the demo store, over loopback HTTP.
    Decide(bench_decide::DecideBenchArgs),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REGARD_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve { store, server } => serve::run(store, server),
        Command::Demo { store, server, seed, end_date, users, fresh, no_serve, export } => {
            demo::run(demo::DemoArgs { store, server, seed, end_date, users, fresh, no_serve, export })
        }
        Command::Import { what: ImportCommand::Catalog { file, store } } => import::catalog(&file, &store),
        Command::Import { what: ImportCommand::Events { file, store, quiet } } => {
            import::events(&file, &store, quiet).map(|_| ())
        }
        Command::Eval { what: EvalCommand::Clv(args) } => eval::clv(&args),
        Command::Eval { what: EvalCommand::Recs(args) } => eval::recs(&args),
        Command::Train { what: TrainCommand::Recs { store, quiet } } => train::recs(&store, quiet),
        Command::Privacy { what: PrivacyCommand::Export(args) } => privacy::export(&args),
        Command::Privacy { what: PrivacyCommand::Erase(args) } => privacy::erase(&args),
        Command::Privacy { what: PrivacyCommand::Register(args) } => privacy_register::run(&args),
        Command::Train { what: TrainCommand::Predict { store, profile, quiet } } => {
            train::predict(&store, profile.as_deref(), quiet)
        }
        Command::Segments { what: SegmentsCommand::Preview { file, store, sample } } => {
            segments::preview(&file, &store, sample)
        }
        Command::Segments { what: SegmentsCommand::List { store } } => segments::list(&store),
        Command::Segments { what: SegmentsCommand::Show { id, store } } => segments::show(&id, &store),
        Command::Segments { what: SegmentsCommand::Create { file, store, no_wait } } => {
            segments::create(&file, &store, no_wait)
        }
        Command::Slots { what: SlotsCommand::List { store } } => slots::list(&store),
        Command::Slots { what: SlotsCommand::Show { id, store } } => slots::show(&id, &store),
        Command::Slots { what: SlotsCommand::Create { file, store } } => slots::create(&file, &store, false),
        Command::Slots { what: SlotsCommand::Update { file, store } } => slots::create(&file, &store, true),
        Command::Slots { what: SlotsCommand::Delete { id, store } } => slots::delete(&id, &store),
        Command::Slots { what: SlotsCommand::Decide(args) } => slots::decide(&args),
        Command::Bench { what: BenchCommand::Ingest(args) } => bench::ingest(args),
        Command::Bench { what: BenchCommand::Profiles(args) } => bench::profiles(args),
        Command::Bench { what: BenchCommand::Backfill(args) } => bench::backfill(args),
        Command::Bench { what: BenchCommand::Decide(args) } => bench_decide::decide(args),
        Command::Token(args) => token::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
