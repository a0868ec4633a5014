use super::*;

/// Formats and compares, showing the invisible spaces when it fails.
#[track_caller]
fn check(amount: f64, currency: &str, locale: &str, expected: &str) {
    let formatted = format_money(amount, currency, locale);
    assert_eq!(
        formatted.escape_unicode().to_string(),
        expected.escape_unicode().to_string(),
        "{amount} {currency} in {locale}: got {formatted:?}, want {expected:?}"
    );
}

fn sample_rates() -> ExchangeRates {
    serde_json::from_str(r#"{"base":"USD","rates":{"EUR":0.92,"GBP":0.79,"JPY":151.2}}"#).unwrap()
}

#[test]
fn each_locale_writes_its_own_currency_its_own_way() {
    // Expected strings follow CLDR 44 (what `Intl.NumberFormat` prints), except where the module
    // documentation says otherwise.
    let table: &[(&str, &str, &str)] = &[
        ("en-US", "USD", "$1,234.50"),
        ("en-GB", "GBP", "£1,234.50"),
        ("en-CA", "CAD", "$1,234.50"),
        ("en-AU", "AUD", "$1,234.50"),
        ("en-IN", "INR", "₹1,234.50"),
        ("de-DE", "EUR", "1.234,50\u{a0}€"),
        ("de-AT", "EUR", "€\u{a0}1.234,50"),
        ("de-CH", "CHF", "CHF\u{a0}1’234.50"),
        ("fr-FR", "EUR", "1\u{202f}234,50\u{a0}€"),
        ("fr-CA", "CAD", "1\u{a0}234,50\u{a0}$"),
        ("es-ES", "EUR", "1234,50\u{a0}€"),
        ("es-MX", "MXN", "$1,234.50"),
        ("it-IT", "EUR", "1.234,50\u{a0}€"),
        ("nl-NL", "EUR", "€\u{a0}1.234,50"),
        ("pt-BR", "BRL", "R$\u{a0}1.234,50"),
        ("sv-SE", "SEK", "1\u{a0}234,50\u{a0}kr"),
        ("nb-NO", "NOK", "1\u{a0}234,50\u{a0}kr"),
        ("da-DK", "DKK", "1.234,50\u{a0}kr."),
        ("pl-PL", "PLN", "1234,50\u{a0}zł"),
        ("ja-JP", "JPY", "￥1,235"),
    ];
    for (locale, currency, expected) in table {
        check(1234.5, currency, locale, expected);
    }
}

#[test]
fn negative_amounts_put_the_minus_where_the_locale_does() {
    let table: &[(&str, &str, &str)] = &[
        ("en-US", "USD", "-$1,234.50"),
        ("de-DE", "EUR", "-1.234,50\u{a0}€"),
        ("de-AT", "EUR", "-€\u{a0}1.234,50"),
        ("de-CH", "CHF", "CHF-1’234.50"),
        ("fr-FR", "EUR", "-1\u{202f}234,50\u{a0}€"),
        ("nl-NL", "EUR", "€\u{a0}-1.234,50"),
        ("pt-BR", "BRL", "-R$\u{a0}1.234,50"),
        ("sv-SE", "SEK", "\u{2212}1\u{a0}234,50\u{a0}kr"),
        ("nb-NO", "NOK", "\u{2212}1\u{a0}234,50\u{a0}kr"),
        ("ja-JP", "JPY", "-￥1,235"),
    ];
    for (locale, currency, expected) in table {
        check(-1234.5, currency, locale, expected);
    }
}

#[test]
fn indian_grouping_puts_twos_after_the_first_three() {
    check(12_345_678.0, "INR", "en-IN", "₹1,23,45,678.00");
    check(123_456.5, "INR", "en-IN", "₹1,23,456.50");
    check(999.0, "INR", "en-IN", "₹999.00");
    check(1_000_000_000.0, "INR", "en-IN", "₹1,00,00,00,000.00");
}

#[test]
fn spanish_and_polish_group_only_from_five_digits() {
    check(1234.5, "EUR", "es-ES", "1234,50\u{a0}€");
    check(12_345.5, "EUR", "es-ES", "12.345,50\u{a0}€");
    check(12_345.5, "PLN", "pl-PL", "12\u{a0}345,50\u{a0}zł");
}

#[test]
fn currencies_have_their_own_decimal_digits() {
    check(1234.5, "JPY", "en-US", "¥1,235");
    check(1234.4, "KRW", "en-US", "₩1,234");
    check(1.2345, "KWD", "en-US", "KWD\u{a0}1.235");
    check(1.2344, "BHD", "de-DE", "1,234\u{a0}BHD");
}

#[test]
fn foreign_dollars_are_told_apart_and_local_ones_are_plain() {
    check(5.0, "CAD", "en-US", "CA$5.00");
    check(5.0, "USD", "en-CA", "US$5.00");
    check(5.0, "AUD", "en-GB", "A$5.00");
    check(5.0, "MXN", "en-US", "MX$5.00");
    check(5.0, "MXN", "es-MX", "$5.00");
    check(5.0, "USD", "es-MX", "US$5.00");
}

#[test]
fn unknown_currencies_show_their_code_set_apart_from_the_digits() {
    check(5.0, "XYZ", "en-US", "XYZ\u{a0}5.00");
    check(5.0, "XYZ", "de-DE", "5,00\u{a0}XYZ");
    check(5.0, "CHF", "en-US", "CHF\u{a0}5.00");
    check(5.0, "usd", "en-US", "$5.00");
}

#[test]
fn rounding_is_half_away_from_zero_on_the_written_decimal() {
    check(0.125, "USD", "en-US", "$0.13");
    check(-0.125, "USD", "en-US", "-$0.13");
    check(1.005, "USD", "en-US", "$1.01");
    check(2.675, "USD", "en-US", "$2.68");
    check(999.995, "USD", "en-US", "$1,000.00");
    check(0.5, "JPY", "en-US", "¥1");
    check(-0.5, "JPY", "en-US", "-¥1");
    check(1.0049, "USD", "en-US", "$1.00");
}

#[test]
fn an_amount_that_rounds_to_zero_has_no_sign() {
    check(-0.001, "USD", "en-US", "$0.00");
    check(-0.0, "EUR", "de-DE", "0,00\u{a0}€");
}

#[test]
fn extreme_amounts_format_without_panicking() {
    check(1e15, "USD", "en-US", "$1,000,000,000,000,000.00");
    check(1e-12, "USD", "en-US", "$0.00");
    assert!(format_money(f64::MAX, "USD", "en-US").starts_with("$179,769,313,486,231,57"));
    check(f64::MIN_POSITIVE, "USD", "en-US", "$0.00");
}

#[test]
fn non_finite_amounts_come_back_as_text_and_code() {
    check(f64::NAN, "USD", "en-US", "NaN USD");
    check(f64::INFINITY, "eur", "de-DE", "inf EUR");
    check(f64::NEG_INFINITY, "USD", "en-US", "-inf USD");
}

#[test]
fn locales_fall_back_to_their_language_then_to_en_us() {
    let table: &[(&str, &str)] = &[
        ("de-DE", "de-DE"),
        ("de", "de-DE"),
        ("de_de", "de-DE"),
        ("DE-ch", "de-CH"),
        ("de-LU", "de-DE"),
        ("fr-BE", "fr-FR"),
        ("pt", "pt-BR"),
        ("no", "nb-NO"),
        ("es-419", "es-ES"),
        ("en-Latn-IN", "en-IN"),
        ("zh-Hant-TW", "en-US"),
        ("xx", "en-US"),
        ("", "en-US"),
        ("--_", "en-US"),
    ];
    for (locale, expected) in table {
        assert_eq!(resolved_locale(locale), *expected, "{locale}");
    }
    check(1234.5, "EUR", "de", "1.234,50\u{a0}€");
    check(1234.5, "USD", "tlh-KLINGON", "$1,234.50");
}

#[test]
fn format_decimal_uses_the_locale_separators() {
    assert_eq!(format_decimal(3.25, 1, "en-US"), "3.3");
    assert_eq!(format_decimal(1234.56, 1, "de-DE"), "1.234,6");
    assert_eq!(format_decimal(-2.0, 0, "sv-SE"), "\u{2212}2");
    assert_eq!(format_decimal(f64::NAN, 1, "en-US"), "NaN");
}

#[test]
fn rates_deserialize_from_the_upload_format_and_validate() {
    let rates = sample_rates();
    assert_eq!(rates.base, "USD");
    assert_eq!(rates.rates.get("JPY"), Some(&151.2));
    assert_eq!(rates.validate(), Ok(()));
}

#[test]
fn invalid_rates_are_refused_naming_the_field() {
    let with = |edit: fn(&mut ExchangeRates)| {
        let mut rates = sample_rates();
        edit(&mut rates);
        rates.validate()
    };
    assert_eq!(
        with(|rates| rates.base = "usd".to_owned()),
        Err(ExchangeRatesError::InvalidCurrencyCode { field: "base".to_owned(), code: "usd".to_owned() })
    );
    assert_eq!(
        with(|rates| {
            rates.rates.insert("EURO".to_owned(), 1.0);
        }),
        Err(ExchangeRatesError::InvalidCurrencyCode { field: "rates".to_owned(), code: "EURO".to_owned() })
    );
    assert_eq!(
        with(|rates| {
            rates.rates.insert("EUR".to_owned(), 0.0);
        }),
        Err(ExchangeRatesError::InvalidRate { field: "rates.EUR".to_owned(), rate: 0.0 })
    );
    assert!(matches!(
        with(|rates| {
            rates.rates.insert("GBP".to_owned(), f64::NAN);
        }),
        Err(ExchangeRatesError::InvalidRate { field, .. }) if field == "rates.GBP"
    ));
    assert_eq!(
        with(|rates| {
            rates.rates.insert("USD".to_owned(), 2.0);
        }),
        Err(ExchangeRatesError::BaseRateNotOne { field: "rates.USD".to_owned(), rate: 2.0 })
    );
    assert_eq!(
        with(|rates| {
            rates.rates.insert("USD".to_owned(), 1.0);
        }),
        Ok(())
    );
    let message = with(|rates| rates.base = "dollars".to_owned()).unwrap_err().to_string();
    assert!(message.contains("`base`"), "{message}");
}

#[test]
fn conversion_goes_through_the_base_currency() {
    let rates = sample_rates();
    let close = |got: Option<f64>, want: f64| got.is_some_and(|got| (got - want).abs() < 1e-9);
    assert!(close(rates.convert(100.0, "USD", "EUR"), 92.0));
    assert!(close(rates.convert(92.0, "EUR", "USD"), 100.0));
    assert!(close(rates.convert(100.0, "EUR", "GBP"), 100.0 / 0.92 * 0.79));
    assert!(close(rates.convert(1.0, "usd", "jpy"), 151.2));
    assert_eq!(rates.convert(5.0, "EUR", "EUR"), Some(5.0));
    assert_eq!(rates.convert(5.0, "XYZ", "XYZ"), Some(5.0));
    assert_eq!(rates.convert(5.0, "USD", "XYZ"), None);
    assert_eq!(rates.convert(5.0, "XYZ", "USD"), None);
}

#[test]
fn a_zero_rate_that_slipped_past_validation_converts_to_nothing() {
    let mut rates = sample_rates();
    rates.rates.insert("EUR".to_owned(), 0.0);
    assert_eq!(rates.convert(5.0, "EUR", "USD"), None);
}

#[test]
fn the_fast_rounding_path_agrees_with_the_shortest_decimal() {
    let digits = |rounded: RoundedDigits| {
        let integer = String::from_utf8(rounded.integer().to_vec()).unwrap();
        let fraction = String::from_utf8(rounded.fraction().to_vec()).unwrap();
        format!("{integer}.{fraction}")
    };
    // A fixed linear congruential generator: deterministic amounts across magnitudes.
    let mut state: u64 = 42;
    for _ in 0..20_000 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64;
        let amount = mantissa * 10f64.powi((state % 9) as i32);
        for fraction_digits in [0, 1, 2, 3] {
            assert_eq!(
                digits(round_half_away_from_zero(amount, fraction_digits)),
                digits(round_shortest_decimal(amount, fraction_digits as usize)),
                "{amount} to {fraction_digits} digits"
            );
        }
    }
}

#[test]
fn large_amounts_round_on_the_slow_path() {
    check(12_345_678.125, "USD", "en-US", "$12,345,678.13");
    check(12_345_678.124, "USD", "en-US", "$12,345,678.12");
    check(0.05, "USD", "en-US", "$0.05");
    check(0.0, "JPY", "en-US", "¥0");
}
