use regard_core::segments::SensitiveCategory;

use super::*;
use crate::geo::Store;

fn sample_rates() -> ExchangeRates {
    serde_json::from_str(r#"{"base":"USD","rates":{"EUR":0.92,"GBP":0.79,"JPY":151.2}}"#).unwrap()
}

fn engine_with(settings: ContentSettings, config: TemplateConfig, templates: &[(&str, &str)]) -> TemplateEngine {
    let mut engine = TemplateEngine::new(settings, config);
    for (name, source) in templates {
        engine.add(name, source, &LintPolicy::default()).unwrap();
    }
    engine
}

/// Renders `source` with exchange rates and the default limits.
#[track_caller]
fn render(source: &str, context: &RenderContext) -> Result<String, TemplateError> {
    let settings = ContentSettings { exchange_rates: Some(sample_rates()), stores: Vec::new() };
    engine_with(settings, TemplateConfig::default(), &[("t", source)]).render("t", context)
}

fn context_with_traits(traits: serde_json::Value) -> RenderContext {
    let serde_json::Value::Object(traits) = traits else { panic!("traits must be an object") };
    RenderContext { traits, ..RenderContext::default() }
}

fn product(id: &str, price: f64, currency: &str) -> ProductCard {
    ProductCard {
        id: id.to_owned(),
        name: format!("Shoe {id}"),
        price: Some(price),
        currency: Some(currency.to_owned()),
        category: Some("Shoes".to_owned()),
        url: Some(format!("/p/{id}")),
        image_url: None,
        explanation: None,
        strategy: None,
    }
}

#[test]
fn every_context_variable_reaches_the_template() {
    let context = RenderContext {
        traits: context_with_traits(serde_json::json!({"first_name": "Sarah", "tier": "gold"})).traits,
        visitor: VisitorKind::Returning,
        locale: "de-DE".to_owned(),
        currency: "EUR".to_owned(),
        timezone: Some("Europe/Berlin".to_owned()),
        country: Some("DE".to_owned()),
        campaign: Some(Campaign {
            source: Some("newsletter".to_owned()),
            name: Some("spring".to_owned()),
            ..Campaign::default()
        }),
        page: Some(PageContext {
            path: Some("/shoes".to_owned()),
            title: Some("Shoes".to_owned()),
            ..PageContext::default()
        }),
        recently_viewed: vec![product("a", 10.0, "EUR"), product("b", 20.0, "EUR")],
        nearest_store: Some(StoreDistance {
            name: "Regard Mitte".to_owned(),
            city: Some("Berlin".to_owned()),
            url: None,
            address: Some("Torstraße 1".to_owned()),
            distance_km: 3.2,
        }),
        recommendations: vec![product("c", 30.0, "EUR")],
    };
    let source = "{{ traits.first_name }}|{{ traits.tier }}|{{ visitor }}|{{ locale }}|{{ currency }}|{{ timezone }}|\
                  {{ country }}|{{ campaign.source }}/{{ campaign.name }}|{{ page.path }} {{ page.title }}|\
                  {% for p in recently_viewed %}{{ p.id }}{% endfor %}|{{ nearest_store.name }} {{ nearest_store.city }} \
                  {{ nearest_store.distance_km|km }}|{% for p in recommendations %}{{ p.name }}{% endfor %}";
    assert_eq!(
        render(source, &context).unwrap(),
        "Sarah|gold|returning|de-DE|EUR|Europe&#x2f;Berlin|DE|newsletter/spring|&#x2f;shoes Shoes|ab|\
         Regard Mitte Berlin 3,2 km|Shoe c"
    );
}

#[test]
fn the_context_exposes_exactly_the_documented_variables() {
    let json = serde_json::to_value(RenderContext::default()).unwrap();
    let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "campaign",
            "country",
            "currency",
            "locale",
            "nearest_store",
            "page",
            "recently_viewed",
            "recommendations",
            "timezone",
            "traits",
            "visitor"
        ]
    );
    assert_eq!(json["visitor"], "new");
}

#[test]
fn traits_are_html_escaped() {
    let context = context_with_traits(serde_json::json!({"nickname": "<script>alert(1)</script>"}));
    let rendered = render("<b>{{ traits.nickname }}</b>", &context).unwrap();
    assert_eq!(rendered, "<b>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</b>");
    assert!(!rendered.contains("<script>"));
}

#[test]
fn missing_traits_and_their_attributes_render_empty() {
    let context = RenderContext::default();
    assert_eq!(render("Hi {{ traits.first_name }}!", &context).unwrap(), "Hi !");
    assert_eq!(render("[{{ traits.address.city }}]", &context).unwrap(), "[]");
    assert_eq!(render("[{{ campaign.source }}][{{ nearest_store.name }}]", &context).unwrap(), "[][]");
    assert_eq!(render("Hi {{ traits.first_name|default('there') }}!", &context).unwrap(), "Hi there!");
    assert_eq!(render("{% if traits.vip %}VIP{% else %}all{% endif %}", &context).unwrap(), "all");
}

#[test]
fn a_runaway_loop_runs_out_of_fuel_instead_of_hanging() {
    let source = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
    let started = std::time::Instant::now();
    let error = render(source, &RenderContext::default()).unwrap_err();
    assert_eq!(error.kind, TemplateErrorKind::FuelExhausted, "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn output_beyond_the_cap_is_refused() {
    let config = TemplateConfig { max_output_bytes: 1000, ..TemplateConfig::default() };
    let engine =
        engine_with(ContentSettings::default(), config, &[("big", r#"{{ "x" * 2000 }}"#), ("ok", "{{ 'x' * 1000 }}")]);
    let error = engine.render("big", &RenderContext::default()).unwrap_err();
    assert_eq!(error.kind, TemplateErrorKind::OutputTooLarge, "{error}");
    assert_eq!(engine.render("ok", &RenderContext::default()).unwrap().len(), 1000);
}

#[test]
fn money_converts_into_the_visitors_currency_and_locale() {
    let french = RenderContext { locale: "fr-FR".to_owned(), currency: "EUR".to_owned(), ..RenderContext::default() };
    // Without `from_currency`, amounts are in the rates' base currency (USD): 100 USD = 92 EUR.
    assert_eq!(render("{{ 100|money }}", &french).unwrap(), "92,00\u{a0}€");
    assert_eq!(render("{{ 79|money('GBP') }}", &french).unwrap(), "92,00\u{a0}€");
    assert_eq!(render("{{ 79|money(from_currency='GBP') }}", &french).unwrap(), "92,00\u{a0}€");
    assert_eq!(render("{{ 5|money('EUR') }}", &french).unwrap(), "5,00\u{a0}€");
    // No rate for the pair: the original currency, rather than a wrong price.
    assert_eq!(render("{{ 5|money('CHF') }}", &french).unwrap(), "5,00\u{a0}CHF");
    let american = RenderContext::default();
    assert_eq!(render("{{ 1234.5|money }}", &american).unwrap(), "$1,234.50");
    assert_eq!(render("{{ '1234.5'|money }}", &american).unwrap(), "$1,234.50");
    assert_eq!(render("[{{ traits.ltv|money }}]", &american).unwrap(), "[]");
}

#[test]
fn money_reads_each_products_own_currency() {
    let context = RenderContext {
        locale: "en-GB".to_owned(),
        currency: "GBP".to_owned(),
        recently_viewed: vec![product("a", 100.0, "USD"), product("b", 92.0, "EUR"), product("c", 10.0, "GBP")],
        ..RenderContext::default()
    };
    let source = "{% for p in recently_viewed %}{{ p.price|money(p.currency) }};{% endfor %}";
    assert_eq!(render(source, &context).unwrap(), "£79.00;£79.00;£10.00;");
}

#[test]
fn money_without_rates_formats_in_the_visitors_currency() {
    let engine = engine_with(
        ContentSettings::default(),
        TemplateConfig::default(),
        &[("t", "{{ 5|money }} {{ 5|money('USD') }}")],
    );
    let japanese = RenderContext { locale: "ja-JP".to_owned(), currency: "JPY".to_owned(), ..RenderContext::default() };
    assert_eq!(engine.render("t", &japanese).unwrap(), "￥5 $5.00");
}

#[test]
fn money_refuses_what_is_not_a_number_or_a_code() {
    for source in
        ["{{ 'lots'|money }}", "{{ 5|money(42) }}", "{{ 5|money('EUR', 'USD') }}", "{{ 5|money(currency='EUR') }}"]
    {
        let error = render(source, &RenderContext::default()).unwrap_err();
        assert_eq!(error.kind, TemplateErrorKind::Render, "{source}: {error}");
    }
}

#[test]
fn km_formats_a_distance_in_the_locale() {
    let context = RenderContext { locale: "fr-FR".to_owned(), ..RenderContext::default() };
    assert_eq!(render("{{ 3.24|km }}", &RenderContext::default()).unwrap(), "3.2 km");
    assert_eq!(render("{{ 1234.56|km }}", &context).unwrap(), "1\u{202f}234,6 km");
    assert_eq!(render("[{{ nearest_store.distance_km|km }}]", &context).unwrap(), "[]");
}

#[test]
fn the_nearest_store_block_shows_the_store_not_the_person() {
    let settings = ContentSettings {
        exchange_rates: None,
        stores: vec![Store {
            id: "lyo".to_owned(),
            name: "Regard Lyon".to_owned(),
            city: Some("Lyon".to_owned()),
            latitude: 45.7640,
            longitude: 4.8357,
            url: None,
            address: None,
        }],
    };
    let nearest = StoreDistance::nearest(&settings.stores, 45.7578, 4.8320);
    let engine = engine_with(
        settings,
        TemplateConfig::default(),
        &[("t", "{{ nearest_store.name }}, {{ nearest_store.distance_km|km }}")],
    );
    let context = RenderContext { nearest_store: nearest, ..RenderContext::default() };
    assert_eq!(engine.render("t", &context).unwrap(), "Regard Lyon, 0.7 km");
}

#[test]
fn debug_cannot_dump_the_context() {
    let error = render("{{ debug() }}", &context_with_traits(serde_json::json!({"first_name": "Sarah"}))).unwrap_err();
    assert_eq!(error.kind, TemplateErrorKind::Render);
    assert!(!error.message.contains("Sarah"), "{error}");
}

#[test]
fn render_errors_name_the_template_and_line() {
    let error = render("ok\n{{ 'a'|nosuchfilter }}", &RenderContext::default()).unwrap_err();
    assert_eq!(error.kind, TemplateErrorKind::Render);
    assert_eq!(error.line, Some(2));
    assert!(error.message.starts_with("line 2: template \"t\""), "{error}");
    assert_eq!(error.kind.code(), "template_render");
}

#[test]
fn unknown_templates_are_reported_and_removal_says_whether_it_existed() {
    let mut engine = engine_with(ContentSettings::default(), TemplateConfig::default(), &[("hero", "hi")]);
    assert!(engine.contains("hero"));
    assert_eq!(engine.render("hero", &RenderContext::default()).unwrap(), "hi");
    assert!(engine.remove("hero"));
    assert!(!engine.remove("hero"));
    let error = engine.render("hero", &RenderContext::default()).unwrap_err();
    assert_eq!(error.kind, TemplateErrorKind::UnknownTemplate);
}

#[test]
fn a_prepared_context_renders_several_templates() {
    let engine = engine_with(
        ContentSettings::default(),
        TemplateConfig::default(),
        &[("a", "A {{ locale }}"), ("b", "B {{ currency }}")],
    );
    let prepared = PreparedContext::new(&RenderContext::default());
    assert_eq!(engine.render_prepared("a", &prepared).unwrap(), "A en-US");
    assert_eq!(engine.render_prepared("b", &prepared).unwrap(), "B USD");
}

#[test]
fn add_refuses_a_template_the_lint_refuses_and_keeps_the_old_one() {
    let mut engine = engine_with(ContentSettings::default(), TemplateConfig::default(), &[("hero", "v1")]);
    let error =
        engine.add("hero", "{{ traits.first_name }} {{ traits.first_name }}", &LintPolicy::default()).unwrap_err();
    assert_eq!(error.kind, TemplateErrorKind::NameUsedMoreThanOnce);
    assert_eq!(engine.render("hero", &RenderContext::default()).unwrap(), "v1");
    engine.add("hero", "v2", &LintPolicy::default()).unwrap();
    assert_eq!(engine.render("hero", &RenderContext::default()).unwrap(), "v2");
}

#[test]
fn settings_validation_names_the_bad_field() {
    let mut settings = ContentSettings { exchange_rates: Some(sample_rates()), stores: Vec::new() };
    assert_eq!(settings.validate(), Ok(()));
    settings.stores.push(Store {
        id: "x".to_owned(),
        name: "X".to_owned(),
        city: None,
        latitude: 100.0,
        longitude: 0.0,
        url: None,
        address: None,
    });
    let message = settings.validate().unwrap_err().to_string();
    assert!(message.starts_with("`stores[0]`: `latitude`"), "{message}");
    let parsed: ContentSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, ContentSettings::default());
}

/// Lints with the default policy and returns the refusal's kind, or `None` when accepted.
#[track_caller]
fn lint_kind(source: &str) -> Option<TemplateErrorKind> {
    lint(source, &LintPolicy::default()).err().map(|error| error.kind)
}

#[test]
fn the_name_printed_once_is_accepted() {
    let accepted = [
        "Hi {{ traits.first_name }}!",
        "{% if traits.first_name %}Hi {{ traits.first_name }}{% else %}Hi there{% endif %}",
        "{% if traits.first_name is defined %}Hi {{ traits.first_name|title }}!{% endif %}",
        "{{ traits.first_name }}{# traits.first_name #}",
        "{{ traits.first_name }}{#- {{ traits.first_name }} -#}",
        "Hi first_name, traits.first_name and {{ traits.first_name }}",
        r#"{{ "traits.first_name" }} {{ 'traits["first_name"]' }} {{ traits.first_name }}"#,
        "{% raw %}{{ traits.first_name }}{% endraw %}{{ traits.first_name }}",
        "{%- raw -%}{{ traits.first_name }}{%- endraw -%}{{ traits.first_name }}",
        "{{ traits.first_name if traits.first_name else 'there' }}",
        "{{ traits.first_name or 'there' }}",
        "{% if a %}{{ traits.first_name }}{% elif b %}{{ traits.last_name }}{% else %}{{ traits.name }}{% endif %}",
        "{% set n = traits.first_name %}{% if n %}Hi {{ n }}{% endif %}",
        "{% set n = traits.first_name %}{% set n = 'friend' %}{{ n }} {{ n }} {{ traits.first_name }}",
        "{{ traits.city }} {{ traits.city }} {{ traits.tier }}",
        "{% for p in recently_viewed %}{{ p.name }}{% endfor %}{{ nearest_store.name }}{{ nearest_store.name }}",
        "{{ traits.get('first_name', 'there') }}",
        "{{ traits.first_name }}{{ profile.traits }}",
        "{{ traits.nickname }} {{ traits.full_name_ok }}",
        "",
        "plain text { with braces } and {{ '}}' }} {{ \"{%\" }}",
    ];
    for source in accepted {
        assert_eq!(lint_kind(source), None, "{source}");
    }
}

#[test]
fn the_name_printed_twice_or_in_a_loop_is_refused() {
    let refused = [
        "Hi {{ traits.first_name }}, this is for you, {{ traits.first_name }}!",
        "{{ traits.first_name }} {{ traits.last_name }}",
        r#"{{ traits["first_name"] }} {{ traits.firstName }}"#,
        "{{ traits.get('first_name') }}{{ traits.first_name }}",
        "{{ traits.FIRST_NAME }}{{ traits.first_name }}",
        "{{ traits.first_name ~ ', really, ' ~ traits.first_name }}",
        "{% set n = traits.first_name %}{{ n }} and {{ n }}",
        "{% set greeting = 'Hi ' ~ traits.first_name %}{% set again = greeting %}{{ greeting }}{{ again }}",
        "{% with n = traits.first_name %}{{ n }}{{ n }}{% endwith %}",
        "{% for i in range(3) %}{{ traits.first_name }}{% endfor %}",
        "{% macro hi() %}{{ traits.first_name }}{% endmacro %}{{ hi() }}",
        "{% if a %}{{ traits.first_name }}{% endif %}{{ traits.first_name }}",
        "{% if a %}{{ traits.first_name }}{{ traits.first_name }}{% else %}x{% endif %}",
        "{{ traits.first_name if a else traits.last_name ~ traits.first_name }}",
        "Hi {{ traits.first_name }}\n{# ok #}\n{{- traits.name -}}",
    ];
    for source in refused {
        assert_eq!(lint_kind(source), Some(TemplateErrorKind::NameUsedMoreThanOnce), "{source}");
    }
}

#[test]
fn the_name_refusal_names_the_lines() {
    let error = lint("Hi {{ traits.first_name }},\n\nbye {{ traits.first_name }}", &LintPolicy::default()).unwrap_err();
    assert_eq!(error.line, Some(3));
    assert!(error.message.contains("lines 1, 3"), "{error}");
    let error = lint("{% for p in x %}\n{{ traits.first_name }}{% endfor %}", &LintPolicy::default()).unwrap_err();
    assert_eq!(error.line, Some(2));
    assert!(error.message.contains("loop"), "{error}");
}

#[test]
fn the_name_fields_come_from_the_policy() {
    let policy = LintPolicy { name_fields: vec!["given_name".to_owned()], ..LintPolicy::default() };
    assert!(lint("{{ traits.given_name }}{{ traits.given_name }}", &policy).is_err());
    assert!(lint("{{ traits.first_name }}{{ traits.first_name }}", &policy).is_ok());
}

#[track_caller]
fn check_sensitive(source: &str, field: &str, category: SensitiveCategory) {
    assert_eq!(
        lint_kind(source),
        Some(TemplateErrorKind::SensitiveField { field: field.to_owned(), category: category.as_str().to_owned() }),
        "{source}"
    );
}

#[test]
fn sensitive_traits_are_refused_wherever_they_appear() {
    check_sensitive(
        "{% if traits.pregnancy_due_date %}Congrats{% endif %}",
        "pregnancy_due_date",
        SensitiveCategory::PregnancyAndBaby,
    );
    check_sensitive("{{ traits.latitude }}", "latitude", SensitiveCategory::PreciseLocation);
    check_sensitive(r#"{{ traits["home_address"] }}"#, "home_address", SensitiveCategory::PreciseLocation);
    check_sensitive("{{ traits.location.lat }}", "location.lat", SensitiveCategory::PreciseLocation);
    check_sensitive("{% set r = traits.religion %}", "religion", SensitiveCategory::Religion);
    check_sensitive("{{ traits.get('diabetes_type') }}", "diabetes_type", SensitiveCategory::HealthAndMedical);
    check_sensitive(
        "{# fine #}{{ x|default(traits.gps_coordinates) }}",
        "gps_coordinates",
        SensitiveCategory::PreciseLocation,
    );
}

#[test]
fn operator_marked_traits_are_sensitive_too() {
    let mut policy = LintPolicy::default();
    policy.policy.sensitive_traits.push(("blood_type".to_owned(), SensitiveCategory::HealthAndMedical));
    let error = lint("{{ traits.blood_type }}", &policy).unwrap_err();
    assert_eq!(
        error.kind,
        TemplateErrorKind::SensitiveField { field: "blood_type".to_owned(), category: "health_and_medical".to_owned() }
    );
    assert_eq!(error.line, Some(1));
}

#[test]
fn harmless_traits_and_mentions_outside_tags_are_accepted() {
    let accepted = [
        "{{ traits.city }} {{ traits.tier }} {{ traits.platform }} {{ traits.plan }}",
        "Our pharmacy is open {{ traits.city }} {# traits.religion #}",
        "{% raw %}{{ traits.latitude }}{% endraw %}",
        "{{ 'traits.latitude' }}",
        "{{ nearest_store.distance_km|km }}",
    ];
    for source in accepted {
        assert_eq!(lint_kind(source), None, "{source}");
    }
}

#[test]
fn reading_traits_as_a_whole_is_refused() {
    let refused = [
        "{{ traits }}",
        "{{ traits|tojson }}",
        "{% for key, value in traits|items %}{{ value }}{% endfor %}",
        "{{ traits[key] }}",
        "{% set t = traits %}{{ t.first_name }}{{ t.first_name }}",
        "{{ traits.items() }}",
        "{{ traits.get(key) }}",
        "{% if traits %}x{% endif %}",
    ];
    for source in refused {
        assert_eq!(lint_kind(source), Some(TemplateErrorKind::WholeTraitsAccess), "{source}");
    }
}

#[test]
fn syntax_errors_name_the_line() {
    let error = lint("line one\n{% if %}\n{% endif %}", &LintPolicy::default()).unwrap_err();
    assert_eq!(error.kind, TemplateErrorKind::Syntax);
    assert_eq!(error.line, Some(2));
    assert!(error.message.starts_with("line 2: syntax error"), "{error}");
    for source in ["{{ traits.first_name", "{% for %}", "{% raw %}never closed", "{{ 'unterminated }}", "{% endif %}"] {
        assert_eq!(lint_kind(source), Some(TemplateErrorKind::Syntax), "{source}");
    }
}

#[test]
fn tags_are_found_with_their_lines_outside_comments_strings_and_raw_blocks() {
    let source =
        "a {{ x }}\n{# {{ hidden }} #}\n{% if '%}' %}{{ {'k': {'n': 1}} }}{% raw %}{{ no }}{% endraw %}\n{{- y -}}";
    let tags: Vec<(TagKind, &str, usize)> =
        scan_tags(source).iter().map(|tag| (tag.kind, tag.body.trim(), tag.line)).collect();
    assert_eq!(
        tags,
        [
            (TagKind::Print, "x", 1),
            (TagKind::Statement, "if '%}'", 3),
            (TagKind::Print, "{'k': {'n': 1}}", 3),
            (TagKind::Print, "y", 4),
        ]
    );
}

#[test]
fn lint_never_panics_on_odd_input() {
    let pieces = [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "{",
        "}",
        "-",
        "+",
        "'",
        "\"",
        "\\",
        "traits",
        ".",
        "[",
        "]",
        "(",
        ")",
        "first_name",
        "set",
        "if",
        "else",
        "endif",
        "for",
        "endfor",
        "raw",
        "endraw",
        "=",
        " ",
        "\n",
        "é",
        "😀",
        "|",
        "get",
        "in",
        "x",
    ];
    // A fixed linear congruential generator keeps the test deterministic without a dependency.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..5000 {
        let mut source = String::new();
        for _ in 0..(state % 24) {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            source.push_str(pieces[(state >> 33) as usize % pieces.len()]);
        }
        let _ = lint(&source, &LintPolicy::default());
        let _ = scan_tags(&source).iter().map(|tag| tokenize(tag.body).len()).sum::<usize>();
        state = state.wrapping_add(0x9e37_79b9);
    }
    let deeply_nested = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(lint_kind(&deeply_nested), Some(TemplateErrorKind::Syntax));
}

#[test]
fn template_reads_lists_the_traits_and_context_variables_a_template_names() {
    let reads = template_reads(
        "{# traits.secret #}{% if traits.first_name %}Hi {{ traits[\"first_name\"] }} from {{ traits.get('city') }}\
         {% endif %}{% for p in recently_viewed %}{{ p.name }}{% endfor %}{{ country }}{{ page.country }}",
    );
    assert_eq!(reads.traits, vec!["first_name".to_owned(), "city".to_owned()]);
    assert_eq!(reads.variables, vec!["recently_viewed".to_owned(), "country".to_owned(), "page".to_owned()]);
}
