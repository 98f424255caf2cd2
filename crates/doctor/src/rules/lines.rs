//! Line rules: patterns matched inside one file, run in the walker's threads.
//!
//! Each file's applicable patterns are tried at once with a `RegexSet` over the whole text, so a
//! file without any hit costs one pass; only files with hits are looked at line by line.

use std::sync::OnceLock;

use regex::bytes::{Captures, Regex, RegexSet, RegexSetBuilder};

use super::rule;
use crate::report::{Finding, Severity};
use crate::text::{self, is_placeholder, looks_secret, reads_env};
use crate::walk::{Kind, SourceFile};

/// What a filter decided about one match.
pub(crate) enum Verdict {
    Skip,
    Keep,
    KeepAs(Severity),
}

/// One match, as a filter sees it.
pub(crate) struct Hit<'a> {
    pub rel: &'a str,
    pub line: &'a [u8],
    pub caps: &'a Captures<'a>,
    pub text: &'a [u8],
    pub end: usize,
}

impl Hit<'_> {
    fn group(&self, i: usize) -> String {
        self.caps
            .get(i)
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            .unwrap_or_default()
    }
    fn path_has(&self, parts: &[&str]) -> bool {
        let lower = self.rel.to_ascii_lowercase();
        parts.iter().any(|p| lower.contains(p))
    }
}

type Filter = fn(&Hit) -> Verdict;

/// A line rule: which rule id, which kinds of file, which pattern, which filter.
pub(crate) struct LineRule {
    pub id: &'static str,
    pub kinds: &'static [Kind],
    pub pattern: &'static str,
    pub filter: Filter,
    /// Also report matches inside comments (credentials are leaked there too).
    pub in_comments: bool,
    /// Skip build tool configuration files (webpack, vite...).
    pub skip_build_config: bool,
}

use Kind::*;

const CODE: &[Kind] = &[Python, JavaScript, Ruby, Go, Java, Rust, Php];
const CODE_AND_CONFIG: &[Kind] = &[
    Python, JavaScript, Ruby, Go, Java, Rust, Php, Yaml, Json, Toml, Properties, Xml, Ini,
];
const SECRET_KINDS: &[Kind] = &[
    Python, JavaScript, Ruby, Go, Java, Rust, Php, Shell, Yaml, Json, Toml, Properties, Xml, Ini,
    AppJson,
];
const ALL_BUT_ENV: &[Kind] = &[
    Python, JavaScript, Ruby, Go, Java, Rust, Php, Shell, Dockerfile, Compose, Procfile, AppJson,
    K8s, Yaml, Json, Toml, Properties, Xml, Ini, Conf, Other,
];
const INFRA_CONFIG: &[Kind] = &[Yaml, K8s, Conf, Other, Json, Toml, Ini, Compose];

fn keep(_: &Hit) -> Verdict {
    Verdict::Keep
}

fn no_env(h: &Hit) -> Verdict {
    if reads_env(h.line) {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

fn token(h: &Hit) -> Verdict {
    let m = h.group(0);
    if m.contains("EXAMPLE") || m.contains("XXXX") || m.contains("xxxx") || m.contains("0000000000")
    {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

const NON_SECRET_KEY_SUFFIXES: &[&str] = &[
    "_url",
    "_uri",
    "_path",
    "_file",
    "_dir",
    "_env",
    "_var",
    "_name",
    "_length",
    "_len",
    "_header",
    "_param",
    "_field",
    "_regex",
    "_pattern",
    "_type",
    "_label",
    "_placeholder",
    "_prompt",
    "_hint",
    "_message",
    "_msg",
    "_error",
    "_endpoint",
    "_min",
    "_max",
    "_policy",
    "_validators",
    "_validator",
    "_hashers",
    "_hasher",
    "_reset",
    "_confirm",
    "_confirmation",
    "_format",
    "_expiry",
    "_expires",
    "_ttl",
    "_timeout",
    "_lifetime",
    "_route",
    "_template",
    "_id",
    "_key_id",
    "_count",
    "_version",
    "_algorithm",
    "_alg",
    "_size",
    "_prefix",
    "_scheme",
    "_selector",
    "_class",
    "_question",
    "_strength",
    "_storage",
    "_provider",
    "_manager",
    "_backend",
    "_ref",
    "_arn",
    "_location",
];

pub(crate) fn secret_key_is_real(key: &str) -> bool {
    // camelCase -> snake_case, so `SingleUseTokenProvider` ends in `_provider`.
    let mut k = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase()
            && i > 0
            && key
                .as_bytes()
                .get(i - 1)
                .is_some_and(u8::is_ascii_lowercase)
        {
            k.push('_');
        }
        k.push(c.to_ascii_lowercase());
    }
    let k = k.replace(['-', '.'], "_");
    if NON_SECRET_KEY_SUFFIXES.iter().any(|s| k.ends_with(s)) {
        return false;
    }
    !(k.starts_with("reset_")
        || k.starts_with("forgot_")
        || k.starts_with("new_")
        || k.starts_with("old_")
        || k.starts_with("confirm_")
        || k.starts_with("show_")
        || k.starts_with("is_")
        || k.starts_with("has_")
        || k.starts_with("use_")
        || k.starts_with("require")
        || k.starts_with("min_")
        || k.starts_with("max_")
        || k.contains("tokenizer")
        || k.starts_with("next_")
        || k.contains("csrf")
        || k.contains("page_token"))
}

fn secret_assign(h: &Hit) -> Verdict {
    let key = h.group(1);
    let value = h.group(2);
    // In an INI or properties file a password key holds the password itself, however weak.
    let lower_key = key.to_ascii_lowercase();
    let config_password = (h.rel.ends_with(".ini") || h.rel.ends_with(".properties"))
        && (lower_key.ends_with("password")
            || lower_key.ends_with("passwd")
            || lower_key.ends_with("secret"))
        && value.len() >= 3
        && !is_placeholder(&value)
        && !value.contains("${");
    if !secret_key_is_real(&key)
        || reads_env(h.line)
        || value.contains("ENC[")
        || value.contains("vault:")
    {
        return Verdict::Skip;
    }
    if looks_secret(&value) || config_password {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

fn private_key(h: &Hit) -> Verdict {
    // A real key has a base64 body after the header (possibly after an escaped newline).
    let rest = &h.text[h.end..h.text.len().min(h.end + 200)];
    let body: Vec<u8> = rest
        .iter()
        .copied()
        .skip_while(|b| matches!(b, b'\r' | b'\n' | b'\\' | b'n' | b' ' | b'"' | b'\'' | b'+'))
        .take_while(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b':' | b'-' | b' ')
        })
        .collect();
    if body.iter().filter(|b| b.is_ascii_alphanumeric()).count() >= 40 {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

fn credentials_in_url(h: &Hit) -> Verdict {
    let head = h.group(1);
    let password = h.group(2);
    let user = head
        .rsplit("//")
        .next()
        .unwrap_or("")
        .trim_end_matches(':')
        .to_owned();
    let rest =
        String::from_utf8_lossy(&h.text[h.end.saturating_sub(1)..h.text.len().min(h.end + 80)])
            .into_owned();
    let host = host_of(&rest);
    if (is_placeholder(&user) && user.starts_with('$'))
        || text::is_dev_default_password(&user, &password)
        || matches!(
            password.to_ascii_lowercase().as_str(),
            "masterkey" | "taosdata" | "pwd" | "passw0rd"
        )
        || placeholder_host(&host)
        || local_host(&host)
        || password.len() < 3
    {
        return Verdict::Skip;
    }
    Verdict::Keep
}

/// The host at the start of `s` (after `@` or `://`), lowercased.
fn host_of(s: &str) -> String {
    s.split(|c: char| {
        matches!(c, '/' | ':' | '?' | '\'' | '"' | '`' | ',' | ')' | ';') || c.is_whitespace()
    })
    .next()
    .unwrap_or("")
    .to_ascii_lowercase()
}

/// Hosts that only appear in documentation of a URL's shape.
fn placeholder_host(host: &str) -> bool {
    host.is_empty()
        || host.contains('[')
        || host.contains('<')
        || host.starts_with("your")
        || host.starts_with("my-")
        || host.contains("example")
        || matches!(
            host,
            "host"
                | "hostname"
                | "server"
                | "db-host"
                | "dbhost"
                | "db_host"
                | "database-host"
                | "ip"
                | "address"
                | "servername"
                | "server_name"
                | "myhost"
                | "some-host"
                | "somehost"
                | "domain"
                | "xxx"
                | "host.com"
        )
        || host
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '-' || c == '_')
}

/// Loopback and private addresses: credentials for them are local development defaults.
fn local_host(host: &str) -> bool {
    host == "localhost"
        || host.starts_with("127.")
        || host.starts_with("10.")
        || host.starts_with("192.168.")
        || host.starts_with("0.0.0.0")
        || host.starts_with("[::1]")
        || host.starts_with("172.")
            && host
                .split('.')
                .nth(1)
                .and_then(|o| o.parse::<u8>().ok())
                .is_some_and(|o| (16..=31).contains(&o))
}

fn env_branch(h: &Hit) -> Verdict {
    let line = String::from_utf8_lossy(h.line);
    if line.contains("NODE_ENV") {
        Verdict::KeepAs(Severity::Info)
    } else {
        Verdict::Keep
    }
}

/// Does the line read the environment, or continue a call on the line before that does
/// (`os.environ.get(\n    'DATABASE_URL', 'postgresql://localhost/app')`)?
fn reads_env_here(h: &Hit) -> bool {
    if reads_env(h.line) {
        return true;
    }
    let start = (h.line.as_ptr() as usize).saturating_sub(h.text.as_ptr() as usize);
    if start == 0 || start > h.text.len() {
        return false;
    }
    let before = &h.text[..start - 1];
    let prev_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let prev = &before[prev_start..];
    let t = h.line.trim_ascii_start();
    (t.starts_with(b"'")
        || t.starts_with(b"\"")
        || prev.trim_ascii_end().ends_with(b",")
        || prev.trim_ascii_end().ends_with(b"("))
        && reads_env(prev)
}

fn service_addr(h: &Hit) -> Verdict {
    if reads_env_here(h) || h.line.windows(3).any(|w| w == b"://") {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

fn service_url(h: &Hit) -> Verdict {
    let url = h.group(0).to_ascii_lowercase();
    // `mysql://root:<password>@host`: the shape of a URL with a placeholder in it.
    let templated = h.text.get(h.end) == Some(&b'<');
    if templated
        || reads_env_here(h)
        || url.contains("${")
        || url.contains("{{")
        || url.contains("example.")
        || url.contains("jdbc:h2:")
        || url.contains("jdbc:hsqldb:")
        || url.contains("jdbc:sqlite:")
        || url.contains("jdbc:derby:")
        || url.contains("%s")
        || url.contains("{")
    {
        return Verdict::Skip;
    }
    let after = url.split("://").nth(1).unwrap_or("");
    let host = host_of(after.rsplit('@').next().unwrap_or(after));
    if after
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .len()
        < 3
        || placeholder_host(&host)
        || url.contains(":port")
        || url.contains("user:")
        || url.contains("dbname")
    {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

fn service_host(h: &Hit) -> Verdict {
    let value = h.group(1);
    if reads_env_here(h) || is_placeholder(&value) || value.is_empty() {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

fn dev_entry_port(h: &Hit) -> Verdict {
    if reads_env(h.line) {
        Verdict::Skip
    } else {
        Verdict::KeepAs(Severity::Warning)
    }
}

fn production_env_file(h: &Hit) -> Verdict {
    if h.path_has(&["production"]) {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

fn express_session_without_store(h: &Hit) -> Verdict {
    let t = String::from_utf8_lossy(h.text);
    if t.contains("express-session")
        && !t.contains("store:")
        && !t.contains("store :")
        && !t.contains("Store(")
    {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

fn laravel_session(h: &Hit) -> Verdict {
    if h.rel.ends_with("config/session.php") && !reads_env(h.line) {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

fn startup_migration(h: &Hit) -> Verdict {
    if h.path_has(&[
        "migrat",
        "management/commands",
        "scripts/",
        "script/",
        "bin/",
        "cmd/",
        "cli",
        "manage.py",
        "seed",
        "tasks",
        "commands/",
        "setup",
        "admin",
        "tools/",
        "fixtures",
        "mock",
        "sample",
        "example",
        "util",
    ]) {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

fn request_handler_path(h: &Hit) -> Verdict {
    if h.path_has(&[
        "view",
        "api",
        "route",
        "endpoint",
        "handler",
        "controller",
        "http/",
    ]) {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

fn not_test_settings(h: &Hit) -> Verdict {
    if h.path_has(&["test", "ci_settings", "ci.py"]) {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

macro_rules! lr {
    ($id:literal, $kinds:expr, $pat:expr, $filter:expr) => {
        LineRule {
            id: $id,
            kinds: $kinds,
            pattern: $pat,
            filter: $filter,
            in_comments: false,
            skip_build_config: false,
        }
    };
    ($id:literal, $kinds:expr, $pat:expr, $filter:expr, comments) => {
        LineRule {
            id: $id,
            kinds: $kinds,
            pattern: $pat,
            filter: $filter,
            in_comments: true,
            skip_build_config: false,
        }
    };
    ($id:literal, $kinds:expr, $pat:expr, $filter:expr, no_build) => {
        LineRule {
            id: $id,
            kinds: $kinds,
            pattern: $pat,
            filter: $filter,
            in_comments: false,
            skip_build_config: true,
        }
    };
}

/// All line rules.
pub(crate) fn line_rules() -> Vec<LineRule> {
    vec![
        // III. Config
        lr!(
            "TF03-SECRET-IN-CODE",
            ALL_BUT_ENV,
            text::TOKEN_PATTERN,
            token,
            comments
        ),
        lr!(
            "TF03-SECRET-IN-CODE",
            SECRET_KINDS,
            text::SECRET_ASSIGN_PATTERN,
            secret_assign
        ),
        lr!(
            "TF03-SECRET-IN-CODE",
            &[Yaml, Properties, Ini],
            text::SECRET_BARE_PATTERN,
            secret_assign
        ),
        lr!(
            "TF03-PRIVATE-KEY",
            &[
                Python, JavaScript, Ruby, Go, Java, Rust, Php, Shell, Yaml, Json, Toml, Properties,
                Xml, Ini, Conf, Other, K8s, Compose
            ],
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----",
            private_key,
            comments
        ),
        lr!(
            "TF03-CREDENTIALS-IN-URL",
            ALL_BUT_ENV,
            text::URL_CRED_PATTERN,
            credentials_in_url,
            comments
        ),
        lr!(
            "TF03-ENV-NAME-BRANCH",
            CODE,
            r#"(?i)(?:\benv\b|environ\w*|environment\b|[a-z]_env\b|\bstage\b|node_env|app_env)[^\n;{]{0,60}?(?:===?|!==?|\.equals\(|\beq\b)\s*\(?\s*["'](?:prod|production|staging|stage|dev|develop|development|qa|uat|preprod)["']"#,
            env_branch,
            no_build
        ),
        lr!(
            "TF03-ENV-NAME-BRANCH",
            CODE,
            r#"(?i)["'](?:prod|production|staging|stage|dev|development|qa|uat|preprod)["']\s*(?:===?|!==?|\.equals\()\s*[^\n;]{0,40}(?:\benv\b|environ|environment|_env\b|node_env)"#,
            env_branch,
            no_build
        ),
        lr!(
            "TF03-ENV-NAME-BRANCH",
            &[Ruby],
            r"Rails\.env\.(?:production|development|staging)\?|Rails\.env\s*==",
            keep
        ),
        lr!(
            "TF03-ENV-NAME-BRANCH",
            &[Php],
            r"(?:app\(\)->environment|App::environment|app\(\)->isProduction|app\(\)->isLocal|App::isProduction|App::isLocal)\(",
            keep
        ),
        lr!(
            "TF03-ENV-NAME-BRANCH",
            &[Java],
            r#"@Profile\(\s*(?:value\s*=\s*)?\{?\s*"!?(?:prod|production|staging|dev|development|local|qa)""#,
            keep
        ),
        lr!(
            "TF03-HARDCODED-DEBUG",
            &[Python],
            r"^DEBUG\s*=\s*True\b",
            not_test_settings
        ),
        lr!(
            "TF03-HARDCODED-DEBUG",
            &[Python],
            r"\.run\([^)\n]*\bdebug\s*=\s*True",
            dev_entry_debug
        ),
        lr!(
            "TF03-HARDCODED-DEBUG",
            &[Python],
            r"\bapp\.debug\s*=\s*True\b",
            no_env
        ),
        lr!(
            "TF03-HARDCODED-DEBUG",
            &[Php],
            r#"['"]debug['"]\s*=>\s*true\b"#,
            no_env
        ),
        lr!(
            "TF03-HARDCODED-DEBUG",
            &[Ini],
            r"(?i)^\s*(?:run_?mode|debug)\s*=\s*(?:debug|true|on)\s*$",
            keep
        ),
        lr!(
            "TF03-HARDCODED-DEBUG",
            &[Properties],
            r"^\s*debug\s*=\s*true\s*$",
            keep
        ),
        // IV. Backing services
        lr!(
            "TF04-HARDCODED-SERVICE-ADDR",
            CODE_AND_CONFIG,
            r"(?i)(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:internal|lan|rds\.amazonaws\.com|cache\.amazonaws\.com))[\x22']?\s*:\s*(?:5432|3306|6379|6380|27017|11211|5672|9200|9300|9092|1433|1521|26379|8529|7687|9042|4222|465|587|2525|1025)\b",
            service_addr
        ),
        lr!(
            "TF04-SERVICE-URL-IN-CODE",
            CODE_AND_CONFIG,
            r"(?i)\b(?:postgres(?:ql)?|mysql2?|mariadb|mongodb(?:\+srv)?|redis|rediss|amqps?|memcached?|smtps?|sqlserver|mssql|nats|kafka)://[^\s\x22'<>`]+|\bjdbc:[a-z]+:[^\s\x22'<>`]+",
            service_url
        ),
        lr!(
            "TF04-HARDCODED-SERVICE-HOST",
            CODE_AND_CONFIG,
            r#"(?i)\b(?:email|smtp|mail|db|database|redis|cache|memcached?|mongo(?:db)?|rabbit(?:mq)?|amqp|broker|postgres|pg|mysql|elastic(?:search)?|kafka)[_.-]?(?:host|hostname|server|address)\b["']?\s*(?:=|:|=>)\s*["']([a-z0-9][a-z0-9.-]*)["']"#,
            service_host
        ),
        lr!(
            "TF04-HARDCODED-SERVICE-HOST",
            &[Python],
            r#"^\s*["']HOST["']\s*:\s*["']([^"'\s]+)["']"#,
            service_host
        ),
        lr!(
            "TF04-HARDCODED-SERVICE-HOST",
            &[Properties],
            r"^\s*spring\.(?:datasource|redis|data\.redis|rabbitmq|mail|data\.mongodb|elasticsearch)\.host\s*[=:]\s*([^\s$]\S*)\s*$",
            service_host
        ),
        lr!(
            "TF04-HARDCODED-SERVICE-HOST",
            &[Python, JavaScript, Ruby, Php],
            r#"\b(?:Redis|StrictRedis|MongoClient|psycopg2?\.connect|pymysql\.connect|mysql\.connector\.connect|createClient|createConnection|createPool|pika\.ConnectionParameters|smtplib\.SMTP(?:_SSL)?|Sequelize|new\s+Pool|new\s+Client)\([^)\n]*\bhost\s*[=:]\s*["']([a-z0-9][a-z0-9.-]*)["']"#,
            service_host
        ),
        lr!(
            "TF04-HARDCODED-SERVICE-HOST",
            &[Python],
            r#"\b(?:smtplib\.SMTP(?:_SSL)?|MongoClient|redis\.Redis)\(\s*["']([a-z0-9][a-z0-9.-]*)["']"#,
            service_host
        ),
        lr!(
            "TF04-HARDCODED-SERVICE-HOST",
            &[Ruby],
            r#"\baddress:\s*["'](smtp\.[a-z0-9.-]+)["']"#,
            service_host
        ),
        // VI. Processes
        lr!(
            "TF06-LOCAL-UPLOADS",
            &[JavaScript],
            r"\bmulter\(\s*\{\s*dest\s*:|\bmulter\.diskStorage\(",
            not_tmp
        ),
        lr!(
            "TF06-LOCAL-UPLOADS",
            &[Ruby],
            r"active_storage\.service\s*=\s*:local\b",
            production_env_file
        ),
        lr!(
            "TF06-LOCAL-UPLOADS",
            &[Python],
            r#"\bFileSystemStorage(?:\(|["'])|(?i:\bUPLOAD_FOLDER\b)\s*=\s*["']"#,
            not_definition
        ),
        lr!(
            "TF06-LOCAL-UPLOADS",
            &[Python],
            r"\.save\(\s*os\.path\.join\(",
            upload_context
        ),
        lr!(
            "TF06-LOCAL-UPLOADS",
            &[Php],
            r#"\bmove_uploaded_file\(|Storage::disk\(\s*['"](?:local|public)['"]\s*\)\s*->\s*(?:put|putFile|putFileAs)\("#,
            keep
        ),
        lr!("TF06-LOCAL-UPLOADS", &[Go], r"\.SaveUploadedFile\(", keep),
        lr!(
            "TF06-LOCAL-UPLOADS",
            &[Java],
            r"\.transferTo\(\s*new\s+File\(|\.transferTo\(\s*Paths\.get\(",
            keep
        ),
        lr!(
            "TF06-MEMORY-SESSIONS",
            &[JavaScript],
            r#"\bnew\s+(?:session\.)?MemoryStore\(|require\(\s*["']memorystore["']\s*\)"#,
            keep
        ),
        lr!(
            "TF06-MEMORY-SESSIONS",
            &[JavaScript],
            r"\bsession\(\s*\{",
            express_session_without_store
        ),
        lr!(
            "TF06-MEMORY-SESSIONS",
            &[Python],
            r#"SESSION_ENGINE\s*=\s*["']django\.contrib\.sessions\.backends\.file["']|(?i:SESSION_TYPE)["']?\s*\]?\s*[=:]\s*["'](?:filesystem|null)["']"#,
            keep
        ),
        lr!(
            "TF06-MEMORY-SESSIONS",
            &[Go],
            r"\bmemstore\.NewStore\(|\bsessions\.NewFilesystemStore\(",
            keep
        ),
        lr!(
            "TF06-MEMORY-SESSIONS",
            &[Php],
            r#"['"]driver['"]\s*=>\s*['"](?:file|array)['"]"#,
            laravel_session
        ),
        lr!(
            "TF06-STICKY-SESSIONS",
            INFRA_CONFIG,
            r#"(?i)^\s*ip_hash\s*;|^\s*sticky\b[^\n]*;|sessionAffinity:\s*["']?ClientIP|ingress\.kubernetes\.io/affinity:\s*["']?cookie|^\s*cookie\s+\S+\s+insert\b|^\s*balance\s+source\b|loadbalancer\.sticky"#,
            keep
        ),
        // VII. Port binding (code; start commands are checked in `repo`)
        lr!(
            "TF07-FIXED-PORT",
            &[JavaScript],
            r"\.listen\(\s*\d{2,5}\s*[,)]|(?i)\b(?:const|let|var)\s+port\s*=\s*(\d{2,5})\s*;?\s*$",
            js_port
        ),
        lr!(
            "TF07-FIXED-PORT",
            &[Python],
            r"\b(?:app|uvicorn|web|socketio|server)\.run(?:_app)?\([^)\n]*\bport\s*=\s*\d{2,5}",
            dev_entry_port
        ),
        lr!(
            "TF07-FIXED-PORT",
            &[Go],
            r#"(?:ListenAndServe(?:TLS)?|\.Run|\.Start|\.Listen)\(\s*"[a-z0-9.]*:\d{2,5}"|net\.Listen\(\s*"tcp"\s*,\s*"[^"]*:\d{2,5}""#,
            dev_entry_port
        ),
        lr!(
            "TF07-FIXED-PORT",
            &[Rust],
            r#"\bbind\(\s*&?\(?\s*"[^"]*:[1-9]\d{1,4}"|SocketAddr::from\(\(\s*\[[^\]]*\]\s*,\s*[1-9]\d{1,4}\s*\)\)"#,
            dev_entry_port
        ),
        lr!(
            "TF07-FIXED-PORT",
            &[Ruby],
            r"^\s*port\s+\d{2,5}\s*$|\bset\s+:port\s*,\s*\d{2,5}",
            dev_entry_port
        ),
        lr!(
            "TF07-FIXED-PORT",
            &[Ini],
            r"(?i)^\s*(?:http_?port|server_?port|listen_?port|web_?port)\s*=\s*[1-9]\d{1,4}\s*$",
            dev_entry_port
        ),
        lr!(
            "TF07-FIXED-PORT",
            &[Properties, Yaml],
            r"^\s*server\.port\s*[=:]\s*[1-9]\d{1,4}\s*$",
            dev_entry_port
        ),
        lr!(
            "TF07-LOCALHOST-BIND",
            CODE,
            r#"\.listen\([^,\n]+,\s*["'](?:localhost|127\.0\.0\.1)["']|\b(?:app|uvicorn|web)\.run\([^)\n]*host\s*=\s*["'](?:localhost|127\.0\.0\.1)["']|ListenAndServe(?:TLS)?\(\s*"(?:localhost|127\.0\.0\.1):[1-9]|\bbind\(\s*"(?:localhost|127\.0\.0\.1):[1-9]"#,
            no_env
        ),
        lr!(
            "TF07-LOCALHOST-BIND",
            &[Properties],
            r"^\s*server\.address\s*=\s*(?:localhost|127\.0\.0\.1)\s*$",
            keep
        ),
        // VIII. Concurrency
        lr!(
            "TF08-DAEMONIZE",
            &[Python],
            r"^daemon\s*=\s*True\b",
            gunicorn_config
        ),
        lr!(
            "TF08-DAEMONIZE",
            &[Python],
            r"\bdaemon\.DaemonContext\(",
            keep
        ),
        lr!(
            "TF08-DAEMONIZE",
            &[Ruby],
            r"^\s*daemonize(?:\s+true)?\s*$|\bProcess\.daemon\b",
            keep
        ),
        lr!("TF08-DAEMONIZE", &[Ini], r"^\s*daemonize\s*=", keep),
        lr!(
            "TF08-PID-FILE",
            &[Python, Ruby, Ini],
            r#"^\s*pidfile\s*(?:=\s*|\s)\s*["']?[\w./-]+\.pid"#,
            no_env
        ),
        lr!(
            "TF08-PID-FILE",
            CODE,
            r#"open\(\s*["'][^"'\n]*\.pid["']\s*,\s*["']w|writeFileSync\([^)\n]*\.pid["']|File\.write\([^)\n]*\.pid["']|os\.WriteFile\(\s*"[^"\n]*\.pid""#,
            no_env
        ),
        // X. Dev/prod parity (kept only when production uses a server database; see `repo`)
        lr!(
            "TF10-SQLITE-IN-DEV",
            &[Python],
            r#"django\.db\.backends\.sqlite3|["']sqlite:///"#,
            not_test_settings
        ),
        lr!(
            "TF10-SQLITE-IN-DEV",
            &[JavaScript],
            r#"\b(?:dialect|client)\s*:\s*["'](?:sqlite3?|better-sqlite3)["']"#,
            not_test_settings
        ),
        lr!(
            "TF10-SQLITE-IN-DEV",
            &[Properties, Yaml],
            r"jdbc:(?:h2|hsqldb|sqlite):",
            not_test_settings
        ),
        // XI. Logs
        lr!(
            "TF11-LOG-TO-FILE",
            &[Python],
            r#"\b(?:logging\.)?FileHandler\(|["']logging\.FileHandler["']|\bWatchedFileHandler\b|logging\.basicConfig\([^)\n]*\bfilename\s*=|\blogger\.add\(\s*f?["'][^"'\n]*\.log["']|^\s*(?:errorlog|accesslog)\s*=\s*["'][^"'\n-][^"'\n]*["']"#,
            keep
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[JavaScript],
            r#"\btransports\.File\(|pino\.destination\(\s*["'`][^"'`\n]+|createWriteStream\([^)\n]*\.log\b"#,
            keep
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[JavaScript],
            r#"\btype\s*:\s*["'](?:file|fileSync)["']"#,
            log4js_file
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[Ruby],
            r#"Logger\.new\(\s*["'][^"'\n]+\.log["']|Logger\.new\([^)\n]*\bjoin\(\s*["']log|Logger\.new\(\s*File\.open\("#,
            keep
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[Java, Xml, Properties],
            r"ch\.qos\.logback\.core\.FileAppender|<File\s+name=|<RandomAccessFile\s|org\.apache\.log4j\.FileAppender",
            keep
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[Properties, Yaml],
            r"^\s*logging\.file(?:\.name|\.path)?\s*[=:]\s*\S",
            keep
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[Go],
            r#"os\.(?:OpenFile|Create)\(\s*"[^"\n]+\.log""#,
            keep
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[Rust],
            r"tracing_appender::rolling::never\(|log4rs::append::file::File[A]ppender|WriteLogger::new\([^\n]*File::create|fern::log_file\(|\.log_to_file\(",
            keep
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[Php],
            r#"StreamHandler\(\s*[^,\n]*\.log|['"]default['"]\s*=>\s*env\(\s*['"]LOG_CHANNEL['"]\s*,\s*['"](?:stack|single|daily)['"]"#,
            keep
        ),
        lr!(
            "TF11-LOG-TO-FILE",
            &[Ini, Yaml, Toml, Json],
            r#"\bclass["']?\s*[=:]\s*["']?(?:logging\.)?(?:handlers\.)?(?:FileHandler|WatchedFileHandler)\b"#,
            keep
        ),
        lr!(
            "TF11-LOG-ROTATION",
            &[Ini, Yaml, Toml, Json],
            r#"\bclass["']?\s*[=:]\s*["']?(?:logging\.)?(?:handlers\.)?(?:RotatingFileHandler|TimedRotatingFileHandler)\b"#,
            keep
        ),
        lr!(
            "TF11-LOG-ROTATION",
            &[Python, Php],
            r"\b(?:RotatingFileHandler|TimedRotatingFileHandler)\(",
            keep
        ),
        lr!(
            "TF11-LOG-ROTATION",
            &[JavaScript],
            r#"winston-daily-rotate-file|\bDailyRotateFile\b|rotating-file-stream|file-stream-rotator|\btype\s*:\s*["']dateFile["']"#,
            keep
        ),
        lr!(
            "TF11-LOG-ROTATION",
            &[Java, Xml, Properties],
            r"Rolling[F]ileAppender|TimeBasedRollingPolicy|SizeBasedTriggeringPolicy|<RollingFile\b|<RollingRandomAccessFile\b",
            keep
        ),
        lr!("TF11-LOG-ROTATION", &[Go], r"\blumberjack\.Logger\b", keep),
        lr!(
            "TF11-LOG-ROTATION",
            &[Rust],
            r"tracing_appender::rolling::(?:minutely|hourly|daily)|\bRollingFileAppender\b",
            keep
        ),
        lr!(
            "TF11-LOG-ROTATION",
            &[Ruby],
            r#"Logger\.new\([^)\n]+,\s*(?:["'](?:daily|weekly|monthly)["']|\d+\s*,\s*\d+)\s*\)"#,
            keep
        ),
        // XII. Admin processes
        lr!(
            "TF12-MIGRATE-AT-START",
            // Go's AutoMigrate is followed from `main` in `golang`.
            &[Python, JavaScript, Ruby, Java, Rust, Php],
            r"\bsequelize\.sync\(|\bknex\.migrate\.latest\(|\bmetadata\.create_all\(|\bdb\.create_all\(\)|sqlx::migrate!\([^)\n]*\)\s*\.run\(|\.run_pending_migrations\(",
            startup_migration
        ),
        lr!(
            "TF12-MIGRATE-AT-START",
            &[Properties, Yaml],
            r"\bddl-auto\s*[=:]\s*(?:update|create|create-drop)\b",
            keep
        ),
        lr!(
            "TF12-ADMIN-IN-REQUEST",
            &[Python],
            r"\bcall_command\(",
            request_handler_path
        ),
        lr!(
            "TF12-ADMIN-IN-REQUEST",
            &[Php],
            r"\bArtisan::call\(",
            request_handler_path
        ),
        lr!(
            "TF12-ADMIN-IN-REQUEST",
            &[Ruby],
            r"Rake::Task\[|ActiveRecord::Migrator\b|ActiveRecord::MigrationContext|DatabaseTasks\.migrate",
            request_handler_path
        ),
        // VIII. In-process schedulers (kept only when the Procfile names a single type; see `repo`)
        lr!(
            "TF08-IN-PROCESS-SCHEDULER",
            &[Python],
            r"\b(?:BackgroundScheduler|AsyncIOScheduler|GeventScheduler)\(|\bschedule\.every\(",
            keep
        ),
        lr!(
            "TF08-IN-PROCESS-SCHEDULER",
            &[JavaScript],
            r"\bcron\.schedule\(|\bnew\s+CronJob\(|\bschedule\.scheduleJob\(",
            keep
        ),
        lr!(
            "TF08-IN-PROCESS-SCHEDULER",
            &[Ruby],
            r"\bRufus::Scheduler\.(?:new|singleton)\b",
            keep
        ),
        lr!(
            "TF08-IN-PROCESS-SCHEDULER",
            &[Java],
            r"@EnableScheduling\b",
            keep
        ),
        lr!(
            "TF08-IN-PROCESS-SCHEDULER",
            &[Go],
            r"\bcron\.New\(|\bgocron\.New(?:Scheduler)?\(",
            keep
        ),
        // II. Dependencies (kept only when the tool is declared nowhere; see `repo`)
        lr!("TF02-UNDECLARED-TOOL", CODE, TOOL_CALL_PATTERN, keep),
    ]
}

/// Skip definitions and imports (library code defining the thing, not an app using it).
fn not_definition(h: &Hit) -> Verdict {
    let t = h.line.trim_ascii_start();
    let def = [
        &b"class "[..],
        b"def ",
        b"from ",
        b"import ",
        b"@",
        b"\"",
        b"'",
    ]
    .iter()
    .any(|p| t.starts_with(p))
        && !t.starts_with(b"\"BACKEND\"")
        && !t.starts_with(b"'BACKEND'");
    if def || reads_env(h.line) {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

/// Saving a file counts as an upload only where the code handles uploads.
fn upload_context(h: &Hit) -> Verdict {
    let line = String::from_utf8_lossy(h.line).to_ascii_lowercase();
    let text_has = |n: &[u8]| h.text.windows(n.len()).any(|w| w == n);
    if line.contains("upload") || text_has(b"request.files") || text_has(b"UploadFile") {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

/// A `const port = N` naming a database or cache port is not the web port.
fn js_port(h: &Hit) -> Verdict {
    const SERVICE_PORTS: &[&str] = &[
        "5432", "3306", "6379", "27017", "11211", "5672", "9200", "9092", "1433", "1521",
    ];
    if SERVICE_PORTS.contains(&h.group(1).as_str()) {
        Verdict::Skip
    } else {
        dev_entry_port(h)
    }
}

fn log4js_file(h: &Hit) -> Verdict {
    if h.text.windows(6).any(|w| w == b"log4js") {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

fn not_tmp(h: &Hit) -> Verdict {
    let line = String::from_utf8_lossy(h.line).to_ascii_lowercase();
    if line.contains("tmp") || line.contains("temp") {
        Verdict::Skip
    } else {
        Verdict::Keep
    }
}

fn dev_entry_debug(h: &Hit) -> Verdict {
    no_env(h)
}

/// A program started by name from code; group 1 is the program.
pub(crate) const TOOL_CALL_PATTERN: &str = concat!(
    r#"(?:subprocess\.(?:run|call|check_call|check_output|Popen)\(\s*\[?\s*|os\.(?:system|popen)\(\s*f?|"#,
    r#"\b(?:exec|execSync|spawn|spawnSync|execFile|execFileSync)\(\s*|\bsystem\(\s*|Open3\.\w+\(\s*|"#,
    r#"exec\.Command(?:Context)?\(\s*(?:ctx\s*,\s*)?|Command::new\(\s*|new\s+ProcessBuilder\(\s*|getRuntime\(\)\.exec\(\s*|"#,
    r#"\b(?:shell_exec|passthru|proc_open)\(\s*)["'`]"#,
    r"(ffmpeg|ffprobe|convert|magick|mogrify|wkhtmltopdf|wkhtmltoimage|pdftotext|pdftoppm|pdfinfo|gs|tesseract|libreoffice|soffice|pandoc|exiftool|sox|gifsicle|optipng|jpegoptim|pngquant|rsvg-convert|inkscape|unoconv|pg_dump|pg_restore|mysqldump|phantomjs|chromium|chromium-browser|google-chrome|xvfb-run|qpdf)",
    r#"(?:["'`\s]|$)"#,
);

/// Compiled line rules with one `RegexSet` per file kind.
pub(crate) struct Engine {
    rules: Vec<LineRule>,
    regexes: Vec<Regex>,
    /// Per kind: the set over the applicable rules and their indexes into `rules`.
    per_kind: Vec<(Kind, RegexSet, Vec<usize>)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.rules.len())
            .finish()
    }
}

const ALL_KINDS: &[Kind] = &[
    Python, JavaScript, Ruby, Go, Java, Rust, Php, Shell, Dockerfile, Compose, Procfile, AppJson,
    K8s, Yaml, Json, Toml, Properties, Xml, Ini, EnvFile, Conf, Other,
];

/// The engine, compiled once.
pub(crate) fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let rules = line_rules();
        let regexes: Vec<Regex> = rules.iter().map(|r| text::re(r.pattern)).collect();
        let per_kind = ALL_KINDS
            .iter()
            .map(|&k| {
                let idx: Vec<usize> = (0..rules.len())
                    .filter(|&i| rules[i].kinds.contains(&k))
                    .collect();
                let set = RegexSetBuilder::new(idx.iter().map(|&i| rules[i].pattern))
                    .unicode(false)
                    .multi_line(true)
                    .build()
                    .unwrap_or_else(|_| RegexSet::empty());
                (k, set, idx)
            })
            .collect();
        Engine {
            rules,
            regexes,
            per_kind,
        }
    })
}

/// Offset of the start of the line holding `pos`.
pub(crate) fn line_start(text: &[u8], pos: usize) -> usize {
    text[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

/// Is column `col` of `line` inside a trailing `# ...` or `// ...` comment?
pub(crate) fn after_trailing_comment(line: &[u8], col: usize) -> bool {
    let prefix = &line[..col.min(line.len())];
    prefix
        .windows(3)
        .any(|w| w == b" # " || w == b"\t# " || w == b" //" || w == b"\t//")
}

fn gunicorn_config(h: &Hit) -> Verdict {
    if h.path_has(&["gunicorn", "conf"]) {
        Verdict::Keep
    } else {
        Verdict::Skip
    }
}

/// Offset of the first `#[cfg(test)]` at the start of a line, or the text's length.
pub(crate) fn rust_test_module_start(text: &[u8]) -> usize {
    let needle = b"\n#[cfg(test)]";
    text.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or(text.len())
}

pub(crate) fn is_comment(line: &[u8]) -> bool {
    let t = line.trim_ascii_start();
    t.starts_with(b">>> ")
        || t.starts_with(b"... ")
        || (t.starts_with(b"#")
            && !t.starts_with(b"#[")
            && !t.starts_with(b"#!")
            && !t.starts_with(b"#{"))
        || t.starts_with(b"//")
        || t.starts_with(b"/*")
        || t.starts_with(b"* ")
        || t == b"*"
        || t.starts_with(b"--")
        || t.starts_with(b"<!--")
        || t.starts_with(b";")
        || t.starts_with(b"\"\"\"")
}

impl Engine {
    /// Run the line rules applicable to `file`.
    pub(crate) fn check(&self, file: &SourceFile) -> Vec<Finding> {
        let mut out = Vec::new();
        if !file.ctx.is_app() {
            return out;
        }
        let Some((_, set, idx)) = self.per_kind.iter().find(|(k, _, _)| *k == file.kind) else {
            return out;
        };
        if idx.is_empty() {
            return out;
        }
        let text = &file.text[..];
        // Rust keeps unit tests in the same file, behind `#[cfg(test)]`: not the app.
        let end = if file.kind == Kind::Rust {
            rust_test_module_start(text)
        } else {
            text.len()
        };
        for set_i in set.matches(text).iter() {
            let ri = idx[set_i];
            let rule_def = &self.rules[ri];
            if rule_def.skip_build_config && file.ctx.build_config {
                continue;
            }
            let info = rule(rule_def.id);
            for caps in self.regexes[ri].captures_iter(text) {
                let Some(m) = caps.get(0) else { continue };
                if m.start() >= end {
                    break;
                }
                let (line_no, line) = text::line_at(text, m.start());
                if !rule_def.in_comments
                    && (is_comment(line)
                        || after_trailing_comment(line, m.start() - line_start(text, m.start())))
                {
                    continue;
                }
                let hit = Hit {
                    rel: &file.rel,
                    line,
                    caps: &caps,
                    text,
                    end: m.end(),
                };
                let severity = match (rule_def.filter)(&hit) {
                    Verdict::Skip => continue,
                    Verdict::Keep => info.severity,
                    Verdict::KeepAs(s) => s,
                };
                let evidence = String::from_utf8_lossy(line);
                out.push(
                    Finding::new(info, Some(&file.rel), Some(line_no), &evidence)
                        .with_severity(severity),
                );
                if out.len() > 200 {
                    return out;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::classify;

    fn ids(rel: &str, src: &str) -> Vec<&'static str> {
        let (kind, ctx) = classify(rel);
        let f = SourceFile {
            rel: rel.into(),
            kind,
            ctx,
            text: src.as_bytes().to_vec(),
        };
        let mut v: Vec<_> = engine().check(&f).into_iter().map(|f| f.rule).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn all_patterns_compile() {
        for r in line_rules() {
            assert!(
                regex::bytes::RegexBuilder::new(r.pattern)
                    .unicode(false)
                    .multi_line(true)
                    .build()
                    .is_ok(),
                "{} {}",
                r.id,
                r.pattern
            );
            assert!(crate::rules::lookup(r.id).is_some(), "{}", r.id);
        }
    }

    #[test]
    fn secrets() {
        assert_eq!(
            ids("app/settings.py", "SECRET_KEY = 'k3y-Xq9-zzP-18f0a7'\n"),
            ["TF03-SECRET-IN-CODE"]
        );
        assert!(ids("app/settings.py", "SECRET_KEY = os.environ['SECRET_KEY']\n").is_empty());
        assert!(
            ids(
                "app/settings.py",
                "PASSWORD_RESET_TIMEOUT = 'abc12345678'\n"
            )
            .is_empty()
        );
        assert!(
            ids(
                "app/forms.py",
                "password = forms.CharField(label='Password')\n"
            )
            .is_empty()
        );
        assert!(ids("tests/test_x.py", "SECRET_KEY = 'k3y-Xq9-zzP-18f0a7'\n").is_empty());
    }

    #[test]
    fn service_urls() {
        assert_eq!(
            ids(
                "app/db.py",
                "engine = create_engine('postgresql://localhost/app')\n"
            ),
            ["TF04-SERVICE-URL-IN-CODE"]
        );
        assert!(ids("app/db.py", "engine = create_engine(os.environ.get('DATABASE_URL', 'postgresql://localhost/app'))\n").is_empty());
        assert!(ids("app/db.py", "# e.g. postgresql://localhost/app\n").is_empty());
    }

    #[test]
    fn ports() {
        assert_eq!(ids("server.js", "app.listen(3000)\n"), ["TF07-FIXED-PORT"]);
        assert!(ids("server.js", "app.listen(process.env.PORT || 3000)\n").is_empty());
    }
}
