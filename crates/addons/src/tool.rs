//! Running a host tool (`rabbitmqctl`, `pg_dump`, `pg_restore`) from inside `dozen server`.
//!
//! The server is a child subreaper whose reaper thread collects the exit status of every child,
//! so `wait()` on a child of ours may find it already gone (`ECHILD`). The tool therefore runs
//! under `sh`, which waits for it itself and writes its exit status as the last line of stderr;
//! the output, read to its end, is what counts. At most [`MAX_OUTPUT`] bytes of each stream
//! are kept; the rest is read and dropped, so the tool never blocks on a full pipe.

use std::ffi::OsStr;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

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

/// Run `program ARGS` with `envs` added, `stdin` as its input (or none).
pub(crate) async fn run(
    tool: &'static str,
    program: &str,
    args: &[&OsStr],
    envs: &[(&str, String)],
    stdin: Option<&str>,
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
    if let Some(mut input) = child.stdin.take() {
        if let Some(text) = stdin {
            let _ = input.write_all(format!("{text}\n").as_bytes()).await;
        }
        drop(input);
    }
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(AddonError::Tool {
            tool,
            message: "its output pipes were not made".into(),
        });
    };
    let (stdout, stderr) = tokio::join!(read_bounded(out), read_bounded(err));
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
