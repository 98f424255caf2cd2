//! Process sizes and build limits on the real `dozen server`: `ps` shows each process's size
//! and memory, `ps:resize` rolls a new size out (and refuses an unknown one, naming the
//! sizes), a web process that allocates past its size is killed by the kernel and restarted
//! with an R15 event in the app's log, and builds over their memory or disk limit fail saying
//! which limit and how to raise it.
//!
//! The limits need root and cgroup v1 or delegated cgroup v2. Where the server reports that it
//! cannot enforce them, the tests that depend on enforcement say so and pass, except under
//! `CI`, where that fails them.

mod support;

use support::server::Server;
use support::*;

/// A web process that answers `ok`, and on `/hog` holds 300 MB more.
const SERVER_PY: &str = r#"import http.server, os
held = []
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/hog":
            for _ in range(300):
                held.append(bytearray(1 << 20))
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

fn web_app() -> App {
    let app = App::with("web: python3 server.py\n");
    app.write("server.py", SERVER_PY);
    app
}

/// Whether this host enforces limits, from what `ps:resize` says; under `CI`, it must.
fn enforced(server: &Server, app: &str) -> bool {
    let v = server.json(&["ps:resize", "-a", app]);
    match v["warning"].as_str() {
        None => true,
        Some(w) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but the server enforces no limits: {w}")
        }
        Some(w) => {
            eprintln!("not checking enforcement on this host: {w}");
            false
        }
    }
}

fn web_1(server: &Server, app: &str) -> serde_json::Value {
    let ps = server.json(&["ps", "-a", app]);
    ps.as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "web.1")
        .cloned()
        .unwrap_or_else(|| panic!("no web.1 in {ps}"))
}

#[test]
fn a_web_process_over_its_size_is_killed_restarted_and_logged() {
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let app = web_app();
    server.deploy("shop", app.path());
    server.await_state("shop", "web.1", "up");

    // The default size, and the memory the process uses now.
    let p = web_1(&server, "shop");
    assert_eq!(p["size"], "1x", "{p}");
    assert_eq!(p["memory_limit"], 512u64 << 20, "{p}");
    let on = enforced(&server, "shop");
    if on {
        let used = p["memory"].as_u64().expect("memory of a running process");
        assert!((1 << 20..512 << 20).contains(&used), "{p}");
    }
    let table = server.ok(&["ps", "-a", "shop"]);
    assert!(
        table.contains("SIZE") && table.contains("MEMORY"),
        "{table}"
    );
    assert!(
        table.contains("1x") && table.contains("/ 512 MiB"),
        "{table}"
    );

    // An unknown size is refused, naming every size; nothing changes.
    let bad = server.client(&["ps:resize", "-a", "shop", "web=huge"]);
    assert_ne!(bad.code(), Some(0), "{bad:?}");
    assert!(
        bad.stderr.contains("web=huge: unknown size `huge`; the sizes are: tiny (128 MiB, 0.25 CPU, 64 processes), 1x (512 MiB"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("performance-l (14 GiB"),
        "{}",
        bad.stderr
    );
    let bad = server.client(&["ps:resize", "-a", "shop", "worker=2x"]);
    assert!(
        bad.stderr.contains("no process type `worker`"),
        "{}",
        bad.stderr
    );
    assert_eq!(web_1(&server, "shop")["size"], "1x");

    // Resized: the new web process runs at the new size.
    let out = server.ok(&["ps:resize", "-a", "shop", "web=tiny"]);
    assert!(
        out.contains("web") && out.contains("tiny") && out.contains("128 MiB"),
        "{out}"
    );
    server.await_state("shop", "web.1", "up");
    let p = web_1(&server, "shop");
    assert_eq!(
        (&p["size"], &p["memory_limit"]),
        (&"tiny".into(), &(128u64 << 20).into())
    );
    let types = server.ok(&["ps:type", "-a", "shop"]);
    assert!(
        types
            .lines()
            .any(|l| l.starts_with("web") && l.contains("tiny")),
        "{types}"
    );
    if !on {
        return;
    }

    // 300 MB in a 128 MiB process: the kernel kills it, the log says so, it comes back.
    let _ = support::server::http_get(server.router_port, "shop.localhost", "/hog");
    let line = server.await_log("shop", "R15");
    assert!(
        line.contains("web.1: Error R15 (memory quota vastly exceeded): used 128 MiB of 128 MiB (size tiny; for more memory: dozen ps:resize web=1x); killed by the kernel; restarting"),
        "{line}"
    );
    await_condition("web.1 to be up again after its restart", || {
        let p = web_1(&server, "shop");
        p["state"] == "up" && p["restarts"].as_u64().unwrap_or(0) >= 1
    });
    let (status, body) = server.get("shop.localhost", "/");
    assert_eq!((status, body.as_slice()), (200, b"ok\n".as_slice()));
}

#[test]
fn a_build_over_the_disk_limit_fails_saying_how_to_raise_it() {
    let server = Server::start_with(&[("DOZEN_BUILD_DISK", "20MiB")]);
    server.ok(&["apps:create", "shop"]);
    let tag = unique_tag();
    let app = web_app();
    app.write(
        "dozen.toml",
        &format!("[build]\ncommand = \"head -c 60000000 /dev/zero > big.bin && sleep 60.{tag}\"\n"),
    );
    let out = server.client(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        app.path().to_str().expect("path"),
    ]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "over its limit of 20MiB (DOZEN_BUILD_DISK), and was stopped during `head -c 60000000"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("e.g. DOZEN_BUILD_DISK=40MiB"),
        "{}",
        out.stderr
    );
    assert!(processes_matching(&format!("sleep 60.{tag}")).is_empty());
    let releases = server.json(&["releases", "-a", "shop"]);
    assert_eq!(releases.as_array().map(Vec::len), Some(0), "{releases}");
}

#[test]
fn a_build_over_the_memory_limit_is_killed_saying_which_limit() {
    let server = Server::start_with(&[("DOZEN_BUILD_MEMORY", "64MiB")]);
    server.ok(&["apps:create", "shop"]);
    if !enforced(&server, "shop") {
        return;
    }
    let app = web_app();
    app.write(
        "dozen.toml",
        "[build]\ncommand = \"python3 -c 'b=[bytearray(1<<20) for _ in range(200)]'\"\n",
    );
    let out = server.client(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        app.path().to_str().expect("path"),
    ]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("build: Error R15 (memory quota vastly exceeded): used 64 MiB of 64 MiB (the build's memory limit: raise DOZEN_BUILD_MEMORY on the server); killed by the kernel"),
        "{all}"
    );
    // The shell around the step reports the kill as 128 + SIGKILL.
    assert!(
        out.stderr.contains("deploy failed: build step `python3 -c") && out.stderr.contains("137"),
        "{}",
        out.stderr
    );
}

#[test]
fn sizes_declared_in_dozen_toml_apply_until_resized() {
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let app = web_app();
    app.write("dozen.toml", "[sizes]\nweb = \"standard-2x\"\n");
    server.deploy("shop", app.path());
    server.await_state("shop", "web.1", "up");
    let p = web_1(&server, "shop");
    assert_eq!(
        (&p["size"], &p["memory_limit"]),
        (&"2x".into(), &(1u64 << 30).into())
    );
    // ps:resize wins over the file, and stays for the next deploy.
    server.ok(&["ps:resize", "-a", "shop", "web=1x"]);
    server.deploy("shop", app.path());
    server.await_state("shop", "web.1", "up");
    assert_eq!(web_1(&server, "shop")["size"], "1x");
}
