//! `dozen start` end to end: the real binary, real processes, real signals.

mod support;

use support::*;

#[test]
fn port_plan_follows_foreman() {
    let app = App::with("web: echo \"$PS $PORT\"\nworker: echo \"$PS $PORT\"\n");
    let out = app.output(&[
        "start",
        "--json",
        "--restart",
        "on-failure",
        "-p",
        "7000",
        "-m",
        "web=2,worker=1",
    ]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.lines_of("web.1"), ["web.1 7000"]);
    assert_eq!(out.lines_of("web.2"), ["web.2 7001"]);
    assert_eq!(out.lines_of("worker.1"), ["worker.1 7100"]);
}

#[test]
fn port_base_comes_from_port_variable() {
    let app = App::with("web: echo $PORT\n");
    let out = app
        .dozen(&["start", "--json"])
        .env("PORT", "6100")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#""proc":"web.1","stream":"stdout","line":"6100""#),
        "{stdout}"
    );
}

#[test]
fn only_named_types_run_with_their_procfile_ports() {
    let app =
        App::with("web: echo web $PORT\nworker: echo worker $PORT\nclock: echo clock $PORT\n");
    let out = app.output(&["start", "--json", "--restart", "on-failure", "clock"]);
    assert_eq!(out.code(), Some(0));
    assert_eq!(out.lines_of("clock.1"), ["clock 5200"]);
    assert!(out.lines_of("web.1").is_empty());
}

#[test]
fn env_precedence_caller_then_files_then_port_and_ps() {
    let app = App::with("web: echo \"$FROM_CALLER|$OVERRIDDEN|$LATER|$PORT|$PS|$EXPANDED\"\n");
    app.write(
        ".env",
        "OVERRIDDEN=from-file\nLATER=first\nPORT=1\nPS=nope\n",
    );
    app.write(
        "more.env",
        "LATER=second\nEXPANDED=${OVERRIDDEN}+${FROM_CALLER}\n",
    );
    let out = app
        .dozen(&["start", "--json", "-e", ".env,more.env"])
        .env("FROM_CALLER", "caller")
        .env("OVERRIDDEN", "caller")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#""line":"caller|from-file|second|5000|web.1|from-file+caller""#),
        "{stdout}"
    );
}

#[test]
fn dotenv_forms_reach_the_process() {
    let app = App::with(
        "web: python3 -c 'import os, json; print(json.dumps({k: os.environ.get(k) for k in sorted(os.environ) if k.startswith(\"T_\")}))'\n",
    );
    app.write(
        ".env",
        concat!(
            "# a comment\n",
            "T_PLAIN=value\n",
            "export T_EXPORTED=yes\n",
            "T_SPACES = spaced out  \n",
            "T_SINGLE='literal $HOME \\n'\n",
            "T_DOUBLE=\"tab\\there \\\"q\\\" back\\\\slash \\$5\"\n",
            "T_MULTI=\"line one\n",
            "line two\"\n",
            "T_COMMENT=kept # dropped\n",
            "T_HASH=http://x/#frag\n",
            "T_QUOTED_HASH=\"a # b\"\n",
            "T_EMPTY=\n",
            "T_EMPTY_QUOTED=\"\"\n",
            "T_REF=${T_PLAIN}-$T_EXPORTED\n",
            "T_DEFAULT=${T_UNSET:-fallback}\n",
            "T_DEFAULT_EMPTY=${T_EMPTY:-used}\n",
            "T_EQUALS=a=b=c\n",
        ),
    );
    let out = app.output(&["start", "--json"]);
    let line = &out.lines_of("web.1")[0];
    let got: serde_json::Value = serde_json::from_str(line).expect("json from app");
    let expect = serde_json::json!({
        "T_PLAIN": "value",
        "T_EXPORTED": "yes",
        "T_SPACES": "spaced out",
        "T_SINGLE": "literal $HOME \\n",
        "T_DOUBLE": "tab\there \"q\" back\\slash $5",
        "T_MULTI": "line one\nline two",
        "T_COMMENT": "kept",
        "T_HASH": "http://x/#frag",
        "T_QUOTED_HASH": "a # b",
        "T_EMPTY": "",
        "T_EMPTY_QUOTED": "",
        "T_REF": "value-yes",
        "T_DEFAULT": "fallback",
        "T_DEFAULT_EMPTY": "used",
        "T_EQUALS": "a=b=c",
    });
    assert_eq!(got, expect);
}

#[test]
fn first_exit_stops_the_rest_with_its_status() {
    let app = App::with("web: sleep 300\nbad: echo failing; exit 3\n");
    let out = app.output(&["start", "--json"]);
    assert_eq!(out.code(), Some(3), "{out:?}");
    let events = out.json();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "exited" && e["target"] == "bad.1" && e["code"] == 3)
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "exited" && e["target"] == "web.1" && e["signal"] == 15)
    );
}

#[test]
fn clean_stop_by_signal_exits_zero() {
    let app = App::with("web: echo ready; sleep 300\n");
    let mut run = app.spawn(&["start", "--no-timestamp"]);
    run.wait_for("web ready", |l| l.contains("web.1 | ready"));
    run.signal(libc::SIGINT);
    let (status, lines) = run.finish();
    assert_eq!(status.code(), Some(0), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("received SIGINT")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("web.1 was killed by SIGTERM")),
        "{lines:?}"
    );
}

#[test]
fn stubborn_process_is_killed_after_the_grace_period() {
    let app = App::with("web: trap '' TERM; echo ready; while :; do sleep 0.1; done\n");
    let mut run = app.spawn(&["start", "--json", "-t", "0.5"]);
    run.wait_for("ready", |l| l.contains("\"line\":\"ready\""));
    run.signal(libc::SIGTERM);
    let (status, lines) = run.finish();
    assert_eq!(status.code(), Some(0));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"event\":\"killed\"") && l.contains("\"signal\":9")),
        "{lines:?}"
    );
}

fn orphan_procfile(tag: &str) -> String {
    format!("web: bash -c 'echo ready; sleep 300.{tag} & setsid sleep 301.{tag} & wait'\n")
}

fn assert_orphans_reaped(cgroups: &str) {
    let tag = unique_tag();
    let app = App::with(&orphan_procfile(&tag));
    let mut cmd = app.dozen(&["start", "--no-timestamp"]);
    cmd.env("DOZEN_CGROUPS", cgroups);
    let mut run = Running::spawn(cmd);
    run.wait_for("ready", |l| l.contains("| ready"));
    await_condition("both sleeps to start", || {
        processes_starting(&format!("sleep 300.{tag}")).len() == 1
            && processes_starting(&format!("sleep 301.{tag}")).len() == 1
    });
    run.signal(libc::SIGTERM);
    let (status, lines) = run.finish();
    assert_eq!(status.code(), Some(0), "{lines:?}");
    // dozen has exited: nothing it started may remain, not even the setsid one.
    assert_eq!(
        processes_matching(&format!(".{tag}")),
        Vec::<i32>::new(),
        "{lines:?}"
    );
}

#[test]
fn no_orphans_after_stop_with_cgroups() {
    assert_orphans_reaped("on");
}

#[test]
fn no_orphans_after_stop_without_cgroups() {
    assert_orphans_reaped("off");
}

#[test]
fn sigkill_of_dozen_takes_its_processes_along() {
    sigkill_takes_orphans_along(None);
}

fn sigkill_takes_orphans_along(guardian: Option<&str>) {
    let tag = unique_tag();
    let app = App::with(&orphan_procfile(&tag));
    let mut cmd = app.dozen(&["start", "--no-timestamp"]);
    if let Some(g) = guardian {
        cmd.env("DOZEN_GUARDIAN", g);
    }
    let mut run = Running::spawn(cmd);
    run.wait_for("ready", |l| l.contains("| ready"));
    await_condition("both sleeps to start", || {
        processes_starting(&format!("sleep 301.{tag}")).len() == 1
            && processes_starting(&format!("sleep 300.{tag}")).len() == 1
    });
    run.signal(libc::SIGKILL);
    let _ = run.finish();
    await_condition("every process of the killed dozen to die", || {
        processes_matching(&format!(".{tag}")).is_empty()
    });
}

#[test]
fn sigkill_of_dozen_without_cgroups_kills_process_groups() {
    sigkill_kills_process_groups(None);
}

#[test]
fn sigkill_of_dozen_with_the_sh_guardian_kills_process_groups() {
    sigkill_kills_process_groups(Some("sh"));
}

#[test]
fn sigkill_of_dozen_with_the_sh_guardian_takes_cgroups_along() {
    sigkill_takes_orphans_along(Some("sh"));
}

/// Where it can be built, the guardian is the small program dozen carries, run from memory,
/// not a shell: that is what keeps `dozen start` within its memory budget.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[test]
fn the_guardian_is_the_embedded_program() {
    let app = App::with("web: echo ready; sleep 303\n");
    let mut run = app.spawn(&["start", "--no-timestamp"]);
    run.wait_for("ready", |l| l.contains("| ready"));
    let dozen = run.pid();
    let guardian = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<i32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(dozen) && cmdline.starts_with(b"dozen-guardian\0")
        })
        .expect("a dozen-guardian child of dozen");
    let exe = std::fs::read_link(format!("/proc/{guardian}/exe")).expect("guardian exe");
    assert!(
        exe.to_string_lossy().starts_with("/memfd:dozen-guardian"),
        "the guardian runs {exe:?}"
    );
    run.signal(libc::SIGTERM);
    let (status, lines) = run.finish();
    assert_eq!(status.code(), Some(0), "{lines:?}");
}

fn sigkill_kills_process_groups(guardian: Option<&str>) {
    let tag = unique_tag();
    let app = App::with(&format!("web: echo ready; sleep 302.{tag}\n"));
    let mut cmd = app.dozen(&["start", "--no-timestamp"]);
    cmd.env("DOZEN_CGROUPS", "off");
    if let Some(g) = guardian {
        cmd.env("DOZEN_GUARDIAN", g);
    }
    let mut run = Running::spawn(cmd);
    run.wait_for("ready", |l| l.contains("| ready"));
    await_condition("sleep to start", || {
        processes_starting(&format!("sleep 302.{tag}")).len() == 1
    });
    run.signal(libc::SIGKILL);
    let _ = run.finish();
    await_condition("the process group to die", || {
        processes_matching(&format!(".{tag}")).is_empty()
    });
}

#[test]
fn restarts_with_backoff_then_gives_up_with_last_lines() {
    let app = App::with("web: echo \"attempt at $PORT\"; echo boom >&2; exit 3\n");
    let out = app.output(&[
        "start",
        "--json",
        "--restart",
        "on-failure",
        "--backoff",
        "0.05",
        "--crash-limit",
        "3",
    ]);
    assert_eq!(out.code(), Some(3), "{out:?}");
    let events = out.json();
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["proc"] == "dozen")
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        kinds[..9],
        [
            "started",
            "exited",
            "restarting",
            "started",
            "exited",
            "restarting",
            "started",
            "exited",
            "gave_up",
        ],
        "{}",
        out.stdout
    );
    assert!(kinds[9..].iter().all(|k| *k == "gave_up"), "{}", out.stdout);
    let delays: Vec<u64> = events
        .iter()
        .filter_map(|e| e["delay_ms"].as_u64())
        .collect();
    assert_eq!(delays, [50, 100]);
    let gave_up: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "gave_up")
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert!(gave_up[0].contains("web.1 exited 3 times"), "{gave_up:?}");
    assert!(gave_up.iter().any(|l| l.ends_with("boom")), "{gave_up:?}");
}

#[test]
fn restart_always_restarts_clean_exits() {
    let app = App::with("web: echo once\n");
    let out = app.output(&[
        "start",
        "--json",
        "--restart",
        "always",
        "--backoff",
        "0.01",
        "--crash-limit",
        "2",
    ]);
    assert_eq!(out.lines_of("web.1"), ["once", "once"]);
    assert_eq!(out.code(), Some(0));
}

#[test]
fn on_failure_lets_clean_exits_end_quietly() {
    let app = App::with("a: echo a done\nb: echo b done\n");
    let out = app.output(&["start", "--json", "--restart", "on-failure"]);
    assert_eq!(out.code(), Some(0));
    assert_eq!(out.lines_of("a.1"), ["a done"]);
    assert_eq!(out.lines_of("b.1"), ["b done"]);
}

#[test]
fn human_output_is_aligned_and_final_partial_line_delivered() {
    let app = App::with("web: printf 'one\\ntwo'\nlongname: echo x\n");
    let out = app.output(&["start", "--no-timestamp", "--restart", "on-failure"]);
    assert!(
        out.stdout.contains("web.1      | one\nweb.1      | two\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("longname.1 | x\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("dozen      | web.1 started (pid "),
        "{}",
        out.stdout
    );
}

#[test]
fn stdout_and_stderr_are_both_captured() {
    let app = App::with("web: echo out; echo err >&2\n");
    let out = app.output(&["start", "--json"]);
    let events = out.json();
    assert!(
        events
            .iter()
            .any(|e| e["proc"] == "web.1" && e["stream"] == "stdout" && e["line"] == "out")
    );
    assert!(
        events
            .iter()
            .any(|e| e["proc"] == "web.1" && e["stream"] == "stderr" && e["line"] == "err")
    );
    assert!(events.iter().all(|e| {
        e["ts"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T'))
    }));
}

#[test]
fn lossless_and_in_order_under_a_slow_reader() {
    // Two producers write 50k lines each. The test first does not read at all until a producer
    // is blocked writing (backpressure reached it), checks that dozen did not buffer the flood,
    // then reads everything and checks that every line arrived once, in order.
    let app = App::with(
        "a: python3 produce.py a 50000; touch a.done; sleep 300\n\
         b: python3 produce.py b 50000; touch b.done; sleep 300\n",
    );
    app.write(
        "produce.py",
        "import sys\nname, n = sys.argv[1], int(sys.argv[2])\nfor i in range(n):\n    sys.stdout.write('%s %d\\n' % (name, i))\n",
    );
    let mut child = app
        .dozen(&["start", "--no-timestamp"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let dozen_pid = child.id() as i32;
    // Await a producer blocked in write(2) on its full pipe.
    await_condition("a producer to block on its pipe", || {
        processes_matching("produce.py").iter().any(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/wchan"))
                .is_ok_and(|w| w.contains("pipe_write"))
        })
    });
    assert!(!app.path().join("a.done").exists() || !app.path().join("b.done").exists());
    let rss = status_kb(dozen_pid, "VmRSS:").unwrap_or_else(|| {
        panic!(
            "{}",
            std::fs::read_to_string(format!("/proc/{dozen_pid}/status")).unwrap_or_default()
        )
    });
    assert!(
        rss < 32 * 1024,
        "dozen buffered instead of applying backpressure: {rss} kB"
    );

    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout");
    let mut next = [0usize, 0usize];
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        for (i, name) in ["a.1   | a ", "b.1   | b "].iter().enumerate() {
            if let Some(n) = line.strip_prefix(name) {
                assert_eq!(
                    n.parse::<usize>().expect("number"),
                    next[i],
                    "out of order or lost"
                );
                next[i] += 1;
            }
        }
        if next == [50000, 50000] {
            break;
        }
    }
    assert_eq!(next, [50000, 50000]);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(dozen_pid, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn huge_line_is_split_marked_and_bounded() {
    let app = App::with(
        "web: python3 -c 'import sys; sys.stdout.write(\"x\" * 10_000_000 + \"\\nafter\\n\")'; sleep 300\n",
    );
    let mut run = app.spawn(&["start", "--json"]);
    run.wait_for("the line after", |l| l.contains("\"line\":\"after\""));
    let peak = status_kb(run.pid(), "VmHWM:").expect("hwm");
    run.signal(libc::SIGTERM);
    let (status, lines) = run.finish();
    assert_eq!(status.code(), Some(0));
    let pieces: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .filter(|v: &serde_json::Value| v["proc"] == "web.1")
        .collect();
    let total: usize = pieces
        .iter()
        .filter_map(|p| p["line"].as_str())
        .filter(|l| l.starts_with('x'))
        .map(str::len)
        .sum();
    assert_eq!(total, 10_000_000);
    let partial = pieces.iter().filter(|p| p["partial"] == true).count();
    assert!(partial >= 300, "{partial} partial pieces");
    assert!(
        pieces
            .iter()
            .all(|p| p["line"].as_str().is_some_and(|l| l.len() <= 32 * 1024))
    );
    let last_x = pieces
        .iter()
        .rposition(|p| p["line"].as_str().is_some_and(|l| l.starts_with('x')))
        .expect("x");
    assert_eq!(
        pieces[last_x]["partial"],
        serde_json::Value::Null,
        "the final piece ends the line"
    );
    assert!(peak < 40 * 1024, "peak memory {peak} kB for a 10 MB line");
}

#[test]
fn bad_procfile_names_file_and_line() {
    let app = App::with("web: ./server\n\nweb: ./other\n");
    let out = app.output(&["start"]);
    assert_ne!(out.code(), Some(0));
    assert!(out.stderr.contains("Procfile:3"), "{}", out.stderr);
    assert!(out.stdout.is_empty());

    let app = App::with("web ./server\n");
    let out = app.output(&["start"]);
    assert_ne!(out.code(), Some(0));
    assert!(out.stderr.contains("Procfile:1"), "{}", out.stderr);
}

#[test]
fn missing_procfile_is_a_clear_error() {
    let app = App::new();
    let out = app.output(&["start"]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("Procfile"), "{}", out.stderr);
}

#[test]
fn bad_env_names_file_and_line_without_the_value() {
    let app = App::with("web: true\n");
    app.write(".env", "OK=1\n\nSECRET=\"hunter2-s3cr3t\nNEXT=2\n");
    let out = app.output(&["start"]);
    assert_ne!(out.code(), Some(0));
    assert!(out.stderr.contains(".env:3"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);

    app.write(".env", "GOOD=1\nthis line has no equals hunter2\n");
    let out = app.output(&["start"]);
    assert!(out.stderr.contains(".env:2"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn missing_explicit_env_file_is_an_error() {
    let app = App::with("web: true\n");
    let out = app.output(&["start", "-e", "nope.env"]);
    assert_ne!(out.code(), Some(0));
    assert!(out.stderr.contains("nope.env"), "{}", out.stderr);
}

#[test]
fn unknown_formation_type_is_an_error() {
    let app = App::with("web: true\n");
    let out = app.output(&["start", "-m", "wbe=2"]);
    assert_ne!(out.code(), Some(0));
    assert!(out.stderr.contains("wbe"), "{}", out.stderr);
}

#[test]
fn root_flag_resolves_procfile_and_env() {
    let app = App::new();
    app.write(
        "sub/Procfile.dev",
        "web: echo \"$WHERE $(basename $(pwd))\"\n",
    );
    app.write("sub/dev.env", "WHERE=found\n");
    let out = app.output(&[
        "start",
        "--json",
        "-d",
        "sub",
        "-f",
        "Procfile.dev",
        "-e",
        "dev.env",
    ]);
    assert_eq!(out.lines_of("web.1"), ["found sub"], "{out:?}");
}

#[test]
fn config_values_never_appear_in_dozen_events() {
    let app = App::with("web: exit 1\n");
    app.write(".env", "API_KEY=sk_live_zzzsecret\n");
    let out = app.output(&["start", "--json"]);
    for e in out.json() {
        if e["proc"] == "dozen" {
            assert!(!e.to_string().contains("zzzsecret"), "{e}");
        }
    }
}

#[test]
fn a_process_that_binds_its_port_is_reported_up() {
    let app = App::with("web: python3 -m http.server $PORT --bind 127.0.0.1\nworker: sleep 300\n");
    let port = 20000 + (std::process::id() % 20000) as u16;
    let port_arg = port.to_string();
    let mut run = app.spawn(&["start", "--json", "-p", &port_arg]);
    let up = run.wait_for("web up", |l| l.contains("\"event\":\"up\""));
    let v: serde_json::Value = serde_json::from_str(&up).expect("json");
    assert_eq!(v["target"], "web.1");
    assert_eq!(v["port"], port);
    run.signal(libc::SIGTERM);
    let (status, lines) = run.finish();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("\"event\":\"up\""))
            .count(),
        1,
        "the worker never binds"
    );
}
