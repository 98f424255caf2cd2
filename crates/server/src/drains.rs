//! The drains of every app on this server: where each app's log stream leaves the host.
//!
//! [`DrainHub`] holds one running [`Drain`] (`dozen_logs::drains`) per drain in the store, each
//! with its bounded queue under `DOZEN_DATA_DIR/drains/<app>/<id>`. Every app's log stream
//! ([`crate::loghub::AppLog`]) has the app's [`AppDrains`] as its tap: each record of the stream
//! (what the processes printed, and the platform's events: builds, releases, scaling, crashes,
//! router lines) becomes RFC 5424 messages once and is offered to every drain of the app.
//! Offering never waits, so a slow or dead drain never slows the app nor its log stream: it
//! backs up into its queue on disk and, past the bound (`DOZEN_DRAIN_QUEUE`), drops its oldest
//! messages and reports how many once it is back.
//!
//! Drains start with the server for every app that has some, start on `drains:add`, and stop
//! with their queue removed on `drains:remove` and `apps:destroy`.
//!
//! **Their own thread.** The drains' tasks (writing their queues on disk, reading them back,
//! sending) run on one thread of their own (`dozen-drains`, a current-thread runtime) at a
//! lower CPU priority (nice [`DRAIN_NICE`]). Their disk I/O never stalls a worker thread that
//! reads the apps' pipes or serves requests, and when the host's CPUs are busy the apps and the
//! router go first: the drains catch up from their queues once there is room.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use dozen_logs::drains::{
    DEFAULT_QUEUE_BYTES, Drain, DrainConfig, DrainError, DrainStats, DrainUrl, Messages,
};
use dozen_logs::{EventKind, LineBatch, LogSender, PlatformEvent};
use dozen_store::{DrainRecord, Store, StoreError};

/// The directory under `DOZEN_DATA_DIR` that holds the drains' queues.
pub const DRAINS: &str = "drains";

/// How much lower the drains' thread runs than the rest of the server (`nice` steps).
pub const DRAIN_NICE: i32 = 10;

/// The smallest queue bound accepted.
pub const MIN_QUEUE_BYTES: u64 = 64 * 1024;

/// How drains are configured: `DOZEN_DRAIN_QUEUE` and `DOZEN_DRAIN_CA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainSettings {
    /// `DOZEN_DRAIN_QUEUE`: the bound of each drain's queue on disk (default 64MiB).
    pub queue_bytes: u64,
    /// `DOZEN_DRAIN_CA`: a PEM file of certificate authorities trusted for TLS drains, besides
    /// the system's.
    pub ca: Option<PathBuf>,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            queue_bytes: DEFAULT_QUEUE_BYTES,
            ca: None,
        }
    }
}

impl DrainSettings {
    /// Read the settings through `lookup`; an error names the variable, never its value.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<DrainSettings, String> {
        let queue_bytes = match lookup("DOZEN_DRAIN_QUEUE").filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_QUEUE_BYTES,
            Some(v) => match dozen_core::size::parse_bytes(&v) {
                Ok(n) if n >= MIN_QUEUE_BYTES => n,
                _ => {
                    return Err(
                        "DOZEN_DRAIN_QUEUE must be an amount of bytes of at least 64KiB, such as 64MiB or 1GiB".into(),
                    );
                }
            },
        };
        let ca = lookup("DOZEN_DRAIN_CA")
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);
        Ok(DrainSettings { queue_bytes, ca })
    }

    /// The drains' configuration: these settings, trusting the system's CAs and `ca`.
    pub fn config(&self) -> Result<DrainConfig, String> {
        let mut config =
            DrainConfig::new(self.ca.as_deref()).map_err(|e| format!("DOZEN_DRAIN_CA: {e}"))?;
        config.queue_bytes = self.queue_bytes;
        Ok(config)
    }
}

/// One app's running drains; the tap of the app's log stream.
#[derive(Debug)]
pub struct AppDrains {
    app: String,
    drains: Mutex<Vec<Drain>>,
}

impl AppDrains {
    fn drains(&self) -> MutexGuard<'_, Vec<Drain>> {
        self.drains.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offer a batch of lines of the app's stream to each of its drains, without waiting.
    /// The batch is shared with them as it is: the drains' thread makes the messages.
    pub fn offer_lines(&self, batch: LineBatch) {
        let drains = self.drains();
        if drains.is_empty() {
            return;
        }
        let batch = Arc::new(batch);
        for drain in drains.iter() {
            drain.offer_lines(&batch);
        }
    }

    /// Offer one of dozen's events about the app to each of its drains, without waiting.
    pub fn offer_event(&self, event: &PlatformEvent) {
        let drains = self.drains();
        if drains.is_empty() {
            return;
        }
        let mut messages = Messages::new();
        messages.push_event(&self.app, event);
        let messages = messages.share();
        for drain in drains.iter() {
            drain.offer(&messages);
        }
    }
}

/// The drains of every app on this server.
#[derive(Debug)]
pub struct DrainHub {
    dir: PathBuf,
    config: Mutex<Option<DrainConfig>>,
    apps: Mutex<HashMap<String, Arc<AppDrains>>>,
    thread: OnceLock<DrainThread>,
}

/// The thread the drains run on, started with the first drain; it ends with the hub.
#[derive(Debug)]
struct DrainThread {
    handle: tokio::runtime::Handle,
    /// Dropped with the hub, which ends the thread (and its tasks).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl DrainThread {
    fn start() -> std::io::Result<DrainThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, lowered) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("dozen-drains".into())
            .spawn(move || {
                lower_priority();
                let _ = ready.send(());
                let _ = runtime.block_on(stopped);
            })?;
        // No drain task runs before the thread's priority is set.
        let _ = lowered.recv();
        Ok(DrainThread {
            handle,
            _stop: stop,
        })
    }
}

/// Lower the calling thread's CPU priority by [`DRAIN_NICE`] (on Linux a nice value is a
/// thread's own). Where that is refused, the drains run at the server's priority.
fn lower_priority() {
    // SAFETY: gettid and setpriority take and return plain integers.
    unsafe {
        let tid = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, now + DRAIN_NICE);
    }
}

impl DrainHub {
    /// A hub keeping queues under `data_dir/drains`, with the default settings until
    /// [`DrainHub::configure`].
    pub fn new(data_dir: &Path) -> DrainHub {
        DrainHub {
            dir: data_dir.join(DRAINS),
            config: Mutex::new(None),
            apps: Mutex::new(HashMap::new()),
            thread: OnceLock::new(),
        }
    }

    /// Use `config` for the drains started from now on.
    pub fn configure(&self, config: DrainConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config);
    }

    fn config(&self) -> Result<DrainConfig, DrainError> {
        let mut config = self.config.lock().unwrap_or_else(|p| p.into_inner());
        if config.is_none() {
            *config = Some(DrainConfig::new(None)?);
        }
        Ok(config.clone().expect("set above"))
    }

    fn apps(&self) -> MutexGuard<'_, HashMap<String, Arc<AppDrains>>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The drains of `app` (none yet, for an app without drains): the tap of its log stream.
    pub fn app(&self, app: &str) -> Arc<AppDrains> {
        self.apps()
            .entry(app.to_string())
            .or_insert_with(|| {
                Arc::new(AppDrains {
                    app: app.to_string(),
                    drains: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    fn queue_dir(&self, app: &str, id: &str) -> PathBuf {
        self.dir.join(app).join(id)
    }

    fn thread(&self) -> Result<&DrainThread, DrainError> {
        if let Some(thread) = self.thread.get() {
            return Ok(thread);
        }
        let started = DrainThread::start().map_err(DrainError::Thread)?;
        // Two first drains at once: one thread wins, the other ends as it is dropped.
        Ok(self.thread.get_or_init(|| started))
    }

    /// Start the stored drain `record`, on the drains' thread.
    pub fn start(&self, record: &DrainRecord) -> Result<(), DrainError> {
        let url = DrainUrl::parse(&record.url)?;
        let config = self.config()?;
        let _on = self.thread()?.handle.enter();
        let drain = Drain::start(
            &record.id,
            &record.app,
            url,
            &self.queue_dir(&record.app, &record.id),
            &config,
        )?;
        let app = self.app(&record.app);
        let mut drains = app.drains();
        drains.retain(|d| d.id() != record.id);
        drains.push(drain);
        Ok(())
    }

    /// Stop drain `id` of `app` and remove its queue. False when it was not running.
    pub fn remove(&self, app: &str, id: &str) -> bool {
        let entry = self.apps().get(app).cloned();
        let removed = entry.and_then(|a| {
            let mut drains = a.drains();
            let at = drains.iter().position(|d| d.id() == id)?;
            Some(drains.remove(at))
        });
        match removed {
            Some(drain) => {
                if let Err(e) = drain.remove() {
                    eprintln!(
                        "dozen server: error: removing the queue of drain {id} of {app}: {e}"
                    );
                }
                true
            }
            None => {
                let _ = std::fs::remove_dir_all(self.queue_dir(app, id));
                false
            }
        }
    }

    /// Stop every drain of a destroyed app and remove their queues.
    pub fn forget_app(&self, app: &str) {
        let entry = self.apps().remove(app);
        if let Some(entry) = entry {
            for drain in entry.drains().drain(..) {
                let _ = drain.remove();
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.join(app));
    }

    /// The numbers of `app`'s running drains, by id.
    pub fn stats(&self, app: &str) -> BTreeMap<String, DrainStats> {
        let entry = self.apps().get(app).cloned();
        entry
            .map(|a| {
                a.drains()
                    .iter()
                    .map(|d| (d.id().to_string(), d.stats()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Start every drain in the store (the server starts), and remove the queues of drains the
    /// store no longer has. Returns a message for each drain that could not start.
    pub async fn start_all(&self, store: &Store) -> Result<Vec<String>, StoreError> {
        let records = store.all_drains().await?;
        let mut failures = Vec::new();
        for record in &records {
            if let Err(e) = self.start(record) {
                failures.push(format!(
                    "drain {} of {} did not start: {e}",
                    record.id, record.app
                ));
            }
        }
        self.sweep(&records);
        Ok(failures)
    }

    /// Remove queue directories of drains that are not in `records`.
    fn sweep(&self, records: &[DrainRecord]) {
        let Ok(apps) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for app in apps.flatten() {
            let name = app.file_name().to_string_lossy().into_owned();
            if !records.iter().any(|r| r.app == name) {
                let _ = std::fs::remove_dir_all(app.path());
                continue;
            }
            let Ok(queues) = std::fs::read_dir(app.path()) else {
                continue;
            };
            for queue in queues.flatten() {
                let id = queue.file_name().to_string_lossy().into_owned();
                if !records.iter().any(|r| r.app == name && r.id == id) {
                    let _ = std::fs::remove_dir_all(queue.path());
                }
            }
        }
    }
}

/// At the start of the server: configure the drains from `config` (a bad `DOZEN_DRAIN_CA`
/// stops the start), start every stored drain, and report those that cannot start to `log`.
pub async fn start_with_server(
    runtime: &crate::runtime::Runtime,
    config: &crate::ServerConfig,
    store: &Store,
    log: &LogSender,
) -> Result<(), crate::ServerError> {
    let drain_config = config.drains.config().map_err(crate::ServerError::Config)?;
    runtime.drains.configure(drain_config);
    for failure in runtime.drains.start_all(store).await? {
        let _ = log
            .event(PlatformEvent::new(EventKind::Error, failure))
            .await;
    }
    Ok(())
}

/// At the stop of the server, after the processes stopped: let every app's stream pass what it
/// holds to its drains, and the drains write it to their queues, so that the next start sends
/// it. Bounded by [`SETTLE_LIMIT`] per app.
pub async fn settle(runtime: &crate::runtime::Runtime) {
    let apps: Vec<Arc<AppDrains>> = runtime.drains.apps().values().cloned().collect();
    for app in apps {
        let ids: Vec<String> = app.drains().iter().map(|d| d.id().to_string()).collect();
        if ids.is_empty() {
            continue;
        }
        let sender = runtime.log(&app.app).sender();
        let _ = tokio::time::timeout(SETTLE_LIMIT, sender.barrier()).await;
        // The drains are taken out to wait on them without holding the lock; nothing is
        // offered any more.
        let drains: Vec<Drain> = app.drains().drain(..).collect();
        for drain in &drains {
            drain.settle(SETTLE_LIMIT).await;
        }
    }
}

/// How long [`settle`] waits for one app.
pub const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_variable_and_never_echo_it() {
        let lookup = |k: &str| (k == "DOZEN_DRAIN_QUEUE").then(|| "lots".to_string());
        let e = DrainSettings::from_lookup(&lookup).unwrap_err();
        assert!(
            e.contains("DOZEN_DRAIN_QUEUE") && !e.contains("lots"),
            "{e}"
        );
        let lookup = |k: &str| (k == "DOZEN_DRAIN_QUEUE").then(|| "1KiB".to_string());
        assert!(DrainSettings::from_lookup(&lookup).is_err());
        let lookup = |k: &str| (k == "DOZEN_DRAIN_QUEUE").then(|| "256KiB".to_string());
        assert_eq!(
            DrainSettings::from_lookup(&lookup).unwrap().queue_bytes,
            256 * 1024
        );
        let none = |_: &str| None;
        assert_eq!(
            DrainSettings::from_lookup(&none).unwrap(),
            DrainSettings::default()
        );
    }

    /// The nice value of this process's thread named `name`, from `/proc`.
    fn nice_of(name: &str) -> Option<i64> {
        std::fs::read_dir("/proc/self/task")
            .ok()?
            .flatten()
            .find_map(|task| {
                let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
                if comm.trim() != name {
                    return None;
                }
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // After the command's closing parenthesis, field 19 (nice) is the 17th.
                stat.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(16)?
                    .parse()
                    .ok()
            })
    }

    #[tokio::test]
    async fn drains_run_on_their_own_thread_below_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let hub = DrainHub::new(dir.path());
        assert_eq!(
            nice_of("dozen-drains"),
            None,
            "no thread before the first drain"
        );
        hub.start(&DrainRecord {
            id: "drn_0123456789abcdef".into(),
            app: "shop".into(),
            url: "syslog://127.0.0.1:9".into(),
            created_at: "2026-12-03T00:00:00Z".into(),
        })
        .unwrap();
        // SAFETY: getpriority takes and returns plain integers (0: the calling thread).
        let server = i64::from(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) });
        assert_eq!(nice_of("dozen-drains"), Some(server + DRAIN_NICE as i64));
        assert_eq!(hub.stats("shop").len(), 1);
        drop(hub);
    }
}
