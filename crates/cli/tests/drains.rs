//! Log drains of a real `dozen server`, with real receivers written here: a TCP syslog
//! listener, a TLS syslog listener and an HTTPS endpoint taking logplex batches, both with a
//! certificate made in the test (rcgen) and trusted through `DOZEN_DRAIN_CA`.
//!
//! What a user checks: every line an app prints arrives once and in order per process, the
//! platform's events arrive with their source, a receiver that was down gets the backlog (also
//! across a restart of the server), and one that stayed down past the queue's bound is told
//! how many messages were dropped.

mod support;

#[path = "support/receivers.rs"]
mod receivers;

use receivers::{Tls, basic, https_receiver, numbers, syslog_receiver};
use serde_json::Value;
use support::await_condition;
use support::server::Server;

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
    let url = "https://u:hunter2@logs.example.com/x?token=hunter2";
    let added = server.ok(&["drains:add", url, "-a", "shop"]);
    assert!(!added.contains("hunter2"), "{added}");
    let listed = server.ok(&["drains", "-a", "shop"]);
    assert!(
        listed.contains("https://u:***@logs.example.com/x?***") && !listed.contains("hunter2"),
        "{listed}"
    );
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
