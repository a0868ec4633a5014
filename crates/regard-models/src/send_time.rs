//! Send-time optimisation: each person's best hour of the week to receive a message, from when
//! they opened or clicked before, shrunk toward the population's weekly pattern when they have
//! little history.
//!
//! Hours are local to the person's time zone and counted from Monday 00:00 (hour 0) to Sunday
//! 23:00 (hour 167), so that "Tuesday 19:00" means the same to a reader in Berlin and in New
//! York, and a daylight-saving change does not shift anyone's habits by an hour.
//!
//! The model is the Dirichlet-multinomial: a person's shares of the 168 hours are drawn from a
//! Dirichlet with mean the population's pattern p and concentration κ, and their events fall
//! into hours by those shares. A person with n events then has posterior shares
//! (κ p_h + c_h) / (κ + n): their own counts weigh n / (n + κ), the population the rest. The
//! pattern p is the pooled counts, lightly smoothed; κ is estimated by empirical Bayes, as the
//! value that makes the people's counts most likely.

use jiff::civil::{Date, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use crate::optimize::{self, MinimizeOptions, Objective};
use crate::special::{digamma, ln_gamma};
use crate::ModelError;

/// The number of hours in a week, the length of every per-hour vector in this module.
pub const HOURS_PER_WEEK: usize = 168;

/// Pseudo-events added to every hour of the pooled counts, so that no hour has a population
/// share of zero (which would make the Dirichlet improper and forbid ever choosing that hour).
/// Against millions of events it vanishes; on a young install it keeps the pattern humble.
const PSEUDO_EVENTS_PER_HOUR: f64 = 0.5;

/// The concentration used when the data cannot identify it: when nobody has two or more events,
/// nothing shows how much people differ from the population. At 50 a person's own history
/// outweighs the population's pattern from their 51st event on, a cautious middle.
pub const UNIDENTIFIED_CONCENTRATION: f64 = 50.0;

/// Bounds of the estimated concentration κ. Below 0.01 every person would keep to one hour;
/// above 1e6 nobody's history would ever count.
const CONCENTRATION_RANGE: (f64, f64) = (1e-2, 1e6);

/// Counts above this are handled with ln Γ differences instead of the per-unit sums that make
/// the likelihood fast, so that one heavy user cannot make every evaluation slow.
const TAIL_CAP: usize = 1024;

/// English weekday names, Monday first, as the API spells them.
const WEEKDAY_NAMES: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// The hour of the week of `timestamp` in time zone `tz`: Monday 00:00–00:59 local is 0, Sunday
/// 23:00–23:59 is 167.
pub fn hour_of_week(timestamp: Timestamp, tz: &TimeZone) -> usize {
    let local = tz.to_datetime(timestamp);
    weekday_index(local.weekday()) * 24 + local.hour() as usize
}

/// 0 for Monday through 6 for Sunday.
fn weekday_index(weekday: Weekday) -> usize {
    weekday.to_monday_zero_offset() as usize
}

/// The population's weekly pattern and how far people stray from it: everything needed to pick
/// a send time for anyone, including people never seen before.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SendTimeModel {
    /// p: the population's share of events in each of the 168 local hours of the week, summing
    /// to 1, every share positive.
    pub population: Vec<f64>,
    /// κ: the Dirichlet concentration, the number of events' worth of weight the population's
    /// pattern carries against a person's own history.
    pub concentration: f64,
    /// The number of people with at least one event.
    pub users: usize,
    /// The total number of events.
    pub events: u64,
    /// Plain-language notes on anything that weakens the fit (an unidentified or boundary κ).
    pub warnings: Vec<String>,
}

/// Fits the [`SendTimeModel`] from each person's event counts per local hour of the week.
///
/// Every entry of `user_counts` must have [`HOURS_PER_WEEK`] counts, built with
/// [`hour_of_week`] in that person's time zone. The pattern is the pooled counts smoothed with
/// weights ¼, ½, ¼ over neighbouring hours (circularly, so Sunday 23:00 neighbours Monday
/// 00:00). κ maximises the Dirichlet-multinomial marginal likelihood of everyone's counts with
/// the pattern held fixed, a one-dimensional search over ln κ. People with fewer than two events
/// say nothing about κ; if nobody has two, κ is [`UNIDENTIFIED_CONCENTRATION`] with a warning.
pub fn fit_send_time(user_counts: &[Vec<u32>]) -> Result<SendTimeModel, ModelError> {
    let mut pooled = [0.0_f64; HOURS_PER_WEEK];
    let mut users = 0;
    let mut events = 0_u64;
    for (user_idx, counts) in user_counts.iter().enumerate() {
        if counts.len() != HOURS_PER_WEEK {
            return Err(ModelError::input(
                "user_counts",
                format!("user #{user_idx} has {} hourly counts, expected {HOURS_PER_WEEK}", counts.len()),
            ));
        }
        let user_events: u64 = counts.iter().map(|&count| u64::from(count)).sum();
        if user_events > 0 {
            users += 1;
            events += user_events;
            for (hour, &count) in counts.iter().enumerate() {
                pooled[hour] += f64::from(count);
            }
        }
    }
    if events == 0 {
        return Err(ModelError::InsufficientData("no opens or clicks to learn send times from".to_owned()));
    }
    let population = smoothed_shares(&pooled);

    let mut warnings = Vec::new();
    let likelihood = ConcentrationLikelihood::new(user_counts, &population);
    let concentration = if likelihood.users == 0.0 {
        warnings.push(format!(
            "nobody has two or more events, so how much people differ from the population is \
             unknown; the concentration is set to {UNIDENTIFIED_CONCENTRATION}"
        ));
        UNIDENTIFIED_CONCENTRATION
    } else {
        fit_concentration(&likelihood, &mut warnings)?
    };
    Ok(SendTimeModel { population: population.to_vec(), concentration, users, events, warnings })
}

/// The pooled counts smoothed over neighbouring hours, with pseudo-events, as shares.
fn smoothed_shares(pooled: &[f64; HOURS_PER_WEEK]) -> [f64; HOURS_PER_WEEK] {
    let mut smoothed = [0.0; HOURS_PER_WEEK];
    for (hour, share) in smoothed.iter_mut().enumerate() {
        let before = pooled[(hour + HOURS_PER_WEEK - 1) % HOURS_PER_WEEK];
        let after = pooled[(hour + 1) % HOURS_PER_WEEK];
        *share = 0.25 * before + 0.5 * pooled[hour] + 0.25 * after + PSEUDO_EVENTS_PER_HOUR;
    }
    let total: f64 = smoothed.iter().sum();
    smoothed.map(|share| share / total)
}

/// The Dirichlet-multinomial log-likelihood of κ with the pattern p fixed, summed over people
/// with two or more events (one event is equally likely under every κ):
///
///   Σ_u [ln Γ(κ) − ln Γ(κ + n_u) + Σ_h (ln Γ(κ p_h + c_uh) − ln Γ(κ p_h))]
///   = Σ_h Σ_k H_hk ln(κ p_h + k) − Σ_k N_k ln(κ + k),
///
/// where H_hk counts the people with more than k events in hour h and N_k those with more than k
/// in all (Minka 2000, "Estimating a Dirichlet distribution"). Each evaluation then costs the
/// largest counts rather than the number of people.
struct ConcentrationLikelihood {
    /// p_h.
    population: [f64; HOURS_PER_WEEK],
    /// H_hk for k below the hour's largest count (capped at [`TAIL_CAP`]).
    hour_tails: Vec<Vec<f64>>,
    /// N_k for k below the largest total (capped at [`TAIL_CAP`]).
    total_tails: Vec<f64>,
    /// (hour, count) for counts above [`TAIL_CAP`], whose units beyond the cap are added with ln Γ.
    hour_overflow: Vec<(usize, f64)>,
    /// Totals above [`TAIL_CAP`].
    total_overflow: Vec<f64>,
    /// The number of people with two or more events.
    users: f64,
}

/// Turns a histogram of counts (index = count, capped) into tail counts: `tails[k]` is the
/// number of counts above k.
fn tails_from_histogram(histogram: &[f64]) -> Vec<f64> {
    let mut tails = vec![0.0; histogram.len().saturating_sub(1)];
    let mut above = 0.0;
    for k in (0..tails.len()).rev() {
        above += histogram[k + 1];
        tails[k] = above;
    }
    tails
}

/// Adds one count to a histogram indexed by the count, capped at [`TAIL_CAP`].
fn record(histogram: &mut Vec<f64>, count: usize) {
    let index = count.min(TAIL_CAP);
    if histogram.len() <= index {
        histogram.resize(index + 1, 0.0);
    }
    histogram[index] += 1.0;
}

impl ConcentrationLikelihood {
    fn new(user_counts: &[Vec<u32>], population: &[f64; HOURS_PER_WEEK]) -> Self {
        let mut hour_histograms: Vec<Vec<f64>> = vec![Vec::new(); HOURS_PER_WEEK];
        let mut total_histogram = Vec::new();
        let mut hour_overflow = Vec::new();
        let mut total_overflow = Vec::new();
        let mut users = 0.0;
        for counts in user_counts {
            let total: u64 = counts.iter().map(|&count| u64::from(count)).sum();
            if total < 2 {
                continue;
            }
            users += 1.0;
            let total = usize::try_from(total).unwrap_or(usize::MAX);
            record(&mut total_histogram, total);
            if total > TAIL_CAP {
                total_overflow.push(total as f64);
            }
            for (hour, &count) in counts.iter().enumerate().filter(|(_, &count)| count > 0) {
                record(&mut hour_histograms[hour], count as usize);
                if count as usize > TAIL_CAP {
                    hour_overflow.push((hour, f64::from(count)));
                }
            }
        }
        ConcentrationLikelihood {
            population: *population,
            hour_tails: hour_histograms.iter().map(|histogram| tails_from_histogram(histogram)).collect(),
            total_tails: tails_from_histogram(&total_histogram),
            hour_overflow,
            total_overflow,
            users,
        }
    }

    /// The negative mean log-likelihood and its derivative, over θ = ln κ.
    fn evaluate(&self, theta: &[f64; 1]) -> (f64, [f64; 1]) {
        let kappa = theta[0].exp();
        if !(kappa.is_finite() && kappa > 0.0) {
            return (f64::INFINITY, [0.0]);
        }
        let cap = TAIL_CAP as f64;
        let mut total = 0.0;
        let mut derivative = 0.0;
        for (tails, &share) in self.hour_tails.iter().zip(&self.population) {
            let alpha = kappa * share;
            for (k, &people) in tails.iter().enumerate() {
                total += people * (alpha + k as f64).ln();
                derivative += people * share / (alpha + k as f64);
            }
        }
        for &(hour, count) in &self.hour_overflow {
            let share = self.population[hour];
            let alpha = kappa * share;
            total += ln_gamma(alpha + count) - ln_gamma(alpha + cap);
            derivative += share * (digamma(alpha + count) - digamma(alpha + cap));
        }
        for (k, &people) in self.total_tails.iter().enumerate() {
            total -= people * (kappa + k as f64).ln();
            derivative -= people / (kappa + k as f64);
        }
        for &count in &self.total_overflow {
            total -= ln_gamma(kappa + count) - ln_gamma(kappa + cap);
            derivative -= digamma(kappa + count) - digamma(kappa + cap);
        }
        let scale = -1.0 / self.users;
        let value = total * scale;
        if !value.is_finite() {
            return (f64::INFINITY, [0.0]);
        }
        (value, [derivative * kappa * scale])
    }
}

impl Objective<1> for ConcentrationLikelihood {
    fn value(&self, theta: &[f64; 1]) -> f64 {
        self.evaluate(theta).0
    }

    fn value_and_gradient(&self, theta: &[f64; 1]) -> (f64, [f64; 1]) {
        self.evaluate(theta)
    }
}

/// The maximum-likelihood κ within its range, with a warning when it ends on an edge.
fn fit_concentration(likelihood: &ConcentrationLikelihood, warnings: &mut Vec<String>) -> Result<f64, ModelError> {
    let lower = [CONCENTRATION_RANGE.0.ln()];
    let upper = [CONCENTRATION_RANGE.1.ln()];
    let minimum = optimize::minimize(likelihood, [10.0_f64.ln()], lower, upper, &MinimizeOptions::default());
    if !minimum.value.is_finite() {
        return Err(ModelError::Numerical {
            context: "send-time fit",
            message: "no concentration gives a finite likelihood".to_owned(),
        });
    }
    let concentration = minimum.theta[0].exp();
    if minimum.theta[0] >= upper[0] {
        warnings.push(format!(
            "people's hours vary no more than chance around the population's pattern: the \
             concentration ran to its cap {concentration:.0e}, so personal histories are ignored"
        ));
    } else if minimum.theta[0] <= lower[0] {
        warnings.push(format!(
            "people keep almost entirely to hours of their own: the concentration ran to its floor \
             {concentration:.0e}, so the population's pattern is ignored for anyone with events"
        ));
    } else if !minimum.gradient_small {
        warnings.push("the concentration search stopped short of the maximum".to_owned());
    }
    Ok(concentration)
}

/// The best hour of the week to reach one person, with the evidence behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SendTimePrediction {
    /// The chosen hour of the week, 0 (Monday 00:00) to 167 (Sunday 23:00), local time.
    pub hour_of_week: usize,
    /// The chosen weekday in lower-case English, "monday" to "sunday".
    pub weekday: String,
    /// The chosen local hour of the day, 0 to 23.
    pub hour: u8,
    /// The person's posterior share of events in that hour (κ p_h + c_h) / (κ + n).
    pub probability: f64,
    /// n: the person's own events.
    pub own_events: u64,
    /// n / (n + κ): the weight of the person's own history against the population's pattern.
    pub own_weight: f64,
}

impl SendTimeModel {
    /// The hour of the week with the largest posterior share for a person with these counts per
    /// local hour of the week (ties go to the earliest hour).
    ///
    /// `counts` should have [`HOURS_PER_WEEK`] entries; missing hours count as zero and extra
    /// entries are ignored, so a malformed row degrades to the population's answer rather than
    /// failing a request. A hand-built model with invalid shares or concentration is read
    /// defensively in the same spirit: invalid shares count as zero (a uniform pattern if none is
    /// left) and an invalid concentration as zero.
    pub fn predict(&self, counts: &[u32]) -> SendTimePrediction {
        let mut pattern = [0.0; HOURS_PER_WEEK];
        for (hour, share) in pattern.iter_mut().enumerate() {
            let given = self.population.get(hour).copied().unwrap_or(0.0);
            *share = if given.is_finite() && given > 0.0 { given } else { 0.0 };
        }
        let pattern_total: f64 = pattern.iter().sum();
        if pattern_total > 0.0 && pattern_total.is_finite() {
            pattern = pattern.map(|share| share / pattern_total);
        } else {
            pattern = [1.0 / HOURS_PER_WEEK as f64; HOURS_PER_WEEK];
        }
        let kappa = if self.concentration.is_finite() && self.concentration > 0.0 { self.concentration } else { 0.0 };
        let own = |hour: usize| counts.get(hour).map_or(0.0, |&count| f64::from(count));
        let own_events: u64 = counts.iter().take(HOURS_PER_WEEK).map(|&count| u64::from(count)).sum();
        let n = own_events as f64;

        let posterior = |hour: usize| {
            if kappa + n > 0.0 {
                (kappa * pattern[hour] + own(hour)) / (kappa + n)
            } else {
                pattern[hour]
            }
        };
        let mut best = 0;
        let mut best_share = posterior(0);
        for hour in 1..HOURS_PER_WEEK {
            let share = posterior(hour);
            if share > best_share {
                best = hour;
                best_share = share;
            }
        }
        SendTimePrediction {
            hour_of_week: best,
            weekday: WEEKDAY_NAMES[best / 24].to_owned(),
            hour: (best % 24) as u8,
            probability: best_share,
            own_events,
            own_weight: if kappa + n > 0.0 { n / (kappa + n) } else { 1.0 },
        }
    }
}

/// The first instant at or after `after` that starts local hour-of-week `hour_of_week` (minute 0)
/// in time zone `tz`.
///
/// When that local hour does not exist (the clocks spring forward over it), it is resolved the
/// way jiff's `compatible` disambiguation does: the time after the gap, e.g. 03:00 for a
/// skipped 02:00. When it exists twice (the clocks fall back), the earlier instant is chosen
/// unless it has already passed, then the later. `hour_of_week` is taken modulo
/// [`HOURS_PER_WEEK`]. At the very end of jiff's range (year 9999), where no later occurrence
/// exists, `after` itself is returned; the result is never before `after`.
pub fn next_occurrence(hour_of_week: usize, tz: &TimeZone, after: Timestamp) -> Timestamp {
    let hour_of_week = hour_of_week % HOURS_PER_WEEK;
    let weekday = hour_of_week / 24;
    let hour = (hour_of_week % 24) as i8;
    let mut date: Date = tz.to_datetime(after).date();
    // The weekday recurs within a week; the second week covers an occurrence earlier on the
    // first day than `after`.
    for _ in 0..15 {
        if weekday_index(date.weekday()) == weekday {
            let local = date.at(hour, 0, 0, 0);
            let ambiguous = tz.to_ambiguous_timestamp(local);
            let candidates = match ambiguous.offset() {
                AmbiguousOffset::Fold { .. } => [ambiguous.earlier().ok(), ambiguous.later().ok()],
                _ => [ambiguous.compatible().ok(), None],
            };
            for candidate in candidates.into_iter().flatten() {
                if candidate >= after {
                    return candidate;
                }
            }
        }
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    after
}

#[cfg(test)]
#[path = "send_time_tests.rs"]
mod tests;
