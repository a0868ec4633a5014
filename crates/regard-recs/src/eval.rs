//! The engine of `regard eval recs`: a leave-latest-out evaluation of every strategy on an
//! interaction file, with the popularity baseline.
//!
//! The protocol, as the issue fixes it (and `scripts/compare_implicit.py` repeats for the
//! `implicit` package):
//!
//! 1. Read `user_id,item_id,timestamp` (extra columns ignored). The catalogue is every item of
//!    the file plus every item of the catalogue file, if one is given.
//! 2. Distinct (user, item) pairs keep their first event (the earliest; on equal times, the
//!    earliest line).
//! 3. A user with at least 5 distinct items holds out their latest pair (the latest time; on
//!    equal times, the later line of the first events). Everything else is training data.
//! 4. For each such user every strategy scores the whole catalogue minus the user's training
//!    items; the held-out item's rank counts the items scored higher, plus those scored equal
//!    with a smaller item id (ids compare as numbers when all are integers, else as text).
//! 5. HR@10 is the share of users whose item ranks in the top 10, NDCG@10 the mean of
//!    1/log₂(rank + 2) over those (0 otherwise), MRR the mean of 1/(rank + 1) over all (rank
//!    counted from 0, untruncated).
//!
//! In the evaluation every training pair has strength 1 (no kind weights, no decay), so the
//! latent model's α means what it means in `implicit` (shifted by one: here confidence is 1 + α).
//!
//! Strategies reported: `popular` (distinct training users); `item_knn` with cosine, Jaccard and
//! lift over the whole training row; `als` (trained user factors) and `als_fold_in` (the user
//! folded in from the row); the `*_recent` variants, which weigh the row by recency
//! (0.5^(age / half-life) from the user's latest event) as serving weighs a history;
//! `hybrid` and `hybrid_recent` (½ kNN, ½ ALS, each scaled by its best unseen item);
//! `fallback_chain` (the served default chain: the recent hybrid, then popularity); and
//! `category_affinity` when the catalogue has categories.

use std::io::Read;
use std::time::Instant;

use serde::Serialize;

use crate::als::{AlsConfig, AlsModel};
use crate::catalog::ItemCatalog;
use crate::interactions::{
    read_catalog_csv, read_interactions_csv, InteractionColumns, InteractionKind, InteractionLog, ItemIdx, KindWeights,
};
use crate::itemknn::{ItemItemConfig, ItemNeighbours, Similarity};
use crate::matrix::{SparseRows, StrengthRule};
use crate::parallel;
use crate::{RecsConfig, RecsError};

/// The cut-off of HR and NDCG.
pub const CUTOFF: usize = 10;

/// Fewest distinct items for a user to be evaluated.
pub const MIN_ITEMS_TO_EVALUATE: usize = 5;

/// The metrics of one held-out item at 0-based `rank`: (hit@10, NDCG@10 gain, reciprocal rank).
pub fn metrics_at_rank(rank: usize) -> (f64, f64, f64) {
    let reciprocal = 1.0 / (rank as f64 + 1.0);
    if rank < CUTOFF {
        (1.0, 1.0 / (rank as f64 + 2.0).log2(), reciprocal)
    } else {
        (0.0, 0.0, reciprocal)
    }
}

/// The 0-based rank of `held_out` in `scores` over the items not `excluded`: items scored
/// higher, plus items scored equal with a smaller index. NaN scores rank last.
pub fn rank_of(scores: &[f32], excluded: &[bool], held_out: usize) -> usize {
    let clean = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    let target = clean(scores[held_out]);
    scores
        .iter()
        .zip(excluded)
        .enumerate()
        .filter(|&(item, (&score, &skip))| {
            !skip && item != held_out && (clean(score) > target || (clean(score) == target && item < held_out))
        })
        .count()
}

/// The evaluation data: training pairs as a log and one held-out item per evaluated user.
#[derive(Debug, Clone)]
pub struct EvalData {
    /// Training pairs, each a strength-1 interaction at its first time; items are indexed in
    /// id order, so a smaller index is a smaller id.
    pub train: InteractionLog,
    /// (user, held-out item) for every evaluated user.
    pub held_out: Vec<(u32, ItemIdx)>,
    /// Distinct (user, item) pairs in the file.
    pub distinct_pairs: usize,
}

/// Reads the interaction CSV (and the optional catalogue CSV) and applies the protocol's
/// de-duplication and hold-out.
pub fn prepare<R: Read, C: Read>(interactions: R, catalog: Option<C>) -> Result<EvalData, RecsError> {
    let mut raw = InteractionLog::new();
    read_interactions_csv(interactions, InteractionColumns::Protocol, &mut raw)?;
    if let Some(catalog) = catalog {
        read_catalog_csv(catalog, &mut raw)?;
    }
    if raw.interactions.is_empty() {
        return Err(RecsError::InsufficientData("the interactions file has no rows".into()));
    }
    // Items in id order: numerically when every id is an integer, else as text.
    let keys = raw.items.keys();
    let numeric: Option<Vec<u64>> = keys.iter().map(|k| k.parse::<u64>().ok()).collect();
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    match &numeric {
        Some(numbers) => order.sort_by(|&a, &b| {
            numbers[a as usize].cmp(&numbers[b as usize]).then(keys[a as usize].cmp(&keys[b as usize]))
        }),
        None => order.sort_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize])),
    }
    let mut new_index = vec![0_u32; keys.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old as usize] = new as u32;
    }
    let mut train = InteractionLog::new();
    for &old in &order {
        train.set_item_meta(raw.items.key(old), raw.item_meta[old as usize].clone());
    }
    train.users = raw.users.clone();
    train.user_country = raw.user_country.clone();

    // (user, item, time, line order): sorting gives each pair's first event first.
    let mut events: Vec<(u32, u32, i64, u32)> = raw
        .interactions
        .iter()
        .enumerate()
        .map(|(line, i)| (i.user.0, new_index[i.item.index()], i.timestamp_secs, line as u32))
        .collect();
    events.sort_unstable();
    events.dedup_by_key(|e| (e.0, e.1));
    let distinct_pairs = events.len();
    // Per user, latest pair last: by time, then by the line of the first event.
    events.sort_unstable_by_key(|e| (e.0, e.2, e.3));
    let mut held_out = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let user = events[start].0;
        let end = start + events[start..].partition_point(|e| e.0 == user);
        let pairs = &events[start..end];
        let (training, test) = if pairs.len() >= MIN_ITEMS_TO_EVALUATE {
            (&pairs[..pairs.len() - 1], pairs.last())
        } else {
            (pairs, None)
        };
        for &(user, item, time, _) in training {
            train.interactions.push(crate::interactions::Interaction {
                user: crate::UserIdx(user),
                item: ItemIdx(item),
                kind: InteractionKind::Purchase,
                timestamp_secs: time,
                weight: 1.0,
            });
        }
        if let Some(&(user, item, _, _)) = test {
            held_out.push((user, ItemIdx(item)));
        }
        start = end;
    }
    if held_out.is_empty() {
        return Err(RecsError::InsufficientData(format!(
            "no user has {MIN_ITEMS_TO_EVALUATE} or more distinct items to hold one out"
        )));
    }
    Ok(EvalData { train, held_out, distinct_pairs })
}

/// The models evaluated and their settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Item-kNN settings (the similarity is varied: cosine, Jaccard, lift are all reported).
    pub item_item: ItemItemConfig,
    /// ALS settings.
    pub als: AlsConfig,
    /// The share of ALS in the hybrid blend.
    pub hybrid_als_weight: f32,
    /// Half-life in days of a training item's weight in the `*_recent` strategies, counted back
    /// from the user's latest training event (as serving weighs a history from now).
    pub history_half_life_days: f64,
    /// Threads; 0 for all cores.
    pub threads: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            item_item: ItemItemConfig {
                half_life_days: None,
                kind_weights: KindWeights { view: 1.0, cart: 1.0, purchase: 1.0 },
                max_items_per_user: usize::MAX,
                ..ItemItemConfig::default()
            },
            als: AlsConfig::default(),
            hybrid_als_weight: crate::model::HYBRID_ALS_WEIGHT,
            history_half_life_days: RecsConfig::default().history_half_life_days,
            threads: 0,
        }
    }
}

/// One strategy's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyResult {
    /// The strategy.
    pub name: String,
    /// Hit rate at 10.
    pub hr_at_10: f64,
    /// NDCG at 10.
    pub ndcg_at_10: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Training time.
    pub fit_seconds: f64,
    /// Scoring and ranking time over all evaluated users.
    pub eval_seconds: f64,
}

/// The report `regard eval recs` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Users with a held-out item.
    pub users_evaluated: usize,
    /// Items in the catalogue ranked.
    pub items: usize,
    /// One line per strategy, `popular` first.
    pub strategies: Vec<StrategyResult>,
}

/// How a strategy scores the catalogue for one user: `(user, training row, scores out)`.
type Scorer<'a> = Box<dyn Fn(u32, &[crate::matrix::Entry], &mut [f32]) + Sync + 'a>;

/// Runs the protocol for every strategy and returns the report.
pub fn evaluate(data: &EvalData, options: &EvalOptions) -> Result<EvalReport, RecsError> {
    options.item_item.validate()?;
    options.als.validate()?;
    let n_items = data.train.n_items();
    let n_users = data.train.n_users();
    let started = Instant::now();
    let rule = StrengthRule {
        kind_weights: KindWeights { view: 1.0, cart: 1.0, purchase: 1.0 },
        half_life_secs: None,
        reference_secs: 0,
        max_items_per_user: usize::MAX,
    };
    let user_items = SparseRows::user_items(&data.train.interactions, n_users, &rule);
    let item_users = user_items.transpose(n_items);
    let matrix_seconds = started.elapsed().as_secs_f64();
    // The same rows weighted by recency: 0.5^(age / half-life) from the user's latest event.
    let mut latest = vec![i64::MIN; n_users];
    for i in &data.train.interactions {
        latest[i.user.index()] = latest[i.user.index()].max(i.timestamp_secs);
    }
    let half_life_secs = options.history_half_life_days * 86_400.0;
    let recent_interactions: Vec<crate::interactions::Interaction> = data
        .train
        .interactions
        .iter()
        .map(|i| {
            let age = (latest[i.user.index()] - i.timestamp_secs) as f64;
            crate::interactions::Interaction { weight: 0.5_f64.powf(age / half_life_secs) as f32, ..*i }
        })
        .collect();
    let recent_rows = SparseRows::user_items(&recent_interactions, n_users, &rule);
    let mut results = Vec::new();

    // Popularity: distinct training users per item.
    let started = Instant::now();
    let popularity: Vec<f32> = (0..n_items).map(|i| item_users.row(i).len() as f32).collect();
    let popular_fit = matrix_seconds + started.elapsed().as_secs_f64();
    let popular: Scorer = Box::new(|_, _, scores| scores.copy_from_slice(&popularity));
    results.push(run("popular", popular_fit, &popular, data, &user_items, options.threads));

    // Item-kNN with each similarity; the knn scorer sums neighbour similarities of the row.
    let mut cosine: Option<(ItemNeighbours, f64)> = None;
    for similarity in [Similarity::Cosine, Similarity::Jaccard, Similarity::Lift] {
        let config = ItemItemConfig { similarity, ..options.item_item.clone() };
        let started = Instant::now();
        let neighbours = ItemNeighbours::train(&user_items, &item_users, &config, options.threads);
        let fit = matrix_seconds + started.elapsed().as_secs_f64();
        let name = match similarity {
            Similarity::Cosine => "item_knn".to_owned(),
            other => format!("item_knn_{}", other.as_str()),
        };
        results.push(run(&name, fit, &knn_scorer(&neighbours), data, &user_items, options.threads));
        if similarity == Similarity::Cosine {
            cosine = Some((neighbours, fit));
        }
    }

    let started = Instant::now();
    let als = AlsModel::train(&user_items, &item_users, &options.als, options.threads);
    let als_fit = matrix_seconds + started.elapsed().as_secs_f64();
    let als_scorer: Scorer = Box::new(|user, _, scores| match als.user_vector(user as usize) {
        Some(vector) => als.score_all(vector, scores),
        None => scores.fill(0.0),
    });
    results.push(run("als", als_fit, &als_scorer, data, &user_items, options.threads));
    let fold_in_scorer: Scorer = Box::new(|_, row, scores| {
        let history: Vec<(ItemIdx, f32)> = row.iter().map(|e| (ItemIdx(e.idx), e.value)).collect();
        als.score_all(&als.fold_in(&history), scores);
    });
    results.push(run("als_fold_in", als_fit, &fold_in_scorer, data, &user_items, options.threads));

    if let Some((neighbours, knn_fit)) = &cosine {
        let recent_knn: Scorer = Box::new(|user, _, scores| {
            let row = recent_rows.row(user as usize);
            scores.fill(0.0);
            for entry in row {
                for n in neighbours.of(ItemIdx(entry.idx)) {
                    scores[n.item.index()] += entry.value * n.score;
                }
            }
        });
        results.push(run("item_knn_recent", *knn_fit, &recent_knn, data, &user_items, options.threads));
    }
    let recent_fold_in: Scorer = Box::new(|user, _, scores| {
        let history: Vec<(ItemIdx, f32)> =
            recent_rows.row(user as usize).iter().map(|e| (ItemIdx(e.idx), e.value)).collect();
        als.score_all(&als.fold_in(&history), scores);
    });
    results.push(run("als_fold_in_recent", als_fit, &recent_fold_in, data, &user_items, options.threads));

    if let Some((neighbours, knn_fit)) = &cosine {
        let weight = options.hybrid_als_weight;
        let hybrid: Scorer = Box::new(|user, row, scores| {
            hybrid_scores(neighbours, &als, None, weight, user, row, scores);
        });
        results.push(run("hybrid", knn_fit + als_fit - matrix_seconds, &hybrid, data, &user_items, options.threads));
        let hybrid_recent: Scorer = Box::new(|user, _, scores| {
            let row = recent_rows.row(user as usize);
            let history: Vec<(ItemIdx, f32)> = row.iter().map(|e| (ItemIdx(e.idx), e.value)).collect();
            hybrid_scores(neighbours, &als, Some(&als.fold_in(&history)), weight, user, row, scores);
        });
        results.push(run(
            "hybrid_recent",
            knn_fit + als_fit - matrix_seconds,
            &hybrid_recent,
            data,
            &user_items,
            options.threads,
        ));
        // The default chain as served: the recency-weighted hybrid's candidates first, then the
        // rest by popularity.
        let chain: Scorer = Box::new(|user, _, scores| {
            let row = recent_rows.row(user as usize);
            let history: Vec<(ItemIdx, f32)> = row.iter().map(|e| (ItemIdx(e.idx), e.value)).collect();
            hybrid_scores(neighbours, &als, Some(&als.fold_in(&history)), weight, user, row, scores);
            let best_popularity = popularity.iter().cloned().fold(1.0_f32, f32::max);
            for (score, pop) in scores.iter_mut().zip(&popularity) {
                let tier = if *score > 0.0 { 2.0 } else { 0.0 };
                *score = tier + score.max(0.0) / 2.0 + pop / best_popularity * 0.99 * f32::from(u8::from(tier == 0.0));
            }
        });
        results.push(run(
            "fallback_chain",
            knn_fit + als_fit - matrix_seconds,
            &chain,
            data,
            &user_items,
            options.threads,
        ));
    }

    // Category affinity needs categories: only with a catalogue that has them.
    let catalog = ItemCatalog::build(&data.train, &[]);
    if !catalog.category_items.is_empty() {
        let started = Instant::now();
        let best = popularity.iter().cloned().fold(1.0_f32, f32::max);
        let fit = matrix_seconds + started.elapsed().as_secs_f64();
        let affinity: Scorer = Box::new(|_, row, scores| {
            let mut weights = vec![0.0_f32; catalog.category_items.len()];
            for entry in row {
                if let Some(category) = catalog.category(ItemIdx(entry.idx)) {
                    weights[category.0 as usize] += 1.0;
                }
            }
            for (item, score) in scores.iter_mut().enumerate() {
                let affinity = catalog.category(ItemIdx(item as u32)).map_or(0.0, |c| weights[c.0 as usize]);
                *score = affinity + popularity[item] / best * 0.99;
            }
        });
        results.push(run("category_affinity", fit, &affinity, data, &user_items, options.threads));
    }

    Ok(EvalReport { users_evaluated: data.held_out.len(), items: n_items, strategies: results })
}

/// Item-kNN over a whole training row: Σ of the neighbour similarities of its items.
fn knn_scorer(neighbours: &ItemNeighbours) -> Scorer<'_> {
    Box::new(move |_, row, scores| {
        scores.fill(0.0);
        for entry in row {
            for n in neighbours.of(ItemIdx(entry.idx)) {
                scores[n.item.index()] += n.score;
            }
        }
    })
}

/// The hybrid as [`crate::model`] serves it: kNN (over the row's weights) and ALS (the given
/// user vector, else the trained one) each scaled by their best unseen item.
fn hybrid_scores(
    neighbours: &ItemNeighbours,
    als: &AlsModel,
    user_vector: Option<&[f32]>,
    als_weight: f32,
    user: u32,
    row: &[crate::matrix::Entry],
    scores: &mut [f32],
) {
    scores.fill(0.0);
    for entry in row {
        for n in neighbours.of(ItemIdx(entry.idx)) {
            scores[n.item.index()] += entry.value * n.score;
        }
    }
    let mut latent = vec![0.0_f32; scores.len()];
    if let Some(vector) = user_vector.or_else(|| als.user_vector(user as usize)) {
        als.score_all(vector, &mut latent);
    }
    let seen = |item: usize| row.binary_search_by_key(&(item as u32), |e| e.idx).is_ok();
    let best =
        |values: &[f32]| values.iter().enumerate().filter(|(i, _)| !seen(*i)).map(|(_, v)| *v).fold(0.0_f32, f32::max);
    let (knn_best, als_best) = (best(scores), best(&latent));
    let knn_weight = if knn_best > 0.0 { (1.0 - als_weight) / knn_best } else { 0.0 };
    let latent_weight = if als_best > 0.0 { als_weight / als_best } else { 0.0 };
    for (score, l) in scores.iter_mut().zip(&latent) {
        *score = *score * knn_weight + l.max(0.0) * latent_weight;
    }
}

/// Scores and ranks every evaluated user with one strategy.
fn run(
    name: &str,
    fit_seconds: f64,
    scorer: &Scorer,
    data: &EvalData,
    user_items: &SparseRows,
    threads: usize,
) -> StrategyResult {
    let n_items = data.train.n_items();
    let started = Instant::now();
    let sums = parallel::map_blocks(
        data.held_out.len(),
        64,
        parallel::worker_count(threads),
        || (vec![0.0_f32; n_items], vec![false; n_items]),
        |users, (scores, excluded)| {
            let mut sum = (0.0, 0.0, 0.0);
            for &(user, item) in &data.held_out[users] {
                let row = if (user as usize) < user_items.n_rows() { user_items.row(user as usize) } else { &[] };
                scorer(user, row, scores);
                for entry in row {
                    excluded[entry.idx as usize] = true;
                }
                let (hit, gain, reciprocal) = metrics_at_rank(rank_of(scores, excluded, item.index()));
                sum = (sum.0 + hit, sum.1 + gain, sum.2 + reciprocal);
                for entry in row {
                    excluded[entry.idx as usize] = false;
                }
            }
            sum
        },
    );
    let users = data.held_out.len().max(1) as f64;
    let (hits, gains, reciprocals) = sums.iter().fold((0.0, 0.0, 0.0), |a, s| (a.0 + s.0, a.1 + s.1, a.2 + s.2));
    StrategyResult {
        name: name.to_owned(),
        hr_at_10: hits / users,
        ndcg_at_10: gains / users,
        mrr: reciprocals / users,
        fit_seconds,
        eval_seconds: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
