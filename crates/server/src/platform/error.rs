//! [`PlatformError`]: why an operation of the platform service did not happen, in words a user
//! can act on. The HTTP layer maps each variant to a status; nothing here knows HTTP.

use dozen_store::StoreError;

/// Why a platform operation failed.
///
/// Messages name apps, keys, versions and process types, never a config value. An
/// [`Internal`](PlatformError::Internal) error carries its cause apart, for the server's log
/// only: [`PlatformError::report`] writes it there once, where the error leaves the server.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The app, release, build or domain does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts the current state (the name is taken, ...).
    #[error("{0}")]
    Conflict(String),
    /// The request was understood but is wrong, or the operation failed for a reason in the
    /// app (its build, its release phase, a web process that never became healthy).
    #[error("{0}")]
    Invalid(String),
    /// The upload is larger than the server accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The server is shutting down.
    #[error("the server is shutting down; try again shortly")]
    ShuttingDown,
    /// Something failed on the server itself (a file, the store, a task). `what` is safe to
    /// show; `cause` goes to the server's log only.
    #[error("{what} failed on the server (its log has the cause); try again, or ask its operator")]
    Internal {
        /// What the server was doing, e.g. "extracting the slug of v3".
        what: String,
        /// The underlying error, for the log.
        cause: String,
    },
}

impl PlatformError {
    /// An error of the server itself while doing `what`.
    pub fn internal(what: impl Into<String>, cause: impl std::fmt::Display) -> PlatformError {
        PlatformError::Internal {
            what: what.into(),
            cause: cause.to_string(),
        }
    }

    /// The message for the client. An internal error's cause is written to the server's log
    /// (stderr) here, so call this once, where the error leaves the server.
    pub fn report(&self) -> String {
        if let PlatformError::Internal { what, cause } = self {
            eprintln!("dozen server: error: {what}: {cause}");
        }
        self.to_string()
    }
}

impl From<StoreError> for PlatformError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => PlatformError::NotFound(e.to_string()),
            StoreError::Conflict { .. } => PlatformError::Conflict(e.to_string()),
            StoreError::Invalid { .. } => PlatformError::Invalid(e.to_string()),
            other => PlatformError::internal("the store", other),
        }
    }
}
