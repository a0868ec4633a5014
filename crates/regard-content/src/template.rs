//! The templates that turn a chosen variant into HTML for one person, and the lint that keeps
//! them from being creepy.
//!
//! Templates are [minijinja] HTML fragments. They see exactly the variables of a
//! [`RenderContext`]: the traits the caller allows, what kind of visitor this is, the visitor's
//! locale and currency, campaign and page, recently viewed products, the nearest store and the
//! recommendations. Everything is auto-escaped as HTML, since traits come from the outside.
//!
//! Two things make a personalised sentence feel like surveillance, and [`lint`] refuses both when
//! a template is saved: using the person's name more than once ("Hi Sarah, ... just for you,
//! Sarah!"), and using a trait that belongs to a sensitive category (health, religion, precise
//! location...), judged by the same policy as segments.
//!
//! A [`TemplateEngine`] compiles each template once and renders it on the hot path with a fuel
//! limit and an output cap, so a runaway loop costs a bounded amount of work.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;

use minijinja::value::{Kwargs, Rest, Value};
use minijinja::{AutoEscape, Environment, ErrorKind, State, UndefinedBehavior};
use regard_core::segments::policy::sensitive_field;
use regard_core::segments::PolicyConfig;
use serde::{Deserialize, Serialize};

use crate::geo::{Store, StoreDistance, StoreError};
use crate::money::{format_decimal, format_money, ExchangeRates, ExchangeRatesError};

/// The operator's content-wide data that templates draw on: exchange rates for prices and the
/// list of physical stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentSettings {
    /// Rates for converting catalog prices into the visitor's currency; without them prices
    /// show in their own currency.
    #[serde(default)]
    pub exchange_rates: Option<ExchangeRates>,
    /// The stores a "nearest store" block can point to.
    #[serde(default)]
    pub stores: Vec<Store>,
}

/// Why content settings cannot be used, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContentSettingsError {
    /// The exchange rates are malformed.
    #[error("`exchange_rates`: {0}")]
    ExchangeRates(#[from] ExchangeRatesError),
    /// One of the stores is malformed.
    #[error("`stores[{index}]`: {source}")]
    Store {
        /// The store's position in the list.
        index: usize,
        /// What is wrong with it.
        source: StoreError,
    },
}

impl ContentSettings {
    /// Checks the exchange rates and every store, naming the first bad field.
    pub fn validate(&self) -> Result<(), ContentSettingsError> {
        if let Some(rates) = &self.exchange_rates {
            rates.validate()?;
        }
        for (index, store) in self.stores.iter().enumerate() {
            store.validate().map_err(|source| ContentSettingsError::Store { index, source })?;
        }
        Ok(())
    }
}

/// Whether the visitor has been here before, so copy can welcome or welcome back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VisitorKind {
    /// First visit we know of; templates see `"new"`.
    #[default]
    New,
    /// Seen before; templates see `"returning"`.
    Returning,
}

/// The campaign that brought the visitor, from the UTM parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Campaign {
    /// `utm_source`.
    pub source: Option<String>,
    /// `utm_medium`.
    pub medium: Option<String>,
    /// `utm_campaign`.
    pub name: Option<String>,
    /// `utm_term`.
    pub term: Option<String>,
    /// `utm_content`.
    pub content: Option<String>,
}

/// The page the content is being rendered into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageContext {
    /// The full URL.
    pub url: Option<String>,
    /// The URL's path.
    pub path: Option<String>,
    /// The referring URL.
    pub referrer: Option<String>,
    /// The page title.
    pub title: Option<String>,
}

/// A product as a template shows it: enough for a card with a name, a price, a picture and a link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductCard {
    /// The catalog identifier.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The price in `currency`; print it with the `money` filter.
    #[serde(default)]
    pub price: Option<f64>,
    /// The ISO 4217 code of `price`.
    #[serde(default)]
    pub currency: Option<String>,
    /// The catalog category.
    #[serde(default)]
    pub category: Option<String>,
    /// The product page.
    #[serde(default)]
    pub url: Option<String>,
    /// The product picture.
    #[serde(default)]
    pub image_url: Option<String>,
    /// For a recommended product: why it is there ("Customers who bought X also bought this").
    #[serde(default)]
    pub explanation: Option<String>,
    /// For a recommended product: the strategy that chose it (`also_bought`, `popular`...).
    #[serde(default)]
    pub strategy: Option<String>,
}

/// Everything a template can see: its fields are exactly the template's top-level variables.
///
/// There is deliberately no field for the visitor's coordinates or IP address: location reaches
/// templates only as [`StoreDistance`] (a store and a rounded distance).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderContext {
    /// The profile's traits that the caller allows this template to see (already filtered for
    /// consent and purpose), as `traits.first_name` and so on.
    pub traits: serde_json::Map<String, serde_json::Value>,
    /// `"new"` or `"returning"`.
    pub visitor: VisitorKind,
    /// The visitor's BCP 47 locale (`en-US`), which the `money` and `km` filters format in.
    pub locale: String,
    /// The ISO 4217 currency the visitor pays in, which `money` converts into.
    pub currency: String,
    /// The visitor's IANA time zone (`Europe/Paris`).
    pub timezone: Option<String>,
    /// The visitor's country, ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// The campaign that brought the visitor.
    pub campaign: Option<Campaign>,
    /// The page being rendered into.
    pub page: Option<PageContext>,
    /// Products the visitor viewed recently, most recent first.
    pub recently_viewed: Vec<ProductCard>,
    /// The closest store and how far it is.
    pub nearest_store: Option<StoreDistance>,
    /// Products a recommendation slot chose for the visitor.
    pub recommendations: Vec<ProductCard>,
}

impl Default for RenderContext {
    /// A new visitor in `en-US` paying in USD, with nothing else known.
    fn default() -> Self {
        RenderContext {
            traits: serde_json::Map::new(),
            visitor: VisitorKind::New,
            locale: "en-US".to_owned(),
            currency: "USD".to_owned(),
            timezone: None,
            country: None,
            campaign: None,
            page: None,
            recently_viewed: Vec::new(),
            nearest_store: None,
            recommendations: Vec::new(),
        }
    }
}

/// Limits on one render, so a bad template costs a bounded amount of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TemplateConfig {
    /// Engine instructions one render may execute. A typical hero fragment uses a few hundred;
    /// a loop over a million items runs out.
    pub fuel: u64,
    /// Bytes of HTML one render may produce before it is stopped.
    pub max_output_bytes: usize,
}

impl Default for TemplateConfig {
    /// 50,000 instructions and 256 KiB of output: far above any real fragment.
    fn default() -> Self {
        TemplateConfig { fuel: 50_000, max_output_bytes: 256 * 1024 }
    }
}

/// The trait fields that hold a person's name, as [`LintPolicy::default`] lists them.
pub const DEFAULT_NAME_FIELDS: [&str; 5] = ["first_name", "last_name", "name", "firstName", "lastName"];

/// What [`lint`] holds templates to.
#[derive(Debug, Clone, PartialEq)]
pub struct LintPolicy {
    /// The privacy policy segments are judged by; a template may not use a trait it calls sensitive.
    pub policy: PolicyConfig,
    /// Trait fields holding the person's name, which a template may print only once (matched
    /// case-insensitively).
    pub name_fields: Vec<String>,
}

impl Default for LintPolicy {
    /// The default privacy policy and [`DEFAULT_NAME_FIELDS`].
    fn default() -> Self {
        LintPolicy {
            policy: PolicyConfig::default(),
            name_fields: DEFAULT_NAME_FIELDS.iter().map(|field| (*field).to_owned()).collect(),
        }
    }
}

/// What went wrong with a template, for the server to map to one stable API code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// The template does not parse.
    Syntax,
    /// The template prints the person's name more than once.
    NameUsedMoreThanOnce,
    /// The template uses a trait in a sensitive category.
    SensitiveField {
        /// The trait path as written (`health_condition`, `location.lat`).
        field: String,
        /// The category's wire name (`health_and_medical`).
        category: String,
    },
    /// The template reads `traits` as a whole (`{{ traits }}`, `traits|items`, `traits[key]`),
    /// which would bypass both other rules; traits must be named one by one.
    WholeTraitsAccess,
    /// No template has that name.
    UnknownTemplate,
    /// Rendering failed (a bad filter argument, an unknown filter...).
    Render,
    /// Rendering used up its fuel, most likely in a runaway loop.
    FuelExhausted,
    /// Rendering produced more output than [`TemplateConfig::max_output_bytes`].
    OutputTooLarge,
}

impl TemplateErrorKind {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TemplateErrorKind::Syntax => "template_syntax",
            TemplateErrorKind::NameUsedMoreThanOnce => "template_name_used_more_than_once",
            TemplateErrorKind::SensitiveField { .. } => "template_sensitive_field",
            TemplateErrorKind::WholeTraitsAccess => "template_whole_traits_access",
            TemplateErrorKind::UnknownTemplate => "template_unknown",
            TemplateErrorKind::Render => "template_render",
            TemplateErrorKind::FuelExhausted => "template_fuel_exhausted",
            TemplateErrorKind::OutputTooLarge => "template_output_too_large",
        }
    }

    /// Whether the operator must change the template before it can be saved.
    pub fn is_lint_refusal(&self) -> bool {
        matches!(
            self,
            TemplateErrorKind::Syntax
                | TemplateErrorKind::NameUsedMoreThanOnce
                | TemplateErrorKind::SensitiveField { .. }
                | TemplateErrorKind::WholeTraitsAccess
        )
    }
}

/// A template refused at save time or failed at render time, with a message for the operator
/// that names the line when it is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// What kind of failure this is.
    pub kind: TemplateErrorKind,
    /// The 1-based line in the template source, when known.
    pub line: Option<usize>,
    /// A sentence for the operator, starting with the line when known.
    pub message: String,
}

impl TemplateError {
    fn new(kind: TemplateErrorKind, line: Option<usize>, detail: impl std::fmt::Display) -> TemplateError {
        let message = match line {
            Some(line) => format!("line {line}: {detail}"),
            None => detail.to_string(),
        };
        TemplateError { kind, line, message }
    }

    /// Translates an engine error, without the engine's debug dump (it would carry the person's
    /// traits into logs).
    fn from_engine(template_name: &str, error: &minijinja::Error) -> TemplateError {
        let kind = match error.kind() {
            ErrorKind::SyntaxError | ErrorKind::BadEscape => TemplateErrorKind::Syntax,
            ErrorKind::OutOfFuel => TemplateErrorKind::FuelExhausted,
            ErrorKind::TemplateNotFound => TemplateErrorKind::UnknownTemplate,
            _ => TemplateErrorKind::Render,
        };
        let what = match error.detail() {
            Some(detail) => format!("{}: {detail}", error.kind()),
            None => error.kind().to_string(),
        };
        TemplateError::new(kind, error.line(), format!("template {template_name:?}: {what}"))
    }
}

/// Compiled templates, ready to render on the hot path.
///
/// Every template is HTML-escaped. Undefined values are *chainable*: a missing trait, or an
/// attribute of one (`traits.address.city`), renders as nothing instead of failing the render,
/// because profiles are sparse and a blank is better than no content at all; `{% if %}` and
/// `default` let the author provide a fallback. The `debug()` function is removed, since it
/// would print every variable.
///
/// Filters beyond minijinja's builtins:
/// - `money(from_currency=None)`: converts a number from `from_currency` (default: the rates'
///   base currency, or the visitor's currency without rates) into the context's `currency`,
///   then formats it for the context's `locale` with [`format_money`]. Without a rate for the
///   pair it formats in the original currency rather than print a wrong price. Also accepts the
///   currency positionally: `price|money(product.currency)`.
/// - `km`: formats a distance in kilometres with one decimal in the locale's notation (`3.2 km`,
///   `3,2 km`).
#[derive(Debug, Clone)]
pub struct TemplateEngine {
    environment: Environment<'static>,
    settings: Arc<ContentSettings>,
    config: TemplateConfig,
}

impl TemplateEngine {
    /// An engine with no templates yet, drawing on `settings` and bounded by `config`.
    pub fn new(settings: ContentSettings, config: TemplateConfig) -> TemplateEngine {
        let settings = Arc::new(settings);
        let mut environment = Environment::new();
        environment.set_auto_escape_callback(|_| AutoEscape::Html);
        environment.set_undefined_behavior(UndefinedBehavior::Chainable);
        environment.set_fuel(Some(config.fuel));
        // Debug info would copy the person's variables into error values that end up in logs.
        environment.set_debug(false);
        environment.remove_global("debug");
        let filter_settings = Arc::clone(&settings);
        environment.add_filter("money", move |state: &State, amount: Value, args: Rest<Value>| {
            money_filter(filter_settings.exchange_rates.as_ref(), state, &amount, &args)
        });
        environment.add_filter("km", km_filter);
        TemplateEngine { environment, settings, config }
    }

    /// Lints `source` against `lint_policy`, then compiles and stores it under `name`, replacing
    /// any template of that name.
    pub fn add(&mut self, name: &str, source: &str, lint_policy: &LintPolicy) -> Result<(), TemplateError> {
        lint(source, lint_policy)?;
        self.environment
            .add_template_owned(name.to_owned(), source.to_owned())
            .map_err(|error| TemplateError::from_engine(name, &error))
    }

    /// Renders the template `name` for one person.
    pub fn render(&self, name: &str, context: &RenderContext) -> Result<String, TemplateError> {
        self.render_prepared(name, &PreparedContext::new(context))
    }

    /// Renders the template `name` with a context converted once by [`PreparedContext::new`]:
    /// a decision that renders several slots for one person pays for the conversion once.
    pub fn render_prepared(&self, name: &str, context: &PreparedContext) -> Result<String, TemplateError> {
        let template = self.environment.get_template(name).map_err(|_| {
            TemplateError::new(TemplateErrorKind::UnknownTemplate, None, format!("no template is named {name:?}"))
        })?;
        let mut output =
            CappedOutput { bytes: Vec::with_capacity(1024), limit: self.config.max_output_bytes, overflowed: false };
        // `render_to_write` is deprecated in favour of `render_captured_to`, which also keeps the
        // template's state alive in a self-referential cell; a render needs only the output.
        #[allow(deprecated)]
        let rendered = template.render_to_write(&context.0, &mut output);
        match rendered {
            Ok(_) => String::from_utf8(output.bytes).map_err(|_| {
                TemplateError::new(TemplateErrorKind::Render, None, format!("template {name:?} produced invalid UTF-8"))
            }),
            Err(_) if output.overflowed => Err(TemplateError::new(
                TemplateErrorKind::OutputTooLarge,
                None,
                format!("template {name:?} produced more than {} bytes", output.limit),
            )),
            Err(error) => Err(TemplateError::from_engine(name, &error)),
        }
    }

    /// Removes the template `name`; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let existed = self.contains(name);
        self.environment.remove_template(name);
        existed
    }

    /// Whether a template is stored under `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.environment.get_template(name).is_ok()
    }

    /// The settings the filters draw on.
    pub fn settings(&self) -> &ContentSettings {
        &self.settings
    }

    /// The limits every render runs under.
    pub fn config(&self) -> TemplateConfig {
        self.config
    }
}

/// A [`RenderContext`] converted into the template engine's values, ready to render any number
/// of templates for the same person.
#[derive(Debug, Clone)]
pub struct PreparedContext(Value);

impl PreparedContext {
    /// Converts `context`: about a fifth of a typical render's cost.
    pub fn new(context: &RenderContext) -> PreparedContext {
        PreparedContext(Value::from_serialize(context))
    }
}

/// An output buffer that refuses to grow past `limit` bytes, so one render cannot exhaust memory
/// by printing a huge string many times.
struct CappedOutput {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl io::Write for CappedOutput {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        self.write_all(chunk).map(|()| chunk.len())
    }

    /// Writes the whole chunk or nothing; overridden because the engine writes in many small
    /// pieces and the default loop around `write` costs more than the copy.
    #[inline]
    fn write_all(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.bytes.len().saturating_add(chunk.len()) > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("template output limit reached"));
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A number from a template value: `None` for a missing one, so `{{ traits.ltv|money }}` on a
/// profile without `ltv` prints nothing; numeric strings are accepted since traits often are.
fn number_from(value: &Value, filter: &str) -> Result<Option<f64>, minijinja::Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(None);
    }
    if let Some(text) = value.as_str() {
        return match text.trim().parse::<f64>() {
            Ok(number) => Ok(Some(number)),
            Err(_) if text.trim().is_empty() => Ok(None),
            Err(_) => Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("`{filter}` expects a number, got the string {text:?}"),
            )),
        };
    }
    f64::try_from(value.clone()).map(Some).map_err(|_| {
        minijinja::Error::new(ErrorKind::InvalidOperation, format!("`{filter}` expects a number, got {}", value.kind()))
    })
}

fn money_filter(
    rates: Option<&ExchangeRates>,
    state: &State,
    amount: &Value,
    args: &[Value],
) -> Result<Value, minijinja::Error> {
    let mut from_currency: Option<Value> = None;
    for (position, arg) in args.iter().enumerate() {
        if arg.is_kwargs() {
            let kwargs = Kwargs::try_from(arg.clone())?;
            if let Some(code) = kwargs.get::<Option<Value>>("from_currency")? {
                from_currency = Some(code);
            }
            kwargs.assert_all_used()?;
        } else if position == 0 {
            from_currency = Some(arg.clone());
        } else {
            return Err(minijinja::Error::new(ErrorKind::TooManyArguments, "`money` takes one currency code"));
        }
    }
    let from_currency = match &from_currency {
        Some(code) if code.is_none() || code.is_undefined() => None,
        Some(code) => Some(code.as_str().ok_or_else(|| {
            minijinja::Error::new(ErrorKind::InvalidOperation, "`money` expects a currency code like \"EUR\"")
        })?),
        None => None,
    };
    let Some(amount) = number_from(amount, "money")? else {
        return Ok(Value::from(""));
    };
    // The context's `locale` and `currency`, unless a template shadowed them with something else.
    let locale = state.lookup("locale");
    let locale = locale.as_ref().and_then(Value::as_str).unwrap_or("en-US");
    let target_currency = state.lookup("currency");
    let target_currency = target_currency.as_ref().and_then(Value::as_str);
    let from_currency =
        from_currency.or_else(|| rates.map(|rates| rates.base.as_str())).or(target_currency).unwrap_or("USD");
    let converted = match (target_currency, rates) {
        (Some(target), Some(rates)) => {
            rates.convert(amount, from_currency, target).map(|converted| (converted, target))
        }
        _ => None,
    };
    let (shown_amount, shown_currency) = converted.unwrap_or((amount, from_currency));
    Ok(Value::from(format_money(shown_amount, shown_currency, locale)))
}

fn km_filter(state: &State, distance_km: Value) -> Result<Value, minijinja::Error> {
    let Some(distance_km) = number_from(&distance_km, "km")? else {
        return Ok(Value::from(""));
    };
    let locale = state.lookup("locale");
    let locale = locale.as_ref().and_then(Value::as_str).unwrap_or("en-US");
    let mut text = format_decimal(distance_km, 1, locale);
    text.push_str(" km");
    Ok(Value::from(text))
}

/// Checks a template before it is saved: it must parse, print the person's name at most once,
/// use no sensitive trait, and name every trait it reads.
///
/// The name rule counts where the name is *printed*, not every mention: a test in
/// `{% if traits.first_name %}` does not print it, and only one branch of an `if`/`else` (or of
/// `a if c else b`) runs, so branches count as their largest. A name printed inside a `for`
/// loop, a macro or a `call` block may repeat, so it counts twice. `{% set n = traits.first_name %}`
/// (or `with`) makes `n` an alias whose printing counts as the name. Comments and `raw` blocks
/// are ignored. Templates pulled in with `include` or `import` are linted on their own, not with
/// the template that includes them.
///
/// The sensitive rule applies to every mention, conditions included: deciding on a sensitive
/// trait is as much a use as printing it. Each trait path is judged by
/// [`sensitive_field`], first its name (`health_condition`), then the whole path (`location.lat`).
pub fn lint(source: &str, policy: &LintPolicy) -> Result<(), TemplateError> {
    let syntax_check = Environment::new();
    if let Err(error) = syntax_check.template_from_str(source) {
        let what = match error.detail() {
            Some(detail) => format!("{}: {detail}", error.kind()),
            None => error.kind().to_string(),
        };
        return Err(TemplateError::new(TemplateErrorKind::Syntax, error.line(), what));
    }
    let mut linter = Linter::new(policy);
    for tag in scan_tags(source) {
        linter.visit(&tag)?;
    }
    linter.finish()
}

/// The top-level variables of [`RenderContext`] other than `traits`, as templates name them.
const CONTEXT_VARIABLES: [&str; 10] = [
    "visitor",
    "locale",
    "currency",
    "timezone",
    "country",
    "campaign",
    "page",
    "recently_viewed",
    "nearest_store",
    "recommendations",
];

/// What a template reads of the person and the visit: the record of processing lists these as
/// the template's uses of personal data, so it reads them the way [`lint`] does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateReads {
    /// The traits named (`traits.city`, `traits["city"]`, `traits.get("city")`), in first-use order.
    pub traits: Vec<String>,
    /// The other [`RenderContext`] variables mentioned (`recently_viewed`, `country`...), in
    /// first-use order. A loop variable that shadows one is counted too: for a register, saying
    /// too much is the safe mistake.
    pub variables: Vec<String>,
}

/// Lists what `source` reads (see [`TemplateReads`]); comments and `raw` blocks are skipped.
pub fn template_reads(source: &str) -> TemplateReads {
    let mut reads = TemplateReads::default();
    for tag in scan_tags(source) {
        let tokens = tokenize(tag.body);
        for (index, token) in tokens.iter().enumerate() {
            let Token::Ident(identifier) = token else { continue };
            if index > 0 && is_punct(tokens.get(index - 1), ".") {
                continue;
            }
            if *identifier == "traits" {
                if let Some(reference) = trait_reference(&tokens, index) {
                    if !reads.traits.contains(&reference.field) {
                        reads.traits.push(reference.field);
                    }
                }
            } else if CONTEXT_VARIABLES.contains(identifier) && !reads.variables.iter().any(|v| v == identifier) {
                reads.variables.push((*identifier).to_owned());
            }
        }
    }
    reads
}

/// Whether a tag prints (`{{ }}`) or is a statement (`{% %}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Print,
    Statement,
}

/// One `{{ }}` or `{% %}` tag outside comments and raw blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tag<'a> {
    kind: TagKind,
    /// The text between the delimiters, whitespace-control markers removed.
    body: &'a str,
    /// The 1-based line the tag starts on.
    line: usize,
}

/// Finds the tags of a template the way minijinja's lexer does: comments end at the first `#}`,
/// a tag at the first closing delimiter outside strings and brackets, and `{% raw %}` hides
/// everything up to `{% endraw %}`.
fn scan_tags(source: &str) -> Vec<Tag<'_>> {
    let bytes = source.as_bytes();
    let mut tags = Vec::new();
    let mut position = 0;
    let mut line = 1;
    let mut line_counted_to = 0;
    while let Some(offset) = source.get(position..).and_then(|rest| rest.find('{')) {
        let start = position + offset;
        let closer: &[u8] = match bytes.get(start + 1) {
            Some(b'#') => {
                position = find_bytes(bytes, start + 2, b"#}").map_or(bytes.len(), |end| end + 2);
                continue;
            }
            Some(b'{') => b"}}",
            Some(b'%') => b"%}",
            _ => {
                position = start + 1;
                continue;
            }
        };
        line += bytes[line_counted_to..start].iter().filter(|byte| **byte == b'\n').count();
        line_counted_to = start;
        let mut body_start = start + 2;
        if matches!(bytes.get(body_start), Some(b'-' | b'+')) {
            body_start += 1;
        }
        let body_end = find_tag_end(bytes, body_start, closer);
        position = (body_end + 2).min(bytes.len());
        let mut body = source.get(body_start..body_end).unwrap_or("");
        if let Some(trimmed) = body.strip_suffix(['-', '+']) {
            body = trimmed;
        }
        let kind = if closer == b"}}" { TagKind::Print } else { TagKind::Statement };
        if kind == TagKind::Statement && body.trim() == "raw" {
            position = find_endraw(source, position);
            continue;
        }
        tags.push(Tag { kind, body, line });
    }
    tags
}

fn find_bytes(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|window| window == needle).map(|offset| from + offset)
}

/// The index of the closing delimiter of a tag whose body starts at `from`, skipping string
/// literals and bracketed text; the end of the source when there is none.
fn find_tag_end(bytes: &[u8], from: usize, closer: &[u8]) -> usize {
    let mut index = from;
    let mut depth: usize = 0;
    while index < bytes.len() {
        match bytes[index] {
            quote @ (b'"' | b'\'') => {
                index += 1;
                while index < bytes.len() && bytes[index] != quote {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'}' if depth > 0 => depth -= 1,
            _ if depth == 0 && bytes[index..].starts_with(closer) => return index,
            _ => {}
        }
        index += 1;
    }
    bytes.len()
}

/// The position just after the `{% endraw %}` that closes a raw block starting at `from`.
fn find_endraw(source: &str, from: usize) -> usize {
    let bytes = source.as_bytes();
    let mut search_from = from;
    while let Some(start) = find_bytes(bytes, search_from, b"{%") {
        let mut rest = &source[start + 2..];
        rest = rest.strip_prefix(['-', '+']).unwrap_or(rest).trim_start();
        if let Some(after) = rest.strip_prefix("endraw") {
            let after = after.trim_start();
            let after = after.strip_prefix(['-', '+']).unwrap_or(after);
            if let Some(after) = after.strip_prefix("%}") {
                return source.len() - after.len();
            }
        }
        search_from = start + 2;
    }
    source.len()
}

/// A token of a tag body, as much as the lint needs to tell names apart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    /// A string literal's content, escapes resolved only as far as dropping the backslash.
    Str(String),
    /// An operator or bracket, `==`-style pairs kept whole so `=` means assignment.
    Punct(&'a str),
    Number,
}

fn tokenize(body: &str) -> Vec<Token<'_>> {
    let bytes = body.as_bytes();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte.is_ascii_whitespace() {
            index += 1;
        } else if byte.is_ascii_alphabetic() || byte == b'_' {
            let start = index;
            while index < bytes.len() && (bytes[index].is_ascii_alphanumeric() || bytes[index] == b'_') {
                index += 1;
            }
            tokens.push(Token::Ident(&body[start..index]));
        } else if byte.is_ascii_digit() {
            while index < bytes.len() && (bytes[index].is_ascii_alphanumeric() || matches!(bytes[index], b'_' | b'.')) {
                index += 1;
            }
            tokens.push(Token::Number);
        } else if byte == b'"' || byte == b'\'' {
            let mut content = Vec::new();
            index += 1;
            while index < bytes.len() && bytes[index] != byte {
                if bytes[index] == b'\\' && index + 1 < bytes.len() {
                    index += 1;
                }
                content.push(bytes[index]);
                index += 1;
            }
            index += 1;
            tokens.push(Token::Str(String::from_utf8_lossy(&content).into_owned()));
        } else {
            let two = body.get(index..index + 2);
            if let Some(pair @ ("==" | "!=" | "<=" | ">=" | "//" | "**")) = two {
                tokens.push(Token::Punct(pair));
                index += 2;
            } else {
                let width = body[index..].chars().next().map_or(1, char::len_utf8);
                tokens.push(Token::Punct(&body[index..index + width]));
                index += width;
            }
        }
    }
    tokens
}

/// A reference to one trait, `traits.X...` or `traits["X"]...`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TraitReference {
    /// The trait's name, `X`.
    field: String,
    /// `X` and any attributes read from it, dot-separated.
    path: String,
}

/// What one tag body mentions.
#[derive(Debug, Default)]
struct Mentions {
    /// For each token, whether a use of the person's name starts there (a name field or an alias).
    name_use_at: Vec<bool>,
    traits: Vec<TraitReference>,
    /// Whether `traits` is read other than by a literal field name.
    whole_traits: bool,
}

impl Mentions {
    fn name_uses(&self) -> u32 {
        self.name_use_at.iter().filter(|used| **used).count() as u32
    }
}

fn is_punct(token: Option<&Token<'_>>, wanted: &str) -> bool {
    matches!(token, Some(Token::Punct(punct)) if *punct == wanted)
}

/// Reads `traits.a.b["c"]` from the `traits` token at `index`; `None` when the access is not
/// by literal names.
fn trait_reference(tokens: &[Token<'_>], index: usize) -> Option<TraitReference> {
    let mut cursor = index + 1;
    let field = match (tokens.get(cursor), tokens.get(cursor + 1)) {
        (Some(Token::Punct(".")), Some(Token::Ident("get"))) if is_punct(tokens.get(cursor + 2), "(") => {
            // Attributes of a `get` result are rare enough to leave out of the path.
            let Some(Token::Str(field)) = tokens.get(cursor + 3) else { return None };
            return Some(TraitReference { field: field.clone(), path: field.clone() });
        }
        (Some(Token::Punct(".")), Some(Token::Ident(field))) if !is_punct(tokens.get(cursor + 2), "(") => {
            cursor += 2;
            (*field).to_owned()
        }
        (Some(Token::Punct("[")), Some(Token::Str(field))) if is_punct(tokens.get(cursor + 2), "]") => {
            cursor += 3;
            field.clone()
        }
        _ => return None,
    };
    let mut path = field.clone();
    loop {
        match (tokens.get(cursor), tokens.get(cursor + 1)) {
            (Some(Token::Punct(".")), Some(Token::Ident(attribute))) if !is_punct(tokens.get(cursor + 2), "(") => {
                path.push('.');
                path.push_str(attribute);
                cursor += 2;
            }
            (Some(Token::Punct("[")), Some(Token::Str(attribute))) if is_punct(tokens.get(cursor + 2), "]") => {
                path.push('.');
                path.push_str(attribute);
                cursor += 3;
            }
            _ => break,
        }
    }
    Some(TraitReference { field, path })
}

fn mentions(tokens: &[Token<'_>], name_fields: &[String], aliases: &HashSet<String>) -> Mentions {
    let mut found = Mentions { name_use_at: vec![false; tokens.len()], ..Mentions::default() };
    for (index, token) in tokens.iter().enumerate() {
        let Token::Ident(identifier) = token else { continue };
        let is_attribute = index > 0 && is_punct(tokens.get(index - 1), ".");
        let is_keyword_argument = is_punct(tokens.get(index + 1), "=");
        if is_attribute || is_keyword_argument {
            continue;
        }
        if *identifier == "traits" {
            match trait_reference(tokens, index) {
                Some(reference) => {
                    if name_fields.iter().any(|name_field| name_field.eq_ignore_ascii_case(&reference.field)) {
                        found.name_use_at[index] = true;
                    }
                    found.traits.push(reference);
                }
                None => found.whole_traits = true,
            }
        } else if aliases.contains(*identifier) {
            found.name_use_at[index] = true;
        }
    }
    found
}

/// Name uses a print tag makes: in `a if c else b`, the condition does not print and only one
/// branch runs, so the tag counts as its largest branch.
fn printed_name_uses(tokens: &[Token<'_>], name_use_at: &[bool]) -> u32 {
    let (mut best_branch, mut current_branch) = (0u32, 0u32);
    let mut in_condition = false;
    let mut depth: usize = 0;
    for (token, used) in tokens.iter().zip(name_use_at) {
        match token {
            Token::Punct("(" | "[" | "{") => depth += 1,
            Token::Punct(")" | "]" | "}") => depth = depth.saturating_sub(1),
            Token::Ident("if") if depth == 0 => {
                best_branch = best_branch.max(current_branch);
                current_branch = 0;
                in_condition = true;
            }
            Token::Ident("else") if depth == 0 => {
                current_branch = 0;
                in_condition = false;
            }
            _ if *used && !in_condition => current_branch += 1,
            _ => {}
        }
    }
    best_branch.max(current_branch)
}

/// The identifiers assigned by `a, b = ...` (for `ns.x = ...`, the namespace `ns`).
fn assignment_targets<'a>(targets: &[Token<'a>]) -> Vec<&'a str> {
    targets
        .iter()
        .enumerate()
        .filter_map(|(index, token)| match token {
            Token::Ident(identifier) if index == 0 || !is_punct(targets.get(index - 1), ".") => Some(*identifier),
            _ => None,
        })
        .collect()
}

/// Splits tokens at top-level occurrences of `separator`.
fn split_top_level<'t, 'a>(tokens: &'t [Token<'a>], separator: &str) -> Vec<&'t [Token<'a>]> {
    let mut parts = Vec::new();
    let mut depth: usize = 0;
    let mut start = 0;
    for (index, token) in tokens.iter().enumerate() {
        match token {
            Token::Punct("(" | "[" | "{") => depth += 1,
            Token::Punct(")" | "]" | "}") => depth = depth.saturating_sub(1),
            Token::Punct(punct) if depth == 0 && *punct == separator => {
                parts.push(&tokens[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

/// A block whose body the name count treats specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    /// The whole template.
    Root,
    /// `if`: only one branch runs.
    If,
    /// `for`, `macro`, `call`: the body may run many times.
    Repeating,
}

#[derive(Debug)]
struct Block {
    kind: BlockKind,
    best_branch: u32,
    current_branch: u32,
}

impl Block {
    fn new(kind: BlockKind) -> Block {
        Block { kind, best_branch: 0, current_branch: 0 }
    }

    /// The name uses the whole block adds to its parent.
    fn uses(&self) -> u32 {
        match self.kind {
            BlockKind::Root | BlockKind::If => self.best_branch.max(self.current_branch),
            BlockKind::Repeating => self.current_branch.saturating_mul(2),
        }
    }
}

/// Walks a template's tags in order, keeping the name count per block and the aliases of the name.
struct Linter<'p> {
    policy: &'p LintPolicy,
    aliases: HashSet<String>,
    blocks: Vec<Block>,
    name_lines: Vec<usize>,
    repeated_name_line: Option<usize>,
}

impl<'p> Linter<'p> {
    fn new(policy: &'p LintPolicy) -> Linter<'p> {
        Linter {
            policy,
            aliases: HashSet::new(),
            blocks: vec![Block::new(BlockKind::Root)],
            name_lines: Vec::new(),
            repeated_name_line: None,
        }
    }

    fn add_uses(&mut self, uses: u32, line: usize) {
        if uses == 0 {
            return;
        }
        self.name_lines.push(line);
        if self.repeated_name_line.is_none() && self.blocks.iter().any(|block| block.kind == BlockKind::Repeating) {
            self.repeated_name_line = Some(line);
        }
        if let Some(block) = self.blocks.last_mut() {
            block.current_branch = block.current_branch.saturating_add(uses);
        }
    }

    fn open(&mut self, kind: BlockKind) {
        self.blocks.push(Block::new(kind));
    }

    fn close(&mut self, kind: BlockKind) {
        if self.blocks.len() > 1 && self.blocks.last().is_some_and(|block| block.kind == kind) {
            if let Some(block) = self.blocks.pop() {
                let uses = block.uses();
                if let Some(parent) = self.blocks.last_mut() {
                    parent.current_branch = parent.current_branch.saturating_add(uses);
                }
            }
        }
    }

    fn next_branch(&mut self) {
        if let Some(block) = self.blocks.last_mut().filter(|block| block.kind == BlockKind::If) {
            block.best_branch = block.best_branch.max(block.current_branch);
            block.current_branch = 0;
        }
    }

    fn check_traits(&self, found: &Mentions, line: usize) -> Result<(), TemplateError> {
        for reference in &found.traits {
            let verdict = sensitive_field(&reference.field, &self.policy.policy).or_else(|| {
                (reference.path != reference.field)
                    .then(|| sensitive_field(&reference.path, &self.policy.policy))
                    .flatten()
            });
            if let Some((category, reason)) = verdict {
                return Err(TemplateError::new(
                    TemplateErrorKind::SensitiveField {
                        field: reference.path.clone(),
                        category: category.as_str().to_owned(),
                    },
                    Some(line),
                    format!(
                        "`traits.{}` is sensitive ({}: {reason}); templates may not use it",
                        reference.path,
                        category.as_str()
                    ),
                ));
            }
        }
        if found.whole_traits {
            return Err(TemplateError::new(
                TemplateErrorKind::WholeTraitsAccess,
                Some(line),
                "`traits` is read as a whole or with a computed key; name each trait, as in `traits.city` or \
                 `traits[\"city\"]`",
            ));
        }
        Ok(())
    }

    fn visit(&mut self, tag: &Tag<'_>) -> Result<(), TemplateError> {
        let tokens = tokenize(tag.body);
        let found = mentions(&tokens, &self.policy.name_fields, &self.aliases);
        self.check_traits(&found, tag.line)?;
        if tag.kind == TagKind::Print {
            let uses = printed_name_uses(&tokens, &found.name_use_at);
            self.add_uses(uses, tag.line);
            return Ok(());
        }
        let keyword = match tokens.first() {
            Some(Token::Ident(keyword)) => *keyword,
            _ => "",
        };
        match keyword {
            "if" => self.open(BlockKind::If),
            "elif" | "else" => self.next_branch(),
            "endif" => self.close(BlockKind::If),
            "for" | "macro" | "call" => {
                self.add_uses(found.name_uses(), tag.line);
                self.open(BlockKind::Repeating);
            }
            "endfor" | "endmacro" | "endcall" => self.close(BlockKind::Repeating),
            "set" | "with" => self.assign(&tokens[1..]),
            _ => self.add_uses(found.name_uses(), tag.line),
        }
        Ok(())
    }

    /// `set a = expr` or `with a = x, b = y`: a target becomes an alias of the name when its
    /// value mentions the name, and stops being one otherwise. Block `set` (no `=`) captures its
    /// body, whose prints were counted where they are.
    fn assign(&mut self, tokens: &[Token<'_>]) {
        for assignment in split_top_level(tokens, ",") {
            let parts = split_top_level(assignment, "=");
            let [targets @ .., value] = parts.as_slice() else { continue };
            if targets.is_empty() {
                continue;
            }
            let derived_from_name = mentions(value, &self.policy.name_fields, &self.aliases).name_uses() > 0;
            for target in targets.iter().flat_map(|target| assignment_targets(target)) {
                if derived_from_name {
                    self.aliases.insert(target.to_owned());
                } else {
                    self.aliases.remove(target);
                }
            }
        }
    }

    fn finish(mut self) -> Result<(), TemplateError> {
        while self.blocks.len() > 1 {
            let kind = self.blocks.last().map_or(BlockKind::Root, |block| block.kind);
            self.close(kind);
        }
        let uses = self.blocks.first().map_or(0, Block::uses);
        if uses < 2 {
            return Ok(());
        }
        let lines = self.name_lines.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let detail = match self.repeated_name_line {
            Some(line) => format!(
                "the person's name is printed inside a loop, macro or call block (line {line}), so it may appear more \
                 than once; print it at most once"
            ),
            None => format!("the person's name is printed more than once (lines {lines}); print it at most once"),
        };
        let line = self.repeated_name_line.or_else(|| self.name_lines.get(1).copied());
        Err(TemplateError::new(TemplateErrorKind::NameUsedMoreThanOnce, line, detail))
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
