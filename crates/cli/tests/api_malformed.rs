//! Malformed requests to every route a real `dozen server` publishes in `/openapi.json`: each
//! gets a 4xx with the API's error body, never a 5xx, and never hangs.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use support::api::{AUTH, JSON, send};
use support::server::Server;

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
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
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
        *statuses.borrow_mut().entry(answer.status).or_default() += 1;
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
    // The requests reached the handlers, not only the router and the token check.
    let statuses = statuses.into_inner();
    eprintln!("answers by status: {statuses:?}");
    for wanted in [200, 401, 404, 422] {
        assert!(
            statuses.contains_key(&wanted),
            "no {wanted} among {statuses:?}"
        );
    }
    let health = send(port, "GET", "/healthz", &[], b"", true).expect("healthz");
    assert_eq!(health.status, 200);
}
