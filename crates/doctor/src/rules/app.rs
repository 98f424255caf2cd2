//! Whole-app reasoning: findings that hold only because of what other files say.
//!
//! The framework-aware readers (`python`, `node`, `golang`, `rustlang`) run in the walker's
//! threads and return [`AppFact`]s: findings that stand alone, findings that wait for a condition
//! on the whole app ([`Need`]), and the facts those conditions are decided by (which settings
//! module `manage.py` names, which env files the code loads, which helpers wrap an environment
//! lookup). [`check`] decides the conditions once the walk is over and says in each finding why it
//! applies.

use super::lines::{after_trailing_comment, is_comment, line_start, rust_test_module_start};
use super::repo::{Fact, MANIFESTS, Repo, dir_of, join, name_of, server_db_re};
use super::{golang, node, python, rule, rustlang};
use crate::report::{Finding, Severity};
use crate::text::{self, is_placeholder, looks_secret};
use crate::walk::{Kind, SourceFile};

/// What one file told the framework-aware readers.
#[derive(Debug, Clone)]
pub(crate) enum AppFact {
    /// A finding that holds by itself.
    Found(Finding),
    /// A finding that holds only when `need` holds for the whole app.
    Pending { finding: Finding, need: Need },
    /// `from` sets `DJANGO_SETTINGS_MODULE` to `module`.
    DjangoPointer { from: String, module: String },
    /// A Django settings file whose database is a server or comes from the environment.
    DjangoServerDb { rel: String },
    /// Code that loads an env file at start; `file` is the path it names (`None`: `.env`).
    DotenvLoad {
        rel: String,
        line: u32,
        evidence: String,
        file: Option<String>,
    },
    /// A function of the app that returns an environment variable or a default.
    EnvHelper(String),
    /// Code that handles uploaded files (`request.FILES`, `FileField`, `FileSystemStorage`).
    Uploads { rel: String },
    /// A JavaScript file that registers a compiler at load (`require('ts-node/register')`).
    RuntimeCompiler {
        rel: String,
        line: u32,
        evidence: String,
    },
    /// A Go function: its name, whether it is `main`, where it runs GORM's `AutoMigrate`
    /// itself, and the functions it calls (name, line, evidence).
    GoFunc {
        rel: String,
        name: String,
        is_main: bool,
        migrates: Option<(u32, String)>,
        calls: Vec<(String, u32, String)>,
    },
}

/// A condition on the whole app.
#[derive(Debug, Clone)]
pub(crate) enum Need {
    /// The file is a Django settings module. `defines_apps`: it defines `INSTALLED_APPS`, which
    /// is enough when no `DJANGO_SETTINGS_MODULE` is found.
    DjangoSettings { defines_apps: bool },
    /// The file is the production Django settings (a settings module, not a dev/test one, with
    /// no sibling that configures a server database) and no server database driver is declared.
    DjangoProductionDb { defines_apps: bool },
    /// No manifest declares a server database driver, so this SQLite is the production database.
    NoServerDb,
    /// The called function is one of the app's own environment helpers.
    EnvHelper(String),
    /// A Django settings module keeps media on local disk while the app handles uploads and
    /// no remote storage backend is declared.
    DjangoLocalMedia { defines_apps: bool },
}

/// Facts from one file (called in the walker's threads).
pub(crate) fn facts(file: &SourceFile) -> Vec<AppFact> {
    if !file.ctx.is_app() {
        return Vec::new();
    }
    match file.kind {
        Kind::Python => python::facts(file),
        Kind::JavaScript => node::facts(file),
        Kind::Go => golang::facts(file),
        Kind::Rust => rustlang::facts(file),
        Kind::Dockerfile | Kind::Procfile | Kind::Compose | Kind::AppJson | Kind::Yaml => {
            python::pointers(file)
        }
        Kind::Other if name_of(&file.rel) == "schema.prisma" => node::prisma(file),
        _ => Vec::new(),
    }
}

/// A file's text as the readers see it: lines, comments, the end of the app's part.
pub(crate) struct Src<'a> {
    pub file: &'a SourceFile,
    pub text: &'a [u8],
    end: usize,
}

impl<'a> Src<'a> {
    pub(crate) fn new(file: &'a SourceFile) -> Src<'a> {
        let text = &file.text[..];
        let end = if file.kind == Kind::Rust {
            rust_test_module_start(text)
        } else {
            text.len()
        };
        Src { file, text, end }
    }

    /// Line number and text of the line holding `pos`; `None` inside a comment or a test module.
    pub(crate) fn at(&self, pos: usize) -> Option<(u32, String)> {
        if pos >= self.end {
            return None;
        }
        let (no, line) = text::line_at(self.text, pos);
        if is_comment(line) || after_trailing_comment(line, pos - line_start(self.text, pos)) {
            return None;
        }
        Some((no, String::from_utf8_lossy(line).into_owned()))
    }

    /// A finding of `id` at the line holding `pos`.
    pub(crate) fn finding(&self, id: &str, pos: usize, evidence: &str) -> Option<Finding> {
        let (no, _) = self.at(pos)?;
        Some(Finding::new(
            rule(id),
            Some(&self.file.rel),
            Some(no),
            evidence,
        ))
    }
}

/// Does `hay` contain `needle`? (memchr's substring search: one fast pass.)
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Add `f` (when there is one) as a finding that holds by itself.
pub(crate) fn found(out: &mut Vec<AppFact>, f: Option<Finding>) {
    if let Some(f) = f {
        out.push(AppFact::Found(f));
    }
}

/// Text of capture group `i`.
pub(crate) fn group(caps: &regex::bytes::Captures, i: usize) -> String {
    caps.get(i)
        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
        .unwrap_or_default()
}

fn snake_upper(name: &str) -> String {
    let mut k = String::with_capacity(name.len() + 4);
    let b = name.as_bytes();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_lowercase) {
            k.push('_');
        }
        k.push(c.to_ascii_uppercase());
    }
    k
}

/// Does the name of a variable or setting say it holds a secret?
pub(crate) fn is_secret_name(name: &str) -> bool {
    if !super::lines::secret_key_is_real(name) {
        return false;
    }
    let upper = snake_upper(name);
    let parts: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .collect();
    if parts
        .iter()
        .any(|p| matches!(*p, "PUBLIC" | "PUBLISHABLE" | "PUB" | "NUM" | "COUNT"))
    {
        return false;
    }
    parts.iter().any(|p| {
        matches!(
            *p,
            "SECRET"
                | "SECRETS"
                | "KEY"
                | "TOKEN"
                | "PASSWORD"
                | "PASS"
                | "PASSWD"
                | "PWD"
                | "CREDENTIAL"
                | "CREDENTIALS"
                | "CREDS"
                | "SALT"
                | "PRIVATE"
                | "APIKEY"
                | "SECRETKEY"
                | "PASSPHRASE"
        ) || p.ends_with("SECRET")
            || p.ends_with("PASSWORD")
            || p.ends_with("TOKEN")
            || p.ends_with("APIKEY")
    })
}

/// `line` with the last occurrence of a non-placeholder `literal` masked.
pub(crate) fn mask(line: &str, literal: &str) -> String {
    if literal.len() < 3 || is_placeholder(literal) {
        return line.trim().to_owned();
    }
    match line.rfind(literal) {
        Some(i) => format!("{}****{}", &line[..i], &line[i + literal.len()..])
            .trim()
            .to_owned(),
        None => line.trim().to_owned(),
    }
}

/// A `TF03-SECRET-FALLBACK` finding when `var` names a secret and `literal` is a real default.
pub(crate) fn fallback(
    src: &Src,
    pos: usize,
    var: &str,
    literal: &str,
    idiom: &str,
) -> Option<Finding> {
    let lit = literal.trim();
    if !is_secret_name(var) || lit.is_empty() || matches!(lit, "None" | "null" | "undefined") {
        return None;
    }
    let (no, line) = src.at(pos)?;
    let severity = if looks_secret(lit) {
        Severity::Error
    } else {
        Severity::Warning
    };
    Some(
        Finding::new(
            rule("TF03-SECRET-FALLBACK"),
            Some(&src.file.rel),
            Some(no),
            &mask(&line, lit),
        )
        .with_severity(severity)
        .because(&format!(
            "{var} names a secret and {idiom} gives it a literal value when the variable is unset"
        )),
    )
}

/// A literal secret in a framework setting (`TF03-SECRET-IN-CODE`), evidence masked.
pub(crate) fn framework_secret(
    src: &Src,
    pos: usize,
    literal: &str,
    because: &str,
) -> Option<Finding> {
    let lit = literal.trim();
    if lit.is_empty() || lit.starts_with("${") || lit.contains("{{") {
        return None;
    }
    let (no, line) = src.at(pos)?;
    if text::reads_env(line.as_bytes()) {
        return None;
    }
    let evidence = match line.rfind(lit) {
        Some(i) => format!("{}****{}", &line[..i], &line[i + lit.len()..]),
        None => line.clone(),
    };
    Some(
        Finding::new(
            rule("TF03-SECRET-IN-CODE"),
            Some(&src.file.rel),
            Some(no),
            evidence.trim(),
        )
        .because(because),
    )
}

// ---------------------------------------------------------------------------------------------
// Deciding the conditions

/// Does any manifest declare a server database driver?
fn server_db_declared(repo: &Repo) -> bool {
    repo.kept.iter().any(|f| {
        let n = name_of(&f.rel);
        let lower = n.to_ascii_lowercase();
        (MANIFESTS.contains(&n)
            || (lower.starts_with("requirements") && lower.ends_with(".txt"))
            || n == "app.json")
            && if n == "go.mod" {
                // A driver that only another module needs (`// indirect`) is not the app's.
                f.text
                    .split(|&b| b == b'\n')
                    .any(|l| !l.ends_with(b"// indirect") && server_db_re().is_match(l))
            } else {
                server_db_re().is_match(&f.text)
            }
    })
}

/// Files (relative paths) a Django module name can be, and whether it names a package.
fn module_paths(module: &str) -> [String; 2] {
    let p = module.replace('.', "/");
    [format!("{p}.py"), format!("{p}/__init__.py")]
}

fn path_is(rel: &str, tail: &str) -> bool {
    rel == tail || rel.ends_with(&format!("/{tail}"))
}

struct Django<'a> {
    pointers: Vec<(&'a str, &'a str)>,
}

impl Django<'_> {
    /// Why `rel` is a Django settings module, if it is one.
    fn settings_reason(&self, rel: &str, defines_apps: bool) -> Option<String> {
        for (from, module) in &self.pointers {
            if module_paths(module).iter().any(|p| path_is(rel, p)) {
                return Some(format!(
                    "{from} sets DJANGO_SETTINGS_MODULE to {module}, which is this file"
                ));
            }
            // A module of a settings package (`mysite.settings.production` names the package
            // `mysite/settings/`, whose modules import one another).
            let parts: Vec<&str> = module.split('.').collect();
            for k in (1..parts.len()).rev() {
                if parts[k - 1].contains("settings") || parts[k - 1] == "config" {
                    let pkg = parts[..k].join("/");
                    let dir = dir_of(rel);
                    if path_is(dir, &pkg) || dir == pkg {
                        return Some(format!(
                            "{from} sets DJANGO_SETTINGS_MODULE to {module}; this file is part of that settings package"
                        ));
                    }
                }
            }
        }
        if self.pointers.is_empty() && defines_apps {
            return Some(
                "this file defines INSTALLED_APPS, so it is the Django settings module".into(),
            );
        }
        None
    }
}

fn testish(rel: &str) -> bool {
    let lower = rel.to_ascii_lowercase();
    ["test", "ci_settings", "/ci.py", "pytest"]
        .iter()
        .any(|w| lower.contains(w))
}

fn devish(rel: &str) -> bool {
    let stem = name_of(rel).trim_end_matches(".py").to_ascii_lowercase();
    stem.split(['_', '-', '.']).any(|w| {
        matches!(
            w,
            "dev" | "development" | "local" | "test" | "testing" | "ci" | "docker"
        )
    })
}

/// Where `name` (a file an env loader names) is in the repository, if it is there.
fn env_file_in_repo(repo: &Repo, loader: &str, name: Option<&str>) -> Option<String> {
    let wanted = name.unwrap_or(".env");
    let base = name_of(wanted.trim_start_matches("./"));
    if base.is_empty() || !(base.starts_with(".env") || base.ends_with(".env")) {
        return None;
    }
    if name.is_none() || !wanted.contains('/') {
        // A bare name is read from the working directory: the app's directory or the root.
        let mut d = dir_of(loader).to_owned();
        loop {
            let p = join(&d, base);
            if repo.has_path(&p) {
                return Some(p);
            }
            if d.is_empty() {
                break;
            }
            d = dir_of(&d).to_owned();
        }
        return None;
    }
    let tail = wanted
        .trim_start_matches("./")
        .trim_start_matches("../")
        .to_owned();
    repo.paths
        .iter()
        .find(|p| path_is(p, &tail) || (name_of(p) == base && !base.is_empty()))
        .cloned()
}

/// Decide the pending findings, add the whole-app findings, and drop line findings that a
/// framework-aware finding replaces (same rule, file and line).
pub(crate) fn check(repo: &Repo, line_findings: &mut Vec<Finding>, out: &mut Vec<Finding>) {
    let app: Vec<&AppFact> = repo
        .facts
        .iter()
        .filter_map(|f| match f {
            Fact::App(a) => Some(a),
            _ => None,
        })
        .collect();
    let django = Django {
        pointers: app
            .iter()
            .filter_map(|f| match f {
                AppFact::DjangoPointer { from, module } => Some((from.as_str(), module.as_str())),
                _ => None,
            })
            .collect(),
    };
    let server_dirs: Vec<&str> = app
        .iter()
        .filter_map(|f| match f {
            AppFact::DjangoServerDb { rel } => Some(dir_of(rel)),
            _ => None,
        })
        .collect();
    let helpers: Vec<&str> = app
        .iter()
        .filter_map(|f| match f {
            AppFact::EnvHelper(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    let server_db = server_db_declared(repo);
    let uploads = app.iter().find_map(|f| match f {
        AppFact::Uploads { rel } => Some(rel.as_str()),
        _ => None,
    });
    let remote_storage = repo.kept.iter().any(|f| {
        let n = name_of(&f.rel).to_ascii_lowercase();
        (n.starts_with("requirements") || n == "pyproject.toml" || n == "pipfile")
            && [
                &b"django-storages"[..],
                b"django_storages",
                b"cloudinary",
                b"whitenoise-s3",
            ]
            .iter()
            .any(|w| f.text.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w)))
    });
    let mut found = Vec::new();
    for fact in &app {
        match fact {
            AppFact::Found(f) => found.push(f.clone()),
            AppFact::Pending { finding, need } => {
                let rel = finding.file.as_deref().unwrap_or("");
                let reason = match need {
                    Need::DjangoSettings { defines_apps } if !testish(rel) => {
                        django.settings_reason(rel, *defines_apps)
                    }
                    Need::DjangoProductionDb { defines_apps }
                        if !testish(rel)
                            && !devish(rel)
                            && !server_db
                            && !server_dirs.contains(&dir_of(rel)) =>
                    {
                        django.settings_reason(rel, *defines_apps).map(|r| {
                            format!("{r}; it configures only SQLite and no manifest declares a database server driver")
                        })
                    }
                    Need::NoServerDb if !server_db && !testish(rel) => Some(
                        "no manifest declares a database server driver, so this SQLite database is the one production uses"
                            .to_owned(),
                    ),
                    Need::DjangoLocalMedia { defines_apps }
                        if !testish(rel) && !devish(rel) && !remote_storage =>
                    {
                        match (uploads, django.settings_reason(rel, *defines_apps)) {
                            (Some(u), Some(r)) => Some(format!(
                                "{r}; {u} handles uploads, which Django saves under this MEDIA_ROOT on the process's disk (no remote storage backend is declared)"
                            )),
                            _ => None,
                        }
                    }
                    Need::EnvHelper(name) if helpers.contains(&name.as_str()) => Some(format!(
                        "{name} is the app's own helper that returns the variable or this default"
                    )),
                    _ => None,
                };
                if let Some(r) = reason {
                    let mut f = finding.clone();
                    f.because = Some(match &f.because {
                        Some(b) => format!("{b}; {}", text::redact_evidence(&r)),
                        None => text::redact_evidence(&r),
                    });
                    found.push(f);
                }
            }
            AppFact::DotenvLoad {
                rel,
                line,
                evidence,
                file,
            } => {
                if let Some(p) = env_file_in_repo(repo, rel, file.as_deref())
                    && !found
                        .iter()
                        .any(|f| f.rule == "TF03-ENV-FILE-LOADED" && f.file.as_deref() == Some(&p))
                {
                    // Reported at the env file: it is the config stored in the repository.
                    found.push(
                        Finding::new(
                            rule("TF03-ENV-FILE-LOADED"),
                            Some(&p),
                            None,
                            &format!("loaded by {rel}:{line}: {}", evidence.trim()),
                        )
                        .because(&format!(
                            "{p} is in the repository (not ignored) and {rel}:{line} loads it when the app starts"
                        )),
                    );
                }
            }
            AppFact::DjangoPointer { .. }
            | AppFact::DjangoServerDb { .. }
            | AppFact::EnvHelper(_)
            | AppFact::Uploads { .. }
            | AppFact::RuntimeCompiler { .. }
            | AppFact::GoFunc { .. } => {}
        }
    }
    go_migrations(&app, &mut found);
    line_findings.retain(|l| {
        !found
            .iter()
            .any(|f| f.rule == l.rule && f.file == l.file && f.line == l.line)
    });
    // One finding per rule and line (two readers may see the same idiom).
    found.sort_by(|a, b| (&a.file, a.line, a.rule).cmp(&(&b.file, b.line, b.rule)));
    found.dedup_by(|a, b| a.rule == b.rule && a.file == b.file && a.line == b.line);
    out.append(&mut found);
}

/// GORM's `AutoMigrate` reached from `main`: reported where `main` starts the chain.
fn go_migrations(app: &[&AppFact], found: &mut Vec<Finding>) {
    let funcs: Vec<_> = app
        .iter()
        .filter_map(|f| match f {
            AppFact::GoFunc {
                rel,
                name,
                is_main,
                migrates,
                calls,
            } => Some((rel, name, *is_main, migrates, calls)),
            _ => None,
        })
        .collect();
    let mut migrating: Vec<&str> = funcs
        .iter()
        .filter(|f| f.3.is_some() && !f.2)
        .map(|f| f.1.as_str())
        .collect();
    // Functions that call a migrating function migrate too (a few levels: main → setup → Migrate).
    for _ in 0..4 {
        let before = migrating.len();
        for f in funcs.iter().filter(|f| !f.2) {
            if !migrating.contains(&f.1.as_str())
                && f.4.iter().any(|(c, _, _)| migrating.contains(&c.as_str()))
            {
                migrating.push(f.1.as_str());
            }
        }
        if migrating.len() == before {
            break;
        }
    }
    for (rel, _, _, migrates, calls) in funcs.iter().filter(|f| f.2) {
        if let Some((line, ev)) = migrates {
            found.push(
                Finding::new(rule("TF12-MIGRATE-AT-START"), Some(rel), Some(*line), ev).because(
                    "main runs GORM's AutoMigrate, which changes the schema at every start",
                ),
            );
        }
        if let Some((callee, line, ev)) = calls
            .iter()
            .find(|(c, _, _)| migrating.contains(&c.as_str()))
        {
            found.push(
                Finding::new(rule("TF12-MIGRATE-AT-START"), Some(rel), Some(*line), ev).because(
                    &format!(
                        "main calls {callee}, which runs GORM's AutoMigrate: the schema changes at every start"
                    ),
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "SECRET_KEY",
            "JWT_SECRET",
            "TOKEN_SECRET",
            "DB_PASS",
            "DB_PASSWORD",
            "API_KEY",
            "SIGNING_KEY",
            "sessionSecret",
            "SECURITY_PASSWORD_SALT",
            "STRIPE_SECRET_KEY",
            "GITHUB_TOKEN",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "PORT",
            "HOST",
            "LOG_LEVEL",
            "DATABASE_URL",
            "BYPASS_CACHE",
            "PASSPORT_STRATEGY",
            "STRIPE_PUBLISHABLE_KEY",
            "AWS_ACCESS_KEY_ID",
            "TOKEN_EXPIRY",
            "KEY_PREFIX",
            "SECRET_FILE",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(
            mask("x = os.getenv('SECRET_KEY', 'k3y-Xq9zz')", "k3y-Xq9zz"),
            "x = os.getenv('SECRET_KEY', '****')"
        );
        assert_eq!(mask("a || 'changeme'", "changeme"), "a || 'changeme'");
    }
}
