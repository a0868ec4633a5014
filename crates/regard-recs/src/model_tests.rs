use super::*;
use crate::als::AlsConfig;

const DAY: i64 = 86_400;
const NOW: i64 = 1_000 * DAY;

/// A little shop: coffee people buy the French press with beans (and some a grinder), runners
/// view trail shoes with socks; everyone is in Germany; the tent is new and untouched.
fn shop() -> InteractionLog {
    let mut log = InteractionLog::new();
    let mut item = |id: &str, title: &str, path: &[&str], price: f64| {
        let meta = ItemMeta {
            title: Some(title.to_owned()),
            category_path: path.iter().map(|p| (*p).to_owned()).collect(),
            price: Some(price),
            ..ItemMeta::default()
        };
        log.set_item_meta(id, meta);
    };
    item("press", "the French press", &["Kitchen", "Coffee Makers"], 40.0);
    item("grinder", "the burr grinder", &["Kitchen", "Coffee Makers"], 90.0);
    item("beans", "Kenya AA beans", &["Coffee & Tea", "Coffee"], 12.0);
    item("mug", "the stoneware mug", &["Kitchen", "Mugs"], 15.0);
    item("shoes", "trail shoes", &["Sports", "Running", "Shoes"], 120.0);
    item("socks", "running socks", &["Sports", "Running", "Socks"], 15.0);
    item("tent", "the two-person tent", &["Outdoor", "Tents"], 300.0);
    let de = CountryCode::parse("DE").unwrap();
    for u in 0..8 {
        let user = format!("coffee-{u}");
        log.set_user_country(&user, de);
        log.push(&user, "press", InteractionKind::Purchase, NOW - 3 * DAY, 1.0);
        log.push(&user, "beans", InteractionKind::Purchase, NOW - 3 * DAY + 60, 1.0);
        if u < 3 {
            log.push(&user, "grinder", InteractionKind::View, NOW - 2 * DAY, 1.0);
        }
        if u < 2 {
            log.push(&user, "mug", InteractionKind::View, NOW - 2 * DAY, 1.0);
        }
    }
    for u in 0..6 {
        let user = format!("runner-{u}");
        log.set_user_country(&user, de);
        log.push(&user, "shoes", InteractionKind::View, NOW - DAY, 1.0);
        log.push(&user, "socks", InteractionKind::View, NOW - DAY + 60, 1.0);
    }
    log
}

fn model() -> RecsModel {
    let config = RecsConfig {
        als: Some(AlsConfig { factors: 4, iterations: 5, ..AlsConfig::default() }),
        reference_secs: Some(NOW),
        threads: 1,
        ..RecsConfig::default()
    };
    RecsModel::train(&shop(), config).expect("trains")
}

fn idx(model: &RecsModel, id: &str) -> ItemIdx {
    model.item_idx(id).expect("item")
}

fn ids(model: &RecsModel, list: &[Recommendation]) -> Vec<String> {
    list.iter().map(|r| model.item_id(r.item).to_owned()).collect()
}

fn request<'a>(history: &'a [HistoryEvent], strategies: &'a [Strategy]) -> RecsRequest<'a> {
    RecsRequest {
        history,
        country: CountryCode::parse("DE"),
        now_secs: NOW,
        n: 3,
        strategies,
        rules: RuleInputs { max_per_category: Some(5), ..RuleInputs::default() },
        ..RecsRequest::default()
    }
}

#[test]
fn also_bought_explains_with_the_anchor_item() {
    let model = model();
    let list = model.similar_items(idx(&model, "press"), &request(&[], &[Strategy::AlsoBought]));
    assert_eq!(ids(&model, &list), vec!["beans", "grinder", "mug"]);
    assert_eq!(list[0].explanation, "Customers who bought the French press also bought this");
    // Three press buyers viewed the grinder, none bought it: viewed together, not bought.
    assert_eq!(list[1].explanation, "Customers who viewed the French press also viewed this");
    assert_eq!(list[0].strategy, Strategy::AlsoBought);
}

#[test]
fn item_knn_recommends_from_history_and_says_because_you_viewed() {
    let model = model();
    let history = [HistoryEvent { item: idx(&model, "shoes"), kind: InteractionKind::View, timestamp_secs: NOW - DAY }];
    let list = model.recommend(&request(&history, &[Strategy::ItemKnn]));
    assert_eq!(ids(&model, &list), vec!["socks"]);
    assert_eq!(list[0].explanation, "Because you viewed trail shoes");
}

#[test]
fn the_chain_falls_back_in_order_and_records_the_strategy_per_item() {
    let model = model();
    let history = [HistoryEvent { item: idx(&model, "shoes"), kind: InteractionKind::View, timestamp_secs: NOW - DAY }];
    let chain = [Strategy::ItemKnn, Strategy::PopularInCountry, Strategy::Popular];
    let list = model.recommend(&request(&history, &chain));
    let strategies: Vec<Strategy> = list.iter().map(|r| r.strategy).collect();
    assert_eq!(strategies, vec![Strategy::ItemKnn, Strategy::PopularInCountry, Strategy::PopularInCountry]);
    assert_eq!(list[1].explanation, "Popular in Germany this week");
    assert!(!ids(&model, &list).contains(&"shoes".to_owned()), "history items are not recommended back");

    let cold = model.recommend(&RecsRequest { country: None, ..request(&[], &chain) });
    assert!(cold.iter().all(|r| r.strategy == Strategy::Popular), "no history, no country: popular");
    assert_eq!(cold[0].explanation, "Popular with our customers");
}

#[test]
fn the_default_chain_personalizes_and_never_returns_what_was_just_bought() {
    let model = model();
    let history = [
        HistoryEvent { item: idx(&model, "press"), kind: InteractionKind::Purchase, timestamp_secs: NOW - DAY },
        HistoryEvent { item: idx(&model, "grinder"), kind: InteractionKind::View, timestamp_secs: NOW - DAY },
    ];
    let list = model.recommend(&RecsRequest { n: 5, ..request(&history, &[]) });
    assert_eq!(list.len(), 5);
    assert_eq!(list[0].strategy, Strategy::Hybrid);
    assert!(list[0].explanation.starts_with("Because you"), "{list:?}");
    let ids = ids(&model, &list);
    assert!(!ids.contains(&"press".to_owned()) && !ids.contains(&"grinder".to_owned()), "{ids:?}");
}

#[test]
fn rules_apply_to_every_strategy_of_the_chain() {
    let model = model();
    let beans = [idx(&model, "beans")];
    let inputs = RuleInputs { exclude: &beans, ..RuleInputs::default() };
    let list = model.recommend(&RecsRequest { n: 10, rules: inputs, ..request(&[], &[Strategy::Popular]) });
    assert!(!ids(&model, &list).contains(&"beans".to_owned()));
    let capped = RuleInputs { max_per_category: Some(1), ..RuleInputs::default() };
    let list = model.recommend(&RecsRequest { n: 10, rules: capped, ..request(&[], &[Strategy::Popular]) });
    let mut categories: Vec<_> = list.iter().map(|r| model.catalog().category(r.item)).collect();
    let before = categories.len();
    categories.dedup();
    assert_eq!(before, categories.len(), "one per category");
}

#[test]
fn an_item_without_interactions_gets_content_neighbours() {
    let model = model();
    let list =
        model.similar_items(idx(&model, "tent"), &request(&[], &[Strategy::AlsoBought, Strategy::SimilarContent]));
    assert!(list.is_empty(), "nothing else is Outdoor");
    let list = model.similar_items(idx(&model, "mug"), &request(&[], &[Strategy::SimilarContent]));
    assert_eq!(ids(&model, &list)[0], "press", "same root, cheaper price band than the grinder");
    assert_eq!(list[0].explanation, "Similar to the stoneware mug");
}

#[test]
fn a_new_item_gets_neighbours_without_retraining() {
    let model = model();
    let interactions: Vec<(String, InteractionKind, i64)> =
        (0..4).map(|u| (format!("coffee-{u}"), InteractionKind::Purchase, NOW)).collect();
    let borrowed: Vec<(&str, InteractionKind, i64)> =
        interactions.iter().map(|(u, k, t)| (u.as_str(), *k, *t)).collect();
    let meta = ItemMeta {
        title: Some("the milk frother".into()),
        category_path: vec!["Kitchen".into(), "Coffee Makers".into()],
        price: Some(30.0),
        ..ItemMeta::default()
    };
    let next = model.with_new_item("frother", meta, &borrowed).expect("added");
    assert!(model.item_idx("frother").is_none(), "the old snapshot is untouched");
    let frother = idx(&next, "frother");
    let neighbours: Vec<String> = next.neighbours(frother).map(|n| next.item_id(n.item).to_owned()).collect();
    // Three of its four buyers viewed the grinder (a small audience: cosine 0.87); all four
    // bought the press and the beans (a large one: 0.71 each); two viewed the mug.
    assert_eq!(neighbours[0], "grinder", "{neighbours:?}");
    let mut rest = neighbours[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["beans", "mug", "press"]);
    let list = next.similar_items(idx(&next, "press"), &RecsRequest { n: 10, ..request(&[], &[Strategy::AlsoBought]) });
    assert!(ids(&next, &list).contains(&"frother".to_owned()), "the new item is a neighbour of the press");
    assert!(matches!(next.with_new_item("frother", ItemMeta::default(), &[]), Err(RecsError::DuplicateItem(_))));

    let cold = next
        .with_new_item(
            "lantern",
            ItemMeta { category_path: vec!["Outdoor".into(), "Lights".into()], ..ItemMeta::default() },
            &[],
        )
        .expect("added");
    let lantern = idx(&cold, "lantern");
    let neighbours: Vec<String> = cold.neighbours(lantern).map(|n| cold.item_id(n.item).to_owned()).collect();
    assert_eq!(neighbours, vec!["tent"], "content neighbours when nobody has interacted yet");
}

#[test]
fn memory_is_reported_per_part() {
    let model = model();
    let memory = model.memory();
    assert!(memory.neighbours_bytes > 0 && memory.als_bytes > 0);
    assert_eq!(
        memory.total_bytes,
        memory.neighbours_bytes
            + memory.als_bytes
            + memory.user_rows_bytes
            + memory.catalog_bytes
            + memory.users_bytes
            + memory.popularity_bytes
    );
}

#[test]
fn strategy_names_round_trip() {
    for strategy in Strategy::ALL {
        assert_eq!(strategy.as_str().parse::<Strategy>().unwrap(), strategy);
    }
    assert!("magic".parse::<Strategy>().is_err());
}

#[test]
fn the_quantized_als_search_serves_the_lists_of_the_exhaustive_one() {
    use crate::synthetic::{generate, SyntheticConfig};
    let log = generate(&SyntheticConfig {
        users: 600,
        items: 1_500,
        categories: 20,
        interactions: 9_000,
        ..SyntheticConfig::default()
    });
    let config = RecsConfig {
        als: Some(AlsConfig { factors: 24, iterations: 2, ..AlsConfig::default() }),
        threads: 1,
        ..RecsConfig::default()
    };
    // With an item added after training too, which the search scores outside the 8-bit copy.
    let buyers: Vec<(&str, InteractionKind, i64)> =
        log.users.keys().iter().take(30).map(|u| (u.as_str(), InteractionKind::Purchase, 0)).collect();
    let quantized = RecsModel::train(&log, config.clone())
        .and_then(|model| model.with_new_item("fresh", ItemMeta::default(), &buyers))
        .expect("trains");
    // The same factors, searched exhaustively.
    let exhaustive =
        RecsModel { config: Arc::new(RecsConfig { als_search: AlsSearch::Exhaustive, ..config }), ..quantized.clone() };
    let now = log.interactions.iter().map(|i| i.timestamp_secs).max().unwrap_or(0);
    let mut compared = 0;
    for user in (0..log.n_users() as u32).step_by(3) {
        let history = HistoryEvent::all_of(&log, user);
        for chain in [&[][..], &[Strategy::Als][..], &[Strategy::Hybrid][..]] {
            let request = RecsRequest {
                history: &history,
                user: Some(UserIdx(user)),
                now_secs: now,
                n: 10,
                strategies: chain,
                ..RecsRequest::default()
            };
            assert_eq!(quantized.recommend(&request), exhaustive.recommend(&request), "user {user}, {chain:?}");
            compared += 1;
        }
    }
    assert!(compared > 400, "{compared}");
}
