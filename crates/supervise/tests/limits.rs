//! Limits enforced by the kernel on real processes: a process over its memory is killed by
//! the out-of-memory killer of its cgroup, the log says so (R15), and it is restarted.
//!
//! Needs root and cgroup v1 or delegated cgroup v2. Without them the test says so and passes,
//! except under `CI`, where missing support fails it.

use std::time::Duration;

use dozen_logs::{EventKind, Record, log_channel};
use dozen_supervise::{LimitSupport, Limits, Policy, ProcessSpec, RestartPolicy, Stop, Supervisor};

fn policy() -> Policy {
    Policy {
        restart: RestartPolicy::Always,
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(100),
        crash_limit: 10,
        crash_window: Duration::from_secs(600),
        grace: Duration::from_secs(2),
    }
}

/// Whether to go on: limits are enforced here, or (outside CI) the test is not meaningful.
fn enforced(sup: &Supervisor) -> bool {
    match sup.limit_support() {
        LimitSupport::None if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but this host enforces no limits: run as root with cgroup v1 or delegated cgroup v2"
            )
        }
        LimitSupport::None => {
            eprintln!(
                "limits are not enforced on this host (not root, or no cgroups); nothing to check"
            );
            false
        }
        _ => true,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_process_over_its_memory_is_killed_reported_and_restarted() {
    let (log, mut records) = log_channel();
    let sup = Supervisor::new(policy(), log, false).expect("supervisor");
    if !enforced(&sup) {
        return;
    }
    let handle = sup.start_process(ProcessSpec {
        name: "worker.1".into(),
        // Touch 200 MB in 1 MB pieces: far past the 64 MiB limit.
        command: "python3 -c \"b=[bytearray(1<<20) for _ in range(200)]; print('survived')\""
            .into(),
        env: vec![],
        cwd: std::env::temp_dir(),
        port: None,
        color: 0,
        clear_env: false,
        log: None,
        confine: None,
        limits: Some(Limits {
            memory: Some(64 << 20),
            cpu_millis: Some(500),
            pids: Some(32),
            note: Some("size test".into()),
        }),
    });
    let mut starts = 0;
    let mut r15 = None;
    let mut lines = Vec::new();
    while starts < 2 || r15.is_none() {
        match records.recv().await.expect("log open") {
            Record::Event(e) if e.kind == EventKind::Started => starts += 1,
            Record::Event(e) if e.text.contains("R15") => r15 = Some(e.text),
            Record::Event(_) => {}
            Record::Lines(batch) => lines.extend(
                batch
                    .lines()
                    .map(|(l, _)| String::from_utf8_lossy(l).into_owned()),
            ),
            Record::Barrier(ack) => {
                let _ = ack.send(());
            }
        }
    }
    let r15 = r15.expect("R15 event");
    assert_eq!(
        r15,
        "worker.1: Error R15 (memory quota vastly exceeded): used 64 MiB of 64 MiB (size test); killed by the kernel; restarting"
    );
    assert!(!lines.iter().any(|l| l == "survived"), "{lines:?}");
    let state = handle.state();
    assert!(
        state.memory.is_some(),
        "a limited process has a memory gauge"
    );
    handle.stop(Stop::Now);
    // Keep reading so the log never blocks the stop.
    let drain = tokio::spawn(async move { while records.recv().await.is_some() {} });
    handle.finished().await;
    sup.shutdown().await;
    drop(sup);
    drain.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_process_within_its_limits_shows_its_memory() {
    let (log, mut records) = log_channel();
    let sup = Supervisor::new(policy(), log, false).expect("supervisor");
    if !enforced(&sup) {
        return;
    }
    let handle = sup.start_process(ProcessSpec {
        name: "web.1".into(),
        // Holds 20 MB, says so, and waits.
        command: "python3 -c \"import sys,time; b=bytearray(20<<20); b[::4096]=b'x'*len(b[::4096]); print('holding', flush=True); time.sleep(60)\"".into(),
        env: vec![],
        cwd: std::env::temp_dir(),
        port: None,
        color: 0,
        clear_env: false,
        log: None,
        confine: None,
        limits: Some(Limits {
            memory: Some(128 << 20),
            cpu_millis: None,
            pids: None,
            note: None,
        }),
    });
    loop {
        match records.recv().await.expect("log open") {
            Record::Lines(batch) if batch.lines().any(|(l, _)| l == b"holding") => break,
            Record::Barrier(ack) => {
                let _ = ack.send(());
            }
            _ => {}
        }
    }
    let used = handle
        .state()
        .memory
        .and_then(|g| g.current())
        .expect("memory of a running process");
    assert!(
        (20 << 20..128 << 20).contains(&used),
        "20 MB held, under the 128 MiB limit: {used}"
    );
    handle.stop(Stop::Now);
    let drain = tokio::spawn(async move { while records.recv().await.is_some() {} });
    handle.finished().await;
    sup.shutdown().await;
    drop(sup);
    drain.abort();
}
