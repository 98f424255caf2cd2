//! The router with real sockets on 127.0.0.1: backends are small hyper servers started here.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dozen_router::{BackendSpec, RouterConfig, healthy};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{PATIENCE, TestBackend, TestRouter, dead_addr, empty, full, open, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn routes_by_app_host_and_custom_domain() {
    let shop = TestBackend::start("web.1").await;
    let blog = TestBackend::start("web.2").await;
    let mut t = TestRouter::start().await;
    t.router
        .set_app("shop", &["www.Shop.example".to_string()], vec![shop.spec()]);
    t.router.set_app("blog", &[], vec![blog.spec()]);

    let (r, body) = t.get("shop.localhost", "/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(body, "hello from web.1");
    let (app, event) = t.event().await;
    assert_eq!(app, "shop");
    assert_eq!(event.host, "shop.localhost");

    // Port in Host, any case.
    let (_, body) = t.get("BLOG.localhost:8080", "/").await;
    assert_eq!(body, "hello from web.2");
    assert_eq!(t.event().await.1.host, "blog.localhost");

    let (_, body) = t.get("www.shop.example", "/x?y=1").await;
    assert_eq!(body, "hello from web.1");
    let (app, event) = t.event().await;
    assert_eq!((app.as_str(), event.path.as_str()), ("shop", "/x?y=1"));
    assert_eq!(shop.last_headers()["host"], "www.shop.example");
}

#[tokio::test]
async fn unknown_host_is_404_with_an_event() {
    let mut t = TestRouter::start().await;
    let (r, body) = t.get("nope.localhost", "/").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(body.contains("no app"), "{body}");
    assert!(r.headers().contains_key("x-request-id"));
    let (app, event) = t.event().await;
    assert_eq!(app, "");
    assert_eq!(event.error, Some("unknown_host"));
    assert_eq!(event.status, 404);
    assert!(event.to_line().starts_with("at=error error=unknown_host"));
}

#[tokio::test]
async fn app_without_backends_is_503() {
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![]);
    let (r, _) = t.get("shop.localhost", "/").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (app, event) = t.event().await;
    assert_eq!(app, "shop");
    assert_eq!(event.error, Some("no_web_process"));
}

#[tokio::test]
async fn balancing_spreads_over_backends() {
    let a = TestBackend::start("web.1").await;
    let b = TestBackend::start("web.2").await;
    let t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![a.spec(), b.spec()]);
    for _ in 0..10 {
        let (r, _) = t.get("shop.localhost", "/").await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(a.count() + b.count(), 10);
    // Sequential requests leave both idle, so ties rotate: an even split.
    assert_eq!(a.count(), 5);
}

#[tokio::test]
async fn busy_backend_gets_no_new_requests_while_another_is_idle() {
    let a = TestBackend::start("web.1").await;
    let b = TestBackend::start("web.2").await;
    let t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![a.spec(), b.spec()]);
    // Park one slow request on whichever backend takes it.
    let addr = t.addr;
    let slow = tokio::spawn(async move {
        let req = Request::get("/slow")
            .header("host", "shop.localhost")
            .body(empty())
            .unwrap();
        send(addr, req).await
    });
    let slow_on_a = tokio::select! {
        () = a.arrived.notified() => true,
        () = b.arrived.notified() => false,
    };
    let (busy, idle) = if slow_on_a { (&a, &b) } else { (&b, &a) };
    for _ in 0..6 {
        let (r, body) = t.get("shop.localhost", "/").await;
        assert_eq!(r.status(), 200);
        assert_eq!(body, format!("hello from {}", idle.name));
    }
    busy.release.notify_one();
    let (r, _) = slow.await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn request_headers_follow_the_rules() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);

    let client_id = "abcdefghij0123456789+/=-";
    let req = Request::get("/")
        .header("host", "shop.localhost")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-request-id", client_id)
        .header("connection", "keep-alive, X-Custom")
        .header("x-custom", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("proxy-authorization", "Basic eA==")
        .header("te", "trailers")
        .header("upgrade", "h2c")
        .header("x-kept", "yes")
        .body(empty())
        .unwrap();
    let (r, _) = send(t.addr, req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], client_id);
    let h = web.last_headers();
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-port"], t.addr.port().to_string().as_str());
    assert_eq!(h["x-request-id"], client_id);
    assert_eq!(h["via"], "1.1 dozen");
    assert_eq!(h["x-kept"], "yes");
    for gone in [
        "connection",
        "x-custom",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "upgrade",
    ] {
        assert!(!h.contains_key(gone), "{gone} reached the backend");
    }
    assert_eq!(t.event().await.1.request_id, client_id);

    // An invalid id is replaced, and the new one is returned.
    let req = Request::get("/")
        .header("host", "shop.localhost")
        .header("x-request-id", "bad id!")
        .body(empty())
        .unwrap();
    let (r, _) = send(t.addr, req).await;
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(id, "bad id!");
    assert_eq!(id.len(), 36);
    assert_eq!(web.last_headers()["x-request-id"], id.as_str());
    assert_eq!(web.last_headers()["x-forwarded-for"], "127.0.0.1");
    assert_eq!(t.event().await.1.request_id, id);
}

#[tokio::test]
async fn response_hop_by_hop_headers_are_removed() {
    let web = TestBackend::start("web.1").await;
    let t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let (r, body) = t.get("shop.localhost", "/hop").await;
    assert_eq!(body, "hop");
    let h = r.headers();
    assert_eq!(h["x-resp-kept"], "1");
    assert_eq!(h["via"], "1.1 dozen");
    assert!(h.contains_key("x-request-id"));
    for gone in ["x-resp-custom", "keep-alive", "proxy-authenticate"] {
        assert!(!h.contains_key(gone), "{gone} reached the client");
    }
    // hyper may add its own `connection: keep-alive`; the backend's value must not pass.
    assert!(
        h.get("connection")
            .is_none_or(|v| !v.to_str().unwrap().contains("x-resp-custom"))
    );
}

#[tokio::test]
async fn response_streams_before_the_backend_finishes() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let mut client = open(t.addr).await;
    let req = Request::get("/stream")
        .header("host", "shop.localhost")
        .body(empty())
        .unwrap();
    let response = client.send_request(req).await.unwrap();
    let mut body = response.into_body();
    let first = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first\n");
    // Only now may the backend finish.
    web.release.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second\n");
    let (_, event) = t.event().await;
    assert_eq!(event.bytes, 13);
    assert_eq!(event.backend.as_deref(), Some("web.1"));
    assert_eq!(event.status, 200);
}

#[tokio::test]
async fn request_body_streams_to_the_backend() {
    let web = TestBackend::start("web.1").await;
    let t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let mut client = open(t.addr).await;
    let (mut tx, body) = Channel::<Bytes, hyper::Error>::new(1);
    let req = Request::post("/echo")
        .header("host", "shop.localhost")
        .body(body.boxed())
        .unwrap();
    let sending = tokio::spawn(async move { client.send_request(req).await });
    tx.send_data(Bytes::from_static(b"ping\n")).await.unwrap();
    // The backend echoes; the echo arrives while the request body is still open.
    let response = sending.await.unwrap().unwrap();
    let mut body = response.into_body();
    let first = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "ping\n");
    tx.send_data(Bytes::from(vec![b'x'; 100_000]))
        .await
        .unwrap();
    drop(tx);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest.len(), 100_000);
}

#[tokio::test]
async fn upgrade_passes_through_and_echoes() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let mut stream = TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: shop.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "head ended early: {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    assert_eq!(web.last_headers()["upgrade"], "echo");
    let (_, event) = t.event().await;
    assert_eq!(event.status, 101);
    assert_eq!(t.router.in_flight("shop", "web.1"), 1);
    for message in [&b"hello"[..], b"world, twice"] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, message);
    }
    drop(stream);
    assert!(t.router.wait_drained("shop", "web.1", PATIENCE).await);
}

#[tokio::test]
async fn http2_client_reaches_http1_backend() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let stream = TcpStream::connect(t.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = Request::get("http://shop.localhost/h2?x=1")
            .body(empty())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert!(response.headers().contains_key("x-request-id"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello from web.1");
        let h = web.last_headers();
        assert_eq!(h["host"], "shop.localhost");
        assert_eq!(h["via"], "2.0 dozen");
        let (_, event) = t.event().await;
        assert_eq!(event.path, "/h2?x=1");
        assert_eq!(event.host, "shop.localhost");
    }
}

#[tokio::test]
async fn connect_failure_is_retried_on_another_backend() {
    let live = TestBackend::start("web.2").await;
    let mut t = TestRouter::start().await;
    t.router.set_app(
        "shop",
        &[],
        vec![BackendSpec::new("web.1", dead_addr().await), live.spec()],
    );
    for _ in 0..4 {
        let (r, body) = t.get("shop.localhost", "/").await;
        assert_eq!(r.status(), 200);
        assert_eq!(body, "hello from web.2");
        let (_, event) = t.event().await;
        assert_eq!(event.backend.as_deref(), Some("web.2"));
    }
}

#[tokio::test]
async fn two_dead_backends_give_502() {
    let mut t = TestRouter::start().await;
    let dead = vec![
        BackendSpec::new("web.1", dead_addr().await),
        BackendSpec::new("web.2", dead_addr().await),
    ];
    t.router.set_app("shop", &[], dead);
    let (r, body) = t.get("shop.localhost", "/").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(body.contains("could not be reached"));
    let (_, event) = t.event().await;
    assert_eq!(event.error, Some("connect_failed"));
    assert_eq!(event.status, 502);
    // One dead backend alone: no other to retry on.
    t.router.set_app(
        "shop",
        &[],
        vec![BackendSpec::new("web.1", dead_addr().await)],
    );
    let (r, _) = t.get("shop.localhost", "/").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn no_first_byte_in_time_gives_504() {
    let web = TestBackend::start("web.1").await;
    let config = RouterConfig {
        first_byte_timeout: Duration::from_millis(200),
        ..RouterConfig::default()
    };
    let mut t = TestRouter::with_config(config).await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let (r, _) = t.get("shop.localhost", "/slow").await;
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    let (_, event) = t.event().await;
    assert_eq!(event.error, Some("timeout"));
    assert_eq!(event.backend.as_deref(), Some("web.1"));
    assert_eq!(t.router.in_flight("shop", "web.1"), 0);
}

#[tokio::test]
async fn removed_backend_gets_no_new_requests() {
    let a = TestBackend::start("web.1").await;
    let b = TestBackend::start("web.2").await;
    let t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![a.spec(), b.spec()]);
    t.router.remove_backend("shop", "web.1");
    for _ in 0..6 {
        let (_, body) = t.get("shop.localhost", "/").await;
        assert_eq!(body, "hello from web.2");
    }
    assert_eq!(a.count(), 0);
    t.router.remove_app("shop");
    let (r, _) = t.get("shop.localhost", "/").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn in_flight_counts_a_slow_request_until_drained() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let addr = t.addr;
    let slow = tokio::spawn(async move {
        let req = Request::get("/slow")
            .header("host", "shop.localhost")
            .body(empty())
            .unwrap();
        send(addr, req).await
    });
    web.arrived.notified().await;
    assert_eq!(t.router.in_flight("shop", "web.1"), 1);
    // Out of rotation, still draining.
    t.router.remove_backend("shop", "web.1");
    assert_eq!(t.router.in_flight("shop", "web.1"), 1);
    assert!(
        !t.router
            .wait_drained("shop", "web.1", Duration::from_millis(50))
            .await
    );
    web.release.notify_one();
    assert!(t.router.wait_drained("shop", "web.1", PATIENCE).await);
    let (r, body) = slow.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body, "slow from web.1");
    assert_eq!(t.event().await.1.status, 200);
    assert_eq!(t.router.in_flight("shop", "web.9"), 0);
    assert_eq!(t.router.in_flight("nope", "web.1"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_never_lose_a_present_host() {
    let old = [
        TestBackend::start("web.1").await,
        TestBackend::start("web.2").await,
    ];
    let new = [
        TestBackend::start("web.3").await,
        TestBackend::start("web.4").await,
    ];
    let t = TestRouter::start().await;
    t.router.set_app(
        "shop",
        &["shop.example".into()],
        old.iter().map(TestBackend::spec).collect(),
    );
    t.router.set_app("other", &[], vec![old[0].spec()]);
    let addr = t.addr;
    let mut clients = Vec::new();
    for c in 0..8 {
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut conn = open(addr).await;
            for i in 0..40 {
                let host = if (c + i) % 2 == 0 {
                    "shop.localhost"
                } else {
                    "shop.example"
                };
                let req = Request::get("/")
                    .header("host", host)
                    .body(empty())
                    .unwrap();
                let response = conn.send_request(req).await.expect("response");
                statuses.push(response.status().as_u16());
                let _ = response.into_body().collect().await;
            }
            statuses
        }));
    }
    // Swap both apps' tables again and again while the clients run.
    let router = Arc::clone(&t.router);
    let (old_specs, new_specs): (Vec<_>, Vec<_>) = (
        old.iter().map(TestBackend::spec).collect(),
        new.iter().map(TestBackend::spec).collect(),
    );
    let other = old[1].spec();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapping = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut swaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let specs = if swaps % 2 == 0 {
                    &new_specs
                } else {
                    &old_specs
                };
                router.set_app("shop", &["shop.example".into()], specs.clone());
                router.set_app("other", &[format!("o{swaps}.example")], vec![other.clone()]);
                swaps += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            swaps
        })
    };
    let mut total = 0;
    for client in clients {
        let statuses = client.await.unwrap();
        total += statuses.len();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
    assert_eq!(total, 320);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(swapping.await.unwrap() >= 2);
    assert!(new.iter().all(|b| b.count() > 0) || old.iter().all(|b| b.count() > 0));
}

#[tokio::test]
async fn events_carry_status_bytes_and_backend() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let (r, _) = t.get("shop.localhost", "/fail").await;
    assert_eq!(r.status(), 500);
    let (app, event) = t.event().await;
    assert_eq!(app, "shop");
    assert_eq!(
        (event.status, event.bytes, event.method.as_str()),
        (500, 2, "GET")
    );
    assert_eq!(event.backend.as_deref(), Some("web.1"));
    assert_eq!(event.error, None);
    let line = event.to_line();
    assert!(
        line.starts_with("at=info method=GET path=\"/fail\" host=shop.localhost request_id="),
        "{line}"
    );
    assert!(line.ends_with("status=500 bytes=2"), "{line}");

    let req = Request::post("/echo")
        .header("host", "shop.localhost")
        .body(full("0123456789"))
        .unwrap();
    let (_, body) = send(t.addr, req).await;
    assert_eq!(body, "0123456789");
    let (_, event) = t.event().await;
    assert_eq!(
        (event.status, event.bytes, event.method.as_str()),
        (200, 10, "POST")
    );
}

#[tokio::test]
async fn keep_alive_connection_serves_many_requests() {
    let web = TestBackend::start("web.1").await;
    let t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let mut conn = open(t.addr).await;
    for _ in 0..20 {
        let req = Request::get("/")
            .header("host", "shop.localhost")
            .body(empty())
            .unwrap();
        let response = conn.send_request(req).await.unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.into_body().collect().await.unwrap();
    }
    let req = Request::head("/")
        .header("host", "shop.localhost")
        .body(empty())
        .unwrap();
    let response = conn.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn malformed_requests_do_not_hurt_the_router() {
    let web = TestBackend::start("web.1").await;
    let t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    for garbage in [
        &b"\x00\x01\x02 nonsense\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: shop.localhost\r\nContent-Length: nope\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n",
        b"GET http://@@@/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(t.addr).await.unwrap();
        s.write_all(garbage).await.unwrap();
        // An answer (400, or 404 without a usable Host) or a close, either way.
        let mut out = [0u8; 256];
        let _ = tokio::time::timeout(PATIENCE, s.read(&mut out)).await;
    }
    let (r, _) = t.get("shop.localhost", "/").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let addr = t.addr;
    let slow = tokio::spawn(async move {
        let req = Request::get("/slow")
            .header("host", "shop.localhost")
            .body(empty())
            .unwrap();
        send(addr, req).await
    });
    web.arrived.notified().await;
    t.shutdown();
    let done = t.done.take().unwrap();
    // Stopped accepting, but the request in flight is still served.
    while TcpStream::connect(addr).await.is_ok() {
        tokio::task::yield_now().await;
    }
    web.release.notify_one();
    let (r, body) = slow.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body, "slow from web.1");
    tokio::time::timeout(PATIENCE, done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn health_checks() {
    let web = TestBackend::start("web.1").await;
    let limit = Duration::from_secs(5);
    assert!(healthy(web.addr, None, limit).await);
    assert!(healthy(web.addr, Some("/"), limit).await);
    assert!(healthy(web.addr, Some("health"), limit).await);
    assert!(!healthy(web.addr, Some("/fail"), limit).await);
    assert!(!healthy(dead_addr().await, None, limit).await);
    // A slow answer is not healthy.
    assert!(!healthy(web.addr, Some("/slow"), Duration::from_millis(100)).await);
}

#[tokio::test]
async fn client_leaving_before_the_answer_is_reported() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let mut stream = TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: shop.localhost\r\n\r\n")
        .await
        .unwrap();
    web.arrived.notified().await;
    drop(stream);
    let (app, event) = t.event().await;
    assert_eq!(app, "shop");
    assert_eq!((event.status, event.error), (499, Some("client_closed")));
    assert!(t.router.wait_drained("shop", "web.1", PATIENCE).await);
    web.release.notify_one();
}

#[tokio::test]
async fn connect_method_is_refused() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let mut stream = TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"CONNECT shop.localhost:443 HTTP/1.1\r\nHost: shop.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 405");
    assert_eq!(t.event().await.1.error, Some("unsupported_method"));
    assert_eq!(web.count(), 0);
}

#[tokio::test]
async fn bodiless_idempotent_request_is_sent_again_when_the_backend_drops_it() {
    let mut t = TestRouter::start().await;
    t.router.set_app(
        "shop",
        &[],
        vec![BackendSpec::new("web.1", support::flaky_backend().await)],
    );
    let (r, body) = t.get("shop.localhost", "/").await;
    assert_eq!((r.status().as_u16(), body.as_str()), (200, "ok"));
    assert_eq!(t.event().await.1.status, 200);

    // A POST with a body is never sent twice.
    t.router.set_app(
        "shop",
        &[],
        vec![BackendSpec::new("web.1", support::flaky_backend().await)],
    );
    let req = Request::post("/")
        .header("host", "shop.localhost")
        .body(full("data"))
        .unwrap();
    let (r, _) = send(t.addr, req).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(t.event().await.1.error, Some("backend_error"));
}

#[tokio::test]
async fn a_request_broken_by_a_dying_backend_is_sent_to_another() {
    // web.1 answers once over a keep-alive connection (pooled by the router), then drops every
    // request unanswered while still accepting connections, like a process being killed. The
    // requests it drops are sent again to web.2, never to web.1 a second time.
    let (dying, seen) = support::dying_backend().await;
    let live = TestBackend::start("web.2").await;
    let mut t = TestRouter::start().await;
    t.router.set_app(
        "shop",
        &[],
        vec![BackendSpec::new("web.1", dying), live.spec()],
    );
    let mut client = open(t.addr).await;
    let mut bodies = Vec::new();
    for _ in 0..6 {
        let req = Request::get("/")
            .header("host", "shop.localhost")
            .body(empty())
            .unwrap();
        let response = client.send_request(req).await.expect("response");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        bodies.push(String::from_utf8_lossy(&body).into_owned());
        let (_, event) = t.event().await;
        assert_eq!(event.status, 200);
    }
    // web.1 answered the first and dropped at least two more; each of those went to web.2.
    assert_eq!(bodies[0], "first");
    assert!(
        bodies[1..].iter().all(|b| b == "hello from web.2"),
        "{bodies:?}"
    );
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    assert_eq!(live.count(), 5);

    // Alone, web.1 gets one more chance on a new connection; then the answer is 502.
    t.router
        .set_app("shop", &[], vec![BackendSpec::new("web.1", dying)]);
    let before = seen.load(std::sync::atomic::Ordering::SeqCst);
    let (r, _) = t.get("shop.localhost", "/").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(t.event().await.1.error, Some("backend_error"));
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_under_load_costs_no_request() {
    let mut doomed = TestBackend::start("web.1").await;
    let survivor = TestBackend::start("web.2").await;
    let t = TestRouter::start().await;
    t.router
        .set_app("shop", &[], vec![doomed.spec(), survivor.spec()]);
    let addr = t.addr;
    let (go_on, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut killed = go_on.subscribe();
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut conn = open(addr).await;
            let mut after_kill = 0;
            // Keep going until 20 requests were sent after the kill.
            while after_kill < 20 {
                if killed.try_recv().is_ok() || after_kill > 0 {
                    after_kill += 1;
                }
                let req = Request::get("/")
                    .header("host", "shop.localhost")
                    .body(empty())
                    .unwrap();
                let response = conn.send_request(req).await.expect("response");
                statuses.push(response.status().as_u16());
                let _ = response.into_body().collect().await;
            }
            statuses
        }));
    }
    // Let both backends serve, then kill one without telling the router.
    while doomed.count() < 10 || survivor.count() < 10 {
        tokio::task::yield_now().await;
    }
    doomed.kill();
    let _ = go_on.send(());
    for client in clients {
        let statuses = client.await.unwrap();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn idle_client_connections_are_closed() {
    // Time is paused and jumps ahead whenever the runtime waits: the router's own 404 needs no
    // backend, so nothing else waits on a clock here.
    let t = TestRouter::start().await;
    let mut stream = TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection stayed open");
    assert!(answer.starts_with(b"HTTP/1.1 404"), "{answer:?}");
}
