//! A profile's live state: identities, traits, consent, its event timeline and the counters
//! and sessions derived from it.

use crate::consent::ConsentState;
use crate::facts::ProfileId;
use crate::message::{IdentityKind, MessageKind};
use crate::symbols::{Symbol, SymbolTable};
use crate::time::MINUTE_MS;

/// A visit ends after this much inactivity (the web-analytics convention).
pub const SESSION_GAP_MS: i64 = 30 * MINUTE_MS;

/// One stored event in a profile's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimelineEntry {
    /// Corrected event time (Unix ms).
    pub timestamp_ms: i64,
    /// The event's position in the global log, to fetch it from the store.
    pub seq: u64,
}

/// A trait's current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitValue {
    /// Trait name, interned.
    pub key: Symbol,
    /// Value as compact JSON text (parsed only when read).
    pub value_json: Box<str>,
    /// When it was said (Unix ms); later statements win.
    pub updated_ms: i64,
}

/// Whether this is someone's first visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitorKind {
    /// One session so far.
    New,
    /// Sessions before the current one.
    Returning,
}

impl VisitorKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            VisitorKind::New => "new",
            VisitorKind::Returning => "returning",
        }
    }
}

/// Everything Regard knows about one person, in memory.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// The store's id.
    pub id: ProfileId,
    /// Ids the person is known by.
    pub identities: Vec<(IdentityKind, Box<str>)>,
    /// Current traits (last write wins per trait, by the time it was said).
    pub traits: Vec<TraitValue>,
    /// Consent per purpose.
    pub consent: ConsentState,
    /// Stored events, ordered by (time, seq).
    pub timeline: Vec<TimelineEntry>,
    /// Events per Segment call kind.
    pub kind_counts: [u32; 6],
    /// Events per track/page/screen name.
    pub name_counts: Vec<(Symbol, u32)>,
    /// Number of sessions (visits) in the timeline.
    pub sessions: u32,
    /// The latest `context.locale` seen.
    pub last_locale: Option<Symbol>,
    /// The latest `context.timezone` seen.
    pub last_timezone: Option<Symbol>,
    /// The latest product views, cart adds and purchases, oldest first, at most
    /// [`PRODUCT_EVENTS_KEPT`]: "recently viewed" content and the history recommendations read
    /// (purchases feed their "just bought" rules) without a trip to the store.
    pub product_events: Vec<ProductEvent>,
}

/// How many product events a profile keeps in memory (bounded: about 40 bytes each).
pub const PRODUCT_EVENTS_KEPT: usize = 24;
/// How many distinct products "recently viewed" lists at most.
pub const RECENT_PRODUCTS: usize = 8;

/// What a person did with a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductAction {
    /// Viewed (or clicked) it.
    Viewed,
    /// Added it to a cart.
    Added,
    /// Bought it.
    Purchased,
}

/// One product event kept on the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductEvent {
    /// Event time (Unix ms).
    pub at_ms: i64,
    /// What happened.
    pub action: ProductAction,
    /// The product id.
    pub product: Box<str>,
}

impl Profile {
    /// A profile with no data yet.
    pub fn new(id: ProfileId) -> Profile {
        Profile { id, ..Profile::default() }
    }

    /// The first userId the person is known by.
    pub fn user_id(&self) -> Option<&str> {
        self.identities.iter().find(|(kind, _)| *kind == IdentityKind::UserId).map(|(_, v)| &**v)
    }

    /// Adds an id if the profile does not have it yet.
    pub fn add_identity(&mut self, kind: IdentityKind, value: &str) {
        if !self.identities.iter().any(|(k, v)| *k == kind && &**v == value) {
            self.identities.push((kind, value.into()));
        }
    }

    /// Records an event: timeline, counters, sessions. Events may arrive out of time order
    /// (offline devices); the session count stays exact because it is maintained on the sorted
    /// timeline.
    pub fn record_event(&mut self, entry: TimelineEntry, kind: MessageKind, name: Option<Symbol>) {
        let position = match self.timeline.last() {
            Some(last) if *last <= entry => self.timeline.len(),
            _ => self.timeline.partition_point(|e| *e < entry),
        };
        let previous = position.checked_sub(1).map(|i| self.timeline[i].timestamp_ms);
        let next = self.timeline.get(position).map(|e| e.timestamp_ms);
        self.timeline.insert(position, entry);
        self.sessions = if self.timeline.len() == 1 {
            1
        } else {
            (i64::from(self.sessions) + session_delta(previous, entry.timestamp_ms, next)).max(1) as u32
        };
        self.kind_counts[kind.index()] = self.kind_counts[kind.index()].saturating_add(1);
        if let Some(name) = name {
            match self.name_counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count = count.saturating_add(1),
                None => self.name_counts.push((name, 1)),
            }
        }
    }

    /// Remembers a product event in time order, forgetting the oldest beyond
    /// [`PRODUCT_EVENTS_KEPT`] (an event older than all kept ones is then dropped).
    pub fn note_product_event(&mut self, at_ms: i64, action: ProductAction, product_id: &str) {
        let position = self.product_events.partition_point(|e| e.at_ms <= at_ms);
        if self.product_events.len() == PRODUCT_EVENTS_KEPT {
            if position == 0 {
                return;
            }
            self.product_events.remove(0);
            self.product_events.insert(position - 1, ProductEvent { at_ms, action, product: product_id.into() });
        } else {
            self.product_events.insert(position, ProductEvent { at_ms, action, product: product_id.into() });
        }
    }

    /// Distinct products viewed most recently, newest first, at most [`RECENT_PRODUCTS`].
    pub fn recently_viewed(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for event in self.product_events.iter().rev().filter(|e| e.action == ProductAction::Viewed) {
            if !out.contains(&&*event.product) {
                out.push(&event.product);
                if out.len() == RECENT_PRODUCTS {
                    break;
                }
            }
        }
        out
    }

    /// Sets a trait if `at_ms` is not older than its current value. Returns whether the value
    /// changed (so that only changes become facts).
    pub fn set_trait(&mut self, key: Symbol, value_json: &str, at_ms: i64) -> bool {
        match self.traits.iter_mut().find(|t| t.key == key) {
            Some(current) if at_ms < current.updated_ms => false,
            Some(current) => {
                current.updated_ms = at_ms;
                if &*current.value_json == value_json {
                    false
                } else {
                    current.value_json = value_json.into();
                    true
                }
            }
            None => {
                self.traits.push(TraitValue { key, value_json: value_json.into(), updated_ms: at_ms });
                true
            }
        }
    }

    /// The current value of a trait, as JSON text.
    pub fn trait_json(&self, key: Symbol) -> Option<&str> {
        self.traits.iter().find(|t| t.key == key).map(|t| &*t.value_json)
    }

    /// How many events of `name` the profile has.
    pub fn name_count(&self, name: Symbol) -> u32 {
        self.name_counts.iter().find(|(n, _)| *n == name).map(|(_, c)| *c).unwrap_or(0)
    }

    /// Time of the first stored event.
    pub fn first_seen_ms(&self) -> Option<i64> {
        self.timeline.first().map(|e| e.timestamp_ms)
    }

    /// Time of the latest stored event.
    pub fn last_seen_ms(&self) -> Option<i64> {
        self.timeline.last().map(|e| e.timestamp_ms)
    }

    /// New or returning, by the number of visits.
    pub fn visitor_kind(&self) -> VisitorKind {
        if self.sessions > 1 {
            VisitorKind::Returning
        } else {
            VisitorKind::New
        }
    }

    /// Absorbs a profile found to be the same person. Traits and consent keep the newer
    /// statement; timelines merge and sessions are recounted over the merged timeline.
    pub fn absorb(&mut self, other: Profile) {
        for (kind, value) in &other.identities {
            self.add_identity(*kind, value);
        }
        for t in &other.traits {
            self.set_trait(t.key, &t.value_json, t.updated_ms);
        }
        self.consent.merge_from(&other.consent);
        let mut timeline = std::mem::take(&mut self.timeline);
        timeline.extend_from_slice(&other.timeline);
        timeline.sort_unstable();
        self.sessions = count_sessions(&timeline);
        self.timeline = timeline;
        for (count, theirs) in self.kind_counts.iter_mut().zip(other.kind_counts) {
            *count = count.saturating_add(theirs);
        }
        for (name, theirs) in other.name_counts {
            match self.name_counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count = count.saturating_add(theirs),
                None => self.name_counts.push((name, theirs)),
            }
        }
        if self.last_locale.is_none() {
            self.last_locale = other.last_locale;
        }
        if self.last_timezone.is_none() {
            self.last_timezone = other.last_timezone;
        }
        for event in other.product_events {
            self.note_product_event(event.at_ms, event.action, &event.product);
        }
    }

    /// Heap and inline bytes this profile holds, for the memory budget (an estimate that
    /// counts capacities, not allocator overhead).
    pub fn approx_bytes(&self, symbols: &SymbolTable) -> usize {
        let _ = symbols;
        std::mem::size_of::<Profile>()
            + self.identities.capacity() * std::mem::size_of::<(IdentityKind, Box<str>)>()
            + self.identities.iter().map(|(_, v)| v.len()).sum::<usize>()
            + self.traits.capacity() * std::mem::size_of::<TraitValue>()
            + self.traits.iter().map(|t| t.value_json.len()).sum::<usize>()
            + self.consent_bytes()
            + self.timeline.capacity() * std::mem::size_of::<TimelineEntry>()
            + self.name_counts.capacity() * std::mem::size_of::<(Symbol, u32)>()
            + self.product_events.capacity() * std::mem::size_of::<ProductEvent>()
            + self.product_events.iter().map(|e| e.product.len()).sum::<usize>()
    }

    fn consent_bytes(&self) -> usize {
        crate::consent::ConsentPurpose::ALL
            .iter()
            .filter_map(|p| self.consent.decision(*p))
            .map(|d| d.policy_version.as_ref().map_or(0, String::len))
            .sum()
    }
}

/// The change in the number of visits when an event at `t` lands between the events at
/// `previous` and `next`: the gap it splits stops counting, the two new gaps start to.
fn session_delta(previous: Option<i64>, t: i64, next: Option<i64>) -> i64 {
    let boundary = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => i64::from(b - a > SESSION_GAP_MS),
        _ => 0,
    };
    boundary(previous, Some(t)) + boundary(Some(t), next) - boundary(previous, next)
}

/// Counts visits in a sorted timeline.
pub fn count_sessions(timeline: &[TimelineEntry]) -> u32 {
    if timeline.is_empty() {
        return 0;
    }
    1 + timeline.windows(2).filter(|w| w[1].timestamp_ms - w[0].timestamp_ms > SESSION_GAP_MS).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(minutes: i64, seq: u64) -> TimelineEntry {
        TimelineEntry { timestamp_ms: minutes * MINUTE_MS, seq }
    }

    #[test]
    fn sessions_stay_exact_whatever_the_arrival_order() {
        let times = [0, 10, 100, 45, 200, 230, 160, 75, 400, 31];
        let mut profile = Profile::new(1);
        for (seq, minutes) in times.iter().enumerate() {
            profile.record_event(entry(*minutes, seq as u64), MessageKind::Track, None);
            assert_eq!(profile.sessions, count_sessions(&profile.timeline), "after {minutes}");
        }
        assert_eq!(profile.kind_counts[MessageKind::Track.index()], times.len() as u32);
    }

    #[test]
    fn an_event_between_two_visits_bridges_them() {
        let mut profile = Profile::new(1);
        profile.record_event(entry(0, 1), MessageKind::Page, None);
        profile.record_event(entry(50, 2), MessageKind::Page, None);
        assert_eq!(profile.sessions, 2);
        assert_eq!(profile.visitor_kind(), VisitorKind::Returning);
        profile.record_event(entry(25, 3), MessageKind::Page, None);
        assert_eq!(profile.sessions, 1);
        assert_eq!(profile.visitor_kind(), VisitorKind::New);
    }

    #[test]
    fn later_trait_statements_win() {
        let mut profile = Profile::new(1);
        let city = Symbol(0);
        assert!(profile.set_trait(city, "\"Berlin\"", 10));
        assert!(!profile.set_trait(city, "\"Paris\"", 5));
        assert!(!profile.set_trait(city, "\"Berlin\"", 20));
        assert!(profile.set_trait(city, "\"Hamburg\"", 30));
        assert_eq!(profile.trait_json(city), Some("\"Hamburg\""));
    }

    #[test]
    fn absorbing_merges_timelines_and_recounts_sessions() {
        let mut a = Profile::new(1);
        a.record_event(entry(0, 1), MessageKind::Page, None);
        a.record_event(entry(100, 3), MessageKind::Page, None);
        let mut b = Profile::new(2);
        b.record_event(entry(50, 2), MessageKind::Track, None);
        a.absorb(b);
        assert_eq!(a.timeline.len(), 3);
        assert_eq!(a.sessions, 3);
        assert_eq!(a.kind_counts[MessageKind::Track.index()], 1);
    }
}
