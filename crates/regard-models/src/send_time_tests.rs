//! Tests of send-time optimisation: local hours across daylight-saving changes, the empirical
//! Bayes concentration against data drawn from a known Dirichlet-multinomial, and the shrinkage
//! a person's pick goes through.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// A time zone from the tz database (bundled for the tests, see Cargo.toml).
fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).expect("zone in the tz database")
}

/// An instant from RFC 3339 text.
fn at(text: &str) -> Timestamp {
    text.parse().expect("valid timestamp")
}

/// Wednesday 20:00, the busiest hour of [`evening_pattern`].
const PATTERN_PEAK: usize = 2 * 24 + 20;

/// Tuesday 19:00.
const TUESDAY_19: usize = 24 + 19;

/// A weekly pattern with an evening peak around 20:00 every day, strongest on Wednesday.
fn evening_pattern() -> Vec<f64> {
    let weights: Vec<f64> = (0..HOURS_PER_WEEK)
        .map(|hour| {
            let from_peak = (hour % 24) as f64 - 20.0;
            let day_factor = if hour / 24 == 2 { 1.5 } else { 1.0 };
            day_factor * (1.0 + 3.0 * (-(from_peak / 2.0).powi(2)).exp())
        })
        .collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|weight| weight / total).collect()
}

/// A Gamma(shape, 1) draw by Marsaglia & Tsang (2000), boosted by U^{1/shape} below shape 1.
fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.gen();
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let v = (1.0 + c * normal).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        if u.ln() < 0.5 * normal * normal + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// People drawn from the Dirichlet-multinomial: shares ~ Dirichlet(κ p), then 2 to 40 events
/// each by those shares.
fn dirichlet_multinomial_users(rng: &mut ChaCha8Rng, pattern: &[f64], kappa: f64, users: usize) -> Vec<Vec<u32>> {
    (0..users)
        .map(|_| {
            let draws: Vec<f64> = pattern.iter().map(|share| gamma(rng, kappa * share)).collect();
            let total: f64 = draws.iter().sum();
            let mut cumulative = Vec::with_capacity(HOURS_PER_WEEK);
            let mut running = 0.0;
            for draw in &draws {
                running += draw / total;
                cumulative.push(running);
            }
            let mut counts = vec![0_u32; HOURS_PER_WEEK];
            for _ in 0..rng.gen_range(2..=40) {
                let u: f64 = rng.gen::<f64>() * running;
                let hour = cumulative.partition_point(|&edge| edge < u).min(HOURS_PER_WEEK - 1);
                counts[hour] += 1;
            }
            counts
        })
        .collect()
}

/// A model fitted on 3,000 people who mostly follow [`evening_pattern`] (κ = 200), fitted once.
fn conformist_model() -> SendTimeModel {
    static MODEL: std::sync::OnceLock<SendTimeModel> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(19);
            fit_send_time(&dirichlet_multinomial_users(&mut rng, &evening_pattern(), 200.0, 3_000)).expect("fit")
        })
        .clone()
}

/// Counts with `events` events at `hour`.
fn events_at(hour: usize, events: u32) -> Vec<u32> {
    let mut counts = vec![0; HOURS_PER_WEEK];
    counts[hour] = events;
    counts
}

#[test]
fn hour_of_week_counts_from_monday_midnight_in_local_time() {
    let table = [
        // 2026-03-30 is a Monday.
        ("UTC", "2026-03-30T00:00:00Z", 0),
        ("UTC", "2026-03-29T23:59:59Z", 167),
        ("UTC", "2026-03-31T19:30:00Z", TUESDAY_19),
        // Berlin springs forward at 01:00 UTC on Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST.
        ("Europe/Berlin", "2026-03-29T00:30:00Z", 6 * 24 + 1),
        ("Europe/Berlin", "2026-03-29T01:30:00Z", 6 * 24 + 3),
        // Berlin falls back at 01:00 UTC on Sunday 2026-10-25: 02:00–02:59 happens twice.
        ("Europe/Berlin", "2026-10-25T00:30:00Z", 6 * 24 + 2),
        ("Europe/Berlin", "2026-10-25T01:30:00Z", 6 * 24 + 2),
        ("Europe/Berlin", "2026-10-25T02:30:00Z", 6 * 24 + 3),
        // Sunday 22:30 UTC is already Monday in Berlin.
        ("Europe/Berlin", "2026-03-29T22:30:00Z", 0),
        // New York springs forward on 2026-03-08 at 07:00 UTC and falls back on 2026-11-01 at
        // 06:00 UTC.
        ("America/New_York", "2026-03-08T06:30:00Z", 6 * 24 + 1),
        ("America/New_York", "2026-03-08T07:30:00Z", 6 * 24 + 3),
        ("America/New_York", "2026-11-01T05:30:00Z", 6 * 24 + 1),
        ("America/New_York", "2026-11-01T06:30:00Z", 6 * 24 + 1),
        // Monday 03:00 UTC is still Sunday evening in New York.
        ("America/New_York", "2026-03-30T03:00:00Z", 6 * 24 + 23),
    ];
    for (zone_name, instant, expected) in table {
        assert_eq!(hour_of_week(at(instant), &zone(zone_name)), expected, "{instant} in {zone_name}");
    }
}

#[test]
fn next_occurrence_finds_the_next_local_hour_across_daylight_saving_changes() {
    let sunday_1am = 6 * 24 + 1;
    let sunday_2am = 6 * 24 + 2;
    let monday_9am = 9;
    let table = [
        // The spring-forward gap: Sunday 02:00 does not exist in Berlin on 2026-03-29, so the
        // compatible reading is 03:00 CEST = 01:00 UTC.
        ("Europe/Berlin", sunday_2am, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"),
        // The fall-back fold: the first 02:00 (CEST) unless it has passed, then the second (CET).
        ("Europe/Berlin", sunday_2am, "2026-10-24T12:00:00Z", "2026-10-25T00:00:00Z"),
        ("Europe/Berlin", sunday_2am, "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z"),
        ("Europe/Berlin", sunday_2am, "2026-10-25T01:00:01Z", "2026-11-01T01:00:00Z"),
        // An ordinary week, and the occurrence at exactly `after`.
        ("Europe/Berlin", monday_9am, "2026-03-29T12:00:00Z", "2026-03-30T07:00:00Z"),
        ("Europe/Berlin", monday_9am, "2026-03-30T07:00:00Z", "2026-03-30T07:00:00Z"),
        ("Europe/Berlin", monday_9am, "2026-03-30T07:00:00.001Z", "2026-04-06T07:00:00Z"),
        // The week before the change is still on winter time.
        ("Europe/Berlin", monday_9am, "2026-03-22T12:00:00Z", "2026-03-23T08:00:00Z"),
        // New York skips 02:00 on 2026-03-08 and repeats 01:00 (not 02:00) on 2026-11-01.
        ("America/New_York", sunday_2am, "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z"),
        ("America/New_York", sunday_2am, "2026-10-31T12:00:00Z", "2026-11-01T07:00:00Z"),
        ("America/New_York", sunday_1am, "2026-10-31T12:00:00Z", "2026-11-01T05:00:00Z"),
        ("America/New_York", sunday_1am, "2026-11-01T05:00:01Z", "2026-11-01T06:00:00Z"),
        ("America/New_York", TUESDAY_19, "2026-03-30T12:00:00Z", "2026-03-31T23:00:00Z"),
        ("America/New_York", TUESDAY_19, "2026-12-01T12:00:00Z", "2026-12-02T00:00:00Z"),
        // Hours beyond the week wrap around.
        ("UTC", HOURS_PER_WEEK + 1, "2026-03-30T00:30:00Z", "2026-03-30T01:00:00Z"),
    ];
    for (zone_name, target, after, expected) in table {
        let found = next_occurrence(target, &zone(zone_name), at(after));
        assert_eq!(found, at(expected), "hour {target} after {after} in {zone_name}");
    }
}

#[test]
fn next_occurrence_is_never_early_and_at_most_a_week_away() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for zone_name in ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"] {
        let tz = zone(zone_name);
        for _ in 0..2_000 {
            let after = Timestamp::from_second(rng.gen_range(1_767_225_600..1_798_761_600)).expect("2026");
            let target = rng.gen_range(0..HOURS_PER_WEEK);
            let found = next_occurrence(target, &tz, after);
            assert!(found >= after, "{zone_name}: {found} before {after}");
            let wait_secs = found.as_second() - after.as_second();
            assert!(wait_secs <= 7 * 24 * 3600 + 3600, "{zone_name}: {found} is {wait_secs}s after {after}");
            let local = tz.to_datetime(found);
            let wanted = local.date().at((target % 24) as i8, 0, 0, 0);
            let skipped = matches!(tz.to_ambiguous_timestamp(wanted).offset(), AmbiguousOffset::Gap { .. });
            // A skipped local hour resolves to the instant just after the gap (02:30 on Lord Howe
            // Island, whose clocks move by half an hour); every other hour is hit exactly.
            if !skipped {
                assert_eq!(hour_of_week(found, &tz), target, "{zone_name}: {found} for {target}");
                assert_eq!((local.minute(), local.second()), (0, 0), "{zone_name}: {found}");
            }
        }
    }
}

#[test]
fn population_pattern_is_smoothed_circularly_and_sums_to_one() {
    let mut counts = vec![0; HOURS_PER_WEEK];
    counts[HOURS_PER_WEEK - 1] = 1_000;
    let model = fit_send_time(&[counts]).expect("fit");
    let total: f64 = model.population.iter().sum();
    assert!((total - 1.0).abs() < 1e-12);
    assert!(model.population.iter().all(|&share| share > 0.0));
    // Sunday 23:00 spills into Monday 00:00 as much as into Sunday 22:00.
    assert_eq!(model.population[0], model.population[HOURS_PER_WEEK - 2]);
    assert!(model.population[0] > 100.0 * model.population[84]);
    assert_eq!((model.users, model.events), (1, 1_000));
}

#[test]
fn concentration_is_recovered_from_a_known_dirichlet_multinomial() {
    for (seed, true_kappa) in [(1, 5.0), (2, 50.0), (3, 400.0)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let users = dirichlet_multinomial_users(&mut rng, &evening_pattern(), true_kappa, 4_000);
        let model = fit_send_time(&users).expect("fit");
        // 4,000 people with 2–40 events pin κ down to a few per cent (5.02, 49.6 and 414 here);
        // the band leaves room for other seeds.
        let ratio = model.concentration / true_kappa;
        assert!((0.8..=1.25).contains(&ratio), "κ = {true_kappa}: fitted {model:?}");
        assert!(model.warnings.is_empty(), "{:?}", model.warnings);
    }
}

#[test]
fn person_without_events_gets_the_population_peak() {
    let model = conformist_model();
    let prediction = model.predict(&[0; HOURS_PER_WEEK]);
    assert_eq!(prediction.hour_of_week, PATTERN_PEAK, "{prediction:?}");
    assert_eq!((prediction.weekday.as_str(), prediction.hour), ("wednesday", 20));
    assert_eq!((prediction.own_events, prediction.own_weight), (0, 0.0));
    assert_eq!(prediction.probability, model.population[PATTERN_PEAK]);
}

#[test]
fn person_with_forty_events_on_tuesday_evening_gets_tuesday_evening() {
    let model = conformist_model();
    let prediction = model.predict(&events_at(TUESDAY_19, 40));
    assert_eq!((prediction.weekday.as_str(), prediction.hour), ("tuesday", 19), "{prediction:?}");
    assert_eq!(prediction.own_events, 40);
    assert!((prediction.own_weight - 40.0 / (40.0 + model.concentration)).abs() < 1e-15);
}

#[test]
fn one_event_at_an_odd_hour_is_shrunk_to_the_population_peak() {
    let model = conformist_model();
    let thursday_4am = 3 * 24 + 4;
    let prediction = model.predict(&events_at(thursday_4am, 1));
    assert_eq!(prediction.hour_of_week, PATTERN_PEAK, "κ = {}: {prediction:?}", model.concentration);
    assert!(prediction.own_weight < 0.05);
}

#[test]
fn prediction_tolerates_malformed_counts_and_models() {
    let model = conformist_model();
    let short = model.predict(&[3, 0, 1]);
    assert_eq!(short.own_events, 4);
    let mut long = vec![0; HOURS_PER_WEEK + 5];
    long[HOURS_PER_WEEK + 1] = 1_000;
    assert_eq!(model.predict(&long), model.predict(&[]));

    let broken = SendTimeModel { population: vec![f64::NAN; 3], concentration: f64::NAN, ..model };
    let prediction = broken.predict(&events_at(TUESDAY_19, 2));
    assert_eq!(prediction.hour_of_week, TUESDAY_19);
    assert!(prediction.probability.is_finite() && prediction.own_weight.is_finite());
    let empty = broken.predict(&[]);
    assert!(empty.probability.is_finite() && empty.own_weight.is_finite(), "{empty:?}");
}

#[test]
fn single_events_only_leave_the_concentration_unidentified() {
    let users: Vec<Vec<u32>> = (0..50).map(|user| events_at(user % HOURS_PER_WEEK, 1)).collect();
    let model = fit_send_time(&users).expect("fit");
    assert_eq!(model.concentration, UNIDENTIFIED_CONCENTRATION);
    assert_eq!(model.warnings.len(), 1, "{:?}", model.warnings);
}

#[test]
fn identical_people_push_the_concentration_to_its_cap_with_a_warning() {
    // Everyone spreads their events evenly over the week: nobody differs from the population.
    let users = vec![vec![3_u32; HOURS_PER_WEEK]; 200];
    let model = fit_send_time(&users).expect("fit");
    assert!(model.concentration >= 1e5, "{model:?}");
    assert_eq!(model.warnings.len(), 1, "{:?}", model.warnings);
}

#[test]
fn heavy_users_beyond_the_tail_cap_are_counted_exactly() {
    let pattern = evening_pattern();
    let heavy = {
        let mut counts = events_at(PATTERN_PEAK, 5_000);
        counts[TUESDAY_19] = 3_000;
        counts
    };
    let users = vec![heavy, events_at(TUESDAY_19, 4), events_at(3, 2)];
    let population: [f64; HOURS_PER_WEEK] = pattern.clone().try_into().expect("168 shares");
    let likelihood = ConcentrationLikelihood::new(&users, &population);
    // The same log-likelihood summed term by term with ln Γ.
    let direct = |kappa: f64| -> f64 {
        users
            .iter()
            .map(|counts| {
                let n: f64 = counts.iter().map(|&c| f64::from(c)).sum();
                let mut total = ln_gamma(kappa) - ln_gamma(kappa + n);
                for (hour, &count) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
                    total += ln_gamma(kappa * pattern[hour] + f64::from(count)) - ln_gamma(kappa * pattern[hour]);
                }
                total
            })
            .sum()
    };
    for kappa in [0.3_f64, 7.0, 900.0] {
        let (value, gradient) = likelihood.evaluate(&[kappa.ln()]);
        let expected = direct(kappa);
        assert!((-value * 3.0 - expected).abs() < 1e-8 * expected.abs(), "κ = {kappa}");
        // ln Γ of counts in the thousands is ~4e4, good to ~1e-11: a wide step keeps that noise
        // below the tolerance.
        let step = 1e-3;
        let numeric = (likelihood.value(&[kappa.ln() + step]) - likelihood.value(&[kappa.ln() - step])) / (2.0 * step);
        assert!(
            (gradient[0] - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
            "κ = {kappa}: {gradient:?} vs {numeric}"
        );
    }
}

#[test]
fn bad_inputs_are_errors() {
    assert!(matches!(fit_send_time(&[]), Err(ModelError::InsufficientData(_))));
    assert!(matches!(fit_send_time(&[vec![0; HOURS_PER_WEEK]]), Err(ModelError::InsufficientData(_))));
    assert!(matches!(fit_send_time(&[vec![1; 24]]), Err(ModelError::InvalidInput { .. })));
}
