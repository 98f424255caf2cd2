//! Crash anywhere: the real `dozen server` is killed with SIGKILL at a random moment of a deploy,
//! a config change, a scale, a rollback or a destroy, restarted on the same data directory and
//! store, and checked for what a user relies on:
//!
//! - every release is complete (its slug is on disk) or marked failed, none is left pending;
//! - the app's live release is one that succeeded;
//! - the formation runs as stored: the right number of processes of each type, all of the live
//!   release, and the router answers from the live release's web processes;
//! - no process of the killed server's apps outlives it, no process runs that `ps` does not
//!   show, and no build, upload, partial slug or release directory but the live one is left;
//! - nothing the app logged before the kill (what `logs` showed, and what a `logs --tail`
//!   client saw up to the kill) is missing from `logs` after the restart.
//!
//! Rounds: `DOZEN_CRASH_ROUNDS` per store (default 50). The seed of the random choices (which
//! operation, when to kill) is printed; `DOZEN_CRASH_SEED=<seed>` replays the same choices
//! (the interleaving of the server's own tasks differs from run to run).

mod support;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::server::{PgDatabase, TOKEN, http_get};
use support::{App, HANG, Output, await_condition, dozen_bin, free_port, line_reader};

const APP: &str = "shop";
/// Small, so the history rotates its segments during the run (a segment holds eight times
/// this many events).
const LOG_LINES: usize = 10;

/// splitmix64: a seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A `dozen server` that the test kills and starts again on the same data and store.
struct CrashServer {
    child: Option<Child>,
    port: u16,
    router_port: u16,
    data: tempfile::TempDir,
    db: Option<PgDatabase>,
    /// The server's last output lines, for failure messages.
    output: Arc<Mutex<VecDeque<String>>>,
}

impl CrashServer {
    fn new(db: Option<PgDatabase>) -> CrashServer {
        let mut s = CrashServer {
            child: None,
            port: free_port(),
            router_port: free_port(),
            data: tempfile::tempdir().expect("tmp"),
            db,
            output: Arc::default(),
        };
        let out = s.admin(&["migrate"]).output().expect("migrate");
        assert!(
            out.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&out.stderr)
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
            .env("DOZEN_LOG_LINES", LOG_LINES.to_string())
            .env("DOZEN_BOOT_TIMEOUT", "20")
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1");
        if let Some(db) = &self.db {
            c.env("DATABASE_URL", &db.url);
        }
        c
    }

    fn launch(&mut self) {
        let mut child = self
            .admin(&["server"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server");
        let lines = line_reader(child.stdout.take().expect("stdout"));
        let errors = line_reader(child.stderr.take().expect("stderr"));
        self.child = Some(child);
        let output = self.output.clone();
        let remember = move |l: String| {
            let mut o = output.lock().unwrap_or_else(|p| p.into_inner());
            if o.len() == 200 {
                o.pop_front();
            }
            o.push_back(l);
        };
        let deadline = Instant::now() + HANG;
        loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("listening on") => {
                    remember(l);
                    break;
                }
                Ok(l) => remember(l),
                Err(e) => {
                    let err: Vec<String> = errors.try_iter().collect();
                    panic!(
                        "the server never said it was listening ({e}):\n{}\n{}",
                        self.recent_output(),
                        err.join("\n")
                    )
                }
            }
        }
        let remember = Arc::new(remember);
        let r = remember.clone();
        std::thread::spawn(move || {
            while let Ok(l) = lines.recv() {
                r(l);
            }
        });
        std::thread::spawn(move || {
            while let Ok(l) = errors.recv() {
                remember(format!("stderr: {l}"));
            }
        });
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn recent_output(&self) -> String {
        let o = self.output.lock().unwrap_or_else(|p| p.into_inner());
        o.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn client_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dozen_bin());
        c.args(args)
            .env("DOZEN_URL", format!("http://127.0.0.1:{}", self.port))
            .env("DOZEN_API_TOKEN", TOKEN)
            .env_remove("DOZEN_APP")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    fn client(&self, args: &[&str]) -> Output {
        Output::from(self.client_command(args).output().expect("client"))
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        assert_eq!(
            out.code(),
            Some(0),
            "dozen {args:?}\nstdout: {}\nstderr: {}\nserver:\n{}",
            out.stdout,
            out.stderr,
            self.recent_output()
        );
        out.stdout
    }

    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let text = self.ok(&a);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    fn app_exists(&self) -> bool {
        self.json(&["apps"])
            .as_array()
            .expect("a list")
            .iter()
            .any(|a| a["name"] == APP)
    }

    /// `logs --json` of the whole buffer, one string per event.
    fn logs(&self) -> Vec<String> {
        let n = LOG_LINES.to_string();
        self.ok(&["logs", "-a", APP, "-n", &n, "--json"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// An authenticated GET on the API (what the CLI does not show: a release's config).
    fn api_get(&self, path: &str) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the API");
        s.set_read_timeout(Some(HANG)).expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .expect("write");
        let mut buf = String::new();
        s.read_to_string(&mut buf).expect("read");
        let (_, body) = buf.split_once("\r\n\r\n").expect("a response");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }
}

impl Drop for CrashServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// The operations a round interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// apps:create (not interrupted) and the first deploy.
    Create,
    Deploy,
    ConfigSet,
    Scale,
    Rollback,
    Destroy,
}

/// The fixture: a Python web process that says which process and which config it runs with,
/// a worker that ticks through a shell loop (so its `sleep`s are grandchildren of the server),
/// a release phase. A deploy may have a build step that takes a moment, and may fail its
/// release phase.
fn write_source(app: &App, code: u64, build_step: bool, failing_release: bool) {
    app.write(
        "web.py",
        "import http.server, os\n\
         ps, port, mark = os.environ['PS'], os.environ['PORT'], os.environ.get('MARK', '-')\n\
         code = open('code.txt').read().strip()\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       body = f'{ps} {port} {mark} {code}\\n'.encode()\n\
         \x20       self.send_response(200)\n\
         \x20       self.send_header('Content-Length', str(len(body)))\n\
         \x20       self.end_headers()\n\
         \x20       self.wfile.write(body)\n\
         \x20   def log_message(self, *args):\n\
         \x20       pass\n\
         print(f'{ps} serving code {code} mark {mark}', flush=True)\n\
         http.server.ThreadingHTTPServer(('127.0.0.1', int(port)), H).serve_forever()\n",
    );
    app.write("code.txt", &format!("c{code}\n"));
    let release = if failing_release {
        "echo release phase fails; exit 1"
    } else {
        "echo release phase of $(cat code.txt)"
    };
    app.write(
        "Procfile",
        &format!(
            "web: exec python3 -u web.py\n\
             worker: n=0; while true; do n=$((n+1)); echo \"$PS tick $n of $(cat code.txt) $MARK\"; sleep 0.3; done\n\
             release: {release}\n"
        ),
    );
    let toml = if build_step {
        "[build]\ncommand = \"sleep 0.3 && echo built\"\n"
    } else {
        ""
    };
    app.write("dozen.toml", toml);
}

/// Processes whose environment names the data directory: the server, its guardian, and every
/// app and build process it started (their `HOME` is under it).
/// The sequence number of the newest segment of the app's log history (0 when it has none).
fn newest_history_segment(data: &Path) -> u64 {
    std::fs::read_dir(data.join("logs").join(APP))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

fn processes_of(data: &Path) -> Vec<(i32, i32, String)> {
    let needle = data.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for pid in support::other_pids() {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !String::from_utf8_lossy(&env).contains(&needle) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let ppid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if state == "Z" || state == "X" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        out.push((pid, ppid, cmdline));
    }
    out
}

/// The interrupted operation's client and the `logs --tail` client watching it.
struct Round {
    op: Op,
    client: Child,
    tail: Child,
    tail_lines: std::sync::mpsc::Receiver<String>,
}

fn start_op(s: &CrashServer, op: Op, rng: &mut Rng, src: &App, code: &mut u64) -> Round {
    let mut tail = s
        .client_command(&["logs", "-a", APP, "--tail", "-n", "0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("logs --tail");
    let tail_lines = line_reader(tail.stdout.take().expect("stdout"));
    let dir = src.path().to_str().expect("utf-8").to_string();
    let args: Vec<String> = match op {
        Op::Create | Op::Deploy => {
            *code += 1;
            write_source(src, *code, rng.chance(40), rng.chance(10));
            vec!["deploy".into(), "-a".into(), APP.into(), "-d".into(), dir]
        }
        Op::ConfigSet => vec![
            "config:set".into(),
            "-a".into(),
            APP.into(),
            format!("MARK=m{}", rng.below(1_000_000)),
        ],
        Op::Scale => vec![
            "ps:scale".into(),
            "-a".into(),
            APP.into(),
            format!("web={}", 1 + rng.below(2)),
            format!("worker={}", rng.below(3)),
        ],
        Op::Rollback => vec!["rollback".into(), "-a".into(), APP.into()],
        Op::Destroy => vec![
            "apps:destroy".into(),
            "-a".into(),
            APP.into(),
            "--confirm".into(),
            APP.into(),
        ],
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let client = s
        .client_command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("client");
    Round {
        op,
        client,
        tail,
        tail_lines,
    }
}

/// The timestamp of a `logs --json` line, to tell which lines the bounded buffer may have let
/// go of (the oldest).
fn ts(line: &str) -> String {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["ts"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Check every invariant after a restart. `logged` is what the app had logged before the kill.
fn check(s: &CrashServer, logged: &[String], context: &str) {
    let data = s.data.path();
    let fail =
        |what: String| -> ! { panic!("{context}: {what}\nserver output:\n{}", s.recent_output()) };
    // Nothing of interrupted work is left under the data directory.
    for dir in ["builds", "uploads"] {
        let left: Vec<_> = std::fs::read_dir(data.join(dir))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if !left.is_empty() {
            fail(format!("{dir} left behind: {left:?}"));
        }
    }
    let slugs: Vec<String> = std::fs::read_dir(data.join("slugs"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if let Some(partial) = slugs.iter().find(|n| n.ends_with(".partial")) {
        fail(format!("a partial slug is left: {partial}"));
    }
    let release_dirs = |app: &str| -> BTreeSet<String> {
        std::fs::read_dir(data.join("releases").join(app))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };

    if !s.app_exists() {
        // Destroyed: nothing of it is left, and nothing of it runs.
        for dir in ["releases", "cache", "logs"] {
            if data.join(dir).join(APP).exists() {
                fail(format!("{dir}/{APP} is left after the app was destroyed"));
            }
        }
        let left: Vec<_> = processes_of(data)
            .into_iter()
            .filter(|(pid, ppid, cmd)| *pid != s.pid() && !guardian(*ppid, cmd, s.pid()))
            .collect();
        if !left.is_empty() {
            fail(format!("processes of a destroyed app run: {left:?}"));
        }
        return;
    }

    let releases = s.json(&["releases", "-a", APP]);
    let releases = releases.as_array().expect("a list").clone();
    for r in &releases {
        let status = r["status"].as_str().unwrap_or_default();
        match status {
            "succeeded" => {
                if let Some(digest) = r["slug"].as_str() {
                    if !data
                        .join("slugs")
                        .join(format!("{digest}.tar.zst"))
                        .is_file()
                    {
                        fail(format!(
                            "v{} succeeded but its slug is missing",
                            r["version"]
                        ));
                    }
                }
            }
            "failed" => {}
            other => fail(format!("v{} is {other}: {releases:?}", r["version"])),
        }
    }
    let info = s.json(&["apps:info", "-a", APP]);
    let Some(live) = info["current_release"].as_i64() else {
        // Never deployed: nothing runs and no release directory exists.
        if !release_dirs(APP).is_empty() {
            fail(format!(
                "release directories without a live release: {:?}",
                release_dirs(APP)
            ));
        }
        return;
    };
    let live_release = releases
        .iter()
        .find(|r| r["version"] == live)
        .unwrap_or_else(|| fail(format!("the live release v{live} is not listed")));
    if live_release["status"] != "succeeded" {
        fail(format!(
            "the live release v{live} is {}",
            live_release["status"]
        ));
    }

    // The formation as stored, of the live release (one web unless the store says otherwise).
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for t in info["process_types"].as_object().expect("types").keys() {
        if t == "release" {
            continue;
        }
        let n = info["formation"][t]
            .as_i64()
            .unwrap_or(i64::from(t == "web"));
        want.insert(t.clone(), n);
    }
    let ps = std::cell::RefCell::new(Value::Null);
    let formation_runs = || {
        let rows = s.json(&["ps", "-a", APP]);
        let mut have: BTreeMap<String, i64> = BTreeMap::new();
        let mut settled = true;
        for p in rows.as_array().into_iter().flatten() {
            let t = p["type"].as_str().unwrap_or_default().to_string();
            let ready = if t == "web" { "up" } else { "running" };
            settled &= p["release"] == live && p["state"] == ready;
            *have.entry(t).or_default() += 1;
        }
        have.retain(|_, n| *n > 0);
        let want: BTreeMap<String, i64> = want
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| (t.clone(), *n))
            .collect();
        *ps.borrow_mut() = rows;
        settled && have == want
    };
    // As `await_condition`, but a hang says what `ps` showed last and what the server printed.
    let deadline = std::time::Instant::now() + support::HANG;
    while !formation_runs() {
        if std::time::Instant::now() > deadline {
            fail(format!(
                "hung waiting for the formation {want:?} of v{live} to run; ps showed {}",
                ps.borrow()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ps = ps.into_inner();

    // The router answers from the live release's web processes, with its config.
    let config = s.api_get(&format!("/v1/apps/{APP}/releases/{live}/config"));
    let mark = config["MARK"].as_str().unwrap_or("-");
    let webs: BTreeSet<String> = ps
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["type"] == "web")
        .map(|p| format!("{} {}", p["name"].as_str().unwrap_or_default(), p["port"]))
        .collect();
    if !webs.is_empty() {
        for _ in 0..3 {
            let (status, body) = http_get(s.router_port, &format!("{APP}.localhost"), "/")
                .unwrap_or_else(|e| fail(format!("GET through the router: {e}")));
            let body = String::from_utf8_lossy(&body).into_owned();
            let fields: Vec<&str> = body.split_whitespace().collect();
            if status != 200
                || fields.len() != 4
                || !webs.contains(&format!("{} {}", fields[0], fields[1]))
                || fields[2] != mark
            {
                fail(format!(
                    "the router answered {status} {body:?}; want one of {webs:?} with MARK {mark}"
                ));
            }
        }
    }

    // Processes: exactly those `ps` shows (and what they started), the server and its guardian.
    let shown: BTreeSet<i32> = ps
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["pid"].as_i64().map(|p| p as i32))
        .collect();
    let procs = processes_of(data);
    let parent: BTreeMap<i32, i32> = procs.iter().map(|(p, pp, _)| (*p, *pp)).collect();
    for (pid, ppid, cmd) in &procs {
        if *pid == s.pid() || guardian(*ppid, cmd, s.pid()) {
            continue;
        }
        let mut at = *pid;
        let mut known = false;
        for _ in 0..16 {
            if shown.contains(&at) {
                known = true;
                break;
            }
            match parent.get(&at) {
                Some(p) => at = *p,
                None => break,
            }
        }
        if !known {
            fail(format!(
                "process {pid} ({cmd}) runs but `ps` does not show it: {ps}"
            ));
        }
    }

    // Release directories: the live release's only.
    let dirs = release_dirs(APP);
    let expected: BTreeSet<String> = [format!("v{live}")].into();
    if dirs != expected {
        fail(format!("release directories {dirs:?}; only v{live} runs"));
    }

    // Logs: nothing logged before the kill is missing, but what the bounded buffer let go of
    // (older than its oldest line).
    let after = s.logs();
    let have: BTreeSet<&str> = after.iter().map(String::as_str).collect();
    let oldest = match after.first() {
        // Full: it may have let go of lines older than its oldest.
        Some(first) if after.len() >= LOG_LINES => ts(first),
        _ => String::new(),
    };
    let missing: Vec<&String> = logged
        .iter()
        .filter(|l| !have.contains(l.as_str()) && ts(l) > oldest)
        .collect();
    if !missing.is_empty() {
        fail(format!(
            "{} of {} lines logged before the kill are missing after the restart, first {:?}",
            missing.len(),
            logged.len(),
            missing.iter().take(3).collect::<Vec<_>>()
        ));
    }
}

fn guardian(ppid: i32, cmdline: &str, server: i32) -> bool {
    ppid == server && cmdline.contains("dozen-guardian")
}

/// Wait for a child to exit (it must: its server is gone).
fn reap(child: &mut Child, what: &str) {
    let deadline = Instant::now() + HANG;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not end after the server was killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn crash_anywhere(db: Option<PgDatabase>, store: &str) {
    let rounds: usize = std::env::var("DOZEN_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("DOZEN_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash anywhere on {store}: {rounds} rounds, DOZEN_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut s = CrashServer::new(db);
    let src = App::new();
    let mut code = 0u64;
    // How long each operation takes when it is not interrupted (a first guess, then measured):
    // the kill comes at a uniformly random moment within it, a little past its end at most.
    let mut takes: BTreeMap<Op, Duration> = BTreeMap::new();
    let mut tally: BTreeMap<Op, (usize, usize)> = BTreeMap::new();
    // The newest history segment seen: the run must have rotated through some.
    let mut newest_segment = 0u64;

    for round in 1..=rounds {
        let exists = s.app_exists();
        let deployed = exists && s.json(&["apps:info", "-a", APP])["current_release"].is_i64();
        let op = if !exists {
            s.ok(&["apps:create", APP]);
            Op::Create
        } else if !deployed {
            Op::Deploy
        } else {
            match rng.below(100) {
                0..30 => Op::Deploy,
                30..50 => Op::ConfigSet,
                50..70 => Op::Scale,
                70..90 => Op::Rollback,
                _ => Op::Destroy,
            }
        };
        let before = s.logs();
        if op == Op::Create {
            // A new app of the name of a destroyed one starts with a log of its own.
            let old: Vec<&String> = before
                .iter()
                .filter(|l| !l.contains(&format!("\"app {APP} created\"")))
                .collect();
            assert!(
                old.is_empty(),
                "round {round} (DOZEN_CRASH_SEED={seed}): the new {APP} shows the logs of the destroyed one: {old:?}"
            );
        }
        let estimate = *takes.entry(op).or_insert(Duration::from_millis(1500));
        let delay = if rng.chance(10) {
            Duration::ZERO
        } else {
            estimate.mul_f64(1.1 * rng.below(1000) as f64 / 1000.0)
        };
        let context = format!(
            "{store} round {round}/{rounds} (DOZEN_CRASH_SEED={seed}): {op:?}, killed after {} ms",
            delay.as_millis()
        );
        let started = Instant::now();
        let mut r = start_op(&s, op, &mut rng, &src, &mut code);
        let mut finished = false;
        while started.elapsed() < delay {
            if r.client.try_wait().expect("wait").is_some() {
                finished = true;
                let took = started.elapsed();
                let t = takes.entry(op).or_default();
                *t = (*t * 3 + took) / 4;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let server_pid = s.pid();
        s.kill9();
        let counts = tally.entry(r.op).or_default();
        if finished {
            counts.1 += 1;
        } else {
            counts.0 += 1;
            // It may take longer than thought: widen the window a little, so that kills reach
            // its end too (a finished run measures it).
            if delay > Duration::ZERO {
                let t = takes.entry(op).or_default();
                *t = t.mul_f64(1.1);
            }
        }
        reap(&mut r.client, "the client");
        reap(&mut r.tail, "logs --tail");
        let seen: Vec<String> = r
            .tail_lines
            .try_iter()
            // The server's notes to the client (it fell behind, or started following in a
            // burst) are not events of the stream.
            .filter(|l| !l.contains(" lines skipped: "))
            .collect();

        // The guardian: nothing the killed server started outlives it.
        await_condition(
            &format!("{context}: the processes of pid {server_pid} to die"),
            || processes_of(s.data.path()).is_empty(),
        );

        newest_segment = newest_segment.max(newest_history_segment(s.data.path()));
        s.launch();
        let mut logged = before;
        logged.extend(seen);
        check(&s, &logged, &context);
    }
    assert!(
        rounds < 20 || newest_segment >= 2,
        "{store} (DOZEN_CRASH_SEED={seed}): the log history never started a second segment, so \
         no kill landed near a rotation"
    );
    eprintln!(
        "crash anywhere on {store}: {rounds} rounds, newest history segment {newest_segment}; per operation (killed during, killed after): {tally:?}"
    );
}

#[test]
fn crash_anywhere_on_sqlite() {
    crash_anywhere(None, "sqlite");
}

#[test]
fn crash_anywhere_on_postgres() {
    crash_anywhere(Some(PgDatabase::create("dozen_crash")), "postgres");
}
