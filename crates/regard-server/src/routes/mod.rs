//! Route handlers, one module per resource.

pub mod assets;
pub mod catalog;
pub mod consent;
pub mod decide;
pub mod ingest;
pub mod ops;
pub mod predict;
pub mod privacy;
pub mod privacy_register;
pub mod profiles;
pub mod recs;
pub mod segments;
pub mod slots;
pub mod user_tokens;
