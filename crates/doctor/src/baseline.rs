//! Baselines: adopting the doctor in a codebase that already has findings.
//!
//! A baseline file records the findings of one audit so that later audits fail only on new ones.
//! Each finding is keyed by a fingerprint that survives line moves: blake3 of the rule id, the
//! file's path and the finding's evidence (already redacted) with whitespace collapsed. The line
//! number is not part of it, so inserting lines above a finding keeps it baselined, while editing
//! the offending line makes it new. Identical findings in one file (the same line twice) share a
//! fingerprint and are recorded with a count.
//!
//! The file is TOML, sorted by path, rule and fingerprint so that its diffs are readable:
//!
//! ```toml
//! version = 1
//!
//! [[finding]]
//! rule = "TF03-SECRET-IN-CODE"
//! path = "app.py"
//! fingerprint = "6f1c0d4b9a7e2f35c8d1a0b4e9f27c61"
//! count = 1
//! evidence = "SECRET_KEY = '****'"
//! ```
//!
//! `evidence` is there for the reader (it is redacted like the report); only `fingerprint` and
//! `count` are compared.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DoctorError;
use crate::report::{Finding, Report};

/// The first line of every baseline file; the audit skips files that start with it (their
/// redacted evidence would otherwise look like what they record).
pub(crate) const HEADER: &str = "# dozen doctor baseline:";

/// The format version written into baseline files.
const VERSION: u32 = 1;

/// Where a finding stands against a baseline (SARIF's `baselineState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineState {
    /// Not in the baseline: it counts for `--fail-on`.
    New,
    /// In the baseline: reported, but it does not fail the run.
    Unchanged,
}

impl BaselineState {
    /// `new` or `unchanged`, as SARIF spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineState::New => "new",
            BaselineState::Unchanged => "unchanged",
        }
    }
}

/// One recorded finding (or several identical ones in the same file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    /// Rule id.
    pub rule: String,
    /// File relative to the audited root; empty for the repository as a whole.
    #[serde(default)]
    pub path: String,
    /// See [`fingerprint`].
    pub fingerprint: String,
    /// How many findings had this fingerprint.
    #[serde(default = "one")]
    pub count: u32,
    /// The redacted evidence, for the reader only.
    #[serde(default)]
    pub evidence: String,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    version: u32,
    #[serde(default)]
    finding: Vec<BaselineEntry>,
}

/// The findings recorded in a baseline file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Sorted by path, rule and fingerprint; one entry per fingerprint.
    pub entries: Vec<BaselineEntry>,
}

/// What comparing a report with a baseline gave, beside the per-finding states.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineSummary {
    /// The baseline file.
    pub file: PathBuf,
    /// True when this run wrote the file (it did not exist, or `--update-baseline`).
    pub written: bool,
    /// Findings the baseline file holds.
    pub recorded: usize,
    /// Findings not in the baseline.
    pub new: usize,
    /// Findings matched by the baseline.
    pub unchanged: usize,
    /// Baselined findings that no longer occur (with the count that is gone).
    pub absent: Vec<BaselineEntry>,
}

impl BaselineSummary {
    /// How many baselined findings no longer occur.
    pub fn absent_count(&self) -> usize {
        self.absent
            .iter()
            .map(|e| usize::try_from(e.count).unwrap_or(usize::MAX))
            .sum()
    }
}

/// The fingerprint of a finding: 32 hex digits of blake3 over the rule id, the path and the
/// whitespace-collapsed (redacted) evidence. The line number is deliberately left out.
pub fn fingerprint(rule: &str, path: &str, evidence: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"dozen-doctor-baseline-v1\0");
    h.update(rule.as_bytes());
    h.update(b"\0");
    h.update(path.as_bytes());
    h.update(b"\0");
    h.update(normalise(evidence).as_bytes());
    let hex = h.finalize().to_hex();
    hex.as_str()[..32].to_owned()
}

/// Collapse runs of whitespace to one space and trim.
fn normalise(evidence: &str) -> String {
    evidence.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Baseline {
    /// The baseline of a report: all its findings (accepted ones too, so that every finding of
    /// a later run has a state), counted per fingerprint.
    pub fn from_report(report: &Report) -> Baseline {
        let mut map: BTreeMap<(String, String, String), BaselineEntry> = BTreeMap::new();
        for f in &report.findings {
            let path = f.file.clone().unwrap_or_default();
            let key = (path.clone(), f.rule.to_owned(), f.fingerprint.clone());
            map.entry(key)
                .and_modify(|e| e.count = e.count.saturating_add(1))
                .or_insert_with(|| BaselineEntry {
                    rule: f.rule.to_owned(),
                    path,
                    fingerprint: f.fingerprint.clone(),
                    count: 1,
                    evidence: normalise(&f.evidence),
                });
        }
        Baseline {
            entries: map.into_values().collect(),
        }
    }

    /// Read a baseline file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Baseline>, DoctorError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(DoctorError::BaselineRead {
                    path: path.to_owned(),
                    cause,
                });
            }
        };
        Baseline::parse(&text)
            .map(Some)
            .map_err(|(line, message)| DoctorError::BaselineInvalid {
                path: path.to_owned(),
                line,
                message,
            })
    }

    /// Parse the text of a baseline file; an error is `(line, message)`.
    pub fn parse(text: &str) -> Result<Baseline, (usize, String)> {
        let raw: RawBaseline = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            (line, e.message().trim().to_owned())
        })?;
        if raw.version != VERSION {
            let line = find_line(text, "version").unwrap_or(1);
            return Err((
                line,
                format!(
                    "unsupported baseline version {}; this dozen writes version {VERSION}",
                    raw.version
                ),
            ));
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut lines = finding_lines(text).into_iter();
        for (i, e) in raw.finding.iter().enumerate() {
            let line = lines.next().unwrap_or(1);
            let problem = if e.rule.trim().is_empty() {
                Some("`rule` is empty".to_owned())
            } else if e.fingerprint.len() != 32
                || !e
                    .fingerprint
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                Some("`fingerprint` must be 32 lowercase hex digits, as written by --update-baseline".to_owned())
            } else if e.count == 0 {
                Some("`count` must be at least 1".to_owned())
            } else {
                seen.insert(e.fingerprint.as_str(), i).map(|first| {
                    format!(
                        "the fingerprint of finding {} appears again; merge them into one entry with a count",
                        first + 1
                    )
                })
            };
            if let Some(p) = problem {
                return Err((line, format!("[[finding]] {}: {p}", i + 1)));
            }
        }
        let mut entries = raw.finding;
        entries.sort_by(|a, b| {
            (&a.path, &a.rule, &a.fingerprint).cmp(&(&b.path, &b.rule, &b.fingerprint))
        });
        Ok(Baseline { entries })
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let mut s = String::from(HEADER);
        s.push_str(
            " findings that existed when it was recorded. Audits run with\n\
             # --baseline report them as baselined and fail only on new ones. Rewrite it with\n\
             # --update-baseline; `evidence` is for the reader, `fingerprint` is what is compared.\n",
        );
        let _ = writeln!(s, "version = {VERSION}");
        for e in &self.entries {
            s.push('\n');
            s.push_str("[[finding]]\n");
            let _ = writeln!(s, "rule = {}", toml_string(&e.rule));
            let _ = writeln!(s, "path = {}", toml_string(&e.path));
            let _ = writeln!(s, "fingerprint = {}", toml_string(&e.fingerprint));
            let _ = writeln!(s, "count = {}", e.count);
            let _ = writeln!(s, "evidence = {}", toml_string(&e.evidence));
        }
        s
    }

    /// Write the file whole: to a temporary file beside it, then renamed over it.
    pub fn write(&self, path: &Path) -> Result<(), DoctorError> {
        let err = |cause| DoctorError::BaselineWrite {
            path: path.to_owned(),
            cause,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map_or_else(|| "baseline".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, self.to_toml()).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(|cause| {
            let _ = std::fs::remove_file(&tmp);
            err(cause)
        })
    }

    /// How many findings the baseline holds (counting duplicates).
    pub fn len(&self) -> usize {
        self.entries
            .iter()
            .map(|e| usize::try_from(e.count).unwrap_or(usize::MAX))
            .sum()
    }

    /// True when it records no finding.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Mark each finding new or unchanged; return the entries (with the remaining counts) that
    /// matched nothing.
    pub(crate) fn compare(&self, findings: &mut [Finding]) -> Vec<BaselineEntry> {
        let mut left: BTreeMap<&str, (u32, &BaselineEntry)> = self
            .entries
            .iter()
            .map(|e| (e.fingerprint.as_str(), (e.count, e)))
            .collect();
        for f in findings.iter_mut() {
            let state = match left.get_mut(f.fingerprint.as_str()) {
                Some((n, _)) if *n > 0 => {
                    *n -= 1;
                    BaselineState::Unchanged
                }
                _ => BaselineState::New,
            };
            f.baseline = Some(state);
        }
        left.into_values()
            .filter(|(n, _)| *n > 0)
            .map(|(n, e)| BaselineEntry {
                count: n,
                ..e.clone()
            })
            .collect()
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// 1-based line of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of the first `key = ` at the start of a line.
fn find_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The lines of the `[[finding]]` headers, in order.
fn finding_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[finding]]")
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_whitespace_but_not_text() {
        let a = fingerprint("TF03-SECRET-IN-CODE", "app.py", "SECRET_KEY  =\t'****'");
        let b = fingerprint("TF03-SECRET-IN-CODE", "app.py", " SECRET_KEY = '****' ");
        let c = fingerprint("TF03-SECRET-IN-CODE", "app.py", "SECRET = '****'");
        let d = fingerprint("TF03-SECRET-IN-CODE", "web.py", "SECRET_KEY = '****'");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn round_trips_through_its_own_format() {
        let b = Baseline {
            entries: vec![BaselineEntry {
                rule: "TF11-LOG-TO-FILE".into(),
                path: "dir/we\"ird\\name.py".into(),
                fingerprint: fingerprint("TF11-LOG-TO-FILE", "x", "y"),
                count: 2,
                evidence: "logging.basicConfig(filename=\"a.log\")\u{1}".into(),
            }],
        };
        assert_eq!(Baseline::parse(&b.to_toml()), Ok(b));
    }

    #[test]
    fn malformed_files_name_the_line() {
        let (line, msg) =
            Baseline::parse("version = 1\n\n[[finding]]\nrule = \"X\"\nfingerprint = 12\n")
                .expect_err("a number is not a fingerprint");
        assert_eq!(line, 5, "{msg}");
        let (line, msg) = Baseline::parse(
            "version = 1\n[[finding]]\nrule = \"X\"\nfingerprint = \"00\"\n\n[[finding]]\nrule = \"Y\"\nfingerprint = \"zz\"\n",
        )
        .expect_err("short fingerprint");
        assert_eq!(line, 2, "{msg}");
        assert!(msg.contains("32 lowercase hex"), "{msg}");
        let (line, _) = Baseline::parse("# c\nversion = 2\n").expect_err("version 2");
        assert_eq!(line, 2);
        let (line, _) = Baseline::parse("version = 1\nbogus = true\n").expect_err("unknown key");
        assert!(line <= 2);
    }
}
