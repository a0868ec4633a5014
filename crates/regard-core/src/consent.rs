//! Consent per purpose: what the person allowed, when, where they said it, and under which
//! policy; and what silence means under the operator's chosen reading of the law.

use serde::{Deserialize, Serialize};

/// A purpose data may be used for. Every use of personal data in Regard names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentPurpose {
    /// Keeping the raw event history at all.
    Analytics,
    /// Tailoring content, recommendations and decisions.
    Personalization,
    /// Sending email.
    Email,
    /// Appearing in exported ad audiences.
    Advertising,
    /// Predictive models (churn, lifetime value, propensities).
    Profiling,
}

impl ConsentPurpose {
    /// Every purpose, in the order of [`ConsentPurpose::index`].
    pub const ALL: [ConsentPurpose; 5] = [
        ConsentPurpose::Analytics,
        ConsentPurpose::Personalization,
        ConsentPurpose::Email,
        ConsentPurpose::Advertising,
        ConsentPurpose::Profiling,
    ];

    /// A dense index for per-purpose arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The purpose's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentPurpose::Analytics => "analytics",
            ConsentPurpose::Personalization => "personalization",
            ConsentPurpose::Email => "email",
            ConsentPurpose::Advertising => "advertising",
            ConsentPurpose::Profiling => "profiling",
        }
    }

    /// Parses a wire name (case-insensitive).
    pub fn parse(text: &str) -> Option<ConsentPurpose> {
        ConsentPurpose::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// What an absent consent means: the operator's reading of the law that applies to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentMode {
    /// GDPR: every purpose is denied until granted.
    #[default]
    OptIn,
    /// CCPA: every purpose is granted until denied.
    OptOut,
}

impl ConsentMode {
    /// Parses `opt-in` / `opt-out`.
    pub fn parse(text: &str) -> Option<ConsentMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "opt-in" | "optin" | "opt_in" => Some(ConsentMode::OptIn),
            "opt-out" | "optout" | "opt_out" => Some(ConsentMode::OptOut),
            _ => None,
        }
    }

    /// The mode's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentMode::OptIn => "opt-in",
            ConsentMode::OptOut => "opt-out",
        }
    }
}

/// Where a consent decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// `context.consent.categoryPreferences` of a Segment message (a consent banner).
    SegmentContext,
    /// A `consent` object in identify traits.
    IdentifyTraits,
    /// `POST /v1/consent` from the operator's backend.
    Api,
}

impl ConsentSource {
    /// The source's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::SegmentContext => "segment_context",
            ConsentSource::IdentifyTraits => "identify_traits",
            ConsentSource::Api => "api",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<ConsentSource> {
        [ConsentSource::SegmentContext, ConsentSource::IdentifyTraits, ConsentSource::Api]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One recorded decision about one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentDecision {
    /// Granted or denied.
    pub granted: bool,
    /// When the person decided (Unix ms, the message's corrected time).
    pub at_ms: i64,
    /// Where the decision came from.
    pub source: ConsentSource,
    /// The version of the privacy policy the person saw, when the caller said.
    pub policy_version: Option<String>,
}

/// A person's consent state: the latest decision per purpose, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentState {
    decisions: [Option<ConsentDecision>; 5],
}

impl ConsentState {
    /// The latest decision for `purpose`, if the person ever made one.
    pub fn decision(&self, purpose: ConsentPurpose) -> Option<&ConsentDecision> {
        self.decisions[purpose.index()].as_ref()
    }

    /// Whether `purpose` is allowed now, reading silence by `mode`.
    pub fn allows(&self, purpose: ConsentPurpose, mode: ConsentMode) -> bool {
        match &self.decisions[purpose.index()] {
            Some(decision) => decision.granted,
            None => mode == ConsentMode::OptOut,
        }
    }

    /// Records `decision` when it is news: a first decision, a change of mind, or a new policy
    /// version. An older decision never overrides a newer one (replayed offline batches).
    /// Returns whether the state changed, so that only changes become facts.
    pub fn record(&mut self, purpose: ConsentPurpose, decision: ConsentDecision) -> bool {
        let slot = &mut self.decisions[purpose.index()];
        match slot {
            Some(current) if decision.at_ms < current.at_ms => false,
            Some(current)
                if current.granted == decision.granted
                    && (decision.policy_version.is_none() || decision.policy_version == current.policy_version) =>
            {
                false
            }
            _ => {
                *slot = Some(decision);
                true
            }
        }
    }

    /// Merges another person's state into this one (profile merge), by the same rule as
    /// [`ConsentState::record`], so that a merge and a replay of the facts agree.
    pub fn merge_from(&mut self, other: &ConsentState) {
        for purpose in ConsentPurpose::ALL {
            if let Some(theirs) = other.decision(purpose) {
                self.record(purpose, theirs.clone());
            }
        }
    }
}

/// How a consent manager's category names map to Regard's purposes.
///
/// Consent tools name categories their own way ("Analytics", "Marketing", "C0004"...); the
/// operator can replace this table. Names match case-insensitively; one category may map to
/// several purposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentCategoryMap {
    /// `(category name, purposes)` pairs.
    pub entries: Vec<(String, Vec<ConsentPurpose>)>,
}

impl Default for ConsentCategoryMap {
    /// Segment's consent management and the common OneTrust-style names.
    fn default() -> Self {
        use ConsentPurpose::*;
        let pairs: [(&str, &[ConsentPurpose]); 13] = [
            ("analytics", &[Analytics]),
            ("performance", &[Analytics]),
            ("statistics", &[Analytics]),
            ("personalization", &[Personalization]),
            ("personalisation", &[Personalization]),
            ("functional", &[Personalization]),
            ("email", &[Email]),
            ("email marketing", &[Email]),
            ("marketing", &[Email, Advertising]),
            ("advertising", &[Advertising]),
            ("targeting", &[Advertising]),
            ("profiling", &[Profiling]),
            ("predictive", &[Profiling]),
        ];
        ConsentCategoryMap {
            entries: pairs.iter().map(|(name, purposes)| ((*name).to_owned(), purposes.to_vec())).collect(),
        }
    }
}

impl ConsentCategoryMap {
    /// The purposes a category stands for (empty when unknown: an unknown category is ignored,
    /// never guessed).
    pub fn purposes(&self, category: &str) -> &[ConsentPurpose] {
        let category = category.trim();
        self.entries
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(category))
            .map(|(_, purposes)| purposes.as_slice())
            .unwrap_or(&[])
    }

    /// Maps a consent manager's preferences to per-purpose decisions. When two categories map
    /// to one purpose and disagree, denial wins: consent must be unambiguous.
    pub fn map_preferences(&self, preferences: &[(String, bool)]) -> Vec<(ConsentPurpose, bool)> {
        let mut out: Vec<(ConsentPurpose, bool)> = Vec::new();
        for (category, granted) in preferences {
            for &purpose in self.purposes(category) {
                match out.iter_mut().find(|(p, _)| *p == purpose) {
                    Some(entry) => entry.1 &= *granted,
                    None => out.push((purpose, *granted)),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(granted: bool, at_ms: i64) -> ConsentDecision {
        ConsentDecision { granted, at_ms, source: ConsentSource::Api, policy_version: None }
    }

    #[test]
    fn silence_is_read_by_the_operators_mode() {
        let state = ConsentState::default();
        assert!(!state.allows(ConsentPurpose::Email, ConsentMode::OptIn));
        assert!(state.allows(ConsentPurpose::Email, ConsentMode::OptOut));
    }

    #[test]
    fn an_older_decision_never_overrides_a_newer_one() {
        let mut state = ConsentState::default();
        assert!(state.record(ConsentPurpose::Email, decision(false, 20)));
        assert!(!state.record(ConsentPurpose::Email, decision(true, 10)));
        assert!(!state.allows(ConsentPurpose::Email, ConsentMode::OptOut));
        assert!(state.record(ConsentPurpose::Email, decision(true, 30)));
        assert!(state.allows(ConsentPurpose::Email, ConsentMode::OptIn));
    }

    #[test]
    fn repeating_the_same_decision_is_not_news() {
        let mut state = ConsentState::default();
        assert!(state.record(ConsentPurpose::Analytics, decision(true, 1)));
        assert!(!state.record(ConsentPurpose::Analytics, decision(true, 2)));
        let mut versioned = decision(true, 3);
        versioned.policy_version = Some("2026-01".into());
        assert!(state.record(ConsentPurpose::Analytics, versioned));
    }

    #[test]
    fn categories_map_case_insensitively_and_denial_wins() {
        let map = ConsentCategoryMap::default();
        let mapped =
            map.map_preferences(&[("Marketing".into(), true), ("Advertising".into(), false), ("Unknown".into(), true)]);
        assert_eq!(mapped, vec![(ConsentPurpose::Email, true), (ConsentPurpose::Advertising, false)]);
    }

    #[test]
    fn merging_keeps_the_newer_decision() {
        let mut ours = ConsentState::default();
        ours.record(ConsentPurpose::Email, decision(true, 10));
        let mut theirs = ConsentState::default();
        theirs.record(ConsentPurpose::Email, decision(false, 20));
        theirs.record(ConsentPurpose::Analytics, decision(true, 5));
        ours.merge_from(&theirs);
        assert!(!ours.allows(ConsentPurpose::Email, ConsentMode::OptOut));
        assert!(ours.allows(ConsentPurpose::Analytics, ConsentMode::OptIn));
    }
}
