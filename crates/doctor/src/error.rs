//! Errors of the doctor library.

use std::path::PathBuf;

/// What can stop an audit from producing a report. Problems inside the audited repository
/// (unreadable files, broken deviations files) are not errors: they are skipped or reported
/// as findings.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// The directory to audit does not exist or cannot be read.
    #[error("{}: cannot audit this directory: {cause}", path.display())]
    Root {
        /// The directory given.
        path: PathBuf,
        /// Why it failed (part of the message, so not repeated as a source).
        cause: std::io::Error,
    },
    /// The path to audit is a file, not a directory.
    #[error("{}: not a directory; give the repository's root directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// `--run` could not start the runner.
    #[error("--run: cannot start `{}`: {cause}; build dozen or pass its path", exe.display())]
    RunnerStart {
        /// The executable tried.
        exe: PathBuf,
        /// Why it failed (part of the message, so not repeated as a source).
        cause: std::io::Error,
    },
    /// Writing a report failed.
    #[error("writing the report: {0}")]
    Write(#[from] std::io::Error),
}
