use regard_core::consent::ConsentMode;
use regard_core::segments::{PolicyConfig, SegmentDefinition};
use serde_json::json;

use super::*;

fn segment(value: serde_json::Value) -> SegmentDefinition {
    SegmentDefinition::parse_value(&value).expect("a valid segment")
}

fn slot(value: serde_json::Value) -> SlotDefinition {
    SlotDefinition::parse_str(&value.to_string(), &PolicyConfig::default()).expect("a valid slot")
}

fn newsletter_fans() -> SegmentDefinition {
    segment(json!({
        "id": "newsletter-fans", "name": "Newsletter fans", "purpose": "email",
        "condition": {"all": [
            {"trait": {"name": "email_opt_in", "op": "equals", "value": true}},
            {"event": {"name": "Product Viewed", "count": {"gte": 2}, "within_days": 30}}
        ]}
    }))
}

fn hero() -> SlotDefinition {
    slot(json!({
        "id": "home_hero", "name": "Home hero", "kind": "web_hero",
        "variants": [
            {"id": "fans", "when": {"segment": "newsletter-fans"}, "template": "<h2>Hi {{ traits.first_name }}</h2>"},
            {"id": "france", "when": {"context": {"field": "country", "op": "equals", "value": "FR"}},
             "template": "<h2>Bonjour</h2>"}
        ],
        "default": {"template": "<h2>Bestsellers</h2>"}
    }))
}

fn register(
    mode: ConsentMode,
    segments: &[SegmentDefinition],
    slots: &[SlotDefinition],
    models: Vec<ModelDescription>,
) -> Register {
    let policy = PolicyConfig::default();
    build(&RegisterInputs {
        generated_at_ms: 1_767_225_600_000,
        consent_mode: mode,
        dedup_window_ms: 7 * DAY_MS,
        segments: segments.iter().collect(),
        slots: slots.iter().collect(),
        models,
        policy: &policy,
    })
}

fn category<'r>(register: &'r Register, id: &str) -> &'r DataCategoryEntry {
    register.data_categories.iter().find(|c| c.id == id).expect("a data category")
}

fn activity<'r>(register: &'r Register, id: &str) -> &'r ActivityEntry {
    register.activities.iter().find(|a| a.id == id).expect("an activity")
}

/// The `(kind, name, via_segment)` of what `user` uses in `list`, or `None` when it is absent.
fn uses_of(list: &[Use], user: &str) -> Option<Vec<(FieldKind, String, Option<String>)>> {
    list.iter()
        .find(|u| u.id == user)
        .map(|u| u.uses.iter().map(|f| (f.kind, f.name.clone(), f.via_segment.clone())).collect())
}

#[test]
fn a_segment_is_listed_under_each_category_it_reads() {
    let register = register(ConsentMode::OptIn, &[newsletter_fans()], &[], Vec::new());
    let traits = uses_of(&category(&register, "profile_traits").used_by.segments, "newsletter-fans");
    assert_eq!(traits, Some(vec![(FieldKind::Trait, "email_opt_in".to_owned(), None)]));
    let history = uses_of(&category(&register, "event_history").used_by.segments, "newsletter-fans");
    assert_eq!(history, Some(vec![(FieldKind::Event, "Product Viewed".to_owned(), None)]));
    assert_eq!(uses_of(&category(&register, "visit_context").used_by.segments, "newsletter-fans"), None);
    // Its purpose puts it under the email activity, whose data categories follow from it.
    let email = activity(&register, "email");
    assert!(email.in_use);
    assert_eq!(email.used_by.segments.len(), 1);
    for id in ["identifiers", "profile_traits", "event_history", "segment_memberships"] {
        assert!(email.data_categories.contains(&id), "{id} missing from {:?}", email.data_categories);
    }
    assert!(category(&register, "profile_traits").purposes.contains(&"email"));
    assert!(!activity(&register, "advertising").in_use);
}

#[test]
fn a_slot_targeting_a_segment_uses_what_the_segment_reads() {
    let register = register(ConsentMode::OptIn, &[newsletter_fans()], &[hero()], Vec::new());
    let memberships = uses_of(&category(&register, "segment_memberships").used_by.slots, "home_hero");
    assert_eq!(memberships, Some(vec![(FieldKind::SegmentMembership, "newsletter-fans".to_owned(), None)]));
    let traits = uses_of(&category(&register, "profile_traits").used_by.slots, "home_hero").expect("listed");
    assert!(traits.contains(&(FieldKind::Trait, "email_opt_in".to_owned(), Some("newsletter-fans".to_owned()))));
    assert!(traits.contains(&(FieldKind::Trait, "first_name".to_owned(), None)), "the template's trait: {traits:?}");
    let context = uses_of(&category(&register, "visit_context").used_by.slots, "home_hero");
    assert_eq!(context, Some(vec![(FieldKind::Context, "country".to_owned(), None)]));
    assert!(uses_of(&category(&register, "decision_log").used_by.slots, "home_hero").is_some());
    let personalization = activity(&register, "personalization");
    assert!(personalization.in_use);
    assert_eq!(personalization.used_by.slots[0].id, "home_hero");
}

#[test]
fn segments_reached_through_other_segments_are_followed_transitively() {
    let buyers = segment(json!({
        "id": "buyers", "name": "Buyers", "purpose": "personalization",
        "condition": {"purchases": {"count": {"gte": 1}}}
    }));
    let loyal = segment(json!({
        "id": "loyal", "name": "Loyal", "purpose": "personalization",
        "condition": {"all": [{"segment": "buyers"}, {"visitor": "returning"}]}
    }));
    let register = register(ConsentMode::OptIn, &[buyers, loyal], &[], Vec::new());
    let history = uses_of(&category(&register, "event_history").used_by.segments, "loyal").expect("listed");
    assert!(history.contains(&(FieldKind::Event, "Order Completed".to_owned(), Some("buyers".to_owned()))));
    assert!(history.contains(&(FieldKind::Visits, "new_or_returning".to_owned(), None)));
}

#[test]
fn a_score_links_its_segment_to_the_model_and_to_profiling() {
    let at_risk = segment(json!({
        "id": "at-risk", "name": "At risk", "purpose": "email",
        "condition": {"score": {"name": "churn_risk", "op": "gt", "value": 0.7}}
    }));
    let register = register(ConsentMode::OptIn, &[at_risk], &[], known_models());
    let predictions = &category(&register, "predictions").used_by;
    let score = &predictions.segments[0].uses[0];
    assert_eq!((score.name.as_str(), score.via_model.as_deref()), ("churn_risk", Some("bgnbd")));
    assert!(predictions.models.iter().any(|m| m.id == "bgnbd"));
    let profiling = activity(&register, "profiling");
    assert_eq!(profiling.used_by.segments.len(), 1, "listed under profiling for its score alone");
    assert!(profiling.used_by.segments[0].uses.iter().all(|f| f.kind == FieldKind::Score));
    assert_eq!(model_of_score("propensity.coffee_beans"), Some("propensity"));
    assert_eq!(model_of_score("made_up"), None);
}

#[test]
fn the_legal_basis_follows_the_consent_mode() {
    let opt_in = register(ConsentMode::OptIn, &[], &[], Vec::new());
    for id in ["analytics", "personalization", "email", "advertising", "profiling"] {
        assert_eq!(activity(&opt_in, id).legal_basis.basis, LegalBasisKind::Consent, "{id}");
    }
    assert_eq!(activity(&opt_in, "consent_management").legal_basis.basis, LegalBasisKind::LegalObligation);
    assert_eq!(activity(&opt_in, "anonymous_statistics").legal_basis.basis, LegalBasisKind::AnonymousData);
    assert_eq!(activity(&opt_in, "data_subject_requests").legal_basis.basis, LegalBasisKind::LegalObligation);
    let opt_out = register(ConsentMode::OptOut, &[], &[], Vec::new());
    let analytics = &activity(&opt_out, "analytics").legal_basis;
    assert_eq!(analytics.basis, LegalBasisKind::LegitimateInterest);
    assert!(activity(&opt_out, "personalization").legal_basis.caution.as_deref().unwrap_or("").contains("opt-in"));
    assert!(opt_out.caveats.iter().any(|c| c.contains("opt-out")));
}

#[test]
fn retention_is_reported_as_intended_and_not_enforced() {
    let register = register(ConsentMode::OptIn, &[], &[], Vec::new());
    let history = &category(&register, "event_history").retention;
    assert_eq!((history.intended_days, history.enforced), (Some(RAW_EVENT_RETENTION_DAYS), false));
    assert!(history.period.contains("not yet enforced"));
    assert!(register.caveats[0].contains("not yet enforced"));
    assert!(register.summary.contains("does not yet delete old records automatically"));
}

#[test]
fn the_summary_mentions_each_purpose_in_use_and_no_other() {
    let with_everything = register(ConsentMode::OptIn, &[newsletter_fans()], &[hero()], known_models());
    let summary = &with_everything.summary;
    for phrase in [
        "keep a record of your visits",
        "to choose the content and product recommendations you see",
        "which of our emails are relevant to you",
        "\u{201c}Newsletter fans\u{201d}",
        "how likely you are to buy from us again",
        "your email opt in",
        "the products you view",
        "never use, infer or predict sensitive information",
    ] {
        assert!(summary.contains(phrase), "{phrase:?} missing from:\n{summary}");
    }
    assert!(!summary.contains("advertising audiences"), "no advertising segment, so no advertising paragraph");
    let bare = register(ConsentMode::OptIn, &[], &[], Vec::new());
    assert!(!bare.summary.contains("emails are relevant"));
    assert!(!bare.summary.contains("to predict"));
}

#[test]
fn the_register_lists_the_policys_sensitive_categories_and_declared_traits() {
    let policy = PolicyConfig::from_json(
        r#"{"sensitive_traits": {"blood_type": "health_and_medical"},
            "zero_party_traits": {"preferred_roast": ["personalization", "email"]}}"#,
    )
    .expect("a valid policy");
    let register = build(&RegisterInputs {
        generated_at_ms: 0,
        consent_mode: ConsentMode::OptIn,
        dedup_window_ms: DAY_MS,
        segments: Vec::new(),
        slots: Vec::new(),
        models: Vec::new(),
        policy: &policy,
    });
    assert_eq!(register.sensitive_categories_excluded.len(), SensitiveCategory::ALL.len());
    let health = &register.sensitive_categories_excluded[0];
    assert_eq!(
        (health.category, health.operator_additions.traits.as_slice()),
        ("health_and_medical", &["blood_type".to_owned()][..])
    );
    assert_eq!(register.declared_traits[0].purposes, vec!["personalization", "email"]);
    let text = render_text(&register);
    assert!(text.contains("SUMMARY FOR A PRIVACY POLICY"));
    assert!(text
        .contains("health_and_medical: physical or mental health, medication, treatment (operator adds: blood_type)"));
}

#[test]
fn a_template_finding_the_nearest_store_is_owned_up_to_in_the_summary() {
    let stores = slot(json!({
        "id": "store_banner", "name": "Store banner", "kind": "banner",
        "variants": [{"id": "near", "template": "{% if nearest_store %}{{ nearest_store.name }}{% endif %}"}],
        "default": {"template": "<p>Visit us</p>"}
    }));
    let register = register(ConsentMode::OptIn, &[], &[stores], Vec::new());
    let traits = uses_of(&category(&register, "profile_traits").used_by.slots, "store_banner").expect("listed");
    assert!(traits.contains(&(FieldKind::Trait, "location.latitude".to_owned(), None)), "{traits:?}");
    assert!(register.summary.contains("used only to find our nearest store"), "{}", register.summary);
    assert!(!register.summary.contains("or precise location"), "{}", register.summary);
    let bare = super::build(&RegisterInputs {
        generated_at_ms: 0,
        consent_mode: ConsentMode::OptIn,
        dedup_window_ms: DAY_MS,
        segments: Vec::new(),
        slots: Vec::new(),
        models: Vec::new(),
        policy: &PolicyConfig::default(),
    });
    assert!(bare.summary.contains("or precise location"), "{}", bare.summary);
}
