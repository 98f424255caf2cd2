//! The human and JSON reports, and `--fail-on`.

use std::fs;

use dozen_doctor::{FailOn, Options, Report, Severity, audit};

fn sample() -> (tempfile::TempDir, Report) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    fs::create_dir_all(root.join(".git")).expect(".git");
    fs::write(root.join("requirements.txt"), "flask==3.0.3\nrequests>=2\n").expect("write");
    fs::write(
        root.join("app.py"),
        "import logging\nimport os\nlogging.getLogger().addHandler(logging.FileHandler('audit.log'))\nif os.environ.get('APP_ENV') == 'production':\n    pass\n",
    )
    .expect("write");
    fs::write(
        root.join("Procfile"),
        "web: gunicorn app:app --bind 0.0.0.0:8000\n",
    )
    .expect("write");
    fs::write(
        root.join("twelve-factor.toml"),
        "[[deviation]]\nrule = \"TF11-LOG-TO-FILE\"\njustification = \"audit trail required on disk\"\n",
    )
    .expect("write");
    let report = audit(&Options::new(root)).expect("audit");
    (tmp, report)
}

#[test]
fn json_report_has_findings_and_a_summary_per_factor() {
    let (_t, report) = sample();
    let mut out = Vec::new();
    report.render_json(&mut out).expect("json");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    let findings = v["findings"].as_array().expect("findings");
    let fixed = findings
        .iter()
        .find(|f| f["rule"] == "TF07-FIXED-PORT")
        .expect("fixed port finding");
    assert_eq!(fixed["factor"], 7);
    assert_eq!(fixed["severity"], "error");
    assert_eq!(fixed["file"], "Procfile");
    assert_eq!(fixed["line"], 1);
    assert!(fixed["why"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(fixed["fix"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(fixed["accepted"].is_null());
    let accepted = findings
        .iter()
        .find(|f| f["rule"] == "TF11-LOG-TO-FILE")
        .expect("accepted finding");
    assert_eq!(
        accepted["accepted"]["justification"],
        "audit trail required on disk"
    );
    assert_eq!(accepted["accepted"]["inline"], false);
    let summary = v["summary"].as_array().expect("summary");
    assert_eq!(summary.len(), 12);
    assert_eq!(summary[6]["status"], "fail");
    assert_eq!(summary[10]["status"], "pass");
    assert_eq!(summary[10]["accepted"], 1);
    assert_eq!(summary[1]["status"], "warn");
}

#[test]
fn human_report_groups_by_factor_and_colours_only_on_request() {
    let (_t, report) = sample();
    let mut plain = Vec::new();
    report
        .render_human(&mut plain, false, FailOn::default())
        .expect("human");
    let plain = String::from_utf8(plain).expect("utf8");
    assert!(plain.contains("VII. Port binding"), "{plain}");
    assert!(plain.contains("TF07-FIXED-PORT  Procfile:1"), "{plain}");
    assert!(
        plain.contains("accepted: audit trail required on disk (twelve-factor.toml:2)"),
        "{plain}"
    );
    assert!(plain.contains("Summary"));
    assert!(plain.contains("exit 1 (--fail-on error)"), "{plain}");
    assert!(!plain.contains('\x1b'));
    let mut coloured = Vec::new();
    report
        .render_human(&mut coloured, true, FailOn::default())
        .expect("human");
    assert!(
        String::from_utf8(coloured)
            .expect("utf8")
            .contains("\x1b[31m")
    );
}

#[test]
fn fail_on_thresholds() {
    let (_t, report) = sample();
    assert_eq!(report.exit_code(FailOn::At(Severity::Error)), 1);
    assert_eq!(report.exit_code(FailOn::Never), 0);
    assert_eq!(
        FailOn::parse("warning"),
        Some(FailOn::At(Severity::Warning))
    );
    assert_eq!(FailOn::parse("bogus"), None);
    // Only warnings left: passes at error, fails at warning.
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(tmp.path().join(".git")).expect(".git");
    fs::write(tmp.path().join("requirements.txt"), "flask>=3\n").expect("write");
    fs::write(tmp.path().join("app.py"), "print(1)\n").expect("write");
    let warn_only = audit(&Options::new(tmp.path())).expect("audit");
    assert_eq!(warn_only.open_rule_ids(), ["TF02-UNPINNED-DEP"]);
    assert_eq!(warn_only.exit_code(FailOn::At(Severity::Error)), 0);
    assert_eq!(warn_only.exit_code(FailOn::At(Severity::Warning)), 1);
}
