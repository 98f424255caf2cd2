//! Traffic counters per app, for metrics: requests by status class, a latency histogram, and
//! body bytes both ways.
//!
//! The request path pays for them with one lock-free table load ([`ArcSwap`]), one FNV lookup
//! of the app's name and four relaxed atomic additions, when the request's event is reported;
//! a request with a body adds one relaxed addition per body frame. Nothing on it takes a lock or
//! allocates. The table changes only with [`crate::Router::set_app`] and
//! [`crate::Router::remove_app`], copied whole under the router's writer lock.
//!
//! Requests in flight are not counted here: each backend already counts its own, and
//! [`crate::Router::traffic`] sums them when asked.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::access::AccessEvent;
use crate::table::Fnv;

/// Upper bounds of the latency histogram's buckets, in seconds (Prometheus's default buckets,
/// and 30 s, the first-byte timeout).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The same bounds in microseconds, for the request path's comparisons.
const BOUNDS_US: [u64; 12] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000,
];

/// One app's counters, shared by the table and the requests that report into it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Requests by the class of the status sent: 1xx to 5xx.
    by_class: [AtomicU64; 5],
    /// Requests per latency bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; 13],
    /// The sum of all latencies, in microseconds.
    sum_us: AtomicU64,
    /// Request body bytes taken from clients.
    request_bytes: AtomicU64,
    /// Response body bytes sent to clients.
    response_bytes: AtomicU64,
}

impl Counters {
    fn record(&self, event: &AccessEvent) {
        let class = usize::from(event.status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(event.elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.response_bytes
            .fetch_add(event.bytes, Ordering::Relaxed);
    }

    /// Counts request body bytes as they are taken from the client.
    pub(crate) fn request_body(&self, bytes: usize) {
        self.request_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

type Table = HashMap<Arc<str>, Arc<Counters>, BuildHasherDefault<Fnv>>;

/// Every routed app's counters, and the requests for hosts no app serves.
#[derive(Debug, Default)]
pub(crate) struct TrafficBook {
    apps: ArcSwap<Table>,
    unknown_host: AtomicU64,
}

impl TrafficBook {
    /// Counts one finished request of `app` (`""`: an unknown host).
    pub(crate) fn record(&self, app: &str, event: &AccessEvent) {
        if app.is_empty() {
            self.unknown_host.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(counters) = self.apps.load().get(app) {
            counters.record(event);
        }
    }

    /// The app's counters, if it is routed.
    pub(crate) fn get(&self, app: &str) -> Option<Arc<Counters>> {
        self.apps.load().get(app).cloned()
    }

    /// Makes sure `app` has counters (kept when it already had them). Callers serialize.
    pub(crate) fn add(&self, app: &str) {
        let current = self.apps.load_full();
        if current.contains_key(app) {
            return;
        }
        let mut next = Table::clone(&current);
        next.insert(Arc::from(app), Arc::default());
        self.apps.store(Arc::new(next));
    }

    /// Forgets `app`'s counters. Callers serialize.
    pub(crate) fn remove(&self, app: &str) {
        let current = self.apps.load_full();
        if !current.contains_key(app) {
            return;
        }
        let mut next = Table::clone(&current);
        next.remove(app);
        self.apps.store(Arc::new(next));
    }

    /// Requests for a host no app is served at.
    pub(crate) fn unknown_host(&self) -> u64 {
        self.unknown_host.load(Ordering::Relaxed)
    }

    /// Every routed app's counters, sorted by app; `in_flight` is left at 0.
    pub(crate) fn snapshot(&self) -> Vec<Traffic> {
        let apps = self.apps.load();
        let mut out: Vec<Traffic> = apps.iter().map(|(app, c)| Traffic::read(app, c)).collect();
        out.sort_by(|a, b| a.app.cmp(&b.app));
        out
    }
}

/// One app's traffic through the router since the router started (or since the app was first
/// routed), as [`crate::Router::traffic`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    /// The app.
    pub app: String,
    /// Requests by the class of the status sent to the client: index 0 is 1xx, 4 is 5xx.
    /// (A client that left before the answer counts as 499, so in 4xx.)
    pub requests: [u64; 5],
    /// The latency histogram: for each bound of [`LATENCY_BUCKETS`], the requests that took at
    /// most that long (cumulative, as Prometheus has it). Latency runs from the request's head
    /// being read to the last byte of the response being handed on (or the client leaving).
    pub latency_buckets: [u64; 12],
    /// Requests in the histogram (its `+Inf` bucket): the sum of its buckets, read at once, so
    /// the histogram is always consistent in itself.
    pub latency_count: u64,
    /// The sum of the latencies, in seconds.
    pub latency_sum: f64,
    /// Request body bytes taken from clients.
    pub request_bytes: u64,
    /// Response body bytes sent to clients.
    pub response_bytes: u64,
    /// Requests in flight to the app's processes now (an open WebSocket counts as one).
    pub in_flight: u64,
}

impl Traffic {
    fn read(app: &str, c: &Counters) -> Traffic {
        let mut latency_buckets = [0u64; 12];
        let mut running = 0u64;
        for (i, bucket) in c.buckets.iter().enumerate() {
            running += bucket.load(Ordering::Relaxed);
            if let Some(slot) = latency_buckets.get_mut(i) {
                *slot = running;
            }
        }
        Traffic {
            app: app.to_owned(),
            requests: std::array::from_fn(|i| c.by_class[i].load(Ordering::Relaxed)),
            latency_buckets,
            latency_count: running,
            latency_sum: Duration::from_micros(c.sum_us.load(Ordering::Relaxed)).as_secs_f64(),
            request_bytes: c.request_bytes.load(Ordering::Relaxed),
            response_bytes: c.response_bytes.load(Ordering::Relaxed),
            in_flight: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(status: u16, ms: u64, bytes: u64) -> AccessEvent {
        AccessEvent {
            status,
            bytes,
            elapsed: Duration::from_millis(ms),
            ..AccessEvent::default()
        }
    }

    #[test]
    fn counts_by_class_and_bucket_cumulatively() {
        let book = TrafficBook::default();
        book.add("shop");
        book.record("shop", &event(200, 1, 10));
        book.record("shop", &event(204, 5, 0));
        book.record("shop", &event(404, 7, 3));
        book.record("shop", &event(500, 2_000, 1));
        book.record("shop", &event(101, 60_000, 0));
        book.record("", &event(404, 0, 0));
        book.record("gone", &event(200, 0, 0));
        book.get("shop").unwrap().request_body(42);

        let t = &book.snapshot()[0];
        assert_eq!(t.app, "shop");
        assert_eq!(t.requests, [1, 2, 0, 1, 1]);
        // 1 ms and 5 ms fall in the first bucket (le 0.005), 7 ms in the second, 2 s in le 2.5,
        // 60 s only in +Inf.
        assert_eq!(t.latency_buckets[0], 2);
        assert_eq!(t.latency_buckets[1], 3);
        assert_eq!(t.latency_buckets[7], 3);
        assert_eq!(t.latency_buckets[8], 4);
        assert_eq!(t.latency_buckets[11], 4);
        assert_eq!(t.latency_count, 5);
        assert!((t.latency_sum - 62.013).abs() < 1e-9, "{}", t.latency_sum);
        assert_eq!((t.request_bytes, t.response_bytes), (42, 14));
        assert_eq!(book.unknown_host(), 1);

        // Routing the app again keeps its counters; removing it forgets them.
        book.add("shop");
        assert_eq!(book.snapshot()[0].latency_count, 5);
        book.remove("shop");
        assert!(book.snapshot().is_empty());
    }
}
