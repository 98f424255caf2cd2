//! Consistent copies of the whole store, for `dozen backup:create` and `dozen backup:restore`.
//!
//! - SQLite: `VACUUM INTO` writes a copy of the database as of one read transaction, while the
//!   server keeps writing (SQLite's online backup, in one statement).
//! - PostgreSQL: `pg_dump --format=custom`, run on a snapshot exported from a repeatable-read
//!   transaction of our own, so the list of slugs read here and the dump agree. A restore is
//!   `pg_restore --single-transaction` into a database without dozen's tables: all or nothing.
//!
//! The connection details reach `pg_dump` and `pg_restore` through `PG*` environment variables,
//! never their command line, which every local user can read in `/proc`.

use std::path::Path;

use tokio::process::Command;

use sqlx::{ConnectOptions, Connection};

use crate::StoreError;
use crate::store::{Backend, SQLITE_FILE_NAME, Store};

/// What a copy of the store holds, besides its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The database it was taken from.
    pub backend: Backend,
    /// The highest migration applied to it.
    pub schema_version: i64,
    /// Every slug it has a record of (their archives are files beside the store).
    pub slugs: Vec<String>,
    /// How many apps it holds.
    pub apps: i64,
}

impl Store {
    /// Write a consistent copy of the store to `dest` (a new file) and say what it holds.
    /// `database_url` is the URL this store was opened with (PostgreSQL only).
    pub async fn snapshot_to(
        &self,
        dest: &Path,
        database_url: Option<&str>,
    ) -> Result<Snapshot, StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::query("VACUUM INTO $1")
                    .bind(path_text(dest)?)
                    .execute(&self.pool)
                    .await?;
                let copy = open_sqlite_file(dest, true).await?;
                let snapshot = describe(&copy, Backend::Sqlite).await;
                copy.close().await;
                snapshot
            }
            Backend::Postgres => {
                let url = database_url.ok_or_else(|| {
                    StoreError::invalid("DATABASE_URL", "the PostgreSQL store's URL is needed")
                })?;
                let mut conn = self.pool.acquire().await?;
                let mut tx = conn.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                    .fetch_one(&mut *tx)
                    .await?;
                let snapshot = Snapshot {
                    backend: Backend::Postgres,
                    schema_version: schema_version(&mut tx).await?,
                    slugs: sqlx::query_scalar("SELECT digest FROM slugs ORDER BY digest")
                        .fetch_all(&mut *tx)
                        .await?,
                    apps: sqlx::query_scalar("SELECT COUNT(*) FROM apps")
                        .fetch_one(&mut *tx)
                        .await?,
                };
                let mut dump = pg_command("pg_dump", url)?;
                dump.arg("--format=custom")
                    .arg("--no-owner")
                    .arg("--no-privileges")
                    .arg(format!("--snapshot={id}"))
                    .arg("--file")
                    .arg(dest);
                run("pg_dump", dump).await?;
                tx.commit().await?;
                Ok(snapshot)
            }
        }
    }
}

/// Restore a copy made by [`Store::snapshot_to`] as the store of a server whose data
/// directory is `data_dir` and whose `DATABASE_URL` is `database_url`. The target must hold no
/// store yet (no SQLite file; no dozen tables in the PostgreSQL database): a restore never
/// merges into, or overwrites, a live store. On failure nothing is left behind.
pub async fn restore_snapshot(
    copy: &Path,
    backend: Backend,
    data_dir: &Path,
    database_url: Option<&str>,
) -> Result<(), StoreError> {
    let url = database_url.filter(|u| !u.trim().is_empty());
    match (backend, url) {
        (Backend::Sqlite, None) => {
            let target = data_dir.join(SQLITE_FILE_NAME);
            if target.exists() {
                return Err(StoreError::conflict(
                    "store",
                    target.display().to_string(),
                    "already exists: restore into a new, empty data directory",
                ));
            }
            // Check the copy opens and is a dozen store before it takes the place.
            let opened = open_sqlite_file(copy, true).await?;
            let described = describe(&opened, Backend::Sqlite).await;
            opened.close().await;
            described?;
            let part = data_dir.join(format!("{SQLITE_FILE_NAME}.restoring"));
            let io = |source| StoreError::Io {
                path: part.clone(),
                source,
            };
            std::fs::copy(copy, &part).map_err(io)?;
            let placed = std::fs::File::open(&part)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&part, &target));
            if let Err(e) = placed {
                let _ = std::fs::remove_file(&part);
                return Err(io(e));
            }
            Ok(())
        }
        (Backend::Postgres, Some(url)) => {
            let store = Store::connect(Some(url), data_dir).await?;
            let existing = store.applied().await;
            store.close().await;
            if !existing?.is_empty() {
                return Err(StoreError::conflict(
                    "database",
                    "DATABASE_URL",
                    "already holds a dozen store: restore into a new, empty database",
                ));
            }
            let mut restore = pg_command("pg_restore", url)?;
            restore
                .arg("--single-transaction")
                .arg("--exit-on-error")
                .arg("--no-owner")
                .arg("--no-privileges")
                .arg(copy);
            run("pg_restore", restore).await
        }
        (Backend::Sqlite, Some(_)) => Err(StoreError::invalid(
            "DATABASE_URL",
            "the backup holds a SQLite store: unset DATABASE_URL to restore it into the data directory",
        )),
        (Backend::Postgres, None) => Err(StoreError::invalid(
            "DATABASE_URL",
            "the backup holds a PostgreSQL store: set DATABASE_URL to a new, empty database to restore it",
        )),
    }
}

/// Schema version, slugs and app count of a store.
async fn describe(store: &Store, backend: Backend) -> Result<Snapshot, StoreError> {
    let applied = store.applied().await?;
    let Some(&schema_version) = applied.iter().max() else {
        return Err(StoreError::Corrupt {
            what: "backup",
            message: "the copy holds no dozen store (no migrations applied)".into(),
        });
    };
    Ok(Snapshot {
        backend,
        schema_version,
        slugs: sqlx::query_scalar("SELECT digest FROM slugs ORDER BY digest")
            .fetch_all(&store.pool)
            .await?,
        apps: sqlx::query_scalar("SELECT COUNT(*) FROM apps")
            .fetch_one(&store.pool)
            .await?,
    })
}

async fn schema_version(conn: &mut sqlx::AnyConnection) -> Result<i64, StoreError> {
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM dozen_schema_migrations")
        .fetch_one(conn)
        .await?;
    v.ok_or_else(|| StoreError::Corrupt {
        what: "schema migrations",
        message: "no migration is recorded".into(),
    })
}

/// A store on one SQLite file (a copy, not a data directory's store), opened without the
/// data directory's settings (no WAL: the copy may be read-only).
async fn open_sqlite_file(file: &Path, read_only: bool) -> Result<Store, StoreError> {
    sqlx::any::install_default_drivers();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .read_only(read_only)
        .immutable(read_only);
    let options = sqlx::any::AnyConnectOptions::from_url(&options.to_url_lossy())
        .map_err(|e| StoreError::invalid("backup file", e.to_string()))?;
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    Ok(Store {
        pool,
        backend: Backend::Sqlite,
    })
}

fn path_text(p: &Path) -> Result<String, StoreError> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::invalid("backup file", "the path is not UTF-8"))
}

/// `tool` (pg_dump or pg_restore) with the connection of `url` in its environment.
fn pg_command(tool: &str, url: &str) -> Result<Command, StoreError> {
    let bad = |m: &str| StoreError::invalid("DATABASE_URL", m.to_string());
    let parsed = url::Url::parse(url).map_err(|_| bad("not a valid URL"))?;
    let mut cmd = Command::new(tool);
    for var in [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSSLMODE",
        "PGSERVICE",
        "PGPASSFILE",
    ] {
        cmd.env_remove(var);
    }
    let decode =
        |s: &str| percent_decode(s).ok_or_else(|| bad("holds a percent-escape that is not UTF-8"));
    if let Some(host) = parsed.host_str() {
        cmd.env("PGHOST", host.trim_start_matches('[').trim_end_matches(']'));
    }
    if let Some(port) = parsed.port() {
        cmd.env("PGPORT", port.to_string());
    }
    if !parsed.username().is_empty() {
        cmd.env("PGUSER", decode(parsed.username())?);
    }
    if let Some(password) = parsed.password() {
        cmd.env("PGPASSWORD", decode(password)?);
    }
    let database = decode(parsed.path().trim_start_matches('/'))?;
    if database.is_empty() {
        return Err(bad("names no database"));
    }
    for (key, value) in parsed.query_pairs() {
        match &*key {
            "sslmode" => {
                cmd.env("PGSSLMODE", &*value);
            }
            "host" => {
                cmd.env("PGHOST", &*value);
            }
            "port" => {
                cmd.env("PGPORT", &*value);
            }
            _ => {}
        }
    }
    cmd.arg("--dbname").arg(&database);
    Ok(cmd)
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Run a PostgreSQL client tool to completion; its stderr is the error.
async fn run(tool: &'static str, mut cmd: Command) -> Result<(), StoreError> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| StoreError::Tool {
            tool,
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{tool} is not installed (Debian: apt-get install postgresql-client)")
            } else {
                e.to_string()
            },
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(StoreError::Tool {
        tool,
        message: format!("{}: {}", out.status, stderr.trim()),
    })
}

/// The highest schema version this build of dozen knows (a backup of a newer one is refused).
pub fn known_schema_version() -> i64 {
    crate::schema::latest_version()
}
