//! The behaviour model: plans each person's visits over the window, then renders every visit
//! into the Segment messages a real storefront and email service would have sent.
//!
//! Planning and rendering are separate so that the rhythm of a history (when someone comes,
//! when they reorder, when they read email) is decided from the person's traits alone, while
//! the click-by-click content of each visit is filled in afterwards. Visits are rendered in
//! time order with at least thirty minutes of silence between them, so that any sessionizer
//! with the usual thirty-minute timeout recovers exactly the planned sessions.

use crate::catalog::{cents, leaf, ShopCatalog, EXCHANGE_RATES, LEAVES, SHOP_URL};
use crate::people::{normal, pick_weighted, random_leaf, related_leaf, Archetype, City, Person};
use crate::wire::{
    format_timestamp, write_message, write_timestamp, Campaign, CategoryPreferences, Consent, Context, IdKeys,
    LineItem, Message, PageInfo, Properties, Traits,
};
use crate::zones::{format_date, Zone, DAY_MS, HOUR_MS, MINUTE_MS};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use regard_core::catalog::Durability;
use serde_json::value::RawValue;

/// Silence that separates two visits; the usual web-analytics session timeout.
const SESSION_GAP_MS: i64 = 30 * MINUTE_MS;
/// Title suffix of every page.
const SITE_NAME: &str = "Regard Demo Shop";

/// The span of history being generated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// First instant of the history, Unix milliseconds.
    pub start_ms: i64,
    /// Last instant of the history, Unix milliseconds.
    pub end_ms: i64,
}

impl Window {
    /// Length in days.
    fn days(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / DAY_MS as f64
    }
}

/// One newsletter send, shared by all subscribers.
#[derive(Debug)]
pub(crate) struct Newsletter {
    /// When the email service sent it.
    pub send_ms: i64,
    /// `utm_campaign` and `campaign_id`: theme slug plus send date.
    pub campaign_id: String,
    /// Subject line.
    pub subject: &'static str,
    /// The category the email features, if any.
    pub leaf: Option<usize>,
}

/// Newsletter themes in rotation: slug, subject and featured category.
const NEWSLETTER_THEMES: [(&str, &str, Option<usize>); 10] = [
    ("coffee-club", "Your next bag of coffee is waiting ☕", Some(leaf::COFFEE)),
    ("spring-sale", "Sale: up to 30% off across the shop", None),
    ("running-season", "New season, new running shoes", Some(leaf::RUNNING_SHOES)),
    ("sleep-better", "Sleep better tonight: mattress week", Some(leaf::MATTRESSES)),
    ("wellness-week", "Wellness week: vitamins & more", Some(leaf::VITAMINS)),
    ("pet-pantry", "Stock up the pet pantry", Some(leaf::DOG_FOOD)),
    ("outdoor-escape", "Weekend escape: hiking essentials", Some(leaf::HIKING)),
    ("new-arrivals", "New arrivals this week", None),
    ("smart-living", "Smarter home, simpler life", Some(leaf::SMART_HOME)),
    ("glow-up", "Skin care picks for the season", Some(leaf::SKIN_CARE)),
];

/// Plans the weekly newsletter: every Tuesday at 14:00 UTC inside the window.
pub(crate) fn plan_newsletters(window: Window) -> Vec<Newsletter> {
    let start_day = window.start_ms.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday, so Tuesdays are the days with (day + 4) % 7 == 2.
    let first_tuesday = start_day + (2 - (start_day + 4)).rem_euclid(7);
    let mut newsletters = Vec::new();
    let mut day = first_tuesday;
    loop {
        let send_ms = day * DAY_MS + 14 * HOUR_MS;
        if send_ms > window.end_ms {
            break;
        }
        if send_ms >= window.start_ms {
            let week = day.div_euclid(7);
            let (slug, subject, leaf) = NEWSLETTER_THEMES[week.rem_euclid(NEWSLETTER_THEMES.len() as i64) as usize];
            newsletters.push(Newsletter {
                send_ms,
                campaign_id: format!("{slug}-{}", format_date(day)),
                subject,
                leaf,
            });
        }
        day += 7;
    }
    newsletters
}

/// A paid or partner campaign that brings visitors to a category.
struct AdCampaign {
    /// `utm_source`.
    source: &'static str,
    /// `utm_medium`.
    medium: &'static str,
    /// `utm_campaign`.
    name: &'static str,
    /// `utm_term`.
    term: Option<&'static str>,
    /// `utm_content`.
    content: Option<&'static str>,
    /// The referrer the click arrives with.
    referrer: &'static str,
    /// The category it advertises.
    leaf: usize,
}

/// The shop's acquisition campaigns.
const AD_CAMPAIGNS: [AdCampaign; 8] = [
    AdCampaign {
        source: "google",
        medium: "cpc",
        name: "running-shoes",
        term: Some("trail running shoes"),
        content: None,
        referrer: "https://www.google.com/",
        leaf: leaf::RUNNING_SHOES,
    },
    AdCampaign {
        source: "google",
        medium: "cpc",
        name: "mattress-sale",
        term: Some("memory foam mattress"),
        content: None,
        referrer: "https://www.google.com/",
        leaf: leaf::MATTRESSES,
    },
    AdCampaign {
        source: "facebook",
        medium: "social",
        name: "coffee-club",
        term: None,
        content: Some("carousel"),
        referrer: "https://www.facebook.com/",
        leaf: leaf::COFFEE,
    },
    AdCampaign {
        source: "instagram",
        medium: "social",
        name: "skin-care-launch",
        term: None,
        content: Some("story"),
        referrer: "https://www.instagram.com/",
        leaf: leaf::SKIN_CARE,
    },
    AdCampaign {
        source: "bing",
        medium: "cpc",
        name: "vitamins",
        term: Some("vitamin d"),
        content: None,
        referrer: "https://www.bing.com/",
        leaf: leaf::VITAMINS,
    },
    AdCampaign {
        source: "google",
        medium: "cpc",
        name: "dog-food",
        term: Some("grain free dog food"),
        content: None,
        referrer: "https://www.google.com/",
        leaf: leaf::DOG_FOOD,
    },
    AdCampaign {
        source: "partner",
        medium: "affiliate",
        name: "outdoor-blog",
        term: None,
        content: Some("gear-guide"),
        referrer: "https://outdoors.example.com/",
        leaf: leaf::HIKING,
    },
    AdCampaign {
        source: "facebook",
        medium: "social",
        name: "smart-home-week",
        term: None,
        content: Some("video"),
        referrer: "https://www.facebook.com/",
        leaf: leaf::SMART_HOME,
    },
];

/// Organic referrers and their shares among referred visits.
const ORGANIC_REFERRERS: [(&str, f64); 5] = [
    ("https://www.google.com/", 0.55),
    ("https://www.instagram.com/", 0.12),
    ("https://news.ycombinator.com/", 0.08),
    ("https://www.bing.com/", 0.10),
    ("https://www.reddit.com/", 0.15),
];

/// Coupons and the share of the subtotal they take off.
const COUPONS: [(&str, f64); 3] = [("WELCOME10", 0.10), ("SAVE15", 0.15), ("VIP20", 0.20)];

/// What the rest of the crate reads about one person's generated history.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UserStats {
    /// Sent at least one identify call.
    pub identified: bool,
    /// Identify calls.
    pub n_identify: usize,
    /// Alias calls.
    pub n_alias: usize,
    /// Track calls.
    pub n_track: usize,
    /// Page calls.
    pub n_page: usize,
    /// Web sessions.
    pub n_sessions: usize,
    /// Carts that received at least one product.
    pub n_carts: usize,
    /// Carts never turned into an order.
    pub n_abandoned_carts: usize,
    /// Completed orders.
    pub n_orders: usize,
    /// When the last order was completed.
    pub last_order_ms: Option<i64>,
    /// Newsletter opens.
    pub n_email_opens: usize,
    /// Newsletter clicks.
    pub n_email_clicks: usize,
}

/// One person's generated history.
#[derive(Debug)]
pub(crate) struct UserHistory {
    /// `(timestamp, JSON)` pairs in time order.
    pub messages: Vec<(i64, String)>,
    /// Counts for the summary.
    pub stats: UserStats,
}

/// What a rendering step needs that does not change per person.
#[derive(Debug)]
pub(crate) struct Shared<'a> {
    /// The catalog.
    pub catalog: &'a ShopCatalog,
    /// Id keys of this seed.
    pub keys: IdKeys,
    /// The history's span.
    pub window: Window,
    /// The newsletter sends.
    pub newsletters: &'a [Newsletter],
}

/// Where and how a visit identifies the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identify {
    /// It does not.
    No,
    /// A returning customer logs in (their browser already knew them).
    Login,
    /// A visitor creates an account.
    SignUp,
    /// A visitor creates an account while checking out.
    AtCheckout,
}

/// A change a customer makes to their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TraitChange {
    /// Moves to another city of the same country.
    Move,
    /// Unsubscribes from the newsletter.
    NewsletterOff,
    /// Changes their favourite roast.
    Roast(&'static str),
}

/// What a planned visit is for.
#[derive(Debug, Clone, PartialEq)]
enum VisitKind {
    /// Browsing, optionally centred on one leaf.
    Browse(Option<usize>),
    /// Researching a durable before buying it: long, comparative sessions.
    Research(usize),
    /// Buying these `(product, quantity)` lines.
    Purchase(Vec<(usize, u32)>),
    /// Putting a product in the cart and leaving, hours or days before buying it.
    Abandon(usize),
    /// Opening (and maybe clicking) a newsletter.
    Email {
        /// Index into the newsletter sends.
        newsletter: usize,
        /// Whether the open leads to a click and a session.
        clicks: bool,
    },
    /// Withdrawing email consent in the privacy settings.
    ConsentChange,
    /// Editing the account.
    TraitChange(TraitChange),
    /// Browsing on a second device, which may end by logging in there.
    SecondDevice {
        /// Whether the visit ends with an alias call linking the device.
        alias: bool,
    },
}

/// A planned visit.
#[derive(Debug, Clone)]
struct Visit {
    /// Planned start; rendering may push it later to keep visits apart.
    at: i64,
    /// What it is for.
    kind: VisitKind,
    /// Whether it identifies the visitor.
    identify: Identify,
}

/// What changes about a person as their history unfolds.
#[derive(Debug)]
struct State {
    /// The browser knows their user id.
    identified: bool,
    /// Current consent.
    consent: CategoryPreferences,
    /// Current city.
    city: &'static City,
    /// Current newsletter subscription.
    newsletter: bool,
    /// Current favourite roast.
    preferred_roast: Option<&'static str>,
    /// Device in use (index into `Person::devices`).
    device: usize,
    /// The second device has been linked by an alias call.
    second_device_linked: bool,
    /// The `created_at` trait.
    created_at: String,
}

/// The parts of one message that vary from call to call; the rest comes from the person.
#[derive(Debug, Default)]
struct Call<'b> {
    /// `identify`, `track`, `page` or `alias`.
    kind: &'static str,
    /// Track event name.
    event: Option<&'b str>,
    /// Page name.
    name: Option<&'b str>,
    /// Track or page properties.
    properties: Option<Properties<'b>>,
    /// Identify traits.
    traits: Option<&'b Traits>,
    /// Alias previous id.
    previous_id: Option<&'b str>,
    /// The session's context as JSON; `None` builds a page-less one (email events).
    context: Option<&'b [u8]>,
}

/// Messages written so far and the counters that go with them.
#[derive(Debug)]
struct Output {
    /// Id keys of the seed.
    keys: IdKeys,
    /// The person's index, the high bits of their ids.
    user: u64,
    /// Messages sent, the low bits of message ids.
    sequence: u64,
    /// Carts created, for cart ids.
    n_cart_ids: u64,
    /// Orders started, for order ids.
    n_order_ids: u64,
    /// Emails received, for email ids.
    n_email_ids: u64,
    /// `(timestamp, JSON)` in time order.
    messages: Vec<(i64, String)>,
    /// Reused serialization buffer, so each message costs one exact-size allocation instead
    /// of a series of doublings.
    scratch: Vec<u8>,
    /// Reused buffer of the current message id.
    message_id: String,
    /// Reused buffer of the current timestamp.
    timestamp: String,
    /// Counters.
    stats: UserStats,
}

/// Serializes `context` for the person's current device, locale and consent.
fn context_json(
    person: &Person,
    state: &State,
    page: Option<&RawValue>,
    campaign: Option<&Campaign>,
) -> Option<Vec<u8>> {
    let device = person.devices.get(state.device).or(person.devices.first())?;
    let context = Context {
        ip: &device.ip,
        locale: person.locale(state.city),
        timezone: state.city.zone.name,
        user_agent: device.user_agent,
        page,
        campaign,
        consent: Consent { category_preferences: state.consent },
    };
    let mut json = Vec::with_capacity(768);
    serde_json::to_writer(&mut json, &context).ok()?;
    Some(json)
}

impl Output {
    /// Serializes one message in the person's current state and appends it.
    fn emit(&mut self, person: &Person, state: &State, at: i64, call: Call<'_>) {
        let device = person.devices.get(state.device).or(person.devices.first());
        let Some(device) = device else { return };
        let linked = if state.device == 0 { state.identified } else { state.second_device_linked };
        let user_id = if linked { person.user_id.as_deref() } else { None };
        let built;
        let context = match call.context {
            Some(context) => context,
            None => {
                built = context_json(person, state, None, None);
                match built.as_deref() {
                    Some(context) => context,
                    None => return,
                }
            }
        };
        self.keys.write_message_id(&mut self.message_id, self.user, self.sequence);
        self.sequence += 1;
        write_timestamp(&mut self.timestamp, at);
        let message = Message {
            kind: call.kind,
            message_id: &self.message_id,
            timestamp: &self.timestamp,
            user_id,
            anonymous_id: &device.anonymous_id,
            previous_id: call.previous_id,
            event: call.event,
            name: call.name,
            properties: call.properties,
            traits: call.traits,
        };
        // These structs hold only strings, numbers and booleans under string keys, which
        // serde_json always serializes to UTF-8; an error here would be a bug, and the message
        // is dropped rather than the whole generation.
        if write_message(&mut self.scratch, &message, context).is_err() {
            return;
        }
        let Ok(json) = String::from_utf8(self.scratch.clone()) else {
            return;
        };
        match call.kind {
            "track" => self.stats.n_track += 1,
            "page" => self.stats.n_page += 1,
            "identify" => {
                self.stats.n_identify += 1;
                self.stats.identified = true;
            }
            _ => self.stats.n_alias += 1,
        }
        self.messages.push((at, json));
    }
}

/// How a web session begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landing {
    /// The home page.
    Home,
    /// A category page.
    Category(usize),
    /// A product page.
    Product(usize),
    /// A search for something in a leaf.
    Search(usize),
}

/// How a visitor arrives at the shop.
#[derive(Debug)]
struct Arrival {
    /// UTM parameters, for campaign traffic.
    campaign: Option<Campaign>,
    /// The referring URL, empty for direct traffic.
    referrer: String,
    /// The first page.
    landing: Landing,
}

/// A web session in progress.
#[derive(Debug)]
struct Session {
    /// Clock of the session.
    t: i64,
    /// The page the visitor is on.
    page: Option<PageInfo>,
    /// The same page as JSON: a page is quoted by every call made from it, so it is
    /// serialized once.
    page_json: Option<Box<RawValue>>,
    /// The context of calls made from the current page, serialized once per page view.
    context_json: Option<Vec<u8>>,
    /// UTM parameters while the visitor is still on the landing page.
    campaign: Option<Campaign>,
    /// The referrer of the landing page.
    external_referrer: String,
    /// The leaf the session is about.
    focus: usize,
    /// The session's cart, once something was added.
    cart: Option<(String, Vec<(usize, u32)>)>,
}

/// Knobs of a browsing session.
#[derive(Debug, Clone, Copy)]
struct Browsing {
    /// Mean number of steps after landing.
    mean_steps: f64,
    /// Probability of adding a viewed in-stock product to the cart.
    add_rate: f64,
}

/// Simulates one person and returns their messages and counters.
pub(crate) fn simulate(shared: &Shared<'_>, person: Person, rng: ChaCha8Rng) -> UserHistory {
    let coffee_lover = person.favourites.contains(&leaf::COFFEE);
    let state = State {
        identified: person.pre_existing,
        consent: person.consent,
        city: person.city,
        newsletter: person.newsletter,
        preferred_roast: None,
        device: 0,
        second_device_linked: false,
        created_at: String::new(),
    };
    let output = Output {
        keys: shared.keys,
        user: person.index as u64,
        sequence: 0,
        n_cart_ids: 0,
        n_order_ids: 0,
        n_email_ids: 0,
        messages: Vec::with_capacity(64),
        scratch: Vec::with_capacity(2048),
        message_id: String::with_capacity(32),
        timestamp: String::with_capacity(32),
        stats: UserStats::default(),
    };
    let mut simulator = Simulator { shared, person, state, rng, out: output, staple: None };
    simulator.staple = simulator.person.habit.and_then(|h| shared.catalog.pick_in_stock(h.leaf, &mut simulator.rng));
    if coffee_lover {
        let roast = simulator.staple.and_then(|p| shared.catalog.items.get(p)).and_then(|item| item.roast);
        simulator.state.preferred_roast =
            Some(roast.unwrap_or(["light", "medium", "dark"][simulator.rng.gen_range(0..3)]));
    }
    if simulator.person.pre_existing {
        let days_before = simulator.rng.gen_range(20.0..1000.0);
        let created = shared.window.start_ms - (days_before * DAY_MS as f64) as i64;
        simulator.state.created_at = format_timestamp(created);
    }
    let visits = simulator.plan();
    simulator.render_all(visits);
    UserHistory { messages: simulator.out.messages, stats: simulator.out.stats }
}

/// One person's simulation.
struct Simulator<'s> {
    /// Catalog, keys, window and newsletters.
    shared: &'s Shared<'s>,
    /// The person.
    person: Person,
    /// What has changed about them.
    state: State,
    /// Their random stream.
    rng: ChaCha8Rng,
    /// What they sent.
    out: Output,
    /// The product a repeat buyer reorders.
    staple: Option<usize>,
}

impl<'s> Simulator<'s> {
    /// A uniform draw in `[low, high)`, or `low` when the range is empty.
    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        if high > low {
            self.rng.gen_range(low..high)
        } else {
            low
        }
    }

    /// A draw from a log-normal distribution with the given median.
    fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * normal(&mut self.rng)).exp()
    }

    /// `at`, or the same time of day on the first later day that is not before `limit`.
    ///
    /// Moving by whole days keeps the local hour that was drawn for the visit; pinning early
    /// visits to `limit` itself would pile sessions up at one instant.
    fn not_before(at: i64, limit: i64) -> i64 {
        if at >= limit {
            at
        } else {
            at + ((limit - at - 1) / DAY_MS + 1) * DAY_MS
        }
    }

    /// The instant `days` days after `from`.
    fn after_days(from: i64, days: f64) -> i64 {
        from + (days * DAY_MS as f64) as i64
    }

    /// The zone the person lives in at a planned instant, given a planned move.
    fn zone_at(&self, at: i64, moved_at: Option<i64>) -> Zone {
        match moved_at {
            Some(moved) if at >= moved => self.person.other_city.zone,
            _ => self.person.city.zone,
        }
    }

    /// Moves an instant to a plausible browsing hour of the person's local day.
    fn at_browse_hour(&mut self, around: i64) -> i64 {
        let hour = if self.rng.gen::<f64>() < 0.7 {
            self.person.browse_hour + 1.1 * normal(&mut self.rng)
        } else {
            self.uniform(7.0, 23.5)
        };
        self.person.city.zone.at_local_hour(around, hour.rem_euclid(24.0))
    }

    /// Visits of a Poisson process of `rate_per_day` between two instants.
    fn poisson_visits(&mut self, from: i64, until: i64, rate_per_day: f64, kind: VisitKind, visits: &mut Vec<Visit>) {
        if rate_per_day <= 0.0 {
            return;
        }
        let mut t = from;
        loop {
            let gap_days = -(1.0 - self.rng.gen::<f64>()).ln() / rate_per_day;
            t = Self::after_days(t, gap_days);
            if t >= until {
                break;
            }
            let at = self.at_browse_hour(t);
            visits.push(Visit { at, kind: kind.clone(), identify: Identify::No });
        }
    }

    /// The lines of one reorder: the staple, now and then another of its leaf or an extra.
    fn reorder_lines(&mut self, habit_leaf: usize) -> Vec<(usize, u32)> {
        let catalog = self.shared.catalog;
        let mut lines = Vec::with_capacity(2);
        let product = if self.rng.gen::<f64>() < 0.1 { catalog.pick_in_stock(habit_leaf, &mut self.rng) } else { None };
        if let Some(product) = product.or(self.staple) {
            let quantity = if self.rng.gen::<f64>() < 0.25 { 2 } else { 1 };
            lines.push((product, quantity));
        }
        if self.rng.gen::<f64>() < 0.15 {
            if let Some(extra) = self.favourite_product() {
                if lines.iter().all(|&(p, _)| p != extra) {
                    lines.push((extra, 1));
                }
            }
        }
        lines
    }

    /// An in-stock product from one of the person's favourite leaves.
    fn favourite_product(&mut self) -> Option<usize> {
        let leaf = self.favourite_leaf();
        self.shared.catalog.pick_in_stock(leaf, &mut self.rng)
    }

    /// A leaf to browse: mostly a favourite (the first most), sometimes anything.
    fn favourite_leaf(&mut self) -> usize {
        if self.rng.gen::<f64>() < 0.2 || self.person.favourites.is_empty() {
            return random_leaf(&mut self.rng);
        }
        let weights = [0.6, 0.25, 0.15];
        let n = self.person.favourites.len().min(weights.len());
        let index = pick_weighted(weights[..n].iter().copied(), &mut self.rng);
        self.person.favourites[index]
    }

    /// Times of orders on the person's cadence from `first` on, at most `max_orders` of them,
    /// none after `until`.
    fn cadence_times(&mut self, first: i64, until: i64, max_orders: usize) -> Vec<i64> {
        let mut times = Vec::new();
        let mut t = first;
        while t <= until && times.len() < max_orders {
            times.push(self.at_browse_hour(t));
            // Day-to-day noise around the personal cadence, and now and then a skipped cycle
            // (travel, a bag bought elsewhere) that doubles the gap.
            let mut gap = self.person.cadence_days + 1.5 * normal(&mut self.rng);
            if self.rng.gen::<f64>() < 0.06 {
                gap += self.person.cadence_days;
            }
            t = Self::after_days(t, gap.max(5.0));
        }
        times
    }

    /// Plans every visit of the person's history, in time order.
    fn plan(&mut self) -> Vec<Visit> {
        let window = self.shared.window;
        let days = window.days();
        let start = window.start_ms;
        let end = window.end_ms;
        let from = if self.person.pre_existing {
            start
        } else {
            let offset = self.uniform(0.0, 0.92 * days);
            Self::after_days(start, offset)
        };
        let mut until = end;
        let mut visits = Vec::new();
        let browse = VisitKind::Browse(None);

        match self.person.archetype {
            Archetype::Browser => {
                if self.person.user_id.is_none() && self.rng.gen::<f64>() < 0.45 {
                    // One-and-done visitors: one or two visits within a few days, never again.
                    let n = if self.rng.gen::<f64>() < 0.3 { 2 } else { 1 };
                    for _ in 0..n {
                        let offset = self.uniform(0.0, 3.0);
                        let at = self.at_browse_hour(Self::after_days(from, offset));
                        visits.push(Visit { at, kind: browse.clone(), identify: Identify::No });
                    }
                } else {
                    if self.rng.gen::<f64>() < 0.25 {
                        let lifetime = -50.0 * (1.0 - self.rng.gen::<f64>()).ln();
                        until = Self::after_days(from, lifetime).min(end);
                    }
                    let median = if self.person.user_id.is_some() { 0.035 } else { 0.022 };
                    let rate = self.log_normal(median, 0.6);
                    self.poisson_visits(from, until, rate, browse.clone(), &mut visits);
                }
            }
            Archetype::OneTimeBuyer => {
                let rate = self.log_normal(0.014, 0.5);
                self.poisson_visits(from, until, rate, browse.clone(), &mut visits);
                let offset = self.uniform(0.2, (until - from) as f64 / DAY_MS as f64);
                let at = self.at_browse_hour(Self::after_days(from, offset));
                let n_lines = pick_weighted([0.65, 0.25, 0.10].into_iter(), &mut self.rng) + 1;
                let mut lines: Vec<(usize, u32)> = Vec::new();
                for _ in 0..n_lines {
                    if let Some(product) = self.favourite_product() {
                        if lines.iter().all(|&(p, _)| p != product) {
                            lines.push((product, 1));
                        }
                    }
                }
                if !lines.is_empty() {
                    visits.push(Visit { at, kind: VisitKind::Purchase(lines), identify: Identify::No });
                }
            }
            Archetype::RepeatBuyer => {
                let rate = self.log_normal(0.01, 0.5);
                self.poisson_visits(from, until, rate, browse.clone(), &mut visits);
                let first_offset = if self.person.pre_existing {
                    self.uniform(0.0, self.person.cadence_days)
                } else {
                    self.uniform(0.2, 6.0)
                };
                let times = self.cadence_times(Self::after_days(from, first_offset), end, usize::MAX);
                self.push_reorders(&times, &mut visits);
            }
            Archetype::LapsedCustomer => {
                let first_offset = self.uniform(0.0, self.person.cadence_days.min(15.0));
                let n_orders = self.rng.gen_range(2..=5);
                let stop_by = end - 92 * DAY_MS;
                let mut times = self.cadence_times(Self::after_days(start, first_offset), stop_by, n_orders);
                if times.len() < 2 {
                    // The window is too short for a lapse to show; the customer still ordered twice.
                    times = self.cadence_times(Self::after_days(start, first_offset), end, 2);
                }
                let last = times.last().copied().unwrap_or(start);
                let linger = self.uniform(3.0, 30.0);
                until = Self::after_days(last, linger).min(end);
                let rate = self.log_normal(0.025, 0.5);
                self.poisson_visits(start, until, rate, browse.clone(), &mut visits);
                self.push_reorders(&times, &mut visits);
            }
            Archetype::DurableBuyer => {
                let rate = self.log_normal(0.018, 0.5);
                self.poisson_visits(from, until, rate, browse.clone(), &mut visits);
                let durable_leaf = self.person.durable_leaf.unwrap_or(leaf::MATTRESSES);
                let span = (until - from) as f64 / DAY_MS as f64;
                let offset = self.uniform((10.0_f64).min(span * 0.5), (span - 5.0).max(span * 0.6));
                let purchase_at = self.at_browse_hour(Self::after_days(from, offset));
                let n_research = self.rng.gen_range(2..=5);
                for _ in 0..n_research {
                    let before = self.uniform(1.0, 21.0);
                    let at = Self::not_before(self.at_browse_hour(Self::after_days(purchase_at, -before)), from);
                    visits.push(Visit { at, kind: VisitKind::Research(durable_leaf), identify: Identify::No });
                }
                let catalog = self.shared.catalog;
                if let Some(product) = catalog.pick_in_stock(durable_leaf, &mut self.rng) {
                    let mut lines = vec![(product, 1)];
                    if self.rng.gen::<f64>() < 0.3 {
                        let accessory_leaf = related_leaf(durable_leaf, &mut self.rng).unwrap_or(durable_leaf);
                        if let Some(accessory) = catalog.pick_in_stock(accessory_leaf, &mut self.rng) {
                            if accessory != product {
                                lines.push((accessory, 1));
                            }
                        }
                    }
                    visits.push(Visit { at: purchase_at, kind: VisitKind::Purchase(lines), identify: Identify::No });
                }
                // After the purchase people keep looking: at the same category (reviews, the
                // model they did not buy) and at accessories for it.
                for _ in 0..self.rng.gen_range(1..=3) {
                    let after = self.uniform(1.0, 14.0);
                    let focus = if self.rng.gen::<bool>() {
                        durable_leaf
                    } else {
                        related_leaf(durable_leaf, &mut self.rng).unwrap_or(durable_leaf)
                    };
                    let at = self.at_browse_hour(Self::after_days(purchase_at, after));
                    visits.push(Visit { at, kind: VisitKind::Browse(Some(focus)), identify: Identify::No });
                }
                if self.rng.gen::<f64>() < 0.35 {
                    let offset = self.uniform(0.0, span);
                    let at = self.at_browse_hour(Self::after_days(from, offset));
                    if let Some(product) = self.favourite_product() {
                        visits.push(Visit {
                            at,
                            kind: VisitKind::Purchase(vec![(product, 1)]),
                            identify: Identify::No,
                        });
                    }
                }
            }
        }

        // Many purchases are preceded by a cart left behind a few hours or days earlier: the
        // shopper compares prices or waits for payday. These carts are what abandoned-cart
        // triggers exist for.
        let mut abandons = Vec::new();
        for visit in &visits {
            if let VisitKind::Purchase(lines) = &visit.kind {
                if self.rng.gen::<f64>() < 0.6 {
                    let hours_before = self.uniform(2.0, 72.0);
                    let at = visit.at - (hours_before * HOUR_MS as f64) as i64;
                    if let Some(&(product, _)) = lines.first() {
                        abandons.push(Visit { at, kind: VisitKind::Abandon(product), identify: Identify::No });
                    }
                }
            }
        }
        visits.extend(abandons.into_iter().filter(|v| v.at >= start));

        if !self.person.pre_existing || visits.is_empty() {
            // The first visit of a new visitor opens their history (and is where acquisition
            // campaigns show); everybody gets at least one visit.
            let at = Self::not_before(self.at_browse_hour(from), from);
            visits.push(Visit { at, kind: browse, identify: Identify::No });
        }
        // Visits after the end are dropped when rendering.
        for visit in &mut visits {
            visit.at = Self::not_before(visit.at, start);
        }
        visits.sort_by_key(|v| v.at);

        if self.person.user_id.is_none() {
            self.plan_consent_change(None, &mut visits);
            visits.sort_by_key(|v| v.at);
            return visits;
        }

        // Decide where the person identifies.
        let identify_index = if self.person.pre_existing {
            visits[0].identify = Identify::Login;
            0
        } else {
            let chosen = self.rng.gen_range(0..=2).min(visits.len() - 1);
            match visits[..=chosen].iter().position(|v| matches!(v.kind, VisitKind::Purchase(_))) {
                Some(purchase) => {
                    visits[purchase].identify = Identify::AtCheckout;
                    purchase
                }
                None => {
                    visits[chosen].identify = Identify::SignUp;
                    chosen
                }
            }
        };
        let identify_at = if self.person.pre_existing { start } else { visits[identify_index].at };
        self.plan_account_extras(identify_at, until, &mut visits);
        visits.sort_by_key(|v| v.at);
        visits
    }

    /// Adds the purchase visits of a cadence.
    fn push_reorders(&mut self, times: &[i64], visits: &mut Vec<Visit>) {
        let Some(habit) = self.person.habit else {
            return;
        };
        for &at in times {
            let lines = self.reorder_lines(habit.leaf);
            if !lines.is_empty() {
                visits.push(Visit { at, kind: VisitKind::Purchase(lines), identify: Identify::No });
            }
        }
    }

    /// Plans the email-consent withdrawal of the people who make one; returns when.
    fn plan_consent_change(&mut self, not_before: Option<i64>, visits: &mut Vec<Visit>) -> Option<i64> {
        if !self.person.revokes_email {
            return None;
        }
        let window = self.shared.window;
        let offset = self.uniform(0.4, 0.6) * window.days();
        let mut at = self.at_browse_hour(Self::after_days(window.start_ms, offset));
        if let Some(not_before) = not_before {
            at = at.max(not_before + DAY_MS);
        }
        if at >= window.end_ms {
            return None;
        }
        visits.push(Visit { at, kind: VisitKind::ConsentChange, identify: Identify::No });
        Some(at)
    }

    /// Plans what only account holders do: account edits, consent changes, newsletters and
    /// second devices.
    fn plan_account_extras(&mut self, identify_at: i64, active_until: i64, visits: &mut Vec<Visit>) {
        let window = self.shared.window;
        let end = window.end_ms;
        let revoked_at = self.plan_consent_change(Some(identify_at), visits);

        let mut moved_at = None;
        let mut unsubscribed_at = None;
        if self.rng.gen::<f64>() < 0.12 {
            let span = (end - identify_at) as f64 / DAY_MS as f64;
            let offset = self.uniform(2.0, span);
            let at = self.at_browse_hour(Self::after_days(identify_at, offset));
            if at > identify_at && at < end {
                let roll = self.rng.gen::<f64>();
                let change = if roll < 0.2 && self.state.newsletter {
                    unsubscribed_at = Some(at);
                    TraitChange::NewsletterOff
                } else if roll < 0.45 && self.state.preferred_roast.is_some() {
                    let roasts = ["light", "medium", "dark"];
                    let current = self.state.preferred_roast.unwrap_or("medium");
                    let others: Vec<&'static str> = roasts.into_iter().filter(|&r| r != current).collect();
                    TraitChange::Roast(others[self.rng.gen_range(0..others.len())])
                } else {
                    moved_at = Some(at);
                    TraitChange::Move
                };
                visits.push(Visit { at, kind: VisitKind::TraitChange(change), identify: Identify::No });
            }
        }

        if self.person.newsletter && self.person.consent.email {
            let newsletters = self.shared.newsletters;
            for (index, newsletter) in newsletters.iter().enumerate() {
                let send = newsletter.send_ms;
                let stopped = |limit: Option<i64>| limit.is_some_and(|l| send >= l);
                if send <= identify_at + HOUR_MS || stopped(revoked_at) || stopped(unsubscribed_at) {
                    continue;
                }
                // People who drifted away still get the newsletter but rarely open it.
                let engagement = if send > active_until { 0.3 } else { 1.0 };
                if self.rng.gen::<f64>() >= self.person.open_rate * engagement {
                    continue;
                }
                let zone = self.zone_at(send, moved_at);
                let at = self.open_time(send, zone);
                let interested = newsletter.leaf.is_some_and(|l| self.person.favourites.contains(&l));
                let click_rate = (self.person.click_rate + if interested { 0.15 } else { 0.0 }) * engagement;
                let clicks = self.rng.gen::<f64>() < click_rate;
                if at < end {
                    visits.push(Visit {
                        at,
                        kind: VisitKind::Email { newsletter: index, clicks },
                        identify: Identify::No,
                    });
                }
            }
        }

        if self.person.devices.len() > 1 {
            let n = self.rng.gen_range(1..=3);
            let alias = self.rng.gen::<f64>() < 0.35;
            let mut times: Vec<i64> = (0..n)
                .map(|_| {
                    let span = (end - identify_at) as f64 / DAY_MS as f64;
                    let offset = self.uniform(0.0, span);
                    Self::not_before(self.at_browse_hour(Self::after_days(identify_at, offset)), identify_at)
                })
                .collect();
            times.sort_unstable();
            let last = times.len() - 1;
            for (i, at) in times.into_iter().enumerate() {
                visits.push(Visit {
                    at,
                    kind: VisitKind::SecondDevice { alias: alias && i == last },
                    identify: Identify::No,
                });
            }
        }
    }

    /// When someone opens a newsletter sent at `send`: mostly at their personal email hour
    /// (with some minutes of noise) on the first such hour after the send, sometimes a day
    /// later, sometimes whenever.
    fn open_time(&mut self, send: i64, zone: Zone) -> i64 {
        let earliest = send + 5 * MINUTE_MS;
        if self.rng.gen::<f64>() < 0.15 {
            let delay = self.uniform(0.0, 36.0);
            return earliest + (delay * HOUR_MS as f64) as i64;
        }
        let hour = (self.person.email_hour + 0.4 * normal(&mut self.rng)).rem_euclid(24.0);
        let mut at = zone.at_local_hour(earliest, hour);
        if at < earliest {
            at = zone.at_local_hour(earliest + DAY_MS, hour);
        }
        if self.rng.gen::<f64>() < 0.15 {
            at = zone.at_local_hour(at + DAY_MS, hour);
        }
        at
    }

    /// Renders the planned visits in order, keeping them at least a session gap apart and
    /// inside the window.
    fn render_all(&mut self, visits: Vec<Visit>) {
        let window = self.shared.window;
        let mut cursor = window.start_ms;
        for visit in visits {
            let mut begin = visit.at.max(window.start_ms);
            if begin < cursor {
                let wait = self.rng.gen_range(0..40 * MINUTE_MS);
                begin = cursor + wait;
            }
            if begin > window.end_ms {
                break;
            }
            let n_messages = self.out.messages.len();
            let stats = self.out.stats;
            let Some(finish) = self.render(visit, begin) else {
                continue;
            };
            if finish > window.end_ms {
                // The visit would run past the end of history; it is cut whole, so that the
                // history never holds half a checkout, and nothing later can fit either.
                self.out.messages.truncate(n_messages);
                self.out.stats = stats;
                break;
            }
            cursor = finish + SESSION_GAP_MS + 1;
        }
    }

    /// Renders one visit starting at `begin`; returns its last instant, or `None` when the
    /// visit turned out not to happen (an email to someone who unsubscribed meanwhile).
    fn render(&mut self, visit: Visit, begin: i64) -> Option<i64> {
        match visit.kind {
            VisitKind::Browse(focus) => {
                let browsing = self.browsing_knobs();
                Some(self.web_session(begin, focus, None, visit.identify, browsing))
            }
            VisitKind::Research(leaf) => {
                let browsing = Browsing { mean_steps: 7.0, add_rate: 0.05 };
                Some(self.web_session(begin, Some(leaf), None, visit.identify, browsing))
            }
            VisitKind::Purchase(lines) => Some(self.purchase_session(begin, &lines, visit.identify)),
            VisitKind::Abandon(product) => Some(self.abandon_session(begin, product, visit.identify)),
            VisitKind::Email { newsletter, clicks } => self.email_visit(begin, newsletter, clicks),
            VisitKind::ConsentChange => Some(self.consent_change(begin)),
            VisitKind::TraitChange(change) => self.trait_change(begin, change),
            VisitKind::SecondDevice { alias } => Some(self.second_device(begin, alias)),
        }
    }

    /// Browsing knobs by archetype: heavy browsers look at more and fill more carts.
    fn browsing_knobs(&self) -> Browsing {
        match self.person.archetype {
            Archetype::Browser if self.person.user_id.is_some() => Browsing { mean_steps: 4.0, add_rate: 0.28 },
            Archetype::Browser => Browsing { mean_steps: 2.6, add_rate: 0.20 },
            _ => Browsing { mean_steps: 2.6, add_rate: 0.25 },
        }
    }

    /// Think time between two pages: median about half a minute, never a session gap.
    fn think(&mut self, session: &mut Session) {
        // Capped at 19 minutes, so that a pause inside a session is always shorter than the
        // 30 minutes that separate sessions, with a clear margin.
        let seconds = (3.4 + 0.9 * normal(&mut self.rng)).exp().clamp(3.0, 1140.0);
        session.t += (seconds * 1000.0) as i64 + self.rng.gen_range(0..1000);
    }

    /// The short delay between a page load and the track call its page fires.
    fn tick(&mut self, session: &mut Session) {
        session.t += self.rng.gen_range(150..1500);
    }

    /// Navigates to a page and sends its `page` call.
    fn open_page(&mut self, session: &mut Session, name: &'static str, path: String, title: String, search: String) {
        let referrer = match &session.page {
            Some(previous) => {
                // Leaving the landing page drops its UTM parameters, as analytics.js reads them
                // from the current URL.
                session.campaign = None;
                previous.url.clone()
            }
            None => session.external_referrer.clone(),
        };
        let url = format!("{SHOP_URL}{path}{search}");
        let page = PageInfo { path, url, title, referrer, search };
        session.page_json = serde_json::value::to_raw_value(&page).ok();
        session.page = Some(page);
        self.refresh_context(session);
        let call = Call {
            kind: "page",
            name: Some(name),
            properties: session.page_json.as_deref().map(Properties::Page),
            context: session.context_json.as_deref(),
            ..Call::default()
        };
        self.out.emit(&self.person, &self.state, session.t, call);
    }

    /// Rebuilds the session's context after the page or the person's state changed.
    fn refresh_context(&self, session: &mut Session) {
        let page = session.page_json.as_deref();
        session.context_json = context_json(&self.person, &self.state, page, session.campaign.as_ref());
    }

    /// Sends a track call from the current page.
    fn track(&mut self, session: &mut Session, event: &'static str, properties: Properties<'_>) {
        self.tick(session);
        let call = Call {
            kind: "track",
            event: Some(event),
            properties: Some(properties),
            context: session.context_json.as_deref(),
            ..Call::default()
        };
        self.out.emit(&self.person, &self.state, session.t, call);
    }

    /// Sends an identify call with the current traits.
    fn identify(&mut self, session: &mut Session) {
        self.tick(session);
        let traits = self.traits();
        let call = Call {
            kind: "identify",
            traits: Some(&traits),
            context: session.context_json.as_deref(),
            ..Call::default()
        };
        self.out.emit(&self.person, &self.state, session.t, call);
    }

    /// The person's traits as they stand.
    fn traits(&self) -> Traits {
        let person = &self.person;
        Traits {
            name: format!("{} {}", person.first_name, person.last_name),
            first_name: person.first_name,
            last_name: person.last_name,
            email: person.email.clone(),
            locale: person.locale(self.state.city),
            currency: person.country.currency_code,
            country: person.country.code,
            city: self.state.city.name,
            timezone: self.state.city.zone.name,
            birthday: person.birthday.clone(),
            created_at: self.state.created_at.clone(),
            newsletter: self.state.newsletter,
            preferred_roast: self.state.preferred_roast,
        }
    }

    /// Starts a session: picks how the visitor arrives and shows the landing page.
    fn start_session(&mut self, begin: i64, focus: usize, arrival: Option<Arrival>) -> Session {
        self.out.stats.n_sessions += 1;
        let first_visit = self.out.stats.n_sessions == 1 && !self.person.pre_existing;
        let Arrival { campaign, referrer: external_referrer, landing } = match arrival {
            Some(arrival) => arrival,
            None => self.arrival(first_visit, focus),
        };
        let focus = match landing {
            Landing::Category(leaf) | Landing::Search(leaf) => leaf,
            Landing::Product(product) => self.shared.catalog.items.get(product).map_or(focus, |item| item.leaf),
            Landing::Home => focus,
        };
        let mut session = Session {
            t: begin,
            page: None,
            page_json: None,
            context_json: None,
            campaign,
            external_referrer,
            focus,
            cart: None,
        };
        match landing {
            Landing::Home => self.view_home(&mut session),
            Landing::Category(leaf) => self.view_category(&mut session, leaf),
            Landing::Product(product) => self.view_product(&mut session, product),
            Landing::Search(leaf) => self.search(&mut session, leaf),
        }
        session
    }

    /// How a visitor arrives: an ad campaign, an organic referrer, or directly.
    fn arrival(&mut self, first_visit: bool, focus: usize) -> Arrival {
        let (campaign_share, referrer_share) = if first_visit { (0.45, 0.30) } else { (0.07, 0.25) };
        let roll = self.rng.gen::<f64>();
        if roll < campaign_share {
            // Campaigns reach people interested in what they advertise, so pick one matching a
            // favourite when there is one.
            let matching: Vec<usize> =
                (0..AD_CAMPAIGNS.len()).filter(|&i| self.person.favourites.contains(&AD_CAMPAIGNS[i].leaf)).collect();
            let index = if !matching.is_empty() && self.rng.gen::<f64>() < 0.8 {
                matching[self.rng.gen_range(0..matching.len())]
            } else {
                self.rng.gen_range(0..AD_CAMPAIGNS.len())
            };
            let ad = &AD_CAMPAIGNS[index];
            let campaign = Campaign {
                source: ad.source,
                medium: ad.medium,
                name: ad.name.to_owned(),
                term: ad.term,
                content: ad.content,
            };
            let landing = match self.shared.catalog.pick(ad.leaf, &mut self.rng) {
                Some(product) if self.rng.gen::<f64>() < 0.3 => Landing::Product(product),
                _ => Landing::Category(ad.leaf),
            };
            return Arrival { campaign: Some(campaign), referrer: ad.referrer.to_owned(), landing };
        }
        if roll < campaign_share + referrer_share {
            let index = pick_weighted(ORGANIC_REFERRERS.iter().map(|r| r.1), &mut self.rng);
            let referrer = ORGANIC_REFERRERS[index].0;
            let landing = match self.shared.catalog.pick(focus, &mut self.rng) {
                Some(product) if self.rng.gen::<f64>() < 0.6 => Landing::Product(product),
                _ if self.rng.gen::<bool>() => Landing::Category(focus),
                _ => Landing::Home,
            };
            return Arrival { campaign: None, referrer: referrer.to_owned(), landing };
        }
        let landing = if self.rng.gen::<f64>() < 0.75 { Landing::Home } else { Landing::Category(focus) };
        Arrival { campaign: None, referrer: String::new(), landing }
    }

    /// Shows the home page.
    fn view_home(&mut self, session: &mut Session) {
        self.open_page(session, "Home", "/".to_owned(), SITE_NAME.to_owned(), String::new());
    }

    /// Shows a category page and its product list.
    fn view_category(&mut self, session: &mut Session, leaf: usize) {
        let Some(category) = LEAVES.get(leaf) else {
            return;
        };
        session.focus = leaf;
        let title = format!("{} | {SITE_NAME}", category.name());
        self.open_page(session, "Category", format!("/c/{}", category.slug), title, String::new());
        let properties = Properties::ProductList { list_id: category.slug, category: category.name() };
        self.track(session, "Product List Viewed", properties);
    }

    /// Searches for something in a leaf.
    fn search(&mut self, session: &mut Session, leaf: usize) {
        let catalog = self.shared.catalog;
        let Some(category) = LEAVES.get(leaf) else {
            return;
        };
        session.focus = leaf;
        // Mostly category words; now and then a brand, as people who know what they want do.
        let query = match catalog.pick(leaf, &mut self.rng) {
            Some(product) if self.rng.gen::<f64>() < 0.2 => {
                catalog.items.get(product).map_or("", |item| item.brand).to_lowercase()
            }
            _ => category.queries[self.rng.gen_range(0..category.queries.len())].to_owned(),
        };
        let search = format!("?q={}", query.replace(' ', "+").replace('&', "%26").replace('\'', "%27"));
        let title = format!("Search: {query} | {SITE_NAME}");
        self.open_page(session, "Search Results", "/search".to_owned(), title, search);
        self.track(session, "Products Searched", Properties::Search { query: &query });
    }

    /// Shows a product page.
    fn view_product(&mut self, session: &mut Session, product_index: usize) {
        let catalog = self.shared.catalog;
        let (Some(product), Some(item)) = (catalog.products.get(product_index), catalog.items.get(product_index))
        else {
            return;
        };
        let title = format!("{} | {SITE_NAME}", product.name);
        self.open_page(session, "Product", format!("/p/{}", product.id), title, String::new());
        let currency = self.person.country.currency;
        let properties = Properties::Product {
            product_id: &product.id,
            sku: &item.sku,
            category: product.category(),
            name: &product.name,
            brand: item.brand,
            price: item.prices[currency],
            currency: self.person.country.currency_code,
            url: product.url.as_deref().unwrap_or(SHOP_URL),
        };
        self.track(session, "Product Viewed", properties);
    }

    /// Adds a product to the session's cart, creating the cart on the first add.
    fn add_to_cart(&mut self, session: &mut Session, product_index: usize, quantity: u32) {
        let catalog = self.shared.catalog;
        let (Some(product), Some(item)) = (catalog.products.get(product_index), catalog.items.get(product_index))
        else {
            return;
        };
        if session.cart.is_none() {
            let cart_id = self.out.keys.object_id("cart", self.out.user, self.out.n_cart_ids);
            self.out.n_cart_ids += 1;
            session.cart = Some((cart_id, Vec::new()));
        }
        let Some((cart_id, lines)) = session.cart.take() else {
            return;
        };
        let currency = self.person.country.currency;
        let properties = Properties::ProductAdded {
            cart_id: &cart_id,
            product_id: &product.id,
            sku: &item.sku,
            category: product.category(),
            name: &product.name,
            price: item.prices[currency],
            quantity,
            currency: self.person.country.currency_code,
        };
        self.track(session, "Product Added", properties);
        let mut lines = lines;
        match lines.iter_mut().find(|(p, _)| *p == product_index) {
            Some(line) => line.1 += quantity,
            None => lines.push((product_index, quantity)),
        }
        session.cart = Some((cart_id, lines));
    }

    /// The cart's lines as the wire format lists them, priced in the person's currency.
    fn line_items(&self, lines: &[(usize, u32)]) -> Vec<LineItem<'s>> {
        let catalog = self.shared.catalog;
        let currency = self.person.country.currency;
        lines
            .iter()
            .filter_map(|&(index, quantity)| {
                let product = catalog.products.get(index)?;
                let item = catalog.items.get(index)?;
                Some(LineItem {
                    product_id: &product.id,
                    sku: &item.sku,
                    category: product.category(),
                    name: &product.name,
                    price: item.prices[currency],
                    quantity,
                })
            })
            .collect()
    }

    /// Shows the cart page.
    fn view_cart(&mut self, session: &mut Session) {
        let Some((cart_id, lines)) = session.cart.take() else {
            return;
        };
        self.think(session);
        self.open_page(session, "Cart", "/cart".to_owned(), format!("Your cart | {SITE_NAME}"), String::new());
        let items = self.line_items(&lines);
        self.track(session, "Cart Viewed", Properties::Cart { cart_id: &cart_id, products: &items });
        session.cart = Some((cart_id, lines));
    }

    /// Starts checkout; returns the order id and the money figures `(subtotal, discount, coupon)`.
    fn start_checkout(
        &mut self,
        session: &mut Session,
        use_coupon: bool,
    ) -> Option<(String, f64, f64, Option<&'static str>)> {
        let (cart_id, lines) = session.cart.take()?;
        self.think(session);
        self.open_page(session, "Checkout", "/checkout".to_owned(), format!("Checkout | {SITE_NAME}"), String::new());
        let order_id = self.out.keys.object_id("ord", self.out.user, self.out.n_order_ids);
        self.out.n_order_ids += 1;
        let items = self.line_items(&lines);
        let subtotal = cents(items.iter().map(|i| i.price * f64::from(i.quantity)).sum());
        let coupon = use_coupon.then(|| {
            if self.out.stats.n_orders == 0 {
                COUPONS[0]
            } else {
                COUPONS[self.rng.gen_range(1..COUPONS.len())]
            }
        });
        // Yen have no minor unit, so a yen discount is a whole number.
        let discount = match coupon {
            Some((_, share)) if self.person.country.currency_code == "JPY" => (subtotal * share).round(),
            Some((_, share)) => cents(subtotal * share),
            None => 0.0,
        };
        let currency = self.person.country.currency_code;
        let properties = Properties::Checkout {
            order_id: &order_id,
            cart_id: &cart_id,
            value: subtotal,
            revenue: cents(subtotal - discount),
            currency,
            products: &items,
        };
        self.track(session, "Checkout Started", properties);
        session.cart = Some((cart_id, lines));
        Some((order_id, subtotal, discount, coupon.map(|c| c.0)))
    }

    /// Browses: the landing page, then a few steps among searches, category lists and product
    /// pages, with products going into a cart that is usually abandoned.
    fn web_session(
        &mut self,
        begin: i64,
        focus: Option<usize>,
        arrival: Option<Arrival>,
        identify: Identify,
        browsing: Browsing,
    ) -> i64 {
        let focus = match focus {
            Some(leaf) => leaf,
            None => self.favourite_leaf(),
        };
        let mut session = self.start_session(begin, focus, arrival);
        match identify {
            Identify::Login => self.log_in(&mut session),
            Identify::SignUp | Identify::AtCheckout => self.sign_up(&mut session, "email"),
            Identify::No => {}
        }
        self.browse_steps(&mut session, browsing);
        self.leave_cart(&mut session);
        session.t
    }

    /// The clicks of a browsing session after its landing page.
    fn browse_steps(&mut self, session: &mut Session, browsing: Browsing) {
        let catalog = self.shared.catalog;
        let mut steps = 1;
        while steps < 40 && self.rng.gen::<f64>() > 1.0 / browsing.mean_steps {
            steps += 1;
        }
        for _ in 0..steps {
            self.think(session);
            let roll = self.rng.gen::<f64>();
            if roll < 0.10 {
                let focus = session.focus;
                self.search(session, focus);
            } else if roll < 0.30 {
                let leaf = if self.rng.gen::<f64>() < 0.25 {
                    match related_leaf(session.focus, &mut self.rng) {
                        Some(related) if self.rng.gen::<bool>() => related,
                        _ => self.favourite_leaf(),
                    }
                } else {
                    session.focus
                };
                self.view_category(session, leaf);
            } else if let Some(product) = catalog.pick(session.focus, &mut self.rng) {
                self.view_product(session, product);
                let in_stock = catalog.products.get(product).is_some_and(|p| p.in_stock);
                let n_lines = session.cart.as_ref().map_or(0, |c| c.1.len());
                if in_stock && n_lines < 3 && self.rng.gen::<f64>() < browsing.add_rate {
                    let quantity = self.quantity_for(product);
                    self.add_to_cart(session, product, quantity);
                }
            }
        }
    }

    /// How many units of a product go into a cart: sometimes two of a consumable.
    fn quantity_for(&mut self, product: usize) -> u32 {
        let consumable =
            self.shared.catalog.products.get(product).is_some_and(|p| p.durability == Durability::Consumable);
        if consumable && self.rng.gen::<f64>() < 0.2 {
            2
        } else {
            1
        }
    }

    /// Ends a session that did not order: the cart, if any, is abandoned, sometimes after a
    /// look at it or even a started checkout.
    fn leave_cart(&mut self, session: &mut Session) {
        if session.cart.is_none() {
            return;
        }
        self.out.stats.n_carts += 1;
        self.out.stats.n_abandoned_carts += 1;
        if self.rng.gen::<f64>() < 0.55 {
            self.view_cart(session);
            if self.rng.gen::<f64>() < 0.2 {
                let _ = self.start_checkout(session, false);
            }
        }
    }

    /// A returning customer logs in.
    fn log_in(&mut self, session: &mut Session) {
        self.think(session);
        self.open_page(session, "Log In", "/account/login".to_owned(), format!("Log in | {SITE_NAME}"), String::new());
        self.state.identified = true;
        self.identify(session);
    }

    /// A visitor creates an account; their earlier anonymous browsing stays linked through the
    /// anonymous id the identify call carries.
    fn sign_up(&mut self, session: &mut Session, method: &'static str) {
        self.think(session);
        let title = format!("Create your account | {SITE_NAME}");
        self.open_page(session, "Sign Up", "/account/signup".to_owned(), title, String::new());
        self.think(session);
        self.state.identified = true;
        self.state.created_at = format_timestamp(session.t);
        self.identify(session);
        self.track(session, "Signed Up", Properties::SignedUp { method });
    }

    /// A purchase: finds the products, fills the cart, checks out and completes the order.
    fn purchase_session(&mut self, begin: i64, lines: &[(usize, u32)], identify: Identify) -> i64 {
        let catalog = self.shared.catalog;
        let Some(&(first_product, _)) = lines.first() else {
            return begin;
        };
        let focus = catalog.items.get(first_product).map_or(0, |item| item.leaf);
        let returning = self.out.stats.n_sessions > 0 || self.person.pre_existing;
        let arrival = if returning {
            let roll = self.rng.gen::<f64>();
            let landing = if roll < 0.45 {
                Landing::Home
            } else if roll < 0.8 {
                Landing::Product(first_product)
            } else {
                Landing::Search(focus)
            };
            Some(self.returning_arrival(landing))
        } else {
            None
        };
        let mut session = self.start_session(begin, focus, arrival);
        if identify == Identify::Login {
            self.log_in(&mut session);
        } else if identify == Identify::SignUp {
            self.sign_up(&mut session, "email");
        }
        for &(product, quantity) in lines {
            let on_it = session
                .page
                .as_ref()
                .is_some_and(|page| catalog.products.get(product).is_some_and(|p| page.path.ends_with(&p.id)));
            if !on_it {
                let leaf = catalog.items.get(product).map_or(focus, |item| item.leaf);
                if self.rng.gen::<f64>() < 0.3 {
                    // Comparing with an alternative before settling.
                    self.think(&mut session);
                    if let Some(alternative) = catalog.pick(leaf, &mut self.rng) {
                        self.view_product(&mut session, alternative);
                    }
                }
                self.think(&mut session);
                self.view_product(&mut session, product);
            }
            self.add_to_cart(&mut session, product, quantity);
        }
        self.view_cart(&mut session);
        if identify == Identify::AtCheckout {
            self.sign_up(&mut session, "checkout");
        }
        let use_coupon = self.rng.gen::<f64>() < 0.12;
        let Some((order_id, subtotal, discount, coupon)) = self.start_checkout(&mut session, use_coupon) else {
            return session.t;
        };
        let Some((cart_id, cart_lines)) = session.cart.take() else {
            return session.t;
        };
        // Payment takes a minute or three.
        session.t += self.rng.gen_range(40_000..240_000);
        let title = format!("Thank you for your order | {SITE_NAME}");
        self.open_page(&mut session, "Order Confirmation", "/checkout/complete".to_owned(), title, String::new());
        let (code, rate) = EXCHANGE_RATES[self.person.country.currency];
        let free_shipping_from = 50.0 * rate;
        let shipping = if subtotal >= free_shipping_from {
            0.0
        } else if code == "JPY" {
            750.0
        } else {
            cents(4.99 * rate)
        };
        let revenue = cents(subtotal - discount);
        let items = self.line_items(&cart_lines);
        let properties = Properties::Order {
            order_id: &order_id,
            cart_id: &cart_id,
            total: cents(revenue + shipping),
            revenue,
            shipping,
            discount,
            coupon,
            currency: code,
            products: &items,
        };
        self.track(&mut session, "Order Completed", properties);
        self.out.stats.n_carts += 1;
        self.out.stats.n_orders += 1;
        self.out.stats.last_order_ms = Some(session.t);
        session.t
    }

    /// A visit that puts a product in the cart and leaves without buying.
    fn abandon_session(&mut self, begin: i64, product: usize, identify: Identify) -> i64 {
        let returning = self.out.stats.n_sessions > 0 || self.person.pre_existing;
        let arrival = if returning {
            let landing = if self.rng.gen::<f64>() < 0.6 { Landing::Product(product) } else { Landing::Home };
            Some(self.returning_arrival(landing))
        } else {
            None
        };
        let focus = self.shared.catalog.items.get(product).map_or(0, |item| item.leaf);
        let mut session = self.start_session(begin, focus, arrival);
        match identify {
            Identify::Login => self.log_in(&mut session),
            Identify::SignUp | Identify::AtCheckout => self.sign_up(&mut session, "email"),
            Identify::No => {}
        }
        let on_it = session
            .page
            .as_ref()
            .is_some_and(|page| self.shared.catalog.products.get(product).is_some_and(|p| page.path.ends_with(&p.id)));
        if !on_it {
            self.think(&mut session);
            self.view_product(&mut session, product);
        }
        let quantity = self.quantity_for(product);
        self.add_to_cart(&mut session, product, quantity);
        if self.rng.gen::<f64>() < 0.5 {
            let browsing = Browsing { mean_steps: 1.5, add_rate: 0.0 };
            self.browse_steps(&mut session, browsing);
        }
        self.leave_cart(&mut session);
        session.t
    }

    /// A returning customer's arrival: mostly direct, sometimes through a search engine.
    fn returning_arrival(&mut self, landing: Landing) -> Arrival {
        let referrer = if self.rng.gen::<f64>() < 0.2 { "https://www.google.com/" } else { "" };
        Arrival { campaign: None, referrer: referrer.to_owned(), landing }
    }

    /// Opens a newsletter, and maybe clicks through into a session.
    fn email_visit(&mut self, begin: i64, index: usize, clicks: bool) -> Option<i64> {
        let newsletters = self.shared.newsletters;
        let newsletter = newsletters.get(index)?;
        if !self.state.identified || !self.state.newsletter || !self.state.consent.email {
            return None;
        }
        let email_id = self.out.keys.object_id("email", self.out.user, self.out.n_email_ids);
        self.out.n_email_ids += 1;
        let mut t = begin;
        let opened = Properties::EmailOpened {
            email_id: &email_id,
            campaign_id: &newsletter.campaign_id,
            subject: newsletter.subject,
        };
        let call = Call { kind: "track", event: Some("Email Opened"), properties: Some(opened), ..Call::default() };
        self.out.emit(&self.person, &self.state, t, call);
        self.out.stats.n_email_opens += 1;
        if !clicks {
            return Some(t);
        }
        let campaign = Campaign {
            source: "newsletter",
            medium: "email",
            name: newsletter.campaign_id.clone(),
            term: None,
            content: Some("cta-button"),
        };
        let (landing, path) = match newsletter.leaf.and_then(|l| LEAVES.get(l).map(|leaf| (l, leaf))) {
            Some((index, leaf)) => (Landing::Category(index), format!("/c/{}", leaf.slug)),
            None => (Landing::Home, "/".to_owned()),
        };
        let url = format!("{SHOP_URL}{path}{}", campaign.query_string());
        t += self.rng.gen_range(15_000..240_000);
        let clicked =
            Properties::EmailLinkClicked { email_id: &email_id, campaign_id: &newsletter.campaign_id, url: &url };
        let call =
            Call { kind: "track", event: Some("Email Link Clicked"), properties: Some(clicked), ..Call::default() };
        self.out.emit(&self.person, &self.state, t, call);
        self.out.stats.n_email_clicks += 1;
        t += self.rng.gen_range(1_500..8_000);
        let browsing = self.browsing_knobs();
        let arrival = Arrival { campaign: Some(campaign), referrer: String::new(), landing };
        Some(self.web_session(t, None, Some(arrival), Identify::No, browsing))
    }

    /// Withdraws email consent in the privacy settings.
    fn consent_change(&mut self, begin: i64) -> i64 {
        let focus = self.favourite_leaf();
        let mut session = self.start_session(begin, focus, None);
        self.think(&mut session);
        let title = format!("Privacy settings | {SITE_NAME}");
        self.open_page(&mut session, "Privacy Settings", "/account/privacy".to_owned(), title, String::new());
        self.think(&mut session);
        self.state.consent.email = false;
        self.state.newsletter = false;
        self.refresh_context(&mut session);
        // Segment's consent management sends this event whenever preferences change.
        self.track(&mut session, "Segment Consent Preference Updated", Properties::Empty {});
        if self.state.identified {
            self.identify(&mut session);
        }
        session.t
    }

    /// Edits the account: a move, an unsubscription or a new favourite roast.
    fn trait_change(&mut self, begin: i64, change: TraitChange) -> Option<i64> {
        if !self.state.identified {
            return None;
        }
        let focus = self.favourite_leaf();
        let mut session = self.start_session(begin, focus, None);
        self.think(&mut session);
        self.open_page(
            &mut session,
            "Account",
            "/account".to_owned(),
            format!("Your account | {SITE_NAME}"),
            String::new(),
        );
        self.think(&mut session);
        match change {
            TraitChange::Move => self.state.city = self.person.other_city,
            TraitChange::NewsletterOff => self.state.newsletter = false,
            TraitChange::Roast(roast) => self.state.preferred_roast = Some(roast),
        }
        self.refresh_context(&mut session);
        self.identify(&mut session);
        Some(session.t)
    }

    /// Browses on the second device, possibly logging in there at the end.
    fn second_device(&mut self, begin: i64, alias: bool) -> i64 {
        self.state.device = 1;
        let browsing = Browsing { mean_steps: 2.5, add_rate: 0.08 };
        let focus = self.favourite_leaf();
        let mut session = self.start_session(begin, focus, None);
        self.browse_steps(&mut session, browsing);
        self.leave_cart(&mut session);
        if alias && !self.state.second_device_linked {
            self.think(&mut session);
            self.open_page(
                &mut session,
                "Log In",
                "/account/login".to_owned(),
                format!("Log in | {SITE_NAME}"),
                String::new(),
            );
            self.tick(&mut session);
            self.state.second_device_linked = true;
            let previous = self.person.devices.get(1).map(|d| d.anonymous_id.clone()).unwrap_or_default();
            let call = Call {
                kind: "alias",
                previous_id: Some(&previous),
                context: session.context_json.as_deref(),
                ..Call::default()
            };
            self.out.emit(&self.person, &self.state, session.t, call);
        }
        self.state.device = 0;
        session.t
    }
}
