//! `Supervisor::run_once` with real processes, as a build step or one-off uses it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use dozen_logs::{Format, LogWriter, Output};
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

fn spec(command: &str, env: Vec<(String, String)>, clear_env: bool) -> ProcessSpec {
    ProcessSpec {
        name: "build".into(),
        command: command.into(),
        env,
        cwd: std::env::temp_dir(),
        port: None,
        color: 0,
        clear_env,
        log: None,
        confine: None,
        limits: None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn runs_to_completion_with_output_and_status() {
    let out = Shared::default();
    let (writer, log) =
        LogWriter::spawn(Format::json(), Output::Writer(Box::new(out.clone()))).expect("writer");
    let sup = Supervisor::new(Policy::default(), log, false).expect("supervisor");
    let (_tx, rx) = watch::channel(Stop::Running);
    let status = sup
        .run_once(
            spec("echo compiling; echo warn >&2; exit 4", vec![], false),
            rx,
        )
        .await;
    assert_eq!(status, ExitStatus::Code(4));
    sup.shutdown().await;
    drop(sup);
    writer.finish().expect("finish");
    let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
    assert!(
        text.contains(r#""proc":"build","stream":"stdout","line":"compiling""#),
        "{text}"
    );
    assert!(
        text.contains(r#""stream":"stderr","line":"warn""#),
        "{text}"
    );
    assert!(
        text.contains(r#""event":"exited","target":"build""#),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn clear_env_hides_dozens_environment() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("DOZEN_TEST_SECRET_ENV", "leak") };
    let out = Shared::default();
    let (writer, log) =
        LogWriter::spawn(Format::json(), Output::Writer(Box::new(out.clone()))).expect("writer");
    let sup = Supervisor::new(Policy::default(), log, false).expect("supervisor");
    let (_tx, rx) = watch::channel(Stop::Running);
    let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
    let status = sup
        .run_once(
            spec("echo \"[${DOZEN_TEST_SECRET_ENV:-unset}]\"", env, true),
            rx,
        )
        .await;
    assert!(status.success());
    sup.shutdown().await;
    drop(sup);
    writer.finish().expect("finish");
    let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
    assert!(text.contains(r#""line":"[unset]""#), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn stop_request_ends_a_long_run() {
    let (writer, log) =
        LogWriter::spawn(Format::json(), Output::Writer(Box::new(Shared::default())))
            .expect("writer");
    let sup = Supervisor::new(Policy::default(), log, false).expect("supervisor");
    let (tx, rx) = watch::channel(Stop::Running);
    // Asked to stop before it even starts: it must not run at all, or end at once.
    tx.send(Stop::Graceful { signal: None }).expect("send");
    let status = sup.run_once(spec("sleep 300", vec![], false), rx).await;
    assert!(
        matches!(status, ExitStatus::Signal(15) | ExitStatus::Code(0)),
        "{status:?}"
    );
    sup.shutdown().await;
    drop(sup);
    writer.finish().expect("finish");
}

#[tokio::test(flavor = "current_thread")]
async fn stop_request_ends_a_running_process() {
    let (writer, log) =
        LogWriter::spawn(Format::json(), Output::Writer(Box::new(Shared::default())))
            .expect("writer");
    let sup = Supervisor::new(Policy::default(), log, false).expect("supervisor");
    let (tx, rx) = watch::channel(Stop::Running);
    let dir = tempfile_dir();
    let mark = dir.join("started");
    let command = format!("touch '{}'; exec sleep 300", mark.display());
    let stopper = async {
        while !mark.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tx.send(Stop::Graceful { signal: None }).expect("send");
    };
    let (status, ()) = tokio::join!(sup.run_once(spec(&command, vec![], false), rx), stopper);
    assert_eq!(status, ExitStatus::Signal(15));
    sup.shutdown().await;
    drop(sup);
    writer.finish().expect("finish");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dozen-run-once-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

#[tokio::test(flavor = "current_thread")]
async fn started_process_reports_state_and_stops_on_request() {
    use dozen_supervise::Phase;
    let (writer, log) =
        LogWriter::spawn(Format::json(), Output::Writer(Box::new(Shared::default())))
            .expect("writer");
    let policy = Policy {
        restart: dozen_supervise::RestartPolicy::Always,
        backoff_initial: std::time::Duration::from_millis(10),
        ..Policy::default()
    };
    let sup = Supervisor::new(policy, log, false).expect("supervisor");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut s = spec(
        &format!("python3 -m http.server {port} --bind 127.0.0.1"),
        vec![],
        false,
    );
    s.port = Some(port);
    let handle = sup.start_process(s);
    let mut state = handle.watch_state();
    state
        .wait_for(|st| st.phase == Phase::Up)
        .await
        .expect("up");
    assert!(handle.state().pid.is_some());
    handle.stop(Stop::Graceful { signal: None });
    let status = handle.finished().await;
    assert_eq!(
        status,
        ExitStatus::Signal(15),
        "python dies of SIGTERM by default"
    );
    assert_eq!(state.borrow().phase, Phase::Exited);

    // A process that keeps exiting is restarted, and its restarts are counted.
    let handle = sup.start_process(spec("exit 1", vec![], false));
    let mut state = handle.watch_state();
    state
        .wait_for(|st| st.restarts >= 2)
        .await
        .expect("restarts");
    assert_eq!(state.borrow().last_exit, Some(ExitStatus::Code(1)));
    handle.stop(Stop::Now);
    handle.finished().await;
    sup.shutdown().await;
    drop(sup);
    writer.finish().expect("finish");
}

#[tokio::test(flavor = "current_thread")]
async fn processes_with_the_same_name_are_stopped_independently() {
    use dozen_supervise::Phase;
    let (writer, log) =
        LogWriter::spawn(Format::json(), Output::Writer(Box::new(Shared::default())))
            .expect("writer");
    let sup = Supervisor::new(Policy::default(), log, false).expect("supervisor");
    // The old and the new web.1 of a deploy run side by side.
    let old = sup.start_process(spec("exec sleep 300", vec![], false));
    let new = sup.start_process(spec("exec sleep 300", vec![], false));
    let mut old_state = old.watch_state();
    let mut new_state = new.watch_state();
    old_state
        .wait_for(|s| s.phase == Phase::Running)
        .await
        .expect("old runs");
    new_state
        .wait_for(|s| s.phase == Phase::Running)
        .await
        .expect("new runs");
    old.stop(Stop::Graceful { signal: None });
    // The old one stops at once (SIGTERM), without waiting out the grace for the new one.
    assert_eq!(old.finished().await, ExitStatus::Signal(15));
    assert_eq!(
        new.state().phase,
        Phase::Running,
        "the new one is untouched"
    );
    assert_eq!(new.state().restarts, 0);
    new.stop(Stop::Now);
    new.finished().await;
    sup.shutdown().await;
    drop(sup);
    writer.finish().expect("finish");
}

#[tokio::test(flavor = "current_thread")]
async fn attached_output_is_byte_exact_and_kept_apart() {
    use dozen_logs::Stream;
    use dozen_supervise::{Attached, OutputChunk};
    use tokio::sync::mpsc;

    let out = Shared::default();
    let (writer, log) =
        LogWriter::spawn(Format::json(), Output::Writer(Box::new(out.clone()))).expect("writer");
    let sup = Supervisor::new(Policy::default(), log, false).expect("supervisor");
    let (_tx, rx) = watch::channel(Stop::Running);
    let (in_tx, in_rx) = mpsc::channel(1);
    let (out_tx, mut out_rx) = mpsc::channel::<OutputChunk>(1);
    let input: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let feed = {
        let input = input.clone();
        async move {
            for chunk in input.chunks(7000) {
                in_tx.send(chunk.to_vec()).await.expect("stdin");
            }
        }
    };
    let io = Attached {
        stdin: in_rx,
        output: Some(out_tx),
    };
    // Channels of one chunk: the process waits for its output to be taken.
    let collect = async move {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(c) = out_rx.recv().await {
            assert!(!c.bytes.is_empty());
            match c.stream {
                Stream::Stdout => stdout.extend_from_slice(&c.bytes),
                Stream::Stderr => stderr.extend_from_slice(&c.bytes),
            }
        }
        (stdout, stderr)
    };
    let command = r"cat; printf '\377\000no newline' >&2; exit 5";
    let (status, (), (stdout, stderr)) = tokio::join!(
        sup.run_attached(spec(command, vec![], false), rx, io),
        feed,
        collect
    );
    assert_eq!(status, ExitStatus::Code(5));
    assert!(stdout == input, "stdout differs from stdin");
    assert_eq!(stderr, b"\xff\x00no newline");
    sup.shutdown().await;
    drop(sup);
    writer.finish().expect("finish");
    let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
    assert!(
        !text.contains(r#""stream":"stdout""#) && !text.contains(r#""stream":"stderr""#),
        "output went to the log: {text}"
    );
    assert!(
        text.contains(r#""event":"exited","target":"build""#),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_process_left_behind_is_stopped_after_the_main_one_exits() {
    let out = Shared::default();
    let (writer, log) =
        LogWriter::spawn(Format::json(), Output::Writer(Box::new(out.clone()))).expect("writer");
    let sup = Supervisor::new(Policy::default(), log, false).expect("supervisor");
    let (_tx, rx) = watch::channel(Stop::Running);
    // The step exits at once and leaves `sleep` running, as a CGI program's child may.
    let pid_file = std::env::temp_dir().join(format!("dozen-left-behind-{}", std::process::id()));
    let command = format!("sleep 300 & echo $! > '{}'; exit 3", pid_file.display());
    let status = sup.run_once(spec(&command, vec![], false), rx).await;
    assert_eq!(status, ExitStatus::Code(3));
    sup.shutdown().await;
    drop(sup);
    writer.finish().expect("finish");
    let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
    assert!(text.contains("left 1 process(es) running"), "{text}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("the pid of sleep")
        .trim()
        .parse()
        .expect("a pid");
    let _ = std::fs::remove_file(&pid_file);
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "sleep ({pid}) still runs: {text}");
}
