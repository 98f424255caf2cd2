//! The HTTP API of a real `dozen server` against its own description: every route's live
//! answers validate against the schemas `/openapi.json` publishes (with Python's jsonschema),
//! malformed requests to every route get a 4xx and never a 5xx or a hang, and a change of an
//! app survives its client going away.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use support::server::{Server, TOKEN};
use support::{await_condition, processes_matching, unique_tag};

/// How long one answer may take before the request is declared hung. Not a timing assertion:
/// no answer of these routes waits for anything slow.
const ANSWER: Duration = Duration::from_secs(30);

/// One answer, as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Send one HTTP/1.1 request and read its answer. With `whole`, the body is read to its end
/// (de-chunked); without, only the status line and headers.
fn send(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    whole: bool,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(ANSWER))?;
    stream.set_write_timeout(Some(ANSWER))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // The server may answer (413, 401) before it reads the whole body, and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(i) = find(&raw, b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "the connection closed before the answer's headers: {:?}",
                String::from_utf8_lossy(&raw)
            )));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..header_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut rest = raw[header_end..].to_vec();
    if whole && method != "HEAD" {
        stream.read_to_end(&mut rest)?;
    } else {
        rest.clear();
    }
    let body = if chunked && whole {
        dechunk(&rest)?
    } else {
        rest
    };
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")
            .ok_or_else(|| std::io::Error::other("a chunk size line without its end"))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| std::io::Error::other(format!("chunk size {size_text:?}: {e}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(std::io::Error::other("a chunk cut short"));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

const AUTH: (&str, &str) = ("Authorization", "Bearer dzn_test_token_0123456789abcdef");
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// A small app: a web process in Python's standard library, and a release phase that waits
/// for the file named by its config var `GATE` (when set), so a test can hold a rollout
/// half-way.
fn gated_app(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("Procfile"),
        format!(
            "web: python3 web.py {tag}\nrelease: while [ -n \"$GATE\" ] && [ ! -e \"$GATE\" ]; do sleep 0.05; done\n"
        ),
    )
    .expect("Procfile");
    std::fs::write(
        dir.path().join("web.py"),
        "import http.server, os\n\
         http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), \
         http.server.SimpleHTTPRequestHandler).serve_forever()\n",
    )
    .expect("web.py");
    dir
}

/// The source of `dir` as the tar.zst `dozen deploy` uploads.
fn source_archive(dir: &Path) -> Vec<u8> {
    let mut out = tempfile::tempfile().expect("tmp");
    dozen_build::pack_source(dir, &out).expect("pack");
    let mut bytes = Vec::new();
    std::io::Seek::rewind(&mut out).expect("rewind");
    out.read_to_end(&mut bytes).expect("read");
    bytes
}

/// Whether the test must fail rather than skip when a tool is missing.
fn required() -> bool {
    std::env::var_os("CI").is_some()
}

/// One recorded call for the schema check.
struct Recorder {
    port: u16,
    calls: Vec<Value>,
}

impl Recorder {
    /// Call `route` (its template, for the record) at `target` and record the answer, which
    /// must have `status`.
    #[track_caller]
    fn call(
        &mut self,
        method: &str,
        route: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        status: u16,
    ) -> Answer {
        let answer = send(self.port, method, target, headers, body, true)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        assert_eq!(
            answer.status,
            status,
            "{method} {target}: {}",
            answer.text()
        );
        self.calls.push(json!({
            "method": method,
            "path": route,
            "status": answer.status,
            "content_type": answer.content_type,
            "body": if answer.content_type.starts_with("application/zstd") { String::new() } else { answer.text() },
        }));
        answer
    }

    #[track_caller]
    fn json(&mut self, method: &str, route: &str, target: &str, body: Value, status: u16) -> Value {
        let bytes = body.to_string();
        self.call(
            method,
            route,
            target,
            &[AUTH, JSON],
            bytes.as_bytes(),
            status,
        )
        .json()
    }

    #[track_caller]
    fn get(&mut self, route: &str, target: &str, status: u16) -> Answer {
        self.call("GET", route, target, &[AUTH], b"", status)
    }
}

#[test]
fn every_route_answers_as_its_openapi_schema_says() {
    let has_jsonschema = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_jsonschema {
        assert!(
            !required(),
            "CI is set: the Python package jsonschema must be installed (pip install jsonschema)"
        );
        eprintln!("skipped: the Python package jsonschema is not installed");
        return;
    }
    let server = Server::start();
    let mut r = Recorder {
        port: server.port,
        calls: Vec::new(),
    };
    let tag = unique_tag();
    let app = gated_app(&tag);
    let archive = source_archive(app.path());

    let doc = r.get("/openapi.json", "/openapi.json", 200).json();
    r.get("/healthz", "/healthz", 200);
    r.call("GET", "/v1/apps", "/v1/apps", &[], b"", 401);
    r.json("POST", "/v1/apps", "/v1/apps", json!({"name": "shop"}), 201);
    r.json("POST", "/v1/apps", "/v1/apps", json!({"name": "shop"}), 409);
    r.json(
        "POST",
        "/v1/apps",
        "/v1/apps",
        json!({"name": "Not A Name"}),
        422,
    );
    r.call("POST", "/v1/apps", "/v1/apps", &[AUTH, JSON], b"{", 400);
    r.call(
        "POST",
        "/v1/apps",
        "/v1/apps",
        &[AUTH],
        br#"{"name":"x"}"#,
        415,
    );
    r.get("/v1/apps", "/v1/apps", 200);
    r.json(
        "PATCH",
        "/v1/apps/{app}/config",
        "/v1/apps/shop/config",
        json!({"set": {"GREETING": "hello"}}),
        200,
    );
    r.json(
        "PATCH",
        "/v1/apps/{app}/config",
        "/v1/apps/shop/config",
        json!({}),
        422,
    );
    let deploy = r.call(
        "POST",
        "/v1/apps/{app}/builds",
        "/v1/apps/shop/builds",
        &[AUTH, ("Content-Type", "application/zstd")],
        &archive,
        200,
    );
    assert!(
        deploy.text().contains("\"status\":\"succeeded\""),
        "{}",
        deploy.text()
    );
    r.call(
        "POST",
        "/v1/apps/{app}/builds",
        "/v1/apps/shop/builds",
        &[AUTH, ("Content-Type", "application/zstd")],
        b"",
        422,
    );
    r.get("/v1/apps/{app}", "/v1/apps/shop", 200);
    r.get("/v1/apps/{app}", "/v1/apps/nope", 404);
    r.get("/v1/apps/{app}/config", "/v1/apps/shop/config", 200);
    r.get("/v1/apps/{app}/releases", "/v1/apps/shop/releases", 200);
    r.get(
        "/v1/apps/{app}/releases/{version}",
        "/v1/apps/shop/releases/v2",
        200,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}",
        "/v1/apps/shop/releases/v99",
        404,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}",
        "/v1/apps/shop/releases/latest",
        422,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}/config",
        "/v1/apps/shop/releases/1/config",
        200,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}/slug",
        "/v1/apps/shop/releases/v2/slug",
        200,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}/slug",
        "/v1/apps/shop/releases/v1/slug",
        404,
    );
    r.get("/v1/apps/{app}/builds", "/v1/apps/shop/builds", 200);
    r.get("/v1/apps/{app}/formation", "/v1/apps/shop/formation", 200);
    r.json(
        "PATCH",
        "/v1/apps/{app}/formation",
        "/v1/apps/shop/formation",
        json!({"web": 1}),
        200,
    );
    r.json(
        "PATCH",
        "/v1/apps/{app}/formation",
        "/v1/apps/shop/formation",
        json!({"nope": 1}),
        422,
    );
    r.get("/v1/apps/{app}/ps", "/v1/apps/shop/ps", 200);
    r.json(
        "POST",
        "/v1/apps/{app}/ps/restart",
        "/v1/apps/shop/ps/restart",
        json!({}),
        200,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/ps/restart",
        "/v1/apps/shop/ps/restart",
        json!({"type": "nope"}),
        422,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/run",
        "/v1/apps/shop/run",
        json!({"command": "echo hi", "detached": true}),
        202,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/run",
        "/v1/apps/shop/run",
        json!({"command": "echo hi", "argv": ["echo"]}),
        422,
    );
    let attached = r.call(
        "POST",
        "/v1/apps/{app}/run",
        "/v1/apps/shop/run?command=echo%20attached",
        &[AUTH, ("Content-Type", "application/octet-stream")],
        b"",
        200,
    );
    assert!(
        attached.text().contains("\"exit\":0"),
        "{}",
        attached.text()
    );
    r.call(
        "POST",
        "/v1/apps/{app}/run",
        "/v1/apps/shop/run?command=echo%20framed",
        &[
            AUTH,
            ("Content-Type", "application/octet-stream"),
            ("Accept", "application/vnd.dozen.frames"),
        ],
        b"",
        200,
    );
    r.get("/v1/apps/{app}/logs", "/v1/apps/shop/logs?lines=50", 200);
    r.get(
        "/v1/apps/{app}/logs",
        "/v1/apps/shop/logs?source=neither",
        422,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/rollback",
        "/v1/apps/shop/rollback",
        json!({"version": "v2"}),
        200,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/rollback",
        "/v1/apps/shop/rollback",
        json!({"version": "v99"}),
        404,
    );
    r.get("/v1/apps/{app}/domains", "/v1/apps/shop/domains", 200);
    r.json(
        "POST",
        "/v1/apps/{app}/domains",
        "/v1/apps/shop/domains",
        json!({"hostname": "shop.example.test"}),
        201,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/domains",
        "/v1/apps/shop/domains",
        json!({"hostname": "not a hostname"}),
        422,
    );
    r.call(
        "DELETE",
        "/v1/apps/{app}/domains/{hostname}",
        "/v1/apps/shop/domains/shop.example.test",
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        "/v1/apps/{app}/domains/{hostname}",
        "/v1/apps/shop/domains/shop.example.test",
        &[AUTH],
        b"",
        404,
    );
    r.get("/v1/tokens", "/v1/tokens", 200);
    r.json(
        "POST",
        "/v1/tokens",
        "/v1/tokens",
        json!({"name": "ci"}),
        201,
    );
    r.call(
        "DELETE",
        "/v1/tokens/{token}",
        "/v1/tokens/ci",
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        "/v1/tokens/{token}",
        "/v1/tokens/never-made",
        &[AUTH],
        b"",
        404,
    );
    r.call(
        "DELETE",
        "/v1/apps/{app}",
        "/v1/apps/shop",
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        "/v1/apps/{app}",
        "/v1/apps/shop",
        &[AUTH],
        b"",
        404,
    );

    let dir = tempfile::tempdir().expect("tmp");
    let doc_path = dir.path().join("openapi.json");
    let calls_path = dir.path().join("calls.json");
    std::fs::write(&doc_path, doc.to_string()).expect("write");
    std::fs::write(&calls_path, Value::Array(r.calls).to_string()).expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/openapi_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&doc_path)
        .arg(&calls_path)
        .output()
        .expect("python3");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "live answers that /openapi.json does not describe:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        processes_matching(&tag).is_empty(),
        "the destroyed app left processes"
    );
}

/// A request the malformed-request test sends.
#[derive(Debug, Clone)]
struct Probe {
    route: usize,
    method: Option<&'static str>,
    params: Vec<String>,
    query: Vec<(String, String)>,
    body: Body,
    content_type: Option<&'static str>,
    auth: bool,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Bytes(Vec<u8>),
    Json(Value),
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::from),
        Just(json!("v1")),
        Just(json!("web")),
        Just(json!(-1)),
    ];
    let keys = prop_oneof![
        Just("name".to_string()),
        Just("set".to_string()),
        Just("unset".to_string()),
        Just("version".to_string()),
        Just("type".to_string()),
        Just("command".to_string()),
        Just("argv".to_string()),
        Just("detached".to_string()),
        Just("hostname".to_string()),
        Just("web".to_string()),
        "\\PC{0,12}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn path_param() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("shop".to_string()),
        Just("v1".to_string()),
        Just("..".to_string()),
        "[a-z0-9-]{0,12}",
        "[0-9]{1,25}",
        "\\PC{1,24}",
        "[a-z]{300,600}",
    ]
}

fn probe(routes: usize) -> impl Strategy<Value = Probe> {
    (
        0..routes,
        prop::option::weighted(
            0.1,
            prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        ),
        prop::collection::vec(path_param(), 2),
        prop::collection::vec(
            (
                prop_oneof![
                    Just("lines".to_string()),
                    Just("tail".to_string()),
                    Just("ps".to_string()),
                    Just("source".to_string()),
                    Just("command".to_string()),
                    Just("argv".to_string()),
                    "[a-z]{1,6}",
                ],
                prop_oneof![
                    "\\PC{0,16}",
                    "-?[0-9]{1,30}",
                    Just("true".to_string()),
                    Just("[\"echo\",1]".to_string()),
                ],
            ),
            0..4,
        ),
        prop_oneof![
            Just(Body::None),
            prop::collection::vec(any::<u8>(), 0..256).prop_map(Body::Bytes),
            json_value().prop_map(Body::Json),
        ],
        prop::option::of(prop::sample::select(vec![
            "application/json",
            "application/zstd",
            "application/octet-stream",
            "text/plain",
            "application/json; charset=latin1",
        ])),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(route, method, params, query, body, content_type, auth)| Probe {
                route,
                method,
                params,
                query,
                body,
                content_type,
                auth,
            },
        )
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn malformed_requests_get_4xx_never_5xx_nor_a_hang() {
    let server = Server::start();
    let port = server.port;
    let created = send(
        port,
        "POST",
        "/v1/apps",
        &[AUTH, JSON],
        br#"{"name":"shop"}"#,
        true,
    )
    .expect("create");
    assert_eq!(created.status, 201, "{}", created.text());
    let doc = send(port, "GET", "/openapi.json", &[], b"", true)
        .expect("openapi")
        .json();
    // Every operation the server publishes: (method, path template).
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            routes.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    assert!(routes.len() >= 25, "{routes:?}");
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&probe(routes.len()), |p| {
        let (method, template) = &routes[p.route];
        let method = p.method.unwrap_or(method.as_str());
        let mut params = p.params.iter();
        let mut target = String::new();
        for segment in template.split('/').skip(1) {
            target.push('/');
            if segment.starts_with('{') {
                target.push_str(&percent(params.next().map_or("x", String::as_str)));
            } else {
                target.push_str(segment);
            }
        }
        if !p.query.is_empty() {
            let q: Vec<String> = p
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
                .collect();
            target.push('?');
            target.push_str(&q.join("&"));
        }
        let body = match &p.body {
            Body::None => Vec::new(),
            Body::Bytes(b) => b.clone(),
            Body::Json(v) => v.to_string().into_bytes(),
        };
        let mut headers = Vec::new();
        if p.auth {
            headers.push(AUTH);
        }
        if let Some(ct) = p.content_type {
            headers.push(("Content-Type", ct));
        }
        // A stream that answered 2xx has said what it had to; a live tail never ends.
        let answer = send(port, method, &target, &headers, &body, false)
            .map_err(|e| TestCaseError::fail(format!("{method} {target}: no answer: {e}")))?;
        let whole = !(200..300).contains(&answer.status)
            || !(answer.content_type.contains("ndjson")
                || answer.content_type.contains("zstd")
                || answer.content_type.contains("frames"));
        let answer = if whole {
            send(port, method, &target, &headers, &body, true)
                .map_err(|e| TestCaseError::fail(format!("{method} {target}: {e}")))?
        } else {
            answer
        };
        if answer.content_type.starts_with("application/json") && answer.status >= 400 {
            let error: Result<dozen_api::ErrorBody, _> = serde_json::from_slice(&answer.body);
            prop_assert!(
                error.is_ok(),
                "{method} {target}: a {} answer that is not an error body: {}",
                answer.status,
                answer.text()
            );
        }
        prop_assert!(
            answer.status < 500,
            "{method} {target} ({:?}) answered {}: {}",
            p.body,
            answer.status,
            answer.text()
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let health = send(port, "GET", "/healthz", &[], b"", true).expect("healthz");
    assert_eq!(health.status, 200);
}

/// Wait until release `version` of `app` has `status`.
fn await_release(server: &Server, app: &str, version: i64, status: &str) {
    await_condition(&format!("v{version} of {app} to be {status}"), || {
        let releases = server.json(&["releases", "-a", app]);
        releases
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["version"] == version && r["status"] == status)
    });
}

#[test]
fn a_config_change_goes_live_though_its_client_disconnects() {
    let server = Server::start();
    let tag = unique_tag();
    let app = gated_app(&tag);
    let gate = app.path().join("gate");
    let gate_var = format!("GATE={}", gate.display());
    server.ok(&["apps:create", "patient"]);
    server.ok(&["config:set", "-a", "patient", &gate_var]);
    std::fs::write(&gate, "").expect("gate");
    server.deploy("patient", app.path());
    await_release(&server, "patient", 2, "succeeded");

    // v3's release phase waits at the gate; its client sends the change and goes away.
    std::fs::remove_file(&gate).expect("close the gate");
    let mut client = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let body = br#"{"set":{"COLOUR":"blue"}}"#;
    write!(
        client,
        "PATCH /v1/apps/patient/config HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("send");
    client.write_all(body).expect("send");
    server.await_log("patient", "v3: running the release phase");
    client
        .shutdown(std::net::Shutdown::Both)
        .expect("disconnect");
    drop(client);

    std::fs::write(&gate, "").expect("open the gate");
    await_release(&server, "patient", 3, "succeeded");
    let info = server.json(&["apps:info", "-a", "patient"]);
    assert_eq!(info["current_release"], 3, "{info}");
    server.ok(&["apps:destroy", "-a", "patient", "--confirm", "patient"]);
    assert!(processes_matching(&tag).is_empty());
}

#[test]
fn destroying_an_app_during_its_deploy_leaves_no_process_running() {
    let server = Server::start();
    let tag = unique_tag();
    let app = gated_app(&tag);
    let gate = app.path().join("gate");
    let gate_var = format!("GATE={}", gate.display());
    server.ok(&["apps:create", "doomed"]);
    server.ok(&["config:set", "-a", "doomed", &gate_var]);

    let dir = app.path().to_str().expect("utf-8").to_string();
    let deploy = server
        .client_command(&["deploy", "-a", "doomed", "-d", &dir])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deploy");
    server.await_log("doomed", "v2: running the release phase");
    let destroy = server
        .client_command(&["apps:destroy", "-a", "doomed", "--confirm", "doomed"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("destroy");
    server.await_log("doomed", "destroying doomed");
    // The deploy goes on to start its processes; the destroy, waiting for it, stops them.
    std::fs::write(&gate, "").expect("open the gate");
    let deploy = deploy.wait_with_output().expect("deploy");
    let destroy = destroy.wait_with_output().expect("destroy");
    assert!(
        destroy.status.success(),
        "destroy: {}",
        String::from_utf8_lossy(&destroy.stderr)
    );
    assert!(
        deploy.status.success(),
        "the deploy under way finishes first: {}",
        String::from_utf8_lossy(&deploy.stderr)
    );
    assert!(
        processes_matching(&tag).is_empty(),
        "processes of the destroyed app are running"
    );
    let apps = server.json(&["apps"]);
    assert!(!apps.to_string().contains("doomed"), "{apps}");
}

#[test]
fn an_internal_error_of_a_deploy_is_logged_with_its_cause_and_told_to_the_client() {
    let (server, stderr) = Server::start_reading_stderr();
    let app = gated_app(&unique_tag());
    server.ok(&["apps:create", "broken"]);
    server.ok(&["config:set", "-a", "broken", "SECRET_TOKEN=hunter2-value"]);
    // Where slugs go is a file, not a directory: packing the slug fails on the server.
    let slugs = server.data.path().join("slugs");
    let _ = std::fs::remove_dir_all(&slugs);
    std::fs::write(&slugs, "not a directory").expect("write");
    let dir = app.path().to_str().expect("utf-8");
    let out = server.client(&["deploy", "-a", "broken", "-d", dir]);
    assert_ne!(out.code(), Some(0), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("packing the slug failed on the server (its log has the cause)"),
        "{}",
        out.stderr
    );
    let logged = loop {
        let line = stderr
            .recv_timeout(support::HANG)
            .expect("the server's log");
        if line.contains("error: packing the slug") {
            break line;
        }
    };
    assert!(
        logged.contains("slugs"),
        "the cause names the path: {logged}"
    );
    assert!(!logged.contains("hunter2-value"));
    assert!(!out.stderr.contains("hunter2-value"));
}
