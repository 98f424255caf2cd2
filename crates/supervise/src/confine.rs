//! Confining a process to one app: its own user and group, a private `/tmp`, SysV IPC of its
//! own, the platform's data directory out of sight except the app's own directories, and a
//! `/proc` that shows only the processes of its own user.
//!
//! Everything happens in the child between fork and exec, without a container runtime: a new
//! mount namespace (and IPC namespace), tmpfs mounts, bind mounts, a procfs instance mounted
//! with `hidepid=invisible`, then `setgroups`, `setgid` and `setuid`. It needs root (the server
//! runs as root when it gives each app a user of its own).
//!
//! No PID namespace: its first process is its init, which ignores every signal it has no
//! handler for (a `sleep` or a shell as pid 1 would ignore the SIGTERM of a graceful stop), so
//! each process would need an init shim of its own, and pids would stop meaning the same to
//! the supervisor, `dozen ps` and the app. Each app having its own user, `hidepid` already
//! hides every other app's processes (and the server's), and `kill` across users fails.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Directories every confined process gets as a fresh, empty tmpfs of its own (those that exist
/// on the host).
const PRIVATE_DIRS: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// The most directories one process may have exposed.
const MAX_EXPOSED: usize = 8;

/// Who a process runs as and what of the file system it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// The user it runs as (never 0).
    pub uid: u32,
    /// Its group (and only group).
    pub gid: u32,
    /// Directories replaced by an empty one (the platform's data directory): nothing in them is
    /// visible but `expose`.
    pub hide: Vec<PathBuf>,
    /// Directories inside `hide` that stay visible at the same path (the app's release
    /// directory, its build directory and cache). Absolute.
    pub expose: Vec<PathBuf>,
}

impl Confinement {
    /// Run as `uid`:`gid`, seeing the whole file system but with a private `/tmp`.
    pub fn user(uid: u32, gid: u32) -> Confinement {
        Confinement {
            uid,
            gid,
            hide: Vec::new(),
            expose: Vec::new(),
        }
    }

    /// Hide `dir` (an absolute path) but what is exposed inside it.
    pub fn hiding(mut self, dir: impl Into<PathBuf>) -> Confinement {
        self.hide.push(dir.into());
        self
    }

    /// Keep `dir` (an absolute path inside a hidden directory) visible.
    pub fn exposing(mut self, dir: impl Into<PathBuf>) -> Confinement {
        self.expose.push(dir.into());
        self
    }

    /// Everything the child needs, made in the parent (allocation is not safe after fork):
    /// C strings of every path, and a descriptor of every exposed directory, opened before the
    /// hidden directories are covered.
    pub(crate) fn prepare(&self, cwd: &Path) -> io::Result<Prepared> {
        if self.uid == 0 {
            return Err(io::Error::other("refusing to confine a process as root"));
        }
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::other(format!("{}: a NUL byte in the path", p.display())))
        };
        let private = PRIVATE_DIRS
            .iter()
            .map(Path::new)
            .filter(|p| p.is_dir())
            .map(c)
            .collect::<io::Result<Vec<_>>>()?;
        let mut hide = Vec::new();
        for dir in &self.hide {
            hide.push((
                ancestors(dir).map(c).collect::<io::Result<Vec<_>>>()?,
                c(dir)?,
            ));
        }
        if self.expose.len() > MAX_EXPOSED {
            return Err(io::Error::other(format!(
                "at most {MAX_EXPOSED} directories can be exposed to a confined process"
            )));
        }
        let mut expose = Vec::new();
        for dir in &self.expose {
            if !dir.is_dir() {
                return Err(with_path(dir, io::Error::from(io::ErrorKind::NotFound)));
            }
            expose.push(Exposed {
                dirs: ancestors(dir).map(c).collect::<io::Result<Vec<_>>>()?,
                target: c(dir)?,
            });
        }
        Ok(Prepared {
            uid: self.uid,
            gid: self.gid,
            private,
            hide,
            expose,
            cwd: c(cwd)?,
            parent: std::process::id() as libc::pid_t,
        })
    }

    /// Confine a process started with `std::process::Command` the same way (for short probes,
    /// such as asking a toolchain its version as the app's build will). A child that cannot be
    /// confined says why on its standard error and exits with status 126 before running
    /// anything.
    pub fn apply_to(&self, cmd: &mut std::process::Command, cwd: &Path) -> io::Result<()> {
        let prepared = self.prepare(cwd)?;
        // SAFETY: `enter` makes only async-signal-safe system calls on memory prepared above.
        unsafe {
            cmd.pre_exec(move || {
                if let Err(failed) = prepared.enter() {
                    failed.exit();
                }
                Ok(())
            });
        }
        Ok(())
    }
}

impl Confinement {
    /// Give `dir` and everything in it to the confined user (links themselves, never what they
    /// point at), and make `dir` private to it (mode 0700). Creates `dir` if missing.
    pub fn own(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| with_path(dir, e))?;
        chown_tree(dir, self.uid, self.gid)?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| with_path(dir, e))
    }

    /// [`Confinement::own`], unless `dir` belongs to the user already (a cache kept between
    /// builds holds many files: walk it only when it changes hands).
    pub fn own_once(&self, dir: &Path) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() && m.uid() == self.uid && m.gid() == self.gid => Ok(()),
            _ => self.own(dir),
        }
    }
}

impl Confinement {
    /// Whether the confined user may run the program at `path`: every directory on the way to
    /// it (and to what its links point at) lets the user through, and the file lets the user
    /// execute it. (A toolchain in the server's own home directory is usually out of reach.)
    pub fn may_run(&self, path: &Path) -> bool {
        let Ok(real) = std::fs::canonicalize(path) else {
            return false;
        };
        let dirs_ok = [path, real.as_path()].iter().all(|p| {
            p.ancestors()
                .skip(1)
                .all(|d| self.permits(d, 0o1).unwrap_or(false))
        });
        dirs_ok && self.permits(&real, 0o1).unwrap_or(false)
    }

    /// Whether `path`'s mode grants `bits` (1 execute, 2 write, 4 read) to the user.
    fn permits(&self, path: &Path, bits: u32) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        let mode = m.mode();
        let granted = if m.uid() == self.uid {
            mode >> 6
        } else if m.gid() == self.gid {
            mode >> 3
        } else {
            mode
        };
        Ok(granted & bits == bits)
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| with_path(path, e))?;
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| with_path(path, e))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| with_path(path, e))? {
            let entry = entry.map_err(|e| with_path(path, e))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// `dir` and each of its ancestors below `/`, outermost first.
fn ancestors(dir: &Path) -> impl Iterator<Item = &Path> {
    let mut all: Vec<&Path> = dir.ancestors().filter(|p| p.parent().is_some()).collect();
    all.reverse();
    all.into_iter()
}

#[derive(Debug)]
struct Exposed {
    /// Its ancestors and itself, to create inside the hidden directory.
    dirs: Vec<CString>,
    target: CString,
}

/// `/proc/self/fd/N` as a C string in `buf`, without allocating.
fn fd_path(fd: libc::c_int, buf: &mut [u8; 32]) -> *const libc::c_char {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = fd.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    buf.as_ptr().cast()
}

/// A [`Confinement`] ready to enter in a child.
#[derive(Debug)]
pub(crate) struct Prepared {
    uid: u32,
    gid: u32,
    private: Vec<CString>,
    /// Each hidden directory with its ancestors (created if a private tmpfs covered them).
    hide: Vec<(Vec<CString>, CString)>,
    expose: Vec<Exposed>,
    cwd: CString,
    parent: libc::pid_t,
}

/// Which step of entering the confinement failed, with `errno`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failed {
    pub(crate) step: &'static str,
    pub(crate) errno: i32,
}

impl Failed {
    /// Say on standard error which step failed, and exit 126 (as a shell does for a command it
    /// found but could not run). Async-signal-safe: for the child between fork and exec.
    pub(crate) fn exit(self) -> ! {
        let mut digits = [0u8; 12];
        let mut n = self.errno.unsigned_abs();
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || at == 0 {
                break;
            }
        }
        let parts: [&[u8]; 5] = [
            b"dozen: could not confine the process to its app's user (",
            self.step.as_bytes(),
            b": errno ",
            &digits[at..],
            b")\n",
        ];
        for part in parts {
            // SAFETY: write(2) of a valid buffer to standard error.
            unsafe {
                libc::write(2, part.as_ptr().cast(), part.len());
            }
        }
        // SAFETY: _exit(2) ends the child without running anything of the parent's.
        unsafe { libc::_exit(126) }
    }
}

fn check(step: &'static str, rc: libc::c_int) -> Result<(), Failed> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Failed {
            step,
            errno: io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EPERM),
        })
    }
}

impl Prepared {
    /// Enter the confinement: called in the child between fork and exec, so it makes only
    /// async-signal-safe system calls (unshare, mount, mkdir, setgroups, setgid, setuid,
    /// prctl, chdir) on memory prepared in the parent.
    ///
    /// # Safety
    ///
    /// Only in a child between fork and exec: it changes the calling process's namespaces and
    /// credentials for good.
    pub(crate) unsafe fn enter(&self) -> Result<(), Failed> {
        let none = std::ptr::null::<libc::c_char>();
        // Descriptors of the exposed directories, opened in the new namespace (a bind mount
        // must come from the namespace it is made in) before anything covers them. Closed on
        // exec.
        let mut fds: [libc::c_int; MAX_EXPOSED] = [-1; MAX_EXPOSED];
        // SAFETY (for the block): plain system calls on C strings that live as long as self.
        unsafe {
            check(
                "a mount namespace of its own",
                libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWIPC),
            )?;
            // Nothing mounted here may reach the host's namespace.
            check(
                "making its mounts private",
                libc::mount(
                    none,
                    c"/".as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ),
            )?;
            for (i, e) in self.expose.iter().enumerate() {
                fds[i] = libc::open(
                    e.target.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                );
                if fds[i] < 0 {
                    check("opening the app's own directory", -1)?;
                }
            }
            let tmp_flags = libc::MS_NOSUID | libc::MS_NODEV;
            for dir in &self.private {
                check(
                    "a private /tmp",
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        dir.as_ptr(),
                        c"tmpfs".as_ptr(),
                        tmp_flags,
                        c"mode=1777".as_ptr().cast(),
                    ),
                )?;
            }
            for (dirs, dir) in &self.hide {
                for d in dirs {
                    libc::mkdir(d.as_ptr(), 0o755);
                }
                check(
                    "hiding the platform's data directory",
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        dir.as_ptr(),
                        c"tmpfs".as_ptr(),
                        tmp_flags | libc::MS_NOEXEC,
                        c"mode=0755,size=1m,nr_inodes=4096".as_ptr().cast(),
                    ),
                )?;
            }
            for (i, e) in self.expose.iter().enumerate() {
                for d in &e.dirs {
                    libc::mkdir(d.as_ptr(), 0o755);
                }
                let mut buf = [0u8; 32];
                check(
                    "showing the app's own directory",
                    libc::mount(
                        fd_path(fds[i], &mut buf),
                        e.target.as_ptr(),
                        none,
                        libc::MS_BIND,
                        std::ptr::null(),
                    ),
                )?;
                check(
                    "showing the app's own directory",
                    libc::mount(
                        none,
                        e.target.as_ptr(),
                        none,
                        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV,
                        std::ptr::null(),
                    ),
                )?;
            }
            // A procfs of its own in which other users' processes do not exist.
            let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            if libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                proc_flags,
                c"hidepid=invisible".as_ptr().cast(),
            ) != 0
            {
                // Kernels before 5.8 know only the number.
                check(
                    "a /proc without other users' processes",
                    libc::mount(
                        c"proc".as_ptr(),
                        c"/proc".as_ptr(),
                        c"proc".as_ptr(),
                        proc_flags,
                        c"hidepid=2".as_ptr().cast(),
                    ),
                )?;
            }
            let gid = self.gid as libc::gid_t;
            check("setgroups", libc::setgroups(1, &gid))?;
            check("setgid", libc::setresgid(gid, gid, gid))?;
            let uid = self.uid as libc::uid_t;
            check("setuid", libc::setresuid(uid, uid, uid))?;
            // No way back up through a set-user-ID program.
            check(
                "no_new_privs",
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            )?;
            // Changing credentials cleared the parent-death signal: set it again.
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != self.parent {
                libc::_exit(1);
            }
            // Through the bind mount, as the app's user (also proves it may enter it).
            check("entering its directory", libc::chdir(self.cwd.as_ptr()))?;
        }
        Ok(())
    }
}
