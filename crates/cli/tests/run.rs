//! `dozen run`: one-off commands in the app's environment.

mod support;

use std::io::Write;
use std::process::Stdio;

use support::*;

#[test]
fn exit_code_is_the_commands() {
    let app = App::new();
    let out = app.output(&["run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code(), Some(7));
}

#[test]
fn environment_has_env_file_port_and_ps() {
    let app = App::new();
    app.write(".env", "GREETING=\"hello there\"\n");
    let out = app.output(&[
        "run",
        "-p",
        "6000",
        "--",
        "sh",
        "-c",
        "echo \"$GREETING|$PORT|$PS\"",
    ]);
    assert_eq!(out.stdout, "hello there|6000|run.1\n");
    assert_eq!(out.code(), Some(0));
}

#[test]
fn a_single_argument_runs_through_the_shell() {
    let app = App::new();
    app.write(".env", "NAME=dozen\n");
    let out = app.output(&["run", "echo hi $NAME | tr a-z A-Z"]);
    assert_eq!(out.stdout, "HI DOZEN\n");
}

#[test]
fn a_procfile_type_name_runs_its_command() {
    let app = App::with("migrate: echo migrating on $PORT\n");
    let out = app.output(&["run", "migrate"]);
    assert_eq!(out.stdout, "migrating on 5000\n");
}

#[test]
fn stdin_passes_through() {
    let app = App::new();
    let mut child = app
        .dozen(&["run", "--", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"piped input\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED INPUT\n");
}

#[test]
fn missing_command_exits_127() {
    let app = App::new();
    let out = app.output(&["run", "--", "definitely-not-a-command-xyz", "arg"]);
    assert_eq!(out.code(), Some(127));
    assert!(
        out.stderr.contains("definitely-not-a-command-xyz"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_env_stops_before_running() {
    let app = App::new();
    app.write(".env", "A='unterminated secretvalue\n");
    let out = app.output(&["run", "--", "touch", "ran"]);
    assert_ne!(out.code(), Some(0));
    assert!(!app.path().join("ran").exists());
    assert!(out.stderr.contains(".env:1"), "{}", out.stderr);
    assert!(!out.stderr.contains("secretvalue"), "{}", out.stderr);
}

#[test]
fn signals_reach_the_command() {
    // dozen run becomes the command: a signal to "dozen" is a signal to the command.
    let app = App::new();
    let mut run = app.spawn(&[
        "run",
        "--",
        "sh",
        "-c",
        "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    run.wait_for("ready", |l| l == "ready");
    run.signal(libc::SIGTERM);
    let (status, lines) = run.finish();
    assert_eq!(status.code(), Some(42), "{lines:?}");
    assert!(lines.iter().any(|l| l == "got-term"));
}
