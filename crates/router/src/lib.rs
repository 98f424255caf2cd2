//! dozen's router: the HTTP reverse proxy in front of every app.
//!
//! **For:** taking app traffic on one port, routing each request by its `Host` to an app
//! (`<app>.<domain>` or a custom domain), spreading requests over the app's web processes
//! (least outstanding requests, ties round robin), streaming bodies both ways, passing WebSocket
//! and other HTTP upgrades through, accepting HTTP/1.1 and HTTP/2 (h2c with prior knowledge, or
//! ALPN `h2` over TLS), and reporting one [`AccessEvent`] per request. The route table is
//! immutable and swapped whole ([`Router::set_app`]), so a deploy switches every new request at
//! once and no request ever sees half a change. It counts each app's traffic for metrics
//! ([`Router::traffic`]: requests by status class, a latency histogram, body bytes, requests in
//! flight) with atomic counters only.
//!
//! **Not for:** deciding *which* processes are in rotation (the server's deploy orchestration
//! does that, using [`healthy`] and [`Router::wait_drained`]), starting processes, or caching.
//! Backends must speak HTTP/1.1: the router speaks it to them itself (module `wire`), from the
//! client connection's own task, which holds the backend connection for the request and returns
//! it to the backend's pool when the answer has been read; no task or channel sits between.
//!
//! **Main types:** [`Router`] (the table and the serving loops), [`RouterConfig`],
//! [`BackendSpec`] (one process: `web.1` at `127.0.0.1:PORT`), [`AccessEvent`] (the log line),
//! [`TlsSettings`] (certificates per domain), [`Traffic`] (one app's counters), [`RouterError`].
//!
//! Behaviour at the edges:
//!
//! - Unknown host: 404 (event with app `""`). App without processes: 503. `CONNECT`: 405.
//! - A request that could not be handed to a backend (connection refused, or its pooled
//!   connection dead and a new one refused) is tried once more on another backend, then 502.
//!   Nothing was sent, so this holds for any request, with or without a body.
//! - A bodiless idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) whose connection broke
//!   after it was written but before any answer is sent once more: to another backend when there
//!   is one (a process being killed may still accept connections for a moment, so it is not asked
//!   again), else on a new connection to the same one (which may just have closed an idle
//!   keep-alive connection). Either way a process killed mid-request costs no request. Anything
//!   else gets 502 `backend_error`. After a broken or refused connection, the backend's pooled
//!   connections are closed.
//! - No response headers within [`RouterConfig::first_byte_timeout`]: 504.
//! - A client whose request body breaks off before the answer began: 400 `client_body`.
//! - A client that leaves before the answer began: event with status 499, `client_closed`.
//! - Headers follow RFC 9110: hop-by-hop headers are removed both ways (and those `Connection`
//!   names); `X-Forwarded-For` is appended to, `X-Forwarded-Proto`/`-Port`, `X-Request-Id` (kept
//!   when valid) and `Via` are set; the response carries `X-Request-Id` too.
//!
//! Bounds: each backend keeps at most 256 idle keep-alive connections, each reused only within
//! 1 s of idleness. A client connection without a request in progress (idle, or still sending
//! its request head) for 30 s is closed; an upgraded one (WebSocket) never is. An idle HTTP/1.1
//! client connection costs about 19.5 KiB (bench/router.sh measures it), most of it hyper's read
//! and write buffers (8 KiB each, not configurable smaller). A response head from a backend may
//! be up to 64 KiB with up to 100 fields; more is a 502.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dozen_router::{BackendSpec, Router, RouterConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let router = Router::new(RouterConfig::default(), Arc::new(|app: &str, event: dozen_router::AccessEvent| {
//!     println!("{app}: {}", event.to_line());
//! }));
//! router.set_app("shop", &["shop.example.com".to_string()], vec![
//!     BackendSpec::new("web.1", "127.0.0.1:5001".parse().unwrap()),
//! ]);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // `curl -H 'Host: shop.localhost' http://127.0.0.1:8080/` now reaches web.1.
//! router.serve(listener, std::future::pending()).await
//! # }
//! ```

mod access;
mod backend;
mod body;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod headers;
mod health;
mod idle;
mod proxy;
mod router;
mod serve;
mod table;
mod tls;
mod traffic;
mod wire;

pub use access::AccessEvent;
pub use config::{BackendSpec, Balance, RouterConfig, TlsSettings};
pub use error::RouterError;
pub use health::healthy;
pub use router::{AccessFn, Router};
pub use serve::accepted_or_pause;
pub use tls::server_config;
pub use traffic::{LATENCY_BUCKETS, Traffic};
