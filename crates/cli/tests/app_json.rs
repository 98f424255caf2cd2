//! `app.json` on `dozen server`: the first successful deploy scales to its `formation` and runs
//! its `scripts.postdeploy` once; later deploys do neither.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use support::*;

const TOKEN: &str = "dzn_test_token_app_json_0123456789";

/// A running `dozen server` on SQLite in a temporary data directory.
struct Server {
    child: Child,
    port: u16,
    router_port: u16,
    data: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let data = tempfile::tempdir().expect("tmp");
        let (port, router_port) = (free_port(), free_port());
        let admin = |args: &[&str]| {
            let mut c = Command::new(dozen_bin());
            c.args(args)
                .env("PORT", port.to_string())
                .env("DOZEN_ROUTER_PORT", router_port.to_string())
                .env("DOZEN_DATA_DIR", data.path())
                .env("DOZEN_API_TOKEN", TOKEN)
                .env("DOZEN_BIND", "127.0.0.1")
                .env_remove("DATABASE_URL")
                .env("NO_COLOR", "1");
            c
        };
        let migrate = admin(&["migrate"]).output().expect("migrate");
        assert!(migrate.status.success(), "migrate failed");
        let mut child = admin(&["server"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server");
        let lines: mpsc::Receiver<String> = line_reader(child.stdout.take().expect("stdout"));
        loop {
            match lines.recv_timeout(HANG) {
                Ok(l) if l.contains("listening") => break,
                Ok(_) => {}
                Err(e) => panic!("the server never said it was listening: {e}"),
            }
        }
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        Server {
            child,
            port,
            router_port,
            data,
        }
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = Command::new(dozen_bin())
            .args(args)
            .env("DOZEN_URL", format!("http://127.0.0.1:{}", self.port))
            .env("DOZEN_API_TOKEN", TOKEN)
            .env_remove("DOZEN_APP")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("client");
        Output::from(out).expect_code(0, args).stdout
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).expect("json")
    }

    fn processes(&self, app: &str) -> Vec<String> {
        let ps = self.json(&["ps", "-a", app]);
        let mut names: Vec<String> = ps
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["state"] == "up" || p["state"] == "running")
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = (self.router_port, self.data.path());
    }
}

#[test]
fn first_deploy_uses_app_json_formation_and_runs_postdeploy_once() {
    let server = Server::start();
    server.ok(&["apps:create", "seeded"]);
    let marks = tempfile::tempdir().expect("tmp");
    // The app may run as a user of its own: let it write here.
    std::fs::set_permissions(
        marks.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let log = marks.path().join("postdeploy.log");
    let app = App::with(
        "web: python3 -m http.server $PORT\nworker: python3 -c 'import time; time.sleep(3600)'\n",
    );
    app.write(
        "app.json",
        &format!(
            r#"{{
  "name": "seeded",
  "formation": {{"web": {{"quantity": 1, "size": "basic"}}, "worker": {{"quantity": 2}}}},
  "scripts": {{"postdeploy": "echo \"postdeploy in $PWD\" >> {}"}}
}}"#,
            log.display()
        ),
    );
    let dir = app.path().to_str().expect("path").to_string();

    let deploy = server.ok(&["deploy", "-a", "seeded", "-d", &dir]);
    assert!(deploy.contains("v1 is live"), "{deploy}");
    let info = server.json(&["apps:info", "-a", "seeded"]);
    assert_eq!(info["formation"]["worker"], 2, "{info}");
    await_condition("web.1 and two workers", || {
        server.processes("seeded") == ["web.1", "worker.1", "worker.2"]
    });
    let ran = std::fs::read_to_string(&log).expect("postdeploy ran");
    assert_eq!(ran.lines().count(), 1, "{ran}");

    // Later deploys keep the formation the user set and do not run postdeploy again.
    server.ok(&["ps:scale", "-a", "seeded", "worker=0"]);
    app.write("README", "a change\n");
    let deploy = server.ok(&["deploy", "-a", "seeded", "-d", &dir]);
    assert!(deploy.contains("v2 is live"), "{deploy}");
    let info = server.json(&["apps:info", "-a", "seeded"]);
    assert_eq!(info["formation"]["worker"], 0, "{info}");
    assert_eq!(
        std::fs::read_to_string(&log).expect("log").lines().count(),
        1,
        "postdeploy runs once"
    );
}
