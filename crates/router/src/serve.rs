//! Accepting clients: plain TCP or TLS, HTTP/1.1 and HTTP/2, with graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSettings;
use crate::idle::{Activity, IdleIo};
use crate::proxy::ConnInfo;
use crate::router::Router;
use crate::tls::server_config;

/// A TLS handshake must finish within this, or the connection is dropped.
const TLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

impl Router {
    /// Serves app traffic on `listener` (HTTP/1.1 with keep-alive and upgrades, and HTTP/2 with
    /// prior knowledge) until `shutdown` resolves; then stops accepting, lets requests in flight
    /// finish, closes idle connections, and returns. Upgraded connections (WebSockets) are not
    /// waited for.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        self.accept_loop(listener, None, shutdown).await
    }

    /// Like [`Router::serve`], over TLS: the client's SNI name picks the certificate, and ALPN
    /// offers `h2` and `http/1.1`. Fails at once when a certificate or key cannot be loaded (the
    /// error wraps a [`crate::RouterError`]).
    pub async fn serve_tls(
        self: Arc<Self>,
        listener: TcpListener,
        tls: TlsSettings,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let acceptor = TlsAcceptor::from(server_config(&tls)?);
        self.accept_loop(listener, Some(acceptor), shutdown).await
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let port = listener.local_addr()?.port();
        let proto = if tls.is_some() { "https" } else { "http" };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Idle and slow-header connections are closed by `IdleIo`, at less cost per request.
        builder.http1().header_read_timeout(None);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let Some((stream, peer)) = accepted_or_pause(accepted).await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let conn = Arc::new(ConnInfo::new(peer.ip(), proto, port));
            let router = Arc::clone(&self);
            let builder = Arc::clone(&builder);
            let watcher = graceful.watcher();
            match &tls {
                None => {
                    tokio::spawn(serve_connection(router, builder, watcher, stream, conn));
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        if let Ok(Ok(stream)) =
                            tokio::time::timeout(TLS_HANDSHAKE_LIMIT, acceptor.accept(stream)).await
                        {
                            serve_connection(router, builder, watcher, stream, conn).await;
                        }
                    });
                }
            }
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }
}

async fn serve_connection<S>(
    router: Arc<Router>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: hyper_util::server::graceful::Watcher,
    stream: S,
    conn: Arc<ConnInfo>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let io = IdleIo::new(stream, Arc::clone(&activity));
    let service = service_fn(move |req| {
        let router = Arc::clone(&router);
        let conn = Arc::clone(&conn);
        let busy = activity.begin();
        async move {
            let mut response = router.handle(req, &conn).await;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                busy.forever();
            } else {
                response.body_mut().hold(busy);
            }
            Ok::<_, Infallible>(response)
        }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    // A client that breaks the connection ends only its own requests.
    let _ = watcher.watch(connection.into_owned()).await;
}

/// The connection `listener.accept()` gave, or `None` after a failed accept: a peer that went
/// away at once is skipped, anything else (out of file descriptors, say) waits a moment first so
/// that an accept loop does not spin.
pub async fn accepted_or_pause<T>(accepted: io::Result<T>) -> Option<T> {
    match accepted {
        Ok(accepted) => Some(accepted),
        Err(err) => {
            if !matches!(
                err.kind(),
                io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
            ) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None
        }
    }
}
