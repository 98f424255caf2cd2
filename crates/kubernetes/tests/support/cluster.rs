//! A real Kubernetes API server (with etcd) for a test binary, from `scripts/kube-apiserver`.
//!
//! Shared by the tests of one binary: the first test to ask starts it, the last one to let go
//! of it stops it (`scripts/kube-apiserver stop`, also when a test panics, through `Drop`), and
//! `DOZEN_KUBE_WATCH_PID` stops it if the test process dies without unwinding.
//!
//! Without the cached `kube-apiserver` binary the tests are skipped with a printed reason,
//! unless the suite runs strict (`CI` set, or `DOZEN_REQUIRE_TOOLS=1`; the older
//! `DOZEN_REQUIRE_KUBE=1` still works): then that is a failure (`dozen_testkit`). Included by
//! path from the kubernetes crate's tests and the CLI's.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};

/// One running API server.
#[derive(Debug)]
pub struct TestCluster {
    dir: tempfile::TempDir,
    /// `DIR/kubeconfig`: the cluster, its CA and an admin token, as current context.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The admin bearer token.
    pub token: String,
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca_pem: Vec<u8>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kube-apiserver")
}

/// Where the script keeps the binary, if it is there.
fn cached_binary() -> Result<PathBuf, String> {
    let out = Command::new("bash")
        .arg(script())
        .arg("path")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no kube-apiserver binary at {:?}; build it once with `scripts/kube-apiserver build`",
            path
        ))
    }
}

static SHARED: Mutex<Weak<TestCluster>> = Mutex::new(Weak::new());

impl TestCluster {
    /// The API server of this test binary, started if none runs; `None` (with the reason
    /// printed) when its binary is missing and the suite does not run strict.
    pub fn shared() -> Option<Arc<TestCluster>> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = shared.upgrade() {
            return Some(c);
        }
        let c = Arc::new(TestCluster::start()?);
        *shared = Arc::downgrade(&c);
        Some(c)
    }

    fn start() -> Option<TestCluster> {
        if let Err(reason) = cached_binary() {
            dozen_testkit::unavailable(
                "kube-apiserver",
                &reason,
                "scripts/kube-apiserver build (Debian's kubernetes source, 10 to 17 minutes once)",
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("dozen-kube-")
            .tempdir()
            .expect("a temporary directory");
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .env("DOZEN_KUBE_WATCH_PID", std::process::id().to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/kube-apiserver start");
        let cluster = TestCluster {
            kubeconfig: dir.path().join("kubeconfig"),
            server: read(dir.path(), "server"),
            token: read(dir.path(), "token"),
            ca_pem: std::fs::read(dir.path().join("ca.crt")).unwrap_or_default(),
            dir,
        };
        // From here on, Drop stops whatever did start.
        assert!(
            out.status.success(),
            "scripts/kube-apiserver start failed; its logs are in {}",
            cluster.dir.path().display()
        );
        Some(cluster)
    }

    /// The directory with the cluster's files and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_default()
        .trim()
        .to_string()
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let status = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "scripts/kube-apiserver stop {} failed: {status:?}",
                self.dir.path().display()
            );
        }
    }
}
