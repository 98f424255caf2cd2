//! One log stream per app: a bounded buffer of recent events and live subscribers.
//!
//! Everything an app's processes print, and every platform event about the app (build steps,
//! releases, scaling, crashes), arrives on the app's [`LogSender`]. A task renders each record
//! as a JSON line into a ring of the last N lines (Heroku keeps 1500) and broadcasts it to
//! `logs --tail` subscribers. The task never waits on a subscriber: one slow HTTP client must
//! not stop an app's processes. A subscriber that falls more than [`TAIL_BACKLOG`] lines
//! behind is told how many lines it missed.
//!
//! With a history ([`AppLog::with_history`]) each event is written to the app's durable
//! [`History`] before it is kept or broadcast, and a restarted server starts with the events
//! from before, so `logs` shows them after a restart or a SIGKILL. While an app prints without
//! pause, events are committed in groups at most [`LINGER`] apart, and only a group's last N
//! are written: the older ones would leave the ring at once anyway. That is what keeps the
//! history's cost to a fast app small (`bench/log_history.py`).
//!
//! With a tap ([`AppLog::set_tap`]: the app's drains, [`crate::drains`]) each record is also
//! offered to the app's drains as it arrives, without waiting on them.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dozen_logs::{EventKind, Format, History, LogSender, PlatformEvent, Record, log_channel};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// How far a live subscriber may fall behind before lines are skipped for it. It also bounds a
/// commit's group ([`GROUP_LINES`]): at 8192 (half a MiB of slots per app) a group holds about
/// 6000 lines, so an app printing without pause writes about a quarter of its lines to the
/// history (`bench/log_history.py` measures what that costs).
pub const TAIL_BACKLOG: usize = 8192;

/// At most this many queued records are taken together into one write to the history.
const COALESCE: usize = 32;

/// How long a commit may wait for more lines while a stream is busy (see [`AppLog::start`]):
/// the most a `logs --tail` line is held back, and only while lines keep coming.
const LINGER: Duration = Duration::from_millis(5);

/// A commit that lingers stops gathering at this many entries: less than a live subscriber may
/// fall behind, so that one commit does not make a subscriber that kept up skip lines.
const GROUP_LINES: usize = TAIL_BACKLOG * 3 / 4;

/// Write `entry` to `history` as one record: the process name, a newline, the event's JSON.
fn encode(entry: &Entry, history: &mut History) -> std::io::Result<()> {
    history.append_parts(&[entry.proc_name.as_bytes(), b"\n", entry.json.as_bytes()])
}

fn decode(record: &[u8]) -> Option<Entry> {
    let text = std::str::from_utf8(record).ok()?;
    let (name, json) = text.split_once('\n')?;
    Some(Entry {
        proc_name: Arc::from(name),
        json: Arc::from(json),
    })
}

/// The event that says the history stopped being written (the disk is full, say).
fn history_error(dir: &Path, e: &std::io::Error) -> Entry {
    let mut json = Vec::new();
    let event = PlatformEvent::new(
        EventKind::Error,
        format!(
            "log history {}: {e}; recent events are kept in memory only until the server restarts",
            dir.display()
        ),
    );
    Format::json().render_event(&event, &mut json);
    Entry {
        proc_name: Arc::from("dozen"),
        json: Arc::from(String::from_utf8_lossy(&json).trim_end()),
    }
}

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
    closed: AtomicBool,
    tap: OnceLock<Arc<crate::drains::AppDrains>>,
}

impl AppLog {
    /// A stream that keeps the last `capacity` events in memory only. Must be called inside a
    /// tokio runtime.
    pub fn new(capacity: usize) -> Arc<AppLog> {
        Self::start(capacity, None, Vec::new())
    }

    /// A stream that keeps the last `capacity` events in memory and in a durable history in
    /// `dir` ([`History`]), starting with what the history already holds: the events from before
    /// a restart of the server. A history that cannot be opened is reported in the stream, which
    /// then keeps its events in memory only.
    pub fn with_history(capacity: usize, dir: &Path) -> Arc<AppLog> {
        match History::open(dir, capacity) {
            Ok((history, records)) => {
                let old = records.iter().filter_map(|r| decode(r)).collect();
                Self::start(capacity, Some(history), old)
            }
            Err(e) => {
                let log = Self::start(capacity, None, Vec::new());
                log.push(history_error(dir, &e));
                log
            }
        }
    }

    fn start(capacity: usize, history: Option<History>, old: Vec<Entry>) -> Arc<AppLog> {
        let (sender, mut receiver) = log_channel();
        let (live, _) = broadcast::channel(TAIL_BACKLOG);
        let capacity = capacity.max(1);
        let mut ring = VecDeque::with_capacity(capacity.min(4096));
        ring.extend(old.into_iter().rev().take(capacity).rev());
        let log = Arc::new(AppLog {
            ring: Mutex::new(ring),
            capacity,
            live,
            sender,
            closed: AtomicBool::new(false),
            tap: OnceLock::new(),
        });
        let weak = Arc::downgrade(&log);
        tokio::spawn(async move {
            let mut format = Format::json();
            let mut buf = Vec::new();
            let mut history = history;
            let mut pending: Vec<Entry> = Vec::new();
            // None before the first commit: it does not linger.
            let mut last_commit: Option<Instant> = None;
            while let Some(first) = receiver.recv().await {
                let Some(log) = weak.upgrade() else { break };
                // Whatever else is already queued goes out with it: one write to the history
                // for many batches when an app prints fast.
                let mut next = Some(first);
                let mut taken = 0;
                while let Some(record) = next.take() {
                    taken += 1;
                    log.take(record, &mut format, &mut buf, &mut history, &mut pending);
                    if taken < COALESCE {
                        next = receiver.try_recv();
                    }
                }
                // While lines keep coming, a commit waits for more until LINGER after the
                // previous one: the history is written once per group, and only the group's
                // last `capacity` entries go to it. A stream that was quiet commits at once.
                if let Some(last) = last_commit.filter(|_| history.is_some()) {
                    let until = last + LINGER;
                    while !pending.is_empty() && pending.len() < GROUP_LINES {
                        match tokio::time::timeout_at(until, receiver.recv()).await {
                            Ok(Some(record)) => {
                                log.take(record, &mut format, &mut buf, &mut history, &mut pending)
                            }
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                log.commit(&mut history, &mut pending);
                last_commit = Some(Instant::now());
            }
        });
        log
    }

    /// Render `record` into `pending`, offering it to the drains first. A barrier commits what
    /// is pending and is answered once it is recorded, kept and broadcast.
    fn take(
        &self,
        record: Record,
        format: &mut Format,
        buf: &mut Vec<u8>,
        history: &mut Option<History>,
        pending: &mut Vec<Entry>,
    ) {
        buf.clear();
        if let Some(tap) = self.tap.get() {
            tap.offer(&record);
        }
        let proc_name: Arc<str> = match record {
            Record::Lines(batch) => {
                format.render_batch(&batch, buf);
                Arc::from(batch.label().name())
            }
            Record::Event(event) => {
                format.render_event(&event, buf);
                Arc::from("dozen")
            }
            Record::Barrier(done) => {
                self.commit(history, pending);
                let _ = done.send(());
                return;
            }
        };
        // The rendered JSON is UTF-8: validate it once, on the fast path, rather than line by
        // line on the lossy one (that was a tenth of the task's time).
        let text = match std::str::from_utf8(buf) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(buf),
        };
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            pending.push(Entry {
                proc_name: proc_name.clone(),
                json: Arc::from(line),
            });
        }
    }

    /// Record `pending` in the history (one `write(2)`), then keep and broadcast it: what a
    /// reader saw is in the history file, so it survives a SIGKILL of the server.
    fn commit(&self, history: &mut Option<History>, pending: &mut Vec<Entry>) {
        if pending.is_empty() {
            return;
        }
        if self.closed.load(Ordering::Acquire) {
            // The app was destroyed: its history is gone and must not come back.
            *history = None;
        }
        if let Some(h) = history {
            // Older entries than the last `capacity` would be pushed out of the history at once.
            let kept = pending.len().saturating_sub(self.capacity);
            let written = pending[kept..]
                .iter()
                .try_for_each(|e| encode(e, h))
                .and_then(|()| h.flush());
            if let Err(e) = written {
                let dir = h.dir().to_path_buf();
                *history = None;
                pending.push(history_error(&dir, &e));
            }
        }
        for entry in pending.drain(..) {
            self.push(entry);
        }
    }

    /// Offer every record from now on to the app's drains (once per stream).
    pub fn set_tap(&self, tap: Arc<crate::drains::AppDrains>) {
        let _ = self.tap.set(tap);
    }

    /// Stop recording this stream's history (its app is destroyed; the caller removes the
    /// directory).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn say(log: &AppLog, text: &str) {
        let _ = log
            .sender()
            .event(PlatformEvent::new(EventKind::Info, text))
            .await;
    }

    fn lines(log: &AppLog) -> Vec<String> {
        log.recent(100, &Filter::default())
            .iter()
            .map(|e| e.json.to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_new_stream_starts_with_what_the_history_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop");
        let first = AppLog::with_history(3, &path);
        for n in 0..5 {
            say(&first, &format!("event {n}")).await;
        }
        first.sender().barrier().await;
        let before = lines(&first);
        assert_eq!(before.len(), 3);
        // As after a restart: a second stream on the same directory.
        let second = AppLog::with_history(3, &path);
        assert_eq!(lines(&second), before);
        say(&second, "event 5").await;
        second.sender().barrier().await;
        let after = lines(&second);
        assert!(
            after[2].contains("event 5") && after[1] == before[2],
            "{after:?}"
        );
    }

    #[tokio::test]
    async fn a_burst_is_broadcast_whole_and_its_last_events_are_in_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop");
        let log = AppLog::with_history(10, &path);
        let mut tail = log.subscribe();
        let total = 3000;
        for n in 0..total {
            say(&log, &format!("event {n:04}")).await;
        }
        log.sender().barrier().await;
        for n in 0..total {
            let entry = tail
                .try_recv()
                .expect("every event of the burst is broadcast");
            assert!(entry.json.contains(&format!("event {n:04}")), "{entry:?}");
        }
        let after_restart = AppLog::with_history(10, &path);
        let kept = lines(&after_restart);
        assert_eq!(kept.len(), 10);
        for (line, n) in kept.iter().zip(total - 10..total) {
            assert!(line.contains(&format!("event {n:04}")), "{kept:?}");
        }
    }

    #[tokio::test]
    async fn a_closed_stream_writes_no_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop");
        let log = AppLog::with_history(10, &path);
        say(&log, "before").await;
        log.sender().barrier().await;
        log.close();
        History::remove(&path).unwrap();
        say(&log, "after").await;
        log.sender().barrier().await;
        assert!(lines(&log).last().unwrap().contains("after"));
        assert!(!path.exists(), "the history came back");
    }
}
