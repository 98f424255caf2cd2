//! Documented deviations: the `twelve-factor.toml` file (or `[doctor]` in `dozen.toml`) and inline
//! `dozen-doctor: allow` comments. Accepted findings stay in the report, marked accepted.

use std::path::Path;
use std::sync::OnceLock;

use globset::{GlobBuilder, GlobMatcher};
use regex::bytes::Regex;
use serde::Deserialize;

use crate::report::{Acceptance, Finding};
use crate::rules::{self, rule};
use crate::text::re;
use crate::walk::SourceFile;

/// An inline allow comment.
#[derive(Debug, Clone)]
pub(crate) struct Allow {
    pub rel: String,
    pub line: u32,
    pub ids: Vec<String>,
    pub reason: Option<String>,
}

fn allow_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        re(r"dozen-doctor:[ \t]*allow[ \t]+(TF\d\d-[A-Z0-9*-]+(?:[ \t]*,[ \t]*TF\d\d-[A-Z0-9*-]+)*)(?:[ \t]+because[ \t]+([^\n]*))?")
    })
}

/// Inline allow comments in one file (tests, docs and examples are not looked at).
pub(crate) fn allows_in(file: &SourceFile) -> Vec<Allow> {
    let mut out = Vec::new();
    if !file.ctx.is_app() || !file.text.windows(12).any(|w| w == b"dozen-doctor") {
        return out;
    }
    for caps in allow_re().captures_iter(&file.text) {
        let (Some(all), Some(ids)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        let (line, _) = crate::text::line_at(&file.text, all.start());
        let ids = String::from_utf8_lossy(ids.as_bytes())
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();
        let reason = caps.get(2).map(|r| {
            let r = String::from_utf8_lossy(r.as_bytes()).into_owned();
            r.trim()
                .trim_end_matches("*/")
                .trim_end_matches("-->")
                .trim_end_matches("#}")
                .trim_end_matches("%>")
                .trim()
                .to_owned()
        });
        let reason = reason.filter(|r| r.chars().filter(|c| c.is_alphanumeric()).count() >= 3);
        out.push(Allow {
            rel: file.rel.clone(),
            line,
            ids,
            reason,
        });
    }
    out
}

#[derive(Debug, Deserialize, Default)]
struct RawFile {
    #[serde(default, alias = "deviations")]
    deviation: Vec<RawDeviation>,
}

#[derive(Debug, Deserialize, Default)]
struct DozenToml {
    #[serde(default)]
    doctor: Option<RawFile>,
}

#[derive(Debug, Deserialize)]
struct RawDeviation {
    rule: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    justification: Option<String>,
}

/// One entry of the deviations file.
#[derive(Debug)]
pub(crate) struct Deviation {
    rule: String,
    path: Option<(String, Option<GlobMatcher>)>,
    justification: Option<String>,
    file: String,
    line: u32,
}

/// Read the deviations from `twelve-factor.toml` and `dozen.toml` under `root`.
/// Problems become findings.
pub(crate) fn load(root: &Path, bookkeeping: &mut Vec<Finding>) -> Vec<Deviation> {
    let mut out = Vec::new();
    for name in ["twelve-factor.toml", "dozen.toml"] {
        let path = root.join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let src = String::from_utf8_lossy(&bytes).into_owned();
        let parsed: Result<Vec<RawDeviation>, String> = if name == "dozen.toml" {
            toml::from_str::<DozenToml>(&src)
                .map(|d| d.doctor.unwrap_or_default().deviation)
                .map_err(|e| e.to_string())
        } else {
            toml::from_str::<RawFile>(&src)
                .map(|d| d.deviation)
                .map_err(|e| e.to_string())
        };
        let raws = match parsed {
            Ok(r) => r,
            Err(e) => {
                let msg = e.lines().next().unwrap_or("invalid TOML").to_owned();
                bookkeeping.push(Finding::new(
                    rule("TF00-DEVIATIONS-INVALID"),
                    Some(name),
                    None,
                    &msg,
                ));
                continue;
            }
        };
        let mut search_from = 0;
        for raw in raws {
            let needle = format!("\"{}\"", raw.rule);
            let pos = src[search_from..].find(&needle).map(|p| p + search_from);
            let line = pos.map_or(1, |p| src[..p].matches('\n').count() + 1);
            if let Some(p) = pos {
                search_from = p + needle.len();
            }
            let path = raw.path.map(|p| {
                let pat = if p.ends_with('/') {
                    format!("{p}**")
                } else {
                    p.clone()
                };
                let m = GlobBuilder::new(&pat)
                    .literal_separator(true)
                    .build()
                    .ok()
                    .map(|g| g.compile_matcher());
                (p, m)
            });
            out.push(Deviation {
                rule: raw.rule,
                path,
                justification: raw
                    .justification
                    .map(|j| j.trim().to_owned())
                    .filter(|j| !j.is_empty()),
                file: name.to_owned(),
                line: u32::try_from(line).unwrap_or(u32::MAX),
            });
        }
    }
    out
}

fn rule_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

fn rule_exists(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => rules::RULES.iter().any(|r| r.id.starts_with(prefix)),
        None => rules::lookup(pattern).is_some(),
    }
}

/// Mark findings accepted by deviations and allows; report unjustified, stale and unknown ones.
pub(crate) fn apply(
    findings: &mut [Finding],
    deviations: &[Deviation],
    allows: &[Allow],
    bookkeeping: &mut Vec<Finding>,
) {
    for a in allows {
        let at = format!("{}:{}", a.rel, a.line);
        let unknown: Vec<&String> = a.ids.iter().filter(|id| !rule_exists(id)).collect();
        for id in &unknown {
            bookkeeping.push(Finding::new(
                rule("TF00-DEVIATION-UNKNOWN-RULE"),
                Some(&a.rel),
                Some(a.line),
                &format!("dozen-doctor allow {id}"),
            ));
        }
        let Some(reason) = &a.reason else {
            bookkeeping.push(Finding::new(
                rule("TF00-ALLOW-WITHOUT-REASON"),
                Some(&a.rel),
                Some(a.line),
                &format!("allow {} (no `because <reason>`)", a.ids.join(", ")),
            ));
            continue;
        };
        let mut used = false;
        for f in findings.iter_mut() {
            let here = f.file.as_deref() == Some(a.rel.as_str())
                && match f.line {
                    Some(l) => l == a.line || l == a.line + 1,
                    None => true,
                };
            if here && f.factor != 0 && a.ids.iter().any(|id| rule_matches(id, f.rule)) {
                used = true;
                if f.accepted.is_none() {
                    f.accepted = Some(Acceptance {
                        justification: reason.clone(),
                        source: at.clone(),
                        inline: true,
                    });
                }
            }
        }
        if !used && unknown.len() < a.ids.len() {
            bookkeeping.push(Finding::new(
                rule("TF00-ALLOW-STALE"),
                Some(&a.rel),
                Some(a.line),
                &format!("allow {}", a.ids.join(", ")),
            ));
        }
    }
    for d in deviations {
        let ev = match &d.path {
            Some((p, _)) => format!("rule = {}, path = {p}", d.rule),
            None => format!("rule = {}", d.rule),
        };
        if !rule_exists(&d.rule) {
            bookkeeping.push(Finding::new(
                rule("TF00-DEVIATION-UNKNOWN-RULE"),
                Some(&d.file),
                Some(d.line),
                &ev,
            ));
            continue;
        }
        let Some(justification) = &d.justification else {
            bookkeeping.push(Finding::new(
                rule("TF00-DEVIATION-UNJUSTIFIED"),
                Some(&d.file),
                Some(d.line),
                &ev,
            ));
            continue;
        };
        let mut used = false;
        for f in findings.iter_mut() {
            if f.factor == 0 || !rule_matches(&d.rule, f.rule) {
                continue;
            }
            let path_ok = match &d.path {
                None => true,
                Some((_, Some(m))) => f.file.as_deref().is_some_and(|p| m.is_match(p)),
                Some((_, None)) => false,
            };
            if path_ok {
                used = true;
                if f.accepted.is_none() {
                    f.accepted = Some(Acceptance {
                        justification: justification.clone(),
                        source: format!("{}:{}", d.file, d.line),
                        inline: false,
                    });
                }
            }
        }
        if !used {
            bookkeeping.push(Finding::new(
                rule("TF00-DEVIATION-STALE"),
                Some(&d.file),
                Some(d.line),
                &ev,
            ));
        }
    }
}
