//! [`Store`]: the connection pool, the backend it talks to, migrations, and
//! the transaction helpers every write goes through.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor, Row, Transaction};

use crate::error::MIGRATE_HINT;
use crate::schema::{self, CREATE_MIGRATIONS_TABLE, MIGRATIONS};
use crate::{StoreError, ident};

/// Name of the SQLite file inside the data directory.
pub const SQLITE_FILE_NAME: &str = "dozen.db";

/// Connections the pool keeps at most for SQLite. Readers run in parallel
/// (WAL); writers take turns on the file lock.
pub const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// Connections the pool keeps at most for PostgreSQL.
pub const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long a SQLite writer waits for another writer's lock before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Key of the PostgreSQL advisory lock that serialises concurrent `migrate` runs.
const MIGRATION_LOCK_KEY: i64 = 0x0064_6f7a_656e; // "dozen" in ASCII

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server named by `DATABASE_URL`.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// All persistent state of the server. Cheap to clone (it is a pool handle).
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
}

impl fmt::Debug for Store {
    // The URL may carry a password: show the backend only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("connections", &self.pool.size())
            .finish()
    }
}

impl Store {
    /// Open the store.
    ///
    /// `url` `None` (or empty) opens (creating it and `data_dir` when missing) the SQLite
    /// file `<data_dir>/dozen.db`. `Some` takes a `postgres://`,
    /// `postgresql://` or `sqlite:` URL as given (for SQLite add `?mode=rwc`
    /// to create the file). Every SQLite connection runs in WAL mode with
    /// foreign keys on and a busy timeout of [`SQLITE_BUSY_TIMEOUT`].
    ///
    /// This does not migrate: call [`Store::ensure_migrated`] before serving.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        // `DATABASE_URL=` (set but empty) means the default, as if unset.
        let url = url.filter(|u| !u.trim().is_empty());
        let (backend, options) = match url {
            None => {
                std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
                    path: data_dir.to_path_buf(),
                    source,
                })?;
                // Absolute, so the path survives the round trip through a
                // `sqlite://` URL (a relative one would parse as a host).
                let data_dir = std::path::absolute(data_dir).map_err(|source| StoreError::Io {
                    path: data_dir.to_path_buf(),
                    source,
                })?;
                let file = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(data_dir.join(SQLITE_FILE_NAME))
                    .create_if_missing(true);
                let options = AnyConnectOptions::from_url(&file.to_url_lossy())
                    .map_err(|e| StoreError::invalid("data directory", e.to_string()))?;
                (Backend::Sqlite, options)
            }
            Some(url) => {
                let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://")
                {
                    Backend::Postgres
                } else if url.starts_with("sqlite:") {
                    Backend::Sqlite
                } else {
                    // Never echo the URL: it may hold a password.
                    return Err(StoreError::invalid(
                        "DATABASE_URL",
                        "expected a URL starting with postgres://, postgresql:// or sqlite:",
                    ));
                };
                let options = AnyConnectOptions::from_str(url)
                    .map_err(|e| StoreError::invalid("DATABASE_URL", e.to_string()))?;
                (backend, options)
            }
        };
        // One direct attempt first: the pool would retry a refused
        // connection until its acquire timeout, and a server that cannot
        // reach its database should say so at once.
        options.connect().await?.close().await?;
        let pool = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        let busy =
                            format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis());
                        conn.execute(busy.as_str()).await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(POSTGRES_MAX_CONNECTIONS),
        }
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await?;
        Ok(Store { pool, backend })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Check the database answers (for a readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// Close every connection, waiting for those in use to come back. Call
    /// on shutdown so SQLite checkpoints its WAL file.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Apply every pending migration, oldest first, each in its own
    /// transaction, and return the versions applied (empty when up to date).
    /// Safe to run twice, and from two processes at once.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.write_tx().await?;
        self.lock_migrations(&mut tx).await?;
        sqlx::query(CREATE_MIGRATIONS_TABLE)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;

        let known = schema::latest_version();
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            let mut tx = self.write_tx().await?;
            self.lock_migrations(&mut tx).await?;
            let done: Vec<i64> = applied_versions(&mut tx).await?;
            if let Some(&found) = done.iter().max().filter(|&&v| v > known) {
                return Err(StoreError::SchemaTooNew { found, known });
            }
            if done.contains(&m.version) {
                continue;
            }
            for statement in m.statements {
                sqlx::query(statement)
                    .persistent(false)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO dozen_schema_migrations (version, description, applied_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.description)
            .bind(ident::now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            applied.push(m.version);
        }
        Ok(applied)
    }

    /// Versions of the migrations not applied yet, oldest first.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let done = self.applied().await?;
        Ok(MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| !done.contains(v))
            .collect())
    }

    /// `Ok` when the schema is exactly what this build expects;
    /// [`StoreError::NotMigrated`] (with the hint to run `dozen migrate`)
    /// when migrations are pending, [`StoreError::SchemaTooNew`] when a newer
    /// dozen migrated the database.
    pub async fn ensure_migrated(&self) -> Result<(), StoreError> {
        let done = self.applied().await?;
        let known = schema::latest_version();
        if let Some(&found) = done.iter().max().filter(|&&v| v > known) {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        let pending: Vec<i64> = MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| !done.contains(v))
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(StoreError::NotMigrated {
                pending,
                hint: MIGRATE_HINT,
            })
        }
    }

    /// Versions recorded as applied; empty when the table does not exist yet.
    pub(crate) async fn applied(&self) -> Result<Vec<i64>, StoreError> {
        let exists_sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master \
                 WHERE type = 'table' AND name = 'dozen_schema_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'dozen_schema_migrations'"
            }
        };
        let mut conn = self.pool.acquire().await?;
        let exists: i64 = sqlx::query_scalar(exists_sql).fetch_one(&mut *conn).await?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        applied_versions(&mut conn).await
    }

    /// PostgreSQL: hold the migration lock until the transaction ends, so
    /// two `dozen migrate` runs take turns. SQLite needs nothing: write
    /// transactions there start with `BEGIN IMMEDIATE`.
    async fn lock_migrations(&self, tx: &mut Transaction<'static, Any>) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // pg_advisory_xact_lock returns `void`, which the Any driver
            // cannot decode: wrap it in a count.
            sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Begin a transaction that will write. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`), so a read inside it never goes
    /// stale and the busy timeout, not an error, handles a second writer.
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Inside a write transaction: check the app exists and lock its row
    /// until commit, so changes to one app (release numbers, config) are
    /// serialised. Returns the app's current release.
    pub(crate) async fn lock_app(
        &self,
        tx: &mut Transaction<'static, Any>,
        app: &str,
    ) -> Result<Option<i64>, StoreError> {
        crate::validate::app_name(app)?;
        let sql = match self.backend {
            Backend::Sqlite => "SELECT current_release FROM apps WHERE name = $1",
            Backend::Postgres => "SELECT current_release FROM apps WHERE name = $1 FOR UPDATE",
        };
        let row = sqlx::query(sql)
            .bind(app)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| StoreError::not_found("app", app))?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }
}

async fn applied_versions(conn: &mut sqlx::AnyConnection) -> Result<Vec<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM dozen_schema_migrations ORDER BY version")
            .fetch_all(conn)
            .await?,
    )
}

/// Encode a string map as JSON text for a TEXT column.
pub(crate) fn to_json(map: &BTreeMap<String, String>) -> Result<String, StoreError> {
    serde_json::to_string(map).map_err(|e| StoreError::Corrupt {
        what: "JSON column",
        message: e.to_string(),
    })
}

/// Decode a JSON TEXT column into a string map.
pub(crate) fn from_json(
    what: &'static str,
    text: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    })
}
