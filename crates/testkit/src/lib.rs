//! What dozen's test suites share about the outside tools some tests need (`systemd-analyze`,
//! `skopeo`, `openssl`, Python's `jsonschema`, `kubernetes-validate`, a `kube-apiserver`).
//!
//! **For:** one rule, in one place: a test whose tool is missing **fails** with a message naming
//! the tool and how to install it when the suite runs strict, and otherwise is **skipped** with a
//! notice written straight to stderr (past the test harness's capture, so it is seen).
//!
//! Strict means: `DOZEN_REQUIRE_TOOLS=1`, or `CI` set to anything but empty, `0` or `false`
//! (what CI services set). `DOZEN_REQUIRE_TOOLS=0` turns it off even on CI.
//! `DOZEN_REQUIRE_KUBE=1`, the older switch of the Kubernetes tests, is strict too.
//!
//! **Not for:** installing anything (`.ci/run` does that), or services the tests start
//! themselves (PostgreSQL and Redis are required, always).
//!
//! ```no_run
//! // In a test: run it with skopeo, or fail on CI, or skip with a notice elsewhere.
//! let Some(skopeo) = dozen_testkit::tool("skopeo", "apt-get install skopeo") else {
//!     return;
//! };
//! std::process::Command::new(skopeo).arg("--version").status().unwrap();
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

/// The switch that makes a missing tool a failure.
pub const REQUIRE_TOOLS: &str = "DOZEN_REQUIRE_TOOLS";

/// Whether a missing tool fails the test (see the crate docs for the variables).
pub fn strict() -> bool {
    strict_from(|name| std::env::var(name).ok())
}

fn strict_from(var: impl Fn(&str) -> Option<String>) -> bool {
    let on = |v: &str| !matches!(v.trim(), "" | "0" | "false" | "no");
    match var(REQUIRE_TOOLS) {
        Some(v) => on(&v),
        None => {
            var("CI").is_some_and(|v| on(&v)) || var("DOZEN_REQUIRE_KUBE").is_some_and(|v| v == "1")
        }
    }
}

/// `program` as found on `PATH` (or the path itself when it has a `/`), if executable.
pub fn find(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// The tool `program` for this test: `Some(path)` when it is installed. When it is not, the
/// test fails if [`strict`], naming `install` (how to get it); else the skip is announced and
/// `None` returned, and the test returns.
#[track_caller]
pub fn tool(program: &str, install: &str) -> Option<PathBuf> {
    let found = find(program);
    if found.is_none() {
        unavailable(program, "it is not installed", install);
    }
    found
}

/// A tool the test needs cannot be used (`why`): fails the test if [`strict`], else writes a
/// skip notice. `install` says how to get it. Returns (for the caller to return) only when not
/// strict.
#[track_caller]
pub fn unavailable(what: &str, why: &str, install: &str) {
    if strict() {
        panic!(
            "this test needs {what}, but {why}; install it: {install} \
             (a missing tool fails tests when CI or {REQUIRE_TOOLS}=1 is set)"
        );
    }
    let test = std::thread::current()
        .name()
        .map(|n| format!("{n}: "))
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}needs {what}, but {why}; install it: {install} \
         (with CI or {REQUIRE_TOOLS}=1 set, this fails instead)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> bool {
        strict_from(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn strict_on_ci_or_when_asked() {
        assert!(!with(&[]));
        assert!(with(&[("CI", "true")]));
        assert!(with(&[("CI", "1")]));
        assert!(!with(&[("CI", "")]));
        assert!(!with(&[("CI", "false")]));
        assert!(with(&[("DOZEN_REQUIRE_TOOLS", "1")]));
        assert!(!with(&[("CI", "true"), ("DOZEN_REQUIRE_TOOLS", "0")]));
        assert!(with(&[("DOZEN_REQUIRE_KUBE", "1")]));
        assert!(!with(&[("DOZEN_REQUIRE_KUBE", "0")]));
    }

    #[test]
    fn finds_programs_on_path() {
        assert!(find("sh").is_some());
        assert!(find("/bin/sh").is_some());
        assert!(find("dozen-no-such-tool").is_none());
    }
}
