//! Log events for dozen: what a process printed, and what dozen itself did.
//!
//! Factor XI treats logs as an event stream. This crate turns the raw bytes a process writes to
//! its stdout and stderr pipes into whole lines ([`LineFramer`]), carries them in batches
//! ([`LineBatch`]) together with dozen's own lifecycle events ([`PlatformEvent`]) through one
//! bounded channel ([`LogSender`]), and renders them on a dedicated writer thread
//! ([`LogWriter`]) as aligned, coloured terminal lines or as one JSON object per line
//! ([`Format`]).
//!
//! What it guarantees:
//!
//! - **Whole lines.** A line is rendered in one piece; lines from different processes never
//!   interleave inside a line. A final line without a newline is delivered when the pipe closes.
//! - **Bounded memory.** A line longer than [`MAX_LINE`] bytes is split into pieces of at most
//!   that size; every piece but the last is marked partial (`+` instead of `|` in the terminal,
//!   `"partial":true` in JSON). The channel holds at most [`CHANNEL_BATCHES`] batches.
//! - **Backpressure, not loss.** When the reader of dozen's output is slow, the writer thread
//!   blocks, the channel fills, senders wait, the pipe readers stop reading, and the processes
//!   block in `write(2)`. Nothing is dropped.
//!
//! Beyond the terminal: [`History`] keeps records, a bounded, checksummed file per stream that
//! a server reloads after a restart, and [`drains`] send a stream to syslog receivers and HTTPS
//! endpoints through a bounded queue on disk per drain.
//!
//! ```
//! use dozen_logs::{Format, LineBatch, LineFramer, Label, Stream};
//! use std::sync::Arc;
//!
//! let label = Arc::new(Label::new("web.1", 0));
//! let mut framer = LineFramer::new();
//! let mut batch = LineBatch::new(label.clone(), Stream::Stdout);
//! framer.push(b"hello\nwor", &mut batch);
//! framer.push(b"ld\n", &mut batch);
//! assert_eq!(batch.lines().map(|(l, _)| l.to_vec()).collect::<Vec<_>>(),
//!            vec![b"hello".to_vec(), b"world".to_vec()]);
//!
//! let mut out = Vec::new();
//! Format::json().render_batch(&batch, &mut out);
//! assert!(String::from_utf8(out).unwrap().contains(r#""proc":"web.1","stream":"stdout","line":"hello""#));
//! ```

pub mod drains;
mod event;
mod format;
mod framer;
mod history;
mod pump;
mod writer;

pub use event::{EventKind, Label, LineBatch, PlatformEvent, Record, Stream};
pub use format::{Format, TimeStyle};
pub use framer::{LineFramer, MAX_LINE};
pub use history::{History, MAX_RECORD, SEGMENT_BYTES};
pub use pump::{READ_SIZE, pump};
pub use writer::{
    CHANNEL_BATCHES, LogReceiver, LogSender, LogWriter, Output, SendError, log_channel,
};
