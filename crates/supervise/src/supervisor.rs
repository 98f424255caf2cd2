//! Running a set of processes until they end or dozen is told to stop.

use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use dozen_logs::{EventKind, Label, LogSender, PlatformEvent, Stream, pump};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::attach::{Attached, start_raw_pumps};
use crate::cgroup::{Cgroup, CgroupRoot};
use crate::confine::Confinement;
use crate::exit::{ExitStatus, signal_name};
use crate::guardian::Guardian;
use crate::limits::{LimitGroup, LimitRoot, LimitSupport, Limits, MemoryGauge};
use crate::net::PortWatcher;
use crate::policy::{CrashHistory, Policy, Verdict};
use crate::proctree;
use crate::spawn::{Placement, Spawned, group_alive, pgid_of, signal, signal_group, spawn_shell};

/// How often the stop sequence looks at whether everything has exited.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for processes to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for pipes to close once every process is gone.
const DRAIN_WAIT: Duration = Duration::from_secs(3);
/// How long dozen watches for a new process to bind its port (Heroku's boot timeout).
const BOOT_WATCH: Duration = Duration::from_secs(60);
/// How long the news of an exit waits for the process's last lines to come out of its pipes.
const PUMP_SETTLE: Duration = Duration::from_millis(250);

/// One process to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Its name in logs, such as `web.1`.
    pub name: String,
    /// A shell command, run by `/bin/sh -c`.
    pub command: String,
    /// Variables set on top of dozen's own environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The port it was given, for the log.
    pub port: Option<u16>,
    /// Start from an empty environment instead of dozen's own (builds must not see runtime
    /// config); `env` is then the whole environment.
    pub clear_env: bool,
    /// Palette index for its log lines.
    pub color: usize,
    /// Where its output and lifecycle events go, if not the supervisor's log (the server gives
    /// each app its own stream).
    pub log: Option<LogSender>,
    /// The user it runs as and what it sees of the system, if not dozen's own (the server, run
    /// as root, gives each app a user of its own).
    pub confine: Option<Confinement>,
    /// Memory, CPU and process limits (enforced where [`Supervisor::limit_support`] says so).
    pub limits: Option<Limits>,
}

/// What the caller asks of the running formation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep running.
    Running,
    /// Stop everything gracefully: SIGTERM, the grace period, then SIGKILL. `signal` is the
    /// signal dozen received, for the log.
    Graceful {
        /// The signal number dozen received, if a signal caused this.
        signal: Option<i32>,
    },
    /// Stop everything now with SIGKILL (for example on a second Ctrl-C).
    Now,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The exit status dozen should return: 0 after a clean stop, else the status (code, or
    /// 128 + signal) of the process whose exit ended the run.
    pub code: i32,
    /// The process whose exit ended the run, if one did.
    pub ended_by: Option<String>,
}

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Being spawned.
    Starting,
    /// Running; not (yet) seen listening on its port.
    Running,
    /// Running and listening on its port.
    Up,
    /// Exited; waiting out the backoff before the next start.
    Restarting,
    /// Being stopped (SIGTERM sent).
    Stopping,
    /// Ended and will not be started again.
    Exited,
    /// Exited too often; given up.
    Crashed,
}

impl Phase {
    /// Lower-case name for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Up => "up",
            Phase::Restarting => "restarting",
            Phase::Stopping => "stopping",
            Phase::Exited => "exited",
            Phase::Crashed => "crashed",
        }
    }
}

/// A snapshot of one process, for `ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessState {
    /// The phase.
    pub phase: Phase,
    /// The current (or last) pid.
    pub pid: Option<u32>,
    /// The port it was given.
    pub port: Option<u16>,
    /// When it entered this phase.
    pub since: SystemTime,
    /// How often it has been restarted.
    pub restarts: u32,
    /// How it last ended.
    pub last_exit: Option<ExitStatus>,
    /// Its cgroup's memory, when it runs with [`Limits`] on a host that enforces them.
    pub memory: Option<MemoryGauge>,
}

/// A process started with [`Supervisor::start_process`]: its state, and the means to stop it.
#[derive(Debug)]
pub struct ProcessHandle {
    name: String,
    stop: watch::Sender<Stop>,
    state: watch::Receiver<ProcessState>,
    task: JoinHandle<Report>,
}

impl ProcessHandle {
    /// Its name, such as `web.1`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its state now.
    pub fn state(&self) -> ProcessState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub fn watch_state(&self) -> watch::Receiver<ProcessState> {
        self.state.clone()
    }

    /// Ask it to stop (gracefully or now). Returns at once; await [`ProcessHandle::finished`].
    pub fn stop(&self, how: Stop) {
        let _ = self.stop.send(how);
    }

    /// Wait until it has ended for good (stopped, or crashed too often), and everything it
    /// started is gone.
    pub async fn finished(self) -> ExitStatus {
        match self.task.await {
            Ok(report) => report.status,
            Err(_) => ExitStatus::Code(-1),
        }
    }
}

/// Errors setting up supervision.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// The reaper thread or the guardian could not be started.
    #[error("could not set up process supervision: {0}")]
    Setup(#[from] std::io::Error),
}

/// Runs processes: each in its own process group (and cgroup where possible), restarted by the
/// [`Policy`], all stopped together, with every descendant gone before [`Supervisor::run`]
/// returns.
#[derive(Debug)]
pub struct Supervisor {
    ctx: Arc<Ctx>,
}

#[derive(Debug)]
struct Ctx {
    policy: Policy,
    log: LogSender,
    cgroups: Option<CgroupRoot>,
    limits: Option<LimitRoot>,
    guardian: Option<Guardian>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    sweep_orphans: bool,
    ports: PortWatcher,
}

#[derive(Debug)]
struct Report {
    name: String,
    status: ExitStatus,
    /// Ended because dozen stopped it.
    stopped: bool,
    /// Ended because it crashed too often.
    gave_up: bool,
}

impl Supervisor {
    /// Prepare to run processes under `policy`, reporting to `log`.
    ///
    /// `sweep_orphans`: when the run ends, also stop every remaining descendant of this process
    /// (orphans handed to dozen as subreaper). Right for the `dozen` binary; wrong where one
    /// process hosts several supervisors, such as a test binary.
    pub fn new(
        policy: Policy,
        log: LogSender,
        sweep_orphans: bool,
    ) -> Result<Self, SuperviseError> {
        crate::reaper::Reaper::get()?;
        let cgroups = CgroupRoot::create();
        // Before any process's cgroup exists: cgroup v2 controllers are enabled for children.
        let limits = LimitRoot::create(cgroups.as_ref().map(CgroupRoot::path));
        let guardian = Guardian::start()?;
        if let Some(root) = &cgroups {
            guardian.watch_cgroup(root.path());
        }
        Ok(Supervisor {
            ctx: Arc::new(Ctx {
                policy,
                log,
                cgroups,
                limits,
                guardian: Some(guardian),
                pumps: Mutex::new(Vec::new()),
                sweep_orphans,
                ports: PortWatcher::start(BOOT_WATCH),
            }),
        })
    }

    /// True when processes are boxed in cgroups (so nothing they start can escape a stop).
    pub fn uses_cgroups(&self) -> bool {
        self.ctx.cgroups.is_some()
    }

    /// How [`ProcessSpec::limits`] are enforced on this host (decided once, in
    /// [`Supervisor::new`]).
    pub fn limit_support(&self) -> LimitSupport {
        self.ctx
            .limits
            .as_ref()
            .map_or(LimitSupport::None, LimitRoot::support)
    }

    /// Run one process to its end (never restarted), its output going to the log like any
    /// other's: a build step, a release phase, a one-off. `stop` ends it early (SIGTERM, grace,
    /// SIGKILL). Whatever it leaves running is stopped before this returns.
    pub async fn run_once(&self, spec: ProcessSpec, stop: watch::Receiver<Stop>) -> ExitStatus {
        let (state, _) = watch::channel(initial_state(spec.port));
        run_process(self.ctx.clone(), spec, stop, false, state, None)
            .await
            .status
    }

    /// [`Supervisor::run_once`] with the process's stdin fed from `stdin` (end of the channel is
    /// end of file): a one-off run from a client that has input to give.
    pub async fn run_once_with_stdin(
        &self,
        spec: ProcessSpec,
        stop: watch::Receiver<Stop>,
        stdin: mpsc::Receiver<Vec<u8>>,
    ) -> ExitStatus {
        let (state, _) = watch::channel(initial_state(spec.port));
        let io = Attached {
            stdin,
            output: None,
        };
        run_process(self.ctx.clone(), spec, stop, false, state, Some(io))
            .await
            .status
    }

    /// A one-off with a client attached: stdin fed from `io.stdin` (end of the channel is end
    /// of file), and stdout and stderr sent to `io.output` byte for byte, in chunks as they are
    /// read, instead of to the log (lifecycle events still go there). When `io.output` is full
    /// the pipes are not read, so the process waits for a slow client; when it is closed the
    /// pipes are closed, and the process gets `EPIPE` (or `SIGPIPE`) as with any closed pipe.
    /// Every sender of `io.output` is dropped once both pipes are at end of file: the channel's
    /// end is the end of the output, which may come after this returns.
    pub async fn run_attached(
        &self,
        spec: ProcessSpec,
        stop: watch::Receiver<Stop>,
        io: Attached,
    ) -> ExitStatus {
        let (state, _) = watch::channel(initial_state(spec.port));
        run_process(self.ctx.clone(), spec, stop, false, state, Some(io))
            .await
            .status
    }

    /// Start a long-running process that is restarted by the policy until it is stopped through
    /// the returned handle (or gives up). For a host that adds and removes processes while it
    /// runs, such as `dozen server`.
    pub fn start_process(&self, spec: ProcessSpec) -> ProcessHandle {
        let (stop_tx, stop_rx) = watch::channel(Stop::Running);
        let (state_tx, state_rx) = watch::channel(initial_state(spec.port));
        let name = spec.name.clone();
        let task = tokio::spawn(run_process(
            self.ctx.clone(),
            spec,
            stop_rx,
            true,
            state_tx,
            None,
        ));
        ProcessHandle {
            name,
            stop: stop_tx,
            state: state_rx,
            task,
        }
    }

    /// Clean up after [`Supervisor::run_once`] calls: sweep orphans (if enabled), remove the
    /// cgroups, dismiss the guardian, and wait for the last output.
    pub async fn shutdown(&self) {
        finish(&self.ctx).await;
    }

    /// Run `specs` until they end or `stop` asks, then stop everything and return.
    pub async fn run(self, specs: Vec<ProcessSpec>, mut stop: watch::Receiver<Stop>) -> Outcome {
        let ctx = self.ctx;
        let (report_tx, mut reports) = mpsc::channel::<Report>(specs.len().max(1));
        let (inner_tx, inner_rx) = watch::channel(Stop::Running);
        let mut remaining = specs.len();
        for spec in specs {
            let ctx = ctx.clone();
            let stop = inner_rx.clone();
            let tx = report_tx.clone();
            tokio::spawn(async move {
                let (state, _) = watch::channel(initial_state(spec.port));
                let report = run_process(ctx, spec, stop, true, state, None).await;
                let _ = tx.send(report).await;
            });
        }
        drop(report_tx);

        let mut outcome = Outcome {
            code: 0,
            ended_by: None,
        };
        let mut stopping = false;
        let mut external_open = true;
        while remaining > 0 {
            tokio::select! {
                changed = stop.changed(), if external_open => {
                    if changed.is_err() {
                        external_open = false;
                        continue;
                    }
                    let request = *stop.borrow_and_update();
                    match request {
                        Stop::Running => {}
                        Stop::Graceful { signal } => {
                            if !stopping {
                                stopping = true;
                                let why = signal.map(|s| format!("received {}; ", signal_name(s))).unwrap_or_default();
                                ctx.event(PlatformEvent::new(EventKind::Stopping, format!(
                                    "{why}stopping all processes (SIGTERM, then SIGKILL after {})", secs(ctx.policy.grace)))).await;
                                let _ = inner_tx.send(request);
                            } else {
                                ctx.event(PlatformEvent::new(EventKind::Stopping,
                                    "asked again: killing all processes now")).await;
                                let _ = inner_tx.send(Stop::Now);
                            }
                        }
                        Stop::Now => {
                            stopping = true;
                            ctx.event(PlatformEvent::new(EventKind::Stopping, "killing all processes now")).await;
                            let _ = inner_tx.send(Stop::Now);
                        }
                    }
                }
                report = reports.recv() => {
                    let Some(report) = report else { break };
                    remaining -= 1;
                    if report.stopped || stopping {
                        continue;
                    }
                    // The actor reports only exits it will not restart. Under the default
                    // policy any exit ends the run (as with foreman); otherwise only a process
                    // that gave up does, and a clean exit just ends that one process.
                    let ends_run = report.gave_up || ctx.policy.restart == crate::RestartPolicy::Never;
                    if ends_run && remaining > 0 {
                        stopping = true;
                        outcome = Outcome { code: report.status.shell_code(), ended_by: Some(report.name.clone()) };
                        ctx.event(PlatformEvent::new(EventKind::Stopping, format!(
                            "stopping all processes because {} {}", report.name, report.status))).await;
                        let _ = inner_tx.send(Stop::Graceful { signal: None });
                    } else if ends_run {
                        outcome = Outcome { code: report.status.shell_code(), ended_by: Some(report.name.clone()) };
                    }
                }
            }
        }

        finish(&ctx).await;
        outcome
    }
}

impl Ctx {
    async fn event(&self, event: PlatformEvent) {
        let _ = self.log.event(event).await;
    }

    fn guardian(&self) -> Option<&Guardian> {
        self.guardian.as_ref()
    }
}

async fn emit(log: &LogSender, event: PlatformEvent) {
    let _ = log.event(event).await;
}

/// `5s`, `1.5s`, `50ms`.
fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// One process, from first start to final exit, restarts included.
async fn run_process(
    ctx: Arc<Ctx>,
    spec: ProcessSpec,
    mut stop: watch::Receiver<Stop>,
    may_restart: bool,
    state: watch::Sender<ProcessState>,
    mut io: Option<Attached>,
) -> Report {
    let set = |phase: Phase, pid: Option<u32>, exit: Option<ExitStatus>, restarted: bool| {
        state.send_modify(|st| {
            st.phase = phase;
            st.since = SystemTime::now();
            if pid.is_some() {
                st.pid = pid;
            }
            if exit.is_some() {
                st.last_exit = exit;
            }
            if restarted {
                st.restarts += 1;
            }
        });
    };
    let label = Arc::new(Label::new(spec.name.clone(), spec.color));
    let log = spec.log.clone().unwrap_or_else(|| ctx.log.clone());
    let cgroup = ctx
        .cgroups
        .as_ref()
        .and_then(|root| root.child(&spec.name).ok());
    let limit_group = match limit_group(&ctx, &spec, cgroup.as_ref()) {
        Ok(g) => g,
        Err(e) => {
            emit(
                &log,
                PlatformEvent::new(
                    EventKind::Error,
                    format!(
                        "{}: its limits could not be set ({e}); it runs without them",
                        spec.name
                    ),
                )
                .target(&spec.name),
            )
            .await;
            None
        }
    };
    if let Some(g) = &limit_group {
        state.send_modify(|st| st.memory = Some(g.gauge()));
    }
    let mut history = CrashHistory::default();
    let report = |status, stopped, gave_up| {
        if let Some(cg) = &cgroup {
            // Everything in it has been stopped by now; a long-running host must not collect
            // empty directories.
            cg.remove();
        }
        if let Some(g) = &limit_group {
            g.remove();
        }
        let phase = if gave_up {
            Phase::Crashed
        } else {
            Phase::Exited
        };
        set(phase, None, Some(status), false);
        Report {
            name: spec.name.clone(),
            status,
            stopped,
            gave_up,
        }
    };
    loop {
        if *stop.borrow() != Stop::Running {
            return report(ExitStatus::Code(0), true, false);
        }
        let join_fds = limit_group
            .as_ref()
            .and_then(|g| g.procs_fds().ok())
            .unwrap_or_default();
        let mut oom = limit_group.as_ref().map(OomWatch::new);
        let spawned = match spawn_shell(
            &spec.command,
            &spec.env,
            spec.clear_env,
            &spec.cwd,
            Placement {
                cgroup: cgroup.as_ref(),
                limit_groups: &join_fds,
                confine: spec.confine.as_ref(),
            },
            io.is_some(),
        ) {
            Ok(s) => s,
            Err(e) => {
                emit(
                    &log,
                    PlatformEvent::new(
                        EventKind::Error,
                        format!("{} could not be started: {e}", spec.name),
                    )
                    .target(&spec.name),
                )
                .await;
                return report(ExitStatus::Code(127), false, true);
            }
        };
        let Spawned {
            pid,
            stdin: child_stdin,
            stdout,
            stderr,
            exit,
            in_cgroup,
        } = spawned;
        if let Some(g) = ctx.guardian() {
            g.watch_group(pid);
        }
        let mut started = PlatformEvent::new(
            EventKind::Started,
            match spec.port {
                Some(port) => format!("{} started (pid {pid}, port {port})", spec.name),
                None => format!("{} started (pid {pid})", spec.name),
            },
        )
        .target(&spec.name)
        .pid(pid as u32);
        if let Some(port) = spec.port {
            started = started.port(port);
        }
        emit(&log, started).await;
        set(Phase::Running, Some(pid as u32), None, false);
        let (input, output) = match io.take() {
            Some(Attached { stdin, output }) => (Some(stdin), output),
            None => (None, None),
        };
        let stdout = stdout.map(OwnedFd::from);
        let stderr = stderr.map(OwnedFd::from);
        let mut pumps = match output {
            Some(output) => start_raw_pumps(output, stdout, stderr),
            None => start_pumps(&log, &label, stdout, stderr),
        };
        if let (Some(fd), Some(input)) = (child_stdin, input) {
            feed_stdin(OwnedFd::from(fd), input);
        }
        let running = Running {
            log: log.clone(),
            name: spec.name.clone(),
            pid,
            cgroup: if in_cgroup { cgroup.clone() } else { None },
        };
        let mut exit = exit;
        let listening = wait_listening(ctx.ports.clone(), spec.port);
        tokio::pin!(listening);
        let mut up = false;
        let mut oom_tick = tokio::time::interval(OOM_POLL);
        let exited = loop {
            let bound = tokio::select! {
                status = &mut exit => break Some(status.unwrap_or(ExitStatus::Code(-1))),
                _ = stop.wait_for(|s| *s != Stop::Running) => break None,
                port = &mut listening, if !up => Some(port),
                _ = oom_tick.tick(), if oom.is_some() => None,
            };
            let Some(bound) = bound else {
                // A process it started was killed for memory while it kept running.
                if let Some(w) = oom.as_mut() {
                    if w.new_kills() > 0 {
                        emit(
                            &log,
                            w.event(&spec.name, "the kernel killed one of its processes"),
                        )
                        .await;
                    }
                }
                continue;
            };
            up = true;
            if let Some(port) = bound {
                set(Phase::Up, None, None, false);
                emit(
                    &log,
                    PlatformEvent::new(
                        EventKind::Up,
                        format!("{} is listening on port {port}", spec.name),
                    )
                    .target(&spec.name)
                    .pid(pid as u32)
                    .port(port),
                )
                .await;
            }
        };
        let Some(status) = exited else {
            set(Phase::Stopping, None, None, false);
            let status = running.terminate(&ctx, &mut stop, &mut exit).await;
            settle(&ctx, &mut pumps, PUMP_SETTLE).await;
            emit(&log, exited_event(&spec.name, pid, status)).await;
            if let Some(g) = ctx.guardian() {
                g.forget_group(pid);
            }
            return report(status, true, false);
        };
        // Let the last lines it printed come out before the news that it exited.
        settle(&ctx, &mut pumps, PUMP_SETTLE).await;
        emit(&log, exited_event(&spec.name, pid, status)).await;
        if let Some(w) = oom.as_mut() {
            if w.new_kills() > 0 {
                let restarts = may_restart && ctx.policy.restarts_after(status);
                let what = if restarts {
                    "killed by the kernel; restarting"
                } else {
                    "killed by the kernel"
                };
                emit(&log, w.event(&spec.name, what)).await;
            }
        }
        running.clean_leftovers(&ctx, &mut stop).await;
        settle(&ctx, &mut pumps, DRAIN_WAIT).await;
        if let Some(g) = ctx.guardian() {
            g.forget_group(pid);
        }
        if !may_restart || !ctx.policy.restarts_after(status) {
            return report(status, false, false);
        }
        match history.record(&ctx.policy, Instant::now()) {
            Verdict::GiveUp { failures } => {
                let lines = label.recent_lines();
                emit(
                    &log,
                    PlatformEvent::new(
                        EventKind::GaveUp,
                        format!(
                            "{} exited {failures} times within {}; giving up{}",
                            spec.name,
                            secs(ctx.policy.crash_window),
                            if lines.is_empty() {
                                String::new()
                            } else {
                                format!("; the last {} lines it printed:", lines.len())
                            }
                        ),
                    )
                    .target(&spec.name)
                    .code(status.shell_code()),
                )
                .await;
                for line in lines {
                    emit(
                        &log,
                        PlatformEvent::new(EventKind::GaveUp, format!("  {}: {line}", spec.name))
                            .target(&spec.name),
                    )
                    .await;
                }
                return report(status, false, true);
            }
            Verdict::RestartIn { delay, failures } => {
                set(Phase::Restarting, None, Some(status), true);
                emit(
                    &log,
                    PlatformEvent::new(
                        EventKind::Restarting,
                        format!(
                            "{} restarting in {} (exit {failures} of {} allowed within {})",
                            spec.name,
                            secs(delay),
                            ctx.policy.crash_limit,
                            secs(ctx.policy.crash_window)
                        ),
                    )
                    .target(&spec.name)
                    .delay_ms(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
                )
                .await;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s != Stop::Running) => {
                        return report(status, true, false);
                    }
                }
            }
        }
    }
}

fn initial_state(port: Option<u16>) -> ProcessState {
    ProcessState {
        phase: Phase::Starting,
        pid: None,
        port,
        since: SystemTime::now(),
        restarts: 0,
        last_exit: None,
        memory: None,
    }
}

/// How often a running process's cgroup is checked for kills by the out-of-memory killer.
const OOM_POLL: Duration = Duration::from_secs(1);

/// The cgroup(s) with the process's limits, when it has limits and the host enforces them.
fn limit_group(
    ctx: &Ctx,
    spec: &ProcessSpec,
    boxed: Option<&Cgroup>,
) -> std::io::Result<Option<LimitGroup>> {
    match (&ctx.limits, &spec.limits) {
        (Some(root), Some(limits)) => root.group(&spec.name, boxed, limits).map(Some),
        _ => Ok(None),
    }
}

/// Counts kills by the out-of-memory killer in one process's cgroup, to report new ones.
struct OomWatch {
    group: LimitGroup,
    seen: u64,
}

impl OomWatch {
    fn new(group: &LimitGroup) -> OomWatch {
        group.reset_peak();
        OomWatch {
            seen: group.oom_kills(),
            group: group.clone(),
        }
    }

    /// Kills since the last call.
    fn new_kills(&mut self) -> u64 {
        let now = self.group.oom_kills();
        let new = now.saturating_sub(self.seen);
        self.seen = now;
        new
    }

    /// Heroku's R15, in dozen's words: `web.1: Error R15 (memory quota vastly exceeded): used
    /// 128 MiB of 128 MiB (size tiny); killed by the kernel; restarting`.
    fn event(&self, name: &str, what: &str) -> PlatformEvent {
        use dozen_core::size::format_bytes as bytes;
        let limits = self.group.limits();
        let limit = limits.memory.unwrap_or(0);
        let used = self.group.peak().unwrap_or(limit).max(limit);
        let note = limits
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        PlatformEvent::new(
            EventKind::Error,
            format!(
                "{name}: Error R15 (memory quota vastly exceeded): used {} of {}{note}; {what}",
                bytes(used),
                bytes(limit)
            ),
        )
        .target(name)
    }
}

fn exited_event(name: &str, pid: i32, status: ExitStatus) -> PlatformEvent {
    let mut ev = PlatformEvent::new(EventKind::Exited, format!("{name} {status}"))
        .target(name)
        .pid(pid as u32);
    match status {
        ExitStatus::Code(c) => ev = ev.code(c),
        ExitStatus::Signal(s) => ev = ev.signal(s),
    }
    ev
}

fn start_pumps(
    log: &LogSender,
    label: &Arc<Label>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    for (fd, stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
        let Some(fd) = fd else { continue };
        let Ok(receiver) = pipe::Receiver::from_owned_fd(fd) else {
            continue;
        };
        let label = label.clone();
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let _ = pump(receiver, label, stream, log).await;
        }));
    }
    handles
}

/// Copy what arrives on `input` to the process's stdin; close it when `input` ends (end of file
/// for the process). A process that exits early just stops the copying.
fn feed_stdin(fd: OwnedFd, mut input: mpsc::Receiver<Vec<u8>>) {
    use tokio::io::AsyncWriteExt;
    let Ok(mut pipe) = pipe::Sender::from_owned_fd(fd) else {
        return;
    };
    tokio::spawn(async move {
        while let Some(chunk) = input.recv().await {
            if pipe.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
}

/// Wait up to `limit` for a run's pipes to reach end of file (they stay open while something it
/// started still holds them). Pumps still going are handed to the final drain.
async fn settle(ctx: &Ctx, pumps: &mut Vec<JoinHandle<()>>, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    for handle in pumps.iter_mut() {
        if tokio::time::timeout_at(deadline, &mut *handle)
            .await
            .is_err()
        {
            break;
        }
    }
    let unfinished: Vec<_> = pumps.drain(..).filter(|h| !h.is_finished()).collect();
    if !unfinished.is_empty() {
        let mut all = ctx.pumps.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|h| !h.is_finished());
        all.extend(unfinished);
    }
}

/// Resolves with the port once something listens on it (a process that serves HTTP or TCP is
/// up); never resolves for a process without a port or one that does not bind it within
/// [`BOOT_WATCH`].
async fn wait_listening(watcher: PortWatcher, port: Option<u16>) -> Option<u16> {
    match port {
        Some(port) => {
            watcher.bound(port).await;
            Some(port)
        }
        None => std::future::pending().await,
    }
}

/// A started process and what belongs to it.
struct Running {
    log: LogSender,
    name: String,
    pid: i32,
    cgroup: Option<Cgroup>,
}

impl Running {
    /// Every live process that belongs to this one, besides the main process.
    fn members(&self) -> HashSet<i32> {
        // In a cgroup, everything the process started is a member (children inherit the
        // cgroup), so the cgroup's list is the whole answer and no /proc walk is needed.
        let mut set: HashSet<i32> = match &self.cgroup {
            Some(cg) => cg.pids().into_iter().collect(),
            None => proctree::descendants(self.pid).into_iter().collect(),
        };
        set.remove(&self.pid);
        set
    }

    /// Signal the process group once, and each member that left the group on its own.
    fn signal_all(&self, sig: i32, members: &HashSet<i32>) {
        signal_group(self.pid, sig);
        if pgid_of(self.pid).is_some_and(|g| g != self.pid) {
            signal(self.pid, sig);
        }
        for &p in members {
            if pgid_of(p).is_some_and(|g| g != self.pid) {
                signal(p, sig);
            }
        }
        if sig == libc::SIGKILL {
            if let Some(cg) = &self.cgroup {
                cg.kill();
            }
        }
    }

    fn anything_left(&self, members: &HashSet<i32>) -> bool {
        if let Some(cg) = &self.cgroup {
            if cg.populated() {
                return true;
            }
        }
        group_alive(self.pid) || members.iter().any(|&p| proctree::read_ppid(p).is_some())
    }

    /// SIGTERM to the process and everything it started, wait up to the grace period (cut short
    /// by a request to stop now), then SIGKILL. Returns the main process's exit status.
    async fn terminate(
        &self,
        ctx: &Ctx,
        stop: &mut watch::Receiver<Stop>,
        exit: &mut tokio::sync::oneshot::Receiver<ExitStatus>,
    ) -> ExitStatus {
        let members = self.members();
        let now = *stop.borrow() == Stop::Now;
        let deadline = Instant::now()
            + if now {
                Duration::ZERO
            } else {
                ctx.policy.grace
            };
        if !now {
            self.signal_all(libc::SIGTERM, &members);
        }
        let mut status = None;
        let mut killed = now;
        loop {
            if status.is_none() {
                // A closed channel (no waiter: `clean_leftovers`) must not be polled again.
                match exit.try_recv() {
                    Ok(s) => status = Some(s),
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                        status = Some(ExitStatus::Code(-1))
                    }
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
                }
            }
            let members_now: HashSet<i32> = members.union(&self.members()).copied().collect();
            if status.is_some() && !self.anything_left(&members_now) {
                break;
            }
            if !killed && (Instant::now() >= deadline || *stop.borrow() == Stop::Now) {
                killed = true;
                if *stop.borrow() != Stop::Now {
                    emit(
                        &self.log,
                        PlatformEvent::new(
                            EventKind::Killed,
                            format!(
                                "{} did not stop within {}; sending SIGKILL",
                                self.name,
                                secs(ctx.policy.grace)
                            ),
                        )
                        .target(&self.name)
                        .pid(self.pid as u32)
                        .signal(libc::SIGKILL),
                    )
                    .await;
                }
                self.signal_all(libc::SIGKILL, &members_now);
            } else if killed {
                // Keep killing: something may have been forked in between.
                self.signal_all(libc::SIGKILL, &members_now);
                if Instant::now() >= deadline + KILL_WAIT {
                    break;
                }
            }
            tokio::select! {
                s = &mut *exit, if status.is_none() => { status = Some(s.unwrap_or(ExitStatus::Code(-1))); }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        status.unwrap_or(ExitStatus::Signal(libc::SIGKILL))
    }

    /// The main process exited on its own; stop whatever it left running (a daemon it started,
    /// a background job), so a restart does not run beside it.
    async fn clean_leftovers(&self, ctx: &Ctx, stop: &mut watch::Receiver<Stop>) {
        let members = self.members();
        if !self.anything_left(&members) {
            return;
        }
        let count = members.len().max(1);
        emit(
            &self.log,
            PlatformEvent::new(
                EventKind::Info,
                format!(
                    "{} left {count} process(es) running; stopping them",
                    self.name
                ),
            )
            .target(&self.name),
        )
        .await;
        // The main process's status is known: handed over at once, so `terminate` waits only for
        // the leftovers. (A closed channel instead would make it poll a receiver that
        // `try_recv` had already finished, which panics and leaves the process never restarted.)
        let (tx, mut already) = tokio::sync::oneshot::channel::<ExitStatus>();
        let _ = tx.send(ExitStatus::Code(0));
        let _ = self.terminate(ctx, stop, &mut already).await;
    }
}

/// After every process has ended: stop orphans, remove cgroups, dismiss the guardian, and wait
/// for the last lines to come out of the pipes.
async fn finish(ctx: &Arc<Ctx>) {
    if ctx.sweep_orphans {
        sweep(ctx).await;
    }
    if let Some(root) = &ctx.cgroups {
        root.kill_all();
        root.remove();
    }
    if let Some(root) = &ctx.limits {
        root.remove();
    }
    if let Some(g) = ctx.guardian() {
        g.dismiss();
    }
    let handles: Vec<_> = std::mem::take(&mut *ctx.pumps.lock().unwrap_or_else(|p| p.into_inner()));
    let drained = tokio::time::timeout(DRAIN_WAIT, async {
        for h in handles {
            let _ = h.await;
        }
    })
    .await;
    if drained.is_err() {
        ctx.event(PlatformEvent::new(
            EventKind::Error,
            "an output pipe is still held open by a process outside dozen's reach; stopped reading it",
        ))
        .await;
    }
}

async fn sweep(ctx: &Arc<Ctx>) {
    let me = std::process::id() as i32;
    let guardian = ctx.guardian().and_then(Guardian::pid);
    let left = || -> Vec<i32> {
        let guardian_tree: HashSet<i32> = guardian
            .map(|g| {
                let mut s: HashSet<i32> = proctree::descendants(g).into_iter().collect();
                s.insert(g);
                s
            })
            .unwrap_or_default();
        proctree::descendants(me)
            .into_iter()
            .filter(|p| !guardian_tree.contains(p))
            .collect()
    };
    let orphans = left();
    if orphans.is_empty() {
        return;
    }
    ctx.event(PlatformEvent::new(
        EventKind::Info,
        format!(
            "stopping {} leftover process(es) that escaped their process group",
            orphans.len()
        ),
    ))
    .await;
    for &p in &orphans {
        signal(p, libc::SIGTERM);
    }
    let deadline = Instant::now() + ctx.policy.grace;
    loop {
        let now_left = left();
        if now_left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for &p in &now_left {
                signal(p, libc::SIGKILL);
            }
            if Instant::now() >= deadline + KILL_WAIT {
                return;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}
