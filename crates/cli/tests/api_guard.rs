//! The API's guard on the real server: repeated bad tokens from one address are refused for a
//! while, and every state change is an audit line in the server's own log, without config
//! values.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use reqwest::blocking::Client;
use support::server::{Server, TOKEN};

fn get_apps(http: &Client, server: &Server, token: &str) -> reqwest::blocking::Response {
    http.get(format!("{}/v1/apps", server.url))
        .bearer_auth(token)
        .send()
        .expect("request")
}

#[test]
fn repeated_bad_tokens_from_one_address_get_429_until_the_window_passes() {
    let server = Server::start();
    let http = Client::new();
    let bad = "dzn_not_a_token_0000000000000000";
    for attempt in 1..=5 {
        assert_eq!(
            get_apps(&http, &server, bad).status().as_u16(),
            401,
            "attempt {attempt}"
        );
    }
    let refused = get_apps(&http, &server, bad);
    assert_eq!(refused.status().as_u16(), 429);
    let retry: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let message = refused.text().expect("body");
    assert!(message.contains("bad API token"), "{message}");
    // A good token from the same address waits too: answering it would tell a guesser it hit.
    assert_eq!(get_apps(&http, &server, TOKEN).status().as_u16(), 429);
    // Another address is not affected.
    let other = Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .expect("client");
    assert_eq!(get_apps(&other, &server, TOKEN).status().as_u16(), 200);
    assert_eq!(get_apps(&other, &server, bad).status().as_u16(), 401);
    // The server says which address it refuses.
    let mut seen = Vec::new();
    let line = server.await_output("bad tokens from", &mut seen);
    assert!(line.contains("5 bad tokens from 127.0.0.1"), "{line}");
}

#[test]
fn state_changes_are_audit_lines_with_config_keys_and_never_values() {
    let server = Server::start();
    let secret = "s3cr3t-value-never-logged";
    server.ok(&["apps:create", "shop"]);
    server.ok(&[
        "config:set",
        "-a",
        "shop",
        &format!("SECRET={secret}"),
        "PLAIN=x",
    ]);
    server.ok(&["config:unset", "-a", "shop", "PLAIN"]);
    server.ok(&["config", "-a", "shop"]);

    let mut seen = Vec::new();
    let created = server.await_output("action=apps:create", &mut seen);
    assert!(
        created.contains("token=bootstrap scope=admin")
            && created.contains("name=shop")
            && created.contains("status=201"),
        "{created}"
    );
    let set = server.await_output("action=config:set", &mut seen);
    assert!(
        set.contains("app=shop") && set.contains("set=PLAIN,SECRET") && set.contains("status=200"),
        "{set}"
    );
    let unset = server.await_output("unset=PLAIN", &mut seen);
    assert!(unset.contains("action=config:set"), "{unset}");
    // Reading config values is recorded too.
    let read = server.await_output("action=config ", &mut seen);
    assert!(read.contains("app=shop status=200"), "{read}");

    // A request refused for its scope is an audit line with its status.
    let out = server
        .admin(&["tokens:create", "dash", "--app", "shop", "--scope", "read"])
        .output()
        .expect("tokens:create");
    let read_token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let denied = server
        .client_command(&["config:set", "-a", "shop", &format!("SECRET={secret}")])
        .env("DOZEN_API_TOKEN", &read_token)
        .output()
        .expect("config:set");
    assert!(!denied.status.success());
    let line = server.await_output("status=403", &mut seen);
    assert!(
        line.contains("token=dash scope=read:shop") && line.contains("action=config:set"),
        "{line}"
    );
    for l in &seen {
        assert!(
            !l.contains(secret),
            "a config value in the server's log: {l}"
        );
    }
}
