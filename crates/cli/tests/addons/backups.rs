//! Backups of add-ons beyond one PostgreSQL capture and restore: MySQL backups with
//! `mysqldump` and `mysql`, restoring into another add-on of the app, and daily schedules run
//! by the server (which survive its restart) with their retention.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::support::server::{Server, pg_admin_url};
use super::support::unique_tag;
use super::{MYSQL_ADMIN, config_get, password_of, psql, said, tool};

/// `mysql` as the add-on at `url` (its user, password and database): its success and output.
fn mysql_as(url: &str, sql: &str) -> (bool, String) {
    let (_, rest) = url.split_once("://").expect("scheme");
    let (userinfo, hostpath) = rest.split_once('@').expect("credentials");
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let (hostport, db) = hostpath.split_once('/').expect("a database");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
    said(
        Command::new("mysql")
            .args(["--no-defaults", "--protocol=TCP", "-N", "-B"])
            .args(["-h", host, "-P", port, "-u", user, db, "-e", sql])
            .env("MYSQL_PWD", password_of(url))
            .output()
            .expect("mysql"),
    )
}

#[track_caller]
fn mysql_ok(url: &str, sql: &str) -> String {
    let (ok, out) = mysql_as(url, sql);
    assert!(ok, "{sql}: {out}");
    out
}

/// The add-on at `url` holds what was backed up: `colour` is `blue`, and the trigger is back
/// (a row `key` inserted in lower case is stored in upper case).
#[track_caller]
fn assert_restored(url: &str, key: &str) {
    assert_eq!(mysql_ok(url, "SELECT v FROM kv WHERE k = 'colour'"), "blue");
    mysql_ok(url, &format!("INSERT INTO kv VALUES ('{key}', 'shout')"));
    assert_eq!(
        mysql_ok(url, &format!("SELECT v FROM kv WHERE k = '{key}'")),
        "SHOUT",
        "the trigger is restored"
    );
}

#[test]
fn mysql_backups_capture_restore_and_restore_into_another_addon() {
    let (Some(_), Some(_)) = (
        tool("mysql", "apt-get install mariadb-client"),
        tool("mysqldump", "apt-get install mariadb-client"),
    ) else {
        return;
    };
    let server = Server::start_with(&[
        ("DOZEN_ADDON_MYSQL_URL", MYSQL_ADMIN),
        ("DOZEN_ADDON_POSTGRESQL_URL", &pg_admin_url()),
    ]);
    let app = format!("myb{}", unique_tag());
    server.ok(&["apps:create", &app]);
    server.ok(&["addons:create", "mysql", "-a", &app]);
    server.ok(&["addons:create", "mysql", "-a", &app, "--as", "COPY"]);
    let (first, second) = (format!("{app}-mysql-1"), format!("{app}-mysql-2"));
    let url = config_get(&server, &app, "MYSQL_URL");
    let copy_url = config_get(&server, &app, "COPY_URL");

    // Data with a trigger, whose DEFINER only a privileged user could set to someone else.
    mysql_ok(
        &url,
        "CREATE TABLE kv (k VARCHAR(50) PRIMARY KEY, v TEXT NOT NULL); \
         INSERT INTO kv VALUES ('colour', 'blue'); \
         CREATE TRIGGER kv_upper BEFORE INSERT ON kv FOR EACH ROW SET NEW.v = UPPER(NEW.v)",
    );
    let captured = server.ok(&["mysql:backups:capture", "-a", &app, "--addon", &first]);
    assert!(captured.contains("b001"), "{captured}");
    let listed = server.json(&["mysql:backups", "-a", &app, "--addon", &first]);
    assert_eq!(listed[0]["id"], "b001", "{listed}");
    assert!(listed[0]["size"].as_i64().unwrap_or(0) > 0, "{listed}");
    let file = server.data.path().join(format!("backups/{first}/b001.sql"));
    let dump = std::fs::read_to_string(&file).expect("the dump");
    assert!(dump.contains("INSERT INTO `kv`"), "a mysqldump file");
    assert!(
        !dump.contains(&password_of(&url)),
        "no password in the dump"
    );
    server.await_log(&app, &format!("backup b001 of {first} captured"));

    // Damage, restore, read back; the trigger is back too.
    mysql_ok(&url, "UPDATE kv SET v = 'damaged'; DROP TRIGGER kv_upper");
    let unconfirmed = server.client(&["mysql:backups:restore", "b001", "-a", &app]);
    assert_ne!(unconfirmed.code(), Some(0));
    assert!(
        unconfirmed.stderr.contains("--confirm"),
        "{}",
        unconfirmed.stderr
    );
    // Two MySQL add-ons: which one is asked for.
    let ambiguous = server.client(&["mysql:backups", "-a", &app]);
    assert_ne!(ambiguous.code(), Some(0));
    assert!(
        ambiguous.stderr.contains("--addon") && ambiguous.stderr.contains(&second),
        "{}",
        ambiguous.stderr
    );
    server.ok(&[
        "mysql:backups:restore",
        "b001",
        "-a",
        &app,
        "--addon",
        &first,
        "--confirm",
        &app,
    ]);
    assert_restored(&url, "new");
    server.await_log(&app, &format!("restored {first} from backup b001"));

    // Into the app's other MySQL add-on: its own user loads it, and owns the trigger.
    let (ok, said) = mysql_as(&copy_url, "SELECT v FROM kv");
    assert!(!ok, "the second add-on starts empty: {said}");
    let into = server.ok(&[
        "mysql:backups:restore",
        "b001",
        "-a",
        &app,
        "--addon",
        &first,
        "--into",
        &second,
        "--confirm",
        &app,
    ]);
    assert!(into.contains(&second), "{into}");
    assert_restored(&copy_url, "copy");
    server.await_log(
        &app,
        &format!("restored {second} from backup b001 of {first}"),
    );
    assert_eq!(
        mysql_ok(&url, "SELECT COUNT(*) FROM kv"),
        "2",
        "the first add-on is untouched"
    );

    // Refused: into an add-on of another service, and a backup id that is not bNNN.
    server.ok(&["addons:create", "postgresql", "-a", &app]);
    let pg = format!("{app}-postgresql-1");
    let refused = server.client(&[
        "mysql:backups:restore",
        "b001",
        "-a",
        &app,
        "--addon",
        &first,
        "--into",
        &pg,
        "--confirm",
        &app,
    ]);
    assert_ne!(refused.code(), Some(0));
    assert!(
        refused.stderr.contains(&pg) && refused.stderr.contains("mysql add-on"),
        "{}",
        refused.stderr
    );
    let bad_id = server.client(&[
        "mysql:backups:restore",
        "latest",
        "-a",
        &app,
        "--addon",
        &first,
        "--confirm",
        &app,
    ]);
    assert_ne!(bad_id.code(), Some(0));
    assert!(bad_id.stderr.contains("bNNN"), "{}", bad_id.stderr);
    assert_eq!(
        mysql_ok(&copy_url, "SELECT COUNT(*) FROM kv"),
        "2",
        "nothing was loaded by a refused restore"
    );

    for name in [&first, &second, &pg] {
        server.ok(&["addons:destroy", name, "--confirm", &app]);
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-12-03T02:00:00Z`).
fn epoch_of(t: &str) -> i64 {
    let num = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("a number");
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
    // Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `HH:MM` UTC of `minutes` minutes from now.
fn utc_time_in(minutes: i64) -> String {
    let s = (now_epoch() + minutes * 60).rem_euclid(86_400);
    format!("{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

/// Wait (up to `limit`) for a line of the app's log containing `needle`.
fn await_log_within(server: &Server, app: &str, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let logs = server.ok(&["logs", "-a", app, "-n", "1500"]);
        if let Some(l) = logs.lines().find(|l| l.contains(needle)) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in the logs of {app}:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn scheduled_backups_run_after_a_restart_keep_the_newest_and_restore_into_a_new_addon() {
    let (Some(_), Some(_), Some(_)) = (
        tool("psql", "apt-get install postgresql-client"),
        tool("pg_dump", "apt-get install postgresql-client"),
        tool("pg_restore", "apt-get install postgresql-client"),
    ) else {
        return;
    };
    let mut server = Server::start_with(&[("DOZEN_ADDON_POSTGRESQL_URL", &pg_admin_url())]);
    let app = format!("sch{}", unique_tag());
    server.ok(&["apps:create", &app]);
    server.ok(&["addons:create", "postgresql", "-a", &app]);
    let addon = format!("{app}-postgresql-1");
    let url = config_get(&server, &app, "DATABASE_URL");
    let (ok, said) = psql(
        &url,
        "CREATE TABLE kv (k text PRIMARY KEY, v text NOT NULL); INSERT INTO kv VALUES ('colour', 'blue')",
    );
    assert!(ok, "{said}");
    server.ok(&["pg:backups:capture", "-a", &app]);
    server.ok(&["pg:backups:capture", "-a", &app]);

    // Restore into a new add-on of the app, made for it.
    server.ok(&[
        "addons:create",
        "postgresql",
        "-a",
        &app,
        "--as",
        "RESTORED",
    ]);
    let restored = format!("{app}-postgresql-2");
    let restored_url = config_get(&server, &app, "RESTORED_URL");
    let (ok, said) = psql(&url, "UPDATE kv SET v = 'damaged'");
    assert!(ok, "{said}");
    let two = server.client(&["pg:backups", "-a", &app]);
    assert!(
        two.code() != Some(0) && two.stderr.contains("--addon"),
        "{}",
        two.stderr
    );
    let restore_into = |server: &Server, id: &str| {
        server.ok(&[
            "pg:backups:restore",
            id,
            "-a",
            &app,
            "--addon",
            &addon,
            "--into",
            &restored,
            "--confirm",
            &app,
        ])
    };
    restore_into(&server, "b002");
    assert_eq!(psql(&restored_url, "SELECT v FROM kv").1, "blue");
    assert_eq!(psql(&url, "SELECT v FROM kv").1, "damaged", "untouched");
    server.await_log(
        &app,
        &format!("restored {restored} from backup b002 of {addon}"),
    );

    // Bad schedules are refused, saying what to write.
    for (args, says) in [
        (["--at", "25:00", "--keep", "2"], "HH:MM"),
        (["--at", "02:00 Europe/Paris", "--keep", "2"], "UTC"),
        (["--at", "02:00", "--keep", "0"], "--keep"),
    ] {
        let mut all = vec!["pg:backups:schedule", "-a", &app, "--addon", &addon];
        all.extend(args);
        let out = server.client(&all);
        assert_ne!(out.code(), Some(0), "{args:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    assert_eq!(
        server.json(&["pg:backups:schedules", "-a", &app]),
        serde_json::json!([])
    );

    // Daily at the next minute (UTC), keeping two. When the minute turns between computing it
    // and the server reading it, the next run is tomorrow: then the one after is asked for.
    let mut schedule = serde_json::Value::Null;
    for minutes in [1, 2] {
        let at = utc_time_in(minutes);
        schedule = server.json(&[
            "pg:backups:schedule",
            "-a",
            &app,
            "--addon",
            &addon,
            "--at",
            &at,
            "--keep",
            "2",
        ]);
        assert_eq!(schedule["at"], at.as_str());
        let next = epoch_of(schedule["next_run"].as_str().expect("next_run"));
        if next - now_epoch() <= 180 {
            break;
        }
    }
    let next = epoch_of(schedule["next_run"].as_str().expect("next_run"));
    assert!(next - now_epoch() <= 180, "{schedule}");
    assert_eq!(schedule["keep"], 2);

    // The schedule is in the store: a restarted server runs it.
    server.stop();
    server.boot(Stdio::inherit());
    let listed = server.json(&["pg:backups:schedules", "-a", &app]);
    assert_eq!(listed[0]["addon"], addon.as_str(), "{listed}");
    assert_eq!(listed[0]["next_run"], schedule["next_run"], "{listed}");

    let wait = Duration::from_secs(u64::try_from(next - now_epoch()).unwrap_or(0) + 90);
    let line = await_log_within(
        &server,
        &app,
        &format!("scheduled backup b003 of {addon} captured"),
        wait,
    );
    assert!(line.contains("bytes"), "{line}");
    await_log_within(
        &server,
        &app,
        &format!("backup b001 of {addon} deleted (its schedule keeps the newest 2)"),
        Duration::from_secs(60),
    );
    let ids: Vec<String> = server
        .json(&["pg:backups", "-a", &app, "--addon", &addon])
        .as_array()
        .expect("list")
        .iter()
        .map(|b| b["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids, ["b002", "b003"]);
    let dir = server.data.path().join("backups").join(&addon);
    assert!(
        !dir.join("b001.dump").exists(),
        "the pruned dump is removed"
    );
    assert!(dir.join("b003.dump").exists());
    // The scheduled backup holds the data as it was at the time.
    restore_into(&server, "b003");
    assert_eq!(psql(&restored_url, "SELECT v FROM kv").1, "damaged");

    // Moved on to the same time tomorrow.
    let listed = server.json(&["pg:backups:schedules", "-a", &app]);
    let moved = epoch_of(listed[0]["next_run"].as_str().expect("next_run"));
    assert_eq!(moved - next, 86_400, "{listed}");

    // Unscheduled: none left, the backups stay.
    server.ok(&["pg:backups:unschedule", "-a", &app, "--addon", &addon]);
    assert_eq!(
        server.json(&["pg:backups:schedules", "-a", &app]),
        serde_json::json!([])
    );
    let again = server.client(&["pg:backups:unschedule", "-a", &app, "--addon", &addon]);
    assert_ne!(again.code(), Some(0));
    assert_eq!(
        server
            .json(&["pg:backups", "-a", &app, "--addon", &addon])
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    for name in [&addon, &restored] {
        server.ok(&["addons:destroy", name, "--confirm", &app]);
    }
}
