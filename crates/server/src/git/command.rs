//! Running `git` on the server: every git process goes through the supervisor (which reaps
//! every child of the server), with an environment of its own, never the user's git config.

use std::path::Path;

use dozen_core::command::shell_quote;
use dozen_logs::Stream;
use dozen_supervise::{Attached, ExitStatus, OutputChunk, ProcessSpec, Stop};
use tokio::sync::{mpsc, watch};

use crate::platform::{Platform, PlatformError};

/// The most stderr kept of a git process, for messages.
pub(crate) const STDERR_LIMIT: usize = 8 * 1024;

/// The environment every git process of the server starts from: no system or global config
/// (the server's own `~/.gitconfig` must not change how apps' repositories behave), no
/// prompts, plain messages.
pub(crate) fn base_env() -> Vec<(String, String)> {
    [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("LANG", "C.UTF-8"),
        ("HOME", "/nonexistent"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_TERMINAL_PROMPT", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A git process to run: `git ARGS` in `cwd`, with `env` on top of [`base_env`].
pub(crate) fn spec(
    name: &str,
    args: &[&str],
    cwd: &Path,
    env: Vec<(String, String)>,
) -> ProcessSpec {
    let words: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let mut all = base_env();
    all.extend(env);
    ProcessSpec {
        name: name.to_string(),
        command: format!("exec git {}", words.join(" ")),
        env: all,
        cwd: cwd.to_path_buf(),
        port: None,
        color: 0,
        clear_env: true,
        log: None,
        confine: None,
        limits: None,
    }
}

/// What a short git command printed.
#[derive(Debug)]
pub(crate) struct GitOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl GitOutput {
    /// Its stdout as trimmed text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }
}

/// Run `git ARGS` to its end and collect its output: at most `limit` bytes of stdout (more is
/// an error: a command run this way prints little) and [`STDERR_LIMIT`] of stderr.
pub(crate) async fn run(
    p: &Platform,
    args: &[&str],
    cwd: &Path,
    env: Vec<(String, String)>,
    limit: usize,
) -> Result<GitOutput, PlatformError> {
    let spec = spec("git", args, cwd, env);
    let (out_tx, mut out_rx) = mpsc::channel::<OutputChunk>(16);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(1);
    drop(stdin_tx);
    let (_stop_tx, stop_rx) = watch::channel(Stop::Running);
    let process = p.runtime.supervisor().run_attached(
        spec,
        stop_rx,
        Attached {
            stdin: stdin_rx,
            output: Some(out_tx),
        },
    );
    let read = async {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut too_much = false;
        while let Some(chunk) = out_rx.recv().await {
            match chunk.stream {
                Stream::Stdout if stdout.len() + chunk.bytes.len() <= limit => {
                    stdout.extend_from_slice(&chunk.bytes)
                }
                Stream::Stdout => too_much = true,
                _ => {
                    let room = STDERR_LIMIT.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&chunk.bytes[..chunk.bytes.len().min(room)]);
                }
            }
        }
        (stdout, stderr, too_much)
    };
    let (status, (stdout, stderr, too_much)) = tokio::join!(process, read);
    if too_much {
        return Err(PlatformError::internal(
            format!("running git {}", args.join(" ")),
            format!("it printed more than {limit} bytes"),
        ));
    }
    Ok(GitOutput {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
    })
}

/// Run `git ARGS` and fail unless it succeeds; its trimmed stdout.
pub(crate) async fn check(
    p: &Platform,
    args: &[&str],
    cwd: &Path,
    env: Vec<(String, String)>,
) -> Result<String, PlatformError> {
    let out = run(p, args, cwd, env, 64 * 1024).await?;
    if !out.status.success() {
        return Err(PlatformError::internal(
            format!("git {}", args.join(" ")),
            format!("{}: {}", out.status, out.stderr),
        ));
    }
    Ok(out.text())
}
