//! Header values: forwarding headers, request ids, hosts, upgrades. (Hop-by-hop rules are applied
//! as heads are written and parsed, in `wire`.)

use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether an HTTP/1 request asks to switch protocols (`Connection: upgrade` plus `Upgrade`).
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case("upgrade")))
}

fn tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// A client's request id is kept when it is 20 to 200 characters of `[A-Za-z0-9+/=-]`.
pub(crate) fn valid_request_id(value: &[u8]) -> bool {
    (20..=200).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-'))
}

/// A fresh id shaped like a version-4 UUID. Unique within this process (a counter) and across
/// processes (a random seed); not meant to be unguessable.
pub(crate) fn new_request_id() -> HeaderValue {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut buf = [0u8; 8];
        if getrandom::fill(&mut buf).is_err() {
            // No entropy source: the clock still makes ids differ between runs.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            buf = (now ^ u64::from(std::process::id())).to_le_bytes();
        }
        u64::from_le_bytes(buf)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = mix(seed ^ n);
    let lo = mix(hi ^ seed.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let bits = (u128::from(hi) << 64) | u128::from(lo);
    // Version 4, variant 10xx.
    let bits = (bits & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 36];
    let mut nibble = 0;
    for (i, out) in id.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            *out = b'-';
        } else {
            *out = HEX[((bits >> (124 - 4 * nibble)) & 0xF) as usize];
            nibble += 1;
        }
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid-request-id"))
}

/// SplitMix64's finalizer: spreads a counter's bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Forwarding header values of one client connection, made once per connection.
#[derive(Debug, Clone)]
pub(crate) struct Forwarded {
    /// The client's address, appended to `X-Forwarded-For`.
    pub(crate) client: HeaderValue,
    /// `X-Forwarded-Proto`: `http` or `https`.
    pub(crate) proto: HeaderValue,
    /// `X-Forwarded-Port`: the router's own port.
    pub(crate) port: HeaderValue,
}

impl Forwarded {
    pub(crate) fn new(client: IpAddr, proto: &'static str, port: u16) -> Forwarded {
        let client = client.to_canonical().to_string();
        Forwarded {
            client: HeaderValue::from_str(&client)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            proto: HeaderValue::from_static(proto),
            port: HeaderValue::from(port),
        }
    }
}

/// The host a request is routed by: lowercased, without port or trailing dot. `None` when the
/// value is not a plausible host.
pub(crate) fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'/' || b == b'@')
    {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_port_case_and_trailing_dot() {
        assert_eq!(
            normalize_host("Shop.LocalHost:8080").as_deref(),
            Some("shop.localhost")
        );
        assert_eq!(
            normalize_host("shop.example.com.").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host(""), None);
        assert_eq!(normalize_host("a b"), None);
        assert_eq!(normalize_host("[::1"), None);
    }

    #[test]
    fn request_ids() {
        assert!(valid_request_id(b"abcdefghijklmnopqrst"));
        assert!(!valid_request_id(b"short"));
        assert!(!valid_request_id(b"abcdefghijklmnopqrs!"));
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert!(valid_request_id(a.as_bytes()));
        assert_eq!(a.len(), 36);
        assert_eq!(&a.as_bytes()[14..15], b"4");
    }
}
