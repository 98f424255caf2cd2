//! Log drains of a real `dozen server`, with real receivers written here: a TCP syslog
//! listener, a TLS syslog listener and an HTTPS endpoint taking logplex batches, both with a
//! certificate made in the test (rcgen) and trusted through `DOZEN_DRAIN_CA`.
//!
//! What a user checks: every line an app prints arrives once and in order per process, the
//! platform's events arrive with their source, a receiver that was down gets the backlog (also
//! across a restart of the server), and one that stayed down past the queue's bound is told
//! how many messages were dropped.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::Value;
use support::await_condition;
use support::server::Server;

/// One RFC 5424 message as received.
#[derive(Debug, Clone)]
struct Msg {
    app_name: String,
    procid: String,
    msgid: String,
    text: String,
}

fn parse(raw: &[u8]) -> Msg {
    let s = String::from_utf8_lossy(raw);
    // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
    let f: Vec<&str> = s.splitn(8, ' ').collect();
    assert!(
        f.len() == 8 && f[0].starts_with('<') && f[0].ends_with(">1"),
        "not an RFC 5424 message: {s:?}"
    );
    Msg {
        app_name: f[3].to_string(),
        procid: f[4].to_string(),
        msgid: f[5].to_string(),
        text: f[7].to_string(),
    }
}

/// What a receiver got, and anything wrong it saw in the requests.
#[derive(Clone, Default)]
struct Inbox {
    messages: Arc<Mutex<Vec<Msg>>>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Inbox {
    fn all(&self) -> Vec<Msg> {
        self.messages.lock().unwrap().clone()
    }

    fn problem(&self, p: String) {
        self.problems.lock().unwrap().push(p);
    }

    /// Wait until a message passes `pred`; that message.
    fn await_message(&self, what: &str, pred: impl Fn(&Msg) -> bool) -> Msg {
        let found = std::cell::RefCell::new(None);
        await_condition(what, || {
            let all = self.messages.lock().unwrap();
            *found.borrow_mut() = all.iter().find(|m| pred(m)).cloned();
            found.borrow().is_some()
        });
        found.into_inner().expect("found")
    }

    /// The line numbers (`n=K`) `procid` printed, as received.
    fn numbers(&self, procid: &str) -> Vec<usize> {
        numbers(&self.all(), procid)
    }
}

fn numbers(all: &[Msg], procid: &str) -> Vec<usize> {
    all.iter()
        .filter(|m| m.app_name == "app" && m.procid == procid)
        .filter_map(|m| m.text.strip_prefix("n=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// Split RFC 6587 octet-counted frames off the front of `buf`.
fn take_frames(buf: &mut Vec<u8>, inbox: &Inbox) {
    let mut used = 0;
    let mut got = Vec::new();
    loop {
        let rest = &buf[used..];
        let Some(sp) = rest.iter().position(|b| *b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            inbox.problem(format!(
                "not an octet count: {:?}",
                String::from_utf8_lossy(&rest[..sp.min(40)])
            ));
            buf.clear();
            return;
        };
        if rest.len() < sp + 1 + len {
            break;
        }
        got.push(parse(&rest[sp + 1..sp + 1 + len]));
        used += sp + 1 + len;
    }
    buf.drain(..used);
    inbox.messages.lock().unwrap().extend(got);
}

fn read_syslog(mut s: impl Read, inbox: Inbox) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        take_frames(&mut buf, &inbox);
    }
}

/// A syslog listener on `port`, over TLS when `tls` is given.
fn syslog_receiver(port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> Inbox {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the syslog receiver");
    let inbox = Inbox::default();
    let into = inbox.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let into = into.clone();
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                Some(config) => {
                    let conn = rustls::ServerConnection::new(config).expect("tls");
                    read_syslog(rustls::StreamOwned::new(conn, tcp), into);
                }
                None => read_syslog(tcp, into),
            });
        }
    });
    inbox
}

/// An HTTPS endpoint on `port` taking logplex batches that must carry `authorization`.
fn https_receiver(port: u16, tls: Arc<rustls::ServerConfig>, authorization: String) -> Inbox {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the HTTPS receiver");
    let inbox = Inbox::default();
    let into = inbox.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (into, tls, authorization) = (into.clone(), tls.clone(), authorization.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(tls).expect("tls");
                serve_http(rustls::StreamOwned::new(conn, tcp), &into, &authorization);
            });
        }
    });
    inbox
}

fn serve_http(mut s: impl Read + Write, inbox: &Inbox, authorization: &str) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut more = |s: &mut dyn Read, buf: &mut Vec<u8>| match s.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    };
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            if !more(&mut s, &mut buf) {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + 4 + len {
            if !more(&mut s, &mut buf) {
                return;
            }
        }
        if !head.starts_with("POST /logplex ") {
            inbox.problem(format!("request line: {:?}", head.lines().next()));
        }
        if header("content-type").as_deref() != Some("application/logplex-1") {
            inbox.problem(format!("content-type: {:?}", header("content-type")));
        }
        if header("authorization").as_deref() != Some(authorization) {
            inbox.problem("a request without the drain's credentials".into());
        }
        let mut body = buf[head_end + 4..head_end + 4 + len].to_vec();
        let before = inbox.messages.lock().unwrap().len();
        take_frames(&mut body, inbox);
        let got = inbox.messages.lock().unwrap().len() - before;
        if header("logplex-msg-count") != Some(got.to_string()) {
            inbox.problem(format!(
                "Logplex-Msg-Count {:?} for {got} messages",
                header("logplex-msg-count")
            ));
        }
        buf.drain(..head_end + 4 + len);
        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .and_then(|()| s.flush())
            .is_err()
        {
            return;
        }
    }
}

/// A CA (its PEM file, for `DOZEN_DRAIN_CA`) and a server config with a certificate for
/// `localhost` it signed.
struct Tls {
    dir: tempfile::TempDir,
    config: Arc<rustls::ServerConfig>,
}

impl Tls {
    fn new() -> Tls {
        use rustls::pki_types::pem::PemObject;
        let dir = tempfile::tempdir().expect("tmp");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("ca");
        let key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .expect("leaf")
            .signed_by(&key, &ca)
            .expect("sign");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write the CA");
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
            .expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .expect("cert");
        Tls {
            dir,
            config: Arc::new(config),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// An app with a web process (Python's standard library), a `printer` that prints `LINES`
/// (a config var, default 50000) numbered lines, padded to about 100 bytes, then waits, and a
/// `crasher` that exits with status 3 (none run but web until scaled).
fn printer_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect(name);
    write(
        "Procfile",
        "web: python3 web.py\nprinter: python3 printer.py\ncrasher: python3 crash.py\n",
    );
    write(
        "crash.py",
        "import sys\nprint('crashing on purpose')\nsys.exit(3)\n",
    );
    write(
        "web.py",
        "import http.server, os\n\
         http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), \
         http.server.SimpleHTTPRequestHandler).serve_forever()\n",
    );
    write(
        "printer.py",
        "import os, sys, time\n\
         out = sys.stdout\n\
         for i in range(int(os.environ.get('LINES', '50000'))):\n\
         \x20   out.write('n=%d %s\\n' % (i, 'x' * 90))\n\
         out.flush()\n\
         while True:\n\
         \x20   time.sleep(3600)\n",
    );
    dir
}

fn drains_json(server: &Server, app: &str) -> Vec<Value> {
    server
        .json(&["drains", "-a", app])
        .as_array()
        .cloned()
        .expect("a list")
}

fn drain_of(list: &[Value], port: u16) -> &Value {
    list.iter()
        .find(|d| {
            d["url"]
                .as_str()
                .is_some_and(|u| u.contains(&format!(":{port}")))
        })
        .unwrap_or_else(|| panic!("no drain on port {port} in {list:?}"))
}

/// Wait until `dozen logs` of `app` holds the last line of `printer.1`.
fn await_printed(server: &Server, app: &str, last: usize) {
    server.await_log(app, &format!("n={last} "));
}

#[test]
fn every_line_reaches_tcp_tls_and_https_drains_once_in_order_with_the_platform_events() {
    let tls = Tls::new();
    let ca = tls.ca();
    let server = Server::start_with(&[("DOZEN_DRAIN_CA", ca.to_str().expect("utf-8"))]);
    let (tcp_port, tls_port, https_port) = (
        support::free_port(),
        support::free_port(),
        support::free_port(),
    );
    let tcp = syslog_receiver(tcp_port, None);
    let tls_inbox = syslog_receiver(tls_port, Some(tls.config.clone()));
    let https = https_receiver(https_port, tls.config.clone(), basic("logs", "s3cret-pw"));

    server.ok(&["apps:create", "shop"]);
    let urls = [
        format!("syslog://127.0.0.1:{tcp_port}"),
        format!("syslog+tls://localhost:{tls_port}"),
        format!("https://logs:s3cret-pw@localhost:{https_port}/logplex"),
    ];
    for url in &urls {
        let out = server.client(&["drains:add", url, "-a", "shop"]);
        let out = out.expect_code(0, &["drains:add"]);
        assert!(out.stdout.contains("added drain drn_"), "{}", out.stdout);
        assert!(!out.stdout.contains("s3cret-pw"), "{}", out.stdout);
    }
    let app = printer_app();
    let log = server.deploy("shop", app.path());
    assert!(!log.contains("s3cret-pw"), "{log}");
    server.ok(&["ps:scale", "printer=2", "-a", "shop"]);
    server.await_state("shop", "web.1", "up");
    let (status, _) = server.get("shop.localhost", "/");
    assert_eq!(status, 200);

    let expected: Vec<usize> = (0..50_000).collect();
    for (name, inbox) in [("tcp", &tcp), ("tls", &tls_inbox), ("https", &https)] {
        for p in ["printer.1", "printer.2"] {
            await_condition(
                &format!("50000 lines of {p} at the {name} receiver"),
                || inbox.numbers(p).len() >= 50_000,
            );
            // Exactly once, in order: nothing more arrives after the last line either (the
            // stream goes on with the router's events below).
            assert!(
                inbox.numbers(p) == expected,
                "{name}: {p} lines out of order or twice"
            );
        }
        // The platform's events, with the source `dozen logs --source` shows.
        inbox.await_message(&format!("the router line at {name}"), |m| {
            m.app_name == "dozen" && m.text.starts_with("router: ")
        });
        inbox.await_message(&format!("the scaling event at {name}"), |m| {
            m.app_name == "dozen" && m.text.contains("scaled to")
        });
        inbox.await_message(&format!("the release event at {name}"), |m| {
            m.app_name == "dozen" && m.text.contains("is live")
        });
        inbox.await_message(&format!("the build event at {name}"), |m| {
            m.app_name == "dozen" && m.text.starts_with("build ") && m.text.contains(" started (")
        });
        inbox.await_message(&format!("the web process's output at {name}"), |m| {
            m.app_name == "app" && m.procid == "web.1" && m.text.contains("GET / ")
        });
        assert!(
            inbox.all().iter().all(|m| m.msgid == "-"),
            "{name}: an unexpected L10"
        );
        let problems = inbox.problems.lock().unwrap().clone();
        assert!(problems.is_empty(), "{name}: {problems:?}");
        // The drains' own events name them with the password hidden.
        inbox.await_message(&format!("the drain-added event at {name}"), |m| {
            m.app_name == "dozen" && m.text.contains("added: https://logs:***@localhost")
        });
        assert!(
            inbox.all().iter().all(|m| !m.text.contains("s3cret-pw")),
            "{name}: the password in a message"
        );
    }

    // A crash and the restart that follows are platform events too.
    server.ok(&["ps:scale", "crasher=1", "-a", "shop"]);
    for (name, inbox) in [("tcp", &tcp), ("tls", &tls_inbox), ("https", &https)] {
        inbox.await_message(&format!("the crasher's last words at {name}"), |m| {
            m.app_name == "app" && m.procid == "crasher.1" && m.text == "crashing on purpose"
        });
        inbox.await_message(&format!("the crash at {name}"), |m| {
            m.app_name == "dozen" && m.text.starts_with("crasher.1 restarting in ")
        });
    }
    server.ok(&["ps:scale", "crasher=0", "-a", "shop"]);

    // `dozen drains`: each drain up, with its numbers, and the password hidden.
    let table = server.ok(&["drains", "-a", "shop"]);
    assert!(!table.contains("s3cret-pw"), "{table}");
    assert!(table.contains("https://logs:***@localhost"), "{table}");
    let list = drains_json(&server, "shop");
    assert_eq!(list.len(), 3, "{list:?}");
    for d in &list {
        assert_eq!(d["state"], "up", "{d}");
        assert!(d["delivered"].as_u64().unwrap() >= 100_000, "{d}");
        assert_eq!(d["dropped"], 0, "{d}");
    }

    // Removing a drain stops it and removes its queue; destroying the app removes the rest.
    let https_drain = drain_of(&list, https_port)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let queues = server.data.path().join("drains").join("shop");
    assert!(queues.join(&https_drain).is_dir());
    server.ok(&["drains:remove", &https_drain, "-a", "shop"]);
    assert!(!queues.join(&https_drain).exists(), "the queue stayed");
    let out = server.client(&["drains:remove", &https_drain, "-a", "shop"]);
    let out = out.expect_code(1, &["drains:remove"]);
    assert!(out.stderr.contains(&https_drain), "{}", out.stderr);
    assert_eq!(drains_json(&server, "shop").len(), 2);
    // The server's own log (audit lines included) never shows the password.
    let mut seen = Vec::new();
    server.await_output("action=drains:remove", &mut seen);
    let adds = seen
        .iter()
        .filter(|l| l.contains("action=drains:add"))
        .count();
    assert_eq!(adds, 3, "{seen:?}");
    assert!(seen.iter().all(|l| !l.contains("s3cret-pw")), "{seen:?}");
    server.ok(&["apps:destroy", "-a", "shop", "--confirm", "shop"]);
    assert!(
        !queues.exists(),
        "the app's queues stayed after apps:destroy"
    );
}

#[test]
fn bad_drain_urls_are_refused_naming_the_field_and_never_showing_the_password() {
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    for (url, why) in [
        ("ftp://user:hunter2@logs.example.com/", "scheme"),
        (
            "syslog://user:hunter2@logs.example.com:514",
            "no user or password",
        ),
        ("hunter2", "not a URL"),
    ] {
        let out = server.client(&["drains:add", url, "-a", "shop"]);
        let out = out.expect_code(1, &["drains:add"]);
        assert!(
            out.stderr.contains("url") && out.stderr.contains(why),
            "{url}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    }
    let url = "https://u:hunter2@logs.example.com/x";
    server.ok(&["drains:add", url, "-a", "shop"]);
    let out = server.client(&["drains:add", url, "-a", "shop"]);
    let out = out.expect_code(1, &["drains:add"]);
    assert!(
        out.stderr.contains("already has this URL"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    assert_eq!(drains_json(&server, "shop").len(), 1);
    let out = server.client(&["drains", "-a", "nope"]);
    out.expect_code(1, &["drains"]);
}

#[test]
fn a_drain_that_was_down_gets_its_backlog_and_one_down_past_the_bound_gets_the_dropped_count() {
    let mut server = Server::start_with(&[("DOZEN_DRAIN_QUEUE", "1MiB")]);
    let app = printer_app();
    // calm: 2000 lines (about 250 KB of messages) for a receiver that is down, across a
    // restart of the server. flood: 40000 lines (about 5 MB) for one down past the bound.
    let (calm_port, flood_port) = (support::free_port(), support::free_port());
    for (name, lines, port) in [("calm", "2000", calm_port), ("flood", "40000", flood_port)] {
        server.ok(&["apps:create", name]);
        server.ok(&["config:set", &format!("LINES={lines}"), "-a", name]);
        let url = format!("syslog://127.0.0.1:{port}");
        server.ok(&["drains:add", &url, "-a", name]);
        server.deploy(name, app.path());
        server.ok(&["ps:scale", "printer=1", "-a", name]);
    }
    await_printed(&server, "calm", 1999);
    await_printed(&server, "flood", 39_999);
    await_condition("flood's drain to drop messages", || {
        let list = drains_json(&server, "flood");
        list[0]["dropped"].as_u64().unwrap_or(0) > 0 && list[0]["state"] == "down"
    });
    let calm = drains_json(&server, "calm");
    assert_eq!(calm[0]["state"], "down", "{calm:?}");
    assert_eq!(calm[0]["dropped"], 0, "{calm:?}");

    let dropped_before = drains_json(&server, "flood")[0]["dropped"]
        .as_u64()
        .unwrap();

    // The server stops and starts again while both receivers are still down: the backlogs
    // are on disk, and the drains start with the server. (The printers are stopped first, so
    // that they do not print again when the server restores its processes.)
    server.ok(&["ps:scale", "printer=0", "-a", "calm"]);
    server.ok(&["ps:scale", "printer=0", "-a", "flood"]);
    server.stop();
    server.boot(std::process::Stdio::inherit());
    let calm_inbox = syslog_receiver(calm_port, None);
    await_condition("calm's 2000 lines after the restart", || {
        calm_inbox.numbers("printer.1").len() >= 2000
    });
    assert!(
        calm_inbox.numbers("printer.1") == (0..2000).collect::<Vec<_>>(),
        "calm's backlog out of order, with a gap, or twice"
    );
    assert!(
        calm_inbox.all().iter().all(|m| m.msgid == "-"),
        "an L10 for calm"
    );
    calm_inbox.await_message("calm's release event from before the restart", |m| {
        m.app_name == "dozen" && m.text.contains("is live")
    });

    // flood: the oldest were dropped; once back, the receiver is told how many, first.
    let flood_inbox = syslog_receiver(flood_port, None);
    let l10 = flood_inbox.await_message("the L10 event", |m| m.msgid == "L10");
    assert_eq!(l10.app_name, "dozen");
    assert!(l10.text.contains("dropped"), "{}", l10.text);
    let reported: u64 = l10
        .text
        .split("dropped ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {:?}", l10.text));
    await_condition("flood's last line", || {
        flood_inbox.numbers("printer.1").contains(&39_999)
    });
    let all = flood_inbox.all();
    let first_run = numbers(&all, "printer.1");
    let from = first_run[0];
    assert!(from > 0, "nothing of the flood was dropped");
    assert!(
        first_run == (from..40_000).collect::<Vec<_>>(),
        "the flood's lines after the drop are out of order, with a gap, or twice"
    );
    assert!(
        reported >= from as u64,
        "{from} lines are missing but the L10 says {reported}"
    );
    assert!(
        reported >= dropped_before,
        "the L10 says {reported}, dozen drains said {dropped_before}"
    );
    assert!(all[0].msgid == "L10", "the L10 came after {:?}", all[0]);
    assert_eq!(
        all.iter().filter(|m| m.msgid == "L10").count(),
        1,
        "the drop was reported more than once"
    );
}
