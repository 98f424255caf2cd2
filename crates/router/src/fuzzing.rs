//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off in every build
//! dozen ships): the backend-facing HTTP/1.1 code of `wire` driven from byte slices, without
//! sockets. Each function does what the proxy does with the same code, and returns plain values
//! a fuzz target can compare with another parser's. Not a stable API.

use std::net::IpAddr;

use bytes::BytesMut;
use http::Method;
use http::header::{HeaderMap, HeaderValue};

use crate::headers::Forwarded;
use crate::wire::{self, BodyKind, Decoded, Decoder, RequestHead};

/// The input broke HTTP/1.1 (the router would answer 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// How a response body is delimited (`wire::BodyKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Until the backend closes the connection.
    Eof,
    /// 101: the connection switches protocols.
    Upgrade,
}

impl From<BodyKind> for Body {
    fn from(kind: BodyKind) -> Body {
        match kind {
            BodyKind::Empty => Body::Empty,
            BodyKind::Length(n) => Body::Length(n),
            BodyKind::Chunked => Body::Chunked,
            BodyKind::Eof => Body::Eof,
            BodyKind::Upgrade => Body::Upgrade,
        }
    }
}

impl From<Body> for BodyKind {
    fn from(body: Body) -> BodyKind {
        match body {
            Body::Empty => BodyKind::Empty,
            Body::Length(n) => BodyKind::Length(n),
            Body::Chunked => BodyKind::Chunked,
            Body::Eof => BodyKind::Eof,
            Body::Upgrade => BodyKind::Upgrade,
        }
    }
}

/// A parsed response head, as the router passes it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers passed on to the client, in order, names lowercase.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The backend's `Via`.
    pub via: Option<Vec<u8>>,
    /// With a 101, the backend's `Upgrade`.
    pub upgrade: Option<Vec<u8>>,
    /// How the body is delimited.
    pub body: Body,
    /// Whether the connection may serve another request.
    pub keep_alive: bool,
    /// Bytes of the input taken by the head (informational heads included).
    pub consumed: usize,
}

/// Parses a backend's response head from the start of `input`, as the proxy does. `Ok(None)`:
/// more bytes are needed.
pub fn parse_response(input: &[u8], head_request: bool) -> Result<Option<Response>, Malformed> {
    let mut buf = BytesMut::from(input);
    let Some(head) = wire::parse_response(&mut buf, head_request).map_err(|_| Malformed)? else {
        return Ok(None);
    };
    Ok(Some(Response {
        status: head.status.as_u16(),
        headers: pairs(&head.headers),
        via: head.via.map(|v| v.as_bytes().to_vec()),
        upgrade: head.upgrade.map(|v| v.as_bytes().to_vec()),
        body: head.body.into(),
        keep_alive: head.keep_alive,
        consumed: input.len() - buf.len(),
    }))
}

/// A body as the router unframed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unframed {
    /// The body's bytes.
    pub data: Vec<u8>,
    /// Trailer fields (chunked bodies), names lowercase.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// The bytes after the body (the next response's), read or not.
    pub rest: Vec<u8>,
}

/// Unframes a body that arrives in `pieces`, then, when `closed`, the backend closes the
/// connection. `Ok(None)`: the body is not complete yet.
pub fn decode_body(
    body: Body,
    pieces: &[&[u8]],
    closed: bool,
) -> Result<Option<Unframed>, Malformed> {
    let mut decoder = Decoder::new(body.into());
    let mut buf = BytesMut::new();
    let mut out = Unframed::default();
    let mut pieces = pieces.iter();
    let mut eof_sent = false;
    loop {
        match decoder.decode(&mut buf).map_err(|_| Malformed)? {
            Decoded::Data(data) => {
                // The proxy never passes an empty data frame.
                assert!(!data.is_empty(), "the decoder produced an empty data frame");
                out.data.extend_from_slice(&data);
            }
            Decoded::Trailers(trailers) => {
                out.trailers = pairs(&trailers);
                assert!(decoder.is_done(), "trailers before the end of the body");
            }
            Decoded::Done => {
                assert_eq!(decoder.remaining(), Some(0));
                out.rest = buf.to_vec();
                for piece in pieces {
                    out.rest.extend_from_slice(piece);
                }
                return Ok(Some(out));
            }
            Decoded::More => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None if closed && !eof_sent => {
                    decoder.eof().map_err(|_| Malformed)?;
                    eof_sent = true;
                }
                None => return Ok(None),
            },
        }
    }
}

/// How the request body is framed toward the backend (`wire::Framing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// Chunked.
    Chunked,
}

/// What the proxy knows of a client's request when it writes the head toward a backend.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a Method,
    /// Origin-form target.
    pub target: &'a str,
    /// The `Host` to send.
    pub host: Option<&'a [u8]>,
    /// The client's headers.
    pub headers: &'a HeaderMap,
    /// The client's address (appended to `X-Forwarded-For`).
    pub client: IpAddr,
    /// The client asked to switch protocols.
    pub upgrade: bool,
    /// The body's framing.
    pub framing: Framing,
    /// Join `Cookie` fields (an HTTP/2 client).
    pub join_cookies: bool,
}

/// The request id the router sends when it writes [`Request`]s here.
pub const REQUEST_ID: &str = "fuzz-request-id-0000000001";

/// Writes the request head the router sends to a backend.
pub fn write_request_head(request: &Request<'_>) -> Vec<u8> {
    let forwarded = Forwarded::new(request.client, "http", 8080);
    let request_id = HeaderValue::from_static(REQUEST_ID);
    let mut out = Vec::new();
    wire::write_request_head(
        &RequestHead {
            method: request.method,
            target: request.target,
            host: request.host,
            headers: request.headers,
            forwarded: &forwarded,
            request_id: &request_id,
            via: "1.1 dozen",
            upgrade: request.upgrade,
            framing: match request.framing {
                Framing::None => wire::Framing::None,
                Framing::Length(n) => wire::Framing::Length(n),
                Framing::Chunked => wire::Framing::Chunked,
            },
            join_cookies: request.join_cookies,
        },
        &mut out,
    );
    out
}

/// Whether `name` (lowercase) is hop-by-hop: it never crosses the proxy.
pub fn hop_by_hop(name: &str) -> bool {
    wire::hop_by_hop(name)
}

fn pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}
