//! The router over TLS: certificates by SNI, HTTP/1.1 and ALPN h2. Certificates are made with the
//! `openssl` command; without it these tests say so and pass.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use dozen_router::{AccessEvent, Router, RouterConfig, RouterError, TlsSettings, server_config};
use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::{TestBackend, empty};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// A self-signed certificate for `name` (CA:FALSE, so it can be its own trust anchor).
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .output()
        .expect("openssl runs");
    assert!(
        status.status.success(),
        "openssl could not make a certificate for {name}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    (cert, key)
}

fn connector(certs: &[&Path], alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(CertificateDer::from_pem_file(cert).unwrap())
            .unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_picks_certificate_by_sni_and_speaks_h1_and_h2() {
    let dir = tempfile::tempdir().unwrap();
    if dozen_testkit::tool("openssl", "apt-get install openssl").is_none() {
        return;
    }
    let shop = make_cert(dir.path(), "shop.localhost");
    let blog = make_cert(dir.path(), "blog.localhost");
    let web = TestBackend::start("web.1").await;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let router = Router::new(
        RouterConfig::default(),
        Arc::new(move |app: &str, e: AccessEvent| {
            let _ = tx.send((app.to_string(), e));
        }),
    );
    router.set_app("shop", &[], vec![web.spec()]);
    router.set_app("blog", &[], vec![web.spec()]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = TlsSettings {
        certs: vec![
            ("shop.localhost".into(), shop.0.clone(), shop.1.clone()),
            ("*".into(), blog.0.clone(), blog.1.clone()),
        ],
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(Arc::clone(&router).serve_tls(listener, tls, async move {
        let _ = stopped.await;
    }));

    // HTTP/1.1 to shop: its own certificate (only shop's is trusted here).
    let stream = TcpStream::connect(addr).await.unwrap();
    let tls_stream = connector(&[&shop.0], &[b"http/1.1"])
        .connect(ServerName::try_from("shop.localhost").unwrap(), stream)
        .await
        .expect("shop's certificate by SNI");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls_stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/")
        .header("host", "shop.localhost")
        .body(empty())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello from web.1");
    let seen = web.last_headers();
    assert_eq!(seen["x-forwarded-proto"], "https");
    assert_eq!(seen["x-forwarded-port"], addr.port().to_string().as_str());
    assert_eq!(events.recv().await.unwrap().0, "shop");

    // HTTP/2 by ALPN to blog: the `*` certificate.
    let stream = TcpStream::connect(addr).await.unwrap();
    let tls_stream = connector(&[&blog.0], &[b"h2", b"http/1.1"])
        .connect(ServerName::try_from("blog.localhost").unwrap(), stream)
        .await
        .expect("the default certificate");
    assert_eq!(tls_stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls_stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("https://blog.localhost/two")
        .body(empty())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let (app, event) = events.recv().await.unwrap();
    assert_eq!((app.as_str(), event.path.as_str()), ("blog", "/two"));

    // shop's certificate is not offered to blog.
    let stream = TcpStream::connect(addr).await.unwrap();
    let refused = connector(&[&shop.0], &[])
        .connect(ServerName::try_from("blog.localhost").unwrap(), stream)
        .await;
    assert!(refused.is_err());

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_tls_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TlsSettings {
        certs: vec![(
            "*".into(),
            dir.path().join("none.crt"),
            dir.path().join("none.key"),
        )],
    };
    assert!(matches!(
        server_config(&missing),
        Err(RouterError::TlsFile {
            what: "certificate",
            ..
        })
    ));
    assert!(matches!(
        server_config(&TlsSettings::default()),
        Err(RouterError::NoCertificates)
    ));
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem").unwrap();
    let junk_settings = TlsSettings {
        certs: vec![("*".into(), junk.clone(), junk)],
    };
    let err = server_config(&junk_settings).unwrap_err();
    assert!(err.to_string().contains("junk.pem"), "{err}");

    let router = Router::new(
        RouterConfig::default(),
        Arc::new(|_: &str, _: AccessEvent| {}),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = router
        .serve_tls(listener, missing, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
