//! Recency–frequency–monetary summaries: how a purchase log becomes the (x, t_x, T, z̄) per
//! customer that the BG/NBD and Gamma-Gamma models are fitted on.
//!
//! The rules follow Fader, Hardie & Lee (2005) and the CDNOW reference (`tests/data/README.md`):
//! all rows of one customer on one calendar day are ONE purchase (their amounts add up); the first
//! purchase day starts the customer's clock and is not a repeat purchase; x counts the later
//! purchase days up to and including the calibration end; t_x is the time from the first to the
//! last of those days and T the time from the first day to the calibration end; z̄ is the mean
//! daily spend over the repeat days; the holdout count x* is the number of purchase days after the
//! calibration end up to and including the holdout end.

use std::str::FromStr;

use jiff::civil::Date;

use crate::ModelError;

/// The unit in which t_x and T are expressed. The models are unit-free, but α scales with the
/// unit, so a fit and its predictions must use the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Weeks of 7 days, as in the BG/NBD paper.
    #[default]
    Weeks,
    /// Calendar days.
    Days,
}

impl TimeUnit {
    /// Days in one unit, to convert day counts into the unit.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Weeks => 7.0,
            TimeUnit::Days => 1.0,
        }
    }

    /// The unit's name as the CLI and the JSON report spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Weeks => "weeks",
            TimeUnit::Days => "days",
        }
    }
}

impl FromStr for TimeUnit {
    type Err = ModelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "weeks" | "week" | "w" => Ok(TimeUnit::Weeks),
            "days" | "day" | "d" => Ok(TimeUnit::Days),
            other => Err(ModelError::input("time unit", format!("`{other}` is not one of `weeks`, `days`"))),
        }
    }
}

/// One purchase row of a customer's history: the raw fact everything in this crate derives from.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// The customer's identifier, compared as an exact string.
    pub customer_id: String,
    /// The calendar day of the purchase, in the shop's own calendar.
    pub date: Date,
    /// The amount spent (any currency; may be zero or negative for refunds).
    pub amount: f64,
}

/// A customer's repeat-buying history in calibration, and optionally the holdout count: the
/// sufficient statistics of the BG/NBD and Gamma-Gamma models.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerSummary {
    /// The customer's identifier.
    pub customer_id: String,
    /// x: the number of repeat purchase days in calibration.
    pub frequency: f64,
    /// t_x: time from the first to the last purchase day in calibration (0 when x = 0).
    pub recency: f64,
    /// T: time from the first purchase day to the calibration end.
    pub age: f64,
    /// z̄: mean spend per repeat purchase day in calibration (0 when x = 0).
    pub monetary: f64,
    /// x*: purchase days in the holdout, when a holdout end was given.
    pub holdout_frequency: Option<f64>,
}

/// The day number of a date, counted from 1970-01-01 (Hinnant's `days_from_civil`), so day
/// differences need no fallible span arithmetic.
fn day_number(date: Date) -> i64 {
    let month = i64::from(date.month());
    let day = i64::from(date.day());
    let year = i64::from(date.year()) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Summarises a purchase log per customer, sorted by customer id.
///
/// Customers whose first purchase falls after `calibration_end` are left out: they were not yet
/// customers when the calibration period ended. Rows after `holdout_end` (or after
/// `calibration_end` when there is no holdout) are ignored.
pub fn summarize(
    transactions: &[Transaction],
    calibration_end: Date,
    holdout_end: Option<Date>,
    unit: TimeUnit,
) -> Result<Vec<CustomerSummary>, ModelError> {
    if let Some(end) = holdout_end {
        if end <= calibration_end {
            return Err(ModelError::input(
                "holdout end",
                format!("{end} is not after the calibration end {calibration_end}"),
            ));
        }
    }
    if let Some(bad) = transactions.iter().find(|t| !t.amount.is_finite()) {
        return Err(ModelError::input(
            "amount",
            format!("customer `{}` on {} has a non-finite amount", bad.customer_id, bad.date),
        ));
    }
    let calibration_day = day_number(calibration_end);
    let last_day = day_number(holdout_end.unwrap_or(calibration_end));

    let mut rows: Vec<(&str, i64, f64)> = transactions
        .iter()
        .map(|t| (t.customer_id.as_str(), day_number(t.date), t.amount))
        .filter(|(_, day, _)| *day <= last_day)
        .collect();
    rows.sort_by(|left, right| left.0.cmp(right.0).then(left.1.cmp(&right.1)));

    let mut summaries = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let customer = rows[start].0;
        let mut end = start;
        while end < rows.len() && rows[end].0 == customer {
            end += 1;
        }
        if let Some(summary) =
            summarize_customer(customer, &rows[start..end], calibration_day, holdout_end.is_some(), unit)
        {
            summaries.push(summary);
        }
        start = end;
    }
    Ok(summaries)
}

/// Summarises one customer's rows, sorted by day; `None` when the first purchase is after the
/// calibration end.
fn summarize_customer(
    customer: &str,
    rows: &[(&str, i64, f64)],
    calibration_day: i64,
    with_holdout: bool,
    unit: TimeUnit,
) -> Option<CustomerSummary> {
    let first_day = rows.first()?.1;
    if first_day > calibration_day {
        return None;
    }
    let mut repeat_days = 0_u64;
    let mut repeat_spend = 0.0;
    let mut last_calibration_day = first_day;
    let mut holdout_days = 0_u64;
    let mut index = 0;
    while index < rows.len() {
        // Every row on the same day is part of one purchase.
        let day = rows[index].1;
        let mut spend = 0.0;
        while index < rows.len() && rows[index].1 == day {
            spend += rows[index].2;
            index += 1;
        }
        if day > calibration_day {
            holdout_days += 1;
        } else if day > first_day {
            repeat_days += 1;
            repeat_spend += spend;
            last_calibration_day = day;
        }
    }
    let days_per_unit = unit.days();
    Some(CustomerSummary {
        customer_id: customer.to_owned(),
        frequency: repeat_days as f64,
        recency: (last_calibration_day - first_day) as f64 / days_per_unit,
        age: (calibration_day - first_day) as f64 / days_per_unit,
        monetary: if repeat_days > 0 { repeat_spend / repeat_days as f64 } else { 0.0 },
        holdout_frequency: with_holdout.then_some(holdout_days as f64),
    })
}

/// Parses a date cell: `YYYY-MM-DD`, `YYYYMMDD`, or an ISO 8601 date-time (with or without an
/// offset). A date-time counts on the calendar day written in it, not converted to UTC: a purchase
/// belongs to the shop's day on which it happened.
pub fn parse_date(text: &str) -> Result<Date, ModelError> {
    parse_date_cell(text).map_err(|message| ModelError::input("date", message))
}

/// [`parse_date`] with the bare message, for the CSV reader to put in its row error.
fn parse_date_cell(text: &str) -> Result<Date, String> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() == 8 && bytes.iter().all(u8::is_ascii_digit) {
        let year: i16 = text[0..4].parse().map_err(|_| bad_date(text))?;
        let month: i8 = text[4..6].parse().map_err(|_| bad_date(text))?;
        let day: i8 = text[6..8].parse().map_err(|_| bad_date(text))?;
        return Date::new(year, month, day).map_err(|error| format!("{}: {error}", bad_date(text)));
    }
    if bytes.len() > 10 && matches!(bytes[10], b'T' | b't' | b' ') {
        let is_date_time = text.parse::<jiff::civil::DateTime>().is_ok() || text.parse::<jiff::Timestamp>().is_ok();
        if !is_date_time {
            return Err(bad_date(text));
        }
        return text[..10].parse::<Date>().map_err(|_| bad_date(text));
    }
    text.parse::<Date>().map_err(|_| bad_date(text))
}

/// The message for a date cell in none of the accepted forms.
fn bad_date(text: &str) -> String {
    format!("`{text}` is not a date (expected YYYY-MM-DD, YYYYMMDD or an ISO 8601 date-time)")
}

/// Parses transactions from CSV text; see [`read_transactions_csv`].
pub fn parse_transactions_csv(text: &str) -> Result<Vec<Transaction>, ModelError> {
    read_transactions_csv(text.as_bytes())
}

/// Reads transactions from CSV with a header row that has at least the columns `customer_id`,
/// `date` and `amount` (in any order, names matched without regard to case or surrounding
/// spaces; other columns are ignored). A bad row fails the whole read with its 1-based line
/// number, because silently dropping purchases would bias every model fitted on the rest.
pub fn read_transactions_csv(reader: impl std::io::Read) -> Result<Vec<Transaction>, ModelError> {
    let mut csv_reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(reader);
    let headers = csv_reader.headers().map_err(|error| csv_error(&error, 1))?.clone();
    let find = |column: &'static str| -> Result<usize, ModelError> {
        headers
            .iter()
            .position(|name| name.trim().eq_ignore_ascii_case(column))
            .ok_or_else(|| ModelError::MissingColumn { column, found: headers.iter().collect::<Vec<_>>().join(",") })
    };
    let id_column = find("customer_id")?;
    let date_column = find("date")?;
    let amount_column = find("amount")?;

    let mut transactions = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let more = csv_reader.read_record(&mut record).map_err(|error| csv_error(&error, 0))?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, csv::Position::line);
        let cell = |column: usize, name: &str| -> Result<&str, ModelError> {
            record.get(column).ok_or_else(|| ModelError::InvalidRow { line, message: format!("missing `{name}` cell") })
        };
        let customer_id = cell(id_column, "customer_id")?;
        if customer_id.is_empty() {
            return Err(ModelError::InvalidRow { line, message: "empty `customer_id`".to_owned() });
        }
        let date = parse_date_cell(cell(date_column, "date")?)
            .map_err(|message| ModelError::InvalidRow { line, message: format!("column `date`: {message}") })?;
        let amount_text = cell(amount_column, "amount")?;
        let amount = amount_text.parse::<f64>().ok().filter(|amount| amount.is_finite()).ok_or_else(|| {
            ModelError::InvalidRow { line, message: format!("column `amount`: `{amount_text}` is not a finite number") }
        })?;
        transactions.push(Transaction { customer_id: customer_id.to_owned(), date, amount });
    }
    Ok(transactions)
}

/// Turns a CSV reader error (ragged row, bad UTF-8, I/O) into a row error with its line number.
fn csv_error(error: &csv::Error, fallback_line: u64) -> ModelError {
    let line = error.position().map_or(fallback_line, csv::Position::line);
    ModelError::InvalidRow { line, message: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().expect("test dates are valid")
    }

    fn purchase(customer: &str, day: &str, amount: f64) -> Transaction {
        Transaction { customer_id: customer.to_owned(), date: date(day), amount }
    }

    /// Summarises `transactions` with calibration end 2020-01-29 (four weeks after 2020-01-01)
    /// and holdout end 2020-02-26, and compares (x, t_x, T, z̄, x*) of `customer`.
    fn check(
        transactions: &[Transaction],
        unit: TimeUnit,
        customer: &str,
        expected: Option<(f64, f64, f64, f64, f64)>,
    ) {
        let summaries =
            summarize(transactions, date("2020-01-29"), Some(date("2020-02-26")), unit).expect("valid input");
        let found = summaries.iter().find(|s| s.customer_id == customer);
        let actual =
            found.map(|s| (s.frequency, s.recency, s.age, s.monetary, s.holdout_frequency.unwrap_or(f64::NAN)));
        assert_eq!(actual, expected, "summary of {customer}");
    }

    #[test]
    fn one_time_buyer_has_zero_frequency_and_recency() {
        check(&[purchase("a", "2020-01-01", 10.0)], TimeUnit::Weeks, "a", Some((0.0, 0.0, 4.0, 0.0, 0.0)));
    }

    #[test]
    fn rows_on_the_same_day_are_one_purchase_with_summed_spend() {
        let log = [
            purchase("a", "2020-01-01", 10.0),
            purchase("a", "2020-01-15", 5.0),
            purchase("a", "2020-01-15", 7.0),
            purchase("a", "2020-01-22", 3.0),
        ];
        check(&log, TimeUnit::Weeks, "a", Some((2.0, 3.0, 4.0, 7.5, 0.0)));
    }

    #[test]
    fn first_purchase_spend_is_not_part_of_the_mean_repeat_spend() {
        let log = [purchase("a", "2020-01-01", 1000.0), purchase("a", "2020-01-08", 20.0)];
        check(&log, TimeUnit::Days, "a", Some((1.0, 7.0, 28.0, 20.0, 0.0)));
    }

    #[test]
    fn holdout_counts_purchase_days_after_calibration_up_to_its_end() {
        let log = [
            purchase("a", "2020-01-01", 1.0),
            purchase("a", "2020-01-29", 1.0),
            purchase("a", "2020-01-30", 1.0),
            purchase("a", "2020-01-30", 1.0),
            purchase("a", "2020-02-26", 1.0),
            purchase("a", "2020-02-27", 1.0),
        ];
        check(&log, TimeUnit::Weeks, "a", Some((1.0, 4.0, 4.0, 1.0, 2.0)));
    }

    #[test]
    fn customers_acquired_after_calibration_are_left_out() {
        check(&[purchase("late", "2020-02-01", 1.0)], TimeUnit::Weeks, "late", None);
    }

    #[test]
    fn summaries_are_sorted_by_customer_id_and_input_order_does_not_matter() {
        let log =
            [purchase("b", "2020-01-08", 1.0), purchase("a", "2020-01-02", 1.0), purchase("b", "2020-01-01", 1.0)];
        let summaries = summarize(&log, date("2020-01-29"), None, TimeUnit::Days).expect("valid input");
        let ids: Vec<&str> = summaries.iter().map(|s| s.customer_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(summaries[1].frequency, 1.0);
        assert_eq!(summaries[1].age, 28.0);
        assert_eq!(summaries[1].holdout_frequency, None);
    }

    #[test]
    fn holdout_end_before_calibration_end_is_refused() {
        let error =
            summarize(&[], date("2020-01-29"), Some(date("2020-01-01")), TimeUnit::Weeks).expect_err("bad order");
        assert!(error.is_user_error());
    }

    #[test]
    fn day_numbers_agree_with_jiff_across_leap_years_and_centuries() {
        let epoch = date("1970-01-01");
        for text in ["1600-02-29", "1899-12-31", "1970-01-01", "2000-03-01", "2024-02-29"] {
            let expected = epoch.until(date(text)).expect("span fits").get_days();
            assert_eq!(day_number(date(text)), i64::from(expected), "{text}");
        }
    }

    #[test]
    fn dates_are_read_in_every_accepted_form() {
        let table = [
            ("2024-03-05", Some("2024-03-05")),
            ("20240305", Some("2024-03-05")),
            ("2024-03-05T23:30:00", Some("2024-03-05")),
            ("2024-03-05T23:30:00Z", Some("2024-03-05")),
            ("2024-03-05T23:30:00-05:00", Some("2024-03-05")),
            ("2024-03-05 08:00:00", Some("2024-03-05")),
            ("20240230", None),
            ("2024-13-01", None),
            ("2024-03-05Tnonsense", None),
            ("yesterday", None),
            ("", None),
        ];
        for (text, expected) in table {
            let actual = parse_date(text).ok();
            assert_eq!(actual, expected.map(date), "parse_date({text:?})");
        }
    }

    #[test]
    fn csv_reader_ignores_extra_columns_and_column_order() {
        let text = "amount,store,Customer_ID,date\n12.5,x,c1,2020-01-01\n3,y,c2,20200102\n";
        let transactions = parse_transactions_csv(text).expect("valid CSV");
        assert_eq!(transactions, [purchase("c1", "2020-01-01", 12.5), purchase("c2", "2020-01-02", 3.0)]);
    }

    #[test]
    fn csv_errors_name_the_line_and_the_problem() {
        let table = [
            ("customer_id,date\nc1,2020-01-01\n", "no `amount` column"),
            ("customer_id,date,amount\nc1,2020-01-01,1\nc2,2020-02-30,1\n", "line 3"),
            ("customer_id,date,amount\nc1,2020-01-01,abc\n", "line 2"),
            ("customer_id,date,amount\nc1,2020-01-01,NaN\n", "line 2"),
            ("customer_id,date,amount\n,2020-01-01,1\n", "line 2"),
            ("customer_id,date,amount\nc1,2020-01-01,1\nc1,2020-01-01\n", "line 3"),
        ];
        for (text, expected) in table {
            let error = parse_transactions_csv(text).expect_err("bad CSV");
            let message = error.to_string();
            assert!(message.contains(expected), "{text:?} gave {message:?}");
            assert!(error.is_user_error());
        }
    }
}
