//! `dozen doctor --baseline FILE` and `--changed-since REF` on real git repositories made in each
//! test, through the real `dozen` binary: what a team adopting the doctor in CI would run.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const SECRET: &str = concat!("k3y-Xq9", "-zzP-18f0a");
const OTHER_SECRET: &str = concat!("n3w-Pq7", "-rrT-99c1b");

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A committed Python app whose settings hold one literal secret.
fn repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    git(d, &["init", "-q", "-b", "main"]);
    fs::write(d.join("requirements.txt"), "flask==3.0.3\n").expect("write");
    fs::write(
        d.join("app.py"),
        format!(
            "import os\nfrom flask import Flask\n\napp = Flask(__name__)\napp.config[\"SECRET_KEY\"] = \"{SECRET}\"\n"
        ),
    )
    .expect("write");
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "first"]);
    tmp
}

fn doctor(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dozen"))
        .arg("doctor")
        .arg(dir)
        .args(args)
        .env_remove("DOZEN_DOCTOR_FORMAT")
        .env("NO_COLOR", "1")
        .output()
        .expect("run dozen doctor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}{}",
            stdout(o),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// (rule, file, line, baseline state) of the findings of a JSON report.
fn findings(v: &Value) -> Vec<(String, String, u64, String)> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["file"].as_str().unwrap_or_default().to_owned(),
                f["line"].as_u64().unwrap_or(0),
                f["baseline"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn secret_findings(v: &Value) -> Vec<(String, String, u64, String)> {
    findings(v)
        .into_iter()
        .filter(|f| f.0 == "TF03-SECRET-IN-CODE")
        .collect()
}

#[test]
fn a_baseline_is_recorded_then_survives_moves_and_fails_on_edits() {
    let tmp = repo();
    let d = tmp.path();
    let base = d.join("doctor-baseline.toml");
    let base_arg = base.to_str().expect("utf-8 path");

    // Without a baseline the secret fails the run.
    assert_eq!(doctor(d, &[]).status.code(), Some(1));

    // First run with --baseline: the file is written, today's findings do not fail.
    let first = doctor(d, &["--baseline", base_arg]);
    assert_eq!(first.status.code(), Some(0), "{}", stdout(&first));
    assert!(
        stdout(&first).contains("baseline written to"),
        "{}",
        stdout(&first)
    );
    let text = fs::read_to_string(&base).expect("baseline written");
    assert!(text.contains("TF03-SECRET-IN-CODE") && text.contains("path = \"app.py\""));
    assert!(
        !text.contains(SECRET),
        "the baseline holds redacted evidence only"
    );

    // Lines inserted above the finding: still baselined, still exit 0.
    let app = fs::read_to_string(d.join("app.py")).expect("read");
    fs::write(
        d.join("app.py"),
        format!("# settings\n\n\n{}", app.replace("app = ", "app  =  ")),
    )
    .expect("write");
    let moved = doctor(d, &["--baseline", base_arg, "--format", "json"]);
    assert_eq!(moved.status.code(), Some(0), "{}", stdout(&moved));
    let v = json(&moved);
    assert_eq!(
        secret_findings(&v),
        vec![(
            "TF03-SECRET-IN-CODE".to_owned(),
            "app.py".to_owned(),
            8,
            "unchanged".to_owned()
        )]
    );
    assert_eq!(v["baseline"]["new"], 0);
    let human = stdout(&doctor(d, &["--baseline", base_arg]));
    assert!(
        human.contains("baseline TF03-SECRET-IN-CODE  app.py:8"),
        "{human}"
    );

    // The offending line edited: a new finding, and the old one no longer occurs. (Only the
    // secret's value changed would be the same finding: evidence is fingerprinted redacted.)
    let app = fs::read_to_string(d.join("app.py")).expect("read");
    fs::write(
        d.join("app.py"),
        app.replace("[\"SECRET_KEY\"]", "[\"SIGNING_SECRET\"]"),
    )
    .expect("write");
    let edited = doctor(d, &["--baseline", base_arg, "--format", "json"]);
    assert_eq!(edited.status.code(), Some(1), "a new secret fails");
    let v = json(&edited);
    assert_eq!(secret_findings(&v)[0].3, "new");
    assert_eq!(v["baseline"]["absent"].as_array().map(Vec::len), Some(1));
    let human = doctor(d, &["--baseline", base_arg]);
    assert!(
        stdout(&human).contains("1 baselined finding no longer occurs; run with --update-baseline"),
        "{}",
        stdout(&human)
    );

    // --update-baseline takes today's findings as the new baseline.
    let updated = doctor(d, &["--baseline", base_arg, "--update-baseline"]);
    assert_eq!(updated.status.code(), Some(0), "{}", stdout(&updated));
    let after = doctor(d, &["--baseline", base_arg]);
    assert_eq!(after.status.code(), Some(0));
    assert!(!stdout(&after).contains("no longer occur"));
}

#[test]
fn the_committed_baseline_is_not_audited_itself() {
    let tmp = repo();
    let d = tmp.path();
    fs::write(
        d.join("settings.py"),
        "DATABASE_URL = \"postgres://db.internal:5432/app\"\n",
    )
    .expect("write");
    let base = d.join("doctor-baseline.toml");
    let base_arg = base.to_str().expect("utf-8 path");
    assert_eq!(doctor(d, &["--baseline", base_arg]).status.code(), Some(0));
    assert!(
        fs::read_to_string(&base)
            .expect("baseline")
            .contains("postgres://db.internal")
    );
    for args in [
        &["--format", "json"][..],
        &["--baseline", base_arg, "--format", "json"],
    ] {
        let v = json(&doctor(d, args));
        assert!(
            findings(&v).iter().all(|f| f.1 != "doctor-baseline.toml"),
            "{args:?}: {v:#}"
        );
    }
}

#[test]
fn identical_findings_are_counted() {
    let tmp = repo();
    let d = tmp.path();
    let line = format!("API_SECRET = \"{SECRET}\"\n");
    fs::write(d.join("keys.py"), line.repeat(2)).expect("write");
    let base = d.join("b.toml");
    let base_arg = base.to_str().expect("utf-8 path");
    assert_eq!(doctor(d, &["--baseline", base_arg]).status.code(), Some(0));
    assert!(
        fs::read_to_string(&base)
            .expect("baseline")
            .contains("count = 2")
    );
    fs::write(d.join("keys.py"), line.repeat(3)).expect("write");
    let v = json(&doctor(d, &["--baseline", base_arg, "--format", "json"]));
    let states: Vec<String> = secret_findings(&v)
        .into_iter()
        .filter(|f| f.1 == "keys.py")
        .map(|f| f.3)
        .collect();
    assert_eq!(states, ["unchanged", "unchanged", "new"]);
}

#[test]
fn changed_since_reports_only_the_changed_lines() {
    let tmp = repo();
    let d = tmp.path();
    // A new finding on a new line of a tracked file, and one in an untracked file.
    let app = fs::read_to_string(d.join("app.py")).expect("read");
    fs::write(
        d.join("app.py"),
        format!("{app}app.config[\"API_TOKEN\"] = \"{OTHER_SECRET}\"\n"),
    )
    .expect("write");
    fs::write(
        d.join("extra.py"),
        format!("PASSWORD = \"{OTHER_SECRET}\"\n"),
    )
    .expect("write");
    let out = doctor(d, &["--changed-since", "HEAD", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let got: Vec<(String, u64)> = findings(&v).into_iter().map(|f| (f.1, f.2)).collect();
    assert_eq!(
        got,
        [("app.py".to_owned(), 6), ("extra.py".to_owned(), 1)],
        "only the new lines: {v:#}"
    );
    assert_eq!(v["changed_since"]["ref"], "HEAD");
    assert!(v["changed_since"]["left_out"].as_u64() >= Some(1));

    // Nothing changed since the working tree's own state: nothing reported, exit 0.
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "second"]);
    let clean = doctor(d, &["--changed-since", "HEAD"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    assert!(stdout(&clean).contains("only findings on lines changed since HEAD"));
    // Since the first commit, only the second commit's lines.
    let since_first = json(&doctor(
        d,
        &["--changed-since", "HEAD~1", "--format", "json"],
    ));
    assert_eq!(findings(&since_first).len(), 2);
}

#[test]
fn changed_since_in_a_subdirectory_of_the_repository() {
    let tmp = repo();
    let d = tmp.path();
    let sub = d.join("services/web");
    fs::create_dir_all(&sub).expect("mkdir");
    fs::write(sub.join("requirements.txt"), "flask==3.0.3\n").expect("write");
    fs::write(sub.join("old.py"), format!("API_SECRET = \"{SECRET}\"\n")).expect("write");
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "web service"]);
    fs::write(
        sub.join("old.py"),
        format!("API_SECRET = \"{SECRET}\"\nPASSWORD = \"{OTHER_SECRET}\"\n"),
    )
    .expect("write");
    let v = json(&doctor(
        &sub,
        &["--changed-since", "HEAD", "--format", "json"],
    ));
    let got: Vec<(String, u64)> = findings(&v).into_iter().map(|f| (f.1, f.2)).collect();
    assert_eq!(got, [("old.py".to_owned(), 2)], "{v:#}");
}

#[test]
fn changed_since_and_baseline_together() {
    let tmp = repo();
    let d = tmp.path();
    let base = d.join("b.toml");
    let base_arg = base.to_str().expect("utf-8 path");
    assert_eq!(doctor(d, &["--baseline", base_arg]).status.code(), Some(0));
    fs::write(
        d.join("extra.py"),
        format!("PASSWORD = \"{OTHER_SECRET}\"\n"),
    )
    .expect("write");
    let out = doctor(
        d,
        &[
            "--baseline",
            base_arg,
            "--changed-since",
            "HEAD",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let got = findings(&json(&out));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "extra.py");
    assert_eq!(got[0].3, "new");
}

#[test]
fn changed_since_needs_git_and_a_known_ref() {
    let tmp = repo();
    let d = tmp.path();
    let out = doctor(d, &["--changed-since", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`no-such-branch` is not a commit, branch or tag"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no report on bad input");

    let plain = tempfile::tempdir().expect("tempdir");
    fs::write(plain.path().join("app.py"), "x = 1\n").expect("write");
    let out = doctor(plain.path(), &["--changed-since", "HEAD"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a git repository"), "{err}");
}

#[test]
fn a_malformed_baseline_is_named_with_its_line() {
    let tmp = repo();
    let d = tmp.path();
    let base = d.join("b.toml");
    fs::write(
        &base,
        "version = 1\n\n[[finding]]\nrule = \"TF03-SECRET-IN-CODE\"\npath = \"app.py\"\nfingerprint = \"not-hex\"\n",
    )
    .expect("write");
    let before = fs::read_to_string(&base).expect("read");
    let out = doctor(d, &["--baseline", base.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: invalid baseline", base.display())),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no report on bad input");
    assert_eq!(
        fs::read_to_string(&base).expect("read"),
        before,
        "left as it was"
    );

    fs::write(&base, "version = 1\n[[finding]\n").expect("write");
    let out = doctor(d, &["--baseline", base.to_str().expect("utf-8 path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2: invalid baseline", base.display())),
        "{err}"
    );
}
