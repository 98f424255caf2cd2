//! Drains against real receivers written here: a syslog listener over TCP, the same over TLS,
//! and an HTTPS endpoint, with a CA and certificates made in the test (rcgen).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dozen_logs::drains::{Drain, DrainConfig, DrainState, DrainUrl, Messages, SPOOL_LINGER_MAX};
use dozen_logs::{Label, LineBatch, LineFramer, Stream};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What a receiver got: each message's text, in arrival order, and HTTP headers seen.
#[derive(Clone, Default)]
struct Received {
    messages: Arc<Mutex<Vec<String>>>,
    headers: Arc<Mutex<Vec<(String, String, usize)>>>,
    count: Arc<Mutex<Option<watch::Sender<usize>>>>,
}

impl Received {
    fn new() -> (Received, watch::Receiver<usize>) {
        let (tx, rx) = watch::channel(0);
        let r = Received::default();
        *r.count.lock().unwrap() = Some(tx);
        (r, rx)
    }

    fn add(&self, text: String) {
        let mut m = self.messages.lock().unwrap();
        m.push(text);
        if let Some(tx) = self.count.lock().unwrap().as_ref() {
            let _ = tx.send(m.len());
        }
    }

    fn texts(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// Wait until `rx` reaches `n` (a minute at most: a failure, not a hang).
async fn until(rx: &mut watch::Receiver<usize>, n: usize) {
    let reached = tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|c| *c >= n))
        .await
        .is_ok();
    assert!(reached, "only {} of {n} messages arrived", *rx.borrow());
}

/// Read RFC 6587 octet-counted frames until the peer closes.
async fn read_frames(mut io: impl AsyncRead + Unpin, into: Received) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        for m in take_frames(&mut buf) {
            into.add(m);
        }
    }
}

fn take_frames(buf: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(sp) = buf[at..].iter().position(|b| *b == b' ') {
        let len: usize = std::str::from_utf8(&buf[at..at + sp])
            .expect("frame length is text")
            .parse()
            .expect("frame length is a number");
        let start = at + sp + 1;
        if buf.len() < start + len {
            break;
        }
        out.push(String::from_utf8(buf[start..start + len].to_vec()).expect("utf-8"));
        at = start + len;
    }
    buf.drain(..at);
    out
}

/// A running receiver: its accept loop and its connections.
#[derive(Clone, Default)]
struct Tasks(Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl Tasks {
    fn add(&self, task: tokio::task::JoinHandle<()>) {
        self.0.lock().unwrap().push(task);
    }

    /// Close the listener and every connection, as a receiver that goes down.
    async fn stop(&self) {
        let tasks: Vec<_> = self.0.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// A syslog listener on `listener` (TLS when `tls` is given) that records every message.
fn syslog_receiver(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    into: Received,
) -> Tasks {
    let tasks = Tasks::default();
    let inner = tasks.clone();
    tasks.add(tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let into = into.clone();
            let tls = tls.clone();
            inner.add(tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(tcp).await {
                            read_frames(s, into).await;
                        }
                    }
                    None => read_frames(tcp, into).await,
                }
            }));
        }
    }));
    tasks
}

struct Tls {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    acceptor: tokio_rustls::TlsAcceptor,
}

/// A CA (its PEM file for the drains) and a server certificate for `localhost` it signed.
fn tls() -> Tls {
    use rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let certs = vec![leaf.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Tls {
        _dir: dir,
        ca: ca_path,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    }
}

/// An HTTPS endpoint that takes logplex batches: records each message and the headers.
fn https_receiver(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    into: Received,
) -> tokio::task::JoinHandle<()> {
    use http_body_util::BodyExt;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let into = into.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let into = into.clone();
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        let kind = header("content-type");
                        let count = header("logplex-msg-count");
                        let auth = header("authorization");
                        let body: hyper::body::Incoming = req.into_body();
                        let mut bytes = body.collect().await.unwrap().to_bytes().to_vec();
                        let messages = take_frames(&mut bytes);
                        into.headers.lock().unwrap().push((
                            kind,
                            format!("{count}|{auth}"),
                            messages.len(),
                        ));
                        for m in messages {
                            into.add(m);
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Empty::<bytes::Bytes>::new(),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    })
}

/// `n` lines `line <i>` of process `web.1`, in batches of 100, as the server hands them over.
fn offer_lines(drain: &Drain, from: usize, to: usize) {
    let label = Arc::new(Label::new("web.1", 0));
    let mut i = from;
    while i < to {
        let mut batch = LineBatch::new(label.clone(), Stream::Stdout);
        let mut framer = LineFramer::new();
        let end = (i + 100).min(to);
        let text: String = (i..end).map(|n| format!("line {n}\n")).collect();
        framer.push(text.as_bytes(), &mut batch);
        let mut m = Messages::new();
        m.push_batch("shop", &batch);
        drain.offer(&m.share());
        i = end;
    }
}

fn line_numbers(texts: &[String]) -> Vec<usize> {
    texts
        .iter()
        .filter_map(|t| t.rsplit_once("web.1 - - line "))
        .map(|(_, n)| n.parse().unwrap())
        .collect()
}

fn config(ca: Option<&std::path::Path>) -> DrainConfig {
    let mut c = DrainConfig::new(ca).unwrap();
    c.max_backoff = Duration::from_millis(500);
    c.flush_interval = Duration::from_millis(50);
    c
}

/// A syslog drain to a port nobody listens on (yet), its queue in a scratch directory.
fn drain_to_nobody() -> (Drain, u16, tempfile::TempDir) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let url = DrainUrl::parse(&format!("syslog://127.0.0.1:{port}")).unwrap();
    let drain = Drain::start("d1", "shop", url, dir.path(), &config(None)).unwrap();
    (drain, port, dir)
}

async fn wait_state(drain: &Drain, want: fn(&DrainState) -> bool) {
    wait_stats(drain, |s| want(&s.state)).await;
}

async fn wait_stats(drain: &Drain, want: impl Fn(&dozen_logs::drains::DrainStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !want(&drain.stats()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            drain.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_reaches_a_tcp_syslog_receiver_once_and_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got, mut count) = Received::new();
    let _rx = syslog_receiver(listener, None, got.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = DrainUrl::parse(&format!("syslog://127.0.0.1:{port}")).unwrap();
    let drain = Drain::start("d1", "shop", url, dir.path(), &config(None)).unwrap();
    let n = 100_000;
    offer_lines(&drain, 0, n);
    until(&mut count, n).await;
    assert_eq!(line_numbers(&got.texts()), (0..n).collect::<Vec<_>>());
    let first = &got.texts()[0];
    assert!(first.starts_with("<190>1 "), "{first}");
    let stats = drain.stats();
    assert_eq!(
        (stats.delivered, stats.queued, stats.dropped),
        (n as u64, 0, 0)
    );
    assert_eq!(stats.state, DrainState::Up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_syslog_receiver_gets_everything_with_the_configured_ca() {
    let tls = tls();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got, mut count) = Received::new();
    let _rx = syslog_receiver(listener, Some(tls.acceptor.clone()), got.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = DrainUrl::parse(&format!("syslog+tls://localhost:{port}")).unwrap();

    // Without the CA the receiver is not trusted: nothing is delivered, and the state says why.
    let untrusted = Drain::start(
        "d0",
        "shop",
        url.clone(),
        &dir.path().join("0"),
        &config(None),
    )
    .unwrap();
    offer_lines(&untrusted, 0, 10);
    wait_state(&untrusted, |s| matches!(s, DrainState::Down(_))).await;
    let DrainState::Down(why) = untrusted.stats().state else {
        unreachable!()
    };
    assert!(
        why.contains("certificate") || why.contains("issuer"),
        "{why}"
    );
    assert_eq!(untrusted.stats().queued, 10);
    drop(untrusted);

    let drain = Drain::start(
        "d1",
        "shop",
        url,
        &dir.path().join("1"),
        &config(Some(&tls.ca)),
    )
    .unwrap();
    let n = 20_000;
    offer_lines(&drain, 0, n);
    until(&mut count, n).await;
    assert_eq!(line_numbers(&got.texts()), (0..n).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_gets_logplex_batches_with_basic_auth() {
    let tls = tls();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got, mut count) = Received::new();
    let _rx = https_receiver(listener, tls.acceptor.clone(), got.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = DrainUrl::parse(&format!("https://user:pa55@localhost:{port}/logs")).unwrap();
    let drain = Drain::start("d1", "shop", url, dir.path(), &config(Some(&tls.ca))).unwrap();
    let n = 20_000;
    offer_lines(&drain, 0, n);
    until(&mut count, n).await;
    assert_eq!(line_numbers(&got.texts()), (0..n).collect::<Vec<_>>());
    let headers = got.headers.lock().unwrap().clone();
    assert!(headers.len() >= n / 500, "{} posts", headers.len());
    for (kind, count_auth, frames) in headers {
        assert_eq!(kind, "application/logplex-1");
        let (count, auth) = count_auth.split_once('|').unwrap();
        assert_eq!(count.parse::<usize>().unwrap(), frames);
        assert!(frames <= 500);
        // "user:pa55" in base64.
        assert_eq!(auth, "Basic dXNlcjpwYTU1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_the_backlog_in_order() {
    let (drain, port, _dir) = drain_to_nobody();
    offer_lines(&drain, 0, 5_000);
    wait_stats(&drain, |s| {
        matches!(s.state, DrainState::Down(_)) && s.queued == 5_000
    })
    .await;
    offer_lines(&drain, 5_000, 10_000);

    let (got, mut count) = Received::new();
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let rx = syslog_receiver(listener, None, got.clone());
    until(&mut count, 10_000).await;
    assert_eq!(line_numbers(&got.texts()), (0..10_000).collect::<Vec<_>>());

    // It goes away again, with everything read: what comes meanwhile waits for it.
    rx.stop().await;
    wait_state(&drain, |s| *s == DrainState::Up).await;
    let (again, mut count) = Received::new();
    offer_lines(&drain, 10_000, 12_000);
    wait_state(&drain, |s| matches!(s, DrainState::Down(_))).await;
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let _rx = syslog_receiver(listener, None, again.clone());
    until(&mut count, 2_000).await;
    // The first connection may have carried a few before it was found closed; none is lost.
    let mut all = line_numbers(&got.texts());
    all.extend(line_numbers(&again.texts()));
    all.dedup();
    assert_eq!(all, (0..12_000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_never_pauses_is_still_written_to_the_queue() {
    // The spool task waits for a burst to end, but not for ever: lines offered without a pause
    // for well past SPOOL_LINGER_MAX are on disk before the stream stops.
    let (drain, _port, _dir) = drain_to_nobody();
    let until = tokio::time::Instant::now() + SPOOL_LINGER_MAX * 5;
    let mut offered = 0;
    let mut queued_while_offering = 0;
    while tokio::time::Instant::now() < until {
        offer_lines(&drain, offered, offered + 10);
        offered += 10;
        queued_while_offering = drain.stats().queued;
        // A record every millisecond: each SPOOL_LINGER brings more.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        queued_while_offering > 0,
        "nothing reached the queue in {:?} of offers",
        SPOOL_LINGER_MAX * 5
    );
    wait_stats(&drain, |s| s.queued == offered as u64).await;
    assert_eq!(drain.stats().dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_bound_the_oldest_are_dropped_and_the_receiver_is_told_how_many() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let url = DrainUrl::parse(&format!("syslog://127.0.0.1:{port}")).unwrap();
    let mut c = config(None);
    c.queue_bytes = 256 * 1024;
    let drain = Drain::start("d1", "shop", url, dir.path(), &c).unwrap();
    let n = 50_000;
    offer_lines(&drain, 0, n);
    // Everything offered is either queued or dropped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = drain.stats();
        if s.queued + s.dropped == n as u64 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dropped = drain.stats().dropped;
    assert!(dropped > 0);

    let (got, mut count) = Received::new();
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let _rx = syslog_receiver(listener, None, got.clone());
    until(&mut count, n - dropped as usize + 1).await;
    let texts = got.texts();
    assert!(
        texts[0]
            .contains(" dozen dozen L10 - Error L10 (output buffer overflow): drain d1 dropped ")
            && texts[0].contains(&format!(" dropped {dropped} messages from ")),
        "{}",
        texts[0]
    );
    assert_eq!(
        line_numbers(&texts[1..]),
        (dropped as usize..n).collect::<Vec<_>>()
    );
    let s = drain.stats();
    assert_eq!((s.delivered, s.queued), ((n as u64 - dropped), 0));
}
