//! Facts: the records that must reach disk before a write is acknowledged.
//!
//! Applying messages to [`crate::live::LiveState`] yields a [`FactBatch`]; the writer commits
//! it in one transaction. Replaying the stored facts in order rebuilds the live state, so every
//! piece of derived state (counters, sessions, memberships) can be thrown away and recomputed.

use crate::catalog::Product;
use crate::consent::{ConsentPurpose, ConsentSource};
use crate::message::{IdentityKind, MessageKind, RawMessage};

/// The store's integer id of a profile. Ids of merged profiles stay valid and resolve to the
/// surviving profile.
pub type ProfileId = u64;

/// A stored event: the raw message and the columns needed to rebuild state without parsing it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFact {
    /// Position in the global event log; strictly increasing.
    pub seq: u64,
    /// The profile the event was filed under when it arrived.
    pub profile_id: ProfileId,
    /// The Segment call.
    pub kind: MessageKind,
    /// Track event name or page/screen name.
    pub name: Option<String>,
    /// The client's messageId.
    pub message_id: String,
    /// Corrected event time (Unix ms).
    pub timestamp_ms: i64,
    /// Arrival time (Unix ms).
    pub received_at_ms: i64,
    /// `properties.product_id` of a product event (see `live::PRODUCT_EVENTS`), or an order's
    /// product ids as a JSON array (see `live::order_products_of`).
    pub product_id: Option<String>,
    /// The message as received (possibly compressed).
    pub raw: RawMessage,
}

/// Proof that a message without `analytics` consent arrived, kept only to de-duplicate its
/// retries: the random messageId and the arrival time, nothing about the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFact {
    /// The client's messageId.
    pub message_id: String,
    /// Arrival time (Unix ms).
    pub received_at_ms: i64,
}

/// The reduced form of events kept without `analytics` consent: a count per UTC day, kind and
/// event name, with no identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReducedCountKey {
    /// Days since the Unix epoch (UTC) of the event's time.
    pub day: i64,
    /// The Segment call.
    pub kind: MessageKind,
    /// Track event name or page/screen name ("" when none).
    pub name: String,
}

/// An id that now points at a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFact {
    /// userId or anonymousId.
    pub kind: IdentityKind,
    /// The id's value.
    pub value: String,
    /// The profile it belongs to (at the time of linking).
    pub profile_id: ProfileId,
    /// When the link was made (Unix ms of the message).
    pub at_ms: i64,
}

/// Two profiles turned out to be one person; `from` now resolves to `into`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeFact {
    /// The absorbed profile.
    pub from: ProfileId,
    /// The surviving profile.
    pub into: ProfileId,
    /// When (Unix ms of the message that proved it).
    pub at_ms: i64,
}

/// A trait took a new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitFact {
    /// Whose.
    pub profile_id: ProfileId,
    /// Trait name.
    pub key: String,
    /// The new value as compact JSON.
    pub value_json: String,
    /// When it was said (Unix ms of the message).
    pub at_ms: i64,
    /// The message that said it.
    pub message_id: String,
}

/// A consent decision that changed the person's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentFact {
    /// Whose.
    pub profile_id: ProfileId,
    /// For what.
    pub purpose: ConsentPurpose,
    /// Granted or denied.
    pub granted: bool,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Where it came from.
    pub source: ConsentSource,
    /// Policy version shown, if known.
    pub policy_version: Option<String>,
}

/// A saved segment definition (a new version), or its deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFact {
    /// The segment id.
    pub segment_id: String,
    /// The version this fact creates (1 for the first save).
    pub version: u32,
    /// The definition as saved (JSON), empty for a deletion.
    pub definition_json: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Whether this fact deletes the segment.
    pub deleted: bool,
}

/// A profile entered or left a segment: membership changes are events too, so segment sizes
/// over time can be charted and triggers can fire on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipFact {
    /// Whose membership.
    pub profile_id: ProfileId,
    /// The segment id.
    pub segment_id: String,
    /// Entered (true) or left (false).
    pub entered: bool,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// Everything one group commit makes durable.
#[derive(Debug, Default, Clone)]
pub struct FactBatch {
    /// Events with `analytics` consent, kept whole.
    pub events: Vec<EventFact>,
    /// Receipts of reduced events, for de-duplication.
    pub receipts: Vec<ReceiptFact>,
    /// Reduced-form counts to add.
    pub reduced_counts: Vec<(ReducedCountKey, u64)>,
    /// New identity links.
    pub identities: Vec<IdentityFact>,
    /// Profile merges.
    pub merges: Vec<MergeFact>,
    /// Trait changes.
    pub traits: Vec<TraitFact>,
    /// Consent changes.
    pub consents: Vec<ConsentFact>,
    /// Catalog upserts.
    pub products: Vec<Product>,
    /// Segment definitions saved or deleted.
    pub segments: Vec<SegmentFact>,
    /// Segment memberships that changed.
    pub memberships: Vec<MembershipFact>,
    /// People erased or anonymized: their rows go (after this batch's inserts).
    pub erasures: Vec<ErasureFact>,
}

/// A person erased (or anonymized) at a data subject's request: every stored row of these
/// profiles is deleted, their identities become tombstones so replayed old events cannot
/// re-create them, and with `keep_counts` their events first join the anonymous daily counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureFact {
    /// The profile and every profile merged into it.
    pub profile_ids: Vec<ProfileId>,
    /// Salted hashes of their userIds and anonymousIds.
    pub tombstones: Vec<String>,
    /// Messages about them timestamped at or before this are dropped if they arrive again.
    pub at_ms: i64,
    /// Anonymize: keep their events as anonymous daily counts before deleting them.
    pub keep_counts: bool,
}

impl FactBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.receipts.is_empty()
            && self.reduced_counts.is_empty()
            && self.identities.is_empty()
            && self.merges.is_empty()
            && self.traits.is_empty()
            && self.consents.is_empty()
            && self.products.is_empty()
            && self.segments.is_empty()
            && self.memberships.is_empty()
            && self.erasures.is_empty()
    }

    /// Empties the batch, keeping its allocations for the next commit.
    pub fn clear(&mut self) {
        self.events.clear();
        self.receipts.clear();
        self.reduced_counts.clear();
        self.identities.clear();
        self.merges.clear();
        self.traits.clear();
        self.consents.clear();
        self.products.clear();
        self.segments.clear();
        self.memberships.clear();
        self.erasures.clear();
    }
}

impl FactBatch {
    /// Adds one reduced event to the batch's per-day counts.
    pub fn add_reduced(&mut self, key: ReducedCountKey) {
        // Few distinct (day, kind, name) keys occur in one commit, so a scan beats hashing.
        match self.reduced_counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, count)) => *count += 1,
            None => self.reduced_counts.push((key, 1)),
        }
    }
}
