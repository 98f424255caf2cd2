//! Reporters: human text, JSON and SARIF 2.1.0.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::baseline::BaselineState;
use crate::report::{FailOn, Finding, Report, Severity, Status, factor_name, roman};
use crate::rules;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BLUE: &str = "\x1b[34m";
const GREEN: &str = "\x1b[32m";

struct Paint {
    on: bool,
}

impl Paint {
    fn p(&self, style: &str, s: &str) -> String {
        if self.on {
            format!("{style}{s}{RESET}")
        } else {
            s.to_owned()
        }
    }
    fn sev(&self, s: Severity, accepted: bool, baselined: bool) -> String {
        let text = if accepted {
            "accepted".to_owned()
        } else if baselined {
            "baseline".to_owned()
        } else {
            s.as_str().to_owned()
        };
        let style = if accepted || baselined {
            DIM
        } else {
            match s {
                Severity::Error => RED,
                Severity::Warning => YELLOW,
                Severity::Info => BLUE,
            }
        };
        self.p(style, &format!("{text:<8}"))
    }
}

impl Report {
    /// Findings grouped by factor, then the per-factor summary and the totals.
    pub fn render_human(&self, w: &mut dyn Write, color: bool, fail_on: FailOn) -> io::Result<()> {
        let paint = Paint { on: color };
        writeln!(
            w,
            "{} {} ({} files checked{})",
            paint.p(BOLD, "dozen doctor"),
            self.root.display(),
            self.files_scanned,
            if self.ran { ", web process probed" } else { "" }
        )?;
        if let Some(c) = &self.changed_since {
            writeln!(
                w,
                "only findings on lines changed since {} ({} elsewhere left out)",
                c.reference, c.left_out
            )?;
        }
        let mut current: Option<u8> = None;
        for f in &self.findings {
            if current != Some(f.factor) {
                current = Some(f.factor);
                writeln!(w)?;
                writeln!(
                    w,
                    "{}",
                    paint.p(
                        BOLD,
                        &format!("{}. {}", roman(f.factor), factor_name(f.factor))
                    )
                )?;
            }
            let title = rules::lookup(f.rule).map_or("", |r| r.title);
            let baselined = f.accepted.is_none() && f.baseline == Some(BaselineState::Unchanged);
            writeln!(
                w,
                "  {} {}  {}  {}",
                paint.sev(f.severity, f.accepted.is_some(), baselined),
                paint.p(BOLD, f.rule),
                f.location(),
                paint.p(DIM, title)
            )?;
            if !f.evidence.is_empty() {
                writeln!(w, "           {}", f.evidence)?;
            }
            if let Some(b) = &f.because {
                writeln!(w, "           {} {}", paint.p(DIM, "applies:"), b)?;
            }
            match &f.accepted {
                Some(a) => writeln!(
                    w,
                    "           {} {} ({})",
                    paint.p(GREEN, "accepted:"),
                    a.justification,
                    a.source
                )?,
                None if baselined => {}
                None => {
                    writeln!(w, "           {} {}", paint.p(DIM, "why:"), f.why)?;
                    writeln!(w, "           {} {}", paint.p(DIM, "fix:"), f.fix)?;
                }
            }
        }
        writeln!(w)?;
        writeln!(w, "{}", paint.p(BOLD, "Summary"))?;
        for s in &self.summary {
            let status = match s.status {
                Status::Pass => paint.p(GREEN, "pass"),
                Status::Warn => paint.p(YELLOW, "warn"),
                Status::Fail => paint.p(RED, "FAIL"),
            };
            let mut detail = Vec::new();
            for (n, what) in [
                (s.errors, "error"),
                (s.warnings, "warning"),
                (s.infos, "info"),
                (s.accepted, "accepted"),
                (s.baselined, "baselined"),
            ] {
                if n > 0 {
                    detail.push(format!(
                        "{n} {what}{}",
                        if n > 1 && matches!(what, "error" | "warning") {
                            "s"
                        } else {
                            ""
                        }
                    ));
                }
            }
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!("  ({})", detail.join(", "))
            };
            writeln!(
                w,
                "  {:<5} {:<20} {}{}",
                roman(s.factor),
                s.name,
                status,
                detail
            )?;
        }
        let open: Vec<&Finding> = self.open_findings().collect();
        let count = |sev| open.iter().filter(|f| f.severity == sev).count();
        let accepted = self
            .findings
            .iter()
            .filter(|f| f.accepted.is_some())
            .count();
        let baselined = self.findings.len() - open.len() - accepted;
        writeln!(w)?;
        if let Some(b) = &self.baseline {
            if b.written {
                writeln!(
                    w,
                    "baseline written to {}: {} findings recorded; from now on only new ones count",
                    b.file.display(),
                    b.recorded
                )?;
            }
            let gone = b.absent_count();
            if gone > 0 {
                writeln!(
                    w,
                    "{} no longer {}; run with --update-baseline to drop {} from {}",
                    plural(gone, "baselined finding"),
                    if gone == 1 { "occurs" } else { "occur" },
                    if gone == 1 { "it" } else { "them" },
                    b.file.display()
                )?;
            }
        }
        let baselined_part = if self.baseline.is_some() {
            format!(", {baselined} baselined")
        } else {
            String::new()
        };
        writeln!(
            w,
            "{}, {}, {} info, {} accepted{}; exit {} (--fail-on {})",
            plural(count(Severity::Error), "error"),
            plural(count(Severity::Warning), "warning"),
            count(Severity::Info),
            accepted,
            baselined_part,
            self.exit_code(fail_on),
            fail_on
        )?;
        Ok(())
    }

    /// The report as one JSON document (`root`, `files_scanned`, `findings`, `summary`, `ran`).
    pub fn render_json(&self, w: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self).map_err(io::Error::other)?;
        writeln!(w)
    }

    /// The report as a SARIF 2.1.0 log (one run), for GitHub code scanning and other viewers.
    pub fn render_sarif(&self, w: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, &self.to_sarif()).map_err(io::Error::other)?;
        writeln!(w)
    }

    /// The SARIF document as a JSON value.
    pub fn to_sarif(&self) -> Value {
        let rules_json: Vec<Value> = rules::RULES
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "name": camel(r.id),
                    "shortDescription": { "text": r.title },
                    "fullDescription": { "text": r.why },
                    "help": { "text": format!("{} Fix: {}", r.why, r.fix) },
                    "helpUri": "https://12factor.net/",
                    "defaultConfiguration": { "level": level(r.severity) },
                    "properties": { "tags": ["twelve-factor", format!("factor-{}", r.factor)] },
                })
            })
            .collect();
        let mut occurrences: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::new();
        let mut results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let index = rules::RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
                let nth = occurrences.entry(f.fingerprint.as_str()).or_insert(0);
                *nth += 1;
                let mut result = json!({
                    "ruleId": f.rule,
                    "ruleIndex": index,
                    "level": level(f.severity),
                    "message": { "text": match &f.because {
                        Some(b) => format!("{}: {} Applies because {b}. Fix: {}", f.evidence, f.why, f.fix),
                        None => format!("{}: {} Fix: {}", f.evidence, f.why, f.fix),
                    } },
                });
                if let Some(file) = &f.file {
                    let mut region = json!({});
                    if let Some(l) = f.line {
                        region = json!({ "startLine": l });
                    }
                    let mut loc = json!({ "artifactLocation": { "uri": uri_escape(file), "uriBaseId": "%SRCROOT%" } });
                    if f.line.is_some() {
                        loc["region"] = region;
                    }
                    result["locations"] = json!([{ "physicalLocation": loc }]);
                }
                result["partialFingerprints"] =
                    json!({ FINGERPRINT_KEY: format!("{}:{nth}", f.fingerprint) });
                if self.baseline.is_some() {
                    let state = f.baseline.unwrap_or(BaselineState::New);
                    result["baselineState"] = json!(state.as_str());
                }
                if let Some(a) = &f.accepted {
                    result["suppressions"] = json!([{
                        "kind": if a.inline { "inSource" } else { "external" },
                        "status": "accepted",
                        "justification": a.justification,
                    }]);
                }
                result
            })
            .collect();
        if let Some(b) = &self.baseline {
            for e in &b.absent {
                let index = rules::RULES
                    .iter()
                    .position(|r| r.id == e.rule)
                    .unwrap_or(0);
                for nth in 1..=e.count {
                    let mut result = json!({
                        "ruleId": e.rule,
                        "ruleIndex": index,
                        "kind": "pass",
                        "level": "none",
                        "baselineState": "absent",
                        "message": { "text": format!("no longer occurs (baselined): {}", e.evidence) },
                        "partialFingerprints": { FINGERPRINT_KEY: format!("{}:{nth}", e.fingerprint) },
                    });
                    if !e.path.is_empty() {
                        result["locations"] = json!([{ "physicalLocation": {
                            "artifactLocation": { "uri": uri_escape(&e.path), "uriBaseId": "%SRCROOT%" }
                        }}]);
                    }
                    results.push(result);
                }
            }
        }
        let root_uri = format!(
            "file://{}/",
            uri_escape(&self.root.to_string_lossy()).trim_end_matches('/')
        );
        json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": {
                    "name": "dozen-doctor",
                    "informationUri": "https://12factor.net/",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules_json,
                }},
                "originalUriBaseIds": { "%SRCROOT%": { "uri": root_uri } },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }],
        })
    }
}

/// The `partialFingerprints` key of dozen's fingerprint (see [`crate::baseline::fingerprint`]),
/// followed by `:n` for the n-th finding with the same fingerprint.
const FINGERPRINT_KEY: &str = "dozenDoctorFingerprint/v1";

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// `TF03-SECRET-IN-CODE` -> `SecretInCode`.
fn camel(id: &str) -> String {
    id.split('-')
        .skip(1)
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut c = lower.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Percent-encode what may not appear in a URI path.
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
