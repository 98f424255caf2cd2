//! All persistent state of `dozen server`, behind one interface: apps,
//! config vars, releases, formation and process sizes, builds, slug records, domains, log
//! drains, API tokens, dashboard sessions, and add-ons with their attachments, backups and
//! backup schedules.
//!
//! The same code runs on an embedded SQLite file (the default,
//! `<DOZEN_DATA_DIR>/dozen.db`) and on PostgreSQL (when `DATABASE_URL`
//! names one), through sqlx's `Any` driver with `$1` placeholders and plain
//! column types (TEXT, BIGINT; JSON and timestamps as TEXT). The test suite
//! runs unchanged against both.
//!
//! **For:** the server's state, with every change in one transaction so a
//! `kill -9` at any moment leaves either the old state or the new one;
//! numbering releases per app without gaps or duplicates under concurrent
//! writers; storing tokens as hashes; schema migrations as an explicit
//! admin step ([`Store::migrate`], run by `dozen migrate`).
//!
//! **Not for:** slug archives or build caches (files under the data
//! directory; the store keeps their records), live process state (the
//! supervisor's), logs (the in-memory buffer), HTTP concerns (the API maps
//! [`StoreError`] to statuses with [`StoreError::http_status`]).
//!
//! # Main types
//!
//! - [`Store`]: the handle (a connection pool; clone it freely), [`Backend`].
//! - Records: [`App`], [`Release`] + [`ReleaseStatus`] + [`NewRelease`],
//!   [`Build`] + [`BuildStatus`], [`SlugRecord`], [`TokenInfo`] + [`Scope`].
//! - [`StoreError`]: not found, conflict, invalid, not migrated, database.
//! - [`actor`]: who a caller acts for ([`acting_as`]); every release records it.
//!
//! Config values are secrets: no error message and no `Debug` output of this
//! crate contains one (the `Debug` of [`Release`] lists config keys only).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), dozen_store::StoreError> {
//! use dozen_store::{NewRelease, Store};
//!
//! let store = Store::connect(std::env::var("DATABASE_URL").ok().as_deref(), ".dozen".as_ref()).await?;
//! store.migrate().await?; // `dozen migrate`; the server itself calls ensure_migrated()
//! store.create_app("shop").await?;
//! let v1 = store
//!     .set_config("shop", &[("GREETING".into(), "hello".into())], &[])
//!     .await?;
//! assert_eq!(v1.version, 1);
//! store.activate_release("shop", v1.version).await?;
//! let v2 = store
//!     .create_release("shop", NewRelease { description: "Deploy".into(), ..Default::default() })
//!     .await?;
//! assert_eq!(v2.config_keys(), ["GREETING"]);
//! # Ok(()) }
//! ```

pub mod actor;
mod addon_backups;
mod addons;
mod apps;
mod backup;
mod builds;
mod drains;
mod error;
mod ident;
mod model;
mod releases;
mod schema;
mod sessions;
mod sizes;
mod store;
mod tokens;
mod validate;

pub use actor::{SERVER_ACTOR, acting_as};
pub use addon_backups::{AddonBackup, BackupSchedule};
pub use addons::{Addon, Attachment, MAX_ADDON_NAME_BYTES, NewAddon};
pub use backup::{Snapshot, known_schema_version, restore_snapshot};
pub use builds::INTERRUPTED;
pub use drains::{DrainRecord, MAX_DRAIN_URL, MAX_DRAINS_PER_APP};
pub use error::{MIGRATE_HINT, StoreError};
pub use ident::TOKEN_PREFIX;
pub use model::{
    App, Build, BuildStatus, NewRelease, Release, ReleaseStatus, Scope, SlugRecord, TokenInfo,
};
pub use sessions::{MAX_SESSIONS, SessionRecord};
pub use store::{
    Backend, POSTGRES_MAX_CONNECTIONS, SQLITE_BUSY_TIMEOUT, SQLITE_FILE_NAME,
    SQLITE_MAX_CONNECTIONS, Store,
};
pub use tokens::MIN_TOKEN_BYTES;
pub use validate::{MAX_CONFIG_KEY_BYTES, MAX_CONFIG_VALUE_BYTES, MAX_QUANTITY};
