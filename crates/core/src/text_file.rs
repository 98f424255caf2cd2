//! Reading a whole text file for the parsers, with errors callers can turn
//! into their own (path-carrying) error types.

use std::fmt;
use std::io::ErrorKind;
use std::path::Path;

/// Why a text file could not be read.
pub(crate) enum ReadFailure {
    /// The read itself failed.
    Io(std::io::Error),
    /// The bytes are not UTF-8; the first bad byte is on this 1-based line.
    NotUtf8 { line: usize },
}

/// Read `path` as UTF-8 text.
pub(crate) fn read(path: &Path) -> Result<String, ReadFailure> {
    let bytes = std::fs::read(path).map_err(ReadFailure::Io)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ReadFailure::NotUtf8 {
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
        }
    })
}

/// A short, plain description of an I/O failure for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IoReason(pub(crate) ErrorKind);

impl fmt::Display for IoReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ErrorKind::NotFound => f.write_str("no such file"),
            ErrorKind::PermissionDenied => f.write_str("permission denied"),
            ErrorKind::IsADirectory => f.write_str("it is a directory"),
            other => write!(f, "{other}"),
        }
    }
}
