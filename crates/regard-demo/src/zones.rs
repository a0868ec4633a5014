//! Calendar arithmetic and the UTC offsets of the few time zones demo users live in.
//!
//! The generator needs local wall-clock time (people shop in the evening and read email at
//! breakfast *in their own time zone*), but it must produce byte-identical output on every
//! machine. Asking the host's time-zone database would make the output depend on which tzdata
//! release is installed, or fail in a container without `/usr/share/zoneinfo`. The rules of
//! the zones used here are simple and stable, so they are written out once below instead.

/// Milliseconds in one day, the unit most of the generator's arithmetic uses.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Milliseconds in one hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in one minute.
pub(crate) const MINUTE_MS: i64 = 60_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
///
/// This is Howard Hinnant's `days_from_civil`; it is total for every `i64` year the
/// generator can meet, so no error path is needed.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The `(year, month, day)` of a count of days since 1970-01-01 (Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats a day count as `YYYY-MM-DD`, the form birthdays take in traits.
pub(crate) fn format_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Day of the week of a day count, with Sunday as 0 (1970-01-01 was a Thursday).
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The day count of the `nth` Sunday (1-based) of a month, or of its last Sunday when `nth` is 0.
fn sunday_of_month(year: i64, month: u32, nth: i64) -> i64 {
    if nth == 0 {
        let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        let last_day = days_from_civil(next_year, next_month, 1) - 1;
        last_day - weekday(last_day)
    } else {
        let first_day = days_from_civil(year, month, 1);
        let first_sunday = first_day + (7 - weekday(first_day)) % 7;
        first_sunday + 7 * (nth - 1)
    }
}

/// Which daylight-saving rule a zone follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DstRule {
    /// No daylight-saving time (Tokyo, Brisbane).
    Never,
    /// Second Sunday of March 02:00 local until first Sunday of November 02:00 local.
    NorthAmerica,
    /// Last Sunday of March 01:00 UTC until last Sunday of October 01:00 UTC.
    Europe,
    /// First Sunday of October 02:00 local until first Sunday of April 03:00 local.
    SouthEastAustralia,
}

/// An IANA time zone as far as the generator needs it: a name and a rule for its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zone {
    /// The IANA name sent in `context.timezone` and the `timezone` trait.
    pub name: &'static str,
    /// Offset from UTC outside daylight-saving time, in seconds.
    pub standard_offset_secs: i64,
    /// When daylight-saving time applies.
    pub rule: DstRule,
}

impl Zone {
    /// The zone's offset from UTC at a UTC instant, in milliseconds.
    pub(crate) fn offset_ms(&self, utc_ms: i64) -> i64 {
        let standard_ms = self.standard_offset_secs * 1000;
        if self.is_daylight_saving(utc_ms) {
            standard_ms + HOUR_MS
        } else {
            standard_ms
        }
    }

    /// Whether daylight-saving time is in force at a UTC instant.
    fn is_daylight_saving(&self, utc_ms: i64) -> bool {
        let standard_ms = self.standard_offset_secs * 1000;
        let (year, _, _) = civil_from_days((utc_ms + standard_ms).div_euclid(DAY_MS));
        // Converts "day at a local standard-time hour" to a UTC instant.
        let local_standard = |days: i64, hour: i64| days * DAY_MS + hour * HOUR_MS - standard_ms;
        match self.rule {
            DstRule::Never => false,
            DstRule::NorthAmerica => {
                let start = local_standard(sunday_of_month(year, 3, 2), 2);
                // 02:00 daylight time is 01:00 standard time.
                let end = local_standard(sunday_of_month(year, 11, 1), 1);
                (start..end).contains(&utc_ms)
            }
            DstRule::Europe => {
                let start = sunday_of_month(year, 3, 0) * DAY_MS + HOUR_MS;
                let end = sunday_of_month(year, 10, 0) * DAY_MS + HOUR_MS;
                (start..end).contains(&utc_ms)
            }
            DstRule::SouthEastAustralia => {
                // 03:00 daylight time is 02:00 standard time.
                let end = local_standard(sunday_of_month(year, 4, 1), 2);
                let start = local_standard(sunday_of_month(year, 10, 1), 2);
                utc_ms < end || utc_ms >= start
            }
        }
    }

    /// The UTC instant at which the local clock shows `local_hour` (fractional) on the local
    /// calendar day that contains the UTC instant `day_of`.
    pub(crate) fn at_local_hour(&self, day_of: i64, local_hour: f64) -> i64 {
        let local_day = (day_of + self.offset_ms(day_of)).div_euclid(DAY_MS);
        let local_ms = local_day * DAY_MS + (local_hour * HOUR_MS as f64) as i64;
        let approximate_utc = local_ms - self.standard_offset_secs * 1000;
        local_ms - self.offset_ms(approximate_utc)
    }

    /// The local hour of the day (fractional, in `[0, 24)`) at a UTC instant.
    #[cfg(test)]
    pub(crate) fn local_hour(&self, utc_ms: i64) -> f64 {
        let local_ms = utc_ms + self.offset_ms(utc_ms);
        local_ms.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64
    }
}

/// Builds a zone constant from its name, standard offset in hours and rule.
const fn zone(name: &'static str, standard_offset_hours: i64, rule: DstRule) -> Zone {
    Zone { name, standard_offset_secs: standard_offset_hours * 3600, rule }
}

/// US Eastern time.
pub(crate) const NEW_YORK: Zone = zone("America/New_York", -5, DstRule::NorthAmerica);
/// US Central time.
pub(crate) const CHICAGO: Zone = zone("America/Chicago", -6, DstRule::NorthAmerica);
/// US Pacific time.
pub(crate) const LOS_ANGELES: Zone = zone("America/Los_Angeles", -8, DstRule::NorthAmerica);
/// Canadian Eastern time.
pub(crate) const TORONTO: Zone = zone("America/Toronto", -5, DstRule::NorthAmerica);
/// Canadian Pacific time.
pub(crate) const VANCOUVER: Zone = zone("America/Vancouver", -8, DstRule::NorthAmerica);
/// UK time.
pub(crate) const LONDON: Zone = zone("Europe/London", 0, DstRule::Europe);
/// German time.
pub(crate) const BERLIN: Zone = zone("Europe/Berlin", 1, DstRule::Europe);
/// French time.
pub(crate) const PARIS: Zone = zone("Europe/Paris", 1, DstRule::Europe);
/// Dutch time.
pub(crate) const AMSTERDAM: Zone = zone("Europe/Amsterdam", 1, DstRule::Europe);
/// Spanish time.
pub(crate) const MADRID: Zone = zone("Europe/Madrid", 1, DstRule::Europe);
/// Italian time.
pub(crate) const ROME: Zone = zone("Europe/Rome", 1, DstRule::Europe);
/// Japanese time.
pub(crate) const TOKYO: Zone = zone("Asia/Tokyo", 9, DstRule::Never);
/// New South Wales time.
pub(crate) const SYDNEY: Zone = zone("Australia/Sydney", 10, DstRule::SouthEastAustralia);
/// Victorian time.
pub(crate) const MELBOURNE: Zone = zone("Australia/Melbourne", 10, DstRule::SouthEastAustralia);
/// Queensland time, which keeps no daylight-saving time.
pub(crate) const BRISBANE: Zone = zone("Australia/Brisbane", 10, DstRule::Never);

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `YYYY-MM-DDTHH:MM:SSZ` into Unix milliseconds through jiff, the reference.
    fn utc(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).unwrap_or(i64::MIN)
    }

    #[test]
    fn civil_dates_round_trip_through_day_counts() {
        for days in [-800_000, -1, 0, 1, 59, 10_957, 20_513, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(days_from_civil(2024, 2, 29)), "2024-02-29");
    }

    #[test]
    fn offsets_follow_the_published_2026_transitions() {
        // Transition dates from the IANA tz database for 2026: US 8 March / 1 November,
        // EU 29 March / 25 October, Sydney 5 April / 4 October.
        let cases = [
            (NEW_YORK, "2026-03-08T06:59:59Z", -5),
            (NEW_YORK, "2026-03-08T07:00:00Z", -4),
            (NEW_YORK, "2026-11-01T05:59:59Z", -4),
            (NEW_YORK, "2026-11-01T06:00:00Z", -5),
            (LOS_ANGELES, "2026-07-01T12:00:00Z", -7),
            (BERLIN, "2026-03-29T00:59:59Z", 1),
            (BERLIN, "2026-03-29T01:00:00Z", 2),
            (LONDON, "2026-10-25T00:59:59Z", 1),
            (LONDON, "2026-10-25T01:00:00Z", 0),
            (SYDNEY, "2026-04-04T15:59:59Z", 11),
            (SYDNEY, "2026-04-04T16:00:00Z", 10),
            (SYDNEY, "2026-10-03T15:59:59Z", 10),
            (SYDNEY, "2026-10-03T16:00:00Z", 11),
            (BRISBANE, "2026-01-15T00:00:00Z", 10),
            (TOKYO, "2026-07-01T00:00:00Z", 9),
        ];
        for (zone, instant, hours) in cases {
            assert_eq!(zone.offset_ms(utc(instant)), hours * HOUR_MS, "{} at {instant}", zone.name);
        }
    }

    #[test]
    fn local_hours_convert_both_ways() {
        let noon_in_new_york = NEW_YORK.at_local_hour(utc("2026-07-01T15:00:00Z"), 12.0);
        assert_eq!(noon_in_new_york, utc("2026-07-01T16:00:00Z"));
        assert!((NEW_YORK.local_hour(noon_in_new_york) - 12.0).abs() < 1e-9);
        let evening_in_tokyo = TOKYO.at_local_hour(utc("2026-07-01T15:00:00Z"), 20.5);
        assert_eq!(evening_in_tokyo, utc("2026-07-02T11:30:00Z"));
    }
}
