//! Small text helpers shared by the rules: redaction of evidence, placeholder and
//! environment-lookup detection.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

/// Build an ASCII-only byte regex. Patterns are constants of this crate, so a failure is a bug
/// caught by the unit tests; at run time it degrades to a regex that never matches.
pub(crate) fn re(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .multi_line(true)
        .build()
        .unwrap_or_else(|e| {
            debug_assert!(false, "bad pattern {pattern}: {e}");
            never()
        })
}

fn never() -> Regex {
    // `[^\x00-\xff]` cannot match any byte.
    #[allow(clippy::expect_used)]
    RegexBuilder::new(r"[^\x00-\xff]")
        .unicode(false)
        .build()
        .expect("the never-matching regex is valid")
}

macro_rules! lazy_re {
    ($name:ident, $pat:expr) => {
        pub(crate) fn $name() -> &'static Regex {
            static R: OnceLock<Regex> = OnceLock::new();
            R.get_or_init(|| re($pat))
        }
    };
}

/// Known credential formats: token prefixes issued by well-known services.
pub(crate) const TOKEN_PATTERN: &str = concat!(
    r"\b(?:",
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",
    r"|gh[pousr]_[A-Za-z0-9]{36,}",
    r"|github_pat_[A-Za-z0-9_]{50,}",
    r"|xox[abprs]-[A-Za-z0-9-]{10,}",
    r"|[sr]k_live_[0-9A-Za-z]{20,}",
    r"|AIza[0-9A-Za-z_-]{35}",
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
    r"|npm_[A-Za-z0-9]{36}",
    r"|glpat-[A-Za-z0-9_-]{20}",
    r"|sk-ant-[A-Za-z0-9_-]{32,}",
    r"|sk-(?:proj-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
    r")\b",
    r"|https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}",
);

lazy_re!(token_re, TOKEN_PATTERN);

/// `scheme://user:password@host`; group 1 = up to the colon, 2 = password.
pub(crate) const URL_CRED_PATTERN: &str =
    r"\b([a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@'`<>]{1,64}:)([^\s@/'`<>]{1,128})@([\w.\[\]-])";
lazy_re!(url_cred_re, URL_CRED_PATTERN);

/// A secret-named key assigned a quoted value; group 1 = key, 2 = value.
pub(crate) const SECRET_ASSIGN_PATTERN: &str = r#"(?i)\b([a-z0-9_.-]*(?:password|passwd|secret|api[_-]?key|apikey|access[_-]?key|auth[_-]?token|access[_-]?token|private[_-]?key|client[_-]?secret|secret[_-]?key|licen[cs]e[_-]?key|token)[a-z0-9_]*)["']?\]?\s*(?::=|=>|=|:)\s*(?:[a-z]+\()?\s*["']([^"'\n]{8,200})["']"#;
lazy_re!(secret_assign_re, SECRET_ASSIGN_PATTERN);

/// Unquoted `key: value` / `key=value` in YAML, properties and .env files.
pub(crate) const SECRET_BARE_PATTERN: &str = r"(?i)^[ \t]*(?:export[ \t]+)?([a-z0-9_.-]*(?:password|passwd|secret|api[_-]?key|apikey|access[_-]?key|auth[_-]?token|access[_-]?token|private[_-]?key|client[_-]?secret|secret[_-]?key|licen[cs]e[_-]?key|token)[a-z0-9_.-]*)[ \t]*[:=][ \t]*([^\s'#][^\s#]{2,200})[ \t\r]*$";
lazy_re!(secret_bare_re, SECRET_BARE_PATTERN);

lazy_re!(
    env_lookup_re,
    r#"(?i)os\.environ|os\.getenv|\bgetenv\(|process\.env|import\.meta\.env|\bENV(?:\[|\.fetch)|\benv\(|\bEnv::get|System\.getenv|std::env|\benv::var|\$\{[a-z_][a-z0-9_]*|\$[A-Z_]{3,}|config\.get_env|environ\.get|os\.LookupEnv|Environment\.GetEnvironmentVariable|decouple\.config|\bconfig\(["'][A-Z_]+["']|<%=|\{\{"#
);

/// Does the line read its value from the environment (so a literal on it is only a default)?
pub(crate) fn reads_env(line: &[u8]) -> bool {
    env_lookup_re().is_match(line)
}

/// Is `value` an obvious placeholder, an interpolation or an example rather than a real secret?
pub(crate) fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if v.starts_with('$')
        || v.starts_with('%')
        || v.starts_with('<')
        || v.starts_with('{')
        || v.starts_with('@')
        || v.starts_with('[')
    {
        return true;
    }
    if v.contains("${")
        || v.contains("{{")
        || v.contains("%(")
        || v.contains("%s")
        || v.contains("#{")
    {
        return true;
    }
    const WORDS: &[&str] = &[
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "example",
        "placeholder",
        "your_",
        "your-",
        "yourpass",
        "xxx",
        "***",
        "...",
        "dummy",
        "sample",
        "redacted",
        "todo",
        "fixme",
        "replace",
        "notsecret",
        "not-secret",
        "not_secret",
        "fake",
        "secret_here",
        "password_here",
        "insert",
        "<",
        "enter_",
        "my_secret",
        "mysecret",
        "foobar",
    ];
    if WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    // One repeated character (`aaaaaaaa`, `00000000`).
    let first = v.as_bytes()[0];
    if v.bytes().all(|b| b == first) {
        return true;
    }
    // Looks like the name of an environment variable, a dotted key or a file path.
    if v.bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && v.bytes().any(|b| b.is_ascii_uppercase())
    {
        return true;
    }
    if v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("~/")
        || v.ends_with(".pem")
        || v.ends_with(".key")
        || v.ends_with(".json")
    {
        return true;
    }
    false
}

/// Does `value` look like a real secret: long enough, not a placeholder, not a word or identifier?
pub(crate) fn looks_secret(value: &str) -> bool {
    if value.len() < 8
        || is_placeholder(value)
        || value.contains([' ', '(', ')', '{', '}', '[', ']', ',', ';', '\\'])
        || !value.is_ascii()
    {
        return false;
    }
    // A route target (`users#unsubscribe`) or a validation rule list (`required|string|min:6`).
    let route = value.split_once('#').is_some_and(|(a, b)| {
        !a.is_empty()
            && a.bytes()
                .all(|c| c.is_ascii_lowercase() || b"_/".contains(&c))
            && b.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
    });
    let rules = value.contains('|')
        && value
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_:,|.".contains(&c));
    if route || rules {
        return false;
    }
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    let has_upper = value.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = value.bytes().any(|b| b.is_ascii_lowercase());
    let has_symbol = value
        .bytes()
        .any(|b| !b.is_ascii_alphanumeric() && !b"._-/:".contains(&b));
    let identifier_like = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && value.contains(['.', '_', '-'])
        && !has_digit;
    if identifier_like {
        return false;
    }
    // Words like "Password" or "secretvalue" are labels, not credentials.
    (has_digit && (has_lower || has_upper))
        || has_symbol
        || (value.len() >= 20 && has_upper && has_lower)
}

/// Passwords that are conventional local-development defaults, not secrets.
pub(crate) fn is_dev_default_password(user: &str, password: &str) -> bool {
    let p = password.to_ascii_lowercase();
    p == user.to_ascii_lowercase()
        || matches!(
            p.as_str(),
            "postgres"
                | "password"
                | "pass"
                | "secret"
                | "root"
                | "admin"
                | "guest"
                | "mysql"
                | "redis"
                | "dev"
                | "development"
                | "test"
                | "example"
                | "changeme"
                | "pw"
                | "passwd"
                | "123456"
                | "django"
                | "rails"
                | "app"
                | "user"
                | "local"
                | "docker"
                | "sa"
                | "mongo"
        )
        || is_placeholder(password)
}

const MAX_EVIDENCE: usize = 160;

/// Redact every credential-looking part of a line and cut it to a readable length.
pub(crate) fn redact_evidence(line: &str) -> String {
    let mut s = line.trim().to_owned();
    s = replace_all(&s, token_re(), |m, _| {
        let keep: String = m.chars().take(4).collect();
        format!("{keep}…[REDACTED]")
    });
    s = replace_all(&s, url_cred_re(), |_, caps| {
        let head = caps.first().cloned().unwrap_or_default();
        let host = caps.get(2).cloned().unwrap_or_default();
        format!("{head}****@{host}")
    });
    s = replace_all(&s, secret_assign_re(), |m, caps| {
        let value = caps.get(1).cloned().unwrap_or_default();
        if value.is_empty() || is_placeholder(&value) {
            m.to_owned()
        } else {
            m.replacen(&value, "****", 1)
        }
    });
    s = replace_all(&s, secret_bare_re(), |m, caps| {
        let value = caps.get(1).cloned().unwrap_or_default();
        if value.is_empty() || is_placeholder(&value) {
            m.to_owned()
        } else {
            m.replacen(&value, "****", 1)
        }
    });
    if s.chars().count() > MAX_EVIDENCE {
        let cut: String = s.chars().take(MAX_EVIDENCE).collect();
        s = format!("{cut}…");
    }
    s
}

/// Replace each match of `re` in `s`; the callback gets the whole match and groups 1.. as text.
fn replace_all(s: &str, re: &Regex, f: impl Fn(&str, &[String]) -> String) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for caps in re.captures_iter(bytes) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&String::from_utf8_lossy(&bytes[last..m.start()]));
        let groups: Vec<String> = (1..caps.len())
            .map(|i| {
                caps.get(i)
                    .map(|g| String::from_utf8_lossy(g.as_bytes()).into_owned())
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&f(&String::from_utf8_lossy(m.as_bytes()), &groups));
        last = m.end();
    }
    out.push_str(&String::from_utf8_lossy(&bytes[last..]));
    out
}

/// 1-based line number of byte offset `pos` and the line's text.
pub(crate) fn line_at(text: &[u8], pos: usize) -> (u32, &[u8]) {
    let start = text[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let end = text[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| pos + i);
    let line_no = text[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
    (
        u32::try_from(line_no).unwrap_or(u32::MAX),
        &text[start..end],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_tokens_urls_and_assignments() {
        let key = concat!("AKIA", "Z3MXQ7PLR2VD4KTB");
        let out = redact_evidence(&format!("aws_key = {key}"));
        assert!(!out.contains("Z3MXQ7"), "{out}");
        let out = redact_evidence("DATABASE_URL = 'postgres://app:s3cretPw9@db.internal:5432/app'");
        assert!(out.contains("postgres://app:****@db.internal"), "{out}");
        let out = redact_evidence("SECRET_KEY = 'k3y-Xq9-zzP-18f0a'");
        assert!(out.contains("****") && !out.contains("k3y-Xq9"), "{out}");
        let out = redact_evidence("password: hunter2hunter2");
        assert!(!out.contains("hunter2"), "{out}");
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for v in [
            "changeme",
            "${DB_PASSWORD}",
            "your_api_key_here",
            "xxxxxxxxxx",
            "DB_PASSWORD",
            "<password>",
            "Password",
        ] {
            assert!(!looks_secret(v), "{v}");
        }
        for v in [
            "s3cr3t-Pa55w0rd",
            "9f8e7d6c5b4a3210ffee",
            "django-insecure-4j@k!x9",
        ] {
            assert!(looks_secret(v), "{v}");
        }
    }

    #[test]
    fn env_lookups() {
        assert!(reads_env(
            b"x = os.environ.get('DATABASE_URL', 'postgres://localhost/db')"
        ));
        assert!(reads_env(b"const port = process.env.PORT || 3000"));
        assert!(!reads_env(b"app.listen(3000)"));
    }

    #[test]
    fn line_numbers() {
        let t = b"a\nbb\nccc";
        assert_eq!(line_at(t, 0), (1, &b"a"[..]));
        assert_eq!(line_at(t, 3), (2, &b"bb"[..]));
        assert_eq!(line_at(t, 7), (3, &b"ccc"[..]));
    }
}
