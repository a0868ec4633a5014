//! Serving predictions: population models fitted from the store's own events (BG/NBD, Gamma-Gamma,
//! the cadence prior, send time, offer sensitivity, category propensity), each behind its data
//! threshold, and every consenting person's predictions computed from them.
//!
//! The models are swapped whole when a refit finishes; a person's predictions are recomputed
//! after each of their purchases without a refit. Predictions need `profiling` consent: they are
//! computed only for people who gave it, checked again whenever they are read, and become the
//! person's model scores (`churn_risk`, `propensity.coffee_beans`...) for segment conditions.

pub mod fit;
pub mod inputs;
pub mod person;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use parking_lot::{Mutex, RwLock};
use regard_content::money::ExchangeRates;
use regard_core::consent::ConsentPurpose;
use regard_core::facts::ProfileId;
use regard_models::propensity::PropensityConfig;
use regard_store::Engine;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use self::fit::{fit_models, FittedModels, Thresholds};
use self::inputs::{base_currency, read_everyone, read_person, CategoryMap};
use self::person::{predict_person, PersonPredictions};

/// What the last fit did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PredictStatus {
    /// `untrained`, `training`, `ready` or `failed`.
    pub state: &'static str,
    /// When the serving models were fitted (Unix ms).
    pub trained_at_ms: Option<i64>,
    /// People with any input.
    pub people: usize,
    /// People with predictions (those who allow `profiling`).
    pub predicted_people: usize,
    /// Seconds spent reading the store.
    pub read_seconds: f64,
    /// Seconds spent fitting the population models.
    pub fit_seconds: f64,
    /// Seconds spent predicting for everyone.
    pub predict_seconds: f64,
    /// Why the last fit failed.
    pub message: Option<String>,
}

/// The serving models, everyone's predictions, and the queue of people to refresh.
#[derive(Default)]
pub struct PredictService {
    models: ArcSwapOption<FittedModels>,
    people: RwLock<FxHashMap<ProfileId, Arc<PersonPredictions>>>,
    categories: Mutex<CategoryMap>,
    status: Mutex<PredictStatus>,
    training: Mutex<()>,
    dirty: Mutex<FxHashSet<ProfileId>>,
    thresholds: Thresholds,
}

impl std::fmt::Debug for PredictService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictService").field("status", &*self.status.lock()).finish_non_exhaustive()
    }
}

/// Whether a stored person may be predicted for.
fn allows_profiling(engine: &Engine, profile: ProfileId) -> bool {
    let live = engine.state();
    live.profile(live.canonical(profile)).is_some_and(|p| live.allows(p, ConsentPurpose::Profiling))
}

impl PredictService {
    /// A service with these thresholds instead of the defaults.
    pub fn with_thresholds(thresholds: Thresholds) -> PredictService {
        PredictService { thresholds, ..PredictService::default() }
    }

    /// The models serving now, if fitted.
    pub fn models(&self) -> Option<Arc<FittedModels>> {
        self.models.load_full()
    }

    /// The fit status.
    pub fn status(&self) -> PredictStatus {
        let mut status = self.status.lock().clone();
        if status.state.is_empty() {
            status.state = "untrained";
        }
        status
    }

    /// A person's predictions, when computed and while they allow `profiling`; a person who
    /// revoked it has theirs dropped here, at the first read.
    pub fn of_profile(&self, engine: &Engine, profile: ProfileId) -> Option<Arc<PersonPredictions>> {
        let canonical = engine.state().canonical(profile);
        if !allows_profiling(engine, canonical) {
            self.people.write().remove(&canonical);
            return None;
        }
        self.people.read().get(&canonical).cloned()
    }

    /// Queues a person for a refresh of their predictions (after a purchase).
    pub fn mark_dirty(&self, profile: ProfileId) {
        self.dirty.lock().insert(profile);
    }

    /// How many people wait for a refresh.
    pub fn pending(&self) -> usize {
        self.dirty.lock().len()
    }

    /// Reads the store, fits every model whose threshold is met, predicts for every person who
    /// allows `profiling`, and swaps it all in (model scores included). Runs on the caller's
    /// thread; a second call while one runs waits for it.
    pub fn train(&self, engine: &Engine, rates: Option<ExchangeRates>, now_ms: i64) -> Result<PredictStatus, String> {
        let _one_at_a_time = self.training.lock();
        self.status.lock().state = "training";
        let result = self.train_inner(engine, rates, now_ms);
        let mut status = self.status.lock();
        match result {
            Ok(report) => {
                *status = report.clone();
                Ok(report)
            }
            Err(message) => {
                status.state = "failed";
                status.message = Some(message.clone());
                Err(message)
            }
        }
    }

    fn train_inner(&self, engine: &Engine, rates: Option<ExchangeRates>, now_ms: i64) -> Result<PredictStatus, String> {
        let started = Instant::now();
        let policy = engine.state().config().policy.clone();
        let (people, categories) = read_everyone(engine, &policy)?;
        let read_seconds = started.elapsed().as_secs_f64();
        let base = base_currency(&people, rates.as_ref());
        let models = fit_models(
            &people,
            (categories.names.clone(), categories.excluded.clone()),
            base,
            rates,
            self.thresholds.clone(),
            now_ms,
            &PropensityConfig::default(),
        );
        let predicting = Instant::now();
        let allowed: FxHashSet<ProfileId> = {
            let live = engine.state();
            people
                .keys()
                .copied()
                .filter(|id| live.profile(*id).is_some_and(|p| live.allows(p, ConsentPurpose::Profiling)))
                .collect()
        };
        let mut predicted: FxHashMap<ProfileId, Arc<PersonPredictions>> = FxHashMap::default();
        let mut scores: Vec<(ProfileId, Vec<(String, f64)>)> = Vec::new();
        for (id, inputs) in &people {
            if !allowed.contains(id) {
                continue;
            }
            let mut prediction = predict_person(&models, inputs, now_ms);
            scores.push((*id, std::mem::take(&mut prediction.scores)));
            predicted.insert(*id, Arc::new(prediction));
        }
        let predict_seconds = predicting.elapsed().as_secs_f64();
        let status = PredictStatus {
            state: "ready",
            trained_at_ms: Some(now_ms),
            people: people.len(),
            predicted_people: predicted.len(),
            read_seconds,
            fit_seconds: models.fit_seconds,
            predict_seconds,
            message: None,
        };
        *self.categories.lock() = categories;
        self.models.store(Some(Arc::new(models)));
        *self.people.write() = predicted;
        engine
            .apply_blocking(move |live, facts| live.replace_scores(scores, now_ms, facts))
            .map_err(|e| format!("storing model scores: {e}"))?;
        Ok(status)
    }

    /// Recomputes the predictions of the people queued by [`PredictService::mark_dirty`] with
    /// the serving models (no refit) and updates their model scores. Returns how many.
    pub fn refresh_dirty(&self, engine: &Engine, now_ms: i64) -> Result<usize, String> {
        let Some(models) = self.models() else { return Ok(0) };
        let queued: Vec<ProfileId> = self.dirty.lock().drain().collect();
        let policy = engine.state().config().policy.clone();
        let categories = self.categories.lock().clone();
        let mut updates: Vec<(ProfileId, Vec<(String, f64)>)> = Vec::new();
        for profile in queued {
            let canonical = engine.state().canonical(profile);
            if !allows_profiling(engine, canonical) {
                self.people.write().remove(&canonical);
                continue;
            }
            let inputs = read_person(engine, &policy, &categories, canonical)?;
            let mut prediction = predict_person(&models, &inputs, now_ms);
            updates.push((canonical, std::mem::take(&mut prediction.scores)));
            self.people.write().insert(canonical, Arc::new(prediction));
        }
        let refreshed = updates.len();
        if refreshed > 0 {
            // One trip through the writer for the whole burst of buyers.
            engine
                .apply_blocking(move |live, facts| {
                    for (profile, scores) in &updates {
                        let named: Vec<(&str, f64)> = scores.iter().map(|(n, v)| (n.as_str(), *v)).collect();
                        live.set_scores(*profile, &named, now_ms, facts);
                    }
                })
                .map_err(|e| format!("storing model scores: {e}"))?;
        }
        Ok(refreshed)
    }
}

/// Fits the predictive models in the background now (unless they are fitted already) and every
/// `refit_minutes` (0: only at start-up), and refreshes the predictions of people who just bought, twice a second. Stops
/// when the engine does.
pub fn start_worker(state: &crate::AppState, refit_minutes: u64) {
    let (predict, engine, clock, content) =
        (state.predict.clone(), state.engine.clone(), state.clock.clone(), state.content.clone());
    let spawned = std::thread::Builder::new().name("regard-predict".to_owned()).spawn(move || {
        // Models fitted already (on demand, before the worker started) are not refitted at once.
        let mut next_fit_ms = match predict.models() {
            None => i64::MIN,
            Some(_) if refit_minutes == 0 => i64::MAX,
            Some(models) => models.fitted_at_ms + refit_minutes as i64 * 60_000,
        };
        loop {
            if !engine.is_healthy() {
                return;
            }
            let now_ms = clock.now_ms();
            if now_ms >= next_fit_ms {
                let rates = content.snapshot().settings().exchange_rates.clone();
                match predict.train(&engine, rates, now_ms) {
                    Ok(report) => tracing::info!(
                        people = report.people,
                        predicted = report.predicted_people,
                        fit_seconds = report.fit_seconds,
                        "predictive models fitted"
                    ),
                    Err(error) => tracing::warn!(%error, "predictive models not fitted"),
                }
                next_fit_ms = if refit_minutes == 0 { i64::MAX } else { now_ms + refit_minutes as i64 * 60_000 };
            }
            if let Err(error) = predict.refresh_dirty(&engine, clock.now_ms()) {
                tracing::warn!(%error, "refreshing predictions after purchases failed");
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start the predictive models");
    }
}
