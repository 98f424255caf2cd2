//! Apps as users write them, on the real `dozen server`: fixtures with real dependencies from PyPI
//! and npm (Django with gunicorn, whitenoise and PostgreSQL; Flask with a worker; Express with no
//! lockfile and no Procfile). Each test deploys one app and checks what its user would check: the
//! page through the router, the migration's table in PostgreSQL, the static file's bytes, the
//! worker's line in `dozen logs`, and one-offs running the app's own tools with their exit status.
//!
//! A Django 6 app asks for a Python the host does not have: the build downloads it with uv
//! (from a mirror on loopback, see support/python_mirror.rs) and the slug carries it.
//!
//! The builds download their dependencies, so these tests need PyPI and the npm registry, the
//! host's `python3` and `node`/`npm`, and `psql` with a PostgreSQL server
//! (`DOZEN_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`).

#[path = "support/python_mirror.rs"]
mod python_mirror;
mod support;

use std::path::{Path, PathBuf};

use support::server::{PgDatabase, Server, copy_fixture};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(body)
}

/// `dozen run -a APP -- ARGS...`: the output, after asserting the exit status.
#[track_caller]
fn run(server: &Server, app: &str, args: &[&str], code: i32) -> support::Output {
    let mut all = vec!["run", "-a", app, "--"];
    all.extend_from_slice(args);
    server.client(&all).expect_code(code, &all)
}

#[test]
fn django_app_migrates_postgres_serves_static_files_and_runs_manage_py() {
    let db = PgDatabase::create("dozen_django");
    let server = Server::start();
    let src = copy_fixture(&fixture("django-notes"));
    server.ok(&["apps:create", "notes"]);
    server.ok(&[
        "config:set",
        "-a",
        "notes",
        &format!("DATABASE_URL={}", db.url),
    ]);

    let log = server.deploy("notes", src.path());
    assert!(log.contains("collectstatic"), "{log}");

    // The release phase ran the app's migration against PostgreSQL.
    assert_eq!(
        db.query("SELECT to_regclass('public.notes_note')").trim(),
        "notes_note"
    );
    assert_eq!(
        db.query("SELECT name FROM django_migrations WHERE app = 'notes'")
            .trim(),
        "0001_initial"
    );

    // The page, through the router, reads that table.
    let (status, body) = server.get("notes.localhost", "/");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(text(&body), "0 notes in postgresql\n");

    // The static file, collected at build time and served by whitenoise, byte for byte.
    let (status, body) = server.get("notes.localhost", "/static/notes/site.css");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let css = std::fs::read(fixture("django-notes/notes/static/notes/site.css")).expect("css");
    assert_eq!(body, css);

    // One-offs run the app's own tools in the release's environment.
    let check = run(&server, "notes", &["python", "manage.py", "check"], 0);
    assert!(
        check.stdout.contains("System check identified no issues"),
        "{check:?}"
    );
    run(
        &server,
        "notes",
        &[
            "python",
            "manage.py",
            "shell",
            "-c",
            "from notes.models import Note; Note.objects.create(text='from a one-off')",
        ],
        0,
    );
    assert_eq!(
        db.query("SELECT text FROM notes_note").trim(),
        "from a one-off"
    );
    assert_eq!(
        text(&server.get("notes.localhost", "/").1),
        "1 notes in postgresql\n"
    );
    let unknown = run(
        &server,
        "notes",
        &["python", "manage.py", "no_such_command"],
        1,
    );
    assert!(unknown.stderr.contains("Unknown command"), "{unknown:?}");
    // `./manage.py` runs with the slug's Python (its `#!/usr/bin/env python3` line).
    run(
        &server,
        "notes",
        &["./manage.py", "showmigrations", "notes"],
        0,
    );
}

#[test]
fn django_collectstatic_failure_fails_the_build_and_a_config_var_skips_it() {
    let server = Server::start();
    let src = copy_fixture(&fixture("django-notes"));
    // Settings without STATIC_ROOT: collectstatic refuses to run.
    let settings = src.path().join("notesite/settings.py");
    let text = std::fs::read_to_string(&settings).expect("settings");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("STATIC_ROOT"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&settings, without).expect("write settings");
    server.ok(&["apps:create", "nostatic"]);

    let dir = src.path().to_str().expect("utf-8 path");
    let args = ["deploy", "-a", "nostatic", "-d", dir];
    let failed = server.client(&args);
    assert_ne!(failed.status.code(), Some(0), "{failed:?}");
    let said = format!("{}{}", failed.stdout, failed.stderr);
    assert!(said.contains("STATIC_ROOT"), "{said}");
    assert!(said.contains("DISABLE_COLLECTSTATIC=1"), "{said}");

    // As on Heroku, the config var switches collectstatic off for the next build.
    server.ok(&["config:set", "-a", "nostatic", "DISABLE_COLLECTSTATIC=1"]);
    let log = server.deploy("nostatic", src.path());
    assert!(log.contains("collectstatic is not run"), "{log}");
}

#[test]
fn flask_app_runs_its_worker_and_its_own_commands() {
    let server = Server::start();
    let src = copy_fixture(&fixture("flask-worker"));
    server.ok(&["apps:create", "flasky"]);
    server.deploy("flasky", src.path());

    let (status, body) = server.get("flasky.localhost", "/");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(text(&body), "Hello from Flask on web.1\n");

    // The worker prints once with plain print() and then waits: the line reaches the logs only
    // when Python's output is unbuffered, as on Heroku.
    server.ok(&["ps:scale", "-a", "flasky", "worker=1"]);
    server.await_state("flasky", "worker.1", "running");
    let line = server.await_log("flasky", "worker ready");
    assert!(line.contains("worker.1"), "{line}");
    assert!(line.contains("with Flask 3.1.1"), "{line}");
    assert!(line.contains("/.venv/bin/python"), "{line}");

    let version = run(&server, "flasky", &["flask", "--version"], 0);
    assert!(version.stdout.contains("Flask 3.1.1"), "{version:?}");
    run(
        &server,
        "flasky",
        &["python", "-c", "import gunicorn, sys; sys.exit(7)"],
        7,
    );
}

#[test]
fn express_app_without_lockfile_or_procfile_runs_npm_start() {
    let server = Server::start();
    let src = copy_fixture(&fixture("express-nolock"));
    server.ok(&["apps:create", "expressy"]);
    let log = server.deploy("expressy", src.path());
    assert!(
        log.contains("npm install"),
        "no lockfile, so no npm ci: {log}"
    );

    let (status, body) = server.get("expressy.localhost", "/");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(text(&body), "Hello from Express in production\n");

    // npx finds the app's own dependency; its exit status comes back.
    let ok = run(
        &server,
        "expressy",
        &["npx", "--no-install", "semver", "-r", ">=7 <8", "7.7.2"],
        0,
    );
    assert_eq!(ok.stdout.trim(), "7.7.2");
    run(
        &server,
        "expressy",
        &["npx", "--no-install", "semver", "-r", ">=8", "7.7.2"],
        1,
    );
    // Dev dependencies are pruned from the slug.
    run(
        &server,
        "expressy",
        &["node", "-e", "require('is-number')"],
        1,
    );
}

#[test]
fn a_python_the_host_lacks_is_downloaded_once_and_carried_in_the_slug() {
    if dozen_testkit::tool("patchelf", "apt-get install patchelf").is_none() {
        return;
    }
    let Some((pyenv, version)) = python_mirror::pyenv_python() else {
        dozen_testkit::unavailable(
            "a pyenv CPython 3.12 or newer",
            "there is none under $PYENV_ROOT/versions",
            "pyenv install 3.13",
        );
        return;
    };
    let mirror = python_mirror::start(&pyenv, &version);
    let minor = version.rsplit_once('.').expect("x.y.z").0.to_string();
    // The server sees the host's own Python only (Debian's 3.11), not pyenv's.
    let path: Vec<String> = std::env::var("PATH")
        .expect("PATH")
        .split(':')
        .filter(|d| !d.contains(".pyenv"))
        .map(String::from)
        .collect();
    let no_pyenv = tempfile::tempdir().expect("tmp");
    let server = Server::start_with(&[
        ("PATH", &path.join(":")),
        ("PYENV_ROOT", &no_pyenv.path().display().to_string()),
        ("UV_PYTHON_DOWNLOADS_JSON_URL", &mirror.json_url),
    ]);
    let src = copy_fixture(&fixture("django6-site"));
    std::fs::write(src.path().join(".python-version"), format!("{minor}\n")).expect("write");
    server.ok(&["apps:create", "six"]);

    let log = server.deploy("six", src.path());
    assert!(
        log.contains(&format!(
            ".python-version asks for Python {minor}, which this host does not have"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("copied Python {version} into .venv")),
        "{log}"
    );
    let (status, body) = server.get("six.localhost", "/");
    assert_eq!(status, 200, "{}", text(&body));
    let body = text(&body).into_owned();
    assert!(
        body.starts_with(&format!("python {version} django 6.0.10 prefix ")),
        "{body}"
    );
    assert!(
        !body.contains("/cache/"),
        "the release's own Python: {body}"
    );

    // The next build finds it in the build cache.
    let log = server.deploy("six", src.path());
    assert!(
        log.contains(&format!("copied Python {version} into .venv")),
        "{log}"
    );
    assert_eq!(mirror.archive_downloads(), 1, "downloaded once");

    // The release does not need the build cache: without it, a one-off still runs it.
    std::fs::remove_dir_all(server.data.path().join("cache").join("six")).expect("rm cache");
    let out = run(
        &server,
        "six",
        &[
            "python",
            "-c",
            "import sys, django; print('%d.%d.%d' % sys.version_info[:3], django.get_version())",
        ],
        0,
    );
    assert_eq!(out.stdout.trim(), format!("{version} 6.0.10"), "{out:?}");
}
