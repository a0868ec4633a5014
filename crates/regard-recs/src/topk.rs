//! A bounded collector of the best-scored items, shared by the latent model's searches and the
//! model's candidate lists.
//!
//! The order is total and does not depend on the order items are offered in: a higher score
//! first, and among equal scores the smaller item. That is what lets the quantized ALS search
//! offer items in any order and still return the list a full scan in index order returns.
//!
//! Offers go to a buffer; when it holds twice the limit, a linear-time selection keeps the best
//! `limit` and raises the bar an offer must clear. Each offer costs O(1) amortised, against
//! O(log limit) for a heap, and most offers are refused by one comparison.

use std::cmp::Ordering;

use crate::interactions::ItemIdx;

/// A score with its item, ordered by score and then by the smaller item first: `a > b` when
/// `a` ranks before `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored(pub f32, pub ItemIdx);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// The best `limit` items offered so far.
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    limit: usize,
    /// Every offer that beat `bar` when it was made, best ones somewhere among them.
    buffer: Vec<Scored>,
    /// The worst of `limit` items known to be offered: anything not better cannot make the
    /// list. `None` until `limit` items have been kept once.
    bar: Option<Scored>,
}

impl TopK {
    /// An empty collector that keeps at most `limit` items.
    pub(crate) fn new(limit: usize) -> TopK {
        TopK { limit, buffer: Vec::with_capacity(limit.saturating_mul(2).min(1 << 16)), bar: None }
    }

    /// The most items kept.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Whether [`TopK::offer`] would take `item` with `score`: a cheap test to run before a
    /// costlier one (is the item excluded?). It may say yes to an item that later turns out
    /// not to be among the best; it never says no to one that is.
    pub(crate) fn would_keep(&self, score: f32, item: ItemIdx) -> bool {
        self.limit > 0 && !score.is_nan() && self.bar.is_none_or(|bar| Scored(score + 0.0, item) > bar)
    }

    /// Takes `item` if it can still be among the best `limit`. NaN scores are never kept, and
    /// a negative zero counts as zero so that the order cannot depend on the sign of a zero sum.
    pub(crate) fn offer(&mut self, score: f32, item: ItemIdx) {
        if !self.would_keep(score, item) {
            return;
        }
        self.buffer.push(Scored(score + 0.0, item));
        if self.buffer.len() >= self.limit.saturating_mul(2).max(self.limit + 1) {
            self.compact();
        }
    }

    /// Keeps the best `limit` of the buffer and sets the bar to the worst of them.
    fn compact(&mut self) {
        if self.buffer.len() >= self.limit && self.limit > 0 {
            self.buffer.select_nth_unstable_by(self.limit - 1, |a, b| b.cmp(a));
            self.buffer.truncate(self.limit);
            self.bar = self.buffer.iter().min().copied();
        }
    }

    /// The kept items, best first.
    pub(crate) fn into_sorted(mut self) -> Vec<Scored> {
        self.compact();
        let mut list = self.buffer;
        list.sort_unstable_by(|a, b| b.cmp(a));
        list.truncate(self.limit);
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best(limit: usize, offers: &[(f32, u32)]) -> Vec<(f32, u32)> {
        let mut top = TopK::new(limit);
        for &(score, item) in offers {
            top.offer(score, ItemIdx(item));
        }
        top.into_sorted().into_iter().map(|s| (s.0, s.1 .0)).collect()
    }

    #[test]
    fn keeps_the_best_and_breaks_ties_to_the_smaller_item_whatever_the_offer_order() {
        let offers = [(0.5, 4), (0.9, 7), (0.5, 2), (f32::NAN, 0), (0.1, 1), (0.5, 3), (-0.0, 9), (0.0, 8)];
        let expected = vec![(0.9, 7), (0.5, 2), (0.5, 3)];
        assert_eq!(best(3, &offers), expected);
        let mut reversed = offers;
        reversed.reverse();
        assert_eq!(best(3, &reversed), expected);
        assert_eq!(best(0, &offers), vec![]);
        assert_eq!(best(10, &offers).len(), 7, "NaN is never kept");
        assert_eq!(best(10, &offers)[5..], [(0.0, 8), (0.0, 9)], "-0 ties with 0");
    }

    #[test]
    fn many_offers_keep_the_same_list_as_a_full_sort() {
        let mut state = 1_u64;
        let offers: Vec<(f32, u32)> = (0..5_000)
            .map(|item| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((state >> 54) as f32, item)
            })
            .collect();
        let mut sorted = offers.clone();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for limit in [1, 7, 200, 4_999, 6_000] {
            assert_eq!(best(limit, &offers), sorted[..limit.min(sorted.len())], "limit {limit}");
        }
    }

    #[test]
    fn the_bar_never_refuses_an_item_that_belongs() {
        let mut top = TopK::new(2);
        for (score, item) in [(0.3, 1), (0.7, 2), (0.5, 3), (0.6, 4)] {
            top.offer(score, ItemIdx(item));
        }
        // The buffer compacted to {0.7, 0.6} at the fourth offer: 0.6 is the bar.
        assert!(!top.would_keep(0.6, ItemIdx(5)), "equal score, larger item");
        assert!(top.would_keep(0.6, ItemIdx(0)), "equal score, smaller item");
        assert!(top.would_keep(0.65, ItemIdx(9)));
    }
}
