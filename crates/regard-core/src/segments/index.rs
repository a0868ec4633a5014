//! The real-time membership index: for every profile, the times of the events each saved
//! segment's conditions count, and the segments the profile is in now.
//!
//! It is derived state. The writer updates it in the same step that stores an event, so the
//! next decision sees the new membership; a min-heap of next-change times lets time passing
//! move people out of "in the last 7 days" segments without rescanning anyone.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use super::definition::{Condition, EventMatch, PurchasesCondition};
use crate::consent::ConsentPurpose;
use crate::facts::ProfileId;

/// A segment's stable number in the index (never reused for another id).
pub type SegmentSlot = u32;

/// What the index knows about one saved segment.
#[derive(Debug, Clone)]
pub struct IndexedSegment {
    /// The segment id.
    pub id: String,
    /// The consent purpose membership needs.
    pub purpose: ConsentPurpose,
    /// The event matches its condition counts (indices into the index's matches).
    pub matches: Vec<u32>,
    /// Whether it tests traits (re-evaluated on identify).
    pub uses_traits: bool,
    /// Whether it tests the visitor kind (re-evaluated on every stored event).
    pub uses_visitor: bool,
}

/// The index. Owned by the live state.
#[derive(Debug, Default)]
pub struct SegmentIndex {
    matches: Vec<EventMatch>,
    matches_by_name: FxHashMap<String, Vec<u32>>,
    slots: Vec<String>,
    segments: FxHashMap<SegmentSlot, IndexedSegment>,
    signals: FxHashMap<ProfileId, Vec<(u32, Vec<i64>)>>,
    members: FxHashMap<ProfileId, Vec<SegmentSlot>>,
    sizes: FxHashMap<SegmentSlot, usize>,
    expiry: BinaryHeap<Reverse<(i64, ProfileId)>>,
    scheduled_at: FxHashMap<ProfileId, i64>,
    by_match: FxHashMap<u32, Vec<SegmentSlot>>,
    visitor_segments: Vec<SegmentSlot>,
    trait_segments: Vec<SegmentSlot>,
}

fn walk(condition: &Condition, matches: &mut Vec<EventMatch>, traits: &mut bool, visitor: &mut bool) {
    match condition {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|c| walk(c, matches, traits, visitor));
        }
        Condition::Not(child) => walk(child, matches, traits, visitor),
        Condition::Event(c) => matches.push(c.event.clone()),
        Condition::Catalog(c) => matches.push(c.event.clone()),
        Condition::Never(c) => matches.push(c.event.clone()),
        Condition::NotWithinDays(c) => matches.push(c.event.clone()),
        Condition::Sequence(c) => {
            matches.push(c.first.clone());
            matches.push(c.then_never.clone());
        }
        Condition::Purchases(_) => matches.push(PurchasesCondition::event_match()),
        Condition::Trait(_) => *traits = true,
        Condition::Visitor(_) => *visitor = true,
        Condition::Context(_) | Condition::Segment(_) | Condition::Score(_) => {}
    }
}

impl SegmentIndex {
    /// Registers (or re-registers after a change) a segment; returns its slot and the match
    /// numbers that are new to the index, whose history must be backfilled.
    pub fn register(&mut self, id: &str, purpose: ConsentPurpose, condition: &Condition) -> (SegmentSlot, Vec<u32>) {
        let slot = match self.slots.iter().position(|s| s == id) {
            Some(slot) => slot as SegmentSlot,
            None => {
                self.slots.push(id.to_owned());
                (self.slots.len() - 1) as SegmentSlot
            }
        };
        let (mut wanted, mut uses_traits, mut uses_visitor) = (Vec::new(), false, false);
        walk(condition, &mut wanted, &mut uses_traits, &mut uses_visitor);
        let mut numbers = Vec::new();
        let mut new = Vec::new();
        for event in wanted {
            let number = match self.matches.iter().position(|m| *m == event) {
                Some(n) => n as u32,
                None => {
                    self.matches.push(event.clone());
                    let n = (self.matches.len() - 1) as u32;
                    self.matches_by_name.entry(event.name.clone()).or_default().push(n);
                    new.push(n);
                    n
                }
            };
            if !numbers.contains(&number) {
                numbers.push(number);
            }
        }
        self.segments
            .insert(slot, IndexedSegment { id: id.to_owned(), purpose, matches: numbers, uses_traits, uses_visitor });
        self.rebuild_reverse_index();
        (slot, new)
    }

    /// Which segments each match, the visitor kind and traits concern: an event then
    /// re-evaluates only those.
    fn rebuild_reverse_index(&mut self) {
        self.by_match.clear();
        self.visitor_segments.clear();
        self.trait_segments.clear();
        let mut slots: Vec<SegmentSlot> = self.segments.keys().copied().collect();
        slots.sort_unstable();
        for slot in slots {
            let Some(segment) = self.segments.get(&slot) else { continue };
            for number in &segment.matches {
                self.by_match.entry(*number).or_default().push(slot);
            }
            if segment.uses_visitor {
                self.visitor_segments.push(slot);
            }
            if segment.uses_traits {
                self.trait_segments.push(slot);
            }
        }
    }

    /// The segments an event can change: those counting one of `matched`, and those testing
    /// the visitor kind when the event opened a visit.
    pub fn affected_by_event(&self, matched: &[u32], new_visit: bool) -> Vec<SegmentSlot> {
        let mut out: Vec<SegmentSlot> = Vec::new();
        for number in matched {
            for slot in self.by_match.get(number).map(Vec::as_slice).unwrap_or(&[]) {
                if !out.contains(slot) {
                    out.push(*slot);
                }
            }
        }
        if new_visit {
            for slot in &self.visitor_segments {
                if !out.contains(slot) {
                    out.push(*slot);
                }
            }
        }
        out
    }

    /// The segments that test traits.
    pub fn trait_segments(&self) -> &[SegmentSlot] {
        &self.trait_segments
    }

    /// Forgets a deleted segment; returns the profiles that were in it.
    pub fn unregister(&mut self, id: &str) -> Vec<ProfileId> {
        let Some(slot) = self.slot(id) else { return Vec::new() };
        self.segments.remove(&slot);
        self.sizes.remove(&slot);
        self.rebuild_reverse_index();
        let mut left = Vec::new();
        for (profile, slots) in self.members.iter_mut() {
            if let Some(i) = slots.iter().position(|s| *s == slot) {
                slots.swap_remove(i);
                left.push(*profile);
            }
        }
        left.sort_unstable();
        left
    }

    /// The slot of a segment id.
    pub fn slot(&self, id: &str) -> Option<SegmentSlot> {
        self.slots.iter().position(|s| s == id).map(|s| s as SegmentSlot)
    }

    /// The registered segments.
    pub fn segments(&self) -> impl Iterator<Item = (SegmentSlot, &IndexedSegment)> {
        self.segments.iter().map(|(slot, s)| (*slot, s))
    }

    /// A registered segment.
    pub fn segment(&self, slot: SegmentSlot) -> Option<&IndexedSegment> {
        self.segments.get(&slot)
    }

    /// The event matches for an event name.
    pub fn matches_for(&self, name: &str) -> &[u32] {
        self.matches_by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A match by number.
    pub fn event_match(&self, number: u32) -> Option<&EventMatch> {
        self.matches.get(number as usize)
    }

    /// The number of a match, if registered.
    pub fn match_number(&self, event: &EventMatch) -> Option<u32> {
        self.matches.iter().position(|m| m == event).map(|n| n as u32)
    }

    /// Records that a profile's event at `timestamp_ms` matches `number`.
    pub fn add_signal(&mut self, profile: ProfileId, number: u32, timestamp_ms: i64) {
        let lists = self.signals.entry(profile).or_default();
        let times = match lists.iter().position(|(n, _)| *n == number) {
            Some(i) => &mut lists[i].1,
            None => {
                lists.push((number, Vec::new()));
                let last = lists.len() - 1;
                &mut lists[last].1
            }
        };
        let at = times.partition_point(|t| *t <= timestamp_ms);
        times.insert(at, timestamp_ms);
    }

    /// The times of a profile's events matching `number`, oldest first.
    pub fn signals(&self, profile: ProfileId, number: u32) -> &[i64] {
        self.signals
            .get(&profile)
            .and_then(|lists| lists.iter().find(|(n, _)| *n == number))
            .map(|(_, times)| times.as_slice())
            .unwrap_or(&[])
    }

    /// Moves every signal of `from` to `into` (a profile merge).
    pub fn merge_signals(&mut self, from: ProfileId, into: ProfileId) {
        for (number, times) in self.signals.remove(&from).unwrap_or_default() {
            for t in times {
                self.add_signal(into, number, t);
            }
        }
    }

    /// Whether a profile is in a segment now: the hot-path lookup.
    pub fn is_member(&self, profile: ProfileId, slot: SegmentSlot) -> bool {
        self.members.get(&profile).is_some_and(|slots| slots.contains(&slot))
    }

    /// The segments a profile is in now.
    pub fn memberships(&self, profile: ProfileId) -> &[SegmentSlot] {
        self.members.get(&profile).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Members of a segment now, in profile order.
    pub fn members_of(&self, slot: SegmentSlot) -> Vec<ProfileId> {
        let mut out: Vec<ProfileId> =
            self.members.iter().filter(|(_, slots)| slots.contains(&slot)).map(|(p, _)| *p).collect();
        out.sort_unstable();
        out
    }

    /// How many profiles are in a segment now.
    pub fn size(&self, slot: SegmentSlot) -> usize {
        self.sizes.get(&slot).copied().unwrap_or(0)
    }

    /// Sets a membership; returns whether it changed.
    pub fn set_member(&mut self, profile: ProfileId, slot: SegmentSlot, member: bool) -> bool {
        let slots = self.members.entry(profile).or_default();
        let position = slots.iter().position(|s| *s == slot);
        match (member, position) {
            (true, None) => {
                slots.push(slot);
                *self.sizes.entry(slot).or_default() += 1;
                true
            }
            (false, Some(i)) => {
                slots.swap_remove(i);
                if let Some(size) = self.sizes.get_mut(&slot) {
                    *size = size.saturating_sub(1);
                }
                true
            }
            _ => false,
        }
    }

    /// Asks for the profile to be re-evaluated at `at_ms` (when a window moves on).
    pub fn schedule(&mut self, profile: ProfileId, at_ms: i64) {
        // One pending check per profile, the earliest: later ones are rescheduled by it.
        if self.scheduled_at.get(&profile).is_some_and(|at| *at <= at_ms) {
            return;
        }
        self.scheduled_at.insert(profile, at_ms);
        self.expiry.push(Reverse((at_ms, profile)));
    }

    /// Takes the profiles due for re-evaluation at `now_ms`.
    pub fn due(&mut self, now_ms: i64) -> Vec<ProfileId> {
        let mut out = Vec::new();
        while let Some(Reverse((at, profile))) = self.expiry.peek().copied() {
            if at > now_ms {
                break;
            }
            self.expiry.pop();
            // Entries superseded by an earlier schedule are stale.
            if self.scheduled_at.get(&profile) == Some(&at) {
                self.scheduled_at.remove(&profile);
                out.push(profile);
            }
        }
        out
    }

    /// Profiles with a pending time-driven check (for metrics).
    pub fn scheduled(&self) -> usize {
        self.scheduled_at.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::SegmentDefinition;

    #[test]
    fn shared_matches_are_indexed_once_and_memberships_count() {
        let mut index = SegmentIndex::default();
        let a = SegmentDefinition::parse_str(
            r#"{"id": "a", "name": "A", "purpose": "email", "condition": {"purchases": {"count": {"gte": 2}}}}"#,
        )
        .expect("valid");
        let b = SegmentDefinition::parse_str(
            r#"{"id": "b", "name": "B", "purpose": "email", "condition": {"purchases": {"count": {"gte": 1}, "last_before_days": 90}}}"#,
        )
        .expect("valid");
        let (slot_a, new_a) = index.register("a", ConsentPurpose::Email, a.condition());
        let (slot_b, new_b) = index.register("b", ConsentPurpose::Email, b.condition());
        assert_eq!(new_a.len(), 1);
        assert!(new_b.is_empty(), "the purchase match is shared");
        assert_eq!(index.matches_for("Order Completed").len(), 1);
        assert!(index.set_member(7, slot_a, true));
        assert!(!index.set_member(7, slot_a, true));
        assert!(index.is_member(7, slot_a) && !index.is_member(7, slot_b));
        assert_eq!(index.size(slot_a), 1);
        assert_eq!(index.unregister("a"), vec![7]);
        assert!(!index.is_member(7, slot_a));
    }

    #[test]
    fn due_profiles_come_out_in_time_order_once() {
        let mut index = SegmentIndex::default();
        index.schedule(1, 50);
        index.schedule(2, 10);
        index.schedule(1, 20);
        index.schedule(2, 30);
        assert_eq!(index.scheduled(), 2);
        assert_eq!(index.due(25), vec![2, 1]);
        assert_eq!(index.due(60), Vec::<ProfileId>::new(), "the superseded check at 50 is stale");
    }
}
