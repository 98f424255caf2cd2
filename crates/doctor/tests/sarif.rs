//! The SARIF output: a structural check that always runs, and a validation against the official
//! SARIF 2.1.0 JSON schema with Python's `jsonschema` when both are available.
//!
//! The schema is not vendored. It is looked up at `$SARIF_SCHEMA`, or taken from the `serde-sarif`
//! crate in the local cargo registry (which ships the OASIS schema as `src/schema.json`). Without
//! a schema or without `python3 -m jsonschema`, the validation fails on CI (`dozen_testkit`) and
//! elsewhere prints why and is skipped; the structural check always runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use dozen_doctor::{Baseline, Options, audit};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn copy_tree(from: &Path, to: &Path) {
    for e in fs::read_dir(from).expect("read fixture").flatten() {
        let name = e
            .file_name()
            .to_string_lossy()
            .replace("dot-gitignore", ".gitignore");
        if name == "EXPECT" {
            continue;
        }
        let dest = to.join(name);
        if e.path().is_dir() {
            fs::create_dir_all(&dest).expect("mkdir");
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// SARIF for a repository with open findings of all severities and an accepted one.
fn sample_sarif() -> Value {
    let tmp = tempfile::tempdir().expect("tempdir");
    for f in [
        "tf03-env-name-branch/pos",
        "tf02-no-manifest/pos",
        "tf03-secret-in-code/pos",
        "scenarios/deviation-accepted",
    ] {
        copy_tree(&fixture(f), tmp.path());
    }
    fs::write(
        tmp.path().join("server.js"),
        "if (process.env.NODE_ENV === 'production') { x() }\n",
    )
    .expect("write");
    let report = audit(&Options::new(tmp.path())).expect("audit");
    let mut out = Vec::new();
    report.render_sarif(&mut out).expect("render");
    serde_json::from_slice(&out).expect("SARIF output is JSON")
}

#[test]
fn sarif_has_the_required_structure() {
    let s = sample_sarif();
    assert_eq!(s["version"], "2.1.0");
    assert!(
        s["$schema"]
            .as_str()
            .is_some_and(|u| u.contains("sarif-2.1.0"))
    );
    let runs = s["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "dozen-doctor");
    let rules = driver["rules"].as_array().expect("rules");
    let ids: Vec<&str> = rules
        .iter()
        .map(|r| r["id"].as_str().expect("rule id"))
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "rule ids are unique");
    for r in rules {
        assert!(r["shortDescription"]["text"].is_string());
        assert!(matches!(
            r["defaultConfiguration"]["level"].as_str(),
            Some("error" | "warning" | "note")
        ));
    }
    let results = runs[0]["results"].as_array().expect("results");
    assert!(!results.is_empty());
    let mut levels = std::collections::BTreeSet::new();
    let mut suppressed = 0;
    for r in results {
        let id = r["ruleId"].as_str().expect("ruleId");
        let index =
            usize::try_from(r["ruleIndex"].as_u64().expect("ruleIndex")).expect("index fits");
        assert_eq!(ids[index], id, "ruleIndex points at the rule");
        levels.insert(r["level"].as_str().expect("level").to_owned());
        assert!(r["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        if let Some(locs) = r["locations"].as_array() {
            let pl = &locs[0]["physicalLocation"];
            let uri = pl["artifactLocation"]["uri"].as_str().expect("uri");
            assert!(!uri.starts_with('/'), "uri is relative to %SRCROOT%: {uri}");
            assert_eq!(pl["artifactLocation"]["uriBaseId"], "%SRCROOT%");
            if let Some(line) = pl["region"]["startLine"].as_u64() {
                assert!(line >= 1);
            }
        }
        if let Some(sup) = r["suppressions"].as_array() {
            suppressed += 1;
            assert!(matches!(
                sup[0]["kind"].as_str(),
                Some("inSource" | "external")
            ));
            assert!(
                sup[0]["justification"]
                    .as_str()
                    .is_some_and(|j| !j.is_empty())
            );
        }
    }
    assert!(
        levels.contains("error") && levels.contains("warning") && levels.contains("note"),
        "{levels:?}"
    );
    assert_eq!(suppressed, 1, "the accepted deviation is a suppression");
    let base = runs[0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .expect("base uri");
    assert!(base.starts_with("file:///") && base.ends_with('/'));
}

fn find_schema() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SARIF_SCHEMA") {
        return Some(PathBuf::from(p));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    // An unpacked copy of serde-sarif...
    for index in fs::read_dir(cargo_home.join("registry/src"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for krate in fs::read_dir(index.path()).into_iter().flatten().flatten() {
            if krate
                .file_name()
                .to_string_lossy()
                .starts_with("serde-sarif-")
            {
                let p = krate.path().join("src/schema.json");
                if p.exists() {
                    return Some(p);
                }
            }
        }
    }
    // ...or the downloaded .crate archive, unpacked with tar.
    for index in fs::read_dir(cargo_home.join("registry/cache"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for krate in fs::read_dir(index.path()).into_iter().flatten().flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if name.starts_with("serde-sarif-") && name.ends_with(".crate") {
                let dir = std::env::temp_dir()
                    .join(format!("dozen-doctor-sarif-schema-{}", std::process::id()));
                fs::create_dir_all(&dir).ok()?;
                let inner = format!("{}/src/schema.json", name.trim_end_matches(".crate"));
                let ok = Command::new("tar")
                    .arg("xzf")
                    .arg(krate.path())
                    .arg("-C")
                    .arg(&dir)
                    .arg(&inner)
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    return Some(dir.join(inner));
                }
            }
        }
    }
    None
}

/// The schema and Python's jsonschema, when both are here; else the test fails on CI and is
/// skipped with a notice elsewhere (`dozen_testkit`).
fn schema_and_validator() -> Option<PathBuf> {
    let Some(schema) = find_schema() else {
        dozen_testkit::unavailable(
            "the SARIF 2.1.0 schema",
            "it was not found",
            "set SARIF_SCHEMA to sarif-schema-2.1.0.json, or fetch the serde-sarif crate \
             into cargo's cache (.ci/run shows how)",
        );
        return None;
    };
    let text = fs::read_to_string(&schema).expect("schema readable");
    assert!(
        text.contains("2.1.0"),
        "{} is not the SARIF 2.1.0 schema",
        schema.display()
    );
    let has_jsonschema = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_jsonschema {
        dozen_testkit::unavailable(
            "Python's jsonschema package",
            "python3 cannot import it",
            "python3 -m pip install jsonschema",
        );
        return None;
    }
    Some(schema)
}

#[test]
fn sarif_validates_against_the_2_1_0_schema() {
    if let Some(schema) = schema_and_validator() {
        validate(&schema, &sample_sarif());
    }
}

/// Validate `doc` against the schema with Python's jsonschema (Draft 7, as the schema declares).
fn validate(schema: &Path, doc: &Value) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("report.sarif");
    fs::write(&path, serde_json::to_vec(doc).expect("serialise")).expect("write");
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1]))\n\
        doc=json.load(open(sys.argv[2]))\n\
        v=jsonschema.Draft7Validator(schema)\n\
        errs=sorted(v.iter_errors(doc), key=lambda e: list(e.path))\n\
        [print(list(e.path), e.message) for e in errs]\n\
        sys.exit(1 if errs else 0)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(schema)
        .arg(&path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "SARIF does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A baseline of one audit applied to a later one: `baselineState` new, unchanged and absent,
/// and `partialFingerprints` on every result; validated against the schema (required here).
#[test]
fn sarif_with_a_baseline_has_states_and_fingerprints_and_validates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(tmp.path().join(".git")).expect(".git");
    fs::write(tmp.path().join("requirements.txt"), "flask==3.0.3\n").expect("write");
    let secret = concat!("k3y-Xq9", "-zzP-18f0a");
    fs::write(
        tmp.path().join("app.py"),
        format!("API_SECRET = \"{secret}\"\nlogging.basicConfig(filename=\"app.log\")\n"),
    )
    .expect("write");
    let first = audit(&Options::new(tmp.path())).expect("audit");
    let baseline = Baseline::from_report(&first);
    // Moved down a line, one finding gone, one new.
    fs::write(
        tmp.path().join("app.py"),
        format!("\nAPI_SECRET = \"{secret}\"\nPASSWORD = \"{secret}\"\n"),
    )
    .expect("write");
    let mut report = audit(&Options::new(tmp.path())).expect("audit");
    report.apply_baseline(&baseline, Path::new("baseline.toml"), false);
    let mut out = Vec::new();
    report.render_sarif(&mut out).expect("render");
    let doc: Value = serde_json::from_slice(&out).expect("SARIF is JSON");
    let results = doc["runs"][0]["results"].as_array().expect("results");
    let mut states = std::collections::BTreeSet::new();
    for r in results {
        states.insert(
            r["baselineState"]
                .as_str()
                .expect("baselineState")
                .to_owned(),
        );
        let fp = r["partialFingerprints"]["dozenDoctorFingerprint/v1"]
            .as_str()
            .expect("partialFingerprints");
        assert!(fp.len() > 32 && fp.contains(':'), "{fp}");
    }
    assert_eq!(
        states.into_iter().collect::<Vec<_>>(),
        ["absent", "new", "unchanged"]
    );
    let absent: Vec<&Value> = results
        .iter()
        .filter(|r| r["baselineState"] == "absent")
        .collect();
    assert_eq!(absent.len(), 1);
    assert_eq!(absent[0]["ruleId"], "TF11-LOG-TO-FILE");
    assert_eq!(absent[0]["kind"], "pass");
    if let Some(schema) = schema_and_validator() {
        validate(&schema, &doc);
    }
}
