//! The decision: for one person, one request and one slot, which variant to show, its rendered
//! content, the personalization level used, and the explanation a person can read.
//!
//! The fallback ladder, top to bottom: no `personalization` consent → the generic default (and
//! the explanation says so); a member of the slot's exclusion audience → the default; variants
//! by priority, skipping behavioral and predictive ones when the profile has too little history
//! (thin data) and any whose audience excludes the person; the first variant that matches
//! wins; otherwise the default.

use std::sync::Arc;

use regard_core::consent::{ConsentMode, ConsentPurpose};
use regard_core::facts::ProfileId;
use regard_core::live::LiveState;
use regard_core::profile::{Profile, VisitorKind};
use regard_core::segments::definition::{Condition, ContextField, EventMatch, SegmentId};
use regard_core::segments::evaluate::{explain, ScoreSource, SegmentFacts};
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::geo::nearest_store;
use crate::slot::{RecommendSpec, SlotDefinition, SlotError, SlotKind, DEFAULT_VARIANT, GENERIC_STRATEGIES};
use crate::targeting::{FiredCondition, Level, Match};
use crate::template::{
    Campaign, ContentSettings, LintPolicy, PageContext, PreparedContext, ProductCard, RenderContext, TemplateConfig,
    TemplateEngine,
};

/// What the request says about the visit (Segment's `context`, resolved by the server: the
/// country comes from a trusted proxy header or the IP database, the device from the user agent).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// ISO 3166-1 alpha-2 country, upper case.
    pub country: Option<String>,
    /// ISO 3166-2 subdivision (`US-CA`), upper case.
    pub region: Option<String>,
    /// UTM parameters.
    pub campaign: Campaign,
    /// The referring site's host (`www.google.com`).
    pub referrer_domain: Option<String>,
    /// `mobile`, `tablet` or `desktop`.
    pub device: Option<String>,
    /// BCP 47 locale from the browser.
    pub locale: Option<String>,
    /// IANA time zone from the browser.
    pub timezone: Option<String>,
    /// The page being shown.
    pub page: Option<PageContext>,
    /// `personalization` consent stated in this request (a cookie banner's answer), which
    /// overrides the stored state when it says no, and stands in for it for unknown visitors.
    pub personalization_consent: Option<bool>,
}

/// Classifies a user agent as `mobile`, `tablet` or `desktop` (the same buckets as the segment
/// language's `device` field).
pub fn device_from_user_agent(user_agent: &str) -> &'static str {
    let ua = user_agent.to_ascii_lowercase();
    if ua.contains("ipad") || ua.contains("tablet") || (ua.contains("android") && !ua.contains("mobile")) {
        "tablet"
    } else if ua.contains("mobi") || ua.contains("iphone") || ua.contains("ipod") || ua.contains("android") {
        "mobile"
    } else {
        "desktop"
    }
}

/// The host of a URL, without `www.`-stripping (segments compare whole hosts).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?;
    let host = host.split(':').next()?.trim().to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Why the person may or may not get personalized content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentBasis {
    /// The person granted `personalization`.
    Granted,
    /// Nobody said no, and the operator runs in opt-out mode.
    OptOutDefault,
    /// The person said no (stored, or in this request).
    OptedOut,
    /// The operator runs in opt-in mode and the person has not said yes.
    NotGranted,
}

impl ConsentBasis {
    /// Whether personalized content is allowed.
    pub fn allows(self) -> bool {
        matches!(self, ConsentBasis::Granted | ConsentBasis::OptOutDefault)
    }
}

/// Fills the recommendation lists variants ask for (`recommend` in a slot); the server
/// implements it over its trained model, so this crate needs no recommendation engine.
pub trait Recommender {
    /// Up to `spec.n` products for `spec`; with `personal` false only strategies that use
    /// nothing stored about the person ([`crate::slot::GENERIC_STRATEGIES`]); with
    /// `shared_context` (an email block) no product from a sensitive category.
    fn recommend(&self, spec: &RecommendSpec, personal: bool, shared_context: bool) -> Vec<ProductCard>;
}

/// Whether a list asks for the person's history (an empty list means the engine's default
/// chain, which does).
fn is_personal(spec: &RecommendSpec) -> bool {
    spec.strategy.is_empty() || spec.strategy.iter().any(|s| !GENERIC_STRATEGIES.contains(&s.as_str()))
}

/// What the evaluator and the ladder may ask about the person (implemented by [`Person`]; a
/// trait so targeting can be tested without a live state).
pub trait PersonFacts {
    /// The facts the segment-language evaluator reads.
    fn segment_facts(&self) -> &dyn SegmentFacts;
    /// Whether the person is in a saved segment now.
    fn is_member(&self, segment: &SegmentId) -> bool;
    /// Whether a segment rests on a model's score.
    fn is_predictive_segment(&self, segment: &SegmentId) -> bool;
    /// Sentences saying why the person is in a segment.
    fn segment_explanations(&self, segment: &SegmentId, now_ms: i64) -> Vec<String>;
    /// The hour (0..=23) in the person's time zone, when it is known.
    fn local_hour(&self) -> Option<u8>;
}

/// One person as a decision sees them: read once per request, shared by its slots.
pub struct Person<'a> {
    live: &'a LiveState,
    profile: Option<&'a Profile>,
    request: &'a RequestContext,
    traits: Map<String, Value>,
    consent: ConsentBasis,
    local_hour: Option<u8>,
    locale: String,
    currency: String,
    timezone: Option<String>,
    location: Option<(f64, f64)>,
    recently_viewed: Vec<ProductCard>,
    recommender: Option<&'a dyn Recommender>,
    /// Built on first use and shared by the request's slots.
    personal: std::cell::OnceCell<PreparedContext>,
    generic: std::cell::OnceCell<PreparedContext>,
}

impl<'a> Person<'a> {
    /// Reads what a decision needs about `profile_id` (none for a visitor Regard has never seen)
    /// from the live state, with the request's context, at `now_ms`.
    pub fn read(
        live: &'a LiveState,
        profile_id: Option<ProfileId>,
        request: &'a RequestContext,
        settings: &ContentSettings,
        now_ms: i64,
    ) -> Person<'a> {
        let profile = profile_id.and_then(|id| live.profile(live.canonical(id)));
        let consent = consent_basis(live, profile, request);
        let mut traits = Map::new();
        if let Some(profile) = profile {
            for value in &profile.traits {
                if let Ok(parsed) = serde_json::from_str::<Value>(&value.value_json) {
                    traits.insert(live.symbols.name(value.key).to_owned(), parsed);
                }
            }
        }
        let symbol_text =
            |symbol: Option<regard_core::symbols::Symbol>| symbol.map(|s| live.symbols.name(s).to_owned());
        let trait_text = |key: &str| traits.get(key).and_then(Value::as_str).map(str::to_owned);
        let locale = trait_text("locale")
            .or_else(|| request.locale.clone())
            .or_else(|| symbol_text(profile.and_then(|p| p.last_locale)))
            .unwrap_or_else(|| "en-US".to_owned());
        let timezone = trait_text("timezone")
            .or_else(|| request.timezone.clone())
            .or_else(|| symbol_text(profile.and_then(|p| p.last_timezone)));
        let country = request.country.clone().or_else(|| country_of_locale(&locale));
        let currency = trait_text("currency")
            .map(|c| c.to_ascii_uppercase())
            .or_else(|| country.as_deref().and_then(currency_of_country).map(str::to_owned))
            .or_else(|| settings.exchange_rates.as_ref().map(|rates| rates.base.clone()))
            .unwrap_or_else(|| "USD".to_owned());
        let local_hour = timezone.as_deref().and_then(|zone| local_hour(zone, now_ms));
        let location = location_of(&traits).or_else(|| {
            // Without coordinates, a store in the person's own city stands for their location.
            let city = trait_text("city")?;
            let store =
                settings.stores.iter().find(|s| s.city.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(&city)))?;
            Some((store.latitude, store.longitude))
        });
        Person {
            live,
            profile,
            request,
            traits,
            consent,
            local_hour,
            locale,
            currency,
            timezone,
            location,
            recently_viewed: Vec::new(),
            recommender: None,
            personal: std::cell::OnceCell::new(),
            generic: std::cell::OnceCell::new(),
        }
    }

    /// Sets the products the person viewed most recently (newest first), which the server
    /// resolves against the catalog.
    pub fn with_recently_viewed(mut self, products: Vec<ProductCard>) -> Person<'a> {
        self.recently_viewed = products;
        self
    }

    /// Sets what fills recommendation lists.
    pub fn with_recommender(mut self, recommender: &'a dyn Recommender) -> Person<'a> {
        self.recommender = Some(recommender);
        self
    }

    fn recommendations(&self, spec: &RecommendSpec, personal: bool, kind: SlotKind) -> Vec<ProductCard> {
        let shared = kind == SlotKind::EmailBlock;
        self.recommender.map(|r| r.recommend(spec, personal, shared)).unwrap_or_default()
    }

    /// The profile, when Regard knows the person.
    pub fn profile(&self) -> Option<&Profile> {
        self.profile
    }

    /// The consent basis for personalization.
    pub fn consent(&self) -> ConsentBasis {
        self.consent
    }

    /// Stored events on the profile.
    pub fn event_count(&self) -> usize {
        self.profile.map_or(0, |p| p.timeline.len())
    }

    fn visitor(&self) -> VisitorKind {
        self.profile.map_or(VisitorKind::New, Profile::visitor_kind)
    }

    /// The render context for personalized content.
    fn personal_context(&self, settings: &ContentSettings) -> &PreparedContext {
        self.personal.get_or_init(|| PreparedContext::new(&self.build_personal_context(settings)))
    }

    fn build_personal_context(&self, settings: &ContentSettings) -> RenderContext {
        RenderContext {
            traits: self.traits.clone(),
            visitor: template_visitor(self.visitor()),
            locale: self.locale.clone(),
            currency: self.currency.clone(),
            timezone: self.timezone.clone(),
            country: self.request.country.clone(),
            campaign: Some(self.request.campaign.clone()),
            page: self.request.page.clone(),
            recently_viewed: self.recently_viewed.clone(),
            nearest_store: self
                .location
                .and_then(|(lat, lon)| nearest_store(&settings.stores, lat, lon))
                .map(|(store, km)| crate::geo::StoreDistance::new(store, km)),
            recommendations: Vec::new(),
        }
    }

    /// The render context for generic content: only what the request itself says about
    /// presentation (locale and currency); nothing stored about the person.
    fn generic_context(&self) -> &PreparedContext {
        self.generic.get_or_init(|| PreparedContext::new(&self.build_generic_context()))
    }

    fn build_generic_context(&self) -> RenderContext {
        let locale = self.request.locale.clone().unwrap_or_else(|| "en-US".to_owned());
        let country = self.request.country.clone().or_else(|| country_of_locale(&locale));
        let currency = country.as_deref().and_then(currency_of_country).unwrap_or("USD").to_owned();
        RenderContext {
            traits: Map::new(),
            visitor: crate::template::VisitorKind::New,
            locale,
            currency,
            timezone: None,
            country: None,
            campaign: None,
            page: self.request.page.clone(),
            recently_viewed: Vec::new(),
            nearest_store: None,
            recommendations: Vec::new(),
        }
    }
}

impl ScoreSource for Person<'_> {
    fn score(&self, name: &str) -> Option<f64> {
        // The live state answers only while the person allows `profiling`.
        self.live.score(self.profile?.id, name)
    }
}

impl SegmentFacts for Person<'_> {
    fn trait_value(&self, name: &str) -> Option<Value> {
        self.traits.get(name).cloned()
    }

    fn matching_events(&self, _event: &EventMatch) -> Vec<i64> {
        // Variants may not hold event conditions (they are refused on save); segments do.
        Vec::new()
    }

    fn visitor_kind(&self) -> VisitorKind {
        self.visitor()
    }

    fn context(&self, field: ContextField) -> Option<String> {
        let campaign = &self.request.campaign;
        match field {
            ContextField::Country => self.request.country.clone(),
            ContextField::Region => self.request.region.clone(),
            ContextField::UtmSource => campaign.source.clone(),
            ContextField::UtmMedium => campaign.medium.clone(),
            ContextField::UtmCampaign => campaign.name.clone(),
            ContextField::ReferrerDomain => self.request.referrer_domain.clone(),
            ContextField::Device => self.request.device.clone(),
        }
    }

    fn is_member(&self, segment: &SegmentId) -> bool {
        PersonFacts::is_member(self, segment)
    }
}

impl PersonFacts for Person<'_> {
    fn segment_facts(&self) -> &dyn SegmentFacts {
        self
    }

    fn is_member(&self, segment: &SegmentId) -> bool {
        self.profile.is_some_and(|profile| self.live.is_member(profile.id, segment.as_str()))
    }

    fn is_predictive_segment(&self, segment: &SegmentId) -> bool {
        self.live.segment(segment.as_str()).is_some_and(|saved| uses_scores(saved.definition.condition()))
    }

    fn segment_explanations(&self, segment: &SegmentId, now_ms: i64) -> Vec<String> {
        let Some(profile) = self.profile else { return Vec::new() };
        let reasons = self.live.segment_reasons(profile.id, segment.as_str(), now_ms).unwrap_or_default();
        let texts: Vec<String> = reasons.iter().map(explain).collect();
        if texts.is_empty() {
            vec![format!("You are in the audience \"{}\".", segment.as_str())]
        } else {
            texts
        }
    }

    fn local_hour(&self) -> Option<u8> {
        self.local_hour
    }
}

fn template_visitor(kind: VisitorKind) -> crate::template::VisitorKind {
    match kind {
        VisitorKind::New => crate::template::VisitorKind::New,
        VisitorKind::Returning => crate::template::VisitorKind::Returning,
    }
}

fn uses_scores(condition: &Condition) -> bool {
    match condition {
        Condition::All(children) | Condition::Any(children) => children.iter().any(uses_scores),
        Condition::Not(child) => uses_scores(child),
        Condition::Score(_) => true,
        _ => false,
    }
}

fn consent_basis(live: &LiveState, profile: Option<&Profile>, request: &RequestContext) -> ConsentBasis {
    let purpose = ConsentPurpose::Personalization;
    if request.personalization_consent == Some(false) {
        return ConsentBasis::OptedOut;
    }
    if let Some(decision) = profile.and_then(|p| p.consent.decision(purpose)) {
        return if decision.granted { ConsentBasis::Granted } else { ConsentBasis::OptedOut };
    }
    if request.personalization_consent == Some(true) {
        return ConsentBasis::Granted;
    }
    match live.config().consent_mode {
        ConsentMode::OptOut => ConsentBasis::OptOutDefault,
        ConsentMode::OptIn => ConsentBasis::NotGranted,
    }
}

fn local_hour(zone: &str, now_ms: i64) -> Option<u8> {
    let zone = jiff::tz::TimeZone::get(zone).ok()?;
    let instant = jiff::Timestamp::from_millisecond(now_ms).ok()?;
    Some(instant.to_zoned(zone).hour() as u8)
}

/// Coordinates from `location: {latitude, longitude}` or top-level `latitude`/`longitude` traits
/// (used only to find the nearest store; never printed).
fn location_of(traits: &Map<String, Value>) -> Option<(f64, f64)> {
    let pair =
        |object: &Map<String, Value>| Some((object.get("latitude")?.as_f64()?, object.get("longitude")?.as_f64()?));
    traits.get("location").and_then(Value::as_object).and_then(pair).or_else(|| pair(traits))
}

/// The region part of a locale (`de-AT` → `AT`).
fn country_of_locale(locale: &str) -> Option<String> {
    let region = locale.split(['-', '_']).nth(1)?;
    (region.len() == 2 && region.bytes().all(|b| b.is_ascii_alphabetic())).then(|| region.to_ascii_uppercase())
}

/// The usual currency of a country, for people who never said theirs.
pub fn currency_of_country(country: &str) -> Option<&'static str> {
    Some(match country.to_ascii_uppercase().as_str() {
        "US" | "EC" | "SV" | "PR" => "USD",
        "GB" => "GBP",
        "DE" | "FR" | "ES" | "IT" | "NL" | "BE" | "AT" | "IE" | "PT" | "FI" | "GR" | "LU" | "SK" | "SI" | "EE"
        | "LV" | "LT" | "MT" | "CY" | "HR" => "EUR",
        "JP" => "JPY",
        "CA" => "CAD",
        "AU" => "AUD",
        "NZ" => "NZD",
        "CH" | "LI" => "CHF",
        "SE" => "SEK",
        "NO" => "NOK",
        "DK" => "DKK",
        "PL" => "PLN",
        "IN" => "INR",
        "BR" => "BRL",
        "MX" => "MXN",
        "KR" => "KRW",
        "CN" => "CNY",
        _ => return None,
    })
}

/// One variant skipped on the way down the ladder, and why (for the decision log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedVariant {
    /// The variant.
    pub variant: String,
    /// `thin_data`, `excluded:<segment>` or `render_error`.
    pub reason: String,
}

/// The answer for one slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotDecision {
    /// The slot.
    pub slot: String,
    /// The chosen variant (`default` for the generic one).
    pub variant: String,
    /// The rendered content.
    pub content: String,
    /// The personalization level used.
    pub level: Level,
    /// The explanation a person can read.
    pub explanation: String,
    /// The conditions that fired.
    pub conditions: Vec<FiredCondition>,
    /// The consent purpose relied on (`personalization`), or none for generic content.
    pub purpose: Option<&'static str>,
    /// The consent basis at decision time.
    pub consent: ConsentBasis,
    /// Variants passed over, and why.
    pub skipped: Vec<SkippedVariant>,
    /// The slot definition's version.
    pub slot_version: u32,
}

/// Why a slot could not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// No such slot.
    #[error("no slot {0:?}")]
    UnknownSlot(String),
    /// Even the generic default failed to render (the slot is broken).
    #[error("slot {slot:?}: the default template failed: {message}")]
    DefaultFailed {
        /// The slot.
        slot: String,
        /// The template error.
        message: String,
    },
}

/// A saved slot with its bookkeeping.
#[derive(Debug, Clone)]
pub struct StoredSlot {
    /// The checked definition.
    pub definition: SlotDefinition,
    /// The JSON it was saved as.
    pub json: String,
    /// Version, from 1.
    pub version: u32,
    /// When this version was saved (Unix ms).
    pub updated_ms: i64,
}

/// What the template uses of the person, which raises the level of an unconditional variant.
fn template_level(source: &str) -> Level {
    if source.contains("recently_viewed") {
        Level::Behavioral
    } else if source.contains("traits") || source.contains("nearest_store") {
        Level::Identity
    } else {
        Level::Generic
    }
}

struct CompiledSlot {
    stored: Arc<StoredSlot>,
    /// Per variant (in ladder order), what its template uses of the person.
    template_levels: Vec<Level>,
}

/// Everything decisions read: slots with compiled templates and the content settings. Built off
/// the hot path and swapped in whole when a definition changes, so a decision never sees half
/// an update.
pub struct ContentSnapshot {
    version: u64,
    slots: FxHashMap<String, CompiledSlot>,
    templates: TemplateEngine,
    settings: ContentSettings,
}

impl ContentSnapshot {
    /// An empty snapshot (no slots yet).
    pub fn empty() -> ContentSnapshot {
        ContentSnapshot {
            version: 0,
            slots: FxHashMap::default(),
            templates: TemplateEngine::new(ContentSettings::default(), TemplateConfig::default()),
            settings: ContentSettings::default(),
        }
    }

    /// Compiles slots and settings into a snapshot; the first slot whose template fails its lint
    /// or does not compile is reported with the path of the template.
    pub fn build(
        version: u64,
        slots: Vec<Arc<StoredSlot>>,
        settings: ContentSettings,
        lint: &LintPolicy,
    ) -> Result<ContentSnapshot, (String, SlotError)> {
        let mut templates = TemplateEngine::new(settings.clone(), TemplateConfig::default());
        let mut compiled = FxHashMap::default();
        for stored in slots {
            let slot = &stored.definition;
            compile_slot(&mut templates, slot, lint).map_err(|e| (slot.id.clone(), e))?;
            let template_levels = slot.variants.iter().map(|v| template_level(&v.template)).collect();
            compiled.insert(slot.id.clone(), CompiledSlot { stored: stored.clone(), template_levels });
        }
        Ok(ContentSnapshot { version, slots: compiled, templates, settings })
    }

    /// Checks that a slot's templates pass their lints and compile, without building anything.
    pub fn check_slot(slot: &SlotDefinition, settings: &ContentSettings, lint: &LintPolicy) -> Result<(), SlotError> {
        let mut templates = TemplateEngine::new(settings.clone(), TemplateConfig::default());
        compile_slot(&mut templates, slot, lint)
    }

    /// The snapshot's version (increases with every rebuild).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The content settings.
    pub fn settings(&self) -> &ContentSettings {
        &self.settings
    }

    /// A slot by id.
    pub fn slot(&self, id: &str) -> Option<&Arc<StoredSlot>> {
        self.slots.get(id).map(|c| &c.stored)
    }

    /// Every slot, by id.
    pub fn slots(&self) -> Vec<&Arc<StoredSlot>> {
        let mut slots: Vec<&Arc<StoredSlot>> = self.slots.values().map(|c| &c.stored).collect();
        slots.sort_by(|a, b| a.definition.id.cmp(&b.definition.id));
        slots
    }

    /// Decides one slot for one person at `now_ms`.
    pub fn decide(&self, slot_id: &str, person: &Person<'_>, now_ms: i64) -> Result<SlotDecision, DecideError> {
        let compiled = self.slots.get(slot_id).ok_or_else(|| DecideError::UnknownSlot(slot_id.to_owned()))?;
        let slot = &compiled.stored.definition;
        let mut skipped = Vec::new();
        let consent = person.consent();
        if !consent.allows() {
            let explanation = match consent {
                ConsentBasis::OptedOut => {
                    "You have turned off personalization, so you see the standard content everyone sees."
                }
                _ => "You have not turned on personalization, so you see the standard content everyone sees.",
            };
            return self.default_decision(compiled, person, explanation.to_owned(), skipped);
        }
        if let Some(segment) = slot.exclude.iter().find(|segment| PersonFacts::is_member(person, segment)) {
            skipped.push(SkippedVariant { variant: "*".to_owned(), reason: format!("excluded:{}", segment.as_str()) });
            return self.default_decision(compiled, person, GENERIC_EXPLANATION.to_owned(), skipped);
        }
        let mut thin = false;
        for (variant, template_level) in slot.variants.iter().zip(&compiled.template_levels) {
            let fired = match variant.targeting.matches(person, now_ms) {
                Match::No => continue,
                Match::Excluded(segment) => {
                    skipped.push(SkippedVariant {
                        variant: variant.id.clone(),
                        reason: format!("excluded:{}", segment.as_str()),
                    });
                    continue;
                }
                Match::Yes(fired) => fired,
            };
            // A variant that would rest on behavior or a prediction needs enough history behind
            // it: with too little, fall to the next rung rather than over-read one signal.
            let list_level = match &variant.recommend {
                Some(spec) if is_personal(spec) => Level::Behavioral,
                _ => Level::Generic,
            };
            let level =
                fired.iter().map(|f| f.level).max().unwrap_or(Level::Generic).max(*template_level).max(list_level);
            if level.needs_history() && person.event_count() < slot.min_events as usize {
                thin = true;
                skipped.push(SkippedVariant { variant: variant.id.clone(), reason: "thin_data".to_owned() });
                continue;
            }
            let name = slot.template_name(&variant.id);
            let rendered = match &variant.recommend {
                Some(spec) => {
                    let mut context = person.build_personal_context(&self.settings);
                    context.recommendations = person.recommendations(spec, true, slot.kind);
                    if context.recommendations.is_empty() {
                        // Nothing to show (no model yet, everything filtered): the next rung.
                        skipped
                            .push(SkippedVariant { variant: variant.id.clone(), reason: "no_recommendations".into() });
                        continue;
                    }
                    self.templates.render_prepared(&name, &PreparedContext::new(&context))
                }
                None => self.templates.render_prepared(&name, person.personal_context(&self.settings)),
            };
            let content = match rendered {
                Ok(content) => content,
                Err(error) => {
                    skipped
                        .push(SkippedVariant { variant: variant.id.clone(), reason: format!("render_error: {error}") });
                    continue;
                }
            };
            let explanation = explain_fired(&fired, level);
            return Ok(SlotDecision {
                slot: slot.id.clone(),
                variant: variant.id.clone(),
                content,
                level,
                explanation,
                conditions: fired,
                purpose: (level != Level::Generic).then_some(ConsentPurpose::Personalization.as_str()),
                consent,
                skipped,
                slot_version: compiled.stored.version,
            });
        }
        let explanation = if thin {
            "We do not know enough about your visits yet to tailor this, so you see the standard content everyone sees."
        } else {
            GENERIC_EXPLANATION
        };
        self.default_decision(compiled, person, explanation.to_owned(), skipped)
    }

    fn default_decision(
        &self,
        compiled: &CompiledSlot,
        person: &Person<'_>,
        explanation: String,
        skipped: Vec<SkippedVariant>,
    ) -> Result<SlotDecision, DecideError> {
        let slot = &compiled.stored.definition;
        let name = slot.template_name(DEFAULT_VARIANT);
        let rendered = match &slot.default_recommend {
            Some(spec) => {
                let mut context = person.build_generic_context();
                context.recommendations = person.recommendations(spec, false, slot.kind);
                self.templates.render_prepared(&name, &PreparedContext::new(&context))
            }
            None => self.templates.render_prepared(&name, person.generic_context()),
        };
        let content =
            rendered.map_err(|e| DecideError::DefaultFailed { slot: slot.id.clone(), message: e.to_string() })?;
        Ok(SlotDecision {
            slot: slot.id.clone(),
            variant: DEFAULT_VARIANT.to_owned(),
            content,
            level: Level::Generic,
            explanation,
            conditions: Vec::new(),
            purpose: None,
            consent: person.consent(),
            skipped,
            slot_version: compiled.stored.version,
        })
    }
}

/// The explanation of the generic default when nothing about the person was used.
pub const GENERIC_EXPLANATION: &str =
    "This is the standard content everyone sees; nothing about you was used to choose it.";

fn compile_slot(templates: &mut TemplateEngine, slot: &SlotDefinition, lint: &LintPolicy) -> Result<(), SlotError> {
    let mut add = |name: String, source: &str, path: String| {
        templates.add(&name, source, lint).map_err(|e| SlotError::Template {
            path,
            message: e.to_string(),
            kind: e.kind.code().to_owned(),
        })
    };
    add(slot.template_name(DEFAULT_VARIANT), &slot.default_template, "default.template".to_owned())?;
    for (i, variant) in slot.variants.iter().enumerate() {
        add(slot.template_name(&variant.id), &variant.template, format!("variants[{i}].template"))?;
    }
    Ok(())
}

/// "You are seeing this because you viewed Running Shoes 3 times in the last 7 days."
fn explain_fired(fired: &[FiredCondition], level: Level) -> String {
    let mut clauses: Vec<String> = Vec::new();
    for condition in fired {
        let clause = lower_first(condition.text.trim_end_matches('.'));
        if !clauses.contains(&clause) {
            clauses.push(clause);
        }
    }
    match (clauses.len(), level) {
        (0, Level::Generic) => GENERIC_EXPLANATION.to_owned(),
        (0, Level::Behavioral) => "You are seeing this because of the products you viewed on our site.".to_owned(),
        (0, _) => "You are seeing this because of what you told us about yourself.".to_owned(),
        (1, _) => format!("You are seeing this because {}.", clauses[0]),
        _ => {
            let (last, rest) = clauses.split_last().expect("at least two clauses");
            format!("You are seeing this because {}, and {last}.", rest.join(", "))
        }
    }
}

/// "You viewed" → "you viewed"; "Your birthday" → "your birthday"; "It is" → "it is".
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if text.starts_with("You") || text.starts_with("It ") || text.starts_with("This") => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
