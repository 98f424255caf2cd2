//! Input checks that run before anything is written. Messages name the
//! offending key, never a config value.

use dozen_core::name;

use crate::StoreError;

/// Longest config value accepted, in bytes.
pub const MAX_CONFIG_VALUE_BYTES: usize = 64 * 1024;
/// Longest config key accepted, in bytes.
pub const MAX_CONFIG_KEY_BYTES: usize = 255;
/// Highest quantity one process type may be scaled to.
pub const MAX_QUANTITY: i64 = 1000;

/// Free text (descriptions, failure reasons, build errors) with every NUL
/// replaced by U+FFFD: PostgreSQL's TEXT cannot hold NUL and SQLite's can,
/// and both backends must store the same thing.
pub(crate) fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// An id or name to look up: one with a NUL byte cannot exist (and would
/// make PostgreSQL fail rather than find nothing).
pub(crate) fn lookup_key(what: &'static str, key: &str) -> Result<(), StoreError> {
    if key.contains('\0') || key.is_empty() {
        Err(StoreError::not_found(what, key.replace('\0', "\\0")))
    } else {
        Ok(())
    }
}

pub(crate) fn app_name(app: &str) -> Result<(), StoreError> {
    name::validate_app_name(app).map_err(|e| StoreError::invalid("app name", e.to_string()))
}

pub(crate) fn config_key(key: &str) -> Result<(), StoreError> {
    if key.len() > MAX_CONFIG_KEY_BYTES {
        return Err(StoreError::invalid(
            "config key",
            format!("a key may have at most {MAX_CONFIG_KEY_BYTES} bytes"),
        ));
    }
    name::validate_env_key(key)
        .map_err(|e| StoreError::invalid("config key", format!("{key}: {e}")))
}

/// A value must be something `execve` can pass: no NUL byte. Also bounded.
pub(crate) fn config_value(key: &str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::invalid(
            "config value",
            format!(
                "the value of {key} contains a NUL byte, which no environment variable can hold"
            ),
        ));
    }
    if value.len() > MAX_CONFIG_VALUE_BYTES {
        return Err(StoreError::invalid(
            "config value",
            format!(
                "the value of {key} has {} bytes; at most {MAX_CONFIG_VALUE_BYTES} are allowed",
                value.len()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn process_type(kind: &str) -> Result<(), StoreError> {
    name::validate_process_type(kind)
        .map_err(|e| StoreError::invalid("process type", format!("{kind:?}: {e}")))
}

/// A git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub(crate) fn commit(c: &str) -> Result<(), StoreError> {
    let hex = c
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex && (c.len() == 40 || c.len() == 64) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "commit",
            "a commit is 40 or 64 lowercase hex digits",
        ))
    }
}

/// Token names: 1 to 64 of `A-Z a-z 0-9 _ - .`.
pub(crate) fn token_name(n: &str) -> Result<(), StoreError> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "token name",
            "use 1 to 64 characters among A-Z a-z 0-9 _ - .",
        ))
    }
}

/// Slug and source digests: 1 to 128 of `0-9 a-z : _ -` (a hex digest,
/// optionally with an algorithm prefix such as `blake3:`).
pub(crate) fn digest(field: &'static str, d: &str) -> Result<(), StoreError> {
    let ok = !d.is_empty()
        && d.len() <= 128
        && d.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || matches!(c, ':' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "a digest is 1 to 128 characters among 0-9 a-z : _ -",
        ))
    }
}

/// A hostname for routing: lowercased, one trailing dot dropped, then RFC
/// 1123: labels of 1 to 63 of `a-z 0-9 -` not starting or ending with `-`,
/// 253 characters at most. Returns the normalised form.
pub(crate) fn hostname(host: &str) -> Result<String, StoreError> {
    let h = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let bad = |why: &str| Err(StoreError::invalid("hostname", format!("{host:?}: {why}")));
    if h.is_empty() {
        return bad("it is empty");
    }
    if h.len() > 253 {
        return bad("it has more than 253 characters");
    }
    for label in h.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated label needs 1 to 63 characters");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label may not start or end with '-'");
        }
    }
    if h.rsplit('.')
        .next()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return bad("the last label is all digits (an IP address is not a domain)");
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(
            hostname("Shop.Example.COM.").expect("valid"),
            "shop.example.com"
        );
        assert_eq!(hostname("localhost").expect("valid"), "localhost");
        assert_eq!(hostname("a-1.b").expect("valid"), "a-1.b");
        for bad in [
            "",
            ".",
            "a..b",
            "-a.com",
            "a-.com",
            "a_b.com",
            "a b",
            "10.0.0.1",
            &"a".repeat(64),
            "*.x.com",
        ] {
            assert!(hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_never_appear_in_errors() {
        let e = config_value("TOKEN", "s3cret\0").expect_err("NUL");
        assert!(!e.to_string().contains("s3cret"));
        let e = config_value("TOKEN", &"s3cret".repeat(20000)).expect_err("too long");
        assert!(!e.to_string().contains("s3cret"));
    }

    #[test]
    fn digests_and_token_names() {
        assert!(digest("slug", &"ab12".repeat(16)).is_ok());
        assert!(digest("slug", "blake3:ab12").is_ok());
        assert!(digest("slug", "AB").is_err());
        assert!(digest("slug", "../x").is_err());
        assert!(token_name("ci-deploy.1").is_ok());
        assert!(token_name("").is_err());
        assert!(token_name("a b").is_err());
    }
}
