//! Tests of the generated shop as a whole: determinism, the thresholds the issue asks for,
//! and the message shapes that consumers rely on.
//!
//! Two shops are generated once and shared: a 1,000-person shop whose every message is
//! parsed and checked, and the default 5,000-person shop, which is only scanned for the
//! issue's thresholds, because parsing a third of a million messages in a debug build takes
//! longer than the rest of the suite together.

use super::*;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// A day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The track events the generator may send; the e-commerce names follow Segment's spec.
const KNOWN_EVENTS: [&str; 12] = [
    "Products Searched",
    "Product List Viewed",
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
    "Email Opened",
    "Email Link Clicked",
    "Signed Up",
    "Segment Consent Preference Updated",
    "Email Link Clicked",
];

/// The fields of a message the tests read; strings are borrowed unless escaped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming<'a> {
    /// Call type.
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// Message id.
    #[serde(borrow)]
    message_id: Cow<'a, str>,
    /// RFC 3339 timestamp.
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    /// User id, once identified.
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    /// Anonymous id.
    #[serde(borrow)]
    anonymous_id: Option<Cow<'a, str>>,
    /// Alias previous id.
    #[serde(borrow)]
    previous_id: Option<Cow<'a, str>>,
    /// Track event name.
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    /// Page name.
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    /// Track or page properties.
    #[serde(borrow)]
    properties: Option<IncomingProperties<'a>>,
    /// Identify traits.
    #[serde(borrow)]
    traits: Option<BTreeMap<&'a str, Value>>,
    /// Context.
    #[serde(borrow)]
    context: Option<IncomingContext<'a>>,
}

/// The properties the tests read.
#[derive(Debug, Deserialize)]
struct IncomingProperties<'a> {
    /// Page path.
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,
    /// Page URL.
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    /// Page referrer.
    #[serde(borrow)]
    referrer: Option<Cow<'a, str>>,
    /// Cart of a cart or order event.
    #[serde(borrow)]
    cart_id: Option<Cow<'a, str>>,
    /// Lines of a cart or order event.
    products: Option<Vec<serde::de::IgnoredAny>>,
}

/// The context fields the tests read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingContext<'a> {
    /// IP address.
    #[serde(borrow)]
    ip: Option<Cow<'a, str>>,
    /// Locale.
    #[serde(borrow)]
    locale: Option<Cow<'a, str>>,
    /// Time zone.
    #[serde(borrow)]
    timezone: Option<Cow<'a, str>>,
    /// User agent.
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    /// Current page.
    page: Option<serde::de::IgnoredAny>,
    /// UTM parameters.
    campaign: Option<serde::de::IgnoredAny>,
    /// Consent.
    consent: Option<IncomingConsent>,
}

/// `context.consent`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingConsent {
    /// The five categories.
    category_preferences: BTreeMap<String, bool>,
}

/// A shop small enough to generate twice in a test.
fn small_config(seed: u64) -> DemoConfig {
    DemoConfig { seed, n_users: 300, days: 120, n_products: 150, ..DemoConfig::default() }
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
fn millis(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
}

/// The median of some values.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// What the tests read from the messages of one shop, gathered in a single pass.
#[derive(Debug, Default)]
struct Analysis {
    /// Descriptions of malformed messages (the first few).
    problems: Vec<String>,
    /// Messages by type.
    types: BTreeMap<String, usize>,
    /// Track events by name.
    events: BTreeMap<String, usize>,
    /// Message ids seen more than once.
    duplicate_ids: usize,
    /// Messages earlier than the one before them.
    out_of_order: usize,
    /// Messages outside the window.
    outside_window: usize,
    /// Carts that received a product.
    carts: BTreeSet<String>,
    /// Carts that became an order.
    ordered_carts: BTreeSet<String>,
    /// Order times per customer (user id, else anonymous id).
    orders: BTreeMap<String, Vec<i64>>,
    /// Email addresses from identify traits.
    emails: BTreeSet<String>,
    /// User ids with an upcoming birthday in their traits.
    upcoming_birthdays: BTreeSet<String>,
    /// User ids that identified.
    identified: BTreeSet<String>,
    /// Cities per user id, from identify traits.
    cities: BTreeMap<String, BTreeSet<String>>,
    /// Countries from identify traits.
    countries: BTreeSet<String>,
    /// Every anonymous id.
    anonymous_ids: BTreeSet<String>,
    /// Anonymous ids whose first messages were anonymous and that later identified.
    linked_after_browsing: usize,
    /// Messages that break identity continuity (see the identity test).
    identity_violations: Vec<String>,
    /// Every IP address.
    ips: BTreeSet<String>,
    /// Consent preferences of each anonymous id's first message.
    first_consent: BTreeMap<String, [bool; 5]>,
    /// UTC hour of day of each user's newsletter opens.
    open_hours: BTreeMap<String, Vec<f64>>,
    /// Messages carrying `context.campaign`.
    with_campaign: usize,
    /// External referrers of page calls.
    referrers: BTreeSet<String>,
}

impl Analysis {
    /// Records a malformed message (only the first few, to keep failures readable).
    fn problem(&mut self, text: String) {
        if self.problems.len() < 10 {
            self.problems.push(text);
        }
    }

    /// Records a completed order and its cart.
    fn order(&mut self, customer: &str, at: i64, cart_id: Option<&str>) {
        self.ordered_carts.extend(cart_id.map(str::to_owned));
        self.orders.entry(customer.to_owned()).or_default().push(at);
    }
}

/// Reads every message of a shop.
fn analyse(shop: &DemoShop) -> Analysis {
    let mut analysis = Analysis::default();
    let start = millis(&shop.summary.start).unwrap_or(i64::MIN);
    let end = millis(&shop.summary.end).unwrap_or(i64::MAX);
    let upcoming: Vec<String> =
        (1..=6).map(|k| zones::format_date(end.div_euclid(DAY_MS) + k)[5..].to_owned()).collect();
    let mut message_ids = BTreeSet::new();
    let mut previous_ms = i64::MIN;
    // Per anonymous id: (first message was anonymous, a user id has been seen).
    let mut identity: BTreeMap<String, (bool, bool)> = BTreeMap::new();

    for raw in &shop.messages {
        let message = match serde_json::from_str::<Incoming<'_>>(raw) {
            Ok(message) => message,
            Err(error) => {
                analysis.problem(format!("{error}: {raw}"));
                continue;
            }
        };
        *analysis.types.entry(message.kind.to_string()).or_default() += 1;
        if !message_ids.insert(message.message_id.to_string()) {
            analysis.duplicate_ids += 1;
        }
        let Some(at) = millis(&message.timestamp) else {
            analysis.problem(format!("bad timestamp: {raw}"));
            continue;
        };
        if at < previous_ms {
            analysis.out_of_order += 1;
        }
        previous_ms = at;
        if at < start || at > end {
            analysis.outside_window += 1;
        }
        let user_id = message.user_id.as_deref();
        let Some(anonymous_id) = message.anonymous_id.as_deref() else {
            analysis.problem(format!("no anonymousId: {raw}"));
            continue;
        };
        analysis.anonymous_ids.insert(anonymous_id.to_owned());
        let Some(context) = &message.context else {
            analysis.problem(format!("no context: {raw}"));
            continue;
        };
        let preferences = context.consent.as_ref().map(|c| &c.category_preferences);
        let consent: Option<Vec<bool>> = ["Analytics", "Personalization", "Advertising", "Email", "Profiling"]
            .iter()
            .map(|key| preferences.and_then(|p| p.get(*key)).copied())
            .collect();
        match consent {
            Some(values) if values.len() == 5 => {
                let array = [values[0], values[1], values[2], values[3], values[4]];
                analysis.first_consent.entry(anonymous_id.to_owned()).or_insert(array);
            }
            _ => analysis.problem(format!("no consent: {raw}")),
        }
        if [&context.ip, &context.locale, &context.timezone, &context.user_agent].iter().any(|f| f.is_none()) {
            analysis.problem(format!("context lacks ip, locale, timezone or userAgent: {raw}"));
        }
        analysis.ips.extend(context.ip.as_deref().map(str::to_owned));
        if context.campaign.is_some() {
            analysis.with_campaign += 1;
        }

        // Identity continuity: once an anonymous id carried a user id it always does, and the
        // first user id on an id that started anonymous arrives with an identify or alias call.
        let (started_anonymous, seen_user) =
            identity.entry(anonymous_id.to_owned()).or_insert((user_id.is_none(), false));
        match (user_id.is_some(), *seen_user) {
            (false, true) => analysis.identity_violations.push(format!("user id dropped: {raw}")),
            (true, false) => {
                *seen_user = true;
                if *started_anonymous {
                    if message.kind == "identify" || message.kind == "alias" {
                        analysis.linked_after_browsing += 1;
                    } else {
                        analysis.identity_violations.push(format!("user id without identify: {raw}"));
                    }
                }
            }
            _ => {}
        }

        let properties = message.properties.as_ref();
        let property = |read: for<'p> fn(&'p IncomingProperties<'_>) -> Option<&'p str>| {
            properties.and_then(read).map(str::to_owned)
        };
        let customer = user_id.unwrap_or(anonymous_id);
        match message.kind.as_ref() {
            "track" => {
                let event = message.event.as_deref().unwrap_or("");
                *analysis.events.entry(event.to_owned()).or_default() += 1;
                if context.page.is_none() && !event.starts_with("Email") {
                    analysis.problem(format!("web event without context.page: {raw}"));
                }
                match event {
                    "Product Added" => analysis.carts.extend(property(|p| p.cart_id.as_deref())),
                    "Order Completed" => {
                        analysis.order(customer, at, properties.and_then(|p| p.cart_id.as_deref()));
                        if properties.and_then(|p| p.products.as_ref()).is_none_or(Vec::is_empty) {
                            analysis.problem(format!("order without products: {raw}"));
                        }
                    }
                    "Email Opened" => {
                        let hour = at.rem_euclid(DAY_MS) as f64 / 3_600_000.0;
                        analysis.open_hours.entry(customer.to_owned()).or_default().push(hour);
                    }
                    _ => {}
                }
            }
            "page" => {
                let has_path_and_url = properties.is_some_and(|p| p.path.is_some() && p.url.is_some());
                if message.name.is_none() || !has_path_and_url {
                    analysis.problem(format!("page without name, path or url: {raw}"));
                }
                let referrer = property(|p| p.referrer.as_deref()).unwrap_or_default();
                if !referrer.is_empty() && !referrer.starts_with("https://demo.regard.shop") {
                    analysis.referrers.insert(referrer);
                }
            }
            "identify" => {
                let Some(user_id) = user_id else {
                    analysis.problem(format!("identify without userId: {raw}"));
                    continue;
                };
                let traits = message.traits.as_ref();
                let trait_text = |key: &str| traits.and_then(|t| t.get(key)).and_then(Value::as_str).map(str::to_owned);
                analysis.identified.insert(user_id.to_owned());
                analysis.emails.extend(trait_text("email"));
                analysis.countries.extend(trait_text("country"));
                if let Some(city) = trait_text("city") {
                    analysis.cities.entry(user_id.to_owned()).or_default().insert(city);
                }
                if trait_text("birthday").is_some_and(|b| b.len() == 10 && upcoming.contains(&b[5..].to_owned())) {
                    analysis.upcoming_birthdays.insert(user_id.to_owned());
                }
                for key in ["name", "first_name", "last_name", "email", "locale", "currency", "timezone", "created_at"]
                {
                    if trait_text(key).is_none() {
                        analysis.problem(format!("identify without trait {key}: {raw}"));
                    }
                }
            }
            "alias" => {
                if message.previous_id.is_none() || user_id.is_none() {
                    analysis.problem(format!("alias without previousId or userId: {raw}"));
                }
            }
            _ => analysis.problem(format!("unknown type: {raw}")),
        }
    }
    analysis
}

/// The head of a message as the generator lays it out: `type`, `messageId`, `timestamp`,
/// `userId`, `anonymousId`, `previousId`, `event`, and the first two properties.
#[derive(Debug, Default)]
struct Head<'a> {
    /// Call type.
    kind: &'a str,
    /// Message id.
    #[allow(dead_code, reason = "read to check the layout; uniqueness is checked on the parsed shop")]
    message_id: &'a str,
    /// Timestamp text.
    timestamp: &'a str,
    /// User id, if any.
    user_id: Option<&'a str>,
    /// Anonymous id.
    anonymous_id: &'a str,
    /// Event name of a track call.
    event: Option<&'a str>,
    /// `cart_id` of "Product Added", or of "Order Completed" (its second property).
    cart_id: Option<&'a str>,
}

/// Reads the head of a message by position, relying on the generator's fixed key order and
/// on the fixed widths of ids and timestamps.
///
/// Parsing a third of a million messages with serde takes tens of seconds in a debug build;
/// reading the first hundred bytes of each by position takes a fraction of one. The medium
/// shop's full parse is what checks the shape (and `the_positional_scan_agrees_with_the_full_parse`
/// checks this reader against it); if the layout ever changes, this returns `None` and the
/// threshold test fails loudly instead of passing vacuously.
fn read_head(raw: &str) -> Option<Head<'_>> {
    /// Consumes `prefix` from the front of `rest`, if it is there.
    fn expect(rest: &mut &str, prefix: &str) -> Option<()> {
        let tail = rest.strip_prefix(prefix)?;
        *rest = tail;
        Some(())
    }
    /// Consumes a value of known width.
    fn fixed<'a>(rest: &mut &'a str, width: usize) -> Option<&'a str> {
        let (found, tail) = (rest.get(..width)?, rest.get(width..)?);
        *rest = tail;
        Some(found)
    }
    /// Consumes a short value up to its closing quote.
    fn short<'a>(rest: &mut &'a str) -> Option<&'a str> {
        let length = (1..24).find(|&i| rest.as_bytes().get(i) == Some(&b'"'))?;
        fixed(rest, length)
    }
    let mut rest = raw;
    expect(&mut rest, "{\"type\":\"")?;
    let kind = short(&mut rest)?;
    expect(&mut rest, "\",\"messageId\":\"")?;
    let message_id = fixed(&mut rest, 29)?;
    expect(&mut rest, "\",\"timestamp\":\"")?;
    let timestamp = fixed(&mut rest, 24)?;
    let user_id = match expect(&mut rest, "\",\"userId\":\"") {
        Some(()) => Some(short(&mut rest)?),
        None => None,
    };
    expect(&mut rest, "\",\"anonymousId\":\"")?;
    let anonymous_id = fixed(&mut rest, 36)?;
    if expect(&mut rest, "\",\"previousId\":\"").is_some() {
        fixed(&mut rest, 36)?;
    }
    let mut event = None;
    let mut cart_id = None;
    if expect(&mut rest, "\",\"event\":\"").is_some() {
        if expect(&mut rest, "Product Added\",\"properties\":{\"cart_id\":\"").is_some() {
            event = Some("Product Added");
            cart_id = Some(fixed(&mut rest, 21)?);
        } else if expect(&mut rest, "Order Completed\",\"properties\":{\"order_id\":\"").is_some() {
            event = Some("Order Completed");
            fixed(&mut rest, 20)?;
            expect(&mut rest, "\",\"cart_id\":\"")?;
            cart_id = Some(fixed(&mut rest, 21)?);
        } else {
            event = Some("other");
        }
    }
    Some(Head { kind, message_id, timestamp, user_id, anonymous_id, event, cart_id })
}

/// What the threshold tests read from the default shop: message types, the order of
/// timestamps, carts and orders, all from the messages' heads.
fn scan(shop: &DemoShop) -> Analysis {
    let mut analysis = Analysis::default();
    let mut previous = "";
    let mut counts = BTreeMap::new();
    for raw in &shop.messages {
        let Some(head) = read_head(raw) else {
            analysis.problem(format!("unexpected layout: {raw}"));
            continue;
        };
        // The timestamps share one fixed-width format, so text order is time order.
        if head.timestamp < previous {
            analysis.out_of_order += 1;
        }
        if head.timestamp < shop.summary.start.as_str() || head.timestamp > shop.summary.end.as_str() {
            analysis.outside_window += 1;
        }
        previous = head.timestamp;
        *counts.entry(head.kind).or_insert(0) += 1;
        match head.event {
            Some("Product Added") => analysis.carts.extend(head.cart_id.map(str::to_owned)),
            Some("Order Completed") => {
                let customer = head.user_id.unwrap_or(head.anonymous_id);
                analysis.order(customer, millis(head.timestamp).unwrap_or(0), head.cart_id);
            }
            _ => {}
        }
    }
    analysis.types = counts.into_iter().map(|(kind, n)| (kind.to_owned(), n)).collect();
    analysis
}

/// A 1,000-person shop and the analysis of every one of its messages, built once.
fn medium_shop() -> &'static (DemoShop, Analysis) {
    static SHOP: OnceLock<(DemoShop, Analysis)> = OnceLock::new();
    SHOP.get_or_init(|| {
        let shop = generate(&DemoConfig { n_users: 1000, ..DemoConfig::default() });
        let analysis = analyse(&shop);
        (shop, analysis)
    })
}

/// The default shop and its threshold scan, built once.
fn default_shop() -> &'static (DemoShop, Analysis) {
    static SHOP: OnceLock<(DemoShop, Analysis)> = OnceLock::new();
    SHOP.get_or_init(|| {
        let shop = generate(&DemoConfig::default());
        let analysis = scan(&shop);
        (shop, analysis)
    })
}

/// Customers with three or more orders whose median gap between orders is 20 to 40 days.
fn customers_on_a_monthly_cadence(analysis: &Analysis) -> usize {
    analysis
        .orders
        .values()
        .filter(|times| times.len() >= 3)
        .filter(|times| {
            let mut gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64 / DAY_MS as f64).collect();
            (20.0..=40.0).contains(&median(&mut gaps))
        })
        .count()
}

/// Customers with two or more orders, none in the 90 days before the end.
fn lapsed_customers(shop: &DemoShop, analysis: &Analysis) -> usize {
    let cutoff = millis(&shop.summary.end).unwrap_or(0) - 90 * DAY_MS;
    analysis.orders.values().filter(|t| t.len() >= 2 && t.iter().all(|&at| at < cutoff)).count()
}

#[test]
fn the_same_seed_gives_byte_identical_output() {
    let first = generate(&small_config(7));
    let second = generate(&small_config(7));
    assert!(!first.messages.is_empty());
    assert_eq!(first.messages, second.messages);
    assert_eq!(first.products, second.products);
    assert_eq!(first.summary, second.summary);
}

#[test]
fn the_output_does_not_depend_on_the_number_of_threads() {
    let one = generate_with_threads(&small_config(5), 1);
    let three = generate_with_threads(&small_config(5), 3);
    assert_eq!(one.messages, three.messages);
    assert_eq!(one.summary, three.summary);
}

#[test]
fn a_different_seed_gives_a_different_history() {
    let first = generate(&small_config(7));
    let second = generate(&small_config(8));
    assert_ne!(first.messages, second.messages);
    assert_ne!(first.products, second.products);
}

#[test]
fn adding_people_leaves_the_earlier_people_unchanged() {
    let fewer = generate(&DemoConfig { n_users: 50, ..small_config(3) });
    let more = generate(&DemoConfig { n_users: 60, ..small_config(3) });
    let more: BTreeSet<&String> = more.messages.iter().collect();
    assert!(fewer.messages.iter().all(|m| more.contains(m)));
}

#[test]
fn the_default_shop_meets_the_issue_thresholds() {
    let (shop, analysis) = default_shop();
    let summary = &shop.summary;
    assert!(analysis.problems.is_empty(), "{:#?}", analysis.problems);
    assert!(shop.products.len() >= 500, "{} products", shop.products.len());
    assert!(summary.n_categories >= 12, "{} leaf categories", summary.n_categories);
    assert!(summary.n_top_level_categories >= 10, "{} top-level categories", summary.n_top_level_categories);
    assert!(summary.n_users >= 5000);
    assert!(summary.countries.len() >= 5, "countries {:?}", summary.countries);
    assert!(summary.currencies.len() >= 5, "currencies {:?}", summary.currencies);
    assert!(summary.timezones.len() >= 8, "time zones {:?}", summary.timezones);
    let n_track_and_page = analysis.types.get("track").unwrap_or(&0) + analysis.types.get("page").unwrap_or(&0);
    assert!(n_track_and_page >= 200_000, "{n_track_and_page} track and page calls");
    let identified_share = summary.n_identified_users as f64 / summary.n_users as f64;
    assert!((0.65..0.75).contains(&identified_share), "{identified_share} identified");
    let aliases = summary.n_alias_calls;
    assert!((15..=120).contains(&aliases), "{aliases} alias calls");
}

#[test]
fn the_positional_scan_agrees_with_the_full_parse() {
    let (shop, analysis) = medium_shop();
    let scanned = scan(shop);
    assert!(scanned.problems.is_empty(), "{:#?}", scanned.problems);
    assert_eq!(scanned.types, analysis.types);
    assert_eq!(scanned.carts, analysis.carts);
    assert_eq!(scanned.ordered_carts, analysis.ordered_carts);
    assert_eq!(scanned.orders, analysis.orders);
}

#[test]
fn message_ids_are_unique() {
    // Ids are a bijection of (person, sequence) by construction (see `wire`); this checks the
    // fully parsed shop.
    let (_, analysis) = medium_shop();
    assert_eq!(analysis.duplicate_ids, 0);
}

#[test]
fn messages_are_sorted_and_inside_the_window() {
    for (_, analysis) in [default_shop(), medium_shop()] {
        assert_eq!(analysis.out_of_order, 0);
        assert_eq!(analysis.outside_window, 0);
    }
}

#[test]
fn most_carts_are_abandoned() {
    for (shop, analysis) in [default_shop(), medium_shop()] {
        let abandoned = analysis.carts.difference(&analysis.ordered_carts).count();
        let share = abandoned as f64 / analysis.carts.len() as f64;
        assert!(share >= 0.6, "{abandoned} of {} carts abandoned", analysis.carts.len());
        assert_eq!(analysis.carts.len(), shop.summary.n_carts);
        assert_eq!(abandoned, shop.summary.n_abandoned_carts);
    }
}

#[test]
fn repeat_buyers_reorder_on_a_personal_monthly_cadence() {
    let (_, analysis) = default_shop();
    let on_cadence = customers_on_a_monthly_cadence(analysis);
    assert!(on_cadence >= 100, "{on_cadence} customers reorder every 20 to 40 days");
}

#[test]
fn lapsed_customers_stopped_ordering_ninety_days_before_the_end() {
    let (shop, analysis) = default_shop();
    let lapsed = lapsed_customers(shop, analysis);
    assert!(lapsed >= 100, "{lapsed} lapsed customers");
    assert_eq!(lapsed, shop.summary.n_lapsed_customers);
}

#[test]
fn every_message_is_a_well_formed_segment_call() {
    let (_, analysis) = medium_shop();
    assert!(analysis.problems.is_empty(), "{:#?}", analysis.problems);
    let types: BTreeSet<&str> = analysis.types.keys().map(String::as_str).collect();
    assert_eq!(types, BTreeSet::from(["alias", "identify", "page", "track"]));
}

#[test]
fn track_events_use_the_segment_ecommerce_names() {
    let (_, analysis) = medium_shop();
    for event in analysis.events.keys() {
        assert!(KNOWN_EVENTS.contains(&event.as_str()), "unexpected event {event}");
    }
    for event in KNOWN_EVENTS {
        assert!(analysis.events.get(event).is_some_and(|&n| n > 0), "no {event}");
    }
}

#[test]
fn every_email_address_is_on_an_example_domain() {
    let (_, analysis) = medium_shop();
    assert!(analysis.emails.len() >= 600);
    for email in &analysis.emails {
        let domain = email.rsplit('@').next().unwrap_or("");
        assert!(["example.com", "example.org", "example.net"].contains(&domain), "{email}");
        assert!(email.is_ascii(), "{email}");
    }
}

#[test]
fn ip_addresses_come_from_the_documentation_ranges() {
    let (_, analysis) = medium_shop();
    for ip in &analysis.ips {
        assert!(["192.0.2.", "198.51.100.", "203.0.113."].iter().any(|p| ip.starts_with(p)), "{ip}");
    }
}

#[test]
fn upcoming_birthdays_make_a_small_non_empty_segment() {
    let (shop, analysis) = medium_shop();
    let share = analysis.upcoming_birthdays.len() as f64 / analysis.identified.len() as f64;
    assert!((0.01..0.06).contains(&share), "{share} of identified users have a birthday soon");
    assert_eq!(analysis.upcoming_birthdays.len(), shop.summary.n_upcoming_birthdays);
}

#[test]
fn anonymous_browsing_before_signup_stays_linked_to_the_account() {
    let (_, analysis) = medium_shop();
    assert!(analysis.identity_violations.is_empty(), "{:#?}", analysis.identity_violations.first());
    assert!(analysis.linked_after_browsing >= 100, "{} signups after browsing", analysis.linked_after_browsing);
}

#[test]
fn some_customers_change_their_traits() {
    let (_, analysis) = medium_shop();
    let movers = analysis.cities.values().filter(|cities| cities.len() >= 2).count();
    assert!(movers >= 10, "{movers} customers moved");
}

#[test]
fn newsletter_opens_cluster_at_each_readers_personal_hour() {
    let (_, analysis) = medium_shop();
    // The mean resultant length of the open hours on the 24-hour circle: 1 when every open
    // happens at the same hour, near 0 when opens are spread around the clock.
    let mut concentrations: Vec<f64> = analysis
        .open_hours
        .values()
        .filter(|hours| hours.len() >= 5)
        .map(|hours| {
            let angle = |h: f64| h / 24.0 * std::f64::consts::TAU;
            let x: f64 = hours.iter().map(|&h| angle(h).cos()).sum();
            let y: f64 = hours.iter().map(|&h| angle(h).sin()).sum();
            (x * x + y * y).sqrt() / hours.len() as f64
        })
        .collect();
    assert!(concentrations.len() >= 100, "{} regular readers", concentrations.len());
    let median_concentration = median(&mut concentrations);
    assert!(median_concentration > 0.6, "median concentration {median_concentration}");
}

#[test]
fn consent_shares_match_the_documented_mix() {
    let (_, analysis) = medium_shop();
    let n = analysis.first_consent.len() as f64;
    let share =
        |predicate: fn(&[bool; 5]) -> bool| analysis.first_consent.values().filter(|c| predicate(c)).count() as f64 / n;
    let all_granted = share(|c| c.iter().all(|&granted| granted));
    let analytics_denied = share(|c| !c[0]);
    let personalization_denied = share(|c| !c[1]);
    assert!((0.74..0.86).contains(&all_granted), "{all_granted} grant everything");
    assert!((0.01..0.06).contains(&analytics_denied), "{analytics_denied} deny analytics");
    assert!((0.02..0.09).contains(&personalization_denied), "{personalization_denied} deny personalization");
    let revocations = analysis.events.get("Segment Consent Preference Updated").copied().unwrap_or(0);
    assert!(revocations >= 8, "{revocations} revocations");
}

#[test]
fn campaigns_and_referrers_bring_visitors() {
    let (_, analysis) = medium_shop();
    assert!(analysis.with_campaign >= 400, "{} messages with a campaign", analysis.with_campaign);
    for referrer in ["https://www.google.com/", "https://www.instagram.com/", "https://news.ycombinator.com/"] {
        assert!(analysis.referrers.contains(referrer), "no visits from {referrer}");
    }
}

#[test]
fn the_summary_agrees_with_the_messages() {
    let (shop, analysis) = medium_shop();
    let summary = &shop.summary;
    let count = |kind: &str| analysis.types.get(kind).copied().unwrap_or(0);
    assert_eq!(summary.n_events, shop.messages.len());
    assert_eq!(summary.n_track_events, count("track"));
    assert_eq!(summary.n_page_events, count("page"));
    assert_eq!(summary.n_identify_calls, count("identify"));
    assert_eq!(summary.n_alias_calls, count("alias"));
    assert_eq!(summary.n_identified_users, analysis.identified.len());
    assert_eq!(summary.n_orders, analysis.events.get("Order Completed").copied().unwrap_or(0));
    assert_eq!(summary.n_email_opens, analysis.events.get("Email Opened").copied().unwrap_or(0));
    assert_eq!(summary.n_one_time_buyers, analysis.orders.values().filter(|t| t.len() == 1).count());
    assert_eq!(summary.n_lapsed_customers, lapsed_customers(shop, analysis));
    let repeat = analysis.orders.values().filter(|t| t.len() >= 2).count() - summary.n_lapsed_customers;
    assert_eq!(summary.n_repeat_buyers, repeat);
}

#[test]
fn no_people_give_an_empty_history_and_a_catalog() {
    let shop = generate(&DemoConfig { n_users: 0, ..DemoConfig::default() });
    assert!(shop.messages.is_empty());
    assert_eq!(shop.products.len(), 600);
    assert_eq!(shop.summary.n_events, 0);
}

#[test]
fn extreme_configurations_are_clamped_instead_of_failing() {
    let shop = generate(&DemoConfig { days: 0, end_ms: i64::MAX, n_users: 20, n_products: 0, seed: 1 });
    assert_eq!(shop.summary.days, 1);
    assert_eq!(shop.summary.end, "2200-01-01T00:00:00.000Z");
    assert_eq!(shop.summary.n_orders, 0);
    assert!(shop.products.is_empty());
    let analysis = analyse(&shop);
    assert!(analysis.problems.is_empty(), "{:#?}", analysis.problems);
    assert_eq!(analysis.outside_window, 0);
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn generating_the_default_shop_is_fast_in_release() {
    let started = std::time::Instant::now();
    let shop = generate(&DemoConfig::default());
    let elapsed = started.elapsed();
    let bytes: usize = shop.messages.iter().map(String::len).sum();
    println!("generated {} messages ({} MB) in {elapsed:?}", shop.messages.len(), bytes / 1_000_000);
    println!("{}", serde_json::to_string_pretty(&shop.summary).unwrap_or_default());
    // A fingerprint of the whole output (FNV-1a), to compare runs across machines and builds.
    let fingerprint = shop
        .messages
        .iter()
        .flat_map(|m| m.bytes().chain([b'\n']))
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3));
    println!("fingerprint {fingerprint:016x}");
    if !cfg!(debug_assertions) {
        assert!(elapsed.as_secs_f64() < 2.0, "took {elapsed:?}");
    }
}
