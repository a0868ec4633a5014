//! Backfills: reading the stored history of a new or changed segment's event matches in the
//! background, while the writer keeps indexing new events.
//!
//! No event is missed or counted twice because of one rule: when a match is added, the log's
//! last seq is recorded with it (`upto_seq`). The writer indexes every event stored after that
//! as it arrives; the backfill reads only events up to it, then hands the writer what it found
//! to merge ([`crate::live::LiveState::merge_backfill`]). Until then the segment answers from
//! the live part and says it is not ready ([`Readiness`]).

use rustc_hash::FxHashMap;

use super::definition::EventMatch;
use super::matcher::{CategoryLookup, NameMatches};
use crate::facts::ProfileId;

/// One event match whose history a backfill reads.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillMatch {
    /// Its number in the segment index.
    pub number: u32,
    /// What it matches.
    pub event: EventMatch,
    /// The last event seq to read: later events are indexed live.
    pub upto_seq: u64,
}

/// Work for the background: the history of these matches, for the segments waiting on `job`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillRequest {
    /// The job's number (from 1), which the waiting segments' [`Readiness`] name.
    pub job: u64,
    /// The matches to read.
    pub matches: Vec<BackfillMatch>,
}

impl BackfillRequest {
    /// The last event seq any of its matches reads.
    pub fn upto_seq(&self) -> u64 {
        self.matches.iter().map(|m| m.upto_seq).max().unwrap_or(0)
    }

    /// Whether a match tests catalog categories (the scan then needs a copy of the catalog).
    pub fn needs_catalog(&self) -> bool {
        self.matches.iter().any(|m| m.event.category.is_some())
    }
}

/// One matching stored event found by a backfill: the profile it was filed under (possibly
/// merged away since), the match number and the event time.
pub type BackfillSignal = (ProfileId, u32, i64);

/// Several requests prepared for one pass over the event log.
#[derive(Debug, Default)]
pub struct BackfillMatcher {
    by_name: FxHashMap<String, NameMatches>,
    upto: FxHashMap<u32, u64>,
    catalog: FxHashMap<String, Vec<String>>,
}

impl BackfillMatcher {
    /// Prepares the matches of `requests`; `catalog` maps product ids to category paths (only
    /// needed when a match names a category).
    pub fn new(requests: &[BackfillRequest], catalog: FxHashMap<String, Vec<String>>) -> BackfillMatcher {
        let mut matcher = BackfillMatcher { catalog, ..BackfillMatcher::default() };
        for request in requests {
            for m in &request.matches {
                let upto = matcher.upto.entry(m.number).or_insert(0);
                if *upto == 0 {
                    matcher.by_name.entry(m.event.name.clone()).or_default().add(m.number, m.event.clone());
                }
                *upto = (*upto).max(m.upto_seq);
            }
        }
        matcher
    }

    /// The event names to read from the log.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// The last seq to read.
    pub fn upto_seq(&self) -> u64 {
        self.upto.values().copied().max().unwrap_or(0)
    }

    /// Whether matching an event of this name needs its message (its properties); when not,
    /// the scan need not even decompress it.
    pub fn needs_message(&self, name: &str) -> bool {
        self.by_name.get(name).is_some_and(NameMatches::reads_properties)
    }

    /// Appends to `out` the matches a stored event satisfies. `message_json` is read only when
    /// [`BackfillMatcher::needs_message`] says so (pass `""` otherwise).
    pub fn match_stored(&self, seq: u64, name: &str, message_json: &str, out: &mut Vec<u32>) {
        let Some(matches) = self.by_name.get(name) else { return };
        let properties = matches.read_message_properties(message_json);
        let before = out.len();
        matches.matched(&properties, &self.catalog as &dyn CategoryLookup, out);
        // A match added later than this event's seq reads it live instead.
        let mut i = before;
        while i < out.len() {
            if self.upto.get(&out[i]).is_some_and(|upto| seq <= *upto) {
                i += 1;
            } else {
                out.swap_remove(i);
            }
        }
    }
}

/// How far a saved segment's memberships reflect the stored history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Where it stands.
    pub state: ReadinessState,
    /// When this version was saved (Unix ms); `None` for a segment rebuilt at start-up.
    pub saved_ms: Option<i64>,
    /// The backfill jobs reading this version's history (already finished ones included).
    pub jobs: Vec<u64>,
}

/// The state of a segment's memberships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadinessState {
    /// Backfilling: memberships count only events stored since the save until the jobs finish.
    Backfilling,
    /// Memberships reflect the whole stored history since `ready_ms`.
    Ready {
        /// When they did (Unix ms).
        ready_ms: i64,
    },
    /// A backfill failed; memberships count only events stored since the save. Saving the
    /// segment again retries.
    Failed {
        /// When it failed (Unix ms).
        failed_ms: i64,
        /// Why.
        message: String,
    },
}

impl Readiness {
    /// Whether memberships reflect the whole stored history.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, ReadinessState::Ready { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(job: u64, number: u32, name: &str, upto_seq: u64) -> BackfillRequest {
        BackfillRequest {
            job,
            matches: vec![BackfillMatch {
                number,
                event: EventMatch { name: name.into(), filters: Vec::new(), category: None },
                upto_seq,
            }],
        }
    }

    #[test]
    fn each_match_reads_only_events_up_to_its_own_seq() {
        let matcher = BackfillMatcher::new(
            &[request(1, 0, "Order Completed", 10), request(2, 1, "Product Added", 20)],
            Default::default(),
        );
        assert_eq!(matcher.names(), ["Order Completed", "Product Added"]);
        assert_eq!(matcher.upto_seq(), 20);
        assert!(!matcher.needs_message("Order Completed"), "a bare name needs no decompression");
        let mut out = Vec::new();
        matcher.match_stored(10, "Order Completed", "", &mut out);
        matcher.match_stored(11, "Order Completed", "", &mut out);
        matcher.match_stored(15, "Product Added", "", &mut out);
        matcher.match_stored(15, "Page Viewed", "", &mut out);
        assert_eq!(out, [0, 1], "seq 11 was indexed live for match 0");
    }
}
