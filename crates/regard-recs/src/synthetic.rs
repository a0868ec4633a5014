//! A deterministic generator of shop-like interactions, for benchmarks and tests at scale.
//!
//! Items belong to categories; category sizes and item popularity within a category follow
//! Zipf laws, so a few items draw most of the traffic and most items have a long tail. Each
//! user has one to three favourite categories and an activity level drawn from a Pareto law
//! (many light users, a few heavy ones). Activity happens in sessions: a session picks a
//! category (a favourite four times in five), views a handful of its items, carts some of
//! the viewed ones and buys some of the carted ones. The same configuration always gives the
//! same log.

use crate::interactions::{CountryCode, InteractionKind, InteractionLog, ItemMeta};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Users.
    pub users: usize,
    /// Items.
    pub items: usize,
    /// Leaf categories.
    pub categories: usize,
    /// Interactions to generate (approximately; sessions are whole).
    pub interactions: usize,
    /// Exponent of the Zipf law of item popularity within a category.
    pub zipf_exponent: f64,
    /// Days of history.
    pub days: u32,
    /// Seed.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    /// The benchmark's shop: 100,000 users, 20,000 items in 50 categories, 1.5 million
    /// interactions over 180 days.
    fn default() -> Self {
        SyntheticConfig {
            users: 100_000,
            items: 20_000,
            categories: 50,
            interactions: 1_500_000,
            zipf_exponent: 1.0,
            days: 180,
            seed: 7,
        }
    }
}

/// The first second of the generated history (2025-01-01T00:00:00Z).
pub const START_SECS: i64 = 1_735_689_600;

/// A small, fast, seeded generator (SplitMix64), so the crate needs no `rand`.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n - 1)
    }
}

/// Cumulative Zipf weights over `n` ranks.
fn zipf_cdf(n: usize, exponent: f64) -> Vec<f64> {
    let mut total = 0.0;
    (1..=n)
        .map(|rank| {
            total += 1.0 / (rank as f64).powf(exponent);
            total
        })
        .collect()
}

/// A rank drawn from cumulative weights.
fn draw(cdf: &[f64], rng: &mut SplitMix) -> usize {
    let target = rng.unit() * cdf.last().copied().unwrap_or(0.0);
    cdf.partition_point(|&c| c <= target).min(cdf.len().saturating_sub(1))
}

const COUNTRIES: [&str; 10] = ["US", "GB", "DE", "FR", "JP", "CA", "AU", "NL", "ES", "IT"];

/// Generates the log, with item metadata (category path, price, title) and user countries.
pub fn generate(config: &SyntheticConfig) -> InteractionLog {
    let mut rng = SplitMix(config.seed);
    let mut log = InteractionLog::new();
    let categories = config.categories.max(1);
    // Items are dealt to categories by a Zipf law over categories, then ranked within each.
    let category_cdf = zipf_cdf(categories, 0.8);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); categories];
    for item in 0..config.items {
        let category = if item < categories { item } else { draw(&category_cdf, &mut rng) };
        members[category].push(item as u32);
        let price = (5.0 * (200.0_f64).powf(rng.unit()) * 100.0).round() / 100.0;
        log.set_item_meta(
            &format!("item-{item:06}"),
            ItemMeta {
                title: Some(format!("Item {item}")),
                category_path: vec![format!("Department {}", category % 10), format!("Category {category}")],
                price: Some(price),
                ..ItemMeta::default()
            },
        );
    }
    let member_cdfs: Vec<Vec<f64>> = members.iter().map(|m| zipf_cdf(m.len(), config.zipf_exponent)).collect();
    let countries: Vec<CountryCode> = COUNTRIES.iter().filter_map(|c| CountryCode::parse(c)).collect();

    // Activity per user from a Pareto law (α = 1.5), scaled to the wanted total.
    let activity: Vec<f64> = (0..config.users).map(|_| (1.0 - rng.unit()).powf(-1.0 / 1.5)).collect();
    let total_activity: f64 = activity.iter().sum();
    let per_unit = config.interactions as f64 / total_activity.max(f64::MIN_POSITIVE);
    let span_secs = i64::from(config.days) * 86_400;
    let mut user_names: Vec<String> = Vec::with_capacity(config.users);
    for user in 0..config.users {
        let name = format!("user-{user:06}");
        log.set_user_country(&name, countries[rng.below(countries.len())]);
        user_names.push(name);
    }
    for (user, name) in user_names.iter().enumerate() {
        let favourites: Vec<usize> = (0..1 + rng.below(3)).map(|_| draw(&category_cdf, &mut rng)).collect();
        let budget = (activity[user] * per_unit).round().max(1.0) as usize;
        let mut produced = 0;
        while produced < budget {
            let category =
                if rng.unit() < 0.8 { favourites[rng.below(favourites.len())] } else { draw(&category_cdf, &mut rng) };
            if members[category].is_empty() {
                continue;
            }
            let mut time = START_SECS + (rng.unit() * span_secs as f64) as i64;
            let views = 1 + rng.below(6);
            for _ in 0..views {
                let item = members[category][draw(&member_cdfs[category], &mut rng)];
                let item_name = log.items.key(item).to_owned();
                log.push(name, &item_name, InteractionKind::View, time, 1.0);
                produced += 1;
                time += 30 + rng.below(240) as i64;
                if rng.unit() < 0.15 {
                    log.push(name, &item_name, InteractionKind::Cart, time, 1.0);
                    produced += 1;
                    if rng.unit() < 0.4 {
                        log.push(name, &item_name, InteractionKind::Purchase, time + 300, 1.0);
                        produced += 1;
                    }
                }
            }
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_log_with_a_popularity_head() {
        let config = SyntheticConfig {
            users: 500,
            items: 300,
            categories: 10,
            interactions: 10_000,
            ..SyntheticConfig::default()
        };
        let a = generate(&config);
        let b = generate(&config);
        assert_eq!(a.interactions, b.interactions);
        let n = a.interactions.len();
        assert!((9_000..12_000).contains(&n), "{n}");
        let mut counts = vec![0_usize; a.n_items()];
        for i in &a.interactions {
            counts[i.item.index()] += 1;
        }
        counts.sort_unstable_by(|x, y| y.cmp(x));
        let head: usize = counts[..30].iter().sum();
        assert!(head * 3 > n, "the top 10% of items draw over a third of the traffic: {head} of {n}");
    }
}
