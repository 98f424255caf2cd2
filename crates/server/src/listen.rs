//! Serving the API on its listener: plain HTTP, or HTTPS with the certificate of
//! `DOZEN_API_TLS_CERT` and `DOZEN_API_TLS_KEY` (rustls with ring, HTTP/1.1). Either way each
//! request carries its peer's address (`ConnectInfo`), which the bad-token limit counts by.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::ApiTls;

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The rustls configuration for the API, from its PEM files. An error names the variable and
/// the file, and says what is wrong with it.
pub fn tls_config(tls: &ApiTls) -> Result<Arc<rustls::ServerConfig>, String> {
    let file_error =
        |var: &str, path: &Path, reason: String| format!("{var}: {}: {reason}", path.display());
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error("DOZEN_API_TLS_CERT", &tls.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            "DOZEN_API_TLS_CERT",
            &tls.cert,
            "no CERTIFICATE section: give the certificate chain as PEM".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        file_error(
            "DOZEN_API_TLS_KEY",
            &tls.key,
            format!("{e} (give the private key as PEM)"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS for the API: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "DOZEN_API_TLS_KEY: {} does not fit the certificate {} (DOZEN_API_TLS_CERT): {e}",
                tls.key.display(),
                tls.cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serve `app` on `listener` until `shutdown` resolves, then finish the requests under way.
/// With `tls`, every connection is TLS first.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
    };
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Some((stream, peer)) = dozen_router::accepted_or_pause(accepted).await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await
            else {
                return;
            };
            let inner = TowerToHyperService::new(app);
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    inner.call(request)
                },
            );
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = watcher.watch(connection).await;
        });
    }
    graceful.shutdown().await;
    Ok(())
}
