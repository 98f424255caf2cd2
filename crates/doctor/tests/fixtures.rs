//! Every fixture under `tests/fixtures/` is a small fake repository with an `EXPECT` file listing
//! exactly which rule ids must fire (open findings), and `accepted ID` lines for findings that a
//! documented deviation accepts. `!nogit` keeps the copy outside any git repository.
//!
//! Fixtures are copied to a temporary directory first (so the dozen repository's own `.git` and
//! `.gitignore` do not leak in); `dot-gitignore` is renamed to `.gitignore` on the way.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use dozen_doctor::{Options, Report, audit, rules};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("fixture dir is readable") {
        let entry = entry.expect("fixture entry");
        let name = entry
            .file_name()
            .to_string_lossy()
            .replace("dot-gitignore", ".gitignore");
        if name == "EXPECT" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type().expect("file type").is_dir() {
            fs::create_dir_all(&dest).expect("mkdir");
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

struct Expect {
    open: BTreeSet<String>,
    accepted: BTreeSet<String>,
    nogit: bool,
}

fn expect_of(dir: &Path) -> Expect {
    let text = fs::read_to_string(dir.join("EXPECT")).expect("EXPECT");
    let mut e = Expect {
        open: BTreeSet::new(),
        accepted: BTreeSet::new(),
        nogit: false,
    };
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line == "!nogit" {
            e.nogit = true;
        } else if let Some(id) = line.strip_prefix("accepted ") {
            e.accepted.insert(id.trim().to_owned());
        } else {
            e.open.insert(line.to_owned());
        }
    }
    e
}

/// Copy a fixture to a temp dir and audit it.
fn audit_fixture(dir: &Path, nogit: bool) -> (tempfile::TempDir, Report) {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_tree(dir, tmp.path());
    if !nogit {
        fs::create_dir_all(tmp.path().join(".git")).expect("mkdir .git");
        fs::write(tmp.path().join(".git/HEAD"), "ref: refs/heads/main\n").expect("HEAD");
    }
    let report = audit(&Options::new(tmp.path())).expect("audit succeeds");
    (tmp, report)
}

fn fixture_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![fixtures_dir()];
    while let Some(d) = stack.pop() {
        if d.join("EXPECT").exists() {
            out.push(d);
            continue;
        }
        for e in fs::read_dir(&d).expect("read fixtures").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_fixture_fires_exactly_its_expected_rules() {
    let mut failures = Vec::new();
    let dirs = fixture_dirs();
    assert!(dirs.len() > 50, "fixtures missing: {}", dirs.len());
    for dir in &dirs {
        let want = expect_of(dir);
        let (_tmp, report) = audit_fixture(dir, want.nogit);
        let open: BTreeSet<String> = report
            .open_rule_ids()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let accepted: BTreeSet<String> = report
            .findings
            .iter()
            .filter(|f| f.accepted.is_some())
            .map(|f| f.rule.to_owned())
            .collect();
        if open != want.open || accepted != want.accepted {
            let name = dir
                .strip_prefix(fixtures_dir())
                .unwrap_or(dir)
                .display()
                .to_string();
            let detail: Vec<String> = report
                .findings
                .iter()
                .map(|f| format!("    {} {} {}", f.rule, f.location(), f.evidence))
                .collect();
            failures.push(format!(
                "{name}: open {open:?} (want {:?}), accepted {accepted:?} (want {:?})\n{}",
                want.open,
                want.accepted,
                detail.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_static_rule_has_a_positive_and_a_negative_fixture() {
    let root = fixtures_dir();
    let mut missing = Vec::new();
    for r in rules::static_rules() {
        let dir = root.join(r.id.to_ascii_lowercase());
        let has = |prefix: &str| {
            fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten().any(|e| {
                        e.file_name().to_string_lossy().starts_with(prefix)
                            && e.path().join("EXPECT").exists()
                    })
                })
                .unwrap_or(false)
        };
        if !has("pos") || !has("neg") {
            missing.push(r.id);
        }
        // The positive fixtures must actually expect the rule.
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("pos"))
            {
                assert!(
                    expect_of(&e.path()).open.contains(r.id),
                    "{} does not expect {}",
                    e.path().display(),
                    r.id
                );
            }
        }
    }
    assert!(
        missing.is_empty(),
        "rules without pos/neg fixtures: {missing:?}"
    );
}

#[test]
fn secrets_are_redacted_in_every_format() {
    let dir = fixtures_dir().join("tf03-secret-in-code/pos");
    let (_tmp, report) = audit_fixture(&dir, false);
    let secret_tail = "ZrT0pLmN3bC7dE";
    let mut human = Vec::new();
    report
        .render_human(&mut human, false, dozen_doctor::FailOn::default())
        .expect("human");
    let mut json = Vec::new();
    report.render_json(&mut json).expect("json");
    let mut sarif = Vec::new();
    report.render_sarif(&mut sarif).expect("sarif");
    for (name, out) in [("human", human), ("json", json), ("sarif", sarif)] {
        let s = String::from_utf8(out).expect("utf8");
        assert!(!s.contains(secret_tail), "{name} output leaks the secret");
        assert!(
            !s.contains("9x@k!f2m"),
            "{name} output leaks the Django key"
        );
        assert!(
            !s.contains("f3Kq9LmZ27xVbN4c"),
            "{name} output leaks the k8s value"
        );
        assert!(s.contains("TF03-SECRET-IN-CODE"), "{name}");
    }
}
