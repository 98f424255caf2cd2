//! `dozen check`: validation without running anything.

mod support;

use support::*;

#[test]
fn prints_types_env_keys_and_formation() {
    let app = App::with("web: ./server --port $PORT\nworker: ./work\n");
    app.write(".env", "DATABASE_URL=postgres://u:topsecret@db/x\n");
    let out = app.output(&["check", "-m", "web=2"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.contains("Procfile: valid, 2 process type(s)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("DATABASE_URL"));
    assert!(
        !out.stdout.contains("topsecret"),
        "values must not be printed"
    );
    assert!(out.stdout.contains("web.2     port 5001"), "{}", out.stdout);
    assert!(out.stdout.contains("worker.1  port 5100"), "{}", out.stdout);
}

#[test]
fn json_output() {
    let app = App::with("web: ./server\n");
    let out = app.output(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["types"][0]["name"], "web");
    assert_eq!(v["processes"][0]["port"], 5000);
}

#[test]
fn invalid_procfile_fails_with_line() {
    let app = App::with("web: ./server\nweb: ./again\n");
    let out = app.output(&["check"]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("Procfile:2"), "{}", out.stderr);
}
