//! Splitting a byte stream into whole lines.

use crate::event::LineBatch;

/// The longest line delivered in one piece, in bytes. A longer line is split into pieces of at
/// most this size; each piece except the last is marked partial.
pub const MAX_LINE: usize = 32 * 1024;

/// Turns the chunks read from one pipe into whole lines.
///
/// A line ends at `\n` (a `\r` right before it is dropped too). Bytes after the last newline are
/// held until the next chunk completes the line, or until [`LineFramer::finish`] delivers them
/// when the pipe closes. The held tail never grows past [`MAX_LINE`], so a process that writes
/// a huge line without a newline costs bounded memory.
#[derive(Debug, Default)]
pub struct LineFramer {
    carry: Vec<u8>,
}

impl LineFramer {
    /// A framer with nothing held.
    pub fn new() -> Self {
        LineFramer::default()
    }

    /// Bytes held back as the start of an unfinished line.
    pub fn held(&self) -> usize {
        self.carry.len()
    }

    /// Add `input` to the stream and append every line it completes to `batch`.
    pub fn push(&mut self, input: &[u8], batch: &mut LineBatch) {
        let base = batch.buf.len();
        batch.buf.append(&mut self.carry);
        batch.buf.extend_from_slice(input);
        let mut line_start = base;
        let mut scan_from = base + (batch.buf.len() - base - input.len());
        while let Some(nl) = memchr::memchr(b'\n', &batch.buf[scan_from..]) {
            let nl = scan_from + nl;
            Self::emit_line(batch, line_start, nl);
            line_start = nl + 1;
            scan_from = line_start;
        }
        scan_from = line_start;
        // Cut the unfinished tail into pieces while it is longer than a line may be.
        while batch.buf.len() - scan_from > MAX_LINE {
            let mut cut = utf8_cut(&batch.buf[scan_from..scan_from + MAX_LINE + 1], MAX_LINE);
            // Keep a trailing \r with the rest, so that a \r\n split across reads still ends
            // the line cleanly.
            if cut > 1 && batch.buf[scan_from + cut - 1] == b'\r' {
                cut -= 1;
            }
            batch.push_span(scan_from, scan_from + cut, true);
            scan_from += cut;
        }
        self.carry.extend_from_slice(&batch.buf[scan_from..]);
        batch.buf.truncate(scan_from);
    }

    /// The pipe closed: deliver a last line that had no newline.
    pub fn finish(&mut self, batch: &mut LineBatch) {
        if self.carry.is_empty() {
            return;
        }
        let start = batch.buf.len();
        batch.buf.append(&mut self.carry);
        let end = batch.buf.len();
        batch.push_span(start, end, false);
    }

    fn emit_line(batch: &mut LineBatch, start: usize, newline: usize) {
        // A line of a split line continues in pieces; the newline only ends the last one.
        let mut start = start;
        while newline - start > MAX_LINE {
            let cut = utf8_cut(&batch.buf[start..newline], MAX_LINE);
            batch.push_span(start, start + cut, true);
            start += cut;
        }
        let end = if newline > start && batch.buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        batch.push_span(start, end, false);
    }
}

/// Where to cut `bytes` (longer than `max`) at or before `max` so that a UTF-8 character is not
/// split, when the text is UTF-8 at all; otherwise at `max`.
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    for back in 0..=3 {
        let cut = max - back;
        if cut == 0 {
            break;
        }
        if bytes[cut] & 0b1100_0000 != 0b1000_0000 {
            return cut;
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Label, Stream};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn batch() -> LineBatch {
        LineBatch::new(Arc::new(Label::new("t.1", 0)), Stream::Stdout)
    }

    fn lines(b: &LineBatch) -> Vec<(Vec<u8>, bool)> {
        b.lines().map(|(l, p)| (l.to_vec(), p)).collect()
    }

    #[test]
    fn splits_and_joins_across_chunks() {
        let mut f = LineFramer::new();
        let mut b = batch();
        f.push(b"a\nb", &mut b);
        f.push(b"c\r\nd", &mut b);
        assert_eq!(
            lines(&b),
            vec![(b"a".to_vec(), false), (b"bc".to_vec(), false)]
        );
        f.finish(&mut b);
        assert_eq!(lines(&b).last().unwrap(), &(b"d".to_vec(), false));
    }

    #[test]
    fn empty_lines_are_lines() {
        let mut f = LineFramer::new();
        let mut b = batch();
        f.push(b"\n\n", &mut b);
        assert_eq!(lines(&b).len(), 2);
    }

    #[test]
    fn huge_line_is_split_and_marked() {
        let mut f = LineFramer::new();
        let mut b = batch();
        let big = vec![b'x'; MAX_LINE * 2 + 10];
        for chunk in big.chunks(4096) {
            f.push(chunk, &mut b);
            assert!(f.held() <= MAX_LINE);
        }
        f.push(b"\n", &mut b);
        let got = lines(&b);
        assert_eq!(got.len(), 3);
        assert!(got[0].1 && got[1].1 && !got[2].1);
        assert_eq!(got.iter().map(|(l, _)| l.len()).sum::<usize>(), big.len());
    }

    #[test]
    fn split_respects_utf8() {
        let mut f = LineFramer::new();
        let mut b = batch();
        let mut text = vec![b'a'; MAX_LINE - 1];
        text.extend_from_slice("é€".repeat(10).as_bytes());
        text.push(b'\n');
        f.push(&text, &mut b);
        for (piece, _) in lines(&b) {
            assert!(std::str::from_utf8(&piece).is_ok());
        }
    }

    proptest! {
        #[test]
        fn reassembles_any_input(data in proptest::collection::vec(any::<u8>(), 0..200_000),
                                 chunk in 1usize..70_000) {
            let mut f = LineFramer::new();
            let mut b = batch();
            for c in data.chunks(chunk) {
                f.push(c, &mut b);
                prop_assert!(f.held() <= MAX_LINE);
            }
            f.finish(&mut b);
            // Joining the pieces back (newline after each whole line) gives the input, minus
            // the \r of \r\n and a trailing newline.
            let mut joined = Vec::new();
            let all = lines(&b);
            for (i, (l, partial)) in all.iter().enumerate() {
                prop_assert!(l.len() <= MAX_LINE);
                joined.extend_from_slice(l);
                if !partial && (i + 1 < all.len() || data.last() == Some(&b'\n')) {
                    joined.push(b'\n');
                }
            }
            let expected: Vec<u8> = {
                let s = data.clone();
                let mut out = Vec::new();
                let mut i = 0;
                while i < s.len() {
                    if s[i] == b'\r' && s.get(i + 1) == Some(&b'\n') { i += 1; continue; }
                    out.push(s[i]);
                    i += 1;
                }
                out
            };
            prop_assert_eq!(joined, expected);
        }
    }
}
