//! Prices in the visitor's currency and the visitor's notation, without ICU.
//!
//! A personalised price is only useful if it reads like a local price: `1.234,50 €` in Berlin,
//! `$1,234.50` in Boston. ICU would do this perfectly but weighs megabytes of data, so this module
//! carries a small table instead: the decimal digits and symbol of common currencies, and for about
//! twenty locales the separators, the digit grouping and where the symbol and minus sign go (taken
//! from CLDR 44, simplified where CLDR's full pattern language would add nothing here). Anything
//! outside the table falls back predictably: a locale to its language's main locale, then to
//! `en-US`; a currency to its ISO code as the symbol.
//!
//! Conversion goes through one base currency ([`ExchangeRates`]): the operator uploads one rate per
//! currency, and every pair is derived from those, so the table cannot contradict itself.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// No-break space: keeps a symbol on the same line as its number.
const NBSP: &str = "\u{a0}";
/// Narrow no-break space: the French group separator.
const NNBSP: &str = "\u{202f}";
/// The typographic minus sign, which Swedish and Norwegian use instead of the hyphen.
const MINUS_SIGN: &str = "\u{2212}";

/// Why a set of exchange rates cannot be used; each variant names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExchangeRatesError {
    /// A currency code is not three uppercase ASCII letters (ISO 4217 form).
    #[error("`{field}` must be an ISO 4217 currency code of three uppercase letters, got {code:?}")]
    InvalidCurrencyCode {
        /// The field holding the code: `base` or `rates`.
        field: String,
        /// The code as given.
        code: String,
    },
    /// A rate is zero, negative, infinite or NaN.
    #[error("`{field}` must be a finite rate above zero, got {rate}")]
    InvalidRate {
        /// The field holding the rate, such as `rates.EUR`.
        field: String,
        /// The rate as given.
        rate: f64,
    },
    /// The base currency is listed among the rates with a rate other than 1.
    #[error("`{field}` is the base currency, so its rate must be 1, got {rate}")]
    BaseRateNotOne {
        /// The field holding the rate, such as `rates.USD`.
        field: String,
        /// The rate as given.
        rate: f64,
    },
}

/// Exchange rates against one base currency, as operators upload them
/// (`{"base":"USD","rates":{"EUR":0.92,"GBP":0.79,"JPY":151.2}}`).
///
/// Each rate is the number of units of that currency one unit of the base buys. Conversions
/// between two non-base currencies go through the base, so one table of N rates answers every
/// pair consistently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRates {
    /// The ISO 4217 code every rate is quoted against.
    pub base: String,
    /// Units of each currency per one unit of `base`, keyed by ISO 4217 code.
    pub rates: BTreeMap<String, f64>,
}

impl ExchangeRates {
    /// Checks the codes are ISO 4217-shaped and the rates usable, naming the first bad field.
    pub fn validate(&self) -> Result<(), ExchangeRatesError> {
        if !is_currency_code(&self.base) {
            return Err(ExchangeRatesError::InvalidCurrencyCode { field: "base".to_owned(), code: self.base.clone() });
        }
        for (code, &rate) in &self.rates {
            if !is_currency_code(code) {
                return Err(ExchangeRatesError::InvalidCurrencyCode { field: "rates".to_owned(), code: code.clone() });
            }
            if !(rate.is_finite() && rate > 0.0) {
                return Err(ExchangeRatesError::InvalidRate { field: format!("rates.{code}"), rate });
            }
            if *code == self.base && (rate - 1.0).abs() > 1e-9 {
                return Err(ExchangeRatesError::BaseRateNotOne { field: format!("rates.{code}"), rate });
            }
        }
        Ok(())
    }

    /// Units of `currency` per one unit of the base: 1 for the base itself, `None` when unknown.
    /// Codes are matched case-insensitively.
    pub fn rate(&self, currency: &str) -> Option<f64> {
        let code = uppercase_code(currency);
        if code.as_ref() == self.base {
            return Some(1.0);
        }
        self.rates.get(code.as_ref()).copied().filter(|rate| rate.is_finite() && *rate > 0.0)
    }

    /// Converts `amount` of `from` into `to` through the base currency. The same currency is the
    /// identity (even when the table does not list it); an unknown currency gives `None`.
    pub fn convert(&self, amount: f64, from: &str, to: &str) -> Option<f64> {
        if uppercase_code(from) == uppercase_code(to) {
            return Some(amount);
        }
        let from_rate = self.rate(from)?;
        let to_rate = self.rate(to)?;
        Some(amount / from_rate * to_rate)
    }
}

/// Whether `code` has the ISO 4217 shape: three uppercase ASCII letters.
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase())
}

/// The code in uppercase, borrowed when it already is (the usual case).
fn uppercase_code(code: &str) -> Cow<'_, str> {
    if code.bytes().any(|byte| byte.is_ascii_lowercase()) {
        Cow::Owned(code.to_ascii_uppercase())
    } else {
        Cow::Borrowed(code)
    }
}

/// How many decimal digits a currency shows (ISO 4217 minor units, CLDR's display digits).
pub fn currency_digits(currency: &str) -> u32 {
    match uppercase_code(currency).as_ref() {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" | "PYG" | "UGX" | "XAF" | "XOF" => 0,
        "BHD" | "KWD" | "JOD" | "OMR" | "TND" | "LYD" => 3,
        _ => 2,
    }
}

/// The symbol a currency shows when the locale has no symbol of its own for it; unknown
/// currencies show their code.
fn default_symbol(code: &str) -> Option<&'static str> {
    Some(match code {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        "CAD" => "CA$",
        "AUD" => "A$",
        "CHF" => "CHF",
        "SEK" | "NOK" => "kr",
        "DKK" => "kr.",
        "PLN" => "zł",
        "INR" => "₹",
        "BRL" => "R$",
        "MXN" => "MX$",
        "KRW" => "₩",
        _ => return None,
    })
}

/// How the integer digits are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// Groups of three: 1,234,567.
    Thousands,
    /// The Indian system: the last three digits, then groups of two: 12,34,567.
    Indian,
}

/// Which side of the number the currency symbol goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SymbolPosition {
    /// `$1.00`, `€ 1,00`.
    Before,
    /// `1,00 €`.
    After,
}

/// Where the minus sign of a negative amount goes, for locales whose symbol comes first (a
/// trailing symbol always takes the minus at the very start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MinusPosition {
    /// At the very start: `-$1.00`, `-€ 1,00`.
    Leading,
    /// Between the symbol (and its spacing) and the digits: `€ -1,00` (Dutch).
    BeforeDigits,
    /// In place of the spacing between symbol and digits: `CHF-1.00` (Swiss German).
    ReplacesSpacing,
}

/// One locale's currency notation.
#[derive(Debug, Clone, Copy)]
struct LocaleRules {
    /// The BCP 47 tag the rules were taken from.
    tag: &'static str,
    /// Between groups of integer digits.
    group: &'static str,
    /// Between the integer and the fraction.
    decimal: &'static str,
    grouping: Grouping,
    /// Integers with fewer than `3 + min_grouping_digits` digits are not grouped (`1234,50 €` in
    /// Spanish and Polish, CLDR's `minimumGroupingDigits` of 2).
    min_grouping_digits: usize,
    symbol_position: SymbolPosition,
    /// What separates the symbol from the digits.
    symbol_spacing: &'static str,
    minus: &'static str,
    minus_position: MinusPosition,
    /// Symbols this locale uses instead of the default ones (its own dollar is plain `$`).
    local_symbols: &'static [(&'static str, &'static str)],
}

impl LocaleRules {
    const fn western(tag: &'static str, local_symbols: &'static [(&'static str, &'static str)]) -> LocaleRules {
        LocaleRules {
            tag,
            group: ",",
            decimal: ".",
            grouping: Grouping::Thousands,
            min_grouping_digits: 1,
            symbol_position: SymbolPosition::Before,
            symbol_spacing: "",
            minus: "-",
            minus_position: MinusPosition::Leading,
            local_symbols,
        }
    }

    const fn trailing(tag: &'static str, group: &'static str, min_grouping_digits: usize) -> LocaleRules {
        LocaleRules {
            tag,
            group,
            decimal: ",",
            grouping: Grouping::Thousands,
            min_grouping_digits,
            symbol_position: SymbolPosition::After,
            symbol_spacing: NBSP,
            minus: "-",
            minus_position: MinusPosition::Leading,
            local_symbols: &[],
        }
    }

    fn symbol<'a>(&self, code: &'a str) -> &'a str {
        if let Some((_, symbol)) = self.local_symbols.iter().find(|(local_code, _)| *local_code == code) {
            return symbol;
        }
        default_symbol(code).unwrap_or(code)
    }
}

/// The built-in locales. Where this table and CLDR differ, the difference is deliberate and noted.
///
/// One simplification throughout: where a locale's own dollar is a plain `$`, a US dollar shows
/// as `US$` (CLDR writes `USD` in en-AU and `$ US` in fr-CA), which is just as unambiguous.
const LOCALES: &[LocaleRules] = &[
    LocaleRules::western("en-US", &[]),
    LocaleRules::western("en-GB", &[]),
    LocaleRules::western("en-CA", &[("CAD", "$"), ("USD", "US$")]),
    LocaleRules::western("en-AU", &[("AUD", "$"), ("USD", "US$")]),
    LocaleRules { grouping: Grouping::Indian, ..LocaleRules::western("en-IN", &[]) },
    LocaleRules::western("es-MX", &[("MXN", "$"), ("USD", "US$")]),
    // Japanese uses the full-width yen sign for its own currency; elsewhere JPY shows `¥`.
    LocaleRules::western("ja-JP", &[("JPY", "￥")]),
    LocaleRules::trailing("de-DE", ".", 1),
    LocaleRules { symbol_position: SymbolPosition::Before, ..LocaleRules::trailing("de-AT", ".", 1) },
    LocaleRules {
        decimal: ".",
        symbol_position: SymbolPosition::Before,
        minus_position: MinusPosition::ReplacesSpacing,
        ..LocaleRules::trailing("de-CH", "’", 1)
    },
    LocaleRules::trailing("fr-FR", NNBSP, 1),
    LocaleRules { local_symbols: &[("CAD", "$"), ("USD", "US$")], ..LocaleRules::trailing("fr-CA", NBSP, 1) },
    LocaleRules::trailing("es-ES", ".", 2),
    LocaleRules::trailing("it-IT", ".", 1),
    LocaleRules {
        symbol_position: SymbolPosition::Before,
        minus_position: MinusPosition::BeforeDigits,
        ..LocaleRules::trailing("nl-NL", ".", 1)
    },
    LocaleRules { symbol_position: SymbolPosition::Before, ..LocaleRules::trailing("pt-BR", ".", 1) },
    LocaleRules { minus: MINUS_SIGN, ..LocaleRules::trailing("sv-SE", NBSP, 1) },
    LocaleRules { minus: MINUS_SIGN, ..LocaleRules::trailing("nb-NO", NBSP, 1) },
    LocaleRules::trailing("da-DK", ".", 1),
    LocaleRules::trailing("pl-PL", NBSP, 2),
];

/// The locale each bare language falls back to (CLDR's likely subtags).
const LANGUAGE_DEFAULTS: &[(&str, &str)] = &[
    ("en", "en-US"),
    ("de", "de-DE"),
    ("fr", "fr-FR"),
    ("es", "es-ES"),
    ("it", "it-IT"),
    ("nl", "nl-NL"),
    ("pt", "pt-BR"),
    ("sv", "sv-SE"),
    ("nb", "nb-NO"),
    ("no", "nb-NO"),
    ("nn", "nb-NO"),
    ("da", "da-DK"),
    ("pl", "pl-PL"),
    ("ja", "ja-JP"),
];

/// The rules for a BCP 47 tag (`de-DE`, `de_de`, `de`, `zh-Hant-TW`...): the exact
/// language-region pair, else the language's main locale, else `en-US`.
fn locale_rules(locale: &str) -> &'static LocaleRules {
    // The common case on the hot path: a tag spelled exactly as in the table.
    if let Some(rules) = LOCALES.iter().find(|rules| rules.tag == locale) {
        return rules;
    }
    let mut subtags = locale.split(['-', '_']).filter(|subtag| !subtag.is_empty());
    let language = subtags.next().unwrap_or("");
    // The region is the first two-letter or three-digit subtag after the language (a four-letter
    // script subtag may come between).
    let region =
        subtags.find(|subtag| subtag.len() == 2 || (subtag.len() == 3 && subtag.bytes().all(|b| b.is_ascii_digit())));
    let matches_tag = |rules: &&LocaleRules, wanted_language: &str, wanted_region: &str| {
        let (rules_language, rules_region) = rules.tag.split_once('-').unwrap_or((rules.tag, ""));
        rules_language.eq_ignore_ascii_case(wanted_language) && rules_region.eq_ignore_ascii_case(wanted_region)
    };
    if let Some(region) = region {
        if let Some(rules) = LOCALES.iter().find(|rules| matches_tag(rules, language, region)) {
            return rules;
        }
    }
    let fallback_tag = LANGUAGE_DEFAULTS
        .iter()
        .find(|(default_language, _)| default_language.eq_ignore_ascii_case(language))
        .map_or("en-US", |(_, tag)| *tag);
    LOCALES.iter().find(|rules| rules.tag == fallback_tag).unwrap_or(&LOCALES[0])
}

/// The BCP 47 tag whose rules [`format_money`] applies for `locale`, after fallback: `de` gives
/// `de-DE`, an unknown locale `en-US`. Useful to explain a rendering.
pub fn resolved_locale(locale: &str) -> &'static str {
    locale_rules(locale).tag
}

/// The most decimals [`format_decimal`] prints; more would only show binary noise.
pub const MAX_FRACTION_DIGITS: u32 = 9;

/// Room for any finite f64 printed in full (at most 309 integer digits, or 326 characters for the
/// smallest subnormal) plus the rounding carry and [`MAX_FRACTION_DIGITS`].
const DIGIT_CAPACITY: usize = 400;

/// A fixed buffer that `write!` can fill without allocating.
struct StackText {
    bytes: [u8; DIGIT_CAPACITY],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A non-negative amount rounded to a number of decimals, as ASCII digits without a point.
struct RoundedDigits {
    digits: [u8; DIGIT_CAPACITY],
    /// Where the digits start in `digits` (0 when rounding carried into a new leading digit).
    start: usize,
    end: usize,
    integer_len: usize,
}

impl RoundedDigits {
    fn integer(&self) -> &[u8] {
        &self.digits[self.start..self.start + self.integer_len]
    }

    fn fraction(&self) -> &[u8] {
        &self.digits[self.start + self.integer_len..self.end]
    }

    /// `units` counted in 10^-`fraction_digits` (12345 with 2 digits is 123.45).
    fn from_units(mut units: u64, fraction_digits: usize) -> RoundedDigits {
        let mut rounded = RoundedDigits { digits: [b'0'; DIGIT_CAPACITY], start: 0, end: 32, integer_len: 0 };
        let mut position = rounded.end;
        // At least one integer digit, so 5 cents print as 0.05.
        while units > 0 || position > rounded.end - fraction_digits - 1 {
            position -= 1;
            rounded.digits[position] = b'0' + (units % 10) as u8;
            units /= 10;
        }
        rounded.start = position;
        rounded.integer_len = rounded.end - position - fraction_digits;
        rounded
    }

    fn is_zero(&self) -> bool {
        self.digits[self.start..self.end].iter().all(|digit| *digit == b'0')
    }
}

/// `amount` (finite) without its sign, rounded half away from zero to `fraction_digits` decimals
/// (at most [`MAX_FRACTION_DIGITS`]). Rounding works on the shortest decimal that reads back as
/// `amount`, so 1.005 rounds to 1.01 as a person expects, not to 1.00 as its binary value
/// (1.00499999...) would.
fn round_half_away_from_zero(amount: f64, fraction_digits: u32) -> RoundedDigits {
    let fraction_digits = fraction_digits.min(MAX_FRACTION_DIGITS);
    // Fast path, exact for every price below about ten million: away from a tie, the binary value
    // and the decimal a person wrote round the same way. Below 2^30 the product's error (under
    // 3e-7 with the input's own) is far inside the 1e-6 margin, so the side of the tie is certain.
    let scaled = amount.abs() * 10f64.powi(fraction_digits as i32);
    if scaled < f64::from(1u32 << 30) {
        let whole = scaled.floor();
        let remainder = scaled - whole;
        if (remainder - 0.5).abs() > 1e-6 {
            let units = if remainder > 0.5 { whole + 1.0 } else { whole };
            return RoundedDigits::from_units(units as u64, fraction_digits as usize);
        }
    }
    round_shortest_decimal(amount, fraction_digits as usize)
}

/// The slow path of [`round_half_away_from_zero`]: rounds the digits of the shortest decimal.
fn round_shortest_decimal(amount: f64, fraction_digits: usize) -> RoundedDigits {
    let mut shortest = StackText { bytes: [0; DIGIT_CAPACITY], len: 0 };
    // `Display` for f64 prints the shortest round-tripping decimal and never uses an exponent;
    // the buffer holds the longest one, and should it not, the amount is treated as zero rather
    // than panicking.
    if write!(shortest, "{}", amount.abs()).is_err() {
        shortest.len = 0;
    }
    let text = &shortest.bytes[..shortest.len];
    let point = text.iter().position(|byte| *byte == b'.').unwrap_or(text.len());
    let (integer_text, fraction_text) = (&text[..point], text.get(point + 1..).unwrap_or(&[]));
    let integer_text = if integer_text.is_empty() { b"0".as_slice() } else { integer_text };
    let mut rounded =
        RoundedDigits { digits: [b'0'; DIGIT_CAPACITY], start: 1, end: 1, integer_len: integer_text.len() };
    let kept_fraction = fraction_text.len().min(fraction_digits);
    let total = integer_text.len() + fraction_digits;
    if 1 + total > DIGIT_CAPACITY {
        rounded.integer_len = 1;
        rounded.end = 2 + fraction_digits.min(DIGIT_CAPACITY - 2);
        return rounded;
    }
    rounded.digits[1..1 + integer_text.len()].copy_from_slice(integer_text);
    rounded.digits[1 + integer_text.len()..1 + integer_text.len() + kept_fraction]
        .copy_from_slice(&fraction_text[..kept_fraction]);
    rounded.end = 1 + total;
    if fraction_text.get(fraction_digits).is_some_and(|digit| *digit >= b'5') {
        let mut position = rounded.end;
        loop {
            position -= 1;
            if position == 0 {
                rounded.digits[0] = b'1';
                rounded.start = 0;
                rounded.integer_len += 1;
                break;
            }
            if rounded.digits[position] == b'9' {
                rounded.digits[position] = b'0';
            } else {
                rounded.digits[position] += 1;
                break;
            }
        }
    }
    rounded
}

/// Appends the integer digits with the locale's group separators.
fn push_grouped(out: &mut String, integer: &[u8], rules: &LocaleRules) {
    let len = integer.len();
    let grouped = len >= 3 + rules.min_grouping_digits;
    for (index, digit) in integer.iter().enumerate() {
        let remaining = len - index;
        if grouped && index > 0 {
            let boundary = match rules.grouping {
                Grouping::Thousands => remaining.is_multiple_of(3),
                Grouping::Indian => remaining == 3 || (remaining > 3 && (remaining - 3).is_multiple_of(2)),
            };
            if boundary {
                out.push_str(rules.group);
            }
        }
        out.push(char::from(*digit));
    }
}

/// Appends an unsigned amount, already rounded into digits, in the locale's notation.
fn push_number(out: &mut String, rounded: &RoundedDigits, rules: &LocaleRules) {
    push_grouped(out, rounded.integer(), rules);
    let fraction = rounded.fraction();
    if !fraction.is_empty() {
        out.push_str(rules.decimal);
        out.extend(fraction.iter().map(|digit| char::from(*digit)));
    }
}

/// Formats a plain number in a locale's notation (`1,234.5` in `en-US`, `1.234,5` in `de-DE`)
/// with exactly `fraction_digits` decimals (at most [`MAX_FRACTION_DIGITS`]), rounded half away
/// from zero. Used for distances and anything else a template prints that is not money. A
/// non-finite value prints as Rust prints it.
pub fn format_decimal(value: f64, fraction_digits: u32, locale: &str) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let rules = locale_rules(locale);
    let rounded = round_half_away_from_zero(value, fraction_digits);
    let mut out = String::with_capacity(rounded.end - rounded.start + 8);
    if value < 0.0 && !rounded.is_zero() {
        out.push_str(rules.minus);
    }
    push_number(&mut out, &rounded, rules);
    out
}

/// Formats an amount of money the way `locale` writes it: `$1,234.50` (en-US), `1.234,50 €`
/// (de-DE), `1 234,50 €` (fr-FR), `CHF 1’234.50` (de-CH), `₹1,23,45,678.00` (en-IN).
///
/// The amount is rounded half away from zero to the currency's digits (0 for JPY, 3 for KWD).
/// In `ja-JP` the yen shows as the full-width `￥1,235`, as Japanese sites write it; in every
/// other locale as `¥`. A symbol made of letters that would touch the digits is set apart with a
/// no-break space (`CHF 1,234.50` in en-US), as CLDR's currency spacing rule does. A non-finite
/// amount cannot be a price: it comes back as its text and the code (`NaN USD`) rather than
/// panicking, so a bad feed shows up on the page instead of taking it down.
pub fn format_money(amount: f64, currency: &str, locale: &str) -> String {
    let code = uppercase_code(currency);
    if !amount.is_finite() {
        return format!("{amount} {code}");
    }
    let rules = locale_rules(locale);
    let symbol = rules.symbol(&code);
    let rounded = round_half_away_from_zero(amount, currency_digits(&code));
    let negative = amount < 0.0 && !rounded.is_zero();
    let mut out = String::with_capacity(rounded.end - rounded.start + symbol.len() + 12);
    match rules.symbol_position {
        SymbolPosition::Before => {
            let spacing = if rules.symbol_spacing.is_empty() && symbol.chars().last().is_some_and(char::is_alphabetic) {
                NBSP
            } else {
                rules.symbol_spacing
            };
            match (negative, rules.minus_position) {
                (true, MinusPosition::Leading) => {
                    out.push_str(rules.minus);
                    out.push_str(symbol);
                    out.push_str(spacing);
                }
                (true, MinusPosition::BeforeDigits) => {
                    out.push_str(symbol);
                    out.push_str(spacing);
                    out.push_str(rules.minus);
                }
                (true, MinusPosition::ReplacesSpacing) => {
                    out.push_str(symbol);
                    out.push_str(rules.minus);
                }
                (false, _) => {
                    out.push_str(symbol);
                    out.push_str(spacing);
                }
            }
            push_number(&mut out, &rounded, rules);
        }
        SymbolPosition::After => {
            let spacing = if rules.symbol_spacing.is_empty() && symbol.chars().next().is_some_and(char::is_alphabetic) {
                NBSP
            } else {
                rules.symbol_spacing
            };
            if negative {
                out.push_str(rules.minus);
            }
            push_number(&mut out, &rounded, rules);
            out.push_str(spacing);
            out.push_str(symbol);
        }
    }
    out
}

#[cfg(test)]
#[path = "money_tests.rs"]
mod tests;
