//! The router's traffic counters (`Router::traffic`), read after real requests through a real
//! router to real backends: statuses by class, the latency histogram, body bytes both ways, and
//! requests in flight.

mod support;

use bytes::Bytes;
use dozen_router::LATENCY_BUCKETS;
use http::Request;
use http_body_util::BodyExt;
use support::{TestBackend, TestRouter, full, send};

#[tokio::test]
async fn each_finished_request_is_counted_once_by_its_class_latency_and_bytes() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    t.router.set_app("empty", &[], vec![]);

    for (host, path, status) in [
        ("shop.localhost", "/", 200),
        ("shop.localhost", "/x", 200),
        ("shop.localhost", "/fail", 500),
        ("nope.localhost", "/", 404),
        ("empty.localhost", "/", 503),
    ] {
        let (r, _) = t.get(host, path).await;
        assert_eq!(r.status(), status, "{host}{path}");
        t.event().await;
    }
    let upload = Request::post("/echo")
        .header("host", "shop.localhost")
        .body(full(Bytes::from(vec![b'x'; 70_000])))
        .unwrap();
    let (r, echoed) = send(t.addr, upload).await;
    assert_eq!((r.status().as_u16(), echoed.len()), (200, 70_000));
    t.event().await;

    let traffic = t.router.traffic();
    let apps: Vec<&str> = traffic.iter().map(|a| a.app.as_str()).collect();
    assert_eq!(apps, ["empty", "shop"]);
    let (empty, shop) = (&traffic[0], &traffic[1]);
    assert_eq!(shop.requests, [0, 3, 0, 0, 1]);
    assert_eq!(empty.requests, [0, 0, 0, 0, 1]);
    assert_eq!(t.router.unknown_host_requests(), 1);

    // The histogram holds every request once, its buckets never fall, and it sums to some time.
    assert_eq!(shop.latency_count, 4);
    assert!(shop.latency_buckets.windows(2).all(|w| w[0] <= w[1]));
    assert!(shop.latency_buckets[LATENCY_BUCKETS.len() - 1] <= shop.latency_count);
    assert!(shop.latency_sum > 0.0);

    // Body bytes: the upload in, and every answer's body out ("hello from web.1" twice, "no",
    // and the echo).
    assert_eq!(shop.request_bytes, 70_000);
    assert_eq!(shop.response_bytes, 16 * 2 + 2 + 70_000);
    assert_eq!(shop.in_flight, 0);
}

#[tokio::test]
async fn a_request_counts_in_flight_until_its_answer_ends() {
    let web = TestBackend::start("web.1").await;
    let mut t = TestRouter::start().await;
    t.router.set_app("shop", &[], vec![web.spec()]);
    let arrived = web.arrived.clone();
    let arriving = arrived.notified();
    let addr = t.addr;
    let slow = tokio::spawn(async move {
        let req = Request::get("/slow")
            .header("host", "shop.localhost")
            .body(support::empty())
            .unwrap();
        send(addr, req).await
    });
    tokio::time::timeout(support::PATIENCE, arriving)
        .await
        .expect("the request reached the backend");
    let during = &t.router.traffic()[0];
    assert_eq!((during.in_flight, during.latency_count), (1, 0));

    web.release.notify_one();
    let (r, body) = slow.await.unwrap();
    assert_eq!(
        (r.status().as_u16(), body.as_str()),
        (200, "slow from web.1")
    );
    t.event().await;
    let after = &t.router.traffic()[0];
    assert_eq!((after.in_flight, after.latency_count), (0, 1));
    assert_eq!(after.requests[1], 1);

    // A client that leaves mid-answer is counted too, with the status and bytes it got.
    let mut client = support::open(t.addr).await;
    let req = Request::get("/stream")
        .header("host", "shop.localhost")
        .body(support::empty())
        .unwrap();
    let response = client.send_request(req).await.expect("head");
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert_eq!(first.into_data().unwrap(), "first\n");
    drop(body);
    drop(client);
    let (_, event) = t.event().await;
    assert_eq!(event.bytes, 6);
    let left = &t.router.traffic()[0];
    assert_eq!((left.latency_count, left.requests[1]), (2, 2));
    assert_eq!(left.response_bytes, 15 + 6);
}
