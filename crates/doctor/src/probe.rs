//! Runtime probes (`--run`): start the app's `web` process with dozen's own runner and watch it.
//!
//! The runner is `dozen start --json --no-timestamp -d ROOT -p PORT -t GRACE web`, a subprocess;
//! its JSON lines say when `web.1` started (pid, port), printed, exited or was killed. While it
//! runs, the probe reads Linux's `/proc`: the listening TCP sockets (`/proc/net/tcp{,6}`) whose
//! inodes belong to the web process tree (`/proc/PID/fd`), and the files that tree has open for
//! appending under the app's root. Checks:
//!
//! - it binds the `PORT` it was given within [`Options::bind_timeout`](crate::Options) (and no
//!   other port),
//! - it answers HTTP on it (any `HTTP/` status line counts),
//! - it writes no log files (files open for appending under the root, or `*.log` files created
//!   or changed under the root during the run),
//! - it exits within the grace period after SIGTERM (the runner reports `killed` with signal 9
//!   when the grace ran out).
//!
//! The parsers of `/proc` text and of the runner's events are plain functions, unit-tested below.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use crate::Options;
use crate::error::DoctorError;
use crate::procfile;
use crate::report::Finding;
use crate::rules::rule;
use crate::walk::{Kind, SourceFile};

/// One line of the runner's `--json` output, as far as the probe cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunnerEvent {
    Started {
        target: String,
        pid: u32,
        port: Option<u16>,
    },
    Exited {
        target: String,
        code: Option<i32>,
        signal: Option<i32>,
    },
    Killed {
        target: String,
        signal: Option<i32>,
    },
    Output {
        proc_name: String,
        line: String,
    },
    Other,
}

/// Parse one JSON line of `dozen start --json`.
pub(crate) fn parse_event(line: &str) -> Option<RunnerEvent> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_i64);
    let target = s("target").unwrap_or_default();
    Some(match (s("stream").as_deref(), s("event").as_deref()) {
        (Some("event"), Some("started")) => RunnerEvent::Started {
            target,
            pid: u32::try_from(n("pid")?).ok()?,
            port: n("port").and_then(|p| u16::try_from(p).ok()),
        },
        (Some("event"), Some("exited")) => RunnerEvent::Exited {
            target,
            code: n("code").and_then(|c| i32::try_from(c).ok()),
            signal: n("signal").and_then(|c| i32::try_from(c).ok()),
        },
        (Some("event"), Some("killed")) => RunnerEvent::Killed {
            target,
            signal: n("signal").and_then(|c| i32::try_from(c).ok()),
        },
        (Some("stdout" | "stderr"), _) => RunnerEvent::Output {
            proc_name: s("proc").unwrap_or_default(),
            line: s("line").unwrap_or_default(),
        },
        _ => RunnerEvent::Other,
    })
}

/// Listening TCP sockets in `/proc/net/tcp` or `tcp6` text: socket inode -> port.
pub(crate) fn parse_listening(text: &str) -> Vec<(u64, u16)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 || cols[3] != "0A" {
            continue;
        }
        let Some(port_hex) = cols[1].rsplit(':').next() else {
            continue;
        };
        let (Ok(port), Ok(inode)) = (u16::from_str_radix(port_hex, 16), cols[9].parse::<u64>())
        else {
            continue;
        };
        out.push((inode, port));
    }
    out
}

/// The parent pid in the text of `/proc/PID/stat` (the command may contain spaces and parens).
pub(crate) fn parse_ppid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The open flags (octal) in the text of `/proc/PID/fdinfo/FD`.
pub(crate) fn parse_fd_flags(fdinfo: &str) -> Option<u32> {
    let l = fdinfo.lines().find(|l| l.starts_with("flags:"))?;
    u32::from_str_radix(l.trim_start_matches("flags:").trim(), 8).ok()
}

/// The inode of a `socket:[12345]` link target.
pub(crate) fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_APPEND: u32 = 0o2000;

/// `pid` and all its descendants, from a scan of `/proc`.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(pp) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parse_ppid(&s))
            {
                children.entry(pp).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(
                c.iter()
                    .copied()
                    .filter(|c| !out.contains(c))
                    .collect::<Vec<_>>(),
            );
        }
        i += 1;
    }
    out
}

/// What the process tree holds right now.
#[derive(Debug, Default)]
struct Snapshot {
    ports: BTreeSet<u16>,
    appending: BTreeSet<PathBuf>,
}

fn snapshot(pids: &[u32], root: &Path) -> Snapshot {
    let mut inodes = BTreeSet::new();
    let mut snap = Snapshot::default();
    for pid in pids {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in rd.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(inode) = parse_socket_link(&t) {
                inodes.insert(inode);
            } else if target.starts_with(root) {
                let info = std::fs::read_to_string(format!(
                    "/proc/{pid}/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                ));
                let flags = info.ok().and_then(|i| parse_fd_flags(&i)).unwrap_or(0);
                let writes = flags & (O_WRONLY | O_RDWR) != 0;
                if writes && (flags & O_APPEND != 0 || is_log_path(&target)) {
                    snap.appending.insert(target);
                }
            }
        }
    }
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            for (inode, port) in parse_listening(&text) {
                if inodes.contains(&inode) {
                    snap.ports.insert(port);
                }
            }
        }
    }
    snap
}

fn is_log_path(p: &Path) -> bool {
    let s = p.to_string_lossy().to_ascii_lowercase();
    s.ends_with(".log") || s.contains("/log/") || s.contains("/logs/") || s.contains(".log.")
}

/// Modification times of the log-like files under `root` (bounded walk, vendored trees skipped).
fn log_files(root: &Path) -> BTreeMap<PathBuf, (SystemTime, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            seen += 1;
            if seen > 200_000 {
                return out;
            }
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                if !matches!(
                    name.as_str(),
                    ".git"
                        | "node_modules"
                        | "vendor"
                        | "target"
                        | ".venv"
                        | "venv"
                        | "__pycache__"
                ) {
                    stack.push(e.path());
                }
            } else if ft.is_file()
                && is_log_path(&e.path())
                && let Ok(m) = e.metadata()
            {
                out.insert(
                    e.path(),
                    (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()),
                );
            }
        }
    }
    out
}

fn free_port() -> Option<u16> {
    let l = TcpListener::bind(("127.0.0.1", 0)).ok()?;
    l.local_addr().ok().map(|a| a.port())
}

/// Does something on `port` answer with an HTTP status line?
fn answers_http(port: u16) -> bool {
    for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let Ok(sock) = addr.parse() else { continue };
        let Ok(mut s) = TcpStream::connect_timeout(&sock, Duration::from_secs(5)) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\nUser-Agent: dozen-doctor\r\n\r\n")
            .is_err()
        {
            continue;
        }
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < 5 {
            match s.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        if buf[..got].starts_with(b"HTTP/") {
            return true;
        }
    }
    false
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

struct Runner {
    child: Child,
    events: mpsc::Receiver<RunnerEvent>,
}

impl Runner {
    fn start(exe: &Path, root: &Path, port: u16, grace: Duration) -> Result<Runner, DoctorError> {
        let mut child = Command::new(exe)
            .arg("start")
            .arg("--json")
            .arg("--no-timestamp")
            .arg("-d")
            .arg(root)
            .arg("-p")
            .arg(port.to_string())
            .arg("-t")
            .arg(format!("{}", grace.as_secs_f64()))
            .arg("web")
            .env("PORT", port.to_string())
            .env_remove("DOZEN_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|cause| DoctorError::RunnerStart {
                exe: exe.to_path_buf(),
                cause,
            })?;
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let ev = parse_event(&line).unwrap_or(RunnerEvent::Output {
                        proc_name: "dozen".into(),
                        line,
                    });
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if tx
                        .send(RunnerEvent::Output {
                            proc_name: "dozen".into(),
                            line,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        Ok(Runner { child, events: rx })
    }
}

/// Everything observed during one probe run.
#[derive(Debug, Default)]
struct Observed {
    web_pid: Option<u32>,
    port: u16,
    bound: bool,
    other_ports: BTreeSet<u16>,
    exited_early: Option<String>,
    http: Option<bool>,
    appending: BTreeSet<PathBuf>,
    killed_after_grace: bool,
    stopped: bool,
    output: Vec<String>,
    seen_pids: BTreeSet<u32>,
}

impl Observed {
    fn take(&mut self, ev: RunnerEvent, stopping: bool) {
        match ev {
            RunnerEvent::Started { target, pid, port } if target.starts_with("web.") => {
                self.web_pid = Some(pid);
                if let Some(p) = port {
                    self.port = p;
                }
            }
            RunnerEvent::Exited {
                target,
                code,
                signal,
            } if target.starts_with("web.") => {
                self.stopped = true;
                if !stopping && self.exited_early.is_none() {
                    self.exited_early = Some(match (code, signal) {
                        (Some(c), _) => format!("{target} exited with code {c}"),
                        (_, Some(s)) => format!("{target} was killed by signal {s}"),
                        _ => format!("{target} exited"),
                    });
                }
            }
            RunnerEvent::Killed { target, signal } if target.starts_with("web.") => {
                self.stopped = true;
                if signal == Some(9) || signal.is_none() {
                    self.killed_after_grace = true;
                }
            }
            RunnerEvent::Output { proc_name, line } => {
                if self.output.len() >= 20 {
                    self.output.remove(0);
                }
                self.output.push(format!("{proc_name}: {line}"));
            }
            _ => {}
        }
    }
}

/// The Procfile's `web` command, if any.
fn web_command(kept: &[SourceFile]) -> Option<(String, u32, String)> {
    let f = kept
        .iter()
        .find(|f| f.kind == Kind::Procfile && f.rel == "Procfile")?;
    let p = procfile::parse(&String::from_utf8_lossy(&f.text))
        .into_iter()
        .find(|p| p.name == "web")?;
    Some((f.rel.clone(), p.line, p.command))
}

/// Start the web process and probe it.
pub(crate) fn run(
    opts: &Options,
    root: &Path,
    kept: &[SourceFile],
) -> Result<Vec<Finding>, DoctorError> {
    let skipped = |why: &str| {
        Ok(vec![Finding::new(
            rule("TF00-RUN-SKIPPED"),
            None,
            None,
            why,
        )])
    };
    let Some((procfile_rel, web_line, web_cmd)) = web_command(kept) else {
        return skipped("no `web:` process type in ./Procfile");
    };
    if !Path::new("/proc/net/tcp").exists() {
        return skipped("the probes read Linux's /proc, which is not available here");
    }
    let exe = opts
        .dozen_exe
        .clone()
        .unwrap_or_else(|| PathBuf::from("dozen"));
    let Some(port) = free_port() else {
        return skipped("no free TCP port on 127.0.0.1");
    };
    let before = log_files(root);
    let mut runner = Runner::start(&exe, root, port, opts.stop_grace)?;
    let mut obs = Observed {
        port,
        ..Observed::default()
    };
    let started = Instant::now();
    let mut other_seen_at: Option<Instant> = None;
    // Phase 1: wait for PORT, an early exit, or the deadline.
    loop {
        while let Ok(ev) = runner.events.try_recv() {
            obs.take(ev, false);
        }
        if obs.exited_early.is_some() {
            break;
        }
        if let Some(pid) = obs.web_pid {
            if !alive(pid) {
                // It is gone: the runner's `exited` event is on its way; wait for it.
                let until = Instant::now() + Duration::from_secs(5);
                while obs.exited_early.is_none() && Instant::now() < until {
                    match runner.events.recv_timeout(Duration::from_millis(200)) {
                        Ok(ev) => obs.take(ev, false),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                break;
            }
            let tree = process_tree(pid);
            obs.seen_pids.extend(tree.iter().copied());
            let snap = snapshot(&tree, root);
            obs.appending.extend(snap.appending);
            obs.bound = snap.ports.contains(&obs.port);
            obs.other_ports = snap
                .ports
                .iter()
                .copied()
                .filter(|p| *p != obs.port)
                .collect();
            if obs.bound {
                break;
            }
            if !obs.other_ports.is_empty() && other_seen_at.is_none() {
                other_seen_at = Some(Instant::now());
            }
        }
        // Listening elsewhere and still not on PORT a few seconds later: it will not come.
        if other_seen_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5))
            || started.elapsed() > opts.bind_timeout
        {
            break;
        }
        if let Ok(Some(_)) = runner.child.try_wait() {
            break;
        }
        match runner.events.recv_timeout(Duration::from_millis(100)) {
            Ok(ev) => obs.take(ev, false),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if obs.web_pid.is_none() {
                    break;
                }
            }
        }
    }
    // Phase 2: HTTP, then a last look at open files and ports.
    if obs.bound && obs.exited_early.is_none() {
        obs.http = Some(answers_http(obs.port));
        if let Some(pid) = obs.web_pid {
            let tree = process_tree(pid);
            obs.seen_pids.extend(tree.iter().copied());
            let snap = snapshot(&tree, root);
            obs.appending.extend(snap.appending);
            obs.other_ports
                .extend(snap.ports.iter().copied().filter(|p| *p != obs.port));
        }
    }
    // Phase 3: SIGTERM to the runner; it stops web.1 and reports how.
    let runner_pid = runner.child.id();
    // Events that arrive before our SIGTERM (the runner may already have stopped because
    // web.1 exited) are early exits, not responses to the stop.
    let mut sent_term = false;
    if obs.exited_early.is_none() && runner.child.try_wait().ok().flatten().is_none() {
        while let Ok(ev) = runner.events.try_recv() {
            obs.take(ev, false);
        }
        if obs.exited_early.is_none() {
            signal(runner_pid, "TERM");
            sent_term = true;
        }
    }
    let stop_deadline = Instant::now() + opts.stop_grace + Duration::from_secs(15);
    loop {
        match runner.events.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => obs.take(ev, sent_term),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > stop_deadline {
            break;
        }
    }
    if runner.child.try_wait().ok().flatten().is_none() {
        signal(runner_pid, "KILL");
    }
    let _ = runner.child.wait();
    // Nothing we started may outlive the probe.
    for pid in &obs.seen_pids {
        if alive(*pid) {
            signal(*pid, "KILL");
        }
    }
    let after = log_files(root);
    let changed: Vec<PathBuf> = after
        .iter()
        .filter(|(p, meta)| before.get(*p) != Some(meta))
        .map(|(p, _)| p.clone())
        .collect();

    let mut out = Vec::new();
    let at = Some(procfile_rel.as_str());
    let web_ev = format!("web: {web_cmd}");
    if let Some(why) = &obs.exited_early {
        let tail = obs
            .output
            .iter()
            .rev()
            .take(3)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ");
        out.push(Finding::new(
            rule("TF09-RUN-EXITED"),
            at,
            Some(web_line),
            &format!("{why}; last output: {tail}"),
        ));
    } else if obs.web_pid.is_none() {
        let tail = obs
            .output
            .iter()
            .rev()
            .take(3)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ");
        out.push(Finding::new(
            rule("TF00-RUN-SKIPPED"),
            None,
            None,
            &format!("the runner did not start web.1: {tail}"),
        ));
    } else {
        if !obs.bound {
            out.push(Finding::new(
                rule("TF07-RUN-PORT-NOT-BOUND"),
                at,
                Some(web_line),
                &format!("{web_ev}  (PORT={})", obs.port),
            ));
        }
        if !obs.other_ports.is_empty() {
            let ports: Vec<String> = obs.other_ports.iter().map(u16::to_string).collect();
            out.push(Finding::new(
                rule("TF07-RUN-OTHER-PORT"),
                at,
                Some(web_line),
                &format!(
                    "{web_ev}  (PORT={}, listening on {})",
                    obs.port,
                    ports.join(", ")
                ),
            ));
        }
        if obs.http == Some(false) {
            out.push(Finding::new(
                rule("TF07-RUN-NO-HTTP"),
                at,
                Some(web_line),
                &format!("{web_ev}  (no HTTP status line from port {})", obs.port),
            ));
        }
        if obs.killed_after_grace {
            out.push(Finding::new(
                rule("TF09-RUN-SLOW-STOP"),
                at,
                Some(web_line),
                &format!(
                    "{web_ev}  (still running {:.0} s after SIGTERM)",
                    opts.stop_grace.as_secs_f64()
                ),
            ));
        }
    }
    let mut logs: BTreeSet<String> = BTreeSet::new();
    for p in obs.appending.iter().chain(changed.iter()) {
        let rel = p
            .strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/");
        logs.insert(rel);
    }
    for rel in logs {
        out.push(Finding::new(
            rule("TF11-RUN-LOG-FILE"),
            Some(&rel),
            None,
            &format!("{rel} written while the web process ran"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 434343 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(parse_listening(text), vec![(424242, 8080)]);
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_listening(v6), vec![(99, 5000)]);
        assert!(parse_listening("garbage\nmore garbage\n").is_empty());
    }

    #[test]
    fn stat_and_fdinfo() {
        assert_eq!(
            parse_ppid("1234 (python3 -m (x)) S 77 1234 1234 0 -1"),
            Some(77)
        );
        assert_eq!(parse_ppid("broken"), None);
        assert_eq!(
            parse_fd_flags("pos:\t0\nflags:\t0102001\nmnt_id:\t30\n"),
            Some(0o102001)
        );
        assert_eq!(parse_socket_link("socket:[8812]"), Some(8812));
        assert_eq!(parse_socket_link("/tmp/x"), None);
    }

    #[test]
    fn runner_events() {
        let started = r#"{"ts":"t","proc":"dozen","stream":"event","line":"web.1 started (pid 123, port 5000)","event":"started","target":"web.1","pid":123,"port":5000}"#;
        assert_eq!(
            parse_event(started),
            Some(RunnerEvent::Started {
                target: "web.1".into(),
                pid: 123,
                port: Some(5000)
            })
        );
        let killed = r#"{"ts":"t","proc":"dozen","stream":"event","line":"x","event":"killed","target":"web.1","signal":9}"#;
        assert_eq!(
            parse_event(killed),
            Some(RunnerEvent::Killed {
                target: "web.1".into(),
                signal: Some(9)
            })
        );
        let exited = r#"{"ts":"t","proc":"dozen","stream":"event","line":"x","event":"exited","target":"web.1","pid":1,"code":3}"#;
        assert_eq!(
            parse_event(exited),
            Some(RunnerEvent::Exited {
                target: "web.1".into(),
                code: Some(3),
                signal: None
            })
        );
        let out = r#"{"ts":"t","proc":"web.1","stream":"stdout","line":"hello"}"#;
        assert_eq!(
            parse_event(out),
            Some(RunnerEvent::Output {
                proc_name: "web.1".into(),
                line: "hello".into()
            })
        );
        assert_eq!(parse_event("not json"), None);
    }
}
