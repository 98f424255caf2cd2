//! Findings that depend on more than one file say where and why they apply.

use std::fs;
use std::path::Path;

use dozen_doctor::{FailOn, Options, Report, audit};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).expect("mkdir");
    }
    fs::write(p, text).expect("write");
}

fn audit_tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Report) {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(tmp.path().join(".git")).expect(".git");
    for (rel, text) in files {
        write(tmp.path(), rel, text);
    }
    let report = audit(&Options::new(tmp.path())).expect("audit");
    (tmp, report)
}

const MANAGE: &str =
    "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"shop.conf\")\n";
const SETTINGS: &str = "SECRET_KEY = \"(k9)x=2^m+q@zz\"\nDATABASES = {\"default\": {\"ENGINE\": \"django.db.backends.sqlite3\", \"NAME\": \"db.sqlite3\"}}\n";

#[test]
fn the_settings_module_that_manage_py_names_is_read_as_django_reads_it() {
    let (_t, report) = audit_tree(&[
        ("manage.py", MANAGE),
        ("shop/conf.py", SETTINGS),
        ("requirements.txt", "Django==5.0.6\n"),
    ]);
    let secret = report
        .findings
        .iter()
        .find(|f| f.rule == "TF03-SECRET-IN-CODE" && f.file.as_deref() == Some("shop/conf.py"))
        .expect("the literal SECRET_KEY is reported");
    let because = secret.because.as_deref().expect("a reason");
    assert!(
        because.contains("manage.py sets DJANGO_SETTINGS_MODULE to shop.conf"),
        "{because}"
    );
    assert!(
        !secret.evidence.contains("k9)x"),
        "evidence leaks the key: {}",
        secret.evidence
    );
    let db = report
        .findings
        .iter()
        .find(|f| f.rule == "TF04-SQLITE-IN-PROD")
        .expect("SQLite as the only database is reported");
    assert_eq!(db.line, Some(2));

    // The same file, named by nothing, is not a settings module.
    let (_t, report) = audit_tree(&[
        ("shop/conf.py", SETTINGS),
        ("requirements.txt", "Django==5.0.6\n"),
    ]);
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.rule == "TF04-SQLITE-IN-PROD" || f.because.is_some()),
        "{:?}",
        report.findings
    );
}

#[test]
fn an_env_file_is_reported_only_when_the_app_loads_it_and_git_keeps_it() {
    let app = "from dotenv import load_dotenv\n\nload_dotenv()\n";
    let (_t, report) = audit_tree(&[
        ("app.py", app),
        (".env", "GREETING=hello\n"),
        ("requirements.txt", "python-dotenv==1.0.1\n"),
    ]);
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == "TF03-ENV-FILE-LOADED")
        .expect("reported");
    assert_eq!(f.file.as_deref(), Some(".env"));
    assert!(
        f.because.as_deref().is_some_and(|b| b.contains("app.py:3")),
        "{:?}",
        f.because
    );
    let mut human = Vec::new();
    report
        .render_human(&mut human, false, FailOn::Never)
        .expect("human");
    let human = String::from_utf8(human).expect("utf8");
    assert!(
        human.contains("applies: .env is in the repository"),
        "{human}"
    );
    let mut json = Vec::new();
    report.render_json(&mut json).expect("json");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert!(
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["rule"] == "TF03-ENV-FILE-LOADED" && f["because"].is_string())
    );

    let (_t, report) = audit_tree(&[
        ("app.py", app),
        (".env", "GREETING=hello\n"),
        (".gitignore", ".env\n"),
        ("requirements.txt", "python-dotenv==1.0.1\n"),
    ]);
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.rule == "TF03-ENV-FILE-LOADED")
    );
}
