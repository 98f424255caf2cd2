//! Header rules: hop-by-hop removal (RFC 9110 §7.6.1), forwarding headers, request ids, hosts.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that belong to one connection and never cross the proxy, besides those the
/// `Connection` header names.
fn fixed_hop_by_hop() -> [&'static HeaderName; 7] {
    [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::PROXY_AUTHORIZATION,
        &header::PROXY_AUTHENTICATE,
    ]
}

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

/// Removes hop-by-hop headers. With `keep_upgrade`, `Upgrade` survives and `Connection` is
/// reduced to `upgrade`, so a protocol switch can pass through.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(tokens)
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for name in named {
            if keep_upgrade && name == header::UPGRADE {
                continue;
            }
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    let upgrade = if keep_upgrade {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    for name in fixed_hop_by_hop() {
        // `remove` drops every value of a repeated header.
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
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

/// Forwarding headers of one client connection, made once per connection.
#[derive(Debug, Clone)]
pub(crate) struct Forwarded {
    client: HeaderValue,
    proto: HeaderValue,
    port: HeaderValue,
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

    /// Appends the client's address to `X-Forwarded-For` (joining repeated headers into one), and
    /// sets `X-Forwarded-Proto` and `X-Forwarded-Port`.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        let mut values = headers.get_all(&X_FORWARDED_FOR).iter();
        let forwarded_for = match (values.next(), values.next()) {
            (None, _) => Some(self.client.clone()),
            (Some(only), None) => join_forwarded(&[only.as_bytes()], self.client.as_bytes()),
            (Some(first), Some(second)) => {
                let mut all = vec![first.as_bytes(), second.as_bytes()];
                all.extend(values.map(HeaderValue::as_bytes));
                join_forwarded(&all, self.client.as_bytes())
            }
        };
        if let Some(value) = forwarded_for {
            headers.insert(X_FORWARDED_FOR.clone(), value);
        }
        headers.insert(X_FORWARDED_PROTO.clone(), self.proto.clone());
        headers.insert(X_FORWARDED_PORT.clone(), self.port.clone());
    }
}

fn join_forwarded(existing: &[&[u8]], client: &[u8]) -> Option<HeaderValue> {
    let mut out =
        Vec::with_capacity(existing.iter().map(|v| v.len() + 2).sum::<usize>() + client.len());
    for value in existing {
        let value = value.trim_ascii();
        if value.is_empty() {
            continue;
        }
        out.extend_from_slice(value);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client);
    HeaderValue::from_bytes(&out).ok()
}

/// Appends `1.1 dozen` (or `2.0 dozen` for HTTP/2) to `Via`.
pub(crate) fn append_via(headers: &mut HeaderMap, version: http::Version) {
    let ours: &'static str = if version == http::Version::HTTP_2 {
        "2.0 dozen"
    } else {
        "1.1 dozen"
    };
    match headers.get(header::VIA) {
        None => {
            headers.insert(header::VIA, HeaderValue::from_static(ours));
        }
        Some(existing) => {
            let mut joined = existing.as_bytes().to_vec();
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(ours.as_bytes());
            if let Ok(value) = HeaderValue::from_bytes(&joined) {
                headers.insert(header::VIA, value);
            }
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

    #[test]
    fn connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Custom"),
        );
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn upgrade_survives_when_switching() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Upgrade, x-custom"),
        );
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(header::CONNECTION).unwrap(), "upgrade");
        assert!(!h.contains_key("x-custom"));
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("5.6.7.8"));
        Forwarded::new("127.0.0.1".parse().unwrap(), "http", 8080).apply(&mut h);
        assert_eq!(
            h.get(&X_FORWARDED_FOR).unwrap(),
            "1.2.3.4, 5.6.7.8, 127.0.0.1"
        );
        assert_eq!(h.get(&X_FORWARDED_PORT).unwrap(), "8080");
        let mut v = HeaderMap::new();
        append_via(&mut v, http::Version::HTTP_11);
        append_via(&mut v, http::Version::HTTP_2);
        assert_eq!(v.get(header::VIA).unwrap(), "1.1 dozen, 2.0 dozen");
    }
}
