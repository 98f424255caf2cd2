//! What the router is told: its settings, an app's backends, and TLS certificates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How the router picks one of an app's backends for each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// The backend with the fewest requests in flight; ties go round robin. The default: a slow
    /// request on one process does not hold up the requests queued behind it.
    #[default]
    LeastOutstanding,
    /// Each backend in turn, whatever its load.
    RoundRobin,
}

/// Router settings, fixed for the router's life.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Apps are reached at `<app>.<domain>`. Default `localhost`.
    pub domain: String,
    /// A backend that has not sent response headers this long after the request was sent gets a
    /// 504. Default 30 s, like Heroku's router.
    pub first_byte_timeout: Duration,
    /// A TCP connect to a backend taking longer than this counts as a connect failure. Default 5 s.
    pub connect_timeout: Duration,
    /// How requests are spread over an app's backends.
    pub balance: Balance,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            domain: "localhost".to_owned(),
            first_byte_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            balance: Balance::default(),
        }
    }
}

/// One process of an app that takes requests: `web.1` at `127.0.0.1:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The process name shown in access events, such as `web.1`.
    pub name: String,
    /// Where the process listens; it speaks HTTP/1.1.
    pub addr: SocketAddr,
}

impl BackendSpec {
    /// A backend named `name` listening on `addr`.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        BackendSpec {
            name: name.into(),
            addr,
        }
    }
}

/// Certificates for [`crate::Router::serve_tls`].
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `(domain, certificate chain PEM file, private key PEM file)`. The client's SNI name picks the
    /// entry: an exact domain first, then a wildcard entry such as `*.example.com`, then the entry
    /// named `*`, which also serves clients that send no SNI name.
    pub certs: Vec<(String, PathBuf, PathBuf)>,
}
