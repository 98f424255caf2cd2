//! CPU use as `ps` shows it: the percentage of one core each process (with everything it
//! started) used over the last [`INTERVAL`], from two readings of its CPU time taken by the
//! server's sampler ([`super::sample_forever`]). A process gets its first figure after two
//! readings, so within two intervals of starting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::runtime::PsRow;

/// How often every process's CPU time is read.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// The last reading of one process, and the percentage since the one before.
#[derive(Debug, Clone, Copy)]
struct Reading {
    pid: u32,
    at: Instant,
    cpu_seconds: f64,
    percent: Option<f64>,
}

/// The readings of every process, by app and process name. Bounded by the processes running:
/// each reading replaces the last, and processes gone are forgotten at the next round.
#[derive(Debug, Default)]
pub struct CpuSampler {
    readings: Mutex<HashMap<String, HashMap<String, Reading>>>,
}

impl CpuSampler {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Reading>>> {
        self.readings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The percentage of one core process `name` of `app` used over the last interval, while it
    /// runs as `pid`.
    pub fn percent(&self, app: &str, name: &str, pid: u32) -> Option<f64> {
        let readings = self.lock();
        let r = readings.get(app)?.get(name)?;
        (r.pid == pid).then_some(r.percent).flatten()
    }

    /// Takes a round of readings of `app`'s processes at `at`; forgets processes not in it.
    pub fn record(&self, app: &str, rows: &[PsRow], at: Instant) {
        let mut readings = self.lock();
        let before = readings.remove(app).unwrap_or_default();
        let mut now = HashMap::with_capacity(rows.len());
        for row in rows {
            let (Some(pid), Some(cpu_seconds)) = (row.pid, row.cpu_seconds) else {
                continue;
            };
            let percent = before
                .get(&row.name)
                .filter(|prev| prev.pid == pid && at > prev.at)
                .map(|prev| {
                    let spent = (cpu_seconds - prev.cpu_seconds).max(0.0);
                    spent / (at - prev.at).as_secs_f64() * 100.0
                });
            now.insert(
                row.name.clone(),
                Reading {
                    pid,
                    at,
                    cpu_seconds,
                    percent,
                },
            );
        }
        if !now.is_empty() {
            readings.insert(app.to_string(), now);
        }
    }

    /// Forgets every app but `apps`.
    pub fn retain(&self, apps: &[String]) {
        self.lock().retain(|app, _| apps.contains(app));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, pid: u32, cpu: f64) -> PsRow {
        PsRow {
            name: name.into(),
            type_name: "web".into(),
            state: "up",
            pid: Some(pid),
            port: 5000,
            release: 1,
            for_seconds: 1,
            restarts: 0,
            size: "1x",
            memory: Some(1),
            memory_limit: 1,
            cpu_seconds: Some(cpu),
            cpu_percent: None,
        }
    }

    #[test]
    fn percent_is_cpu_time_over_wall_time_between_two_readings_of_one_pid() {
        let s = CpuSampler::default();
        let t0 = Instant::now();
        s.record("shop", &[row("web.1", 10, 1.0)], t0);
        assert_eq!(s.percent("shop", "web.1", 10), None);
        s.record(
            "shop",
            &[row("web.1", 10, 2.5)],
            t0 + Duration::from_secs(5),
        );
        let p = s.percent("shop", "web.1", 10).expect("a percentage");
        assert!((p - 30.0).abs() < 1e-9, "{p}");
        // Another pid (a restart) starts over; a process gone is forgotten.
        assert_eq!(s.percent("shop", "web.1", 11), None);
        s.record(
            "shop",
            &[row("web.1", 11, 0.1)],
            t0 + Duration::from_secs(10),
        );
        assert_eq!(s.percent("shop", "web.1", 11), None);
        s.record("shop", &[], t0 + Duration::from_secs(15));
        assert_eq!(s.percent("shop", "web.1", 11), None);
        s.record(
            "shop",
            &[row("web.1", 11, 0.1)],
            t0 + Duration::from_secs(20),
        );
        s.retain(&[]);
        assert!(s.lock().is_empty());
    }
}
