//! Add-ons on the real backing servers of this machine (PostgreSQL, Redis, MariaDB, RabbitMQ):
//! provisioned by a real `dozen server`, used by a deployed Flask app through real drivers
//! from PyPI (psycopg, redis-py, PyMySQL, pika), shared, rotated, backed up, restored and
//! destroyed; and provisioning that fails half-way leaving nothing behind. MySQL backups,
//! restores into another add-on and daily schedules are in `addons/backups.rs`; backups kept
//! in an S3-compatible bucket in `addons/s3.rs`.
//!
//! Needs `psql`, `pg_dump`/`pg_restore`, `redis-cli`, `mysql`/`mysqldump` and `rabbitmqctl` on the host
//! (`.ci/run` installs them), PyPI for the fixture's build, and the servers: PostgreSQL
//! (`DOZEN_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`), Redis
//! 127.0.0.1:6379, MariaDB 127.0.0.1:3306 (root, no password) and RabbitMQ 127.0.0.1:5672.

mod support;

#[path = "addons/backups.rs"]
mod backups;
#[path = "addons/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::server::{Server, copy_fixture, pg_admin_url};
use support::unique_tag;

const REDIS_ADMIN: &str = "redis://127.0.0.1:6379";
const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306";
const RABBITMQ_ADMIN: &str = "amqp://guest:guest@127.0.0.1:5672";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A host tool the test needs; `None` (the test returns) only where tools may be missing.
fn tool(name: &str, install: &str) -> Option<PathBuf> {
    dozen_testkit::tool(name, install)
}

/// GET through the router: the status and the body, trimmed.
fn get(server: &Server, app: &str, path: &str) -> (u16, String) {
    let (status, body) = server.get(&format!("{app}.localhost"), path);
    (status, String::from_utf8_lossy(&body).trim().to_string())
}

#[track_caller]
fn get_ok(server: &Server, app: &str, path: &str) -> String {
    let (status, body) = get(server, app, path);
    if status != 200 {
        let out = server.client(&["logs", "-a", app, "-n", "80"]);
        let logs = format!("{}{}", out.stdout, out.stderr);
        panic!("GET {path} on {app}: {status} {body}\nlogs:\n{logs}");
    }
    body
}

fn config_get(server: &Server, app: &str, key: &str) -> String {
    server
        .ok(&["config:get", "-a", app, key])
        .trim()
        .to_string()
}

/// Whether a client succeeded, and what it said (stdout then stderr, trimmed).
fn said(out: std::process::Output) -> (bool, String) {
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .trim()
        .to_string(),
    )
}

/// `psql URL -c SQL` as a user would run it: its exit status and output.
fn psql(url: &str, sql: &str) -> (bool, String) {
    said(
        Command::new("psql")
            .args([url, "-X", "-q", "-t", "-A", "-c", sql])
            .output()
            .expect("psql"),
    )
}

/// `url` with the user and password of `creds` (same host, port and database).
fn with_credentials_of(url: &str, creds: &str) -> String {
    let (_, rest) = url.split_once('@').expect("a URL with credentials");
    let (userinfo, _) = creds
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .expect("a URL with credentials");
    let scheme = url.split_once("://").expect("scheme").0;
    format!("{scheme}://{userinfo}@{rest}")
}

fn password_of(url: &str) -> String {
    let (_, rest) = url.split_once("://").expect("scheme");
    let (userinfo, _) = rest.split_once('@').expect("credentials");
    userinfo.split_once(':').expect("password").1.to_string()
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn postgresql_addon_is_shared_isolated_rotated_backed_up_and_destroyed() {
    let (Some(_), Some(_), Some(_)) = (
        tool("psql", "apt-get install postgresql-client"),
        tool("pg_dump", "apt-get install postgresql-client"),
        tool("pg_restore", "apt-get install postgresql-client"),
    ) else {
        return;
    };
    let admin = pg_admin_url();
    let server = Server::start_with(&[("DOZEN_ADDON_POSTGRESQL_URL", &admin)]);
    let tag = unique_tag();
    let (shop, worker, other) = (
        format!("shop{tag}"),
        format!("wrk{tag}"),
        format!("oth{tag}"),
    );
    for app in [&shop, &worker, &other] {
        server.ok(&["apps:create", app]);
    }

    // What the server offers.
    let services = server.json(&["addons:services"]);
    let offered: Vec<(&str, bool)> = services
        .as_array()
        .expect("list")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or(""), s["available"] == true))
        .collect();
    assert_eq!(
        offered,
        [
            ("postgresql", true),
            ("redis", false),
            ("mysql", false),
            ("rabbitmq", false)
        ]
    );
    let refused = server.client(&["addons:create", "redis", "-a", &shop]);
    assert_ne!(refused.code(), Some(0));
    assert!(
        refused.stderr.contains("DOZEN_ADDON_REDIS_URL"),
        "{}",
        refused.stderr
    );

    // Provision: a database and role of its own, DATABASE_URL set in a new release.
    let created = server.ok(&["addons:create", "postgresql", "-a", &shop]);
    let addon = format!("{shop}-postgresql-1");
    assert!(created.contains(&addon), "{created}");
    assert!(created.contains("DATABASE_URL"), "{created}");
    let url = config_get(&server, &shop, "DATABASE_URL");
    let resource = addon.replace('-', "_");
    assert!(
        url.ends_with(&format!("/{resource}")),
        "the add-on's database"
    );
    let (ok, owner) = psql(
        &admin,
        &format!(
            "SELECT pg_get_userbyid(datdba), has_database_privilege('public', datname, 'CONNECT') FROM pg_database WHERE datname = '{resource}'"
        ),
    );
    assert!(ok, "{owner}");
    assert_eq!(
        owner,
        format!("{resource}|f"),
        "owned by its role, no CONNECT for PUBLIC"
    );
    // The listing never shows the URL.
    let listed = server.ok(&["addons", "-a", &shop, "--json"]);
    assert!(listed.contains(&addon), "{listed}");
    assert!(!listed.contains(&password_of(&url)), "{listed}");

    // A read token sees the add-on but not its URL; a deploy token of another app neither.
    let token = |name: &str, app: &str, scope: &str| {
        let out = server
            .admin(&["tokens:create", name, "--app", app, "--scope", scope])
            .output()
            .expect("tokens:create");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let as_token = |token: &str, args: &[&str]| {
        let out = server
            .client_command(args)
            .env("DOZEN_API_TOKEN", token)
            .output()
            .expect("client");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let reader = token("reader", &shop, "read");
    let (ok, said) = as_token(&reader, &["addons", "-a", &shop]);
    assert!(ok && said.contains(&addon), "{said}");
    let (ok, said) = as_token(&reader, &["config", "-a", &shop]);
    assert!(!ok && !said.contains(&password_of(&url)), "{said}");
    let (ok, said) = as_token(&reader, &["addons:env", "-a", &shop]);
    assert!(!ok && !said.contains(&password_of(&url)), "{said}");
    let outsider = token("outsider", &other, "deploy");
    let (ok, said) = as_token(&outsider, &["addons:attach", &addon, "-a", &other]);
    assert!(!ok && said.contains("admin"), "{said}");

    // The app writes and reads through its URL (psycopg).
    let src = copy_fixture(&fixture("addons-flask"));
    server.deploy(&shop, src.path());
    assert_eq!(
        get_ok(&server, &shop, "/pg/write?key=colour&value=blue"),
        "ok"
    );
    assert_eq!(get_ok(&server, &shop, "/pg/read?key=colour"), "blue");

    // The same database for a second app.
    let attached = server.ok(&["addons:attach", &addon, "-a", &worker]);
    assert!(attached.contains("DATABASE_URL"), "{attached}");
    assert_eq!(config_get(&server, &worker, "DATABASE_URL"), url);
    server.deploy(&worker, src.path());
    assert_eq!(get_ok(&server, &worker, "/pg/read?key=colour"), "blue");
    let table = server.ok(&["addons", "-a", &worker]);
    assert!(table.contains(&format!("{shop}:DATABASE_URL")), "{table}");
    assert!(table.contains(&format!("{worker}:DATABASE_URL")), "{table}");

    // A third app's add-on: its credentials are refused on the first's database, and the
    // other way round.
    server.ok(&["addons:create", "postgresql", "-a", &other]);
    let other_url = config_get(&server, &other, "DATABASE_URL");
    let (ok, said) = psql(&with_credentials_of(&url, &other_url), "SELECT 1");
    assert!(!ok, "another add-on's role connected: {said}");
    assert!(said.contains("permission denied"), "{said}");
    let (ok, said) = psql(&with_credentials_of(&other_url, &url), "SELECT 1");
    assert!(!ok && said.contains("permission denied"), "{said}");
    let (ok, said) = psql(&other_url, "SELECT 1");
    assert!(ok, "{said}");

    // Rotation: a new password, both apps re-released and still reading; the old one refused.
    // This machine's PostgreSQL trusts local connections (no password is checked), so the
    // rotation is seen in the role's stored password.
    let verifier = || {
        psql(
            &admin,
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{resource}'"),
        )
        .1
    };
    let before = verifier();
    let rotated = server.ok(&["addons:rotate", &addon]);
    assert_ne!(verifier(), before, "the role has a new password");
    assert!(
        rotated.contains(&shop) && rotated.contains(&worker),
        "{rotated}"
    );
    let new_url = config_get(&server, &shop, "DATABASE_URL");
    assert_ne!(new_url, url);
    assert_eq!(config_get(&server, &worker, "DATABASE_URL"), new_url);
    assert_eq!(get_ok(&server, &shop, "/pg/read?key=colour"), "blue");
    assert_eq!(get_ok(&server, &worker, "/pg/read?key=colour"), "blue");
    let releases = server.ok(&["releases", "-a", &worker]);
    assert!(releases.contains("Rotate the credentials"), "{releases}");

    // The URLs as an env file for `dozen start` on a laptop.
    let env = server.ok(&["addons:env", "-a", &worker]);
    assert_eq!(env.trim(), format!("DATABASE_URL='{new_url}'"));

    // The Kubernetes export carries the URL in the release's Secret.
    let yaml = server.ok(&[
        "export",
        "kubernetes",
        "-a",
        &shop,
        "--image",
        "reg.example/shop:1",
    ]);
    assert!(yaml.contains("kind: Secret"), "{yaml}");
    assert!(yaml.contains(&base64(new_url.as_bytes())), "{yaml}");
    assert!(!yaml.contains(&new_url), "only in base64");

    // Back up, damage, restore, read back.
    let captured = server.ok(&["pg:backups:capture", "-a", &shop]);
    assert!(captured.contains("b001"), "{captured}");
    let backups = server.json(&["pg:backups", "-a", &shop]);
    assert_eq!(backups[0]["id"], "b001");
    assert!(backups[0]["size"].as_i64().unwrap_or(0) > 0, "{backups}");
    assert_eq!(
        get_ok(&server, &shop, "/pg/write?key=colour&value=damaged"),
        "ok"
    );
    assert_eq!(get_ok(&server, &worker, "/pg/read?key=colour"), "damaged");
    let unconfirmed = server.client(&["pg:backups:restore", "b001", "-a", &shop]);
    assert_ne!(unconfirmed.code(), Some(0));
    assert!(
        unconfirmed.stderr.contains("--confirm"),
        "{}",
        unconfirmed.stderr
    );
    server.ok(&[
        "pg:backups:restore",
        "b001",
        "-a",
        &shop,
        "--confirm",
        &shop,
    ]);
    assert_eq!(get_ok(&server, &shop, "/pg/read?key=colour"), "blue");
    assert_eq!(get_ok(&server, &worker, "/pg/read?key=colour"), "blue");
    server.await_log(&shop, &format!("restored {addon} from backup b001"));
    let missing = server.client(&[
        "pg:backups:restore",
        "b009",
        "-a",
        &shop,
        "--confirm",
        &shop,
    ]);
    assert_ne!(missing.code(), Some(0));
    assert!(missing.stderr.contains("b009"), "{}", missing.stderr);

    // Destroy: refused while attached elsewhere; the owner cannot detach its own.
    let refused = server.client(&["addons:destroy", &addon, "--confirm", &shop]);
    assert_ne!(refused.code(), Some(0));
    assert!(refused.stderr.contains(&worker), "{}", refused.stderr);
    let refused = server.client(&["addons:detach", "DATABASE", "-a", &shop]);
    assert_ne!(refused.code(), Some(0));
    assert!(refused.stderr.contains("destroy"), "{}", refused.stderr);
    server.ok(&["addons:detach", "DATABASE", "-a", &worker]);
    assert!(
        !server
            .ok(&["config", "-a", &worker])
            .contains("DATABASE_URL")
    );
    let (status, _) = get(&server, &worker, "/pg/read?key=colour");
    assert_eq!(status, 500, "the worker no longer has a database");
    server.ok(&["addons:destroy", &addon, "--confirm", &shop]);
    assert!(!server.ok(&["config", "-a", &shop]).contains("DATABASE_URL"));
    let (ok, gone) = psql(
        &admin,
        &format!(
            "SELECT (SELECT COUNT(*) FROM pg_roles WHERE rolname = '{resource}') + (SELECT COUNT(*) FROM pg_database WHERE datname = '{resource}')"
        ),
    );
    assert!(ok, "{gone}");
    assert_eq!(gone, "0", "role and database dropped");
    assert!(
        !server.data.path().join("backups").join(&addon).exists(),
        "its backups go with it"
    );
    assert!(server.ok(&["addons", "-a", &shop]).contains("no add-ons"));

    // An app that owns an add-on cannot be destroyed before it.
    let refused = server.client(&["apps:destroy", "-a", &other, "--confirm", &other]);
    assert_ne!(refused.code(), Some(0));
    assert!(
        refused.stderr.contains("addons:destroy"),
        "{}",
        refused.stderr
    );
    server.ok(&[
        "addons:destroy",
        &format!("{other}-postgresql-1"),
        "--confirm",
        &other,
    ]);
    server.ok(&["apps:destroy", "-a", &other, "--confirm", &other]);
}

#[test]
fn redis_mysql_and_rabbitmq_addons_serve_an_app_and_refuse_others() {
    let (Some(_), Some(_), Some(_)) = (
        tool("redis-cli", "apt-get install redis-tools"),
        tool("mysql", "apt-get install mariadb-client"),
        tool("rabbitmqctl", "apt-get install rabbitmq-server"),
    ) else {
        return;
    };
    let server = Server::start_with(&[
        ("DOZEN_ADDON_REDIS_URL", REDIS_ADMIN),
        ("DOZEN_ADDON_MYSQL_URL", MYSQL_ADMIN),
        ("DOZEN_ADDON_RABBITMQ_URL", RABBITMQ_ADMIN),
    ]);
    let tag = unique_tag();
    let (shop, other) = (format!("svc{tag}"), format!("oth{tag}"));
    server.ok(&["apps:create", &shop]);
    server.ok(&["apps:create", &other]);
    for service in ["redis", "mysql", "rabbitmq"] {
        server.ok(&["addons:create", service, "-a", &shop]);
        server.ok(&["addons:create", service, "-a", &other]);
    }
    // A second Redis under another name.
    server.ok(&["addons:create", "redis", "-a", &shop, "--as", "CACHE"]);
    assert!(config_get(&server, &shop, "CACHE_URL").contains(&format!("{shop}-redis-2")));

    let src = copy_fixture(&fixture("addons-flask"));
    server.deploy(&shop, src.path());
    for kind in ["redis", "mysql", "amqp"] {
        assert_eq!(
            get_ok(
                &server,
                &shop,
                &format!("/{kind}/write?key=k&value=v-{kind}")
            ),
            "ok"
        );
        assert_eq!(
            get_ok(&server, &shop, &format!("/{kind}/read?key=k")),
            format!("v-{kind}")
        );
    }
    assert_eq!(
        get_ok(&server, &shop, "/redis/write?key=k&value=two&var=CACHE_URL"),
        "ok"
    );
    assert_eq!(
        get_ok(&server, &shop, "/redis/read?key=k&var=CACHE_URL"),
        "two"
    );
    assert_eq!(get_ok(&server, &shop, "/redis/read?key=k"), "v-redis");

    // Redis: another add-on's user cannot read this one's keys (its ACL), nor run FLUSHALL.
    let redis_url = config_get(&server, &shop, "REDIS_URL");
    let other_redis = config_get(&server, &other, "REDIS_URL");
    let cli = |url: &str, args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-u", url, "--no-auth-warning"])
            .args(args)
            .output()
            .expect("redis-cli");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let key = format!("{shop}-redis-1:k");
    assert_eq!(cli(&redis_url, &["GET", &key]).trim(), "v-redis");
    assert!(cli(&other_redis, &["GET", &key]).contains("NOPERM"));
    assert!(cli(&redis_url, &["GET", "unprefixed"]).contains("NOPERM"));
    assert!(cli(&redis_url, &["FLUSHALL"]).contains("NOPERM"));

    // MySQL: another add-on's user is refused on this one's database.
    let mysql_url = config_get(&server, &shop, "MYSQL_URL");
    let other_mysql = config_get(&server, &other, "MYSQL_URL");
    let db = format!("{shop}_mysql_1");
    let other_user = format!("{other}_mysql_1");
    let out = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-u", &other_user, &db, "-e", "SELECT 1"])
        .env("MYSQL_PWD", password_of(&other_mysql))
        .output()
        .expect("mysql");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Access denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // RabbitMQ: another add-on's user is refused on this one's vhost (through pika).
    let amqp_url = config_get(&server, &shop, "RABBITMQ_URL");
    let other_amqp = config_get(&server, &other, "RABBITMQ_URL");
    server.ok(&[
        "config:set",
        "-a",
        &shop,
        &format!(
            "MIXED_AMQP_URL={}",
            with_credentials_of(&amqp_url, &other_amqp)
        ),
    ]);
    let (status, _) = get(&server, &shop, "/amqp/write?value=x&var=MIXED_AMQP_URL");
    assert_eq!(status, 500, "another add-on's user published to this vhost");

    // Rotation of each: the app, re-released, still writes and reads; the old password fails.
    for (service, kind, var) in [
        ("redis", "redis", "REDIS_URL"),
        ("mysql", "mysql", "MYSQL_URL"),
        ("rabbitmq", "amqp", "RABBITMQ_URL"),
    ] {
        let before = config_get(&server, &shop, var);
        server.ok(&["addons:rotate", &format!("{shop}-{service}-1")]);
        let after = config_get(&server, &shop, var);
        assert_ne!(before, after, "{service}");
        assert_eq!(
            get_ok(
                &server,
                &shop,
                &format!("/{kind}/write?key=k&value=new-{kind}")
            ),
            "ok"
        );
        assert_eq!(
            get_ok(&server, &shop, &format!("/{kind}/read?key=k")),
            format!("new-{kind}"),
            "{service} after rotation"
        );
    }
    assert!(cli(&redis_url, &["GET", &key]).contains("WRONGPASS"));
    let out = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-u", &db, &db, "-e", "SELECT 1"])
        .env("MYSQL_PWD", password_of(&mysql_url))
        .output()
        .expect("mysql");
    assert!(!out.status.success(), "the old MySQL password still works");

    // Destroy: the users, databases, keys and vhosts are gone.
    for app in [&shop, &other] {
        let mut names: Vec<String> = ["redis", "mysql", "rabbitmq"]
            .iter()
            .map(|s| format!("{app}-{s}-1"))
            .collect();
        if app == &shop {
            names.push(format!("{shop}-redis-2"));
        }
        for name in names {
            server.ok(&["addons:destroy", &name, "--confirm", app]);
        }
    }
    let users = cli(REDIS_ADMIN, &["ACL", "USERS"]);
    assert!(!users.contains(&shop), "{users}");
    assert_eq!(cli(REDIS_ADMIN, &["EXISTS", &key]).trim(), "0");
    let out = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-u", "root", "-N", "-e"])
        .arg(format!(
            "SELECT (SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE '{shop}%') + (SELECT COUNT(*) FROM mysql.user WHERE user LIKE '{shop}%')"
        ))
        .output()
        .expect("mysql");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_vhosts"])
        .output()
        .expect("rabbitmqctl");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&shop));
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_users"])
        .output()
        .expect("rabbitmqctl");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&shop));
}

#[test]
fn failed_provisioning_leaves_no_database_user_or_config_var() {
    let Some(_) = tool("psql", "apt-get install postgresql-client") else {
        return;
    };
    let tag = unique_tag();
    // An admin that may make roles but not databases: the role is made, the database is not.
    let limited = format!("dzlimited{tag}");
    let (ok, said) = psql(
        &pg_admin_url(),
        &format!("CREATE ROLE {limited} LOGIN CREATEROLE NOCREATEDB"),
    );
    assert!(ok, "{said}");
    let pg_limited = {
        let admin = pg_admin_url();
        let (scheme, rest) = admin.split_once("://").expect("scheme");
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{limited}@{host}")
    };
    let closed_port = support::free_port();
    let server = Server::start_with(&[
        ("DOZEN_ADDON_POSTGRESQL_URL", &pg_limited),
        (
            "DOZEN_ADDON_REDIS_URL",
            &format!("redis://127.0.0.1:{closed_port}"),
        ),
        (
            "DOZEN_ADDON_MYSQL_URL",
            "mysql://root:not-the-password@127.0.0.1:3306",
        ),
    ]);
    let app = format!("half{tag}");
    server.ok(&["apps:create", &app]);

    let pg = server.client(&["addons:create", "postgresql", "-a", &app]);
    assert_ne!(pg.code(), Some(0));
    assert!(pg.stderr.contains("creating the database"), "{}", pg.stderr);
    assert!(pg.stderr.contains("permission denied"), "{}", pg.stderr);
    let resource = format!("{app}_postgresql_1");
    let (ok, count) = psql(
        &pg_admin_url(),
        &format!("SELECT COUNT(*) FROM pg_roles WHERE rolname = '{resource}'"),
    );
    assert!(ok, "{count}");
    assert_eq!(count, "0", "the role made before the failure is dropped");

    let redis = server.client(&["addons:create", "redis", "-a", &app]);
    assert_ne!(redis.code(), Some(0));
    assert!(
        redis.stderr.contains("connecting as admin"),
        "{}",
        redis.stderr
    );
    assert!(
        redis.stderr.contains(&closed_port.to_string()),
        "{}",
        redis.stderr
    );

    let mysql = server.client(&["addons:create", "mysql", "-a", &app]);
    assert_ne!(mysql.code(), Some(0));
    assert!(mysql.stderr.contains("Access denied"), "{}", mysql.stderr);
    assert!(
        !mysql.stderr.contains("not-the-password"),
        "{}",
        mysql.stderr
    );

    // No config var, no release, no add-on recorded.
    assert!(
        server
            .ok(&["config", "-a", &app])
            .contains("no config vars")
    );
    assert_eq!(
        server.json(&["releases", "-a", &app]),
        serde_json::json!([])
    );
    assert_eq!(server.json(&["addons", "-a", &app]), serde_json::json!([]));
    let (ok, said) = psql(&pg_admin_url(), &format!("DROP ROLE {limited}"));
    assert!(ok, "{said}");
}
