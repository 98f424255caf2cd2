//! Changes of an app through the API run to their end and one at a time: a config change whose
//! client disconnects still goes live, a destroy during a deploy leaves no process, and an
//! internal error is logged with its cause while the client hears what failed.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::Stdio;

use support::api::{Gate, gated_app};
use support::server::{Server, TOKEN};
use support::{await_condition, processes_matching, unique_tag};

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
    let gate = Gate::new();
    let gate_var = gate.var();
    server.ok(&["apps:create", "patient"]);
    server.ok(&["config:set", "-a", "patient", &gate_var]);
    gate.open();
    server.deploy("patient", app.path());
    await_release(&server, "patient", 2, "succeeded");

    // v3's release phase waits at the gate; its client sends the change and goes away.
    gate.close();
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

    gate.open();
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
    let gate = Gate::new();
    let gate_var = gate.var();
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
    gate.open();
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
