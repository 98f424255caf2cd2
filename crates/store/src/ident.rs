//! Timestamps, random ids and token hashing.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::StoreError;

/// Now, as stored: RFC 3339, UTC, microseconds (`2026-11-25T21:30:12.123456Z`).
/// Fixed width, so timestamps sort correctly as text on both backends.
pub(crate) fn now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}

/// `n` random bytes from the operating system.
fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Random(e.to_string()))?;
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

/// Nanoseconds since the Unix epoch, strictly increasing within this
/// process even when the clock stands still or steps back.
fn monotonic_nanos() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX - 1);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev.saturating_add(1));
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => prev = actual,
        }
    }
}

/// A build id that sorts by creation order:
/// `YYYYMMDDhhmmssnnnnnnnnn-xxxxxxxx` (UTC to the nanosecond, strictly
/// increasing within the server, then random hex).
pub(crate) fn build_id() -> Result<String, StoreError> {
    let time = jiff::Timestamp::from_nanosecond(i128::from(monotonic_nanos()))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y%m%d%H%M%S%9f")
        .to_string();
    Ok(format!("{time}-{}", hex(&random_bytes::<4>()?)))
}

/// A token id: `tok_` + 16 hex digits.
pub(crate) fn token_id() -> Result<String, StoreError> {
    Ok(format!("tok_{}", hex(&random_bytes::<8>()?)))
}

/// A drain id: `drn_` + 16 hex digits.
pub(crate) fn drain_id() -> Result<String, StoreError> {
    Ok(format!("drn_{}", hex(&random_bytes::<8>()?)))
}

/// A dashboard session id: 64 hex digits (32 random bytes).
pub(crate) fn session_id() -> Result<String, StoreError> {
    Ok(hex(&random_bytes::<32>()?))
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
        assert_eq!(b.len(), 23 + 1 + 8, "{b}");
        assert!(b[..23].chars().all(|c| c.is_ascii_digit()));
        let ids: Vec<String> = (0..1000).map(|_| build_id().expect("random")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "build ids increase");
        let t = new_token().expect("random");
        assert!(t.starts_with(TOKEN_PREFIX));
        assert_eq!(t.len(), 4 + 64);
        assert_ne!(t, new_token().expect("random"));
        assert!(token_id().expect("random").starts_with("tok_"));
    }
}
