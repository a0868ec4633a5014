//! `regard token --user ID`: signs a user token with the instance's secret, for trying
//! identified personalization (`/v1/decide`, `/why`, `/v1/recommendations`) with the write key
//! from a shell or the demo. In production the operator's backend signs tokens itself (see the
//! README) or asks `POST /v1/user-tokens`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use regard_server::routes::user_tokens::MAX_TTL_SECS;

/// Flags of `regard token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The userId the token speaks for.
    #[arg(long)]
    pub user: String,
    /// How long the token is valid, in seconds (at most 30 days).
    #[arg(long, default_value_t = regard_server::routes::user_tokens::DEFAULT_TTL_SECS)]
    pub ttl_seconds: u64,
    /// Data directory whose `keys.json` holds the secret (or set REGARD_USER_TOKEN_SECRET).
    #[arg(long = "data", default_value = "./regard-data", env = "REGARD_DATA")]
    pub data: PathBuf,
}

/// `regard token`: prints the token alone on standard output, so `$(regard token ...)` works.
pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    if args.user.is_empty() || args.user.len() > 256 {
        bail!("--user must be 1 to 256 characters");
    }
    if !(1..=MAX_TTL_SECS).contains(&args.ttl_seconds) {
        bail!("--ttl-seconds must be 1 to {MAX_TTL_SECS} (30 days)");
    }
    let secret = crate::config::user_token_secret(&args.data)?;
    let now_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    println!("{}", regard_server::user_token::sign(&secret, &args.user, now_secs + args.ttl_seconds));
    Ok(())
}
