//! Route handlers, one module per resource.

pub mod catalog;
pub mod consent;
pub mod ingest;
pub mod ops;
pub mod profiles;
pub mod segments;
