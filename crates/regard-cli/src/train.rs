//! `regard train recs`: trains the recommendation model from the store's events and reports
//! what it was trained on (the server trains the same way at start-up and on a schedule).

use anyhow::Context;
use regard_server::recs::RecsService;

use crate::config::StoreArgs;
use crate::serve::open_engine;

/// `regard train recs`.
pub fn recs(store: &StoreArgs, quiet: bool) -> anyhow::Result<()> {
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
    bar.set_message("reading product events and training (item-item, ALS, popularity)");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let service = RecsService::default();
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let result = service.train(&engine, regard_recs::RecsConfig::default(), now_ms);
    bar.finish_and_clear();
    engine.shutdown();
    let report = result.map_err(|e| anyhow::anyhow!(e)).context("training the recommendation model")?;
    let memory = service.model().map(|m| serde_json::to_value(m.memory()).unwrap_or_default());
    let mut view = serde_json::to_value(&report)?;
    if let (Some(map), Some(memory)) = (view.as_object_mut(), memory) {
        map.insert("memory".into(), memory);
    }
    println!("{}", serde_json::to_string_pretty(&view)?);
    Ok(())
}

/// `regard train predict`.
pub fn predict(store: &StoreArgs, profile: Option<&str>, quiet: bool) -> anyhow::Result<()> {
    use regard_server::predict::PredictService;
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
    bar.set_message("reading orders, product events and email engagement; fitting the predictive models");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let content = crate::serve::open_content(&engine.config().data_dir, engine.config().live.policy.clone())?;
    let rates = content.snapshot().settings().exchange_rates.clone();
    let service = PredictService::default();
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let result = service.train(&engine, rates, now_ms);
    bar.finish_and_clear();
    let person = match (profile, &result) {
        (Some(key), Ok(_)) => {
            let id = engine.state().find_profile(key).map(|p| p.id);
            let id = id.with_context(|| format!("no profile is known by {key:?}"))?;
            Some(service.of_profile(&engine, id).map(|p| serde_json::to_value(&*p).unwrap_or_default()))
        }
        _ => None,
    };
    engine.shutdown();
    content.store.shutdown();
    let report = result.map_err(|e| anyhow::anyhow!(e)).context("fitting the predictive models")?;
    let mut view = serde_json::to_value(&report)?;
    if let (Some(map), Some(models)) = (view.as_object_mut(), service.models()) {
        map.insert("models".into(), serde_json::to_value(&*models)?);
        if let Some(person) = person {
            map.insert(
                "profile".into(),
                person.unwrap_or_else(|| serde_json::json!({"not_served": "no profiling consent or no data"})),
            );
        }
    }
    println!("{}", serde_json::to_string_pretty(&view)?);
    Ok(())
}
