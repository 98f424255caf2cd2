//! A drain's queue: a bounded FIFO of messages on disk, read in batches and acknowledged once
//! delivered.
//!
//! Messages are appended to segment files `0000000000000001.q`, ... in the queue's directory,
//! each framed as its length (u32 LE), its CRC-32 (u32 LE) and its bytes, as in the history. A
//! segment is sealed at [`Queue::segment_bytes`] (an eighth of the bound). A file `cursor` holds
//! where delivery stands (segment, offset, index in the segment) and the count and times of
//! messages dropped and not yet reported, so a restarted server resumes where it was and a
//! message is sent again only when its delivery was not acknowledged before the restart.
//!
//! **At the bound.** When the messages not yet delivered take more than the bound, the oldest
//! segment is deleted whole: its undelivered messages are counted as dropped (with the time of
//! the first and the last), for the drain to report once it is back. The app is never slowed.
//!
//! Writes go to the kernel without `fsync`, like the history: they survive the death of the
//! server, not a crash of the host.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::message::Messages;

/// The largest message a queue holds; a longer one is cut.
pub const MAX_MESSAGE: usize = 64 * 1024;

const FRAME: usize = 8;
const CURSOR: &str = "cursor";
const CURSOR_LEN: usize = 48;

/// What [`Queue::push`] buffers before it writes. One `write(2)` of a few megabytes (a burst
/// that gathered while the spool task waited) runs in the kernel without a break on a
/// non-preemptible kernel, and keeps the app's log task off that CPU for as long.
pub const WRITE_MAX: usize = 64 * 1024;

/// The least [`Queue::peek`] reads at a time.
pub const READ_MIN: u64 = 64 * 1024;

#[derive(Debug)]
struct Segment {
    seq: u64,
    records: u64,
    bytes: u64,
}

/// Where delivery stands: the next message to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    seq: u64,
    offset: u64,
    index: u64,
}

/// Messages dropped at the bound and not yet reported to the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// How many.
    pub count: u64,
    /// When the first of them was dropped.
    pub first: SystemTime,
    /// When the last of them was dropped.
    pub last: SystemTime,
}

impl Position {
    /// A name for the position, unique within a queue.
    pub fn id(&self) -> String {
        format!("{}.{}", self.seq, self.offset)
    }
}

/// One read: the messages and the position just after them.
#[derive(Debug)]
pub struct Batch {
    /// Where the batch starts.
    pub start: Position,
    /// The messages, oldest first, in one buffer.
    pub messages: Messages,
    /// Pass to [`Queue::ack`] once they are delivered.
    pub next: Position,
}

/// A drain's bounded queue on disk.
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
    bound: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    tail: File,
    buf: Vec<u8>,
    /// The segment being read, open.
    reader: Option<(u64, File)>,
    /// What `peek` read last; kept to be reused.
    read_buf: Vec<u8>,
    cursor_file: File,
    at: Position,
    dropped: Option<Dropped>,
    dropped_total: u64,
}

impl Queue {
    /// Open (creating it when missing) the queue in `dir`, holding at most about `bound` bytes.
    pub fn open(dir: &Path, bound: u64) -> io::Result<Queue> {
        fs::create_dir_all(dir)?;
        let bound = bound.max(64 * 1024);
        let segment_bytes = (bound / 8).max(8 * 1024);
        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            if let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".q"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut segments = VecDeque::new();
        for seq in seqs {
            let path = segment_path(dir, seq);
            let data = fs::read(&path)?;
            let (records, good) = scan(&data);
            if good < data.len() as u64 {
                // A torn write at the death of the server.
                OpenOptions::new().write(true).open(&path)?.set_len(good)?;
            }
            segments.push_back(Segment {
                seq,
                records,
                bytes: good,
            });
        }
        if segments.is_empty() {
            segments.push_back(Segment {
                seq: 1,
                records: 0,
                bytes: 0,
            });
        }
        let last = segments.back().map_or(1, |s| s.seq);
        let tail = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(dir, last))?;
        let cursor_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join(CURSOR))?;
        let first = segments.front().map_or(1, |s| s.seq);
        let start = Position {
            seq: first,
            offset: 0,
            index: 0,
        };
        let (at, dropped) = match read_cursor(&cursor_file) {
            Some((at, dropped))
                if segments
                    .iter()
                    .any(|s| s.seq == at.seq && at.offset <= s.bytes && at.index <= s.records) =>
            {
                (at, dropped)
            }
            Some((_, dropped)) => (start, dropped),
            None => (start, None),
        };
        let mut queue = Queue {
            dir: dir.to_path_buf(),
            bound,
            segment_bytes,
            segments,
            tail,
            buf: Vec::new(),
            reader: None,
            read_buf: Vec::new(),
            cursor_file,
            at,
            dropped,
            dropped_total: 0,
        };
        queue.forget_delivered()?;
        Ok(queue)
    }

    /// The size at which a segment is sealed.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// Add a message at the end (buffered until [`Queue::flush`] or a read). Past the bound the
    /// oldest segment is dropped.
    pub fn push(&mut self, message: &[u8]) -> io::Result<()> {
        let message = &message[..message.len().min(MAX_MESSAGE)];
        let framed = (FRAME + message.len()) as u64;
        let full = self
            .segments
            .back()
            .is_some_and(|s| s.records > 0 && s.bytes + framed > self.segment_bytes);
        if full {
            self.flush()?;
            self.seal()?;
        }
        let len = message.len() as u32;
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf
            .extend_from_slice(&crc32fast::hash(message).to_le_bytes());
        self.buf.extend_from_slice(message);
        if let Some(tail) = self.segments.back_mut() {
            tail.records += 1;
            tail.bytes += framed;
        }
        if self.buf.len() >= WRITE_MAX {
            self.flush()?;
        }
        Ok(())
    }

    /// Write what [`Queue::push`] buffered, in one `write(2)`.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.tail.write_all(&self.buf);
        self.buf.clear();
        r
    }

    fn seal(&mut self) -> io::Result<()> {
        let seq = self.segments.back().map_or(0, |s| s.seq) + 1;
        self.tail = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, seq))?;
        self.segments.push_back(Segment {
            seq,
            records: 0,
            bytes: 0,
        });
        self.enforce_bound()
    }

    /// Drop the oldest segments while the undelivered bytes exceed the bound.
    fn enforce_bound(&mut self) -> io::Result<()> {
        while self.segments.len() > 1 && self.pending_bytes() > self.bound {
            let Some(old) = self.segments.pop_front() else {
                break;
            };
            let lost = if old.seq == self.at.seq {
                old.records.saturating_sub(self.at.index)
            } else {
                old.records
            };
            self.remove_segment(old.seq)?;
            if let Some(next) = self.segments.front() {
                if self.at.seq <= old.seq {
                    self.at = Position {
                        seq: next.seq,
                        offset: 0,
                        index: 0,
                    };
                }
            }
            if lost > 0 {
                let now = SystemTime::now();
                self.dropped_total += lost;
                let d = self.dropped.get_or_insert(Dropped {
                    count: 0,
                    first: now,
                    last: now,
                });
                d.count += lost;
                d.last = now;
            }
            self.write_cursor()?;
        }
        Ok(())
    }

    fn pending_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| {
                if s.seq == self.at.seq {
                    s.bytes - self.at.offset.min(s.bytes)
                } else if s.seq > self.at.seq {
                    s.bytes
                } else {
                    0
                }
            })
            .sum()
    }

    /// Messages waiting for delivery.
    pub fn queued(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| {
                if s.seq == self.at.seq {
                    s.records.saturating_sub(self.at.index)
                } else if s.seq > self.at.seq {
                    s.records
                } else {
                    0
                }
            })
            .sum()
    }

    /// Messages dropped at the bound since the queue was opened.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Dropped messages not yet reported to the drain.
    pub fn dropped(&self) -> Option<Dropped> {
        self.dropped
    }

    /// Count `count` messages as dropped before they reached the queue (its writer fell behind).
    pub fn count_dropped(&mut self, count: u64) {
        let now = SystemTime::now();
        self.dropped_total += count;
        let d = self.dropped.get_or_insert(Dropped {
            count: 0,
            first: now,
            last: now,
        });
        d.count += count;
        d.last = now;
    }

    /// Up to `max` of the oldest undelivered messages (and at most about `max_bytes`), without
    /// taking them off the queue.
    ///
    /// Reads about what the batch needs (`max` messages of the segment's average size, at
    /// least [`READ_MIN`]), not the whole rest of the segment: a drain that keeps up is asked for
    /// a few hundred messages at a time, and each byte of the queue is read about once.
    pub fn peek(&mut self, max: usize, max_bytes: usize) -> io::Result<Batch> {
        self.flush()?;
        let mut messages = Messages::new();
        let mut at = self.at;
        let mut bytes = 0usize;
        'segments: while messages.len() < max && bytes < max_bytes {
            let Some(seg) = self.segments.iter().find(|s| s.seq == at.seq) else {
                break;
            };
            if at.offset >= seg.bytes {
                match self.segments.iter().find(|s| s.seq > at.seq) {
                    Some(next) => {
                        at = Position {
                            seq: next.seq,
                            offset: 0,
                            index: 0,
                        };
                        continue;
                    }
                    None => break,
                }
            }
            let left = seg.bytes - at.offset;
            let average = (seg.bytes / seg.records.max(1)).max(FRAME as u64 + 1);
            let by_count = ((max - messages.len()) as u64).saturating_mul(average);
            let by_bytes = ((max_bytes - bytes) as u64).saturating_add(FRAME as u64);
            let mut want = left.min(by_count.min(by_bytes).max(READ_MIN));
            let (seq, records) = (seg.seq, seg.records as usize);
            let data = loop {
                let data = self.read_at(seq, at.offset, want as usize)?;
                // A message longer than the window: read it whole.
                let first = data
                    .get(..FRAME)
                    .map(|h| FRAME as u64 + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as u64);
                match first {
                    Some(need) if need > want && need <= left => want = need,
                    _ => break data,
                }
            };
            messages.reserve((max - messages.len()).min(records), data.len());
            let mut pos = 0usize;
            while let Some(head) = data.get(pos..pos + FRAME) {
                let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                let Some(body) = data.get(pos + FRAME..pos + FRAME + len) else {
                    break;
                };
                messages.push(body);
                pos += FRAME + len;
                bytes += len;
                at.offset += (FRAME + len) as u64;
                at.index += 1;
                if messages.len() >= max || bytes >= max_bytes {
                    break 'segments;
                }
            }
            if pos == 0 {
                // Cannot happen for a whole segment; stop rather than spin.
                break;
            }
        }
        Ok(Batch {
            start: self.at,
            messages,
            next: at,
        })
    }

    /// `len` bytes of segment `seq` from `offset`, in the queue's read buffer.
    fn read_at(&mut self, seq: u64, offset: u64, len: usize) -> io::Result<&[u8]> {
        let (_, file) = match self.reader.take() {
            Some(open) if open.0 == seq => self.reader.insert(open),
            _ => self
                .reader
                .insert((seq, File::open(segment_path(&self.dir, seq))?)),
        };
        if self.read_buf.len() < len {
            self.read_buf.resize(len, 0);
        }
        let data = &mut self.read_buf[..len];
        file.read_exact_at(data, offset)?;
        Ok(data)
    }

    /// The messages before `next` (from [`Queue::peek`]) were delivered, and so was the report
    /// of dropped messages when `reported` is true.
    pub fn ack(&mut self, next: Position, reported: bool) -> io::Result<()> {
        self.at = next;
        if reported {
            self.dropped = None;
        }
        self.forget_delivered()?;
        self.write_cursor()
    }

    /// Delete the segments wholly delivered (all but the tail).
    fn forget_delivered(&mut self) -> io::Result<()> {
        while self.segments.len() > 1 {
            let Some(front) = self.segments.front() else {
                break;
            };
            let done = front.seq < self.at.seq
                || (front.seq == self.at.seq && self.at.offset >= front.bytes);
            if !done {
                break;
            }
            let seq = front.seq;
            self.segments.pop_front();
            self.remove_segment(seq)?;
            if self.at.seq == seq {
                if let Some(next) = self.segments.front() {
                    self.at = Position {
                        seq: next.seq,
                        offset: 0,
                        index: 0,
                    };
                }
            }
        }
        Ok(())
    }

    /// Delete segment `seq`'s file, closing it first if it is being read.
    fn remove_segment(&mut self, seq: u64) -> io::Result<()> {
        if self.reader.as_ref().is_some_and(|(s, _)| *s == seq) {
            self.reader = None;
        }
        remove_if_present(&segment_path(&self.dir, seq))
    }

    fn write_cursor(&mut self) -> io::Result<()> {
        let mut b = [0u8; CURSOR_LEN];
        b[0..8].copy_from_slice(&self.at.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.at.offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.at.index.to_le_bytes());
        if let Some(d) = self.dropped {
            b[24..32].copy_from_slice(&d.count.to_le_bytes());
            b[32..36].copy_from_slice(&(secs(d.first) as u32).to_le_bytes());
            b[36..40].copy_from_slice(&(secs(d.last) as u32).to_le_bytes());
        }
        let crc = crc32fast::hash(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        self.cursor_file.write_all_at(&b, 0)
    }

    /// Delete the queue in `dir` (its drain was removed). Missing is fine.
    pub fn remove(dir: &Path) -> io::Result<()> {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn read_cursor(file: &File) -> Option<(Position, Option<Dropped>)> {
    let mut b = [0u8; CURSOR_LEN];
    file.read_exact_at(&mut b, 0).ok()?;
    let word = |r: std::ops::Range<usize>| {
        let mut w = [0u8; 8];
        w[..r.len()].copy_from_slice(&b[r]);
        u64::from_le_bytes(w)
    };
    if crc32fast::hash(&b[..44]) != word(44..48) as u32 {
        return None;
    }
    let at = Position {
        seq: word(0..8),
        offset: word(8..16),
        index: word(16..24),
    };
    let count = word(24..32);
    let dropped = (count > 0).then(|| Dropped {
        count,
        first: UNIX_EPOCH + Duration::from_secs(word(32..36)),
        last: UNIX_EPOCH + Duration::from_secs(word(36..40)),
    });
    Some((at, dropped))
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.q"))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The number of whole, intact records at the start of `data`, and the offset after them.
fn scan(data: &[u8]) -> (u64, u64) {
    let mut at = 0usize;
    let mut records = 0;
    while let Some(head) = data.get(at..at + FRAME) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_MESSAGE {
            break;
        }
        let Some(body) = data.get(at + FRAME..at + FRAME + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        records += 1;
        at += FRAME + len;
    }
    (records, at as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(batch: &Batch) -> Vec<String> {
        batch
            .messages
            .iter()
            .map(|m| String::from_utf8(m.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn messages_come_out_in_order_and_only_acknowledged_ones_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        for n in 0..10_000 {
            q.push(format!("message {n}").as_bytes()).unwrap();
        }
        assert_eq!(q.queued(), 10_000);
        let mut seen = Vec::new();
        loop {
            let b = q.peek(700, 1 << 20).unwrap();
            if b.messages.is_empty() {
                break;
            }
            // Not acknowledged: the same batch again.
            assert_eq!(texts(&q.peek(700, 1 << 20).unwrap()), texts(&b));
            seen.extend(texts(&b));
            q.ack(b.next, false).unwrap();
        }
        let want: Vec<String> = (0..10_000).map(|n| format!("message {n}")).collect();
        assert_eq!(seen, want);
        assert_eq!(q.queued(), 0);
        assert_eq!(q.dropped_total(), 0);
        // Delivered segments are deleted.
        let files = fs::read_dir(dir.path()).unwrap().count();
        assert!(files <= 2, "{files} files");
    }

    #[test]
    fn messages_longer_than_a_read_come_out_whole() {
        let long = |n: usize| format!("{n:05}{}", "x".repeat(MAX_MESSAGE - 5));
        // Mostly short ones, so that the average says a read of READ_MIN is plenty.
        let want: Vec<String> = (0..300)
            .map(|n| {
                if n % 50 == 7 {
                    long(n)
                } else {
                    format!("m{n}")
                }
            })
            .collect();
        for max in [1, 3, 500] {
            let dir = tempfile::tempdir().unwrap();
            let mut q = Queue::open(dir.path(), 8 << 20).unwrap();
            for m in &want {
                q.push(m.as_bytes()).unwrap();
            }
            let mut seen = Vec::new();
            loop {
                let b = q.peek(max, 4 << 20).unwrap();
                if b.messages.is_empty() {
                    break;
                }
                assert!(b.messages.len() <= max);
                seen.extend(texts(&b));
                q.ack(b.next, false).unwrap();
            }
            assert_eq!(seen, want, "max {max}");
        }
    }

    #[test]
    fn a_reopened_queue_resumes_after_the_last_acknowledged_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        for n in 0..100 {
            q.push(format!("m{n}").as_bytes()).unwrap();
        }
        let b = q.peek(30, 1 << 20).unwrap();
        q.ack(b.next, false).unwrap();
        let _unacked = q.peek(30, 1 << 20).unwrap();
        drop(q);
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.queued(), 70);
        let b = q.peek(1000, 1 << 20).unwrap();
        assert_eq!(texts(&b).first().map(String::as_str), Some("m30"));
        assert_eq!(b.messages.len(), 70);
    }

    #[test]
    fn past_the_bound_the_oldest_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 64 * 1024).unwrap();
        let n = 20_000u64;
        for i in 0..n {
            q.push(format!("message {i:08}").as_bytes()).unwrap();
        }
        q.flush().unwrap();
        let on_disk: u64 = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(
            on_disk <= 64 * 1024 + q.segment_bytes() + CURSOR_LEN as u64,
            "{on_disk}"
        );
        let dropped = q.dropped().unwrap();
        assert_eq!(dropped.count + q.queued(), n);
        assert_eq!(q.dropped_total(), dropped.count);
        // What is left is the newest, in order, ending with the last message.
        let b = q.peek(usize::MAX, usize::MAX).unwrap();
        let t = texts(&b);
        assert_eq!(t.len() as u64, q.queued());
        assert_eq!(t.last().unwrap(), &format!("message {:08}", n - 1));
        assert_eq!(t.first().unwrap(), &format!("message {:08}", dropped.count));
        q.ack(b.next, true).unwrap();
        assert_eq!(q.dropped(), None);
        drop(q);
        let q = Queue::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(q.dropped(), None);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn a_torn_tail_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        q.push(b"one").unwrap();
        q.push(b"two").unwrap();
        q.flush().unwrap();
        drop(q);
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment_path(dir.path(), 1))
            .unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2, 3, 4, b'x']).unwrap();
        drop(f);
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        q.push(b"three").unwrap();
        let b = q.peek(10, 1 << 20).unwrap();
        assert_eq!(texts(&b), ["one", "two", "three"]);
    }
}
