//! `--changed-since REF`: the lines changed since a git ref, so that a report can be narrowed to
//! what a branch or a commit touched.
//!
//! The lines come from `git diff -U0 REF` (the working tree, staged or not, against REF) and
//! every line of untracked files that `.gitignore` does not exclude. Paths are relative to the
//! audited directory, like the findings' paths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::DoctorError;

/// Which lines of which files changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangedLines {
    /// The ref compared with.
    pub reference: String,
    /// Changed line ranges (1-based, inclusive) per file.
    files: BTreeMap<String, Vec<(u32, u32)>>,
    /// Untracked files: every line counts as changed.
    untracked: BTreeSet<String>,
}

impl ChangedLines {
    /// Ask git which lines under `root` changed since `reference`.
    pub fn from_git(root: &Path, reference: &str) -> Result<ChangedLines, DoctorError> {
        let inside = git(root, &["rev-parse", "--is-inside-work-tree"])?;
        if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
            return Err(DoctorError::NotAGitRepo {
                path: root.to_owned(),
            });
        }
        let spec = format!("{reference}^{{commit}}");
        let verify = git(
            root,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
        )?;
        if reference.starts_with('-') || !verify.status.success() {
            return Err(DoctorError::UnknownRef {
                path: root.to_owned(),
                reference: reference.to_owned(),
            });
        }
        let commit = String::from_utf8_lossy(&verify.stdout).trim().to_owned();
        let diff = git(
            root,
            &[
                "-c",
                "core.quotePath=off",
                "diff",
                "-U0",
                "--no-color",
                "--no-ext-diff",
                "--no-renames",
                "--relative",
                &commit,
                "--",
                ".",
            ],
        )?;
        if !diff.status.success() {
            return Err(DoctorError::Git {
                path: root.to_owned(),
                message: String::from_utf8_lossy(&diff.stderr).trim().to_owned(),
            });
        }
        let untracked = git(
            root,
            &[
                "-c",
                "core.quotePath=off",
                "ls-files",
                "-z",
                "--others",
                "--exclude-standard",
                "--",
                ".",
            ],
        )?;
        if !untracked.status.success() {
            return Err(DoctorError::Git {
                path: root.to_owned(),
                message: String::from_utf8_lossy(&untracked.stderr).trim().to_owned(),
            });
        }
        let mut changed = ChangedLines::parse_diff(&String::from_utf8_lossy(&diff.stdout));
        changed.reference = reference.to_owned();
        changed.untracked = untracked
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        Ok(changed)
    }

    /// The added or changed lines of a unified diff with no context (`-U0`).
    pub fn parse_diff(diff: &str) -> ChangedLines {
        let mut out = ChangedLines::default();
        let mut current: Option<String> = None;
        for line in diff.lines() {
            if let Some(path) = line.strip_prefix("+++ ") {
                current = if path == "/dev/null" {
                    None
                } else {
                    let p = unquote(path);
                    Some(p.strip_prefix("b/").map_or(p.clone(), str::to_owned))
                };
            } else if let (Some(hunk), Some(file)) = (line.strip_prefix("@@ "), &current) {
                // `@@ -a,b +c,d @@`: d lines from c are new (d defaults to 1; 0 = deletion only).
                let Some(plus) = hunk.split_whitespace().find(|w| w.starts_with('+')) else {
                    continue;
                };
                let mut parts = plus[1..].splitn(2, ',');
                let start: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let count: u32 = parts
                    .next()
                    .map_or(Some(1), |s| s.parse().ok())
                    .unwrap_or(0);
                if count > 0 && start > 0 {
                    out.files
                        .entry(file.clone())
                        .or_default()
                        .push((start, start.saturating_add(count - 1)));
                }
            }
        }
        out
    }

    /// Did `path` change at all (a changed line, or untracked)?
    pub fn touches_file(&self, path: &str) -> bool {
        self.untracked.contains(path) || self.files.contains_key(path)
    }

    /// Is line `line` of `path` new or changed?
    pub fn touches_line(&self, path: &str, line: u32) -> bool {
        self.untracked.contains(path)
            || self
                .files
                .get(path)
                .is_some_and(|r| r.iter().any(|&(a, b)| a <= line && line <= b))
    }
}

fn git(root: &Path, args: &[&str]) -> Result<std::process::Output, DoctorError> {
    Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .map_err(|cause| DoctorError::GitStart {
            path: PathBuf::from(root),
            cause,
        })
}

/// Undo git's C-style quoting of a path (`"a\tb"`); plain paths come back as they are.
fn unquote(path: &str) -> String {
    let Some(inner) = path.strip_prefix('"').and_then(|p| p.strip_suffix('"')) else {
        return path.to_owned();
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut it = inner.bytes().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match it.next() {
            Some(b'n') => bytes.push(b'\n'),
            Some(b't') => bytes.push(b'\t'),
            Some(b'r') => bytes.push(b'\r'),
            Some(b'a') => bytes.push(7),
            Some(b'b') => bytes.push(8),
            Some(b'f') => bytes.push(12),
            Some(b'v') => bytes.push(11),
            Some(d @ b'0'..=b'7') => {
                let mut v = u32::from(d - b'0');
                for _ in 0..2 {
                    if let Some(&n @ b'0'..=b'7') = it.peek() {
                        v = v * 8 + u32::from(n - b'0');
                        it.next();
                    }
                }
                bytes.push(u8::try_from(v).unwrap_or(b'?'));
            }
            Some(other) => bytes.push(other),
            None => bytes.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_added_lines_of_a_zero_context_diff() {
        let diff = "diff --git a/app.py b/app.py\n\
            --- a/app.py\n\
            +++ b/app.py\n\
            @@ -3,0 +4,2 @@ def x():\n\
            +a\n\
            +b\n\
            @@ -10 +12 @@\n\
            -old\n\
            +new\n\
            @@ -20,2 +21,0 @@\n\
            -gone\n\
            -gone\n\
            diff --git a/old.py b/old.py\n\
            --- a/old.py\n\
            +++ /dev/null\n\
            @@ -1 +0,0 @@\n\
            -x\n\
            diff --git \"a/t\\tab.py\" \"b/t\\tab.py\"\n\
            --- \"a/t\\tab.py\"\n\
            +++ \"b/t\\tab.py\"\n\
            @@ -0,0 +1 @@\n\
            +y\n";
        let c = ChangedLines::parse_diff(diff);
        assert!(c.touches_line("app.py", 4) && c.touches_line("app.py", 5));
        assert!(!c.touches_line("app.py", 3) && !c.touches_line("app.py", 6));
        assert!(c.touches_line("app.py", 12));
        assert!(!c.touches_line("app.py", 21));
        assert!(!c.touches_file("old.py"));
        assert!(c.touches_line("t\tab.py", 1));
    }
}
