//! The request head the router writes to a backend (`wire::write_request_head`), from a
//! client's request as hyper hands it over (parsed here by httparse, which hyper uses, and
//! converted by http's types as hyper does). The written head must parse with httparse to its
//! last byte (no header can end it early or smuggle a second request), with the client's method,
//! target and end-to-end headers unchanged and in order, no hop-by-hop header, exactly one of
//! each forwarding header, and framing headers that say what the router will send.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dozen_router::fuzzing::{self, Framing, REQUEST_ID, Request};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use libfuzzer_sys::fuzz_target;

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

fn ows_trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    // The client's request, as hyper would take it.
    let mut fields = [httparse::EMPTY_HEADER; 100];
    let mut parsed = httparse::Request::new(&mut fields);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(input) else {
        return;
    };
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    if method == Method::CONNECT {
        return; // answered 405 by the router, never forwarded
    }
    let Ok(uri) = path.parse::<Uri>() else {
        return;
    };
    let mut headers = HeaderMap::new();
    for f in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(f.name.as_bytes()),
            HeaderValue::from_bytes(f.value),
        ) else {
            return;
        };
        headers.append(name, value);
    }
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let host = headers
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .or_else(|| uri.authority().map(|a| a.as_str().as_bytes()));
    let connection: Vec<Vec<u8>> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| tokens(v.as_bytes()))
        .map(|t| t.to_ascii_lowercase())
        .collect();
    let upgrade =
        headers.contains_key(header::UPGRADE) && connection.iter().any(|t| t == b"upgrade");
    let framing = match flags & 3 {
        0 => Framing::None,
        1 => Framing::Length(u64::from(flags) * 1000),
        2 => Framing::Chunked,
        _ => Framing::Length(0),
    };
    let join_cookies = flags & 4 != 0;
    let client = if flags & 8 != 0 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            0,
            u16::from(flags),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, flags))
    };
    let written = fuzzing::write_request_head(&Request {
        method: &method,
        target,
        host,
        headers: &headers,
        client,
        upgrade,
        framing,
        join_cookies,
    });

    // The backend's view.
    let mut out_fields = [httparse::EMPTY_HEADER; 128];
    let mut out = httparse::Request::new(&mut out_fields);
    let status = out.parse(&written).unwrap_or_else(|e| {
        panic!(
            "written head does not parse ({e}): {:?}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(
        status,
        httparse::Status::Complete(written.len()),
        "head ends early"
    );
    assert_eq!(out.method, Some(method.as_str()));
    assert_eq!(out.path, Some(target));
    assert_eq!(out.version, Some(1));
    let got: Vec<(String, &[u8])> = out
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value))
        .collect();
    let count = |name: &str| got.iter().filter(|(n, _)| n == name).count();
    let value = |name: &str| got.iter().find(|(n, _)| n == name).map(|(_, v)| *v);

    match host {
        Some(h) => {
            assert_eq!(got[0].0, "host");
            assert_eq!(got[0].1, ows_trim(h));
            assert_eq!(count("host"), 1);
        }
        None => assert_eq!(count("host"), 0),
    }
    for (name, v) in &got {
        if upgrade && name == "upgrade" {
            continue;
        }
        if upgrade && name == "connection" {
            assert_eq!(*v, b"upgrade");
            continue;
        }
        if name == "transfer-encoding" {
            continue; // the router's own framing, checked below
        }
        assert!(!fuzzing::hop_by_hop(name), "hop-by-hop {name} forwarded");
        // Headers the router writes itself go out whatever Connection names.
        let own = matches!(
            name.as_str(),
            "host"
                | "x-forwarded-for"
                | "x-forwarded-proto"
                | "x-forwarded-port"
                | "x-request-id"
                | "via"
                | "content-length"
        );
        if !connection.is_empty() && !own {
            assert!(
                !connection.iter().any(|t| t == name.as_bytes()),
                "{name} named by Connection forwarded"
            );
        }
    }
    for name in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-request-id",
        "via",
    ] {
        assert_eq!(count(name), 1, "{name}");
    }
    let client_text = client.to_string();
    assert!(
        value("x-forwarded-for")
            .unwrap()
            .ends_with(client_text.as_bytes())
    );
    assert_eq!(value("x-forwarded-proto"), Some(&b"http"[..]));
    assert_eq!(value("x-forwarded-port"), Some(&b"8080"[..]));
    assert_eq!(value("x-request-id"), Some(REQUEST_ID.as_bytes()));
    assert!(value("via").unwrap().ends_with(b"1.1 dozen"));
    assert_eq!(count("expect"), 0);
    match framing {
        Framing::None => {
            assert_eq!(
                (count("content-length"), count("transfer-encoding")),
                (0, 0)
            );
        }
        Framing::Length(n) => {
            assert_eq!(count("transfer-encoding"), 0);
            assert_eq!(value("content-length"), Some(n.to_string().as_bytes()));
            assert_eq!(count("content-length"), 1);
        }
        Framing::Chunked => {
            assert_eq!(count("content-length"), 0);
            assert_eq!(value("transfer-encoding"), Some(&b"chunked"[..]));
            assert_eq!(count("transfer-encoding"), 1);
        }
    }

    // The client's end-to-end headers: all there, in order, values unchanged.
    let special = |name: &str| {
        matches!(
            name,
            "host"
                | "content-length"
                | "transfer-encoding"
                | "expect"
                | "x-forwarded-for"
                | "x-forwarded-proto"
                | "x-forwarded-port"
                | "x-request-id"
                | "via"
        ) || (join_cookies && name == "cookie")
            || fuzzing::hop_by_hop(name)
            || connection.iter().any(|t| t == name.as_bytes())
    };
    let expected: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(n, _)| !special(n.as_str()))
        .map(|(n, v)| (n.as_str(), ows_trim(v.as_bytes())))
        .collect();
    let forwarded: Vec<(&str, &[u8])> = got
        .iter()
        .filter(|(n, _)| !special(n) && !(join_cookies && n == "cookie"))
        .filter(|(n, _)| !(upgrade && (n == "upgrade" || n == "connection")))
        .map(|(n, v)| (n.as_str(), *v))
        .collect();
    assert_eq!(forwarded, expected);
    if join_cookies {
        let cookies: Vec<&[u8]> = headers
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.as_bytes().trim_ascii())
            .filter(|v| !v.is_empty())
            .collect();
        if cookies.is_empty() || connection.iter().any(|t| t == b"cookie") {
            assert_eq!(count("cookie"), 0);
        } else {
            assert_eq!(value("cookie"), Some(ows_trim(&cookies.join(&b"; "[..]))));
        }
    }
});
