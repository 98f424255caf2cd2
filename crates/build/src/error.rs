//! The one error type of this crate.

use std::fmt;
use std::path::PathBuf;

use dozen_core::ProcfileError;
use dozen_supervise::ExitStatus;

/// Why an archive entry was refused. Each is a property of the archive, not of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsafe {
    /// The path starts at `/` (or is otherwise not relative).
    AbsolutePath,
    /// The path has a `..` component.
    ParentDir,
    /// A symbolic link whose target, followed through the other links of the archive, leaves
    /// the tree (or is absolute).
    LinkOutside {
        /// The link's target as written in the archive.
        target: PathBuf,
    },
    /// A hard link to something that is not a regular file earlier in the archive.
    HardLinkOutside {
        /// The link's target as written in the archive.
        target: PathBuf,
    },
    /// A symbolic link chain longer than 40 hops, or one that loops.
    LinkLoop,
    /// A device, FIFO or other special file; only files, directories and links are allowed.
    Special {
        /// What kind of entry it was, such as `fifo` or `character device`.
        kind: &'static str,
    },
    /// A path that goes through a symbolic link of the same archive.
    ThroughLink,
    /// The same path twice (other than a directory).
    Duplicate,
    /// A path below something the archive made a file.
    ParentIsFile,
    /// A path that is not UTF-8 or is empty.
    BadName,
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsafe::AbsolutePath => f.write_str("absolute paths are not allowed"),
            Unsafe::ParentDir => f.write_str("`..` in a path is not allowed"),
            Unsafe::LinkOutside { target } => write!(
                f,
                "symbolic link to `{}` points outside the tree",
                target.display()
            ),
            Unsafe::HardLinkOutside { target } => write!(
                f,
                "hard link to `{}` is not a regular file earlier in the archive",
                target.display()
            ),
            Unsafe::LinkLoop => f.write_str("symbolic links loop or nest more than 40 deep"),
            Unsafe::Special { kind } => write!(
                f,
                "{kind} entries are not allowed (only files, directories and links)"
            ),
            Unsafe::ThroughLink => f.write_str("the path goes through a symbolic link"),
            Unsafe::Duplicate => f.write_str("the path appears twice"),
            Unsafe::ParentIsFile => f.write_str("a parent of the path is a file in the archive"),
            Unsafe::BadName => f.write_str("the path is empty or not UTF-8"),
        }
    }
}

/// Everything that can go wrong between a source directory and a slug. Every variant names
/// the file, archive entry, manifest field or build step it is about, and none carries a
/// config value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The archive is corrupt or not a `tar.zst`.
    #[error("the archive is not a valid tar.zst{}: {source}", at_entry(entry))]
    Archive {
        /// The entry being read, if one was.
        entry: Option<PathBuf>,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An entry that would write outside the destination or create something unsafe.
    #[error("archive entry `{}` refused: {reason}", entry.display())]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        entry: PathBuf,
        /// Why it was refused.
        reason: Unsafe,
    },
    /// The unpacked files would exceed [`Limits::max_bytes`](crate::Limits::max_bytes).
    #[error("archive entry `{}` refused: the archive unpacks to more than {limit} bytes; make the upload smaller or raise the limit", entry.display())]
    TooLarge {
        /// The entry that crossed the limit.
        entry: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The archive has more than [`Limits::max_entries`](crate::Limits::max_entries) entries.
    #[error("archive entry `{}` refused: the archive has more than {limit} entries; make the upload smaller or raise the limit", entry.display())]
    TooManyEntries {
        /// The first entry over the limit.
        entry: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The destination of an unpack or extract already exists.
    #[error("{}: already exists; unpack into a new directory", path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// `git ls-files` failed in a checkout.
    #[error("{}: `git ls-files` failed: {message}", dir.display())]
    Git {
        /// The directory being packed.
        dir: PathBuf,
        /// What git said (its last line of stderr) or why it could not run.
        message: String,
    },
    /// A `.dozenignore` pattern is invalid.
    #[error("{}: {message}", path.display())]
    Ignore {
        /// The `.dozenignore` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `dozen.toml` or `app.json` is malformed.
    #[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Manifest {
        /// `dozen.toml` or `app.json`.
        file: PathBuf,
        /// The 1-based line, where known.
        line: Option<usize>,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The built app has no valid Procfile.
    #[error(transparent)]
    Procfile(#[from] ProcfileError),
    /// A build step exited unsuccessfully.
    #[error("build step `{step}` {status}; the build log above shows why")]
    StepFailed {
        /// The shell command of the step.
        step: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// The build directory grew over the disk limit; the build was stopped.
    #[error(
        "the build used {} of disk in its build directory, over its limit of {} (DOZEN_BUILD_DISK), and was stopped during `{step}`; make the build smaller, or raise the limit on the server, e.g. DOZEN_BUILD_DISK={}",
        dozen_core::size::format_bytes(*used).replace(' ', ""),
        dozen_core::size::format_bytes(*limit).replace(' ', ""),
        dozen_core::size::format_bytes(limit.saturating_mul(2)).replace(' ', "")
    )]
    DiskLimit {
        /// The step that was running.
        step: String,
        /// Bytes used when it was noticed.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// The build was asked to stop while a step ran.
    #[error("build step `{step}` was stopped because the build was cancelled")]
    Cancelled {
        /// The step that was running.
        step: String,
    },
    /// The app's files call for a stack whose tool the build host does not have.
    #[error("{} makes this a {kind} app, but the build host has no `{tool}` on its PATH; install `{tool}` on the build host, or declare a build command in dozen.toml", file.display())]
    MissingTool {
        /// The missing executable, such as `bundle` or `yarn`.
        tool: String,
        /// The app's file that made the build pick the stack, such as `Gemfile`.
        file: PathBuf,
        /// The stack: `ruby`, `node`, ...
        kind: &'static str,
    },
    /// The app asks for a Python version no interpreter of the host is compatible with.
    #[error("{} asks for Python {asked}, but the build host has no Python of the same major version (it has: {available}); install one, or ask for a version the host has", file.display())]
    PythonVersion {
        /// `.python-version` or `runtime.txt`.
        file: PathBuf,
        /// The version asked for.
        asked: String,
        /// The versions the host has, with their executables, or `none`.
        available: String,
    },
    /// No Procfile, and the stack gives no default `web` process.
    #[error("Procfile: missing, and {reason}")]
    NoProcfile {
        /// Why there is no default, and what to write.
        reason: String,
    },
    /// A slug's contents do not hash to the digest it is named by.
    #[error("{}: slug digest mismatch: expected {expected}, found {actual}; the file is corrupt, rebuild it", path.display())]
    DigestMismatch {
        /// The slug file.
        path: PathBuf,
        /// The digest the slug is named by (or was asked for).
        expected: String,
        /// The digest of what was read.
        actual: String,
    },
}

fn at_entry(entry: &Option<PathBuf>) -> String {
    match entry {
        Some(e) => format!(" at entry `{}`", e.display()),
        None => String::new(),
    }
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BuildError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsafe_entry(entry: impl Into<PathBuf>, reason: Unsafe) -> Self {
        BuildError::UnsafeEntry {
            entry: entry.into(),
            reason,
        }
    }

    /// The archive entry this error is about, if it is about one.
    pub fn entry(&self) -> Option<&std::path::Path> {
        match self {
            BuildError::UnsafeEntry { entry, .. }
            | BuildError::TooLarge { entry, .. }
            | BuildError::TooManyEntries { entry, .. } => Some(entry),
            BuildError::Archive { entry, .. } => entry.as_deref(),
            _ => None,
        }
    }
}
