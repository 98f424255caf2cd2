//! `dozen deploy --to kubernetes` and the `--on kubernetes` commands through the real binary:
//! a `dozen server` on SQLite holds the app's releases (built from examples/hello), and a real
//! kube-apiserver from `scripts/kube-apiserver` takes them. Only the API server runs there (no
//! controllers, no kubelet), so no rollout ever becomes ready: a short `--timeout` shows the
//! way back to the previous release honestly.

#[path = "../../kubernetes/tests/support/cluster.rs"]
mod cluster;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cluster::TestCluster;
use dozen_kubernetes::Cluster;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;
use support::*;

const TOKEN: &str = "dzn_test_token_kube_0123456789abcdef";
const SECRET: &str = "s3cr3t-value-of-the-kube-test";

/// A `dozen server` on SQLite, and client commands pointed at it and at the cluster.
struct Server {
    child: Option<Child>,
    port: u16,
    data: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Server {
    fn start(kubeconfig: &Path) -> Server {
        let mut s = Server {
            child: None,
            port: free_port(),
            data: tempfile::tempdir().expect("tmp"),
            kubeconfig: kubeconfig.to_path_buf(),
        };
        let migrate = s.admin("migrate").output().expect("migrate");
        assert!(migrate.status.success(), "migrate: {migrate:?}");
        let mut child = s
            .admin("server")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server");
        let out = child.stdout.take().expect("stdout");
        s.child = Some(child);
        await_listening(line_reader(out));
        s
    }

    fn admin(&self, command: &str) -> Command {
        let mut c = Command::new(dozen_bin());
        c.arg(command)
            .env("PORT", self.port.to_string())
            .env("DOZEN_ROUTER_PORT", free_port().to_string())
            .env("DOZEN_DATA_DIR", self.data.path())
            .env("DOZEN_API_TOKEN", TOKEN)
            .env("DOZEN_BIND", "127.0.0.1")
            .env("DOZEN_APP_USER_PREFIX", format!("dz{}-", self.port))
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1");
        c
    }

    /// `dozen ARGS` as a client of the server and of the cluster (KUBECONFIG).
    fn client(&self, args: &[&str]) -> Output {
        let out = Command::new(dozen_bin())
            .args(args)
            .env("DOZEN_URL", format!("http://127.0.0.1:{}", self.port))
            .env("DOZEN_API_TOKEN", TOKEN)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("DOZEN_APP")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("client");
        let out = Output::from(out);
        // No command ever shows a config value.
        assert!(
            !out.stdout.contains(SECRET) && !out.stderr.contains(SECRET),
            "dozen {args:?} showed a config value:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        out
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Output {
        self.client(args).expect_code(0, args)
    }

    #[track_caller]
    fn fails(&self, args: &[&str]) -> Output {
        self.client(args).expect_code(1, args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// Read objects back from the cluster.
struct Reader {
    rt: tokio::runtime::Runtime,
    cluster: Cluster,
}

impl Reader {
    fn new(kubeconfig: &Path) -> Reader {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cluster = rt
            .block_on(Cluster::from_kubeconfig(kubeconfig, Some("default")))
            .expect("cluster");
        Reader { rt, cluster }
    }

    fn deployment(&self, name: &str) -> Value {
        let d: Deployment = self
            .rt
            .block_on(self.cluster.api::<Deployment>().get(name))
            .unwrap_or_else(|e| panic!("Deployment {name}: {e}"));
        serde_json::to_value(d).expect("json")
    }

    fn secret_keys(&self, name: &str) -> Vec<String> {
        let s: Secret = self
            .rt
            .block_on(self.cluster.api::<Secret>().get(name))
            .unwrap_or_else(|e| panic!("Secret {name}: {e}"));
        s.data.unwrap_or_default().into_keys().collect()
    }

    fn job(&self, name: &str) -> Value {
        let j: Job = self
            .rt
            .block_on(self.cluster.api::<Job>().get(name))
            .unwrap_or_else(|e| panic!("Job {name}: {e}"));
        serde_json::to_value(j).expect("json")
    }
}

fn example_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

fn release_of(d: &Value) -> &str {
    d["metadata"]["labels"]["dozen.dev/release"]
        .as_str()
        .unwrap_or_default()
}

fn image_of(d: &Value) -> &str {
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

#[test]
fn a_server_release_deploys_to_kubernetes_and_comes_back_when_the_rollout_fails() {
    let Some(tc) = TestCluster::shared() else {
        return;
    };
    let server = Server::start(&tc.kubeconfig);
    let read = Reader::new(&tc.kubeconfig);
    server.ok(&["apps:create", "shop"]);
    let example = example_app();
    let deployed = server.ok(&[
        "deploy",
        "-a",
        "shop",
        "-d",
        example.to_str().expect("path"),
    ]);
    assert!(
        deployed.stdout.contains("v1 is live"),
        "{}",
        deployed.stdout
    );
    server.ok(&[
        "config:set",
        "-a",
        "shop",
        &format!("SECRET_TOKEN={SECRET}"),
    ]);
    let k = |args: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["--namespace".to_string(), "default".to_string()]);
        a
    };

    // v1, without waiting (no controller would ever roll it out).
    let args = k(&[
        "deploy",
        "-a",
        "shop",
        "--to",
        "kubernetes",
        "--release",
        "v1",
        "--image",
        "registry.example/shop:v1",
        "--no-wait",
    ]);
    let out = server.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "deploying shop v1 to namespace default",
            "applied Secret/shop-config-v1",
            "applied Deployment/shop-web",
            "applied Deployment/shop-worker",
            "applied Service/shop",
            "applied shop v1 to namespace default without waiting for the rollout (see `dozen ps -a shop --on kubernetes --namespace default`)",
        ],
        "{}",
        out.stdout
    );
    let web = read.deployment("shop-web");
    assert_eq!(release_of(&web), "v1");
    assert_eq!(image_of(&web), "registry.example/shop:v1");
    assert_eq!(web["spec"]["replicas"], 1);
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    // The slug's run environment (its virtualenv, PYTHONUNBUFFERED) is set up by the shell.
    assert_eq!(
        container["command"][2],
        "export PATH='/app/.venv/bin'\"${PATH:+:$PATH}\"; \
         [ \"${PYTHONUNBUFFERED+set}\" ] || export PYTHONUNBUFFERED='1'; exec python3 web.py"
    );
    assert_eq!(container["env"][0]["name"], "PORT");
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "shop-config-v1"
    );
    assert_eq!(
        web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        10
    );
    // The server's formation: no worker.
    assert_eq!(read.deployment("shop-worker")["spec"]["replicas"], 0);
    assert!(read.secret_keys("shop-config-v1").is_empty());

    // v2 with a short timeout: the rollout never becomes ready, v1 comes back.
    let args = k(&[
        "deploy",
        "-a",
        "shop",
        "--to",
        "kubernetes",
        "--image",
        "registry.example/shop:v2",
        "--timeout",
        "2",
    ]);
    let out = server.fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.stdout.contains("applied Secret/shop-config-v2")
            && out.stdout.contains(
                "web: 0/1 updated, 0 ready (waiting for the Deployment controller to see the new spec)"
            )
            && out
                .stdout
                .contains("the rollout failed: applying v1's objects again"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.starts_with(
            "dozen: the rollout of v2 did not become ready\n  not rolled out within 2s"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "Deployment/shop-web: no Deployment controller has seen generation 2 (observed: none); is the cluster's controller-manager running?"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .trim_end()
            .ends_with("returned to the previous state: v1's objects are applied again"),
        "{}",
        out.stderr
    );
    let web = read.deployment("shop-web");
    assert_eq!(release_of(&web), "v1");
    assert_eq!(image_of(&web), "registry.example/shop:v1");
    assert_eq!(release_of(&read.deployment("shop-worker")), "v1");
    // v2's config is on the cluster (its key, never shown), for the next try.
    assert_eq!(read.secret_keys("shop-config-v2"), ["SECRET_TOKEN"]);

    // An object the API server rejects: one line per field, naming the object.
    let args = k(&[
        "deploy",
        "-a",
        "shop",
        "--to",
        "kubernetes",
        "--image",
        "x",
        "--uid",
        "4294967296",
        "--no-wait",
    ]);
    let out = server.fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut err = out.stderr.lines();
    assert_eq!(
        err.next(),
        Some("dozen: the API server rejected Deployment/shop-web"),
        "{}",
        out.stderr
    );
    let causes: Vec<&str> = err.collect();
    assert!(
        !causes.is_empty()
            && causes
                .iter()
                .all(|l| l.starts_with("  Deployment/shop-web: spec.template.spec.")),
        "{}",
        out.stderr
    );
    assert!(
        causes.contains(
            &"  Deployment/shop-web: spec.template.spec.securityContext.runAsUser: Invalid value: 4294967296: must be between 0 and 2147483647, inclusive"
        ),
        "{}",
        out.stderr
    );

    // ps: the Deployments (no pods: nothing runs them here).
    let out = server.ok(&k(&["ps", "-a", "shop", "--on", "kubernetes"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["TYPE", "RELEASE", "DESIRED", "UPDATED", "READY"]);
    assert_eq!(rows[1], ["web", "v1", "1", "0", "0"]);
    assert_eq!(rows[2], ["worker", "v1", "0", "0", "0"]);
    assert!(
        out.stdout.contains("no pods in namespace default"),
        "{}",
        out.stdout
    );

    // ps:scale: the cluster's replicas; the next deploy keeps them.
    let out = server.ok(
        &k(&["ps:scale", "-a", "shop", "--on", "kubernetes", "web=3"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        out.stdout.trim(),
        "scaled shop in namespace default: web=3 (was 1)"
    );
    assert_eq!(read.deployment("shop-web")["spec"]["replicas"], 3);
    let args = k(&[
        "deploy",
        "-a",
        "shop",
        "--to",
        "kubernetes",
        "--image",
        "registry.example/shop:v2",
        "--no-wait",
    ]);
    let out = server.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.stdout
            .contains("web: keeps its 3 replicas on the cluster (-m web=N to change them)"),
        "{}",
        out.stdout
    );
    let web = read.deployment("shop-web");
    assert_eq!(
        (release_of(&web), web["spec"]["replicas"].as_i64()),
        ("v2", Some(3))
    );

    // rollback: v1 again, from what the cluster keeps.
    let out = server.ok(
        &k(&["rollback", "-a", "shop", "--to", "kubernetes", "--no-wait"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        out.stdout.contains("applied shop v1 to namespace default"),
        "{}",
        out.stdout
    );
    let web = read.deployment("shop-web");
    assert_eq!(release_of(&web), "v1");
    assert_eq!(image_of(&web), "registry.example/shop:v1");
    assert_eq!(web["spec"]["replicas"], 3);

    // A one-off Job in the live release, detached.
    let out = server.ok(&[
        "run",
        "-a",
        "shop",
        "--on",
        "kubernetes",
        "--namespace",
        "default",
        "--detach",
        "--",
        "echo",
        "hello",
    ]);
    let job = out.stdout.trim();
    assert!(job.starts_with("shop-run-"), "{}", out.stdout);
    assert!(
        out.stderr.contains("kubectl logs -f job/"),
        "{}",
        out.stderr
    );
    let j = read.job(job);
    let container = &j["spec"]["template"]["spec"]["containers"][0];
    let line = container["command"][2].as_str().expect("command line");
    assert!(
        line.starts_with("export PATH='/app/.venv/bin'") && line.ends_with("; exec echo hello"),
        "the one-off gets the release's run environment: {line}"
    );
    assert_eq!(container["image"], "registry.example/shop:v1");
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "shop-config-v1"
    );

    // logs: no pod runs here.
    let out = server.fails(
        &k(&["logs", "-a", "shop", "--on", "kubernetes"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        out.stderr.contains("shop has no pods in namespace default"),
        "{}",
        out.stderr
    );

    // Kubernetes flags without a target are refused, not ignored.
    let out = server.fails(&["deploy", "-a", "shop", "--image", "x"]);
    assert_eq!(
        out.stderr.trim(),
        "dozen: --image is for `dozen deploy --to kubernetes`"
    );
}
