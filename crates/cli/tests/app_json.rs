//! `app.json` on `dozen server`: the first successful deploy scales to its `formation` and runs
//! its `scripts.postdeploy` once; later deploys do neither.

mod support;

use support::server::Server;
use support::*;

/// The names of `app`'s processes that are up or running, sorted.
fn processes(server: &Server, app: &str) -> Vec<String> {
    let ps = server.json(&["ps", "-a", app]);
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

#[test]
fn first_deploy_uses_app_json_formation_and_runs_postdeploy_once() {
    let server = Server::start();
    server.ok(&["apps:create", "seeded"]);
    // The script's output is in the app's log (a file it wrote in /tmp would be in its private
    // /tmp, when the server runs as root).
    let ran = |server: &Server| {
        server
            .ok(&["logs", "-a", "seeded", "-n", "1500"])
            .lines()
            .filter(|l| l.contains("postdeploy-ran-in"))
            .count()
    };
    let app = App::with(
        "web: python3 -m http.server $PORT\nworker: python3 -c 'import time; time.sleep(3600)'\n",
    );
    app.write(
        "app.json",
        r#"{
  "name": "seeded",
  "formation": {"web": {"quantity": 1, "size": "basic"}, "worker": {"quantity": 2}},
  "scripts": {"postdeploy": "echo postdeploy-ran-in-$PWD"}
}"#,
    );
    let dir = app.path().to_str().expect("path").to_string();

    let deploy = server.ok(&["deploy", "-a", "seeded", "-d", &dir]);
    assert!(deploy.contains("v1 is live"), "{deploy}");
    let info = server.json(&["apps:info", "-a", "seeded"]);
    assert_eq!(info["formation"]["worker"], 2, "{info}");
    await_condition("web.1 and two workers", || {
        processes(&server, "seeded") == ["web.1", "worker.1", "worker.2"]
    });
    await_condition("postdeploy to run", || ran(&server) == 1);

    // Later deploys keep the formation the user set and do not run postdeploy again.
    server.ok(&["ps:scale", "-a", "seeded", "worker=0"]);
    app.write("README", "a change\n");
    let deploy = server.ok(&["deploy", "-a", "seeded", "-d", &dir]);
    assert!(deploy.contains("v2 is live"), "{deploy}");
    let info = server.json(&["apps:info", "-a", "seeded"]);
    assert_eq!(info["formation"]["worker"], 0, "{info}");
    assert_eq!(ran(&server), 1, "postdeploy runs once");
}
