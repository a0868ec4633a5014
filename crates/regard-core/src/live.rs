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
    ConsentFact, EventFact, FactBatch, IdentityFact, MembershipFact, MergeFact, ProfileId, ReceiptFact,
    ReducedCountKey, SegmentFact, TraitFact,
};
use crate::message::{IdentityKind, Message, MessageKind};
use crate::profile::{Profile, TimelineEntry};
use crate::segments::definition::{ContextField, EventMatch};
use crate::segments::index::{SegmentIndex, SegmentSlot};
use crate::segments::{evaluate, next_check_ms, Reason, ScoreSource, SegmentDefinition, SegmentFacts, SegmentId};
use crate::symbols::SymbolTable;
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
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            consent_mode: ConsentMode::OptIn,
            consent_categories: ConsentCategoryMap::default(),
            dedup_window_ms: 7 * DAY_MS,
            dedup_max_ids: 5_000_000,
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
    pending_backfill: Option<PendingBackfill>,
    next_seq: u64,
    next_profile_id: ProfileId,
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
            pending_backfill: None,
            next_seq: 1,
            next_profile_id: 1,
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
        let numbers = message.name.as_deref().map(|n| self.index.matches_for(n).to_vec()).unwrap_or_default();
        let mut matched = Vec::new();
        if let (false, Some(name)) = (numbers.is_empty(), message.name.as_deref()) {
            let properties = message
                .properties
                .as_deref()
                .and_then(|text| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).ok())
                .unwrap_or_default();
            matched = self.index_event(profile_id, name, message.timestamp_ms, &properties, &numbers);
        }
        // Only segments counting a match this event made, or testing the visitor kind when
        // this event opened a new visit, can change.
        if !matched.is_empty() || new_visit {
            self.refresh_segments(
                profile_id,
                message.received_at_ms,
                Refresh::Event { matched: &matched, new_visit },
                facts,
            );
        }
        facts.events.push(EventFact {
            seq,
            profile_id,
            kind: message.kind,
            name: message.name,
            message_id: message.message_id,
            timestamp_ms: message.timestamp_ms,
            received_at_ms: message.received_at_ms,
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
        self.segments.insert(id, SavedSegment { definition, definition_json, version, updated_ms: at_ms });
        self.pending_backfill = Some(PendingBackfill { slot, new_matches });
        version
    }

    /// After [`LiveState::save_segment`]: the segment's slot and the event names whose stored
    /// history must be fed to [`LiveState::index_history_event`] before
    /// [`LiveState::refresh_segment_for_everyone`] computes its members.
    pub fn take_pending_backfill(&mut self) -> Option<(SegmentSlot, NamedMatches)> {
        let pending = self.pending_backfill.take()?;
        let mut by_name: Vec<(String, Vec<u32>)> = Vec::new();
        for number in pending.new_matches {
            let Some(event) = self.index.event_match(number) else { continue };
            match by_name.iter_mut().find(|(name, _)| *name == event.name) {
                Some((_, numbers)) => numbers.push(number),
                None => by_name.push((event.name.clone(), vec![number])),
            }
        }
        Some((pending.slot, by_name))
    }

    /// Deletes a segment; false when there was none.
    pub fn delete_segment(&mut self, id: &str, at_ms: i64, facts: &mut FactBatch) -> bool {
        let Some(removed) = self.segments.remove(id) else { return false };
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
        if event.category.is_none() || event.category_matches(&self.category_path(properties)) {
            return true;
        }
        match properties.get("products") {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(serde_json::Value::as_object)
                .any(|item| event.category_matches(&self.category_path(item))),
            _ => false,
        }
    }

    /// Every category path an event is about: its product's, and each item's of a `products`
    /// array.
    fn category_paths(&self, properties: &serde_json::Map<String, serde_json::Value>) -> Vec<Vec<String>> {
        let mut paths = vec![self.category_path(properties)];
        if let Some(serde_json::Value::Array(items)) = properties.get("products") {
            paths.extend(items.iter().filter_map(serde_json::Value::as_object).map(|item| self.category_path(item)));
        }
        paths
    }

    /// The category path of an event's product: from the catalog by `product_id`, else from its
    /// `category` property.
    pub fn category_path(&self, properties: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
        if let Some(product) =
            properties.get("product_id").and_then(serde_json::Value::as_str).and_then(|id| self.product(id))
        {
            return product.category_path.clone();
        }
        properties
            .get("category")
            .and_then(serde_json::Value::as_str)
            .map(Product::parse_category_path)
            .unwrap_or_default()
    }

    fn index_event(
        &mut self,
        profile_id: ProfileId,
        name: &str,
        timestamp_ms: i64,
        properties: &serde_json::Map<String, serde_json::Value>,
        numbers: &[u32],
    ) -> Vec<u32> {
        // The event's category paths (its product's, and its items') are worked out once, and
        // only if some match asks for a category.
        let mut paths: Option<Vec<Vec<String>>> = None;
        let mut matched: Vec<u32> = Vec::new();
        for &number in numbers {
            let Some(event) = self.index.event_match(number) else { continue };
            if !event.matches_name_and_filters(name, properties) {
                continue;
            }
            if event.category.is_some() {
                let paths = paths.get_or_insert_with(|| self.category_paths(properties));
                if !paths.iter().any(|path| event.category_matches(path)) {
                    continue;
                }
            }
            matched.push(number);
        }
        for &number in &matched {
            self.index.add_signal(profile_id, number, timestamp_ms);
        }
        matched
    }

    /// Feeds one stored event to the index during a backfill, for the given match numbers
    /// only (those new to the index). The profile id may be one merged away since.
    pub fn index_history_event(
        &mut self,
        profile_id: ProfileId,
        name: &str,
        timestamp_ms: i64,
        properties: &serde_json::Map<String, serde_json::Value>,
        numbers: &[u32],
    ) {
        let profile_id = self.canonical(profile_id);
        self.index_event(profile_id, name, timestamp_ms, properties, numbers);
    }

    /// The event names every saved segment counts, with their match numbers: what a start-up
    /// rebuild of the index must read from the event log.
    pub fn indexed_event_names(&self) -> NamedMatches {
        let mut out: Vec<(String, Vec<u32>)> = Vec::new();
        for segment in self.segments.values() {
            let Some(slot) = self.index.slot(segment.definition.id().as_str()) else { continue };
            let Some(indexed) = self.index.segment(slot) else { continue };
            for number in &indexed.matches {
                let Some(event) = self.index.event_match(*number) else { continue };
                match out.iter_mut().find(|(name, _)| *name == event.name) {
                    Some((_, numbers)) if !numbers.contains(number) => numbers.push(*number),
                    Some(_) => {}
                    None => out.push((event.name.clone(), vec![*number])),
                }
            }
        }
        out
    }

    /// Computes one segment's membership for every profile (after a backfill, or at start-up
    /// for all segments with `facts` thrown away).
    pub fn refresh_segment_for_everyone(&mut self, slot: SegmentSlot, now_ms: i64, facts: &mut FactBatch) {
        let ids: Vec<ProfileId> = self.profiles.keys().copied().collect();
        for id in ids {
            self.refresh_segments(id, now_ms, Refresh::Only(slot), facts);
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
        let slots: Vec<SegmentSlot> = match which {
            Refresh::All => self.index.segments().map(|(slot, _)| slot).collect(),
            Refresh::Only(only) => vec![only],
            Refresh::Traits => self.index.trait_segments().to_vec(),
            Refresh::Event { matched, new_visit } => self.index.affected_by_event(matched, new_visit),
        };
        let mut outcomes: Vec<(SegmentSlot, String, bool, Option<i64>)> = Vec::new();
        for slot in slots {
            let Some(indexed) = self.index.segment(slot) else { continue };
            let Some(saved) = self.segments.get(&indexed.id) else { continue };
            if !self.allows(profile, indexed.purpose) {
                outcomes.push((slot, indexed.id.clone(), false, None));
                continue;
            }
            let facts_view = IndexFacts { live: self, profile };
            let condition = saved.definition.condition();
            let member = evaluate(condition, &facts_view, now_ms).member;
            let next = next_check_ms(condition, &facts_view, now_ms);
            outcomes.push((slot, indexed.id.clone(), member, next));
        }
        let mut next_check: Option<i64> = None;
        for (slot, segment_id, member, next) in outcomes {
            if self.index.set_member(profile_id, slot, member) {
                facts.memberships.push(MembershipFact { profile_id, segment_id, entered: member, at_ms: now_ms });
            }
            next_check = match (next_check, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let Some(at) = next_check {
            self.index.schedule(profile_id, at);
        }
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
        Some(evaluate(saved.definition.condition(), &IndexFacts { live: self, profile }, now_ms).reasons)
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
            self.index.unregister(&fact.segment_id);
            return Ok(());
        }
        let definition = SegmentDefinition::parse_str(&fact.definition_json).map_err(|e| e.to_string())?;
        self.index.register(&fact.segment_id, definition.purpose().consent_purpose(), definition.condition());
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

/// Event names with the index's match numbers for each: what a backfill reads.
pub type NamedMatches = Vec<(String, Vec<u32>)>;

/// Which segments an update re-evaluates.
#[derive(Debug, Clone, Copy)]
enum Refresh<'a> {
    /// Every segment (consent changed, a merge, a timer).
    All,
    /// One segment (after a backfill).
    Only(SegmentSlot),
    /// Segments testing traits (an identify changed one).
    Traits,
    /// Segments counting these matches, and those testing the visitor kind on a new visit.
    Event {
        /// Match numbers the event satisfied.
        matched: &'a [u32],
        /// Whether the event started a visit.
        new_visit: bool,
    },
}

/// A saved segment whose history has not been read into the index yet.
#[derive(Debug, Clone)]
struct PendingBackfill {
    slot: SegmentSlot,
    new_matches: Vec<u32>,
}

/// The evaluator's view of one profile, answered from the live state and the index.
struct IndexFacts<'a> {
    live: &'a LiveState,
    profile: &'a Profile,
}

impl ScoreSource for IndexFacts<'_> {
    fn score(&self, _name: &str) -> Option<f64> {
        // No model serves scores yet; a score condition holds for nobody.
        None
    }
}

impl SegmentFacts for IndexFacts<'_> {
    fn trait_value(&self, name: &str) -> Option<serde_json::Value> {
        let key = self.live.symbols.get(name)?;
        serde_json::from_str(self.profile.trait_json(key)?).ok()
    }

    fn matching_events(&self, event: &EventMatch) -> Vec<i64> {
        match self.live.index.match_number(event) {
            Some(number) => self.live.index.signals(self.profile.id, number).to_vec(),
            None => Vec::new(),
        }
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
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
