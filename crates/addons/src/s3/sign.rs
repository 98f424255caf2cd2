//! AWS Signature Version 4 for S3 requests: the `Authorization` header of a request, from its
//! method, path, query, the headers it signs and the SHA-256 of its body.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// An access key and its secret. `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA...`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"(hidden)")
            .finish()
    }
}

/// What is signed of one request.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub method: &'a str,
    /// The path, not yet encoded (`/bucket/prefix/key`).
    pub path: &'a str,
    /// Query parameters, not yet encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// `host` or `host:port`, as the Host header carries it.
    pub host: &'a str,
    /// Hex SHA-256 of the body (`x-amz-content-sha256`).
    pub payload_sha256: &'a str,
    /// `20130524T000000Z`.
    pub amz_date: &'a str,
    /// Other headers to sign (lower-case names).
    pub extra_headers: &'a [(&'a str, &'a str)],
}

/// Hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, every other byte
/// is `%XX` (upper-case); `/` stays too when `keep_slash`.
pub(crate) fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The query string as sent and as signed: encoded pairs sorted by name, then value.
pub(crate) fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Authorization` header's value for `req`, signed for `region`'s `s3` service.
pub(crate) fn authorization(req: &Request<'_>, region: &str, creds: &Credentials) -> String {
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), req.host.trim().to_string()),
        ("x-amz-content-sha256".into(), req.payload_sha256.into()),
        ("x-amz-date".into(), req.amz_date.into()),
    ];
    headers.extend(
        req.extra_headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string())),
    );
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        req.method,
        uri_encode(req.path, true),
        canonical_query(req.query),
        req.payload_sha256
    );
    let date = &req.amz_date[..req.amz_date.len().min(8)];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        req.amz_date,
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET example of AWS's "Signature Version 4 signing process" for S3 (a Range request
    /// of /test.txt in examplebucket, 2013-05-24).
    #[test]
    fn signs_the_documented_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        };
        let empty = sha256_hex(b"");
        let req = Request {
            method: "GET",
            path: "/test.txt",
            query: &[],
            host: "examplebucket.s3.amazonaws.com",
            payload_sha256: &empty,
            amz_date: "20130524T000000Z",
            extra_headers: &[("range", "bytes=0-9")],
        };
        assert_eq!(
            authorization(&req, "us-east-1", &creds),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn encodes_as_sigv4_wants() {
        assert_eq!(uri_encode("/b/a b+c~é", true), "/b/a%20b%2Bc~%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(
            canonical_query(&[("uploadId", "x/y"), ("partNumber", "2")]),
            "partNumber=2&uploadId=x%2Fy"
        );
        assert_eq!(canonical_query(&[("uploads", "")]), "uploads=");
    }

    #[test]
    fn debug_hides_the_secret() {
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "s3cr3t-value".into(),
        };
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("AKID") && !shown.contains("s3cr3t-value"),
            "{shown}"
        );
    }
}
