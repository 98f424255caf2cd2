//! The harness of the build tests: a supervisor, a build log captured as JSON lines, and
//! source directories in a temporary directory.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dozen_build::{BuildError, BuildOutput, BuildRequest, build};
use dozen_logs::{Format, LogSender, LogWriter, Output};
use dozen_supervise::{ExitStatus, Policy, ProcessSpec, Stop, Supervisor};
use tokio::sync::watch;

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A supervisor and a log captured as JSON lines.
pub struct Harness {
    pub sup: Supervisor,
    log: LogSender,
    writer: LogWriter,
    out: Shared,
    pub tmp: tempfile::TempDir,
    pub builds: usize,
    stop: watch::Sender<Stop>,
}

impl Harness {
    pub fn new() -> Self {
        let out = Shared::default();
        let (writer, log) = LogWriter::spawn(Format::json(), Output::Writer(Box::new(out.clone())))
            .expect("log writer");
        let sup = Supervisor::new(Policy::default(), log.clone(), false).expect("supervisor");
        Harness {
            sup,
            log,
            writer,
            out,
            tmp: tempfile::tempdir().expect("tempdir"),
            builds: 0,
            stop: watch::channel(Stop::Running).0,
        }
    }

    /// A stop receiver that never asks to stop.
    pub fn running(&self) -> watch::Receiver<Stop> {
        self.stop.subscribe()
    }

    /// Write `files` into the source directory `source` and return it.
    pub fn app(&self, files: &[(&str, &str)]) -> PathBuf {
        self.app_in("source", files)
    }

    /// Write `files` into the source directory `name` and return it.
    pub fn app_in(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.tmp.path().join(name);
        fs::create_dir_all(&dir).expect("mkdir");
        for (name, text) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, text).expect("write");
        }
        dir
    }

    /// Copy the fixture app `tests/fixtures/NAME` into a source directory of that name.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let to = self.tmp.path().join(name);
        copy_dir(&from, &to);
        to
    }

    pub async fn build(
        &mut self,
        source: &Path,
        stop: watch::Receiver<Stop>,
    ) -> Result<BuildOutput, BuildError> {
        self.build_with(source, stop, vec![]).await
    }

    /// Build with extra platform variables for the steps (such as a `PATH` without a tool).
    pub async fn build_with(
        &mut self,
        source: &Path,
        stop: watch::Receiver<Stop>,
        extra_env: Vec<(String, String)>,
    ) -> Result<BuildOutput, BuildError> {
        self.builds += 1;
        let work = self.tmp.path().join(format!("work{}", self.builds));
        let cache = self.tmp.path().join("cache");
        build(BuildRequest {
            supervisor: &self.sup,
            log: self.log.clone(),
            source,
            work_dir: &work,
            cache_dir: &cache,
            build_id: "b-test",
            source_version: Some("abc123"),
            extra_env,
            stop,
            confine: None,
            memory_limit: None,
            disk_limit: None,
        })
        .await
    }

    /// Run `command` in `cwd` with only dozen's `PATH`; its output goes to the log as `check`.
    pub async fn run(&self, command: &str, cwd: &Path) -> ExitStatus {
        let (_tx, rx) = watch::channel(Stop::Running);
        let spec = ProcessSpec {
            name: "check".into(),
            command: command.into(),
            env: vec![("PATH".into(), std::env::var("PATH").expect("PATH is set"))],
            cwd: cwd.into(),
            port: None,
            color: 0,
            clear_env: true,
            log: Some(self.log.clone()),
            confine: None,
            limits: None,
        };
        self.sup.run_once(spec, rx).await
    }

    /// The log so far.
    pub fn log_so_far(&self) -> String {
        String::from_utf8_lossy(&self.out.0.lock().expect("lock")).into_owned()
    }

    /// Stop everything and return the build log.
    pub async fn finish(self) -> (String, tempfile::TempDir) {
        self.sup.shutdown().await;
        drop(self.sup);
        drop(self.log);
        self.writer.finish().expect("log writer");
        let text = String::from_utf8(self.out.0.lock().expect("lock").clone()).expect("utf8");
        (text, self.tmp)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).expect("copy fixture");
        }
    }
}
