//! The router's parsing of a backend's response head (`wire::parse_response`), compared with
//! httparse plus the framing rules of RFC 9112 §6.3 written out here independently: the same
//! accept / reject / need-more answer, the same status, the same headers passed on (in order),
//! the same body framing and keep-alive decision, and the same number of bytes consumed.
#![no_main]

use dozen_router::fuzzing::{self, Body, Response};
use libfuzzer_sys::fuzz_target;

/// What the router does with a head that is not complete (the 64 KiB bound of `wire`).
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    More,
    Malformed,
    Head(Response),
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// `1*DIGIT` as a u64.
fn digits(token: &[u8]) -> Option<u64> {
    if token.is_empty() || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(token).ok()?.parse().ok()
}

fn reference(input: &[u8], head_request: bool) -> Expect {
    let mut offset = 0;
    loop {
        let rest = &input[offset..];
        let mut fields = [httparse::EMPTY_HEADER; 100];
        let mut response = httparse::Response::new(&mut fields);
        let len = match response.parse(rest) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if rest.len() < MAX_HEAD => return Expect::More,
            Ok(httparse::Status::Partial) | Err(_) => return Expect::Malformed,
        };
        offset += len;
        let Some(code) = response.code else {
            return Expect::Malformed;
        };
        if (100..200).contains(&code) && code != 101 {
            continue;
        }
        if !(100..=999).contains(&code) {
            return Expect::Malformed;
        }
        let http11 = response.version == Some(1);
        let fields: Vec<(String, &[u8])> = response
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value))
            .collect();
        // Every name and value httparse takes must be one http's types take too.
        for (name, value) in &fields {
            assert!(
                http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
                "{name:?}"
            );
            assert!(http::HeaderValue::from_bytes(value).is_ok(), "{value:?}");
        }
        let all = |wanted: &str| -> Vec<&[u8]> {
            fields
                .iter()
                .filter(|(n, _)| n == wanted)
                .flat_map(|(_, v)| tokens(v))
                .collect()
        };
        let connection = all("connection");
        let has = |t: &str| {
            connection
                .iter()
                .any(|c| c.eq_ignore_ascii_case(t.as_bytes()))
        };
        let encoded = fields.iter().any(|(n, _)| n == "transfer-encoding");
        let chunked = encoded
            && fields
                .iter()
                .rev()
                .find(|(n, _)| n == "transfer-encoding")
                .and_then(|(_, v)| tokens(v).last())
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        // Content-Length: every field and list member `1*DIGIT`, all the same number.
        let mut length = None;
        for (name, value) in &fields {
            if name != "content-length" {
                continue;
            }
            let members: Vec<&[u8]> = tokens(value).collect();
            if members.is_empty() {
                return Expect::Malformed;
            }
            for m in members {
                let Some(n) = digits(m) else {
                    return Expect::Malformed;
                };
                if length.is_some_and(|l| l != n) {
                    return Expect::Malformed;
                }
                length = Some(n);
            }
        }
        let body = if code == 101 {
            Body::Upgrade
        } else if head_request || code == 204 || code == 304 {
            Body::Empty
        } else if encoded {
            if chunked { Body::Chunked } else { Body::Eof }
        } else {
            match length {
                Some(0) => Body::Empty,
                Some(n) => Body::Length(n),
                None => Body::Eof,
            }
        };
        let keep_alive = body != Body::Eof
            && code != 101
            && if http11 {
                !has("close")
            } else {
                has("keep-alive")
            };
        let mut headers = Vec::new();
        let mut via = None;
        let mut upgrade = None;
        for (name, value) in &fields {
            match name.as_str() {
                "upgrade" if code == 101 => upgrade = Some(value.to_vec()),
                "x-request-id" => {}
                "via" => via = Some(value.to_vec()),
                "content-length" if encoded => {}
                n if fuzzing::hop_by_hop(n) || has(n) => {}
                _ => headers.push((name.clone(), value.to_vec())),
            }
        }
        // A header map keeps the values of one name together, at the place of the first.
        let mut grouped: Vec<(String, Vec<u8>)> = Vec::new();
        let mut names: Vec<&String> = Vec::new();
        for (name, _) in &headers {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for name in names {
            grouped.extend(headers.iter().filter(|(n, _)| n == name).cloned());
        }
        let headers = grouped;
        return Expect::Head(Response {
            status: code,
            headers,
            via,
            upgrade,
            body,
            keep_alive,
            consumed: offset,
        });
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let head_request = flags & 1 == 1;
    let ours = match fuzzing::parse_response(input, head_request) {
        Ok(None) => Expect::More,
        Err(_) => Expect::Malformed,
        Ok(Some(head)) => Expect::Head(head),
    };
    let expected = reference(input, head_request);
    assert_eq!(ours, expected, "input {:?}", String::from_utf8_lossy(input));
});
