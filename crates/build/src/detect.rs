//! Which commands build an app: the one it declares, else one detected from its files.

use std::fs;
use std::io;
use std::path::Path;

use crate::error::BuildError;
use crate::manifest::AppManifest;

/// Where detected Rust builds keep `target/`: inside the per-app cache, so incremental
/// artifacts survive between builds without going into the slug.
pub const CARGO_TARGET_IN_CACHE: &str = "$CACHE_DIR/cargo-target";

/// The shell commands that build an app, in order, and what kind of app it was taken for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// Shell commands (`/bin/sh -c`), run in order in the build directory; the first that
    /// fails ends the build.
    pub steps: Vec<String>,
    /// `declared`, `rust`, `node`, `python`, `go`, or `none` (nothing to build).
    pub kind: &'static str,
}

impl BuildPlan {
    /// Decide how to build the app in `dir`.
    ///
    /// A command declared in `dozen.toml` or `app.json` wins. Otherwise, the first of these
    /// that matches:
    ///
    /// | file | kind | steps |
    /// |---|---|---|
    /// | `Cargo.toml` | `rust` | `cargo build --release --target-dir "$CACHE_DIR/cargo-target"`, then copy the executables of its `release/` into `target/release/` of the slug |
    /// | `package.json` | `node` | `npm ci` (`npm install` without a lock file), then `npm run build` if `scripts.build` exists |
    /// | `requirements.txt` | `python` | `python3 -m venv --copies .venv && .venv/bin/python -m pip install -r requirements.txt` |
    /// | `pyproject.toml` | `python` | the same venv, then `.venv/bin/python -m pip install .` |
    /// | `go.mod` | `go` | `go build -o bin/ ./...` |
    /// | none | `none` | no step |
    ///
    /// Errors: `package.json` that is not valid JSON (named with its line).
    pub fn detect(dir: &Path, manifest: &AppManifest) -> Result<BuildPlan, BuildError> {
        if let Some(command) = &manifest.build_command {
            return Ok(BuildPlan {
                steps: vec![command.clone()],
                kind: "declared",
            });
        }
        let has = |name: &str| dir.join(name).is_file();
        if has("Cargo.toml") {
            return Ok(BuildPlan {
                steps: vec![
                    format!("cargo build --release --target-dir \"{CARGO_TARGET_IN_CACHE}\""),
                    format!(
                        "mkdir -p target/release && find \"{CARGO_TARGET_IN_CACHE}/release\" -maxdepth 1 -type f -perm -u+x -exec cp {{}} target/release/ \\;"
                    ),
                ],
                kind: "rust",
            });
        }
        if has("package.json") {
            let install = if has("package-lock.json") || has("npm-shrinkwrap.json") {
                "npm ci"
            } else {
                "npm install"
            };
            let mut steps = vec![install.to_string()];
            if package_json_has_build(&dir.join("package.json"))? {
                steps.push("npm run build".into());
            }
            return Ok(BuildPlan {
                steps,
                kind: "node",
            });
        }
        let venv = "python3 -m venv --copies .venv";
        if has("requirements.txt") {
            return Ok(BuildPlan {
                steps: vec![format!(
                    "{venv} && .venv/bin/python -m pip install -r requirements.txt"
                )],
                kind: "python",
            });
        }
        if has("pyproject.toml") {
            return Ok(BuildPlan {
                steps: vec![format!("{venv} && .venv/bin/python -m pip install .")],
                kind: "python",
            });
        }
        if has("go.mod") {
            return Ok(BuildPlan {
                steps: vec!["go build -o bin/ ./...".into()],
                kind: "go",
            });
        }
        Ok(BuildPlan {
            steps: Vec::new(),
            kind: "none",
        })
    }
}

fn package_json_has_build(path: &Path) -> Result<bool, BuildError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(BuildError::Manifest {
                file: "package.json".into(),
                line: None,
                message: "not valid UTF-8".into(),
            });
        }
        Err(e) => return Err(BuildError::io(path, e)),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| BuildError::Manifest {
            file: "package.json".into(),
            line: Some(e.line()),
            message: format!("invalid JSON: {e}"),
        })?;
    Ok(value
        .get("scripts")
        .and_then(|s| s.get("build"))
        .is_some_and(|b| b.as_str().is_some_and(|s| !s.trim().is_empty())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(files: &[(&str, &str)]) -> BuildPlan {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            fs::write(dir.path().join(name), text).expect("write");
        }
        let manifest = AppManifest::load(dir.path()).expect("manifest");
        BuildPlan::detect(dir.path(), &manifest).expect("detect")
    }

    #[test]
    fn declared_command_wins_over_detection() {
        let plan = plan_for(&[
            ("Cargo.toml", "[package]\n"),
            ("dozen.toml", "[build]\ncommand = \"./build.sh\"\n"),
        ]);
        assert_eq!(plan.kind, "declared");
        assert_eq!(plan.steps, ["./build.sh"]);
    }

    #[test]
    fn rust_builds_release_with_target_in_cache() {
        let plan = plan_for(&[("Cargo.toml", "[package]\n")]);
        assert_eq!(plan.kind, "rust");
        assert!(
            plan.steps[0].starts_with("cargo build --release"),
            "{plan:?}"
        );
        assert!(plan.steps[1].contains("target/release"), "{plan:?}");
    }

    #[test]
    fn node_uses_ci_with_a_lock_file_and_runs_build_when_present() {
        let plan = plan_for(&[
            ("package.json", "{\"scripts\":{\"build\":\"tsc\"}}"),
            ("package-lock.json", "{}"),
        ]);
        assert_eq!(plan.kind, "node");
        assert_eq!(plan.steps, ["npm ci", "npm run build"]);
        let plan = plan_for(&[("package.json", "{\"scripts\":{\"start\":\"node .\"}}")]);
        assert_eq!(plan.steps, ["npm install"]);
    }

    #[test]
    fn node_with_broken_package_json_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("package.json"), "{\n\"scripts\": oops\n}").expect("write");
        let e = BuildPlan::detect(dir.path(), &AppManifest::default()).unwrap_err();
        assert!(e.to_string().starts_with("package.json:2:"), "{e}");
    }

    #[test]
    fn python_makes_a_venv_inside_the_app() {
        let plan = plan_for(&[("requirements.txt", "flask\n")]);
        assert_eq!(plan.kind, "python");
        assert_eq!(
            plan.steps,
            [
                "python3 -m venv --copies .venv && .venv/bin/python -m pip install -r requirements.txt"
            ]
        );
        let plan = plan_for(&[("pyproject.toml", "[project]\n")]);
        assert!(plan.steps[0].ends_with("pip install ."), "{plan:?}");
    }

    #[test]
    fn go_builds_into_bin() {
        let plan = plan_for(&[("go.mod", "module x\n")]);
        assert_eq!(plan.kind, "go");
        assert_eq!(plan.steps, ["go build -o bin/ ./..."]);
    }

    #[test]
    fn nothing_to_build() {
        let plan = plan_for(&[("Procfile", "web: ./server\n")]);
        assert_eq!(plan.kind, "none");
        assert!(plan.steps.is_empty());
    }
}
