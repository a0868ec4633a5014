//! The crate's one error type.

use crate::special::NumericalError;

/// Everything that can go wrong in `regard-models`, split into the caller's mistakes (bad rows,
/// bad dates, parameters out of range, too little data) and internal faults (a numerical routine
/// that could not vouch for its answer). A server maps the first kind to 4xx and the second to 5xx;
/// [`ModelError::is_user_error`] tells them apart.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A CSV row could not be parsed; `line` is the 1-based line in the file.
    #[error("line {line}: {message}")]
    InvalidRow {
        /// The 1-based line number of the offending row.
        line: u64,
        /// What is wrong with it, naming the column.
        message: String,
    },
    /// The CSV header lacks a column the reader needs.
    #[error("the CSV header has no `{column}` column (found: {found})")]
    MissingColumn {
        /// The required column.
        column: &'static str,
        /// The columns that were present, comma-separated.
        found: String,
    },
    /// An argument is out of its domain (a negative age, a recency beyond the age, a date order).
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The argument or field at fault.
        field: &'static str,
        /// Why it is invalid.
        message: String,
    },
    /// Model parameters are not positive and finite, or leave a quantity undefined.
    #[error("invalid model parameters: {0}")]
    InvalidParameters(String),
    /// There is not enough data to fit a model (no customers, no repeat buyers).
    #[error("not enough data: {0}")]
    InsufficientData(String),
    /// A numerical routine failed to converge or lost its precision: a bug or an unforeseen
    /// corner of the parameter space, never the caller's fault.
    #[error("internal numerical failure in {context}: {message}")]
    Numerical {
        /// The quantity being computed.
        context: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl ModelError {
    /// True when the error is the caller's mistake (bad input), false for an internal fault.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ModelError::Numerical { .. })
    }

    /// Wraps an internal numerical failure with the quantity that was being computed.
    pub(crate) fn numerical(context: &'static str, error: NumericalError) -> Self {
        ModelError::Numerical { context, message: error.0 }
    }

    /// Shorthand for [`ModelError::InvalidInput`].
    pub(crate) fn input(field: &'static str, message: impl Into<String>) -> Self {
        ModelError::InvalidInput { field, message: message.into() }
    }
}
