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
//! one exact least-squares solve against the item factors ([`AlsModel::fold_in`]).

use serde::{Deserialize, Serialize};

use crate::interactions::ItemIdx;
use crate::matrix::{Entry, SparseRows};
use crate::parallel;
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

/// A trained ALS model: a factor vector per user and item, and the Gram matrices a fold-in needs.
#[derive(Debug, Clone)]
pub struct AlsModel {
    factors: usize,
    alpha: f32,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    /// YᵀY + λI over the item factors, for folding in users.
    item_gram: Vec<f32>,
    /// XᵀX + λI over the user factors, for folding in new items.
    user_gram: Vec<f32>,
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
        AlsModel { factors: f, alpha: config.alpha, user_factors, item_factors, item_gram, user_gram }
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

    /// Heap bytes held: 4 per factor of every user and item, plus the two Gram matrices.
    pub fn heap_bytes(&self) -> usize {
        (self.user_factors.capacity() + self.item_factors.capacity() + self.item_gram.len() + self.user_gram.len()) * 4
    }

    /// The factors of a user from their history alone: one exact least-squares solve of
    /// (YᵀY + λI + Σ (cᵢ − 1) yᵢyᵢᵀ) x = Σ cᵢ yᵢ over the history's (item, strength) pairs.
    /// Items without factors are skipped; an empty history gives the zero vector.
    pub fn fold_in(&self, history: &[(ItemIdx, f32)]) -> Vec<f32> {
        fold_in(
            self.factors,
            self.alpha,
            &self.item_gram,
            |item: u32| self.item_vector(ItemIdx(item)),
            history.iter().map(|(i, r)| (i.0, *r)),
        )
    }

    /// The factors of an item that was not in training, from the users who interacted with it
    /// (index into the training users, strength); unknown users are skipped.
    pub(crate) fn fold_in_item(&self, users: &[(u32, f32)]) -> Vec<f32> {
        fold_in(
            self.factors,
            self.alpha,
            &self.user_gram,
            |user: u32| self.user_vector(user as usize),
            users.iter().copied(),
        )
    }

    /// Writes `user · yᵢ` for every item into `scores` (which must hold one slot per item).
    pub fn score_all(&self, user: &[f32], scores: &mut [f32]) {
        for (score, item) in scores.iter_mut().zip(self.item_factors.chunks_exact(self.factors)) {
            *score = dot(user, item);
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

/// The exact solve shared by user and item fold-in.
fn fold_in<'a, V, I>(f: usize, alpha: f32, gram: &[f32], vector: V, history: I) -> Vec<f32>
where
    V: Fn(u32) -> Option<&'a [f32]>,
    I: Iterator<Item = (u32, f32)>,
{
    let mut matrix = gram.to_vec();
    let mut rhs = vec![0.0_f32; f];
    let mut any = false;
    for (idx, strength) in history {
        let Some(y) = vector(idx) else { continue };
        if !(strength.is_finite() && strength > 0.0) {
            continue;
        }
        any = true;
        let confidence_minus_one = alpha * strength;
        axpy(1.0 + confidence_minus_one, y, &mut rhs);
        for (a, &ya) in y.iter().enumerate() {
            axpy(confidence_minus_one * ya, y, &mut matrix[a * f..(a + 1) * f]);
        }
    }
    if !any {
        return vec![0.0; f];
    }
    cholesky_solve(&mut matrix, &mut rhs, f);
    rhs
}

/// Solves M·x = b in place (b becomes x) for a symmetric positive-definite M, by Cholesky;
/// a non-positive pivot (a singular M, only possible with λ = 0) is clamped to keep x finite.
fn cholesky_solve(matrix: &mut [f32], rhs: &mut [f32], f: usize) {
    for j in 0..f {
        let mut diagonal = matrix[j * f + j] as f64;
        for k in 0..j {
            diagonal -= (matrix[j * f + k] as f64).powi(2);
        }
        let pivot = diagonal.max(1e-12).sqrt();
        matrix[j * f + j] = pivot as f32;
        for i in j + 1..f {
            let (upper, lower) = matrix.split_at_mut(i * f);
            let row_j = &upper[j * f..j * f + j];
            let row_i = &mut lower[..f];
            let value = (row_i[j] - dot(&row_i[..j], row_j)) as f64 / pivot;
            row_i[j] = value as f32;
        }
    }
    // Forward: L·z = b.
    for i in 0..f {
        let sum = dot(&matrix[i * f..i * f + i], &rhs[..i]);
        rhs[i] = (rhs[i] - sum) / matrix[i * f + i];
    }
    // Backward: Lᵀ·x = z.
    for i in (0..f).rev() {
        let mut sum = rhs[i];
        for k in i + 1..f {
            sum -= matrix[k * f + i] * rhs[k];
        }
        rhs[i] = sum / matrix[i * f + i];
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
        let mut m = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![6.0, 5.0];
        cholesky_solve(&mut m, &mut b, 2);
        assert!((b[0] - 1.0).abs() < 1e-5 && (b[1] - 1.0).abs() < 1e-5, "{b:?}");
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
}
