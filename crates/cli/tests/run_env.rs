//! The run environment a build records, end to end: a Python app whose Procfile names a
//! console script (`web: gunicorn ...`) from a real PyPI dependency runs on `dozen server`
//! (release phase, web process, one-offs, rollback) and under `dozen start` from a checkout
//! with a virtualenv, the same way.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::server::Server;
use support::*;

/// The fixture app: `gunicorn==23.0.0`, `web: gunicorn app:application`, a release phase
/// that runs gunicorn's `--check-config`, and a `.profile.d` script.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python-gunicorn")
}

/// A copy of the fixture in a temporary directory (outside any git checkout).
fn fixture_copy() -> tempfile::TempDir {
    support::server::copy_fixture(&fixture())
}

/// GET / through the router for `app`: the body of a 200.
fn page(server: &Server, app: &str) -> Option<String> {
    let (status, body) =
        support::server::http_get(server.router_port, &format!("{app}.localhost"), "/").ok()?;
    (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
}

/// Wait until the app's page shows `needle` (a restart or rollback is switching over).
fn await_page(server: &Server, app: &str, needle: &str) -> String {
    let seen = std::cell::RefCell::new(None);
    await_condition(&format!("{app}'s page to show {needle:?}"), || {
        let got = page(server, app);
        let hit = got.as_deref().is_some_and(|p| p.contains(needle));
        *seen.borrow_mut() = got;
        hit
    });
    seen.into_inner().unwrap_or_default()
}

#[test]
fn a_python_app_with_a_console_script_runs_on_the_server() {
    let server = Server::start();
    server.ok(&["apps:create", "gunicorn-app"]);
    let app = fixture_copy();
    let deploy = server.ok(&[
        "deploy",
        "-a",
        "gunicorn-app",
        "-d",
        app.path().to_str().expect("utf-8 path"),
    ]);
    assert!(deploy.contains("v1 is live"), "{deploy}");

    // The web process is gunicorn from the slug's virtualenv, with the variable the app's
    // .profile.d script exports and the Python default.
    let page = await_page(&server, "gunicorn-app", "greeting=");
    assert!(page.contains("greeting=hello from .profile.d\n"), "{page}");
    assert!(page.contains("unbuffered=1\n"), "{page}");
    assert!(page.contains("pythonhome=(unset)\n"), "{page}");
    let python = page
        .lines()
        .find_map(|l| l.strip_prefix("python="))
        .expect("python line");
    assert!(
        python.ends_with("/releases/gunicorn-app/v1/.venv/bin/python"),
        "{page}"
    );

    // The release phase ran gunicorn's console script, which imported the app.
    let logs = server.ok(&["logs", "-a", "gunicorn-app", "-n", "1500"]);
    assert!(logs.contains("app.py imported by release"), "{logs}");
    assert!(logs.contains("run environment: PATH starts with"), "{logs}");

    // One-offs get the same environment.
    let version = server.client(&["run", "-a", "gunicorn-app", "--", "gunicorn --version"]);
    let version = version.expect_code(0, &["run", "gunicorn --version"]);
    assert!(
        version.stdout.contains("23.0.0") || version.stderr.contains("23.0.0"),
        "{version:?}"
    );
    let greeting = server.ok(&[
        "run",
        "-a",
        "gunicorn-app",
        "--",
        "echo \"$PROFILE_GREETING|$PYTHONUNBUFFERED\"",
    ]);
    assert_eq!(greeting, "hello from .profile.d|1\n");

    // A config var wins over the run environment's default (v2).
    server.ok(&[
        "config:set",
        "-a",
        "gunicorn-app",
        "PYTHONUNBUFFERED=from-config",
    ]);
    let page = await_page(&server, "gunicorn-app", "unbuffered=from-config");
    assert!(page.contains("greeting=hello from .profile.d\n"), "{page}");

    // A new deploy with another .profile.d script (v3), then a rollback to v1: the old
    // slug's environment comes back with it.
    std::fs::write(
        app.path().join(".profile.d/greeting.sh"),
        "export PROFILE_GREETING=\"hello again\"\n",
    )
    .expect("write");
    let deploy = server.ok(&[
        "deploy",
        "-a",
        "gunicorn-app",
        "-d",
        app.path().to_str().expect("utf-8 path"),
    ]);
    assert!(deploy.contains("v3 is live"), "{deploy}");
    await_page(&server, "gunicorn-app", "greeting=hello again\n");
    server.ok(&["rollback", "-a", "gunicorn-app", "v1"]);
    let page = await_page(&server, "gunicorn-app", "greeting=hello from .profile.d\n");
    assert!(page.contains("unbuffered=1\n"), "v1's config: {page}");
    assert!(
        page.contains("/releases/gunicorn-app/v4/.venv/bin/python"),
        "{page}"
    );
}

#[test]
fn dozen_start_runs_a_console_script_from_the_checkouts_venv() {
    let app = fixture_copy();
    let venv = Command::new("python3")
        .args(["-m", "venv", ".venv"])
        .current_dir(app.path())
        .status()
        .expect("python3 must be installed for this test");
    assert!(venv.success(), "python3 -m venv failed");
    let pip = Command::new(".venv/bin/python")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "requirements.txt",
        ])
        .current_dir(app.path())
        .status()
        .expect("pip");
    assert!(pip.success(), "pip install -r requirements.txt failed");

    let port = free_port();
    let mut cmd = Command::new(dozen_bin());
    cmd.args(["start", "--no-timestamp", "-p", &port.to_string(), "web"])
        .current_dir(app.path())
        .env_remove("PORT")
        .env_remove("DOZEN_LOG_FORMAT")
        .env("NO_COLOR", "1")
        // Only the host's directories: gunicorn must come from the checkout.
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    let mut running = Running::spawn(cmd);
    let note = running.wait_for("the PATH note", |l| l.contains("PATH starts with"));
    assert!(note.contains(".venv/bin"), "{note}");
    running.wait_for("gunicorn listening", |l| l.contains("Listening at"));
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to web.1");
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut page = String::new();
    s.read_to_string(&mut page).expect("response");
    assert!(
        page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"),
        "{page}"
    );
    let venv_python = app.path().join(".venv/bin/python");
    assert!(
        page.contains(&format!("python={}", venv_python.display())),
        "{page}"
    );
    running.signal(libc::SIGTERM);
    let (status, lines) = running.finish();
    assert!(status.success(), "{status:?}: {lines:?}");
}

#[test]
fn local_run_finds_the_checkouts_bin() {
    let app = App::with("web: hello\n");
    app.write("bin/hello", "#!/bin/sh\necho \"hello from bin, $1\"\n");
    let script = app.path().join("bin/hello");
    let mut perms = std::fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
    let out = app
        .dozen(&["run", "--", "hello", "there"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run");
    let out = Output::from(out).expect_code(0, &["run", "--", "hello", "there"]);
    assert_eq!(out.stdout, "hello from bin, there\n");
    assert!(
        out.stderr.contains("PATH starts with bin"),
        "{}",
        out.stderr
    );
}
