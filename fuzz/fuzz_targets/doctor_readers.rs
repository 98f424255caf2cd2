//! The doctor's readers on hostile files: `audit` over a repository whose files (Procfile, .env,
//! package.json, compose files, Dockerfile, app.json, twelve-factor.toml, requirements, ...) come
//! from the input, plus the baseline file and diff parsers. Nothing panics, the audit never fails
//! because of a file's content, every finding points at a file that exists and a line it has, and
//! the JSON and SARIF reports are valid JSON.
//!
//! Input: `B` + text is a baseline file, `D` + text a unified diff; anything else is a
//! repository, written as `--- path` lines each followed by that file's content.
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;

use dozen_doctor::{Baseline, ChangedLines, FailOn, Options, audit};
use libfuzzer_sys::fuzz_target;

/// A relative path made of plain components, or `None`.
fn clean(path: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = path.trim().split('/').filter(|p| !p.is_empty()).collect();
    let ok = |p: &&str| {
        *p != "."
            && *p != ".."
            && p.len() <= 64
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    (!parts.is_empty() && parts.len() <= 4 && parts.iter().all(ok)).then(|| parts.join("/").into())
}

/// The files of the input: `--- path` starts one.
fn files(data: &[u8]) -> Vec<(PathBuf, &[u8])> {
    let mut out: Vec<(PathBuf, &[u8])> = Vec::new();
    let mut rest = data;
    while let Some(body) = rest.strip_prefix(b"--- ") {
        let end = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
        let name = String::from_utf8_lossy(&body[..end]).into_owned();
        let body = body.get(end + 1..).unwrap_or(&[]);
        let next = body
            .windows(5)
            .position(|w| w == b"\n--- ")
            .map_or(body.len(), |p| p + 1);
        if let Some(path) = clean(&name) {
            out.push((path, &body[..next]));
        }
        rest = &body[next..];
    }
    out
}

fn repository(data: &[u8]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let mut written: HashMap<String, usize> = HashMap::new();
    for (path, content) in files(data) {
        let full = root.join(&path);
        if let Some(parent) = full.parent() {
            if std::fs::create_dir_all(parent).is_err() {
                continue; // a file where a directory would go
            }
        }
        if full.is_dir() || std::fs::write(&full, content).is_err() {
            continue;
        }
        let lines = content.split(|b| *b == b'\n').count();
        written.insert(path.to_string_lossy().into_owned(), lines);
    }
    let mut opts = Options::new(root);
    opts.threads = 1;
    let report = audit(&opts).unwrap_or_else(|e| panic!("audit failed on file contents: {e}"));
    for f in &report.findings {
        let (Some(file), Some(line)) = (&f.file, f.line) else {
            continue;
        };
        if let Some(&lines) = written.get(file) {
            assert!(
                line >= 1 && line as usize <= lines,
                "{}: {file}:{line} of {lines}",
                f.rule
            );
        } else {
            assert!(
                root.join(file).exists(),
                "{}: {file} does not exist",
                f.rule
            );
        }
    }
    let mut out = Vec::new();
    report
        .render_human(&mut out, true, FailOn::default())
        .expect("human report");
    out.clear();
    report.render_json(&mut out).expect("json report");
    serde_json::from_slice::<serde_json::Value>(&out).expect("the JSON report is JSON");
    out.clear();
    report.render_sarif(&mut out).expect("sarif report");
    serde_json::from_slice::<serde_json::Value>(&out).expect("the SARIF report is JSON");
    let _ = report.exit_code(FailOn::default());
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b'B', text)) => {
            let Ok(text) = std::str::from_utf8(text) else {
                return;
            };
            match Baseline::parse(text) {
                Ok(baseline) => {
                    // What it reads, it writes back the same.
                    let again = Baseline::parse(&baseline.to_toml())
                        .unwrap_or_else(|e| panic!("own output refused: {e:?}"));
                    assert_eq!(again, baseline);
                }
                Err((line, _)) => {
                    assert!(line >= 1 && line <= text.split('\n').count(), "line {line}");
                }
            }
        }
        Some((b'D', text)) => {
            let changed = ChangedLines::parse_diff(&String::from_utf8_lossy(text));
            let _ = changed.touches_line("a", 1);
        }
        _ => repository(data),
    }
});
