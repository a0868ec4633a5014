use super::*;
use crate::message::MessageContext;

fn message(kind: MessageKind, id: &str, user: Option<&str>, anonymous: Option<&str>, at_ms: i64) -> Message {
    Message {
        kind,
        message_id: id.to_owned(),
        user_id: user.map(str::to_owned),
        anonymous_id: anonymous.map(str::to_owned),
        previous_id: None,
        group_id: None,
        name: (kind == MessageKind::Track).then(|| "Product Viewed".to_owned()),
        timestamp_ms: at_ms,
        received_at_ms: at_ms,
        traits: None,
        properties: None,
        context: MessageContext::default(),
        raw: "{}".into(),
    }
}

fn granting(mut m: Message) -> Message {
    m.context.consent_categories = vec![("Analytics".into(), true), ("Personalization".into(), true)];
    m
}

fn identify(id: &str, user: &str, anonymous: Option<&str>, traits: serde_json::Value, at_ms: i64) -> Message {
    let mut m = granting(message(MessageKind::Identify, id, Some(user), anonymous, at_ms));
    m.traits = traits.as_object().cloned();
    m
}

fn state(mode: ConsentMode) -> LiveState {
    LiveState::new(LiveConfig { consent_mode: mode, ..LiveConfig::default() })
}

/// A live state rebuilt from `facts` the way the store replays them at start-up.
fn rebuild(mode: ConsentMode, facts: &FactBatch) -> LiveState {
    let mut rebuilt = state(mode);
    for f in &facts.identities {
        rebuilt.replay_identity(f);
    }
    for f in &facts.merges {
        rebuilt.replay_merge(f);
    }
    for f in &facts.traits {
        rebuilt.replay_trait(f);
    }
    for f in &facts.consents {
        rebuilt.replay_consent(f);
    }
    for e in &facts.events {
        rebuilt.replay_event(&StoredEventColumns {
            seq: e.seq,
            profile_id: e.profile_id,
            kind: e.kind,
            name: e.name.as_deref(),
            message_id: &e.message_id,
            timestamp_ms: e.timestamp_ms,
            received_at_ms: e.received_at_ms,
            product_id: e.product_id.as_deref(),
        });
    }
    rebuilt
}

#[test]
fn an_anonymous_visitor_who_logs_in_keeps_his_history() {
    let mut live = state(ConsentMode::OptIn);
    let mut facts = FactBatch::default();
    for i in 0..3 {
        let m = granting(message(MessageKind::Track, &format!("m{i}"), None, Some("anon-1"), i * 1000));
        assert_eq!(live.apply_message(m, &mut facts), ApplyOutcome::Stored);
    }
    live.apply_message(identify("m9", "user-1", Some("anon-1"), serde_json::json!({"name": "Ada"}), 5000), &mut facts);
    let profile = live.find_profile("user-1").expect("profile by userId");
    assert_eq!(profile.timeline.len(), 4);
    assert_eq!(live.find_profile("anon-1").map(|p| p.id), Some(profile.id));
    assert_eq!(live.profile_count(), 1);
}

#[test]
fn two_anonymous_ids_that_identify_as_one_user_merge() {
    let mut live = state(ConsentMode::OptIn);
    let mut facts = FactBatch::default();
    live.apply_message(granting(message(MessageKind::Page, "a", None, Some("phone"), 1)), &mut facts);
    live.apply_message(granting(message(MessageKind::Page, "b", None, Some("laptop"), 2)), &mut facts);
    assert_eq!(live.profile_count(), 2);
    live.apply_message(identify("c", "user-7", Some("phone"), serde_json::json!({}), 3), &mut facts);
    live.apply_message(identify("d", "user-7", Some("laptop"), serde_json::json!({}), 4), &mut facts);
    assert_eq!(live.profile_count(), 1);
    let profile = live.find_profile("laptop").expect("merged profile");
    assert_eq!(profile.timeline.len(), 4);
    assert_eq!(facts.merges.len(), 1);
    assert_eq!(live.member_ids(profile.id).len(), 2);
}

#[test]
fn a_shared_device_does_not_merge_two_users() {
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    live.apply_message(identify("a", "alice", Some("family-ipad"), serde_json::json!({}), 1), &mut facts);
    live.apply_message(identify("b", "bob", Some("family-ipad"), serde_json::json!({}), 2), &mut facts);
    assert_ne!(live.find_profile("alice").map(|p| p.id), live.find_profile("bob").map(|p| p.id));
}

#[test]
fn an_explicit_alias_merges_a_former_user_id() {
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    live.apply_message(identify("a", "old-id", None, serde_json::json!({"plan": "free"}), 1), &mut facts);
    live.apply_message(identify("b", "new-id", None, serde_json::json!({}), 2), &mut facts);
    let mut alias = message(MessageKind::Alias, "c", Some("new-id"), None, 3);
    alias.previous_id = Some("old-id".into());
    live.apply_message(alias, &mut facts);
    assert_eq!(live.profile_count(), 1);
    let profile = live.find_profile("old-id").expect("aliased");
    assert_eq!(profile.user_id(), Some("new-id"));
    assert!(profile.identities.iter().any(|(_, v)| &**v == "old-id"));
}

#[test]
fn without_consent_under_opt_in_only_a_count_is_kept() {
    let mut live = state(ConsentMode::OptIn);
    let mut facts = FactBatch::default();
    let outcome = live.apply_message(message(MessageKind::Track, "x", None, Some("anon"), 1), &mut facts);
    assert_eq!(outcome, ApplyOutcome::Reduced);
    assert_eq!(live.profile_count(), 0);
    assert!(facts.events.is_empty() && facts.identities.is_empty());
    assert_eq!(facts.reduced_counts.len(), 1);
    assert_eq!(facts.receipts.len(), 1);
}

#[test]
fn revoking_analytics_in_a_message_reduces_that_message_itself() {
    let mut live = state(ConsentMode::OptIn);
    let mut facts = FactBatch::default();
    live.apply_message(granting(message(MessageKind::Track, "a", None, Some("anon"), 1)), &mut facts);
    let mut revoke = message(MessageKind::Track, "b", None, Some("anon"), 2);
    revoke.context.consent_categories = vec![("Analytics".into(), false)];
    assert_eq!(live.apply_message(revoke, &mut facts), ApplyOutcome::Reduced);
    assert_eq!(facts.consents.len(), 3);
    let later = message(MessageKind::Track, "c", None, Some("anon"), 3);
    assert_eq!(live.apply_message(later, &mut facts), ApplyOutcome::Reduced);
}

#[test]
fn opt_out_mode_stores_until_denied() {
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    assert_eq!(
        live.apply_message(message(MessageKind::Page, "a", None, Some("anon"), 1), &mut facts),
        ApplyOutcome::Stored
    );
}

#[test]
fn identify_traits_carry_consent_and_are_not_stored_as_traits() {
    let mut live = state(ConsentMode::OptIn);
    let mut facts = FactBatch::default();
    let mut m = message(MessageKind::Identify, "a", Some("u"), None, 1);
    m.traits = serde_json::json!({"email": "u@example.com", "consent": {"analytics": true, "email": false, "policy_version": "v2"}})
        .as_object()
        .cloned();
    assert_eq!(live.apply_message(m, &mut facts), ApplyOutcome::Stored);
    let profile = live.find_profile("u").expect("profile");
    assert_eq!(profile.traits.len(), 1);
    let email = profile.consent.decision(ConsentPurpose::Email).expect("email decision");
    assert!(!email.granted);
    assert_eq!(email.source, ConsentSource::IdentifyTraits);
    assert_eq!(email.policy_version.as_deref(), Some("v2"));
}

#[test]
fn a_retried_message_is_applied_once() {
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    let m = message(MessageKind::Track, "same", None, Some("anon"), 1);
    assert_eq!(live.apply_message(m.clone(), &mut facts), ApplyOutcome::Stored);
    assert_eq!(live.apply_message(m, &mut facts), ApplyOutcome::Duplicate);
    assert_eq!(facts.events.len(), 1);
}

#[test]
fn the_dedup_window_forgets_old_ids_and_respects_its_bound() {
    let mut ids = RecentMessageIds::new(1_000, 3);
    assert!(ids.insert("a", 0));
    assert!(!ids.insert("a", 10));
    assert!(ids.insert("b", 20));
    assert!(ids.insert("c", 2_000));
    // "a" and "b" fell out of the one-second window.
    assert!(ids.insert("a", 2_001));
    assert!(ids.insert("d", 2_002));
    assert!(ids.insert("e", 2_003));
    assert!(ids.len() <= 3);
}

#[test]
fn replaying_the_facts_rebuilds_the_same_state() {
    let mut live = state(ConsentMode::OptIn);
    let mut all = FactBatch::default();
    let script = vec![
        granting(message(MessageKind::Page, "1", None, Some("phone"), 1_000)),
        granting(message(MessageKind::Track, "2", None, Some("laptop"), 2_000_000)),
        identify("3", "u1", Some("phone"), serde_json::json!({"city": "Berlin"}), 3_000),
        identify("4", "u1", Some("laptop"), serde_json::json!({"city": "Paris"}), 9_000_000),
        message(MessageKind::Track, "5", None, Some("stranger"), 5),
        granting(message(MessageKind::Track, "6", Some("u1"), None, 20_000_000)),
    ];
    for m in script {
        live.apply_message(m, &mut all);
    }
    let rebuilt = rebuild(ConsentMode::OptIn, &all);
    let original = live.find_profile("u1").expect("original");
    let copy = rebuilt.find_profile("u1").expect("rebuilt");
    assert_eq!(original.timeline, copy.timeline);
    assert_eq!(original.sessions, copy.sessions);
    assert_eq!(original.consent, copy.consent);
    assert_eq!(original.traits.len(), copy.traits.len());
    let city = live.symbols.get("city").expect("interned");
    assert_eq!(original.trait_json(city), Some("\"Paris\""));
    assert_eq!(rebuilt.profile_count(), live.profile_count());
    assert_eq!(rebuilt.next_seq(), live.next_seq());
}

fn viewed(id: &str, user: &str, category: &str, at_ms: i64) -> Message {
    let mut m = granting(message(MessageKind::Track, id, Some(user), None, at_ms));
    m.properties = Some(format!(r#"{{"category": "{category}"}}"#).into());
    m
}

#[test]
fn memberships_change_in_the_same_step_as_the_event_and_expire_with_time() {
    use crate::time::DAY_MS;
    let mut live = state(ConsentMode::OptIn);
    let mut facts = FactBatch::default();
    let json = r#"{"id": "shoe-fans", "name": "Shoe fans", "purpose": "personalization",
        "condition": {"catalog": {"category": "Running Shoes", "event": "Product Viewed", "count": {"gte": 3}, "within_days": 7}}}"#;
    let definition = SegmentDefinition::parse_str(json).expect("valid");
    live.save_segment(definition, json.to_owned(), 0, &mut facts);
    assert!(live.take_backfill_requests().is_empty(), "nothing is stored yet: nothing to backfill");
    assert!(live.segment_readiness("shoe-fans").is_some_and(Readiness::is_ready));
    let day0 = 100 * DAY_MS;
    live.apply_message(viewed("v1", "u", "Sports > Running Shoes", day0), &mut facts);
    live.apply_message(viewed("v2", "u", "Kitchen > Mugs", day0 + DAY_MS), &mut facts);
    live.apply_message(viewed("v3", "u", "Sports > Running Shoes", day0 + 2 * DAY_MS), &mut facts);
    let id = live.find_profile("u").expect("profile").id;
    assert!(!live.is_member(id, "shoe-fans"), "a mug is not a shoe");
    live.apply_message(viewed("v4", "u", "Sports > Running Shoes", day0 + 3 * DAY_MS), &mut facts);
    assert!(live.is_member(id, "shoe-fans"), "the third shoe view makes the member at once");
    assert_eq!(live.memberships(id), vec!["shoe-fans"]);
    let reasons = live.segment_reasons(id, "shoe-fans", day0 + 3 * DAY_MS).expect("reasons");
    assert!(crate::segments::explain(&reasons[0]).contains("Running Shoes 3 times"));
    assert!(facts.memberships.iter().any(|m| m.entered && m.segment_id == "shoe-fans"));
    // Nothing happens for a week: the first view leaves the window and so does the member.
    let mut later = FactBatch::default();
    assert_eq!(live.expire_segments(day0 + 6 * DAY_MS, &mut later), 0, "not due yet");
    assert!(live.expire_segments(day0 + 7 * DAY_MS + 1, &mut later) >= 1);
    assert!(!live.is_member(id, "shoe-fans"));
    assert!(later.memberships.iter().any(|m| !m.entered));
}

#[test]
fn revoking_the_segments_purpose_withdraws_the_membership_in_the_same_request() {
    let mut live = state(ConsentMode::OptIn);
    let mut facts = FactBatch::default();
    let json = r#"{"id": "buyers", "name": "Buyers", "purpose": "personalization", "condition": {"purchases": {"count": {"gte": 1}}}}"#;
    live.save_segment(SegmentDefinition::parse_str(json).expect("valid"), json.to_owned(), 0, &mut facts);
    let mut order = granting(message(MessageKind::Track, "o1", Some("b"), None, 1_000));
    order.name = Some("Order Completed".into());
    live.apply_message(order, &mut facts);
    let id = live.find_profile("b").expect("profile").id;
    assert!(live.is_member(id, "buyers"));
    let update = ConsentUpdate {
        user_id: Some("b".into()),
        anonymous_id: None,
        decisions: vec![(ConsentPurpose::Personalization, false)],
        source: ConsentSource::Api,
        policy_version: None,
        at_ms: 2_000,
    };
    live.apply_consent(update, &mut facts);
    assert!(!live.is_member(id, "buyers"));
    assert!(facts.memberships.iter().any(|m| !m.entered && m.segment_id == "buyers"));
}

#[test]
fn a_backfill_reads_only_events_before_the_save_and_the_writer_counts_the_rest_once() {
    use crate::segments::backfill::BackfillMatcher;
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    let order = |id: &str, at_ms: i64| {
        let mut m = message(MessageKind::Track, id, Some("b"), None, at_ms);
        m.name = Some("Order Completed".into());
        m
    };
    for (i, at_ms) in [1_000, 2_000, 3_000].into_iter().enumerate() {
        live.apply_message(order(&format!("o{i}"), at_ms), &mut facts);
    }
    let json = r#"{"id": "loyal", "name": "Loyal", "purpose": "personalization", "condition": {"purchases": {"count": {"gte": 4}}}}"#;
    live.save_segment(SegmentDefinition::parse_str(json).expect("valid"), json.to_owned(), 3_500, &mut facts);
    let requests = live.take_backfill_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].upto_seq(), 3, "the log's end when the segment was saved");
    assert!(live.segment_readiness("loyal").is_some_and(|r| r.state == ReadinessState::Backfilling));
    // Ingestion goes on during the backfill: the fourth order is counted live.
    live.apply_message(order("o3", 4_000), &mut facts);
    let id = live.find_profile("b").expect("profile").id;
    assert!(!live.is_member(id, "loyal"), "one live purchase only, until the history is merged");

    // The background pass over the whole log (the fourth order included) keeps seqs 1 to 3.
    let matcher = BackfillMatcher::new(&requests, Default::default());
    let mut signals = Vec::new();
    let mut matched = Vec::new();
    for event in &facts.events {
        matched.clear();
        matcher.match_stored(event.seq, event.name.as_deref().unwrap_or(""), "", &mut matched);
        signals.extend(matched.iter().map(|number| (event.profile_id, *number, event.timestamp_ms)));
    }
    signals.sort_unstable();
    let slots = live.merge_backfill(&[requests[0].job], &signals);
    assert_eq!(slots.len(), 1);
    let mut later = FactBatch::default();
    assert!(!live.refresh_profiles(&slots, 0, 1_000, 5_000, &mut later));
    assert_eq!(live.complete_backfill(5_000), ["loyal"]);
    assert!(live.is_member(id, "loyal"));
    let reasons = live.segment_reasons(id, "loyal", 5_000).expect("reasons");
    assert_eq!(crate::segments::explain(&reasons[0]), "You have made 4 purchases.", "each order counted once");
    assert!(later.memberships.iter().any(|m| m.entered && m.segment_id == "loyal"));
    assert!(live.segment_readiness("loyal").is_some_and(Readiness::is_ready));
}

#[test]
fn a_failed_backfill_is_retried_from_the_same_point_when_the_segment_is_saved_again() {
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    live.apply_message(message(MessageKind::Track, "v1", Some("u"), None, 1_000), &mut facts);
    let json = r#"{"id": "viewers", "name": "Viewers", "purpose": "personalization", "condition": {"event": {"name": "Product Viewed", "count": {"gte": 2}}}}"#;
    live.save_segment(SegmentDefinition::parse_str(json).expect("valid"), json.to_owned(), 2_000, &mut facts);
    let first = live.take_backfill_requests();
    live.apply_message(message(MessageKind::Track, "v2", Some("u"), None, 3_000), &mut facts);
    live.fail_backfill(&[first[0].job], "disk on fire", 4_000);
    let failed = live.segment_readiness("viewers").expect("readiness");
    assert!(matches!(&failed.state, ReadinessState::Failed { message, .. } if message == "disk on fire"));
    live.save_segment(SegmentDefinition::parse_str(json).expect("valid"), json.to_owned(), 5_000, &mut facts);
    let retry = live.take_backfill_requests();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].upto_seq(), 1, "seq 2 was counted live; only seq 1 is read again");
}

#[test]
fn the_index_fast_path_agrees_with_the_explaining_evaluator_on_nested_conditions() {
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    let json = r#"{"id": "mixed", "name": "Mixed", "purpose": "personalization", "condition": {"any": [
        {"all": [{"event": {"name": "Product Viewed", "count": {"gte": 5}}}, {"purchases": {"count": {"gte": 1}}}]},
        {"sequence": {"first": {"name": "Product Added", "within_days": 7}, "then_never": {"name": "Order Completed"}}},
        {"not": {"never": {"name": "Checkout Started"}}}]}}"#;
    live.save_segment(SegmentDefinition::parse_str(json).expect("valid"), json.to_owned(), 0, &mut facts);
    let day = crate::time::DAY_MS;
    let mut n = 0;
    let mut did = |live: &mut LiveState, user: &str, name: &str, at_ms: i64| {
        n += 1;
        let mut m = message(MessageKind::Track, &format!("m{n}"), Some(user), None, at_ms);
        m.name = Some(name.into());
        live.apply_message(m, &mut facts);
    };
    did(&mut live, "cart", "Product Viewed", 10 * day);
    did(&mut live, "cart", "Product Added", 10 * day);
    for i in 0..6 {
        did(&mut live, "fan", "Product Viewed", 10 * day + i);
    }
    did(&mut live, "fan", "Order Completed", 10 * day + 10);
    did(&mut live, "checkout", "Checkout Started", 10 * day);
    did(&mut live, "browser", "Product Viewed", 10 * day);
    did(&mut live, "browser", "Product Added", 9 * day);
    did(&mut live, "browser", "Order Completed", 9 * day + 1);
    let now = 11 * day;
    for (user, expected) in [("cart", true), ("fan", true), ("checkout", true), ("browser", false)] {
        let id = live.find_profile(user).expect("profile").id;
        let mut ignored = FactBatch::default();
        live.expire_segments(now, &mut ignored);
        let profile = live.profile(id).expect("profile");
        let by_value = IndexFacts { live: &live, profile, signals: live.index.profile_signals(id), leaves: &[] };
        let slow = evaluate(live.segment("mixed").expect("saved").definition.condition(), &by_value, now).member;
        assert_eq!(slow, expected, "{user}");
        assert_eq!(live.is_member(id, "mixed"), expected, "{user}: the index agrees");
    }
}

#[test]
fn recently_viewed_products_are_kept_newest_first_and_rebuilt_from_the_log() {
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    for (i, product) in ["a", "b", "a", "c", "7"].iter().enumerate() {
        let mut m = message(MessageKind::Track, &format!("v{i}"), None, Some("anon"), i as i64 * 1000);
        m.properties = Some(if *product == "7" {
            "{\"product_id\": 7, \"name\": \"x\"}".into()
        } else {
            format!("{{\"name\": \"x\", \"product_id\": \"{product}\"}}").into()
        });
        live.apply_message(m, &mut facts);
    }
    // An add-to-cart records its product for later readers but is not a view.
    let mut added = message(MessageKind::Track, "add", None, Some("anon"), 9_000);
    added.name = Some("Product Added".into());
    added.properties = Some("{\"product_id\": \"z\"}".into());
    live.apply_message(added, &mut facts);
    let id = live.find_profile("anon").unwrap().id;
    assert_eq!(live.recently_viewed(id), ["7", "c", "a", "b"]);
    assert_eq!(facts.events.last().unwrap().product_id.as_deref(), Some("z"));
    let rebuilt = rebuild(ConsentMode::OptOut, &facts);
    assert_eq!(rebuilt.recently_viewed(rebuilt.find_profile("anon").unwrap().id), ["7", "c", "a", "b"]);
    assert_eq!(product_id_of("{\"product_id\": null}"), None);
    assert_eq!(product_id_of("not json"), None);
}

#[test]
fn orders_keep_their_products_in_memory_and_through_a_rebuild() {
    use crate::profile::{ProductAction, PRODUCT_EVENTS_KEPT};
    let mut live = state(ConsentMode::OptOut);
    let mut facts = FactBatch::default();
    let mut order = message(MessageKind::Track, "o1", None, Some("anon"), 5_000);
    order.name = Some("Order Completed".into());
    order.properties =
        Some(r#"{"order_id": "1", "products": [{"product_id": "a"}, {"product_id": 9}, {"name": "x"}]}"#.into());
    live.apply_message(order, &mut facts);
    assert_eq!(facts.events[0].product_id.as_deref(), Some(r#"["a","9"]"#));
    let actions = |live: &LiveState| -> Vec<(ProductAction, String)> {
        let profile = live.find_profile("anon").unwrap();
        profile.product_events.iter().map(|e| (e.action, e.product.to_string())).collect()
    };
    let bought = vec![(ProductAction::Purchased, "a".to_owned()), (ProductAction::Purchased, "9".to_owned())];
    assert_eq!(actions(&live), bought);
    let rebuilt = rebuild(ConsentMode::OptOut, &facts);
    assert_eq!(actions(&rebuilt), bought);
    // The kept history is bounded, newest kept, in time order even when events arrive late.
    let mut profile = crate::profile::Profile::new(1);
    for i in 0..(PRODUCT_EVENTS_KEPT as i64 + 10) {
        profile.note_product_event(1_000 + i, ProductAction::Viewed, &format!("p{i}"));
    }
    profile.note_product_event(0, ProductAction::Viewed, "too-old");
    profile.note_product_event(1_020, ProductAction::Added, "late");
    assert_eq!(profile.product_events.len(), PRODUCT_EVENTS_KEPT);
    assert!(profile.product_events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(profile.product_events.iter().all(|e| &*e.product != "too-old"));
    assert!(profile.product_events.iter().any(|e| &*e.product == "late"));
    assert_eq!(profile.recently_viewed()[0], format!("p{}", PRODUCT_EVENTS_KEPT + 9));
}

#[test]
fn score_segments_follow_the_scores_and_drop_them_when_profiling_is_revoked() {
    let mut live = state(ConsentMode::OptIn);
    let mut facts = FactBatch::default();
    let json = r#"{"id": "at-risk", "name": "At risk", "purpose": "personalization",
        "condition": {"score": {"name": "churn_risk", "op": "gt", "value": 0.7}}}"#;
    live.save_segment(SegmentDefinition::parse_str(json).expect("valid"), json.to_owned(), 0, &mut facts);
    let profiling = |mut m: Message| {
        m = granting(m);
        m.context.consent_categories.push(("Profiling".into(), true));
        m
    };
    live.apply_message(profiling(message(MessageKind::Track, "t1", Some("a"), None, 1_000)), &mut facts);
    live.apply_message(profiling(message(MessageKind::Track, "t2", Some("b"), None, 1_000)), &mut facts);
    live.apply_message(granting(message(MessageKind::Track, "t3", Some("c"), None, 1_000)), &mut facts);
    let a = live.find_profile("a").expect("a").id;
    let b = live.find_profile("b").expect("b").id;
    let c = live.find_profile("c").expect("c").id;
    assert!(!live.is_member(a, "at-risk"), "no score, no membership");
    live.set_scores(c, &[("churn_risk", 0.95)], 1_500, &mut facts);
    assert!(!live.is_member(c, "at-risk"), "no profiling consent: no score is kept");
    assert_eq!(live.score(c, "churn_risk"), None);
    live.replace_scores(
        vec![(a, vec![("churn_risk".into(), 0.9)]), (b, vec![("churn_risk".into(), 0.2)])],
        2_000,
        &mut facts,
    );
    assert!(live.is_member(a, "at-risk"));
    assert!(!live.is_member(b, "at-risk"));
    assert_eq!(live.score(a, "churn_risk"), Some(0.9));
    // One profile's refresh (after a purchase) moves only that profile.
    live.set_scores(b, &[("churn_risk", 0.8)], 3_000, &mut facts);
    assert!(live.is_member(b, "at-risk"));
    // A full refresh that no longer scores `a` withdraws its membership.
    live.replace_scores(vec![(b, vec![("churn_risk".into(), 0.8)])], 4_000, &mut facts);
    assert!(!live.is_member(a, "at-risk"));
    assert!(facts.memberships.iter().any(|m| !m.entered && m.profile_id == a && m.segment_id == "at-risk"));
    // Revoking profiling withdraws the score and the membership in the same request.
    let update = ConsentUpdate {
        user_id: Some("b".into()),
        anonymous_id: None,
        decisions: vec![(ConsentPurpose::Profiling, false)],
        source: ConsentSource::Api,
        policy_version: None,
        at_ms: 5_000,
    };
    live.apply_consent(update, &mut facts);
    assert_eq!(live.score(b, "churn_risk"), None);
    assert_eq!(live.scores(b).count(), 0);
    assert!(!live.is_member(b, "at-risk"));
    assert_eq!(live.scored_profiles(), 0, "the revoked profile's scores are gone, not only hidden");
}

#[test]
fn an_erased_person_leaves_memory_and_old_messages_cannot_bring_them_back() {
    let mut live = state(ConsentMode::OptIn);
    live.set_tombstone_salt("salt");
    let mut facts = FactBatch::default();
    let json = r#"{"id": "buyers", "name": "Buyers", "purpose": "personalization", "condition": {"purchases": {"count": {"gte": 1}}}}"#;
    live.save_segment(SegmentDefinition::parse_str(json).expect("valid"), json.to_owned(), 0, &mut facts);
    let mut order = granting(message(MessageKind::Track, "o1", Some("gone"), Some("anon-gone"), 1_000));
    order.name = Some("Order Completed".into());
    live.apply_message(order, &mut facts);
    live.apply_message(granting(message(MessageKind::Track, "o2", Some("stays"), None, 1_000)), &mut facts);
    assert_eq!(live.segment_size("buyers"), Some(1));
    let mut erasure = FactBatch::default();
    let ids = live.erase_person("anon-gone", 5_000, false, &mut erasure).expect("known");
    assert_eq!(ids.len(), 1);
    assert!(live.find_profile("gone").is_none() && live.find_profile("anon-gone").is_none());
    assert!(live.find_profile("stays").is_some());
    assert_eq!(live.segment_size("buyers"), Some(0), "the erased member left the segment");
    let fact = &erasure.erasures[0];
    assert_eq!(fact.tombstones.len(), 2, "userId and anonymousId");
    assert!(fact.tombstones.iter().all(|t| !t.contains("gone")), "tombstones are hashes, not ids");
    // An old message (a retry under a new id, or a replayed log) is dropped...
    let old = granting(message(MessageKind::Track, "o3", Some("gone"), None, 4_000));
    assert_eq!(live.apply_message(old, &mut FactBatch::default()), ApplyOutcome::Erased);
    assert!(live.find_profile("gone").is_none());
    // ...a message from after the erasure is new data the person sent again.
    let new = granting(message(MessageKind::Track, "o4", Some("gone"), None, 6_000));
    assert_eq!(live.apply_message(new, &mut FactBatch::default()), ApplyOutcome::Stored);
    // The hashes depend on the store's salt.
    let mut other = state(ConsentMode::OptIn);
    other.set_tombstone_salt("another salt");
    assert_ne!(other.tombstone_hash(IdentityKind::UserId, "gone"), live.tombstone_hash(IdentityKind::UserId, "gone"));
    assert!(live.erase_person("nobody", 7_000, false, &mut FactBatch::default()).is_none());
}
