//! The pure segment evaluator: is this person in the segment now, why, and when could that
//! change on its own?
//!
//! The evaluator owns no data. The caller answers questions about one person through
//! [`SegmentFacts`] (the real-time engine from its in-memory indexes, tests from a fixture), and
//! passes the current time in. [`next_change_ms`] tells the engine when a membership expires or
//! starts with no new event (an old view leaving its window, a quiet period ending, a birthday
//! coming near), so it can schedule a re-check instead of rescanning everyone.

use std::borrow::Cow;

use serde_json::Value;

use super::definition::{
    as_number, scalar_eq, Condition, ContextField, EventMatch, PurchasesCondition, SegmentId, TraitTest, Window,
    ORDER_COMPLETED, PRODUCT_VIEWED,
};
use crate::profile::VisitorKind;
use crate::time::{parse_iso8601_ms, DAY_MS, HOUR_MS, MINUTE_MS};

/// Where model outputs come from: the extension point for predictions (churn risk,
/// propensities). Kept apart from the facts so models can live in another crate.
pub trait ScoreSource {
    /// The person's latest score called `name`, when a model has produced one.
    fn score(&self, name: &str) -> Option<f64>;
}

/// What the evaluator may ask about one person. The caller implements event matching (see
/// [`EventMatch::matches_name_and_filters`] and [`EventMatch::category_matches`]) because it
/// owns the indexes and the catalog.
pub trait SegmentFacts: ScoreSource {
    /// The trait's current value, if the person has it.
    fn trait_value(&self, name: &str) -> Option<Value>;
    /// The timestamps (Unix ms, any order) of every event of the person that matches `event`.
    fn matching_events(&self, event: &EventMatch) -> Vec<i64>;
    /// [`SegmentFacts::matching_events`], borrowed when the implementation keeps the times: the
    /// evaluator calls this, so an index answers without copying on the ingest hot path. The
    /// default copies.
    fn matching_times(&self, event: &EventMatch) -> Cow<'_, [i64]> {
        Cow::Owned(self.matching_events(event))
    }
    /// [`SegmentFacts::matching_times`] for the `leaf`-th event match of the condition being
    /// evaluated (numbered from 0 in document order, a sequence counting two), so an index
    /// that numbered the leaves when the segment was saved needs no lookup by value. The
    /// default ignores the number.
    fn leaf_times(&self, leaf: usize, event: &EventMatch) -> Cow<'_, [i64]> {
        let _ = leaf;
        self.matching_times(event)
    }
    /// Whether [`SegmentFacts::leaf_times`] gives times in ascending order (an index keeps
    /// them so): membership is then decided by binary search instead of a scan.
    fn times_are_sorted(&self) -> bool {
        false
    }
    /// Whether this is the person's first visit.
    fn visitor_kind(&self) -> VisitorKind;
    /// A field of the current visit's context.
    fn context(&self, field: ContextField) -> Option<String>;
    /// Whether the person is currently in another segment.
    fn is_member(&self, segment: &SegmentId) -> bool;
}

/// The outcome of evaluating a condition for one person.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Whether the person belongs.
    pub member: bool,
    /// The facts the outcome rests on: for a member, what put them in; otherwise, what kept
    /// them out.
    pub reasons: Vec<Reason>,
}

/// One observed fact behind an evaluation, as data; [`explain`] renders it in plain English.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// JSON path of the condition that observed it.
    pub path: String,
    /// The evaluation time, to say "3 days ago".
    pub now_ms: i64,
    /// What was observed.
    pub detail: ReasonDetail,
}

/// What a condition observed.
#[derive(Debug, Clone, PartialEq)]
pub enum ReasonDetail {
    /// Matching events in a window.
    Events {
        /// The event name.
        event: String,
        /// The catalog category, for catalog conditions.
        category: Option<String>,
        /// How many matched in the window.
        count: usize,
        /// The window.
        window: Window,
        /// The oldest match in the window.
        first_ms: Option<i64>,
        /// The newest match in the window.
        last_ms: Option<i64>,
    },
    /// The latest matching event ever (for "not in the last N days").
    LastEvent {
        /// The event name.
        event: String,
        /// When it last happened.
        last_ms: Option<i64>,
    },
    /// A first step, and whether the forbidden second step followed it.
    Sequence {
        /// The first step's event name.
        first_event: String,
        /// The forbidden step's event name.
        then_event: String,
        /// The latest first step in its window.
        first_ms: Option<i64>,
        /// Whether the forbidden step happened after it.
        followed: bool,
    },
    /// How many purchases in a window.
    PurchaseCount {
        /// The number of `Order Completed` events.
        count: usize,
        /// The window.
        window: Window,
    },
    /// The latest purchase.
    LastPurchase {
        /// When it happened.
        last_ms: Option<i64>,
    },
    /// A trait's value.
    Trait {
        /// The trait name.
        name: String,
        /// Its value, when known.
        value: Option<Value>,
    },
    /// Days until the next birthday.
    Birthday {
        /// Whole UTC days until the next anniversary, when the birthday is known and readable.
        days_until: Option<i64>,
    },
    /// First visit or returning.
    Visitor(VisitorKind),
    /// A context field's value.
    Context {
        /// The field.
        field: ContextField,
        /// Its value, when known.
        value: Option<String>,
    },
    /// Membership of another segment.
    Segment {
        /// The other segment.
        id: SegmentId,
        /// Whether the person is in it.
        member: bool,
    },
    /// A model's score.
    Score {
        /// The score's name.
        name: String,
        /// Its value, when a model produced one.
        value: Option<f64>,
    },
}

/// Evaluates `condition` for the person behind `facts` at `now_ms`.
pub fn evaluate(condition: &Condition, facts: &dyn SegmentFacts, now_ms: i64) -> Evaluation {
    let mut reasons = Vec::new();
    let member = eval(condition, facts, now_ms, "condition", &mut reasons);
    Evaluation { member, reasons }
}

/// Above this many candidate instants [`next_change_ms`] stops searching and returns the next
/// candidate: an early re-check is harmless, a late one is not.
const MAX_CANDIDATES: usize = 4096;

/// The earliest instant after `now_ms` at which membership *may* change with no new event (an
/// event leaving a window, a quiet period ending, a birthday window opening), without checking
/// whether it does: the cheap bound a real-time index schedules its next look at. Checking early
/// is harmless; the index re-evaluates then and schedules again.
pub fn next_check_ms(condition: &Condition, facts: &dyn SegmentFacts, now_ms: i64) -> Option<i64> {
    // A running minimum rather than a list: this runs for every segment an event touches.
    let mut earliest: Option<i64> = None;
    collect_candidates(condition, facts, now_ms, &mut |t| {
        if t > now_ms && earliest.is_none_or(|e| t < e) {
            earliest = Some(t);
        }
    });
    earliest
}

/// Whether the person behind `facts` is in the segment at `now_ms`: the same answer as
/// [`evaluate`]`(..).member`, without gathering reasons or allocating. The real-time index
/// calls it for every segment an event can change; explanations are built on request.
pub fn evaluate_membership(condition: &Condition, facts: &dyn SegmentFacts, now_ms: i64) -> bool {
    member(condition, facts, now_ms, &mut 0)
}

/// How many event-match leaves a condition has, in the numbering of [`SegmentFacts::leaf_times`].
pub fn leaf_count(condition: &Condition) -> usize {
    match condition {
        Condition::All(children) | Condition::Any(children) => children.iter().map(leaf_count).sum(),
        Condition::Not(child) => leaf_count(child),
        Condition::Event(_)
        | Condition::Catalog(_)
        | Condition::Never(_)
        | Condition::NotWithinDays(_)
        | Condition::Purchases(_) => 1,
        Condition::Sequence(_) => 2,
        Condition::Trait(_)
        | Condition::Visitor(_)
        | Condition::Context(_)
        | Condition::Segment(_)
        | Condition::Score(_) => 0,
    }
}

/// Takes the next leaf number.
fn next_leaf(leaf: &mut usize) -> usize {
    *leaf += 1;
    *leaf - 1
}

fn member(condition: &Condition, facts: &dyn SegmentFacts, now_ms: i64, leaf: &mut usize) -> bool {
    let sorted = facts.times_are_sorted();
    match condition {
        Condition::All(children) | Condition::Any(children) => {
            let wanted = matches!(condition, Condition::Any(_));
            for (i, child) in children.iter().enumerate() {
                if member(child, facts, now_ms, leaf) == wanted {
                    // Decided: the leaves of the children not looked at keep their numbers.
                    *leaf += children[i + 1..].iter().map(leaf_count).sum::<usize>();
                    return wanted;
                }
            }
            !wanted
        }
        Condition::Not(child) => !member(child, facts, now_ms, leaf),
        Condition::Trait(condition) => {
            let value = facts.trait_value(&condition.name).filter(|v| !v.is_null());
            if let TraitTest::BirthdayWithinDays(days) = condition.test {
                let days_until = value.as_ref().and_then(|v| v.as_str()).and_then(|b| days_until_birthday(b, now_ms));
                return days_until.is_some_and(|(d, _)| d <= i64::from(days));
            }
            trait_holds(&condition.test, value.as_ref())
        }
        Condition::Event(condition) => counted_in_window(
            &facts.leaf_times(next_leaf(leaf), &condition.event),
            sorted,
            condition.window,
            now_ms,
            condition.count,
            condition.min_distinct_days,
        ),
        Condition::Catalog(condition) => counted_in_window(
            &facts.leaf_times(next_leaf(leaf), &condition.event),
            sorted,
            condition.window,
            now_ms,
            condition.count,
            condition.min_distinct_days,
        ),
        Condition::Never(condition) => {
            let times = facts.leaf_times(next_leaf(leaf), &condition.event);
            if sorted {
                window_range(&times, condition.window, now_ms).is_empty()
            } else {
                !times.iter().any(|t| condition.window.contains(*t, now_ms))
            }
        }
        Condition::NotWithinDays(condition) => {
            let times = facts.leaf_times(next_leaf(leaf), &condition.event);
            let last_ms = latest_in(&times, sorted, Window::Ever, now_ms);
            let quiet_ms = i64::from(condition.days) * DAY_MS;
            last_ms.is_some_and(|last| last <= now_ms.saturating_sub(quiet_ms))
        }
        Condition::Sequence(condition) => {
            let (first_leaf, then_leaf) = (next_leaf(leaf), next_leaf(leaf));
            let first_times = facts.leaf_times(first_leaf, &condition.first);
            let Some(first_ms) = latest_in(&first_times, sorted, condition.first_window, now_ms) else {
                return false;
            };
            let then = facts.leaf_times(then_leaf, &condition.then_never);
            if sorted {
                then.get(then.partition_point(|t| *t <= first_ms)).is_none_or(|t| *t > now_ms)
            } else {
                !then.iter().any(|t| *t > first_ms && *t <= now_ms)
            }
        }
        Condition::Purchases(condition) => {
            let times = facts.leaf_times(next_leaf(leaf), &PurchasesCondition::event_match());
            let counted = if sorted {
                window_range(&times, condition.window, now_ms).len()
            } else {
                times.iter().filter(|t| condition.window.contains(**t, now_ms)).count()
            };
            let last_ms = latest_in(&times, sorted, Window::Ever, now_ms);
            let mut holds = condition.count.holds(counted);
            if let Some(days) = condition.last_before_days {
                holds &= last_ms.is_some_and(|last| now_ms - last >= i64::from(days) * DAY_MS);
            }
            if let Some(days) = condition.last_within_days {
                holds &= last_ms.is_some_and(|last| now_ms - last < i64::from(days) * DAY_MS);
            }
            holds
        }
        Condition::Visitor(kind) => facts.visitor_kind() == *kind,
        Condition::Context(condition) => facts
            .context(condition.field)
            .as_deref()
            .is_some_and(|v| condition.values.iter().any(|wanted| wanted.trim().eq_ignore_ascii_case(v.trim()))),
        Condition::Segment(id) => facts.is_member(id),
        Condition::Score(condition) => {
            facts.score(&condition.name).filter(|v| v.is_finite()).is_some_and(|v| condition.holds(v))
        }
    }
}

/// The part of ascending `times` inside the window at `now_ms`, by binary search.
fn window_range(times: &[i64], window: Window, now_ms: i64) -> &[i64] {
    let until = times.partition_point(|t| *t <= now_ms);
    let (from, until) = match window {
        Window::Ever => (0, until),
        Window::LastDays(_) | Window::LastHours(_) => {
            let start = now_ms.saturating_sub(window.sliding_ms().unwrap_or(0));
            (times.partition_point(|t| *t <= start), until)
        }
        Window::Between { start_ms, end_ms } => {
            (times.partition_point(|t| *t < start_ms), until.min(times.partition_point(|t| *t < end_ms)))
        }
    };
    &times[from..until.max(from)]
}

/// The latest of `times` inside the window at `now_ms`.
fn latest_in(times: &[i64], sorted: bool, window: Window, now_ms: i64) -> Option<i64> {
    if sorted {
        return window_range(times, window, now_ms).last().copied();
    }
    times.iter().copied().filter(|t| window.contains(*t, now_ms)).max()
}

/// Whether the times inside the window satisfy the count bound and the distinct-days guard,
/// by binary search when they are in order (as an index keeps them).
fn counted_in_window(
    times: &[i64],
    sorted: bool,
    window: Window,
    now_ms: i64,
    count: super::definition::CountBound,
    min_distinct_days: Option<u32>,
) -> bool {
    if !sorted {
        let inside = in_window_sorted(times, window, now_ms);
        return count.holds(inside.len()) && enough_days(&inside, min_distinct_days);
    }
    let inside = window_range(times, window, now_ms);
    if !count.holds(inside.len()) {
        return false;
    }
    let Some(min_days) = min_distinct_days else {
        return true;
    };
    let mut days = 0usize;
    let mut previous: Option<i64> = None;
    for day in inside.iter().map(|t| t.div_euclid(DAY_MS)) {
        if previous != Some(day) {
            days += 1;
            previous = Some(day);
        }
    }
    days >= min_days as usize
}

/// The earliest instant after `now_ms` at which membership changes if no new event arrives, or
/// `None` when it cannot change by time alone. Membership of other segments is taken as it is
/// now: the engine re-evaluates dependants when a referenced segment changes.
pub fn next_change_ms(condition: &Condition, facts: &dyn SegmentFacts, now_ms: i64) -> Option<i64> {
    let mut candidates = Vec::new();
    collect_candidates(condition, facts, now_ms, &mut |t| candidates.push(t));
    candidates.retain(|t| *t > now_ms);
    candidates.sort_unstable();
    candidates.dedup();
    let member_now = evaluate(condition, facts, now_ms).member;
    for (i, candidate) in candidates.iter().enumerate() {
        if i >= MAX_CANDIDATES || evaluate(condition, facts, *candidate).member != member_now {
            return Some(*candidate);
        }
    }
    None
}

fn eval(condition: &Condition, facts: &dyn SegmentFacts, now_ms: i64, path: &str, reasons: &mut Vec<Reason>) -> bool {
    let mut observe = |detail: ReasonDetail| reasons.push(Reason { path: path.to_owned(), now_ms, detail });
    match condition {
        Condition::All(children) | Condition::Any(children) => {
            let is_all = matches!(condition, Condition::All(_));
            let kind = if is_all { "all" } else { "any" };
            let mut holding = Vec::new();
            let mut failing = Vec::new();
            for (i, child) in children.iter().enumerate() {
                let mut child_reasons = Vec::new();
                let holds = eval(child, facts, now_ms, &format!("{path}.{kind}[{i}]"), &mut child_reasons);
                if holds {
                    holding.extend(child_reasons);
                } else {
                    failing.extend(child_reasons);
                }
            }
            let result = if is_all { failing.is_empty() } else { !holding.is_empty() };
            // A member is explained by what holds, a non-member by what failed.
            reasons.extend(if result { holding } else { failing });
            result
        }
        Condition::Not(child) => !eval(child, facts, now_ms, &format!("{path}.not"), reasons),
        Condition::Trait(condition) => {
            let value = facts.trait_value(&condition.name).filter(|v| !v.is_null());
            if let TraitTest::BirthdayWithinDays(days) = condition.test {
                let days_until = value.as_ref().and_then(|v| v.as_str()).and_then(|b| days_until_birthday(b, now_ms));
                observe(ReasonDetail::Birthday { days_until: days_until.map(|(d, _)| d) });
                return days_until.is_some_and(|(d, _)| d <= i64::from(days));
            }
            let holds = trait_holds(&condition.test, value.as_ref());
            observe(ReasonDetail::Trait { name: condition.name.clone(), value });
            holds
        }
        Condition::Event(condition) => {
            let times = in_window_sorted(&facts.matching_times(&condition.event), condition.window, now_ms);
            observe(events_detail(&condition.event, &times, condition.window));
            condition.count.holds(times.len()) && enough_days(&times, condition.min_distinct_days)
        }
        Condition::Catalog(condition) => {
            let times = in_window_sorted(&facts.matching_times(&condition.event), condition.window, now_ms);
            observe(events_detail(&condition.event, &times, condition.window));
            condition.count.holds(times.len()) && enough_days(&times, condition.min_distinct_days)
        }
        Condition::Never(condition) => {
            let times = in_window_sorted(&facts.matching_times(&condition.event), condition.window, now_ms);
            observe(events_detail(&condition.event, &times, condition.window));
            times.is_empty()
        }
        Condition::NotWithinDays(condition) => {
            let last_ms = latest_in(&facts.matching_times(&condition.event), false, Window::Ever, now_ms);
            observe(ReasonDetail::LastEvent { event: condition.event.name.clone(), last_ms });
            let quiet_ms = i64::from(condition.days) * DAY_MS;
            last_ms.is_some_and(|last| last <= now_ms.saturating_sub(quiet_ms))
        }
        Condition::Sequence(condition) => {
            let first_ms = latest_in(&facts.matching_times(&condition.first), false, condition.first_window, now_ms);
            let followed = first_ms.is_some_and(|first| {
                facts.matching_times(&condition.then_never).iter().any(|t| *t > first && *t <= now_ms)
            });
            observe(ReasonDetail::Sequence {
                first_event: condition.first.name.clone(),
                then_event: condition.then_never.name.clone(),
                first_ms,
                followed,
            });
            first_ms.is_some() && !followed
        }
        Condition::Purchases(condition) => {
            let all = in_window_sorted(&facts.matching_times(&PurchasesCondition::event_match()), Window::Ever, now_ms);
            let counted = all.iter().filter(|t| condition.window.contains(**t, now_ms)).count();
            observe(ReasonDetail::PurchaseCount { count: counted, window: condition.window });
            let last_ms = all.last().copied();
            let mut holds = condition.count.holds(counted);
            if condition.last_before_days.is_some() || condition.last_within_days.is_some() {
                reasons.push(Reason { path: path.to_owned(), now_ms, detail: ReasonDetail::LastPurchase { last_ms } });
            }
            if let Some(days) = condition.last_before_days {
                holds &= last_ms.is_some_and(|last| now_ms - last >= i64::from(days) * DAY_MS);
            }
            if let Some(days) = condition.last_within_days {
                holds &= last_ms.is_some_and(|last| now_ms - last < i64::from(days) * DAY_MS);
            }
            holds
        }
        Condition::Visitor(kind) => {
            let actual = facts.visitor_kind();
            observe(ReasonDetail::Visitor(actual));
            actual == *kind
        }
        Condition::Context(condition) => {
            let value = facts.context(condition.field);
            let holds = value
                .as_deref()
                .is_some_and(|v| condition.values.iter().any(|wanted| wanted.trim().eq_ignore_ascii_case(v.trim())));
            observe(ReasonDetail::Context { field: condition.field, value });
            holds
        }
        Condition::Segment(id) => {
            let member = facts.is_member(id);
            observe(ReasonDetail::Segment { id: id.clone(), member });
            member
        }
        Condition::Score(condition) => {
            let value = facts.score(&condition.name).filter(|v| v.is_finite());
            observe(ReasonDetail::Score { name: condition.name.clone(), value });
            value.is_some_and(|v| condition.holds(v))
        }
    }
}

fn trait_holds(test: &TraitTest, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        return matches!(test, TraitTest::NotExists);
    };
    let number = || as_number(value);
    let instant = || value.as_str().and_then(parse_iso8601_ms);
    match test {
        TraitTest::Equals(expected) => scalar_eq(value, expected),
        TraitTest::NotEquals(expected) => !scalar_eq(value, expected),
        TraitTest::In(options) => options.iter().any(|o| scalar_eq(value, o)),
        TraitTest::Exists => true,
        TraitTest::NotExists => false,
        TraitTest::Gt(n) => number().is_some_and(|v| v > *n),
        TraitTest::Gte(n) => number().is_some_and(|v| v >= *n),
        TraitTest::Lt(n) => number().is_some_and(|v| v < *n),
        TraitTest::Lte(n) => number().is_some_and(|v| v <= *n),
        TraitTest::Before(ms) => instant().is_some_and(|v| v < *ms),
        TraitTest::After(ms) => instant().is_some_and(|v| v > *ms),
        // Handled before this function is called, because it needs the clock.
        TraitTest::BirthdayWithinDays(_) => false,
    }
}

/// The matching times that lie in the window at `now_ms`, ascending.
fn in_window_sorted(times: &[i64], window: Window, now_ms: i64) -> Vec<i64> {
    let mut inside: Vec<i64> = times.iter().copied().filter(|t| window.contains(*t, now_ms)).collect();
    inside.sort_unstable();
    inside
}

fn enough_days(sorted_times: &[i64], min_distinct_days: Option<u32>) -> bool {
    let Some(min_days) = min_distinct_days else {
        return true;
    };
    let mut days: Vec<i64> = sorted_times.iter().map(|t| t.div_euclid(DAY_MS)).collect();
    days.dedup();
    days.len() >= min_days as usize
}

fn events_detail(event: &EventMatch, sorted_times: &[i64], window: Window) -> ReasonDetail {
    ReasonDetail::Events {
        event: event.name.clone(),
        category: event.category.clone(),
        count: sorted_times.len(),
        window,
        first_ms: sorted_times.first().copied(),
        last_ms: sorted_times.last().copied(),
    }
}

/// Reads a `YYYY-MM-DD` or `--MM-DD` birthday and returns the whole UTC days from `now_ms` to
/// its next anniversary (0 on the day) and that anniversary's UTC day number. A Feb 29 birthday
/// is celebrated on Feb 28 in common years.
fn days_until_birthday(birthday: &str, now_ms: i64) -> Option<(i64, i64)> {
    let birthday = birthday.trim();
    let month_day = match birthday.strip_prefix("--") {
        Some(rest) => rest,
        None => birthday.get(5..10).filter(|_| birthday.len() >= 10 && birthday.as_bytes().get(4) == Some(&b'-'))?,
    };
    let (month_text, day_text) = month_day.split_once('-')?;
    let month: i8 = month_text.parse().ok()?;
    let day: i8 = day_text.get(..2).unwrap_or(day_text).parse().ok()?;
    // Reject impossible dates such as 02-30 by checking them in a leap year.
    jiff::civil::Date::new(2000, month, day).ok()?;
    let today = jiff::Timestamp::from_millisecond(now_ms).ok()?.to_zoned(jiff::tz::TimeZone::UTC).date();
    let today_day = now_ms.div_euclid(DAY_MS);
    for year in [today.year(), today.year().checked_add(1)?] {
        let anniversary =
            jiff::civil::Date::new(year, month, day).or_else(|_| jiff::civil::Date::new(year, month, day - 1)).ok()?;
        let anniversary_day = utc_day(anniversary)?;
        if anniversary_day >= today_day {
            return Some((anniversary_day - today_day, anniversary_day));
        }
    }
    None
}

fn utc_day(date: jiff::civil::Date) -> Option<i64> {
    let ms = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_millisecond();
    Some(ms.div_euclid(DAY_MS))
}

/// Instants at which some leaf's truth may change: events leaving or entering windows, quiet
/// periods ending, birthday windows opening and closing.
fn collect_candidates(condition: &Condition, facts: &dyn SegmentFacts, now_ms: i64, out: &mut dyn FnMut(i64)) {
    candidates_at(condition, facts, now_ms, &mut 0, out);
}

fn candidates_at(
    condition: &Condition,
    facts: &dyn SegmentFacts,
    now_ms: i64,
    leaf: &mut usize,
    out: &mut dyn FnMut(i64),
) {
    let window_edges = |times: &[i64], window: Window, out: &mut dyn FnMut(i64)| {
        for &t in times {
            // An event dated in the future enters every window when its time comes.
            out(t);
            if let Some(length_ms) = window.sliding_ms() {
                out(t.saturating_add(length_ms));
            }
        }
    };
    match condition {
        Condition::All(children) | Condition::Any(children) => {
            for child in children {
                candidates_at(child, facts, now_ms, leaf, out);
            }
        }
        Condition::Not(child) => candidates_at(child, facts, now_ms, leaf, out),
        Condition::Event(condition) => {
            window_edges(&facts.leaf_times(next_leaf(leaf), &condition.event), condition.window, out)
        }
        Condition::Catalog(condition) => {
            window_edges(&facts.leaf_times(next_leaf(leaf), &condition.event), condition.window, out)
        }
        Condition::Never(condition) => {
            window_edges(&facts.leaf_times(next_leaf(leaf), &condition.event), condition.window, out)
        }
        Condition::NotWithinDays(condition) => {
            let quiet_ms = i64::from(condition.days) * DAY_MS;
            for &t in facts.leaf_times(next_leaf(leaf), &condition.event).iter() {
                out(t);
                out(t.saturating_add(quiet_ms));
            }
        }
        Condition::Sequence(condition) => {
            window_edges(&facts.leaf_times(next_leaf(leaf), &condition.first), condition.first_window, out);
            for &t in facts.leaf_times(next_leaf(leaf), &condition.then_never).iter() {
                out(t);
            }
        }
        Condition::Purchases(condition) => {
            let times = facts.leaf_times(next_leaf(leaf), &PurchasesCondition::event_match());
            for days in [condition.last_before_days, condition.last_within_days].into_iter().flatten() {
                for &t in times.iter() {
                    out(t.saturating_add(i64::from(days) * DAY_MS));
                }
            }
            window_edges(&times, condition.window, out);
        }
        Condition::Trait(condition) => {
            if let TraitTest::BirthdayWithinDays(days) = condition.test {
                let birthday = facts.trait_value(&condition.name);
                if let Some((_, anniversary_day)) =
                    birthday.as_ref().and_then(Value::as_str).and_then(|b| days_until_birthday(b, now_ms))
                {
                    out((anniversary_day - i64::from(days)) * DAY_MS);
                    out((anniversary_day + 1) * DAY_MS);
                }
            }
        }
        Condition::Visitor(_) | Condition::Context(_) | Condition::Segment(_) | Condition::Score(_) => {}
    }
}

/// Renders a reason as a sentence addressed to the person, for "why am I seeing this?".
pub fn explain(reason: &Reason) -> String {
    let now_ms = reason.now_ms;
    match &reason.detail {
        ReasonDetail::Events { event, category, count, window, .. } => {
            let category = category.as_deref();
            if *count == 0 {
                format!("You have not {}{}.", action(event, category, true), window_phrase(*window))
            } else {
                let times = if *count == 1 { "once".to_owned() } else { format!("{count} times") };
                format!("You {} {times}{}.", action(event, category, false), window_phrase(*window))
            }
        }
        ReasonDetail::LastEvent { event, last_ms: Some(last) } => {
            format!("You last {} {}.", action(event, None, false), ago(now_ms - last))
        }
        ReasonDetail::LastEvent { event, last_ms: None } => format!("You have never {}.", action(event, None, true)),
        ReasonDetail::Sequence { first_event, then_event, first_ms: Some(first), followed } => {
            let first_action = action(first_event, None, false);
            if *followed {
                format!(
                    "You {first_action} {} and {} after that.",
                    ago(now_ms - first),
                    action(then_event, None, false)
                )
            } else {
                format!(
                    "You {first_action} {} and have not {} since.",
                    ago(now_ms - first),
                    action(then_event, None, true)
                )
            }
        }
        ReasonDetail::Sequence { first_event, first_ms: None, .. } => {
            format!("You have not {} recently.", action(first_event, None, true))
        }
        ReasonDetail::PurchaseCount { count: 0, window } => {
            format!("You have not made a purchase{}.", window_phrase(*window))
        }
        ReasonDetail::PurchaseCount { count, window } => {
            let noun = if *count == 1 { "purchase" } else { "purchases" };
            format!("You have made {count} {noun}{}.", window_phrase(*window))
        }
        ReasonDetail::LastPurchase { last_ms: Some(last) } => format!("Your last purchase was {}.", ago(now_ms - last)),
        ReasonDetail::LastPurchase { last_ms: None } => "You have not made a purchase yet.".to_owned(),
        ReasonDetail::Trait { name, value: Some(value) } => {
            let shown = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            format!("Your {} is {shown}.", name.replace('_', " "))
        }
        ReasonDetail::Trait { name, value: None } => format!("Your {} is not known.", name.replace('_', " ")),
        ReasonDetail::Birthday { days_until: Some(0) } => "Your birthday is today.".to_owned(),
        ReasonDetail::Birthday { days_until: Some(1) } => "Your birthday is tomorrow.".to_owned(),
        ReasonDetail::Birthday { days_until: Some(days) } => format!("Your birthday is in {days} days."),
        ReasonDetail::Birthday { days_until: None } => "Your birthday is not known.".to_owned(),
        ReasonDetail::Visitor(VisitorKind::New) => "This is your first visit.".to_owned(),
        ReasonDetail::Visitor(VisitorKind::Returning) => "You have visited before.".to_owned(),
        ReasonDetail::Context { field, value: Some(value) } => match field {
            ContextField::Country => format!("You are visiting from {value}."),
            ContextField::Region => format!("You are visiting from the region {value}."),
            ContextField::UtmSource => format!("You arrived from the source \"{value}\"."),
            ContextField::UtmMedium => format!("You arrived through the medium \"{value}\"."),
            ContextField::UtmCampaign => format!("You arrived through the campaign \"{value}\"."),
            ContextField::ReferrerDomain => format!("You came from {value}."),
            ContextField::Device => format!("You are on a {value} device."),
        },
        ReasonDetail::Context { field, value: None } => {
            format!("Your {} is not known.", field.as_str().replace('_', " "))
        }
        ReasonDetail::Segment { id, member: true } => format!("You are in the segment \"{}\".", id.as_str()),
        ReasonDetail::Segment { id, member: false } => format!("You are not in the segment \"{}\".", id.as_str()),
        ReasonDetail::Score { name, value: Some(value) } => score_sentence(name, *value),
        ReasonDetail::Score { name, value: None } => format!("No {} score is known for you.", name.replace('_', " ")),
    }
}

/// A model score in words: the scores Regard's predictive models serve read as sentences, any
/// other as "Your x score is 0.42".
fn score_sentence(name: &str, value: f64) -> String {
    let percent = |p: f64| format!("{:.0}%", (p * 100.0).clamp(0.0, 100.0));
    let days = |d: f64| {
        if d >= 0.5 {
            format!("in {d:.0} days")
        } else if d > -0.5 {
            "about now".to_owned()
        } else {
            format!("{:.0} days ago", -d)
        }
    };
    match name {
        "churn_risk" => format!("Your predicted risk of having stopped buying is {}.", percent(value)),
        "p_alive" => format!("You are predicted {} likely to still be a customer.", percent(value)),
        "offer_sensitivity" => format!("About {} of your orders are predicted to use an offer.", percent(value)),
        "expected_orders_30d" | "expected_orders_90d" => {
            let window = name.trim_start_matches("expected_orders_");
            format!("You are expected to order {value:.1} times in the next {}.", window.replace('d', " days"))
        }
        "days_until_next_order" => format!("Your next order is predicted {}.", days(value)),
        "days_until_reorder_reminder" => format!("Your reorder reminder is due {}.", days(value)),
        "clv_12m" => format!("Your predicted spend over the next 12 months is {value:.2}."),
        _ => match name.strip_prefix("propensity.") {
            Some(category) => format!(
                "You are predicted {} likely to buy {} in the next 30 days.",
                percent(value),
                category.replace('_', " ")
            ),
            None => format!("Your {} score is {value:.2}.", name.replace('_', " ")),
        },
    }
}

/// What the person did, as a verb phrase. The participle form follows "have not"; for the
/// well-known e-commerce events it equals the past tense.
fn action(event: &str, category: Option<&str>, participle: bool) -> String {
    match (event, category) {
        (PRODUCT_VIEWED, Some(category)) => format!("viewed {category}"),
        (PRODUCT_VIEWED, None) => "viewed products".to_owned(),
        ("Product Added", Some(category)) => format!("added {category} to your cart"),
        ("Product Added", None) => "added items to your cart".to_owned(),
        (ORDER_COMPLETED, _) => "completed an order".to_owned(),
        ("Checkout Started", _) => "started checkout".to_owned(),
        ("Signed Up", _) => "signed up".to_owned(),
        (other, Some(category)) if participle => format!("done \"{other}\" in {category}"),
        (other, Some(category)) => format!("did \"{other}\" in {category}"),
        (other, None) if participle => format!("done \"{other}\""),
        (other, None) => format!("did \"{other}\""),
    }
}

fn window_phrase(window: Window) -> String {
    match window {
        Window::Ever => String::new(),
        Window::LastDays(1) => " in the last day".to_owned(),
        Window::LastDays(days) => format!(" in the last {days} days"),
        Window::LastHours(1) => " in the last hour".to_owned(),
        Window::LastHours(hours) => format!(" in the last {hours} hours"),
        Window::Between { start_ms, end_ms } => format!(" between {} and {}", date_text(start_ms), date_text(end_ms)),
    }
}

fn date_text(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
        Err(_) => ms.to_string(),
    }
}

fn ago(elapsed_ms: i64) -> String {
    let plural = |n: i64, unit: &str| if n == 1 { format!("1 {unit} ago") } else { format!("{n} {unit}s ago") };
    if elapsed_ms >= DAY_MS {
        plural(elapsed_ms / DAY_MS, "day")
    } else if elapsed_ms >= HOUR_MS {
        plural(elapsed_ms / HOUR_MS, "hour")
    } else if elapsed_ms >= MINUTE_MS {
        plural(elapsed_ms / MINUTE_MS, "minute")
    } else {
        "just now".to_owned()
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
