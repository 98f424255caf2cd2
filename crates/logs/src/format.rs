//! Rendering events as terminal lines or JSON objects.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anstyle::{AnsiColor, Color, Style};

use crate::event::{EventKind, LineBatch, PlatformEvent};

/// The name dozen's own events are shown under.
pub const PLATFORM_NAME: &str = "dozen";

const PALETTE: [AnsiColor; 10] = [
    AnsiColor::Cyan,
    AnsiColor::Yellow,
    AnsiColor::Green,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::BrightCyan,
    AnsiColor::BrightYellow,
    AnsiColor::BrightGreen,
    AnsiColor::BrightMagenta,
    AnsiColor::BrightBlue,
];

/// Whether terminal lines start with a clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStyle {
    /// `HH:MM:SS` in the local time zone.
    Local,
    /// No time (`--no-timestamp`, or when another tool adds its own).
    None,
}

/// How events are written out.
#[derive(Debug)]
pub struct Format {
    kind: Kind,
    clock: Clock,
}

#[derive(Debug)]
enum Kind {
    Human {
        color: bool,
        time: TimeStyle,
        width: usize,
    },
    Json,
}

impl Format {
    /// One JSON object per line: `ts` (RFC 3339, UTC), `proc`, `stream`, `line`, and `partial`
    /// on pieces of a split line. dozen's own events have `proc` `dozen`, `stream` `event`, an
    /// `event` kind and their fields (`target`, `pid`, `port`, `code`, `signal`, `delay_ms`).
    pub fn json() -> Self {
        Format {
            kind: Kind::Json,
            clock: Clock::default(),
        }
    }

    /// Terminal lines `HH:MM:SS web.1  | text`, names padded to `name_width`.
    pub fn human(color: bool, time: TimeStyle, name_width: usize) -> Self {
        Format {
            kind: Kind::Human {
                color,
                time,
                width: name_width.max(PLATFORM_NAME.len()),
            },
            clock: Clock::default(),
        }
    }

    /// Append the rendering of every line of `batch` to `out`.
    pub fn render_batch(&mut self, batch: &LineBatch, out: &mut Vec<u8>) {
        let secs_millis = split_time(batch.time());
        match self.kind {
            Kind::Human { color, time, width } => {
                let mut head = String::new();
                let style = Style::new().fg_color(Some(Color::Ansi(
                    PALETTE[batch.label().color() % PALETTE.len()],
                )));
                if color {
                    let _ = write!(head, "{style}");
                }
                if time == TimeStyle::Local {
                    head.push_str(self.clock.local(secs_millis.0));
                    head.push(' ');
                }
                let _ = write!(head, "{:<width$} ", batch.label().name());
                let (whole, partial) = if color {
                    (format!("{head}|{style:#} "), format!("{head}+{style:#} "))
                } else {
                    (format!("{head}| "), format!("{head}+ "))
                };
                for (line, is_partial) in batch.lines() {
                    out.extend_from_slice(if is_partial { &partial } else { &whole }.as_bytes());
                    out.extend_from_slice(line);
                    out.push(b'\n');
                }
            }
            Kind::Json => {
                let mut head = String::with_capacity(96);
                head.push_str("{\"ts\":\"");
                self.clock.utc(secs_millis, &mut head);
                head.push_str("\",\"proc\":");
                json_string(batch.label().name().as_bytes(), &mut head);
                head.push_str(",\"stream\":\"");
                head.push_str(batch.stream().as_str());
                head.push_str("\",\"line\":");
                for (line, is_partial) in batch.lines() {
                    out.extend_from_slice(head.as_bytes());
                    json_bytes(line, out);
                    if is_partial {
                        out.extend_from_slice(b",\"partial\":true}\n");
                    } else {
                        out.extend_from_slice(b"}\n");
                    }
                }
            }
        }
    }

    /// Append the rendering of one of dozen's own events to `out`.
    pub fn render_event(&mut self, event: &PlatformEvent, out: &mut Vec<u8>) {
        let secs_millis = split_time(event.time);
        match self.kind {
            Kind::Human { color, time, width } => {
                let mut s = String::new();
                let (head_style, text_style) = if !color {
                    (Style::new(), Style::new())
                } else if matches!(event.kind, EventKind::Error | EventKind::GaveUp) {
                    let red = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Red)));
                    (Style::new().bold(), red)
                } else {
                    (Style::new().bold(), Style::new())
                };
                let _ = write!(s, "{head_style}");
                if time == TimeStyle::Local {
                    s.push_str(self.clock.local(secs_millis.0));
                    s.push(' ');
                }
                let _ = write!(s, "{PLATFORM_NAME:<width$} |{head_style:#} ");
                let _ = write!(s, "{text_style}{}{text_style:#}", event.text);
                out.extend_from_slice(s.as_bytes());
                out.push(b'\n');
            }
            Kind::Json => {
                let mut s = String::with_capacity(160);
                s.push_str("{\"ts\":\"");
                self.clock.utc(secs_millis, &mut s);
                s.push_str("\",\"proc\":\"dozen\",\"stream\":\"event\",\"line\":");
                json_string(event.text.as_bytes(), &mut s);
                s.push_str(",\"event\":\"");
                s.push_str(event.kind.as_str());
                s.push('"');
                if let Some(target) = &event.target {
                    s.push_str(",\"target\":");
                    json_string(target.as_bytes(), &mut s);
                }
                let numbers: [(&str, Option<i64>); 5] = [
                    ("pid", event.pid.map(i64::from)),
                    ("port", event.port.map(i64::from)),
                    ("code", event.code.map(i64::from)),
                    ("signal", event.signal.map(i64::from)),
                    (
                        "delay_ms",
                        event.delay_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
                    ),
                ];
                for (key, value) in numbers {
                    if let Some(v) = value {
                        let _ = write!(s, ",\"{key}\":{v}");
                    }
                }
                s.push_str("}\n");
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

fn split_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_millis(),
        ),
        Err(_) => (0, 0),
    }
}

/// Formats times, remembering the last second so that a busy stream pays for time-zone
/// arithmetic once a second rather than once a line.
#[derive(Debug, Default)]
struct Clock {
    tz: Option<jiff::tz::TimeZone>,
    local_second: Option<i64>,
    local_text: String,
    utc_second: Option<i64>,
    utc_text: String,
}

impl Clock {
    fn local(&mut self, second: i64) -> &str {
        if self.local_second != Some(second) {
            let tz = self.tz.get_or_insert_with(|| {
                jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC)
            });
            self.local_text.clear();
            match jiff::Timestamp::from_second(second) {
                Ok(ts) => {
                    let zoned = ts.to_zoned(tz.clone());
                    let _ = write!(
                        self.local_text,
                        "{:02}:{:02}:{:02}",
                        zoned.hour(),
                        zoned.minute(),
                        zoned.second()
                    );
                }
                Err(_) => self.local_text.push_str("??:??:??"),
            }
            self.local_second = Some(second);
        }
        &self.local_text
    }

    fn utc(&mut self, (second, millis): (i64, u32), out: &mut String) {
        if self.utc_second != Some(second) {
            self.utc_text.clear();
            match jiff::Timestamp::from_second(second) {
                Ok(ts) => {
                    let _ = write!(self.utc_text, "{}", ts.strftime("%Y-%m-%dT%H:%M:%S"));
                }
                Err(_) => self.utc_text.push_str("1970-01-01T00:00:00"),
            }
            self.utc_second = Some(second);
        }
        out.push_str(&self.utc_text);
        let _ = write!(out, ".{millis:03}Z");
    }
}

/// Append `bytes` as a JSON string. Invalid UTF-8 is replaced with U+FFFD.
fn json_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => json_escape_into(s, out),
        Err(_) => json_escape_into(&String::from_utf8_lossy(bytes), out),
    }
}

fn json_string(bytes: &[u8], out: &mut String) {
    let mut buf = Vec::with_capacity(bytes.len() + 2);
    json_bytes(bytes, &mut buf);
    // json_escape_into writes valid UTF-8 only.
    out.push_str(&String::from_utf8_lossy(&buf));
}

/// True when one of the eight bytes of `word` must be escaped in a JSON string: a control
/// character (below 0x20, or 0x7f), `"` or `\\`. Bytes of 0x80 and above never match.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below n (n at most 0x80) sets its high bit in `word - n x ONES` while its own
    // high bit is clear; a byte equal to c is a zero byte of `word ^ c x ONES`.
    let below = |n: u64| word.wrapping_sub(n * ONES) & !word & HIGH;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let hits = below(0x20)
        | zero(word ^ (0x22 * ONES))
        | zero(word ^ (0x5c * ONES))
        | zero(word ^ (0x7f * ONES));
    hits != 0
}

fn json_escape_into(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Most of a log line needs no escape: skip it eight bytes at a time.
        if let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        i += 1;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Label, Stream};
    use crate::framer::LineFramer;
    use std::sync::Arc;

    /// JSON escaping one byte at a time: what the word-at-a-time scan must agree with.
    fn escape_bytewise(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        json_escape_into(s, &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn every_character_that_needs_it_is_escaped_wherever_it_falls_in_a_word() {
        let specials = [
            '"', '\\', '\n', '\r', '\t', '\0', '\x01', '\x1f', '\x7f', '\x1b',
        ];
        for special in specials {
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrst".chars().take(at).collect();
                s.push(special);
                s.push_str("é after ünïcode ");
                assert_eq!(escaped(&s), escape_bytewise(&s), "{s:?}");
                let parsed: String = serde_json::from_str(&escaped(&s)).expect("valid JSON");
                assert_eq!(parsed, s);
            }
        }
        for clean in [
            "",
            "a",
            "1234567",
            "12345678",
            "123456789",
            " \u{80}\u{ff}\u{7ff}~ ",
        ] {
            assert_eq!(escaped(clean), escape_bytewise(clean), "{clean:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn escaping_agrees_with_the_bytewise_escape(s in "(?s).{0,80}") {
            proptest::prop_assert_eq!(escaped(&s), escape_bytewise(&s));
        }
    }

    fn batch(text: &[u8]) -> LineBatch {
        let mut b = LineBatch::new(Arc::new(Label::new("web.1", 0)), Stream::Stderr);
        let mut f = LineFramer::new();
        f.push(text, &mut b);
        f.finish(&mut b);
        b
    }

    #[test]
    fn human_lines_are_aligned() {
        let mut out = Vec::new();
        Format::human(false, TimeStyle::None, 8).render_batch(&batch(b"hi\nthere\n"), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "web.1    | hi\nweb.1    | there\n"
        );
    }

    #[test]
    fn human_time_prefix() {
        let mut out = Vec::new();
        Format::human(false, TimeStyle::Local, 5).render_batch(&batch(b"x\n"), &mut out);
        let s = String::from_utf8(out).unwrap();
        let (time, rest) = s.split_at(8);
        assert!(time.chars().all(|c| c.is_ascii_digit() || c == ':'), "{s}");
        assert_eq!(rest, " web.1 | x\n");
    }

    #[test]
    fn json_escapes_and_parses() {
        let mut out = Vec::new();
        Format::json().render_batch(&batch(b"a \"q\" \\ \x01 \xff\n"), &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains(r#""line":"a \"q\" \\ \u0001 �"}"#), "{s}");
        assert!(s.starts_with("{\"ts\":\""));
        assert!(s.contains("\"stream\":\"stderr\""));
    }

    #[test]
    fn event_json_has_fields() {
        let mut out = Vec::new();
        let ev = PlatformEvent::new(EventKind::Exited, "web.1 exited with code 3")
            .target("web.1")
            .code(3);
        Format::json().render_event(&ev, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains(r#""proc":"dozen","stream":"event","line":"web.1 exited with code 3","event":"exited","target":"web.1","code":3}"#), "{s}");
    }
}
