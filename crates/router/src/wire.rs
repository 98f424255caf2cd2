//! HTTP/1.1 toward backends, written and parsed here: the request head as bytes (with the
//! router's header rules applied as it is written), the response head parsed into a header map
//! (hop-by-hop headers left out), and response bodies unframed. Owning this, instead of going
//! through a general client, lets one task drive both the client's and the backend's connection
//! with no channel or extra task between them.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use crate::headers::Forwarded;

/// Most response headers taken from a backend (hyper's default too).
const MAX_HEADERS: usize = 100;
/// The largest response head taken from a backend.
const MAX_HEAD: usize = 64 * 1024;
/// Reads into the connection's buffer when it has at least this much room left, so the
/// allocation is reused across requests (until it fills, or other requests still hold parts of it).
const MIN_ROOM: usize = 1024;
/// The longest chunk-size line (with extensions) or trailer line accepted, its line end included.
/// Checked on every line, however the bytes arrived, so splitting a body differently into reads
/// never changes whether it is accepted.
const MAX_LINE: usize = 4096;

/// How the request body is framed toward the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body, and no `Content-Length` either.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What goes into a request head besides the client's own headers.
#[derive(Debug)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    /// Origin-form target: `/path?query` (or `*`).
    pub(crate) target: &'a str,
    /// The `Host` to send: the client's, or the authority of an absolute-form or HTTP/2 request.
    pub(crate) host: Option<&'a [u8]>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) forwarded: &'a Forwarded,
    pub(crate) request_id: &'a HeaderValue,
    /// `1.1 dozen` or `2.0 dozen`, for `Via`.
    pub(crate) via: &'static str,
    /// The client asked to switch protocols: `Upgrade` passes, with `Connection: upgrade`.
    pub(crate) upgrade: bool,
    pub(crate) framing: Framing,
    /// An HTTP/2 client may split `Cookie` into many fields; HTTP/1.1 wants one.
    pub(crate) join_cookies: bool,
}

/// Headers that belong to one connection and never cross the proxy (RFC 9110 §7.6.1), besides
/// those the `Connection` header names.
pub(crate) fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-authenticate"
    )
}

/// The comma-separated tokens of header values.
fn tokens<'v>(values: impl Iterator<Item = &'v [u8]>) -> impl Iterator<Item = &'v [u8]> {
    values
        .flat_map(|v| v.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Whether `name` (lowercase) is among the `Connection` header's tokens.
fn named(connection: &[&[u8]], name: &str) -> bool {
    connection
        .iter()
        .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
}

/// Writes the request head: request line, `Host` first, the client's headers minus hop-by-hop
/// ones (and those `Connection` names), then `X-Forwarded-For` (appended to), `-Proto`,
/// `-Port`, `X-Request-Id`, `Via` (appended to), upgrade and framing headers.
pub(crate) fn write_request_head(h: &RequestHead<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(h.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(h.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = h.host {
        field(out, "host", host);
    }
    let connection: Vec<&[u8]> = if h.headers.contains_key(header::CONNECTION) {
        tokens(
            h.headers
                .get_all(header::CONNECTION)
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .collect()
    } else {
        Vec::new()
    };
    let mut forwarded_for: Option<Vec<u8>> = None;
    let mut via: Option<Vec<u8>> = None;
    let mut cookies: Option<Vec<u8>> = None;
    for (name, value) in h.headers {
        let name = name.as_str();
        let list = match name {
            "host" | "content-length" | "transfer-encoding" | "expect" | "x-forwarded-proto"
            | "x-forwarded-port" | "x-request-id" => continue,
            "x-forwarded-for" => &mut forwarded_for,
            "via" => &mut via,
            _ if hop_by_hop(name) || (!connection.is_empty() && named(&connection, name)) => {
                continue;
            }
            "cookie" if h.join_cookies => &mut cookies,
            _ => {
                field(out, name, value.as_bytes());
                continue;
            }
        };
        let value = value.as_bytes().trim_ascii();
        if value.is_empty() {
            continue;
        }
        let joined = list.get_or_insert_with(Vec::new);
        if !joined.is_empty() {
            joined.extend_from_slice(if name == "cookie" { b"; " } else { b", " });
        }
        joined.extend_from_slice(value);
    }
    if let Some(cookies) = cookies {
        field(out, "cookie", &cookies);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(earlier) = forwarded_for {
        out.extend_from_slice(&earlier);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(h.forwarded.client.as_bytes());
    out.extend_from_slice(b"\r\n");
    field(out, "x-forwarded-proto", h.forwarded.proto.as_bytes());
    field(out, "x-forwarded-port", h.forwarded.port.as_bytes());
    field(out, "x-request-id", h.request_id.as_bytes());
    out.extend_from_slice(b"via: ");
    if let Some(earlier) = via {
        out.extend_from_slice(&earlier);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(h.via.as_bytes());
    out.extend_from_slice(b"\r\n");
    if h.upgrade {
        if let Some(upgrade) = h.headers.get(header::UPGRADE) {
            field(out, "upgrade", upgrade.as_bytes());
            out.extend_from_slice(b"connection: upgrade\r\n");
        }
    }
    match h.framing {
        Framing::None => {}
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal_digits(n, &mut [0u8; 20]).as_bytes());
}

/// `n` in decimal, written into `buf` without allocating (for the request head and the access
/// line, both on every request).
pub(crate) fn decimal_digits(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// No body (a HEAD request, 204, 304, or `Content-Length: 0`).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Until the backend closes the connection.
    Eof,
    /// 101: the connection now belongs to another protocol.
    Upgrade,
}

/// A backend's response head, ready to pass on.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    /// The backend's headers minus hop-by-hop ones, minus `X-Request-Id` and `Via` (the router
    /// sets those), minus `Content-Length` when the body is chunked.
    pub(crate) headers: HeaderMap,
    /// The backend's `Via`, if any, to append to.
    pub(crate) via: Option<HeaderValue>,
    /// With [`BodyKind::Upgrade`], the backend's `Upgrade` header.
    pub(crate) upgrade: Option<HeaderValue>,
    pub(crate) body: BodyKind,
    /// The connection may serve another request once this response is read to its end.
    pub(crate) keep_alive: bool,
}

/// A backend broke HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Parses a response head from the start of `buf`, consuming it. Informational (1xx) heads other
/// than 101 are skipped. `Ok(None)` means more bytes are needed.
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
) -> Result<Option<ResponseHead>, Malformed> {
    loop {
        // Left uninitialized: zeroing 100 header slots per response costs more than parsing.
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut fields,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
            Ok(httparse::Status::Partial) | Err(_) => return Err(Malformed),
        };
        let code = response.code.ok_or(Malformed)?;
        let http11 = response.version == Some(1);
        let base = buf.as_ptr() as usize;
        // Where each field is in the head (offsets under MAX_HEAD fit in u32).
        let mut at = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
        let count = response.headers.len();
        for (slot, f) in at.iter_mut().zip(response.headers.iter()) {
            *slot = (
                (f.name.as_ptr() as usize - base) as u32,
                f.name.len() as u32,
                (f.value.as_ptr() as usize - base) as u32,
                f.value.len() as u32,
            );
        }
        let head = buf.split_to(len).freeze();
        if (100..200).contains(&code) && code != 101 {
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(|_| Malformed)?;
        let fields = &at[..count];
        let name_of = |&(n, nl, _, _): &(u32, u32, u32, u32)| &head[n as usize..(n + nl) as usize];
        let value_of = |&(_, _, v, vl): &(u32, u32, u32, u32)| &head[v as usize..(v + vl) as usize];

        // First pass: framing and connection handling.
        let mut connection: Vec<&[u8]> = Vec::new();
        let mut chunked = false;
        let mut encoded = false;
        let mut length: Option<u64> = None;
        for f in fields {
            let name = name_of(f);
            if name.eq_ignore_ascii_case(b"connection") {
                connection.extend(tokens(std::iter::once(value_of(f))));
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                encoded = true;
                chunked = tokens(std::iter::once(value_of(f)))
                    .last()
                    .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"content-length") {
                // `1*DIGIT` (RFC 9110 §8.6), or a list of the same one; an empty value or a sign
                // is invalid framing, never "no length".
                let mut any = false;
                for token in tokens(std::iter::once(value_of(f))) {
                    any = true;
                    let n = Some(token)
                        .filter(|t| t.iter().all(u8::is_ascii_digit))
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .and_then(|t| t.parse::<u64>().ok())
                        .ok_or(Malformed)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(Malformed);
                    }
                    length = Some(n);
                }
                if !any {
                    return Err(Malformed);
                }
            }
        }
        let has = |token: &[u8]| connection.iter().any(|t| t.eq_ignore_ascii_case(token));
        let upgrading = code == 101;
        let body = if upgrading {
            BodyKind::Upgrade
        } else if head_request || code == 204 || code == 304 {
            BodyKind::Empty
        } else if encoded {
            if chunked {
                BodyKind::Chunked
            } else {
                BodyKind::Eof
            }
        } else {
            match length {
                Some(0) => BodyKind::Empty,
                Some(n) => BodyKind::Length(n),
                None => BodyKind::Eof,
            }
        };
        let keep_alive = body != BodyKind::Eof
            && !upgrading
            && if http11 {
                !has(b"close")
            } else {
                has(b"keep-alive")
            };

        // Second pass: the headers passed on.
        // Room for the router's own `X-Request-Id` and `Via` too.
        let mut headers = HeaderMap::with_capacity(count + 2);
        let mut via = None;
        let mut upgrade = None;
        for f in fields {
            let name = HeaderName::from_bytes(name_of(f)).map_err(|_| Malformed)?;
            let (v, vl) = (f.2 as usize, f.3 as usize);
            let value =
                HeaderValue::from_maybe_shared(head.slice(v..v + vl)).map_err(|_| Malformed)?;
            match name.as_str() {
                "upgrade" if upgrading => upgrade = Some(value),
                "x-request-id" => {}
                "via" => via = Some(value),
                "content-length" if encoded => {}
                n if hop_by_hop(n) || (!connection.is_empty() && named(&connection, n)) => {}
                _ => {
                    headers.append(name, value);
                }
            }
        }
        return Ok(Some(ResponseHead {
            status,
            headers,
            via,
            upgrade,
            body,
            keep_alive,
        }));
    }
}

/// Where a chunked body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data to come.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer fields until an empty line.
    Trailers,
}

/// Unframes a response body from the connection's read buffer.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    trailers: Option<HeaderMap>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    Eof,
    Done,
}

/// What the decoder made of the buffer.
#[derive(Debug)]
pub(crate) enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    /// The body is complete.
    Done,
    /// More bytes are needed from the connection.
    More,
}

impl Decoder {
    pub(crate) fn new(kind: BodyKind) -> Decoder {
        let state = match kind {
            BodyKind::Empty | BodyKind::Upgrade => State::Done,
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::Chunked(Chunk::Size),
            BodyKind::Eof => State::Eof,
        };
        Decoder {
            state,
            trailers: None,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes still expected, when known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The next piece of the body from `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Malformed> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::Done),
                State::Length(n) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let take = n.min(buf.len() as u64) as usize;
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length(left)
                    };
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                State::Eof => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                State::Chunked(Chunk::Data(n)) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let take = n.min(buf.len() as u64) as usize;
                    let left = n - take as u64;
                    self.state = State::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                State::Chunked(Chunk::DataEnd) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::More);
                    };
                    if !line.is_empty() {
                        return Err(Malformed);
                    }
                    self.state = State::Chunked(Chunk::Size);
                }
                State::Chunked(Chunk::Size) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::More);
                    };
                    let digits = line.split(|b| *b == b';').next().unwrap_or(&[]);
                    let digits = digits.trim_ascii();
                    if digits.is_empty() || digits.len() > 15 {
                        return Err(Malformed);
                    }
                    let mut size = 0u64;
                    for d in digits {
                        let v = (*d as char).to_digit(16).ok_or(Malformed)?;
                        size = size * 16 + u64::from(v);
                    }
                    self.state = State::Chunked(if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    });
                }
                State::Chunked(Chunk::Trailers) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::More);
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                        return Ok(match self.trailers.take() {
                            Some(trailers) => Decoded::Trailers(trailers),
                            None => Decoded::Done,
                        });
                    }
                    // A trailer field; ones that do not parse are dropped. At most MAX_HEADERS
                    // are kept, as for a head: more is an error (and a HeaderMap would panic past
                    // 32 768 names).
                    if let Some(colon) = line.iter().position(|b| *b == b':') {
                        let name = HeaderName::from_bytes(line[..colon].trim_ascii());
                        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
                        if let (Ok(name), Ok(value)) = (name, value) {
                            if !hop_by_hop(name.as_str()) {
                                let trailers = self.trailers.get_or_insert_with(HeaderMap::new);
                                if trailers.len() >= MAX_HEADERS {
                                    return Err(Malformed);
                                }
                                trailers.append(name, value);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The backend closed the connection: fine only for a body delimited by the close.
    pub(crate) fn eof(&mut self) -> Result<(), Malformed> {
        match self.state {
            State::Eof | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(Malformed),
        }
    }
}

/// Takes one CRLF- (or LF-) terminated line off `buf`, without its end. A line longer than
/// `MAX_LINE` (its end included) is an error, whether or not all of it has arrived.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, Malformed> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    match window.iter().position(|b| *b == b'\n') {
        Some(end) => {
            let mut line = buf.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            Ok(Some(line.freeze()))
        }
        None if buf.len() >= MAX_LINE => Err(Malformed),
        None => Ok(None),
    }
}

/// The client's request body on its way to the backend, frame by frame.
#[derive(Debug)]
pub(crate) struct Pump {
    body: Incoming,
    chunked: bool,
    out: BytesMut,
    done: bool,
    /// Whether any of the body was taken from the client (then the request cannot be sent again).
    pub(crate) started: bool,
    /// The app's traffic counters, which count the bytes taken.
    counters: Option<std::sync::Arc<crate::traffic::Counters>>,
}

/// Why forwarding a request body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PumpError {
    /// The client's body broke off or was malformed.
    Client,
    /// The backend stopped taking it.
    Backend,
}

impl Pump {
    pub(crate) fn new(
        body: Incoming,
        chunked: bool,
        counters: Option<std::sync::Arc<crate::traffic::Counters>>,
    ) -> Pump {
        Pump {
            body,
            chunked,
            out: BytesMut::new(),
            done: false,
            started: false,
            counters,
        }
    }

    /// Moves what the client has sent so far to the backend; ready when the body is all written.
    pub(crate) fn poll(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PumpError>> {
        loop {
            while !self.out.is_empty() {
                match ready!(Pin::new(&mut *stream).poll_write(cx, &self.out)) {
                    Ok(0) | Err(_) => return Poll::Ready(Err(PumpError::Backend)),
                    Ok(n) => self.out.advance(n),
                }
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            self.started = true;
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => {
                    if self.chunked {
                        self.out.extend_from_slice(b"0\r\n\r\n");
                    }
                    self.done = true;
                }
                Some(Err(_)) => return Poll::Ready(Err(PumpError::Client)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => {}
                    Ok(data) => {
                        if let Some(counters) = &self.counters {
                            counters.request_body(data.len());
                        }
                        if self.chunked {
                            self.out
                                .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                        }
                        self.out.extend_from_slice(&data);
                        if self.chunked {
                            self.out.extend_from_slice(b"\r\n");
                        }
                    }
                    Err(frame) => {
                        if let (Ok(trailers), true) = (frame.into_trailers(), self.chunked) {
                            self.out.extend_from_slice(b"0\r\n");
                            for (name, value) in &trailers {
                                if !hop_by_hop(name.as_str()) {
                                    let mut line = Vec::new();
                                    field(&mut line, name.as_str(), value.as_bytes());
                                    self.out.extend_from_slice(&line);
                                }
                            }
                            self.out.extend_from_slice(b"\r\n");
                            self.done = true;
                        }
                    }
                },
            }
            if self.body.is_end_stream() && !self.done {
                if self.chunked {
                    self.out.extend_from_slice(b"0\r\n\r\n");
                }
                self.done = true;
            }
        }
    }
}

/// Reads more of the connection into `buf`, making room for `want` bytes when little is left.
pub(crate) fn poll_read(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    want: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    use std::future::Future as _;
    use tokio::io::AsyncReadExt as _;
    if buf.capacity() - buf.len() < want.min(MIN_ROOM) {
        buf.reserve(want);
    }
    let read = std::pin::pin!(stream.read_buf(buf));
    read.poll(cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits_cover_the_range() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            assert_eq!(decimal_digits(n, &mut [0u8; 20]), n.to_string());
        }
    }

    fn forwarded() -> Forwarded {
        Forwarded::new("127.0.0.1".parse().unwrap(), "http", 8080)
    }

    fn head(headers: &HeaderMap, framing: Framing, upgrade: bool) -> String {
        let fwd = forwarded();
        let id = HeaderValue::from_static("id-1");
        let mut out = Vec::new();
        write_request_head(
            &RequestHead {
                method: &Method::GET,
                target: "/x?y=1",
                host: headers.get(header::HOST).map(HeaderValue::as_bytes),
                headers,
                forwarded: &fwd,
                request_id: &id,
                via: "1.1 dozen",
                upgrade,
                framing,
                join_cookies: true,
            },
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_head_follows_the_header_rules() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("shop.localhost"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Custom"),
        );
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        h.append("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.append("x-forwarded-for", HeaderValue::from_static("5.6.7.8"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(header::VIA, HeaderValue::from_static("1.0 edge"));
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("4"));
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        assert_eq!(
            head(&h, Framing::Length(4), false),
            "GET /x?y=1 HTTP/1.1\r\nhost: shop.localhost\r\nx-kept: 1\r\ncookie: a=1; b=2\r\n\
             x-forwarded-for: 1.2.3.4, 5.6.7.8, 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-port: 8080\r\nx-request-id: id-1\r\nvia: 1.0 edge, 1.1 dozen\r\n\
             content-length: 4\r\n\r\n"
        );
    }

    #[test]
    fn cookies_that_connection_names_are_dropped_even_when_joined() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a"));
        h.insert(header::CONNECTION, HeaderValue::from_static("cookie"));
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        let text = head(&h, Framing::None, false);
        assert!(!text.contains("cookie:"), "{text}");
    }

    #[test]
    fn request_head_keeps_upgrade_when_switching() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Upgrade, x-custom"),
        );
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let text = head(&h, Framing::Chunked, true);
        assert!(
            text.ends_with(
                "upgrade: websocket\r\nconnection: upgrade\r\ntransfer-encoding: chunked\r\n\r\n"
            ),
            "{text}"
        );
        assert!(!text.contains("x-custom"), "{text}");
    }

    fn parse(text: &str, head_request: bool) -> (ResponseHead, BytesMut) {
        let mut buf = BytesMut::from(text.as_bytes());
        let head = parse_response(&mut buf, head_request)
            .expect("valid")
            .expect("complete");
        (head, buf)
    }

    #[test]
    fn response_head_drops_hop_by_hop_and_frames_the_body() {
        let (h, rest) = parse(
            "HTTP/1.1 200 OK\r\nConnection: x-resp-custom\r\nX-Resp-Custom: 1\r\nKeep-Alive: timeout=5\r\n\
             Proxy-Authenticate: Basic\r\nX-Kept: 1\r\nX-Request-Id: theirs\r\nVia: 1.0 app\r\n\
             Content-Length: 5\r\n\r\nhello",
            false,
        );
        assert_eq!(h.status, 200);
        assert_eq!(h.body, BodyKind::Length(5));
        assert!(h.keep_alive);
        assert_eq!(h.headers.len(), 2, "{:?}", h.headers);
        assert_eq!(h.headers["x-kept"], "1");
        assert_eq!(h.headers["content-length"], "5");
        assert_eq!(h.via.unwrap(), "1.0 app");
        assert_eq!(&rest[..], b"hello");

        let (h, _) = parse(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nConnection: close\r\n\r\n",
            false,
        );
        assert_eq!(
            (h.status.as_u16(), h.body, h.keep_alive),
            (200, BodyKind::Chunked, false)
        );
        assert!(h.headers.is_empty(), "{:?}", h.headers);

        let (h, _) = parse("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", true);
        assert_eq!((h.body, h.keep_alive), (BodyKind::Empty, false));
        let (h, _) = parse("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!((h.body, h.keep_alive), (BodyKind::Eof, false));
        let (h, _) = parse(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n",
            false,
        );
        assert_eq!(h.body, BodyKind::Upgrade);
        assert_eq!(h.upgrade.unwrap(), "echo");

        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
        assert!(parse_response(&mut partial, false).unwrap().is_none());
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            // Found by fuzz/fuzz_targets/http_response.rs: an empty length read as "no length"
            // (the body then ran to the connection's end), and a sign was taken.
            "HTTP/1.0 200 OK\r\nContent-Length: \r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            "nonsense\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(bad.as_bytes());
            assert_eq!(
                parse_response(&mut buf, false).unwrap_err(),
                Malformed,
                "{bad}"
            );
        }
    }

    fn decode_all(
        kind: BodyKind,
        pieces: &[&str],
    ) -> Result<(String, Option<HeaderMap>), Malformed> {
        let mut decoder = Decoder::new(kind);
        let mut buf = BytesMut::new();
        let mut body = String::new();
        let mut trailers = None;
        let mut pieces = pieces.iter();
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(d) => body.push_str(std::str::from_utf8(&d).unwrap()),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::Done => return Ok((body, trailers)),
                Decoded::More => match pieces.next() {
                    Some(p) => buf.extend_from_slice(p.as_bytes()),
                    None => {
                        decoder.eof()?;
                    }
                },
            }
        }
    }

    #[test]
    fn bodies_are_unframed() {
        assert_eq!(
            decode_all(
                BodyKind::Chunked,
                &["5\r\nhel", "lo\r\n3;ext=1\r\n, w\r\n0\r\n", "\r\n"]
            )
            .unwrap()
            .0,
            "hello, w"
        );
        let (body, trailers) =
            decode_all(BodyKind::Chunked, &["2\r\nok\r\n0\r\nX-Sum: 7\r\n\r\n"]).unwrap();
        assert_eq!(body, "ok");
        assert_eq!(trailers.unwrap()["x-sum"], "7");
        assert_eq!(
            decode_all(BodyKind::Length(4), &["ab", "cd"]).unwrap().0,
            "abcd"
        );
        assert_eq!(decode_all(BodyKind::Eof, &["ab", "cd"]).unwrap().0, "abcd");
        assert!(decode_all(BodyKind::Length(4), &["ab"]).is_err());
        assert!(decode_all(BodyKind::Chunked, &["zz\r\n"]).is_err());
        assert!(decode_all(BodyKind::Chunked, &["2\r\nokX\r\n"]).is_err());
    }

    #[test]
    fn trailers_are_bounded() {
        // Past MAX_HEADERS trailer fields the body is refused (a HeaderMap would panic past
        // 32 768 names, and grow without bound on one name repeated).
        for name in [|_: usize| "x-same".to_string(), |i: usize| format!("x-{i}")] {
            let mut body = String::from("0\r\n");
            for i in 0..40_000 {
                body.push_str(&format!("{}: 1\r\n", name(i)));
            }
            body.push_str("\r\n");
            assert_eq!(decode_all(BodyKind::Chunked, &[&body]), Err(Malformed));
        }
        let mut body = String::from("0\r\n");
        for i in 0..MAX_HEADERS {
            body.push_str(&format!("x-{i}: 1\r\n"));
        }
        body.push_str("\r\n");
        let (_, trailers) = decode_all(BodyKind::Chunked, &[&body]).unwrap();
        assert_eq!(trailers.unwrap().len(), MAX_HEADERS);
    }

    #[test]
    fn long_lines_are_refused_however_they_arrive() {
        let line = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE));
        let (head, tail) = line.split_at(10);
        assert_eq!(decode_all(BodyKind::Chunked, &[&line]), Err(Malformed));
        assert_eq!(decode_all(BodyKind::Chunked, &[head, tail]), Err(Malformed));
        let fits = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE - 4));
        assert_eq!(decode_all(BodyKind::Chunked, &[&fits]).unwrap().0, "x");
    }

    #[test]
    fn decimals() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            decimal(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }
}
