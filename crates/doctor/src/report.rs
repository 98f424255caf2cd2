//! The result of an audit: findings, the per-factor summary and the exit code policy.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::baseline::{Baseline, BaselineState, BaselineSummary, fingerprint};
use crate::changed_since::ChangedLines;
use crate::rules::{self, RuleInfo};

/// How much a finding matters. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a build unless `--fail-on info`.
    Info,
    /// Probably breaks the factor; a person should look.
    Warning,
    /// Breaks the factor.
    Error,
}

impl Severity {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The threshold of `--fail-on`: the lowest severity that makes the exit code non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Unaccepted findings at or above this severity fail.
    At(Severity),
    /// Never fail (report only).
    Never,
}

impl FailOn {
    /// Parse `error`, `warning`, `info` or `never`.
    pub fn parse(s: &str) -> Option<FailOn> {
        Some(match s {
            "error" => FailOn::At(Severity::Error),
            "warning" => FailOn::At(Severity::Warning),
            "info" => FailOn::At(Severity::Info),
            "never" => FailOn::Never,
            _ => return None,
        })
    }
}

impl Default for FailOn {
    fn default() -> Self {
        FailOn::At(Severity::Error)
    }
}

impl fmt::Display for FailOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailOn::At(s) => f.write_str(s.as_str()),
            FailOn::Never => f.write_str("never"),
        }
    }
}

/// How a finding was accepted as a documented deviation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acceptance {
    /// The written reason.
    pub justification: String,
    /// Where it was written: `twelve-factor.toml:7` or `app.py:12` for an inline comment.
    pub source: String,
    /// True for an inline `dozen-doctor: allow` comment, false for the deviations file.
    pub inline: bool,
}

/// One thing the audit found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable rule id, e.g. `TF03-SECRET-IN-CODE`.
    pub rule: &'static str,
    /// Factor number 1..=12; 0 for bookkeeping of the deviations themselves.
    pub factor: u8,
    /// Severity of this finding (a rule may lower it for a weaker variant).
    pub severity: Severity,
    /// File relative to the audited root, `/`-separated; `None` for the repository as a whole.
    pub file: Option<String>,
    /// 1-based line, when the evidence is a line.
    pub line: Option<u32>,
    /// The offending text, with secrets redacted and long lines cut.
    pub evidence: String,
    /// Why this breaks the factor.
    pub why: &'static str,
    /// What to do instead.
    pub fix: &'static str,
    /// Why the rule applies here, when that depends on other files (e.g. "manage.py names this
    /// settings module"); `None` when the evidence speaks for itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// Set when a documented deviation accepts this finding.
    pub accepted: Option<Acceptance>,
    /// Identifies the finding across line moves (see [`crate::baseline::fingerprint`]).
    pub fingerprint: String,
    /// Set when the report was compared with a baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineState>,
}

impl Finding {
    /// A finding of `rule` (which must be in the catalogue) at `file:line`.
    pub(crate) fn new(
        rule: &'static RuleInfo,
        file: Option<&str>,
        line: Option<u32>,
        evidence: &str,
    ) -> Finding {
        Finding {
            rule: rule.id,
            factor: rule.factor,
            severity: rule.severity,
            file: file.map(str::to_owned),
            line,
            evidence: crate::text::redact_evidence(evidence),
            why: rule.why,
            fix: rule.fix,
            because: None,
            accepted: None,
            fingerprint: String::new(),
            baseline: None,
        }
    }

    /// The same finding with the reason it applies here (redacted like the evidence).
    pub(crate) fn because(mut self, reason: &str) -> Finding {
        self.because = Some(crate::text::redact_evidence(reason));
        self
    }

    /// The same finding with another severity.
    pub(crate) fn with_severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    /// `file:line`, `file` or `.`.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            (None, _) => ".".to_owned(),
        }
    }
}

/// Outcome of one factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No unaccepted warning or error.
    Pass,
    /// Unaccepted warnings, no unaccepted error.
    Warn,
    /// At least one unaccepted error.
    Fail,
}

/// Per-factor summary line.
#[derive(Debug, Clone, Serialize)]
pub struct FactorSummary {
    /// 1..=12 (0 = deviations bookkeeping).
    pub factor: u8,
    /// Short name, e.g. `Config`.
    pub name: &'static str,
    /// pass / warn / fail.
    pub status: Status,
    /// Unaccepted errors.
    pub errors: usize,
    /// Unaccepted warnings.
    pub warnings: usize,
    /// Unaccepted infos.
    pub infos: usize,
    /// Findings accepted by a deviation.
    pub accepted: usize,
    /// Findings recorded in the baseline (they do not count for the status).
    pub baselined: usize,
}

/// Everything an audit found, ready to render.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The audited directory.
    pub root: PathBuf,
    /// How many files were read and checked.
    pub files_scanned: usize,
    /// Findings sorted by factor, file, line and rule.
    pub findings: Vec<Finding>,
    /// Factors I..XII in order, then 0 (deviations) when it has findings.
    pub summary: Vec<FactorSummary>,
    /// Whether the `--run` probes ran.
    pub ran: bool,
    /// Set when the findings were compared with a baseline file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSummary>,
    /// Set when the report was narrowed to the lines changed since a git ref.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_since: Option<ChangedSinceSummary>,
}

/// What `--changed-since` left out.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedSinceSummary {
    /// The git ref compared with.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Findings dropped because they are not on a changed line.
    pub left_out: usize,
}

/// Short name of factor `n` (0 = the deviations bookkeeping).
pub fn factor_name(n: u8) -> &'static str {
    match n {
        1 => "Codebase",
        2 => "Dependencies",
        3 => "Config",
        4 => "Backing services",
        5 => "Build, release, run",
        6 => "Processes",
        7 => "Port binding",
        8 => "Concurrency",
        9 => "Disposability",
        10 => "Dev/prod parity",
        11 => "Logs",
        12 => "Admin processes",
        _ => "Deviations",
    }
}

/// Roman numeral of factor `n`, `-` for 0.
pub fn roman(n: u8) -> &'static str {
    const R: [&str; 13] = [
        "-", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII",
    ];
    R.get(usize::from(n)).copied().unwrap_or("?")
}

impl Report {
    pub(crate) fn new(
        root: PathBuf,
        files_scanned: usize,
        mut findings: Vec<Finding>,
        ran: bool,
    ) -> Report {
        findings.sort_by(|a, b| {
            (a.factor == 0, a.factor, &a.file, a.line, a.rule).cmp(&(
                b.factor == 0,
                b.factor,
                &b.file,
                b.line,
                b.rule,
            ))
        });
        findings.dedup_by(|a, b| a.rule == b.rule && a.file == b.file && a.line == b.line);
        for f in &mut findings {
            f.fingerprint = fingerprint(f.rule, f.file.as_deref().unwrap_or(""), &f.evidence);
        }
        let summary = summarise(&findings);
        Report {
            root,
            files_scanned,
            findings,
            summary,
            ran,
            baseline: None,
            changed_since: None,
        }
    }

    /// Drop the findings in `file` (the baseline file itself, whose redacted evidence can look
    /// like what it records). A file outside the audited root changes nothing.
    pub fn drop_findings_in(&mut self, file: &std::path::Path) {
        let abs = match file.canonicalize() {
            Ok(p) => p,
            Err(_) => return,
        };
        let Ok(rel) = abs.strip_prefix(&self.root) else {
            return;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        self.findings
            .retain(|f| f.file.as_deref() != Some(rel.as_str()));
        self.summary = summarise(&self.findings);
    }

    /// Compare the open findings with `baseline` (read from, or just written to, `file`):
    /// baselined ones no longer count for the summary and `--fail-on`.
    pub fn apply_baseline(&mut self, baseline: &Baseline, file: &std::path::Path, written: bool) {
        let absent = baseline.compare(&mut self.findings);
        let count = |state| {
            self.findings
                .iter()
                .filter(|f| f.baseline == Some(state))
                .count()
        };
        self.baseline = Some(BaselineSummary {
            file: file.to_owned(),
            written,
            recorded: baseline.len(),
            new: count(BaselineState::New),
            unchanged: count(BaselineState::Unchanged),
            absent,
        });
        self.summary = summarise(&self.findings);
    }

    /// Keep only the findings on lines changed since the ref of `changed` (a finding about a
    /// whole file stays when the file changed; one about the whole repository goes).
    pub fn retain_changed(&mut self, changed: &ChangedLines) {
        let before = self.findings.len();
        self.findings.retain(|f| match (&f.file, f.line) {
            (Some(file), Some(line)) => changed.touches_line(file, line),
            (Some(file), None) => changed.touches_file(file),
            (None, _) => false,
        });
        if let Some(b) = &mut self.baseline {
            let count = |state| {
                self.findings
                    .iter()
                    .filter(|f| f.baseline == Some(state))
                    .count()
            };
            b.new = count(BaselineState::New);
            b.unchanged = count(BaselineState::Unchanged);
        }
        self.changed_since = Some(ChangedSinceSummary {
            reference: changed.reference.clone(),
            left_out: before - self.findings.len(),
        });
        self.summary = summarise(&self.findings);
    }

    /// Findings not accepted by a deviation and not baselined.
    pub fn open_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.accepted.is_none() && f.baseline != Some(BaselineState::Unchanged))
    }

    /// Rule ids of the open (unaccepted) findings, sorted and deduplicated.
    pub fn open_rule_ids(&self) -> Vec<&'static str> {
        let mut ids: Vec<_> = self.open_findings().map(|f| f.rule).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// 1 when an unaccepted finding is at or above `fail_on`, else 0.
    pub fn exit_code(&self, fail_on: FailOn) -> u8 {
        match fail_on {
            FailOn::Never => 0,
            FailOn::At(min) => u8::from(self.open_findings().any(|f| f.severity >= min)),
        }
    }

    /// The catalogue entry of a rule id in this report.
    pub fn rule_info(id: &str) -> Option<&'static RuleInfo> {
        rules::lookup(id)
    }
}

/// The per-factor summary of `findings`: accepted and baselined findings are counted apart.
fn summarise(findings: &[Finding]) -> Vec<FactorSummary> {
    let mut summary = Vec::new();
    for factor in (1..=12).chain(std::iter::once(0)) {
        let mut s = FactorSummary {
            factor,
            name: factor_name(factor),
            status: Status::Pass,
            errors: 0,
            warnings: 0,
            infos: 0,
            accepted: 0,
            baselined: 0,
        };
        for f in findings.iter().filter(|f| f.factor == factor) {
            if f.accepted.is_some() {
                s.accepted += 1;
                continue;
            }
            if f.baseline == Some(BaselineState::Unchanged) {
                s.baselined += 1;
                continue;
            }
            match f.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
                Severity::Info => s.infos += 1,
            }
        }
        s.status = if s.errors > 0 {
            Status::Fail
        } else if s.warnings > 0 {
            Status::Warn
        } else {
            Status::Pass
        };
        if factor != 0 || s.errors + s.warnings + s.infos + s.accepted + s.baselined > 0 {
            summary.push(s);
        }
    }
    summary
}
