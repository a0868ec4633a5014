//! The live state: every profile, the identity index, the catalog and the recent-messageId
//! index, in memory; and the rules that turn a message into state changes and facts.
//!
//! Two ways in, kept equivalent: [`LiveState::apply_message`] (and its siblings) for new input,
//! which also emits the facts to store; and the `replay_*` functions, which rebuild the same
//! state from stored facts at start-up.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use rustc_hash::FxHashMap;

use crate::catalog::Product;
use crate::consent::{ConsentCategoryMap, ConsentDecision, ConsentMode, ConsentPurpose, ConsentSource};
use crate::facts::{
    ConsentFact, ErasureFact, EventFact, FactBatch, IdentityFact, MembershipFact, MergeFact, ProfileId, ReceiptFact,
    ReducedCountKey, SegmentFact, TraitFact,
};
use crate::message::{IdentityKind, Message, MessageKind};
use crate::profile::{Profile, TimelineEntry};
use crate::segments::backfill::{BackfillMatch, BackfillRequest, BackfillSignal, Readiness, ReadinessState};
use crate::segments::definition::{ContextField, EventMatch, ORDER_COMPLETED, PRODUCT_VIEWED};
use crate::segments::index::{MatchHistory, SegmentIndex, SegmentSlot};
use crate::segments::matcher::{self, CategoryLookup};
use crate::segments::{
    evaluate, evaluate_membership, next_check_ms, Reason, ScoreSource, SegmentDefinition, SegmentFacts, SegmentId,
};
use crate::symbols::{Symbol, SymbolTable};
use crate::time::DAY_MS;

/// The prefix of a profile's internal id in the API (`prof_42`).
pub const PROFILE_ID_PREFIX: &str = "prof_";

/// The trait name under which identify calls may carry consent decisions.
pub const CONSENT_TRAIT: &str = "consent";

/// Settings of the live state.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// What silence about consent means.
    pub consent_mode: ConsentMode,
    /// How consent-manager categories map to purposes.
    pub consent_categories: ConsentCategoryMap,
    /// How long a messageId is remembered for de-duplication.
    pub dedup_window_ms: i64,
    /// At most this many messageIds are remembered (the oldest are forgotten first).
    pub dedup_max_ids: usize,
    /// The privacy policy segments and slots are checked against on save (the built-in one
    /// plus the operator's additions).
    pub policy: std::sync::Arc<crate::segments::PolicyConfig>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            consent_mode: ConsentMode::OptIn,
            consent_categories: ConsentCategoryMap::default(),
            dedup_window_ms: 7 * DAY_MS,
            dedup_max_ids: 5_000_000,
            policy: std::sync::Arc::default(),
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Stored whole and applied to its profile.
    Stored,
    /// A retry of a message already received; nothing changed.
    Duplicate,
    /// No `analytics` consent: only the anonymous daily count (and identity facts of an
    /// identify) were kept.
    Reduced,
    /// About a person who was erased, and timestamped before the erasure: dropped, so a
    /// replayed old event cannot re-create them.
    Erased,
}

/// A consent change requested through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentUpdate {
    /// The person's userId, if known.
    pub user_id: Option<String>,
    /// The person's anonymousId, if known.
    pub anonymous_id: Option<String>,
    /// The decisions.
    pub decisions: Vec<(ConsentPurpose, bool)>,
    /// Where they came from.
    pub source: ConsentSource,
    /// Policy version shown.
    pub policy_version: Option<String>,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// A hasher for keys that are already uniformly distributed 64-bit hashes.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The recently seen messageIds, remembered as keyed 64-bit hashes for a bounded window.
///
/// The hash key is random per process: the index is derived state, rebuilt from stored
/// messageIds at start-up, so nobody outside can craft colliding ids.
#[derive(Debug)]
pub struct RecentMessageIds {
    hasher: RandomState,
    seen: HashSet<u64, BuildHasherDefault<PassThroughHasher>>,
    order: VecDeque<(i64, u64)>,
    window_ms: i64,
    max_ids: usize,
}

impl RecentMessageIds {
    /// An empty index with the given window and bound.
    pub fn new(window_ms: i64, max_ids: usize) -> RecentMessageIds {
        RecentMessageIds {
            hasher: RandomState::new(),
            seen: HashSet::default(),
            order: VecDeque::new(),
            window_ms,
            max_ids: max_ids.max(1),
        }
    }

    /// Remembers `message_id`; false when it was already remembered (a retry).
    pub fn insert(&mut self, message_id: &str, received_at_ms: i64) -> bool {
        let hash = self.hasher.hash_one(message_id);
        if !self.seen.insert(hash) {
            return false;
        }
        self.order.push_back((received_at_ms, hash));
        let horizon = received_at_ms.saturating_sub(self.window_ms);
        while let Some(&(at_ms, oldest)) = self.order.front() {
            if at_ms >= horizon && self.order.len() <= self.max_ids {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&oldest);
        }
        true
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// All live state of one Regard instance.
#[derive(Debug)]
pub struct LiveState {
    config: LiveConfig,
    profiles: FxHashMap<ProfileId, Profile>,
    merged_into: FxHashMap<ProfileId, ProfileId>,
    user_ids: FxHashMap<Box<str>, ProfileId>,
    anonymous_ids: FxHashMap<Box<str>, ProfileId>,
    /// Interned event names and trait keys.
    pub symbols: SymbolTable,
    catalog: FxHashMap<String, Product>,
    dedup: RecentMessageIds,
    segments: std::collections::BTreeMap<String, SavedSegment>,
    index: SegmentIndex,
    readiness: FxHashMap<String, Readiness>,
    backfill_requests: Vec<BackfillRequest>,
    next_backfill_job: u64,
    scratch: Scratch,
    next_seq: u64,
    next_profile_id: ProfileId,
    /// Model scores per canonical profile (churn risk, propensities...), set by the
    /// predictive models and read by `score` segment conditions. Derived, never stored:
    /// the server recomputes them at start-up.
    scores: FxHashMap<ProfileId, Vec<(Symbol, f64)>>,
    /// Salted hashes of erased people's ids, with the erasure time.
    tombstones: FxHashMap<String, i64>,
    /// The store's secret salt for tombstone hashes.
    tombstone_salt: String,
}

impl LiveState {
    /// An empty state.
    pub fn new(config: LiveConfig) -> LiveState {
        let dedup = RecentMessageIds::new(config.dedup_window_ms, config.dedup_max_ids);
        LiveState {
            config,
            profiles: FxHashMap::default(),
            merged_into: FxHashMap::default(),
            user_ids: FxHashMap::default(),
            anonymous_ids: FxHashMap::default(),
            symbols: SymbolTable::default(),
            catalog: FxHashMap::default(),
            dedup,
            segments: std::collections::BTreeMap::new(),
            index: SegmentIndex::default(),
            readiness: FxHashMap::default(),
            backfill_requests: Vec::new(),
            next_backfill_job: 1,
            scratch: Scratch::default(),
            next_seq: 1,
            next_profile_id: 1,
            scores: FxHashMap::default(),
            tombstones: FxHashMap::default(),
            tombstone_salt: String::new(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    /// Number of (unmerged) profiles.
    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    /// Iterates over all profiles.
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// The number of messageIds remembered for de-duplication.
    pub fn remembered_message_ids(&self) -> usize {
        self.dedup.len()
    }

    /// The seq the next stored event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The surviving profile for an id that may have been merged away.
    pub fn canonical(&self, mut id: ProfileId) -> ProfileId {
        while let Some(&into) = self.merged_into.get(&id) {
            id = into;
        }
        id
    }

    /// A profile by its internal id (following merges).
    pub fn profile(&self, id: ProfileId) -> Option<&Profile> {
        self.profiles.get(&self.canonical(id))
    }

    /// Finds a profile by userId, anonymousId or internal id (`prof_42`), in that order.
    pub fn find_profile(&self, key: &str) -> Option<&Profile> {
        if let Some(&id) = self.user_ids.get(key) {
            return self.profile(id);
        }
        if let Some(&id) = self.anonymous_ids.get(key) {
            return self.profile(id);
        }
        let id: ProfileId = key.strip_prefix(PROFILE_ID_PREFIX)?.parse().ok()?;
        self.profile(id)
    }

    /// Every product of the catalog, in no particular order.
    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.catalog.values()
    }

    /// Product ids the person viewed most recently, newest first.
    pub fn recently_viewed(&self, profile_id: ProfileId) -> Vec<&str> {
        self.profile(profile_id).map(Profile::recently_viewed).unwrap_or_default()
    }

    /// The profile a userId names (never an internal id: what a browser may ask about).
    pub fn find_by_user_id(&self, user_id: &str) -> Option<&Profile> {
        self.profile(*self.user_ids.get(user_id)?)
    }

    /// The profile an anonymousId names.
    pub fn find_by_anonymous_id(&self, anonymous_id: &str) -> Option<&Profile> {
        self.profile(*self.anonymous_ids.get(anonymous_id)?)
    }

    /// Every profile id that was merged into `id`, and `id` itself: the ids its stored events
    /// may be filed under.
    pub fn member_ids(&self, id: ProfileId) -> Vec<ProfileId> {
        let id = self.canonical(id);
        let mut ids: Vec<ProfileId> =
            self.merged_into.keys().copied().filter(|&other| self.canonical(other) == id).collect();
        ids.push(id);
        ids.sort_unstable();
        ids
    }

    /// A product by id.
    pub fn product(&self, id: &str) -> Option<&Product> {
        self.catalog.get(id)
    }

    /// Number of products.
    pub fn product_count(&self) -> usize {
        self.catalog.len()
    }

    /// Whether `purpose` is allowed for a profile under the configured mode.
    pub fn allows(&self, profile: &Profile, purpose: ConsentPurpose) -> bool {
        profile.consent.allows(purpose, self.config.consent_mode)
    }

    // ---- new input ----------------------------------------------------------------------

    /// Applies one message and appends the facts to store.
    ///
    /// Consent is read first, from the message itself, so a message that grants or revokes
    /// `analytics` is already treated accordingly. A message from someone Regard has no profile
    /// for, with no consent information, under opt-in, creates nothing: it is counted in the
    /// reduced form only.
    pub fn apply_message(&mut self, message: Message, facts: &mut FactBatch) -> ApplyOutcome {
        if !self.dedup.insert(&message.message_id, message.received_at_ms) {
            return ApplyOutcome::Duplicate;
        }
        if !self.tombstones.is_empty() && self.is_tombstoned(&message) {
            return ApplyOutcome::Erased;
        }
        let (consent_decisions, consent_source, policy_version) = self.consent_in(&message);
        let may_create = matches!(message.kind, MessageKind::Identify | MessageKind::Alias)
            || !consent_decisions.is_empty()
            || self.config.consent_mode == ConsentMode::OptOut;
        let profile_id = if may_create {
            Some(self.link_identities(&message, facts))
        } else {
            match self.find_existing(&message) {
                Some(id) if self.allows_id(id, ConsentPurpose::Analytics) => {
                    Some(self.link_identities(&message, facts))
                }
                other => other,
            }
        };
        let Some(profile_id) = profile_id else {
            self.reduce(message, facts);
            return ApplyOutcome::Reduced;
        };
        let consents_before = facts.consents.len();
        for (purpose, granted) in consent_decisions {
            let decision = ConsentDecision {
                granted,
                at_ms: message.timestamp_ms,
                source: consent_source,
                policy_version: policy_version.clone(),
            };
            self.record_consent(profile_id, purpose, decision, facts);
        }
        let traits_before = facts.traits.len();
        if message.kind == MessageKind::Identify {
            self.apply_traits(profile_id, &message, facts);
        }
        if facts.consents.len() > consents_before {
            // A change of consent withdraws (or allows) memberships in the same request.
            self.refresh_segments(profile_id, message.received_at_ms, Refresh::All, facts);
        } else if facts.traits.len() > traits_before {
            self.refresh_segments(profile_id, message.received_at_ms, Refresh::Traits, facts);
        }
        if !self.allows_id(profile_id, ConsentPurpose::Analytics) {
            self.reduce(message, facts);
            return ApplyOutcome::Reduced;
        }
        self.store_event(profile_id, message, facts);
        ApplyOutcome::Stored
    }

    /// Applies consent decisions from the API, creating the profile if needed.
    pub fn apply_consent(&mut self, update: ConsentUpdate, facts: &mut FactBatch) -> Option<ProfileId> {
        let profile_id =
            self.link_pair(update.user_id.as_deref(), update.anonymous_id.as_deref(), update.at_ms, facts)?;
        for (purpose, granted) in update.decisions {
            let decision = ConsentDecision {
                granted,
                at_ms: update.at_ms,
                source: update.source,
                policy_version: update.policy_version.clone(),
            };
            self.record_consent(profile_id, purpose, decision, facts);
        }
        // Revocation withdraws memberships in the same request.
        self.refresh_segments(profile_id, update.at_ms, Refresh::All, facts);
        Some(profile_id)
    }

    /// Upserts products into the catalog.
    pub fn apply_products(&mut self, products: Vec<Product>, facts: &mut FactBatch) {
        for product in products {
            self.catalog.insert(product.id.clone(), product.clone());
            facts.products.push(product);
        }
    }

    fn allows_id(&self, id: ProfileId, purpose: ConsentPurpose) -> bool {
        self.profile(id).is_some_and(|p| self.allows(p, purpose))
    }

    fn consent_in(&self, message: &Message) -> (Vec<(ConsentPurpose, bool)>, ConsentSource, Option<String>) {
        let mut decisions = self.config.consent_categories.map_preferences(&message.context.consent_categories);
        let mut source = ConsentSource::SegmentContext;
        let mut policy_version = None;
        if message.kind == MessageKind::Identify {
            if let Some(serde_json::Value::Object(consent)) = message.traits.as_ref().and_then(|t| t.get(CONSENT_TRAIT))
            {
                for (key, value) in consent {
                    if key == "policy_version" || key == "policyVersion" {
                        policy_version = value.as_str().map(str::to_owned);
                        continue;
                    }
                    let Some(granted) = value.as_bool() else {
                        continue;
                    };
                    let purposes: Vec<ConsentPurpose> = match ConsentPurpose::parse(key) {
                        Some(purpose) => vec![purpose],
                        None => self.config.consent_categories.purposes(key).to_vec(),
                    };
                    for purpose in purposes {
                        source = ConsentSource::IdentifyTraits;
                        match decisions.iter_mut().find(|(p, _)| *p == purpose) {
                            Some(entry) => entry.1 = granted,
                            None => decisions.push((purpose, granted)),
                        }
                    }
                }
            }
        }
        (decisions, source, policy_version)
    }

    fn find_existing(&self, message: &Message) -> Option<ProfileId> {
        let by_user = message.user_id.as_deref().and_then(|id| self.user_ids.get(id));
        let by_anonymous = message.anonymous_id.as_deref().and_then(|id| self.anonymous_ids.get(id));
        by_user.or(by_anonymous).map(|&id| self.canonical(id))
    }

    fn link_identities(&mut self, message: &Message, facts: &mut FactBatch) -> ProfileId {
        let at_ms = message.timestamp_ms;
        if message.kind == MessageKind::Alias {
            if let (Some(previous), Some(user_id)) = (message.previous_id.as_deref(), message.user_id.as_deref()) {
                return self.alias(previous, user_id, at_ms, facts);
            }
        }
        match self.link_pair(message.user_id.as_deref(), message.anonymous_id.as_deref(), at_ms, facts) {
            Some(id) => id,
            // The edge guarantees one of the ids; an alias with only previousId lands here.
            None => {
                let previous = message.previous_id.as_deref().unwrap_or(&message.message_id);
                self.create_with(IdentityKind::AnonymousId, previous, at_ms, facts)
            }
        }
    }

    /// Links a userId and an anonymousId seen together. Two anonymous histories that identify
    /// as one user merge into the user's profile. An anonymous id already tied to a different
    /// user (a shared device) is left with that user rather than merging two people.
    fn link_pair(
        &mut self,
        user_id: Option<&str>,
        anonymous_id: Option<&str>,
        at_ms: i64,
        facts: &mut FactBatch,
    ) -> Option<ProfileId> {
        let by_user = user_id.and_then(|id| self.user_ids.get(id)).map(|&id| self.canonical(id));
        let by_anonymous = anonymous_id.and_then(|id| self.anonymous_ids.get(id)).map(|&id| self.canonical(id));
        match (user_id, anonymous_id, by_user, by_anonymous) {
            (None, None, ..) => None,
            (Some(_), _, Some(user_profile), None) => {
                if let Some(anonymous_id) = anonymous_id {
                    self.link(IdentityKind::AnonymousId, anonymous_id, user_profile, at_ms, facts);
                }
                Some(user_profile)
            }
            (Some(user_id), _, None, Some(anonymous_profile)) => {
                let other_user = self.profiles.get(&anonymous_profile).and_then(|p| p.user_id()).is_some();
                if other_user {
                    Some(self.create_with(IdentityKind::UserId, user_id, at_ms, facts))
                } else {
                    self.link(IdentityKind::UserId, user_id, anonymous_profile, at_ms, facts);
                    Some(anonymous_profile)
                }
            }
            (Some(_), _, Some(user_profile), Some(anonymous_profile)) => {
                if user_profile != anonymous_profile {
                    let other_user = self.profiles.get(&anonymous_profile).and_then(|p| p.user_id()).is_some();
                    if !other_user {
                        self.merge(anonymous_profile, user_profile, at_ms, facts);
                    }
                }
                Some(user_profile)
            }
            (Some(user_id), anonymous_id, None, None) => {
                let id = self.create_with(IdentityKind::UserId, user_id, at_ms, facts);
                if let Some(anonymous_id) = anonymous_id {
                    self.link(IdentityKind::AnonymousId, anonymous_id, id, at_ms, facts);
                }
                Some(id)
            }
            (None, Some(_), _, Some(anonymous_profile)) => Some(anonymous_profile),
            (None, Some(anonymous_id), _, None) => {
                Some(self.create_with(IdentityKind::AnonymousId, anonymous_id, at_ms, facts))
            }
        }
    }

    /// `alias(previousId, userId)`: the previous id (anonymous or a former userId) is the same
    /// person as `user_id`. Unlike an implicit link, an explicit alias merges even two
    /// identified profiles, because the operator said so.
    fn alias(&mut self, previous: &str, user_id: &str, at_ms: i64, facts: &mut FactBatch) -> ProfileId {
        let previous_profile =
            self.user_ids.get(previous).or_else(|| self.anonymous_ids.get(previous)).map(|&id| self.canonical(id));
        let user_profile = self.user_ids.get(user_id).map(|&id| self.canonical(id));
        match (previous_profile, user_profile) {
            (Some(from), Some(into)) => {
                if from != into {
                    self.merge(from, into, at_ms, facts);
                }
                into
            }
            (Some(from), None) => {
                self.link(IdentityKind::UserId, user_id, from, at_ms, facts);
                from
            }
            (None, Some(into)) => {
                self.link(IdentityKind::AnonymousId, previous, into, at_ms, facts);
                into
            }
            (None, None) => {
                let id = self.create_with(IdentityKind::UserId, user_id, at_ms, facts);
                self.link(IdentityKind::AnonymousId, previous, id, at_ms, facts);
                id
            }
        }
    }

    fn create_with(&mut self, kind: IdentityKind, value: &str, at_ms: i64, facts: &mut FactBatch) -> ProfileId {
        let id = self.next_profile_id;
        self.next_profile_id += 1;
        self.profiles.insert(id, Profile::new(id));
        self.link(kind, value, id, at_ms, facts);
        id
    }

    fn link(&mut self, kind: IdentityKind, value: &str, profile_id: ProfileId, at_ms: i64, facts: &mut FactBatch) {
        self.index_identity(kind, value, profile_id);
        facts.identities.push(IdentityFact { kind, value: value.to_owned(), profile_id, at_ms });
    }

    fn index_identity(&mut self, kind: IdentityKind, value: &str, profile_id: ProfileId) {
        let index = match kind {
            IdentityKind::UserId => &mut self.user_ids,
            IdentityKind::AnonymousId => &mut self.anonymous_ids,
        };
        index.insert(value.into(), profile_id);
        if let Some(profile) = self.profiles.get_mut(&profile_id) {
            profile.add_identity(kind, value);
        }
    }

    fn merge(&mut self, from: ProfileId, into: ProfileId, at_ms: i64, facts: &mut FactBatch) {
        let left: Vec<String> = self
            .index
            .memberships(from)
            .iter()
            .filter_map(|slot| self.index.segment(*slot).map(|s| s.id.clone()))
            .collect();
        self.merge_profiles(from, into);
        for segment_id in left {
            facts.memberships.push(MembershipFact { profile_id: from, segment_id, entered: false, at_ms });
        }
        facts.merges.push(MergeFact { from, into, at_ms });
        self.refresh_segments(into, at_ms, Refresh::All, facts);
    }

    fn merge_profiles(&mut self, from: ProfileId, into: ProfileId) {
        let (from, into) = (self.canonical(from), self.canonical(into));
        if from == into {
            return;
        }
        let Some(absorbed) = self.profiles.remove(&from) else {
            return;
        };
        for (kind, value) in &absorbed.identities {
            let index = match kind {
                IdentityKind::UserId => &mut self.user_ids,
                IdentityKind::AnonymousId => &mut self.anonymous_ids,
            };
            index.insert(value.clone(), into);
        }
        self.merged_into.insert(from, into);
        if let Some(survivor) = self.profiles.get_mut(&into) {
            survivor.absorb(absorbed);
        }
        self.index.merge_signals(from, into);
        for slot in self.index.memberships(from).to_vec() {
            self.index.set_member(from, slot, false);
        }
    }

    fn record_consent(
        &mut self,
        profile_id: ProfileId,
        purpose: ConsentPurpose,
        decision: ConsentDecision,
        facts: &mut FactBatch,
    ) {
        let Some(profile) = self.profiles.get_mut(&profile_id) else {
            return;
        };
        let fact = ConsentFact {
            profile_id,
            purpose,
            granted: decision.granted,
            at_ms: decision.at_ms,
            source: decision.source,
            policy_version: decision.policy_version.clone(),
        };
        if profile.consent.record(purpose, decision) {
            facts.consents.push(fact);
        }
        // Predictions need `profiling`: revoking it withdraws them at once (the segments that
        // test them are re-evaluated by the caller's refresh).
        if purpose == ConsentPurpose::Profiling && !self.allows(&self.profiles[&profile_id], ConsentPurpose::Profiling)
        {
            self.scores.remove(&profile_id);
        }
    }

    fn apply_traits(&mut self, profile_id: ProfileId, message: &Message, facts: &mut FactBatch) {
        let Some(traits) = &message.traits else {
            return;
        };
        for (key, value) in traits {
            if key == CONSENT_TRAIT {
                continue;
            }
            let symbol = self.symbols.intern(key);
            let value_json = value.to_string();
            let Some(profile) = self.profiles.get_mut(&profile_id) else {
                return;
            };
            if profile.set_trait(symbol, &value_json, message.timestamp_ms) {
                facts.traits.push(TraitFact {
                    profile_id,
                    key: key.clone(),
                    value_json,
                    at_ms: message.timestamp_ms,
                    message_id: message.message_id.clone(),
                });
            }
        }
    }

    fn store_event(&mut self, profile_id: ProfileId, message: Message, facts: &mut FactBatch) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let name = message.name.as_deref().map(|n| self.symbols.intern(n));
        let locale = message.context.locale.as_deref().map(|l| self.symbols.intern(l));
        let timezone = message.context.timezone.as_deref().map(|t| self.symbols.intern(t));
        let mut new_visit = false;
        if let Some(profile) = self.profiles.get_mut(&profile_id) {
            let sessions_before = profile.sessions;
            profile.record_event(TimelineEntry { timestamp_ms: message.timestamp_ms, seq }, message.kind, name);
            new_visit = profile.sessions != sessions_before;
            if locale.is_some() {
                profile.last_locale = locale;
            }
            if timezone.is_some() {
                profile.last_timezone = timezone;
            }
        }
        let mut matched = std::mem::take(&mut self.scratch.matched);
        matched.clear();
        if let Some(matches) = message.name.as_deref().and_then(|name| self.index.name_matches(name)) {
            // Properties are read only for names a segment counts, and only the keys its
            // matches look at.
            let properties = match message.properties.as_deref() {
                Some(text) if matches.reads_properties() => matches.read_properties(text),
                _ => Default::default(),
            };
            matches.matched(&properties, &CatalogPaths(&self.catalog), &mut matched);
        }
        for &number in &matched {
            self.index.add_signal(profile_id, number, message.timestamp_ms);
        }
        // Only segments counting a match this event made, or testing the visitor kind when
        // this event opened a new visit, can change.
        if !matched.is_empty() || new_visit {
            self.refresh_segments(
                profile_id,
                message.received_at_ms,
                Refresh::Event { matched: &matched, new_visit, at_ms: message.timestamp_ms },
                facts,
            );
        }
        self.scratch.matched = matched;
        let product_id = match (message.name.as_deref(), message.properties.as_deref()) {
            (Some(name), Some(properties)) if PRODUCT_EVENTS.contains(&name) => product_id_of(properties),
            (Some(ORDER_COMPLETED), Some(properties)) => order_products_of(properties),
            _ => None,
        };
        if let (Some(name), Some(column)) = (message.name.as_deref(), product_id.as_deref()) {
            if let Some(profile) = self.profiles.get_mut(&profile_id) {
                note_product_column(profile, name, message.timestamp_ms, column);
            }
        }
        facts.events.push(EventFact {
            seq,
            profile_id,
            kind: message.kind,
            name: message.name,
            message_id: message.message_id,
            timestamp_ms: message.timestamp_ms,
            received_at_ms: message.received_at_ms,
            product_id,
            raw: message.raw,
        });
    }

    fn reduce(&mut self, message: Message, facts: &mut FactBatch) {
        facts.add_reduced(ReducedCountKey {
            day: message.timestamp_ms.div_euclid(DAY_MS),
            kind: message.kind,
            name: message.name.unwrap_or_default(),
        });
        facts.receipts.push(ReceiptFact { message_id: message.message_id, received_at_ms: message.received_at_ms });
    }

    /// Saves a checked definition as the segment's next version and returns that version.
    ///
    /// Event matches the index already covers are reused. Matches new to it (or whose earlier
    /// backfill failed) are counted live from now on, and their stored history is left to a
    /// background backfill ([`LiveState::take_backfill_requests`]); until it is merged the
    /// segment is [`ReadinessState::Backfilling`]. A segment with nothing to read is computed
    /// for everyone at once and is ready when this returns.
    pub fn save_segment(
        &mut self,
        definition: SegmentDefinition,
        definition_json: String,
        at_ms: i64,
        facts: &mut FactBatch,
    ) -> u32 {
        let id = definition.id().as_str().to_owned();
        let version = self.segments.get(&id).map_or(1, |s| s.version + 1);
        facts.segments.push(SegmentFact {
            segment_id: id.clone(),
            version,
            definition_json: definition_json.clone(),
            at_ms,
            deleted: false,
        });
        let purpose = definition.purpose().consent_purpose();
        let (slot, new_matches) = self.index.register(&id, purpose, definition.condition());
        self.segments.insert(id.clone(), SavedSegment { definition, definition_json, version, updated_ms: at_ms });
        let log_end = self.next_seq - 1;
        let mut jobs: Vec<u64> = Vec::new();
        let mut to_read: Vec<BackfillMatch> = Vec::new();
        let numbers = self.index.segment(slot).map(|s| s.matches.clone()).unwrap_or_default();
        for number in numbers {
            let upto_seq = match self.index.history(number) {
                MatchHistory::Complete if new_matches.contains(&number) => log_end,
                MatchHistory::Complete => continue,
                MatchHistory::Backfilling { job, .. } => {
                    if !jobs.contains(&job) {
                        jobs.push(job);
                    }
                    continue;
                }
                MatchHistory::Failed { upto_seq } => upto_seq,
            };
            if upto_seq == 0 {
                // Nothing was stored before the match existed: it is complete already.
                self.index.set_history(number, MatchHistory::Complete);
                continue;
            }
            let Some(event) = self.index.event_match(number).cloned() else { continue };
            to_read.push(BackfillMatch { number, event, upto_seq });
        }
        if !to_read.is_empty() {
            let job = self.next_backfill_job;
            self.next_backfill_job += 1;
            for m in &to_read {
                self.index.set_history(m.number, MatchHistory::Backfilling { job, upto_seq: m.upto_seq });
            }
            self.backfill_requests.push(BackfillRequest { job, matches: to_read });
            jobs.push(job);
        }
        let state = if jobs.is_empty() {
            self.refresh_segment_for_everyone(slot, at_ms, facts);
            ReadinessState::Ready { ready_ms: at_ms }
        } else {
            ReadinessState::Backfilling
        };
        self.readiness.insert(id, Readiness { state, saved_ms: Some(at_ms), jobs });
        version
    }

    /// The backfills saves have asked for since the last call. The writer hands them to the
    /// background once the saves are committed, so the scan sees every event up to each
    /// match's `upto_seq`.
    pub fn take_backfill_requests(&mut self) -> Vec<BackfillRequest> {
        std::mem::take(&mut self.backfill_requests)
    }

    /// Whether a save has asked for a backfill not yet taken.
    pub fn has_backfill_requests(&self) -> bool {
        !self.backfill_requests.is_empty()
    }

    /// A request for the whole history of every match in the index: what the start-up rebuild
    /// reads before serving (load the result with [`LiveState::load_signals`]).
    pub fn rebuild_request(&self) -> BackfillRequest {
        let upto_seq = self.next_seq - 1;
        let matches = self
            .index
            .live_matches()
            .map(|(number, event)| BackfillMatch { number, event: event.clone(), upto_seq })
            .collect();
        BackfillRequest { job: 0, matches }
    }

    /// Product ids with their category paths: the copy of the catalog a backfill of category
    /// matches reads (products added during the backfill are seen only by new events).
    pub fn catalog_category_paths(&self) -> FxHashMap<String, Vec<String>> {
        self.catalog.iter().map(|(id, product)| (id.clone(), product.category_path.clone())).collect()
    }

    /// Loads signals read from the event log at start-up (sorted by profile, match and time)
    /// into the index, and marks every saved segment ready as of `now_ms`; memberships are
    /// then computed with [`LiveState::refresh_all_segments`].
    pub fn load_signals(&mut self, signals: &[BackfillSignal], now_ms: i64) {
        self.add_backfill_signals(signals, |_| true);
        for readiness in self.readiness.values_mut() {
            *readiness =
                Readiness { state: ReadinessState::Ready { ready_ms: now_ms }, saved_ms: None, jobs: Vec::new() };
        }
    }

    fn add_backfill_signals(&mut self, signals: &[BackfillSignal], wanted: impl Fn(u32) -> bool) {
        let mut start = 0;
        while start < signals.len() {
            let (profile, number, _) = signals[start];
            let end = start + signals[start..].iter().take_while(|s| s.0 == profile && s.1 == number).count();
            if wanted(number) {
                let times: Vec<i64> = signals[start..end].iter().map(|s| s.2).collect();
                let into = self.canonical(profile);
                self.index.add_sorted_signals(into, number, &times);
            }
            start = end;
        }
    }

    /// Merges what backfill `jobs` read from the event log (sorted by profile, match and time)
    /// into the index, and marks their matches complete. Returns the segments whose memberships
    /// must now be recomputed for everyone ([`LiveState::refresh_profiles`]) before
    /// [`LiveState::complete_backfill`] marks them ready.
    pub fn merge_backfill(&mut self, jobs: &[u64], signals: &[BackfillSignal]) -> Vec<SegmentSlot> {
        let mut numbers: Vec<u32> = Vec::new();
        for number in 0.. {
            if self.index.event_match(number).is_none() {
                break;
            }
            if let MatchHistory::Backfilling { job, .. } = self.index.history(number) {
                if jobs.contains(&job) {
                    numbers.push(number);
                }
            }
        }
        self.add_backfill_signals(signals, |number| numbers.contains(&number));
        for &number in &numbers {
            self.index.set_history(number, MatchHistory::Complete);
        }
        self.unready_but_complete()
    }

    /// Saved segments that are not ready although every match they count is complete.
    fn unready_but_complete(&self) -> Vec<SegmentSlot> {
        self.index
            .segments()
            .filter(|(_, s)| self.readiness.get(&s.id).is_some_and(|r| !r.is_ready()))
            .filter(|(_, s)| s.matches.iter().all(|n| self.index.history(*n) == MatchHistory::Complete))
            .map(|(slot, _)| slot)
            .collect()
    }

    /// Recomputes the given segments for the profiles with ids in `from..to` (a backfill's
    /// last step, in chunks so ingestion is never held up for long). Returns whether profiles
    /// with higher ids exist.
    pub fn refresh_profiles(
        &mut self,
        slots: &[SegmentSlot],
        from: ProfileId,
        to: ProfileId,
        now_ms: i64,
        facts: &mut FactBatch,
    ) -> bool {
        for id in from..to.min(self.next_profile_id) {
            if self.profiles.contains_key(&id) {
                self.refresh_segments(id, now_ms, Refresh::Slots(slots), facts);
            }
        }
        to < self.next_profile_id
    }

    /// After [`LiveState::merge_backfill`] and the refresh: marks ready, as of `now_ms`, every
    /// segment whose matches are all complete. Returns their ids.
    pub fn complete_backfill(&mut self, now_ms: i64) -> Vec<String> {
        let slots = self.unready_but_complete();
        let mut ready = Vec::new();
        for slot in slots {
            let Some(id) = self.index.segment(slot).map(|s| s.id.clone()) else { continue };
            if let Some(readiness) = self.readiness.get_mut(&id) {
                readiness.state = ReadinessState::Ready { ready_ms: now_ms };
                ready.push(id);
            }
        }
        ready
    }

    /// Records that backfill `jobs` failed: their matches keep only the live part, and the
    /// segments waiting on them say so. Saving such a segment again retries.
    pub fn fail_backfill(&mut self, jobs: &[u64], message: &str, now_ms: i64) {
        for number in 0.. {
            if self.index.event_match(number).is_none() {
                break;
            }
            if let MatchHistory::Backfilling { job, upto_seq } = self.index.history(number) {
                if jobs.contains(&job) {
                    self.index.set_history(number, MatchHistory::Failed { upto_seq });
                }
            }
        }
        for readiness in self.readiness.values_mut() {
            if !readiness.is_ready() && readiness.jobs.iter().any(|j| jobs.contains(j)) {
                readiness.state = ReadinessState::Failed { failed_ms: now_ms, message: message.to_owned() };
            }
        }
    }

    /// How far a saved segment's memberships reflect the stored history.
    pub fn segment_readiness(&self, id: &str) -> Option<&Readiness> {
        self.readiness.get(id)
    }

    /// Deletes a segment; false when there was none.
    pub fn delete_segment(&mut self, id: &str, at_ms: i64, facts: &mut FactBatch) -> bool {
        let Some(removed) = self.segments.remove(id) else { return false };
        self.readiness.remove(id);
        for profile_id in self.index.unregister(id) {
            facts.memberships.push(MembershipFact { profile_id, segment_id: id.to_owned(), entered: false, at_ms });
        }
        facts.segments.push(SegmentFact {
            segment_id: id.to_owned(),
            version: removed.version + 1,
            definition_json: String::new(),
            at_ms,
            deleted: true,
        });
        true
    }

    /// A saved segment by id.
    pub fn segment(&self, id: &str) -> Option<&SavedSegment> {
        self.segments.get(id)
    }

    /// Every saved segment, by id.
    pub fn segments(&self) -> impl Iterator<Item = &SavedSegment> {
        self.segments.values()
    }

    // ---- the real-time segment index -----------------------------------------------------

    /// Whether an event with these properties is about a product of the match's category: its
    /// own product, or any item of its `products` array (orders, carts).
    pub fn event_in_category(
        &self,
        event: &EventMatch,
        properties: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        let Some(category) = &event.category else { return true };
        let wanted = Product::parse_category_path(category);
        matcher::category_paths(properties, &CatalogPaths(&self.catalog))
            .iter()
            .any(|path| matcher::path_contains(path, &wanted))
    }

    /// The category path of an event's product: from the catalog by `product_id`, else from its
    /// `category` property.
    pub fn category_path(&self, properties: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
        matcher::category_path_of(properties, &CatalogPaths(&self.catalog)).into_owned()
    }

    /// Computes one segment's membership for every profile (after a backfill, or at start-up
    /// for all segments with `facts` thrown away).
    pub fn refresh_segment_for_everyone(&mut self, slot: SegmentSlot, now_ms: i64, facts: &mut FactBatch) {
        let ids: Vec<ProfileId> = self.profiles.keys().copied().collect();
        for id in ids {
            self.refresh_segments(id, now_ms, Refresh::Slots(&[slot]), facts);
        }
    }

    /// Computes every segment for every profile.
    pub fn refresh_all_segments(&mut self, now_ms: i64, facts: &mut FactBatch) {
        let ids: Vec<ProfileId> = self.profiles.keys().copied().collect();
        for id in ids {
            self.refresh_segments(id, now_ms, Refresh::All, facts);
        }
    }

    /// Re-evaluates the profiles whose memberships may change with time by `now_ms` (a view
    /// leaving its 7-day window): the timer that avoids rescanning everyone.
    pub fn expire_segments(&mut self, now_ms: i64, facts: &mut FactBatch) -> usize {
        let due = self.index.due(now_ms);
        for &id in &due {
            self.refresh_segments(self.canonical(id), now_ms, Refresh::All, facts);
        }
        due.len()
    }

    fn refresh_segments(&mut self, profile_id: ProfileId, now_ms: i64, which: Refresh<'_>, facts: &mut FactBatch) {
        let Some(profile) = self.profiles.get(&profile_id) else { return };
        // Scratch buffers, reused: this runs for most stored events.
        let mut slots = std::mem::take(&mut self.scratch.slots);
        let mut outcomes = std::mem::take(&mut self.scratch.outcomes);
        slots.clear();
        outcomes.clear();
        match which {
            Refresh::All => slots.extend(self.index.segments().map(|(slot, _)| slot)),
            Refresh::Slots(only) => slots.extend_from_slice(only),
            Refresh::Traits => slots.extend_from_slice(self.index.trait_segments()),
            Refresh::Scores => slots.extend_from_slice(self.index.score_segments()),
            Refresh::Event { matched, new_visit, .. } => self.index.affected_by_event(matched, new_visit, &mut slots),
        }
        let new_event = match which {
            Refresh::Event { matched, at_ms, .. } => Some((matched, at_ms)),
            _ => None,
        };
        let signals = self.index.profile_signals(profile_id);
        let mut next_check: Option<i64> = None;
        for &slot in &slots {
            let Some(indexed) = self.index.segment(slot) else { continue };
            if !self.allows(profile, indexed.purpose) {
                outcomes.push((slot, false));
                continue;
            }
            let leaves = &indexed.leaf_matches;
            let view = IndexFacts { live: self, profile, signals, leaves };
            let member = evaluate_membership(&indexed.condition, &view, now_ms);
            let next = match new_event {
                Some((matched, at_ms)) => {
                    next_check_ms(&indexed.condition, &NewEventFacts { leaves, matched, at_ms: [at_ms] }, now_ms)
                }
                None => next_check_ms(&indexed.condition, &view, now_ms),
            };
            if let Some(at) = next {
                next_check = Some(next_check.map_or(at, |earlier| earlier.min(at)));
            }
            outcomes.push((slot, member));
        }
        let mut changed = std::mem::take(&mut self.scratch.changed);
        changed.clear();
        self.index.set_memberships(profile_id, &outcomes, &mut changed);
        for &(slot, entered) in &changed {
            let segment_id = self.index.segment(slot).map(|s| s.id.clone()).unwrap_or_default();
            facts.memberships.push(MembershipFact { profile_id, segment_id, entered, at_ms: now_ms });
        }
        self.scratch.changed = changed;
        if let Some(at) = next_check {
            self.index.schedule(profile_id, at);
        }
        self.scratch.slots = slots;
        self.scratch.outcomes = outcomes;
    }

    // ---- erasure ------------------------------------------------------------------------

    /// Sets the store's secret salt for tombstone hashes (at open, before replay).
    pub fn set_tombstone_salt(&mut self, salt: &str) {
        salt.clone_into(&mut self.tombstone_salt);
    }

    /// The salted hash an erased id is remembered by.
    pub fn tombstone_hash(&self, kind: IdentityKind, value: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.tombstone_salt.as_bytes());
        hasher.update([0, kind.code(), 0]);
        hasher.update(value.as_bytes());
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Remembers a tombstone (at replay).
    pub fn replay_tombstone(&mut self, hash: String, at_ms: i64) {
        let entry = self.tombstones.entry(hash).or_insert(at_ms);
        *entry = (*entry).max(at_ms);
    }

    /// How many ids are tombstoned.
    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    fn is_tombstoned(&self, message: &Message) -> bool {
        let ids = [
            (IdentityKind::UserId, message.user_id.as_deref()),
            (IdentityKind::AnonymousId, message.anonymous_id.as_deref()),
            (IdentityKind::UserId, message.previous_id.as_deref()),
        ];
        ids.into_iter().filter_map(|(kind, value)| Some((kind, value?))).any(|(kind, value)| {
            self.tombstones.get(&self.tombstone_hash(kind, value)).is_some_and(|at| message.timestamp_ms <= *at)
        })
    }

    /// Erases a person: their profile and every profile merged into it leave memory (identities,
    /// traits, consents, history, segment memberships, model scores) and `facts` gets the
    /// erasure that deletes their rows and stores their tombstones. With `keep_counts` their
    /// events first join the anonymous daily counts (anonymization). Returns the erased profile
    /// ids, or `None` when nobody is known by `key`.
    pub fn erase_person(
        &mut self,
        key: &str,
        at_ms: i64,
        keep_counts: bool,
        facts: &mut FactBatch,
    ) -> Option<Vec<ProfileId>> {
        let canonical = self.find_profile(key)?.id;
        let ids = self.member_ids(canonical);
        let mut tombstones = Vec::new();
        for id in &ids {
            let Some(profile) = self.profiles.remove(id) else { continue };
            for (kind, value) in &profile.identities {
                let hash = self.tombstone_hash(*kind, value);
                // Stored ids map to profiles; alias `previousId`s are user ids too.
                match kind {
                    IdentityKind::UserId => {
                        self.user_ids.remove(value);
                    }
                    IdentityKind::AnonymousId => {
                        self.anonymous_ids.remove(value);
                    }
                }
                self.tombstones.insert(hash.clone(), at_ms);
                tombstones.push(hash);
            }
            self.index.forget_profile(*id);
            self.scores.remove(id);
        }
        self.merged_into.retain(|from, into| !ids.contains(from) && !ids.contains(into));
        tombstones.sort_unstable();
        tombstones.dedup();
        facts.erasures.push(ErasureFact { profile_ids: ids.clone(), tombstones, at_ms, keep_counts });
        Some(ids)
    }

    // ---- model scores -------------------------------------------------------------------

    /// A profile's model scores, by name. Empty without `profiling` consent.
    pub fn scores(&self, profile_id: ProfileId) -> impl Iterator<Item = (&str, f64)> + '_ {
        let profile_id = self.canonical(profile_id);
        let allowed = self.profile(profile_id).is_some_and(|p| self.allows(p, ConsentPurpose::Profiling));
        self.scores
            .get(&profile_id)
            .filter(|_| allowed)
            .into_iter()
            .flatten()
            .map(|(symbol, value)| (self.symbols.name(*symbol), *value))
    }

    /// One model score of a profile, if it has it and allows `profiling`.
    pub fn score(&self, profile_id: ProfileId, name: &str) -> Option<f64> {
        let symbol = self.symbols.get(name)?;
        let profile_id = self.canonical(profile_id);
        let profile = self.profile(profile_id)?;
        if !self.allows(profile, ConsentPurpose::Profiling) {
            return None;
        }
        self.scores.get(&profile_id)?.iter().find(|(s, _)| *s == symbol).map(|(_, v)| *v)
    }

    /// Replaces one profile's model scores (an empty list removes them) and re-evaluates the
    /// segments that test scores for it. Ignored for unknown profiles and for profiles that do
    /// not allow `profiling`.
    pub fn set_scores(&mut self, profile_id: ProfileId, scores: &[(&str, f64)], now_ms: i64, facts: &mut FactBatch) {
        let profile_id = self.canonical(profile_id);
        let Some(profile) = self.profiles.get(&profile_id) else { return };
        if scores.is_empty() || !self.allows(profile, ConsentPurpose::Profiling) {
            if self.scores.remove(&profile_id).is_none() {
                return;
            }
        } else {
            let row = self.score_row(scores.iter().copied());
            self.scores.insert(profile_id, row);
        }
        if !self.index.score_segments().is_empty() {
            self.refresh_segments(profile_id, now_ms, Refresh::Scores, facts);
        }
    }

    /// Replaces every profile's model scores at once (a refresh of all predictions): profiles
    /// absent from `rows` lose theirs. Re-evaluates the segments that test scores for every
    /// profile whose scores were or are set.
    pub fn replace_scores(&mut self, rows: Vec<(ProfileId, Vec<(String, f64)>)>, now_ms: i64, facts: &mut FactBatch) {
        let mut touched: Vec<ProfileId> = self.scores.keys().copied().collect();
        self.scores.clear();
        for (profile_id, scores) in rows {
            let profile_id = self.canonical(profile_id);
            let Some(profile) = self.profiles.get(&profile_id) else { continue };
            if scores.is_empty() || !self.allows(profile, ConsentPurpose::Profiling) {
                continue;
            }
            let row = self.score_row(scores.iter().map(|(name, value)| (name.as_str(), *value)));
            self.scores.insert(profile_id, row);
            touched.push(profile_id);
        }
        if self.index.score_segments().is_empty() {
            return;
        }
        touched.sort_unstable();
        touched.dedup();
        for profile_id in touched {
            self.refresh_segments(profile_id, now_ms, Refresh::Scores, facts);
        }
    }

    /// Named scores as stored: names interned, non-finite values left out.
    fn score_row<'a>(&mut self, scores: impl Iterator<Item = (&'a str, f64)>) -> Vec<(Symbol, f64)> {
        scores.filter(|(_, value)| value.is_finite()).map(|(name, value)| (self.symbols.intern(name), value)).collect()
    }

    /// How many profiles hold model scores.
    pub fn scored_profiles(&self) -> usize {
        self.scores.len()
    }

    /// Whether a profile is in a saved segment now (the decision path's lookup).
    pub fn is_member(&self, profile_id: ProfileId, segment_id: &str) -> bool {
        self.index.slot(segment_id).is_some_and(|slot| self.index.is_member(self.canonical(profile_id), slot))
    }

    /// The ids of the saved segments a profile is in now.
    pub fn memberships(&self, profile_id: ProfileId) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .index
            .memberships(self.canonical(profile_id))
            .iter()
            .filter_map(|slot| self.index.segment(*slot).map(|s| s.id.as_str()))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// How many profiles are in a saved segment now.
    pub fn segment_size(&self, segment_id: &str) -> Option<usize> {
        self.index.slot(segment_id).filter(|slot| self.index.segment(*slot).is_some()).map(|slot| self.index.size(slot))
    }

    /// The members of a saved segment now, in profile order.
    pub fn segment_members(&self, segment_id: &str) -> Option<Vec<ProfileId>> {
        self.index
            .slot(segment_id)
            .filter(|slot| self.index.segment(*slot).is_some())
            .map(|slot| self.index.members_of(slot))
    }

    /// The structured reasons behind a profile's membership (or non-membership) in a saved
    /// segment, from the index: what `explain` turns into sentences.
    pub fn segment_reasons(&self, profile_id: ProfileId, segment_id: &str, now_ms: i64) -> Option<Vec<Reason>> {
        let profile = self.profile(profile_id)?;
        let saved = self.segments.get(segment_id)?;
        let view = IndexFacts { live: self, profile, signals: self.index.profile_signals(profile.id), leaves: &[] };
        Some(evaluate(saved.definition.condition(), &view, now_ms).reasons)
    }

    /// Entries waiting in the segment expiry heap.
    pub fn scheduled_segment_checks(&self) -> usize {
        self.index.scheduled()
    }

    // ---- replay of stored facts ---------------------------------------------------------

    /// Replays a saved or deleted segment. A definition that no longer parses (written by a
    /// newer version) is skipped and reported in the returned error.
    pub fn replay_segment(&mut self, fact: &SegmentFact) -> Result<(), String> {
        if fact.deleted {
            self.segments.remove(&fact.segment_id);
            self.readiness.remove(&fact.segment_id);
            self.index.unregister(&fact.segment_id);
            return Ok(());
        }
        let definition = SegmentDefinition::parse_str(&fact.definition_json).map_err(|e| e.to_string())?;
        self.index.register(&fact.segment_id, definition.purpose().consent_purpose(), definition.condition());
        // Ready once the start-up rebuild has read the history ([`LiveState::load_signals`]).
        self.readiness.insert(
            fact.segment_id.clone(),
            Readiness { state: ReadinessState::Backfilling, saved_ms: Some(fact.at_ms), jobs: Vec::new() },
        );
        self.segments.insert(
            fact.segment_id.clone(),
            SavedSegment {
                definition,
                definition_json: fact.definition_json.clone(),
                version: fact.version,
                updated_ms: fact.at_ms,
            },
        );
        Ok(())
    }

    fn ensure_profile(&mut self, id: ProfileId) {
        if !self.merged_into.contains_key(&id) {
            self.profiles.entry(id).or_insert_with(|| Profile::new(id));
        }
        self.next_profile_id = self.next_profile_id.max(id + 1);
    }

    /// Replays an identity link.
    pub fn replay_identity(&mut self, fact: &IdentityFact) {
        self.ensure_profile(fact.profile_id);
        let id = self.canonical(fact.profile_id);
        self.index_identity(fact.kind, &fact.value, id);
    }

    /// Replays a merge.
    pub fn replay_merge(&mut self, fact: &MergeFact) {
        self.ensure_profile(fact.from);
        self.ensure_profile(fact.into);
        self.merge_profiles(fact.from, fact.into);
    }

    /// Replays a trait change.
    pub fn replay_trait(&mut self, fact: &TraitFact) {
        self.ensure_profile(fact.profile_id);
        let id = self.canonical(fact.profile_id);
        let symbol = self.symbols.intern(&fact.key);
        if let Some(profile) = self.profiles.get_mut(&id) {
            profile.set_trait(symbol, &fact.value_json, fact.at_ms);
        }
    }

    /// Replays a consent change.
    pub fn replay_consent(&mut self, fact: &ConsentFact) {
        self.ensure_profile(fact.profile_id);
        let id = self.canonical(fact.profile_id);
        if let Some(profile) = self.profiles.get_mut(&id) {
            profile.consent.record(
                fact.purpose,
                ConsentDecision {
                    granted: fact.granted,
                    at_ms: fact.at_ms,
                    source: fact.source,
                    policy_version: fact.policy_version.clone(),
                },
            );
        }
    }

    /// Replays a stored event from its columns (the raw message is not needed).
    pub fn replay_event(&mut self, event: &StoredEventColumns<'_>) {
        self.dedup.insert(event.message_id, event.received_at_ms);
        self.next_seq = self.next_seq.max(event.seq + 1);
        self.ensure_profile(event.profile_id);
        let id = self.canonical(event.profile_id);
        let name = event.name.map(|n| self.symbols.intern(n));
        if let Some(profile) = self.profiles.get_mut(&id) {
            profile.record_event(TimelineEntry { timestamp_ms: event.timestamp_ms, seq: event.seq }, event.kind, name);
            if let (Some(name), Some(column)) = (event.name, event.product_id) {
                note_product_column(profile, name, event.timestamp_ms, column);
            }
        }
    }

    /// Replays a receipt of a reduced message (for de-duplication only).
    pub fn replay_receipt(&mut self, message_id: &str, received_at_ms: i64) {
        self.dedup.insert(message_id, received_at_ms);
    }

    /// Replays a catalog record.
    pub fn replay_product(&mut self, product: Product) {
        self.catalog.insert(product.id.clone(), product);
    }
}

/// Which segments an update re-evaluates.
#[derive(Debug, Clone, Copy)]
enum Refresh<'a> {
    /// Every segment (consent changed, a merge, a timer).
    All,
    /// These segments (after a save or a backfill).
    Slots(&'a [SegmentSlot]),
    /// Segments testing traits (an identify changed one).
    Traits,
    /// Segments testing model scores (predictions were refreshed).
    Scores,
    /// Segments counting these matches, and those testing the visitor kind on a new visit.
    Event {
        /// Match numbers the event satisfied.
        matched: &'a [u32],
        /// Whether the event started a visit.
        new_visit: bool,
        /// The event's time.
        at_ms: i64,
    },
}

/// Buffers the per-event segment work reuses instead of allocating.
#[derive(Debug, Default)]
struct Scratch {
    matched: Vec<u32>,
    slots: Vec<SegmentSlot>,
    outcomes: Vec<(SegmentSlot, bool)>,
    changed: Vec<(SegmentSlot, bool)>,
}

/// One new event as the evaluator sees it: the leaves it matched hold its time, the others
/// nothing. Its next-check candidates are the ones this event adds; those of earlier events
/// were scheduled when they arrived (or at the last full evaluation), and a due check
/// re-evaluates fully, so this keeps the schedule complete without rescanning a profile's
/// history on every event.
struct NewEventFacts<'a> {
    leaves: &'a [u32],
    matched: &'a [u32],
    at_ms: [i64; 1],
}

impl ScoreSource for NewEventFacts<'_> {
    fn score(&self, _name: &str) -> Option<f64> {
        None
    }
}

impl SegmentFacts for NewEventFacts<'_> {
    fn trait_value(&self, _name: &str) -> Option<serde_json::Value> {
        // Traits did not change: their instants (birthdays) are scheduled already.
        None
    }

    fn matching_events(&self, _event: &EventMatch) -> Vec<i64> {
        Vec::new()
    }

    fn leaf_times(&self, leaf: usize, _event: &EventMatch) -> std::borrow::Cow<'_, [i64]> {
        let hit = self.leaves.get(leaf).is_some_and(|number| self.matched.contains(number));
        std::borrow::Cow::Borrowed(if hit { &self.at_ms } else { &[] })
    }

    fn times_are_sorted(&self) -> bool {
        true
    }

    fn visitor_kind(&self) -> crate::profile::VisitorKind {
        crate::profile::VisitorKind::New
    }

    fn context(&self, _field: ContextField) -> Option<String> {
        None
    }

    fn is_member(&self, _segment: &SegmentId) -> bool {
        false
    }
}

/// The live catalog as the matcher sees it.
struct CatalogPaths<'a>(&'a FxHashMap<String, Product>);

impl CategoryLookup for CatalogPaths<'_> {
    fn category_path(&self, product_id: &str) -> Option<&[String]> {
        self.0.get(product_id).map(|p| p.category_path.as_slice())
    }
}

/// The evaluator's view of one profile, answered from the live state and the index.
struct IndexFacts<'a> {
    live: &'a LiveState,
    profile: &'a Profile,
    /// The profile's signal lists, looked up once per evaluation round.
    signals: &'a crate::segments::index::SignalLists,
    /// The match number of each leaf of the condition being evaluated (empty: look up by
    /// value).
    leaves: &'a [u32],
}

impl IndexFacts<'_> {
    fn times_of(&self, number: u32) -> &[i64] {
        self.signals.times(number)
    }
}

impl ScoreSource for IndexFacts<'_> {
    fn score(&self, name: &str) -> Option<f64> {
        self.live.score(self.profile.id, name)
    }
}

impl SegmentFacts for IndexFacts<'_> {
    fn trait_value(&self, name: &str) -> Option<serde_json::Value> {
        let key = self.live.symbols.get(name)?;
        serde_json::from_str(self.profile.trait_json(key)?).ok()
    }

    fn matching_events(&self, event: &EventMatch) -> Vec<i64> {
        self.matching_times(event).into_owned()
    }

    fn matching_times(&self, event: &EventMatch) -> std::borrow::Cow<'_, [i64]> {
        std::borrow::Cow::Borrowed(self.live.index.match_number(event).map_or(&[], |number| self.times_of(number)))
    }

    fn leaf_times(&self, leaf: usize, event: &EventMatch) -> std::borrow::Cow<'_, [i64]> {
        match self.leaves.get(leaf) {
            Some(number) => std::borrow::Cow::Borrowed(self.times_of(*number)),
            None => self.matching_times(event),
        }
    }

    fn times_are_sorted(&self) -> bool {
        true
    }

    fn visitor_kind(&self) -> crate::profile::VisitorKind {
        self.profile.visitor_kind()
    }

    fn context(&self, _field: ContextField) -> Option<String> {
        // Context is about the current visit: decisions test it, stored memberships cannot.
        None
    }

    fn is_member(&self, segment: &SegmentId) -> bool {
        self.live.is_member(self.profile.id, segment.as_str())
    }
}

/// A saved segment: its current definition and version.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSegment {
    /// The checked definition.
    pub definition: SegmentDefinition,
    /// The JSON it was saved as (what `GET /v1/segments/{id}` returns).
    pub definition_json: String,
    /// Version, from 1.
    pub version: u32,
    /// When this version was saved (Unix ms).
    pub updated_ms: i64,
}

/// The columns of a stored event that rebuilding the live state needs.
#[derive(Debug, Clone, Copy)]
pub struct StoredEventColumns<'a> {
    /// Log position.
    pub seq: u64,
    /// Profile it was filed under.
    pub profile_id: ProfileId,
    /// Segment call.
    pub kind: MessageKind,
    /// Event or page name.
    pub name: Option<&'a str>,
    /// messageId.
    pub message_id: &'a str,
    /// Event time.
    pub timestamp_ms: i64,
    /// Arrival time.
    pub received_at_ms: i64,
    /// `properties.product_id` of a product event.
    pub product_id: Option<&'a str>,
}

/// Events whose `properties.product_id` is kept in a column of its own: "recently viewed" and
/// recommendations read it without decoding the message.
pub const PRODUCT_EVENTS: [&str; 4] = [PRODUCT_VIEWED, "Product Added", "Product Clicked", "Product Removed"];

/// The `product_id` column of an order: its lines' product ids as a JSON array (`["a","b"]`),
/// so rebuilding the live state at start-up knows what was bought without decoding messages.
pub fn order_products_of(properties: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow, default)]
        product_id: Option<&'a serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Order<'a> {
        #[serde(borrow, default)]
        products: Vec<Line<'a>>,
    }
    let order = serde_json::from_str::<Order<'_>>(properties).ok()?;
    let ids: Vec<String> = order
        .products
        .iter()
        .filter_map(|line| line.product_id)
        .filter_map(|raw| match serde_json::from_str::<serde_json::Value>(raw.get()).ok()? {
            serde_json::Value::String(text) if !text.is_empty() && text.len() <= 256 => Some(text),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
        .take(100)
        .collect();
    (!ids.is_empty()).then(|| serde_json::to_string(&ids).unwrap_or_default())
}

/// Records what a stored event's `product_id` column says on the profile's product events.
fn note_product_column(profile: &mut Profile, name: &str, at_ms: i64, column: &str) {
    use crate::profile::ProductAction;
    match name {
        ORDER_COMPLETED => {
            for id in serde_json::from_str::<Vec<String>>(column).unwrap_or_default() {
                profile.note_product_event(at_ms, ProductAction::Purchased, &id);
            }
        }
        "Product Added" => profile.note_product_event(at_ms, ProductAction::Added, column),
        PRODUCT_VIEWED | "Product Clicked" => profile.note_product_event(at_ms, ProductAction::Viewed, column),
        _ => {}
    }
}

/// `properties.product_id` (a string, or a number written as text), reading nothing else.
pub fn product_id_of(properties: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ProductRef<'a> {
        #[serde(borrow, default)]
        product_id: Option<&'a serde_json::value::RawValue>,
    }
    let raw = serde_json::from_str::<ProductRef<'_>>(properties).ok()?.product_id?;
    match serde_json::from_str::<serde_json::Value>(raw.get()).ok()? {
        serde_json::Value::String(text) if !text.is_empty() && text.len() <= 256 => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
