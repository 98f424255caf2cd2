//! Laravel's `config/*.php` read as Laravel reads it: `env('X', 'default')` gives the value a
//! deploy gets when `X` is unset, so the default is what matters.
//!
//! - `env('DB_PASSWORD', 'literal')` (any secret-named variable) with a non-empty literal:
//!   TF03-SECRET-FALLBACK;
//! - `'debug' => env('APP_DEBUG', true)`: TF03-HARDCODED-DEBUG;
//! - `'default' => env('DB_CONNECTION', 'sqlite')` in `config/database.php`: TF04-SQLITE-IN-PROD;
//! - the default log channel followed to where it writes: `env('LOG_CHANNEL', 'stack')` to the
//!   stack's channels (`env('LOG_STACK', 'single')`), and a `single` or `daily` channel to its
//!   `'path' => storage_path('logs/…')` line (TF11-LOG-TO-FILE, reported there once instead of on
//!   the `default` line); Laravel 5's `'log' => env('APP_LOG', 'single')` in `config/app.php`
//!   likewise;
//! - `'host' => 'localhost'` with no `env()` (outside `config/app.php`, whose host is the app's
//!   own): TF04-HARDCODED-SERVICE-HOST;
//! - `'default' => env('FILESYSTEM_DISK', 'local')`: uploads on the local disk (TF06-LOCAL-UPLOADS);
//!   `'driver' => env('SESSION_DRIVER', 'file')`: sessions on one process's disk
//!   (TF06-MEMORY-SESSIONS);
//! - a `.env` that `.gitignore` does not exclude, with `APP_KEY` set (Laravel loads it at start):
//!   TF03-ENV-FILE-COMMITTED. `.env.example` is documentation and is not looked at here.

use std::sync::OnceLock;

use regex::bytes::Regex;

use super::app::is_secret_name;
use super::rule;
use crate::report::Finding;
use crate::text::{is_placeholder, line_at, re};
use crate::walk::SourceFile;

/// `env('NAME', default)`: group 1 = name, 2 = a quoted default, 3 = a bare default.
fn env_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        re(r#"\benv\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*,\s*(?:'([^'\n]*)'|"([^"\n]*)"|([A-Za-z0-9_]+))\s*\)"#)
    })
}

/// A secret-named variable whose last word is the secret itself (`DB_PASSWORD`, `APP_KEY`),
/// not a setting about secrets (`AUTH_PASSWORD_BROKER`, `AUTH_PASSWORD_TIMEOUT`).
pub(crate) fn secret_var(name: &str) -> bool {
    let last = name
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .find(|p| !p.is_empty())
        .unwrap_or(name)
        .to_ascii_uppercase();
    is_secret_name(name)
        && (matches!(
            last.as_str(),
            "KEY"
                | "SECRET"
                | "PASSWORD"
                | "PASS"
                | "PASSWD"
                | "PWD"
                | "TOKEN"
                | "SALT"
                | "PASSPHRASE"
                | "APIKEY"
                | "CREDENTIALS"
        ) || last.ends_with("SECRET")
            || last.ends_with("PASSWORD")
            || last.ends_with("TOKEN"))
}

/// Is this a Laravel config file (`config/*.php` of an app)?
fn config_name(rel: &str) -> Option<&str> {
    let (dir, name) = rel.rsplit_once('/')?;
    if dir != "config" && !dir.ends_with("/config") {
        return None;
    }
    name.strip_suffix(".php")
}

fn finding(file: &SourceFile, id: &str, pos: usize) -> Finding {
    let (line, text) = line_at(&file.text, pos);
    Finding::new(
        rule(id),
        Some(&file.rel),
        Some(line),
        &String::from_utf8_lossy(text),
    )
}

/// The text of the line holding byte `pos`, before the `env(` call: which array key it sets.
fn key_before(text: &[u8], pos: usize) -> String {
    let start = text[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let head = String::from_utf8_lossy(&text[start..pos]);
    head.split("=>")
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(['\'', '"'])
        .to_owned()
}

/// A `.env` that is not ignored, with Laravel's `APP_KEY` set: the framework loads it at start,
/// so the key (which encrypts cookies and sessions) is committed with the code.
fn committed_env(file: &SourceFile) -> Vec<Finding> {
    let app_key = re(r"^[ \t]*APP_KEY[ \t]*=[ \t]*[\x22']?(base64:)?[A-Za-z0-9+/=_-]{16,}");
    match app_key.find(&file.text) {
        Some(m) if file.ctx.is_app() => vec![finding(file, "TF03-ENV-FILE-COMMITTED", m.start())],
        _ => Vec::new(),
    }
}

/// The findings of one Laravel config file (or a committed `.env`).
pub(crate) fn check(file: &SourceFile) -> Vec<Finding> {
    let mut out = Vec::new();
    if file.rel == ".env" || file.rel.ends_with("/.env") {
        return committed_env(file);
    }
    let Some(name) = config_name(&file.rel) else {
        return out;
    };
    if !file.ctx.is_app() || !file.text.windows(4).any(|w| w == b"env(") {
        return out;
    }
    let text = &file.text[..];
    for caps in env_re().captures_iter(text) {
        let (Some(all), Some(var)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        let var = String::from_utf8_lossy(var.as_bytes()).into_owned();
        let quoted = caps.get(2).or_else(|| caps.get(3));
        let default = quoted
            .or_else(|| caps.get(4))
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            .unwrap_or_default();
        let key = key_before(text, all.start());
        let pos = all.start();
        if quoted.is_some()
            && secret_var(&var)
            && !default.trim().is_empty()
            && !is_placeholder(&default)
        {
            out.push(finding(file, "TF03-SECRET-FALLBACK", pos));
        }
        if var == "APP_DEBUG" && default.eq_ignore_ascii_case("true") {
            out.push(finding(file, "TF03-HARDCODED-DEBUG", pos));
        }
        if name == "database" && key == "default" && default == "sqlite" {
            out.push(finding(file, "TF04-SQLITE-IN-PROD", pos));
        }
        if name == "filesystems" && key == "default" && default == "local" {
            out.push(finding(file, "TF06-LOCAL-UPLOADS", pos));
        }
        if name == "session" && key == "driver" && default == "file" {
            out.push(finding(file, "TF06-MEMORY-SESSIONS", pos));
        }
        if name == "app" && key == "log" && matches!(default.as_str(), "single" | "daily") {
            out.push(finding(file, "TF11-LOG-TO-FILE", pos));
        }
    }
    if name == "logging" {
        out.extend(log_channel(file));
    }
    if name != "app" {
        for m in literal_host_re().find_iter(text) {
            let (_, line) = line_at(text, m.start());
            let t = String::from_utf8_lossy(line);
            let t = t.trim_start();
            if !(t.starts_with("//") || t.starts_with('*') || t.starts_with('#')) {
                out.push(finding(file, "TF04-HARDCODED-SERVICE-HOST", m.start()));
            }
        }
    }
    out
}

/// `'host' => 'literal'`: a service host with no `env()` around it.
fn literal_host_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| re(r#"['"]host['"][ \t]*=>[ \t]*['"][A-Za-z0-9][^'"\n]*['"]"#))
}

/// The byte range of the `'name' => [ ... ]` block of a channel (to the matching bracket).
fn channel_block(text: &[u8], name: &str) -> Option<(usize, usize)> {
    let pattern = format!(r#"['"]{}['"]\s*=>\s*\["#, regex::escape(name));
    let m = re(&pattern).find(text)?;
    let mut depth = 0usize;
    for (i, &b) in text[m.end() - 1..].iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some((m.start(), m.end() - 1 + i));
                }
            }
            _ => {}
        }
    }
    None
}

/// Follow `'default' => env('LOG_CHANNEL', …)` to the channels that write files.
fn log_channel(file: &SourceFile) -> Vec<Finding> {
    let text = &file.text[..];
    let default_re =
        re(r#"['"]default['"]\s*=>\s*env\(\s*['"]LOG_CHANNEL['"]\s*,\s*['"]([a-z_-]+)['"]\s*\)"#);
    // Without a `default`, Laravel's own `logging.php` is merged in: LOG_CHANNEL defaults to
    // `stack`, and the stack to `single`.
    let default = match default_re.captures(text) {
        Some(caps) => match caps.get(1) {
            Some(chan) => String::from_utf8_lossy(chan.as_bytes()).into_owned(),
            None => return Vec::new(),
        },
        None if re(r#"['"]default['"]\s*=>"#).is_match(text) => return Vec::new(),
        None => "stack".to_owned(),
    };
    let mut channels = vec![default];
    if channels[0] == "stack" {
        channels = vec!["single".to_owned()];
        if let Some((a, b)) = channel_block(text, "stack") {
            let block = &text[a..b];
            let list_re = re(
                r#"['"]channels['"]\s*=>\s*(?:explode\(\s*['"],['"]\s*,\s*(?:\(string\)\s*)?env\(\s*['"][A-Z_]+['"]\s*,\s*['"]([^'"]*)['"]\s*\)\s*\)|\[([^\]]*)\])"#,
            );
            if let Some(c) = list_re.captures(block) {
                let list = c
                    .get(1)
                    .or_else(|| c.get(2))
                    .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                    .unwrap_or_default();
                channels = list
                    .split(',')
                    .map(|s| s.trim().trim_matches(['\'', '"']).to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
        }
    }
    let mut out = Vec::new();
    for c in channels {
        let Some((a, b)) = channel_block(text, &c) else {
            continue;
        };
        let block = &text[a..b];
        let file_driver = re(r#"['"]driver['"]\s*=>\s*['"](?:single|daily)['"]"#).is_match(block);
        if !file_driver {
            continue;
        }
        let path = re(r#"['"]path['"]\s*=>"#).find(block);
        let pos = a + path.map_or(0, |m| m.start());
        out.push(finding(file, "TF11-LOG-TO-FILE", pos));
    }
    out
}

/// The generic rule flags the `'default' => env('LOG_CHANNEL', …)` line; this reader reports the
/// channel's `path` line instead.
pub(crate) fn drops(f: &Finding) -> bool {
    f.rule == "TF11-LOG-TO-FILE"
        && f.file
            .as_deref()
            .and_then(config_name)
            .is_some_and(|n| n == "logging")
        && f.evidence.contains("LOG_CHANNEL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files() {
        assert_eq!(config_name("config/logging.php"), Some("logging"));
        assert_eq!(config_name("app/config/app.php"), Some("app"));
        assert_eq!(config_name("src/logging.php"), None);
    }
}
