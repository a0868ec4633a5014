use super::*;
use crate::segments::definition::SegmentDefinition;
use crate::time::parse_iso8601_ms;

/// One stored event of the fixture: name, time, and the category path of its product.
struct FixtureEvent {
    name: &'static str,
    at_ms: i64,
    category_path: Vec<String>,
}

/// An in-memory person, matching events by name and catalog category.
#[derive(Default)]
struct Person {
    events: Vec<FixtureEvent>,
    traits: Vec<(&'static str, Value)>,
    scores: Vec<(&'static str, f64)>,
    returning: bool,
}

impl Person {
    fn did(mut self, name: &'static str, at_ms: i64, category: &str) -> Person {
        let category_path = crate::catalog::Product::parse_category_path(category);
        self.events.push(FixtureEvent { name, at_ms, category_path });
        self
    }
}

impl ScoreSource for Person {
    fn score(&self, name: &str) -> Option<f64> {
        self.scores.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

impl SegmentFacts for Person {
    fn trait_value(&self, name: &str) -> Option<Value> {
        self.traits.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    }
    fn matching_events(&self, event: &EventMatch) -> Vec<i64> {
        let no_properties = serde_json::Map::new();
        self.events
            .iter()
            .filter(|e| {
                event.matches_name_and_filters(e.name, &no_properties) && event.category_matches(&e.category_path)
            })
            .map(|e| e.at_ms)
            .collect()
    }
    fn visitor_kind(&self) -> VisitorKind {
        if self.returning {
            VisitorKind::Returning
        } else {
            VisitorKind::New
        }
    }
    fn context(&self, field: ContextField) -> Option<String> {
        (field == ContextField::Country).then(|| "DE".to_owned())
    }
    fn is_member(&self, segment: &SegmentId) -> bool {
        segment.as_str() == "vip"
    }
}

/// The same person with times in order, so the evaluator may binary-search them.
struct Sorted<'a>(&'a Person);

impl ScoreSource for Sorted<'_> {
    fn score(&self, name: &str) -> Option<f64> {
        self.0.score(name)
    }
}

impl SegmentFacts for Sorted<'_> {
    fn trait_value(&self, name: &str) -> Option<Value> {
        self.0.trait_value(name)
    }
    fn matching_events(&self, event: &EventMatch) -> Vec<i64> {
        let mut times = self.0.matching_events(event);
        times.sort_unstable();
        times
    }
    fn times_are_sorted(&self) -> bool {
        true
    }
    fn visitor_kind(&self) -> VisitorKind {
        self.0.visitor_kind()
    }
    fn context(&self, field: ContextField) -> Option<String> {
        self.0.context(field)
    }
    fn is_member(&self, segment: &SegmentId) -> bool {
        self.0.is_member(segment)
    }
}

fn now_ms() -> i64 {
    parse_iso8601_ms("2026-03-10T12:00:00Z").expect("a valid instant")
}

fn days_ago(days: i64) -> i64 {
    now_ms() - days * DAY_MS
}

fn condition(json: &str) -> Condition {
    let text = format!(r#"{{"id": "s", "name": "S", "purpose": "personalization", "condition": {json}}}"#);
    SegmentDefinition::parse_str(&text).expect("a valid definition").condition().clone()
}

/// Evaluates `json` for `person` now and checks membership, explanations and the next change.
fn check(json: &str, person: &Person, member: bool, sentences: &[&str], next_change: Option<i64>) {
    let condition = condition(json);
    let evaluation = evaluate(&condition, person, now_ms());
    assert_eq!(evaluation.member, member, "membership for {json}");
    assert_eq!(evaluate_membership(&condition, person, now_ms()), member, "the fast path agrees for {json}");
    assert_eq!(evaluate_membership(&condition, &Sorted(person), now_ms()), member, "binary search agrees for {json}");
    if let Some(change) = next_change {
        let check = next_check_ms(&condition, person, now_ms());
        assert!(check.is_some_and(|c| c <= change), "a check is scheduled by the change for {json}: {check:?}");
    }
    let explained: Vec<String> = evaluation.reasons.iter().map(explain).collect();
    assert_eq!(explained, sentences, "explanations for {json}");
    assert_eq!(next_change_ms(&condition, person, now_ms()), next_change, "next change for {json}");
}

#[test]
fn evaluation_explains_itself_and_knows_when_it_expires() {
    let runner = Person::default()
        .did("Product Viewed", days_ago(1), "Sports > Running Shoes")
        .did("Product Viewed", days_ago(3), "Sports > Running Shoes")
        .did("Product Viewed", days_ago(6), "Sports > Running Shoes")
        .did("Product Viewed", days_ago(2), "Kitchen > Coffee");
    let three_in_a_week = r#"{"catalog": {"category": "Running Shoes", "count": {"gte": 3}, "within_days": 7}}"#;
    // In now; out when the view of six days ago turns seven days old.
    check(
        three_in_a_week,
        &runner,
        true,
        &["You viewed Running Shoes 3 times in the last 7 days."],
        Some(days_ago(-1)),
    );
    let later = evaluate(&condition(three_in_a_week), &runner, days_ago(-1));
    assert!(!later.member);
    assert!(evaluate(&condition(three_in_a_week), &runner, days_ago(-1) - 1).member);

    let lapsed = Person::default().did("Order Completed", days_ago(200), "").did("Order Completed", days_ago(112), "");
    check(
        r#"{"purchases": {"count": {"gte": 2}, "last_before_days": 90}}"#,
        &lapsed,
        true,
        &["You have made 2 purchases.", "Your last purchase was 112 days ago."],
        None,
    );
    // Eighty-nine days after the last purchase a buyer becomes lapsed.
    let recent = Person::default().did("Order Completed", days_ago(300), "").did("Order Completed", days_ago(89), "");
    check(
        r#"{"purchases": {"count": {"gte": 2}, "last_before_days": 90}}"#,
        &recent,
        false,
        &["You have made 2 purchases.", "Your last purchase was 89 days ago."],
        Some(days_ago(-1)),
    );

    let abandoner = Person::default().did("Order Completed", days_ago(5), "").did("Product Added", days_ago(2), "");
    let abandoned = r#"{"sequence": {"first": {"name": "Product Added", "within_days": 3}, "then_never": {"name": "Order Completed"}}}"#;
    check(
        abandoned,
        &abandoner,
        true,
        &["You added items to your cart 2 days ago and have not completed an order since."],
        Some(days_ago(-1)),
    );
    let buyer = Person::default().did("Product Added", days_ago(2), "").did("Order Completed", days_ago(1), "");
    check(
        abandoned,
        &buyer,
        false,
        &["You added items to your cart 2 days ago and completed an order after that."],
        None,
    );

    // "Did X but not in the last 30 days" becomes true when the quiet period ends.
    check(
        r#"{"not_within_days": {"name": "Product Viewed", "days": 30}}"#,
        &runner,
        false,
        &["You last viewed products 1 day ago."],
        Some(days_ago(1) + 30 * DAY_MS),
    );

    let birthday_person = Person {
        traits: vec![("birthday", Value::from("1990-03-15")), ("country", Value::from("DE"))],
        ..Person::default()
    };
    // The birthday is five days away: in now, out from the day after it.
    check(
        r#"{"trait": {"name": "birthday", "op": "birthday_within_days", "value": 7}}"#,
        &birthday_person,
        true,
        &["Your birthday is in 5 days."],
        parse_iso8601_ms("2026-03-16"),
    );
    check(
        r#"{"trait": {"name": "birthday", "op": "birthday_within_days", "value": 3}}"#,
        &birthday_person,
        false,
        &["Your birthday is in 5 days."],
        parse_iso8601_ms("2026-03-12"),
    );

    let scored = Person { scores: vec![("churn_risk", 0.82)], returning: true, ..birthday_person };
    check(
        r#"{"all": [{"score": {"name": "churn_risk", "op": "gt", "value": 0.7}}, {"segment": "vip"},
                    {"context": {"field": "country", "op": "in", "value": ["de", "AT"]}}, {"visitor": "returning"}]}"#,
        &scored,
        true,
        &[
            "Your predicted risk of having stopped buying is 82%.",
            "You are in the segment \"vip\".",
            "You are visiting from DE.",
            "You have visited before.",
        ],
        None,
    );
    // A non-member is explained by what failed; `not` keeps the facts.
    check(
        r#"{"any": [{"visitor": "new"}, {"not": {"trait": {"name": "country", "op": "equals", "value": "de"}}}]}"#,
        &scored,
        false,
        &["You have visited before.", "Your country is DE."],
        None,
    );
    check(
        r#"{"never": {"name": "Product Viewed", "within_days": 2}}"#,
        &runner,
        false,
        &["You viewed products once in the last 2 days."],
        Some(days_ago(-1)),
    );
}

#[test]
fn birthdays_handle_leap_days_and_the_turn_of_the_year() {
    let at = |text: &str| parse_iso8601_ms(text).expect("a valid instant");
    // A Feb 29 birthday falls on Feb 28 in a common year.
    assert_eq!(days_until_birthday("2000-02-29", at("2026-02-27T08:00:00Z")).map(|d| d.0), Some(1));
    assert_eq!(days_until_birthday("--02-29", at("2028-02-27T08:00:00Z")).map(|d| d.0), Some(2));
    // After this year's birthday the next one is in January.
    assert_eq!(days_until_birthday("--01-02", at("2026-12-30T23:00:00Z")).map(|d| d.0), Some(3));
    assert_eq!(days_until_birthday("--12-30", at("2026-12-30T23:00:00Z")).map(|d| d.0), Some(0));
    assert_eq!(days_until_birthday("02-30", at("2026-12-30T23:00:00Z")), None);
    assert_eq!(days_until_birthday("--02-30", at("2026-12-30T23:00:00Z")), None);
}
