//! The bounded channel from pipe readers to the one thread that writes dozen's output.

use std::io::{self, Write};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use crate::event::{LineBatch, PlatformEvent, Record};
use crate::format::Format;

/// How many batches may wait in the channel. Each batch is one read of one pipe (at most a
/// few tens of KiB), so this bounds the memory between readers and the writer. When it is full,
/// senders wait: that is the backpressure that reaches the processes.
pub const CHANNEL_BATCHES: usize = 32;

/// Flush to the output once this much is rendered, even if more records are waiting.
const FLUSH_AT: usize = 128 * 1024;

/// Where rendered events go.
pub enum Output {
    /// dozen's standard output.
    Stdout,
    /// Any writer (tests, files).
    Writer(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stdout => f.write_str("Output::Stdout"),
            Output::Writer(_) => f.write_str("Output::Writer(..)"),
        }
    }
}

/// The log channel is closed: the writer has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendError;

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the log writer has stopped")
    }
}

impl std::error::Error for SendError {}

/// The sending side of the log channel. Cheap to clone; every sender waits when the channel is
/// full.
#[derive(Debug, Clone)]
pub struct LogSender {
    tx: mpsc::Sender<Record>,
}

impl LogSender {
    /// Send lines, waiting while the channel is full.
    pub async fn lines(&self, batch: LineBatch) -> Result<(), SendError> {
        self.tx
            .send(Record::Lines(batch))
            .await
            .map_err(|_| SendError)
    }

    /// Send one of dozen's own events, waiting while the channel is full.
    pub async fn event(&self, event: PlatformEvent) -> Result<(), SendError> {
        self.tx
            .send(Record::Event(event))
            .await
            .map_err(|_| SendError)
    }

    /// Wait until everything sent before this call has been delivered by the consumer (written
    /// out, or handed on). Returns at once if the consumer is gone.
    pub async fn barrier(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Record::Barrier(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Send an event from code that is not async (never from inside an async task).
    pub fn event_blocking(&self, event: PlatformEvent) -> Result<(), SendError> {
        self.tx
            .blocking_send(Record::Event(event))
            .map_err(|_| SendError)
    }
}

/// The receiving side of a log channel, for consumers other than [`LogWriter`] (the server
/// keeps one stream per app).
#[derive(Debug)]
pub struct LogReceiver {
    rx: mpsc::Receiver<Record>,
}

impl LogReceiver {
    /// The next record, or None when every sender is gone.
    pub async fn recv(&mut self) -> Option<Record> {
        self.rx.recv().await
    }

    /// The next record if one is waiting, without waiting for one.
    pub fn try_recv(&mut self) -> Option<Record> {
        self.rx.try_recv().ok()
    }
}

/// A bounded log channel of [`CHANNEL_BATCHES`] records.
pub fn log_channel() -> (LogSender, LogReceiver) {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    (LogSender { tx }, LogReceiver { rx })
}

/// The thread that renders records and writes them out, in the order they were sent.
#[derive(Debug)]
pub struct LogWriter {
    thread: JoinHandle<io::Result<u64>>,
}

impl LogWriter {
    /// Start the writer thread. It ends when every [`LogSender`] is dropped.
    pub fn spawn(format: Format, output: Output) -> io::Result<(LogWriter, LogSender)> {
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let thread = std::thread::Builder::new()
            .name("dozen-log-writer".into())
            .spawn(move || write_loop(format, output, rx))?;
        Ok((LogWriter { thread }, LogSender { tx }))
    }

    /// Wait until everything sent has been written. Returns how many lines were written, or
    /// the first output error (after which the writer kept draining the channel, so that no
    /// process blocked on a reader that was gone).
    pub fn finish(self) -> io::Result<u64> {
        match self.thread.join() {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("the log writer thread panicked")),
        }
    }
}

fn write_loop(
    mut format: Format,
    output: Output,
    mut rx: mpsc::Receiver<Record>,
) -> io::Result<u64> {
    let stdout = io::stdout();
    let mut sink: Box<dyn Write> = match output {
        Output::Stdout => Box::new(stdout.lock()),
        Output::Writer(w) => w,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 64 * 1024);
    let mut error: Option<io::Error> = None;
    let mut written: u64 = 0;
    let mut barriers = Vec::new();
    while let Some(record) = rx.blocking_recv() {
        written += render(&mut format, record, &mut buf, &mut barriers);
        while buf.len() < FLUSH_AT && barriers.is_empty() {
            match rx.try_recv() {
                Ok(record) => written += render(&mut format, record, &mut buf, &mut barriers),
                Err(_) => break,
            }
        }
        if error.is_none() {
            if let Err(e) = sink.write_all(&buf).and_then(|()| sink.flush()) {
                error = Some(e);
            }
        }
        buf.clear();
        for done in barriers.drain(..) {
            let _ = done.send(());
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

fn render(
    format: &mut Format,
    record: Record,
    buf: &mut Vec<u8>,
    barriers: &mut Vec<tokio::sync::oneshot::Sender<()>>,
) -> u64 {
    match record {
        Record::Lines(batch) => {
            format.render_batch(&batch, buf);
            batch.len() as u64
        }
        Record::Event(event) => {
            format.render_event(&event, buf);
            1
        }
        Record::Barrier(done) => {
            barriers.push(done);
            0
        }
    }
}
