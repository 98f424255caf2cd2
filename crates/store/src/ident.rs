//! Timestamps, random ids and token hashing.

use crate::StoreError;

/// Now, as stored: RFC 3339, UTC, microseconds (`2026-11-25T21:30:12.123456Z`).
/// Fixed width, so timestamps sort correctly as text on both backends.
pub(crate) fn now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}

/// `n` random bytes from the operating system.
fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Corrupt {
        what: "random number source",
        message: e.to_string(),
    })?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A build id that sorts by creation time: `YYYYMMDDhhmmssmmm-xxxxxxxx` (UTC).
pub(crate) fn build_id() -> Result<String, StoreError> {
    let time = jiff::Timestamp::now()
        .strftime("%Y%m%d%H%M%S%3f")
        .to_string();
    Ok(format!("{time}-{}", hex(&random_bytes::<4>()?)))
}

/// A token id: `tok_` + 16 hex digits.
pub(crate) fn token_id() -> Result<String, StoreError> {
    Ok(format!("tok_{}", hex(&random_bytes::<8>()?)))
}

/// Prefix of every token dozen generates, so secret scanners can spot them.
pub const TOKEN_PREFIX: &str = "dzn_";

/// A fresh API token: `dzn_` + 64 hex digits (32 random bytes).
pub(crate) fn new_token() -> Result<String, StoreError> {
    Ok(format!("{TOKEN_PREFIX}{}", hex(&random_bytes::<32>()?)))
}

/// What the store keeps of a token: its blake3 hash, as hex.
pub(crate) fn token_hash(plaintext: &str) -> blake3::Hash {
    blake3::hash(plaintext.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_fixed_width() {
        let t = now();
        assert_eq!(t.len(), "2026-11-25T21:30:12.123456Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }

    #[test]
    fn ids_have_their_shape() {
        let b = build_id().expect("random");
        assert_eq!(b.len(), 17 + 1 + 8, "{b}");
        assert!(b[..17].chars().all(|c| c.is_ascii_digit()));
        let t = new_token().expect("random");
        assert!(t.starts_with(TOKEN_PREFIX));
        assert_eq!(t.len(), 4 + 64);
        assert_ne!(t, new_token().expect("random"));
        assert!(token_id().expect("random").starts_with("tok_"));
    }
}
