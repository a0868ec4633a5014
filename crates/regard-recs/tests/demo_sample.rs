//! The recommendation core on a sample of the demo shop (see `tests/data/README.md`): the
//! offline evaluation runs, and a trained model answers a real person with explanations.

use regard_recs::eval::{evaluate, prepare, EvalOptions};
use regard_recs::interactions::{read_catalog_csv, read_interactions_csv, InteractionColumns};
use regard_recs::{HistoryEvent, InteractionLog, RecsConfig, RecsModel, RecsRequest, RuleInputs, Strategy};

const INTERACTIONS: &str = include_str!("data/demo_interactions.csv");
const CATALOG: &str = include_str!("data/demo_catalog.csv");

#[test]
fn personalized_strategies_beat_popularity_on_the_demo_sample() {
    let data = prepare(INTERACTIONS.as_bytes(), Some(CATALOG.as_bytes())).expect("prepares");
    let report = evaluate(&data, &EvalOptions::default()).expect("evaluates");
    assert_eq!(report.items, 600);
    assert_eq!(report.users_evaluated, 128);
    let hr = |name: &str| report.strategies.iter().find(|s| s.name == name).map(|s| s.hr_at_10).expect(name);
    assert!(hr("fallback_chain") > 2.0 * hr("popular"), "{report:?}");
    assert!(hr("item_knn") > 1.5 * hr("popular"), "{report:?}");
}

#[test]
fn a_trained_model_explains_every_recommendation() {
    let mut log = InteractionLog::new();
    read_catalog_csv(CATALOG.as_bytes(), &mut log).expect("catalog");
    read_interactions_csv(INTERACTIONS.as_bytes(), InteractionColumns::WithKindWeightCountry, &mut log)
        .expect("interactions");
    let model = RecsModel::train(&log, RecsConfig::default()).expect("trains");
    // The person with the longest history in the sample.
    let mut counts = vec![0_usize; log.n_users()];
    for i in &log.interactions {
        counts[i.user.index()] += 1;
    }
    let user = (0..counts.len()).max_by_key(|u| counts[*u]).expect("a user") as u32;
    let history = HistoryEvent::all_of(&log, user);
    let now = history.iter().map(|e| e.timestamp_secs).max().expect("history") + 3_600;
    let request = RecsRequest {
        history: &history,
        country: log.user_country[user as usize],
        now_secs: now,
        n: 10,
        rules: RuleInputs::default(),
        ..RecsRequest::default()
    };
    let list = model.recommend(&request);
    assert_eq!(list.len(), 10);
    assert_eq!(list[0].strategy, Strategy::Hybrid);
    assert!(list.iter().all(|r| !r.explanation.is_empty()));
    let seen: Vec<_> = history.iter().map(|e| e.item).collect();
    assert!(list.iter().all(|r| !seen.contains(&r.item)), "nothing from the history comes back");

    let anchor = history[0].item;
    let similar = model.similar_items(anchor, &RecsRequest { history: &[], ..request.clone() });
    assert!(!similar.is_empty());
    assert!(similar.iter().all(|r| r.item != anchor));
}
