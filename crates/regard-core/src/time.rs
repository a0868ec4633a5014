//! Instants as Unix milliseconds, and Segment's clock-skew correction.

/// One second in milliseconds.
pub const SECOND_MS: i64 = 1_000;
/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Parses an ISO-8601 / RFC 3339 instant (`2026-01-02T03:04:05.678Z`, with an offset, or a bare
/// date) into Unix milliseconds.
pub fn parse_iso8601_ms(text: &str) -> Option<i64> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    // SDKs sometimes send a local date-time with no offset; Segment reads it as UTC.
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond());
    }
    None
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds, the form Segment uses.
pub fn format_iso8601_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => ms.to_string(),
    }
}

/// The times a client reported for a message, before correction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportedTimes {
    /// `timestamp` (or `originalTimestamp`): when the event happened by the device's clock.
    pub timestamp_ms: Option<i64>,
    /// `sentAt`: when the device sent it, by the same clock (per message or per batch).
    pub sent_at_ms: Option<i64>,
}

/// Corrects a device's clock skew the way Segment documents it:
/// `timestamp = receivedAt - (sentAt - originalTimestamp)`. Without `sentAt` the device's
/// timestamp is trusted as it is; without any timestamp the event happened when received.
pub fn corrected_timestamp_ms(reported: ReportedTimes, received_at_ms: i64) -> i64 {
    match (reported.timestamp_ms, reported.sent_at_ms) {
        (Some(original), Some(sent)) => received_at_ms.saturating_sub(sent.saturating_sub(original)),
        (Some(original), None) => original,
        (None, _) => received_at_ms,
    }
}

/// A source of the current time, injected so tests can move time by hand.
pub trait Clock: Send + Sync {
    /// The current instant in Unix milliseconds.
    fn now_ms(&self) -> i64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_corrected_from_sent_at() {
        // The device clock runs 10 s fast: it says it sent at 100 s but we received at 90 s.
        let reported = ReportedTimes { timestamp_ms: Some(95_000), sent_at_ms: Some(100_000) };
        assert_eq!(corrected_timestamp_ms(reported, 90_000), 85_000);
    }

    #[test]
    fn missing_times_fall_back_in_order() {
        let only_ts = ReportedTimes { timestamp_ms: Some(5), sent_at_ms: None };
        assert_eq!(corrected_timestamp_ms(only_ts, 9), 5);
        assert_eq!(corrected_timestamp_ms(ReportedTimes::default(), 9), 9);
    }

    #[test]
    fn iso_forms_parse() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:01.500Z"), Some(1_500));
        assert_eq!(parse_iso8601_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_iso8601_ms("1970-01-02"), Some(DAY_MS));
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:02"), Some(2_000));
        assert_eq!(parse_iso8601_ms("yesterday"), None);
        assert_eq!(format_iso8601_ms(1_500), "1970-01-01T00:00:01.500Z");
    }
}
