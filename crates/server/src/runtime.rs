//! The processes of every app on this host: converging each app's formation to its live
//! release, one-off runs, and stopping it all.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dozen_core::RunEnv;
use dozen_logs::{EventKind, PlatformEvent};
use dozen_store::Release;
use dozen_supervise::{ExitStatus, Phase, ProcessHandle, ProcessSpec, Stop, Supervisor};
use serde::Serialize;
use tokio::sync::watch;

use crate::loghub::AppLog;
use crate::platform::PlatformError;
use crate::rotation::Rotation;
use crate::tenancy::{self, AppUser, Tenancy};

/// What every process of one release starts from: the directory its slug is extracted in,
/// the web health check path, the slug's run environment, and the app's user and view of the
/// system (none for one trusted tenant).
struct SlugRun {
    dir: PathBuf,
    health: Option<String>,
    run_env: RunEnv,
    confine: Option<dozen_supervise::Confinement>,
    /// Sizes the release declares (`dozen.toml` `[sizes]`, `app.json`), type -> name.
    sizes: BTreeMap<String, String>,
}

/// One running process of an app.
#[derive(Debug)]
struct Proc {
    handle: ProcessHandle,
    type_name: String,
    release: i64,
    /// Its `PORT`, kept from other processes until this one is gone.
    lease: crate::ports::Lease,
    size: &'static dozen_core::Size,
}

/// What runs for one app.
#[derive(Debug, Default)]
struct AppRun {
    release: Option<i64>,
    /// Bumped by every deploy or restart: the processes started together.
    generation: u64,
    procs: BTreeMap<(String, usize), Proc>,
    one_offs: usize,
}

/// A row of `ps`.
#[derive(Debug, Clone, Serialize)]
pub struct PsRow {
    /// `web.1`.
    pub name: String,
    /// `web`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// starting, running, up, restarting, stopping, exited, crashed.
    pub state: &'static str,
    /// The current pid.
    pub pid: Option<u32>,
    /// The port it listens on (given as `PORT`).
    pub port: u16,
    /// The release it runs.
    pub release: i64,
    /// Seconds since it entered its state.
    pub for_seconds: u64,
    /// How often it was restarted.
    pub restarts: u32,
    /// Its size (`1x`).
    pub size: &'static str,
    /// Bytes of memory it uses now (with everything it started), where the host measures it.
    pub memory: Option<u64>,
    /// The most memory its size allows.
    pub memory_limit: u64,
    /// Seconds of CPU time it (with everything it started) has used.
    pub cpu_seconds: Option<f64>,
    /// The percentage of one core it used over the last few seconds ([`crate::metrics::cpu`]).
    pub cpu_percent: Option<f64>,
}

/// Every app's processes on this host.
#[derive(Debug)]
pub struct Runtime {
    supervisor: Supervisor,
    rotation: Arc<Rotation>,
    boot_timeout: Duration,
    grace: Duration,
    data_dir: PathBuf,
    log_lines: usize,
    log_history: bool,
    apps: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<AppRun>>>>,
    logs: Mutex<HashMap<String, Arc<AppLog>>>,
    ops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    tenancy: Tenancy,
    /// Sizes set with `ps:resize`, per app.
    pub sizes: crate::sizes::SizeBook,
    /// Every app's log drains.
    pub drains: crate::drains::DrainHub,
    /// CPU readings and last rows for `ps` and `/metrics`.
    pub metrics: crate::metrics::Metrics,
}

impl Runtime {
    /// Hold this while changing an app (deploy, config, rollback): one change at a time per
    /// app, in order.
    pub async fn lock_app(&self, app: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
            ops.entry(app.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// A runtime that keeps `log_lines` recent lines per app and release directories under
    /// `data_dir/releases`.
    pub fn new(
        supervisor: Supervisor,
        rotation: Arc<Rotation>,
        data_dir: PathBuf,
        log_lines: usize,
        boot_timeout: Duration,
    ) -> Runtime {
        Runtime {
            supervisor,
            rotation,
            boot_timeout,
            grace: Duration::from_secs(10),
            log_lines,
            log_history: true,
            apps: tokio::sync::Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            ops: Mutex::new(HashMap::new()),
            tenancy: Tenancy::detect("dozen-"),
            sizes: crate::sizes::SizeBook::default(),
            drains: crate::drains::DrainHub::new(&data_dir),
            data_dir,
            metrics: crate::metrics::Metrics::default(),
        }
    }

    /// How apps are kept apart on this host.
    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// The system user `app` builds and runs as (created on first use); `None` when the
    /// server is not root and every app runs as the server's user.
    pub async fn app_user(&self, app: &str) -> Result<Option<AppUser>, PlatformError> {
        self.tenancy.ensure_user(&self.supervisor, app).await
    }

    /// What a process of `app` running in `dir` is confined to (none for one trusted tenant).
    async fn confinement(
        &self,
        app: &str,
        dir: &Path,
    ) -> Result<Option<dozen_supervise::Confinement>, PlatformError> {
        Ok(self
            .app_user(app)
            .await?
            .map(|u| tenancy::confinement(u, &self.data_dir, &[dir])))
    }

    /// Name the apps' system users `<prefix><app>` (`DOZEN_APP_USER_PREFIX`).
    pub fn with_app_user_prefix(mut self, prefix: &str) -> Runtime {
        self.tenancy = Tenancy::detect(prefix);
        self
    }

    /// Keep log streams in memory only, without a history on disk (`DOZEN_LOG_HISTORY=off`).
    pub fn without_log_history(mut self) -> Runtime {
        self.log_history = false;
        self
    }

    /// The router, for its traffic counters.
    pub fn router(&self) -> &Arc<dozen_router::Router> {
        self.rotation.router()
    }

    /// The apps that have (or had) processes on this host since the server started.
    pub async fn app_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.apps.lock().await.keys().cloned().collect();
        names.sort();
        names
    }

    /// The supervisor, for build steps.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The app's log stream (created on first use, with the events its history kept from
    /// before a restart).
    pub fn log(&self, app: &str) -> Arc<AppLog> {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.entry(app.to_string())
            .or_insert_with(|| {
                let log = match self.log_history {
                    true => AppLog::with_history(self.log_lines, &self.history_dir(app)),
                    false => AppLog::new(self.log_lines),
                };
                log.set_tap(self.drains.app(app));
                log
            })
            .clone()
    }

    fn history_dir(&self, app: &str) -> PathBuf {
        self.data_dir.join(crate::recover::LOGS).join(app)
    }

    /// Forget a destroyed app: its log stream and history, and its build cache. Call after the
    /// store deleted it (a server killed before that still has the app, and its logs).
    pub fn forget_app(&self, app: &str) {
        let log = self
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app);
        if let Some(log) = log {
            log.close();
        }
        self.drains.forget_app(app);
        let _ = dozen_logs::History::remove(&self.history_dir(app));
        let _ = std::fs::remove_dir_all(self.data_dir.join(crate::recover::CACHE).join(app));
    }

    /// Tell the app's log stream something.
    pub async fn event(&self, app: &str, kind: EventKind, text: impl Into<String>) {
        let _ = self
            .log(app)
            .sender()
            .event(PlatformEvent::new(kind, text))
            .await;
    }

    async fn app_run(&self, app: &str) -> Arc<tokio::sync::Mutex<AppRun>> {
        let mut apps = self.apps.lock().await;
        apps.entry(app.to_string()).or_default().clone()
    }

    /// The directory a release runs from: its slug, extracted once, read-only by convention.
    /// Absolute (the data directory may be given relative), since `HOME` and the `PATH`
    /// entries of the run environment are made from it.
    pub async fn release_dir(&self, release: &Release) -> Result<PathBuf, PlatformError> {
        let dir = self
            .data_dir
            .join("releases")
            .join(&release.app)
            .join(format!("v{}", release.version));
        let dir = std::path::absolute(&dir).map_err(|e| {
            PlatformError::internal(
                "preparing the release directory",
                format!("{}: {e}", dir.display()),
            )
        })?;
        let user = self.app_user(&release.app).await?;
        let give = |dir: &Path| -> Result<(), PlatformError> {
            if let Some(u) = user {
                dozen_supervise::Confinement::user(u.uid, u.gid)
                    .own_once(dir)
                    .map_err(|e| {
                        PlatformError::internal("giving the release directory to the app's user", e)
                    })?;
            }
            Ok(())
        };
        if dir.is_dir() {
            give(&dir)?;
            return Ok(dir);
        }
        let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&parent).map_err(|e| {
            PlatformError::internal(
                "preparing the release directory",
                format!("{}: {e}", parent.display()),
            )
        })?;
        match &release.slug {
            Some(digest) => {
                let slug = self
                    .data_dir
                    .join("slugs")
                    .join(format!("{digest}.tar.zst"));
                let target = dir.clone();
                tokio::task::spawn_blocking(move || dozen_build::extract_slug(&slug, &target))
                    .await
                    .map_err(|e| {
                        PlatformError::internal(
                            format!("extracting the slug of v{}", release.version),
                            e,
                        )
                    })?
                    .map_err(|e| {
                        PlatformError::internal(
                            format!("extracting the slug of v{}", release.version),
                            e,
                        )
                    })?;
            }
            None => {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    PlatformError::internal(
                        "preparing the release directory",
                        format!("{}: {e}", dir.display()),
                    )
                })?;
            }
        }
        give(&dir)?;
        Ok(dir)
    }

    /// The environment of a process of `release`: a minimal base (never the server's own
    /// variables, which hold its secrets), the release's config, the slug's run environment
    /// (its directories in front of `PATH`, its defaults where config has none), then `PORT`
    /// and `PS`.
    fn env(
        release: &Release,
        run_env: &RunEnv,
        dir: &Path,
        port: Option<u16>,
        ps: &str,
    ) -> Vec<(String, String)> {
        let host_path =
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let mut env = vec![
            ("PATH".to_string(), host_path.clone()),
            ("HOME".to_string(), dir.display().to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
        ];
        for (k, v) in &release.config {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
        env.retain(|(k, _)| k != "PORT" && k != "PS");
        run_env.apply(dir, &mut env, &host_path);
        if let Some(port) = port {
            env.push(("PORT".into(), port.to_string()));
        }
        env.push(("PS".into(), ps.to_string()));
        env
    }

    /// What the build recorded about a release's slug, from its manifest beside the slug.
    fn slug_manifest(&self, release: &Release) -> Option<serde_json::Value> {
        release
            .slug
            .as_ref()
            .and_then(|d| {
                std::fs::read_to_string(self.data_dir.join("slugs").join(format!("{d}.json"))).ok()
            })
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    }

    /// The run environment a release's slug records (none for a release without a slug, or
    /// a slug built before dozen recorded one). A rollback gets the old slug's, so the old
    /// environment comes back with the old code.
    fn run_env(&self, release: &Release) -> Result<RunEnv, PlatformError> {
        match self.slug_manifest(release) {
            Some(m) => dozen_build::run_env_from_json(&m["run_env"]).map_err(|e| {
                PlatformError::internal(
                    format!(
                        "reading the run environment in the slug manifest of v{}",
                        release.version
                    ),
                    e,
                )
            }),
            None => Ok(RunEnv::default()),
        }
    }

    /// The sizes a release's slug declares (`dozen.toml`'s `[sizes]`, `app.json`'s
    /// `formation.TYPE.size`): type -> size name.
    fn declared_sizes(&self, release: &Release) -> BTreeMap<String, String> {
        self.slug_manifest(release)
            .and_then(|m| {
                m["sizes"].as_object().map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// The size each process type of `release` runs at.
    pub fn sizes_of(&self, release: &Release) -> BTreeMap<String, &'static dozen_core::Size> {
        let declared = self.declared_sizes(release);
        release
            .process_types
            .keys()
            .filter(|t| *t != "release")
            .map(|t| {
                let stored = self.sizes.get(&release.app, t);
                (t.clone(), crate::sizes::effective(stored, &declared, t))
            })
            .collect()
    }

    /// The health check path and boot timeout a release's slug declares (`dozen.toml`).
    fn health_settings(&self, release: &Release) -> (Option<String>, Duration) {
        let manifest = self.slug_manifest(release);
        let path = manifest
            .as_ref()
            .and_then(|m| m["health_check"].as_str().map(str::to_string));
        let boot = manifest
            .as_ref()
            .and_then(|m| m["boot_timeout"].as_u64())
            .map(Duration::from_secs)
            .unwrap_or(self.boot_timeout);
        (path, boot)
    }

    fn start(
        &self,
        release: &Release,
        slug: &SlugRun,
        type_name: &str,
        number: usize,
        generation: u64,
    ) -> Result<Proc, PlatformError> {
        let SlugRun {
            dir,
            health,
            run_env,
            confine,
            sizes,
        } = slug;
        let app = release.app.as_str();
        let lease = crate::ports::Lease::take()?;
        let port = lease.port();
        let name = format!("{type_name}.{number}");
        let size = crate::sizes::effective(self.sizes.get(app, type_name), sizes, type_name);
        let command = release
            .process_types
            .get(type_name)
            .map(|c| run_env.profile_line(&dir.to_string_lossy(), c))
            .unwrap_or_default();
        let spec = ProcessSpec {
            name: name.clone(),
            command,
            env: Self::env(release, run_env, dir, Some(port), &name),
            cwd: dir.to_path_buf(),
            port: Some(port),
            color: 0,
            clear_env: true,
            log: Some(self.log(app).sender()),
            confine: confine.clone(),
            limits: Some(crate::sizes::limits(size, type_name)),
        };
        let handle = self.supervisor.start_process(spec);
        if type_name == "web" {
            self.rotation.watch(
                app.to_string(),
                Rotation::backend_name(&name, port),
                generation,
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                health.clone(),
                handle.watch_state(),
            );
        }
        Ok(Proc {
            handle,
            type_name: type_name.to_string(),
            release: release.version,
            lease,
            size,
        })
    }

    /// Make the app run `formation` of `release`.
    ///
    /// A new release (or `replace`, for restarts) starts a whole new set of processes beside the
    /// old ones, waits until every new web process is healthy (it listens on its `PORT` and its
    /// health check path answers 2xx or 3xx), switches the router to them in one step, lets the
    /// old web processes finish their requests, and stops the old set. If a new web process is
    /// not healthy within the boot timeout, the new set is stopped and the old one keeps
    /// serving. The same release without `replace` only starts missing instances and stops
    /// extra ones (out of rotation first). A type without a formation entry runs one `web` and
    /// no others, as on Heroku.
    pub async fn converge(
        &self,
        release: &Release,
        formation: &BTreeMap<String, i64>,
        replace: bool,
    ) -> Result<(), PlatformError> {
        let app = release.app.as_str();
        let run = self.app_run(app).await;
        let mut run = run.lock().await;
        let dir = self.release_dir(release).await?;
        let (health, boot) = self.health_settings(release);
        let slug = SlugRun {
            dir: dir.clone(),
            health: health.clone(),
            run_env: self.run_env(release)?,
            confine: self.confinement(app, &dir).await?,
            sizes: self.declared_sizes(release),
        };
        let mut desired: Vec<(String, usize)> = Vec::new();
        for (type_name, n) in effective_formation(formation, release) {
            for i in 1..=n.max(0) {
                desired.push((type_name.clone(), usize::try_from(i).unwrap_or(usize::MAX)));
            }
        }
        if replace || run.release != Some(release.version) {
            let generation = run.generation + 1;
            let mut fresh: BTreeMap<(String, usize), Proc> = BTreeMap::new();
            for (type_name, number) in &desired {
                let p = self.start(release, &slug, type_name, *number, generation)?;
                fresh.insert((type_name.clone(), *number), p);
            }
            let webs: Vec<(String, watch::Receiver<dozen_supervise::ProcessState>)> = fresh
                .iter()
                .filter(|((t, _), _)| t == "web")
                .map(|((t, n), p)| {
                    (
                        Rotation::backend_name(&format!("{t}.{n}"), p.lease.port()),
                        p.handle.watch_state(),
                    )
                })
                .collect();
            let names: Vec<String> = webs.iter().map(|(n, _)| n.clone()).collect();
            let states: Vec<_> = webs.into_iter().map(|(_, s)| s).collect();
            let missing = self
                .rotation
                .wait_healthy(app, generation, &names, &states, boot)
                .await;
            if !missing.is_empty() {
                drop(run);
                stop_all(fresh.into_values().collect()).await;
                let which: Vec<&str> = missing
                    .iter()
                    .map(|n| n.split('@').next().unwrap_or(n))
                    .collect();
                let check = match &health {
                    Some(p) => format!("listen on its PORT and answer GET {p} with 2xx or 3xx"),
                    None => "listen on its PORT".to_string(),
                };
                return Err(PlatformError::Invalid(format!(
                    "{} of v{} did not become healthy within {}s (a web process must {check}); the running processes keep serving",
                    which.join(", "),
                    release.version,
                    boot.as_secs()
                )));
            }
            let lag = self.rotation.go_live(app, generation);
            self.event(
                app,
                dozen_logs::EventKind::Info,
                format!(
                    "v{}: traffic switched to the new web processes {} ms after the last became healthy",
                    release.version,
                    lag.as_millis()
                ),
            )
            .await;
            let old = std::mem::replace(&mut run.procs, fresh);
            run.release = Some(release.version);
            run.generation = generation;
            drop(run);
            self.retire(app, old.into_values().collect()).await;
        } else {
            let generation = run.generation;
            let extra: Vec<(String, usize)> = run
                .procs
                .keys()
                .filter(|k| !desired.contains(k))
                .cloned()
                .collect();
            let mut retired = Vec::new();
            for key in extra.into_iter().rev() {
                if let Some(p) = run.procs.remove(&key) {
                    retired.push(p);
                }
            }
            for (type_name, number) in desired {
                let key = (type_name.clone(), number);
                if let std::collections::btree_map::Entry::Vacant(slot) = run.procs.entry(key) {
                    slot.insert(self.start(release, &slug, &type_name, number, generation)?);
                }
            }
            drop(run);
            self.retire(app, retired).await;
        }
        Ok(())
    }

    /// Take processes out of rotation, let their in-flight requests finish, then stop them.
    async fn retire(&self, app: &str, procs: Vec<Proc>) {
        for p in &procs {
            if p.type_name == "web" {
                let backend = Rotation::backend_name(p.handle.name(), p.lease.port());
                self.rotation.remove(app, &backend);
                self.rotation
                    .router()
                    .wait_drained(app, &backend, self.grace)
                    .await;
            }
        }
        stop_all(procs).await;
    }

    /// The processes of `app`, by name.
    pub async fn ps(&self, app: &str) -> Vec<PsRow> {
        let run = self.app_run(app).await;
        let run = run.lock().await;
        let now = SystemTime::now();
        run.procs
            .iter()
            .map(|((t, n), p)| {
                let st = p.handle.state();
                let usage = st.usage();
                let name = format!("{t}.{n}");
                let cpu_percent = st
                    .pid
                    .and_then(|pid| self.metrics.cpu.percent(app, &name, pid))
                    .filter(|_| usage.cpu_seconds.is_some());
                PsRow {
                    name,
                    type_name: p.type_name.clone(),
                    state: st.phase.as_str(),
                    pid: st
                        .pid
                        .filter(|_| !matches!(st.phase, Phase::Exited | Phase::Crashed)),
                    port: p.lease.port(),
                    release: p.release,
                    for_seconds: now
                        .duration_since(st.since)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                    restarts: st.restarts,
                    size: p.size.name,
                    memory: usage.memory,
                    memory_limit: p.size.memory,
                    cpu_seconds: usage.cpu_seconds,
                    cpu_percent,
                }
            })
            .collect()
    }

    /// Restart the app's processes. All of them, or `web`: a new set, switched to when healthy,
    /// as a deploy does. Another type: its processes are stopped and started again.
    pub async fn restart(
        &self,
        release: &Release,
        formation: &BTreeMap<String, i64>,
        only_type: Option<&str>,
    ) -> Result<(), PlatformError> {
        match only_type {
            None | Some("web") => self.converge(release, formation, true).await,
            Some(t) => {
                let run = self.app_run(&release.app).await;
                let stopped: Vec<Proc> = {
                    let mut run = run.lock().await;
                    let keys: Vec<(String, usize)> =
                        run.procs.keys().filter(|(k, _)| k == t).cloned().collect();
                    keys.iter().filter_map(|k| run.procs.remove(k)).collect()
                };
                stop_all(stopped).await;
                self.converge(release, formation, false).await
            }
        }
    }

    /// Run `command` once in `release`'s environment as `run.N` (or `release` for the release
    /// phase), its output in the app's log stream. Returns its name (for following its output)
    /// and a future result.
    pub async fn one_off_name(&self, app: &str, phase: Option<&str>) -> String {
        if let Some(p) = phase {
            return p.to_string();
        }
        let run = self.app_run(app).await;
        let mut run = run.lock().await;
        run.one_offs += 1;
        format!("run.{}", run.one_offs)
    }

    /// Run a one-off to its end; with `attached`, a client's stdin and (when it takes them
    /// raw) its stdout and stderr.
    pub async fn run_once(
        &self,
        release: &Release,
        name: &str,
        command: &str,
        stop: watch::Receiver<Stop>,
        attached: Option<dozen_supervise::Attached>,
    ) -> Result<ExitStatus, PlatformError> {
        let dir = self.release_dir(release).await?;
        let run_env = self.run_env(release)?;
        // Held until the one-off ends.
        let lease = crate::ports::Lease::take()?;
        let port = lease.port();
        let confine = self.confinement(&release.app, &dir).await?;
        let spec = ProcessSpec {
            name: name.to_string(),
            command: run_env.profile_line(&dir.to_string_lossy(), command),
            env: Self::env(release, &run_env, &dir, Some(port), name),
            cwd: dir,
            port: None,
            color: 0,
            clear_env: true,
            log: Some(self.log(&release.app).sender()),
            confine,
            limits: Some(crate::sizes::one_off_limits()),
        };
        Ok(match attached {
            Some(io) => self.supervisor.run_attached(spec, stop, io).await,
            None => self.supervisor.run_once(spec, stop).await,
        })
    }

    /// Re-read the app's custom domains and update its routes.
    pub async fn refresh_routes(
        &self,
        store: &dozen_store::Store,
        app: &str,
    ) -> Result<(), PlatformError> {
        self.rotation.set_hosts(app, store.domains(app).await?);
        Ok(())
    }

    /// Destroy what `app` has on this host: stop its processes, remove its release
    /// directories and build cache, and its system user (with anything still running as it).
    pub async fn stop_app(&self, app: &str) {
        self.rotation.remove_app(app);
        let run = self.apps.lock().await.remove(app);
        self.sizes.remove(app);
        if let Some(run) = run {
            let procs = std::mem::take(&mut run.lock().await.procs);
            stop_all(procs.into_values().collect()).await;
        }
        let _ = std::fs::remove_dir_all(self.data_dir.join("releases").join(app));
        let _ = std::fs::remove_dir_all(self.data_dir.join("cache").join(app));
        if let Err(e) = self.tenancy.remove_user(&self.supervisor, app).await {
            self.event(app, EventKind::Error, e.to_string()).await;
        }
    }

    /// Stop everything gracefully and wait (server shutdown).
    pub async fn shutdown(&self) {
        let apps: Vec<_> = self.apps.lock().await.drain().collect();
        let mut all = Vec::new();
        for (_, run) in apps {
            all.extend(std::mem::take(&mut run.lock().await.procs).into_values());
        }
        stop_all(all).await;
        self.supervisor.shutdown().await;
    }
}

/// The quantity of every process type of `release` (the `release` phase excluded): the stored
/// formation, and for a type it does not mention, one `web` and no others, as on Heroku.
pub fn effective_formation(
    formation: &BTreeMap<String, i64>,
    release: &Release,
) -> BTreeMap<String, i64> {
    dozen_api::effective_formation(formation, release.process_types.keys())
}

async fn stop_all(procs: Vec<Proc>) {
    for p in &procs {
        p.handle.stop(Stop::Graceful { signal: None });
    }
    for p in procs {
        p.handle.finished().await;
    }
}
