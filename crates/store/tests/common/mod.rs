//! Test databases: a fresh SQLite file in a temp dir, or a fresh PostgreSQL
//! database created for one test and dropped after it, so tests run in
//! parallel on both backends.
//!
//! PostgreSQL is found at `DOZEN_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`. When it cannot be reached the
//! PostgreSQL tests fail (they never skip): CI starts PostgreSQL.

use std::path::PathBuf;

use dozen_store::Store;
use sqlx::Connection;

/// Where the PostgreSQL tests connect to create their databases.
pub fn admin_url() -> String {
    std::env::var("DOZEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with its database (path) replaced by `db`, query string kept.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// The URL with any password replaced, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn admin_connection() -> sqlx::PgConnection {
    let url = admin_url();
    match sqlx::PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(first) => {
            // The named database may not exist on a fresh server: the
            // `postgres` database always does.
            match sqlx::PgConnection::connect(&with_database(&url, "postgres")).await {
                Ok(c) => c,
                Err(_) => panic!(
                    "PostgreSQL is not reachable at {} ({first}). Start it (CI does: .ci/run) \
                     or point DOZEN_TEST_DATABASE_URL at one; these tests never skip.",
                    redacted(&url)
                ),
            }
        }
    }
}

/// Drops the test's PostgreSQL database when the test ends, even by panic.
struct PgDatabase {
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            rt.block_on(async move {
                let mut conn = admin_connection().await;
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            });
        });
        let _ = done.join();
    }
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database and the store on it (not migrated).
pub struct TestDb {
    pub store: Store,
    /// A URL for raw SQL, to look at what the store wrote.
    pub raw_url: String,
    pub kind: Kind,
    pub data_dir: PathBuf,
    // Field order matters: the store's pool goes before the database.
    _pg: Option<PgDatabase>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new(kind: Kind) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        match kind {
            Kind::Sqlite => {
                let store = Store::connect(None, &data_dir)
                    .await
                    .expect("open a SQLite store in a temp dir");
                let raw_url = format!("sqlite://{}", data_dir.join("dozen.db").display());
                TestDb {
                    store,
                    raw_url,
                    kind,
                    data_dir,
                    _pg: None,
                    _dir: dir,
                }
            }
            Kind::Postgres => {
                let mut bytes = [0u8; 6];
                getrandom::fill(&mut bytes).expect("random bytes");
                let name = format!(
                    "dozen_t_{}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
                let mut admin = admin_connection().await;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("CREATE DATABASE for the test");
                let guard = PgDatabase { name: name.clone() };
                let raw_url = with_database(&admin_url(), &name);
                let store = Store::connect(Some(&raw_url), &data_dir)
                    .await
                    .expect("connect to the test database");
                TestDb {
                    store,
                    raw_url,
                    kind,
                    data_dir,
                    _pg: Some(guard),
                    _dir: dir,
                }
            }
        }
    }

    /// The store, migrated.
    pub async fn ready(&self) -> &Store {
        self.store.migrate().await.expect("migrate");
        &self.store
    }

    /// A raw connection to the same database.
    pub async fn raw(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.raw_url)
            .await
            .expect("raw connection")
    }

    /// Run a `SELECT COUNT(*) ...` and return the count.
    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.raw().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("count query")
    }
}

/// Instantiate each `async fn(&TestDb)` once per backend: `sqlite::name`
/// and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::TestDb::new($crate::common::Kind::Sqlite).await;
                    $crate::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::TestDb::new($crate::common::Kind::Postgres).await;
                    $crate::$name(&db).await;
                }
            )*
        }
    };
}

#[test]
fn urls() {
    assert_eq!(
        with_database("postgres://u@h:5432/test?sslmode=disable", "x"),
        "postgres://u@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    assert_eq!(redacted("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
}
