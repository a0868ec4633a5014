//! The trained snapshot serving reads, and the queries it answers.
//!
//! [`RecsModel::train`] turns an [`InteractionLog`] into an immutable model: the item catalogue,
//! the top-k neighbour lists, the ALS factors, the popularity lists. The model is `Send + Sync`
//! and its big parts sit behind `Arc`s, so serving keeps one in an `ArcSwap`, queries it from
//! any thread without locks, and swaps in a retrained one atomically.
//! [`RecsModel::with_new_item`] returns a new snapshot with one more item (its neighbours from
//! its first interactions, or its content) that shares every big array with the old one.
//!
//! [`RecsModel::recommend`] runs a fallback chain: each strategy of the request's list (or the
//! configured default) proposes candidates best first, every candidate passes the rules
//! ([`crate::rules`]), and the list fills in chain order, recording per item the strategy
//! and the reason that produced it.

use std::sync::Arc;
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::als::{dot, AlsConfig, AlsModel, AlsSearch};
use crate::catalog::ItemCatalog;
use crate::content::content_neighbours;
use crate::interactions::{
    CategoryIdx, CountryCode, InteractionKind, InteractionLog, Interner, ItemIdx, ItemMeta, UserIdx,
};
use crate::itemknn::{by_score_then_item, ItemItemConfig, ItemNeighbours, Neighbour};
use crate::matrix::{SparseRows, StrengthRule};
use crate::popularity::{Popularity, PopularityConfig, PopularityWindow};
use crate::rules::{RuleFilter, RuleInputs, RulesConfig};
use crate::topk::TopK;
use crate::RecsError;

const DAY_SECS: f64 = 86_400.0;

/// A way of proposing items. Each recommended item records the strategy that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Item-kNN over the person's recent history: Σ of the neighbour similarities of the items
    /// they viewed, carted and bought, weighted by kind and recency.
    ItemKnn,
    /// The ALS latent-factor model, with the person folded in from their history.
    Als,
    /// Item-kNN and ALS blended (see [`HYBRID_ALS_WEIGHT`]).
    Hybrid,
    /// What the person viewed lately, newest first (for returning visitors).
    RecentlyViewed,
    /// Popular items of the categories the person's history leans to.
    CategoryAffinity,
    /// Popular among the people of the request's country, lately.
    PopularInCountry,
    /// Popular in the anchor item's category (or the filter's).
    PopularInCategory,
    /// Rising lately against the longer baseline.
    Trending,
    /// Popular overall.
    Popular,
    /// The anchor item's co-occurrence neighbours: "customers who bought X also bought".
    AlsoBought,
    /// The anchor item's neighbours by content (category, attributes, price band).
    SimilarContent,
}

/// The share of ALS in the hybrid score; item-kNN has the rest. Both are first scaled to
/// [0, 1] by their best candidate. Chosen by offline evaluation (BENCHMARKS.md).
pub const HYBRID_ALS_WEIGHT: f32 = 0.5;

impl Strategy {
    /// Every strategy, in declaration order.
    pub const ALL: [Strategy; 11] = [
        Strategy::ItemKnn,
        Strategy::Als,
        Strategy::Hybrid,
        Strategy::RecentlyViewed,
        Strategy::CategoryAffinity,
        Strategy::PopularInCountry,
        Strategy::PopularInCategory,
        Strategy::Trending,
        Strategy::Popular,
        Strategy::AlsoBought,
        Strategy::SimilarContent,
    ];

    /// The strategy's name as requests, reports and JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::ItemKnn => "item_knn",
            Strategy::Als => "als",
            Strategy::Hybrid => "hybrid",
            Strategy::RecentlyViewed => "recently_viewed",
            Strategy::CategoryAffinity => "category_affinity",
            Strategy::PopularInCountry => "popular_in_country",
            Strategy::PopularInCategory => "popular_in_category",
            Strategy::Trending => "trending",
            Strategy::Popular => "popular",
            Strategy::AlsoBought => "also_bought",
            Strategy::SimilarContent => "similar_content",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = RecsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase();
        Strategy::ALL.into_iter().find(|s| s.as_str() == wanted).ok_or_else(|| {
            let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.as_str()).collect();
            RecsError::config("strategy", format!("`{text}` is not one of {}", names.join(", ")))
        })
    }
}

/// Why an item was recommended, structurally; [`RecsModel::explain`] renders the sentence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// People who bought the anchor (at least the minimum support of them) also bought this.
    BoughtTogether {
        /// The item the person is looking at or bought.
        anchor: ItemIdx,
    },
    /// People who viewed the anchor also viewed this.
    ViewedTogether {
        /// The item the person is looking at.
        anchor: ItemIdx,
    },
    /// The person's own interaction with the anchor contributed most.
    BecauseYou {
        /// The history item.
        anchor: ItemIdx,
        /// What they did with it.
        kind: InteractionKind,
    },
    /// Alike by content.
    SimilarTo {
        /// The item it resembles.
        anchor: ItemIdx,
    },
    /// The latent model, when no history item explains it.
    FromYourHistory,
    /// Popular in a category the person favours.
    CategoryAffinity {
        /// The category.
        category: CategoryIdx,
    },
    /// Popular in a category.
    PopularInCategory {
        /// The category.
        category: CategoryIdx,
    },
    /// Popular in the person's country over a window.
    PopularInCountry {
        /// The country.
        country: CountryCode,
        /// The window the popularity was counted over.
        window: PopularityWindow,
    },
    /// Rising lately.
    Trending,
    /// Popular overall.
    Popular,
    /// The person viewed it lately.
    RecentlyViewed,
}

/// One event of the person's history, as serving passes it to a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEvent {
    /// The item (see [`RecsModel::item_idx`]).
    pub item: ItemIdx,
    /// What they did.
    pub kind: InteractionKind,
    /// When, in Unix seconds.
    pub timestamp_secs: i64,
}

impl HistoryEvent {
    /// Every logged interaction of one user (by dense index), in log order: a person's whole
    /// history as offline evaluation, benches and tests query with it.
    pub fn all_of(log: &InteractionLog, user: u32) -> Vec<HistoryEvent> {
        log.interactions
            .iter()
            .filter(|i| i.user.0 == user)
            .map(|i| HistoryEvent { item: i.item, kind: i.kind, timestamp_secs: i.timestamp_secs })
            .collect()
    }
}

/// A recommendation query.
#[derive(Debug, Clone, Default)]
pub struct RecsRequest<'a> {
    /// The person's recent history, any order (the most recent `history_limit` items are used).
    pub history: &'a [HistoryEvent],
    /// The person as a training user, used by ALS when the history is empty.
    pub user: Option<UserIdx>,
    /// The person's country, for popular-in-country.
    pub country: Option<CountryCode>,
    /// The item the list is about (a product page), for also-bought, similar-content and
    /// popular-in-category; without one they anchor on the most recent history item.
    pub anchor: Option<ItemIdx>,
    /// Now, in Unix seconds (the model never reads the clock).
    pub now_secs: i64,
    /// Items wanted.
    pub n: usize,
    /// The fallback chain; empty for the configured default.
    pub strategies: &'a [Strategy],
    /// What the rules need to know about this request.
    pub rules: RuleInputs<'a>,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The item (see [`RecsModel::item_id`]).
    pub item: ItemIdx,
    /// The producing strategy's score (comparable only within one strategy).
    pub score: f32,
    /// The strategy that produced it.
    pub strategy: Strategy,
    /// Why, structurally.
    pub reason: Reason,
    /// Why, as a sentence for the person ("Because you viewed Trail shoes").
    pub explanation: String,
}

/// Settings of a whole model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecsConfig {
    /// Item-item training (also fixes the kind weights and decay of every strength).
    pub item_item: ItemItemConfig,
    /// ALS training; `None` leaves the latent model out (ALS and hybrid then fall through).
    pub als: Option<AlsConfig>,
    /// Popularity lists.
    pub popularity: PopularityConfig,
    /// The rules.
    pub rules: RulesConfig,
    /// Half-life of a history event's weight at query time, in days, counted back from the
    /// person's latest event: the last visit dominates, older ones fade (chosen by offline
    /// evaluation, BENCHMARKS.md).
    pub history_half_life_days: f64,
    /// History items used per query (the most recent).
    pub history_limit: usize,
    /// Candidates each strategy proposes before the rules.
    pub candidates_per_strategy: usize,
    /// How ALS and the hybrid find the latent model's best items; the lists are the same
    /// either way, the quantized search is faster.
    #[serde(default)]
    pub als_search: AlsSearch,
    /// Content neighbours of a new item when co-occurrence gives fewer than k.
    pub content_top_k: usize,
    /// The default fallback chain of [`RecsModel::recommend`].
    pub chain: Vec<Strategy>,
    /// The default chain of [`RecsModel::similar_items`].
    pub item_chain: Vec<Strategy>,
    /// The training's "now" in Unix seconds; `None` for the latest interaction.
    pub reference_secs: Option<i64>,
    /// Training threads; 0 for all cores.
    pub threads: usize,
}

impl Default for RecsConfig {
    fn default() -> Self {
        RecsConfig {
            item_item: ItemItemConfig::default(),
            als: Some(AlsConfig::default()),
            popularity: PopularityConfig::default(),
            rules: RulesConfig::default(),
            history_half_life_days: 0.25,
            history_limit: 50,
            candidates_per_strategy: 200,
            als_search: AlsSearch::Quantized,
            content_top_k: 20,
            chain: vec![Strategy::Hybrid, Strategy::CategoryAffinity, Strategy::PopularInCountry, Strategy::Popular],
            item_chain: vec![
                Strategy::AlsoBought,
                Strategy::SimilarContent,
                Strategy::PopularInCategory,
                Strategy::Popular,
            ],
            reference_secs: None,
            threads: 0,
        }
    }
}

/// Seconds spent in each part of training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TrainingReport {
    /// Building the strength matrix, its transpose and the catalogue.
    pub matrix_seconds: f64,
    /// Item-item neighbours.
    pub item_item_seconds: f64,
    /// ALS.
    pub als_seconds: f64,
    /// Popularity lists.
    pub popularity_seconds: f64,
}

/// Bytes held by a model, by part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MemoryReport {
    /// Neighbour lists (12 bytes a neighbour, 8 an item).
    pub neighbours_bytes: usize,
    /// ALS factors and Gram matrices.
    pub als_bytes: usize,
    /// Users' training rows (kept to give new items neighbours).
    pub user_rows_bytes: usize,
    /// Item ids, metadata, categories.
    pub catalog_bytes: usize,
    /// User ids.
    pub users_bytes: usize,
    /// Popularity lists.
    pub popularity_bytes: usize,
    /// Neighbour bytes per item.
    pub neighbours_bytes_per_item: f64,
    /// Everything.
    pub total_bytes: usize,
}

/// A trained, immutable recommendation snapshot. Cheap to clone (the parts are shared).
#[derive(Debug, Clone)]
pub struct RecsModel {
    catalog: Arc<ItemCatalog>,
    users: Arc<Interner>,
    user_items: Arc<SparseRows>,
    neighbours: Arc<ItemNeighbours>,
    /// Neighbour lists of items added after training, and the added items as neighbours of
    /// trained ones.
    added_neighbours: Arc<FxHashMap<u32, Vec<Neighbour>>>,
    als: Option<Arc<AlsModel>>,
    /// ALS vectors of items added after training, in order.
    added_item_factors: Arc<Vec<f32>>,
    popularity: Arc<Popularity>,
    config: Arc<RecsConfig>,
    strength_rule: StrengthRule,
    report: TrainingReport,
}

/// A history item with its query-time weight.
#[derive(Debug, Clone, Copy)]
struct WeightedItem {
    item: ItemIdx,
    weight: f32,
    kind: InteractionKind,
    last_secs: i64,
}

/// A proposed item before the rules.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    item: ItemIdx,
    score: f32,
    reason: Reason,
}

/// What every strategy of one query reads.
struct QueryContext<'r> {
    request: &'r RecsRequest<'r>,
    history: Vec<WeightedItem>,
    seen: FxHashSet<ItemIdx>,
    anchor: Option<WeightedItem>,
}

impl RecsModel {
    /// Trains every part of the model on `log`.
    pub fn train(log: &InteractionLog, config: RecsConfig) -> Result<RecsModel, RecsError> {
        config.item_item.validate()?;
        if let Some(als) = &config.als {
            als.validate()?;
        }
        if config.history_limit == 0 {
            return Err(RecsError::config("history_limit", "must be at least 1"));
        }
        let threads = config.threads;
        let started = Instant::now();
        let reference_secs = config
            .reference_secs
            .unwrap_or_else(|| log.interactions.iter().map(|i| i.timestamp_secs).max().unwrap_or(0));
        let strength_rule = StrengthRule {
            kind_weights: config.item_item.kind_weights,
            half_life_secs: config.item_item.half_life_days.map(|d| d * DAY_SECS),
            reference_secs,
            max_items_per_user: config.item_item.max_items_per_user,
        };
        let user_items = SparseRows::user_items(&log.interactions, log.n_users(), &strength_rule);
        let item_users = user_items.transpose(log.n_items());
        let catalog = ItemCatalog::build(log, &config.rules.sensitive_categories);
        let mut report =
            TrainingReport { matrix_seconds: started.elapsed().as_secs_f64(), ..TrainingReport::default() };

        let started = Instant::now();
        let neighbours = ItemNeighbours::train(&user_items, &item_users, &config.item_item, threads);
        report.item_item_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let als = config.als.as_ref().map(|c| Arc::new(AlsModel::train(&user_items, &item_users, c, threads)));
        report.als_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let popularity = Popularity::build(
            log,
            &item_users,
            &catalog,
            &config.item_item.kind_weights,
            reference_secs,
            &config.popularity,
        );
        report.popularity_seconds = started.elapsed().as_secs_f64();

        Ok(RecsModel {
            catalog: Arc::new(catalog),
            users: Arc::new(log.users.clone()),
            user_items: Arc::new(user_items),
            neighbours: Arc::new(neighbours),
            added_neighbours: Arc::default(),
            als,
            added_item_factors: Arc::default(),
            popularity: Arc::new(popularity),
            config: Arc::new(config),
            strength_rule,
            report,
        })
    }

    /// Where training spent its time.
    pub fn training_report(&self) -> TrainingReport {
        self.report
    }

    /// The configuration the model was trained with.
    pub fn config(&self) -> &RecsConfig {
        &self.config
    }

    /// The items: ids, metadata, categories, learned repeat buying.
    pub fn catalog(&self) -> &ItemCatalog {
        &self.catalog
    }

    /// The index of item `id`.
    pub fn item_idx(&self, id: &str) -> Option<ItemIdx> {
        self.catalog.idx(id)
    }

    /// The id of an item.
    pub fn item_id(&self, item: ItemIdx) -> &str {
        self.catalog.key(item)
    }

    /// The index of training user `id`.
    pub fn user_idx(&self, id: &str) -> Option<UserIdx> {
        self.users.get(id).map(UserIdx)
    }

    /// The number of items.
    pub fn n_items(&self) -> usize {
        self.catalog.len()
    }

    /// The neighbours of an item: trained, then any added since.
    pub fn neighbours(&self, item: ItemIdx) -> impl Iterator<Item = &Neighbour> + '_ {
        self.neighbours.of(item).iter().chain(self.added_neighbours.get(&item.0).into_iter().flatten())
    }

    /// Bytes held, by part.
    pub fn memory(&self) -> MemoryReport {
        let neighbours_bytes = self.neighbours.heap_bytes()
            + self
                .added_neighbours
                .values()
                .map(|l| l.capacity() * std::mem::size_of::<Neighbour>() + 32)
                .sum::<usize>();
        let als_bytes = self.als.as_ref().map_or(0, |a| a.heap_bytes()) + self.added_item_factors.capacity() * 4;
        let mut report = MemoryReport {
            neighbours_bytes,
            als_bytes,
            user_rows_bytes: self.user_items.heap_bytes(),
            catalog_bytes: self.catalog.heap_bytes(),
            users_bytes: self.users.heap_bytes(),
            popularity_bytes: self.popularity.heap_bytes(),
            neighbours_bytes_per_item: neighbours_bytes as f64 / self.catalog.len().max(1) as f64,
            total_bytes: 0,
        };
        report.total_bytes = report.neighbours_bytes
            + report.als_bytes
            + report.user_rows_bytes
            + report.catalog_bytes
            + report.users_bytes
            + report.popularity_bytes;
        report
    }

    /// The sentence for a reason, with item titles and category and country names.
    pub fn explain(&self, reason: &Reason) -> String {
        let title = |item: ItemIdx| self.catalog.title(item).to_owned();
        match *reason {
            Reason::BoughtTogether { anchor } => format!("Customers who bought {} also bought this", title(anchor)),
            Reason::ViewedTogether { anchor } => format!("Customers who viewed {} also viewed this", title(anchor)),
            Reason::BecauseYou { anchor, kind: InteractionKind::View } => {
                format!("Because you viewed {}", title(anchor))
            }
            Reason::BecauseYou { anchor, kind: InteractionKind::Cart } => {
                format!("Because you added {} to your cart", title(anchor))
            }
            Reason::BecauseYou { anchor, kind: InteractionKind::Purchase } => {
                format!("Because you bought {}", title(anchor))
            }
            Reason::SimilarTo { anchor } => format!("Similar to {}", title(anchor)),
            Reason::FromYourHistory => "Picked for you from what you viewed and bought".to_owned(),
            Reason::CategoryAffinity { category } => {
                format!("Popular in {}, a category you browse", self.catalog.category_name(category))
            }
            Reason::PopularInCategory { category } => format!("Popular in {}", self.catalog.category_name(category)),
            Reason::PopularInCountry { country, window } => {
                let name = country.english_name().map_or_else(|| country.to_string(), str::to_owned);
                format!("Popular in {name}{}", window.phrase(self.popularity.recent_days))
            }
            Reason::Trending => {
                format!("Trending{}", PopularityWindow::Recent.phrase(self.popularity.recent_days))
            }
            Reason::Popular => "Popular with our customers".to_owned(),
            Reason::RecentlyViewed => "You viewed this recently".to_owned(),
        }
    }

    /// A ranked, filtered, explained list for a person: the request's chain (or the default)
    /// in order until `n` items pass the rules.
    pub fn recommend(&self, request: &RecsRequest) -> Vec<Recommendation> {
        let chain = if request.strategies.is_empty() { &self.config.chain[..] } else { request.strategies };
        self.run_chain(request, chain)
    }

    /// Items like `item` for its product page: the request's chain or the configured item
    /// chain (also bought → similar content → popular in its category → popular), anchored on
    /// `item`; the request's history still feeds the rules.
    pub fn similar_items(&self, item: ItemIdx, request: &RecsRequest) -> Vec<Recommendation> {
        let anchored = RecsRequest { anchor: Some(item), ..request.clone() };
        let chain = if request.strategies.is_empty() { &self.config.item_chain[..] } else { request.strategies };
        self.run_chain(&anchored, chain)
    }

    fn run_chain(&self, request: &RecsRequest, chain: &[Strategy]) -> Vec<Recommendation> {
        let context = self.context(request);
        let mut filter =
            RuleFilter::new(&self.catalog, &self.config.rules, &request.rules, request.history, request.now_secs);
        let mut chosen: FxHashSet<ItemIdx> = FxHashSet::default();
        if let Some(anchor) = request.anchor {
            chosen.insert(anchor);
        }
        let mut out = Vec::with_capacity(request.n);
        for &strategy in chain {
            if out.len() >= request.n {
                break;
            }
            for candidate in self.candidates(strategy, &context) {
                if chosen.contains(&candidate.item) || filter.admit(candidate.item).is_err() {
                    continue;
                }
                chosen.insert(candidate.item);
                let reason = self.final_reason(&candidate, &context);
                out.push(Recommendation {
                    item: candidate.item,
                    score: candidate.score,
                    strategy,
                    reason,
                    explanation: self.explain(&reason),
                });
                if out.len() >= request.n {
                    break;
                }
            }
        }
        out
    }

    /// The history weighted by kind and recency, most recent first, at most `history_limit`.
    fn context<'r>(&self, request: &'r RecsRequest<'r>) -> QueryContext<'r> {
        let half_life_secs = self.config.history_half_life_days * DAY_SECS;
        // Ages count back from the latest event, so the last visit weighs fully however long
        // ago it was, as in the offline evaluation.
        let latest_secs = request.history.iter().map(|e| e.timestamp_secs).max().unwrap_or(request.now_secs);
        let mut by_item: FxHashMap<ItemIdx, WeightedItem> = FxHashMap::default();
        for event in request.history.iter().filter(|e| e.item.index() < self.catalog.len()) {
            let age = (latest_secs - event.timestamp_secs).max(0) as f64;
            let weight = self.strength_rule.kind_weights.of(event.kind) * (0.5_f64).powf(age / half_life_secs) as f32;
            let entry = by_item.entry(event.item).or_insert(WeightedItem {
                item: event.item,
                weight: 0.0,
                kind: event.kind,
                last_secs: event.timestamp_secs,
            });
            entry.weight += weight;
            entry.kind = entry.kind.max(event.kind);
            entry.last_secs = entry.last_secs.max(event.timestamp_secs);
        }
        let seen: FxHashSet<ItemIdx> = by_item.keys().copied().collect();
        let mut history: Vec<WeightedItem> = by_item.into_values().collect();
        history.sort_unstable_by(|a, b| b.last_secs.cmp(&a.last_secs).then(a.item.cmp(&b.item)));
        history.truncate(self.config.history_limit);
        let anchor = match request.anchor {
            Some(item) => {
                Some(WeightedItem { item, weight: 1.0, kind: InteractionKind::View, last_secs: request.now_secs })
            }
            None => history
                .iter()
                .copied()
                .max_by(|a, b| a.kind.cmp(&b.kind).then(a.last_secs.cmp(&b.last_secs)).then(b.item.cmp(&a.item)))
                .filter(|a| a.kind == InteractionKind::Purchase)
                .or_else(|| history.first().copied()),
        };
        QueryContext { request, history, seen, anchor }
    }

    /// A strategy's candidates, best first, without the person's history items (except for
    /// recently viewed) and without the anchor.
    fn candidates(&self, strategy: Strategy, context: &QueryContext) -> Vec<Candidate> {
        let limit = self.config.candidates_per_strategy.max(context.request.n);
        let unseen = |item: &ItemIdx| !context.seen.contains(item) && Some(*item) != context.anchor.map(|a| a.item);
        let ranked = |list: &[(ItemIdx, f32)], reason: Reason| -> Vec<Candidate> {
            list.iter()
                .filter(|(i, _)| unseen(i))
                .take(limit)
                .map(|&(item, score)| Candidate { item, score, reason })
                .collect()
        };
        match strategy {
            Strategy::ItemKnn => self.item_knn(context, limit),
            Strategy::Als => self.als_candidates(context, limit),
            Strategy::Hybrid => self.hybrid(context, limit),
            Strategy::RecentlyViewed => context
                .history
                .iter()
                .filter(|h| h.kind == InteractionKind::View)
                .map(|h| Candidate { item: h.item, score: h.weight, reason: Reason::RecentlyViewed })
                .collect(),
            Strategy::CategoryAffinity => self.category_affinity(context, limit),
            Strategy::PopularInCountry => match context.request.country {
                Some(country) => match self.popularity.by_country.get(&country) {
                    Some((window, list)) => ranked(list, Reason::PopularInCountry { country, window: *window }),
                    None => Vec::new(),
                },
                None => Vec::new(),
            },
            Strategy::PopularInCategory => {
                let category = context
                    .request
                    .rules
                    .filter
                    .category
                    .as_deref()
                    .and_then(|path| {
                        self.catalog.categories.get(&path.split('>').map(str::trim).collect::<Vec<_>>().join(" > "))
                    })
                    .map(CategoryIdx)
                    .or_else(|| context.anchor.and_then(|a| self.catalog.category(a.item)));
                match category.and_then(|c| self.popularity.by_category.get(c.0 as usize).map(|l| (c, l))) {
                    Some((category, list)) => ranked(list, Reason::PopularInCategory { category }),
                    None => Vec::new(),
                }
            }
            Strategy::Trending => ranked(&self.popularity.trending, Reason::Trending),
            Strategy::Popular => ranked(&self.popularity.global, Reason::Popular),
            Strategy::AlsoBought => {
                let Some(anchor) = context.anchor else { return Vec::new() };
                let min_support = self.config.item_item.min_support;
                self.neighbours(anchor.item)
                    .filter(|n| unseen(&n.item) && n.support > 0)
                    .take(limit)
                    .map(|n| Candidate {
                        item: n.item,
                        score: n.score,
                        reason: if u32::from(n.bought_together) >= min_support {
                            Reason::BoughtTogether { anchor: anchor.item }
                        } else {
                            Reason::ViewedTogether { anchor: anchor.item }
                        },
                    })
                    .collect()
            }
            Strategy::SimilarContent => {
                let Some(anchor) = context.anchor else { return Vec::new() };
                if anchor.item.index() >= self.catalog.len() {
                    return Vec::new();
                }
                content_neighbours(&self.catalog, anchor.item, limit + context.seen.len())
                    .into_iter()
                    .filter(|n| unseen(&n.item))
                    .map(|n| Candidate {
                        item: n.item,
                        score: n.score,
                        reason: Reason::SimilarTo { anchor: anchor.item },
                    })
                    .collect()
            }
        }
    }

    /// Item-kNN over the weighted history; the reason names the history item that contributed most.
    fn item_knn(&self, context: &QueryContext, limit: usize) -> Vec<Candidate> {
        let scores = self.knn_scores(context);
        let mut list: Vec<Candidate> = scores
            .into_iter()
            .map(|(item, (score, anchor, kind, _))| Candidate {
                item,
                score,
                reason: Reason::BecauseYou { anchor, kind },
            })
            .collect();
        top_candidates(&mut list, limit);
        list
    }

    /// Σ over history items of weight × similarity, per candidate, with the best contributor.
    fn knn_scores(&self, context: &QueryContext) -> FxHashMap<ItemIdx, (f32, ItemIdx, InteractionKind, f32)> {
        let mut scores: FxHashMap<ItemIdx, (f32, ItemIdx, InteractionKind, f32)> = FxHashMap::default();
        for h in &context.history {
            for n in self.neighbours(h.item) {
                if context.seen.contains(&n.item) {
                    continue;
                }
                let contribution = h.weight * n.score;
                let slot = scores.entry(n.item).or_insert((0.0, h.item, h.kind, 0.0));
                slot.0 += contribution;
                if contribution > slot.3 {
                    *slot = (slot.0, h.item, h.kind, contribution);
                }
            }
        }
        scores
    }

    /// The user's factors: folded in from the history, else the trained user's.
    fn user_vector(&self, als: &AlsModel, context: &QueryContext) -> Option<Vec<f32>> {
        if !context.history.is_empty() {
            let history: Vec<(ItemIdx, f32)> =
                context.history.iter().filter(|h| h.item.index() < als.n_items()).map(|h| (h.item, h.weight)).collect();
            if !history.is_empty() {
                return Some(als.fold_in(&history));
            }
        }
        context.request.user.and_then(|u| als.user_vector(u.index())).map(<[f32]>::to_vec)
    }

    /// The ALS score of one item for a user vector, including items added after training.
    fn als_score(&self, als: &AlsModel, user: &[f32], item: ItemIdx) -> f32 {
        match als.item_vector(item) {
            Some(y) => dot(user, y),
            None => {
                let f = als.factors();
                let offset = item.index() - als.n_items();
                self.added_item_factors.get(offset * f..(offset + 1) * f).map_or(0.0, |y| dot(user, y))
            }
        }
    }

    /// The ALS top `limit` candidates with the user vector they came from.
    fn als_top(&self, context: &QueryContext, limit: usize) -> Option<(Vec<f32>, Vec<Candidate>)> {
        let als = self.als.as_ref()?;
        let user = self.user_vector(als, context)?;
        let anchor = context.anchor.map(|a| a.item);
        let skip = |item: ItemIdx| context.seen.contains(&item) || Some(item) == anchor;
        let mut top = TopK::new(limit);
        // Items added after training are few and outside the model's 8-bit copy: score them all.
        for (offset, vector) in self.added_item_factors.chunks_exact(als.factors()).enumerate() {
            let item = ItemIdx((als.n_items() + offset) as u32);
            if !skip(item) {
                top.offer(dot(&user, vector), item);
            }
        }
        als.search(&user, &mut top, self.config.als_search, skip);
        let list = top
            .into_sorted()
            .into_iter()
            .map(|scored| Candidate { item: scored.1, score: scored.0, reason: Reason::FromYourHistory })
            .collect();
        Some((user, list))
    }

    fn als_candidates(&self, context: &QueryContext, limit: usize) -> Vec<Candidate> {
        self.als_top(context, limit).map(|(_, list)| list).unwrap_or_default()
    }

    /// Item-kNN and ALS scores, each scaled by its best candidate, blended by
    /// [`HYBRID_ALS_WEIGHT`], over the union of both strategies' candidates.
    fn hybrid(&self, context: &QueryContext, limit: usize) -> Vec<Candidate> {
        let knn = self.knn_scores(context);
        let als_top = self.als_top(context, limit);
        let knn_max = knn.values().map(|v| v.0).fold(0.0_f32, f32::max);
        let als_max = als_top.as_ref().and_then(|(_, list)| list.first()).map_or(0.0, |c| c.score.max(0.0));
        let (knn_weight, als_weight) = match (knn_max > 0.0, als_max > 0.0) {
            (true, true) => ((1.0 - HYBRID_ALS_WEIGHT) / knn_max, HYBRID_ALS_WEIGHT / als_max),
            (true, false) => (1.0 / knn_max, 0.0),
            (false, true) => (0.0, 1.0 / als_max),
            (false, false) => return Vec::new(),
        };
        let mut list: Vec<Candidate> = Vec::with_capacity(knn.len() + limit);
        let user = als_top.as_ref().map(|(user, _)| user.as_slice());
        for (&item, &(score, anchor, kind, _)) in &knn {
            let als_score = match (self.als.as_deref(), user) {
                (Some(als), Some(user)) if als_weight > 0.0 => self.als_score(als, user, item).max(0.0),
                _ => 0.0,
            };
            list.push(Candidate {
                item,
                score: score * knn_weight + als_score * als_weight,
                reason: Reason::BecauseYou { anchor, kind },
            });
        }
        if let Some((_, als_list)) = &als_top {
            for candidate in als_list.iter().filter(|c| !knn.contains_key(&c.item)) {
                list.push(Candidate { score: candidate.score.max(0.0) * als_weight, ..*candidate });
            }
        }
        top_candidates(&mut list, limit);
        list
    }

    /// Popular items of the person's favourite categories, interleaved by affinity.
    fn category_affinity(&self, context: &QueryContext, limit: usize) -> Vec<Candidate> {
        let mut affinity: FxHashMap<CategoryIdx, f32> = FxHashMap::default();
        for h in &context.history {
            if let Some(category) = self.catalog.category(h.item) {
                *affinity.entry(category).or_insert(0.0) += h.weight;
            }
        }
        let total: f32 = affinity.values().sum();
        if total <= 0.0 {
            return Vec::new();
        }
        let mut list: Vec<Candidate> = Vec::new();
        for (category, weight) in affinity {
            let Some(popular) = self.popularity.by_category.get(category.0 as usize) else { continue };
            let best = popular.first().map_or(1.0, |p| p.1.max(f32::MIN_POSITIVE));
            list.extend(popular.iter().filter(|(i, _)| !context.seen.contains(i)).take(limit).map(|&(item, score)| {
                Candidate { item, score: weight / total * score / best, reason: Reason::CategoryAffinity { category } }
            }));
        }
        top_candidates(&mut list, limit);
        list
    }

    /// For a latent-model candidate, the history item whose factors agree most with it.
    fn final_reason(&self, candidate: &Candidate, context: &QueryContext) -> Reason {
        if candidate.reason != Reason::FromYourHistory {
            return candidate.reason;
        }
        let Some(als) = &self.als else { return candidate.reason };
        let Some(target) = als.item_vector(candidate.item) else { return candidate.reason };
        context
            .history
            .iter()
            .filter_map(|h| als.item_vector(h.item).map(|y| (h, h.weight * dot(y, target))))
            .filter(|(_, affinity)| *affinity > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(candidate.reason, |(h, _)| Reason::BecauseYou { anchor: h.item, kind: h.kind })
    }

    /// A new snapshot with one more item, without retraining: its neighbours come from the
    /// training rows of the users in `interactions` (`(user id, kind, time)`; unknown users
    /// are skipped), topped up by content neighbours; it also becomes a neighbour of the
    /// trained items it co-occurs with, and gets ALS factors folded in from its users (or the
    /// mean of its content neighbours' factors). The big arrays are shared with `self`; the
    /// item table is copied once.
    pub fn with_new_item(
        &self,
        id: &str,
        meta: ItemMeta,
        interactions: &[(&str, InteractionKind, i64)],
    ) -> Result<RecsModel, RecsError> {
        if self.catalog.idx(id).is_some() {
            return Err(RecsError::DuplicateItem(id.to_owned()));
        }
        let mut next = self.clone();
        let catalog = Arc::make_mut(&mut next.catalog);
        let new_item = ItemIdx(catalog.keys.intern(id));
        catalog.meta.push(meta);
        catalog.index_item(new_item.index(), &self.config.rules.sensitive_categories);

        let rule = StrengthRule {
            reference_secs: interactions.iter().map(|i| i.2).max().unwrap_or(0).max(self.strength_rule.reference_secs),
            ..self.strength_rule
        };
        let mut per_user: FxHashMap<u32, (f32, bool)> = FxHashMap::default();
        for &(user, kind, time) in interactions {
            let Some(user) = self.users.get(user) else { continue };
            let slot = per_user.entry(user).or_insert((0.0, false));
            slot.0 += rule.strength(kind, 1.0, time);
            slot.1 |= kind == InteractionKind::Purchase;
        }
        let mut column: Vec<(u32, f32, bool)> = per_user.into_iter().map(|(u, (v, b))| (u, v, b)).collect();
        column.sort_unstable_by_key(|c| c.0);
        let mut list = self.neighbours.neighbours_of_new_item(&column, &self.user_items);
        let k = self.config.item_item.top_k;
        let added = Arc::make_mut(&mut next.added_neighbours);
        for n in &list {
            added.entry(n.item.0).or_default().push(Neighbour { item: new_item, ..*n });
        }
        if list.len() < k.min(self.config.content_top_k.max(1)) {
            let known: FxHashSet<ItemIdx> = list.iter().map(|n| n.item).collect();
            let content = content_neighbours(&next.catalog, new_item, self.config.content_top_k);
            list.extend(content.into_iter().filter(|n| !known.contains(&n.item)).take(k.saturating_sub(known.len())));
        }
        list.sort_by(|a, b| (b.support > 0).cmp(&(a.support > 0)).then(by_score_then_item(a, b)));
        let content_only: Vec<ItemIdx> = list.iter().filter(|n| n.support == 0).map(|n| n.item).collect();
        Arc::make_mut(&mut next.added_neighbours).insert(new_item.0, list);

        if let Some(als) = &self.als {
            let users: Vec<(u32, f32)> = column.iter().map(|c| (c.0, c.1)).collect();
            let mut vector = als.fold_in_item(&users);
            if vector.iter().all(|v| *v == 0.0) && !content_only.is_empty() {
                let mut sum = vec![0.0_f32; als.factors()];
                let mut count = 0.0_f32;
                for y in content_only.iter().filter_map(|i| als.item_vector(*i)) {
                    sum.iter_mut().zip(y).for_each(|(s, v)| *s += v);
                    count += 1.0;
                }
                if count > 0.0 {
                    vector = sum.into_iter().map(|s| s / count).collect();
                }
            }
            // Items added earlier without ALS factors would misalign the list; none exist,
            // since every added item gets a vector here.
            Arc::make_mut(&mut next.added_item_factors).extend_from_slice(&vector);
        }
        Ok(next)
    }
}

/// Keeps the `limit` best candidates, best first, ties to the smaller item.
fn top_candidates(list: &mut Vec<Candidate>, limit: usize) {
    let order = |a: &Candidate, b: &Candidate| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item));
    if list.len() > limit && limit > 0 {
        list.select_nth_unstable_by(limit - 1, order);
        list.truncate(limit);
    }
    list.sort_unstable_by(order);
    list.truncate(limit);
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
