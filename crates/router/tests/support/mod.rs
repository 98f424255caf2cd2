//! Test fixtures: small HTTP/1.1 backends, a router on a free port, and a client.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dozen_router::{AccessEvent, BackendSpec, Router, RouterConfig};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::channel::Channel;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};

pub type Body = BoxBody<Bytes, hyper::Error>;

/// Waits longer than any test should need; only to turn a hang into a failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A backend that answers with its name and remembers each request's headers.
/// Paths: `/echo` streams the request body back; `/stream` sends `first\n`, waits for
/// `release`, then `second\n`; `/slow` waits for `release` before answering; `/hop` answers with
/// hop-by-hop headers; `/ws` switches protocols and echoes bytes; `/fail` answers 500.
pub struct TestBackend {
    pub name: String,
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<HeaderMap>>>,
    pub release: Arc<Notify>,
    pub arrived: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TestBackend {
    pub async fn start(name: &str) -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(Notify::new());
        let arrived = Arc::new(Notify::new());
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let state = (
            name.to_string(),
            Arc::clone(&seen),
            Arc::clone(&release),
            Arc::clone(&arrived),
        );
        let conns = Arc::new(Mutex::new(Vec::new()));
        let conns_in_loop = Arc::clone(&conns);
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = &mut stop_rx => return,
                    accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                };
                let state = state.clone();
                let task = tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(req, state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
                conns_in_loop.lock().unwrap().push(task.abort_handle());
            }
        });
        TestBackend {
            name: name.to_string(),
            addr,
            seen,
            release,
            arrived,
            stop: Some(stop_tx),
            conns,
        }
    }

    /// Dies like a killed process: stops listening and drops every connection.
    pub fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    pub fn spec(&self) -> BackendSpec {
        BackendSpec::new(&self.name, self.addr)
    }

    pub fn last_headers(&self) -> HeaderMap {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("backend saw a request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type State = (String, Arc<Mutex<Vec<HeaderMap>>>, Arc<Notify>, Arc<Notify>);

async fn answer(
    mut req: Request<Incoming>,
    (name, seen, release, arrived): State,
) -> Response<Body> {
    seen.lock().unwrap().push(req.headers().clone());
    arrived.notify_one();
    let mut response = match req.uri().path() {
        "/echo" => Response::new(req.into_body().boxed()),
        "/stream" => {
            let (mut tx, body) = Channel::<Bytes, hyper::Error>::new(1);
            tokio::spawn(async move {
                let _ = tx.send_data(Bytes::from_static(b"first\n")).await;
                release.notified().await;
                let _ = tx.send_data(Bytes::from_static(b"second\n")).await;
            });
            Response::new(body.boxed())
        }
        "/slow" => {
            release.notified().await;
            Response::new(full(format!("slow from {name}")))
        }
        "/hop" => {
            let mut r = Response::new(full("hop"));
            let h = r.headers_mut();
            h.insert("connection", "x-resp-custom".parse().unwrap());
            h.insert("x-resp-custom", "1".parse().unwrap());
            h.insert("keep-alive", "timeout=5".parse().unwrap());
            h.insert("proxy-authenticate", "Basic".parse().unwrap());
            h.insert("x-resp-kept", "1".parse().unwrap());
            r
        }
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    let mut buf = [0u8; 1024];
                    loop {
                        match io.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if io.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
            });
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut().insert("upgrade", "echo".parse().unwrap());
            r.headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            r
        }
        "/fail" => {
            let mut r = Response::new(full("no"));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
        _ => Response::new(full(format!("hello from {name}"))),
    };
    response
        .headers_mut()
        .insert("x-backend", name.parse().unwrap());
    response
}

/// A router serving on a free port, with its access events.
pub struct TestRouter {
    pub router: Arc<Router>,
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<(String, AccessEvent)>,
    stop: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestRouter {
    pub async fn start() -> TestRouter {
        TestRouter::with_config(RouterConfig::default()).await
    }

    pub async fn with_config(config: RouterConfig) -> TestRouter {
        let (tx, events) = mpsc::unbounded_channel();
        let router = Router::new(
            config,
            Arc::new(move |app: &str, event: AccessEvent| {
                let _ = tx.send((app.to_string(), event));
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind router");
        let addr = listener.local_addr().expect("router addr");
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let done = tokio::spawn(Arc::clone(&router).serve(listener, async move {
            let _ = stop_rx.await;
        }));
        TestRouter {
            router,
            addr,
            events,
            stop: Some(stop_tx),
            done: Some(done),
        }
    }

    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn event(&mut self) -> (String, AccessEvent) {
        tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .expect("an access event in time")
            .expect("event channel open")
    }

    /// A GET for `host` and `path` on a new connection.
    pub async fn get(&self, host: &str, path: &str) -> (Response<()>, String) {
        let req = Request::get(path)
            .header("host", host)
            .body(empty())
            .unwrap();
        send(self.addr, req).await
    }
}

/// Sends one request on a new HTTP/1.1 connection; returns the head and the whole body.
pub async fn send(addr: SocketAddr, req: Request<Body>) -> (Response<()>, String) {
    let response = open(addr).await.send_request(req).await.expect("response");
    let (parts, body) = response.into_parts();
    let bytes = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// An HTTP/1.1 client connection.
pub async fn open(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Body> {
    let stream = TcpStream::connect(addr).await.expect("connect router");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// An address where nothing listens.
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A backend whose first connection reads one request and closes without answering (a process
/// dying with the request); later connections answer `200 ok`.
pub async fn flaky_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind flaky backend");
    let addr = listener.local_addr().expect("flaky addr");
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut stream, _)) = listener.accept().await {
            let drop_it = std::mem::replace(&mut first, false);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        if drop_it {
                            return;
                        }
                        buf.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// A backend that answers its first request (keep-alive, so the router pools the connection) and
/// then dies without closing its listening socket: every later request, on the pooled connection
/// or a new one, is read and dropped unanswered. The counter counts requests read.
pub async fn dying_backend() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind dying backend");
    let addr = listener.local_addr().expect("dying addr");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if counter.fetch_add(1, Ordering::SeqCst) > 0 {
                            return;
                        }
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, seen)
}
