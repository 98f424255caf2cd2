//! The API over TLS, with a CA and a server certificate made here (rcgen): the CLI trusts the
//! server through `DOZEN_CA_CERT` and refuses it without; a plain-HTTP API on a public address is
//! refused at start unless `DOZEN_ALLOW_PLAIN_HTTP=1`; bad certificate files stop the start.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::certs::Certs;
use support::server::{Server, TOKEN};
use support::{dozen_bin, free_port, line_reader};

#[test]
fn the_cli_talks_to_the_api_over_tls_with_the_ca_it_is_given() {
    let certs = Certs::make();
    let server = Server::start_with(&[
        ("DOZEN_API_TLS_CERT", &certs.str("cert.pem")),
        ("DOZEN_API_TLS_KEY", &certs.str("key.pem")),
    ]);
    assert!(server.url.starts_with("https://"));
    let with_ca = |args: &[&str]| {
        let out = server
            .client_command(args)
            .env("DOZEN_CA_CERT", certs.path("ca.pem"))
            .stdin(Stdio::null())
            .output()
            .expect("dozen");
        support::Output::from(out)
    };
    with_ca(&["apps:create", "shop"]).expect_code(0, &["apps:create"]);
    let apps = with_ca(&["apps"]).expect_code(0, &["apps"]);
    assert!(apps.stdout.contains("shop"), "{}", apps.stdout);

    // Without the CA, the server's certificate is not trusted, and the CLI says so.
    let out = server.client(&["apps"]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("certificate") && out.stderr.contains("DOZEN_CA_CERT"),
        "{}",
        out.stderr
    );
    // A CA file that is not one is named.
    let out = server
        .client_command(&["apps"])
        .env("DOZEN_CA_CERT", certs.path("key.pem"))
        .output()
        .expect("dozen");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("DOZEN_CA_CERT") && err.contains("key.pem"),
        "{err}"
    );

    // Plain HTTP to the TLS port is no way in.
    let plain = support::server::http_get(server.port, "localhost", "/v1/apps");
    assert!(
        !matches!(plain, Ok((200, _))),
        "plain HTTP answered: {plain:?}"
    );
}

/// `dozen server` with `env`, on free ports and a fresh data dir (migrated first).
fn server_command(data: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(dozen_bin());
    c.env("PORT", free_port().to_string())
        .env("DOZEN_ROUTER_PORT", free_port().to_string())
        .env("DOZEN_DATA_DIR", data)
        .env("DOZEN_API_TOKEN", TOKEN)
        .env_remove("DATABASE_URL")
        .env_remove("DOZEN_BIND")
        .env_remove("DOZEN_ALLOW_PLAIN_HTTP")
        .env_remove("DOZEN_API_TLS_CERT")
        .env_remove("DOZEN_API_TLS_KEY")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    c
}

/// Run `dozen server` that is expected to refuse to start: its output once it exited (killed,
/// and the test failed, if it is still running after [`support::HANG`]).
fn refused(mut cmd: Command) -> std::process::Output {
    let mut child = cmd
        .arg("server")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server");
    let deadline = std::time::Instant::now() + support::HANG;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started instead of refusing to");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn migrated() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("tmp");
    let out = server_command(data.path(), &[])
        .arg("migrate")
        .output()
        .expect("migrate");
    assert!(out.status.success());
    data
}

/// Start the server, wait until it listens, stop it; its first line that says it listens.
fn starts_and_listens(data: &Path, env: &[(&str, &str)]) -> String {
    let mut child = server_command(data, env)
        .arg("server")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server");
    let lines = line_reader(child.stdout.take().expect("stdout"));
    let mut seen = Vec::new();
    let listening = loop {
        match lines.recv_timeout(support::HANG) {
            Ok(l) if l.contains("listening") => break l,
            Ok(l) => seen.push(l),
            Err(e) => panic!("the server never said it was listening ({e}): {seen:?}"),
        }
    };
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    seen.push(listening.clone());
    seen.join("\n")
}

#[test]
fn a_plain_http_api_on_a_public_address_is_refused_unless_allowed() {
    let data = migrated();
    let out = refused(server_command(data.path(), &[("DOZEN_BIND", "0.0.0.0")]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DOZEN_BIND=0.0.0.0")
            && err.contains("plain HTTP")
            && err.contains("DOZEN_API_TLS_CERT")
            && err.contains("DOZEN_ALLOW_PLAIN_HTTP=1"),
        "{err}"
    );

    // Allowed: it starts, and says what that means.
    let said = starts_and_listens(
        data.path(),
        &[("DOZEN_BIND", "0.0.0.0"), ("DOZEN_ALLOW_PLAIN_HTTP", "1")],
    );
    assert!(
        said.contains("plain HTTP") && said.contains("0.0.0.0"),
        "{said}"
    );

    // With TLS it needs no permission.
    let certs = Certs::make();
    let said = starts_and_listens(
        data.path(),
        &[
            ("DOZEN_BIND", "0.0.0.0"),
            ("DOZEN_API_TLS_CERT", &certs.str("cert.pem")),
            ("DOZEN_API_TLS_KEY", &certs.str("key.pem")),
        ],
    );
    assert!(said.contains("https://0.0.0.0:"), "{said}");
}

#[test]
fn bad_certificate_files_stop_the_start_naming_the_variable_and_file() {
    let data = migrated();
    let certs = Certs::make();
    std::fs::write(certs.path("garbage.pem"), "not a certificate\n").expect("write");
    let other = Certs::make();
    let cases: [(&str, String, String, &str); 4] = [
        (
            "DOZEN_API_TLS_CERT",
            certs.str("garbage.pem"),
            certs.str("key.pem"),
            "garbage.pem",
        ),
        (
            "DOZEN_API_TLS_KEY",
            certs.str("cert.pem"),
            certs.str("garbage.pem"),
            "garbage.pem",
        ),
        (
            "DOZEN_API_TLS_CERT",
            certs.str("missing.pem"),
            certs.str("key.pem"),
            "missing.pem",
        ),
        (
            "DOZEN_API_TLS_KEY",
            certs.str("cert.pem"),
            other.str("key.pem"),
            "key.pem",
        ),
    ];
    for (variable, cert, key, file) in cases {
        let out = refused(server_command(
            data.path(),
            &[("DOZEN_API_TLS_CERT", &cert), ("DOZEN_API_TLS_KEY", &key)],
        ));
        assert_eq!(out.status.code(), Some(1), "{cert} {key}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(variable) && err.contains(file), "{err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    }
    let out = refused(server_command(
        data.path(),
        &[("DOZEN_API_TLS_CERT", &certs.str("cert.pem"))],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DOZEN_API_TLS_KEY is not"));
}
