use super::*;
use crate::segments::{check_definition, DefinitionError, SaveError};

/// What saving a definition should do.
enum Expected {
    Accept,
    Refuse(Rule, &'static str),
}

/// The kind of refusal: a policy rule, or a definition that does not read.
#[derive(Debug, PartialEq)]
enum Rule {
    Policy(PolicyRule),
    Invalid,
    TooComplex,
}

use Expected::{Accept, Refuse};
use PolicyRule::{SensitiveInference, SensitiveTrait, ThinData, ZeroPartyPurpose};
use SensitiveCategory::*;

fn config() -> PolicyConfig {
    let mut config = PolicyConfig::default();
    config.zero_party_traits.insert("preferred_roast".to_owned(), vec![ConsentPurpose::Personalization]);
    config.zero_party_traits.insert("expecting".to_owned(), vec![ConsentPurpose::Personalization]);
    config.sensitive_catalog_categories.push(("Adult Incontinence".to_owned(), HealthAndMedical));
    config
}

fn definition(purpose: &str, condition: &str) -> String {
    format!(r#"{{"id": "test-segment", "name": "Test", "purpose": "{purpose}", "condition": {condition}}}"#)
}

fn check(json: &str, expected: Expected) {
    let outcome = check_definition(json, &config());
    match (expected, outcome) {
        (Accept, Ok(_)) => {}
        (Accept, Err(error)) => panic!("expected acceptance of {json}\ngot: {error}"),
        (Refuse(rule, path), Ok(_)) => panic!("expected refusal ({rule:?} at {path}) of {json}"),
        (Refuse(Rule::Policy(rule), path), Err(SaveError::Policy(violations))) => assert!(
            violations.iter().any(|v| v.rule == rule && v.path == path),
            "expected {rule:?} at {path} for {json}\ngot: {violations:#?}"
        ),
        (Refuse(Rule::Invalid, path), Err(SaveError::Definition(DefinitionError::Invalid { path: got, message }))) => {
            assert_eq!(got, path, "for {json}: {message}");
            assert!(!message.is_empty());
        }
        (Refuse(Rule::TooComplex, path), Err(SaveError::Definition(DefinitionError::TooComplex { path: got, .. }))) => {
            assert_eq!(got, path, "for {json}");
        }
        (Refuse(rule, path), Err(error)) => panic!("expected {rule:?} at {path} for {json}\ngot: {error:?}"),
    }
}

fn nested_nots(depth: usize) -> String {
    let mut condition = r#"{"visitor": "new"}"#.to_owned();
    for _ in 0..depth {
        condition = format!(r#"{{"not": {condition}}}"#);
    }
    condition
}

#[test]
fn saving_accepts_ordinary_audiences_and_refuses_creepy_or_thin_ones() {
    let p = "personalization";
    // Cart abandoners: added to cart in the last 24 hours, no order since.
    check(
        &definition(
            "email",
            r#"{"sequence": {"first": {"name": "Product Added", "within_hours": 24}, "then_never": {"name": "Order Completed"}}}"#,
        ),
        Accept,
    );
    // Repeat purchasers.
    check(&definition(p, r#"{"purchases": {"count": {"gte": 2}}}"#), Accept);
    // Lapsed customers: at least two purchases, the last over 90 days ago.
    check(&definition("email", r#"{"purchases": {"count": {"gte": 2}, "last_before_days": 90}}"#), Accept);
    // Browsed running shoes three times in a week.
    check(
        &definition(
            p,
            r#"{"catalog": {"category": "Running Shoes", "event": "Product Viewed", "count": {"gte": 3}, "within_days": 7}}"#,
        ),
        Accept,
    );
    // Downloaded the whitepaper but never started a trial.
    check(
        &definition(
            "email",
            r#"{"sequence": {"first": {"name": "Whitepaper Downloaded"}, "then_never": {"name": "Trial Started"}}}"#,
        ),
        Accept,
    );
    check(&definition("email", r#"{"trait": {"name": "birthday", "op": "birthday_within_days", "value": 7}}"#), Accept);
    // New visitors from a UTM campaign.
    check(
        &definition(
            p,
            r#"{"all": [{"visitor": "new"}, {"context": {"field": "utm_campaign", "op": "equals", "value": "spring-sale"}}]}"#,
        ),
        Accept,
    );
    check(&definition(p, r#"{"context": {"field": "country", "op": "in", "value": ["DE", "AT"]}}"#), Accept);
    check(&definition("email", r#"{"score": {"name": "churn_risk", "op": "gt", "value": 0.7}}"#), Accept);
    // A zero-party trait used for the purpose it was given for.
    check(&definition(p, r#"{"trait": {"name": "preferred_roast", "op": "equals", "value": "dark"}}"#), Accept);
    // Even a sensitive declaration is fine when the person gave it for this purpose.
    check(&definition(p, r#"{"trait": {"name": "expecting", "op": "equals", "value": true}}"#), Accept);
    check(&definition("advertising", r#"{"segment": "repeat-buyers"}"#), Accept);
    check(
        &definition(
            p,
            r#"{"any": [{"not": {"purchases": {"last_within_days": 30}}},
                        {"all": [{"event": {"name": "Product Viewed", "where": [{"property": "brand", "op": "in", "value": ["Acme", "Zed"]}], "within_days": 14, "min_distinct_days": 2}},
                                 {"trait": {"name": "country", "op": "not_equals", "value": "US"}}]}]}"#,
        ),
        Accept,
    );
    // One add to cart is a transaction, not a flimsy interest.
    check(&definition(p, r#"{"event": {"name": "Product Added", "within_days": 3}}"#), Accept);
    // An excluded single view is not an interest.
    check(
        &definition(p, r#"{"all": [{"visitor": "returning"}, {"not": {"event": {"name": "Pricing Viewed"}}}]}"#),
        Accept,
    );
    check(&definition("analytics", &nested_nots(15)), Accept);

    // Bought prenatal vitamins and unscented lotion.
    check(
        &definition(
            "advertising",
            r#"{"all": [{"event": {"name": "Order Completed", "where": [{"property": "product_name", "op": "contains", "value": "prenatal vitamins"}]}},
                        {"event": {"name": "Order Completed", "where": [{"property": "product_name", "op": "contains", "value": "unscented lotion"}]}}]}"#,
        ),
        Refuse(Rule::Policy(SensitiveInference(PregnancyAndBaby)), "condition.all[1].event.where[0].value"),
    );
    check(
        &definition(
            p,
            r#"{"event": {"name": "Page Viewed", "where": [{"property": "path", "op": "contains", "value": "debt-relief"}], "count": {"gte": 3}}}"#,
        ),
        Refuse(Rule::Policy(SensitiveInference(FinancialDistress)), "condition.event.where[0].value"),
    );
    check(
        &definition(p, r#"{"all": [{"catalog": {"category": "Health & Wellness > Vitamins", "count": {"gte": 2}}}]}"#),
        Refuse(Rule::Policy(SensitiveInference(HealthAndMedical)), "condition.all[0].catalog.category"),
    );
    check(
        &definition(
            p,
            r#"{"event": {"name": "Product Viewed", "where": [{"property": "category", "op": "in", "value": ["Books", "Bible"]}], "count": {"gte": 2}}}"#,
        ),
        Refuse(Rule::Policy(SensitiveInference(Religion)), "condition.event.where[0].value"),
    );
    check(
        &definition(p, r#"{"trait": {"name": "latitude", "op": "exists"}}"#),
        Refuse(Rule::Policy(SensitiveTrait(PreciseLocation)), "condition.trait.name"),
    );
    // A single view of a category is too thin for an interest.
    check(
        &definition(p, r#"{"catalog": {"category": "Running Shoes", "within_days": 30}}"#),
        Refuse(Rule::Policy(ThinData), "condition.catalog.count"),
    );
    check(
        &definition(p, r#"{"any": [{"visitor": "new"}, {"event": {"name": "Pricing Viewed", "count": {"eq": 1}}}]}"#),
        Refuse(Rule::Policy(ThinData), "condition.any[1].event.count"),
    );
    check(
        &definition("advertising", r#"{"trait": {"name": "preferred_roast", "op": "equals", "value": "dark"}}"#),
        Refuse(Rule::Policy(ZeroPartyPurpose), "condition.trait.name"),
    );
    check(
        &definition(p, r#"{"trait": {"name": "age", "op": "lt", "value": 16}}"#),
        Refuse(Rule::Policy(SensitiveTrait(Minors)), "condition.trait.value"),
    );
    check(
        &definition(p, r#"{"catalog": {"category": "Adult Incontinence", "count": {"gte": 4}}}"#),
        Refuse(Rule::Policy(SensitiveInference(HealthAndMedical)), "condition.catalog.category"),
    );
    check(
        &definition("email", r#"{"score": {"name": "pregnancy_likelihood", "op": "gt", "value": 0.5}}"#),
        Refuse(Rule::Policy(SensitiveInference(PregnancyAndBaby)), "condition.score.name"),
    );
    // Excluding a sensitive behavior still needs the inference.
    check(
        &definition(p, r#"{"not": {"never": {"name": "Pharmacy Visited"}}}"#),
        Refuse(Rule::Policy(SensitiveInference(HealthAndMedical)), "condition.not.never.name"),
    );
    // Sixteen `not`s put the innermost condition at depth 17.
    let deepest_path = format!("condition{}", ".not".repeat(16)).leak();
    check(&definition(p, &nested_nots(16)), Refuse(Rule::TooComplex, deepest_path));
    check(
        &definition(p, r#"{"trait": {"name": "country", "op": "resembles", "value": "DE"}}"#),
        Refuse(Rule::Invalid, "condition.trait"),
    );
    check(
        &definition(
            p,
            r#"{"all": [{"visitor": "new"}, {"visitor": "new"}, {"event": {"name": "Product Viewed", "count": {"gte": 2}, "within_days": 4000}}]}"#,
        ),
        Refuse(Rule::Invalid, "condition.all[2].event.within_days"),
    );
    check(
        &definition(
            p,
            r#"{"event": {"name": "Product Viewed", "count": {"gte": 2}, "within_days": 7, "within_hours": 3}}"#,
        ),
        Refuse(Rule::Invalid, "condition.event"),
    );
    check(
        &definition(
            p,
            r#"{"event": {"name": "Product Viewed", "count": {"gte": 2}, "between": ["2026-02-01", "2026-01-01"]}}"#,
        ),
        Refuse(Rule::Invalid, "condition.event.between"),
    );
    check(&definition(p, r#"{"likes": "cats"}"#), Refuse(Rule::Invalid, "condition"));
    check(
        &definition(p, r#"{"event": {"name": "Product Viewed", "count": {"gte": 2}, "colour": "red"}}"#),
        Refuse(Rule::Invalid, "condition.event"),
    );
    check(&definition(p, r#"{"segment": "test-segment"}"#), Refuse(Rule::Invalid, "condition"));
}

#[test]
fn every_violation_is_reported_not_just_the_first() {
    let json = definition(
        "advertising",
        r#"{"all": [{"catalog": {"category": "Baby"}}, {"trait": {"name": "preferred_roast", "op": "exists"}}]}"#,
    );
    let Err(SaveError::Policy(violations)) = check_definition(&json, &config()) else {
        panic!("expected a policy refusal");
    };
    let rules: Vec<PolicyRule> = violations.iter().map(|v| v.rule).collect();
    assert_eq!(rules, [SensitiveInference(PregnancyAndBaby), ThinData, ZeroPartyPurpose]);
}

#[test]
fn keywords_match_whole_words_only() {
    assert!(sensitive_matches("Vitamins & Supplements", &[]).iter().any(|(c, _)| *c == HealthAndMedical));
    assert!(sensitive_matches("device_latitude", &[]).iter().any(|(c, _)| *c == PreciseLocation));
    assert!(sensitive_matches("Flatiron Skillet", &[]).is_empty());
    assert!(sensitive_matches("Babysitter Guide", &[]).is_empty());
}

#[test]
fn the_operator_policy_file_adds_sensitive_names_and_declared_traits() {
    let config = PolicyConfig::from_json(
        r#"{"sensitive_traits": {"income_band": "financial_distress"},
            "sensitive_catalog_categories": {"Pharmacy": "health_and_medical"},
            "zero_party_traits": {"preferred_roast": ["personalization"]}}"#,
    )
    .unwrap();
    let refused = |json: &str| !super::check(&SegmentDefinition::parse_str(json).unwrap(), &config).is_empty();
    assert!(refused(
        r#"{"id": "a", "name": "a", "purpose": "personalization",
            "condition": {"trait": {"name": "income_band", "op": "equals", "value": "low"}}}"#
    ));
    assert!(refused(
        r#"{"id": "a", "name": "a", "purpose": "personalization",
            "condition": {"catalog": {"category": "Pharmacy", "count": {"gte": 2}}}}"#
    ));
    // Declared for personalization: usable there, refused for email.
    let roast = |purpose: &str| {
        format!(
            r#"{{"id": "a", "name": "a", "purpose": "{purpose}",
                "condition": {{"trait": {{"name": "preferred_roast", "op": "equals", "value": "dark"}}}}}}"#
        )
    };
    assert!(!refused(&roast("personalization")));
    assert!(refused(&roast("email")));
    for (bad, field) in [
        (r#"{"sensitive_traits": {"x": "gossip"}}"#, "sensitive_traits.x"),
        (r#"{"zero_party_traits": {"x": ["marketing"]}}"#, "zero_party_traits.x"),
        (r#"{"colour": 1}"#, "colour"),
        (r#"[]"#, "object"),
    ] {
        let error = PolicyConfig::from_json(bad).unwrap_err();
        assert!(error.contains(field), "{bad}: {error}");
    }
}
