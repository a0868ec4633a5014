//! An 8-bit copy of the ALS item vectors that finds a user's exact top items while reading a
//! quarter of the bytes.
//!
//! Scoring a query against every item vector in f32 reads 4 bytes a factor (5 MB for 20,000
//! items of 64 factors), more than a core's L2 holds, so it runs at memory speed. Here every
//! item vector is stored as 8-bit codes with one scale (`y ≈ sᵢ·cᵢ`, |cᵢ| ≤ 127) and the query
//! as 7-bit codes (`x ≈ s·q`, |q| ≤ 63); a first pass computes the integer products `q·cᵢ` for
//! all items with AVX2 (1.3 MB, in cache), and each approximate score comes with a guaranteed
//! error bound:
//!
//! x·y − s·sᵢ·(q·cᵢ) = x·eᵢ + d·ŷᵢ, so |error| ≤ ‖x‖·‖eᵢ‖ + ‖d‖·‖ŷᵢ‖,
//!
//! where `eᵢ = yᵢ − sᵢcᵢ` and `d = x − s·q` are the rounding residues and `ŷᵢ = sᵢcᵢ`. Once k
//! items are known to score at least T (their lower bounds), an item whose upper bound is
//! below T cannot be among the k best, so only the few items whose upper bound reaches T are
//! scored exactly, with the same f32 dot product as the exhaustive scan. The result is the
//! exhaustive scan's list, not an approximation of it.
//!
//! The first pass needs AVX2, detected at run time (the binary stays built for baseline
//! x86-64); without it [`QuantizedItems::build`] returns `None` and ALS scores every item.

use crate::interactions::ItemIdx;
use crate::topk::TopK;

/// Items the kernel scores at once: one AVX2 register holds 4 factors of each of 8 items as
/// bytes, and after the multiply-adds one i32 sum per item.
const BLOCK: usize = 8;

/// Factors per item in one register.
const QUAD: usize = 4;

/// Bytes in one register.
const LANES: usize = BLOCK * QUAD;

/// Items in a span: [`BLOCK`] blocks. Within a span, the items at the same position of every
/// block form a group (items `s + l`, `s + 8 + l`, … `s + 56 + l`), whose largest bounds the
/// kernel gets with one vertical max per block, and which the search skips whole. The codes
/// and per-item terms are padded to whole spans with items whose bounds are (−∞, +∞), which no
/// threshold selects and every search skips.
const SPAN: usize = BLOCK * BLOCK;

/// The largest item code magnitude. Item codes are stored offset by 128, as unsigned bytes,
/// because the AVX2 byte multiply-add takes one unsigned operand.
const MAX_ITEM_CODE: f64 = 127.0;

/// The offset of stored item codes.
const ITEM_CODE_OFFSET: i32 = 128;

/// The largest query code magnitude: the byte multiply-add sums two products in an i16, and
/// 2 × 255 × 63 = 32,130 fits where 2 × 255 × 127 would not. An item's i32 sum stays below
/// 1024 × 255 × 63 < 2³¹, and its offset-corrected product below 1024 × 127 × 63 < 2²⁴, so it
/// converts to f32 exactly, for every factor count the configuration allows.
const MAX_QUERY_CODE: f64 = 63.0;

/// Relative slack on the stored error terms. The f32 arithmetic around the exact integer
/// products (scaling, the reference dot product, the bound itself) errs by at most a few
/// times 10⁻⁷ of ‖x‖·‖y‖; the slack below covers it many times over and widens the rescored
/// set by a handful of items at most.
const RELATIVE_SLACK: f64 = 1e-4;

/// Slack per unit of ‖x‖·‖yᵢ‖, for the rounding of the approximate and the exact score.
const NORM_SLACK: f64 = 1e-5;

/// How many skipped items the threshold's first try makes room for (see
/// [`QuantizedItems::search`]); more only cost a second try.
const SKIP_HEADROOM: usize = 64;

/// The 8-bit item vectors and the per-item terms of their error bound.
#[derive(Debug, Clone)]
pub(crate) struct QuantizedItems {
    n_items: usize,
    factors: usize,
    /// Groups of 4 factors per item (the last padded with zero codes).
    quads: usize,
    /// Block after block of 8 items, `quads` registers each: register t of a block holds, at
    /// byte 4k + j, the code of the block's item k for factor 4t + j, plus
    /// [`ITEM_CODE_OFFSET`]. Padded to whole spans.
    codes: Vec<[u8; LANES]>,
    /// sᵢ: yᵢ ≈ sᵢ·cᵢ (0 for padding).
    scales: Vec<f32>,
    /// ‖eᵢ‖ plus the slack for rounding, multiplied by ‖x‖ at query time (+∞ for padding).
    error_norms: Vec<f32>,
    /// ‖ŷᵢ‖ plus slack, multiplied by ‖d‖ at query time (0 for padding).
    code_norms: Vec<f32>,
}

/// A query vector in 7 bits, with the query-side terms of the bound.
struct QuantizedQuery {
    /// Per group of 4 factors, their codes repeated for the 8 items of a block.
    codes: Vec<[i8; LANES]>,
    /// `ITEM_CODE_OFFSET · Σ q`, which the offset item codes add to every product.
    offset_correction: i32,
    scale: f32,
    /// ‖x‖ plus slack.
    norm: f32,
    /// ‖x − s·q‖ plus slack.
    residue_norm: f32,
}

/// Each item's approximate score, and the largest lower and upper bound of each group (see
/// [`SPAN`]), which let the search skip groups whole. An item's own bounds are recomputed when
/// its group is visited ([`QuantizedItems::bound`]), with the same operations as the kernel.
struct Bounds {
    approximate: Vec<f32>,
    group_lower: Vec<f32>,
    group_upper: Vec<f32>,
}

/// The items of group `group`.
fn group_items(group: usize) -> impl Iterator<Item = usize> {
    let first = group / BLOCK * SPAN + group % BLOCK;
    (first..first + SPAN).step_by(BLOCK)
}

/// What one search did, for tests and tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SearchStats {
    /// Items scored exactly after the first pass.
    pub rescored: usize,
}

/// `value` as f32, never below it.
fn round_up(value: f64) -> f32 {
    let rounded = value as f32;
    if f64::from(rounded) < value {
        rounded.next_up()
    } else {
        rounded
    }
}

/// The scale that maps the largest magnitude of `values` to `max_code` (0 for a zero vector),
/// in f32 so that encoding and decoding use the same value.
fn scale_of(values: &[f32], max_code: f64) -> f32 {
    (values.iter().fold(0.0_f64, |m, &v| m.max(f64::from(v).abs())) / max_code) as f32
}

/// Codes of `values` at `scale` (rounded to the nearest, clamped to ±`max_code`), with the
/// norms of the residue and of the decoded vector, in f64.
fn encode(values: &[f32], scale: f32, max_code: f64, codes: &mut [i8]) -> (f64, f64) {
    let scale = f64::from(scale);
    let (mut residue, mut decoded) = (0.0_f64, 0.0_f64);
    for (&value, code) in values.iter().zip(codes.iter_mut()) {
        let c = if scale > 0.0 { (f64::from(value) / scale).round().clamp(-max_code, max_code) } else { 0.0 };
        *code = c as i8;
        residue += (f64::from(value) - c * scale).powi(2);
        decoded += (c * scale).powi(2);
    }
    (residue.sqrt(), decoded.sqrt())
}

/// The Euclidean norm, in f64.
fn norm_of(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt()
}

impl QuantizedItems {
    /// Encodes the item vectors (`factors` floats each, in item order), or `None` when this CPU
    /// cannot run the first pass or a vector is not finite (then ALS scores every item).
    pub(crate) fn build(item_factors: &[f32], factors: usize) -> Option<QuantizedItems> {
        if !kernel::available() || factors == 0 || item_factors.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let quads = factors.div_ceil(QUAD);
        let n_items = item_factors.len() / factors;
        let padded_items = n_items.div_ceil(SPAN) * SPAN;
        let mut codes = vec![[ITEM_CODE_OFFSET as u8; LANES]; padded_items / BLOCK * quads];
        let mut scales = vec![0.0; padded_items];
        let mut error_norms = vec![f32::INFINITY; padded_items];
        let mut code_norms = vec![0.0; padded_items];
        let mut item_codes = vec![0_i8; factors];
        for (item, y) in item_factors.chunks_exact(factors).enumerate() {
            let scale = scale_of(y, MAX_ITEM_CODE);
            let (residue, decoded) = encode(y, scale, MAX_ITEM_CODE, &mut item_codes);
            let (block, k) = (item / BLOCK, item % BLOCK);
            for (factor, &code) in item_codes.iter().enumerate() {
                codes[block * quads + factor / QUAD][k * QUAD + factor % QUAD] =
                    (i32::from(code) + ITEM_CODE_OFFSET) as u8;
            }
            scales[item] = scale;
            error_norms[item] = round_up(residue * (1.0 + RELATIVE_SLACK) + norm_of(y) * NORM_SLACK);
            code_norms[item] = round_up(decoded * (1.0 + RELATIVE_SLACK));
        }
        Some(QuantizedItems { n_items, factors, quads, codes, scales, error_norms, code_norms })
    }

    /// Heap bytes held: a byte a factor (rounded up to 4) and 12 bytes an item.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.codes.capacity() * LANES
            + (self.scales.capacity() + self.error_norms.capacity() + self.code_norms.capacity()) * 4
    }

    /// The query in 7 bits, or `None` for a vector of zeros, with a non-finite value, or of
    /// another length than the items'.
    fn query(&self, user: &[f32]) -> Option<QuantizedQuery> {
        if user.iter().any(|v| !v.is_finite()) || user.len() != self.factors {
            return None;
        }
        let scale = scale_of(user, MAX_QUERY_CODE);
        if scale <= 0.0 {
            return None;
        }
        let mut codes = vec![0_i8; self.quads * QUAD];
        let (residue, _) = encode(user, scale, MAX_QUERY_CODE, &mut codes);
        let offset_correction = ITEM_CODE_OFFSET * codes.iter().map(|&c| i32::from(c)).sum::<i32>();
        let repeated = codes
            .chunks_exact(QUAD)
            .map(|quad| {
                let mut lanes = [0_i8; LANES];
                for item_lanes in lanes.chunks_exact_mut(QUAD) {
                    item_lanes.copy_from_slice(quad);
                }
                lanes
            })
            .collect();
        Some(QuantizedQuery {
            codes: repeated,
            offset_correction,
            scale,
            norm: round_up(norm_of(user) * (1.0 + RELATIVE_SLACK)),
            residue_norm: round_up(residue * (1.0 + RELATIVE_SLACK)),
        })
    }

    /// Offers to `top` every item that can be among its best, scored by `exact` (the item's
    /// exact score for `user`), leaving out the items `skip` names; the others are left
    /// unscored. Returns `None`, having offered nothing, when the first pass cannot run (no
    /// AVX2, a zero or non-finite query): the caller then scores every item.
    pub(crate) fn search(
        &self,
        user: &[f32],
        top: &mut TopK,
        exact: impl Fn(usize) -> f32,
        skip: impl Fn(ItemIdx) -> bool,
    ) -> Option<SearchStats> {
        let query = self.query(user)?;
        let bounds = self.bounds(&query)?;
        let threshold = self.threshold(&query, &bounds, top.limit(), &skip);
        let mut rescore: Vec<usize> = Vec::with_capacity(2 * top.limit());
        for (group, _) in bounds.group_upper.iter().enumerate().filter(|(_, &upper)| upper >= threshold) {
            for idx in group_items(group).take_while(|&idx| idx < self.n_items) {
                if bounds.approximate[idx] + self.bound(&query, idx) >= threshold && !skip(ItemIdx(idx as u32)) {
                    rescore.push(idx);
                }
            }
        }
        // The exact scores first, in a loop of independent dot products, so that the reads of
        // their vectors (mostly cache misses) overlap.
        let scores: Vec<f32> = rescore.iter().map(|&idx| exact(idx)).collect();
        for (&idx, &score) in rescore.iter().zip(&scores) {
            top.offer(score, ItemIdx(idx as u32));
        }
        Some(SearchStats { rescored: rescore.len() })
    }

    /// Runs the first pass.
    fn bounds(&self, query: &QuantizedQuery) -> Option<Bounds> {
        let padded_items = self.scales.len();
        let mut bounds = Bounds {
            approximate: vec![0.0; padded_items],
            group_lower: vec![0.0; padded_items / BLOCK],
            group_upper: vec![0.0; padded_items / BLOCK],
        };
        kernel::bounds(self, query, &mut bounds)?;
        Some(bounds)
    }

    /// The half-width of item `idx`'s score interval, computed as the kernel computes it.
    fn bound(&self, query: &QuantizedQuery, idx: usize) -> f32 {
        query.norm * self.error_norms[idx] + query.residue_norm * self.code_norms[idx]
    }

    /// The k-th best lower bound among the items `skip` lets through (−∞ with fewer): at
    /// least k of them score that much, so an item whose upper bound is below it cannot make
    /// the list.
    fn threshold(&self, query: &QuantizedQuery, bounds: &Bounds, k: usize, skip: impl Fn(ItemIdx) -> bool) -> f32 {
        if k == 0 {
            return f32::INFINITY;
        }
        let descending = |a: &f32, b: &f32| b.total_cmp(a);
        let mut group_maxima = bounds.group_lower.clone();
        // The skipped items are the person's own, which tend to score high: leave room for a
        // history of 64 items, and look deeper if that was not enough.
        let mut rank = k + SKIP_HEADROOM;
        loop {
            // At least `rank` items (one per group) have a lower bound at or above the rank-th
            // best group maximum; if k of them are let through, the k-th best is among them.
            let floor = if rank < group_maxima.len() {
                *group_maxima.select_nth_unstable_by(rank - 1, descending).1
            } else {
                f32::NEG_INFINITY
            };
            let mut candidates: Vec<f32> = Vec::with_capacity(rank);
            for (group, _) in bounds.group_lower.iter().enumerate().filter(|(_, &lower)| lower >= floor) {
                for idx in group_items(group).take_while(|&idx| idx < self.n_items) {
                    let lower = bounds.approximate[idx] - self.bound(query, idx);
                    if lower >= floor && !skip(ItemIdx(idx as u32)) {
                        candidates.push(lower);
                    }
                }
            }
            if candidates.len() >= k {
                return *candidates.select_nth_unstable_by(k - 1, descending).1;
            }
            if floor == f32::NEG_INFINITY {
                return f32::NEG_INFINITY;
            }
            rank = rank.saturating_mul(2);
        }
    }
}

/// The first pass: every item's score interval from `q · cᵢ`, with AVX2.
#[cfg(target_arch = "x86_64")]
mod kernel {
    use pulp::cast;
    use pulp::x86::V3;

    use super::{Bounds, QuantizedItems, QuantizedQuery, BLOCK};

    /// Whether this CPU has AVX2 and the rest of x86-64-v3 (detected once, then cached by `pulp`).
    pub(super) fn available() -> bool {
        V3::is_available()
    }

    /// Fills `bounds`, or returns `None` on a CPU without x86-64-v3.
    pub(super) fn bounds(items: &QuantizedItems, query: &QuantizedQuery, bounds: &mut Bounds) -> Option<()> {
        let simd = V3::try_new()?;
        simd.vectorize(Pass { simd, items, query, bounds });
        Some(())
    }

    /// The first pass as `pulp` runs it with AVX2 enabled. A struct with an always-inlined
    /// `call` rather than a closure, and no closures inside: everything must inline into
    /// `pulp`'s AVX2 function, or the intrinsics become calls.
    struct Pass<'a> {
        simd: V3,
        items: &'a QuantizedItems,
        query: &'a QuantizedQuery,
        bounds: &'a mut Bounds,
    }

    impl pulp::NullaryFnOnce for Pass<'_> {
        type Output = ();

        /// Per block of 8 items: Σ over the factor groups of the byte products (one i32 sum
        /// per item, no horizontal reduction), the offset taken off, then scaled and bounded;
        /// the group maxima of a span accumulate across its blocks.
        #[inline(always)]
        fn call(self) {
            let Pass { simd, items, query, bounds } = self;
            let (avx, avx2) = (simd.avx, simd.avx2);
            let ones = avx._mm256_set1_epi16(1);
            let offset_correction = avx._mm256_set1_epi32(query.offset_correction);
            let query_scale = avx._mm256_set1_ps(query.scale);
            let query_norm = avx._mm256_set1_ps(query.norm);
            let residue_norm = avx._mm256_set1_ps(query.residue_norm);
            let per_block = items
                .codes
                .chunks_exact(items.quads)
                .zip(items.scales.chunks_exact(BLOCK))
                .zip(items.error_norms.chunks_exact(BLOCK).zip(items.code_norms.chunks_exact(BLOCK)))
                .zip(bounds.approximate.chunks_exact_mut(BLOCK));
            let mut group_lower = avx._mm256_set1_ps(f32::NEG_INFINITY);
            let mut group_upper = avx._mm256_set1_ps(f32::NEG_INFINITY);
            let mut groups = bounds.group_lower.chunks_exact_mut(BLOCK).zip(bounds.group_upper.chunks_exact_mut(BLOCK));
            for (block, (((codes, scales), (error_norms, code_norms)), approximate_out)) in per_block.enumerate() {
                let mut sums = avx._mm256_setzero_si256();
                for (&code, &q) in codes.iter().zip(&query.codes) {
                    let pairs = avx2._mm256_maddubs_epi16(cast(code), cast(q));
                    sums = avx2._mm256_add_epi32(sums, avx2._mm256_madd_epi16(pairs, ones));
                }
                let dots = avx._mm256_cvtepi32_ps(avx2._mm256_sub_epi32(sums, offset_correction));
                let scales: [f32; BLOCK] = scales.try_into().unwrap_or([0.0; BLOCK]);
                let error_norms: [f32; BLOCK] = error_norms.try_into().unwrap_or([f32::INFINITY; BLOCK]);
                let code_norms: [f32; BLOCK] = code_norms.try_into().unwrap_or([0.0; BLOCK]);
                // Plain multiplies and adds, no FMA: `QuantizedItems::bound` must get the same values.
                let approximate = avx._mm256_mul_ps(avx._mm256_mul_ps(dots, cast(scales)), query_scale);
                let bound = avx._mm256_add_ps(
                    avx._mm256_mul_ps(query_norm, cast(error_norms)),
                    avx._mm256_mul_ps(residue_norm, cast(code_norms)),
                );
                let approximate_values: [f32; BLOCK] = cast(approximate);
                approximate_out.copy_from_slice(&approximate_values);
                group_lower = avx._mm256_max_ps(group_lower, avx._mm256_sub_ps(approximate, bound));
                group_upper = avx._mm256_max_ps(group_upper, avx._mm256_add_ps(approximate, bound));
                if block % BLOCK == BLOCK - 1 {
                    if let Some((lower_out, upper_out)) = groups.next() {
                        let lower_values: [f32; BLOCK] = cast(group_lower);
                        let upper_values: [f32; BLOCK] = cast(group_upper);
                        lower_out.copy_from_slice(&lower_values);
                        upper_out.copy_from_slice(&upper_values);
                    }
                    group_lower = avx._mm256_set1_ps(f32::NEG_INFINITY);
                    group_upper = avx._mm256_set1_ps(f32::NEG_INFINITY);
                }
            }
        }
    }
}

/// Without x86-64 there is no first pass; ALS scores every item.
#[cfg(not(target_arch = "x86_64"))]
mod kernel {
    use super::{Bounds, QuantizedItems, QuantizedQuery};

    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn bounds(_: &QuantizedItems, _: &QuantizedQuery, _: &mut Bounds) -> Option<()> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::als::dot;

    /// A seeded generator of values in [−0.5, 0.5).
    fn values(seed: u64, n: usize) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Item vectors with a long tail of norms, as ALS gives: item i is scaled by 1/(1 + i/50).
    fn items(seed: u64, n: usize, f: usize) -> Vec<f32> {
        let mut vectors = values(seed, n * f);
        for (i, y) in vectors.chunks_exact_mut(f).enumerate() {
            y.iter_mut().for_each(|v| *v /= 1.0 + i as f32 / 50.0);
        }
        vectors
    }

    /// (item, score), best first.
    type Ranked = Vec<(u32, f32)>;

    /// The quantized list, the exhaustive one (every item scored, sorted) and how many items the
    /// quantized search scored exactly.
    fn both(
        items: &[f32],
        f: usize,
        user: &[f32],
        k: usize,
        skip: impl Fn(ItemIdx) -> bool,
    ) -> Option<(Ranked, Ranked, usize)> {
        let quantized = QuantizedItems::build(items, f)?;
        let exact = |idx: usize| dot(user, &items[idx * f..(idx + 1) * f]);
        let mut top = TopK::new(k);
        let stats = quantized.search(user, &mut top, exact, &skip)?;
        let found = top.into_sorted().into_iter().map(|s| (s.1 .0, s.0)).collect();
        let mut all: Vec<(u32, f32)> =
            (0..items.len() / f).filter(|&i| !skip(ItemIdx(i as u32))).map(|i| (i as u32, exact(i))).collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        Some((found, all, stats.rescored))
    }

    /// Returns early, saying so, where the CPU has no AVX2 (ALS then scores every item).
    fn skip_without_avx2() -> bool {
        let missing = !kernel::available();
        if missing {
            eprintln!("no AVX2 here: the quantized search is not used and not tested");
        }
        missing
    }

    #[test]
    fn the_quantized_search_returns_the_exhaustive_list() {
        if skip_without_avx2() {
            return;
        }
        // Factor counts that are and are not multiples of 4, item counts that are and are not
        // whole spans, lists shorter and longer than the catalogue.
        for (seed, n, f) in [(1, 1_000, 64), (2, 777, 17), (3, 130, 3), (4, 2_048, 100)] {
            let items = items(seed, n, f);
            for user_seed in 0..4 {
                let user = values(100 + user_seed, f);
                for k in [1, 10, 200, n + 5] {
                    let (found, expected, rescored) = both(&items, f, &user, k, |_| false).expect("searches");
                    assert_eq!(found, expected, "n {n}, f {f}, user {user_seed}, k {k}");
                    // The first pass must rule out most items, or it saves nothing.
                    assert!(rescored <= k + k / 2 + n / 10, "{rescored} of {n} items rescored for {k}");
                }
            }
        }
    }

    #[test]
    fn a_query_aligned_with_items_and_many_skipped_ones_still_gets_the_exhaustive_list() {
        if skip_without_avx2() {
            return;
        }
        let (n, f) = (3_000, 64);
        let items = items(5, n, f);
        // The query is item 0's own vector: the items like it score near the top, and the
        // person's history (skipped) is the 150 best of them, more than the first try's room.
        let user = items[..f].to_vec();
        let (_, best, _) = both(&items, f, &user, 150, |_| false).expect("searches");
        let history: Vec<u32> = best.iter().map(|(item, _)| *item).collect();
        let skip = |item: ItemIdx| history.contains(&item.0);
        let (found, expected, _) = both(&items, f, &user, 200, skip).expect("searches");
        assert_eq!(found, expected);
        assert!(found.iter().all(|(item, _)| !history.contains(item)));
    }

    #[test]
    fn equal_scores_keep_the_exhaustive_order() {
        if skip_without_avx2() {
            return;
        }
        // Forty copies of five vectors: every score comes 40 times and ties go to the smaller item.
        let f = 8;
        let base = items(6, 5, f);
        let items: Vec<f32> = (0..200).flat_map(|i| base[(i % 5) * f..(i % 5 + 1) * f].to_vec()).collect();
        let user = values(7, f);
        let (found, expected, _) = both(&items, f, &user, 60, |_| false).expect("searches");
        assert_eq!(found, expected);
    }

    #[test]
    fn every_exact_score_lies_within_its_bound() {
        if skip_without_avx2() {
            return;
        }
        let (n, f) = (1_000, 64);
        let items = items(8, n, f);
        let quantized = QuantizedItems::build(&items, f).expect("builds");
        for user_seed in 0..8 {
            let user = values(200 + user_seed, f);
            let query = quantized.query(&user).expect("a query");
            let bounds = quantized.bounds(&query).expect("a first pass");
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            for idx in 0..n {
                let y = &items[idx * f..(idx + 1) * f];
                let exact = dot(&user, y);
                let (approximate, bound) = (bounds.approximate[idx], quantized.bound(&query, idx));
                assert!((exact - approximate).abs() <= bound, "item {idx}: {exact} vs {approximate} ± {bound}");
                // 8 bits an item factor, 7 a query factor: about 1% of ‖x‖·‖y‖.
                let scale = norm(&user) * norm(y);
                assert!(bound < 0.03 * scale, "item {idx}: the bound {bound} is too wide against {scale}");
            }
            let group_lower = bounds.group_lower.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let best_lower =
                (0..n).map(|i| bounds.approximate[i] - quantized.bound(&query, i)).fold(f32::MIN, f32::max);
            assert_eq!(group_lower, best_lower, "the group maxima cover every item");
        }
    }

    #[test]
    fn a_zero_or_broken_query_leaves_the_search_to_the_exhaustive_scan() {
        if skip_without_avx2() {
            return;
        }
        let items = items(9, 100, 16);
        let quantized = QuantizedItems::build(&items, 16).expect("builds");
        let exact = |_: usize| 0.0;
        for user in [vec![0.0; 16], vec![f32::NAN; 16], vec![1.0; 15]] {
            let mut top = TopK::new(10);
            assert!(quantized.search(&user, &mut top, exact, |_| false).is_none(), "{user:?}");
            assert!(top.into_sorted().is_empty());
        }
        let mut broken = items.clone();
        broken[7] = f32::INFINITY;
        assert!(QuantizedItems::build(&broken, 16).is_none());
    }
}
