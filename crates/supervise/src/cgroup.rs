//! Control groups (cgroup v2): a box around each process and everything it starts.
//!
//! A process group is left by anything that calls `setsid` or `setpgid`; a cgroup is not.
//! When dozen may create cgroups below its own (root, or a delegated systemd scope), each
//! process gets `dozen.<pid>/<name>`, and stopping it means signalling every member, then
//! writing `cgroup.kill`. Where cgroups cannot be used, dozen falls back to process groups and
//! the process tree (see `proctree`).

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// dozen's own cgroup directory, `…/dozen.<pid>`, holding one child per process.
#[derive(Debug)]
pub(crate) struct CgroupRoot {
    dir: PathBuf,
}

impl CgroupRoot {
    /// Create dozen's cgroup below the one dozen runs in, if cgroup v2 is mounted and writable.
    /// `DOZEN_CGROUPS=off` in the environment turns this off.
    pub(crate) fn create() -> Option<CgroupRoot> {
        if std::env::var_os("DOZEN_CGROUPS").is_some_and(|v| v == "off" || v == "0") {
            return None;
        }
        let parent = base_cgroup()?;
        // One directory per supervisor: a process that hosts several (tests do) keeps them apart.
        static SUPERVISORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SUPERVISORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = if n == 0 {
            parent.join(format!("dozen.{}", std::process::id()))
        } else {
            parent.join(format!("dozen.{}.{n}", std::process::id()))
        };
        fs::create_dir(&dir).ok()?;
        if !dir.join("cgroup.procs").exists() {
            let _ = fs::remove_dir(&dir);
            return None;
        }
        Some(CgroupRoot { dir })
    }

    /// The directory, for the guardian.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// A new cgroup for one supervised process named `name` (`web.1`). Each call makes its own
    /// directory (`web.1-7`): two processes never share a cgroup, even with the same name (the
    /// old and new `web.1` of a deploy, or `web.1` of two apps), so stopping one never waits
    /// for or kills the other.
    pub(crate) fn child(&self, name: &str) -> io::Result<Cgroup> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = self
            .dir
            .join(format!("{safe}-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir(&dir)?;
        Ok(Cgroup { dir })
    }

    /// Kill everything left in every child and remove the directories.
    pub(crate) fn kill_all(&self) {
        let _ = kill_tree(&self.dir);
    }

    /// Remove the (empty) directories. Called when everything has exited.
    pub(crate) fn remove(&self) {
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = fs::remove_dir(e.path());
                }
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// One process's cgroup.
#[derive(Debug, Clone)]
pub(crate) struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// The directory (limits are written into it with cgroup v2).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Open `cgroup.procs` for writing, for the child to move itself in before exec.
    pub(crate) fn procs_fd(&self) -> io::Result<OwnedFd> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))?;
        Ok(OwnedFd::from(f))
    }

    /// Pids of every process in the cgroup.
    pub(crate) fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// True while any process is in the cgroup.
    pub(crate) fn populated(&self) -> bool {
        match fs::read_to_string(self.dir.join("cgroup.events")) {
            Ok(s) => s.lines().any(|l| l.trim() == "populated 1"),
            Err(_) => !self.pids().is_empty(),
        }
    }

    /// Remove the directory once its processes are gone (a no-op while any remain).
    pub(crate) fn remove(&self) {
        let _ = fs::remove_dir(&self.dir);
    }

    /// SIGKILL every member at once.
    pub(crate) fn kill(&self) {
        let _ = kill_tree(&self.dir);
    }
}

fn kill_tree(dir: &Path) -> io::Result<()> {
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() {
        let mut f = OpenOptions::new().write(true).open(kill_file)?;
        f.write_all(b"1")?;
        return Ok(());
    }
    // Kernels before 5.14 have no cgroup.kill: signal each member, children first.
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                let _ = kill_tree(&e.path());
            }
        }
    }
    if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in s.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) with a pid read from the cgroup and a valid signal.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    Ok(())
}

/// The cgroup every supervisor of this process makes its `dozen.<pid>` directory in: the one
/// dozen started in, found once. If that cgroup was delegated to dozen (a systemd unit with
/// `Delegate=yes`) and holds no process but dozen, dozen first moves itself into a leaf of it,
/// `dozen.<pid>.server`, so that the memory, cpu and pids controllers can be handed on to the
/// processes' cgroups: cgroup v2 lets a cgroup other than the root give controllers to its
/// children only while no process lives in it.
fn base_cgroup() -> Option<PathBuf> {
    static BASE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let mount = cgroup2_mount()?;
        let own = own_cgroup()?;
        let parent = mount.join(own.trim_start_matches('/'));
        if parent != mount {
            let _ = hand_on_controllers(&parent);
        }
        Some(parent)
    })
    .clone()
}

/// The controllers dozen wants for its processes' cgroups.
const WANTED: [&str; 3] = ["memory", "cpu", "pids"];

/// What [`hand_on_controllers`] should do, from the files of dozen's cgroup.
#[derive(Debug, PartialEq, Eq)]
enum Handover {
    /// The children get the controllers already, or the cgroup has none to give.
    Nothing,
    /// Another process shares the cgroup: moving it, or leaving it, is not dozen's to decide.
    Shared,
    /// Move dozen into a leaf, then enable these for the children.
    MoveThenEnable(Vec<&'static str>),
}

fn handover(controllers: &str, subtree: &str, procs: &str, own_pid: u32) -> Handover {
    let listed = |list: &str, c: &str| list.split_whitespace().any(|x| x == c);
    if !listed(controllers, "memory") || listed(subtree, "memory") {
        return Handover::Nothing;
    }
    if procs
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .any(|pid| pid != own_pid)
    {
        return Handover::Shared;
    }
    Handover::MoveThenEnable(
        WANTED
            .into_iter()
            .filter(|c| listed(controllers, c))
            .collect(),
    )
}

/// Move dozen into `parent/dozen.<pid>.server` and enable the wanted controllers in `parent`'s
/// `cgroup.subtree_control`; on failure, move back and leave things as they were.
fn hand_on_controllers(parent: &Path) -> io::Result<()> {
    let read = |f: &str| fs::read_to_string(parent.join(f)).unwrap_or_default();
    let pid = std::process::id();
    let enable = match handover(
        &read("cgroup.controllers"),
        &read("cgroup.subtree_control"),
        &read("cgroup.procs"),
        pid,
    ) {
        Handover::MoveThenEnable(c) => c,
        Handover::Nothing | Handover::Shared => return Ok(()),
    };
    let leaf = parent.join(format!("dozen.{pid}.server"));
    match fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    fs::write(leaf.join("cgroup.procs"), pid.to_string())?;
    let subtree = parent.join("cgroup.subtree_control");
    let mut enabled = false;
    for c in enable {
        enabled |= fs::write(&subtree, format!("+{c}")).is_ok() && c == "memory";
    }
    if !enabled {
        let _ = fs::write(parent.join("cgroup.procs"), pid.to_string());
        let _ = fs::remove_dir(&leaf);
        return Err(io::Error::other("memory controller could not be enabled"));
    }
    Ok(())
}

/// Where the cgroup v2 hierarchy is mounted, from `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in info.lines() {
        // Fields: id parent major:minor root mount-point options ... - fstype source super
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next() == Some("cgroup2") {
            return left.split_whitespace().nth(4).map(PathBuf::from);
        }
    }
    None
}

/// dozen's own cgroup v2 path, from the `0::` line of `/proc/self/cgroup`.
fn own_cgroup() -> Option<String> {
    let s = fs::read_to_string("/proc/self/cgroup").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

/// A C string for a path, for use between fork and exec.
#[allow(dead_code)]
pub(crate) fn c_path(p: &Path) -> Option<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delegated_cgroup_holding_only_dozen_is_handed_on() {
        assert_eq!(
            handover("cpuset cpu io memory pids", "", "4242\n", 4242),
            Handover::MoveThenEnable(vec!["memory", "cpu", "pids"])
        );
        assert_eq!(
            handover("memory pids", "", "", 4242),
            Handover::MoveThenEnable(vec!["memory", "pids"])
        );
    }

    #[test]
    fn nothing_moves_without_memory_or_when_the_children_have_it() {
        assert_eq!(handover("cpu pids", "", "4242\n", 4242), Handover::Nothing);
        assert_eq!(
            handover("memory cpu pids", "memory pids", "", 4242),
            Handover::Nothing
        );
    }

    #[test]
    fn a_cgroup_shared_with_other_processes_is_left_alone() {
        // A login shell's scope: dozen does not move the shell or its siblings.
        assert_eq!(
            handover("memory cpu pids", "", "4242\n977\n", 4242),
            Handover::Shared
        );
    }
}
