//! `regard privacy register`: the record of processing (GDPR Art. 30) of a data directory,
//! the same document `GET /v1/privacy/register` serves, as JSON or as text.
//!
//! The store is opened offline (the server must not be running on it), so the models are
//! listed without their state: only the running server knows what it has fitted.

use clap::ValueEnum;
use regard_server::register::{from_live, known_models, render_text};

use crate::config::StoreArgs;
use crate::serve::{open_content, open_engine};

/// How to print the register.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RegisterFormat {
    /// The JSON document `GET /v1/privacy/register` answers.
    Json,
    /// Headings and lines for a terminal, ending with the summary for a privacy policy.
    Text,
}

/// `regard privacy register`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: RegisterFormat,
}

/// Prints the register of `args.store`.
pub fn run(args: &RegisterArgs) -> anyhow::Result<()> {
    let engine = open_engine(args.store.common.engine_config(&args.store.data)?)?;
    let content = open_content(&engine.config().data_dir, engine.config().live.policy.clone())?;
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let register = {
        let snapshot = content.snapshot();
        let live = engine.state();
        let models = known_models()
            .into_iter()
            .map(|mut model| {
                model.state_note = Some(
                    "offline: only the running server knows what it has trained; see GET /v1/privacy/register"
                        .to_owned(),
                );
                model
            })
            .collect();
        from_live(&live, &snapshot, models, now_ms)
    };
    engine.shutdown();
    content.store.shutdown();
    match args.format {
        RegisterFormat::Json => println!("{}", serde_json::to_string_pretty(&register)?),
        RegisterFormat::Text => print!("{}", render_text(&register)),
    }
    Ok(())
}
