//! `dozen server` end to end, on SQLite and on PostgreSQL: the real server binary, the real
//! client commands, real app processes answering HTTP.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::*;

const TOKEN: &str = "dzn_test_token_0123456789abcdef";

/// Where the store lives for one test.
enum Backend {
    Sqlite,
    Postgres(String),
}

fn pg_admin_url() -> String {
    std::env::var("DOZEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Backend {
    fn postgres() -> Backend {
        let name = format!("dozen_cli_{}", unique_tag());
        let ok = Command::new("psql")
            .args([
                &pg_admin_url(),
                "-q",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .status()
            .expect("psql (PostgreSQL client) must be installed for the server tests");
        assert!(
            ok.success(),
            "could not create database {name} at {}",
            pg_admin_url()
        );
        let base = pg_admin_url();
        let url = match base.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{name}"),
            None => panic!("DOZEN_TEST_DATABASE_URL needs a database name"),
        };
        Backend::Postgres(url)
    }

    fn url(&self) -> Option<&str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres(u) => Some(u),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres(url) = self {
            if let Some((_, name)) = url.rsplit_once('/') {
                let _ = Command::new("psql")
                    .args([
                        &pg_admin_url(),
                        "-q",
                        "-c",
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ])
                    .status();
            }
        }
    }
}

/// A running `dozen server` and a client environment pointing at it.
struct Server {
    extra_env: Vec<(String, String)>,
    child: Option<Child>,
    port: u16,
    router_port: u16,
    data: tempfile::TempDir,
    backend: Backend,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(backend: Backend) -> Server {
        Server::start_with(backend, &[])
    }

    fn start_with(backend: Backend, env: &[(&str, &str)]) -> Server {
        let data = tempfile::tempdir().expect("tmp");
        let mut s = Server {
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            port: free_port(),
            router_port: free_port(),
            data,
            backend,
            lines: mpsc::channel().1,
        };
        let migrate = s.admin(&["migrate"]).output().expect("migrate");
        assert!(
            migrate.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&migrate.stderr)
        );
        s.launch();
        s
    }

    fn admin(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dozen_bin());
        c.args(args)
            .env("PORT", self.port.to_string())
            .env("DOZEN_ROUTER_PORT", self.router_port.to_string())
            .env("DOZEN_DATA_DIR", self.data.path())
            .env("DOZEN_API_TOKEN", TOKEN)
            .env("DOZEN_BIND", "127.0.0.1")
            .env("DOZEN_APP_USER_PREFIX", format!("dz{}-", self.port))
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1");
        if let Some(url) = self.backend.url() {
            c.env("DATABASE_URL", url);
        }
        c.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn launch(&mut self) {
        let mut child = self
            .admin(&["server"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server");
        let out = child.stdout.take().expect("stdout");
        let rx = line_reader(out);
        self.child = Some(child);
        self.lines = rx;
        self.wait_line("listening");
    }

    fn wait_line(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(HANG) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(e) => panic!("server never said {needle:?}: {e}"),
            }
        }
    }

    /// `dozen ARGS` as a client of this server, to spawn.
    fn client_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dozen_bin());
        c.args(args)
            .env("DOZEN_URL", format!("http://127.0.0.1:{}", self.port))
            .env("DOZEN_API_TOKEN", TOKEN)
            .env_remove("DOZEN_APP")
            .env("NO_COLOR", "1");
        c
    }

    /// `dozen ARGS` as a client of this server.
    fn client(&self, args: &[&str]) -> Output {
        let out = self
            .client_command(args)
            .stdin(Stdio::null())
            .output()
            .expect("client");
        Output::from(out)
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        self.client(args).expect_code(0, args).stdout
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).expect("json")
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let status = c.wait().expect("wait");
            assert!(status.success(), "server exit {status:?}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// GET / on a local port; the body.
fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The port of the first process named `name` that is up.
fn await_up(server: &Server, app: &str, name: &str) -> u16 {
    let port = std::cell::Cell::new(0u16);
    await_condition(&format!("{name} of {app} to be up"), || {
        let ps = server.json(&["ps", "-a", app]);
        ps.as_array().into_iter().flatten().any(|p| {
            let hit = p["name"] == name && p["state"] == "up";
            if hit {
                port.set(p["port"].as_u64().unwrap_or(0) as u16);
            }
            hit
        })
    });
    port.get()
}

fn example_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

fn full_lifecycle(backend: Backend) {
    let mut server = Server::start(backend);
    server.ok(&["apps:create", "shop"]);
    let apps = server.json(&["apps"]);
    assert_eq!(apps[0]["name"], "shop");

    // Deploy: build, release v1, web.1 answers on its port.
    let deploy = server.ok(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        example_app().to_str().expect("path"),
    ]);
    assert!(deploy.contains("v1 is live"), "{deploy}");
    let port = await_up(&server, "shop", "web.1");
    assert_eq!(http_get(port).as_deref(), Some("Hello from web.1\n"));

    // Config: a new release, the web process restarted with it.
    let set = server.ok(&[
        "config:set",
        "-a",
        "shop",
        "GREETING=Bonjour",
        "SECRET_TOKEN=s3cr3t-value",
    ]);
    assert!(set.contains("v2"), "{set}");
    assert_eq!(
        server.ok(&["config:get", "-a", "shop", "GREETING"]).trim(),
        "Bonjour"
    );
    let port = await_up(&server, "shop", "web.1");
    assert_eq!(http_get(port).as_deref(), Some("Bonjour from web.1\n"));
    let releases = server.json(&["releases", "-a", "shop"]);
    assert_eq!(releases[0]["version"], 2);
    assert!(
        !releases.to_string().contains("s3cr3t-value"),
        "release listings show keys only"
    );

    // Scale up and down.
    server.ok(&["ps:scale", "-a", "shop", "web=2", "worker=1"]);
    await_up(&server, "shop", "web.2");
    let ps = server.json(&["ps", "-a", "shop"]);
    let names: Vec<&str> = ps
        .as_array()
        .expect("ps")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["web.1", "web.2", "worker.1"]);
    server.ok(&["ps:scale", "-a", "shop", "web=1", "worker=0"]);
    let ps = server.json(&["ps", "-a", "shop"]);
    assert_eq!(ps.as_array().expect("ps").len(), 1);

    // One-off: output and exit code come back.
    let run = server.client(&[
        "run",
        "-a",
        "shop",
        "--",
        "echo \"$GREETING from $PS\"; exit 3",
    ]);
    assert_eq!(run.code(), Some(3), "{run:?}");
    assert_eq!(run.stdout, "Bonjour from run.1\n");

    // stdin reaches the one-off.
    let mut child = server
        .client_command(&["run", "-a", "shop", "--", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"piped to the dyno\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED TO THE DYNO\n");
    assert!(out.status.success());

    // A detached one-off: its output lands in the logs, filtered by process.
    let detached = server.ok(&["run:detached", "-a", "shop", "echo detached-$PS"]);
    assert!(detached.contains("run.3"), "{detached}");
    await_condition("the detached run's output", || {
        server
            .ok(&["logs", "-a", "shop", "--ps", "run.3", "--source", "app"])
            .contains("detached-run.3")
    });
    let only_platform = server.ok(&["logs", "-a", "shop", "--source", "dozen", "-n", "1500"]);
    assert!(!only_platform.contains("detached-run.3"), "{only_platform}");

    // Restarting a type replaces its processes.
    let before = server.json(&["ps", "-a", "shop"])[0]["pid"].clone();
    server.ok(&["ps:restart", "-a", "shop", "web"]);
    await_up(&server, "shop", "web.1");
    assert_ne!(server.json(&["ps", "-a", "shop"])[0]["pid"], before);

    // Logs: process output and platform events; never a config value.
    let logs = server.ok(&["logs", "-a", "shop", "-n", "1500"]);
    assert!(logs.contains("listening on port"), "{logs}");
    assert!(!logs.contains("s3cr3t-value"), "{logs}");

    // Rollback to v1: its config (no GREETING) comes back.
    let rb = server.ok(&["rollback", "-a", "shop", "v1"]);
    assert!(rb.contains("Rollback to v1"), "{rb}");
    let port = await_up(&server, "shop", "web.1");
    assert_eq!(http_get(port).as_deref(), Some("Hello from web.1\n"));
    assert_eq!(
        server
            .client(&["config:get", "-a", "shop", "GREETING"])
            .code(),
        Some(1)
    );

    // Restart of the server: the formation comes back from the store.
    server.kill9();
    server.launch();
    let port = await_up(&server, "shop", "web.1");
    assert_eq!(http_get(port).as_deref(), Some("Hello from web.1\n"));
    let info = server.json(&["apps:info", "-a", "shop"]);
    assert_eq!(
        info["current_release"], 3,
        "v1 deploy, v2 config, v3 rollback"
    );

    // Live tail: a new line arrives while following.
    let mut tail = server
        .client_command(&["logs", "-a", "shop", "--tail", "-n", "0", "--source", "app"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tail");
    let tail_out = tail.stdout.take().expect("stdout");
    server.ok(&["run:detached", "-a", "shop", "echo tailed-line"]);
    let seen = BufReader::new(tail_out)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("tailed-line"));
    assert!(seen.is_some());
    let _ = tail.kill();
    let _ = tail.wait();

    // Destroy: confirmation required, then everything goes.
    assert_eq!(
        server.client(&["apps:destroy", "-a", "shop"]).code(),
        Some(1)
    );
    server.ok(&["apps:destroy", "-a", "shop", "--confirm", "shop"]);
    assert_eq!(server.json(&["apps"]).as_array().map(Vec::len), Some(0));
    await_condition("the destroyed app's web process to stop", || {
        http_get(port).is_none()
    });
    server.stop();
}

#[test]
fn lifecycle_on_sqlite() {
    full_lifecycle(Backend::Sqlite);
}

#[test]
fn lifecycle_on_postgres() {
    full_lifecycle(Backend::postgres());
}

fn bad_input(backend: Backend) {
    let server = Server::start(backend);
    // Auth: a wrong token gets 401 and nothing else.
    let out = Command::new(dozen_bin())
        .args(["apps"])
        .env("DOZEN_URL", format!("http://127.0.0.1:{}", server.port))
        .env("DOZEN_API_TOKEN", "wrong")
        .output()
        .expect("client");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));

    let out = server.client(&["apps:create", "Not_Valid"]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("app name"), "{}", out.stderr);
    let out = server.client(&["apps:info", "-a", "nope"]);
    assert!(
        out.stderr.contains("not found") && out.stderr.contains("404"),
        "{}",
        out.stderr
    );
    server.ok(&["apps:create", "shop"]);
    let out = server.client(&["apps:create", "shop"]);
    assert!(out.stderr.contains("409"), "{}", out.stderr);
    let out = server.client(&["config:set", "-a", "shop", "novalue-secret"]);
    assert_eq!(out.code(), Some(1));
    assert!(!out.stderr.contains("novalue-secret"), "{}", out.stderr);
    let out = server.client(&["releases:info", "-a", "shop", "v9"]);
    assert!(out.stderr.contains("404"), "{}", out.stderr);

    // Domains: one app per hostname, validated, listed with the default one.
    server.ok(&["domains:add", "-a", "shop", "WWW.Shop.Test"]);
    let domains = server.json(&["domains", "-a", "shop"]);
    assert_eq!(domains["default"], "shop.localhost");
    assert_eq!(domains["custom"], serde_json::json!(["www.shop.test"]));
    server.ok(&["apps:create", "other"]);
    let out = server.client(&["domains:add", "-a", "other", "www.shop.test"]);
    assert!(out.stderr.contains("409"), "{}", out.stderr);
    let out = server.client(&["domains:add", "-a", "other", "not a host"]);
    assert!(out.stderr.contains("422"), "{}", out.stderr);
    server.ok(&["domains:remove", "-a", "shop", "www.shop.test"]);
    assert_eq!(
        server.json(&["domains", "-a", "shop"])["custom"],
        serde_json::json!([])
    );

    // A Procfile with an error: the build fails with the line, nothing is released.
    let app = App::with("web: ./serve\nweb: ./again\n");
    let out = server.client(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        app.path().to_str().expect("path"),
    ]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("Procfile:2"), "{}", out.stderr);
    assert_eq!(
        server
            .json(&["releases", "-a", "shop"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

#[test]
fn bad_input_on_sqlite() {
    bad_input(Backend::Sqlite);
}

#[test]
fn bad_input_on_postgres() {
    bad_input(Backend::postgres());
}

#[test]
fn unsafe_archives_are_refused() {
    let server = Server::start(Backend::Sqlite);
    server.ok(&["apps:create", "shop"]);
    // An archive with a path that climbs out of the build directory.
    let mut tar = tar::Builder::new(Vec::new());
    let data = b"web: echo pwned\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.as_old_mut().name[..12].copy_from_slice(b"../Procfile\0");
    header.set_cksum();
    tar.append(&header, &data[..]).expect("append");
    let raw = tar.into_inner().expect("tar");
    let body = zstd::encode_all(&raw[..], 3).expect("zstd");
    let response = post_raw(server.port, "/v1/apps/shop/builds", &body);
    let last = response
        .lines()
        .rev()
        .find(|l| l.contains("\"status\""))
        .unwrap_or_default();
    assert!(
        last.contains("\"status\":\"failed\"") && last.contains("../Procfile"),
        "{response}"
    );
    assert_eq!(
        server
            .json(&["releases", "-a", "shop"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        server.json(&["builds", "-a", "shop"])[0]["status"],
        "failed"
    );
}

/// POST raw bytes with the test token; the whole response.
fn post_raw(port: u16, path: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf
}

#[test]
fn server_refuses_an_unmigrated_store() {
    let data = tempfile::tempdir().expect("tmp");
    let out = Command::new(dozen_bin())
        .args(["server"])
        .env("PORT", free_port().to_string())
        .env("DOZEN_DATA_DIR", data.path())
        .env_remove("DATABASE_URL")
        .output()
        .expect("server");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dozen migrate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn killed_mid_deploy(backend: Backend) {
    let mut server = Server::start(backend);
    server.ok(&["apps:create", "shop"]);
    server.ok(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        example_app().to_str().expect("path"),
    ]);
    await_up(&server, "shop", "web.1");

    // A second deploy whose build is still running when the server is killed.
    let tag = unique_tag();
    let app = App::with("web: python3 -m http.server $PORT --bind 127.0.0.1\n");
    // The step prints `build-42` to the app's log once it runs (a file it wrote in /tmp would
    // be in its private /tmp, out of the test's sight, when the server runs as root).
    app.write(
        "dozen.toml",
        &format!("[build]\ncommand = \"echo build-$((6*7)) && sleep 300.{tag}\"\n"),
    );
    let mut deploy = server
        .client_command(&[
            "deploy",
            "-a",
            "shop",
            "-d",
            app.path().to_str().expect("path"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("deploy");
    await_condition("the build to start", || {
        server
            .ok(&["logs", "-a", "shop", "-n", "1500"])
            .contains("build-42")
    });
    server.kill9();
    assert!(
        !deploy.wait().expect("wait").success(),
        "the interrupted deploy must fail"
    );
    await_condition("the build step to die with the server", || {
        processes_matching(&format!("sleep 300.{tag}")).is_empty()
    });

    // After a restart: v1 is intact and live, the build is marked failed, web.1 serves v1.
    server.launch();
    let releases = server.json(&["releases", "-a", "shop"]);
    let versions: Vec<i64> = releases
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["version"].as_i64())
        .collect();
    assert_eq!(versions, [1], "no half-made release");
    assert_eq!(
        server.json(&["apps:info", "-a", "shop"])["current_release"],
        1
    );
    let builds = server.json(&["builds", "-a", "shop"]);
    assert_eq!(builds[0]["status"], "failed");
    let port = await_up(&server, "shop", "web.1");
    assert_eq!(http_get(port).as_deref(), Some("Hello from web.1\n"));
}

#[test]
fn killed_mid_deploy_on_sqlite() {
    killed_mid_deploy(Backend::Sqlite);
}

#[test]
fn killed_mid_deploy_on_postgres() {
    killed_mid_deploy(Backend::postgres());
}

#[test]
fn uploads_over_the_limit_are_refused() {
    let server = Server::start_with(Backend::Sqlite, &[("DOZEN_MAX_UPLOAD_MB", "1")]);
    server.ok(&["apps:create", "shop"]);
    let body = vec![7u8; 2 * 1024 * 1024];
    let response = post_raw(server.port, "/v1/apps/shop/builds", &body);
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "{}",
        response.lines().next().unwrap_or_default()
    );
    assert_eq!(
        server
            .json(&["builds", "-a", "shop"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

#[test]
fn a_build_over_the_time_limit_is_stopped() {
    let server = Server::start_with(Backend::Sqlite, &[("DOZEN_BUILD_TIMEOUT", "1")]);
    server.ok(&["apps:create", "shop"]);
    let tag = unique_tag();
    let app = App::with("web: python3 -m http.server $PORT\n");
    app.write(
        "dozen.toml",
        &format!("[build]\ncommand = \"sleep 60.{tag}\"\n"),
    );
    let out = server.client(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        app.path().to_str().expect("path"),
    ]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("DOZEN_BUILD_TIMEOUT"), "{}", out.stderr);
    assert!(processes_matching(&format!("sleep 60.{tag}")).is_empty());
}

/// GET / through the router with `Host: host`; the status code and body.
fn via_router(server: &Server, host: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", server.router_port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Requests through the router from a few threads until stopped; counts failures (anything
/// but a 200, or no answer).
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    fn start(router_port: u16, host: &str, threads: usize) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                let host = host.to_string();
                std::thread::spawn(move || {
                    let mut ok = 0u64;
                    let mut failures = Vec::new();
                    // Bounded: at most 100k requests per thread, and it stops when told.
                    for _ in 0..100_000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let result = (|| -> Option<u16> {
                            let mut s = TcpStream::connect(("127.0.0.1", router_port)).ok()?;
                            s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
                            s.write_all(
                                format!(
                                    "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                                )
                                .as_bytes(),
                            )
                            .ok()?;
                            let mut buf = String::new();
                            s.read_to_string(&mut buf).ok()?;
                            buf.split_whitespace().nth(1)?.parse().ok()
                        })();
                        match result {
                            Some(200) => ok += 1,
                            other => failures.push(format!("{other:?}")),
                        }
                    }
                    (ok, failures)
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut ok = 0;
        let mut failures = Vec::new();
        for t in self.threads {
            let (o, f) = t.join().expect("load thread");
            ok += o;
            failures.extend(f);
        }
        (ok, failures)
    }
}

#[test]
fn router_serves_apps_by_host_through_deploys() {
    let server = Server::start(Backend::Sqlite);
    server.ok(&["apps:create", "shop"]);
    assert_eq!(
        via_router(&server, "shop.localhost").map(|r| r.0),
        Some(503),
        "no web process yet"
    );
    assert_eq!(
        via_router(&server, "nope.localhost").map(|r| r.0),
        Some(404)
    );
    server.ok(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        example_app().to_str().expect("path"),
    ]);
    assert_eq!(
        via_router(&server, "shop.localhost:8080"),
        Some((200, "Hello from web.1\n".to_string()))
    );
    server.ok(&["domains:add", "-a", "shop", "www.shop.test"]);
    assert_eq!(via_router(&server, "WWW.shop.test").map(|r| r.0), Some(200));

    // Deploys and restarts under continuous load: not one failed request.
    server.ok(&["ps:scale", "-a", "shop", "web=2"]);
    let load = Load::start(server.router_port, "shop.localhost", 4);
    for i in 0..3 {
        server.ok(&["config:set", "-a", "shop", &format!("GREETING=Round{i}")]);
    }
    server.ok(&["ps:restart", "-a", "shop"]);
    let (ok, failures) = load.finish();
    assert!(ok > 0);
    assert!(
        failures.is_empty(),
        "{} failed requests of {}: {:?}",
        failures.len(),
        ok + failures.len() as u64,
        &failures[..failures.len().min(10)]
    );
    let (status, body) = via_router(&server, "shop.localhost").expect("answer");
    assert_eq!(status, 200);
    assert!(body.starts_with("Round2 from web."), "{body}");

    // Access lines are router events in the app's log.
    let logs = server.ok(&["logs", "-a", "shop", "-n", "1500", "--source", "dozen"]);
    assert!(logs.contains("router: at=info method=GET"), "{logs}");
}

#[test]
fn a_release_that_never_gets_healthy_leaves_the_old_one_serving() {
    let server = Server::start_with(Backend::Sqlite, &[("DOZEN_BOOT_TIMEOUT", "2")]);
    server.ok(&["apps:create", "shop"]);
    server.ok(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        example_app().to_str().expect("path"),
    ]);
    let broken = App::with("web: echo never binding; sleep 300\n");
    let out = server.client(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        broken.path().to_str().expect("path"),
    ]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("did not become healthy"),
        "{}",
        out.stderr
    );
    assert_eq!(
        via_router(&server, "shop.localhost"),
        Some((200, "Hello from web.1\n".to_string()))
    );
    let releases = server.json(&["releases", "-a", "shop"]);
    assert_eq!(releases[0]["status"], "failed");
    assert_eq!(
        server.json(&["apps:info", "-a", "shop"])["current_release"],
        1
    );
    // The failed release's processes are gone.
    let ps = server.json(&["ps", "-a", "shop"]);
    assert_eq!(ps.as_array().map(Vec::len), Some(1));
    assert_eq!(ps[0]["release"], 1);
}

#[test]
fn a_killed_web_process_under_load_loses_no_request() {
    let server = Server::start(Backend::Sqlite);
    server.ok(&["apps:create", "shop"]);
    server.ok(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        example_app().to_str().expect("path"),
    ]);
    server.ok(&["ps:scale", "-a", "shop", "web=2"]);
    await_up(&server, "shop", "web.2");
    let load = Load::start(server.router_port, "shop.localhost", 4);
    let ps = server.json(&["ps", "-a", "shop"]);
    let pid = ps[0]["pid"].as_i64().expect("pid") as i32;
    // SAFETY: killing an app process this test started through the server.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    await_condition("web.1 to be restarted", || {
        server.json(&["ps", "-a", "shop"])[0]["restarts"].as_u64() >= Some(1)
    });
    await_up(&server, "shop", "web.1");
    let (ok, failures) = load.finish();
    assert!(ok > 0);
    // A GET inside web.1 when it died is sent again to web.2 by the router.
    assert!(
        failures.is_empty(),
        "{} failed of {}: {:?}",
        failures.len(),
        ok + failures.len() as u64,
        &failures[..failures.len().min(10)]
    );
}

#[test]
fn router_serves_tls_with_certificates_from_a_directory() {
    let certs = tempfile::tempdir().expect("tmp");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=shop.localhost",
        ])
        .arg("-keyout")
        .arg(certs.path().join("default.key"))
        .arg("-out")
        .arg(certs.path().join("default.crt"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(made.success());
    let tls_port = free_port().to_string();
    let dir = certs.path().to_str().expect("path").to_string();
    let server = Server::start_with(
        Backend::Sqlite,
        &[
            ("DOZEN_ROUTER_TLS_PORT", tls_port.as_str()),
            ("DOZEN_TLS_CERTS", dir.as_str()),
        ],
    );
    server.ok(&["apps:create", "shop"]);
    server.ok(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        example_app().to_str().expect("path"),
    ]);
    let out = Command::new("curl")
        .args([
            "-sk",
            "--resolve",
            &format!("shop.localhost:{tls_port}:127.0.0.1"),
        ])
        .arg(format!("https://shop.localhost:{tls_port}/"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello from web.1\n");
}

#[test]
fn a_bad_certificate_directory_stops_the_start() {
    let certs = tempfile::tempdir().expect("tmp");
    std::fs::write(certs.path().join("shop.localhost.crt"), "not a certificate").expect("write");
    std::fs::write(certs.path().join("shop.localhost.key"), "not a key").expect("write");
    let data = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| {
        Command::new(dozen_bin())
            .args(args)
            .env("PORT", free_port().to_string())
            .env("DOZEN_ROUTER_PORT", free_port().to_string())
            .env("DOZEN_ROUTER_TLS_PORT", free_port().to_string())
            .env("DOZEN_TLS_CERTS", certs.path())
            .env("DOZEN_DATA_DIR", data.path())
            .env_remove("DATABASE_URL")
            .output()
            .expect("dozen")
    };
    assert!(run(&["migrate"]).status.success());
    let out = run(&["server"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DOZEN_TLS_CERTS") && err.contains("shop.localhost"),
        "{err}"
    );
}
