//! The route table: which app answers a host, and its backends in rotation. Immutable once built;
//! the router swaps a whole new table in at once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::backend::Backend;
use crate::config::Balance;

/// One app as routed: its backends in rotation.
#[derive(Debug)]
pub(crate) struct AppRoute {
    pub(crate) name: Arc<str>,
    pub(crate) custom_hosts: Vec<String>,
    pub(crate) backends: Vec<Arc<Backend>>,
    /// Where the next round starts: spreads ties (and plain round robin) over the backends.
    next: AtomicUsize,
}

impl AppRoute {
    pub(crate) fn new(
        name: &str,
        custom_hosts: Vec<String>,
        backends: Vec<Arc<Backend>>,
        next: usize,
    ) -> Self {
        AppRoute {
            name: Arc::from(name),
            custom_hosts,
            backends,
            next: AtomicUsize::new(next),
        }
    }

    pub(crate) fn next_start(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    /// Picks a backend, never `exclude`.
    pub(crate) fn pick(
        &self,
        balance: Balance,
        exclude: Option<&Arc<Backend>>,
    ) -> Option<&Arc<Backend>> {
        let n = self.backends.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let candidates = (0..n)
            .map(|i| &self.backends[(start + i) % n])
            .filter(|b| exclude.is_none_or(|x| !Arc::ptr_eq(x, b)));
        match balance {
            Balance::RoundRobin => candidates.into_iter().next(),
            Balance::LeastOutstanding => {
                let mut best: Option<(&Arc<Backend>, usize)> = None;
                for backend in candidates {
                    let load = backend.in_flight();
                    if best.is_none_or(|(_, least)| load < least) {
                        best = Some((backend, load));
                        if load == 0 {
                            break;
                        }
                    }
                }
                best.map(|(b, _)| b)
            }
        }
    }
}

/// FNV-1a: a host lookup on every request hashes a few bytes, where SipHash's setup dominates.
/// Keys come from the router's configuration only, so flooding one bucket is not a client's to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hosts and apps, as of one moment.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    pub(crate) apps: HashMap<String, Arc<AppRoute>>,
    pub(crate) hosts: HashMap<String, Arc<AppRoute>, BuildHasherDefault<Fnv>>,
}

impl RouteTable {
    /// A table for `apps`: each app answers `<app>.<domain>` and its custom hosts. A host claimed
    /// twice goes to the implicit name first, then to the app whose name sorts first.
    pub(crate) fn build(apps: HashMap<String, Arc<AppRoute>>, domain: &str) -> RouteTable {
        let mut names: Vec<&String> = apps.keys().collect();
        names.sort();
        let mut hosts =
            HashMap::with_capacity_and_hasher(apps.len() * 2, BuildHasherDefault::default());
        for name in &names {
            hosts.insert(implicit_host(name, domain), Arc::clone(&apps[*name]));
        }
        for name in &names {
            let app = &apps[*name];
            for host in &app.custom_hosts {
                hosts.entry(host.clone()).or_insert_with(|| Arc::clone(app));
            }
        }
        RouteTable { apps, hosts }
    }

    pub(crate) fn lookup(&self, host: &str) -> Option<&Arc<AppRoute>> {
        self.hosts.get(host)
    }
}

/// `<app>.<domain>`, or just `<app>` when the domain is empty.
pub(crate) fn implicit_host(app: &str, domain: &str) -> String {
    if domain.is_empty() {
        app.to_ascii_lowercase()
    } else {
        format!("{app}.{domain}").to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(n: usize) -> AppRoute {
        let backends = (0..n)
            .map(|i| {
                Backend::new(
                    &format!("web.{}", i + 1),
                    ([127, 0, 0, 1], 1000 + i as u16).into(),
                )
            })
            .collect();
        AppRoute::new("shop", vec![], backends, 0)
    }

    #[test]
    fn least_outstanding_prefers_idle_then_rotates() {
        let app = app(3);
        let _busy = app.backends[0].begin();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(
                app.pick(Balance::LeastOutstanding, None)
                    .unwrap()
                    .name
                    .to_string(),
            );
        }
        assert!(!seen.contains(&"web.1".to_string()), "{seen:?}");
        assert!(seen.contains(&"web.2".to_string()) && seen.contains(&"web.3".to_string()));
    }

    #[test]
    fn exclude_skips_backend() {
        let app = app(2);
        for _ in 0..4 {
            let first = Arc::clone(app.pick(Balance::RoundRobin, None).unwrap());
            let other = app.pick(Balance::LeastOutstanding, Some(&first)).unwrap();
            assert!(!Arc::ptr_eq(&first, other));
        }
        let one = self::app(1);
        let only = Arc::clone(&one.backends[0]);
        assert!(one.pick(Balance::LeastOutstanding, Some(&only)).is_none());
    }

    #[test]
    fn implicit_host_wins_over_custom_claim() {
        let mut apps = HashMap::new();
        apps.insert(
            "a".to_string(),
            Arc::new(AppRoute::new(
                "a",
                vec!["b.localhost".into(), "x.com".into()],
                vec![],
                0,
            )),
        );
        apps.insert(
            "b".to_string(),
            Arc::new(AppRoute::new("b", vec!["x.com".into()], vec![], 0)),
        );
        let t = RouteTable::build(apps, "localhost");
        assert_eq!(&*t.lookup("b.localhost").unwrap().name, "b");
        assert_eq!(&*t.lookup("x.com").unwrap().name, "a");
        assert!(t.lookup("c.localhost").is_none());
    }
}
