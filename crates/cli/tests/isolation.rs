//! Apps kept apart on one host by a real `dozen server` run as root: each app's code runs as a
//! system user of its own, sees nothing of the platform's data directory but its own release,
//! has a private `/tmp`, and cannot see, read or signal another app's processes or the
//! server's. Every attempt below is what a hostile app would type in `dozen run`, and the test
//! asserts the error it gets.
//!
//! These need root (as CI runs them): with `CI` set, a run as another user fails.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::server::Server;
use support::{App, Output, await_condition, unique_tag};

/// True when the tests can run; false (after saying why) when not root outside CI.
fn root_or_skip() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the isolation tests must run as root (the server gives each app a user only as root)"
    );
    eprintln!("skipped: the isolation tests need root");
    false
}

/// `getent passwd NAME`: the uid, if the user exists.
fn uid_of(user: &str) -> Option<u32> {
    let out = Command::new("getent")
        .args(["passwd", user])
        .output()
        .expect("getent");
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|u| u.parse().ok())
}

/// The real uid of process `pid`.
fn uid_of_process(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .expect("Uid line")
}

/// Two apps on one server: `a` with a web process, `b` with a worker and a secret.
struct TwoApps {
    server: Server,
    a: String,
    b: String,
    _sources: (App, App),
}

impl TwoApps {
    fn deploy() -> TwoApps {
        let server = Server::start();
        let tag = unique_tag();
        let (a, b) = (format!("iso-a-{tag}"), format!("iso-b-{tag}"));
        let source_a = App::with("web: exec python3 -m http.server $PORT\n");
        let source_b = App::with("worker: sleep 1000\n");
        source_b.write("secret.txt", "b's own file\n");
        for (app, source) in [(&a, &source_a), (&b, &source_b)] {
            server.ok(&["apps:create", app]);
            server.deploy(app, source.path());
        }
        server.ok(&["config:set", "-a", &b, "STRIPE_KEY=sk_live_beta_only"]);
        server.ok(&["ps:scale", "-a", &b, "worker=1"]);
        server.await_state(&a, "web.1", "up");
        server.await_state(&b, "worker.1", "running");
        TwoApps {
            server,
            a,
            b,
            _sources: (source_a, source_b),
        }
    }

    /// `dozen run -a APP -- sh -c SCRIPT`.
    fn run(&self, app: &str, script: &str) -> Output {
        self.server
            .client(&["run", "-a", app, "--", "sh", "-c", script])
    }

    /// The pid `dozen ps` shows for process `name` of `app`.
    fn pid(&self, app: &str, name: &str) -> u32 {
        let ps = self.server.json(&["ps", "-a", app]);
        ps.as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .and_then(|p| p["pid"].as_u64())
            .unwrap_or_else(|| panic!("no pid for {name} of {app}: {ps}")) as u32
    }

    /// The directory `b`'s current release runs from, on the host.
    fn release_dir(&self, app: &str) -> PathBuf {
        let releases = self.server.data.path().join("releases").join(app);
        let mut versions: Vec<PathBuf> = std::fs::read_dir(&releases)
            .expect("releases dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        versions.sort();
        versions.pop().expect("a release dir")
    }
}

impl Drop for TwoApps {
    /// Destroy both apps, so that their users leave the host's user database.
    fn drop(&mut self) {
        for app in [&self.a, &self.b] {
            let _ = self
                .server
                .client(&["apps:destroy", "-a", app, "--confirm", app]);
        }
    }
}

#[track_caller]
fn assert_fails_with(out: &Output, error: &str, what: &str) {
    assert_ne!(out.code(), Some(0), "{what} succeeded: {}", out.stdout);
    assert!(
        out.stderr.contains(error),
        "{what}: expected {error:?} in stderr\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn each_app_runs_as_its_own_user() {
    if !root_or_skip() {
        return;
    }
    let t = TwoApps::deploy();
    let uid_a = uid_of(&t.server.app_user(&t.a)).expect("a user for app a");
    let uid_b = uid_of(&t.server.app_user(&t.b)).expect("a user for app b");
    assert_ne!(uid_a, 0);
    assert_ne!(uid_a, uid_b);

    // A one-off.
    let out = t.run(&t.a, "id -u; id -un; echo $HOME");
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], uid_a.to_string(), "{}", out.stdout);
    assert_eq!(lines[1], t.server.app_user(&t.a));
    assert!(
        lines[2].starts_with(&t.release_dir(&t.a).display().to_string()),
        "HOME is the app's release directory: {}",
        out.stdout
    );

    // Processes of the formation; their pids in `dozen ps` are the host's pids.
    assert_eq!(uid_of_process(t.pid(&t.a, "web.1")), uid_a);
    let worker = t.pid(&t.b, "worker.1");
    assert_eq!(uid_of_process(worker), uid_b);
    let cmdline = std::fs::read(format!("/proc/{worker}/cmdline")).expect("cmdline");
    assert_eq!(cmdline, b"sleep\x001000\x00");

    // The web process still serves through the router as its own user.
    let (status, body) = t.server.get(&format!("{}.localhost", t.a), "/");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn an_app_cannot_read_or_signal_another_app_or_the_server() {
    if !root_or_skip() {
        return;
    }
    let t = TwoApps::deploy();
    let b_worker = t.pid(&t.b, "worker.1");
    let b_dir = t.release_dir(&t.b);
    let b_file = b_dir.join("secret.txt");
    let data = t.server.data.path();

    // The platform's data directory is out of sight: another app's release, the store.
    let out = t.run(&t.a, &format!("cat {}", b_file.display()));
    assert_fails_with(
        &out,
        "No such file or directory",
        "reading b's release files",
    );
    let out = t.run(&t.a, &format!("ls {}", data.join("releases").display()));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), t.a, "only a's own releases are visible");
    let out = t.run(&t.a, &format!("cat {}", data.join("dozen.db").display()));
    assert_fails_with(&out, "No such file or directory", "reading the store");

    // Other users' processes do not exist in its /proc: b's environment, the server's.
    let out = t.run(&t.a, &format!("cat /proc/{b_worker}/environ"));
    assert_fails_with(&out, "No such file or directory", "reading b's environment");
    let out = t.run(&t.a, &format!("cat /proc/{}/environ", t.server.pid()));
    assert_fails_with(
        &out,
        "No such file or directory",
        "reading the server's environment",
    );
    let out = t.run(
        &t.a,
        "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'",
    );
    assert!(
        !out.stdout.contains("sk_live_beta_only") && !out.stdout.contains("DOZEN_API_TOKEN"),
        "a secret leaked through /proc: {}",
        out.stdout
    );

    // Nor may it signal them.
    let out = t.run(&t.a, &format!("kill -TERM {b_worker}"));
    assert_fails_with(&out, "Operation not permitted", "signalling b's worker");
    let out = t.run(&t.a, &format!("kill -KILL {}", t.server.pid()));
    assert_fails_with(&out, "Operation not permitted", "signalling the server");
    assert_eq!(
        t.pid(&t.b, "worker.1"),
        b_worker,
        "b's worker was not touched"
    );

    // Outside its namespace too, the files are not a's: b's release directory is b's alone,
    // and the data directory and the store the server's.
    let uid_a = uid_of(&t.server.app_user(&t.a)).expect("user a");
    let uid_b = uid_of(&t.server.app_user(&t.b)).expect("user b");
    let meta = std::fs::metadata(&b_dir).expect("b's release dir");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (uid_b, 0o700));
    let cache = std::fs::metadata(data.join("cache").join(&t.b)).expect("b's build cache");
    assert_eq!((cache.uid(), cache.mode() & 0o777), (uid_b, 0o700));
    let meta = std::fs::metadata(data).expect("data dir");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o700));
    for name in ["dozen.db", "dozen.db-wal", "dozen.db-shm"] {
        if let Ok(meta) = std::fs::metadata(data.join(name)) {
            assert_eq!(meta.mode() & 0o777, 0o600, "{name}");
        }
    }
    let as_a = Command::new("setpriv")
        .arg(format!("--reuid={uid_a}"))
        .arg(format!("--regid={uid_a}"))
        .args(["--clear-groups", "cat"])
        .arg(&b_file)
        .output()
        .expect("setpriv");
    assert!(
        String::from_utf8_lossy(&as_a.stderr).contains("Permission denied"),
        "a's user reading b's file on the host: {}",
        String::from_utf8_lossy(&as_a.stderr)
    );
}

#[test]
fn tmp_is_private_to_each_process() {
    if !root_or_skip() {
        return;
    }
    let t = TwoApps::deploy();
    let out = t.run(
        &t.a,
        "echo a-was-here > /tmp/a-note && cat /tmp/a-note && ls -A /tmp",
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("a-was-here\n"), "{}", out.stdout);
    // Nothing of the host's /tmp (where the test's own files are) is there.
    let host_tmp = std::env::temp_dir();
    assert!(host_tmp.join(".").is_dir());

    for app in [&t.b, &t.a] {
        let out = t.run(app, "cat /tmp/a-note");
        assert_fails_with(
            &out,
            "No such file or directory",
            &format!("{app} reading a's /tmp file"),
        );
    }
    // Not the host's /tmp either.
    let marker = tempfile::NamedTempFile::new_in("/tmp").expect("tmp file");
    let out = t.run(&t.a, &format!("ls {}", marker.path().display()));
    assert_fails_with(&out, "No such file or directory", "seeing the host's /tmp");
    assert!(!Path::new("/tmp/a-note").exists());
}

#[test]
fn destroying_an_app_removes_its_user() {
    if !root_or_skip() {
        return;
    }
    let server = Server::start();
    let app = format!("iso-d-{}", unique_tag());
    let user = server.app_user(&app);
    let source = App::with("worker: sleep 1000\n");
    server.ok(&["apps:create", &app]);
    server.deploy(&app, source.path());
    server.ok(&["ps:scale", "-a", &app, "worker=1"]);
    server.await_state(&app, "worker.1", "running");
    let uid = uid_of(&user).expect("the app's user after its deploy");
    server.ok(&["apps:destroy", "-a", &app, "--confirm", &app]);
    assert_eq!(uid_of(&user), None, "{user} is still in the user database");
    await_condition("no process of the app's user", || {
        support::processes_matching("sleep 1000")
            .into_iter()
            .all(|p| {
                std::fs::read_to_string(format!("/proc/{p}/status")).is_ok_and(|s| {
                    !s.lines()
                        .any(|l| l.starts_with("Uid:") && l.contains(&format!("\t{uid}\t")))
                })
            })
    });
}

#[test]
fn a_group_left_behind_with_the_users_name_is_taken_over() {
    if !root_or_skip() {
        return;
    }
    let server = Server::start();
    let app = format!("iso-g-{}", unique_tag());
    let user = server.app_user(&app);
    let made = std::process::Command::new("groupadd")
        .args(["--system", &user])
        .status()
        .expect("groupadd");
    assert!(made.success(), "groupadd {user}");
    let source = App::with("worker: sleep 1000\n");
    server.ok(&["apps:create", &app]);
    server.deploy(&app, source.path());
    assert!(uid_of(&user).is_some(), "{user} was made despite its group");
    server.ok(&["apps:destroy", "-a", &app, "--confirm", &app]);
    assert_eq!(uid_of(&user), None, "{user} is still in the user database");
}

/// A lock on a user-database file as the system's tools take one: a file `<file>.lock` that
/// holds the pid of a live process (this test's), which makes `useradd` and `userdel` give up
/// at once. Released when dropped.
struct UserDatabaseLock(PathBuf);

impl UserDatabaseLock {
    /// Take the lock on `file` (`/etc/group`, `/etc/passwd`), waiting while another program
    /// has it.
    fn take(file: &str) -> UserDatabaseLock {
        let path = PathBuf::from(format!("{file}.lock"));
        await_condition(&format!("{} to be free", path.display()), || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut f| {
                    use std::io::Write;
                    write!(f, "{}", std::process::id())
                })
                .is_ok()
        });
        UserDatabaseLock(path)
    }
}

impl Drop for UserDatabaseLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_user_database_locked_by_another_program_is_waited_for() {
    if !root_or_skip() {
        return;
    }
    let server = Server::start();
    let app = format!("iso-l-{}", unique_tag());
    let user = server.app_user(&app);
    let source = App::with("worker: sleep 1000\n");
    server.ok(&["apps:create", &app]);
    let mut seen = Vec::new();

    // Another program holds /etc/group while the deploy makes the app's user.
    let lock = UserDatabaseLock::take("/etc/group");
    let dir = source.path().to_str().expect("utf-8 path");
    let deploy = server
        .client_command(&["deploy", "-a", &app, "-d", dir])
        .output_in_background();
    server.await_output("useradd exited with code 10", &mut seen);
    drop(lock);
    let out = deploy.join().expect("deploy thread");
    assert!(
        out.status.success() && uid_of(&user).is_some(),
        "the deploy did not wait for the lock: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // And /etc/passwd while apps:destroy removes it.
    let lock = UserDatabaseLock::take("/etc/passwd");
    let destroy = server
        .client_command(&["apps:destroy", "-a", &app, "--confirm", &app])
        .output_in_background();
    server.await_output("userdel exited with code 1", &mut seen);
    drop(lock);
    let out = destroy.join().expect("destroy thread");
    assert!(
        out.status.success() && uid_of(&user).is_none(),
        "apps:destroy did not wait for the lock: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A command run to completion on a thread of its own.
trait InBackground {
    fn output_in_background(self) -> std::thread::JoinHandle<std::process::Output>;
}

impl InBackground for Command {
    fn output_in_background(mut self) -> std::thread::JoinHandle<std::process::Output> {
        std::thread::spawn(move || {
            self.stdin(std::process::Stdio::null())
                .output()
                .expect("client")
        })
    }
}

#[test]
fn the_server_says_how_apps_are_kept_apart() {
    if !root_or_skip() {
        return;
    }
    let server = Server::start();
    assert!(
        server
            .startup
            .iter()
            .any(|l| l.contains("each app builds and runs as a system user of its own")),
        "{:#?}",
        server.startup
    );
}

#[test]
fn a_server_that_is_not_root_says_it_runs_one_trusted_tenant() {
    if !root_or_skip() {
        return;
    }
    // The server as `nobody`, its data directory its own.
    let data = tempfile::tempdir().expect("tmp");
    std::os::unix::fs::chown(data.path(), Some(65534), Some(65534)).expect("chown");
    let port = support::free_port();
    let token = support::server::TOKEN;
    let as_nobody = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(support::dozen_bin())
            .args(args)
            .env("PORT", port.to_string())
            .env("DOZEN_ROUTER_PORT", support::free_port().to_string())
            .env("DOZEN_DATA_DIR", data.path())
            .env("DOZEN_API_TOKEN", token)
            .env("DOZEN_BIND", "127.0.0.1")
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1");
        c
    };
    let migrate = as_nobody(&["migrate"]).output().expect("setpriv");
    assert!(
        migrate.status.success(),
        "migrate as nobody (the dozen binary must be readable by every user): {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let mut child = as_nobody(&["server"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("server");
    let lines = support::line_reader(child.stdout.take().expect("stdout"));
    let mut startup = Vec::new();
    while !startup.iter().any(|l: &String| l.contains("listening")) {
        startup.push(lines.recv_timeout(support::HANG).expect("a start-up line"));
    }
    let said = startup
        .iter()
        .find(|l| l.contains("not root"))
        .unwrap_or_else(|| panic!("no line about tenancy: {startup:#?}"));
    assert!(said.contains("one trusted tenant"), "{said}");

    // It works as before: an app's one-off runs as the server's own user.
    let client = |args: &[&str]| {
        let out = Command::new(support::dozen_bin())
            .args(args)
            .env("DOZEN_URL", format!("http://127.0.0.1:{port}"))
            .env("DOZEN_API_TOKEN", token)
            .env("NO_COLOR", "1")
            .output()
            .expect("client");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let source = App::with("worker: sleep 1000\n");
    client(&["apps:create", "tenant"]);
    client(&[
        "deploy",
        "-a",
        "tenant",
        "-d",
        source.path().to_str().expect("path"),
    ]);
    assert_eq!(
        client(&["run", "-a", "tenant", "--", "id -u"]).trim(),
        "65534"
    );
    // SAFETY: signalling the server this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

#[test]
fn confined_processes_stop_restart_and_exit_as_before() {
    if !root_or_skip() {
        return;
    }
    let t = TwoApps::deploy();
    // Exit statuses come back unchanged, a signal's as 128 + n.
    assert_eq!(t.run(&t.a, "exit 3").code(), Some(3));
    assert_eq!(
        t.run(&t.a, "kill -TERM $$").code(),
        Some(128 + libc::SIGTERM)
    );

    // A restart stops the old process (its pid is gone) and starts a new one as the app's user.
    let old = t.pid(&t.b, "worker.1");
    t.server.ok(&["ps:restart", "-a", &t.b, "worker"]);
    await_condition("the old worker to be gone", || {
        !Path::new(&format!("/proc/{old}")).exists()
    });
    t.server.await_state(&t.b, "worker.1", "running");
    let new = t.pid(&t.b, "worker.1");
    assert_ne!(new, old);
    let uid_b = uid_of(&t.server.app_user(&t.b)).expect("user b");
    assert_eq!(uid_of_process(new), uid_b);

    // A crash is restarted by the supervisor (root may signal it; the app's `ps` pid is real).
    // SAFETY: killing an app process this test's server started.
    unsafe { libc::kill(new as i32, libc::SIGKILL) };
    await_condition("worker.1 to be restarted", || {
        let ps = t.server.json(&["ps", "-a", &t.b]);
        ps.as_array().into_iter().flatten().any(|p| {
            p["name"] == "worker.1"
                && p["restarts"].as_u64() >= Some(1)
                && p["state"] == "running"
                && p["pid"].as_u64() != Some(u64::from(new))
        })
    });
}
