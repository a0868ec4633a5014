//! Writes the benchmarks' synthetic shop (`regard_recs::synthetic`, the default configuration:
//! 100,000 users, 20,000 items, seed 7) to stdout as `user_id,item_id,timestamp`, the input of
//! `regard eval recs`, so that the offline evaluation can run on the catalogue size the latency
//! benchmarks use:
//!
//! ```sh
//! cargo run --release -p regard-recs --example synthetic_csv > /tmp/synthetic-shop.csv
//! regard eval recs --interactions /tmp/synthetic-shop.csv
//! ```

use std::io::{BufWriter, Write};

use regard_recs::synthetic::{generate, SyntheticConfig};

fn main() -> std::io::Result<()> {
    let log = generate(&SyntheticConfig::default());
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "user_id,item_id,timestamp")?;
    for interaction in &log.interactions {
        let user = log.users.key(interaction.user.0);
        let item = log.items.key(interaction.item.0);
        writeln!(out, "{user},{item},{}", interaction.timestamp_secs)?;
    }
    out.flush()
}
