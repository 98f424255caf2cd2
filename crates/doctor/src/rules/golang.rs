//! Go read as Go apps are written: `os.Getenv` followed by `if v == "" { v = "..." }`, the
//! `os.LookupEnv` form, the app's own `getEnv(key, fallback)` helpers (found in one file, called
//! in another), viper defaults, godotenv loaders, GORM's `AutoMigrate` and SQLite drivers.

use super::app::{AppFact, Need, Src, fallback, found, framework_secret, group, is_secret_name};
use crate::text::reads_env;
use crate::walk::SourceFile;

cached!(
    getenv_re,
    r#"([A-Za-z_][\w.]*)\s*:?=\s*os\.Getenv\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)"#
);
cached!(
    lookup_re,
    r#"([A-Za-z_][\w.]*)\s*,\s*(\w+)\s*:?=\s*os\.LookupEnv\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)"#
);
cached!(
    call_re,
    r#"\b([A-Za-z_]\w*)\(\s*"([A-Za-z_][A-Za-z0-9_.]*)"\s*,\s*"([^"\n]*)"\s*\)"#
);
cached!(
    func_re,
    r"(?m)^func\s+([A-Za-z_]\w*)\(\s*\w+\s*(?:string\s*)?,\s*\w+\s+string\s*\)\s*string\s*\{"
);
cached!(
    godotenv_re,
    r"\bgodotenv\.(?:Load|Overload|Read)\(([^)]*)\)"
);
cached!(string_lit_re, r#""([^"\n]+)""#);
cached!(automigrate_re, r"\.AutoMigrate\(");
cached!(
    sqlite_re,
    r#"\bsqlite\.Open\(|\b(?:sql|gorm|sqlx)\.(?:Open|Connect)\(\s*"sqlite3?""#
);
cached!(
    func_def_re,
    r"(?m)^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)?\("
);
cached!(call_ident_re, r"\b([A-Za-z_]\w*)\s*\(");
cached!(
    secret_const_re,
    r#"(?m)^(?:\s*(?:const|var)\s+|\t| {4})([A-Za-z_]\w*)\s*(?:string\s*|\[\]byte\s*)?=\s*(?:\[\]byte\()?"([^"\n]+)""#
);

/// Is `pos` inside a top-level `const (` or `var (` block?
fn in_decl_block(t: &[u8], pos: usize) -> bool {
    let before = &t[..pos];
    let open = [&b"\nconst ("[..], b"\nvar ("]
        .iter()
        .filter_map(|n| before.windows(n.len()).rposition(|w| w == *n))
        .max();
    let close = before.windows(2).rposition(|w| w == b"\n)");
    match (open, close) {
        (Some(o), Some(c)) => o > c,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Every function of the file with its calls and its own `AutoMigrate`, for the call chain
/// from `main` that `app::check` follows.
fn functions(src: &Src, out: &mut Vec<AppFact>) {
    let t = src.text;
    let lower = src.file.rel.to_ascii_lowercase();
    let tool = ["migrat", "seed", "tools/", "scripts/", "mock", "example"]
        .iter()
        .any(|p| lower.contains(p));
    let has_migrate = contains(t, b"AutoMigrate");
    let defs: Vec<(usize, String)> = func_def_re()
        .captures_iter(t)
        .filter_map(|c| Some((c.get(0)?.end(), group(&c, 1))))
        .collect();
    for (start, name) in defs {
        let is_main = name == "main" && !tool;
        if !is_main && !has_migrate {
            continue;
        }
        let end = t[start..]
            .windows(2)
            .position(|w| w == b"\n}")
            .map_or(t.len(), |i| start + i);
        let body = &t[start..end];
        let migrates = automigrate_re()
            .find_iter(body)
            .find_map(|m| src.at(start + m.start()))
            .map(|(l, text)| (l, text.trim().to_owned()));
        let mut calls = Vec::new();
        for c in call_ident_re().captures_iter(body) {
            let callee = group(&c, 1);
            if matches!(
                callee.as_str(),
                "if" | "for" | "switch" | "func" | "return" | "make" | "len" | "append" | "panic"
            ) {
                continue;
            }
            let pos = start + c.get(0).map_or(0, |m| m.start());
            if let Some((l, text)) = src.at(pos) {
                calls.push((callee, l, text.trim().to_owned()));
            }
        }
        out.push(AppFact::GoFunc {
            rel: src.file.rel.clone(),
            name,
            is_main,
            migrates,
            calls,
        });
    }
}

use super::app::contains;

/// The literal that the lines after `from` assign to `var` when `cond` holds, e.g.
/// `if port == "" {\n port = "8080"\n}`.
fn default_after(t: &[u8], from: usize, var: &str, conds: &[String]) -> Option<(usize, String)> {
    let window = &t[from..t.len().min(from + 400)];
    let w = String::from_utf8_lossy(window);
    let at = conds.iter().filter_map(|c| w.find(c.as_str())).min()?;
    let rest = &w[at..];
    let brace = rest.find('{')?;
    let body = &rest[brace + 1..];
    let close = body.find('}').unwrap_or(body.len());
    let body = &body[..close];
    for assign in [format!("{var} = \""), format!("{var}=\"")] {
        if let Some(i) = body.find(&assign) {
            let lit_start = i + assign.len();
            let lit_end = body[lit_start..].find('"')? + lit_start;
            let pos = from + at + brace + 1 + i;
            return Some((pos, body[lit_start..lit_end].to_owned()));
        }
    }
    None
}

/// Facts from one Go file.
pub(super) fn facts(file: &SourceFile) -> Vec<AppFact> {
    let src = Src::new(file);
    let t = src.text;
    let mut out = Vec::new();
    if contains(t, b"os.Getenv") {
        for c in getenv_re().captures_iter(t) {
            let Some(m) = c.get(0) else { continue };
            let (var, name) = (group(&c, 1), group(&c, 2));
            let conds = [
                format!("if {var} == \"\""),
                format!("if len({var}) == 0"),
                format!("if \"\" == {var}"),
            ];
            if let Some((pos, lit)) = default_after(t, m.end(), &var, &conds) {
                found(
                    &mut out,
                    fallback(
                        &src,
                        pos,
                        &name,
                        &lit,
                        "the `if v == \"\"` default after os.Getenv",
                    ),
                );
            }
        }
    }
    if contains(t, b"os.LookupEnv") {
        for c in lookup_re().captures_iter(t) {
            let Some(m) = c.get(0) else { continue };
            let (var, ok, name) = (group(&c, 1), group(&c, 2), group(&c, 3));
            let conds = [format!("if !{ok}")];
            if let Some((pos, lit)) = default_after(t, m.end(), &var, &conds) {
                found(
                    &mut out,
                    fallback(
                        &src,
                        pos,
                        &name,
                        &lit,
                        "the `if !ok` default after os.LookupEnv",
                    ),
                );
            }
        }
    }
    // The app's own helpers: `func getEnv(key, fallback string) string { ... os.Getenv ... }`.
    for c in func_re().captures_iter(t) {
        let Some(m) = c.get(0) else { continue };
        let body_end = t[m.end()..]
            .windows(2)
            .position(|w| w == b"\n}")
            .map_or(t.len(), |i| m.end() + i);
        let body = &t[m.end()..body_end];
        if contains(body, b"os.Getenv") || contains(body, b"os.LookupEnv") {
            out.push(AppFact::EnvHelper(group(&c, 1)));
        }
    }
    for c in call_re().captures_iter(t) {
        let Some(m) = c.get(0) else { continue };
        let (func, name, lit) = (group(&c, 1), group(&c, 2), group(&c, 3));
        if !is_secret_name(&name) || lit.trim().is_empty() {
            continue;
        }
        let lower = func.to_ascii_lowercase();
        if func == "SetDefault" || lower.contains("env") {
            let idiom = if func == "SetDefault" {
                "viper's SetDefault"
            } else {
                "the env helper's default"
            };
            found(&mut out, fallback(&src, m.start(), &name, &lit, idiom));
        } else if !matches!(
            func.as_str(),
            "Sprintf" | "Printf" | "Errorf" | "Println" | "Get" | "Set" | "Header" | "Query"
        ) && let Some(f) = fallback(&src, m.start(), &name, &lit, "the helper's default")
        {
            out.push(AppFact::Pending {
                finding: f,
                need: Need::EnvHelper(func),
            });
        }
    }
    if contains(t, b"godotenv") {
        for c in godotenv_re().captures_iter(t) {
            let pos = c.get(0).map_or(0, |m| m.start());
            let Some((line, text)) = src.at(pos) else {
                continue;
            };
            let args = c.get(1).map_or(&b""[..], |m| m.as_bytes());
            let names: Vec<String> = string_lit_re()
                .captures_iter(args)
                .map(|s| group(&s, 1))
                .collect();
            if names.is_empty() {
                out.push(AppFact::DotenvLoad {
                    rel: file.rel.clone(),
                    line,
                    evidence: text.clone(),
                    file: None,
                });
            }
            for n in names {
                out.push(AppFact::DotenvLoad {
                    rel: file.rel.clone(),
                    line,
                    evidence: text.clone(),
                    file: Some(n),
                });
            }
        }
    }
    functions(&src, &mut out);
    for c in secret_const_re().captures_iter(t) {
        let (name, value) = (group(&c, 1), group(&c, 2));
        let pos = c.get(0).map_or(0, |m| m.start());
        // An indented `X = "..."` counts only inside a `const (` / `var (` block.
        let keyword = c.get(0).is_some_and(|m| {
            m.as_bytes().trim_ascii_start().starts_with(b"const")
                || m.as_bytes().trim_ascii_start().starts_with(b"var")
        });
        if !keyword && !in_decl_block(t, pos) {
            continue;
        }
        let words = name.to_ascii_lowercase();
        if is_secret_name(&name) && value.len() >= 6 && !words.contains(&value.to_ascii_lowercase())
        {
            found(
                &mut out,
                framework_secret(
                    &src,
                    pos,
                    &value,
                    &format!("{name} is a literal secret compiled into the binary"),
                ),
            );
        }
    }
    for m in sqlite_re().find_iter(t) {
        if let Some((_, line)) = src.at(m.start())
            && !reads_env(line.as_bytes())
            && !line.to_ascii_lowercase().contains("test")
            && let Some(f) = src.finding("TF04-SQLITE-IN-PROD", m.start(), &line)
        {
            out.push(AppFact::Pending {
                finding: f,
                need: Need::NoServerDb,
            });
        }
    }
    out
}
