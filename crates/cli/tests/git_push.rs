//! `git push dozen main` end to end: the real git client against the real `dozen server`,
//! through `dozen git:remote` and the `dozen git:credentials` helper, with the app answering
//! through the router.

mod support;

// More of the workflow, each beside the helpers here.
#[path = "git_push/deploy_head.rs"]
mod deploy_head;
#[path = "git_push/over_tls.rs"]
mod over_tls;
#[path = "git_push/stalls.rs"]
mod stalls;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

use support::api::Gate;
use support::server::{Server, TOKEN};
use support::{HANG, dozen_bin, line_reader};

/// A checkout of an app with git configured for the test only (no user or system config).
struct Checkout {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    url: String,
    token: String,
    /// `DOZEN_CA_CERT` for the server's TLS, when it serves HTTPS.
    ca: Option<PathBuf>,
}

impl Checkout {
    /// A new checkout with `files`, committed, and `dozen git:remote -a APP` run in it.
    fn new(server: &Server, app: &str, files: &[(&str, &str)]) -> Checkout {
        Checkout::trusting(server, app, files, None)
    }

    /// [`Checkout::new`] with `DOZEN_CA_CERT=ca` in the environment of `dozen`.
    fn trusting(server: &Server, app: &str, files: &[(&str, &str)], ca: Option<&Path>) -> Checkout {
        let c = Checkout {
            dir: tempfile::tempdir().expect("tmp"),
            home: tempfile::tempdir().expect("tmp"),
            url: server.url.clone(),
            token: TOKEN.to_string(),
            ca: ca.map(Path::to_path_buf),
        };
        c.git_ok(&["init", "--quiet", "--initial-branch=main"]);
        c.commit(files, "first");
        let out = c.dozen(&["git:remote", "-a", app]);
        assert!(out.status.success(), "git:remote: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("git push dozen main"));
        c
    }

    /// A clone of the app's repository on the server (with the helper for credentials).
    fn clone_of(server: &Server, app: &str, token: &str) -> (Checkout, std::process::Output) {
        let c = Checkout {
            dir: tempfile::tempdir().expect("tmp"),
            home: tempfile::tempdir().expect("tmp"),
            url: server.url.clone(),
            token: token.to_string(),
            ca: None,
        };
        let helper = format!("credential.helper=!{} git:credentials", dozen_bin());
        let url = format!("{}/git/{app}.git", server.url);
        let out = c.git(&["-c", &helper, "clone", "--quiet", &url, "."]);
        (c, out)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self, c: &mut Command) {
        c.current_dir(self.dir.path())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            // The host's own CA settings for git would override the checkout's.
            .env_remove("GIT_SSL_CAINFO")
            .env_remove("GIT_SSL_CAPATH")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("DOZEN_URL", &self.url)
            .env("DOZEN_API_TOKEN", &self.token)
            .env("NO_COLOR", "1");
        match &self.ca {
            Some(ca) => c.env("DOZEN_CA_CERT", ca),
            None => c.env_remove("DOZEN_CA_CERT"),
        };
    }

    fn git_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.args(args);
        self.env(&mut c);
        c
    }

    fn git(&self, args: &[&str]) -> std::process::Output {
        self.git_command(args)
            .stdin(Stdio::null())
            .output()
            .expect("git")
    }

    #[track_caller]
    fn git_ok(&self, args: &[&str]) -> String {
        let out = self.git(args);
        assert!(
            out.status.success(),
            "git {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }

    fn dozen(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(dozen_bin());
        c.args(args);
        self.env(&mut c);
        c.stdin(Stdio::null()).output().expect("dozen")
    }

    /// Write `files` and commit them; the new commit's id.
    fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (name, content) in files {
            let path = self.dir.path().join(name);
            std::fs::write(&path, content).expect("write");
        }
        self.git_ok(&["add", "--all"]);
        self.git_ok(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    fn head(&self) -> String {
        self.git_ok(&["rev-parse", "HEAD"])
    }

    /// `git push ARGS`: its status and everything it printed (stderr, where git shows the
    /// `remote:` lines, then stdout).
    fn push(&self, args: &[&str]) -> (bool, String) {
        let mut all = vec!["push"];
        all.extend_from_slice(args);
        let out = self.git(&all);
        (
            out.status.success(),
            format!("{}{}", text(&out.stderr), text(&out.stdout)),
        )
    }

    /// `git push ARGS` in the background, its stderr read line by line.
    fn spawn_push(&self, args: &[&str]) -> (Child, Receiver<String>) {
        let mut all = vec!["push"];
        all.extend_from_slice(args);
        let mut child = self
            .git_command(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git push");
        let lines = line_reader(child.stderr.take().expect("stderr"));
        (child, lines)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Wait for a line containing `needle`; every line read on the way is added to `seen`.
fn await_line(lines: &Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    loop {
        match lines.recv_timeout(HANG) {
            Ok(l) if l.contains(needle) => {
                seen.push(l);
                return;
            }
            Ok(l) => seen.push(l),
            Err(e) => panic!("no line with {needle:?} ({e}); saw {seen:#?}"),
        }
    }
}

/// A web app that serves its `index.html`, and a release phase that waits at the test's gate
/// when the app has the config var `GATE`.
fn app_files(page: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "Procfile",
            "web: python3 -m http.server $PORT --bind 127.0.0.1\nrelease: python3 gate.py\n"
                .to_string(),
        ),
        (
            "gate.py",
            "import os, socket, sys, time\n\
             if os.path.exists('fail-release'):\n\
             \x20   sys.exit('the release phase fails on purpose')\n\
             port = os.environ.get('GATE')\n\
             while port:\n\
             \x20   try:\n\
             \x20       socket.create_connection(('127.0.0.1', int(port)), timeout=1).close()\n\
             \x20       break\n\
             \x20   except OSError:\n\
             \x20       time.sleep(0.05)\n"
                .to_string(),
        ),
        ("index.html", format!("{page}\n")),
    ]
}

fn files<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[track_caller]
fn page(server: &Server, app: &str) -> String {
    let (status, body) = server.get(&format!("{app}.localhost"), "/");
    if status != 200 {
        // What a user would look at next: the processes and the app's log.
        let ps = server.client(&["ps", "-a", app]);
        let logs = server.client(&["logs", "-a", app, "-n", "60"]);
        panic!(
            "GET / on {app}: {status} {}\nps:\n{}{}\nlogs:\n{}{}",
            text(&body),
            ps.stdout,
            ps.stderr,
            logs.stdout,
            logs.stderr
        );
    }
    text(&body).trim().to_string()
}

/// The app's releases, newest first.
fn releases(server: &Server, app: &str) -> Vec<serde_json::Value> {
    server
        .json(&["releases", "-a", app])
        .as_array()
        .expect("a list")
        .clone()
}

fn git_available() -> bool {
    dozen_testkit::tool("git", "apt-get install git").is_some()
}

fn repo_dir(server: &Server, app: &str) -> PathBuf {
    server.data.path().join("git").join(format!("{app}.git"))
}

#[test]
fn push_builds_releases_and_a_failed_build_rejects_the_push() {
    if !git_available() {
        return;
    }
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let v1_files = app_files("first page");
    let c = Checkout::new(&server, "shop", &files(&v1_files));
    let first = c.head();
    // The token is not in the remote's URL: git asks the credential helper.
    let remote = c.git_ok(&["remote", "get-url", "dozen"]);
    assert_eq!(remote, format!("{}/git/shop.git", server.url));

    // The build output and the rollout arrive as `remote:` lines; the app answers.
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    for line in [
        "remote: -----> build ",
        "running the release phase",
        "v1 is live",
    ] {
        assert!(out.contains(line), "no {line:?} in {out}");
    }
    assert_eq!(page(&server, "shop"), "first page");
    let r = releases(&server, "shop");
    assert_eq!(r[0]["version"], 1);
    assert_eq!(r[0]["commit"], first.as_str(), "{r:?}");
    // Made by the token that pushed (the server's bootstrap admin token here).
    assert_eq!(r[0]["created_by"], "bootstrap", "{r:?}");
    let info = server.ok(&["releases:info", "v1", "-a", "shop"]);
    assert!(info.contains(&format!("commit:       {first}")), "{info}");
    assert!(
        server
            .ok(&["releases", "-a", "shop"])
            .contains(&format!("Deploy {}", &first[..7]))
    );
    assert!(repo_dir(&server, "shop").join("HEAD").exists());

    // A build that fails: the push is refused with the build's reason, the branch stays, the
    // first release keeps serving.
    let broken = c.commit(&[("Procfile", "web: one\nweb: two\n")], "broken");
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(!ok, "{out}");
    assert!(out.contains("duplicate process type"), "{out}");
    assert!(out.contains("[remote rejected] main -> main"), "{out}");
    let remote_main = c.git_ok(&["ls-remote", "dozen", "refs/heads/main"]);
    assert!(remote_main.starts_with(&first), "{remote_main}");
    assert_eq!(page(&server, "shop"), "first page");
    assert!(
        releases(&server, "shop")
            .iter()
            .all(|r| r["commit"] != broken.as_str())
    );

    // A release phase that fails rejects the push too.
    let failing = c.commit(
        &[
            ("Procfile", v1_files[0].1.as_str()),
            ("fail-release", "yes\n"),
            ("index.html", "never served\n"),
        ],
        "release phase fails",
    );
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(!ok, "{out}");
    assert!(out.contains("the release phase"), "{out}");
    assert!(out.contains("[remote rejected]"), "{out}");
    let remote_main = c.git_ok(&["ls-remote", "dozen", "refs/heads/main"]);
    assert!(remote_main.starts_with(&first), "{remote_main}");
    assert_eq!(page(&server, "shop"), "first page");
    let failed = releases(&server, "shop");
    assert_eq!(failed[0]["commit"], failing.as_str());
    assert_eq!(failed[0]["status"], "failed");

    // The fix deploys.
    std::fs::remove_file(c.path().join("fail-release")).expect("rm");
    let fixed = c.commit(&[("index.html", "second page\n")], "fix");
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    assert_eq!(page(&server, "shop"), "second page");
    let r = releases(&server, "shop");
    assert_eq!(
        (r[0]["commit"].as_str(), r[0]["current"].as_bool()),
        (Some(fixed.as_str()), Some(true))
    );

    // A force push of an older commit is a new release of it, from the slug built before.
    let (ok, out) = c.push(&["--force", "dozen", &format!("{first}:refs/heads/main")]);
    assert!(ok, "{out}");
    assert!(out.contains("was built before"), "{out}");
    assert!(!out.contains("remote: -----> build "), "{out}");
    assert_eq!(page(&server, "shop"), "first page");
    let r = releases(&server, "shop");
    assert_eq!(r[0]["commit"], first.as_str());
    assert_eq!(r[0]["current"], true);
    assert_eq!(r[0]["slug"], r.last().expect("v1")["slug"]);
    assert!(r[0]["version"].as_i64() > r[1]["version"].as_i64());
    let remote_main = c.git_ok(&["ls-remote", "dozen", "refs/heads/main"]);
    assert!(remote_main.starts_with(&first), "{remote_main}");

    // Another branch deploys when pushed to main; other refs are refused with the way to do it.
    c.git_ok(&["checkout", "--quiet", "-b", "feature", &fixed]);
    let (ok, out) = c.push(&["dozen", "feature"]);
    assert!(!ok, "{out}");
    assert!(out.contains("HEAD:main"), "{out}");
    let (ok, out) = c.push(&["--force", "dozen", "feature:main"]);
    assert!(ok, "{out}");
    assert_eq!(page(&server, "shop"), "second page");

    // Destroying the app removes its repository.
    server.ok(&["apps:destroy", "-a", "shop", "--confirm", "shop"]);
    assert!(!repo_dir(&server, "shop").exists());
}

#[test]
fn tokens_need_their_scope_and_clones_get_the_deployed_source() {
    if !git_available() {
        return;
    }
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    server.ok(&["apps:create", "blog"]);
    let token = |args: &[&str]| {
        let out = server.admin(args).output().expect("tokens:create");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    let read_shop = token(&[
        "tokens:create",
        "reader",
        "--app",
        "shop",
        "--scope",
        "read",
    ]);
    let deploy_blog = token(&["tokens:create", "blogger", "--app", "blog"]);
    let v1 = app_files("deployed page");
    let mut c = Checkout::new(&server, "shop", &files(&v1));
    let deployed = c.head();

    // A wrong token: git is told it failed to authenticate; nothing is deployed.
    c.token = "dzn_not_a_token".into();
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(!ok, "{out}");
    assert!(out.contains("Authentication failed"), "{out}");
    // A token of another app, and a read token, are refused with the reason.
    c.token = deploy_blog.clone();
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(!ok, "{out}");
    assert!(out.contains("may not push to shop"), "{out}");
    assert!(out.contains("deploy on shop"), "{out}");
    c.token = read_shop.clone();
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(!ok, "{out}");
    assert!(out.contains("token reader may not push to shop"), "{out}");
    assert!(releases(&server, "shop").is_empty());

    // The app's deploy token pushes, and the release says it did.
    c.token = token(&["tokens:create", "pusher", "--app", "shop"]);
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    let r = releases(&server, "shop");
    assert_eq!(r[0]["created_by"], "pusher", "{r:?}");

    // A read token clones the deployed source back; a token of another app may not.
    let (clone, out) = Checkout::clone_of(&server, "shop", &read_shop);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(clone.head(), deployed);
    assert_eq!(
        std::fs::read_to_string(clone.path().join("index.html")).expect("page"),
        "deployed page\n"
    );
    let (_, out) = Checkout::clone_of(&server, "shop", &deploy_blog);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("may not fetch from shop"),
        "{}",
        text(&out.stderr)
    );

    // The repository is the server's: an app's own processes cannot read it.
    let repo = repo_dir(&server, "shop");
    let head = repo.join("HEAD");
    let head = head.to_str().expect("utf-8");
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let out = server.client(&["run", "-a", "shop", "--", "cat", head]);
        assert_ne!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
    }
}

#[test]
fn concurrent_pushes_to_one_app_are_serialised() {
    if !git_available() {
        return;
    }
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let base = app_files("base page");
    // Release phases wait at the gate while it is closed.
    let gate = Gate::new();
    server.ok(&["config:set", "-a", "shop", &gate.var()]);
    let a = Checkout::new(&server, "shop", &files(&base));
    gate.open();
    let (ok, out) = a.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    gate.close();
    let (b, out) = Checkout::clone_of(&server, "shop", TOKEN);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(b.dozen(&["git:remote", "-a", "shop"]).status.success());

    let from_a = a.commit(&[("index.html", "page of a\n")], "a");
    let from_b = b.commit(&[("index.html", "page of b\n")], "b");
    let (mut push_a, lines_a) = a.spawn_push(&["dozen", "main"]);
    let mut seen_a = Vec::new();
    await_line(&lines_a, "running the release phase", &mut seen_a);
    // The second push arrives while the first holds the app, and waits for it.
    let (mut push_b, lines_b) = b.spawn_push(&["dozen", "main"]);
    let mut seen_b = Vec::new();
    await_line(&lines_b, "deploying", &mut seen_b);
    gate.open();
    assert!(push_a.wait().expect("wait").success(), "{seen_a:#?}");
    let status_b = push_b.wait().expect("wait");
    seen_b.extend(lines_b.iter());
    let out_b = seen_b.join("\n");
    assert!(!status_b.success(), "{out_b}");
    assert!(out_b.contains("moved while this push waited"), "{out_b}");

    assert_eq!(page(&server, "shop"), "page of a");
    let r = releases(&server, "shop");
    assert_eq!(r[0]["commit"], from_a.as_str());
    assert_eq!(r[0]["current"], true);
    assert!(r.iter().all(|r| r["commit"] != from_b.as_str()));
    let remote_main = a.git_ok(&["ls-remote", "dozen", "refs/heads/main"]);
    assert!(remote_main.starts_with(&from_a), "{remote_main}");

    // After fetching, b's change goes on top of a's and deploys.
    b.git_ok(&[
        "pull",
        "--quiet",
        "--rebase=false",
        "-X",
        "ours",
        "--no-edit",
        "dozen",
        "main",
    ]);
    let (ok, out) = b.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    assert_eq!(page(&server, "shop"), "page of b");
}
