//! One log stream per app: a bounded buffer of recent events and live subscribers.
//!
//! Everything an app's processes print, and every platform event about the app (build steps,
//! releases, scaling, crashes), arrives on the app's [`LogSender`]. A task renders each record
//! as a JSON line into a ring of the last N lines (Heroku keeps 1500) and broadcasts it to
//! `logs --tail` subscribers. The task never waits on a subscriber: one slow HTTP client must
//! not stop an app's processes. A subscriber that falls more than [`TAIL_BACKLOG`] lines
//! behind is told how many lines it missed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use dozen_logs::{Format, LogSender, Record, log_channel};
use tokio::sync::broadcast;

/// How far a live subscriber may fall behind before lines are skipped for it.
pub const TAIL_BACKLOG: usize = 4096;

/// One rendered event.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `web.1`, `build`, `run.1`, or `dozen` for platform events.
    pub proc_name: Arc<str>,
    /// The event as one JSON object (no trailing newline).
    pub json: Arc<str>,
}

/// An app's log stream.
#[derive(Debug)]
pub struct AppLog {
    ring: Mutex<VecDeque<Entry>>,
    capacity: usize,
    live: broadcast::Sender<Entry>,
    sender: LogSender,
}

impl AppLog {
    /// A stream that keeps the last `capacity` events. Must be called inside a tokio runtime.
    pub fn new(capacity: usize) -> Arc<AppLog> {
        let (sender, mut receiver) = log_channel();
        let (live, _) = broadcast::channel(TAIL_BACKLOG);
        let log = Arc::new(AppLog {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity: capacity.max(1),
            live,
            sender,
        });
        let weak = Arc::downgrade(&log);
        tokio::spawn(async move {
            let mut format = Format::json();
            let mut buf = Vec::new();
            while let Some(record) = receiver.recv().await {
                let Some(log) = weak.upgrade() else { break };
                buf.clear();
                let proc_name: Arc<str> = match record {
                    Record::Lines(batch) => {
                        format.render_batch(&batch, &mut buf);
                        Arc::from(batch.label().name())
                    }
                    Record::Event(event) => {
                        format.render_event(&event, &mut buf);
                        Arc::from("dozen")
                    }
                    Record::Barrier(done) => {
                        // Everything before it has been pushed and broadcast.
                        let _ = done.send(());
                        continue;
                    }
                };
                for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    log.push(Entry {
                        proc_name: proc_name.clone(),
                        json: Arc::from(String::from_utf8_lossy(line).as_ref()),
                    });
                }
            }
        });
        log
    }

    fn push(&self, entry: Entry) {
        {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(entry.clone());
        }
        // No subscriber is fine.
        let _ = self.live.send(entry);
    }

    /// Where the app's processes and the platform send events for this app.
    pub fn sender(&self) -> LogSender {
        self.sender.clone()
    }

    /// The most recent events, oldest first, at most `limit`, that pass `filter`.
    pub fn recent(&self, limit: usize, filter: &Filter) -> Vec<Entry> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Entry> = ring
            .iter()
            .rev()
            .filter(|e| filter.accepts(e))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Subscribe to events as they arrive.
    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.live.subscribe()
    }
}

/// Which events a `logs` call wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this process (`web.1`) or type (`web`).
    pub ps: Option<String>,
    /// `app` (process output) or `dozen` (platform events).
    pub source: Option<String>,
}

impl Filter {
    /// Whether `entry` passes.
    pub fn accepts(&self, entry: &Entry) -> bool {
        let name = entry.proc_name.as_ref();
        if let Some(source) = &self.source {
            let is_platform = name == "dozen";
            match source.as_str() {
                "dozen" if !is_platform => return false,
                "app" if is_platform => return false,
                _ => {}
            }
        }
        if let Some(ps) = &self.ps {
            let matches = name == ps || name.split('.').next() == Some(ps.as_str());
            // Platform events about the process carry it as target.
            let about = entry.json.contains(&format!("\"target\":\"{ps}"));
            if !matches && !about {
                return false;
            }
        }
        true
    }
}
