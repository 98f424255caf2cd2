//! Starting one child: its own process group, its cgroup, death with dozen, clean signals.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};

use tokio::sync::oneshot;

use crate::cgroup::Cgroup;
use crate::confine::Confinement;
use crate::exit::ExitStatus;
use crate::reaper::Reaper;

/// A running child.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) pid: i32,
    pub(crate) stdin: Option<std::process::ChildStdin>,
    pub(crate) stdout: Option<ChildStdout>,
    pub(crate) stderr: Option<ChildStderr>,
    pub(crate) exit: oneshot::Receiver<ExitStatus>,
    pub(crate) in_cgroup: bool,
}

/// Start `sh -c command` with `env` added to dozen's environment (or alone, with
/// `clear_env`), in `cwd`, stdin from a pipe (`stdin_pipe`) or
/// /dev/null and stdout/stderr on pipes.
///
/// Where a child is put before it runs: its cgroup, the cgroup v1 directories holding its limits
/// (their `cgroup.procs`, opened by the caller), and its app's user and view of the system.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Placement<'a> {
    pub(crate) cgroup: Option<&'a Cgroup>,
    pub(crate) limit_groups: &'a [std::os::fd::OwnedFd],
    pub(crate) confine: Option<&'a Confinement>,
}

/// In the child, before exec: a new process group; membership of `cgroup` and of the cgroup v1
/// directories whose `cgroup.procs` are open in `limit_groups` (of `placement`); SIGKILL when dozen
/// dies (`PR_SET_PDEATHSIG`); the signal mask emptied and the usual signals back to their
/// defaults (dozen ignores SIGPIPE, which a child must not inherit); then, with `confine`, its
/// app's user and view of the system ([`Confinement`]).
pub(crate) fn spawn_shell(
    command: &str,
    env: &[(String, String)],
    clear_env: bool,
    cwd: &Path,
    placement: Placement<'_>,
    stdin_pipe: bool,
) -> io::Result<Spawned> {
    let Placement {
        cgroup,
        limit_groups,
        confine,
    } = placement;
    let reaper = Reaper::get()?;
    let confined = confine.map(|c| c.prepare(cwd)).transpose()?;
    let mut cmd = Command::new("/bin/sh");
    if clear_env {
        cmd.env_clear();
    }
    cmd.arg("-c")
        .arg(exec_form(command))
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin_pipe {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);

    // Opened here, used in the child, closed on exec (std opens files close-on-exec).
    let procs_fd = cgroup.and_then(|c| c.procs_fd().ok());
    let procs_raw = procs_fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1);
    // cgroup v1 directories holding its limits (`cgroup.procs` of each, opened by the caller).
    let limit_raw: Vec<i32> = limit_groups.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: getpid is always safe.
    let parent = unsafe { libc::getpid() };

    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (write, prctl, getppid, sigprocmask, signal, _exit, and those of
    // `Prepared::enter`) on values prepared beforehand.
    // It never fails, so std never has to report a pre-exec error (and wait for the child).
    unsafe {
        cmd.pre_exec(move || {
            if procs_raw >= 0 {
                libc::write(procs_raw, b"0".as_ptr().cast(), 1);
            }
            for &fd in &limit_raw {
                libc::write(fd, b"0".as_ptr().cast(), 1);
            }
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != parent {
                // dozen died between fork and prctl.
                libc::_exit(1);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            for sig in [
                libc::SIGPIPE,
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGHUP,
                libc::SIGQUIT,
                libc::SIGCHLD,
                libc::SIGUSR1,
                libc::SIGUSR2,
                libc::SIGTTIN,
                libc::SIGTTOU,
            ] {
                libc::signal(sig, libc::SIG_DFL);
            }
            // After the cgroup: joining it is the server's right, not the app user's.
            if let Some(c) = &confined {
                if let Err(failed) = c.enter() {
                    failed.exit();
                }
            }
            Ok(())
        });
    }

    let (tx, rx) = oneshot::channel();
    let mut waiting = reaper.lock();
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    waiting.insert(pid, tx);
    drop(waiting);
    reaper.notify();
    drop(procs_fd);
    Ok(Spawned {
        pid,
        stdin: child.stdin.take(),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        exit: rx,
        in_cgroup: procs_raw >= 0,
    })
}

/// Send `sig` to process `pid`; a process that is already gone is not an error.
pub(crate) fn signal(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) with a positive pid and a valid signal number.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Send `sig` to process group `pgid`.
pub(crate) fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: killpg(2) with a group id above 1 and a valid signal number.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}

/// True while process group `pgid` has a member.
pub(crate) fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pgid > 1 && unsafe { libc::killpg(pgid, 0) } == 0
}

/// The command line handed to `sh -c`: a simple command gets `exec ` in front, so the shell
/// replaces itself with the program. Signals then reach the program directly (not a shell that
/// dies of SIGTERM while the program is still shutting down), the exit status is the
/// program's own, and each process costs one pid instead of two. Anything with shell syntax
/// (`;`, `&&`, pipes, redirections, subshells, assignments in front, builtins) is left as is.
pub(crate) fn exec_form(command: &str) -> String {
    const SYNTAX: &[char] = &[
        ';', '&', '|', '<', '>', '(', ')', '{', '}', '`', '\n', '#', '\\', '*', '?', '[',
    ];
    const BUILTINS: &[&str] = &[
        "!", ".", ":", "alias", "break", "case", "cd", "command", "continue", "eval", "exec",
        "exit", "export", "for", "getopts", "if", "local", "read", "readonly", "return", "set",
        "shift", "source", "times", "trap", "ulimit", "umask", "unset", "until", "wait", "while",
    ];
    let trimmed = command.trim();
    let first = trimmed.split_whitespace().next().unwrap_or("");
    let simple = !trimmed.is_empty()
        && !trimmed.contains(SYNTAX)
        && !first.contains('=')
        && !first.contains('$')
        && !first.starts_with(['\'', '"'])
        && !BUILTINS.contains(&first);
    if simple {
        format!("exec {trimmed}")
    } else {
        command.to_string()
    }
}

/// The process group of `pid`, from `/proc/<pid>/stat`.
pub(crate) fn pgid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state, ppid, pgrp.
    rest.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::exec_form;

    #[test]
    fn simple_commands_are_execed() {
        assert_eq!(exec_form("python3 web.py"), "exec python3 web.py");
        assert_eq!(
            exec_form("bundle exec puma -p $PORT"),
            "exec bundle exec puma -p $PORT"
        );
        assert_eq!(
            exec_form("  gunicorn 'app:create()'"),
            "  gunicorn 'app:create()'"
        );
    }

    #[test]
    fn shell_syntax_is_left_alone() {
        for cmd in [
            "echo a; echo b",
            "a && b",
            "a | b",
            "a > log",
            "FOO=1 ./run",
            "cd sub && ./run",
            "trap '' TERM",
            "$CMD arg",
            "(sub)",
            "ls *.py",
            "echo # comment",
        ] {
            assert_eq!(exec_form(cmd), cmd, "{cmd}");
        }
    }
}
