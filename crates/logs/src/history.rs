//! A durable, size-bounded history of one stream's recent records: what `dozen logs` shows after
//! the server restarted or was killed.
//!
//! The history is a directory of append-only segment files, `0000000000000001.seg`,
//! `0000000000000002.seg`, ... Each record is framed as its length (u32, little endian), the
//! CRC-32 of its bytes (u32, little endian) and the bytes. New records go to the newest
//! segment; when it holds [`SEGMENT_CAPACITIES`] x `capacity` records (or [`SEGMENT_BYTES`]), a
//! new segment starts and the one before the previous is deleted. So the directory holds at most
//! two segments, at least the last `capacity` records when they fit in one segment's byte bound,
//! and never more than `2 x SEGMENT_BYTES` plus one record. A segment of several capacities
//! makes rotation (a create and a delete) rare: an app printing fast rotates once per
//! `SEGMENT_CAPACITIES x capacity` lines, not once per `capacity`.
//!
//! A server killed in the middle of a write leaves a torn record at the end of the newest
//! segment: [`History::open`] reads every record whose frame and checksum are whole, cuts the
//! file after the last good one, and appends from there.
//!
//! **Durability.** [`History::append`] only buffers; [`History::flush`] hands the buffer to the
//! kernel with one `write(2)`, without `fsync`. What was flushed survives the death of the
//! process (SIGKILL, a crash, OOM kill): it sits in the kernel's page cache and reaches the disk
//! from there. It does not survive a power cut or a kernel crash of the host, which would need an
//! `fsync` per flush and would slow every app that prints. The caller flushes before it shows a
//! record to anyone, so whatever a reader saw is in the file.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let (mut history, old) = dozen_logs::History::open(dir.path(), 3).unwrap();
//! assert!(old.is_empty());
//! for n in 0..5 {
//!     history.append(format!("line {n}").as_bytes()).unwrap();
//! }
//! history.flush().unwrap();
//! drop(history);
//! let (_, kept) = dozen_logs::History::open(dir.path(), 3).unwrap();
//! assert_eq!(kept, [b"line 2".to_vec(), b"line 3".to_vec(), b"line 4".to_vec()]);
//! ```

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A segment is sealed once it holds this many bytes, even if it has fewer records than the
/// capacity (long lines): the bound on the disk one history takes is twice this.
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// A segment is sealed once it holds this many times the history's capacity in records.
pub const SEGMENT_CAPACITIES: usize = 8;

/// The largest record a history accepts; a frame announcing more is treated as torn.
pub const MAX_RECORD: usize = 4 * 1024 * 1024;

/// Length and checksum before every record.
const FRAME: usize = 8;

/// The history of one stream, open for appending.
#[derive(Debug)]
pub struct History {
    dir: PathBuf,
    capacity: usize,
    file: File,
    seq: u64,
    records: usize,
    bytes: u64,
    buf: Vec<u8>,
}

impl History {
    /// Open (creating it when missing) the history in `dir`, which keeps the last `capacity`
    /// records. Returns the history and the records it already holds, oldest first, at most
    /// `capacity`. A torn record at the end of the newest segment is cut off.
    pub fn open(dir: &Path, capacity: usize) -> io::Result<(History, Vec<Vec<u8>>)> {
        let capacity = capacity.max(1);
        fs::create_dir_all(dir)?;
        let mut segments = segments(dir)?;
        // Older ones than the newest two are left by a crash during rotation.
        while segments.len() > 2 {
            let (_, old) = segments.remove(0);
            remove_if_present(&old)?;
        }
        let mut kept: VecDeque<Vec<u8>> = VecDeque::new();
        let mut keep = |record: Vec<u8>| {
            if kept.len() == capacity {
                kept.pop_front();
            }
            kept.push_back(record);
        };
        let (seq, file, records, bytes) = match segments.pop() {
            Some((seq, newest)) => {
                if let Some((_, older)) = segments.pop() {
                    read_segment(&mut File::open(&older)?, &mut keep)?;
                }
                let mut file = OpenOptions::new().read(true).append(true).open(&newest)?;
                let (records, good) = read_segment(&mut file, &mut keep)?;
                if file.metadata()?.len() > good {
                    // A torn tail: a write interrupted by the death of the process.
                    file.set_len(good)?;
                }
                (seq, file, records, good)
            }
            None => {
                let file = create_segment(dir, 1)?;
                (1, file, 0, 0)
            }
        };
        let history = History {
            dir: dir.to_path_buf(),
            capacity,
            file,
            seq,
            records,
            bytes,
            buf: Vec::new(),
        };
        Ok((history, kept.into()))
    }

    /// The directory the history lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Add a record (buffered: call [`History::flush`] before showing it to anyone). A record
    /// larger than [`MAX_RECORD`] is cut to that size.
    pub fn append(&mut self, record: &[u8]) -> io::Result<()> {
        self.append_parts(&[record])
    }

    /// Add one record made of `parts` put together, without putting them together first (what
    /// [`History::append`] does with their concatenation).
    pub fn append_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_RECORD {
            return self.append(&parts.concat()[..MAX_RECORD]);
        }
        let framed = (FRAME + len) as u64;
        if self.records >= self.capacity.saturating_mul(SEGMENT_CAPACITIES)
            || (self.records > 0 && self.bytes + framed > SEGMENT_BYTES)
        {
            self.flush()?;
            self.rotate()?;
        }
        let mut crc = crc32fast::Hasher::new();
        for part in parts {
            crc.update(part);
        }
        // `len` is at most MAX_RECORD, which fits a u32.
        self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        self.buf.extend_from_slice(&crc.finalize().to_le_bytes());
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.records += 1;
        self.bytes += framed;
        Ok(())
    }

    /// Write what [`History::append`] buffered to the segment file, in one `write(2)` (no
    /// `fsync`: see the module's documentation).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.buf);
        self.buf.clear();
        result
    }

    /// Start a new segment and delete the one before the previous. Older ones cannot be there:
    /// [`History::open`] deletes all but the newest two, and every rotation deletes one.
    fn rotate(&mut self) -> io::Result<()> {
        // Never recreate a directory that was removed (the app was destroyed): creating the
        // segment fails instead.
        let next = create_segment(&self.dir, self.seq + 1)?;
        self.file = next;
        self.seq += 1;
        self.records = 0;
        self.bytes = 0;
        if self.seq > 2 {
            remove_if_present(&segment_path(&self.dir, self.seq - 2))?;
        }
        Ok(())
    }

    /// Delete the history in `dir` (the stream's app was destroyed). Missing is fine.
    pub fn remove(dir: &Path) -> io::Result<()> {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.seg"))
}

fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(segment_path(dir, seq))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The segments in `dir`, oldest first. Other files are ignored.
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((seq, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Read a segment's whole records into `keep`; stop at the first torn or corrupt one. Returns
/// how many records were good and the offset just past the last good one.
fn read_segment(file: &mut File, keep: &mut impl FnMut(Vec<u8>)) -> io::Result<(usize, u64)> {
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let mut at = 0usize;
    let mut records = 0usize;
    while let Some(frame) = data.get(at..at + FRAME) {
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if len > MAX_RECORD {
            break;
        }
        let Some(record) = data.get(at + FRAME..at + FRAME + len) else {
            break;
        };
        if crc32fast::hash(record) != crc {
            break;
        }
        keep(record.to_vec());
        records += 1;
        at += FRAME + len;
    }
    Ok((records, at as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(history: &mut History, from: usize, to: usize) {
        for n in from..to {
            history.append(format!("record {n}").as_bytes()).unwrap();
        }
        history.flush().unwrap();
    }

    fn names(records: &[Vec<u8>]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn a_torn_tail_is_cut_and_appending_goes_on_after_the_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        let (mut history, _) = History::open(dir.path(), 100).unwrap();
        fill(&mut history, 0, 5);
        drop(history);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let good = fs::metadata(&path).unwrap().len();
        // A write cut short: a whole frame announcing 20 bytes, and only 3 of them.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&20u32.to_le_bytes()).unwrap();
        f.write_all(&crc32fast::hash(b"twenty bytes of text").to_le_bytes())
            .unwrap();
        f.write_all(b"twe").unwrap();
        drop(f);

        let (mut history, kept) = History::open(dir.path(), 100).unwrap();
        assert_eq!(
            names(&kept),
            (0..5).map(|n| format!("record {n}")).collect::<Vec<_>>()
        );
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            good,
            "the torn tail is cut"
        );
        fill(&mut history, 5, 7);
        drop(history);
        let (_, kept) = History::open(dir.path(), 100).unwrap();
        assert_eq!(
            names(&kept),
            (0..7).map(|n| format!("record {n}")).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_record_with_a_bad_checksum_ends_the_history_there() {
        let dir = tempfile::tempdir().unwrap();
        let (mut history, _) = History::open(dir.path(), 100).unwrap();
        fill(&mut history, 0, 3);
        drop(history);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut data = fs::read(&path).unwrap();
        // Flip a byte of the last record's text: half a page written, say.
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let (_, kept) = History::open(dir.path(), 100).unwrap();
        assert_eq!(names(&kept), ["record 0", "record 1"]);
        // A frame of garbage announcing a huge length is torn too.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0xff; 16]).unwrap();
        drop(f);
        let (_, kept) = History::open(dir.path(), 100).unwrap();
        assert_eq!(names(&kept), ["record 0", "record 1"]);
    }

    #[test]
    fn the_history_keeps_the_last_records_in_at_most_two_segments() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = 10;
        let (mut history, _) = History::open(dir.path(), capacity).unwrap();
        let mut newest = Vec::new();
        for round in 0..30 {
            fill(&mut history, 100 + round * 7, 100 + round * 7 + 7);
            let segs = segments(dir.path()).unwrap();
            assert!(segs.len() <= 2, "{segs:?}");
            newest.push(segs.last().unwrap().0);
        }
        newest.dedup();
        assert!(newest.len() >= 3, "rotated at least twice: {newest:?}");
        drop(history);
        let total: u64 = segments(dir.path())
            .unwrap()
            .iter()
            .map(|(_, p)| fs::metadata(p).unwrap().len())
            .sum();
        // Two segments of at most `SEGMENT_CAPACITIES x capacity` records each.
        let one = (FRAME + "record 000".len()) as u64;
        let bound = 2 * (SEGMENT_CAPACITIES * capacity) as u64 * one;
        assert!(total <= bound, "{total} bytes");
        let (_, kept) = History::open(dir.path(), capacity).unwrap();
        assert_eq!(
            names(&kept),
            (300..310)
                .map(|n| format!("record {n}"))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_record_in_parts_reads_back_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let (mut history, _) = History::open(dir.path(), 10).unwrap();
        history.append_parts(&[b"web.1", b"\n", b"{}"]).unwrap();
        history.append(b"whole").unwrap();
        let big = vec![b'y'; MAX_RECORD];
        history.append_parts(&[b"z", &big]).unwrap();
        history.flush().unwrap();
        drop(history);
        let (_, kept) = History::open(dir.path(), 10).unwrap();
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[0], b"web.1\n{}");
        assert_eq!(kept[1], b"whole");
        assert_eq!(kept[2].len(), MAX_RECORD, "cut to the largest record");
        assert_eq!(kept[2][..2], *b"zy");
    }

    #[test]
    fn segments_are_sealed_by_size_too() {
        let dir = tempfile::tempdir().unwrap();
        let (mut history, _) = History::open(dir.path(), 1_000_000).unwrap();
        let big = vec![b'x'; 1024 * 1024];
        for _ in 0..40 {
            history.append(&big).unwrap();
            history.flush().unwrap();
        }
        drop(history);
        let segs = segments(dir.path()).unwrap();
        assert_eq!(segs.len(), 2);
        for (_, p) in &segs {
            assert!(fs::metadata(p).unwrap().len() <= SEGMENT_BYTES);
        }
        let (_, kept) = History::open(dir.path(), 1_000_000).unwrap();
        assert!(kept.len() >= 15 && kept.iter().all(|r| r == &big));
    }

    #[test]
    fn leftover_segments_past_two_are_deleted_on_open() {
        let dir = tempfile::tempdir().unwrap();
        for seq in 1..=4 {
            let mut f = create_segment(dir.path(), seq).unwrap();
            let rec = format!("seg {seq}");
            f.write_all(&(rec.len() as u32).to_le_bytes()).unwrap();
            f.write_all(&crc32fast::hash(rec.as_bytes()).to_le_bytes())
                .unwrap();
            f.write_all(rec.as_bytes()).unwrap();
        }
        let (_, kept) = History::open(dir.path(), 10).unwrap();
        assert_eq!(names(&kept), ["seg 3", "seg 4"]);
        assert_eq!(segments(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn a_removed_directory_is_not_recreated_by_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop");
        let (mut history, _) = History::open(&path, 2).unwrap();
        fill(&mut history, 0, 2 * SEGMENT_CAPACITIES);
        History::remove(&path).unwrap();
        assert!(history.append(b"after").is_err());
        assert!(!path.exists());
    }
}
