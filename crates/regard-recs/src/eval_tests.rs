use super::*;

#[test]
fn metrics_match_a_hand_computed_example() {
    // Three users whose held-out items rank 0, 3 and 12 (0-based).
    let ranks = [0, 3, 12];
    let (hits, gains, reciprocals) =
        ranks.iter().map(|&r| metrics_at_rank(r)).fold((0.0, 0.0, 0.0), |a, m| (a.0 + m.0, a.1 + m.1, a.2 + m.2));
    let n = ranks.len() as f64;
    // HR@10 = 2/3; NDCG@10 = (1/log2(2) + 1/log2(5) + 0) / 3; MRR = (1 + 1/4 + 1/13) / 3.
    assert!((hits / n - 2.0 / 3.0).abs() < 1e-12);
    assert!((gains / n - (1.0 + 0.430_676_558_073_393) / 3.0).abs() < 1e-12);
    assert!((reciprocals / n - (1.0 + 0.25 + 1.0 / 13.0) / 3.0).abs() < 1e-12);
    assert_eq!(metrics_at_rank(9).0, 1.0);
    assert_eq!(metrics_at_rank(10), (0.0, 0.0, 1.0 / 11.0));
}

#[test]
fn ranks_skip_excluded_items_and_break_ties_by_smaller_id() {
    let scores = [0.5, 0.9, 0.5, 0.1, 0.5, f32::NAN];
    let excluded = [false, true, false, false, false, false];
    assert_eq!(rank_of(&scores, &excluded, 2), 1, "item 1 is excluded; item 0 ties and is smaller");
    assert_eq!(rank_of(&scores, &excluded, 0), 0);
    assert_eq!(rank_of(&scores, &excluded, 4), 2);
    assert_eq!(rank_of(&scores, &excluded, 3), 3);
    assert_eq!(rank_of(&scores, &excluded, 5), 4, "NaN ranks last");
}

const SMALL: &str = "user_id,item_id,timestamp,rating
u1,a,1,5
u1,b,2,5
u1,c,3,5
u1,d,4,5
u1,e,1970-01-01T00:00:05Z,5
u1,a,9,5
u2,a,1,1
u2,b,2,1
u2,c,3,1
u2,f,5,1
u2,d,5,1
u3,a,1,1
u3,b,2,1
";

#[test]
fn the_protocol_keeps_first_events_and_holds_out_the_latest_pair() {
    let data = prepare(SMALL.as_bytes(), None::<&[u8]>).unwrap();
    let held: Vec<(String, String)> = data
        .held_out
        .iter()
        .map(|&(u, i)| (data.train.users.key(u).to_owned(), data.train.items.key(i.0).to_owned()))
        .collect();
    // u1's repeat of `a` at time 9 is dropped, so `e` is their latest; u2's `f` and `d` share a
    // time and `d` comes on the later line; u3 has too few items.
    assert_eq!(held, vec![("u1".into(), "e".into()), ("u2".into(), "d".into())]);
    assert_eq!(data.distinct_pairs, 12);
    assert_eq!(data.train.interactions.len(), 10);
    assert_eq!(data.train.items.keys(), &["a", "b", "c", "d", "e", "f"]);
}

#[test]
fn popularity_scores_the_small_example_as_computed_by_hand() {
    let data = prepare(SMALL.as_bytes(), None::<&[u8]>).unwrap();
    let options = EvalOptions {
        als: AlsConfig { factors: 4, iterations: 2, ..AlsConfig::default() },
        threads: 1,
        ..EvalOptions::default()
    };
    let report = evaluate(&data, &options).unwrap();
    assert_eq!(report.users_evaluated, 2);
    assert_eq!(report.items, 6);
    let popular = &report.strategies[0];
    assert_eq!(popular.name, "popular");
    // Training counts: a 3, b 3, c 2, d 1, f 1, e 0. u1 (seen a–d) ranks f (1) over e (0):
    // e at rank 1. u2 (seen a, b, c, f) ranks d (1) over e (0): d at rank 0.
    assert!((popular.hr_at_10 - 1.0).abs() < 1e-12);
    assert!((popular.ndcg_at_10 - (1.0 / 3.0_f64.log2() + 1.0) / 2.0).abs() < 1e-12);
    assert!((popular.mrr - (0.5 + 1.0) / 2.0).abs() < 1e-12);
    let names: Vec<&str> = report.strategies.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "popular",
            "item_knn",
            "item_knn_jaccard",
            "item_knn_lift",
            "als",
            "als_fold_in",
            "item_knn_recent",
            "als_fold_in_recent",
            "hybrid",
            "hybrid_recent",
            "fallback_chain"
        ]
    );
}

#[test]
fn numeric_ids_sort_as_numbers_and_bad_rows_name_their_line() {
    let data =
        prepare("user_id,item_id,timestamp\n1,10,1\n1,9,2\n1,100,3\n1,2,4\n1,3,5\n".as_bytes(), None::<&[u8]>).unwrap();
    assert_eq!(data.train.items.keys(), &["2", "3", "9", "10", "100"]);
    let error = prepare("user_id,item_id,timestamp\n1,10,1\n1,9,\n".as_bytes(), None::<&[u8]>).unwrap_err();
    assert_eq!(error.to_string(), "line 3: `timestamp` is empty or missing");
    let few = prepare("user_id,item_id,timestamp\n1,10,1\n".as_bytes(), None::<&[u8]>).unwrap_err();
    assert!(matches!(few, RecsError::InsufficientData(_)), "{few}");
}

#[test]
fn collaborative_strategies_beat_popularity_on_shop_like_data() {
    use crate::synthetic::{generate, SyntheticConfig};
    let log = generate(&SyntheticConfig {
        users: 1_500,
        items: 600,
        categories: 12,
        interactions: 40_000,
        ..SyntheticConfig::default()
    });
    let mut csv = String::from("user_id,item_id,timestamp\n");
    for i in &log.interactions {
        csv.push_str(&format!("{},{},{}\n", log.users.key(i.user.0), log.items.key(i.item.0), i.timestamp_secs));
    }
    let data = prepare(csv.as_bytes(), None::<&[u8]>).unwrap();
    let options =
        EvalOptions { als: AlsConfig { factors: 16, iterations: 6, ..AlsConfig::default() }, ..EvalOptions::default() };
    let report = evaluate(&data, &options).unwrap();
    let hr = |name: &str| report.strategies.iter().find(|s| s.name == name).map(|s| s.hr_at_10).unwrap();
    assert!(hr("item_knn") > 1.5 * hr("popular"), "{report:?}");
    assert!(hr("als") > 1.5 * hr("popular"), "{report:?}");
}
