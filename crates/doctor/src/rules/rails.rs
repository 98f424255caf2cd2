//! Rails configuration read as Rails reads it: `config/database.yml` and `config/secrets.yml` per
//! environment (with ERB and YAML merge keys), and `config/environments/production.rb`.
//!
//! These YAML files are ERB templates first, so they are not valid YAML until Rails renders them;
//! they are read here by indentation: the top-level key is the environment, `name: &anchor`
//! blocks are remembered, and `<<: *anchor` merges them in. Only the `production` section counts
//! (development and test are the developer's own); the generic line rules' findings in the other
//! sections are dropped ([`drops`]), except dev/prod parity findings, which are about development.
//!
//! - production database through the `sqlite3` adapter: TF04-SQLITE-IN-PROD;
//! - a literal `password:` or `secret_key_base:` in production: TF03-SECRET-IN-CODE;
//! - `<%= ENV.fetch("X", "literal") %>` or `<%= ENV["X"] || "literal" %>` for a secret:
//!   TF03-SECRET-FALLBACK;
//! - `production.rb` that writes the public hostname of mail links or assets as a literal
//!   (`default_url_options = { host: "shop.example" }`, `asset_host = "https://…"`):
//!   TF03-PUBLIC-HOST-IN-CODE;
//! - `production.rb` that logs to stdout only `if ENV["RAILS_LOG_TO_STDOUT"].present?`: otherwise
//!   Rails writes `log/production.log` (TF11-LOG-TO-FILE).

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::bytes::Regex;

use super::rule;
use crate::report::{Finding, Severity};
use crate::text::{is_placeholder, re};
use crate::walk::SourceFile;

/// The YAML files this reader owns (the `.sample`/`.example` templates a deploy copies too).
fn yaml_kind(rel: &str) -> Option<&'static str> {
    let base = rel
        .strip_suffix(".sample")
        .or_else(|| rel.strip_suffix(".example"))
        .or_else(|| rel.strip_suffix(".dist"))
        .unwrap_or(rel);
    if base == "config/database.yml" || base.ends_with("/config/database.yml") {
        Some("database")
    } else if base == "config/secrets.yml" || base.ends_with("/config/secrets.yml") {
        Some("secrets")
    } else {
        None
    }
}

/// One `key: value` line of the YAML.
#[derive(Debug, Clone)]
struct Entry {
    line: u32,
    key: String,
    value: String,
}

/// The entries of each top-level section, and of each anchored block.
#[derive(Debug, Default)]
struct Sections {
    sections: Vec<(String, Vec<Entry>)>,
    anchors: HashMap<String, Vec<Entry>>,
}

fn read_sections(text: &str) -> Sections {
    let mut s = Sections::default();
    // (indent, anchor name) of the anchored blocks being read.
    let mut open: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with("---") || t.starts_with("<%#") {
            continue;
        }
        let indent = raw.len() - t.len();
        open.retain(|(at, _)| indent > *at);
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']).to_owned();
        let value = value.trim().to_owned();
        let entry = Entry {
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            key: key.clone(),
            value: value.clone(),
        };
        for (_, name) in &open {
            s.anchors
                .entry(name.clone())
                .or_default()
                .push(entry.clone());
        }
        if indent == 0 {
            s.sections.push((key, Vec::new()));
        } else if let Some((_, entries)) = s.sections.last_mut() {
            entries.push(entry);
        }
        if let Some(anchor) = value.strip_prefix('&') {
            let name = anchor.split_whitespace().next().unwrap_or("").to_owned();
            open.push((indent, name));
        }
    }
    s
}

impl Sections {
    /// The entries of `section` with its `<<: *anchor` merges expanded (one level deep, as
    /// Rails' files use them). Merged entries carry the line of the `<<:` that brought them.
    fn expanded(&self, section: &str) -> Vec<Entry> {
        let mut out = Vec::new();
        for (name, entries) in &self.sections {
            if name != section {
                continue;
            }
            for e in entries {
                if e.key == "<<" {
                    let anchor = e.value.trim_start_matches('*').trim();
                    for m in self.anchors.get(anchor).into_iter().flatten() {
                        out.push(Entry {
                            line: e.line,
                            ..m.clone()
                        });
                    }
                }
                out.push(e.clone());
            }
        }
        out
    }
}

fn erb_fallback_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        re(r#"<%=?\s*ENV(?:\.fetch\(\s*["'][A-Za-z_][A-Za-z0-9_]*["']\s*,\s*["']([^"']+)["']\s*\)|\[\s*["'][A-Za-z_][A-Za-z0-9_]*["']\s*\]\s*(?:\|\||\bor\b)\s*["']([^"']+)["'])"#)
    })
}

/// The literal fallback of an ERB environment lookup, when there is one.
fn erb_fallback(value: &str) -> Option<String> {
    let caps = erb_fallback_re().captures(value.as_bytes())?;
    let lit = caps.get(1).or_else(|| caps.get(2))?;
    Some(String::from_utf8_lossy(lit.as_bytes()).into_owned())
}

fn line_text(text: &str, line: u32) -> &str {
    text.lines()
        .nth(usize::try_from(line).unwrap_or(1).saturating_sub(1))
        .unwrap_or("")
}

fn yaml_findings(file: &SourceFile, kind: &str) -> Vec<Finding> {
    let text = String::from_utf8_lossy(&file.text);
    let s = read_sections(&text);
    let prod = s.expanded("production");
    let mut out = Vec::new();
    let at = |id: &str, line: u32| {
        Finding::new(
            rule(id),
            Some(&file.rel),
            Some(line),
            line_text(&text, line),
        )
    };
    if kind == "database" {
        let sqlite = prod
            .iter()
            .any(|e| e.key == "adapter" && e.value.trim_matches(['"', '\'']).starts_with("sqlite"));
        if sqlite {
            let own: Vec<&Entry> = prod.iter().filter(|e| e.key != "<<").collect();
            let line = own
                .iter()
                .find(|e| e.key == "database")
                .or_else(|| own.iter().find(|e| e.key == "adapter"))
                .map(|e| e.line);
            if let Some(line) = line {
                out.push(at("TF04-SQLITE-IN-PROD", line));
            }
        }
    }
    for e in &prod {
        let secret =
            e.key == "password" || e.key == "secret_key_base" || super::laravel::secret_var(&e.key);
        let value = e.value.trim_matches(['"', '\'']);
        if !secret || value.is_empty() {
            continue;
        }
        if let Some(lit) = erb_fallback(&e.value) {
            if !lit.trim().is_empty() {
                out.push(at("TF03-SECRET-FALLBACK", e.line));
            }
        } else if !e.value.contains("<%")
            && !e.value.starts_with('*')
            && !e.value.starts_with('&')
            && !is_placeholder(value)
            && value.len() >= 3
        {
            out.push(at("TF03-SECRET-IN-CODE", e.line));
        }
    }
    out.dedup_by(|a, b| a.rule == b.rule && a.line == b.line);
    out
}

fn log_stdout_if_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| re(r#"^[ \t]*(?:if|unless)[ \t]+ENV\[["']RAILS_LOG_TO_STDOUT["']\]"#))
}

fn public_host_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        re(r#"^[ \t]*config\.(?:action_mailer\.default_url_options[ \t]*=[ \t]*\{[^}\n]*\bhost:[ \t]*|(?:action_mailer\.|action_controller\.)?asset_host[ \t]*=[ \t]*)["'][A-Za-z0-9][^"'\n]*["']"#)
    })
}

fn production_rb(file: &SourceFile) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in public_host_re().find_iter(&file.text) {
        let (line, text) = crate::text::line_at(&file.text, m.start());
        out.push(Finding::new(
            rule("TF03-PUBLIC-HOST-IN-CODE"),
            Some(&file.rel),
            Some(line),
            &String::from_utf8_lossy(text),
        ));
    }
    if let Some(m) = log_stdout_if_re().find(&file.text) {
        let (line, text) = crate::text::line_at(&file.text, m.start());
        out.push(Finding::new(
            rule("TF11-LOG-TO-FILE"),
            Some(&file.rel),
            Some(line),
            &String::from_utf8_lossy(text),
        ));
    }
    out
}

/// The findings of one Rails config file.
pub(crate) fn check(file: &SourceFile) -> Vec<Finding> {
    if let Some(kind) = yaml_kind(&file.rel) {
        // `database.yml.sample` is what a deploy copies into place, so it counts.
        let ctx = file.ctx;
        if ctx.test || ctx.doc || ctx.generated {
            return Vec::new();
        }
        return yaml_findings(file, kind);
    }
    if !file.ctx.is_app() {
        return Vec::new();
    }
    if file.rel == "config/environments/production.rb"
        || file.rel.ends_with("/config/environments/production.rb")
    {
        return production_rb(file);
    }
    Vec::new()
}

/// Generic findings about config and databases in the development and test sections of
/// `database.yml` / `secrets.yml` are the developer's own, not the deploy's.
pub(crate) fn drops(f: &Finding, text: Option<&[u8]>) -> bool {
    let (Some(file), Some(line), Some(text)) = (&f.file, f.line, text) else {
        return false;
    };
    if yaml_kind(file).is_none() || !matches!(f.factor, 3 | 4) || f.severity == Severity::Info {
        return false;
    }
    let text = String::from_utf8_lossy(text);
    let s = read_sections(&text);
    let mut section: Option<&str> = None;
    for (name, entries) in &s.sections {
        let start = entries
            .first()
            .map_or(u32::MAX, |e| e.line.saturating_sub(1));
        if start <= line {
            section = Some(name);
        }
    }
    section.is_some_and(|name| name != "production")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_merge_anchors() {
        let s = read_sections(
            "default: &default\n  adapter: sqlite3\n\nproduction:\n  <<: *default\n  database: db/p.sqlite3\n",
        );
        let p = s.expanded("production");
        assert!(p.iter().any(|e| e.key == "adapter" && e.value == "sqlite3"));
        assert!(p.iter().any(|e| e.key == "database" && e.line == 6));
    }

    #[test]
    fn erb_fallbacks() {
        assert_eq!(
            erb_fallback(r#"<%= ENV.fetch("DB_PASSWORD", "s3cret") %>"#).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            erb_fallback(r#"<%= ENV["SECRET_KEY_BASE"] || "abc123" %>"#).as_deref(),
            Some("abc123")
        );
        assert_eq!(erb_fallback(r#"<%= ENV["SECRET_KEY_BASE"] %>"#), None);
    }
}
