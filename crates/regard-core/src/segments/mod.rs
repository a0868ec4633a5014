//! Behavioral segments: the definition an operator saves, the policy check that refuses
//! definitions which infer sensitive attributes from behavior, and the pure evaluator the
//! real-time engine runs over its indexes.
//!
//! A definition is parsed once ([`definition::SegmentDefinition::parse_str`]), then judged by
//! [`policy::check`]; [`check_definition`] does both, which is what saving a segment must call.
//! Evaluation ([`evaluate::evaluate`]) never touches storage: the caller answers questions about
//! one person through [`evaluate::SegmentFacts`], and time is passed in as Unix ms.

pub mod backfill;
pub mod builtin;
pub mod definition;
pub mod evaluate;
pub mod index;
pub mod matcher;
pub mod policy;

pub use definition::{Condition, DefinitionError, SegmentDefinition, SegmentId, SegmentPurpose};
pub use evaluate::{
    evaluate, evaluate_membership, explain, next_change_ms, next_check_ms, Evaluation, Reason, ScoreSource,
    SegmentFacts,
};
pub use policy::{PolicyConfig, PolicyRule, PolicyViolation, SensitiveCategory};

/// Why a segment could not be saved: it could not be read, or it breaks the privacy policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SaveError {
    /// The JSON is malformed, incomplete or out of range.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// The definition reads, but the policy check refused it; every violation is listed.
    #[error("the segment breaks the privacy policy: {}", policy::describe(.0))]
    Policy(Vec<PolicyViolation>),
}

/// Parses a definition and runs the policy check: the one call saving a segment makes.
pub fn check_definition(json: &str, config: &PolicyConfig) -> Result<SegmentDefinition, SaveError> {
    let definition = SegmentDefinition::parse_str(json)?;
    let violations = policy::check(&definition, config);
    if violations.is_empty() {
        Ok(definition)
    } else {
        Err(SaveError::Policy(violations))
    }
}
