//! The router: the route table, how it changes, and how much each backend still has in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::access::AccessEvent;
use crate::backend::Backend;
use crate::config::{BackendSpec, RouterConfig};
use crate::headers::normalize_host;
use crate::table::{AppRoute, RouteTable, implicit_host};
use crate::traffic::{Traffic, TrafficBook};

/// The callback that receives one [`AccessEvent`] per request, with the app's name (`""` for a
/// request to an unknown host). It runs on the request's task: keep it cheap and non-blocking.
pub type AccessFn = Arc<dyn Fn(&str, AccessEvent) + Send + Sync>;

/// The reverse proxy in front of every app. Build it with [`Router::new`], tell it about apps
/// with [`Router::set_app`], and serve with [`Router::serve`] or [`Router::serve_tls`].
pub struct Router {
    pub(crate) config: RouterConfig,
    pub(crate) table: ArcSwap<RouteTable>,
    pub(crate) on_access: AccessFn,
    /// Each app's traffic counters, counted as each event is reported.
    pub(crate) traffic: Arc<TrafficBook>,
    /// Serializes writers: each change reads the current table and stores a new one.
    writer: Mutex<()>,
    /// Every backend each app has had, while anything still holds it (the table or a request in
    /// flight), so draining can be watched after a backend left rotation.
    known: Mutex<HashMap<String, Vec<Weak<Backend>>>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("config", &self.config)
            .field("apps", &self.table.load().apps.len())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router with no apps.
    pub fn new(config: RouterConfig, on_access: AccessFn) -> Arc<Router> {
        let mut config = config;
        config.domain = config.domain.trim_matches('.').to_ascii_lowercase();
        let traffic = Arc::new(TrafficBook::default());
        let counting = Arc::clone(&traffic);
        // Every event goes through here, whichever way its request ended: the one place the
        // traffic counters are counted.
        let on_access: AccessFn = Arc::new(move |app: &str, event: AccessEvent| {
            counting.record(app, &event);
            on_access(app, event);
        });
        Arc::new(Router {
            config,
            table: ArcSwap::from_pointee(RouteTable::default()),
            on_access,
            traffic,
            writer: Mutex::new(()),
            known: Mutex::new(HashMap::new()),
        })
    }

    /// The settings this router runs with.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Replaces an app's custom hosts (besides `<app>.<domain>`, which is implicit) and its
    /// backends in rotation, in one atomic swap of the whole table: a request sees either the old
    /// or the new table, never a mix. A backend with the same name and address as before keeps its
    /// pooled connections and its count of requests in flight.
    ///
    /// A host claimed by two apps goes to the app it is implicit for, else to the app whose name
    /// sorts first; malformed custom hosts are ignored.
    pub fn set_app(&self, app: &str, custom_hosts: &[String], backends: Vec<BackendSpec>) {
        let _writing = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.table.load_full();
        let old = current.apps.get(app);
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let known_here = known.entry(app.to_owned()).or_default();
        known_here.retain(|w| w.strong_count() > 0);
        let backends: Vec<Arc<Backend>> = backends
            .iter()
            .map(|spec| {
                let reused = old.and_then(|old| {
                    old.backends
                        .iter()
                        .find(|b| *b.name == *spec.name && b.addr == spec.addr)
                });
                match reused {
                    Some(backend) => Arc::clone(backend),
                    None => {
                        let backend = Backend::new(&spec.name, spec.addr);
                        known_here.push(Arc::downgrade(&backend));
                        backend
                    }
                }
            })
            .collect();
        drop(known);
        let mut hosts: Vec<String> = custom_hosts
            .iter()
            .filter_map(|h| normalize_host(h))
            .collect();
        hosts.sort();
        hosts.dedup();
        let next = old.map_or(0, |old| old.next_start());
        self.traffic.add(app);
        let route = Arc::new(AppRoute::new(app, hosts, backends, next));
        let mut apps = current.apps.clone();
        apps.insert(app.to_owned(), route);
        self.table
            .store(Arc::new(RouteTable::build(apps, &self.config.domain)));
    }

    /// Stops routing to an app: its hosts answer 404 from now on. Requests in flight finish.
    pub fn remove_app(&self, app: &str) {
        let _writing = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.table.load_full();
        if !current.apps.contains_key(app) {
            return;
        }
        let mut apps = current.apps.clone();
        apps.remove(app);
        self.traffic.remove(app);
        self.table
            .store(Arc::new(RouteTable::build(apps, &self.config.domain)));
    }

    /// Takes one backend out of rotation at once (a crashed or stopping process). New requests go
    /// to the app's other backends; requests in flight to it finish.
    pub fn remove_backend(&self, app: &str, name: &str) {
        let _writing = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.table.load_full();
        let Some(old) = current.apps.get(app) else {
            return;
        };
        if !old.backends.iter().any(|b| &*b.name == name) {
            return;
        }
        let backends = old
            .backends
            .iter()
            .filter(|b| &*b.name != name)
            .cloned()
            .collect();
        let route = Arc::new(AppRoute::new(
            app,
            old.custom_hosts.clone(),
            backends,
            old.next_start(),
        ));
        let mut apps = current.apps.clone();
        apps.insert(app.to_owned(), route);
        self.table
            .store(Arc::new(RouteTable::build(apps, &self.config.domain)));
    }

    /// Requests still in flight to the app's backend `name`, in rotation or not. (If one name was
    /// used for two addresses, both count.) A WebSocket or other upgraded connection counts until
    /// it closes.
    pub fn in_flight(&self, app: &str, name: &str) -> usize {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(app).map_or(0, |backends| {
            backends
                .iter()
                .filter_map(Weak::upgrade)
                .filter(|b| &*b.name == name)
                .map(|b| b.in_flight())
                .sum()
        })
    }

    /// Waits until nothing is in flight to the backend, at most `limit`. `true` when drained.
    pub async fn wait_drained(&self, app: &str, name: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.in_flight(app, name) == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(10))).await;
        }
    }

    /// Each routed app's traffic since it was first routed (counters are kept while the app
    /// stays routed, across deploys; [`Router::remove_app`] forgets them), sorted by app, with
    /// the requests in flight to its backends now.
    pub fn traffic(&self) -> Vec<Traffic> {
        let mut all = self.traffic.snapshot();
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for t in &mut all {
            t.in_flight = known.get(t.app.as_str()).map_or(0, |backends| {
                backends
                    .iter()
                    .filter_map(Weak::upgrade)
                    .map(|b| b.in_flight() as u64)
                    .sum()
            });
        }
        all
    }

    /// Requests for a host no app is served at (answered 404), since the router started.
    pub fn unknown_host_requests(&self) -> u64 {
        self.traffic.unknown_host()
    }

    /// The apps routed now, with their hosts (implicit first) and backends in rotation.
    pub fn routes(&self) -> Vec<(String, Vec<String>, Vec<BackendSpec>)> {
        let table = self.table.load();
        let mut apps: Vec<_> = table
            .apps
            .values()
            .map(|app| {
                let mut hosts = vec![implicit_host(&app.name, &self.config.domain)];
                hosts.extend(app.custom_hosts.iter().cloned());
                let backends = app
                    .backends
                    .iter()
                    .map(|b| BackendSpec::new(&*b.name, b.addr))
                    .collect();
                (app.name.to_string(), hosts, backends)
            })
            .collect();
        apps.sort_by(|a, b| a.0.cmp(&b.0));
        apps
    }
}
