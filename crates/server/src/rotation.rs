//! Which web processes receive traffic: the bridge between process states and the router.
//!
//! Every web process has a watcher. When the process is up (listening on its `PORT`) and its
//! health check passes, the watcher adds it to the app's members, tagged with the process's
//! *generation* (each deploy or restart is one); when it is anything else (crashed, restarting,
//! stopping), the watcher takes it out at once. Only members of the app's live generation are
//! published to the router, so a deploy can start new processes beside the old ones, wait until
//! they are healthy, and then switch all traffic in one swap of the route table
//! ([`Rotation::go_live`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dozen_router::{BackendSpec, Router};
use dozen_supervise::{Phase, ProcessState};
use tokio::sync::{Notify, watch};

#[derive(Debug, Default)]
struct AppRotation {
    hosts: Vec<String>,
    live: Option<u64>,
    members: BTreeMap<String, (u64, SocketAddr)>,
    /// When each member last joined, for the time from healthy to live.
    joined: BTreeMap<String, std::time::Instant>,
}

/// The app traffic side of the runtime.
pub struct Rotation {
    router: Arc<Router>,
    apps: Mutex<HashMap<String, AppRotation>>,
    changed: Notify,
}

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rotation")
    }
}

impl Rotation {
    /// Rotation over `router`.
    pub fn new(router: Arc<Router>) -> Arc<Rotation> {
        Arc::new(Rotation {
            router,
            apps: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        })
    }

    /// The router.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    fn with_app<T>(&self, app: &str, f: impl FnOnce(&mut AppRotation) -> T) -> T {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let entry = apps.entry(app.to_string()).or_default();
        let out = f(entry);
        let backends: Vec<BackendSpec> = entry
            .members
            .iter()
            .filter(|(_, (generation, _))| Some(*generation) == entry.live)
            .map(|(name, (_, addr))| BackendSpec {
                name: name.clone(),
                addr: *addr,
            })
            .collect();
        self.router.set_app(app, &entry.hosts, backends);
        drop(apps);
        self.changed.notify_waiters();
        out
    }

    /// Set the app's custom domains.
    pub fn set_hosts(&self, app: &str, hosts: Vec<String>) {
        self.with_app(app, |a| a.hosts = hosts);
    }

    /// Send the app's traffic to the members of `generation` only, in one swap. Returns how
    /// long after the last of them became healthy the switch happened.
    pub fn go_live(&self, app: &str, generation: u64) -> Duration {
        self.with_app(app, |a| {
            a.live = Some(generation);
            a.members
                .iter()
                .filter(|(_, (g, _))| *g == generation)
                .filter_map(|(name, _)| a.joined.get(name))
                .max()
                .map(|t| t.elapsed())
                .unwrap_or_default()
        })
    }

    /// Take a process out of rotation now.
    pub fn remove(&self, app: &str, name: &str) {
        self.with_app(app, |a| {
            a.members.remove(name);
            a.joined.remove(name);
        });
    }

    /// Forget an app.
    pub fn remove_app(&self, app: &str) {
        self.apps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app);
        self.router.remove_app(app);
    }

    fn add(&self, app: &str, name: &str, generation: u64, addr: SocketAddr) {
        self.with_app(app, |a| {
            a.members.insert(name.to_string(), (generation, addr));
            a.joined.insert(name.to_string(), std::time::Instant::now());
        });
    }

    /// Wait until every one of `names` is a healthy member of `generation`, or one of them
    /// has crashed, or `limit` passes. Returns the names that never became healthy.
    pub async fn wait_healthy(
        &self,
        app: &str,
        generation: u64,
        names: &[String],
        states: &[watch::Receiver<ProcessState>],
        limit: Duration,
    ) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            let missing: Vec<String> = {
                let apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
                let members = apps.get(app).map(|a| &a.members);
                names
                    .iter()
                    .filter(|n| {
                        members.is_none_or(|m| m.get(*n).is_none_or(|(g, _)| *g != generation))
                    })
                    .cloned()
                    .collect()
            };
            if missing.is_empty() {
                return missing;
            }
            if states.iter().any(|s| s.borrow().phase == Phase::Crashed) {
                return missing;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return missing,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }

    /// The name a process has in the route table: unique while it runs (the new `web.1` of a
    /// deploy runs beside the old one), and readable in access logs.
    pub fn backend_name(name: &str, port: u16) -> String {
        format!("{name}@{port}")
    }

    /// Watch one web process: in rotation while it is up and healthy, out otherwise. `name` is
    /// its [`Rotation::backend_name`].
    pub fn watch(
        self: &Arc<Self>,
        app: String,
        name: String,
        generation: u64,
        addr: SocketAddr,
        health_path: Option<String>,
        mut state: watch::Receiver<ProcessState>,
    ) {
        let rotation = self.clone();
        tokio::spawn(async move {
            loop {
                let phase = state.borrow_and_update().phase;
                if phase == Phase::Up {
                    // Listening; the health check (if any) must pass too. Retry while up.
                    let mut added = false;
                    while !added {
                        if dozen_router::healthy(
                            addr,
                            health_path.as_deref(),
                            Duration::from_secs(5),
                        )
                        .await
                        {
                            rotation.add(&app, &name, generation, addr);
                            added = true;
                        } else {
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                                changed = state.changed() => {
                                    if changed.is_err() {
                                        rotation.remove(&app, &name);
                                        return;
                                    }
                                    break;
                                }
                            }
                        }
                    }
                    if !added {
                        // The state changed while waiting: look again.
                        continue;
                    }
                } else {
                    rotation.remove(&app, &name);
                }
                if state.changed().await.is_err() {
                    rotation.remove(&app, &name);
                    return;
                }
            }
        });
    }
}
