//! Who shops at the demo shop: countries, cities, names, devices, consent choices and the
//! buying archetype each person follows.
//!
//! Everything here is drawn once per person from that person's own random stream; the
//! behaviour model in `simulate` then turns the person into a history of visits.

use crate::catalog::{leaf, CurrencyIndex, LEAVES};
use crate::wire::CategoryPreferences;
use crate::zones::{self, civil_from_days, days_from_civil, format_date, Zone, DAY_MS};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A city people live in, with its time zone.
#[derive(Debug)]
pub(crate) struct City {
    /// City name, as the `city` trait carries it.
    pub name: &'static str,
    /// Its time zone.
    pub zone: Zone,
    /// A locale that differs from the country's (French-speaking Montreal).
    pub locale: Option<&'static str>,
}

/// A country customers come from, with what a storefront localizes for it.
#[derive(Debug)]
pub(crate) struct Country {
    /// ISO 3166-1 alpha-2 code.
    pub code: &'static str,
    /// Index into [`crate::catalog::EXCHANGE_RATES`].
    pub currency: CurrencyIndex,
    /// ISO 4217 code of that currency.
    pub currency_code: &'static str,
    /// Default browser locale.
    pub locale: &'static str,
    /// Relative share of customers.
    pub weight: f64,
    /// Cities, the first being the most common.
    pub cities: &'static [City],
    /// Given names.
    pub first_names: &'static [&'static str],
    /// Family names.
    pub last_names: &'static [&'static str],
}

/// Builds a city with the country's default locale.
const fn city(name: &'static str, zone: Zone) -> City {
    City { name, zone, locale: None }
}

/// English given names shared by the English-speaking countries.
const ENGLISH_FIRST: &[&str] = &[
    "James", "Mary", "Michael", "Jennifer", "David", "Linda", "Sarah", "Daniel", "Emily", "Jessica", "Chris", "Ashley",
    "Matthew", "Olivia", "Ethan", "Sophia", "Noah", "Ava", "Grace", "Liam",
];
/// English family names shared by the English-speaking countries.
const ENGLISH_LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Lee",
    "O'Brien",
    "Nguyen",
    "Kelly",
    "Patel",
];

/// The countries of the demo, with their shares of customers.
pub(crate) static COUNTRIES: [Country; 10] = [
    Country {
        code: "US",
        currency: 0,
        currency_code: "USD",
        locale: "en-US",
        weight: 34.0,
        cities: &[
            city("New York", zones::NEW_YORK),
            city("Boston", zones::NEW_YORK),
            city("Chicago", zones::CHICAGO),
            city("Austin", zones::CHICAGO),
            city("Los Angeles", zones::LOS_ANGELES),
            city("Seattle", zones::LOS_ANGELES),
        ],
        first_names: ENGLISH_FIRST,
        last_names: ENGLISH_LAST,
    },
    Country {
        code: "GB",
        currency: 2,
        currency_code: "GBP",
        locale: "en-GB",
        weight: 12.0,
        cities: &[city("London", zones::LONDON), city("Manchester", zones::LONDON), city("Edinburgh", zones::LONDON)],
        first_names: &["Oliver", "George", "Harry", "Amelia", "Isla", "Jack", "Charlotte", "Emily", "Thomas", "Poppy"],
        last_names: &[
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Davies", "Roberts", "Wright",
        ],
    },
    Country {
        code: "DE",
        currency: 1,
        currency_code: "EUR",
        locale: "de-DE",
        weight: 12.0,
        cities: &[city("Berlin", zones::BERLIN), city("München", zones::BERLIN), city("Hamburg", zones::BERLIN)],
        first_names: &["Lukas", "Leon", "Finn", "Jonas", "Mia", "Hannah", "Lena", "Sophie", "Jürgen", "Anna"],
        last_names: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
        ],
    },
    Country {
        code: "FR",
        currency: 1,
        currency_code: "EUR",
        locale: "fr-FR",
        weight: 8.0,
        cities: &[city("Paris", zones::PARIS), city("Lyon", zones::PARIS), city("Marseille", zones::PARIS)],
        first_names: &["Louis", "Gabriel", "Léa", "Chloé", "Manon", "Hugo", "Jules", "Camille", "François", "Inès"],
        last_names: &[
            "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Lefèvre", "Moreau",
        ],
    },
    Country {
        code: "NL",
        currency: 1,
        currency_code: "EUR",
        locale: "nl-NL",
        weight: 5.0,
        cities: &[
            city("Amsterdam", zones::AMSTERDAM),
            city("Utrecht", zones::AMSTERDAM),
            city("Rotterdam", zones::AMSTERDAM),
        ],
        first_names: &["Daan", "Sem", "Lucas", "Emma", "Julia", "Tess", "Sanne", "Bram", "Lotte", "Jesse"],
        last_names: &[
            "de Jong",
            "Jansen",
            "de Vries",
            "van den Berg",
            "van Dijk",
            "Bakker",
            "Visser",
            "Smit",
            "Meijer",
            "de Boer",
        ],
    },
    Country {
        code: "ES",
        currency: 1,
        currency_code: "EUR",
        locale: "es-ES",
        weight: 5.0,
        cities: &[city("Madrid", zones::MADRID), city("Barcelona", zones::MADRID), city("Valencia", zones::MADRID)],
        first_names: &["Hugo", "Martín", "Lucía", "Sofía", "María", "Pablo", "Alejandro", "Paula", "José", "Álvaro"],
        last_names: &[
            "García",
            "Fernández",
            "González",
            "Rodríguez",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Ruiz",
        ],
    },
    Country {
        code: "IT",
        currency: 1,
        currency_code: "EUR",
        locale: "it-IT",
        weight: 5.0,
        cities: &[city("Roma", zones::ROME), city("Milano", zones::ROME), city("Torino", zones::ROME)],
        first_names: &[
            "Francesco",
            "Alessandro",
            "Sofia",
            "Giulia",
            "Aurora",
            "Lorenzo",
            "Matteo",
            "Chiara",
            "Leonardo",
            "Martina",
        ],
        last_names: &[
            "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
        ],
    },
    Country {
        code: "JP",
        currency: 3,
        currency_code: "JPY",
        locale: "ja-JP",
        weight: 6.0,
        cities: &[city("Tokyo", zones::TOKYO), city("Osaka", zones::TOKYO), city("Kyoto", zones::TOKYO)],
        first_names: &["Haruto", "Yuto", "Sota", "Yui", "Hina", "Sakura", "Ren", "Aoi", "Riku", "Mei"],
        last_names: &[
            "Sato",
            "Suzuki",
            "Takahashi",
            "Tanaka",
            "Watanabe",
            "Ito",
            "Yamamoto",
            "Nakamura",
            "Kobayashi",
            "Kato",
        ],
    },
    Country {
        code: "CA",
        currency: 4,
        currency_code: "CAD",
        locale: "en-CA",
        weight: 6.0,
        cities: &[
            city("Toronto", zones::TORONTO),
            City { name: "Montréal", zone: zones::TORONTO, locale: Some("fr-CA") },
            city("Vancouver", zones::VANCOUVER),
        ],
        first_names: ENGLISH_FIRST,
        last_names: &[
            "Tremblay",
            "Gagnon",
            "Roy",
            "Smith",
            "Brown",
            "Wilson",
            "MacDonald",
            "Campbell",
            "Lee",
            "Martin",
        ],
    },
    Country {
        code: "AU",
        currency: 5,
        currency_code: "AUD",
        locale: "en-AU",
        weight: 6.0,
        cities: &[
            city("Sydney", zones::SYDNEY),
            city("Melbourne", zones::MELBOURNE),
            city("Brisbane", zones::BRISBANE),
        ],
        first_names: ENGLISH_FIRST,
        last_names: ENGLISH_LAST,
    },
];

/// Desktop browsers.
const DESKTOP_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
];
/// Phone and tablet browsers.
const MOBILE_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
];
/// The IPv4 documentation ranges (RFC 5737); no generated address can belong to anyone.
const DOCUMENTATION_NETWORKS: [&str; 3] = ["192.0.2", "198.51.100", "203.0.113"];
/// Domains reserved for examples (RFC 2606); no generated email can reach anyone.
const EXAMPLE_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];

/// How a person buys, which decides the shape of their history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Archetype {
    /// Browses, searches and fills carts, but never orders.
    Browser,
    /// Orders once (identified customers and anonymous guests alike).
    OneTimeBuyer,
    /// Reorders a consumable on a personal cadence for the whole window.
    RepeatBuyer,
    /// Reordered on a cadence early in the window, then stopped for good.
    LapsedCustomer,
    /// Researches and buys a durable (a mattress, a sofa), then keeps browsing.
    DurableBuyer,
}

/// A consumable bought on a rhythm: the category, the mean gap and how much people differ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Habit {
    /// The leaf reordered.
    pub leaf: usize,
    /// Population mean of the personal cadence, in days.
    pub cadence_days: f64,
    /// Standard deviation of personal cadences around the mean, in days.
    pub spread_days: f64,
    /// Share of habitual buyers with this habit.
    pub share: f64,
}

/// The reorder habits, from the "coffee every ~28 days" on.
pub(crate) const HABITS: [Habit; 5] = [
    Habit { leaf: leaf::COFFEE, cadence_days: 28.0, spread_days: 3.0, share: 0.40 },
    Habit { leaf: leaf::VITAMINS, cadence_days: 30.0, spread_days: 3.0, share: 0.20 },
    Habit { leaf: leaf::DOG_FOOD, cadence_days: 21.0, spread_days: 2.0, share: 0.20 },
    Habit { leaf: leaf::TEA, cadence_days: 35.0, spread_days: 4.0, share: 0.10 },
    Habit { leaf: leaf::SKIN_CARE, cadence_days: 42.0, spread_days: 5.0, share: 0.10 },
];

/// Durables people research before buying, with their shares among durable buyers.
const DURABLE_TARGETS: [(usize, f64); 5] = [
    (leaf::MATTRESSES, 0.30),
    (leaf::FURNITURE, 0.20),
    (leaf::COFFEE_MAKERS, 0.20),
    (leaf::HEADPHONES, 0.15),
    (leaf::SMART_HOME, 0.15),
];

/// Categories bought together, so recommenders have cross-category signal to find.
const RELATED_LEAVES: [(usize, usize); 13] =
    [(0, 2), (0, 1), (1, 2), (3, 12), (4, 5), (4, 6), (6, 7), (8, 9), (9, 10), (13, 14), (15, 16), (17, 20), (21, 22)];

/// One browser on one device.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    /// The analytics.js anonymous id stored in that browser.
    pub anonymous_id: String,
    /// Its IP address.
    pub ip: String,
    /// Its user agent.
    pub user_agent: &'static str,
}

/// A person as drawn: fixed facts that the behaviour model reads.
#[derive(Debug)]
pub(crate) struct Person {
    /// Position among the generated users; ids and random streams derive from it.
    pub index: usize,
    /// `user-00001`, for the people who create an account.
    pub user_id: Option<String>,
    /// Their country.
    pub country: &'static Country,
    /// The city they live in at the start.
    pub city: &'static City,
    /// Another city of the same country, where some people move.
    pub other_city: &'static City,
    /// Given name.
    pub first_name: &'static str,
    /// Family name.
    pub last_name: &'static str,
    /// `first.last.N@example.*`.
    pub email: String,
    /// `YYYY-MM-DD`.
    pub birthday: String,
    /// Whether the birthday falls in the days right after the window.
    pub birthday_soon: bool,
    /// Subscribed to the newsletter at signup.
    pub newsletter: bool,
    /// Consent at the start of the window.
    pub consent: CategoryPreferences,
    /// Withdraws email consent around the middle of the window.
    pub revokes_email: bool,
    /// How they buy.
    pub archetype: Archetype,
    /// The reorder habit of repeat and lapsed buyers.
    pub habit: Option<Habit>,
    /// Their personal cadence in days, drawn around the habit's mean.
    pub cadence_days: f64,
    /// The durable leaf a durable buyer is after.
    pub durable_leaf: Option<usize>,
    /// One to three leaves they mostly browse, the first the strongest.
    pub favourites: Vec<usize>,
    /// Peak local hour of their browsing.
    pub browse_hour: f64,
    /// Local hour at which they usually read email.
    pub email_hour: f64,
    /// Probability of opening a newsletter.
    pub open_rate: f64,
    /// Probability of clicking an opened newsletter.
    pub click_rate: f64,
    /// Was already a customer before the window (their signup predates it).
    pub pre_existing: bool,
    /// Their browser; a second device appears for a few people.
    pub devices: Vec<Device>,
}

impl Person {
    /// Their browser locale while living in `city`.
    pub(crate) fn locale(&self, city: &City) -> &'static str {
        city.locale.unwrap_or(self.country.locale)
    }
}

/// A standard normal draw (Box–Muller), since the workspace carries no `rand_distr`.
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Picks an index by weight.
pub(crate) fn pick_weighted(weights: impl Iterator<Item = f64> + Clone, rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.clone().sum();
    let mut target = rng.gen::<f64>() * total;
    let mut last = 0;
    for (index, weight) in weights.enumerate() {
        last = index;
        if target < weight {
            return index;
        }
        target -= weight;
    }
    last
}

/// A UUID-v4-shaped anonymous id from the random stream.
fn anonymous_id(rng: &mut ChaCha8Rng) -> String {
    let high: u64 = rng.gen();
    let low: u64 = rng.gen();
    let version = (high & 0xffff_ffff_ffff_0fff) | 0x4000;
    let variant = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        version >> 32,
        (version >> 16) & 0xffff,
        version & 0xffff,
        variant >> 48,
        variant & 0xffff_ffff_ffff
    )
}

/// A device of a given kind.
fn device(mobile: bool, rng: &mut ChaCha8Rng) -> Device {
    let agents = if mobile { MOBILE_AGENTS } else { DESKTOP_AGENTS };
    let network = DOCUMENTATION_NETWORKS[rng.gen_range(0..DOCUMENTATION_NETWORKS.len())];
    Device {
        anonymous_id: anonymous_id(rng),
        ip: format!("{network}.{}", rng.gen_range(1..=254)),
        user_agent: agents[rng.gen_range(0..agents.len())],
    }
}

/// Lower-case ASCII for an email's local part: accents folded, anything else dropped.
pub(crate) fn email_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => "a",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'ō' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ß' => "ss",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => "",
        };
        out.push_str(folded);
    }
    out
}

/// Consent choices in the shares the module documentation gives, plus whether the person
/// later withdraws email consent.
fn draw_consent(rng: &mut ChaCha8Rng) -> (CategoryPreferences, bool) {
    let all =
        CategoryPreferences { analytics: true, personalization: true, advertising: true, email: true, profiling: true };
    let roll = rng.gen::<f64>();
    if roll < 0.80 {
        // One in forty of the fully consenting withdraws email consent later: 2% of everyone.
        (all, rng.gen::<f64>() < 0.025)
    } else if roll < 0.92 {
        let which = rng.gen::<f64>();
        let advertising = (0.40..0.75).contains(&which);
        let email = which < 0.40;
        (CategoryPreferences { advertising, email, ..all }, false)
    } else if roll < 0.97 {
        let profiling = rng.gen::<bool>();
        (CategoryPreferences { personalization: false, profiling, ..all }, false)
    } else {
        (CategoryPreferences { analytics: false, advertising: false, profiling: false, ..all }, false)
    }
}

/// A birthday; for the `soon` people it falls in the six days after `end_day`, for the others
/// anywhere else in the year.
fn draw_birthday(end_day: i64, soon: bool, rng: &mut ChaCha8Rng) -> String {
    let upcoming: Vec<(u32, u32)> = (1..=6)
        .map(|k| {
            let (_, month, day) = civil_from_days(end_day + k);
            (month, day)
        })
        .collect();
    let year = rng.gen_range(1950..=2006_i64);
    if soon {
        let (month, day) = upcoming[rng.gen_range(0..upcoming.len())];
        let is_leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let year = if (month, day) == (2, 29) && !is_leap(year) { 1988 + 4 * (year % 5) } else { year };
        return format_date(days_from_civil(year, month, day));
    }
    loop {
        let start = days_from_civil(year, 1, 1);
        let days = start + rng.gen_range(0..365);
        let (_, month, day) = civil_from_days(days);
        if !upcoming.contains(&(month, day)) {
            return format_date(days);
        }
    }
}

/// A peak hour of the day for browsing: evenings dominate, lunch breaks and mornings follow.
fn draw_browse_hour(rng: &mut ChaCha8Rng) -> f64 {
    let (centre, spread) = match rng.gen::<f64>() {
        r if r < 0.40 => (20.5, 1.2),
        r if r < 0.65 => (12.5, 0.8),
        r if r < 0.82 => (8.0, 0.8),
        _ => (16.0, 1.5),
    };
    (centre + spread * normal(rng)).clamp(6.5, 23.5)
}

/// The hour someone reads email: early morning for most, evening for the rest.
fn draw_email_hour(rng: &mut ChaCha8Rng) -> f64 {
    if rng.gen::<f64>() < 0.6 {
        rng.gen_range(6.0..9.5)
    } else if rng.gen::<f64>() < 0.5 {
        rng.gen_range(12.0..13.5)
    } else {
        rng.gen_range(18.5..22.5)
    }
}

/// A leaf drawn by catalog weight.
pub(crate) fn random_leaf(rng: &mut ChaCha8Rng) -> usize {
    pick_weighted(LEAVES.iter().map(|l| l.weight), rng)
}

/// A leaf related to `to`, when it has one.
pub(crate) fn related_leaf(to: usize, rng: &mut ChaCha8Rng) -> Option<usize> {
    let related: Vec<usize> = RELATED_LEAVES
        .iter()
        .filter_map(|&(a, b)| {
            if a == to {
                Some(b)
            } else if b == to {
                Some(a)
            } else {
                None
            }
        })
        .collect();
    if related.is_empty() {
        None
    } else {
        Some(related[rng.gen_range(0..related.len())])
    }
}

/// Draws person number `index` from their own random stream.
pub(crate) fn draw_person(index: usize, end_ms: i64, rng: &mut ChaCha8Rng) -> Person {
    let country = &COUNTRIES[pick_weighted(COUNTRIES.iter().map(|c| c.weight), rng)];
    let city_index = pick_weighted((0..country.cities.len()).map(|i| 1.0 / (i + 1) as f64), rng);
    let city = &country.cities[city_index];
    let other_city =
        &country.cities[(city_index + 1 + rng.gen_range(0..country.cities.len() - 1)) % country.cities.len()];
    let first_name = country.first_names[rng.gen_range(0..country.first_names.len())];
    let last_name = country.last_names[rng.gen_range(0..country.last_names.len())];
    let domain = EXAMPLE_DOMAINS[rng.gen_range(0..EXAMPLE_DOMAINS.len())];
    let email = format!("{}.{}.{}@{domain}", email_part(first_name), email_part(last_name), index + 1);
    let birthday_soon = rng.gen::<f64>() < 0.03;
    let birthday = draw_birthday(end_ms.div_euclid(DAY_MS), birthday_soon, rng);
    let (consent, revokes_email) = draw_consent(rng);
    let identified = rng.gen::<f64>() < 0.70;
    let user_id = identified.then(|| format!("user-{:05}", index + 1));

    let archetype = if identified {
        match rng.gen::<f64>() {
            r if r < 0.30 => Archetype::Browser,
            r if r < 0.58 => Archetype::OneTimeBuyer,
            r if r < 0.75 => Archetype::RepeatBuyer,
            r if r < 0.84 => Archetype::LapsedCustomer,
            _ => Archetype::DurableBuyer,
        }
    } else if rng.gen::<f64>() < 0.15 {
        // Guests who check out without an account.
        Archetype::OneTimeBuyer
    } else {
        Archetype::Browser
    };

    let habit = matches!(archetype, Archetype::RepeatBuyer | Archetype::LapsedCustomer)
        .then(|| HABITS[pick_weighted(HABITS.iter().map(|h| h.share), rng)]);
    let cadence_days = habit.map_or(0.0, |h| (h.cadence_days + h.spread_days * normal(rng)).max(10.0));
    let durable_leaf = (archetype == Archetype::DurableBuyer)
        .then(|| DURABLE_TARGETS[pick_weighted(DURABLE_TARGETS.iter().map(|t| t.1), rng)].0);

    let mut favourites = Vec::with_capacity(3);
    favourites.push(habit.map(|h| h.leaf).or(durable_leaf).unwrap_or_else(|| random_leaf(rng)));
    let n_favourites = rng.gen_range(1..=3);
    while favourites.len() < n_favourites {
        let last = favourites[favourites.len() - 1];
        let candidate = match related_leaf(last, rng) {
            Some(related) if rng.gen::<f64>() < 0.5 => related,
            _ => random_leaf(rng),
        };
        if !favourites.contains(&candidate) {
            favourites.push(candidate);
        }
    }

    let newsletter = consent.email && user_id.is_some() && rng.gen::<f64>() < 0.65;
    let pre_existing = match archetype {
        Archetype::LapsedCustomer => true,
        Archetype::RepeatBuyer => rng.gen::<f64>() < 0.75,
        _ => rng.gen::<f64>() < 0.35,
    } && user_id.is_some();
    let mobile = rng.gen::<f64>() < 0.55;
    let mut devices = vec![device(mobile, rng)];
    if user_id.is_some() && rng.gen::<f64>() < 0.035 {
        devices.push(device(!mobile, rng));
    }
    Person {
        index,
        user_id,
        country,
        city,
        other_city,
        first_name,
        last_name,
        email,
        birthday,
        birthday_soon,
        newsletter,
        consent,
        revokes_email,
        archetype,
        habit,
        cadence_days,
        durable_leaf,
        favourites,
        browse_hour: draw_browse_hour(rng),
        email_hour: draw_email_hour(rng),
        open_rate: rng.gen_range(0.12..0.65),
        click_rate: rng.gen_range(0.08..0.30),
        pre_existing,
        devices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn email_parts_fold_accents_and_drop_punctuation() {
        let cases = [("Jürgen", "jurgen"), ("O'Brien", "obrien"), ("van den Berg", "vandenberg"), ("Álvaro", "alvaro")];
        for (name, expected) in cases {
            assert_eq!(email_part(name), expected);
        }
    }

    #[test]
    fn anonymous_ids_look_like_version_4_uuids() {
        let id = anonymous_id(&mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]));
    }

    #[test]
    fn soon_birthdays_fall_in_the_six_days_after_the_end() {
        let end_day = days_from_civil(2026, 11, 29);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..50 {
            let birthday = draw_birthday(end_day, true, &mut rng);
            let month_day = &birthday[5..];
            assert!(["11-30", "12-01", "12-02", "12-03", "12-04", "12-05"].contains(&month_day), "{birthday}");
            let other = draw_birthday(end_day, false, &mut rng);
            assert!(!["11-30", "12-01", "12-02", "12-03", "12-04", "12-05"].contains(&&other[5..]), "{other}");
        }
    }

    #[test]
    fn every_country_has_a_currency_that_matches_its_code() {
        for country in &COUNTRIES {
            assert_eq!(crate::catalog::EXCHANGE_RATES[country.currency].0, country.currency_code);
            assert!(country.cities.len() >= 2);
        }
    }
}
