//! A deterministic generator of a realistic demo shop: a catalog, and six months of the
//! Segment Tracking API messages its visitors would have produced.
//!
//! Every later feature of Regard (segments, recommendations, BG/NBD churn prediction,
//! triggers, experiments) is demonstrated on this data, so the history is built from a
//! generative model of *people* rather than from independent random events: each person has
//! a country, a time zone, favourite categories, a buying habit, consent choices and an email
//! routine, and their messages follow from those. This page describes the model so that an
//! operator looking at the demo knows what the segments and models ought to find.
//!
//! [`generate`] takes a [`DemoConfig`] and returns a [`DemoShop`]: the products, the messages
//! (compact JSON strings sorted by timestamp) and a [`DemoSummary`] of what was generated. The
//! same configuration always yields byte-identical output.
//!
//! # The catalog
//!
//! 600 products by default over 23 leaf categories in 13 top-level ones (Coffee & Tea,
//! Kitchen, Sports, Outdoor, Home, Books, Electronics, Beauty, Health & Wellness, Baby,
//! Pet Supplies, Toys, Garden). Product ids run `sku-0001`, `sku-0002`, ... in shuffled category
//! order; names are brand + adjective + noun from per-category word lists ("Altura Dark Roast
//! Kenya AA"); prices are drawn log-uniformly within each category's range (coffee 8–25 USD,
//! mattresses 400–1,500 USD) and rounded the way shops print them. About 5% are out of stock.
//! Coffee, tea, vitamins, skin care and pet food are consumable; mattresses, furniture,
//! coffee makers, headphones and smart-home devices are durable; the rest are unknown (see
//! [`Durability`](regard_core::catalog::Durability)). Attributes carry the brand and, per category, a roast, firmness,
//! colour or size. Within a category, popularity follows a Zipf-like law (weight
//! `1 / rank^0.9`), so "most viewed" has a head and a long tail.
//!
//! Catalog prices are in USD. Visitors see, add to cart and pay in their own currency at the
//! fixed rates of [`EXCHANGE_RATES`] (EUR 0.92, GBP 0.79, JPY 150, CAD 1.36, AUD 1.52 per
//! USD), so event prices and revenues are in the visitor's currency, as in a real
//! multi-currency storefront; a deployment of the demo should configure the same rates.
//!
//! # The people
//!
//! 5,000 people by default, from ten countries: US 34%, GB 12%, DE 12%, FR 8%, JP 6%,
//! CA 6%, AU 6%, NL, ES and IT 5% each. Each lives in one of the country's cities, which fixes
//! their time zone (New York, Chicago and Los Angeles time in the US, Toronto and Vancouver in
//! Canada, Sydney, Melbourne and Brisbane in Australia, one zone elsewhere), their locale
//! (`fr-CA` in Montréal) and their currency. Names come from per-country lists, with their
//! accents; email addresses are `first.last.N@example.com` (or `.org`, `.net`), folded to
//! ASCII, on domains reserved for examples. IP addresses come from the documentation ranges
//! 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24. 55% browse on a phone or tablet.
//!
//! 70% create an account and are identified as `user-00001`, ...; the other 30% stay
//! anonymous visitors, known only by the UUID-like `anonymousId` of their browser. About 3%
//! of people have their birthday in the six days after the end of the history, so a
//! "birthday this week" segment is small but never empty.
//!
//! # How people buy
//!
//! Account holders follow one of five archetypes; the shares are chosen so that each
//! segment the product demonstrates has hundreds of members:
//!
//! | archetype | share | what they do |
//! |---|---|---|
//! | heavy browser | 30% | many long sessions, many carts, never an order; a quarter drift away after some weeks |
//! | one-time buyer | 28% | browses a little, orders once from a favourite category |
//! | repeat buyer | 17% | reorders a consumable on a personal cadence all along |
//! | lapsed customer | 9% | reordered on a cadence early on, then stopped for good |
//! | durable buyer | 16% | researches and buys a durable, then keeps looking |
//!
//! Of the anonymous visitors, 15% check out once as guests and the rest only browse; almost
//! half of those come once or twice within a few days and never again.
//!
//! Repeat and lapsed customers have a habit: coffee every 28 days (40% of them), vitamins
//! every 30 (20%), dog food every 21 (20%), tea every 35 (10%) or skin care every 42 (10%).
//! Each person's own cadence is drawn around that mean (coffee 28 ± 3 days), each gap varies
//! by another ± 1.5 days, and 6% of cycles are skipped (a doubled gap), so BG/NBD and
//! "due for a reorder" logic see real but imperfect rhythms. They mostly reorder the same
//! product, now and then try another of the category, and sometimes add something else.
//! Three quarters of repeat buyers were customers before the window opened; the others join
//! during it. Lapsed customers order two to five times in the first half and their last
//! order is at least 92 days before the end; they keep browsing for up to a month after,
//! then fall silent, and open newsletters at 30% of their former rate.
//!
//! Durable buyers are after a mattress (30%), a sofa or table (20%), a coffee maker (20%),
//! headphones (15%) or a smart-home device (15%). Two to five long research sessions in the
//! three weeks before the purchase compare many products of that category; 30% also buy an
//! accessory; one to three sessions in the fortnight after look again at the same category
//! or at accessories. That is the "mattress ads after the mattress" trap recommendations
//! must avoid. 35% place one more, ordinary order at another time.
//!
//! # Sessions
//!
//! Visits are planned first and rendered in time order, at least 30 minutes apart (pauses
//! inside a visit never exceed 19 minutes), so a sessionizer with the usual 30-minute
//! timeout recovers exactly the planned sessions. Visits happen at the person's local hours:
//! each person has a peak (evening for 40%, lunch for 25%, morning for 17%, afternoon for
//! the rest); 70% of visits fall within about an hour of it, the others anywhere between
//! 7:00 and 23:30.
//!
//! A browsing session lands on a page, then takes a geometric number of steps (2.6 on
//! average, 4 for heavy browsers): 10% searches ("Products Searched" with the category's
//! typical queries or a brand), 20% category lists ("Product List Viewed", sometimes moving
//! to a related category), 70% product pages ("Product Viewed"). 80% of sessions centre on
//! one of the person's one to three favourite categories, weighted towards the first; related
//! categories (coffee and coffee makers, mattresses and bedding, running and fitness, ...)
//! are favoured together, so co-view and co-purchase models have signal. Viewed in-stock
//! products go into a cart with a probability of 20–28% per view; a cart left in a session
//! is abandoned, after a look at the cart page in 55% of cases, and 20% of those even start
//! checkout. On top of that, 60% of purchases are preceded, two to 72 hours earlier, by a
//! visit that puts the same product in a cart and leaves: the abandoned cart that an
//! abandoned-cart trigger would chase. About 65% of all carts end abandoned.
//!
//! A purchase session finds the product (from the home page, a bookmark or a search), adds
//! it, views the cart, checks out and completes the order: "Cart Viewed", "Checkout Started"
//! and "Order Completed" carry `order_id`, the lines with prices in the visitor's currency,
//! `revenue`, `total` (with shipping, free above the equivalent of 50 USD) and, for 12% of
//! orders, a `coupon` with its `discount`. Cart and checkout events also carry a custom
//! `cart_id`, linking every cart to its order or to its abandonment.
//!
//! How people arrive: a new visitor's first session comes from an ad campaign in 45% of cases
//! (matched to their favourite categories: google/cpc/"running-shoes",
//! facebook/social/"coffee-club", ...), from an organic referrer in 30% (Google, Instagram,
//! Hacker News, Bing, Reddit) and directly otherwise; later sessions come from campaigns in
//! 7%, referrers in 25% and directly in the rest. `context.campaign` carries the UTM
//! parameters while the visitor is on the landing page, as analytics.js reads them from the
//! page URL.
//!
//! # Identity
//!
//! Customers from before the window are recognised by their browser from their first
//! message and log in (an identify call) during their first visit. New visitors browse
//! anonymously for up to two visits, then sign up ("Sign Up" page, identify, "Signed Up"),
//! or create their account at their first checkout; the identify call carries both the
//! `userId` and the `anonymousId` their earlier browsing used, so that history stays linked.
//! From then on every message of that browser carries the `userId`. Identify traits are
//! name, first_name, last_name, email, locale, currency, country, city, timezone, birthday,
//! created_at, newsletter and, for coffee lovers, preferred_roast. 12% of account holders
//! later edit their account (a move to another city, possibly another time zone; a new
//! favourite roast; an unsubscription), so trait history exists. 3.5% also browse on a
//! second device, anonymously; for a third of those the second device ends with a login and
//! an alias call (`previousId` = that device's anonymous id) that merges its history.
//!
//! # Consent
//!
//! Every message carries `context.consent.categoryPreferences` with the five categories
//! Analytics, Personalization, Advertising, Email and Profiling, as Segment's consent
//! management sends them. 80% of people grant everything; 12% deny Advertising, Email or
//! both; 5% deny Personalization (half of them Profiling too); 3% deny Analytics (with
//! Advertising and Profiling). Choices hold for the whole history, except for 2% of people
//! who withdraw email consent around the middle of it, in the privacy settings: a
//! "Segment Consent Preference Updated" event, and no newsletter after it. Messages are sent
//! whatever the choices, as with Segment; respecting them is the engine's job, and the demo
//! shows it doing so.
//!
//! # Email
//!
//! A newsletter goes out every Tuesday at 14:00 UTC with a rotating theme (coffee club,
//! sale, running season, mattress week, wellness week, ...), to account holders who
//! subscribed (65% of those who consented to email). Each reader has an open rate between
//! 12% and 65% and a preferred reading hour in their own time zone (early morning for 60%,
//! lunch or evening for the rest): about 72% of opens ("Email Opened") happen at the first such
//! hour after the send, give or take 25 minutes, about 13% a day later at that hour, and 15%
//! at a random moment within a day and a half. That is the signal send-time optimization learns.
//! 8–30% of opens, more when the theme is one of the reader's favourite categories, lead to
//! "Email Link Clicked" and a session tagged newsletter/email/*campaign id*. Email events
//! come from the email service, so their context has no page.
//!
//! # The messages
//!
//! Each message is one compact JSON object with `type` (identify, track, page or alias),
//! `messageId` (`demo-` and 24 hex digits, unique by construction), `timestamp` (RFC 3339 UTC
//! with milliseconds), `userId` once identified, `anonymousId` always, `event` and
//! `properties` for track calls, `name` and `properties` for page calls, `traits` for
//! identify calls, `previousId` for alias calls, and `context` (ip, locale, timezone,
//! userAgent, page, campaign, consent). Track event names follow Segment's e-commerce spec
//! exactly. All timestamps lie within the window, and the list is sorted by timestamp, then
//! by person.
//!
//! With the default configuration (seed 42, 180 days ending 2026-11-29T00:00:00Z) the shop
//! has about 315,000 messages (166,000 track and 145,000 page calls, 4,000 identify calls,
//! a few dozen aliases) in 32,000 sessions: 6,200 orders, 17,500 carts of which 11,300 were
//! abandoned, 1,600 one-time buyers, 750 repeat buyers, 330 lapsed customers and 13,400
//! newsletter opens. It is generated in under a second in a release build on two cores.
//!
//! # Determinism
//!
//! Each person draws everything from their own ChaCha8 stream of the seed (stream
//! `index + 1`; the catalog uses stream 0) and never from thread-local randomness or hash
//! iteration order, and the final order is (timestamp, person, position). The output thus
//! depends only on the configuration: not on the number of threads (people are simulated on
//! all cores) nor on the machine. Time zones use their daylight-saving rules written out in
//! this crate rather than the host's time-zone database, whose version would otherwise leak
//! into the output. Out-of-range configurations are clamped rather than rejected: the end to
//! years 2000–2200 and the length to 1–3,650 days.

mod catalog;
mod people;
mod simulate;
mod wire;
mod zones;

pub use catalog::EXCHANGE_RATES;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use regard_core::catalog::Product;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// 2000-01-01T00:00:00Z: the earliest accepted end of history.
const MIN_END_MS: i64 = 946_684_800_000;
/// 2200-01-01T00:00:00Z: the latest accepted end of history.
const MAX_END_MS: i64 = 7_258_118_400_000;
/// Ten years: the longest accepted history, which bounds memory and keeps ids unique.
const MAX_DAYS: u32 = 3650;
/// 2026-11-29T00:00:00Z, the fixed default end of history.
const DEFAULT_END_MS: i64 = 1_795_910_400_000;

/// What to generate: the seed, the window of history and the size of the shop.
///
/// Every field is explicit so that a demo can be reproduced exactly: the same configuration
/// always yields byte-identical output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Last instant of the generated history, Unix milliseconds; clamped to years 2000–2200.
    ///
    /// The default is a fixed date, never "now", so that the default output never changes;
    /// callers that want a history ending today set it themselves.
    pub end_ms: i64,
    /// Length of the history in days, clamped to 1–3650.
    pub days: u32,
    /// Number of people to simulate, identified customers and anonymous visitors together.
    pub n_users: usize,
    /// Number of products in the catalog.
    pub n_products: usize,
}

impl Default for DemoConfig {
    /// Seed 42, 180 days ending 2026-11-29T00:00:00Z, 5,000 people, 600 products.
    fn default() -> Self {
        DemoConfig { seed: 42, end_ms: DEFAULT_END_MS, days: 180, n_users: 5000, n_products: 600 }
    }
}

/// The generated shop: a catalog and the event history of its visitors.
#[derive(Debug, Clone)]
pub struct DemoShop {
    /// The catalog, in product id order (`sku-0001` first).
    pub products: Vec<Product>,
    /// Segment Tracking API messages (identify, track, page, alias), each a compact JSON
    /// object, sorted by timestamp.
    pub messages: Vec<String>,
    /// Counts describing what was generated, for logs and the demo's landing page.
    pub summary: DemoSummary,
}

/// Counts describing a generated shop, so operators can see what the demo contains without
/// reading a quarter of a million messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoSummary {
    /// The seed used.
    pub seed: u64,
    /// First instant of the window, RFC 3339.
    pub start: String,
    /// Last instant of the window, RFC 3339.
    pub end: String,
    /// Length of the window in days.
    pub days: u32,
    /// Products in the catalog.
    pub n_products: usize,
    /// Products currently out of stock.
    pub n_out_of_stock_products: usize,
    /// Leaf categories holding at least one product.
    pub n_categories: usize,
    /// Top-level categories holding at least one product.
    pub n_top_level_categories: usize,
    /// People simulated.
    pub n_users: usize,
    /// People who identified (signed up or logged in) at least once.
    pub n_identified_users: usize,
    /// People who never identified and stay anonymous visitors.
    pub n_anonymous_visitors: usize,
    /// Messages of every type.
    pub n_events: usize,
    /// Track calls.
    pub n_track_events: usize,
    /// Page calls.
    pub n_page_events: usize,
    /// Identify calls.
    pub n_identify_calls: usize,
    /// Alias calls.
    pub n_alias_calls: usize,
    /// Web sessions.
    pub n_sessions: usize,
    /// Carts that received at least one product.
    pub n_carts: usize,
    /// Carts that never became an order.
    pub n_abandoned_carts: usize,
    /// Completed orders.
    pub n_orders: usize,
    /// People with exactly one order.
    pub n_one_time_buyers: usize,
    /// People with two or more orders, the last within 90 days of the end.
    pub n_repeat_buyers: usize,
    /// People with two or more orders and none in the last 90 days.
    pub n_lapsed_customers: usize,
    /// Newsletter opens.
    pub n_email_opens: usize,
    /// Newsletter clicks.
    pub n_email_clicks: usize,
    /// Identified people whose birthday falls in the six days after the end.
    pub n_upcoming_birthdays: usize,
    /// Countries of the people, ISO 3166 codes, sorted.
    pub countries: Vec<String>,
    /// Currencies of the people, ISO 4217 codes, sorted.
    pub currencies: Vec<String>,
    /// Time zones of the people, IANA names, sorted.
    pub timezones: Vec<String>,
}

/// Generates the demo shop described by `config`.
///
/// Deterministic: each person's history comes from their own random stream (the seed's
/// ChaCha8 stream number `index + 1`; the catalog uses stream 0), and the messages are
/// finally ordered by (timestamp, person, position), so the output depends on nothing but
/// the configuration: not on the number of threads, and adding people does not change the
/// earlier ones. People are simulated on all available cores.
pub fn generate(config: &DemoConfig) -> DemoShop {
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    generate_with_threads(config, n_threads)
}

/// [`generate`] on a given number of threads; the output must not depend on it.
fn generate_with_threads(config: &DemoConfig, n_threads: usize) -> DemoShop {
    let end_ms = config.end_ms.clamp(MIN_END_MS, MAX_END_MS);
    let days = config.days.clamp(1, MAX_DAYS);
    let window = simulate::Window { start_ms: end_ms - i64::from(days) * zones::DAY_MS, end_ms };

    let mut catalog_rng = ChaCha8Rng::seed_from_u64(config.seed);
    let shop_catalog = catalog::generate_catalog(config.n_products, &mut catalog_rng);
    let newsletters = simulate::plan_newsletters(window);
    let shared = simulate::Shared {
        catalog: &shop_catalog,
        keys: wire::IdKeys::new(config.seed),
        window,
        newsletters: &newsletters,
    };

    let chunk = config.n_users.div_ceil(n_threads.max(1)).max(1);
    let mut histories: Vec<Vec<(i64, String)>> = Vec::new();
    let mut tally = Tally::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..config.n_users)
            .step_by(chunk)
            .map(|first| {
                let people = first..(first + chunk).min(config.n_users);
                let shared = &shared;
                scope.spawn(move || simulate_people(shared, config.seed, people))
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok((part_histories, part)) => {
                    histories.extend(part_histories);
                    tally.merge(part);
                }
                // A panic in a worker is a bug in the generator; it is passed on unchanged.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let messages = merge_by_time(histories);

    let summary = DemoSummary {
        seed: config.seed,
        start: wire::format_timestamp(window.start_ms),
        end: wire::format_timestamp(window.end_ms),
        days,
        n_products: shop_catalog.products.len(),
        n_out_of_stock_products: shop_catalog.products.iter().filter(|p| !p.in_stock).count(),
        n_categories: shop_catalog.by_leaf.iter().filter(|products| !products.is_empty()).count(),
        n_top_level_categories: shop_catalog
            .products
            .iter()
            .filter_map(|p| p.category_path.first())
            .collect::<BTreeSet<_>>()
            .len(),
        n_users: config.n_users,
        n_identified_users: tally.n_identified_users,
        n_anonymous_visitors: config.n_users - tally.n_identified_users,
        n_events: messages.len(),
        n_track_events: tally.stats.n_track,
        n_page_events: tally.stats.n_page,
        n_identify_calls: tally.stats.n_identify,
        n_alias_calls: tally.stats.n_alias,
        n_sessions: tally.stats.n_sessions,
        n_carts: tally.stats.n_carts,
        n_abandoned_carts: tally.stats.n_abandoned_carts,
        n_orders: tally.stats.n_orders,
        n_one_time_buyers: tally.n_one_time_buyers,
        n_repeat_buyers: tally.n_repeat_buyers,
        n_lapsed_customers: tally.n_lapsed_customers,
        n_email_opens: tally.stats.n_email_opens,
        n_email_clicks: tally.stats.n_email_clicks,
        n_upcoming_birthdays: tally.n_upcoming_birthdays,
        countries: tally.countries.into_iter().map(str::to_owned).collect(),
        currencies: tally.currencies.into_iter().map(str::to_owned).collect(),
        timezones: tally.timezones.into_iter().map(str::to_owned).collect(),
    };
    DemoShop { products: shop_catalog.products, messages, summary }
}

/// Summary counts gathered per worker and merged; every part is order-independent.
#[derive(Debug, Default)]
struct Tally {
    /// Sums of the per-person counters (`identified` and `last_order_ms` unused).
    stats: simulate::UserStats,
    /// People who identified.
    n_identified_users: usize,
    /// Identified people with a birthday soon after the end.
    n_upcoming_birthdays: usize,
    /// People with one order.
    n_one_time_buyers: usize,
    /// People with two or more orders, the last recent.
    n_repeat_buyers: usize,
    /// People with two or more orders, none in the last 90 days.
    n_lapsed_customers: usize,
    /// Country codes seen.
    countries: BTreeSet<&'static str>,
    /// Currency codes seen.
    currencies: BTreeSet<&'static str>,
    /// Time zones seen.
    timezones: BTreeSet<&'static str>,
}

impl Tally {
    /// Adds another worker's counts to these.
    fn merge(&mut self, other: Tally) {
        let (mine, theirs) = (&mut self.stats, other.stats);
        mine.n_identify += theirs.n_identify;
        mine.n_alias += theirs.n_alias;
        mine.n_track += theirs.n_track;
        mine.n_page += theirs.n_page;
        mine.n_sessions += theirs.n_sessions;
        mine.n_carts += theirs.n_carts;
        mine.n_abandoned_carts += theirs.n_abandoned_carts;
        mine.n_orders += theirs.n_orders;
        mine.n_email_opens += theirs.n_email_opens;
        mine.n_email_clicks += theirs.n_email_clicks;
        self.n_identified_users += other.n_identified_users;
        self.n_upcoming_birthdays += other.n_upcoming_birthdays;
        self.n_one_time_buyers += other.n_one_time_buyers;
        self.n_repeat_buyers += other.n_repeat_buyers;
        self.n_lapsed_customers += other.n_lapsed_customers;
        self.countries.extend(other.countries);
        self.currencies.extend(other.currencies);
        self.timezones.extend(other.timezones);
    }
}

/// Merges per-person histories, each already in time order, into one list ordered by
/// (timestamp, person, position in the person's history).
///
/// A heap over the people's next messages does this in O(n log people), several times
/// faster than sorting all messages, because it never compares two messages of one person.
fn merge_by_time(histories: Vec<Vec<(i64, String)>>) -> Vec<String> {
    let total = histories.iter().map(Vec::len).sum();
    let mut merged = Vec::with_capacity(total);
    let mut streams: Vec<std::vec::IntoIter<(i64, String)>> = histories.into_iter().map(Vec::into_iter).collect();
    let mut heads: Vec<Option<String>> = vec![None; streams.len()];
    let mut heap = BinaryHeap::with_capacity(streams.len());
    for (person, stream) in streams.iter_mut().enumerate() {
        if let Some((at, json)) = stream.next() {
            heads[person] = Some(json);
            heap.push(Reverse((at, person)));
        }
    }
    while let Some(Reverse((_, person))) = heap.pop() {
        merged.extend(heads[person].take());
        if let Some((at, json)) = streams[person].next() {
            heads[person] = Some(json);
            heap.push(Reverse((at, person)));
        }
    }
    merged
}

/// Simulates a contiguous range of people; returns their histories in person order, and
/// their counts.
fn simulate_people(
    shared: &simulate::Shared<'_>,
    seed: u64,
    people: std::ops::Range<usize>,
) -> (Vec<Vec<(i64, String)>>, Tally) {
    let mut histories = Vec::new();
    let mut tally = Tally::default();
    let lapse_cutoff = shared.window.end_ms - 90 * zones::DAY_MS;
    for index in people {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index as u64 + 1);
        let person = people::draw_person(index, shared.window.end_ms, &mut rng);
        tally.countries.insert(person.country.code);
        tally.currencies.insert(person.country.currency_code);
        tally.timezones.insert(person.city.zone.name);
        let birthday_soon = person.birthday_soon;
        let history = simulate::simulate(shared, person, rng);
        let stats = history.stats;
        tally.n_identified_users += usize::from(stats.identified);
        tally.n_upcoming_birthdays += usize::from(stats.identified && birthday_soon);
        match (stats.n_orders, stats.last_order_ms) {
            (1, _) => tally.n_one_time_buyers += 1,
            (2.., Some(last)) if last < lapse_cutoff => tally.n_lapsed_customers += 1,
            (2.., _) => tally.n_repeat_buyers += 1,
            _ => {}
        }
        tally.merge(Tally { stats, ..Tally::default() });
        histories.push(history.messages);
    }
    (histories, tally)
}

#[cfg(test)]
mod lib_tests;
