//! Token scopes on the real server: every route and verb of the API, asked with an admin token,
//! a deploy token and a read token on app `alpha`, and a deploy token on app `beta`; and which
//! token each release says made it.

mod support;

use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::server::{Server, TOKEN};

/// What a request needs, as the test expects it (not read from the server's table).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    AnyToken,
    Read,
    Deploy,
    Admin,
}

/// One request, harmless when it is allowed (an invalid body, an unknown release...), and the
/// status it gets then: that status shows the handler ran.
struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    needs: Needs,
    allowed: u16,
}

fn case(method: Method, path: &'static str, needs: Needs, allowed: u16) -> Case {
    Case {
        method,
        path,
        body: None,
        needs,
        allowed,
    }
}

fn with_body(mut c: Case, body: Value) -> Case {
    c.body = Some(body);
    c
}

/// Every route of the API on app alpha. Destroying the app comes last.
fn cases() -> Vec<Case> {
    use Needs::*;
    vec![
        case(Method::GET, "/v1/apps", AnyToken, 200),
        with_body(
            case(Method::POST, "/v1/apps", Admin, 422),
            json!({"name": "Not A Name"}),
        ),
        case(Method::GET, "/v1/apps/alpha", Read, 200),
        case(Method::HEAD, "/v1/apps/alpha", Read, 200),
        case(Method::GET, "/v1/apps/alpha/config", Deploy, 200),
        case(Method::HEAD, "/v1/apps/alpha/config", Deploy, 200),
        with_body(
            case(Method::PATCH, "/v1/apps/alpha/config", Deploy, 422),
            json!({}),
        ),
        case(Method::GET, "/v1/apps/alpha/releases", Read, 200),
        case(Method::GET, "/v1/apps/alpha/releases/v1", Read, 404),
        case(
            Method::GET,
            "/v1/apps/alpha/releases/v1/config",
            Deploy,
            404,
        ),
        case(Method::GET, "/v1/apps/alpha/releases/v1/slug", Deploy, 404),
        with_body(
            case(Method::POST, "/v1/apps/alpha/rollback", Deploy, 422),
            json!({}),
        ),
        case(Method::GET, "/v1/apps/alpha/builds", Read, 200),
        case(Method::POST, "/v1/apps/alpha/builds", Deploy, 422),
        case(Method::GET, "/v1/apps/alpha/formation", Read, 200),
        with_body(
            case(Method::PATCH, "/v1/apps/alpha/formation", Deploy, 422),
            json!({}),
        ),
        case(Method::GET, "/v1/apps/alpha/formation/sizes", Read, 200),
        with_body(
            case(Method::PATCH, "/v1/apps/alpha/formation/sizes", Deploy, 422),
            json!({}),
        ),
        case(Method::GET, "/v1/apps/alpha/ps", Read, 200),
        case(Method::POST, "/v1/apps/alpha/ps/restart", Deploy, 422),
        with_body(
            case(Method::POST, "/v1/apps/alpha/run", Deploy, 422),
            json!({}),
        ),
        case(Method::GET, "/v1/apps/alpha/logs", Read, 200),
        case(Method::GET, "/v1/apps/alpha/domains", Read, 200),
        with_body(
            case(Method::POST, "/v1/apps/alpha/domains", Deploy, 422),
            json!({"hostname": "not a hostname"}),
        ),
        case(
            Method::DELETE,
            "/v1/apps/alpha/domains/www.example.com",
            Deploy,
            404,
        ),
        case(Method::GET, "/v1/apps/alpha/drains", Read, 200),
        with_body(
            case(Method::POST, "/v1/apps/alpha/drains", Deploy, 422),
            json!({"url": "ftp://logs.example.com"}),
        ),
        case(
            Method::DELETE,
            "/v1/apps/alpha/drains/drn_0000000000000000",
            Deploy,
            404,
        ),
        // Any token; an app token's page holds its own app only (tests/metrics.rs).
        case(Method::GET, "/metrics", AnyToken, 200),
        case(Method::GET, "/v1/tokens", Admin, 200),
        with_body(
            case(Method::POST, "/v1/tokens", Admin, 422),
            json!({"name": ""}),
        ),
        case(
            Method::DELETE,
            "/v1/tokens/tok_0000000000000000",
            Admin,
            404,
        ),
        case(Method::DELETE, "/v1/apps/alpha", Admin, 200),
    ]
}

struct Token {
    label: &'static str,
    secret: String,
    may: fn(Needs) -> bool,
    /// What a 403 answer says this token would need, for a route it may not use.
    missing: fn(Needs) -> &'static str,
}

fn create_token(server: &Server, args: &[&str]) -> String {
    let out = server.admin(args).output().expect("tokens:create");
    assert!(
        out.status.success(),
        "dozen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn request(http: &Client, server: &Server, token: &str, c: &Case) -> (u16, String) {
    let mut req = http
        .request(
            c.method.clone(),
            format!("http://127.0.0.1:{}{}", server.port, c.path),
        )
        .bearer_auth(token);
    if let Some(b) = &c.body {
        req = req.json(b);
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

fn app_names(http: &Client, server: &Server, token: &str) -> Vec<String> {
    let list: Vec<Value> = http
        .get(format!("http://127.0.0.1:{}/v1/apps", server.port))
        .bearer_auth(token)
        .send()
        .expect("list")
        .json()
        .expect("json");
    list.iter()
        .map(|a| a["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_route_answers_each_scope_as_documented() {
    let server = Server::start();
    server.ok(&["apps:create", "alpha"]);
    server.ok(&["apps:create", "beta"]);
    let deploy_a = create_token(&server, &["tokens:create", "ci-alpha", "--app", "alpha"]);
    let read_a = create_token(
        &server,
        &[
            "tokens:create",
            "dash-alpha",
            "--app",
            "alpha",
            "--scope",
            "read",
        ],
    );
    let deploy_b = create_token(
        &server,
        &[
            "tokens:create",
            "ci-beta",
            "--app",
            "beta",
            "--scope",
            "deploy",
        ],
    );

    // `dozen tokens` lists each token's scope and app.
    let listed = server.admin(&["tokens"]).output().expect("tokens");
    let listed: Vec<Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let scope_of = |name: &str| {
        let t = listed.iter().find(|t| t["name"] == name).expect(name);
        (t["scope"].clone(), t["app"].clone())
    };
    assert_eq!(scope_of("bootstrap"), (json!("admin"), Value::Null));
    assert_eq!(scope_of("ci-alpha"), (json!("deploy"), json!("alpha")));
    assert_eq!(scope_of("dash-alpha"), (json!("read"), json!("alpha")));
    assert_eq!(scope_of("ci-beta"), (json!("deploy"), json!("beta")));

    let http = Client::new();
    // An app token lists its own app only.
    assert_eq!(app_names(&http, &server, TOKEN), ["alpha", "beta"]);
    assert_eq!(app_names(&http, &server, &deploy_a), ["alpha"]);
    assert_eq!(app_names(&http, &server, &read_a), ["alpha"]);
    assert_eq!(app_names(&http, &server, &deploy_b), ["beta"]);

    let tokens = [
        Token {
            label: "deploy on beta",
            secret: deploy_b.clone(),
            may: |n| n == Needs::AnyToken,
            missing: |n| match n {
                Needs::Admin => "needs an admin token",
                Needs::Deploy => "needs deploy on alpha",
                _ => "needs read or deploy on alpha",
            },
        },
        Token {
            label: "read on alpha",
            secret: read_a.clone(),
            may: |n| matches!(n, Needs::AnyToken | Needs::Read),
            missing: |n| match n {
                Needs::Admin => "needs an admin token",
                _ => "needs deploy on alpha",
            },
        },
        Token {
            label: "deploy on alpha",
            secret: deploy_a.clone(),
            may: |n| n != Needs::Admin,
            missing: |_| "needs an admin token",
        },
        Token {
            label: "admin",
            secret: TOKEN.to_string(),
            may: |_| true,
            missing: |_| "",
        },
    ];
    for c in cases() {
        for t in &tokens {
            let (status, body) = request(&http, &server, &t.secret, &c);
            let what = format!("{} {} with {}", c.method, c.path, t.label);
            if (t.may)(c.needs) {
                assert_eq!(status, c.allowed, "{what}: {body}");
            } else {
                assert_eq!(status, 403, "{what}: {body}");
                if c.method != Method::HEAD {
                    assert!(body.contains((t.missing)(c.needs)), "{what}: {body}");
                }
            }
        }
    }

    // Beta's deploy token works on beta.
    let (status, _) = request(
        &http,
        &server,
        &deploy_b,
        &case(Method::GET, "/v1/apps/beta/config", Needs::Deploy, 200),
    );
    assert_eq!(status, 200);
    // Destroying alpha revoked its tokens.
    let (status, _) = request(
        &http,
        &server,
        &read_a,
        &case(Method::GET, "/v1/apps", Needs::AnyToken, 200),
    );
    assert_eq!(status, 401);
}

#[test]
fn the_cli_says_which_scope_a_command_needs() {
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let read = create_token(
        &server,
        &["tokens:create", "dash", "-a", "shop", "--scope", "read"],
    );
    let out = server
        .client_command(&["config", "-a", "shop"])
        .env("DOZEN_API_TOKEN", &read)
        .output()
        .expect("dozen config");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("token dash has scope read on shop")
            && err.contains("needs deploy on shop, or an admin token")
            && err.contains("HTTP 403"),
        "{err}"
    );
    let out = server
        .client_command(&["ps", "-a", "shop"])
        .env("DOZEN_API_TOKEN", &read)
        .output()
        .expect("dozen ps");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Mistakes in tokens:create are refused with what to do, and nothing is created.
    for (args, says) in [
        (
            &["tokens:create", "x", "--scope", "read"][..],
            "give it with --app APP",
        ),
        (
            &["tokens:create", "x", "--app", "shop", "--scope", "admin"][..],
            "an admin token is for every app",
        ),
        (&["tokens:create", "x", "--app", "nope"][..], "nope"),
        (&["tokens:create", "x", "--scope", "root"][..], "root"),
    ] {
        let out = server.admin(args).output().expect("tokens:create");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let listed = server.admin(&["tokens"]).output().expect("tokens");
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("\"x\""));
}

/// The stdout of `dozen ARGS` run with `token`, after asserting it exited 0.
fn as_token(server: &Server, token: &str, args: &[&str]) -> String {
    let out = server
        .client_command(args)
        .env("DOZEN_API_TOKEN", token)
        .output()
        .expect("dozen");
    assert!(
        out.status.success(),
        "dozen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn releases_say_which_token_made_them() {
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let ops = create_token(&server, &["tokens:create", "ops"]);
    let ci = create_token(&server, &["tokens:create", "ci", "--app", "shop"]);
    as_token(&server, &ops, &["config:set", "A=1", "-a", "shop"]);
    as_token(&server, &ci, &["config:set", "B=2", "-a", "shop"]);
    as_token(&server, &ci, &["rollback", "v1", "-a", "shop"]);

    // The table's BY column, read at the header's offset (descriptions have spaces).
    let table = as_token(&server, &ops, &["releases", "-a", "shop"]);
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let at = header.find("BY").expect("a BY column");
    let by: Vec<(&str, &str)> = lines
        .map(|l| {
            let version = l.split_whitespace().find(|w| w.starts_with('v'));
            let cell = l.get(at..).and_then(|c| c.split_whitespace().next());
            (version.unwrap_or("?"), cell.unwrap_or("?"))
        })
        .collect();
    assert_eq!(by, [("v3", "ci"), ("v2", "ci"), ("v1", "ops")], "{table}");
    let info = as_token(&server, &ops, &["releases:info", "v3", "-a", "shop"]);
    assert!(
        info.lines().any(|l| l.split_whitespace().eq(["by:", "ci"])),
        "{info}"
    );

    // The API says the same, to the app's own token.
    let list: Vec<Value> = Client::new()
        .get(format!(
            "http://127.0.0.1:{}/v1/apps/shop/releases",
            server.port
        ))
        .bearer_auth(&ci)
        .send()
        .expect("releases")
        .json()
        .expect("json");
    let by: Vec<(i64, &str)> = list
        .iter()
        .map(|r| {
            (
                r["version"].as_i64().unwrap_or(0),
                r["created_by"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(by, [(3, "ci"), (2, "ci"), (1, "ops")]);
}
