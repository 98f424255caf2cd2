//! Backups of the platform's own state, on both stores: `dozen backup:create` while the server
//! runs, a wipe, `dozen backup:restore` onto an empty data directory (and database), and the
//! apps answer through the router again with their config, releases, formation and domains.
//! Also what a restore refuses: a data directory or database that already holds a store, a
//! damaged file, a backup of the other kind of store; each leaves nothing behind.
//!
//! The apps run gunicorn from PyPI, so these tests need PyPI, the
//! host's `python3`, and PostgreSQL with `pg_dump`/`pg_restore` (postgresql-client).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::server::{PgDatabase, Server};

/// A gunicorn app (from PyPI) that answers with its `GREETING` config var.
fn app_source() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("requirements.txt", "gunicorn==23.0.0\n");
    write(
        "Procfile",
        "web: gunicorn --bind 0.0.0.0:$PORT app:application\n",
    );
    write(
        "app.py",
        "import os\n\n\ndef application(environ, start_response):\n    \
         body = f\"greeting={os.environ.get('GREETING', '(unset)')}\\n\".encode()\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [body]\n",
    );
    dir
}

fn body(server: &Server, host: &str) -> String {
    let (status, body) = server.get(host, "/");
    assert_eq!(status, 200, "GET / for {host}");
    String::from_utf8_lossy(&body).into_owned()
}

/// What a user compares before and after: the releases (version, description, status), the
/// config keys and values, the formation and the domains of `app`.
fn state(server: &Server, app: &str) -> (Vec<String>, String, String, String) {
    let releases = server.json(&["releases", "-a", app]);
    let releases = releases
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| format!("v{} {} {}", r["version"], r["description"], r["status"]))
        .collect();
    (
        releases,
        server.ok(&["config", "-a", app]),
        server.json(&["apps:info", "-a", app])["formation"].to_string(),
        server.ok(&["domains", "-a", app]),
    )
}

fn set_up(server: &Server) {
    let src = app_source();
    for (app, greeting) in [("shop", "hello from shop"), ("blog", "hello from blog")] {
        server.ok(&["apps:create", app]);
        server.ok(&["config:set", "-a", app, &format!("GREETING={greeting}")]);
        server.deploy(app, src.path());
    }
    server.ok(&["domains:add", "-a", "shop", "shop.example.test"]);
    server.ok(&["ps:scale", "-a", "shop", "web=2"]);
    server.await_state("shop", "web.2", "up");
    assert!(body(server, "shop.example.test").contains("greeting=hello from shop"));
}

fn round_trip(env: &[(&str, &str)], restore_env: &[(&str, &str)]) {
    let old = Server::start_with(env);
    set_up(&old);
    let before: Vec<_> = ["shop", "blog"].iter().map(|a| state(&old, a)).collect();

    // Online: the server keeps running while the backup is taken.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("dozen.backup");
    let said = admin_ok(&old, "backup:create", &file);
    assert!(said.contains("backed up 2 app(s)"), "{said}");
    let mode = std::fs::metadata(&file)
        .expect("backup file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the backup holds config values");
    assert!(body(&old, "shop.localhost").contains("greeting=hello from shop"));

    // A second backup to the same name is refused rather than overwriting the first.
    let again = old
        .admin(&["backup:create", file.to_str().expect("utf-8")])
        .output()
        .expect("backup:create");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // A restore into a data directory that holds a store is refused, and changes nothing.
    let refused = old
        .admin(&["backup:restore", file.to_str().expect("utf-8")])
        .output()
        .expect("backup:restore");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("restore into a new, empty"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(state(&old, "shop"), before[0]);
    drop(old); // the host is gone: server stopped, data directory removed

    let mut new = Server::unstarted(restore_env);
    assert!(admin_ok(&new, "backup:restore", &file).contains("restored 2 app(s)"));
    new.boot(std::process::Stdio::inherit());
    new.await_state("shop", "web.1", "up");
    new.await_state("shop", "web.2", "up");
    new.await_state("blog", "web.1", "up");
    assert!(body(&new, "shop.example.test").contains("greeting=hello from shop"));
    assert!(body(&new, "blog.localhost").contains("greeting=hello from blog"));
    let after: Vec<_> = ["shop", "blog"].iter().map(|a| state(&new, a)).collect();
    assert_eq!(after, before);

    // The restored platform keeps working: a config change is a new release that serves.
    new.ok(&["config:set", "-a", "blog", "GREETING=after the restore"]);
    support::await_condition("blog to serve its new config", || {
        body(&new, "blog.localhost").contains("greeting=after the restore")
    });
}

#[test]
fn sqlite_store_backs_up_online_and_restores_onto_an_empty_data_dir() {
    round_trip(&[], &[]);
}

#[test]
fn postgres_store_backs_up_online_and_restores_into_an_empty_database() {
    let db = PgDatabase::create("dozen_backup_a");
    let fresh = PgDatabase::create("dozen_backup_b");
    round_trip(
        &[("DATABASE_URL", &db.url)],
        &[("DATABASE_URL", &fresh.url)],
    );
}

/// A backup with `damage` done to it: restoring it fails with `expect` and leaves the data
/// directory without a store or slugs.
fn refused_restore(file: &Path, env: &[(&str, &str)], expect: &str) {
    let new = Server::unstarted(env);
    let out = new
        .admin(&["backup:restore", file.to_str().expect("utf-8")])
        .output()
        .expect("backup:restore");
    assert!(
        !out.status.success(),
        "restoring {} succeeded",
        file.display()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(expect), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(new.data.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| n != "dozen.db" && n != "slugs"),
        "a refused restore left {left:?}"
    );
}

#[test]
fn damaged_or_mismatched_backups_are_refused_and_leave_nothing() {
    let server = Server::start();
    let src = app_source();
    server.ok(&["apps:create", "shop"]);
    server.deploy("shop", src.path());
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("good.backup");
    let out = server
        .admin(&["backup:create", file.to_str().expect("utf-8")])
        .output()
        .expect("backup:create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = std::fs::read(&file).expect("read backup");

    // Cut short: the slug at the end is missing.
    let short = dir.path().join("short.backup");
    std::fs::write(&short, &good[..good.len() * 2 / 3]).expect("write");
    refused_restore(&short, &[], "short.backup");

    // Not a backup at all.
    let junk = dir.path().join("junk.backup");
    std::fs::write(&junk, b"PK\x03\x04 this is a zip, not a dozen backup").expect("write");
    refused_restore(&junk, &[], "not a dozen backup");

    // A SQLite backup cannot go into a PostgreSQL store, and says what to do.
    let db = PgDatabase::create("dozen_backup_c");
    refused_restore(&file, &[("DATABASE_URL", &db.url)], "unset DATABASE_URL");
    assert_eq!(
        db.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .trim(),
        "0"
    );
}

/// `dozen ACTION FILE` on the server host (`backup:create`, `backup:restore`): its stdout, after
/// asserting it succeeded.
#[track_caller]
fn admin_ok(server: &Server, action: &str, file: &Path) -> String {
    let out = server
        .admin(&[action, file.to_str().expect("utf-8")])
        .output()
        .expect(action);
    assert!(
        out.status.success(),
        "{action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `psql URL -c SQL`: its output, after asserting it succeeded.
#[track_caller]
fn psql_ok(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([url, "-X", "-q", "-t", "-A", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn addon_backups_in_the_data_directory_come_back_with_the_platform() {
    let (Some(_), Some(_)) = (
        dozen_testkit::tool("psql", "apt-get install postgresql-client"),
        dozen_testkit::tool("pg_dump", "apt-get install postgresql-client"),
    ) else {
        return;
    };
    let env = [(
        "DOZEN_ADDON_POSTGRESQL_URL",
        support::server::pg_admin_url(),
    )];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let old = Server::start_with(&env);
    let app = format!("bk{}", support::unique_tag());
    old.ok(&["apps:create", &app]);
    old.ok(&["addons:create", "postgresql", "-a", &app]);
    let addon = format!("{app}-postgresql-1");
    let url = old
        .ok(&["config:get", "-a", &app, "DATABASE_URL"])
        .trim()
        .to_string();
    psql_ok(
        &url,
        "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT); INSERT INTO kv VALUES ('colour', 'blue')",
    );
    old.ok(&["pg:backups:capture", "-a", &app]);
    let dump = old.data.path().join(format!("backups/{addon}/b001.dump"));
    let dumped = std::fs::read(&dump).expect("the add-on's dump");
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("dozen.backup");
    admin_ok(&old, "backup:create", &file);
    drop(old); // the host is gone, with the data directory that held the dump

    let mut new = Server::unstarted(&env);
    admin_ok(&new, "backup:restore", &file);
    let restored = new.data.path().join(format!("backups/{addon}/b001.dump"));
    assert_eq!(std::fs::read(&restored).expect("the restored dump"), dumped);
    new.boot(std::process::Stdio::inherit());
    assert_eq!(new.json(&["pg:backups", "-a", &app])[0]["id"], "b001");
    psql_ok(&url, "UPDATE kv SET v = 'damaged'");
    new.ok(&["pg:backups:restore", "b001", "-a", &app, "--confirm", &app]);
    assert_eq!(psql_ok(&url, "SELECT v FROM kv WHERE k = 'colour'"), "blue");
    new.ok(&["addons:destroy", &addon, "--confirm", &app]);
}
