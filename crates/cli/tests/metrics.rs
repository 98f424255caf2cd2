//! Metrics of a real `dozen server`: a Flask app (from PyPI) deployed, requests through the
//! router ending in 2xx, 4xx and 5xx, and `GET /metrics` parsed with the Prometheus project's
//! own text parser (Python's `prometheus_client`): the counts are what was sent, the histograms
//! hold together, the process's memory and CPU are there, a crash shows as a restart, tokens
//! see what their scope allows, and `DOZEN_METRICS_BIND` serves the page without a token.
//! `dozen ps` shows the same memory and a CPU percentage.
//!
//! Needs PyPI (the build installs Flask and gunicorn) and `python3` with `prometheus_client`.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::server::{Server, TOKEN, copy_fixture};
use support::{await_condition, free_port};

/// One sample of a parsed page.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A page of metrics as the Prometheus parser read it.
#[derive(Debug)]
struct Parsed {
    families: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Parsed {
    /// The samples named `name` whose labels include every pair of `labels`.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The one sample named `name` with `labels`.
    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(name, labels).as_slice() {
            [one] => one.value,
            other => panic!("{name}{labels:?}: {} samples: {other:?}", other.len()),
        }
    }

    /// Every app a sample is labelled with.
    fn apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self
            .samples
            .iter()
            .filter_map(|s| s.labels.get("app").cloned())
            .collect();
        apps.sort();
        apps.dedup();
        apps
    }

    /// Checks the histogram `name` of `app` holds together (buckets by bound never fall, `+Inf`
    /// is the count); its count and sum.
    #[track_caller]
    fn histogram(&self, name: &str, app: &str) -> (f64, f64) {
        let mut buckets: Vec<(f64, f64)> = self
            .find(&format!("{name}_bucket"), &[("app", app)])
            .iter()
            .map(|s| {
                let le = &s.labels["le"];
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("a bound")
                };
                (bound, s.value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() > 2, "{name} of {app}: {buckets:?}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{name} of {app}: buckets fall: {buckets:?}"
        );
        let count = self.value(&format!("{name}_count"), &[("app", app)]);
        let inf = buckets.last().expect("+Inf");
        assert_eq!(*inf, (f64::INFINITY, count), "{name} of {app}");
        (count, self.value(&format!("{name}_sum"), &[("app", app)]))
    }
}

/// Parses `text` with prometheus_client's parser (a page it refuses fails the test).
#[track_caller]
fn parse(text: &str) -> Parsed {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/prometheus_parse.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the page");
    let out = child.wait_with_output().expect("parser");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Prometheus parser refused the page: {stdout}\n{text}"
    );
    let v: Value = serde_json::from_str(&stdout).expect("json");
    let families = v["families"]
        .as_object()
        .expect("families")
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap_or_default().to_string()))
        .collect();
    let samples = v["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| Sample {
            name: s["name"].as_str().expect("name").to_string(),
            labels: s["labels"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect(),
            value: match &s["value"] {
                Value::String(inf) if inf == "+Inf" => f64::INFINITY,
                v => v.as_f64().expect("a number"),
            },
        })
        .collect();
    Parsed { families, samples }
}

/// `GET /metrics` on `port` with `token` (or none): the status, content type and body.
fn scrape(port: u16, token: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::blocking::Client::new().get(format!("http://127.0.0.1:{port}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().expect("GET /metrics");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, resp.text().unwrap_or_default())
}

/// A POST of `body` through the router (HTTP/1.0): the status and the answer's body.
fn post(port: u16, host: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the router");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("write head");
    s.write_all(body).expect("write body");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&buf[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, buf[split + 4..].to_vec())
}

/// `dozen tokens:create ...` on the server's host: the new token's secret.
fn create_token(server: &Server, args: &[&str]) -> String {
    let out = server.admin(args).output().expect("tokens:create");
    assert!(
        out.status.success(),
        "dozen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn metrics_count_what_the_router_served_and_what_the_processes_use() {
    let has_parser = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_parser {
        dozen_testkit::unavailable(
            "Python's prometheus_client package",
            "it is not installed",
            "python3 -m pip install prometheus_client",
        );
        return;
    }
    let open_port = free_port();
    let open_bind = format!("127.0.0.1:{open_port}");
    let server = Server::start_with(&[("DOZEN_METRICS_BIND", &open_bind)]);
    server.ok(&["apps:create", "shop"]);
    server.ok(&["apps:create", "other"]);
    let src =
        copy_fixture(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics-flask"));
    server.deploy("shop", src.path());

    // Requests through the router, each ending in a status class, and the bodies that came
    // back; one for a host no app is served at.
    let mut sent = BTreeMap::<&str, u32>::new();
    let mut body_bytes = 0usize;
    for (path, status, class) in [
        ("/", 200, "2xx"),
        ("/", 200, "2xx"),
        ("/", 200, "2xx"),
        ("/nope", 404, "4xx"),
        ("/boom", 500, "5xx"),
    ] {
        let (got, body) = server.get("shop.localhost", path);
        assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
        *sent.entry(class).or_default() += 1;
        body_bytes += body.len();
    }
    let upload = vec![b'x'; 1000];
    let (got, body) = post(server.router_port, "shop.localhost", "/upload", &upload);
    assert_eq!((got, body.as_slice()), (200, &b"1000 bytes\n"[..]));
    *sent.entry("2xx").or_default() += 1;
    body_bytes += body.len();
    let (got, _) = server.get("nowhere.localhost", "/");
    assert_eq!(got, 404);

    let (status, content_type, text) = scrape(server.port, Some(TOKEN));
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let page = parse(&text);
    for (family, kind) in [
        ("dozen_router_requests", "counter"),
        ("dozen_router_request_duration_seconds", "histogram"),
        ("dozen_router_requests_in_flight", "gauge"),
        ("dozen_process_memory_bytes", "gauge"),
        ("dozen_process_cpu_seconds", "counter"),
        ("dozen_process_restarts", "counter"),
        ("dozen_builds", "counter"),
        ("dozen_build_duration_seconds", "histogram"),
        ("dozen_drain_delivered", "counter"),
    ] {
        assert_eq!(
            page.families.get(family).map(String::as_str),
            Some(kind),
            "{family} in {:?}",
            page.families
        );
    }

    // The router counted each request once, by class; the health checks of the deploy went to
    // the process directly and are not among them.
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
        assert_eq!(
            page.value(
                "dozen_router_requests_total",
                &[("app", "shop"), ("status_class", class)]
            ),
            f64::from(sent.get(class).copied().unwrap_or(0)),
            "{class}"
        );
    }
    let (count, sum) = page.histogram("dozen_router_request_duration_seconds", "shop");
    assert_eq!(count, 6.0);
    assert!(sum > 0.0, "{sum}");
    assert_eq!(
        page.value("dozen_router_request_body_bytes_total", &[("app", "shop")]),
        1000.0
    );
    assert_eq!(
        page.value("dozen_router_response_body_bytes_total", &[("app", "shop")]),
        body_bytes as f64
    );
    assert_eq!(
        page.value("dozen_router_requests_in_flight", &[("app", "shop")]),
        0.0
    );
    assert_eq!(
        page.value("dozen_router_unknown_host_requests_total", &[]),
        1.0
    );

    // The web process: up, never restarted, with memory and CPU time of its own.
    let web = [
        ("app", "shop"),
        ("process_type", "web"),
        ("process", "web.1"),
    ];
    assert_eq!(page.value("dozen_process_up", &web), 1.0);
    assert_eq!(page.value("dozen_process_restarts_total", &web), 0.0);
    let memory = page.value("dozen_process_memory_bytes", &web);
    assert!(memory > 1e6, "{memory}");
    assert!(memory < page.value("dozen_process_memory_limit_bytes", &web));
    assert!(page.value("dozen_process_cpu_seconds_total", &web) > 0.0);

    // One build, which succeeded, with its duration; none for the app never deployed.
    let built = |app, status| page.value("dozen_builds_total", &[("app", app), ("status", status)]);
    assert_eq!(
        (built("shop", "succeeded"), built("shop", "failed")),
        (1.0, 0.0)
    );
    assert_eq!(
        (built("other", "succeeded"), built("other", "failed")),
        (0.0, 0.0)
    );
    let (builds, took) = page.histogram("dozen_build_duration_seconds", "shop");
    assert_eq!(builds, 1.0);
    assert!(took > 0.0);
    assert_eq!(page.value("dozen_builds_running", &[("app", "shop")]), 0.0);

    // `dozen ps` shows the same process with its memory and, once the server has read its CPU
    // time twice, a CPU percentage.
    await_condition("a CPU percentage for web.1 in ps", || {
        server.json(&["ps", "-a", "shop"])[0]["cpu_percent"].is_number()
    });
    let ps = server.json(&["ps", "-a", "shop"]);
    assert!(
        ps[0]["memory"].as_u64().is_some_and(|m| m > 1_000_000),
        "{ps}"
    );
    assert!(
        ps[0]["cpu_seconds"].as_f64().is_some_and(|c| c > 0.0),
        "{ps}"
    );
    let table = server.ok(&["ps", "-a", "shop"]);
    assert!(
        table.lines().next().is_some_and(|h| h.contains("CPU")),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("web.1"))
        .expect("a row for web.1");
    assert!(row.ends_with('%') && row.contains("MiB"), "{table}");

    // A crash is a restart.
    let pid = ps[0]["pid"].as_i64().expect("pid") as i32;
    // SAFETY: killing the app's process, as the kernel might.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let last = std::cell::RefCell::new(Value::Null);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let p = server.json(&["ps", "-a", "shop"])[0].clone();
        if p["restarts"] == 1 && p["state"] == "up" {
            break;
        }
        *last.borrow_mut() = p;
        assert!(
            std::time::Instant::now() < deadline,
            "web.1 not up again after its crash: {}",
            last.borrow()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = parse(&scrape(server.port, Some(TOKEN)).2);
    assert_eq!(page.value("dozen_process_restarts_total", &web), 1.0);
    assert!(page.value("dozen_process_memory_bytes", &web) > 1e6);

    // An app's tokens see that app only, and not the server's own series; without a valid
    // token there is no page.
    let read = create_token(
        &server,
        &["tokens:create", "graf", "--app", "shop", "--scope", "read"],
    );
    let deploy_other = create_token(&server, &["tokens:create", "ci-other", "--app", "other"]);
    let (status, _, text) = scrape(server.port, Some(&read));
    assert_eq!(status, 200);
    let mine = parse(&text);
    assert_eq!(mine.apps(), ["shop"]);
    assert!(
        mine.find("dozen_router_unknown_host_requests_total", &[])
            .is_empty()
    );
    assert_eq!(
        mine.value(
            "dozen_router_requests_total",
            &[("app", "shop"), ("status_class", "2xx")]
        ),
        4.0
    );
    let (status, _, text) = scrape(server.port, Some(&deploy_other));
    assert_eq!(status, 200);
    assert_eq!(parse(&text).apps(), ["other"]);
    assert_eq!(scrape(server.port, None).0, 401);
    assert_eq!(scrape(server.port, Some("dzn_not_a_token")).0, 401);

    // DOZEN_METRICS_BIND: the whole page, without a token, on its own port.
    let (status, content_type, text) = scrape(open_port, None);
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let open = parse(&text);
    assert_eq!(open.apps(), ["other", "shop"]);
    assert_eq!(
        open.value(
            "dozen_router_requests_total",
            &[("app", "shop"), ("status_class", "5xx")]
        ),
        1.0
    );
}

#[test]
fn a_bad_metrics_address_stops_the_server_naming_the_variable() {
    let mut server = Server::unstarted(&[("DOZEN_METRICS_BIND", "everywhere")]);
    let out = server.admin(&["server"]).output().expect("dozen server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DOZEN_METRICS_BIND must be an IP address and port"),
        "{err}"
    );
    server.stop();
}
