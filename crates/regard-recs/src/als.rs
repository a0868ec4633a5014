//! A latent-factor model for implicit feedback: alternating least squares after Hu, Koren &
//! Volinsky, "Collaborative Filtering for Implicit Feedback Datasets" (ICDM 2008).
//!
//! Every user–item strength r becomes a preference p = 1 with confidence c = 1 + α·r; every
//! other pair is a preference 0 with confidence 1. Each half-step solves, for every user u,
//! (YᵀY + λI + Yᵀ(Cᵤ − I)Y) xᵤ = YᵀCᵤ p(u), and then the same for the items. As in the
//! conjugate-gradient solver of the `implicit` package (Takács, Pilászy & Tikk 2011), each
//! solve is a few CG steps warm-started from the previous factors, so a half-step costs
//! O(users·f² + nnz·f) instead of a Cholesky per row. Rows are solved in parallel blocks.
//!
//! At query time a user who was not in training (or whose history moved on) is folded in with
//! one exact least-squares solve against the item factors ([`AlsModel::fold_in`]; a short
//! history updates a Cholesky factor kept from training instead of factoring afresh), and their
//! best items come from an 8-bit first pass over all items and an exact rescoring of the few
//! that can still make the list ([`AlsModel::top_items`], the crate's `quantized` module): the
//! same list as scoring every item in f32, at about a quarter of the cost.

use serde::{Deserialize, Serialize};

use crate::interactions::ItemIdx;
use crate::matrix::{Entry, SparseRows};
use crate::parallel;
use crate::quantized::QuantizedItems;
use crate::topk::TopK;
use crate::RecsError;

/// Settings of ALS training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlsConfig {
    /// Latent factors per user and item.
    pub factors: usize,
    /// λ, the L2 penalty on every factor vector.
    pub regularization: f32,
    /// α in the confidence 1 + α·r.
    pub alpha: f32,
    /// Alternating sweeps (users then items).
    pub iterations: usize,
    /// Conjugate-gradient steps per row and sweep (3 is `implicit`'s default).
    pub cg_steps: usize,
    /// Seed of the initial factors; the same seed and data give the same model on one thread.
    pub seed: u64,
}

impl Default for AlsConfig {
    /// The best point of the grid in BENCHMARKS.md on MovieLens 100K (the same as tuned
    /// `implicit`'s, whose α counts one more because its confidence is α·r).
    fn default() -> Self {
        AlsConfig { factors: 64, regularization: 0.05, alpha: 4.0, iterations: 15, cg_steps: 3, seed: 42 }
    }
}

impl AlsConfig {
    /// Refuses settings that cannot train.
    pub fn validate(&self) -> Result<(), RecsError> {
        if self.factors == 0 || self.factors > 1024 {
            return Err(RecsError::config("factors", "must be between 1 and 1024"));
        }
        if !(self.regularization.is_finite() && self.regularization >= 0.0) {
            return Err(RecsError::config("regularization", "must be a non-negative number"));
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(RecsError::config("alpha", "must be a non-negative number"));
        }
        if self.cg_steps == 0 {
            return Err(RecsError::config("cg_steps", "must be at least 1"));
        }
        Ok(())
    }
}

/// How a query finds the latent model's best items ([`AlsModel::top_items`]). Both ways give
/// the same list, scores included; they differ only in the work done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlsSearch {
    /// An 8-bit first pass over every item with a guaranteed error bound, then the exact f32
    /// score of the few items whose bound reaches the k-th best. Needs AVX2 (detected at run
    /// time); without it, the same as [`AlsSearch::Exhaustive`].
    #[default]
    Quantized,
    /// The exact f32 score of every item. The reference the quantized search is tested and
    /// benchmarked against.
    Exhaustive,
}

/// A trained ALS model: a factor vector per user and item, and the Gram matrices a fold-in
/// needs, with their Cholesky factors.
#[derive(Debug, Clone)]
pub struct AlsModel {
    factors: usize,
    alpha: f32,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    /// YᵀY + λI over the item factors, for folding in users.
    item_gram: GramSystem,
    /// XᵀX + λI over the user factors, for folding in new items.
    user_gram: GramSystem,
    /// The item factors in 8 bits for the first pass of [`AlsSearch::Quantized`]; `None` when
    /// the CPU cannot run it.
    quantized: Option<QuantizedItems>,
}

impl AlsModel {
    /// Trains on the user × item strengths and their transpose.
    pub(crate) fn train(
        user_items: &SparseRows,
        item_users: &SparseRows,
        config: &AlsConfig,
        threads: usize,
    ) -> AlsModel {
        let f = config.factors;
        let threads = parallel::worker_count(threads);
        let mut state = config.seed ^ 0x9E37_79B9_7F4A_7C15;
        let mut init = |n: usize| -> Vec<f32> {
            (0..n * f)
                .map(|_| {
                    state = splitmix64(state);
                    (state >> 40) as f32 / (1u64 << 24) as f32 * 0.01
                })
                .collect()
        };
        let mut user_factors = init(user_items.n_rows());
        let mut item_factors = init(item_users.n_rows());
        let mut item_gram = gram(&item_factors, f, config.regularization, threads);
        let mut user_gram = gram(&user_factors, f, config.regularization, threads);
        for _ in 0..config.iterations {
            solve_rows(&mut user_factors, &item_factors, &item_gram, user_items, config, threads);
            user_gram = gram(&user_factors, f, config.regularization, threads);
            solve_rows(&mut item_factors, &user_factors, &user_gram, item_users, config, threads);
            item_gram = gram(&item_factors, f, config.regularization, threads);
        }
        let quantized = QuantizedItems::build(&item_factors, f);
        AlsModel {
            factors: f,
            alpha: config.alpha,
            item_gram: GramSystem::new(item_gram, f),
            user_gram: GramSystem::new(user_gram, f),
            user_factors,
            item_factors,
            quantized,
        }
    }

    /// Factors per vector.
    pub fn factors(&self) -> usize {
        self.factors
    }

    /// The number of items with a factor vector.
    pub fn n_items(&self) -> usize {
        self.item_factors.len() / self.factors
    }

    /// The number of users with a factor vector.
    pub fn n_users(&self) -> usize {
        self.user_factors.len() / self.factors
    }

    /// A trained user's factors.
    pub fn user_vector(&self, user: usize) -> Option<&[f32]> {
        self.user_factors.get(user * self.factors..(user + 1) * self.factors)
    }

    /// An item's factors.
    pub fn item_vector(&self, item: ItemIdx) -> Option<&[f32]> {
        self.item_factors.get(item.index() * self.factors..(item.index() + 1) * self.factors)
    }

    /// Heap bytes held: 4 per factor of every user and item, the two Gram matrices and their
    /// factors, and the 8-bit item codes (a byte per factor and 12 per item).
    pub fn heap_bytes(&self) -> usize {
        (self.user_factors.capacity() + self.item_factors.capacity() + self.item_gram.len() + self.user_gram.len()) * 4
            + self.quantized.as_ref().map_or(0, QuantizedItems::heap_bytes)
    }

    /// The factors of a user from their history alone: one exact least-squares solve of
    /// (YᵀY + λI + Σ (cᵢ − 1) yᵢyᵢᵀ) x = Σ cᵢ yᵢ over the history's (item, strength) pairs.
    /// Items without factors are skipped; an empty history gives the zero vector.
    pub fn fold_in(&self, history: &[(ItemIdx, f32)]) -> Vec<f32> {
        self.item_gram.fold_in(
            self.factors,
            self.alpha,
            |item: u32| self.item_vector(ItemIdx(item)),
            history.iter().map(|(i, r)| (i.0, *r)),
        )
    }

    /// The factors of an item that was not in training, from the users who interacted with it
    /// (index into the training users, strength); unknown users are skipped.
    pub(crate) fn fold_in_item(&self, users: &[(u32, f32)]) -> Vec<f32> {
        self.user_gram.fold_in(
            self.factors,
            self.alpha,
            |user: u32| self.user_vector(user as usize),
            users.iter().copied(),
        )
    }

    /// Writes `user · yᵢ` for every item into `scores` (which must hold one slot per item).
    /// The offline evaluation ranks whole catalogues with it; queries use [`AlsModel::top_items`].
    pub fn score_all(&self, user: &[f32], scores: &mut [f32]) {
        for (score, item) in scores.iter_mut().zip(self.item_factors.chunks_exact(self.factors)) {
            *score = dot(user, item);
        }
    }

    /// The `k` items with the highest `user · yᵢ`, best first (ties to the smaller item),
    /// leaving out the items `skip` names and NaN scores: the list that sorting the output of
    /// [`AlsModel::score_all`] gives, whichever `search` finds it.
    pub fn top_items(
        &self,
        user: &[f32],
        k: usize,
        search: AlsSearch,
        skip: impl Fn(ItemIdx) -> bool,
    ) -> Vec<(ItemIdx, f32)> {
        let mut top = TopK::new(k);
        self.search(user, &mut top, search, skip);
        top.into_sorted().into_iter().map(|scored| (scored.1, scored.0)).collect()
    }

    /// Offers to `top` every item, leaving out those `skip` names, that can be among its best:
    /// the few the quantized first pass cannot rule out, or every item when searching
    /// exhaustively (or when the first pass cannot run).
    pub(crate) fn search(&self, user: &[f32], top: &mut TopK, search: AlsSearch, skip: impl Fn(ItemIdx) -> bool) {
        if search == AlsSearch::Quantized {
            if let Some(quantized) = &self.quantized {
                let exact = |idx: usize| dot(user, &self.item_factors[idx * self.factors..(idx + 1) * self.factors]);
                if quantized.search(user, top, exact, &skip).is_some() {
                    return;
                }
            }
        }
        for (idx, y) in self.item_factors.chunks_exact(self.factors).enumerate() {
            let score = dot(user, y);
            let item = ItemIdx(idx as u32);
            // The cheap test first: most items cannot make the list, and `skip` may hash.
            if top.would_keep(score, item) && !skip(item) {
                top.offer(score, item);
            }
        }
    }

    /// `user · y_item`, or 0 for an item without factors.
    pub fn score(&self, user: &[f32], item: ItemIdx) -> f32 {
        self.item_vector(item).map_or(0.0, |y| dot(user, y))
    }
}

fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The dot product, written over 8 lanes so the compiler vectorises it.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a.remainder().iter().zip(chunks_b.remainder()).map(|(x, y)| x * y).sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for lane in 0..8 {
            lanes[lane] += ca[lane] * cb[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// y += a·x.
#[inline]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// out = M·v for a row-major square matrix M.
#[inline]
fn mat_vec(matrix: &[f32], v: &[f32], out: &mut [f32]) {
    let f = v.len();
    for (row, o) in matrix.chunks_exact(f).zip(out.iter_mut()) {
        *o = dot(row, v);
    }
}

/// FᵀF + λI for a row-major factor matrix F with `f` columns.
fn gram(factors: &[f32], f: usize, regularization: f32, threads: usize) -> Vec<f32> {
    let n_rows = factors.len() / f;
    let partials = parallel::map_blocks(
        n_rows,
        4_096,
        threads,
        || (),
        |rows, _| {
            let mut sum = vec![0.0_f32; f * f];
            for row in rows {
                let x = &factors[row * f..(row + 1) * f];
                for (a, &xa) in x.iter().enumerate() {
                    axpy(xa, x, &mut sum[a * f..(a + 1) * f]);
                }
            }
            sum
        },
    );
    let mut total = vec![0.0_f32; f * f];
    for partial in partials {
        for (t, p) in total.iter_mut().zip(&partial) {
            *t += p;
        }
    }
    for a in 0..f {
        total[a * f + a] += regularization;
    }
    total
}

/// Per-thread vectors of the CG solver.
struct CgScratch {
    residual: Vec<f32>,
    direction: Vec<f32>,
    product: Vec<f32>,
}

/// One ALS half-step: re-solves every row of `solved` against the fixed factors `fixed`.
fn solve_rows(
    solved: &mut [f32],
    fixed: &[f32],
    fixed_gram: &[f32],
    rows: &SparseRows,
    config: &AlsConfig,
    threads: usize,
) {
    let f = config.factors;
    let scratch = || CgScratch { residual: vec![0.0; f], direction: vec![0.0; f], product: vec![0.0; f] };
    parallel::for_each_row_block(solved, f, 512, threads, scratch, |first_row, block, s| {
        for (offset, x) in block.chunks_exact_mut(f).enumerate() {
            conjugate_gradient(x, fixed, fixed_gram, rows.row(first_row + offset), config, s);
        }
    });
}

/// A few CG steps on one row's normal equations, warm-started from `x` (as in `implicit`).
fn conjugate_gradient(
    x: &mut [f32],
    fixed: &[f32],
    gram: &[f32],
    row: &[Entry],
    config: &AlsConfig,
    s: &mut CgScratch,
) {
    let f = x.len();
    let alpha = config.alpha;
    let vector = |idx: u32| &fixed[idx as usize * f..(idx as usize + 1) * f];
    // r = b − A·x, with b = Σ cᵢ yᵢ and A·x = G·x + Σ (cᵢ − 1)(yᵢ·x) yᵢ.
    mat_vec(gram, x, &mut s.residual);
    for r in s.residual.iter_mut() {
        *r = -*r;
    }
    for entry in row {
        let y = vector(entry.idx);
        let confidence_minus_one = alpha * entry.value;
        let coefficient = (1.0 + confidence_minus_one) - confidence_minus_one * dot(y, x);
        axpy(coefficient, y, &mut s.residual);
    }
    s.direction.copy_from_slice(&s.residual);
    let mut rs_old = dot(&s.residual, &s.residual);
    for _ in 0..config.cg_steps {
        if rs_old < 1e-20 {
            break;
        }
        mat_vec(gram, &s.direction, &mut s.product);
        for entry in row {
            let y = vector(entry.idx);
            axpy(alpha * entry.value * dot(y, &s.direction), y, &mut s.product);
        }
        let denominator = dot(&s.direction, &s.product);
        if denominator <= 0.0 || !denominator.is_finite() {
            break;
        }
        let step = rs_old / denominator;
        axpy(step, &s.direction, x);
        axpy(-step, &s.product, &mut s.residual);
        let rs_new = dot(&s.residual, &s.residual);
        let beta = rs_new / rs_old;
        for (d, r) in s.direction.iter_mut().zip(&s.residual) {
            *d = r + beta * *d;
        }
        rs_old = rs_new;
    }
}

/// Above this many history entries a fold-in factors its matrix afresh; up to it, it updates
/// the Gram matrix's factor once per entry. An update is a chain of f square roots and costs
/// about 1 µs at 64 factors; a fresh factorisation about 14 µs plus 0.5 µs an entry. Measured
/// on the 2-core benchmark machine, shared: 7 entries 9 µs by updates (16 µs afresh), 24
/// entries 23 µs by updates, 25 entries 27 µs afresh, 50 entries 39 µs afresh (68 µs by
/// updates).
const MAX_FACTOR_UPDATES: usize = 24;

/// A Gram matrix FᵀF + λI (row-major) and its lower Cholesky factor (by column), the fixed
/// part of every fold-in's normal equations.
#[derive(Debug, Clone)]
struct GramSystem {
    gram: Vec<f32>,
    factor: Vec<f32>,
}

impl GramSystem {
    /// Factors `gram` (f × f, row-major) once, at training.
    fn new(gram: Vec<f32>, f: usize) -> GramSystem {
        GramSystem { factor: cholesky(&gram, f), gram }
    }

    /// Floats held.
    fn len(&self) -> usize {
        self.gram.len() + self.factor.len()
    }

    /// The exact solve shared by user and item fold-in: (G + Σ (cᵢ − 1)·yᵢyᵢᵀ) x = Σ cᵢ·yᵢ.
    /// A short history updates G's factor by one rank-one term per entry, O(f²) each; a long
    /// one forms the matrix and factors it, O(f³).
    fn fold_in<'a, V, I>(&self, f: usize, alpha: f32, vector: V, history: I) -> Vec<f32>
    where
        V: Fn(u32) -> Option<&'a [f32]>,
        I: Iterator<Item = (u32, f32)>,
    {
        let mut rhs = vec![0.0_f32; f];
        let mut terms: Vec<(&[f32], f32)> = Vec::new();
        for (idx, strength) in history {
            let Some(y) = vector(idx) else { continue };
            if !(strength.is_finite() && strength > 0.0) {
                continue;
            }
            let confidence_minus_one = alpha * strength;
            axpy(1.0 + confidence_minus_one, y, &mut rhs);
            terms.push((y, confidence_minus_one));
        }
        if terms.is_empty() {
            return vec![0.0; f];
        }
        let factor = if terms.len() <= MAX_FACTOR_UPDATES {
            // The rank-one terms as vectors √(cᵢ − 1)·yᵢ, one after another.
            let mut updates: Vec<f32> = Vec::with_capacity(terms.len() * f);
            for &(y, weight) in terms.iter().filter(|(_, weight)| *weight > 0.0) {
                let root = weight.sqrt();
                updates.extend(y.iter().map(|&v| root * v));
            }
            let mut factor = self.factor.clone();
            cholesky_update(&mut factor, &mut updates, f);
            factor
        } else {
            let mut matrix = self.gram.clone();
            for &(y, weight) in &terms {
                for (row, &y_a) in matrix.chunks_exact_mut(f).zip(y) {
                    axpy(weight * y_a, y, row);
                }
            }
            cholesky_f32(&matrix, f)
        };
        cholesky_solve(&factor, &mut rhs, f);
        rhs
    }
}

/// The lower Cholesky factor L of a symmetric positive-definite `matrix` (row-major, f × f),
/// by column: column k is `L[k * f..(k + 1) * f]`, zero above the diagonal. Computed in f64;
/// a non-positive pivot (a singular matrix, only possible with λ = 0) is clamped to keep
/// every solve finite.
fn cholesky(matrix: &[f32], f: usize) -> Vec<f32> {
    let mut l = vec![0.0_f64; f * f];
    for k in 0..f {
        let diagonal = f64::from(matrix[k * f + k]) - (0..k).map(|j| l[j * f + k].powi(2)).sum::<f64>();
        let pivot = diagonal.max(1e-12).sqrt();
        l[k * f + k] = pivot;
        for m in k + 1..f {
            let off_diagonal = f64::from(matrix[m * f + k]) - (0..k).map(|j| l[j * f + m] * l[j * f + k]).sum::<f64>();
            l[k * f + m] = off_diagonal / pivot;
        }
    }
    l.into_iter().map(|v| v as f32).collect()
}

/// The same factor as [`cholesky`], for a fold-in's matrix at query time: f32 storage and dot
/// products along rows (row-major, so the row of L in progress and the finished rows above it
/// are contiguous), f64 only for the pivots. Written by rows, returned by column.
fn cholesky_f32(matrix: &[f32], f: usize) -> Vec<f32> {
    let mut rows = matrix.to_vec();
    for j in 0..f {
        let diagonal =
            f64::from(rows[j * f + j]) - rows[j * f..j * f + j].iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        let pivot = diagonal.max(1e-12).sqrt();
        rows[j * f + j] = pivot as f32;
        for i in j + 1..f {
            let (upper, lower) = rows.split_at_mut(i * f);
            let row_j = &upper[j * f..j * f + j];
            let row_i = &mut lower[..f];
            row_i[j] = (f64::from(row_i[j] - dot(&row_i[..j], row_j)) / pivot) as f32;
        }
    }
    let mut by_column = vec![0.0_f32; f * f];
    for i in 0..f {
        for j in 0..=i {
            by_column[j * f + i] = rows[i * f + j];
        }
    }
    by_column
}

/// Turns the factor L of M into the factor of M + Σ xᵤ·xᵤᵀ in place, for the vectors xᵤ laid
/// one after another in `updates` (which they leave scrambled): LINPACK's `dchud` per vector,
/// one scaled rotation per column, vectorised down the column. The loop runs column by column
/// over all vectors rather than vector by vector, so that the square roots and divisions of
/// different vectors, each a chain down the diagonal, overlap.
fn cholesky_update(factor: &mut [f32], updates: &mut [f32], f: usize) {
    for (k, column) in factor.chunks_exact_mut(f).enumerate() {
        for x in updates.chunks_exact_mut(f) {
            let (pivot, x_k) = (column[k], x[k]);
            let radius = (pivot * pivot + x_k * x_k).sqrt();
            let (cosine, sine, inverse_cosine) = (radius / pivot, x_k / pivot, pivot / radius);
            column[k] = radius;
            for (l, v) in column[k + 1..].iter_mut().zip(&mut x[k + 1..]) {
                *l = (*l + sine * *v) * inverse_cosine;
                *v = cosine * *v - sine * *l;
            }
        }
    }
}

/// Solves L·Lᵀ·x = b in place (b becomes x) for a factor by column from [`cholesky`].
fn cholesky_solve(factor: &[f32], rhs: &mut [f32], f: usize) {
    // Forward: L·z = b, column by column.
    for (k, column) in factor.chunks_exact(f).enumerate() {
        rhs[k] /= column[k];
        let z_k = rhs[k];
        axpy(-z_k, &column[k + 1..], &mut rhs[k + 1..]);
    }
    // Backward: Lᵀ·x = z; row k of Lᵀ is column k of L.
    for (k, column) in factor.chunks_exact(f).enumerate().rev() {
        rhs[k] = (rhs[k] - dot(&column[k + 1..], &rhs[k + 1..])) / column[k];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::KindWeights;
    use crate::matrix::StrengthRule;

    fn matrix(pairs: &[(u32, u32)], n_users: usize) -> SparseRows {
        let interactions = crate::interactions::test_purchases(pairs);
        let rule = StrengthRule {
            kind_weights: KindWeights { view: 1.0, cart: 1.0, purchase: 1.0 },
            half_life_secs: None,
            reference_secs: 0,
            max_items_per_user: 100,
        };
        SparseRows::user_items(&interactions, n_users, &rule)
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        let factor = cholesky(&[4.0, 2.0, 2.0, 3.0], 2);
        let mut b = vec![6.0, 5.0];
        cholesky_solve(&factor, &mut b, 2);
        assert!((b[0] - 1.0).abs() < 1e-5 && (b[1] - 1.0).abs() < 1e-5, "{b:?}");
    }

    #[test]
    fn an_updated_factor_solves_the_updated_system() {
        // M = [[4, 2], [2, 3]] plus x·xᵀ with x = (1, 2) is [[5, 4], [4, 7]]; with b = (9, 11)
        // the solution is (1, 1). Adding the identity gives [[6, 4], [4, 8]], and b = (10, 12).
        let mut factor = cholesky(&[4.0, 2.0, 2.0, 3.0], 2);
        cholesky_update(&mut factor, &mut [1.0, 2.0], 2);
        let mut b = vec![9.0, 11.0];
        cholesky_solve(&factor, &mut b, 2);
        assert!((b[0] - 1.0).abs() < 1e-5 && (b[1] - 1.0).abs() < 1e-5, "{b:?}");
        // Two vectors at once: x = (1, 0) and (0, 1) add the identity to [[5, 4], [4, 7]].
        cholesky_update(&mut factor, &mut [1.0, 0.0, 0.0, 1.0], 2);
        let mut b = vec![10.0, 12.0];
        cholesky_solve(&factor, &mut b, 2);
        assert!((b[0] - 1.0).abs() < 1e-5 && (b[1] - 1.0).abs() < 1e-5, "{b:?}");
    }

    #[test]
    fn fold_in_matches_a_dense_solve_in_f64() {
        let f = 24;
        let mut state = 11_u64;
        let mut next = || {
            state = splitmix64(state);
            (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5
        };
        let items: Vec<f32> = (0..200 * f).map(|_| next() as f32).collect();
        let (alpha, regularization) = (4.0_f32, 0.05_f32);
        let gram_matrix = gram(&items, f, regularization, 1);
        let system = GramSystem::new(gram_matrix.clone(), f);
        check_fold_in(&system, f, alpha, &items, &[(3, 1.0), (17, 0.25), (40, 2.0), (41, 0.001), (99, 1.5)]);
        let long: Vec<(u32, f32)> =
            (0..3 * MAX_FACTOR_UPDATES as u32).map(|i| (i * 2 + 1, 0.1 + i as f32 * 0.05)).collect();
        check_fold_in(&system, f, alpha, &items, &long);
    }

    /// The fold-in of `history` against a dense solve of the same system in f64.
    fn check_fold_in(system: &GramSystem, f: usize, alpha: f32, items: &[f32], history: &[(u32, f32)]) {
        let vector = |i: u32| items.get(i as usize * f..(i as usize + 1) * f);
        let folded = system.fold_in(f, alpha, vector, history.iter().copied());
        let gram_matrix = &system.gram;
        // The same system, formed densely and solved by Gaussian elimination in f64.
        let mut a: Vec<f64> = gram_matrix.iter().map(|&v| f64::from(v)).collect();
        let mut b = vec![0.0_f64; f];
        for &(idx, strength) in history {
            let y = vector(idx).unwrap();
            let c = f64::from(alpha * strength);
            for i in 0..f {
                b[i] += (1.0 + c) * f64::from(y[i]);
                for j in 0..f {
                    a[i * f + j] += c * f64::from(y[i]) * f64::from(y[j]);
                }
            }
        }
        for col in 0..f {
            for row in col + 1..f {
                let ratio = a[row * f + col] / a[col * f + col];
                for j in col..f {
                    a[row * f + j] -= ratio * a[col * f + j];
                }
                b[row] -= ratio * b[col];
            }
        }
        for row in (0..f).rev() {
            let sum: f64 = (row + 1..f).map(|j| a[row * f + j] * b[j]).sum();
            b[row] = (b[row] - sum) / a[row * f + row];
        }
        let error = folded.iter().zip(&b).map(|(x, e)| (f64::from(*x) - e).abs()).fold(0.0, f64::max);
        let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(error < 1e-4 * scale, "{} entries: max error {error} against {scale}", history.len());
    }

    #[test]
    fn two_taste_groups_are_told_apart_and_fold_in_agrees_with_training() {
        // Users 0–9 like items 0–4, users 10–19 like items 5–9, each missing one item.
        let mut pairs = Vec::new();
        for user in 0..20_u32 {
            let base = if user < 10 { 0 } else { 5 };
            for item in base..base + 5 {
                if item != base + user % 5 {
                    pairs.push((user, item));
                }
            }
        }
        let user_items = matrix(&pairs, 20);
        let item_users = user_items.transpose(10);
        let config = AlsConfig { factors: 2, iterations: 10, regularization: 1.0, alpha: 5.0, ..AlsConfig::default() };
        let model = AlsModel::train(&user_items, &item_users, &config, 2);
        let mut scores = vec![0.0; 10];
        model.score_all(model.user_vector(0).unwrap(), &mut scores);
        // User 0 misses item 0 of their group: it must outscore every item of the other group.
        let max_outside = scores[5..].iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert!(scores[0] > max_outside, "{scores:?}");

        let history: Vec<(ItemIdx, f32)> = user_items.row(0).iter().map(|e| (ItemIdx(e.idx), e.value)).collect();
        let folded = model.fold_in(&history);
        let mut folded_scores = vec![0.0; 10];
        model.score_all(&folded, &mut folded_scores);
        let best = |s: &[f32]| {
            (0..10).filter(|i| !history.iter().any(|(h, _)| h.index() == *i)).max_by(|a, b| s[*a].total_cmp(&s[*b]))
        };
        assert_eq!(best(&folded_scores), Some(0));
        assert_eq!(model.fold_in(&[]), vec![0.0; 2]);
    }

    #[test]
    fn top_items_is_the_sorted_full_scan_whichever_the_search() {
        let pairs: Vec<(u32, u32)> = (0..60_u32).flat_map(|u| (0..8).map(move |k| (u, (u * 7 + k * 5) % 45))).collect();
        let user_items = matrix(&pairs, 60);
        let item_users = user_items.transpose(45);
        let config = AlsConfig { factors: 8, iterations: 5, ..AlsConfig::default() };
        let model = AlsModel::train(&user_items, &item_users, &config, 1);
        for user in 0..60 {
            let vector = model.user_vector(user).unwrap();
            let mut scores = vec![0.0; 45];
            model.score_all(vector, &mut scores);
            let skip = |item: ItemIdx| item.0 % 9 == user as u32 % 9;
            let mut expected: Vec<(ItemIdx, f32)> =
                (0..45).map(|i| (ItemIdx(i), scores[i as usize])).filter(|(i, _)| !skip(*i)).collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            expected.truncate(10);
            assert_eq!(model.top_items(vector, 10, AlsSearch::Exhaustive, skip), expected);
            assert_eq!(model.top_items(vector, 10, AlsSearch::Quantized, skip), expected);
        }
    }
}
