//! dozen's router: the HTTP reverse proxy in front of every app.
//!
//! **For:** taking app traffic on one port, routing each request by its `Host` to an app
//! (`<app>.<domain>` or a custom domain), spreading requests over the app's web processes
//! (least outstanding requests, ties round robin), streaming bodies both ways, passing WebSocket
//! and other HTTP upgrades through, accepting HTTP/1.1 and HTTP/2 (h2c with prior knowledge, or
//! ALPN `h2` over TLS), and reporting one [`AccessEvent`] per request. The route table is
//! immutable and swapped whole ([`Router::set_app`]), so a deploy switches every new request at
//! once and no request ever sees half a change.
//!
//! **Not for:** deciding *which* processes are in rotation (the server's deploy orchestration
//! does that, using [`healthy`] and [`Router::wait_drained`]), starting processes, or caching.
//! Backends must speak HTTP/1.1.
//!
//! **Main types:** [`Router`] (the table and the serving loops), [`RouterConfig`],
//! [`BackendSpec`] (one process: `web.1` at `127.0.0.1:PORT`), [`AccessEvent`] (the log line),
//! [`TlsSettings`] (certificates per domain), [`RouterError`].
//!
//! Behaviour at the edges: an unknown host gets 404, an app without processes 503, a backend that
//! refuses the connection is retried once on another backend (the request body has not been sent
//! at that point, so any request can be retried) before 502, and a backend that sends no response
//! headers within [`RouterConfig::first_byte_timeout`] gives 504. Headers follow RFC 9110:
//! hop-by-hop headers are removed both ways; `X-Forwarded-For`/`-Proto`/`-Port`, `X-Request-Id`
//! and `Via` are set. Each backend keeps at most 256 idle keep-alive connections, each reused for
//! at most 1 s of idleness.
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
mod headers;
mod health;
mod proxy;
mod router;
mod serve;
mod table;
mod tls;

pub use access::AccessEvent;
pub use body::ResponseBody;
pub use config::{BackendSpec, Balance, RouterConfig, TlsSettings};
pub use error::RouterError;
pub use health::healthy;
pub use router::{AccessFn, Router};
pub use tls::server_config;
