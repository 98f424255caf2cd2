//! One request through the router: route by host, pick a backend, forward, stream back.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::access::AccessEvent;
use crate::backend::{Backend, Connection, Sender};
use crate::body::{Report, RequestBody, ResponseBody};
use crate::headers::{
    Forwarded, X_REQUEST_ID, append_via, new_request_id, normalize_host, strip_hop_by_hop,
    valid_request_id, wants_upgrade,
};
use crate::router::{AccessFn, Router};

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
            event.service_ms = self.received.elapsed().as_millis() as u64;
            (self.on_access)(self.app.as_deref().unwrap_or(""), event);
        }
    }
}

/// What it takes to send a bodiless idempotent request again.
struct Replay {
    method: Method,
    uri: Uri,
    headers: http::HeaderMap,
}

impl Replay {
    fn of(request: &Request<RequestBody>) -> Option<Replay> {
        (matches!(request.body(), RequestBody::Empty) && request.method().is_idempotent()).then(
            || Replay {
                method: request.method().clone(),
                uri: request.uri().clone(),
                headers: request.headers().clone(),
            },
        )
    }

    fn request(self) -> Request<RequestBody> {
        let mut request = Request::new(RequestBody::Empty);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.headers_mut() = self.headers;
        request
    }
}

/// How sending to a backend failed.
enum SendError {
    /// The request was not handed to the backend (no connection could be had): it can go elsewhere.
    Unsent(Box<Request<RequestBody>>),
    /// The connection broke after the request went out but before any answer, and the request is
    /// bodiless and idempotent: here it is again, to be sent to another backend (this one may be
    /// dying).
    Broken(Box<Request<RequestBody>>),
    /// The backend broke the connection or answered nonsense.
    Backend,
    /// No response headers within the first-byte timeout.
    Timeout,
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
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers, upgrade);
        conn.forwarded.apply(&mut parts.headers);
        parts
            .headers
            .insert(X_REQUEST_ID.clone(), request_id.clone());
        append_via(&mut parts.headers, version);
        if let Some(authority) = parts.uri.authority() {
            if !parts.headers.contains_key(header::HOST) {
                if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
                    parts.headers.insert(header::HOST, value);
                }
            }
            // Backends get origin-form: `/path?query`.
            let origin = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = Uri::try_from(origin).unwrap_or_else(|_| Uri::from_static("/"));
        }
        parts.version = Version::HTTP_11;
        let body = if body.is_end_stream() {
            RequestBody::Empty
        } else {
            RequestBody::Client(body)
        };
        let mut request = Request::from_parts(parts, body);

        // Pick a backend and send. A request that could not be handed to a backend (it refused
        // the connection, or its pooled connection turned out dead and a new one was refused), or
        // a bodiless idempotent one whose connection broke before any answer, is tried once more:
        // on another backend when there is one, since this one may be dying (a killed process
        // whose listening socket still accepts for a moment), else on a new connection to the same.
        let mut failed: Option<Arc<Backend>> = None;
        // Whether the failed backend may be tried again, on a new connection: only when it broke a
        // connection (it may just have closed a keep-alive one), not when it refused one.
        let mut same_again = false;
        let (mut response, sender, in_flight, sent) = loop {
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
            let connecting = Instant::now();
            // A retry never takes a pooled connection: the pool may hold more broken ones.
            let pooled = if failed.is_some() {
                None
            } else {
                backend.pooled()
            };
            let conn = match pooled {
                Some(conn) => Ok(conn),
                None => backend.connect(self.config.connect_timeout).await,
            };
            pending.ev().connect_ms += connecting.elapsed().as_millis() as u64;
            let outcome = match conn {
                Ok(conn) => {
                    let sent = Instant::now();
                    match tokio::time::timeout(
                        self.config.first_byte_timeout,
                        self.send(&backend, conn, request),
                    )
                    .await
                    {
                        Ok(Ok((response, sender))) => break (response, sender, in_flight, sent),
                        Ok(Err(err)) => err,
                        Err(_) => SendError::Timeout,
                    }
                }
                Err(_) => SendError::Unsent(Box::new(request)),
            };
            drop(in_flight);
            let broken = matches!(outcome, SendError::Broken(_));
            let (status, code, text) = match outcome {
                SendError::Unsent(again) | SendError::Broken(again) if failed.is_none() => {
                    same_again = broken;
                    // Whatever it kept pooled is suspect now.
                    backend.drop_idle();
                    request = *again;
                    failed = Some(backend);
                    continue;
                }
                SendError::Unsent(_) => (StatusCode::BAD_GATEWAY, "connect_failed", BAD_GATEWAY),
                SendError::Broken(_) | SendError::Backend => {
                    (StatusCode::BAD_GATEWAY, "backend_error", BAD_GATEWAY)
                }
                SendError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout", GATEWAY_TIMEOUT),
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

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                drop(in_flight);
                return self.reply(
                    &route.name,
                    pending.take(),
                    received,
                    &request_id,
                    StatusCode::BAD_GATEWAY,
                    "backend_error",
                    BAD_GATEWAY,
                );
            };
            let backend_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                // The tunnel counts as a request in flight until either side closes it.
                let _in_flight = in_flight;
                let _sender: Sender = sender;
                if let (Ok(client), Ok(backend)) = tokio::join!(client_upgrade, backend_upgrade) {
                    let mut client = TokioIo::new(client);
                    let mut backend = TokioIo::new(backend);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                }
            });
            let (mut parts, _) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers, true);
            parts.headers.insert(X_REQUEST_ID.clone(), request_id);
            append_via(&mut parts.headers, Version::HTTP_11);
            let mut event = pending.take();
            event.status = 101;
            event.service_ms = sent.elapsed().as_millis() as u64;
            (self.on_access)(&route.name, event);
            return Response::from_parts(parts, ResponseBody::empty());
        }

        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers, false);
        parts.headers.insert(X_REQUEST_ID.clone(), request_id);
        append_via(&mut parts.headers, Version::HTTP_11);
        parts.version = version;
        let mut event = pending.take();
        event.status = parts.status.as_u16();
        let report = Report {
            event,
            app: Arc::clone(&route.name),
            on_access: Arc::clone(&self.on_access),
            started: sent,
            in_flight: Some(in_flight),
            sender: Some(sender),
        };
        Response::from_parts(parts, ResponseBody::backend(body, report))
    }

    /// Sends on `conn`. A pooled connection found closed before the request went out is replaced
    /// by a new one to the same backend (backends close idle keep-alive connections). When the
    /// connection broke after the request went out but before any answer, a bodiless idempotent
    /// request comes back as [`SendError::Broken`], for the caller to send elsewhere.
    async fn send(
        &self,
        backend: &Backend,
        mut conn: Connection,
        mut request: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Sender), SendError> {
        let replay = Replay::of(&request);
        loop {
            let unsent = match conn.sender.try_send_request(request).await {
                Ok(response) => return Ok((response, conn.sender)),
                Err(mut err) => match err.take_message() {
                    Some(unsent) if conn.reused => unsent,
                    Some(unsent) => return Err(SendError::Unsent(Box::new(unsent))),
                    None => {
                        return Err(match replay {
                            Some(again) => SendError::Broken(Box::new(again.request())),
                            None => SendError::Backend,
                        });
                    }
                },
            };
            match backend.connect(self.config.connect_timeout).await {
                Ok(fresh) => conn = fresh,
                Err(_) => return Err(SendError::Unsent(Box::new(unsent))),
            }
            request = unsent;
        }
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
        event.service_ms = received.elapsed().as_millis() as u64;
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
