//! Rust read as Rust apps are written: `env::var(..).unwrap_or(..)` and
//! `.unwrap_or_else(|_| "..".into())` literal fallbacks, dotenv loaders, SQLite pools and
//! migrations run by the server at start.

use super::app::{AppFact, Need, Src, fallback, group};
use crate::text::reads_env;
use crate::walk::SourceFile;

cached!(
    var_default_re,
    r#"\b(?:env|dotenvy|dotenv)::var\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)\s*(?:\.ok\(\)\s*)?\.unwrap_or(?:_else)?\(\s*(?:\|[^|\n]*\|\s*)?(?:String::from\(\s*)?"([^"\n]*)""#
);
cached!(
    dotenv_re,
    r"\bdotenvy?::(?:dotenv|from_filename|from_path|dotenv_override|from_filename_override)\(([^)]*)\)"
);
cached!(string_lit_re, r#""([^"\n]+)""#);
cached!(
    sqlite_re,
    r#"\bSqlitePool(?:Options)?::connect(?:_lazy)?\(\s*"|\bSqliteConnectOptions::from_str\(\s*""#
);
cached!(migrate_re, r"\bMigrator::up\(|\bembedded_migrations::run\(");

/// Facts from one Rust file.
pub(super) fn facts(file: &SourceFile) -> Vec<AppFact> {
    let src = Src::new(file);
    let t = src.text;
    let mut out = Vec::new();
    if super::app::contains(t, b"::var") {
        for c in var_default_re().captures_iter(t) {
            let pos = c.get(0).map_or(0, |m| m.start());
            if let Some(f) = fallback(
                &src,
                pos,
                &group(&c, 1),
                &group(&c, 2),
                "`unwrap_or`/`unwrap_or_else` on env::var",
            ) {
                out.push(AppFact::Found(f));
            }
        }
    }
    for c in dotenv_re().captures_iter(t) {
        let pos = c.get(0).map_or(0, |m| m.start());
        let Some((line, text)) = src.at(pos) else {
            continue;
        };
        let args = c.get(1).map_or(&b""[..], |m| m.as_bytes());
        let file_arg = string_lit_re()
            .captures_iter(args)
            .map(|s| group(&s, 1))
            .last();
        out.push(AppFact::DotenvLoad {
            rel: file.rel.clone(),
            line,
            evidence: text,
            file: file_arg,
        });
    }
    for m in sqlite_re().find_iter(t) {
        if let Some((_, line)) = src.at(m.start())
            && !reads_env(line.as_bytes())
            && let Some(f) = src.finding("TF04-SQLITE-IN-PROD", m.start(), &line)
        {
            out.push(AppFact::Pending {
                finding: f,
                need: Need::NoServerDb,
            });
        }
    }
    let tool = ["migrat", "bin/", "tools/", "xtask"]
        .iter()
        .any(|p| file.rel.contains(p));
    if !tool {
        for m in migrate_re().find_iter(t) {
            if let Some((_, line)) = src.at(m.start())
                && let Some(f) = src.finding("TF12-MIGRATE-AT-START", m.start(), &line)
            {
                out.push(AppFact::Found(f.because(
                    "the server applies pending migrations itself when it starts",
                )));
            }
        }
    }
    out
}
