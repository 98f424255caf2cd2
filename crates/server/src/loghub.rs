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
//! are written: the older ones would leave the ring at once anyway. While nobody follows the
//! stream, a group does not even hold those older ones (they would be sent to no one), so a
//! group's lines stay few and warm in the cache however fast the app prints; that, not the
//! write, was most of the history's cost to a fast app (`bench/log_history.py`). A group is
//! written, kept and broadcast on a blocking thread while the task renders the next one.
//!
//! Every event is numbered, so a client that follows the stream ([`AppLog::follow`]: recent
//! events, then live ones) gets nothing twice and is told how many lines it did not get: when
//! it falls behind, or when it started following in the middle of such a group.
//!
//! With a tap ([`AppLog::set_tap`]: the app's drains, [`crate::drains`]) each record is also
//! offered to the app's drains as it arrives, without waiting on them.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dozen_logs::{EventKind, Format, History, LogSender, PlatformEvent, Record, log_channel};
use tokio::sync::broadcast;
use tokio::time::Instant;

mod follow;
pub use follow::{Follow, Followed, skipped_note};

/// How far a live subscriber may fall behind before lines are skipped for it. It also bounds a
/// commit's group while someone follows the stream ([`GROUP_LINES`]): about 6000 lines.
pub const TAIL_BACKLOG: usize = 8192;

/// At most this many queued records are taken together into one write to the history.
const COALESCE: usize = 32;

/// How long a commit may wait for more lines while a stream is busy (see [`AppLog::start`]):
/// the most a `logs --tail` line is held back, and only while lines keep coming.
const LINGER: Duration = Duration::from_millis(5);

/// A commit that lingers stops waiting when no record came for this long: the app paused (or
/// stopped), so its last lines reach `logs` at once. Shorter than the time between two reads
/// of a pipe an app keeps full, and no shorter than the timer's resolution.
const QUIET: Duration = Duration::from_millis(1);

/// A commit that lingers stops gathering at this many entries: less than a live subscriber may
/// fall behind, so that one commit does not make a subscriber that kept up skip lines.
const GROUP_LINES: usize = TAIL_BACKLOG * 3 / 4;

/// Write `entry` to `history` as one record: the process name, a newline, the event's JSON.
fn encode(entry: &Entry, history: &mut History) -> std::io::Result<()> {
    history.append_parts(&[entry.proc_name.as_bytes(), b"\n", entry.json().as_bytes()])
}

fn decode(record: &[u8]) -> Option<Entry> {
    let text = std::str::from_utf8(record).ok()?;
    let (name, json) = text.split_once('\n')?;
    Some(Entry::whole(Arc::from(name), json))
}

/// The event that says the history stopped being written (the disk is full, say).
fn history_error(dir: &Path, e: &std::io::Error) -> Entry {
    error_entry(format!(
        "log history {}: {e}; recent events are kept in memory only until the server restarts",
        dir.display()
    ))
}

/// A platform error event, rendered.
fn error_entry(message: String) -> Entry {
    let mut json = Vec::new();
    let event = PlatformEvent::new(EventKind::Error, message);
    Format::json().render_event(&event, &mut json);
    Entry::whole(
        Arc::from("dozen"),
        String::from_utf8_lossy(&json).trim_end(),
    )
}

/// One rendered event.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `web.1`, `build`, `run.1`, or `dozen` for platform events.
    pub proc_name: Arc<str>,
    /// The rendered batch the event came in: the events of one batch share it, so a batch is
    /// one allocation, not one per line.
    text: Arc<str>,
    /// Where in `text` the event is.
    span: std::ops::Range<usize>,
    /// The event's place in the stream: one more than the event before it, or
    /// [`UNNUMBERED`] for the server's notes about the stream itself.
    seq: u64,
}

/// The `seq` of an entry outside the numbering: a note the stream adds about itself (its
/// history failed), which may be published before entries numbered earlier.
const UNNUMBERED: u64 = u64::MAX;

impl Entry {
    /// An entry that is all of `json`.
    fn whole(proc_name: Arc<str>, json: &str) -> Entry {
        Entry {
            proc_name,
            span: 0..json.len(),
            text: Arc::from(json),
            seq: UNNUMBERED,
        }
    }

    /// The event as one JSON object (no trailing newline).
    pub fn json(&self) -> &str {
        &self.text[self.span.clone()]
    }
}

/// Where a stream's commits go: memory only, or a history that is written on a blocking
/// thread while the stream's task renders the next group (one commit in flight at a time, so
/// groups are kept and broadcast in order).
enum Store {
    Memory,
    Idle(History),
    Writing(tokio::task::JoinHandle<Option<History>>),
}

impl Store {
    /// Whether commits are written to a history.
    fn is_durable(&self) -> bool {
        !matches!(self, Store::Memory)
    }

    /// Wait for the commit in flight, if any.
    async fn settle(&mut self, log: &AppLog) {
        if let Store::Writing(flight) = self {
            *self = match flight.await {
                Ok(Some(history)) => Store::Idle(history),
                Ok(None) => Store::Memory,
                Err(e) => {
                    // Only a panic in the write gets here: its group is lost, and said so.
                    log.push(error_entry(format!(
                        "the log history write failed ({e}); events since the last commit \
                         are lost and recent events are kept in memory only"
                    )));
                    Store::Memory
                }
            };
        }
    }

    /// Commit `pending` (left empty): once the previous commit is done, in memory at once, or
    /// to the history on a blocking thread.
    async fn commit(&mut self, log: &Arc<AppLog>, pending: &mut Vec<Entry>) {
        if pending.is_empty() {
            return;
        }
        self.settle(log).await;
        match std::mem::replace(self, Store::Memory) {
            Store::Idle(history) => {
                let mut group = std::mem::take(pending);
                let log = Arc::clone(log);
                *self = Store::Writing(tokio::task::spawn_blocking(move || {
                    log.record(history, &mut group)
                }));
            }
            _ => log.publish(pending),
        }
    }
}

/// What a stream's task keeps between records.
struct Taker {
    format: Format,
    buf: Vec<u8>,
    store: Store,
    /// Rendered entries not committed yet.
    pending: Vec<Entry>,
}

impl Taker {
    /// Render `record` into the pending group; a barrier commits the group and is answered
    /// once everything before it is recorded, kept and broadcast.
    async fn take(&mut self, log: &Arc<AppLog>, record: Record) {
        let barrier = log.take(record, &mut self.format, &mut self.buf, &mut self.pending);
        log.trim_unseen(&mut self.pending);
        if let Some(done) = barrier {
            self.store.commit(log, &mut self.pending).await;
            self.store.settle(log).await;
            let _ = done.send(());
        }
    }
}

/// An app's log stream.
#[derive(Debug)]
pub struct AppLog {
    ring: Mutex<VecDeque<Entry>>,
    capacity: usize,
    live: broadcast::Sender<Entry>,
    sender: LogSender,
    closed: AtomicBool,
    /// The `seq` of the next entry.
    next_seq: AtomicU64,
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
        for (seq, entry) in ring.iter_mut().enumerate() {
            entry.seq = seq as u64;
        }
        let next_seq = ring.len() as u64;
        let log = Arc::new(AppLog {
            ring: Mutex::new(ring),
            capacity,
            live,
            sender,
            closed: AtomicBool::new(false),
            next_seq: AtomicU64::new(next_seq),
            tap: OnceLock::new(),
        });
        let weak = Arc::downgrade(&log);
        tokio::spawn(async move {
            let mut t = Taker {
                format: Format::json(),
                buf: Vec::new(),
                store: match history {
                    Some(history) => Store::Idle(history),
                    None => Store::Memory,
                },
                pending: Vec::new(),
            };
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
                    t.take(&log, record).await;
                    if taken < COALESCE {
                        next = receiver.try_recv();
                    }
                }
                // While lines keep coming, a commit waits for more until LINGER after the
                // previous one: the history is written once per group, and only the group's
                // last `capacity` entries go to it. A stream that was quiet commits at once.
                if let Some(last) = last_commit.filter(|_| t.store.is_durable()) {
                    let until = last + LINGER;
                    while !t.pending.is_empty() && t.pending.len() < GROUP_LINES {
                        // A stream that goes quiet commits without waiting out the linger.
                        let wait = until.min(Instant::now() + QUIET);
                        match tokio::time::timeout_at(wait, receiver.recv()).await {
                            Ok(Some(record)) => t.take(&log, record).await,
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                t.store.commit(&log, &mut t.pending).await;
                last_commit = Some(Instant::now());
            }
            if let Some(log) = weak.upgrade() {
                t.store.commit(&log, &mut t.pending).await;
                t.store.settle(&log).await;
            }
        });
        log
    }

    /// Render `record` into `pending` and offer it to the drains. A barrier is handed
    /// back, for the caller to answer once what is pending is committed.
    fn take(
        &self,
        record: Record,
        format: &mut Format,
        buf: &mut Vec<u8>,
        pending: &mut Vec<Entry>,
    ) -> Option<tokio::sync::oneshot::Sender<()>> {
        buf.clear();
        let tap = self.tap.get();
        let proc_name: Arc<str> = match record {
            Record::Lines(batch) => {
                format.render_batch(&batch, buf);
                let name = Arc::from(batch.label().name());
                if let Some(tap) = tap {
                    tap.offer_lines(batch);
                }
                name
            }
            Record::Event(event) => {
                if let Some(tap) = tap {
                    tap.offer_event(&event);
                }
                format.render_event(&event, buf);
                Arc::from("dozen")
            }
            Record::Barrier(done) => return Some(done),
        };
        // The rendered JSON is UTF-8: validate it once, on the fast path, rather than line by
        // line on the lossy one (that was a tenth of the task's time).
        let text = match std::str::from_utf8(buf) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(buf),
        };
        // One allocation for the batch; its entries are spans of it.
        let shared: Arc<str> = Arc::from(text.as_ref());
        let first = pending.len();
        let mut at = 0;
        for line in shared.split('\n') {
            let span = at..at + line.len();
            at = span.end + 1;
            if !span.is_empty() {
                pending.push(Entry {
                    proc_name: proc_name.clone(),
                    text: Arc::clone(&shared),
                    span,
                    seq: 0,
                });
            }
        }
        self.number(&mut pending[first..]);
        None
    }

    /// While nobody tails the stream, drop the pending entries that the ring and the history
    /// would not keep anyway (all but the last `capacity`), so that a long group holds no more
    /// than twice the ring's worth of lines.
    fn trim_unseen(&self, pending: &mut Vec<Entry>) {
        if pending.len() >= self.capacity.saturating_mul(2) && self.live.receiver_count() == 0 {
            pending.drain(..pending.len() - self.capacity);
        }
    }

    /// Record `group` in `history` (one `write(2)`), then keep and broadcast it: what a reader
    /// saw is in the history file, so it survives a SIGKILL of the server. Returns the history,
    /// or `None` once it could not be written (the error is the group's last event).
    fn record(&self, history: History, group: &mut Vec<Entry>) -> Option<History> {
        let mut history = Some(history);
        if self.closed.load(Ordering::Acquire) {
            // The app was destroyed: its history is gone and must not come back.
            history = None;
        }
        if let Some(h) = &mut history {
            // Older entries than the last `capacity` would be pushed out of the history at once.
            let kept = group.len().saturating_sub(self.capacity);
            let written = group[kept..]
                .iter()
                .try_for_each(|e| encode(e, h))
                .and_then(|()| h.flush());
            if let Err(e) = written {
                group.push(history_error(h.dir(), &e));
                history = None;
            }
        }
        self.publish(group);
        history
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
        self.publish(&mut vec![entry]);
    }

    /// Give `entries` the next sequence numbers, in order.
    fn number(&self, entries: &mut [Entry]) {
        let base = self
            .next_seq
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        for (entry, seq) in entries.iter_mut().zip(base..) {
            entry.seq = seq;
        }
    }

    /// Keep `entries` in the ring (one lock for all) and broadcast them, leaving `entries`
    /// empty.
    fn publish(&self, entries: &mut Vec<Entry>) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let skip = entries.len().saturating_sub(self.capacity);
        for entry in &entries[skip..] {
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(entry.clone());
        }
        // No subscriber is fine.
        for entry in entries.drain(..) {
            let _ = self.live.send(entry);
        }
    }

    /// Where the app's processes and the platform send events for this app.
    pub fn sender(&self) -> LogSender {
        self.sender.clone()
    }

    /// The most recent events, oldest first, at most `limit`, that pass `filter`.
    pub fn recent(&self, limit: usize, filter: &Filter) -> Vec<Entry> {
        newest(
            &self.ring.lock().unwrap_or_else(|p| p.into_inner()),
            limit,
            filter,
        )
    }

    /// Subscribe to events as they arrive.
    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.live.subscribe()
    }

    /// The most recent events (as [`AppLog::recent`]) and the events after them as they
    /// arrive: what `logs --tail` shows. Nothing comes twice, and lines the client does not
    /// get are counted ([`Followed::Skipped`]).
    pub fn follow(&self, limit: usize, filter: &Filter) -> (Vec<Entry>, Follow) {
        // Under the ring's lock, which publishing holds while it broadcasts: every event is
        // either in the ring now or broadcast to this subscriber later, not both.
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.live.subscribe();
        let next = ring
            .iter()
            .rev()
            .find(|e| e.seq != UNNUMBERED)
            .map(|e| e.seq + 1);
        let recent = newest(&ring, limit, filter);
        drop(ring);
        let follow = Follow::new(live, next);
        (recent, follow)
    }
}

/// The last `limit` entries of `ring` that pass `filter`, oldest first.
fn newest(ring: &VecDeque<Entry>, limit: usize, filter: &Filter) -> Vec<Entry> {
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
            let about = entry.json().contains(&format!("\"target\":\"{ps}"));
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

    /// Say `event 0000` to `event {total - 1}`, then wait until all of it is committed.
    async fn burst(log: &AppLog, total: usize) {
        for n in 0..total {
            say(log, &format!("event {n:04}")).await;
        }
        log.sender().barrier().await;
    }

    fn lines(log: &AppLog) -> Vec<String> {
        log.recent(100, &Filter::default())
            .iter()
            .map(|e| e.json().to_string())
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
        burst(&log, total).await;
        for n in 0..total {
            let entry = tail
                .try_recv()
                .expect("every event of the burst is broadcast");
            assert!(entry.json().contains(&format!("event {n:04}")), "{entry:?}");
        }
        let after_restart = AppLog::with_history(10, &path);
        let kept = lines(&after_restart);
        assert_eq!(kept.len(), 10);
        for (line, n) in kept.iter().zip(total - 10..total) {
            assert!(line.contains(&format!("event {n:04}")), "{kept:?}");
        }
    }

    #[tokio::test]
    async fn a_burst_nobody_follows_leaves_its_last_events_in_the_ring_and_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop");
        let log = AppLog::with_history(10, &path);
        burst(&log, 3000).await;
        let expected: Vec<String> = (2990..3000).map(|n| format!("event {n:04}")).collect();
        let shown = |lines: Vec<String>| -> Vec<String> {
            lines
                .iter()
                .map(|l| {
                    l.split("\"line\":\"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(shown(lines(&log)), expected);
        assert_eq!(shown(lines(&AppLog::with_history(10, &path))), expected);
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
