//! The crate's one error type.

/// Everything that can go wrong in `regard-recs`, split into the caller's mistakes (a bad row, a
/// missing column, a configuration out of range, an unknown item) and faults of the environment
/// (an unreadable input). A server maps the first kind to 4xx and the second to 5xx;
/// [`RecsError::is_user_error`] tells them apart.
#[derive(Debug, thiserror::Error)]
pub enum RecsError {
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
    /// A configuration value is out of its range.
    #[error("invalid {field}: {message}")]
    InvalidConfig {
        /// The setting at fault.
        field: &'static str,
        /// Why it is invalid.
        message: String,
    },
    /// An item id the model does not know.
    #[error("unknown item `{0}`")]
    UnknownItem(String),
    /// An item id that [`crate::RecsModel::with_new_item`] was asked to add but the model already has.
    #[error("item `{0}` is already in the model")]
    DuplicateItem(String),
    /// There is too little data for what was asked (no interactions, no user to evaluate).
    #[error("not enough data: {0}")]
    InsufficientData(String),
    /// The input could not be read (not the caller's mistake).
    #[error("reading the input: {0}")]
    Io(#[from] std::io::Error),
}

impl RecsError {
    /// True when the error is the caller's mistake (bad input or configuration).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, RecsError::Io(_))
    }

    /// Shorthand for [`RecsError::InvalidConfig`].
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        RecsError::InvalidConfig { field, message: message.into() }
    }
}
