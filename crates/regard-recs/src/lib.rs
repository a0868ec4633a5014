//! Regard's recommendation core: what to show a person, or next to an item, and why.
//!
//! This crate owns the models and nothing else: no sockets, no clock (time is passed in), no
//! store. It parses only the text or reader it is handed (interaction and catalogue CSVs for
//! offline evaluation). Training uses scoped threads that end before it returns; a trained
//! [`RecsModel`] is immutable, `Send + Sync`, and answers queries without locks (each query
//! allocates only its own scratch), so serving can hold it in an `ArcSwap` and swap a retrained
//! one in.
//!
//! * [`interactions`]: users, items, interactions (view, cart, purchase) and their CSV readers.
//! * [`itemknn`]: item-item co-occurrence (cosine, Jaccard, lift; decay; minimum support; top-k).
//! * [`als`]: implicit-feedback ALS (Hu, Koren & Volinsky 2008) with a conjugate-gradient solver;
//!   queries find their best items with an 8-bit first pass and exact rescoring (`quantized`).
//! * [`content`]: content similarity for items nobody has touched yet.
//! * [`popularity`]: global, per category, per country, trending.
//! * [`rules`]: the filter stage (just bought, durable suppression, stock, cart, exclusions,
//!   sensitive categories in shared contexts, business filters, diversity).
//! * [`model`]: the snapshot, the fallback chain and the explanations.
//! * [`eval`]: the `regard eval recs` protocol and its metrics.
//! * [`synthetic`]: a deterministic shop-like interaction generator for benchmarks and tests.

pub mod als;
pub mod catalog;
pub mod content;
mod error;
pub mod eval;
pub mod interactions;
pub mod itemknn;
mod matrix;
pub mod model;
mod parallel;
pub mod popularity;
mod quantized;
pub mod rules;
pub mod synthetic;
mod topk;

pub use als::AlsSearch;
pub use error::RecsError;
pub use interactions::{CountryCode, InteractionKind, InteractionLog, ItemIdx, ItemMeta, UserIdx};
pub use model::{HistoryEvent, Reason, Recommendation, RecsConfig, RecsModel, RecsRequest, Strategy};
pub use rules::{BusinessFilter, RuleInputs, RulesConfig};

#[cfg(test)]
mod snapshot_is_shareable {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_model_can_be_shared_across_threads() {
        assert_send_sync::<crate::RecsModel>();
    }
}
