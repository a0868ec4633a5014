use super::*;

fn policy() -> PolicyConfig {
    PolicyConfig::default()
}

const HERO: &str = r#"{
  "id": "home_hero", "name": "Home hero", "kind": "web_hero",
  "exclude": ["purchasers"],
  "variants": [
    {"id": "welcome_back", "priority": 10, "when": {"visitor": "returning"}, "template": "<h2>Welcome back</h2>"},
    {"id": "summer", "priority": 20,
     "when": {"context": {"field": "utm_campaign", "op": "equals", "value": "summer-sale"}},
     "template": "<h2>Summer sale</h2>"},
    {"id": "mornings", "local_hours": {"from": 6, "to": 11}, "template": "Good morning"}
  ],
  "default": {"template": "<h2>Bestsellers</h2>"}
}"#;

#[test]
fn a_slot_parses_and_orders_variants_by_priority() {
    let slot = SlotDefinition::parse_str(HERO, &policy()).unwrap();
    assert_eq!(slot.id, "home_hero");
    assert_eq!(slot.kind, SlotKind::WebHero);
    assert_eq!(slot.variants.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["summer", "welcome_back", "mornings"]);
    assert_eq!(slot.exclude.len(), 1);
    assert_eq!(slot.min_events, DEFAULT_MIN_EVENTS);
    assert_eq!(slot.template_name("summer"), "home_hero/summer");
    let segments: Vec<&str> = slot.segments().iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(segments, ["purchasers"]);
}

fn refused(json: &str) -> SlotError {
    SlotDefinition::parse_str(json, &policy()).expect_err("must be refused")
}

#[test]
fn malformed_slots_are_refused_with_the_field() {
    let cases = [
        (r#"{"id": "Bad Id", "name": "x", "kind": "banner", "default": {"template": ""}}"#, "id"),
        (r#"{"id": "a", "name": " ", "kind": "banner", "default": {"template": ""}}"#, "name"),
        (r#"{"id": "a", "name": "x", "kind": "billboard", "default": {"template": ""}}"#, "kind"),
        (r#"{"id": "a", "name": "x", "kind": "banner"}"#, ""),
        (r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""}, "colour": 1}"#, ""),
        (
            r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""},
                "variants": [{"id": "v", "template": ""}, {"id": "v", "template": ""}]}"#,
            "variants[1].id",
        ),
        (
            r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""},
                "variants": [{"id": "default", "template": ""}]}"#,
            "variants[0].id",
        ),
        (
            r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""},
                "variants": [{"id": "v", "local_hours": {"from": 25, "to": 3}, "template": ""}]}"#,
            "variants[0].local_hours",
        ),
        (
            r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""},
                "variants": [{"id": "v", "when": {"visitor": "sometimes"}, "template": ""}]}"#,
            "variants[0].when.visitor",
        ),
        (
            r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""}, "exclude": ["Not An Id!"]}"#,
            "exclude[0]",
        ),
    ];
    for (json, path) in cases {
        let error = refused(json);
        assert!(matches!(error, SlotError::Invalid { .. }), "{json}: {error:?}");
        assert!(error.path().starts_with(path), "{json}: path {:?}, want {path:?} ({error})", error.path());
    }
}

#[test]
fn behavioral_conditions_belong_in_segments() {
    let error = refused(
        r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""},
            "variants": [{"id": "v", "template": "",
              "when": {"all": [{"visitor": "returning"},
                               {"event": {"name": "Product Viewed", "count": {"gte": 3}, "within_days": 7}}]}}]}"#,
    );
    assert_eq!(error.path(), "variants[0].when.all[1]");
    assert!(error.to_string().contains("belong in a segment"), "{error}");
}

#[test]
fn targeting_runs_the_segment_policy_check() {
    let error = refused(
        r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""},
            "variants": [{"id": "v", "template": "", "when": {"trait": {"name": "religion", "op": "exists"}}}]}"#,
    );
    assert!(matches!(error, SlotError::Policy { .. }), "{error:?}");
    assert!(error.path().starts_with("variants[0].when"), "{}", error.path());
    // A plain identity trait is fine.
    SlotDefinition::parse_str(
        r#"{"id": "a", "name": "x", "kind": "banner", "default": {"template": ""},
            "variants": [{"id": "v", "template": "", "when": {"trait": {"name": "plan", "op": "equals", "value": "pro"}}}]}"#,
        &policy(),
    )
    .unwrap();
}
