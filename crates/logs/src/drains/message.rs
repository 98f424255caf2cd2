//! RFC 5424 syslog messages, as Heroku's Logplex sends them to drains.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`, with
//!
//! - PRI: facility local7 (23); severity info (6) for stdout, error (3) for stderr and for
//!   dozen's error events, notice (5) for dozen's other events;
//! - TIMESTAMP: UTC with microseconds;
//! - HOSTNAME: the app's name;
//! - APP-NAME: the source as `dozen logs --source` shows it: `app` for what a process printed,
//!   `dozen` for the platform's events;
//! - PROCID: the process (`web.1`, `build`), or `dozen` for platform events;
//! - MSGID: `-`, or `L10` on the event that reports dropped messages.
//!
//! [`Messages`] collects the messages of one batch of lines or one event; the drains share it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::event::{EventKind, LineBatch, PlatformEvent, Stream};
use crate::format::PLATFORM_NAME;

const LOCAL7: u8 = 23;
const ERROR: u8 = 3;
const NOTICE: u8 = 5;
const INFO: u8 = 6;

/// The messages of one record, each a complete RFC 5424 message without framing.
///
/// One buffer and the end offset of each message: the cost of sharing a batch with every drain
/// of the app is one allocation, not one per line.
#[derive(Debug, Default)]
pub struct Messages {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Messages {
    /// No messages.
    pub fn new() -> Self {
        Messages::default()
    }

    /// How many messages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each message, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let m = &self.buf[start..end];
            start = end;
            m
        })
    }

    /// Bytes of all messages together.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Add one message for every line of `batch` of app `host`.
    pub fn push_batch(&mut self, host: &str, batch: &LineBatch) {
        let head = batch_head(host, batch);
        self.buf.reserve(batch.buf.len() + batch.len() * head.len());
        self.ends.reserve(batch.len());
        for (line, _) in batch.lines() {
            self.buf.extend_from_slice(head.as_bytes());
            self.buf.extend_from_slice(line);
            self.ends.push(self.buf.len());
        }
    }

    /// Add the message of one of dozen's events about app `host`.
    pub fn push_event(&mut self, host: &str, event: &PlatformEvent) {
        let severity = match event.kind {
            EventKind::Error | EventKind::GaveUp | EventKind::Killed => ERROR,
            _ => NOTICE,
        };
        let mut head = String::with_capacity(96);
        header(
            &mut head,
            severity,
            event.time,
            host,
            PLATFORM_NAME,
            PLATFORM_NAME,
            "-",
        );
        self.buf.extend_from_slice(head.as_bytes());
        self.buf.extend_from_slice(event.text.as_bytes());
        self.ends.push(self.buf.len());
    }

    /// Add `message` as it is.
    pub(crate) fn push(&mut self, message: &[u8]) {
        self.buf.extend_from_slice(message);
        self.ends.push(self.buf.len());
    }

    /// Room for `count` more messages of `bytes` bytes in all.
    pub(crate) fn reserve(&mut self, count: usize, bytes: usize) {
        self.buf.reserve(bytes);
        self.ends.reserve(count);
    }

    /// Share these messages with the drains.
    pub fn share(self) -> Arc<Messages> {
        Arc::new(self)
    }
}

/// The header of every message of `batch` of app `host` (they share its time).
fn batch_head(host: &str, batch: &LineBatch) -> String {
    let severity = match batch.stream() {
        Stream::Stdout => INFO,
        Stream::Stderr => ERROR,
    };
    let mut head = String::with_capacity(96);
    header(
        &mut head,
        severity,
        batch.time(),
        host,
        "app",
        batch.label().name(),
        "-",
    );
    head
}

/// Call `f` with the message of each line of `batch` of app `host`, in order, each built in
/// `scratch` (one buffer for all of them).
pub(crate) fn each_message(
    host: &str,
    batch: &LineBatch,
    scratch: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
) {
    let head = batch_head(host, batch);
    for (line, _) in batch.lines() {
        scratch.clear();
        scratch.extend_from_slice(head.as_bytes());
        scratch.extend_from_slice(line);
        f(scratch);
    }
}

/// The event that tells a drain that `count` messages were dropped, the first at `first` and
/// the last at `last` (Heroku's L10).
pub(crate) fn dropped_notice(
    host: &str,
    drain: &str,
    count: u64,
    first: SystemTime,
    last: SystemTime,
) -> Vec<u8> {
    let mut s = String::with_capacity(160);
    header(
        &mut s,
        ERROR,
        SystemTime::now(),
        host,
        PLATFORM_NAME,
        PLATFORM_NAME,
        "L10",
    );
    let _ = write!(
        s,
        "Error L10 (output buffer overflow): drain {drain} dropped {count} messages from {} to {}",
        rfc3339(first),
        rfc3339(last)
    );
    s.into_bytes()
}

/// Append `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - ` to `out`.
fn header(
    out: &mut String,
    severity: u8,
    time: SystemTime,
    host: &str,
    app_name: &str,
    procid: &str,
    msgid: &str,
) {
    let _ = write!(
        out,
        "<{}>1 {} {} {} {} {msgid} - ",
        LOCAL7 * 8 + severity,
        rfc3339(time),
        field(host, 255),
        field(app_name, 48),
        field(procid, 128),
    );
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, `-` when empty.
fn field(value: &str, max: usize) -> String {
    let s: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if s.is_empty() { "-".into() } else { s }
}

/// `2026-12-02T06:45:29.123456Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => format!(
            "{}.{:06}Z",
            ts.strftime("%Y-%m-%dT%H:%M:%S"),
            d.subsec_micros()
        ),
        Err(_) => "-".into(),
    }
}

/// Append the RFC 6587 octet-counting frame of `message` (`LEN SP MSG`) to `out`.
pub fn frame(message: &[u8], out: &mut Vec<u8>) {
    // The length in decimal, written backwards into a buffer that holds any usize.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = message.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.push(b' ');
    out.extend_from_slice(message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Label;
    use crate::framer::LineFramer;

    #[test]
    fn lines_become_rfc5424_messages_with_octet_counting() {
        let mut batch = LineBatch::new(Arc::new(Label::new("web.1", 0)), Stream::Stderr);
        let mut f = LineFramer::new();
        f.push(b"hello world\nsecond\n", &mut batch);
        let mut m = Messages::new();
        m.push_batch("shop", &batch);
        m.push_event(
            "shop",
            &PlatformEvent::new(EventKind::Info, "Scaled to web=1"),
        );
        let all: Vec<String> = m
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        assert_eq!(all.len(), 3);
        assert!(all[0].starts_with("<187>1 20"), "{}", all[0]);
        assert!(
            all[0].ends_with("Z shop app web.1 - - hello world"),
            "{}",
            all[0]
        );
        assert!(all[2].starts_with("<189>1 "), "{}", all[2]);
        assert!(all[2].ends_with(" shop dozen dozen - - Scaled to web=1"));
        let mut framed = Vec::new();
        frame(b"abc", &mut framed);
        frame(b"", &mut framed);
        let long = vec![b'x'; 12_345];
        frame(&long, &mut framed);
        assert_eq!(&framed[..13], b"3 abc0 12345 ");
        assert_eq!(framed.len(), 13 + 12_345);
    }
}
