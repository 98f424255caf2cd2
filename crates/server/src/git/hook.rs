//! The `pre-receive` hook and the server talking: one Unix socket per push.
//!
//! When a push's request arrives, the server binds a socket of its own for it in the
//! repositories' directory (mode 0700: only the server's user can reach it) and runs
//! `git http-backend` with three variables the hook reads: the `dozen` binary
//! (`DOZEN_GIT_HOOK_EXE`), the socket (`DOZEN_GIT_PUSH_SOCKET`) and a one-time secret
//! (`DOZEN_GIT_PUSH_SECRET`). The hook ([`pre_receive`]) sends one JSON line: the secret, the
//! ref updates git gave it on stdin and where git keeps the pushed objects until the push is
//! accepted (its quarantine). The server answers with lines: `| text` is output for the pusher,
//! and the last line is `ok`, or `error: why`. The socket accepts one connection and is
//! removed at once; it is gone too when the push ends without running the hook.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::oneshot;

use super::push;
use crate::platform::{Platform, PlatformError};

/// The longest request the hook may send (its ref updates and paths).
const MAX_REQUEST: u64 = 1024 * 1024;
/// The most ref updates one push may carry.
pub const MAX_UPDATES: usize = 1000;
/// How long the app stays locked after the hook has its answer, waiting for git to move the
/// branch and end the push; past it the lock goes anyway.
const REF_UPDATE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
/// The longest Unix socket path Linux accepts (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The variable that names the `dozen` binary the hook runs.
pub const HOOK_EXE_VAR: &str = "DOZEN_GIT_HOOK_EXE";
/// The variable that names the push's socket.
pub const SOCKET_VAR: &str = "DOZEN_GIT_PUSH_SOCKET";
/// The variable that holds the push's secret.
pub const SECRET_VAR: &str = "DOZEN_GIT_PUSH_SECRET";

/// One ref update, as git gives it to `pre-receive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefUpdate {
    /// The ref's value before (all zeros: it did not exist).
    pub old: String,
    /// Its value after (all zeros: it is deleted).
    pub new: String,
    /// `refs/heads/main`.
    #[serde(rename = "ref")]
    pub name: String,
}

/// What the hook sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRequest {
    /// The push's one-time secret.
    pub secret: String,
    /// What the push changes.
    pub updates: Vec<RefUpdate>,
    /// `GIT_OBJECT_DIRECTORY`: the quarantine the pushed objects are in.
    pub object_directory: Option<String>,
    /// `GIT_ALTERNATE_OBJECT_DIRECTORIES`: the repository's own objects.
    pub alternate_object_directories: Option<String>,
}

/// Parse the lines git gives `pre-receive` on stdin: `<old> <new> <ref>`.
pub fn parse_updates(text: &str) -> Result<Vec<RefUpdate>, String> {
    let mut updates = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut words = line.split(' ');
        let (Some(old), Some(new), Some(name), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(format!("line {}: expected `<old> <new> <ref>`", n + 1));
        };
        if !is_object_id(old) || !is_object_id(new) {
            return Err(format!("line {}: not an object id", n + 1));
        }
        if updates.len() == MAX_UPDATES {
            return Err(format!("a push may change at most {MAX_UPDATES} refs"));
        }
        updates.push(RefUpdate {
            old: old.to_string(),
            new: new.to_string(),
            name: name.to_string(),
        });
    }
    Ok(updates)
}

/// 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The all-zero id git uses for "no object".
pub fn is_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// The hook's side (`dozen git-hook pre-receive`): send the push to the server, print what it
/// sends back (git shows it to the pusher as `remote:` lines) and return the exit code: 0 lets
/// git move the branch, anything else refuses the push.
pub fn pre_receive(stdin: impl Read, mut out: impl Write) -> i32 {
    match pre_receive_inner(stdin, &mut out) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(out, "dozen: {message}");
            1
        }
    }
}

fn pre_receive_inner(stdin: impl Read, out: &mut impl Write) -> Result<i32, String> {
    let var = |k: &str| {
        std::env::var(k)
            .map_err(|_| format!("{k} is not set: this hook runs in a push to a dozen server only"))
    };
    let socket = var(SOCKET_VAR)?;
    let secret = var(SECRET_VAR)?;
    let mut text = String::new();
    stdin
        .take(MAX_REQUEST)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the ref updates: {e}"))?;
    let updates = parse_updates(&text)?;
    let request = HookRequest {
        secret,
        updates,
        object_directory: std::env::var("GIT_OBJECT_DIRECTORY").ok(),
        alternate_object_directories: std::env::var("GIT_ALTERNATE_OBJECT_DIRECTORIES").ok(),
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&socket)
        .map_err(|e| format!("reaching the server at {socket}: {e}"))?;
    let mut line = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| format!("sending the push to the server: {e}"))?;
    for reply in BufReader::new(stream).lines() {
        let reply = reply.map_err(|e| format!("reading the server's answer: {e}"))?;
        if let Some(text) = reply.strip_prefix("| ") {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        } else if reply == "|" {
            let _ = writeln!(out);
        } else if reply == "ok" {
            return Ok(0);
        } else if let Some(why) = reply.strip_prefix("error: ") {
            let _ = writeln!(out, "push rejected: {why}");
            return Ok(1);
        }
    }
    Err("the server ended the push without a result; the branch stays where it was".into())
}

/// What the server's side of one push needs.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The variables for `git http-backend` (and so for the hook).
    pub env: Vec<(String, String)>,
}

/// Make the socket of one push to `app`'s repository `repo`, and serve the hook's connection
/// in a task of its own (a pusher who goes away does not stop a deploy half-way). `ended`
/// resolves when `git http-backend` has ended: until then the app stays locked, so the branch
/// moves before another push of the app deploys. `pusher` is the name of the token that
/// pushes: the release the push makes records it.
pub(crate) fn prepare(
    p: &Platform,
    app: &str,
    pusher: &str,
    repo: &Path,
    ended: oneshot::Receiver<()>,
) -> Result<Prepared, PlatformError> {
    let secret = random_hex()?;
    let dir = super::repo::repos_dir(&p.config.data_dir);
    let socket = dir.join(format!(".push-{}.sock", &secret[..16]));
    let path = socket.to_string_lossy().into_owned();
    if path.len() > MAX_SOCKET_PATH {
        return Err(PlatformError::internal(
            "receiving a git push",
            format!(
                "the socket path {path} is longer than {MAX_SOCKET_PATH} bytes: use a shorter DOZEN_DATA_DIR"
            ),
        ));
    }
    let listener = tokio::net::UnixListener::bind(&socket)
        .map_err(|e| PlatformError::internal("receiving a git push", format!("{path}: {e}")))?;
    let exe = hook_exe(
        std::env::current_exe().map_err(|e| PlatformError::internal("receiving a git push", e))?,
    );
    let env = vec![
        (HOOK_EXE_VAR.to_string(), exe.to_string_lossy().into_owned()),
        (SOCKET_VAR.to_string(), path),
        (SECRET_VAR.to_string(), secret.clone()),
    ];
    let (p, app, repo) = (p.clone(), app.to_string(), repo.to_path_buf());
    // As the token that pushes: the release records its name.
    let pusher = pusher.to_string();
    tokio::spawn(dozen_store::acting_as(pusher, async move {
        let mut ended = ended;
        let accepted = tokio::select! {
            a = listener.accept() => Some(a),
            _ = &mut ended => None,
        };
        let _ = std::fs::remove_file(&socket);
        drop(listener);
        let Some(Ok((stream, _))) = accepted else {
            return;
        };
        serve(p, app, repo, secret, stream, ended).await;
    }));
    Ok(Prepared { env })
}

/// The binary the hook runs: the server's own. When that file is gone (a package upgrade
/// replaced it while the server runs, and Linux names it `... (deleted)`), the running binary
/// is still reachable as `/proc/<pid>/exe` for as long as the server lives, which is as long as
/// a push needs it, and it speaks this server's protocol.
fn hook_exe(current: PathBuf) -> PathBuf {
    if current.is_file() {
        current
    } else {
        PathBuf::from(format!("/proc/{}/exe", std::process::id()))
    }
}

async fn serve(
    p: Platform,
    app: String,
    repo: PathBuf,
    secret: String,
    stream: tokio::net::UnixStream,
    ended: oneshot::Receiver<()>,
) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST));
    let request = match reader.read_line(&mut line).await {
        Ok(_) => serde_json::from_str::<HookRequest>(&line).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let request = match request {
        Ok(r) if same(&r.secret, &secret) => r,
        Ok(_) => return,
        Err(e) => {
            let _ = send(&mut write, &format!("error: the hook's request: {e}")).await;
            return;
        }
    };
    let mut out = Output {
        write,
        gone: false,
        stall: p.config.git_stall_timeout,
    };
    let (result, lock) = push::deploy_push(&p, &app, &repo, &request, &mut out).await;
    let last = match result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {}", one_line(&e.report())),
    };
    out.line(&last).await;
    drop(out);
    if lock.is_some() {
        let _ = tokio::time::timeout(REF_UPDATE_WAIT, ended).await;
    }
    drop(lock);
}

/// Where a push's output goes: the hook's socket. A hook that has gone away (the pusher hung
/// up), or that takes more than `DOZEN_GIT_STALL_TIMEOUT` to take a line (the pusher reads
/// nothing), gets nothing more, and the deploy goes on.
pub(crate) struct Output {
    write: OwnedWriteHalf,
    gone: bool,
    stall: std::time::Duration,
}

impl Output {
    /// One line for the pusher.
    pub async fn say(&mut self, text: &str) {
        for l in text.lines() {
            self.line(&format!("| {l}")).await;
        }
        if text.is_empty() {
            self.line("|").await;
        }
    }

    async fn line(&mut self, text: &str) {
        if !self.gone {
            let sent = tokio::time::timeout(self.stall, send(&mut self.write, text)).await;
            self.gone = !matches!(sent, Ok(Ok(())));
        }
    }
}

async fn send(write: &mut OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Compare secrets in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn random_hex() -> Result<String, PlatformError> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| PlatformError::internal("making a push secret", e))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn ref_updates_are_parsed_and_bad_lines_named() {
        let u = parse_updates(&format!("{Z} {A} refs/heads/main\n")).expect("ok");
        assert_eq!(
            u,
            vec![RefUpdate {
                old: Z.into(),
                new: A.into(),
                name: "refs/heads/main".into()
            }]
        );
        assert!(is_zero(&u[0].old) && !is_zero(&u[0].new));
        let e = parse_updates(&format!("{Z} {A} refs/heads/main\nnonsense\n")).unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = parse_updates(&format!("{Z} HEAD refs/heads/main\n")).unwrap_err();
        assert!(e.contains("not an object id"), "{e}");
        let many: String = (0..=MAX_UPDATES)
            .map(|i| format!("{Z} {A} refs/heads/b{i}\n"))
            .collect();
        assert!(parse_updates(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn a_replaced_binary_is_run_as_the_server_runs_it() {
        let here = std::env::current_exe().expect("exe");
        assert_eq!(hook_exe(here.clone()), here);
        let mut gone = here.into_os_string();
        gone.push(" (deleted)");
        let proc = hook_exe(PathBuf::from(gone));
        assert_eq!(
            proc,
            PathBuf::from(format!("/proc/{}/exe", std::process::id()))
        );
        assert!(proc.is_file());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
