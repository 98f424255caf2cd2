//! Name rules shared by every format: process type names and app names.
//!
//! The errors here say *why* a name is rejected without repeating the whole
//! name, so callers can embed them in messages that add their own context
//! (file and line, flag name).

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name has no characters at all.
    #[error("the name is empty")]
    Empty,
    /// A character outside the allowed set; `position` counts characters from 1.
    #[error("character {ch:?} at position {position} is not allowed")]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its position in the name, counted in characters from 1.
        position: usize,
    },
    /// The first character must be a lowercase ASCII letter (app names).
    #[error("the first character must be a lowercase letter a-z")]
    BadStart,
    /// Too short or too long (app names).
    #[error("the name has {len} characters; it must have between {min} and {max}")]
    BadLength {
        /// Length found, in characters.
        len: usize,
        /// Minimum length allowed.
        min: usize,
        /// Maximum length allowed.
        max: usize,
    },
}

/// Check a process type name (`web`, `worker`, `release`): one or more of
/// `A-Z a-z 0-9 _ -`, the same set foreman and Heroku accept.
///
/// ```
/// use dozen_core::name::validate_process_type;
/// assert!(validate_process_type("web_2-fast").is_ok());
/// assert!(validate_process_type("web 2").is_err());
/// ```
pub fn validate_process_type(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    first_invalid(name, is_process_type_char)
}

/// Check an app name with Heroku's rule `^[a-z][a-z0-9-]{1,29}$`: 2 to 30
/// characters, lowercase letters, digits and `-`, starting with a letter.
///
/// ```
/// use dozen_core::name::validate_app_name;
/// assert!(validate_app_name("shop-2").is_ok());
/// assert!(validate_app_name("Shop").is_err());
/// ```
pub fn validate_app_name(name: &str) -> Result<(), NameError> {
    const MIN: usize = 2;
    const MAX: usize = 30;
    let first = name.chars().next().ok_or(NameError::Empty)?;
    if !first.is_ascii_lowercase() {
        return Err(NameError::BadStart);
    }
    first_invalid(name, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })?;
    let len = name.chars().count();
    if !(MIN..=MAX).contains(&len) {
        return Err(NameError::BadLength {
            len,
            min: MIN,
            max: MAX,
        });
    }
    Ok(())
}

/// Check an environment variable name as `.env` files accept it:
/// `[A-Za-z_][A-Za-z0-9_.-]*`.
///
/// ```
/// use dozen_core::name::validate_env_key;
/// assert!(validate_env_key("DATABASE_URL").is_ok());
/// assert!(validate_env_key("spring.profiles-active").is_ok());
/// assert!(validate_env_key("2FA").is_err());
/// ```
pub fn validate_env_key(key: &str) -> Result<(), NameError> {
    let first = key.chars().next().ok_or(NameError::Empty)?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(NameError::InvalidChar {
            ch: first,
            position: 1,
        });
    }
    first_invalid(key, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    })
}

/// True for a character allowed in a process type name.
pub(crate) fn is_process_type_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn first_invalid(name: &str, allowed: impl Fn(char) -> bool) -> Result<(), NameError> {
    match name.chars().enumerate().find(|&(_, c)| !allowed(c)) {
        Some((i, ch)) => Err(NameError::InvalidChar {
            ch,
            position: i + 1,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_type_names() {
        for ok in ["web", "Web", "worker_2", "a-b", "1", "_", "-"] {
            assert_eq!(validate_process_type(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_process_type(""), Err(NameError::Empty));
        assert_eq!(
            validate_process_type("we b"),
            Err(NameError::InvalidChar {
                ch: ' ',
                position: 3
            })
        );
        assert_eq!(
            validate_process_type("wéb"),
            Err(NameError::InvalidChar {
                ch: 'é',
                position: 2
            })
        );
        assert!(validate_process_type("web.1").is_err());
        assert!(validate_process_type("web:").is_err());
    }

    #[test]
    fn app_names() {
        for ok in ["ab", "shop", "shop-2", "a234567890123456789012345678-0"] {
            assert_eq!(validate_app_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_app_name(""), Err(NameError::Empty));
        assert_eq!(validate_app_name("Shop"), Err(NameError::BadStart));
        assert_eq!(validate_app_name("2shop"), Err(NameError::BadStart));
        assert_eq!(validate_app_name("-shop"), Err(NameError::BadStart));
        assert!(matches!(
            validate_app_name("a"),
            Err(NameError::BadLength { len: 1, .. })
        ));
        assert!(matches!(
            validate_app_name(&"a".repeat(31)),
            Err(NameError::BadLength { len: 31, .. })
        ));
        assert_eq!(
            validate_app_name("shop_2"),
            Err(NameError::InvalidChar {
                ch: '_',
                position: 5
            })
        );
    }

    #[test]
    fn env_keys() {
        for ok in ["A", "_", "a_b", "A1", "a.b-c", "_1"] {
            assert_eq!(validate_env_key(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_env_key(""), Err(NameError::Empty));
        assert_eq!(
            validate_env_key("1A"),
            Err(NameError::InvalidChar {
                ch: '1',
                position: 1
            })
        );
        assert!(validate_env_key("-A").is_err());
        assert!(validate_env_key(".A").is_err());
        assert!(validate_env_key("A B").is_err());
        assert!(validate_env_key("A$").is_err());
    }

    #[test]
    fn messages_are_readable() {
        let e = validate_process_type("a b").unwrap_err();
        assert_eq!(e.to_string(), "character ' ' at position 2 is not allowed");
    }
}
