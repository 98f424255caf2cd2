//! One request through the router: route by host, pick a backend, forward, stream back.

use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;

use crate::access::AccessEvent;
use crate::backend::{Backend, Conn, READ_BUF};
use crate::body::{Report, ResponseBody, Streaming};
use crate::headers::{
    Forwarded, X_REQUEST_ID, new_request_id, normalize_host, valid_request_id, wants_upgrade,
};
use crate::router::{AccessFn, Router};
use crate::wire::{
    BodyKind, Decoder, Framing, Pump, PumpError, RequestHead, ResponseHead, parse_response,
    poll_read, write_request_head,
};

/// What the router knows about the client connection a request came on.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    /// `X-Forwarded-*` values: the client's address, `http` or `https`, the router's own port.
    pub(crate) forwarded: Forwarded,
}

impl ConnInfo {
    pub(crate) fn new(peer: IpAddr, proto: &'static str, port: u16) -> ConnInfo {
        ConnInfo {
            forwarded: Forwarded::new(peer, proto, port),
        }
    }
}

const UNKNOWN_HOST: &str = "dozen: no app is served at this address.\n";
const NO_WEB_PROCESS: &str = "dozen: this app has no web process running.\n";
const BAD_GATEWAY: &str = "dozen: the app's web process could not be reached.\n";
const NOT_ALLOWED: &str = "dozen: CONNECT is not supported.\n";
const GATEWAY_TIMEOUT: &str = "dozen: the app did not answer in time.\n";
const BAD_REQUEST_BODY: &str = "dozen: the request body broke off.\n";

/// A request's event until it is reported. A request whose client gave up before the answer
/// (its handler dropped midway) is reported as 499 `client_closed`.
struct Pending<'a> {
    event: Option<AccessEvent>,
    app: Option<Arc<str>>,
    received: Instant,
    on_access: &'a AccessFn,
}

impl Pending<'_> {
    fn ev(&mut self) -> &mut AccessEvent {
        self.event.get_or_insert_with(AccessEvent::default)
    }

    fn take(&mut self) -> AccessEvent {
        self.event.take().unwrap_or_default()
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(mut event) = self.event.take() {
            event.status = 499;
            event.error = Some("client_closed");
            event.elapsed = self.received.elapsed();
            event.service_ms = event.elapsed.as_millis() as u64;
            (self.on_access)(self.app.as_deref().unwrap_or(""), event);
        }
    }
}

/// How one try at a backend failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Nothing reached the backend: it refused the connection, or the head could not be
    /// written. The request can go anywhere.
    Unsent,
    /// The connection closed after the request was written, before any answer.
    Closed,
    /// The backend answered nonsense or broke the connection mid-answer.
    Backend,
    /// No response head within the first-byte timeout.
    Timeout,
    /// The client's request body broke off.
    Client,
}

impl Router {
    pub(crate) async fn handle(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        conn: &ConnInfo,
    ) -> Response<ResponseBody> {
        let received = Instant::now();
        let request_id = match req.headers().get(&X_REQUEST_ID) {
            Some(id) if valid_request_id(id.as_bytes()) => id.clone(),
            _ => new_request_id(),
        };
        let host = match req.uri().host() {
            Some(host) => normalize_host(host),
            None => req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(normalize_host),
        };
        let event = AccessEvent {
            method: req.method().as_str().to_owned(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            host: host.unwrap_or_default(),
            request_id: request_id.to_str().unwrap_or_default().to_owned(),
            ..AccessEvent::default()
        };
        let mut pending = Pending {
            event: Some(event),
            app: None,
            received,
            on_access: &self.on_access,
        };
        let route = self.table.load().lookup(&pending.ev().host).cloned();
        let Some(route) = route else {
            return self.reply(
                "",
                pending.take(),
                received,
                &request_id,
                StatusCode::NOT_FOUND,
                "unknown_host",
                UNKNOWN_HOST,
            );
        };

        pending.app = Some(Arc::clone(&route.name));
        if req.method() == Method::CONNECT {
            // Tunnels to arbitrary places are not an app's business (HTTP/1 upgrades are).
            return self.reply(
                &route.name,
                pending.take(),
                received,
                &request_id,
                StatusCode::METHOD_NOT_ALLOWED,
                "unsupported_method",
                NOT_ALLOWED,
            );
        }
        let version = req.version();
        let upgrade = version != Version::HTTP_2 && wants_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();

        // The request head, written once: the same bytes go to a second backend if need be.
        let has_body = !body.is_end_stream();
        let framing = if has_body {
            body.size_hint()
                .exact()
                .map_or(Framing::Chunked, Framing::Length)
        } else if parts.headers.contains_key(header::CONTENT_LENGTH)
            || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH)
        {
            Framing::Length(0)
        } else {
            Framing::None
        };
        let mut head = Vec::with_capacity(256 + 64 * parts.headers.len());
        write_request_head(
            &RequestHead {
                method: &parts.method,
                // Backends get origin-form: `/path?query`.
                target: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
                host: parts
                    .headers
                    .get(header::HOST)
                    .map(HeaderValue::as_bytes)
                    .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes())),
                headers: &parts.headers,
                forwarded: &conn.forwarded,
                request_id: &request_id,
                via: if version == Version::HTTP_2 {
                    "2.0 dozen"
                } else {
                    "1.1 dozen"
                },
                upgrade,
                framing,
                join_cookies: version == Version::HTTP_2,
            },
            &mut head,
        );
        let head_request = parts.method == Method::HEAD;
        let replayable = !has_body && parts.method.is_idempotent();
        let mut pump = has_body.then(|| {
            Pump::new(
                body,
                framing == Framing::Chunked,
                self.traffic.get(&route.name),
            )
        });
        drop(parts);

        // Pick a backend and send. A request that did not reach a backend (it refused the
        // connection, or its pooled connection turned out closed and a new one was refused), or
        // a bodiless idempotent one whose connection closed before any answer, is tried once
        // more: on another backend when there is one, since this one may be dying (a killed
        // process whose listening socket still accepts for a moment), else, for a closed
        // connection, on a new connection to the same one.
        let mut failed: Option<Arc<Backend>> = None;
        let mut same_again = false;
        let (conn, answer, in_flight, sent) = loop {
            let picked = match route.pick(self.config.balance, failed.as_ref()) {
                Some(backend) => Some(backend),
                None if same_again => failed.as_ref(),
                None => None,
            };
            let Some(backend) = picked.cloned() else {
                let (status, code, text) = match failed {
                    None => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no_web_process",
                        NO_WEB_PROCESS,
                    ),
                    Some(_) => (StatusCode::BAD_GATEWAY, "connect_failed", BAD_GATEWAY),
                };
                return self.reply(
                    &route.name,
                    pending.take(),
                    received,
                    &request_id,
                    status,
                    code,
                    text,
                );
            };
            let in_flight = backend.begin();
            pending.ev().backend = Some(backend.name.to_string());
            // A retry never takes a pooled connection: the pool may hold more broken ones.
            let may_pool = failed.is_none();
            let failure = match self
                .attempt(
                    &backend,
                    may_pool,
                    &head,
                    &mut pump,
                    head_request,
                    pending.ev(),
                )
                .await
            {
                Ok((conn, answer, sent)) => break (conn, answer, in_flight, sent),
                Err(failure) => failure,
            };
            drop(in_flight);
            let again = match failure {
                Failure::Unsent => true,
                Failure::Closed => replayable,
                _ => false,
            };
            if again && failed.is_none() {
                same_again = failure == Failure::Closed;
                // Whatever it kept pooled is suspect now.
                backend.drop_idle();
                failed = Some(backend);
                continue;
            }
            let (status, code, text) = match failure {
                Failure::Unsent => (StatusCode::BAD_GATEWAY, "connect_failed", BAD_GATEWAY),
                Failure::Closed | Failure::Backend => {
                    (StatusCode::BAD_GATEWAY, "backend_error", BAD_GATEWAY)
                }
                Failure::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout", GATEWAY_TIMEOUT),
                Failure::Client => (StatusCode::BAD_REQUEST, "client_body", BAD_REQUEST_BODY),
            };
            return self.reply(
                &route.name,
                pending.take(),
                received,
                &request_id,
                status,
                code,
                text,
            );
        };

        let ResponseHead {
            status,
            mut headers,
            via,
            upgrade: switched_to,
            body: kind,
            keep_alive,
        } = answer;
        headers.insert(X_REQUEST_ID.clone(), request_id);
        headers.append(header::VIA, via_value(via.as_ref()));
        // A connection that was asked to switch protocols and did not is not reused.
        let keep_alive = keep_alive && !upgrade;

        if kind == BodyKind::Upgrade {
            let (Some(client_upgrade), Some(switched_to)) = (client_upgrade, switched_to) else {
                drop(in_flight);
                return self.reply(
                    &route.name,
                    pending.take(),
                    received,
                    &headers[&X_REQUEST_ID],
                    StatusCode::BAD_GATEWAY,
                    "backend_error",
                    BAD_GATEWAY,
                );
            };
            headers.insert(header::UPGRADE, switched_to);
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            tokio::spawn(async move {
                // The tunnel counts as a request in flight until either side closes it.
                let _in_flight = in_flight;
                let (mut backend, early) = conn.into_parts();
                if let Ok(client) = client_upgrade.await {
                    let mut client = TokioIo::new(client);
                    if !early.is_empty() && client.write_all(&early).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                }
            });
            let mut event = pending.take();
            event.status = 101;
            event.service_ms = sent.elapsed().as_millis() as u64;
            event.elapsed = received.elapsed();
            (self.on_access)(&route.name, event);
            let mut response = Response::new(ResponseBody::empty());
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            return response;
        }

        let mut event = pending.take();
        event.status = status.as_u16();
        let mut conn = conn;
        let whole = match (kind, &pump) {
            (BodyKind::Empty, None) => Some(Bytes::new()),
            (BodyKind::Length(n), None) if conn.buf.len() as u64 >= n => {
                Some(conn.buf.split_to(n as usize).freeze())
            }
            _ => None,
        };
        let body = match whole {
            Some(bytes) => {
                // The answer came whole with its head: the connection is free already.
                if keep_alive && conn.buf.is_empty() {
                    in_flight.backend().check_in(conn);
                }
                ResponseBody::whole(
                    bytes,
                    self.report(event, &route.name, received, sent, in_flight),
                )
            }
            None => ResponseBody::streaming(
                Streaming {
                    conn,
                    decoder: Decoder::new(kind),
                    pump,
                    keep_alive,
                    read_size: READ_BUF * 2,
                },
                self.report(event, &route.name, received, sent, in_flight),
            ),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        *response.version_mut() = version;
        response
    }

    fn report(
        &self,
        event: AccessEvent,
        app: &Arc<str>,
        received: Instant,
        started: Instant,
        in_flight: crate::backend::InFlight,
    ) -> Report {
        Report {
            event,
            app: Arc::clone(app),
            on_access: Arc::clone(&self.on_access),
            received,
            started,
            in_flight: Some(in_flight),
        }
    }

    /// One try at `backend`: a pooled connection (when `may_pool`) or a new one, the request
    /// written, its body forwarded, and the response head read. A pooled connection that turns
    /// out closed before the request reached it is replaced by a new one to the same backend.
    async fn attempt(
        &self,
        backend: &Backend,
        may_pool: bool,
        head: &[u8],
        pump: &mut Option<Pump>,
        head_request: bool,
        event: &mut AccessEvent,
    ) -> Result<(Conn, ResponseHead, Instant), Failure> {
        let mut conn = match may_pool.then(|| backend.pooled()).flatten() {
            Some(conn) => conn,
            None => self.connect(backend, event).await?,
        };
        loop {
            let sent = Instant::now();
            let limit = self.config.first_byte_timeout;
            match exchange(&mut conn, head, pump, head_request, sent, limit).await {
                Ok(answer) => return Ok((conn, answer, sent)),
                Err(Failure::Unsent) if conn.reused => conn = self.connect(backend, event).await?,
                Err(failure) => return Err(failure),
            }
        }
    }

    async fn connect(&self, backend: &Backend, event: &mut AccessEvent) -> Result<Conn, Failure> {
        let connecting = Instant::now();
        let conn = backend.connect(self.config.connect_timeout).await;
        event.connect_ms += connecting.elapsed().as_millis() as u64;
        conn.map_err(|_| Failure::Unsent)
    }

    /// The router's own answer, reported at once.
    #[allow(clippy::too_many_arguments)]
    fn reply(
        &self,
        app: &str,
        mut event: AccessEvent,
        received: Instant,
        request_id: &HeaderValue,
        status: StatusCode,
        code: &'static str,
        text: &'static str,
    ) -> Response<ResponseBody> {
        event.status = status.as_u16();
        event.error = Some(code);
        event.bytes = text.len() as u64;
        event.elapsed = received.elapsed();
        event.service_ms = event.elapsed.as_millis() as u64;
        (self.on_access)(app, event);
        let mut response = Response::new(ResponseBody::fixed(text));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(X_REQUEST_ID.clone(), request_id.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Writes the request head on `conn`, forwards the request body, and reads the response head,
/// within `limit` of the head being written.
async fn exchange(
    conn: &mut Conn,
    head: &[u8],
    pump: &mut Option<Pump>,
    head_request: bool,
    sent: Instant,
    limit: Duration,
) -> Result<ResponseHead, Failure> {
    if conn.stream.write_all(head).await.is_err() {
        return Err(Failure::Unsent);
    }
    conn.arm(sent, limit);
    let mut body_refused = false;
    let mut answered = false;
    let mut answer = poll_fn(|cx| {
        if let Some(body) = pump.as_mut() {
            match body.poll(&mut conn.stream, cx) {
                Poll::Ready(Ok(())) => *pump = None,
                Poll::Ready(Err(PumpError::Client)) => return Poll::Ready(Err(Failure::Client)),
                // The backend stopped taking the body; it may still answer (413, say).
                Poll::Ready(Err(PumpError::Backend)) => {
                    *pump = None;
                    body_refused = true;
                }
                Poll::Pending => {}
            }
        }
        loop {
            match parse_response(&mut conn.buf, head_request) {
                Ok(Some(answer)) => return Poll::Ready(Ok(answer)),
                Ok(None) => {}
                Err(_) => return Poll::Ready(Err(Failure::Backend)),
            }
            match poll_read(&mut conn.stream, &mut conn.buf, READ_BUF, cx) {
                Poll::Ready(Ok(n)) if n > 0 => answered = true,
                Poll::Ready(_) if answered || !conn.buf.is_empty() => {
                    return Poll::Ready(Err(Failure::Backend));
                }
                Poll::Ready(_) => return Poll::Ready(Err(Failure::Closed)),
                Poll::Pending if conn.poll_expired(cx) => {
                    return Poll::Ready(Err(Failure::Timeout));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await?;
    answer.keep_alive &= !body_refused;
    Ok(answer)
}

/// `Via` for the client: the backend's, with the router appended.
fn via_value(backend: Option<&HeaderValue>) -> HeaderValue {
    const OURS: &str = "1.1 dozen";
    match backend {
        None => HeaderValue::from_static(OURS),
        Some(theirs) => {
            let mut joined = Vec::with_capacity(theirs.len() + 2 + OURS.len());
            joined.extend_from_slice(theirs.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(OURS.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or_else(|_| HeaderValue::from_static(OURS))
        }
    }
}
