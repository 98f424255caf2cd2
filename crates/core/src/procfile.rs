//! The Procfile: one process type per line, `name: command`.
//!
//! Rules (the format foreman, honcho and Heroku read):
//!
//! - a line is `name: command`; the name is everything before the first `:`,
//!   the command everything after it, both trimmed of surrounding whitespace;
//! - names use `A-Z a-z 0-9 _ -` ([`validate_process_type`]);
//! - the command is kept verbatim (it is later run by `sh -c`), so `:` and `#`
//!   inside it are part of it;
//! - blank lines and lines whose first non-blank character is `#` are skipped;
//! - CRLF line endings and a UTF-8 byte order mark are tolerated;
//! - a Procfile must define at least one process type, each name only once.
//!
//! Error messages quote the process type name and position, never the command
//! (a command line may carry a secret).

use std::path::{Path, PathBuf};

use crate::name::{NameError, validate_process_type};
use crate::text_file::{self, IoReason, ReadFailure};

/// One process type: `web: bundle exec puma`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    /// The name before the `:` (`web`).
    pub name: String,
    /// The command after the `:`, trimmed; run with `sh -c`.
    pub command: String,
    /// The 1-based line the type is defined on.
    pub line: usize,
}

/// A parsed Procfile: its process types in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Procfile {
    /// Process types in the order the file lists them. That order decides port
    /// offsets (see [`crate::PortPlan`]).
    pub types: Vec<ProcessType>,
}

/// Why a Procfile could not be read or parsed. Every variant carries the path;
/// those about one line carry the 1-based line number.
#[derive(Debug, thiserror::Error)]
pub enum ProcfileError {
    /// The file could not be read (missing, unreadable, a directory).
    #[error("{}: cannot read the Procfile ({}); create it or point to it with --procfile", path.display(), IoReason(*kind))]
    Read {
        /// Path that was read.
        path: PathBuf,
        /// What kind of failure, e.g. "entity not found".
        kind: std::io::ErrorKind,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{}:{line}: the Procfile is not valid UTF-8; save it as UTF-8 text", path.display())]
    NotUtf8 {
        /// Path of the file.
        path: PathBuf,
        /// Line holding the first invalid byte.
        line: usize,
    },
    /// A line that is neither blank, a comment nor `name: command`.
    #[error("{}:{line}: expected `name: command` but the line has no `:`; write it like `web: ./server` or comment it out with `#`", path.display())]
    MissingColon {
        /// Path of the file.
        path: PathBuf,
        /// Offending line.
        line: usize,
    },
    /// Nothing before the `:`.
    #[error("{}:{line}: the process type name before `:` is empty; write it like `web: ./server`", path.display())]
    EmptyName {
        /// Path of the file.
        path: PathBuf,
        /// Offending line.
        line: usize,
    },
    /// The name has a character outside `A-Z a-z 0-9 _ -`.
    #[error("{}:{line}: invalid process type name: {reason}; names may only use letters, digits, `_` and `-`", path.display())]
    InvalidName {
        /// Path of the file.
        path: PathBuf,
        /// Offending line.
        line: usize,
        /// Which character is wrong.
        reason: NameError,
    },
    /// `web:` with nothing after the colon.
    #[error("{}:{line}: process type `{name}` has an empty command; put the command after the `:`", path.display())]
    EmptyCommand {
        /// Path of the file.
        path: PathBuf,
        /// Offending line.
        line: usize,
        /// The process type name.
        name: String,
    },
    /// A name defined twice.
    #[error("{}:{line}: duplicate process type `{name}` (first defined on line {first_line}); rename or remove one of them", path.display())]
    Duplicate {
        /// Path of the file.
        path: PathBuf,
        /// Line of the second definition.
        line: usize,
        /// The process type name.
        name: String,
        /// Line of the first definition.
        first_line: usize,
    },
    /// No process types at all.
    #[error("{}: the Procfile defines no process types; add a line like `web: ./server`", path.display())]
    Empty {
        /// Path of the file.
        path: PathBuf,
    },
}

impl ProcfileError {
    /// The 1-based line the error is about, if it is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Read { .. } | Self::Empty { .. } => None,
            Self::NotUtf8 { line, .. }
            | Self::MissingColon { line, .. }
            | Self::EmptyName { line, .. }
            | Self::InvalidName { line, .. }
            | Self::EmptyCommand { line, .. }
            | Self::Duplicate { line, .. } => Some(*line),
        }
    }

    /// The path of the Procfile the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. }
            | Self::NotUtf8 { path, .. }
            | Self::MissingColon { path, .. }
            | Self::EmptyName { path, .. }
            | Self::InvalidName { path, .. }
            | Self::EmptyCommand { path, .. }
            | Self::Duplicate { path, .. }
            | Self::Empty { path } => path,
        }
    }
}

impl Procfile {
    /// Parse Procfile text. `path` is only used in error messages.
    ///
    /// ```
    /// use dozen_core::Procfile;
    /// let p = Procfile::parse("web: ./server -p $PORT\n# jobs\nworker: ./work\n", "Procfile".as_ref())?;
    /// assert_eq!(p.types[1].name, "worker");
    /// assert_eq!(p.get("web").map(|t| t.command.as_str()), Some("./server -p $PORT"));
    /// # Ok::<(), dozen_core::ProcfileError>(())
    /// ```
    pub fn parse(src: &str, path: &Path) -> Result<Procfile, ProcfileError> {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        let mut types: Vec<ProcessType> = Vec::new();
        for (i, raw) in src.split('\n').enumerate() {
            let line = i + 1;
            let text = raw.strip_suffix('\r').unwrap_or(raw).trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let path = || path.to_path_buf();
            let Some((name, command)) = text.split_once(':') else {
                return Err(ProcfileError::MissingColon { path: path(), line });
            };
            let (name, command) = (name.trim(), command.trim());
            match validate_process_type(name) {
                Ok(()) => {}
                Err(NameError::Empty) => {
                    return Err(ProcfileError::EmptyName { path: path(), line });
                }
                Err(reason) => {
                    return Err(ProcfileError::InvalidName {
                        path: path(),
                        line,
                        reason,
                    });
                }
            }
            if command.is_empty() {
                return Err(ProcfileError::EmptyCommand {
                    path: path(),
                    line,
                    name: name.to_owned(),
                });
            }
            if let Some(first) = types.iter().find(|t| t.name == name) {
                return Err(ProcfileError::Duplicate {
                    path: path(),
                    line,
                    name: name.to_owned(),
                    first_line: first.line,
                });
            }
            types.push(ProcessType {
                name: name.to_owned(),
                command: command.to_owned(),
                line,
            });
        }
        if types.is_empty() {
            return Err(ProcfileError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Procfile { types })
    }

    /// Read and parse the Procfile at `path`. A missing or unreadable file is
    /// an error naming the path.
    pub fn load(path: &Path) -> Result<Procfile, ProcfileError> {
        let text = text_file::read(path).map_err(|failure| match failure {
            ReadFailure::Io(source) => ProcfileError::Read {
                path: path.to_path_buf(),
                kind: source.kind(),
                source,
            },
            ReadFailure::NotUtf8 { line } => ProcfileError::NotUtf8 {
                path: path.to_path_buf(),
                line,
            },
        })?;
        Self::parse(&text, path)
    }

    /// The process type called `name`.
    pub fn get(&self, name: &str) -> Option<&ProcessType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Position of `name` in file order (0-based); decides its port offset.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.types.iter().position(|t| t.name == name)
    }

    /// Names of all process types, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Procfile, ProcfileError> {
        Procfile::parse(src, Path::new("Procfile"))
    }

    fn pt(name: &str, command: &str, line: usize) -> ProcessType {
        ProcessType {
            name: name.into(),
            command: command.into(),
            line,
        }
    }

    #[test]
    fn basic_file_order_and_lookup() {
        let p = parse("web: bundle exec puma -p $PORT\nworker: ./work\n").unwrap();
        assert_eq!(
            p.types,
            vec![
                pt("web", "bundle exec puma -p $PORT", 1),
                pt("worker", "./work", 2)
            ]
        );
        assert_eq!(p.index_of("worker"), Some(1));
        assert_eq!(p.index_of("nope"), None);
        assert_eq!(p.get("web").unwrap().line, 1);
        assert!(p.get("nope").is_none());
        assert_eq!(p.names().collect::<Vec<_>>(), ["web", "worker"]);
    }

    #[test]
    fn whitespace_comments_blank_lines_crlf_bom() {
        let src = "\u{feff}# header\r\n\r\n   \t\r\n  web :  ./server  \r\n\t# indented comment\r\nclock:ruby clock.rb\r\n";
        let p = parse(src).unwrap();
        assert_eq!(
            p.types,
            vec![pt("web", "./server", 4), pt("clock", "ruby clock.rb", 6)]
        );
    }

    #[test]
    fn command_keeps_colons_and_hashes() {
        let p = parse("web: echo a:b # not a comment\nurl: curl http://x:80/#f").unwrap();
        assert_eq!(p.types[0].command, "echo a:b # not a comment");
        assert_eq!(p.types[1].command, "curl http://x:80/#f");
    }

    #[test]
    fn no_trailing_newline_and_names() {
        let p = parse("Web_2-x: run").unwrap();
        assert_eq!(p.types, vec![pt("Web_2-x", "run", 1)]);
    }

    #[test]
    fn duplicate() {
        let e = parse("web: a\n\nweb: b\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert_eq!(
            e.to_string(),
            "Procfile:3: duplicate process type `web` (first defined on line 1); rename or remove one of them"
        );
        assert!(matches!(e, ProcfileError::Duplicate { first_line: 1, .. }));
    }

    #[test]
    fn empty_command() {
        let e = parse("web: a\nworker:   \n").unwrap_err();
        assert!(
            matches!(e, ProcfileError::EmptyCommand { line: 2, ref name, .. } if name == "worker")
        );
        assert!(
            e.to_string()
                .starts_with("Procfile:2: process type `worker`")
        );
    }

    #[test]
    fn invalid_name_does_not_echo_the_line() {
        let e = parse("\nmy web: ./server --token=s3cr3t\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        let msg = e.to_string();
        assert!(
            msg.starts_with("Procfile:2: invalid process type name"),
            "{msg}"
        );
        assert!(msg.contains("position 3"), "{msg}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
        let e = parse("web.1: x").unwrap_err();
        assert!(matches!(e, ProcfileError::InvalidName { line: 1, .. }));
    }

    #[test]
    fn empty_name() {
        let e = parse("web: a\n: ./x\n").unwrap_err();
        assert!(matches!(e, ProcfileError::EmptyName { line: 2, .. }));
    }

    #[test]
    fn missing_colon_does_not_echo_the_line() {
        let e = parse("web: a\n\nrun-this --password hunter2\n").unwrap_err();
        assert!(matches!(e, ProcfileError::MissingColon { line: 3, .. }));
        let msg = e.to_string();
        assert!(msg.starts_with("Procfile:3: expected `name: command`"));
        assert!(!msg.contains("hunter2"));
    }

    #[test]
    fn empty_procfile() {
        for src in ["", "\n\n", "# only a comment\n", "\u{feff}"] {
            let e = parse(src).unwrap_err();
            assert!(matches!(e, ProcfileError::Empty { .. }), "{src:?}");
            assert_eq!(e.line(), None);
            assert_eq!(e.path(), Path::new("Procfile"));
        }
    }

    #[test]
    fn load_missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Procfile.dev");
        let e = Procfile::load(&path).unwrap_err();
        assert_eq!(e.path(), path);
        assert_eq!(e.line(), None);
        assert!(e.to_string().contains("Procfile.dev"), "{e}");
        assert!(e.to_string().contains("(no such file)"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn load_reads_file_and_reports_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Procfile");
        std::fs::write(&path, "web: ./server\nweb: again\n").unwrap();
        let e = Procfile::load(&path).unwrap_err();
        assert_eq!(e.path(), path);
        assert_eq!(e.line(), Some(2));
        std::fs::write(&path, "web: ./server\n").unwrap();
        assert_eq!(Procfile::load(&path).unwrap().types.len(), 1);
    }

    #[test]
    fn load_rejects_non_utf8_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Procfile");
        std::fs::write(&path, b"web: a\nworker: \xff\n").unwrap();
        let e = Procfile::load(&path).unwrap_err();
        assert!(matches!(e, ProcfileError::NotUtf8 { line: 2, .. }), "{e}");
    }
}
