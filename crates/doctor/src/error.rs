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
    /// The baseline file exists but cannot be read.
    #[error("{}: cannot read the baseline: {cause}", path.display())]
    BaselineRead {
        /// The baseline file.
        path: PathBuf,
        /// Why it failed (part of the message, so not repeated as a source).
        cause: std::io::Error,
    },
    /// The baseline file is not a baseline this dozen can read.
    #[error("{}:{line}: invalid baseline: {message}; fix the line or rewrite the file with --update-baseline", path.display())]
    BaselineInvalid {
        /// The baseline file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong there.
        message: String,
    },
    /// The baseline file cannot be written.
    #[error("{}: cannot write the baseline: {cause}", path.display())]
    BaselineWrite {
        /// The baseline file.
        path: PathBuf,
        /// Why it failed (part of the message, so not repeated as a source).
        cause: std::io::Error,
    },
    /// `--changed-since` on a directory outside any git work tree.
    #[error("{}: --changed-since needs a git repository, and this directory is not inside one", path.display())]
    NotAGitRepo {
        /// The audited directory.
        path: PathBuf,
    },
    /// `--changed-since` names a ref git does not know.
    #[error("{}: --changed-since: `{reference}` is not a commit, branch or tag of this repository (try `git fetch`, or a ref from `git log`)", path.display())]
    UnknownRef {
        /// The audited directory.
        path: PathBuf,
        /// The ref given.
        reference: String,
    },
    /// git could not be run.
    #[error("{}: --changed-since: cannot run git: {cause}; install git", path.display())]
    GitStart {
        /// The audited directory.
        path: PathBuf,
        /// Why it failed (part of the message, so not repeated as a source).
        cause: std::io::Error,
    },
    /// git ran and failed.
    #[error("{}: --changed-since: git failed: {message}", path.display())]
    Git {
        /// The audited directory.
        path: PathBuf,
        /// git's own message.
        message: String,
    },
    /// Writing a report failed.
    #[error("writing the report: {0}")]
    Write(#[from] std::io::Error),
}
