//! The answer to an attached one-off (`POST /v1/apps/{app}/run` with
//! `Accept: application/vnd.dozen.frames`): the bytes of the process's stdout and stderr,
//! exact and kept apart, then its exit status.
//!
//! The answer is a sequence of frames, each a kind byte, a payload length (4 bytes, big-endian)
//! and the payload:
//!
//! | kind | payload |
//! |---|---|
//! | `o` | bytes the process wrote to stdout |
//! | `e` | bytes the process wrote to stderr |
//! | `x` | the last frame: JSON `{"name": "run.1", "exit": 3}`, with `"error"` when the run failed |
//!
//! Nothing is re-encoded, so `dozen run -a APP -- pg_dump -Fc > backup.dump` writes the dump as
//! `pg_dump` wrote it. An answer that ends before its `x` frame was cut off.
//!
//! Not the JSON event stream of builds and logs (`application/x-ndjson`), which is text lines.

use std::io::Read;

/// The media type of a frame stream.
pub const CONTENT_TYPE: &str = "application/vnd.dozen.frames";

/// A frame of stdout bytes.
pub const STDOUT: u8 = b'o';
/// A frame of stderr bytes.
pub const STDERR: u8 = b'e';
/// The exit frame.
pub const EXIT: u8 = b'x';

/// The largest payload a reader accepts (the server sends at most 64 KiB of output per frame).
pub const MAX_PAYLOAD: usize = 1 << 20;

/// One frame, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Bytes the process wrote to stdout.
    Stdout(Vec<u8>),
    /// Bytes the process wrote to stderr.
    Stderr(Vec<u8>),
    /// The end: `{"name", "exit", "error"?}`.
    Exit(dozen_api::RunExit),
}

/// Why a frame stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Reading failed.
    #[error("reading the one-off's output: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended inside a frame.
    #[error("the one-off's output ended in the middle of a frame")]
    Truncated,
    /// A frame of a kind this reader does not know.
    #[error("the one-off's output has a frame of unknown kind {0:#04x}")]
    UnknownKind(u8),
    /// A frame longer than [`MAX_PAYLOAD`].
    #[error("the one-off's output has a frame of {0} bytes, over the limit of {MAX_PAYLOAD}")]
    TooLong(usize),
    /// The exit frame is not the JSON object it must be.
    #[error("the one-off's exit frame is not JSON: {0}")]
    BadExit(#[from] serde_json::Error),
}

/// A frame of `kind` around `payload`, ready to send.
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a frame payload is far below 4 GiB");
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The next frame of `reader`, or `None` at a clean end of the stream (between frames).
pub fn read_frame(reader: &mut impl Read) -> Result<Option<Frame>, FrameError> {
    let mut header = [0u8; 5];
    let mut got = 0;
    while got < header.len() {
        match reader.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let kind = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !matches!(kind, STDOUT | STDERR | EXIT) {
        return Err(FrameError::UnknownKind(kind));
    }
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLong(len));
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(Some(match kind {
        STDOUT => Frame::Stdout(payload),
        STDERR => Frame::Stderr(payload),
        _ => Frame::Exit(serde_json::from_slice(&payload)?),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_any_bytes() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let mut wire = encode(STDOUT, &bytes);
        wire.extend(encode(STDERR, b""));
        wire.extend(encode(EXIT, br#"{"name":"run.1","exit":3}"#));
        let mut r = wire.as_slice();
        assert_eq!(
            read_frame(&mut r).expect("frame"),
            Some(Frame::Stdout(bytes))
        );
        assert_eq!(
            read_frame(&mut r).expect("frame"),
            Some(Frame::Stderr(vec![]))
        );
        assert_eq!(
            read_frame(&mut r).expect("frame"),
            Some(Frame::Exit(dozen_api::RunExit {
                name: "run.1".into(),
                exit: 3,
                error: None
            }))
        );
        assert_eq!(read_frame(&mut r).expect("end"), None);
    }

    #[test]
    fn broken_streams_are_errors() {
        let wire = encode(STDOUT, b"abc");
        assert!(matches!(
            read_frame(&mut &wire[..6]),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &wire[..2]),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &encode(b'?', b"")[..]),
            Err(FrameError::UnknownKind(b'?'))
        ));
        let mut long = vec![STDOUT];
        long.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_frame(&mut &long[..]),
            Err(FrameError::TooLong(_))
        ));
        assert!(matches!(
            read_frame(&mut &encode(EXIT, b"not json")[..]),
            Err(FrameError::BadExit(_))
        ));
    }
}
