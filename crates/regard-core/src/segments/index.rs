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
use super::matcher::NameMatches;
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
    /// Whether it tests a model score (re-evaluated when predictions are refreshed).
    pub uses_scores: bool,
    /// The condition, kept here so that re-evaluating after an event needs no lookup by id.
    pub condition: Condition,
    /// The match number of each event-match leaf of the condition, in the evaluator's leaf
    /// numbering (see [`crate::segments::SegmentFacts::leaf_times`]).
    pub leaf_matches: Vec<u32>,
}

/// How much of the stored history an event match's signals cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchHistory {
    /// Every stored event is indexed.
    Complete,
    /// Events after `upto_seq` are indexed as they are stored; those up to it are being read
    /// from the event log by backfill `job`.
    Backfilling {
        /// The backfill reading the older events.
        job: u64,
        /// The last event seq the backfill reads (the log's end when the match was added).
        upto_seq: u64,
    },
    /// Reading the older events failed: only events after `upto_seq` are indexed. Saving a
    /// segment that counts the match again retries.
    Failed {
        /// The last event seq a new backfill must read.
        upto_seq: u64,
    },
}

/// The index. Owned by the live state.
#[derive(Debug, Default)]
pub struct SegmentIndex {
    matches: Vec<EventMatch>,
    history: Vec<MatchHistory>,
    by_name: FxHashMap<String, NameMatches>,
    slots: Vec<String>,
    segments: Vec<Option<IndexedSegment>>,
    /// Everything the index keeps per profile, in one entry an event touches, found by
    /// position: profile ids are dense, and a stored event costs one cache miss here, not a
    /// hash probe's two.
    profiles: ProfileEntries,
    sizes: Vec<usize>,
    expiry: BinaryHeap<Reverse<(i64, ProfileId)>>,
    n_scheduled: usize,
    by_match: Vec<Vec<SegmentSlot>>,
    visitor_segments: Vec<SegmentSlot>,
    trait_segments: Vec<SegmentSlot>,
    score_segments: Vec<SegmentSlot>,
}

/// One profile's signal lists packed in one allocation: a count of lists, a header entry per
/// list (match number and length), then each list's times, ascending, in header order.
///
/// One allocation rather than a list of lists: recording an event's time then touches one
/// heap block the cache has likely never seen instead of two, which is most of what keeping
/// the index costs per event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SignalLists(Vec<i64>);

impl SignalLists {
    fn lists(&self) -> usize {
        self.0.first().map_or(0, |n| *n as usize)
    }

    fn header(&self, i: usize) -> (u32, usize) {
        let packed = self.0[1 + i] as u64;
        ((packed >> 32) as u32, (packed & 0xffff_ffff) as usize)
    }

    fn set_len(&mut self, i: usize, number: u32, len: usize) {
        self.0[1 + i] = ((u64::from(number) << 32) | len as u64) as i64;
    }

    /// The header index, start offset and length of a list.
    fn find(&self, number: u32) -> Option<(usize, usize, usize)> {
        let lists = self.lists();
        let mut start = 1 + lists;
        for i in 0..lists {
            let (n, len) = self.header(i);
            if n == number {
                return Some((i, start, len));
            }
            start += len;
        }
        None
    }

    /// The times of the events matching `number`, ascending.
    pub fn times(&self, number: u32) -> &[i64] {
        self.find(number).map_or(&[], |(_, start, len)| &self.0[start..start + len])
    }

    /// Every list: (match number, times ascending).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[i64])> {
        let lists = self.lists();
        let mut start = 1 + lists;
        (0..lists).map(move |i| {
            let (number, len) = self.header(i);
            let times = &self.0[start..start + len];
            start += len;
            (number, times)
        })
    }

    /// The header index, start and length of `number`'s list, made empty if missing.
    fn list_mut(&mut self, number: u32) -> (usize, usize, usize) {
        if let Some(found) = self.find(number) {
            return found;
        }
        if self.0.is_empty() {
            self.0.push(0);
        }
        let lists = self.lists();
        self.0.insert(1 + lists, 0);
        self.0[0] = (lists + 1) as i64;
        self.set_len(lists, number, 0);
        let end = self.0.len();
        (lists, end, 0)
    }

    /// Records one time (events mostly arrive in time order: then it is appended to its list).
    pub fn insert(&mut self, number: u32, at_ms: i64) {
        let (i, start, len) = self.list_mut(number);
        let list = &self.0[start..start + len];
        let at = len - list.iter().rev().take_while(|t| **t > at_ms).count();
        self.0.insert(start + at, at_ms);
        self.set_len(i, number, len + 1);
    }

    /// Drops the lists of these matches.
    pub fn remove_lists(&mut self, numbers: &[u32]) {
        if !self.iter().any(|(number, _)| numbers.contains(&number)) {
            return;
        }
        let kept: Vec<(u32, Vec<i64>)> =
            self.iter().filter(|(n, _)| !numbers.contains(n)).map(|(n, times)| (n, times.to_vec())).collect();
        self.0.clear();
        for (number, times) in kept {
            self.extend_sorted(number, &times);
        }
    }

    /// Records many times (ascending).
    pub fn extend_sorted(&mut self, number: u32, sorted: &[i64]) {
        if sorted.is_empty() {
            return;
        }
        let (i, start, len) = self.list_mut(number);
        let end = start + len;
        self.0.splice(end..end, sorted.iter().copied());
        let list = &mut self.0[start..end + sorted.len()];
        if len > 0 && list[len - 1] > list[len] {
            list.sort_unstable();
        }
        self.set_len(i, number, len + sorted.len());
    }
}

/// One profile's part of the index.
#[derive(Debug, Default)]
struct ProfileEntry {
    /// The times of the profile's events matching each match.
    signals: SignalLists,
    /// The segments the profile is in now.
    members: Vec<SegmentSlot>,
    /// The pending time-driven check, if any.
    scheduled_at: Option<i64>,
}

/// Per-profile entries indexed by profile id.
#[derive(Debug, Default)]
struct ProfileEntries(Vec<ProfileEntry>);

impl ProfileEntries {
    fn get(&self, profile: &ProfileId) -> Option<&ProfileEntry> {
        self.0.get(usize::try_from(*profile).ok()?)
    }

    fn get_mut(&mut self, profile: &ProfileId) -> Option<&mut ProfileEntry> {
        self.0.get_mut(usize::try_from(*profile).ok()?)
    }

    /// The entry of `profile`, made if needed.
    fn entry(&mut self, profile: ProfileId) -> &mut ProfileEntry {
        let i = usize::try_from(profile).unwrap_or(usize::MAX);
        if i >= self.0.len() {
            // Ids come from a counter, so this grows by one profile at a time.
            self.0.resize_with(i.saturating_add(1), ProfileEntry::default);
        }
        &mut self.0[i]
    }

    fn iter(&self) -> impl Iterator<Item = (ProfileId, &ProfileEntry)> {
        self.0.iter().enumerate().map(|(i, e)| (i as ProfileId, e))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (ProfileId, &mut ProfileEntry)> {
        self.0.iter_mut().enumerate().map(|(i, e)| (i as ProfileId, e))
    }
}

/// What a condition reads besides event matches: traits, the visitor kind, model scores.
#[derive(Default)]
struct Reads {
    traits: bool,
    visitor: bool,
    scores: bool,
}

fn walk(condition: &Condition, matches: &mut Vec<EventMatch>, reads: &mut Reads) {
    match condition {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|c| walk(c, matches, reads));
        }
        Condition::Not(child) => walk(child, matches, reads),
        Condition::Event(c) => matches.push(c.event.clone()),
        Condition::Catalog(c) => matches.push(c.event.clone()),
        Condition::Never(c) => matches.push(c.event.clone()),
        Condition::NotWithinDays(c) => matches.push(c.event.clone()),
        Condition::Sequence(c) => {
            matches.push(c.first.clone());
            matches.push(c.then_never.clone());
        }
        Condition::Purchases(_) => matches.push(PurchasesCondition::event_match()),
        Condition::Trait(_) => reads.traits = true,
        Condition::Visitor(_) => reads.visitor = true,
        Condition::Score(_) => reads.scores = true,
        Condition::Context(_) | Condition::Segment(_) => {}
    }
}

impl SegmentIndex {
    /// Registers (or re-registers after a change) a segment; returns its slot and the match
    /// numbers that are new to the index. New matches start [`MatchHistory::Complete`]: at
    /// start-up the caller reads their history before serving; a save marks them for a
    /// backfill with [`SegmentIndex::set_history`].
    pub fn register(&mut self, id: &str, purpose: ConsentPurpose, condition: &Condition) -> (SegmentSlot, Vec<u32>) {
        let slot = match self.slots.iter().position(|s| s == id) {
            Some(slot) => slot as SegmentSlot,
            None => {
                self.slots.push(id.to_owned());
                self.segments.push(None);
                self.sizes.push(0);
                (self.slots.len() - 1) as SegmentSlot
            }
        };
        let (mut wanted, mut reads) = (Vec::new(), Reads::default());
        walk(condition, &mut wanted, &mut reads);
        let mut numbers = Vec::new();
        let mut leaf_matches = Vec::with_capacity(wanted.len());
        let mut new = Vec::new();
        for event in wanted {
            let number = match self.match_number(&event) {
                Some(n) => n,
                None => {
                    let n = self.matches.len() as u32;
                    self.by_name.entry(event.name.clone()).or_default().add(n, event.clone());
                    self.matches.push(event);
                    self.history.push(MatchHistory::Complete);
                    self.by_match.push(Vec::new());
                    new.push(n);
                    n
                }
            };
            leaf_matches.push(number);
            if !numbers.contains(&number) {
                numbers.push(number);
            }
        }
        self.segments[slot as usize] = Some(IndexedSegment {
            id: id.to_owned(),
            purpose,
            matches: numbers,
            uses_traits: reads.traits,
            uses_visitor: reads.visitor,
            uses_scores: reads.scores,
            condition: condition.clone(),
            leaf_matches,
        });
        self.rebuild_reverse_index();
        self.retire_unused_matches();
        (slot, new)
    }

    /// Forgets the matches no saved segment counts any more (after a deletion, or a new
    /// version that dropped a condition): events stop being indexed for them and their times
    /// are dropped. A later segment counting the same events gets a new match, backfilled.
    fn retire_unused_matches(&mut self) {
        let mut used = vec![false; self.matches.len()];
        for segment in self.segments.iter().flatten() {
            for number in &segment.matches {
                used[*number as usize] = true;
            }
        }
        let mut retired = Vec::new();
        for matches in self.by_name.values_mut() {
            let unused: Vec<u32> = matches.numbers().filter(|n| !used[*n as usize]).collect();
            for number in unused {
                matches.remove(number);
                retired.push(number);
            }
        }
        if retired.is_empty() {
            return;
        }
        self.by_name.retain(|_, matches| !matches.is_empty());
        for number in &retired {
            // Nothing waits on it: a backfill still reading it has nothing to merge.
            self.history[*number as usize] = MatchHistory::Complete;
        }
        for (_, entry) in self.profiles.iter_mut() {
            entry.signals.remove_lists(&retired);
        }
    }

    /// The matches some saved segment counts: (number, what it matches).
    pub fn live_matches(&self) -> impl Iterator<Item = (u32, &EventMatch)> {
        self.by_name.values().flat_map(|matches| matches.matches())
    }

    /// Which segments each match, the visitor kind and traits concern: an event then
    /// re-evaluates only those.
    fn rebuild_reverse_index(&mut self) {
        self.by_match.iter_mut().for_each(Vec::clear);
        self.visitor_segments.clear();
        self.trait_segments.clear();
        self.score_segments.clear();
        for (slot, segment) in self.segments.iter().enumerate() {
            let Some(segment) = segment else { continue };
            let slot = slot as SegmentSlot;
            for number in &segment.matches {
                if let Some(list) = self.by_match.get_mut(*number as usize) {
                    list.push(slot);
                }
            }
            if segment.uses_visitor {
                self.visitor_segments.push(slot);
            }
            if segment.uses_traits {
                self.trait_segments.push(slot);
            }
            if segment.uses_scores {
                self.score_segments.push(slot);
            }
        }
    }

    /// Appends to `out` the segments an event can change: those counting one of `matched`, and
    /// those testing the visitor kind when the event opened a visit.
    pub fn affected_by_event(&self, matched: &[u32], new_visit: bool, out: &mut Vec<SegmentSlot>) {
        for number in matched {
            for slot in self.by_match.get(*number as usize).map(Vec::as_slice).unwrap_or(&[]) {
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
    }

    /// The segments that test traits.
    pub fn trait_segments(&self) -> &[SegmentSlot] {
        &self.trait_segments
    }

    /// The segments that test model scores.
    pub fn score_segments(&self) -> &[SegmentSlot] {
        &self.score_segments
    }

    /// Forgets a deleted segment; returns the profiles that were in it.
    pub fn unregister(&mut self, id: &str) -> Vec<ProfileId> {
        let Some(slot) = self.slot(id) else { return Vec::new() };
        self.segments[slot as usize] = None;
        self.sizes[slot as usize] = 0;
        self.rebuild_reverse_index();
        self.retire_unused_matches();
        let mut left = Vec::new();
        for (profile, entry) in self.profiles.iter_mut() {
            if let Some(i) = entry.members.iter().position(|s| *s == slot) {
                entry.members.swap_remove(i);
                left.push(profile);
            }
        }
        left.sort_unstable();
        left
    }

    /// The slot of a segment id.
    pub fn slot(&self, id: &str) -> Option<SegmentSlot> {
        self.slots.iter().position(|s| s == id).map(|s| s as SegmentSlot)
    }

    /// The registered segments, in slot order.
    pub fn segments(&self) -> impl Iterator<Item = (SegmentSlot, &IndexedSegment)> {
        self.segments.iter().enumerate().filter_map(|(slot, s)| s.as_ref().map(|s| (slot as SegmentSlot, s)))
    }

    /// A registered segment.
    pub fn segment(&self, slot: SegmentSlot) -> Option<&IndexedSegment> {
        self.segments.get(slot as usize).and_then(Option::as_ref)
    }

    /// The prepared matches of an event name, when some segment counts that name.
    pub fn name_matches(&self, name: &str) -> Option<&NameMatches> {
        self.by_name.get(name).filter(|m| !m.is_empty())
    }

    /// The event matches for an event name.
    pub fn matches_for(&self, name: &str) -> Vec<u32> {
        self.by_name.get(name).map(|m| m.numbers().collect()).unwrap_or_default()
    }

    /// A match by number.
    pub fn event_match(&self, number: u32) -> Option<&EventMatch> {
        self.matches.get(number as usize)
    }

    /// The number of a match, if registered.
    pub fn match_number(&self, event: &EventMatch) -> Option<u32> {
        self.by_name.get(&event.name)?.find(event)
    }

    /// How much of the stored history a match's signals cover.
    pub fn history(&self, number: u32) -> MatchHistory {
        self.history.get(number as usize).copied().unwrap_or(MatchHistory::Complete)
    }

    /// Records how much of the stored history a match's signals cover.
    pub fn set_history(&mut self, number: u32, history: MatchHistory) {
        if let Some(slot) = self.history.get_mut(number as usize) {
            *slot = history;
        }
    }

    /// Records that a profile's event at `timestamp_ms` matches `number`.
    pub fn add_signal(&mut self, profile: ProfileId, number: u32, timestamp_ms: i64) {
        self.profiles.entry(profile).signals.insert(number, timestamp_ms);
    }

    /// Adds many times (ascending) of one profile's events matching `number`: a backfill's
    /// result, merged with what arrived live meanwhile.
    pub fn add_sorted_signals(&mut self, profile: ProfileId, number: u32, sorted_times: &[i64]) {
        if !sorted_times.is_empty() {
            self.profiles.entry(profile).signals.extend_sorted(number, sorted_times);
        }
    }

    /// Every signal list of a profile.
    pub fn profile_signals(&self, profile: ProfileId) -> &SignalLists {
        static NONE: SignalLists = SignalLists(Vec::new());
        self.profiles.get(&profile).map_or(&NONE, |entry| &entry.signals)
    }

    /// The times of a profile's events matching `number`, oldest first.
    pub fn signals(&self, profile: ProfileId, number: u32) -> &[i64] {
        self.profile_signals(profile).times(number)
    }

    /// Moves every signal of `from` to `into` (a profile merge).
    pub fn merge_signals(&mut self, from: ProfileId, into: ProfileId) {
        let moved = self.profiles.get_mut(&from).map(|entry| std::mem::take(&mut entry.signals)).unwrap_or_default();
        let target = &mut self.profiles.entry(into).signals;
        for (number, times) in moved.iter() {
            target.extend_sorted(number, times);
        }
    }

    /// Whether a profile is in a segment now: the hot-path lookup.
    pub fn is_member(&self, profile: ProfileId, slot: SegmentSlot) -> bool {
        self.profiles.get(&profile).is_some_and(|entry| entry.members.contains(&slot))
    }

    /// The segments a profile is in now.
    pub fn memberships(&self, profile: ProfileId) -> &[SegmentSlot] {
        self.profiles.get(&profile).map_or(&[], |entry| entry.members.as_slice())
    }

    /// Members of a segment now, in profile order.
    pub fn members_of(&self, slot: SegmentSlot) -> Vec<ProfileId> {
        let mut out: Vec<ProfileId> =
            self.profiles.iter().filter(|(_, entry)| entry.members.contains(&slot)).map(|(p, _)| p).collect();
        out.sort_unstable();
        out
    }

    /// How many profiles are in a segment now.
    pub fn size(&self, slot: SegmentSlot) -> usize {
        self.sizes.get(slot as usize).copied().unwrap_or(0)
    }

    /// Sets a membership; returns whether it changed.
    pub fn set_member(&mut self, profile: ProfileId, slot: SegmentSlot, member: bool) -> bool {
        let mut changed = Vec::new();
        self.set_memberships(profile, &[(slot, member)], &mut changed);
        !changed.is_empty()
    }

    /// Forgets everything the index holds on a profile (an erasure): its signals, its
    /// memberships (segment sizes drop) and its scheduled check.
    pub fn forget_profile(&mut self, profile: ProfileId) {
        if let Some(entry) = self.profiles.get_mut(&profile) {
            for slot in entry.members.drain(..) {
                if let Some(size) = self.sizes.get_mut(slot as usize) {
                    *size = size.saturating_sub(1);
                }
            }
            *entry = ProfileEntry::default();
        }
    }

    /// Sets a profile's memberships from evaluation outcomes, looking the profile up once;
    /// appends to `changed` those that changed.
    pub fn set_memberships(
        &mut self,
        profile: ProfileId,
        outcomes: &[(SegmentSlot, bool)],
        changed: &mut Vec<(SegmentSlot, bool)>,
    ) {
        if self.profiles.get(&profile).is_none() && outcomes.iter().all(|(_, member)| !member) {
            // Most evaluations confirm a non-membership: no entry is made for them.
            return;
        }
        let entry = self.profiles.entry(profile);
        for &(slot, member) in outcomes {
            let position = entry.members.iter().position(|s| *s == slot);
            let size = self.sizes.get_mut(slot as usize);
            match (member, position) {
                (true, None) => {
                    entry.members.push(slot);
                    if let Some(size) = size {
                        *size += 1;
                    }
                    changed.push((slot, true));
                }
                (false, Some(i)) => {
                    entry.members.swap_remove(i);
                    if let Some(size) = size {
                        *size = size.saturating_sub(1);
                    }
                    changed.push((slot, false));
                }
                _ => {}
            }
        }
    }

    /// Asks for the profile to be re-evaluated at `at_ms` (when a window moves on).
    pub fn schedule(&mut self, profile: ProfileId, at_ms: i64) {
        let entry = self.profiles.entry(profile);
        // One pending check per profile, the earliest: later ones are rescheduled by it.
        match entry.scheduled_at {
            Some(at) if at <= at_ms => return,
            Some(_) => {}
            None => self.n_scheduled += 1,
        }
        entry.scheduled_at = Some(at_ms);
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
            if let Some(entry) = self.profiles.get_mut(&profile).filter(|e| e.scheduled_at == Some(at)) {
                entry.scheduled_at = None;
                self.n_scheduled -= 1;
                out.push(profile);
            }
        }
        out
    }

    /// Profiles with a pending time-driven check (for metrics).
    pub fn scheduled(&self) -> usize {
        self.n_scheduled
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
        assert_eq!(index.segments().map(|(slot, s)| (slot, s.id.as_str())).collect::<Vec<_>>(), [(0, "a"), (1, "b")]);
        assert_eq!(index.segment(slot_b).map(|s| s.leaf_matches.clone()), Some(vec![0]));
        let mut changed = Vec::new();
        index.set_memberships(8, &[(slot_a, false), (slot_b, false)], &mut changed);
        assert!(changed.is_empty() && index.memberships(8).is_empty());
        index.set_memberships(8, &[(slot_a, true), (slot_b, false)], &mut changed);
        assert_eq!(changed, [(slot_a, true)]);
        index.set_memberships(8, &[(slot_a, false)], &mut changed);
        assert_eq!(changed, [(slot_a, true), (slot_a, false)]);
        assert!(index.set_member(7, slot_a, true));
        assert!(!index.set_member(7, slot_a, true));
        assert!(index.is_member(7, slot_a) && !index.is_member(7, slot_b));
        assert_eq!(index.size(slot_a), 1);
        assert_eq!(index.unregister("a"), vec![7]);
        assert!(!index.is_member(7, slot_a));
        assert_eq!(index.live_matches().count(), 1, "b still counts purchases");
        index.add_signal(9, 0, 5);
        index.unregister("b");
        assert_eq!(index.live_matches().count(), 0, "nothing counts purchases any more");
        assert!(index.signals(9, 0).is_empty() && index.matches_for("Order Completed").is_empty());
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

#[cfg(test)]
mod signal_tests {
    use super::*;

    #[test]
    fn packed_lists_keep_each_match_apart() {
        let mut lists = SignalLists::default();
        lists.insert(7, 30);
        lists.insert(2, 5);
        lists.insert(7, 10);
        lists.extend_sorted(2, &[1, 9]);
        lists.extend_sorted(4, &[3]);
        assert_eq!(lists.times(7), [10, 30]);
        assert_eq!(lists.times(2), [1, 5, 9]);
        assert_eq!(lists.times(4), [3]);
        assert!(lists.times(1).is_empty());
        assert_eq!(lists.iter().map(|(n, t)| (n, t.len())).collect::<Vec<_>>(), [(7, 2), (2, 3), (4, 1)]);
    }

    #[test]
    fn signals_stay_sorted_whatever_the_arrival_order() {
        let mut index = SegmentIndex::default();
        for t in [5, 9, 7, 1, 9] {
            index.add_signal(3, 0, t);
        }
        index.add_sorted_signals(3, 0, &[2, 8]);
        index.add_sorted_signals(3, 0, &[10, 11]);
        assert_eq!(index.signals(3, 0), [1, 2, 5, 7, 8, 9, 9, 10, 11]);
        index.add_signal(4, 0, 6);
        index.merge_signals(4, 3);
        assert_eq!(index.signals(3, 0), [1, 2, 5, 6, 7, 8, 9, 9, 10, 11]);
        assert!(index.signals(4, 0).is_empty());
    }
}
