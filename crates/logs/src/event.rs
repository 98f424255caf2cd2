//! The events that flow through the log pipeline.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// How many recent lines each [`Label`] remembers, for messages such as a crash-loop give-up.
pub const RECENT_LINES: usize = 10;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
}

impl Stream {
    /// The name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The identity of one output source, such as `web.1`, shared by all its batches.
///
/// The colour index is chosen by the caller (dozen uses the position of the process type in the
/// Procfile, so a type keeps its colour from run to run).
#[derive(Debug)]
pub struct Label {
    name: String,
    color: usize,
    recent: Mutex<VecDeque<Vec<u8>>>,
}

impl Label {
    /// A label named `name` (for example `web.1`) drawn in palette colour `color`.
    pub fn new(name: impl Into<String>, color: usize) -> Self {
        Label {
            name: name.into(),
            color,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_LINES)),
        }
    }

    /// The source name, such as `web.1`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The palette index.
    pub fn color(&self) -> usize {
        self.color
    }

    /// The last lines (at most [`RECENT_LINES`]) this source printed, oldest first.
    pub fn recent_lines(&self) -> Vec<String> {
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        recent
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    fn remember(&self, lines: &[&[u8]]) {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for line in lines {
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            // A remembered line is for a human-readable summary: keep it short.
            recent.push_back(line[..line.len().min(512)].to_vec());
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
    partial: bool,
}

/// Whole lines read from one pipe at one moment.
///
/// The batch owns one byte buffer; lines are spans of it without their terminators. A batch is
/// the unit that crosses the channel, so the cost of the channel is paid per read, not per line.
#[derive(Debug)]
pub struct LineBatch {
    label: Arc<Label>,
    stream: Stream,
    time: SystemTime,
    pub(crate) buf: Vec<u8>,
    spans: Vec<Span>,
}

impl LineBatch {
    /// An empty batch for `label`'s `stream`.
    pub fn new(label: Arc<Label>, stream: Stream) -> Self {
        LineBatch {
            label,
            stream,
            time: SystemTime::now(),
            buf: Vec::new(),
            spans: Vec::new(),
        }
    }

    /// The source of these lines.
    pub fn label(&self) -> &Arc<Label> {
        &self.label
    }

    /// The pipe these lines came from.
    pub fn stream(&self) -> Stream {
        self.stream
    }

    /// When the lines were read.
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// Stamp the batch with the current time.
    pub fn stamp(&mut self) {
        self.time = SystemTime::now();
    }

    /// True when the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// How many lines (or pieces of split lines) the batch holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Each line's bytes, and whether it is a partial piece of a longer line that continues in
    /// the next piece.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], bool)> + '_ {
        self.spans
            .iter()
            .map(|s| (&self.buf[s.start as usize..s.end as usize], s.partial))
    }

    /// Record the last lines of this batch in the label's memory of recent lines.
    pub fn remember_tail(&self) {
        let skip = self.spans.len().saturating_sub(RECENT_LINES);
        let tail: Vec<&[u8]> = self.lines().skip(skip).map(|(l, _)| l).collect();
        self.label.remember(&tail);
    }

    pub(crate) fn push_span(&mut self, start: usize, end: usize, partial: bool) {
        // Buffers are bounded far below 4 GiB (see MAX_LINE and the read size), so u32 holds it.
        self.spans.push(Span {
            start: start as u32,
            end: end as u32,
            partial,
        });
    }
}

/// What kind of thing dozen is reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A process is being started.
    Starting,
    /// A process was spawned.
    Started,
    /// A process is listening on its port.
    Up,
    /// A process exited (with a code or by a signal).
    Exited,
    /// A process will be started again after a delay.
    Restarting,
    /// A process failed too often and will not be restarted.
    GaveUp,
    /// dozen is stopping processes.
    Stopping,
    /// A process did not stop within the grace period and was killed.
    Killed,
    /// Anything else worth telling.
    Info,
    /// Something went wrong.
    Error,
}

impl EventKind {
    /// The name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Starting => "starting",
            EventKind::Started => "started",
            EventKind::Up => "up",
            EventKind::Exited => "exited",
            EventKind::Restarting => "restarting",
            EventKind::GaveUp => "gave_up",
            EventKind::Stopping => "stopping",
            EventKind::Killed => "killed",
            EventKind::Info => "info",
            EventKind::Error => "error",
        }
    }
}

/// Something dozen itself did or saw: a lifecycle change of a process, or a message.
///
/// The text is for people; the fields are for programs reading `--json`. Never put a config
/// value in either.
#[derive(Debug, Clone)]
pub struct PlatformEvent {
    /// When it happened.
    pub time: SystemTime,
    /// What happened.
    pub kind: EventKind,
    /// The process it is about, such as `web.1`.
    pub target: Option<String>,
    /// The process id, when one is known.
    pub pid: Option<u32>,
    /// The port the process was given.
    pub port: Option<u16>,
    /// The exit code.
    pub code: Option<i32>,
    /// The signal that ended (or was sent to) the process.
    pub signal: Option<i32>,
    /// A restart delay, in milliseconds.
    pub delay_ms: Option<u64>,
    /// A human sentence.
    pub text: String,
}

impl PlatformEvent {
    /// An event of `kind` with `text`, about no process in particular.
    pub fn new(kind: EventKind, text: impl Into<String>) -> Self {
        PlatformEvent {
            time: SystemTime::now(),
            kind,
            target: None,
            pid: None,
            port: None,
            code: None,
            signal: None,
            delay_ms: None,
            text: text.into(),
        }
    }

    /// Name the process the event is about.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Attach a process id.
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = Some(pid);
        self
    }

    /// Attach a port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Attach an exit code.
    pub fn code(mut self, code: i32) -> Self {
        self.code = Some(code);
        self
    }

    /// Attach a signal number.
    pub fn signal(mut self, signal: i32) -> Self {
        self.signal = Some(signal);
        self
    }

    /// Attach a delay.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }
}

/// One item on the log channel.
#[derive(Debug)]
pub enum Record {
    /// Lines a process printed.
    Lines(LineBatch),
    /// Something dozen did.
    Event(PlatformEvent),
    /// A barrier: the consumer acknowledges it once everything sent before it has been
    /// delivered. It carries no output.
    Barrier(tokio::sync::oneshot::Sender<()>),
}
