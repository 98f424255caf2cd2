//! A real `dozen server` for a test (SQLite store in a temp data dir), the client commands that
//! talk to it, HTTP through its router, and throwaway PostgreSQL databases for the apps it runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{HANG, Output, await_condition, dozen_bin, free_port, line_reader};

pub const TOKEN: &str = "dzn_test_token_0123456789abcdef";

/// The PostgreSQL server the tests may create databases on.
pub fn pg_admin_url() -> String {
    std::env::var("DOZEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database, dropped (with its connections) when this goes.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(prefix: &str) -> PgDatabase {
        let name = format!("{prefix}_{}", super::unique_tag());
        psql(&pg_admin_url(), &format!("CREATE DATABASE {name}"));
        let url = match pg_admin_url().rsplit_once('/') {
            Some((head, _)) => format!("{head}/{name}"),
            None => panic!("DOZEN_TEST_DATABASE_URL needs a database name"),
        };
        PgDatabase { name, url }
    }

    /// The rows of `sql`, one line each, fields separated by `|`.
    pub fn query(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &pg_admin_url(),
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

#[track_caller]
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-t", "-A", "-c", sql])
        .output()
        .expect("psql (the PostgreSQL client) must be installed for these tests");
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `dozen server` with its store in a temp dir, and a client environment for it.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub router_port: u16,
    pub data: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
    /// What the server printed up to its line that it is listening.
    pub startup: Vec<String>,
    /// More environment for the server and its admin one-offs.
    env: Vec<(String, String)>,
    /// Where clients reach the API (`https://localhost:PORT` when it serves TLS).
    pub url: String,
}

impl Server {
    pub fn start() -> Server {
        Server::launch(&[], Stdio::inherit()).0
    }

    /// A server with more environment; with `DOZEN_API_TLS_CERT` in it, clients use
    /// `https://localhost:PORT`.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Server::launch(env, Stdio::inherit()).0
    }

    /// A server whose stderr (where it logs the causes of its internal errors) is read line by
    /// line, also copied to the test's stderr.
    pub fn start_reading_stderr() -> (Server, mpsc::Receiver<String>) {
        let (s, stderr) = Server::launch(&[], Stdio::piped());
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = stderr {
            let lines = line_reader(stderr);
            std::thread::spawn(move || {
                for l in lines {
                    eprintln!("{l}");
                    let _ = tx.send(l);
                }
            });
        }
        (s, rx)
    }

    fn launch(env: &[(&str, &str)], stderr: Stdio) -> (Server, Option<std::process::ChildStderr>) {
        let mut s = Server::unstarted(env);
        let stderr = s.boot(stderr);
        (s, stderr)
    }

    /// A server's data directory and environment, not started yet (for admin one-offs that
    /// work before the first start, like `backup:restore`); [`Server::boot`] starts it.
    pub fn unstarted(env: &[(&str, &str)]) -> Server {
        let data = tempfile::tempdir().expect("tmp");
        let port = free_port();
        let tls = env.iter().any(|(k, _)| *k == "DOZEN_API_TLS_CERT");
        Server {
            child: None,
            port,
            router_port: free_port(),
            data,
            lines: mpsc::channel().1,
            startup: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            url: if tls {
                format!("https://localhost:{port}")
            } else {
                format!("http://127.0.0.1:{port}")
            },
        }
    }

    /// `dozen migrate`, then start the server and wait until it listens.
    pub fn boot(&mut self, stderr: Stdio) -> Option<std::process::ChildStderr> {
        let migrate = self.admin(&["migrate"]).output().expect("migrate");
        assert!(
            migrate.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&migrate.stderr)
        );
        let mut child = self
            .admin(&["server"])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("server");
        let rx = line_reader(child.stdout.take().expect("stdout"));
        let stderr = child.stderr.take();
        self.child = Some(child);
        self.lines = rx;
        loop {
            match self.lines.recv_timeout(HANG) {
                Ok(l) if l.contains("listening") => {
                    self.startup.push(l);
                    break;
                }
                Ok(l) => self.startup.push(l),
                Err(e) => panic!("the server never said it was listening: {e}"),
            }
        }
        stderr
    }

    /// Stop the server (SIGTERM, then wait); its data directory stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// What this server names its apps' system users when it runs as root: `<prefix><app>`,
    /// with a prefix of its own, so that servers of tests running at once on one host never
    /// share (nor remove) each other's users.
    pub fn user_prefix(&self) -> String {
        format!("dz{}-", self.port)
    }

    /// The system user app `app` runs as (when the server runs as root).
    pub fn app_user(&self, app: &str) -> String {
        format!("{}{app}", self.user_prefix())
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the server is running")
    }

    /// Wait for a line of the server's own output that contains `needle`; that line. Every
    /// line read on the way is returned in `seen`.
    pub fn await_output(&self, needle: &str, seen: &mut Vec<String>) -> String {
        loop {
            match self.lines.recv_timeout(HANG) {
                Ok(l) if l.contains(needle) => {
                    seen.push(l.clone());
                    return l;
                }
                Ok(l) => seen.push(l),
                Err(e) => panic!("the server never printed {needle:?} ({e}); it printed {seen:?}"),
            }
        }
    }

    /// `dozen ARGS` with the server's environment (admin one-offs on the server host).
    pub fn admin(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dozen_bin());
        c.args(args)
            .env("PORT", self.port.to_string())
            .env("DOZEN_ROUTER_PORT", self.router_port.to_string())
            .env("DOZEN_DATA_DIR", self.data.path())
            .env("DOZEN_API_TOKEN", TOKEN)
            .env("DOZEN_BIND", "127.0.0.1")
            .env("DOZEN_APP_USER_PREFIX", self.user_prefix())
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// `dozen ARGS` as a client of this server, to spawn.
    pub fn client_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dozen_bin());
        c.args(args)
            .env("DOZEN_URL", &self.url)
            .env_remove("DOZEN_CA_CERT")
            .env("DOZEN_API_TOKEN", TOKEN)
            .env_remove("DOZEN_APP")
            .env("NO_COLOR", "1");
        c
    }

    /// `dozen ARGS` as a client of this server, run to completion.
    pub fn client(&self, args: &[&str]) -> Output {
        let out = self
            .client_command(args)
            .stdin(Stdio::null())
            .output()
            .expect("client");
        Output::from(out)
    }

    /// The stdout of `dozen ARGS`, after asserting it exited 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        self.client(args).expect_code(0, args).stdout
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).expect("json")
    }

    /// `dozen deploy -a APP -d DIR`, asserted to succeed; its output (the build log).
    #[track_caller]
    pub fn deploy(&self, app: &str, dir: &Path) -> String {
        let dir = dir.to_str().expect("utf-8 path");
        let args = ["deploy", "-a", app, "-d", dir];
        let out = self.client(&args).expect_code(0, &args);
        assert!(out.stdout.contains("is live"), "{}", out.stdout);
        format!("{}{}", out.stdout, out.stderr)
    }

    /// Wait until process `name` of `app` is in `state` (`up`: a web process in rotation;
    /// `running`: any other process).
    pub fn await_state(&self, app: &str, name: &str, state: &str) {
        await_condition(&format!("{name} of {app} to be {state}"), || {
            let ps = self.json(&["ps", "-a", app]);
            ps.as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == name && p["state"] == state)
        });
    }

    /// Wait until `dozen logs -a APP` holds a line containing `needle`; that line.
    pub fn await_log(&self, app: &str, needle: &str) -> String {
        let found = std::cell::RefCell::new(String::new());
        await_condition(&format!("{needle:?} in the logs of {app}"), || {
            let logs = self.ok(&["logs", "-a", app, "-n", "1500"]);
            match logs.lines().find(|l| l.contains(needle)) {
                Some(l) => {
                    *found.borrow_mut() = l.to_string();
                    true
                }
                None => false,
            }
        });
        found.into_inner()
    }

    /// GET `path` through the router with `Host: HOST`: the status and the body's bytes.
    pub fn get(&self, host: &str, path: &str) -> (u16, Vec<u8>) {
        http_get(self.router_port, host, path)
            .unwrap_or_else(|e| panic!("GET {path} for {host} through the router: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP/1.0 GET on a loopback port: the status and the body.
pub fn http_get(port: u16, host: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&buf[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, buf[split + 4..].to_vec()))
}

/// A copy of `src` (a fixture directory) in a fresh temp dir, outside any git checkout, so a
/// deploy packs exactly its files (less its `.dozenignore`).
pub fn copy_fixture(src: &Path) -> tempfile::TempDir {
    let dst = tempfile::tempdir().expect("tmp");
    copy_dir(src, dst.path());
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    for entry in std::fs::read_dir(src).expect("read fixture dir").flatten() {
        let to = dst.join(entry.file_name());
        let ty = entry.file_type().expect("file type");
        if ty.is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy fixture file");
        }
    }
}
