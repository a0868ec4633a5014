//! How long one render of a typical hero fragment takes: the hot path of a content decision
//! (target: 30,000 decisions/s on 2 cores with 3 slots each, so about 22 µs per render at most).

#![allow(missing_docs, reason = "criterion_group! generates an undocumented public function")]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use regard_content::money::ExchangeRates;
use regard_content::template::{
    ContentSettings, LintPolicy, PreparedContext, ProductCard, RenderContext, TemplateConfig, TemplateEngine,
    VisitorKind,
};

/// About 300 bytes: a greeting, a converted price and a loop over recently viewed products.
const HERO: &str = r#"<section class="hero">{% if visitor == "returning" %}<h2>Welcome back{% if traits.first_name %}, {{ traits.first_name }}{% endif %}!</h2>{% endif %}<p>Free shipping over {{ 50|money }}</p><ul>{% for p in recently_viewed %}<li><a href="{{ p.url }}">{{ p.name }}</a> {{ p.price|money(p.currency) }}</li>{% endfor %}</ul></section>"#;

fn context() -> RenderContext {
    let mut traits = serde_json::Map::new();
    traits.insert("first_name".to_owned(), "Sarah".into());
    traits.insert("city".to_owned(), "Lyon".into());
    let product = |index: u32| ProductCard {
        id: format!("sku-{index}"),
        name: format!("Trail running shoe {index}"),
        price: Some(89.9 + f64::from(index)),
        currency: Some("USD".to_owned()),
        category: Some("Shoes".to_owned()),
        url: Some(format!("https://shop.example.com/p/sku-{index}")),
        image_url: Some(format!("https://cdn.example.com/sku-{index}.jpg")),
        explanation: None,
        strategy: None,
    };
    RenderContext {
        traits,
        visitor: VisitorKind::Returning,
        locale: "fr-FR".to_owned(),
        currency: "EUR".to_owned(),
        timezone: Some("Europe/Paris".to_owned()),
        country: Some("FR".to_owned()),
        recently_viewed: (0..4).map(product).collect(),
        ..RenderContext::default()
    }
}

fn render(c: &mut Criterion) {
    let rates: ExchangeRates =
        serde_json::from_str(r#"{"base":"USD","rates":{"EUR":0.92,"GBP":0.79,"JPY":151.2}}"#).expect("valid rates");
    let settings = ContentSettings { exchange_rates: Some(rates), stores: Vec::new() };
    let mut engine = TemplateEngine::new(settings, TemplateConfig::default());
    engine.add("hero", HERO, &LintPolicy::default()).expect("the hero template passes the lint");
    let context = context();
    c.bench_function("render_hero_300b_money_loop4", |b| {
        b.iter(|| engine.render(black_box("hero"), black_box(&context)).expect("renders"))
    });
    // A decision renders up to three slots for one person; the context is converted once.
    let prepared = PreparedContext::new(&context);
    c.bench_function("render_hero_prepared_context", |b| {
        b.iter(|| engine.render_prepared(black_box("hero"), black_box(&prepared)).expect("renders"))
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
