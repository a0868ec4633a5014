//! Regard's dynamic content (levels 1 and 4 of personalization): slots whose variants are chosen
//! per person, the templates that render them, and the explanation of every choice.
//!
//! Like `regard-core`, this crate does no I/O and keeps no clock: the server hands it a read-only
//! view of a profile and the request's context, and gets back a decision it can log and show.
//! Everything a decision needs (slots, compiled templates, exchange rates, stores) lives in a
//! [`decide::ContentSnapshot`] that the server swaps atomically when definitions change.

pub mod decide;
pub mod geo;
pub mod money;
pub mod slot;
pub mod targeting;
pub mod template;
