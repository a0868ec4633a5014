//! The record of processing activities (GDPR Art. 30), generated from what this instance is
//! configured to do: which data categories Regard keeps, for which purpose, on which legal
//! basis, for how long, and which segments, slots, models and flows use each of them, plus a
//! plain-language summary an operator can paste into a privacy policy.
//!
//! Building the register is pure: [`build`] takes the segment and slot definitions, the models,
//! the consent mode and the privacy policy, and answers a [`Register`]. The route
//! (`GET /v1/privacy/register`) and `regard privacy register` only gather those inputs, through
//! [`from_live`]. The register describes; it enforces nothing. Where Regard does not yet do
//! what a register would promise (automatic deletion after the retention period), it says so.

use std::collections::BTreeSet;

use regard_content::decide::ContentSnapshot;
use regard_content::slot::{RecommendSpec, SlotDefinition, GENERIC_STRATEGIES};
use regard_content::template::template_reads;
use regard_core::consent::{ConsentMode, ConsentPurpose};
use regard_core::live::LiveState;
use regard_core::segments::definition::{Condition, EventMatch};
use regard_core::segments::{PolicyConfig, SegmentDefinition, SegmentId, SensitiveCategory};
use regard_core::time::{format_iso8601_ms, DAY_MS};
use serde::Serialize;

use crate::predict::fit::ModelState;
use crate::predict::PredictService;
use crate::recs::{RecsService, INTERACTION_EVENTS};

/// The intended default retention of the raw event history: 13 months (395 days), long enough
/// to compare a season with the same season a year before. Regard does not purge yet, so the
/// register reports it as intended and not enforced.
pub const RAW_EVENT_RETENTION_DAYS: u32 = 395;

/// Who receives the data Regard holds: nobody, since it runs on the operator's own servers.
pub const RECIPIENTS: &str = "none (self-hosted; no data leaves this server)";

/// A kind of data Regard keeps or reads about people, as a privacy policy would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataCategory {
    /// userId, anonymousId, and which of them are one person.
    Identifiers,
    /// What identify calls say about a person, with the history of changes.
    ProfileTraits,
    /// Tracked events, page and screen views, as the SDK sent them.
    EventHistory,
    /// What a request says about the visit (country, campaign, referrer, device).
    VisitContext,
    /// Every consent decision with its time, source and policy version.
    ConsentRecords,
    /// Who is in which segment, and when they entered and left.
    SegmentMemberships,
    /// The predictive models' outputs per person (model scores).
    Predictions,
    /// Which content each person was shown, and why.
    DecisionLog,
    /// Daily counts of events kept without `analytics` consent: no identifier at all.
    AnonymousCounts,
    /// The log of data subject requests, and the tombstones of erased people.
    PrivacyRequests,
}

impl DataCategory {
    /// Every category, in the order the register lists them.
    pub const ALL: [DataCategory; 10] = [
        DataCategory::Identifiers,
        DataCategory::ProfileTraits,
        DataCategory::EventHistory,
        DataCategory::VisitContext,
        DataCategory::ConsentRecords,
        DataCategory::SegmentMemberships,
        DataCategory::Predictions,
        DataCategory::DecisionLog,
        DataCategory::AnonymousCounts,
        DataCategory::PrivacyRequests,
    ];

    /// The category's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DataCategory::Identifiers => "identifiers",
            DataCategory::ProfileTraits => "profile_traits",
            DataCategory::EventHistory => "event_history",
            DataCategory::VisitContext => "visit_context",
            DataCategory::ConsentRecords => "consent_records",
            DataCategory::SegmentMemberships => "segment_memberships",
            DataCategory::Predictions => "predictions",
            DataCategory::DecisionLog => "decision_log",
            DataCategory::AnonymousCounts => "anonymous_counts",
            DataCategory::PrivacyRequests => "privacy_requests",
        }
    }

    fn title(self) -> &'static str {
        match self {
            DataCategory::Identifiers => "Identifiers",
            DataCategory::ProfileTraits => "Profile traits",
            DataCategory::EventHistory => "Event history",
            DataCategory::VisitContext => "Visit context",
            DataCategory::ConsentRecords => "Consent records",
            DataCategory::SegmentMemberships => "Segment memberships",
            DataCategory::Predictions => "Predictions",
            DataCategory::DecisionLog => "Decision log",
            DataCategory::AnonymousCounts => "Anonymous daily counts",
            DataCategory::PrivacyRequests => "Data subject requests",
        }
    }

    fn examples(self) -> &'static [&'static str] {
        match self {
            DataCategory::Identifiers => &[
                "userId (the operator's customer id)",
                "anonymousId (a random id the SDK keeps in the browser or app)",
                "which ids were found to be the same person (identify, alias, merges)",
            ],
            DataCategory::ProfileTraits => &[
                "whatever identify calls send: name, email address, city, birthday, declared preferences",
                "the history of each trait's changes",
            ],
            DataCategory::EventHistory => &[
                "track events with their properties (Product Viewed, Order Completed with its products and revenue)",
                "page and screen views",
                "the context the SDK sends with each event: page URL and referrer, campaign (UTM), user agent, \
                 locale, time zone, and the IP address when the SDK sends it",
            ],
            DataCategory::VisitContext => &[
                "country and region (from a trusted proxy header or an IP database)",
                "campaign (UTM), referring site, device type, page, local time",
            ],
            DataCategory::ConsentRecords => {
                &["granted or denied, per purpose", "when, from which source, under which policy version"]
            }
            DataCategory::SegmentMemberships => {
                &["the segments a person is in now", "when they entered and left each segment"]
            }
            DataCategory::Predictions => &[
                "churn risk, expected orders, expected order value and 12-month lifetime value",
                "next order date, best time to send, offer sensitivity, category propensity",
            ],
            DataCategory::DecisionLog => &[
                "per decision: time, userId or anonymousId, slot, variant shown, personalization level",
                "the conditions that fired, the consent basis, and the explanation given",
            ],
            DataCategory::AnonymousCounts => &[
                "per day, event type and event name: how many events arrived without analytics consent",
                "the message ids of those events, to drop retried deliveries",
            ],
            DataCategory::PrivacyRequests => &[
                "per access or erasure request: its kind, subject, regulation, status, deadline and outcome; the \
                 subject is kept only masked once an erasure is done",
                "tombstones: salted hashes of erased people's ids, so replayed old messages cannot re-create them",
            ],
        }
    }

    fn stored_in(self) -> &'static [&'static str] {
        match self {
            DataCategory::Identifiers => &["regard.sqlite3: identities, merges", "memory: profiles"],
            DataCategory::ProfileTraits => &["regard.sqlite3: trait_changes", "memory: profiles"],
            DataCategory::EventHistory => &[
                "regard.sqlite3: events (zstd-compressed messages)",
                "regard.sqlite3: dictionaries (the zstd dictionary is trained on the store's first messages and \
                     may hold fragments of them)",
                "memory: each profile's recent timeline",
            ],
            DataCategory::VisitContext => {
                &["not stored on its own: read from each request (copies live in the event history and decision log)"]
            }
            DataCategory::ConsentRecords => &["regard.sqlite3: consents", "memory: profiles"],
            DataCategory::SegmentMemberships => &["regard.sqlite3: segment_changes", "memory: the segment index"],
            DataCategory::Predictions => &["memory only: never written to disk"],
            DataCategory::DecisionLog => &["content.sqlite3: decisions"],
            DataCategory::AnonymousCounts => &["regard.sqlite3: reduced_counts, receipts"],
            DataCategory::PrivacyRequests => &["content.sqlite3: privacy_requests", "regard.sqlite3: tombstones"],
        }
    }

    fn is_personal(self) -> bool {
        self != DataCategory::AnonymousCounts
    }

    fn retention(self, dedup_days: i64) -> Retention {
        let until_deleted = |what: &str| Retention {
            period: format!(
                "{what}; no automatic deletion is built yet, so it is kept until the person's data is erased on \
                 request or deleted by hand"
            ),
            intended_days: None,
            enforced: false,
        };
        match self {
            DataCategory::Identifiers => until_deleted("as long as the profile exists"),
            DataCategory::ProfileTraits => until_deleted("as long as the profile exists, with every change"),
            DataCategory::EventHistory => Retention {
                period: format!(
                    "intended: {RAW_EVENT_RETENTION_DAYS} days (13 months); not yet enforced: Regard purges nothing \
                     yet, so events are kept until the person's data is erased on request or deleted by hand"
                ),
                intended_days: Some(RAW_EVENT_RETENTION_DAYS),
                enforced: false,
            },
            DataCategory::VisitContext => {
                Retention { period: "the duration of the request".to_owned(), intended_days: None, enforced: true }
            }
            DataCategory::ConsentRecords => {
                until_deleted("as long as the profile exists, to show what the person agreed to (Art. 7(1))")
            }
            DataCategory::SegmentMemberships => until_deleted("current memberships while they hold; the history"),
            DataCategory::Predictions => Retention {
                period: "until the next refit, and dropped at once when profiling consent is withdrawn".to_owned(),
                intended_days: None,
                enforced: true,
            },
            DataCategory::DecisionLog => until_deleted("every decision"),
            DataCategory::AnonymousCounts => Retention {
                period: format!(
                    "indefinitely: the counts identify nobody; message ids are read back for the {dedup_days}-day \
                     de-duplication window and not yet deleted after it"
                ),
                intended_days: None,
                enforced: false,
            },
            DataCategory::PrivacyRequests => until_deleted("every request, to show it was answered in time"),
        }
    }
}

/// How long a data category is kept, and whether Regard enforces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// In words.
    pub period: String,
    /// The intended period in days, when there is one.
    pub intended_days: Option<u32>,
    /// Whether Regard itself keeps to it (false: it is a statement of intent only).
    pub enforced: bool,
}

/// What a segment, slot or model reads (or, for the decision log, writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A profile trait, by name.
    Trait,
    /// An event, by name.
    Event,
    /// A property of an event, as `Event Name.property`.
    EventProperty,
    /// A catalog category the person's product events are matched against.
    CatalogCategory,
    /// Whether the person visited before (counted from their sessions).
    Visits,
    /// A field of the visit's context.
    Context,
    /// A model score.
    Score,
    /// Membership of a segment, by id.
    SegmentMembership,
    /// Each decision is written to the decision log.
    DecisionLog,
}

impl FieldKind {
    /// The data category a use of this kind touches.
    pub fn category(self) -> DataCategory {
        match self {
            FieldKind::Trait => DataCategory::ProfileTraits,
            FieldKind::Event | FieldKind::EventProperty | FieldKind::CatalogCategory | FieldKind::Visits => {
                DataCategory::EventHistory
            }
            FieldKind::Context => DataCategory::VisitContext,
            FieldKind::Score => DataCategory::Predictions,
            FieldKind::SegmentMembership => DataCategory::SegmentMemberships,
            FieldKind::DecisionLog => DataCategory::DecisionLog,
        }
    }
}

/// One use of one field: `{"kind": "trait", "name": "email_opt_in"}`, with the segment or model
/// it goes through when it is not direct.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FieldUse {
    /// What kind of field.
    pub kind: FieldKind,
    /// Its name.
    pub name: String,
    /// The segment this definition names that reads it, when the use is indirect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_segment: Option<String>,
    /// The model that reads it (or produces the score), when the use goes through one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_model: Option<String>,
}

impl FieldUse {
    /// A direct use.
    pub fn new(kind: FieldKind, name: impl Into<String>) -> FieldUse {
        FieldUse { kind, name: name.into(), via_segment: None, via_model: None }
    }

    fn via_model(mut self, model: &str) -> FieldUse {
        self.via_model = Some(model.to_owned());
        self
    }
}

/// A segment, slot, model or flow, with what it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Use {
    /// Its id.
    pub id: String,
    /// Its human name.
    pub name: String,
    /// The consent purpose it serves.
    pub purpose: &'static str,
    /// The fields it uses (in a data category's list: only that category's).
    pub uses: Vec<FieldUse>,
}

impl Use {
    fn only(&self, keep: impl Fn(&FieldUse) -> bool) -> Option<Use> {
        let uses: Vec<FieldUse> = self.uses.iter().filter(|u| keep(u)).cloned().collect();
        (!uses.is_empty()).then(|| Use { uses, ..self.clone() })
    }
}

/// Who uses an activity or a data category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsedBy {
    /// Saved segments.
    pub segments: Vec<Use>,
    /// Slots.
    pub slots: Vec<Use>,
    /// Recommendation and predictive models.
    pub models: Vec<Use>,
    /// Triggered flows (not built yet: always empty).
    pub flows: Vec<Use>,
}

impl UsedBy {
    fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.slots.is_empty() && self.models.is_empty() && self.flows.is_empty()
    }

    fn all(&self) -> impl Iterator<Item = &Use> {
        self.segments.iter().chain(&self.slots).chain(&self.models).chain(&self.flows)
    }

    fn filtered(&self, keep: impl Fn(&FieldUse) -> bool + Copy) -> UsedBy {
        let pick = |list: &[Use]| list.iter().filter_map(|u| u.only(keep)).collect();
        UsedBy {
            segments: pick(&self.segments),
            slots: pick(&self.slots),
            models: pick(&self.models),
            flows: pick(&self.flows),
        }
    }
}

/// A model Regard runs, as the register describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelDescription {
    /// Its id (`recommendations`, `bgnbd`...).
    pub id: &'static str,
    /// Its human name.
    pub name: &'static str,
    /// The consent purpose a person must allow for it to use their data.
    pub purpose: &'static str,
    /// What it does, in a sentence.
    pub description: &'static str,
    /// What it reads.
    pub uses: Vec<FieldUse>,
    /// The model scores it produces (for `score` conditions); `propensity.*` stands for one per
    /// catalog category.
    pub scores: Vec<&'static str>,
    /// Where its output lives.
    pub kept: &'static str,
    /// `serving`, `not_served`, `not_fitted_yet`, `training`, `failed` or `unknown` (offline).
    pub state: String,
    /// Why it is not serving, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_note: Option<String>,
}

/// The model that produces a score, by the score's name.
pub fn model_of_score(score: &str) -> Option<&'static str> {
    if score.starts_with("propensity.") {
        return Some("propensity");
    }
    known_models().into_iter().find(|m| m.scores.contains(&score)).map(|m| m.id)
}

/// Every model Regard runs, with its state `unknown`. The score names are those
/// `predict::person` serves; keep the two lists together.
pub fn known_models() -> Vec<ModelDescription> {
    let events = |names: &[&str]| names.iter().map(|n| FieldUse::new(FieldKind::Event, *n)).collect::<Vec<_>>();
    let property = |name: &str| FieldUse::new(FieldKind::EventProperty, name);
    let order = |properties: &[&str]| {
        let mut uses = events(&["Order Completed"]);
        uses.extend(properties.iter().map(|p| property(&format!("Order Completed.{p}"))));
        uses
    };
    let model = |id, name, purpose: ConsentPurpose, description, uses, scores, kept| ModelDescription {
        id,
        name,
        purpose: purpose.as_str(),
        description,
        uses,
        scores,
        kept,
        state: "unknown".to_owned(),
        state_note: None,
    };
    let predictions_kept = "memory only: each consenting person's predictions, recomputed at every refit";
    let mut recommendation_uses = events(&INTERACTION_EVENTS);
    recommendation_uses.push(property("Product Viewed.product_id"));
    recommendation_uses.push(FieldUse::new(FieldKind::Trait, "country"));
    let mut propensity_uses = events(&["Product Viewed", "Product Added", "Order Completed"]);
    propensity_uses.push(FieldUse::new(FieldKind::CatalogCategory, "every catalog category except sensitive ones"));
    vec![
        model(
            "recommendations",
            "Product recommendations",
            ConsentPurpose::Personalization,
            "Item-item co-occurrence, item-kNN over recent history, implicit ALS, content similarity and popularity, \
             trained from product views, cart adds and orders; lists are personal only for people who allow \
             personalization",
            recommendation_uses,
            Vec::new(),
            "memory only: item neighbours and, for ALS, one vector per person; rebuilt at each retrain",
        ),
        model(
            "bgnbd",
            "Repeat buying (BG/NBD)",
            ConsentPurpose::Profiling,
            "Churn risk and expected orders from each person's purchase days",
            order(&[]),
            vec!["churn_risk", "p_alive", "expected_orders_30d", "expected_orders_90d"],
            predictions_kept,
        ),
        model(
            "gamma_gamma",
            "Spend (Gamma-Gamma)",
            ConsentPurpose::Profiling,
            "Expected order value and 12-month customer lifetime value from order amounts",
            order(&["revenue", "currency", "products"]),
            vec!["clv_12m", "expected_order_value"],
            predictions_kept,
        ),
        model(
            "cadence",
            "Next order date",
            ConsentPurpose::Profiling,
            "The person's own purchase cadence, shrunk toward the population's",
            order(&[]),
            vec!["days_until_next_order", "days_until_reorder_reminder"],
            predictions_kept,
        ),
        model(
            "send_time",
            "Best time to send",
            ConsentPurpose::Profiling,
            "The hour of the week a person most often opens and clicks email, in their time zone",
            {
                let mut uses = events(&["Email Opened", "Email Link Clicked"]);
                uses.push(FieldUse::new(FieldKind::Context, "timezone"));
                uses
            },
            vec!["best_send_hour_of_week"],
            predictions_kept,
        ),
        model(
            "offer",
            "Offer sensitivity",
            ConsentPurpose::Profiling,
            "The share of a person's orders that used a coupon or a discount",
            order(&["coupon", "discount"]),
            vec!["offer_sensitivity"],
            predictions_kept,
        ),
        model(
            "propensity",
            "Category propensity",
            ConsentPurpose::Profiling,
            "Which catalog categories a person is likely to buy from next (logistic regression); sensitive \
             categories are left out before the model sees them",
            propensity_uses,
            vec!["propensity.*"],
            predictions_kept,
        ),
    ]
}

/// The models with their state in the running server: what was trained and what is served.
pub fn serving_models(recs: &RecsService, predict: &PredictService) -> Vec<ModelDescription> {
    let recs_status = recs.status();
    let fitted = predict.models();
    let predict_status = predict.status();
    let from_state = |state: Option<&ModelStateView>| -> (String, Option<String>) {
        match state {
            Some(ModelStateView::Ready) => ("serving".to_owned(), None),
            Some(ModelStateView::NotServed(reason)) => ("not_served".to_owned(), Some(reason.clone())),
            None => match predict_status.state {
                "failed" => ("failed".to_owned(), predict_status.message.clone()),
                "training" => ("training".to_owned(), None),
                _ => ("not_fitted_yet".to_owned(), None),
            },
        }
    };
    let mut models = known_models();
    for model in &mut models {
        let (state, note) = if model.id == "recommendations" {
            match recs_status.state {
                "ready" => ("serving".to_owned(), None),
                "untrained" => ("not_trained_yet".to_owned(), None),
                other => (other.to_owned(), recs_status.message.clone()),
            }
        } else {
            let view = fitted.as_ref().and_then(|fitted| match model.id {
                "bgnbd" => Some(ModelStateView::of(&fitted.bgnbd)),
                "gamma_gamma" => Some(ModelStateView::of(&fitted.gamma_gamma)),
                "cadence" => Some(ModelStateView::of(&fitted.cadence)),
                "send_time" => Some(ModelStateView::of(&fitted.send_time)),
                "offer" => Some(ModelStateView::of(&fitted.offer)),
                "propensity" => Some(ModelStateView::of(&fitted.propensity)),
                _ => None,
            });
            from_state(view.as_ref())
        };
        model.state = state;
        model.state_note = note;
    }
    models
}

enum ModelStateView {
    Ready,
    NotServed(String),
}

impl ModelStateView {
    fn of<T>(state: &ModelState<T>) -> ModelStateView {
        match state.reason() {
            Some(reason) => ModelStateView::NotServed(reason.to_owned()),
            None => ModelStateView::Ready,
        }
    }
}

/// A processing activity: one purpose Regard uses personal data for (or, for the anonymous
/// counts, the one thing it does without any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// Keeping the event history.
    Analytics,
    /// Tailoring content and recommendations.
    Personalization,
    /// Choosing who receives email.
    Email,
    /// Building ad audiences.
    Advertising,
    /// Predictions.
    Profiling,
    /// Keeping consent records.
    ConsentManagement,
    /// Counting events kept without consent.
    AnonymousStatistics,
    /// Answering access and erasure requests.
    DataSubjectRequests,
}

impl Activity {
    /// Every activity, in the order the register lists them.
    pub const ALL: [Activity; 8] = [
        Activity::Analytics,
        Activity::Personalization,
        Activity::Email,
        Activity::Advertising,
        Activity::Profiling,
        Activity::ConsentManagement,
        Activity::AnonymousStatistics,
        Activity::DataSubjectRequests,
    ];

    /// The activity's id.
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Analytics => "analytics",
            Activity::Personalization => "personalization",
            Activity::Email => "email",
            Activity::Advertising => "advertising",
            Activity::Profiling => "profiling",
            Activity::ConsentManagement => "consent_management",
            Activity::AnonymousStatistics => "anonymous_statistics",
            Activity::DataSubjectRequests => "data_subject_requests",
        }
    }

    /// The consent purpose that governs it, if any.
    pub fn consent_purpose(self) -> Option<ConsentPurpose> {
        match self {
            Activity::Analytics => Some(ConsentPurpose::Analytics),
            Activity::Personalization => Some(ConsentPurpose::Personalization),
            Activity::Email => Some(ConsentPurpose::Email),
            Activity::Advertising => Some(ConsentPurpose::Advertising),
            Activity::Profiling => Some(ConsentPurpose::Profiling),
            Activity::ConsentManagement | Activity::AnonymousStatistics | Activity::DataSubjectRequests => None,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Activity::Analytics => "Keeping the event history",
            Activity::Personalization => "Personalizing content and recommendations",
            Activity::Email => "Choosing who receives email",
            Activity::Advertising => "Building advertising audiences",
            Activity::Profiling => "Predictions (profiling)",
            Activity::ConsentManagement => "Recording consent",
            Activity::AnonymousStatistics => "Anonymous traffic counts",
            Activity::DataSubjectRequests => "Answering data subject requests",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Activity::Analytics => {
                "Keep a record of each person's events and visits, the input every other use reads; without it an \
                 event is only counted anonymously"
            }
            Activity::Personalization => {
                "Choose the content and product recommendations each person sees, log each choice with its reasons, \
                 and explain it on request"
            }
            Activity::Email => {
                "Decide who belongs to email audiences; Regard sends no email itself: other tools read the members"
            }
            Activity::Advertising => {
                "Decide who belongs to advertising audiences; Regard exports nothing itself: other tools read the \
                 members"
            }
            Activity::Profiling => {
                "Predict each consenting person's churn risk, spend, next order, best send time, offer sensitivity \
                 and category interests, as inputs to segments and content"
            }
            Activity::ConsentManagement => "Record what each person allowed, when, where and under which policy",
            Activity::AnonymousStatistics => {
                "Count events that arrive without analytics consent, per day and event name, so traffic figures \
                 stay complete without keeping anything about the person"
            }
            Activity::DataSubjectRequests => {
                "Export or erase everything held on a person on request, and log each request with its deadline \
                 and outcome"
            }
        }
    }

    fn base_categories(self) -> &'static [DataCategory] {
        match self {
            Activity::Analytics => &[DataCategory::Identifiers, DataCategory::EventHistory],
            Activity::Personalization | Activity::Email | Activity::Advertising => &[DataCategory::Identifiers],
            Activity::Profiling => &[DataCategory::Identifiers, DataCategory::Predictions],
            Activity::ConsentManagement => &[DataCategory::Identifiers, DataCategory::ConsentRecords],
            Activity::AnonymousStatistics => &[DataCategory::AnonymousCounts],
            Activity::DataSubjectRequests => &[DataCategory::Identifiers, DataCategory::PrivacyRequests],
        }
    }
}

/// The lawful basis of processing (GDPR Art. 6(1)), or its absence for anonymous data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasisKind {
    /// Art. 6(1)(a).
    Consent,
    /// Art. 6(1)(f).
    LegitimateInterest,
    /// Art. 6(1)(c).
    LegalObligation,
    /// Anonymous data: outside the GDPR (Recital 26).
    AnonymousData,
}

impl LegalBasisKind {
    /// The basis in words.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasisKind::Consent => "consent",
            LegalBasisKind::LegitimateInterest => "legitimate interest",
            LegalBasisKind::LegalObligation => "legal obligation",
            LegalBasisKind::AnonymousData => "anonymous data",
        }
    }
}

/// An activity's legal basis, derived from the consent mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegalBasis {
    /// Which basis.
    pub basis: LegalBasisKind,
    /// Where the GDPR says so.
    pub article: &'static str,
    /// How Regard meets it.
    pub explanation: String,
    /// What the operator should check, when the basis is contestable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caution: Option<String>,
}

/// The legal basis of `activity` under `mode`.
pub fn legal_basis(activity: Activity, mode: ConsentMode) -> LegalBasis {
    let Some(purpose) = activity.consent_purpose() else {
        return match activity {
            Activity::ConsentManagement => LegalBasis {
                basis: LegalBasisKind::LegalObligation,
                article: "GDPR Art. 6(1)(c), with Art. 7(1)",
                explanation: "The controller must be able to show that a person consented; every decision is kept \
                              with its time, source and policy version."
                    .to_owned(),
                caution: None,
            },
            Activity::DataSubjectRequests => LegalBasis {
                basis: LegalBasisKind::LegalObligation,
                article: "GDPR Art. 6(1)(c), with Arts. 12, 15 and 17",
                explanation: "Access and erasure requests must be answered within a deadline; each is logged with its \
                              status and outcome, and an erased person's ids are kept only as salted hashes."
                    .to_owned(),
                caution: None,
            },
            _ => LegalBasis {
                basis: LegalBasisKind::AnonymousData,
                article: "GDPR Recital 26",
                explanation: "Only daily counts per event name are kept, with no identifier: anonymous data, \
                              outside the GDPR's scope."
                    .to_owned(),
                caution: None,
            },
        };
    };
    let name = purpose.as_str();
    match mode {
        ConsentMode::OptIn => LegalBasis {
            basis: LegalBasisKind::Consent,
            article: "GDPR Art. 6(1)(a)",
            explanation: format!(
                "Used only for people who granted `{name}` (consent banner, identify traits or POST /v1/consent); \
                 silence means no. Each decision is recorded with its time, source and policy version, and \
                 withdrawing it stops the use at once."
            ),
            caution: None,
        },
        ConsentMode::OptOut => {
            let caution = match purpose {
                ConsentPurpose::Analytics => {
                    "Reading or storing an identifier on the visitor's device may still need consent under the \
                     ePrivacy rules where they apply."
                }
                ConsentPurpose::Personalization => {
                    "Regulators generally expect consent for personalization built on tracking; where the GDPR \
                     applies, run Regard with --consent-mode opt-in."
                }
                ConsentPurpose::Email => {
                    "Marketing email generally needs consent under the ePrivacy rules (apart from the soft opt-in \
                     for existing customers); where the GDPR applies, run Regard with --consent-mode opt-in."
                }
                ConsentPurpose::Advertising => {
                    "Advertising audiences built from tracking generally need consent; where the GDPR applies, run \
                     Regard with --consent-mode opt-in."
                }
                ConsentPurpose::Profiling => {
                    "People may object at any time to profiling for direct marketing (Art. 21(2)), and regulators \
                     generally expect consent for it; where the GDPR applies, run Regard with --consent-mode opt-in."
                }
            };
            LegalBasis {
                basis: LegalBasisKind::LegitimateInterest,
                article: "GDPR Art. 6(1)(f)",
                explanation: format!(
                    "Regard runs in opt-out mode: `{name}` applies to everyone who has not said no, so the basis \
                     is the controller's legitimate interest (people who granted it are processed on consent, Art. \
                     6(1)(a)). Document the balancing test, and honour objections (Art. 21) through the consent \
                     banner or POST /v1/consent."
                ),
                caution: Some(caution.to_owned()),
            }
        }
    }
}

/// One processing activity in the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityEntry {
    /// Its id (`personalization`, `consent_management`...).
    pub id: &'static str,
    /// Its human name.
    pub name: &'static str,
    /// What it is for.
    pub purpose: &'static str,
    /// The consent purpose that governs it, if any.
    pub consent_purpose: Option<&'static str>,
    /// Whether anything on this instance does it now.
    pub in_use: bool,
    /// Its legal basis.
    pub legal_basis: LegalBasis,
    /// The data categories it uses.
    pub data_categories: Vec<&'static str>,
    /// How long those are kept, category by category.
    pub retention: String,
    /// Who receives the data.
    pub recipients: &'static str,
    /// Who does it.
    pub used_by: UsedBy,
}

/// One data category in the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataCategoryEntry {
    /// Its id (`profile_traits`...).
    pub id: &'static str,
    /// Its human name.
    pub name: &'static str,
    /// Whether it is personal data (the anonymous counts are not).
    pub personal_data: bool,
    /// What it holds.
    pub examples: &'static [&'static str],
    /// Where it lives.
    pub stored_in: &'static [&'static str],
    /// How long it is kept.
    pub retention: Retention,
    /// The activities (in use) that use it.
    pub purposes: Vec<&'static str>,
    /// Who uses which of its fields.
    pub used_by: UsedBy,
}

/// What the operator has added to one sensitive category of the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OperatorAdditions {
    /// Traits marked sensitive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traits: Vec<String>,
    /// Catalog categories marked sensitive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catalog_categories: Vec<String>,
    /// Event properties marked sensitive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_properties: Vec<String>,
    /// Extra keywords.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
}

/// A special category of data segments, slots and models may not infer or use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SensitiveCategoryEntry {
    /// Its wire name (`health_and_medical`).
    pub category: &'static str,
    /// What it covers.
    pub description: &'static str,
    /// The built-in keywords that mark it.
    pub built_in_keywords: usize,
    /// What the operator's policy file adds.
    pub operator_additions: OperatorAdditions,
}

/// A trait people declare themselves, and the purposes they declare it for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclaredTrait {
    /// The trait.
    pub name: String,
    /// The purposes it may be used for.
    pub purposes: Vec<&'static str>,
}

/// The record of processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Register {
    /// When it was generated (ISO 8601).
    pub generated_at: String,
    /// What the controller must add and review.
    pub controller_note: String,
    /// `opt-in` or `opt-out`.
    pub consent_mode: &'static str,
    /// Processing activities.
    pub activities: Vec<ActivityEntry>,
    /// Data categories.
    pub data_categories: Vec<DataCategoryEntry>,
    /// The models and their state.
    pub models: Vec<ModelDescription>,
    /// Sensitive categories no segment, slot or model may infer or use.
    pub sensitive_categories_excluded: Vec<SensitiveCategoryEntry>,
    /// Traits people declare for named purposes only.
    pub declared_traits: Vec<DeclaredTrait>,
    /// Where Regard does not (yet) do what a register might lead one to expect.
    pub caveats: Vec<String>,
    /// Plain-language paragraphs for a privacy policy, separated by blank lines.
    pub summary: String,
}

/// Everything the register is built from.
#[derive(Debug, Clone)]
pub struct RegisterInputs<'a> {
    /// Now (Unix ms).
    pub generated_at_ms: i64,
    /// What silence about consent means.
    pub consent_mode: ConsentMode,
    /// How long messageIds are remembered for de-duplication.
    pub dedup_window_ms: i64,
    /// Saved segments.
    pub segments: Vec<&'a SegmentDefinition>,
    /// Saved slots.
    pub slots: Vec<&'a SlotDefinition>,
    /// The models and their state.
    pub models: Vec<ModelDescription>,
    /// The privacy policy.
    pub policy: &'a PolicyConfig,
}

/// The register of a running (or offline) instance: its live segments and consent settings,
/// its content snapshot's slots, and `models`.
pub fn from_live(live: &LiveState, snapshot: &ContentSnapshot, models: Vec<ModelDescription>, now_ms: i64) -> Register {
    let config = live.config();
    let stored_slots = snapshot.slots();
    build(&RegisterInputs {
        generated_at_ms: now_ms,
        consent_mode: config.consent_mode,
        dedup_window_ms: config.dedup_window_ms,
        segments: live.segments().map(|saved| &saved.definition).collect(),
        slots: stored_slots.iter().map(|stored| &stored.definition).collect(),
        models,
        policy: &config.policy,
    })
}

/// Builds the register from plain inputs.
pub fn build(inputs: &RegisterInputs<'_>) -> Register {
    let mut segments = inputs.segments.clone();
    segments.sort_by(|a, b| a.id().cmp(b.id()));
    let mut slots = inputs.slots.clone();
    slots.sort_by(|a, b| a.id.cmp(&b.id));
    let everyone = UsedBy {
        segments: segments.iter().map(|s| segment_use(s, &segments)).collect(),
        slots: slots.iter().map(|s| slot_use(s, &segments)).collect(),
        models: inputs.models.iter().map(model_use).collect(),
        // Flows are not built yet.
        flows: Vec::new(),
    };

    let dedup_days = (inputs.dedup_window_ms / DAY_MS).max(1);
    let activities: Vec<ActivityEntry> = Activity::ALL
        .into_iter()
        .map(|activity| {
            let used_by = activity_users(activity, &segments, &everyone);
            let mut categories: BTreeSet<DataCategory> = activity.base_categories().iter().copied().collect();
            categories.extend(used_by.all().flat_map(|u| u.uses.iter().map(|f| f.kind.category())));
            let in_use = match activity {
                Activity::Analytics
                | Activity::ConsentManagement
                | Activity::AnonymousStatistics
                | Activity::DataSubjectRequests => true,
                _ => !used_by.is_empty(),
            };
            let retention = categories
                .iter()
                .map(|c| format!("{}: {}", c.title(), c.retention(dedup_days).period))
                .collect::<Vec<_>>()
                .join("; ");
            ActivityEntry {
                id: activity.as_str(),
                name: activity.title(),
                purpose: activity.purpose(),
                consent_purpose: activity.consent_purpose().map(ConsentPurpose::as_str),
                in_use,
                legal_basis: legal_basis(activity, inputs.consent_mode),
                data_categories: categories.iter().map(|c| c.as_str()).collect(),
                retention,
                recipients: RECIPIENTS,
                used_by,
            }
        })
        .collect();

    let data_categories = DataCategory::ALL
        .into_iter()
        .map(|category| DataCategoryEntry {
            id: category.as_str(),
            name: category.title(),
            personal_data: category.is_personal(),
            examples: category.examples(),
            stored_in: category.stored_in(),
            retention: category.retention(dedup_days),
            purposes: activities
                .iter()
                .filter(|a| a.in_use && a.data_categories.contains(&category.as_str()))
                .map(|a| a.id)
                .collect(),
            used_by: everyone.filtered(|f| f.kind.category() == category),
        })
        .collect();

    let caveats = caveats(inputs.consent_mode, &segments, dedup_days);
    let summary = summary(inputs.consent_mode, &activities, &inputs.models, inputs.policy);
    Register {
        generated_at: format_iso8601_ms(inputs.generated_at_ms),
        controller_note: CONTROLLER_NOTE.to_owned(),
        consent_mode: inputs.consent_mode.as_str(),
        activities,
        data_categories,
        models: inputs.models.clone(),
        sensitive_categories_excluded: sensitive_categories(inputs.policy),
        declared_traits: declared_traits(inputs.policy),
        caveats,
        summary,
    }
}

const CONTROLLER_NOTE: &str = "Generated by Regard from this instance's configuration; it covers what Regard itself \
     does with personal data. The controller (the operator of this instance) must complete it with their name and \
     contact details, any joint controller or representative, the data protection officer, the categories of data \
     subjects (the site's visitors and customers), the tools that read segment members, and a description of \
     security measures (GDPR Art. 30(1)), and review it whenever segments, slots or settings change.";

fn activity_users(activity: Activity, segments: &[&SegmentDefinition], everyone: &UsedBy) -> UsedBy {
    let is_score = |f: &FieldUse| f.kind == FieldKind::Score;
    let Some(purpose) = activity.consent_purpose() else { return UsedBy::default() };
    let mut used_by = UsedBy::default();
    for (definition, entry) in segments.iter().zip(&everyone.segments) {
        if definition.purpose().consent_purpose() == purpose {
            used_by.segments.push(entry.clone());
        } else if purpose == ConsentPurpose::Profiling {
            // A score exists only for people who allow profiling, whatever the segment is for.
            used_by.segments.extend(entry.only(is_score));
        }
    }
    for entry in &everyone.slots {
        if purpose == ConsentPurpose::Personalization {
            used_by.slots.push(entry.clone());
        } else if purpose == ConsentPurpose::Profiling {
            used_by.slots.extend(entry.only(is_score));
        }
    }
    used_by.models = everyone.models.iter().filter(|m| m.purpose == purpose.as_str()).cloned().collect();
    used_by
}

// ----- Walking definitions -----

fn event_uses(event: &EventMatch, out: &mut BTreeSet<FieldUse>) {
    out.insert(FieldUse::new(FieldKind::Event, &event.name));
    for filter in &event.filters {
        out.insert(FieldUse::new(FieldKind::EventProperty, format!("{}.{}", event.name, filter.property)));
    }
    if let Some(category) = &event.category {
        out.insert(FieldUse::new(FieldKind::CatalogCategory, category));
    }
}

/// The fields a condition reads directly, and the segments it names.
fn condition_uses<'c>(condition: &'c Condition, out: &mut BTreeSet<FieldUse>, named: &mut Vec<&'c SegmentId>) {
    match condition {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|child| condition_uses(child, out, named));
        }
        Condition::Not(child) => condition_uses(child, out, named),
        Condition::Trait(condition) => {
            out.insert(FieldUse::new(FieldKind::Trait, &condition.name));
        }
        Condition::Event(condition) => event_uses(&condition.event, out),
        Condition::Never(condition) => event_uses(&condition.event, out),
        Condition::NotWithinDays(condition) => event_uses(&condition.event, out),
        Condition::Sequence(condition) => {
            event_uses(&condition.first, out);
            event_uses(&condition.then_never, out);
        }
        Condition::Purchases(_) => {
            event_uses(&regard_core::segments::definition::PurchasesCondition::event_match(), out);
        }
        Condition::Catalog(condition) => event_uses(&condition.event, out),
        Condition::Visitor(_) => {
            out.insert(FieldUse::new(FieldKind::Visits, "new_or_returning"));
        }
        Condition::Context(condition) => {
            out.insert(FieldUse::new(FieldKind::Context, condition.field.as_str()));
        }
        Condition::Segment(id) => named.push(id),
        Condition::Score(condition) => {
            let mut score = FieldUse::new(FieldKind::Score, &condition.name);
            score.via_model = model_of_score(&condition.name).map(str::to_owned);
            out.insert(score);
        }
    }
}

/// What a use of segment `id` brings: its membership, and everything it reads, marked as going
/// through it. `visiting` guards against a cycle a store edited by hand could hold.
fn through_segment(
    id: &SegmentId,
    segments: &[&SegmentDefinition],
    visiting: &mut Vec<SegmentId>,
    out: &mut BTreeSet<FieldUse>,
) {
    out.insert(FieldUse::new(FieldKind::SegmentMembership, id.as_str()));
    if visiting.contains(id) {
        return;
    }
    let Some(definition) = segments.iter().find(|s| s.id() == id) else { return };
    visiting.push(id.clone());
    for mut inner in reads_of_segment(definition, segments, visiting) {
        inner.via_segment = Some(id.as_str().to_owned());
        out.insert(inner);
    }
    visiting.pop();
}

fn reads_of_segment(
    definition: &SegmentDefinition,
    segments: &[&SegmentDefinition],
    visiting: &mut Vec<SegmentId>,
) -> BTreeSet<FieldUse> {
    let mut out = BTreeSet::new();
    let mut named = Vec::new();
    condition_uses(definition.condition(), &mut out, &mut named);
    for id in named {
        through_segment(id, segments, visiting, &mut out);
    }
    out
}

fn segment_use(definition: &SegmentDefinition, segments: &[&SegmentDefinition]) -> Use {
    let mut visiting = vec![definition.id().clone()];
    let mut uses = reads_of_segment(definition, segments, &mut visiting);
    // Its own memberships are stored too.
    uses.insert(FieldUse::new(FieldKind::SegmentMembership, definition.id().as_str()));
    Use {
        id: definition.id().as_str().to_owned(),
        name: definition.name().to_owned(),
        purpose: definition.purpose().consent_purpose().as_str(),
        uses: uses.into_iter().collect(),
    }
}

fn is_personal(spec: &RecommendSpec) -> bool {
    spec.strategy.is_empty() || spec.strategy.iter().any(|s| !GENERIC_STRATEGIES.contains(&s.as_str()))
}

fn template_uses(source: &str, out: &mut BTreeSet<FieldUse>) {
    let reads = template_reads(source);
    for name in reads.traits {
        out.insert(FieldUse::new(FieldKind::Trait, name));
    }
    for variable in reads.variables {
        match variable.as_str() {
            "recently_viewed" => {
                out.insert(FieldUse::new(FieldKind::Event, "Product Viewed"));
            }
            "nearest_store" => {
                // The person's location is read only to find the closest store; see `decide`.
                for name in ["location.latitude", "location.longitude", "latitude", "longitude", "city"] {
                    out.insert(FieldUse::new(FieldKind::Trait, name));
                }
            }
            "visitor" => {
                out.insert(FieldUse::new(FieldKind::Visits, "new_or_returning"));
            }
            // Filled by `recommend`, which is accounted for on its own.
            "recommendations" => {}
            other => {
                out.insert(FieldUse::new(FieldKind::Context, other));
            }
        }
    }
}

/// A slot's uses: its targeting (and the segments it names), its variants' templates and
/// recommendation lists, and the decision log. The generic default uses nothing about the
/// person (its render context holds no traits, history or location), so it adds nothing.
fn slot_use(slot: &SlotDefinition, segments: &[&SegmentDefinition]) -> Use {
    let mut uses = BTreeSet::new();
    let mut visiting = Vec::new();
    for id in &slot.exclude {
        through_segment(id, segments, &mut visiting, &mut uses);
    }
    for variant in &slot.variants {
        let mut named: Vec<&SegmentId> = variant.targeting.exclude.iter().collect();
        if let Some(when) = &variant.targeting.when {
            condition_uses(when, &mut uses, &mut named);
        }
        for id in named {
            through_segment(id, segments, &mut visiting, &mut uses);
        }
        if variant.targeting.local_hours.is_some() {
            uses.insert(FieldUse::new(FieldKind::Context, "timezone"));
        }
        template_uses(&variant.template, &mut uses);
        if variant.recommend.as_ref().is_some_and(is_personal) {
            for name in INTERACTION_EVENTS {
                uses.insert(FieldUse::new(FieldKind::Event, name).via_model("recommendations"));
            }
        }
    }
    uses.insert(FieldUse::new(FieldKind::DecisionLog, "every decision, with its reasons"));
    Use {
        id: slot.id.clone(),
        name: slot.name.clone(),
        purpose: ConsentPurpose::Personalization.as_str(),
        uses: uses.into_iter().collect(),
    }
}

fn model_use(model: &ModelDescription) -> Use {
    let mut uses: BTreeSet<FieldUse> = model.uses.iter().cloned().collect();
    uses.extend(model.scores.iter().map(|score| FieldUse::new(FieldKind::Score, *score)));
    Use {
        id: model.id.to_owned(),
        name: model.name.to_owned(),
        purpose: model.purpose,
        uses: uses.into_iter().collect(),
    }
}

// ----- Policy -----

/// The category in the words of a privacy policy ("your health, ..."); minors are said apart.
fn sensitive_plain(category: SensitiveCategory) -> Option<&'static str> {
    Some(match category {
        SensitiveCategory::HealthAndMedical => "health",
        SensitiveCategory::PregnancyAndBaby => "pregnancy",
        SensitiveCategory::Religion => "religion or beliefs",
        SensitiveCategory::SexualOrientation => "sexual orientation or sex life",
        SensitiveCategory::Ethnicity => "racial or ethnic origin",
        SensitiveCategory::PoliticalOpinions => "political opinions",
        SensitiveCategory::TradeUnion => "trade union membership",
        SensitiveCategory::FinancialDistress => "financial difficulties",
        SensitiveCategory::PreciseLocation => "precise location",
        SensitiveCategory::Minors => return None,
    })
}

fn sensitive_description(category: SensitiveCategory) -> &'static str {
    match category {
        SensitiveCategory::HealthAndMedical => "physical or mental health, medication, treatment",
        SensitiveCategory::PregnancyAndBaby => "pregnancy, fertility, newborns",
        SensitiveCategory::Religion => "religious or philosophical belief",
        SensitiveCategory::SexualOrientation => "sexual orientation or sex life",
        SensitiveCategory::Ethnicity => "racial or ethnic origin",
        SensitiveCategory::PoliticalOpinions => "political opinions",
        SensitiveCategory::TradeUnion => "trade union membership",
        SensitiveCategory::FinancialDistress => "debt, bankruptcy, financial hardship",
        SensitiveCategory::PreciseLocation => "coordinates or street-level location",
        SensitiveCategory::Minors => "children and teenagers",
    }
}

fn sensitive_categories(policy: &PolicyConfig) -> Vec<SensitiveCategoryEntry> {
    let names = |list: &[(String, SensitiveCategory)], category| -> Vec<String> {
        list.iter().filter(|(_, c)| *c == category).map(|(name, _)| name.clone()).collect()
    };
    SensitiveCategory::ALL
        .into_iter()
        .map(|category| SensitiveCategoryEntry {
            category: category.as_str(),
            description: sensitive_description(category),
            built_in_keywords: category.keywords().len(),
            operator_additions: OperatorAdditions {
                traits: names(&policy.sensitive_traits, category),
                catalog_categories: names(&policy.sensitive_catalog_categories, category),
                event_properties: names(&policy.sensitive_event_properties, category),
                keywords: names(&policy.extra_keywords, category),
            },
        })
        .collect()
}

fn declared_traits(policy: &PolicyConfig) -> Vec<DeclaredTrait> {
    let mut traits: Vec<DeclaredTrait> = policy
        .zero_party_traits
        .iter()
        .map(|(name, purposes)| DeclaredTrait {
            name: name.clone(),
            purposes: purposes.iter().map(|p| p.as_str()).collect(),
        })
        .collect();
    traits.sort_by(|a, b| a.name.cmp(&b.name));
    traits
}

fn caveats(mode: ConsentMode, segments: &[&SegmentDefinition], dedup_days: i64) -> Vec<String> {
    let mut caveats = vec![
        format!(
            "Retention is not yet enforced: Regard deletes nothing automatically. The intended default for the event \
             history is {RAW_EVENT_RETENTION_DAYS} days (13 months); until purging is built, delete older data by \
             other means or state the longer period."
        ),
        format!(
            "Message ids are read back for the {dedup_days}-day de-duplication window (--dedup-days) but are not \
             deleted after it."
        ),
        "Flows (triggered messages) are not built yet: none run, so none are listed.".to_owned(),
        "Identify calls store identifiers and traits even for people who have consented to no purpose (consent \
         governs their use, not their storage); they come from the operator's own systems, so name the basis for \
         holding them there (often the customer contract, Art. 6(1)(b))."
            .to_owned(),
    ];
    let audiences: Vec<&str> = segments
        .iter()
        .filter(|s| matches!(s.purpose().consent_purpose(), ConsentPurpose::Email | ConsentPurpose::Advertising))
        .map(|s| s.id().as_str())
        .collect();
    if !audiences.is_empty() {
        caveats.push(format!(
            "Regard sends no email and exports no ad audience itself; the tools that read the members of {} (GET \
             /v1/segments/{{id}}/members) are processors or recipients and belong in this register too.",
            audiences.join(", ")
        ));
    }
    if mode == ConsentMode::OptOut {
        caveats.push(
            "Consent mode is opt-out: silence counts as yes, which is not consent under the GDPR. Each purpose is \
             therefore listed under legitimate interest, with what to check."
                .to_owned(),
        );
    }
    caveats
}

// ----- The plain-language summary -----

/// "a", "a and b", "a, b and c".
fn join_words(items: &[String]) -> String {
    join_with(items, "and")
}

/// "a", "a or b", "a, b or c".
fn join_or(items: &[String]) -> String {
    join_with(items, "or")
}

fn join_with(items: &[String], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

fn plain_event(name: &str) -> String {
    match name {
        "Product Viewed" => "the products you view".to_owned(),
        "Product Added" => "the products you add to your cart".to_owned(),
        "Order Completed" => "your orders".to_owned(),
        "Email Opened" | "Email Link Clicked" => "whether you open our emails".to_owned(),
        other => format!("\u{201c}{other}\u{201d} events"),
    }
}

fn plain_context(field: &str) -> String {
    match field {
        "country" => "your country",
        "region" => "your region",
        "utm_source" | "utm_medium" | "utm_campaign" | "campaign" => "the campaign that brought you",
        "referrer_domain" => "the site that referred you",
        "device" => "your type of device",
        "timezone" => "your local time",
        "page" => "the page you are on",
        "locale" => "your language",
        "currency" => "your currency",
        other => other,
    }
    .to_owned()
}

/// "details you gave us (such as your city), what you did on our site (such as the products
/// you view), ..." for the uses of one activity.
fn plain_uses(used_by: &UsedBy) -> Vec<String> {
    let uses: BTreeSet<&FieldUse> = used_by.all().flat_map(|u| &u.uses).collect();
    let mut traits: Vec<String> = Vec::new();
    let mut history: Vec<String> = Vec::new();
    let mut context: Vec<String> = Vec::new();
    let mut predictions = false;
    let push = |list: &mut Vec<String>, text: String| {
        if !list.contains(&text) {
            list.push(text);
        }
    };
    for field in uses {
        match field.kind {
            // The policy refuses coordinates in segments and templates; only `nearest_store` reads them.
            FieldKind::Trait if field.name.ends_with("latitude") || field.name.ends_with("longitude") => {
                push(&mut traits, "your location (only to find our nearest store)".to_owned())
            }
            FieldKind::Trait => push(&mut traits, format!("your {}", field.name.replace(['_', '.'], " "))),
            FieldKind::Event => push(&mut history, plain_event(&field.name)),
            FieldKind::CatalogCategory => push(&mut history, "the product categories you browse".to_owned()),
            FieldKind::Visits => push(&mut history, "whether you have visited before".to_owned()),
            FieldKind::Context => push(&mut context, plain_context(&field.name)),
            FieldKind::Score => predictions = true,
            FieldKind::EventProperty | FieldKind::SegmentMembership | FieldKind::DecisionLog => {}
        }
    }
    let mut parts = Vec::new();
    let such_as = |list: &[String]| join_words(&list.iter().take(6).cloned().collect::<Vec<_>>());
    if !traits.is_empty() {
        parts.push(format!("details you gave us (such as {})", such_as(&traits)));
    }
    if !history.is_empty() {
        parts.push(format!("what you did on our site (such as {})", such_as(&history)));
    }
    if !context.is_empty() {
        parts.push(format!("the context of your visit (such as {})", such_as(&context)));
    }
    if predictions {
        parts.push("predictions about you (see below)".to_owned());
    }
    parts
}

fn segment_names(used_by: &UsedBy) -> String {
    let names: Vec<String> = used_by.segments.iter().map(|s| format!("\u{201c}{}\u{201d}", s.name)).collect();
    join_words(&names)
}

fn summary(
    mode: ConsentMode,
    activities: &[ActivityEntry],
    models: &[ModelDescription],
    policy: &PolicyConfig,
) -> String {
    let find = |activity: Activity| activities.iter().find(|a| a.id == activity.as_str() && a.in_use);
    let basis = match mode {
        ConsentMode::OptIn => "With your consent, we",
        ConsentMode::OptOut => "Unless you object, we",
    };
    let mut paragraphs = vec![
        "We use Regard, a personalization engine that runs on our own servers, to understand how our site is used \
         and to tailor what we show you. Regard does not send your data to anyone else: it runs on our own \
         infrastructure."
            .to_owned(),
    ];
    paragraphs.push(match mode {
        ConsentMode::OptIn => "With your consent, we keep a record of your visits: the pages you view and what you do \
             on our site, such as the products you view, add to your cart or buy, together with what your browser \
             tells us about the visit (the page address, the site that referred you, your device and your language). \
             Without your consent, we keep only anonymous daily counts (for example, how many pages were viewed that \
             day), which cannot identify you."
            .to_owned(),
        ConsentMode::OptOut => {
            "To understand how our site is used (our legitimate interest), we keep a record of your \
             visits: the pages you view and what you do on our site, such as the products you view, add to your cart \
             or buy, together with what your browser tells us about the visit (the page address, the site that \
             referred you, your device and your language), unless you tell us not to. If you do, we keep only \
             anonymous daily counts, which cannot identify you."
                .to_owned()
        }
    });
    if let Some(activity) = find(Activity::Personalization) {
        let uses = plain_uses(&activity.used_by);
        let what = if uses.is_empty() { "what we know about you".to_owned() } else { join_words(&uses) };
        paragraphs.push(format!(
            "{} use {what} to choose the content and product recommendations you see. We record which content we \
             chose for you and why, and you can ask us why you saw something. {}, you see the same content as \
             everyone else.",
            basis,
            match mode {
                ConsentMode::OptIn => "Without your consent",
                ConsentMode::OptOut => "If you object",
            }
        ));
    }
    for (activity, goal) in [
        (Activity::Email, "to decide which of our emails are relevant to you"),
        (Activity::Advertising, "to decide whether to include you in advertising audiences"),
    ] {
        if let Some(entry) = find(activity) {
            let uses = plain_uses(&entry.used_by);
            let what = if uses.is_empty() { "what we know about you".to_owned() } else { join_words(&uses) };
            paragraphs.push(format!("{} use {what} {goal} (our audiences: {}).", basis, segment_names(&entry.used_by)));
        }
    }
    if find(Activity::Profiling).is_some() {
        let predicted: Vec<String> = models
            .iter()
            .filter(|m| m.purpose == ConsentPurpose::Profiling.as_str())
            .map(|m| {
                match m.id {
                    "bgnbd" => "how likely you are to buy from us again",
                    "gamma_gamma" => "how much you may spend with us",
                    "cadence" => "when you may need to order again",
                    "send_time" => "the best time to email you",
                    "offer" => "how much discounts matter to you",
                    "propensity" => "which product categories may interest you",
                    _ => m.description,
                }
                .to_owned()
            })
            .collect();
        let what = if predicted.is_empty() { "your interests".to_owned() } else { join_words(&predicted) };
        paragraphs.push(format!(
            "{} use your orders, the products you view and add to your cart, and whether you open our emails, to \
             predict {what}. Predictions are recalculated regularly, are never stored permanently, and are deleted \
             as soon as you withdraw your agreement.",
            basis
        ));
    }
    let mut sensitive: Vec<String> =
        SensitiveCategory::ALL.into_iter().filter_map(sensitive_plain).map(str::to_owned).collect();
    // A template's nearest store reads the coordinates a person shared: say so rather than
    // claim location is never used.
    let finds_nearest_store = activities
        .iter()
        .flat_map(|a| a.used_by.all())
        .flat_map(|u| &u.uses)
        .any(|f| f.kind == FieldKind::Trait && f.name.ends_with("latitude"));
    if finds_nearest_store {
        sensitive.retain(|s| s != sensitive_plain(SensitiveCategory::PreciseLocation).unwrap_or_default());
    }
    if !policy.sensitive_traits.is_empty() || !policy.sensitive_catalog_categories.is_empty() {
        sensitive.push("anything else we have marked as sensitive".to_owned());
    }
    paragraphs.push(format!(
        "We never use, infer or predict sensitive information about you, such as your {}, and we do not target \
         children. Products in such categories are left out of our predictions.{}",
        join_or(&sensitive),
        if finds_nearest_store {
            " If you share your precise location with us, it is used only to find our nearest store; we never infer \
             it from what you do."
        } else {
            ""
        }
    ));
    paragraphs.push(format!(
        "Regard does not yet delete old records automatically: the detailed record of your visits is kept until we \
         delete it, and we intend to keep it no longer than 13 months ({RAW_EVENT_RETENTION_DAYS} days). Your \
         profile, your choices about the use of your data and the record of the content we chose for you are kept \
         while you remain our visitor or customer."
    ));
    paragraphs.push(
        "You can change your choices at any time, and a change takes effect immediately; we keep a record of your \
         choices to show what you agreed to. You have the right to ask for a copy of your data, to have it corrected \
         or deleted, and to object to its use."
            .to_owned(),
    );
    paragraphs.join("\n\n")
}

// ----- Text -----

/// The register as text for a terminal: activities, data categories, models, exclusions,
/// caveats and the summary.
pub fn render_text(register: &Register) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let uses_line = |used_by: &UsedBy| -> String {
        let ids = |list: &[Use]| list.iter().map(|u| u.id.as_str()).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        for (label, list) in [("segments", &used_by.segments), ("slots", &used_by.slots), ("models", &used_by.models)] {
            if !list.is_empty() {
                parts.push(format!("{label}: {}", ids(list)));
            }
        }
        if parts.is_empty() {
            "no segments, slots or models".to_owned()
        } else {
            parts.join("; ")
        }
    };
    let _ = writeln!(out, "Record of processing (GDPR Art. 30), generated {}", register.generated_at);
    let _ = writeln!(out, "Consent mode: {}\n", register.consent_mode);
    let _ = writeln!(out, "{}\n", register.controller_note);
    let _ = writeln!(out, "ACTIVITIES");
    for activity in &register.activities {
        let status = if activity.in_use { "" } else { " (not in use)" };
        let _ = writeln!(out, "\n* {} [{}]{status}", activity.name, activity.id);
        let _ = writeln!(out, "  Purpose: {}", activity.purpose);
        let basis = &activity.legal_basis;
        let _ = writeln!(out, "  Legal basis: {} ({}). {}", basis.basis.as_str(), basis.article, basis.explanation);
        if let Some(caution) = &basis.caution {
            let _ = writeln!(out, "  Caution: {caution}");
        }
        let _ = writeln!(out, "  Data: {}", activity.data_categories.join(", "));
        let _ = writeln!(out, "  Retention: {}", activity.retention);
        let _ = writeln!(out, "  Recipients: {}", activity.recipients);
        let _ = writeln!(out, "  Used by: {}", uses_line(&activity.used_by));
    }
    let _ = writeln!(out, "\nDATA CATEGORIES");
    for category in &register.data_categories {
        let personal = if category.personal_data { "" } else { " (not personal data)" };
        let _ = writeln!(out, "\n* {} [{}]{personal}", category.name, category.id);
        let _ = writeln!(out, "  Examples: {}", category.examples.join("; "));
        let _ = writeln!(out, "  Stored in: {}", category.stored_in.join("; "));
        let enforced = if category.retention.enforced { "" } else { " [not enforced]" };
        let _ = writeln!(out, "  Retention: {}{enforced}", category.retention.period);
        let _ = writeln!(out, "  Purposes: {}", category.purposes.join(", "));
        for (label, list) in [
            ("segment", &category.used_by.segments),
            ("slot", &category.used_by.slots),
            ("model", &category.used_by.models),
        ] {
            for entry in list {
                let fields: Vec<String> = entry
                    .uses
                    .iter()
                    .map(|f| match (&f.via_segment, &f.via_model) {
                        (Some(segment), _) => format!("{} (via segment {segment})", f.name),
                        (None, Some(model)) => format!("{} (via model {model})", f.name),
                        (None, None) => f.name.clone(),
                    })
                    .collect();
                let _ = writeln!(out, "  Used by {label} {}: {}", entry.id, fields.join(", "));
            }
        }
    }
    let _ = writeln!(out, "\nMODELS");
    for model in &register.models {
        let note = model.state_note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let _ = writeln!(out, "* {} [{}], {}: {}{note}", model.name, model.id, model.purpose, model.state);
    }
    let _ = writeln!(out, "\nSENSITIVE CATEGORIES EXCLUDED");
    for category in &register.sensitive_categories_excluded {
        let added = &category.operator_additions;
        let additions: Vec<&str> = [&added.traits, &added.catalog_categories, &added.event_properties, &added.keywords]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let additions =
            if additions.is_empty() { String::new() } else { format!(" (operator adds: {})", additions.join(", ")) };
        let _ = writeln!(out, "* {}: {}{additions}", category.category, category.description);
    }
    if !register.declared_traits.is_empty() {
        let _ = writeln!(out, "\nDECLARED TRAITS");
        for declared in &register.declared_traits {
            let _ = writeln!(out, "* {}: {}", declared.name, declared.purposes.join(", "));
        }
    }
    let _ = writeln!(out, "\nCAVEATS");
    for caveat in &register.caveats {
        let _ = writeln!(out, "* {caveat}");
    }
    let _ = writeln!(out, "\nSUMMARY FOR A PRIVACY POLICY\n\n{}", register.summary);
    out
}

#[cfg(test)]
#[path = "register_tests.rs"]
mod tests;
