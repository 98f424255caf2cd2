//! Python read as its frameworks read it: Django settings modules (and the files that name them
//! through `DJANGO_SETTINGS_MODULE`), Flask config (`app.config[...]`, config classes), pydantic
//! `BaseSettings`, environment lookups with literal fallbacks, dotenv loaders and migrations run
//! by the app itself.

use std::sync::OnceLock;

use regex::bytes::{RegexSet, RegexSetBuilder};

use super::app::{AppFact, Need, Src, fallback, found, framework_secret, group, is_secret_name};
use super::repo::name_of;
use crate::text::reads_env;
use crate::walk::SourceFile;

cached!(
    pointer_re,
    r#"DJANGO_SETTINGS_MODULE["']?\]?\s*(?:,|:|=|\s)\s*["']?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)"#
);
cached!(
    secret_key_re,
    r#"^SECRET_KEY\s*=\s*[rbuRBU]?["']([^"'\n]*)["']\s*(?:#[^\n]*)?$"#
);
cached!(engine_re, r#"["']ENGINE["']\s*:\s*([^,\n}]+)"#);
cached!(
    environ_default_re,
    r#"\b(?:os\.environ\.get|os\.getenv|environ\.get|getenv|os\.environ\.setdefault)\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*,\s*(?:default\s*=\s*)?[rbuRBU]?["']([^"'\n]*)["']"#
);
cached!(
    environ_or_re,
    r#"\b(?:os\.environ\.get|os\.getenv|environ\.get|getenv)\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\)\s*or\s*[rbuRBU]?["']([^"'\n]*)["']"#
);
cached!(
    helper_default_re,
    r#"\b(?:config|env(?:\.str)?|[A-Za-z_]*_env|get_env\w*|env_\w+)\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*,\s*(?:default\s*=\s*)?[rbuRBU]?["']([^"'\n]*)["']"#
);
cached!(
    flask_config_re,
    r#"\bconfig\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]\s*=\s*[rbuRBU]?["']([^"'\n]*)["']"#
);
cached!(
    secret_attr_re,
    r#"\b(?:app|application|server)\.secret_key\s*=\s*[rbuRBU]?["']([^"'\n]*)["']"#
);
cached!(
    config_kwargs_re,
    r#"\bconfig\.(?:update|from_mapping)\(([^)]{0,2000})\)"#
);
cached!(
    kwarg_re,
    r#"\b([A-Za-z_][A-Za-z0-9_]*)\s*=\s*[rbuRBU]?["']([^"'\n]*)["']"#
);
cached!(class_re, r"(?m)^class\s+(\w+)\s*(?:\(([^)]*)\))?\s*:");
cached!(
    class_attr_re,
    r#"^[ \t]+([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[\w\[\]., |]+)?\s*=\s*[rbuRBU]?["']([^"'\n]*)["']"#
);
cached!(
    dotenv_re,
    r"\b(?:load_dotenv|dotenv_values|read_dotenv|read_env)\(([^)\n]*)\)"
);
cached!(
    env_file_option_re,
    r#"\benv_file\s*=\s*\(?\s*["']([^"'\n]+)["']"#
);
cached!(
    bool_debug_re,
    r#"^DEBUG\s*=\s*bool\(\s*(?:os\.environ\.get|os\.getenv|environ\.get)\("#
);
cached!(media_root_re, r"^MEDIA_ROOT\s*=\s*[^\n]+");
cached!(
    uploads_re,
    r"\brequest\.FILES\b|\b(?:models\.)?(?:FileField|ImageField)\(|\bFileSystemStorage\("
);
cached!(string_lit_re, r#"["']([^"'\n]+)["']"#);
cached!(
    migrate_re,
    r#"\bcall_command\(\s*["']migrate["']|\b(?:alembic\.)?command\.upgrade\(|\bflask_migrate\.upgrade\("#
);

/// Literal gates, one pass per file: a reader's regexes run only when its gate matched.
const GATES: &[&str] = &[
    r"environ|getenv",                                        // 0 env lookups
    r"config\(|env",                                          // 1 config helpers
    r"config\[",                                              // 2 app.config[...]
    r"secret_key",                                            // 3 app.secret_key
    r"config\.(?:update|from_mapping)\(",                     // 4 config kwargs
    r"(?m)^class\s+\w*(?:Config|Settings)\b|BaseSettings",    // 5 config classes
    r"(?m)^DEBUG\s*=\s*bool",                                 // 6 bool(env) debug
    r"load_dotenv|dotenv_values|read_dotenv|read_env",        // 7 dotenv
    r"env_file",                                              // 8 pydantic env_file
    r"call_command|command\.upgrade|flask_migrate",           // 9 migrations
    r"request\.FILES|FileField|ImageField|FileSystemStorage", // 10 uploads
    r"(?m)^(?:SECRET_KEY|DATABASES|MEDIA_ROOT)\s*=",          // 11 settings names
];

fn gates() -> &'static RegexSet {
    static S: OnceLock<RegexSet> = OnceLock::new();
    S.get_or_init(|| {
        RegexSetBuilder::new(GATES)
            .unicode(false)
            .multi_line(true)
            .build()
            .unwrap_or_else(|_| RegexSet::empty())
    })
}

/// `DJANGO_SETTINGS_MODULE` set in a Dockerfile, Procfile, compose file or app.json.
pub(super) fn pointers(file: &SourceFile) -> Vec<AppFact> {
    let mut out = Vec::new();
    if !super::app::contains(&file.text, b"DJANGO_SETTINGS_MODULE") {
        return out;
    }
    for c in pointer_re().captures_iter(&file.text) {
        out.push(AppFact::DjangoPointer {
            from: file.rel.clone(),
            module: group(&c, 1),
        });
    }
    out
}

fn settings_candidate(file: &SourceFile) -> (bool, bool) {
    let name = name_of(&file.rel);
    let defines_apps = super::app::contains(&file.text, b"INSTALLED_APPS");
    let named = name.ends_with("settings.py")
        || file.rel.contains("/settings/")
        || file.rel.starts_with("settings/");
    (named || defines_apps, defines_apps)
}

/// Facts from one Python file.
pub(super) fn facts(file: &SourceFile) -> Vec<AppFact> {
    let src = Src::new(file);
    let t = src.text;
    let mut out = pointers(file);
    let g = gates().matches(t);
    if g.matched(10)
        && uploads_re()
            .find_iter(t)
            .any(|m| src.at(m.start()).is_some())
    {
        out.push(AppFact::Uploads {
            rel: file.rel.clone(),
        });
    }
    let (candidate, defines_apps) = settings_candidate(file);
    // Any module may be the one DJANGO_SETTINGS_MODULE names: read those that set what a
    // settings module sets; `app::check` decides from the pointers.
    if candidate || g.matched(11) {
        django_settings(&src, defines_apps, &mut out);
    }
    for c in environ_default_re().captures_iter(if g.matched(0) { t } else { b"" }) {
        let pos = c.get(0).map_or(0, |m| m.start());
        found(
            &mut out,
            fallback(
                &src,
                pos,
                &group(&c, 1),
                &group(&c, 2),
                "the lookup's default",
            ),
        );
    }
    for c in environ_or_re().captures_iter(if g.matched(0) { t } else { b"" }) {
        let pos = c.get(0).map_or(0, |m| m.start());
        found(
            &mut out,
            fallback(&src, pos, &group(&c, 1), &group(&c, 2), "`or '…'`"),
        );
    }
    for c in helper_default_re().captures_iter(if g.matched(1) { t } else { b"" }) {
        let pos = c.get(0).map_or(0, |m| m.start());
        found(
            &mut out,
            fallback(
                &src,
                pos,
                &group(&c, 1),
                &group(&c, 2),
                "the config helper's default",
            ),
        );
    }
    // Flask: app.config["SECRET_KEY"] = "...", app.secret_key = "...", config.update(KEY="...").
    for c in flask_config_re().captures_iter(if g.matched(2) { t } else { b"" }) {
        let key = group(&c, 1);
        if is_secret_name(&key) {
            let pos = c.get(0).map_or(0, |m| m.start());
            found(
                &mut out,
                framework_secret(
                    &src,
                    pos,
                    &group(&c, 2),
                    &format!(
                        "the app's config holds {key} as a literal, the same for every deploy"
                    ),
                ),
            );
        }
    }
    for c in secret_attr_re().captures_iter(if g.matched(3) { t } else { b"" }) {
        let pos = c.get(0).map_or(0, |m| m.start());
        found(
            &mut out,
            framework_secret(
                &src,
                pos,
                &group(&c, 1),
                "the secret key that signs the session cookie is a literal",
            ),
        );
    }
    for c in config_kwargs_re().captures_iter(if g.matched(4) { t } else { b"" }) {
        let Some(args) = c.get(1) else { continue };
        for k in kwarg_re().captures_iter(args.as_bytes()) {
            let key = group(&k, 1);
            if key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
                && is_secret_name(&key)
            {
                let pos = args.start() + k.get(0).map_or(0, |m| m.start());
                found(
                    &mut out,
                    framework_secret(
                        &src,
                        pos,
                        &group(&k, 2),
                        &format!("the app's config is given {key} as a literal"),
                    ),
                );
            }
        }
    }
    if g.matched(5) {
        config_classes(&src, &mut out);
    }
    for m in bool_debug_re().find_iter(if g.matched(6) { t } else { b"" }) {
        if let Some((_, line)) = src.at(m.start()) {
            found(
                &mut out,
                src.finding("TF03-HARDCODED-DEBUG", m.start(), &line).map(|f| {
                    f.because("bool() of any non-empty string is True, so DEBUG=0 or DEBUG=False still turns debug on")
                }),
            );
        }
    }
    for c in dotenv_re().captures_iter(if g.matched(7) { t } else { b"" }) {
        let pos = c.get(0).map_or(0, |m| m.start());
        let Some((line, text)) = src.at(pos) else {
            continue;
        };
        let args = c.get(1).map_or(&b""[..], |m| m.as_bytes());
        let file_arg = string_lit_re()
            .captures_iter(args)
            .map(|s| group(&s, 1))
            .filter(|s| s.contains(".env") || s.ends_with("env"))
            .last();
        out.push(AppFact::DotenvLoad {
            rel: file.rel.clone(),
            line,
            evidence: text,
            file: file_arg,
        });
    }
    for c in env_file_option_re().captures_iter(if g.matched(8) { t } else { b"" }) {
        let pos = c.get(0).map_or(0, |m| m.start());
        if let Some((line, text)) = src.at(pos) {
            out.push(AppFact::DotenvLoad {
                rel: file.rel.clone(),
                line,
                evidence: text,
                file: Some(group(&c, 1)),
            });
        }
    }
    let admin = [
        "management/commands",
        "migrat",
        "manage.py",
        "scripts/",
        "cli",
        "tasks",
        "view",
        "api",
        "route",
        "handler",
        "controller",
    ]
    .iter()
    .any(|p| file.rel.contains(p));
    if !admin {
        for m in migrate_re().find_iter(if g.matched(9) { t } else { b"" }) {
            if let Some((_, line)) = src.at(m.start()) {
                if let Some(f) = src.finding("TF12-MIGRATE-AT-START", m.start(), &line) {
                    out.push(AppFact::Found(f.because(
                        "this module runs the migrations itself whenever the app is loaded",
                    )));
                }
            }
        }
    }
    out
}

fn django_settings(src: &Src, defines_apps: bool, out: &mut Vec<AppFact>) {
    let t = src.text;
    for c in secret_key_re().captures_iter(t) {
        let value = group(&c, 1);
        let pos = c.get(0).map_or(0, |m| m.start());
        if value.trim().is_empty() {
            continue;
        }
        if let Some(f) = src.finding(
            "TF03-SECRET-IN-CODE",
            pos,
            &format!("SECRET_KEY = '****' ({} characters)", value.len()),
        ) {
            out.push(AppFact::Pending {
                finding: f.because("Django signs sessions, cookies and tokens with SECRET_KEY"),
                need: Need::DjangoSettings { defines_apps },
            });
        }
    }
    let remote = [
        &b"DEFAULT_FILE_STORAGE"[..],
        b"STORAGES",
        b"storages.backends",
    ]
    .iter()
    .any(|n| super::app::contains(t, n));
    if !remote
        && let Some(m) = media_root_re().find(t)
        && let Some((_, line)) = src.at(m.start())
        && !crate::text::reads_env(line.as_bytes())
        && let Some(f) = src.finding("TF06-LOCAL-UPLOADS", m.start(), &line)
    {
        out.push(AppFact::Pending {
            finding: f,
            need: Need::DjangoLocalMedia { defines_apps },
        });
    }
    let mut engines = Vec::new();
    for c in engine_re().captures_iter(t) {
        let pos = c.get(0).map_or(0, |m| m.start());
        if src.at(pos).is_none() {
            continue;
        }
        engines.push((pos, group(&c, 1)));
    }
    let env_db = [
        &b"dj_database_url"[..],
        b"db_url(",
        b"env.db(",
        b"DATABASE_URL",
        b"dj-database-url",
    ]
    .iter()
    .any(|n| super::app::contains(t, n));
    let server = engines.iter().any(|(_, e)| {
        !e.contains("sqlite") || reads_env(e.as_bytes()) || !e.trim_start().starts_with(['"', '\''])
    });
    if server || env_db {
        out.push(AppFact::DjangoServerDb {
            rel: src.file.rel.clone(),
        });
        return;
    }
    if let Some((pos, _)) = engines.first()
        && let Some((_, line)) = src.at(*pos)
        && let Some(f) = src.finding("TF04-SQLITE-IN-PROD", *pos, &line)
    {
        out.push(AppFact::Pending {
            finding: f,
            need: Need::DjangoProductionDb { defines_apps },
        });
    }
}

/// Flask-style config classes (`class ProductionConfig: SECRET_KEY = "..."`) and pydantic
/// `BaseSettings` classes, whose field defaults are fallbacks for environment variables.
fn config_classes(src: &Src, out: &mut Vec<AppFact>) {
    let t = src.text;
    let classes: Vec<(usize, String, String)> = class_re()
        .captures_iter(t)
        .filter_map(|c| Some((c.get(0)?.end(), group(&c, 1), group(&c, 2))))
        .collect();
    for (start, name, bases) in classes {
        let settings = bases.contains("BaseSettings");
        let config = name.ends_with("Config") || name == "Settings" || name.ends_with("Settings");
        if !(settings || config) || name.to_ascii_lowercase().contains("test") {
            continue;
        }
        // The class body: indented lines up to the next line that starts at column 0.
        let body_end = t[start..]
            .windows(2)
            .position(|w| w[0] == b'\n' && !matches!(w[1], b' ' | b'\t' | b'\n' | b'\r' | b'#'))
            .map_or(t.len(), |i| start + i + 1);
        let body = &t[start..body_end];
        for c in class_attr_re().captures_iter(body) {
            let key = group(&c, 1);
            if !is_secret_name(&key) {
                continue;
            }
            let pos = start + c.get(0).map_or(0, |m| m.start());
            let value = group(&c, 2);
            let f = if settings {
                fallback(
                    src,
                    pos,
                    &key,
                    &value,
                    "the pydantic BaseSettings field default",
                )
            } else if key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
            {
                framework_secret(
                    src,
                    pos,
                    &value,
                    &format!("{name} is a config class the app loads; {key} is a literal in it"),
                )
            } else {
                None
            };
            if let Some(f) = f {
                out.push(AppFact::Found(f));
            }
        }
    }
}
