//! The run environment a built tree needs ([`RunEnv`]), worked out after the build steps, and
//! its form in the slug manifest.
//!
//! What goes in is what Heroku's buildpacks write into `.profile.d/` for the same stacks:
//!
//! | found in the built tree | on `PATH` | defaults |
//! |---|---|---|
//! | `.venv/bin` (or a `python` build) | `.venv/bin` | `PYTHONUNBUFFERED=1` |
//! | `bin/` (Go and Rust binaries, the app's scripts) | `bin` | |
//! | `node_modules/.bin` (or a `node` build) | `node_modules/.bin` | `NODE_ENV=production` |
//! | `vendor/bin` (Composer) | `vendor/bin` | |
//! | `vendor/bundle/bin` (Bundler binstubs), a `ruby` build | `vendor/bundle/bin` | `RACK_ENV`, `RAILS_ENV` = `production`, `RAILS_LOG_TO_STDOUT`, `RAILS_SERVE_STATIC_FILES` = `enabled` |
//!
//! `PYTHONHOME` is never set: the virtualenv's own `python` finds its standard library.
//! The app's own `.profile.d/*.sh` (lexical order) and `.profile` become
//! [`RunEnv::profile`].

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use dozen_core::RunEnv;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The directories that go on `PATH` when they exist in the tree, first searched first.
pub const PATH_DIRS: [&str; 5] = [
    ".venv/bin",
    "bin",
    "node_modules/.bin",
    "vendor/bin",
    "vendor/bundle/bin",
];

/// The run environment of the built tree `dir`, built as `kind` ([`BuildPlan::kind`]).
///
/// [`BuildPlan::kind`]: crate::BuildPlan::kind
pub fn run_env_of(dir: &Path, kind: &str) -> RunEnv {
    let mut run = local_run_env(dir);
    let has_dir = |rel: &str| dir.join(rel).is_dir();
    if kind.starts_with("python") || has_dir(".venv") {
        run.push_default("PYTHONUNBUFFERED", "1");
    }
    if kind.starts_with("node") || (has_dir("node_modules") && dir.join("package.json").is_file()) {
        run.push_default("NODE_ENV", "production");
    }
    if kind.starts_with("ruby") {
        run.push_default("RACK_ENV", "production");
        run.push_default("RAILS_ENV", "production");
        run.push_default("RAILS_LOG_TO_STDOUT", "enabled");
        run.push_default("RAILS_SERVE_STATIC_FILES", "enabled");
    }
    // In key order, as the manifest keeps them.
    run.defaults.sort();
    run.profile = profile_scripts(dir);
    run
}

/// What `dozen start` and a local `dozen run` add for a checkout in `dir`: the
/// [`PATH_DIRS`] that exist, and nothing else (no production defaults on a laptop, and no
/// profile scripts, which are written for the server).
pub fn local_run_env(dir: &Path) -> RunEnv {
    let mut run = RunEnv::default();
    for rel in PATH_DIRS {
        if dir.join(rel).is_dir() {
            run.push_path(rel);
        }
    }
    run
}

/// `.profile.d/*.sh` (regular files, by name in byte order), then `.profile`, relative to
/// `dir`.
fn profile_scripts(dir: &Path) -> Vec<String> {
    let mut scripts = Vec::new();
    if let Ok(entries) = fs::read_dir(dir.join(".profile.d")) {
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sh"))
            .collect();
        names.sort();
        scripts.extend(names.into_iter().map(|n| format!(".profile.d/{n}")));
    }
    if dir.join(".profile").is_file() {
        scripts.push(".profile".into());
    }
    scripts
}

/// How a [`RunEnv`] is written in the slug manifest:
/// `{"path": [...], "defaults": {"KEY": "value"}, "profile": [...]}`. Every field may be
/// missing (a manifest written before dozen recorded run environments has no `run_env`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Form {
    #[serde(default)]
    path: Vec<String>,
    #[serde(default)]
    defaults: BTreeMap<String, String>,
    #[serde(default)]
    profile: Vec<String>,
}

/// Serialize a [`RunEnv`] in its manifest form (for `#[serde(with)]`).
pub(crate) fn serialize<S: Serializer>(run: &RunEnv, s: S) -> Result<S::Ok, S::Error> {
    Form {
        path: run.path.clone(),
        defaults: run.defaults.iter().cloned().collect(),
        profile: run.profile.clone(),
    }
    .serialize(s)
}

/// Deserialize a [`RunEnv`] from its manifest form (for `#[serde(with)]`).
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RunEnv, D::Error> {
    let form = Form::deserialize(d)?;
    Ok(RunEnv {
        path: form.path,
        defaults: form.defaults.into_iter().collect(),
        profile: form.profile,
    })
}

/// Read a [`RunEnv`] from the `run_env` value of a slug manifest in JSON (as the server's API
/// returns it); a missing or `null` value is the empty run environment.
pub fn run_env_from_json(value: &serde_json::Value) -> Result<RunEnv, serde_json::Error> {
    if value.is_null() {
        return Ok(RunEnv::default());
    }
    deserialize(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dirs: &[&str], files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        for d in dirs {
            fs::create_dir_all(t.path().join(d)).expect("mkdir");
        }
        for f in files {
            let p = t.path().join(f);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(p, "true\n").expect("write");
        }
        t
    }

    #[test]
    fn python_tree_gets_its_venv_and_unbuffered_output() {
        let t = tree(&[".venv/bin"], &["requirements.txt"]);
        let run = run_env_of(t.path(), "python");
        assert_eq!(run.path, [".venv/bin"]);
        assert_eq!(run.defaults, [("PYTHONUNBUFFERED".into(), "1".into())]);
        assert!(!run.defaults.iter().any(|(k, _)| k == "PYTHONHOME"));
        assert!(run.profile.is_empty());
    }

    #[test]
    fn node_go_and_php_trees() {
        let t = tree(&["node_modules/.bin", "bin"], &["package.json"]);
        let run = run_env_of(t.path(), "node");
        assert_eq!(run.path, ["bin", "node_modules/.bin"]);
        assert_eq!(run.defaults, [("NODE_ENV".into(), "production".into())]);

        let t = tree(&["bin"], &["go.mod"]);
        let run = run_env_of(t.path(), "go");
        assert_eq!(run.path, ["bin"]);
        assert!(run.defaults.is_empty());

        let t = tree(&["vendor/bin"], &["composer.json"]);
        assert_eq!(run_env_of(t.path(), "php").path, ["vendor/bin"]);
    }

    #[test]
    fn a_file_named_bin_is_not_a_directory_on_path() {
        let t = tree(&[], &["bin"]);
        assert_eq!(run_env_of(t.path(), "none"), RunEnv::default());
    }

    #[test]
    fn profile_scripts_in_heroku_order() {
        let t = tree(
            &[".profile.d/sub.sh"],
            &[
                ".profile.d/b.sh",
                ".profile.d/a.sh",
                ".profile.d/README",
                ".profile",
            ],
        );
        assert_eq!(
            run_env_of(t.path(), "none").profile,
            [".profile.d/a.sh", ".profile.d/b.sh", ".profile"]
        );
    }

    #[test]
    fn local_run_env_is_path_only() {
        let t = tree(
            &[".venv/bin", "node_modules/.bin"],
            &["package.json", ".profile"],
        );
        let run = local_run_env(t.path());
        assert_eq!(run.path, [".venv/bin", "node_modules/.bin"]);
        assert!(run.defaults.is_empty() && run.profile.is_empty());
    }

    #[test]
    fn manifest_form_round_trips_and_may_be_missing() {
        let mut run = RunEnv::default();
        run.push_path(".venv/bin");
        run.push_default("PYTHONUNBUFFERED", "1");
        run.profile.push(".profile".into());
        let mut json = serde_json::Serializer::new(Vec::new());
        serialize(&run, &mut json).expect("serialize");
        let value: serde_json::Value =
            serde_json::from_slice(&json.into_inner()).expect("valid JSON");
        assert_eq!(
            value,
            serde_json::json!({"path": [".venv/bin"], "defaults": {"PYTHONUNBUFFERED": "1"}, "profile": [".profile"]})
        );
        assert_eq!(run_env_from_json(&value).expect("reads"), run);
        assert_eq!(
            run_env_from_json(&serde_json::Value::Null).expect("reads"),
            RunEnv::default()
        );
        assert_eq!(
            run_env_from_json(&serde_json::json!({})).expect("reads"),
            RunEnv::default()
        );
        assert!(run_env_from_json(&serde_json::json!({"path": "bin"})).is_err());
    }
}
