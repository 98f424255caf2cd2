//! [`StoreError`]: everything that can go wrong in the store, shaped so the
//! API layer can map each variant to an HTTP status without parsing text.

/// What `dozen migrate` prints as the remedy for an unmigrated store.
pub const MIGRATE_HINT: &str = "run `dozen migrate`";

/// An error from the store.
///
/// Messages name keys, app names, versions and ids, never a config value:
/// values are secrets and an error may end up in a log or an HTTP body.
///
/// | variant | HTTP status the API should answer |
/// |---|---|
/// | [`NotFound`](StoreError::NotFound) | 404 |
/// | [`Conflict`](StoreError::Conflict) | 409 |
/// | [`Invalid`](StoreError::Invalid) | 422 |
/// | [`NotMigrated`](StoreError::NotMigrated) | 503 (the server refuses to start on it) |
/// | [`NotMigrated`](StoreError::NotMigrated) above, [`SchemaTooNew`](StoreError::SchemaTooNew) | 503 |
/// | [`Io`](StoreError::Io), [`Random`](StoreError::Random), [`Database`](StoreError::Database), [`Corrupt`](StoreError::Corrupt) | 500 |
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{what} '{name}' not found")]
    NotFound {
        /// What kind of thing: "app", "release", "build", "token", "slug", "domain".
        what: &'static str,
        /// Its name, id or version as the caller gave it.
        name: String,
    },
    /// The change contradicts the current state (the name is taken, the
    /// release already finished, ...).
    #[error("{what} '{name}' {reason}")]
    Conflict {
        /// What kind of thing the conflict is about.
        what: &'static str,
        /// Its name, id or version.
        name: String,
        /// Why, as a phrase that follows the name: "already exists".
        reason: String,
    },
    /// The input was refused before anything was written.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Which input was wrong ("app name", "config key", "quantity").
        field: &'static str,
        /// What was wrong with it and, where it helps, what is allowed.
        message: String,
    },
    /// The database schema is older than this program: some migrations have
    /// not run yet.
    #[error("the store is not migrated (pending migrations: {pending:?}); {hint}")]
    NotMigrated {
        /// Versions of the migrations still to apply, oldest first.
        pending: Vec<i64>,
        /// What to do about it.
        hint: &'static str,
    },
    /// The database schema is newer than this program knows: a newer dozen
    /// migrated it. Running an older dozen on it could corrupt it.
    #[error(
        "the store has schema version {found}, newer than the {known} this dozen knows; upgrade dozen"
    )]
    SchemaTooNew {
        /// Highest migration version recorded in the database.
        found: i64,
        /// Highest migration version this build knows.
        known: i64,
    },
    /// The operating system's random number generator failed (ids, tokens).
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// Creating the data directory failed.
    #[error("cannot create the data directory {path}: {source}")]
    Io {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database failed or could not be reached. The message is the
    /// driver's, which never includes bound values (all values are bound).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A PostgreSQL client tool (`pg_dump`, `pg_restore`) failed; the message is its own.
    #[error("{tool}: {message}")]
    Tool {
        /// The tool.
        tool: &'static str,
        /// What it said.
        message: String,
    },
    /// A stored row could not be read back (a JSON column that does not
    /// parse, an unknown status). Means someone edited the database by hand.
    #[error("corrupt {what} in the store: {message}")]
    Corrupt {
        /// Which column or record.
        what: &'static str,
        /// The decoder's message (it never quotes the content).
        message: String,
    },
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            name: name.into(),
        }
    }

    pub(crate) fn conflict(
        what: &'static str,
        name: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        StoreError::Conflict {
            what,
            name: name.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The HTTP status the API should answer for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            StoreError::NotFound { .. } => 404,
            StoreError::Conflict { .. } => 409,
            StoreError::Invalid { .. } => 422,
            StoreError::NotMigrated { .. } | StoreError::SchemaTooNew { .. } => 503,
            StoreError::Io { .. }
            | StoreError::Random(_)
            | StoreError::Database(_)
            | StoreError::Tool { .. }
            | StoreError::Corrupt { .. } => 500,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

/// True when the database refused a row because a unique key already had it
/// (a race between two writers that both checked first).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}
