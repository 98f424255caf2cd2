//! Running a host tool (`rabbitmqctl`, `pg_dump`, `pg_restore`, `mysqldump`, `mysql`) from
//! inside `dozen server`.
//!
//! The server is a child subreaper whose reaper thread collects the exit status of every child,
//! so `wait()` on a child of ours may find it already gone (`ECHILD`). The tool therefore runs
//! under `sh`, which waits for it itself and writes its exit status as the last line of stderr;
//! the output, read to its end, is what counts. At most [`MAX_OUTPUT`] bytes of each stream
//! are kept; the rest is read and dropped, so the tool never blocks on a full pipe.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};

use crate::AddonError;

/// The most output of one stream kept.
pub(crate) const MAX_OUTPUT: usize = 64 * 1024;

const MARK: &str = "dozen-exit=";

/// What a tool said, and how it ended.
#[derive(Debug)]
pub(crate) struct Output {
    /// Its exit code (`None` when it was killed by a signal).
    pub code: Option<i32>,
    /// Its stdout (up to [`MAX_OUTPUT`] bytes).
    pub stdout: String,
    /// Its stderr without the exit-status line (up to [`MAX_OUTPUT`] bytes).
    pub stderr: String,
}

impl Output {
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Stderr, or stdout when stderr is empty, for an error message.
    pub(crate) fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let text: String = text.trim().chars().take(2000).collect();
        match self.code {
            Some(c) => format!("exit code {c}: {text}"),
            None => format!("killed by a signal: {text}"),
        }
    }
}

/// What a tool reads on its stdin.
pub(crate) enum Input<'a> {
    /// Nothing (stdin is closed at once).
    Nothing,
    /// One line of text (a password).
    Text(&'a str),
    /// A file, line by line, each line passed through `filter` (a dump to load).
    Lines(&'a Path, fn(&str) -> std::borrow::Cow<'_, str>),
}

async fn feed(tool: &'static str, input: Input<'_>, mut to: ChildStdin) -> Result<(), AddonError> {
    match input {
        Input::Nothing => Ok(()),
        // A tool that exits without reading says why on stderr; a broken pipe adds nothing.
        Input::Text(text) => {
            let _ = to.write_all(format!("{text}\n").as_bytes()).await;
            Ok(())
        }
        Input::Lines(file, filter) => {
            let opened = tokio::fs::File::open(file)
                .await
                .map_err(|e| AddonError::Tool {
                    tool,
                    message: format!("{}: {e}", file.display()),
                })?;
            let mut lines = BufReader::new(opened).lines();
            while let Some(line) = lines.next_line().await.map_err(|e| AddonError::Tool {
                tool,
                message: format!("reading {}: {e}", file.display()),
            })? {
                let line = filter(&line);
                if to.write_all(line.as_bytes()).await.is_err()
                    || to.write_all(b"\n").await.is_err()
                {
                    break;
                }
            }
            Ok(())
        }
    }
}

async fn read_bounded(mut r: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Run `program ARGS` with `envs` added, `stdin` as its input.
pub(crate) async fn run(
    tool: &'static str,
    program: &str,
    args: &[&OsStr],
    envs: &[(&str, String)],
    stdin: Input<'_>,
) -> Result<Output, AddonError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("\"$0\" \"$@\"; echo \"{MARK}$?\" >&2"))
        .arg(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| AddonError::Tool {
        tool,
        message: format!("cannot start /bin/sh to run it: {e}"),
    })?;
    let (Some(input), Some(out), Some(err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(AddonError::Tool {
            tool,
            message: "its pipes were not made".into(),
        });
    };
    // Fed while its output is read, so that neither side waits on a full pipe.
    let (fed, stdout, stderr) = tokio::join!(
        // `input` is dropped at the end of `feed`: the tool sees the end of its input.
        feed(tool, stdin, input),
        read_bounded(out),
        read_bounded(err)
    );
    fed?;
    // The reaper may have collected `sh` already; the status line is what counts.
    let _ = child.wait().await;
    let mut lines: Vec<&str> = stderr.lines().collect();
    let code = match lines.last().and_then(|l| l.strip_prefix(MARK)) {
        Some(c) => {
            let c = c.trim().parse::<i32>().ok();
            lines.pop();
            // sh reports a child killed by signal N as 128+N.
            c.filter(|c| *c < 128)
        }
        None => {
            return Err(AddonError::Tool {
                tool,
                message: format!(
                    "it ended without its exit status: {}",
                    stderr.trim().chars().take(2000).collect::<String>()
                ),
            });
        }
    };
    Ok(Output {
        code,
        stdout,
        stderr: lines.join("\n"),
    })
}
