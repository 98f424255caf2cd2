//! Random passwords: 32 letters and digits (about 190 bits), safe inside SQL string literals,
//! URLs and `rabbitmqctl`'s stdin without quoting.

use crate::AddonError;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LENGTH: usize = 32;

/// A new password.
pub(crate) fn generate() -> Result<String, AddonError> {
    let mut out = String::with_capacity(LENGTH);
    while out.len() < LENGTH {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).map_err(|e| AddonError::Random(e.to_string()))?;
        // 248 = 4 * 62: bytes at or above it are dropped, so every character is equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == LENGTH {
                break;
            }
            out.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

/// Whether `s` is a password [`generate`] could have made (checked before one is put in SQL).
pub(crate) fn is_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_long_alphanumeric_and_differ() {
        let a = super::generate().expect("random");
        let b = super::generate().expect("random");
        assert_eq!(a.len(), 32);
        assert!(super::is_safe(&a));
        assert_ne!(a, b);
        assert!(!super::is_safe("x'; DROP"));
    }
}
