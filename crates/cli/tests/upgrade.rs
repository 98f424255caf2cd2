//! Upgrading `dozen server` in place, on both stores, the way the Debian package's unit does it:
//! the running server is stopped as systemd stops it (SIGTERM to the main process only,
//! `KillMode=mixed`: the server must stop its apps' processes itself, or systemd kills them),
//! `dozen migrate` runs as the unit's `ExecStartPre` and applies the pending migrations exactly
//! once, and the new server starts on the same data directory: every app answers through the
//! router again, with its releases, config, formation and domains as they were.
//!
//! The store "an older dozen left" is made by deploying with this dozen and then taking the
//! latest migrations back out of the store ([`OLDER_SCHEMA`]): migrations only ever add, so
//! that is the schema and the rows a dozen of before those migrations wrote. (Building a
//! released older binary would need a second release build in every CI run.)
//!
//! The apps run gunicorn from PyPI (fixtures `gunicorn-greeting` and `python-gunicorn`), so
//! these tests need PyPI and the host's `python3`; the SQLite test needs the `sqlite3` shell,
//! the PostgreSQL one `psql`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::server::{PgDatabase, Server, copy_fixture};
use support::{await_condition, processes_matching};

/// The newest migration this test knows how to take back out.
const LATEST: i64 = 10;

/// Takes migrations 5 to 10 back out (log drains, the commit a release was built from, dashboard
/// sessions, add-on backup schedules, who made a release, where a backup is), newest first, in one transaction, in
/// SQL both stores accept: what is left is the store of a dozen that knew migrations 1 to 4. A
/// new migration is added here (its reverse, first) along with [`LATEST`] and [`APPLIED`].
const OLDER_SCHEMA: &str = "BEGIN; \
    ALTER TABLE addon_backups DROP COLUMN location; \
    ALTER TABLE releases DROP COLUMN created_by; \
    DROP TABLE addon_backup_schedules; \
    DROP TABLE dashboard_sessions; \
    DROP INDEX releases_by_commit; \
    ALTER TABLE releases DROP COLUMN source_commit; \
    DROP TABLE drains; \
    DELETE FROM dozen_schema_migrations WHERE version IN (5, 6, 7, 8, 9, 10); \
    COMMIT;";

/// What `dozen migrate` prints when it brings that store up to date.
const APPLIED: &str = "applied migrations [5, 6, 7, 8, 9, 10]";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The store behind a test server, to query and change with the database's own client.
enum Db {
    Sqlite(PathBuf),
    Postgres(PgDatabase),
}

impl Db {
    /// The rows of `sql` on the store of the server whose data directory is `data`.
    fn query(&self, data: &Path, sql: &str) -> String {
        let out = match self {
            Db::Sqlite(sqlite3) => Command::new(sqlite3)
                .arg(data.join("dozen.db"))
                .arg(sql)
                .output()
                .expect("sqlite3"),
            Db::Postgres(db) => return db.query(sql),
        };
        assert!(
            out.status.success(),
            "sqlite3 {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Whether process `pid` is there and not a zombie.
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

fn body(server: &Server, host: &str) -> String {
    let (status, body) = server.get(host, "/");
    assert_eq!(status, 200, "GET / for {host}");
    String::from_utf8_lossy(&body).into_owned()
}

/// What a user compares before and after the upgrade: `dozen releases` (version, description,
/// status, slug), `dozen config`, the live release, formation and process types of
/// `dozen apps:info`, `dozen domains`, and `dozen ps` (name, state and release of each process;
/// their pids are new).
fn state(server: &Server, app: &str) -> Vec<String> {
    let mut seen: Vec<String> = server
        .json(&["releases", "-a", app])
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| {
            format!(
                "release v{} {} {} slug={}",
                r["version"], r["description"], r["status"], r["slug"]
            )
        })
        .collect();
    seen.push(server.ok(&["config", "-a", app]));
    let info = server.json(&["apps:info", "-a", app]);
    seen.push(format!(
        "live v{} formation {} types {}",
        info["current_release"], info["formation"], info["process_types"]
    ));
    seen.push(server.ok(&["domains", "-a", app]));
    let mut ps: Vec<String> = server
        .json(&["ps", "-a", app])
        .as_array()
        .expect("ps")
        .iter()
        .map(|p| format!("{} {} v{}", p["name"], p["state"], p["release"]))
        .collect();
    ps.sort();
    seen.extend(ps);
    seen
}

/// Two apps as a user leaves them: `shop` (gunicorn answering its config, two web processes
/// and a worker, a custom domain, three releases) and `docs` (the gunicorn fixture with a
/// release phase and a `.profile.d` script).
fn set_up(server: &Server) {
    let shop = copy_fixture(&fixture("gunicorn-greeting"));
    let docs = copy_fixture(&fixture("python-gunicorn"));
    server.ok(&["apps:create", "shop"]);
    server.ok(&["config:set", "-a", "shop", "GREETING=hello from shop"]);
    server.deploy("shop", shop.path());
    server.ok(&["config:set", "-a", "shop", "GREETING=hello again"]);
    server.ok(&["ps:scale", "-a", "shop", "web=2", "worker=1"]);
    server.ok(&["domains:add", "-a", "shop", "shop.example.test"]);
    server.ok(&["apps:create", "docs"]);
    server.ok(&["config:set", "-a", "docs", "SECTION=manual"]);
    server.deploy("docs", docs.path());
    await_apps(server);
}

/// Every process of both apps up, and both answering through the router.
fn await_apps(server: &Server) {
    server.await_state("shop", "web.1", "up");
    server.await_state("shop", "web.2", "up");
    server.await_state("shop", "worker.1", "running");
    server.await_state("docs", "web.1", "up");
    let shop = body(server, "shop.example.test");
    assert!(shop.contains("greeting=hello again"), "{shop}");
    let docs = body(server, "docs.localhost");
    assert!(docs.contains("greeting=hello from .profile.d"), "{docs}");
}

fn upgrade(env: &[(&str, &str)], db: &Db) {
    let mut server = Server::start_with(env);
    set_up(&server);
    let before: Vec<_> = ["shop", "docs"].iter().map(|a| state(&server, a)).collect();
    assert_eq!(
        db.query(
            server.data.path(),
            "SELECT MAX(version) FROM dozen_schema_migrations"
        )
        .trim(),
        LATEST.to_string(),
        "a migration was added: add its reverse to OLDER_SCHEMA and bump LATEST"
    );

    // The apps' processes: those `dozen ps` names, and every one running from the data
    // directory (the unpacked releases: gunicorn's workers too).
    let pids: Vec<i64> = ["shop", "docs"]
        .iter()
        .flat_map(|a| {
            server
                .json(&["ps", "-a", a])
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p["pid"].as_i64())
        .collect();
    assert_eq!(
        pids.len(),
        4,
        "shop's web.1, web.2, worker.1 and docs' web.1"
    );
    let data = server.data.path().to_str().expect("utf-8").to_string();
    assert!(!processes_matching(&data).is_empty());

    // systemctl stop (KillMode=mixed): SIGTERM to the server alone. It stops its apps
    // itself; nothing of theirs is left for systemd's SIGKILL.
    server.stop();
    await_condition("the apps' processes to be gone", || {
        processes_matching(&data).is_empty() && pids.iter().all(|&pid| !alive(pid))
    });

    // The store as an older dozen left it.
    db.query(server.data.path(), OLDER_SCHEMA);
    assert_eq!(
        db.query(
            server.data.path(),
            "SELECT MAX(version) FROM dozen_schema_migrations"
        )
        .trim(),
        "4"
    );

    // Without the migrations, the new server refuses to start, and says what to run.
    let refused = server
        .admin(&["server"])
        .stdin(Stdio::null())
        .output()
        .expect("dozen server");
    assert!(
        !refused.status.success(),
        "a server started on an old store"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("dozen migrate"), "{stderr}");

    // ExecStartPre: the pending migrations, once; a second run has nothing to do.
    let migrate = |expect: &str| {
        let out = server.admin(&["migrate"]).output().expect("dozen migrate");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(expect),
            "dozen migrate: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    migrate(APPLIED);
    migrate("the store is up to date");
    assert_eq!(
        db.query(
            server.data.path(),
            "SELECT COUNT(*) FROM dozen_schema_migrations WHERE version >= 5"
        )
        .trim(),
        (LATEST - 4).to_string(),
        "each migration is recorded once"
    );

    // The new server, on the same data directory and ports: the apps come back from the store.
    server.boot(Stdio::inherit());
    await_apps(&server);
    let after: Vec<_> = ["shop", "docs"].iter().map(|a| state(&server, a)).collect();
    assert_eq!(after, before);

    // And the upgraded platform keeps working: a config change is a new release that serves.
    server.ok(&["config:set", "-a", "shop", "GREETING=after the upgrade"]);
    await_condition("shop to serve its new config", || {
        body(&server, "shop.example.test").contains("greeting=after the upgrade")
    });
    let releases = server.json(&["releases", "-a", "shop"]);
    assert_eq!(
        releases.as_array().map(Vec::len),
        Some(
            before[0]
                .iter()
                .filter(|l| l.starts_with("release"))
                .count()
                + 1
        )
    );
}

#[test]
fn sqlite_store_upgrades_in_place_and_every_app_comes_back() {
    let Some(sqlite3) = dozen_testkit::tool("sqlite3", "apt-get install sqlite3") else {
        return;
    };
    upgrade(&[], &Db::Sqlite(sqlite3));
}

#[test]
fn postgres_store_upgrades_in_place_and_every_app_comes_back() {
    let db = PgDatabase::create("dozen_upgrade");
    let url = db.url.clone();
    upgrade(&[("DATABASE_URL", &url)], &Db::Postgres(db));
}
