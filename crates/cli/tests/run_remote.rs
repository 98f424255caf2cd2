//! `dozen run -a APP` and `dozen run:detached -a APP` against a real `dozen server`: the words
//! typed reach the program unchanged, and stdout and stderr come back byte for byte, apart, with
//! backpressure, followed by the exit status.

mod support;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use sha2::Digest;
use support::*;

const TOKEN: &str = "dzn_test_token_run_remote_0123456";

/// A `dozen server` on SQLite with one app, `shop`, deployed from a Procfile-only source (no
/// process runs by default: the tests only start one-offs).
struct Server {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
    _source: App,
    _lines: mpsc::Receiver<String>,
}

impl Server {
    fn start() -> Server {
        let data = tempfile::tempdir().expect("tmp");
        let port = free_port();
        let admin = |args: &[&str]| {
            let mut c = Command::new(dozen_bin());
            c.args(args)
                .env("PORT", port.to_string())
                .env("DOZEN_ROUTER_PORT", free_port().to_string())
                .env("DOZEN_DATA_DIR", data.path())
                .env("DOZEN_API_TOKEN", TOKEN)
                .env("DOZEN_BIND", "127.0.0.1")
                .env("DOZEN_APP_USER_PREFIX", format!("dz{}-", port))
                .env_remove("DATABASE_URL")
                .env("NO_COLOR", "1");
            c
        };
        let migrate = admin(&["migrate"]).output().expect("migrate");
        assert!(
            migrate.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&migrate.stderr)
        );
        let mut child = admin(&["server"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server");
        let lines = line_reader(child.stdout.take().expect("stdout"));
        loop {
            match lines.recv_timeout(HANG) {
                Ok(l) if l.contains("listening") => break,
                Ok(_) => {}
                Err(e) => panic!("the server never said it was listening: {e}"),
            }
        }
        let source = App::with("worker: sleep 1000\n");
        let server = Server {
            child,
            port,
            _data: data,
            _source: source,
            _lines: lines,
        };
        server.ok(&["apps:create", "shop"]);
        let dir = server
            ._source
            .path()
            .to_str()
            .expect("utf-8 path")
            .to_string();
        let deployed = server.ok(&["deploy", "-a", "shop", "-d", &dir]);
        assert!(deployed.contains("v1 is live"), "{deployed}");
        server
    }

    /// `dozen ARGS` as a client of this server, to spawn.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dozen_bin());
        c.args(args)
            .env("DOZEN_URL", format!("http://127.0.0.1:{}", self.port))
            .env("DOZEN_API_TOKEN", TOKEN)
            .env_remove("DOZEN_APP")
            .env("NO_COLOR", "1");
        c
    }

    /// `dozen ARGS` to its end, with `input` on its stdin; the raw output.
    fn run_with(&self, args: &[&str], input: &[u8]) -> std::process::Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // Written on a thread of its own: the one-off's output comes back while it reads.
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("client");
        writer.join().expect("writer").expect("write stdin");
        out
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("client");
        Output::from(out).expect_code(0, args).stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// `dozen run -a shop -- WORDS...`, with nothing on stdin.
fn run(server: &Server, words: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "-a", "shop", "--"];
    args.extend_from_slice(words);
    server.run_with(&args, b"")
}

#[track_caller]
fn assert_code(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

#[test]
fn one_offs_get_the_words_as_typed_and_give_back_their_bytes() {
    let server = Server::start();

    // `sh -c 'echo one off; exit 3'`: the script stays one argument, its status comes back.
    let out = run(&server, &["sh", "-c", "echo one off; exit 3"]);
    assert_code(&out, 3);
    assert_eq!(out.stdout, b"one off\n");

    // Spaces, both quotes, `$`, `*`, an empty argument, a newline, a backslash: unchanged.
    let words = [
        "two words",
        "it's",
        r#"say "hi""#,
        "$HOME and ${PS}",
        "*",
        "",
        "line one\nline two",
        r"C:\temp",
        "`id`; exit 9",
    ];
    let mut typed = vec!["printf", "[%s]\\n"];
    typed.extend_from_slice(&words);
    let out = run(&server, &typed);
    assert_code(&out, 0);
    let expected: String = words.iter().map(|w| format!("[{w}]\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    // A single argument is a command line of its own, as with `heroku run`.
    let out = run(&server, &["head -c 10 /dev/zero | wc -c"]);
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10");

    // Bytes that are not UTF-8 stay what they are: 100000 bytes of 0xff, not 300000 of U+FFFD.
    let out = run(&server, &["head -c 100000 /dev/zero | tr '\\000' '\\377'"]);
    assert_code(&out, 0);
    assert_eq!(out.stdout.len(), 100_000);
    assert!(out.stdout.iter().all(|&b| b == 0xff));

    // stdout and stderr come back apart, each exact, without a newline added.
    let out = run(
        &server,
        &[
            "sh",
            "-c",
            r"printf 'out\377\000'; printf 'err\376' >&2; exit 4",
        ],
    );
    assert_code(&out, 4);
    assert_eq!(out.stdout, b"out\xff\x00");
    assert_eq!(out.stderr, b"err\xfe");

    // 1 MiB of random bytes through stdin and `cat`: the same bytes back.
    let input = random_bytes(1 << 20);
    let out = server.run_with(&["run", "-a", "shop", "--", "cat"], &input);
    assert_code(&out, 0);
    assert!(
        out.stdout == input,
        "cat gave back {} bytes, not the 1 MiB sent",
        out.stdout.len()
    );

    // run:detached keeps the words too; its output goes to the logs.
    let detached = server.ok(&[
        "run:detached",
        "-a",
        "shop",
        "--",
        "sh",
        "-c",
        "echo \"detached: $1|$2\"",
        "sh",
        "a b",
        "it's $HOME",
    ]);
    let name = detached
        .split_whitespace()
        .nth(2)
        .expect("running as NAME")
        .to_string();
    await_condition("the detached run's output in the logs", || {
        server
            .ok(&["logs", "-a", "shop", "--ps", &name, "--source", "app"])
            .contains("detached: a b|it's $HOME")
    });
}

#[test]
fn a_large_stream_arrives_whole_and_a_stalled_reader_holds_the_one_off_back() {
    let server = Server::start();

    // 50 MB written by the one-off, its sha256 computed on the server: the client gets the same.
    let len = 50_000_000;
    let script = format!(
        "f=$(mktemp) && head -c {len} /dev/urandom > \"$f\" && sha256sum < \"$f\" >&2 && cat \"$f\"; s=$?; rm -f \"$f\"; exit $s"
    );
    let out = run(&server, &[script.as_str()]);
    assert_code(&out, 0);
    assert_eq!(out.stdout.len(), len);
    let theirs = String::from_utf8_lossy(&out.stderr);
    let ours: String = sha2::Sha256::digest(&out.stdout)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(theirs.split_whitespace().next(), Some(ours.as_str()));

    // A client that does not read: the one-off blocks on its pipe with little written, instead
    // of the server buffering its output.
    let total: u64 = 400_000_000 + unique_tag().parse::<u64>().expect("number") % 1_000_000;
    let needle = format!("head -c {total}");
    let mut client = server
        .command(&[
            "run",
            "-a",
            "shop",
            "--",
            "head",
            "-c",
            &total.to_string(),
            "/dev/zero",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("client");
    let written = std::cell::Cell::new(0u64);
    let stable = std::cell::Cell::new(0u32);
    await_condition("the one-off to block on its full pipe", || {
        let Some(&pid) = processes_starting(&needle).first() else {
            return false;
        };
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        let now = io
            .lines()
            .find_map(|l| l.strip_prefix("wchar:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if wchan.contains("pipe_write") && now == written.get() {
            stable.set(stable.get() + 1);
        } else {
            stable.set(0);
        }
        written.set(now);
        stable.get() >= 25
    });
    assert!(
        written.get() < 64 << 20,
        "the one-off wrote {} bytes with no one reading them",
        written.get()
    );

    // The client goes away: the one-off is stopped, not left blocked.
    let _ = client.kill();
    let _ = client.wait();
    await_condition("the abandoned one-off to end", || {
        processes_starting(&needle).is_empty()
    });
}

#[test]
fn an_abandoned_one_off_is_stopped() {
    let server = Server::start();

    // One that prints nothing, its client killed.
    let seconds = format!("1{}", unique_tag());
    let needle = format!("sleep {seconds}");
    let mut client = server
        .command(&["run", "-a", "shop", "--", "sleep", &seconds])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("client");
    await_condition("the one-off to start", || {
        !processes_starting(&needle).is_empty()
    });
    let _ = client.kill();
    let _ = client.wait();
    await_condition("the abandoned one-off to end", || {
        processes_starting(&needle).is_empty()
    });

    // One whose reader closes the pipe after 10 bytes, as `| head -c 10` does: the client
    // dies of SIGPIPE as Unix tools do, and the one-off ends.
    let total = format!("9{}00000", unique_tag());
    let needle = format!("head -c {total}");
    let mut client = server
        .command(&["run", "-a", "shop", "--", "head", "-c", &total, "/dev/zero"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client");
    let mut first = [0u8; 10];
    let mut stdout = client.stdout.take().expect("stdout");
    stdout.read_exact(&mut first).expect("the first bytes");
    assert_eq!(first, [0u8; 10]);
    drop(stdout);
    let out = client.wait_with_output().expect("client");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGPIPE),
        "{out:?}"
    );
    assert!(out.stderr.is_empty(), "{out:?}");
    await_condition("the one-off to end after its reader went away", || {
        processes_starting(&needle).is_empty()
    });
}

/// A PostgreSQL database of its own for one test, dropped at the end.
struct Database {
    name: String,
}

impl Database {
    fn admin_url() -> String {
        std::env::var("DOZEN_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    fn create(tag: &str) -> Database {
        let db = Database {
            name: format!("dozen_run_{tag}_{}", unique_tag()),
        };
        db.admin(&format!("CREATE DATABASE {}", db.name));
        db
    }

    fn url(&self) -> String {
        let base = Database::admin_url();
        let (head, _) = base.rsplit_once('/').expect("a database name in the URL");
        format!("{head}/{}", self.name)
    }

    fn psql(url: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([url, "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql (PostgreSQL client) must be installed for this test");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn admin(&self, sql: &str) -> String {
        Database::psql(&Database::admin_url(), sql)
    }

    fn query(&self, sql: &str) -> String {
        Database::psql(&self.url(), sql)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &Database::admin_url(),
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .status();
    }
}

#[test]
fn pg_dump_and_pg_restore_through_one_offs() {
    let server = Server::start();
    let source = Database::create("src");
    let target = Database::create("dst");
    source.query(
        "CREATE TABLE blobs (id int PRIMARY KEY, data bytea); \
         INSERT INTO blobs SELECT n, decode(md5(n::text) || '00ff0a0d', 'hex') FROM generate_series(1, 5000) n",
    );
    server.ok(&[
        "config:set",
        "-a",
        "shop",
        &format!("DATABASE_URL={}", source.url()),
        &format!("RESTORE_URL={}", target.url()),
    ]);

    // The custom-format dump is binary (compressed): it must arrive as pg_dump wrote it.
    let dump = run(&server, &["pg_dump -Fc --no-owner \"$DATABASE_URL\""]);
    assert_code(&dump, 0);
    assert!(
        dump.stdout.starts_with(b"PGDMP"),
        "not a custom-format dump"
    );
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(file.path(), &dump.stdout).expect("write dump");
    let listed = Command::new("pg_restore")
        .arg("-l")
        .arg(file.path())
        .output()
        .expect("pg_restore");
    assert!(
        listed.status.success(),
        "pg_restore cannot read the dump: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("TABLE DATA public blobs"));

    // And back in through stdin, into another database.
    let restored = server.run_with(
        &[
            "run",
            "-a",
            "shop",
            "--",
            "pg_restore --no-owner -d \"$RESTORE_URL\"",
        ],
        &dump.stdout,
    );
    assert_code(&restored, 0);
    let digest =
        "SELECT count(*) || ' ' || md5(string_agg(data::text, ',' ORDER BY id)) FROM blobs";
    assert_eq!(target.query(digest), source.query(digest));
}

/// POST `body` to the API with the test token (HTTP/1.1, `Connection: close`); the whole
/// answer, chunked encoding included.
fn post_raw(port: u16, path: &str, body: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf
}

#[test]
fn bad_run_requests_are_refused_and_older_clients_still_get_lines() {
    let server = Server::start();

    // An empty command, from the CLI: a clear error, nothing run.
    let out = Output::from(
        server
            .command(&["run", "-a", "shop", "--", ""])
            .stdin(Stdio::null())
            .output()
            .expect("client"),
    )
    .expect_code(1, &["run", "--", ""]);
    assert!(
        out.stderr.contains("command: give the command to run"),
        "{}",
        out.stderr
    );

    for (path, body, message) in [
        (
            "/v1/apps/shop/run?argv=not-json",
            &b""[..],
            "argv: a JSON array of strings",
        ),
        (
            "/v1/apps/shop/run?argv=%5B%5D",
            b"",
            "command: give the command to run",
        ),
        (
            "/v1/apps/shop/run",
            br#"{"command": "echo a", "argv": ["echo", "b"]}"#,
            "not both",
        ),
        (
            "/v1/apps/shop/run",
            br#"{"argv": [""], "detached": true}"#,
            "command: give the command to run",
        ),
    ] {
        let answer = post_raw(server.port, path, body);
        assert!(
            answer.starts_with("HTTP/1.1 422") && answer.contains(message),
            "{path}: {answer}"
        );
    }

    // A client that sends ?command= and does not ask for frames gets NDJSON lines, as before.
    let answer = post_raw(
        server.port,
        "/v1/apps/shop/run?command=echo%20%22from%20$PS%22%3B%20exit%206",
        b"",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("application/x-ndjson"), "{answer}");
    assert!(answer.contains(r#""line":"from run."#), "{answer}");
    assert!(answer.contains(r#""exit":6"#), "{answer}");
}
