//! The dotenv parser (`dozen_core::parse_env`) on any text: it never panics (nested defaults,
//! unclosed quotes and expansions included), every accepted key is valid, what it accepts reads
//! back the same when written quoted, and what it refuses names a real line.
#![no_main]

use std::path::Path;

use dozen_core::name::validate_env_key;
use dozen_core::parse_env;
use libfuzzer_sys::fuzz_target;

/// The caller's environment: a few names are set, so expansion reaches it.
fn caller(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/app".into()),
        "PATH" => Some("/usr/bin:/bin".into()),
        "EMPTY" => Some(String::new()),
        n if n.starts_with('X') => Some(format!("<{n}>")),
        _ => None,
    }
}

/// A value written so that the parser reads it back verbatim, without expansion.
fn quoted(value: &str) -> String {
    if !value.contains('\'') && !value.contains('\r') {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("app/.env");
    let normalized = src
        .strip_prefix('\u{feff}')
        .unwrap_or(src)
        .replace("\r\n", "\n");
    let line_count = normalized.split('\n').count();
    match parse_env(src, path, &caller) {
        Ok(vars) => {
            for (key, _) in &vars {
                assert!(
                    validate_env_key(key).is_ok(),
                    "invalid key {key:?} accepted"
                );
            }
            let canonical: String = vars
                .iter()
                .map(|(k, v)| format!("{k}={}\n", quoted(v)))
                .collect();
            let again = parse_env(&canonical, path, &|_| None)
                .unwrap_or_else(|e| panic!("the canonical form fails: {e}"));
            assert_eq!(again, vars, "round trip through {canonical:?}");
        }
        Err(e) => {
            assert_eq!(e.path(), path);
            if let Some(line) = e.line() {
                assert!(
                    line >= 1 && line <= line_count,
                    "error on line {line} of {line_count}"
                );
            }
            assert!(e.to_string().starts_with("app/.env:"), "{e}");
        }
    }
});
