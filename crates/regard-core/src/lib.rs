//! Regard's domain core: what a message, a profile, an identity, a consent and a product are,
//! and how a stream of messages turns into live profile state.
//!
//! This crate does no I/O: no files, no sockets, no SQL, no async, no clocks of its own (time is
//! passed in). The store replays facts into [`live::LiveState`]; the writer applies new messages
//! to it and gets back the [`facts::FactBatch`] it must make durable. Everything here is
//! single-threaded; callers put it behind whatever lock or thread they choose.

pub mod catalog;
pub mod consent;
pub mod facts;
pub mod live;
pub mod message;
pub mod profile;
pub mod segments;
pub mod symbols;
pub mod time;
