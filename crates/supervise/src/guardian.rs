//! The guardian: a tiny process that outlives dozen only to clean up after it.
//!
//! If dozen itself is killed with SIGKILL, it cannot stop its processes. Its direct children
//! die with it (`PR_SET_PDEATHSIG`), but their children would live on. So dozen starts a small
//! `sh` script whose standard input is a pipe that only dozen holds. dozen tells it, a line at a
//! time, which cgroups and process groups it created. When the pipe closes without the clean
//! goodbye line, dozen died: the guardian kills every cgroup and process group it was told of.
//!
//! On Linux on x86_64 and aarch64 the guardian is a freestanding program of a few kilobytes
//! (`guardian/main.rs`, built by `build.rs`) that dozen carries inside itself and runs from a
//! memfd: it holds about 50 KB of memory where `sh` holds about 1.7 MB. The `sh` script below
//! speaks the same protocol and stands in wherever the program cannot be built or run.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

const SCRIPT: &str = r#"
trap '' INT TERM HUP QUIT
cgs=''; pgs=''
while read -r kind arg; do
  case "$kind" in
    c) cgs="$cgs $arg" ;;
    p) pgs="$pgs $arg" ;;
    u) n=''; for p in $pgs; do [ "$p" = "$arg" ] || n="$n $p"; done; pgs=$n ;;
    x) exit 0 ;;
  esac
done
for c in $cgs; do [ -e "$c/cgroup.kill" ] && echo 1 > "$c/cgroup.kill"; done 2>/dev/null
for p in $pgs; do kill -9 "-$p"; done 2>/dev/null
for c in $cgs; do
  i=0
  while [ -d "$c" ] && [ $i -lt 50 ]; do
    for d in "$c"/*/; do [ -d "$d" ] && rmdir "$d"; done 2>/dev/null
    rmdir "$c" 2>/dev/null || sleep 0.1
    i=$((i+1))
  done
done
"#;

/// Standard input a pipe from dozen, no output, its own process group.
fn quiet(mut cmd: Command) -> Command {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    cmd
}

/// The embedded guardian program, run from an anonymous in-memory file.
#[cfg(dozen_guardian_bin)]
mod program {
    use std::ffi::CStr;
    use std::fs::File;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dozen-guardian"));

    /// Start it, or `None` where the kernel will not run it (no memfd, memfds not executable,
    /// no `/proc`), so that the caller falls back to `sh`.
    pub(super) fn spawn() -> Option<Child> {
        let name: &CStr = c"dozen-guardian";
        // MFD_EXEC asks for an executable memfd where `vm.memfd_noexec` would default to not;
        // kernels before 6.3 do not know the flag and refuse it.
        const MFD_EXEC: libc::c_uint = 0x10;
        let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | MFD_EXEC) };
        if fd < 0 {
            fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        }
        if fd < 0 {
            return None;
        }
        let mut file = unsafe { File::from_raw_fd(fd) };
        file.write_all(PROGRAM).ok()?;
        // The kernel refuses to run a file that is open for writing: run it through a
        // read-only descriptor and close the writable one first.
        let path = format!("/proc/self/fd/{}", file.as_raw_fd());
        let reader = File::open(&path).ok()?;
        drop(file);
        let run = format!("/proc/self/fd/{}", reader.as_raw_fd());
        let mut cmd = super::quiet(Command::new(run));
        cmd.arg0("dozen-guardian");
        let child = cmd.spawn().ok();
        drop(reader);
        child
    }
}

#[cfg(not(dozen_guardian_bin))]
mod program {
    pub(super) fn spawn() -> Option<std::process::Child> {
        None
    }
}

/// The handle dozen keeps: the write end of the guardian's standard input.
#[derive(Debug)]
pub(crate) struct Guardian {
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Option<Child>>,
}

impl Guardian {
    /// Start the guardian in its own process group (so a Ctrl-C at the terminal does not reach
    /// it) with no output.
    pub(crate) fn start() -> io::Result<Guardian> {
        // `DOZEN_GUARDIAN=sh` picks the script even where the program runs (for kernels that
        // forbid executing memfds in ways dozen cannot detect, and to test the script).
        let want_sh = std::env::var_os("DOZEN_GUARDIAN").is_some_and(|v| v == "sh");
        let mut child = match (!want_sh).then(program::spawn).flatten() {
            Some(child) => child,
            None => quiet(Command::new("/bin/sh"))
                .arg("-c")
                .arg("eval \"$DOZEN_GUARDIAN_SCRIPT\"")
                .arg("dozen-guardian")
                .env("DOZEN_GUARDIAN_SCRIPT", SCRIPT)
                .spawn()?,
        };
        let stdin = child.stdin.take();
        Ok(Guardian {
            stdin: Mutex::new(stdin),
            child: Mutex::new(Some(child)),
        })
    }

    fn say(&self, line: &str) {
        let mut stdin = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = stdin.as_mut() {
            if s.write_all(line.as_bytes()).is_err() {
                *stdin = None;
            }
        }
    }

    /// Remember a cgroup directory to kill if dozen dies.
    pub(crate) fn watch_cgroup(&self, dir: &Path) {
        if let Some(d) = dir.to_str() {
            if !d.contains(char::is_whitespace) {
                self.say(&format!("c {d}\n"));
            }
        }
    }

    /// Remember a process group to kill if dozen dies.
    pub(crate) fn watch_group(&self, pgid: i32) {
        self.say(&format!("p {pgid}\n"));
    }

    /// Forget a process group that is gone (its id may be reused).
    pub(crate) fn forget_group(&self, pgid: i32) {
        self.say(&format!("u {pgid}\n"));
    }

    /// dozen is exiting cleanly: tell the guardian to exit without killing anything.
    pub(crate) fn dismiss(&self) {
        self.say("x\n");
        let mut stdin = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        *stdin = None;
        // The reaper thread collects the guardian's exit status; drop the handle only.
        let _ = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The guardian's pid, so that sweeps of dozen's children leave it alone.
    pub(crate) fn pid(&self) -> Option<i32> {
        self.child
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.id() as i32)
    }
}
