//! `dozen doctor --run` probes against small python3 apps under
//! `crates/doctor/tests/fixtures/run/`, with the real `dozen` binary as the runner.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dozen_doctor::{Options, Report, audit};

fn dozen_bin() -> Option<PathBuf> {
    Some(PathBuf::from(env!("CARGO_BIN_EXE_dozen")))
}

fn has_python() -> bool {
    let ok = std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        dozen_testkit::unavailable(
            "python3",
            "it is needed for the probe fixture apps",
            "apt-get install python3",
        );
    }
    ok
}

fn probe(app: &str) -> Option<(tempfile::TempDir, Report)> {
    let exe = dozen_bin()?;
    if !has_python() {
        return None;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../doctor/tests/fixtures/run")
        .join(app);
    for e in fs::read_dir(&src).expect("fixture").flatten() {
        fs::copy(e.path(), tmp.path().join(e.file_name())).expect("copy");
    }
    fs::create_dir_all(tmp.path().join(".git")).expect(".git");
    let mut opts = Options::new(tmp.path());
    opts.run = true;
    opts.dozen_exe = Some(exe);
    opts.stop_grace = Duration::from_secs(2);
    let report = audit(&opts).expect("audit with --run");
    Some((tmp, report))
}

fn run_ids(r: &Report) -> Vec<&'static str> {
    let mut v: Vec<_> = r
        .findings
        .iter()
        .map(|f| f.rule)
        .filter(|id| id.contains("-RUN-") && !id.starts_with("TF00"))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn an_app_that_binds_port_passes() {
    let Some((_t, r)) = probe("binds-port") else {
        return;
    };
    assert!(r.ran);
    assert_eq!(run_ids(&r), Vec::<&str>::new(), "{:#?}", r.findings);
}

#[test]
fn an_app_on_another_port_is_reported() {
    let Some((_t, r)) = probe("other-port") else {
        return;
    };
    assert_eq!(
        run_ids(&r),
        ["TF07-RUN-OTHER-PORT", "TF07-RUN-PORT-NOT-BOUND"],
        "{:#?}",
        r.findings
    );
}

#[test]
fn an_app_writing_a_log_file_is_reported() {
    let Some((_t, r)) = probe("log-file") else {
        return;
    };
    assert_eq!(run_ids(&r), ["TF11-RUN-LOG-FILE"], "{:#?}", r.findings);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "TF11-RUN-LOG-FILE")
        .expect("finding");
    assert_eq!(f.file.as_deref(), Some("app.log"));
}

#[test]
fn an_app_ignoring_sigterm_is_reported() {
    let Some((_t, r)) = probe("ignores-sigterm") else {
        return;
    };
    assert_eq!(run_ids(&r), ["TF09-RUN-SLOW-STOP"], "{:#?}", r.findings);
}

#[test]
fn an_app_that_does_not_speak_http_is_reported() {
    let Some((_t, r)) = probe("not-http") else {
        return;
    };
    assert_eq!(run_ids(&r), ["TF07-RUN-NO-HTTP"], "{:#?}", r.findings);
}

#[test]
fn an_app_that_crashes_is_reported() {
    let Some((_t, r)) = probe("crashes") else {
        return;
    };
    assert_eq!(run_ids(&r), ["TF09-RUN-EXITED"], "{:#?}", r.findings);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "TF09-RUN-EXITED")
        .expect("finding");
    assert!(f.evidence.contains("code 3"), "{}", f.evidence);
}

#[test]
fn no_web_process_means_skipped_not_failed() {
    let Some(exe) = dozen_bin() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("Procfile"), "worker: python3 -c pass\n").expect("write");
    let mut opts = Options::new(tmp.path());
    opts.run = true;
    opts.dozen_exe = Some(exe);
    let r = audit(&opts).expect("audit");
    assert_eq!(run_ids(&r), Vec::<&str>::new());
    assert!(r.findings.iter().any(|f| f.rule == "TF00-RUN-SKIPPED"));
}
