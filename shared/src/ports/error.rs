//! The one error enum of the port layer.

/// What a backend call can fail with, in terms the use cases act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's condition did not hold (item exists, version moved on).
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled; `index` is the first operation whose condition failed.
    #[error("transaction cancelled: condition of operation {index} failed")]
    TransactionConflict { index: usize },
    /// A cursor did not come from this store or was altered.
    #[error("invalid cursor")]
    InvalidCursor,
    /// Input the backend cannot take (too many operations, delay over 12 h, …).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The backend could not be reached or failed; worth retrying.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded: a fault of ours, not the caller's.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn unavailable(e: impl std::fmt::Display) -> Self {
        StoreError::Unavailable(e.to_string())
    }

    pub fn corrupt(e: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(e.to_string())
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
