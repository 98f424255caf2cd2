//! A small harness that runs the real `dozen` binary in a temporary app directory.
#![allow(dead_code)]

pub mod api;
pub mod certs;
pub mod server;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any one awaited event may take before the test is declared hung. Not a timing
/// assertion: it only turns a hang into a failure with context.
pub const HANG: Duration = Duration::from_secs(60);

pub fn dozen_bin() -> &'static str {
    env!("CARGO_BIN_EXE_dozen")
}

/// A temporary app directory.
pub struct App {
    pub dir: tempfile::TempDir,
}

impl App {
    pub fn new() -> App {
        App {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn with(procfile: &str) -> App {
        let app = App::new();
        app.write("Procfile", procfile);
        app
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, content: &str) -> &App {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write fixture");
        self
    }

    /// `dozen ARGS` in the app directory, with a clean, colourless output.
    pub fn dozen(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dozen_bin());
        c.args(args)
            .current_dir(self.path())
            .env_remove("PORT")
            .env_remove("DOZEN_LOG_FORMAT")
            .env("NO_COLOR", "1");
        c
    }

    /// Run to completion and capture everything.
    pub fn output(&self, args: &[&str]) -> Output {
        let out = self
            .dozen(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dozen");
        Output::from(out)
    }

    /// Start `dozen ARGS` in the background, reading its stdout line by line.
    pub fn spawn(&self, args: &[&str]) -> Running {
        Running::spawn(self.dozen(args))
    }
}

#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// This output, after asserting that `dozen ARGS` exited with `code` (both streams shown
    /// when it did not).
    #[track_caller]
    pub fn expect_code(self, code: i32, args: &[&str]) -> Output {
        assert_eq!(
            self.code(),
            Some(code),
            "dozen {args:?} exited otherwise than with {code}\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout lines parsed as JSON (for --json runs).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The `line` of every JSON record from `proc`.
    pub fn lines_of(&self, proc_name: &str) -> Vec<String> {
        self.json()
            .into_iter()
            .filter(|v| v["proc"] == proc_name)
            .map(|v| v["line"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// A dozen process running in the background.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dozen");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Wait for an output line matching `pred`; returns it.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "hung waiting for {what}; output so far:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "dozen ended before {what}; output:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Wait for dozen to exit; returns its status and all its output.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + HANG;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Drain what is left.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                return (status, self.seen);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("dozen did not exit; output:\n{}", self.seen.join("\n"));
            }
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                self.seen.push(line);
            }
        }
    }
}

/// Poll a condition on the system (a process appearing or vanishing) until it holds.
pub fn await_condition(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        if Instant::now() > deadline {
            panic!("hung waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live (not zombie) processes whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<i32> {
    processes_where(|cmdline| cmdline.contains(needle))
}

/// Live processes whose command line starts with `prefix` (a program, not the shell that ran it).
pub fn processes_starting(prefix: &str) -> Vec<i32> {
    processes_where(|cmdline| cmdline.starts_with(prefix))
}

/// The pids in `/proc` but this test's own.
pub fn other_pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| *pid != me)
        .collect()
}

fn processes_where(pred: impl Fn(&str) -> bool) -> Vec<i32> {
    let mut out = Vec::new();
    for pid in other_pids() {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !pred(&cmdline) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().chars().next());
        if state == Some(Some('Z')) || stat.is_empty() {
            continue;
        }
        out.push(pid);
    }
    out
}

/// A number unique to this test run, to tag the processes a test starts.
pub fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}{:03}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A field of /proc/<pid>/status in kB.
pub fn status_kb(pid: i32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A free loopback TCP port (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Read `out` line by line on a thread of its own; the lines arrive on the receiver.
pub fn line_reader(out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait until a `dozen server`'s output says it is listening, then keep draining the output so
/// the server never blocks on a full pipe.
pub fn await_listening(lines: Receiver<String>) {
    loop {
        match lines.recv_timeout(HANG) {
            Ok(l) if l.contains("listening") => break,
            Ok(_) => {}
            Err(e) => panic!("the server never said it was listening: {e}"),
        }
    }
    std::thread::spawn(move || while lines.recv().is_ok() {});
}
