//! Resource limits per process: memory, CPU time and the number of processes and threads.
//!
//! Three cases, chosen once when the supervisor starts ([`LimitSupport`]):
//!
//! - **cgroup v2** with the `memory` controller (and `cpu`, `pids` where available) delegated
//!   to dozen's cgroup: the limits are written into each process's own cgroup (the box it is
//!   stopped with): `memory.max` (and `memory.swap.max = 0`), `cpu.max`, `pids.max`; a kill
//!   by the out-of-memory killer shows in `memory.events` (`oom_kill`).
//! - **cgroup v1** hierarchies for `memory`, `cpu` and `pids` that dozen may write (root on a
//!   host with the legacy or hybrid layout): one directory per process in each, holding
//!   `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes`), `cpu.cfs_quota_us` over
//!   `cpu.cfs_period_us`, `pids.max`; kills show in `memory.oom_control` (`oom_kill`).
//! - **none**: processes run without limits, and the caller says so.
//!
//! Either way the kernel enforces the limits: a process over its memory is killed by the
//! out-of-memory killer of its cgroup, and the supervisor reports it (Heroku's R15).

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::cgroup::Cgroup;

/// `cpu.cfs_period_us` / the period of `cpu.max`: 100 ms.
const CPU_PERIOD_US: u64 = 100_000;

/// What one process may use; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory in bytes (resident memory and page cache charged to it).
    pub memory: Option<u64>,
    /// CPU time in thousandths of one CPU (`500` = half a CPU).
    pub cpu_millis: Option<u32>,
    /// Processes and threads.
    pub pids: Option<u32>,
    /// Said in the event when the memory limit kills the process: what the limit is called and
    /// how to raise it (`size tiny; resize with dozen ps:resize web=1x`).
    pub note: Option<String>,
}

/// How this host enforces [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSupport {
    /// cgroup v2 controllers delegated to dozen.
    CgroupV2,
    /// cgroup v1 hierarchies dozen may write.
    CgroupV1,
    /// Neither: limits are not enforced.
    None,
}

impl LimitSupport {
    /// `cgroup v2`, `cgroup v1`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSupport::CgroupV2 => "cgroup v2",
            LimitSupport::CgroupV1 => "cgroup v1",
            LimitSupport::None => "none",
        }
    }

    /// Whether limits are enforced.
    pub fn enforced(self) -> bool {
        self != LimitSupport::None
    }

    /// What to tell the operator when limits are not enforced.
    pub fn warning(self) -> Option<&'static str> {
        (self == LimitSupport::None).then_some(
            "process sizes and build memory limits are NOT enforced on this host: dozen needs \
             cgroup v2 with the memory, cpu and pids controllers delegated to its cgroup, or \
             cgroup v1 memory, cpu and pids hierarchies it may write (run it as root); \
             processes run without memory, CPU or process limits",
        )
    }
}

/// Reads a process's current memory from its cgroup, for `ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryGauge {
    file: PathBuf,
}

impl MemoryGauge {
    /// Bytes charged to the process and everything it started, now (`None` once its cgroup
    /// is gone).
    pub fn current(&self) -> Option<u64> {
        read_u64(&self.file)
    }

    /// Seconds of CPU time the process's cgroup has used, with cgroup v2 (`cpu.stat`, in the
    /// same directory); `None` with cgroup v1, whose CPU accounting is in another hierarchy.
    pub fn cpu_seconds(&self) -> Option<f64> {
        if self.file.file_name()? != "memory.current" {
            return None;
        }
        let stat = fs::read_to_string(self.file.with_file_name("cpu.stat")).ok()?;
        let usec: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))?
            .trim()
            .parse()
            .ok()?;
        Some(usec as f64 / 1e6)
    }
}

/// Where limits go on this host.
#[derive(Debug)]
pub(crate) enum LimitRoot {
    /// Into each process's own cgroup v2 box.
    V2,
    /// Into a directory per process below these, one per hierarchy.
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
}

impl LimitRoot {
    /// Find out how limits can be set: cgroup v2 controllers in `boxes` (dozen's own cgroup v2
    /// directory, before any child is made in it), else cgroup v1. `DOZEN_CGROUPS=off` turns
    /// both off.
    pub(crate) fn create(boxes: Option<&Path>) -> Option<LimitRoot> {
        if std::env::var_os("DOZEN_CGROUPS").is_some_and(|v| v == "off" || v == "0") {
            return None;
        }
        if let Some(dir) = boxes {
            if enable_v2(dir) {
                return Some(LimitRoot::V2);
            }
        }
        create_v1()
    }

    pub(crate) fn support(&self) -> LimitSupport {
        match self {
            LimitRoot::V2 => LimitSupport::CgroupV2,
            LimitRoot::V1 { .. } => LimitSupport::CgroupV1,
        }
    }

    /// A cgroup (or one per hierarchy) for one process, with `limits` written in. With cgroup
    /// v2, `boxed` is the process's own cgroup and the limits go there.
    pub(crate) fn group(
        &self,
        name: &str,
        boxed: Option<&Cgroup>,
        limits: &Limits,
    ) -> io::Result<LimitGroup> {
        match self {
            LimitRoot::V2 => {
                let dir = boxed
                    .map(|c| c.dir().to_path_buf())
                    .ok_or_else(|| io::Error::other("no cgroup v2 directory for the process"))?;
                if let Some(bytes) = limits.memory {
                    write(&dir, "memory.max", &bytes.to_string())?;
                    // Without swap the limit is the limit (a no-op where there is no swap).
                    let _ = write(&dir, "memory.swap.max", "0");
                }
                if let Some(millis) = limits.cpu_millis {
                    let _ = write(
                        &dir,
                        "cpu.max",
                        &format!("{} {CPU_PERIOD_US}", quota_us(millis)),
                    );
                }
                if let Some(n) = limits.pids {
                    let _ = write(&dir, "pids.max", &n.to_string());
                }
                Ok(LimitGroup {
                    memory_dir: dir,
                    v2: true,
                    joined: Vec::new(),
                    limits: limits.clone(),
                })
            }
            LimitRoot::V1 { memory, cpu, pids } => {
                let leaf = unique_name(name);
                let mut group = LimitGroup {
                    memory_dir: memory.join(&leaf),
                    v2: false,
                    joined: Vec::new(),
                    limits: limits.clone(),
                };
                fs::create_dir(&group.memory_dir)?;
                group.joined.push(group.memory_dir.clone());
                if let Some(bytes) = limits.memory {
                    let dir = &group.memory_dir;
                    write(dir, "memory.limit_in_bytes", &bytes.to_string())?;
                    // Memory plus swap, where swap accounting is on: no way around the limit.
                    let _ = write(dir, "memory.memsw.limit_in_bytes", &bytes.to_string());
                }
                if let (Some(root), Some(millis)) = (cpu, limits.cpu_millis) {
                    let dir = root.join(&leaf);
                    if fs::create_dir(&dir).is_ok() {
                        group.joined.push(dir.clone());
                        let _ = write(&dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string());
                        let _ = write(&dir, "cpu.cfs_quota_us", &quota_us(millis).to_string());
                    }
                }
                if let (Some(root), Some(n)) = (pids, limits.pids) {
                    let dir = root.join(&leaf);
                    if fs::create_dir(&dir).is_ok() {
                        group.joined.push(dir.clone());
                        let _ = write(&dir, "pids.max", &n.to_string());
                    }
                }
                Ok(group)
            }
        }
    }

    /// Remove dozen's (empty) directories, when everything has exited.
    pub(crate) fn remove(&self) {
        if let LimitRoot::V1 { memory, cpu, pids } = self {
            for dir in [Some(memory), cpu.as_ref(), pids.as_ref()]
                .into_iter()
                .flatten()
            {
                if let Ok(entries) = fs::read_dir(dir) {
                    for e in entries.flatten() {
                        if e.path().is_dir() {
                            let _ = fs::remove_dir(e.path());
                        }
                    }
                }
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

/// The cgroup(s) holding one process's limits.
#[derive(Debug, Clone)]
pub(crate) struct LimitGroup {
    memory_dir: PathBuf,
    v2: bool,
    /// cgroup v1 directories the process joins (the v2 box is joined on its own).
    joined: Vec<PathBuf>,
    limits: Limits,
}

impl LimitGroup {
    /// `cgroup.procs` of each v1 directory, opened for the child to join before exec.
    pub(crate) fn procs_fds(&self) -> io::Result<Vec<OwnedFd>> {
        self.joined
            .iter()
            .map(|d| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
                    .map(OwnedFd::from)
            })
            .collect()
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn gauge(&self) -> MemoryGauge {
        MemoryGauge {
            file: self.memory_dir.join(if self.v2 {
                "memory.current"
            } else {
                "memory.usage_in_bytes"
            }),
        }
    }

    /// The most memory used since the last [`LimitGroup::reset_peak`] (v1), or ever (v2).
    pub(crate) fn peak(&self) -> Option<u64> {
        read_u64(&self.memory_dir.join(if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        }))
    }

    /// Start counting the peak again (v1; v2 kernels keep one peak per cgroup).
    pub(crate) fn reset_peak(&self) {
        if !self.v2 {
            let _ = write(&self.memory_dir, "memory.max_usage_in_bytes", "0");
        }
    }

    /// How many processes the out-of-memory killer has killed in this cgroup.
    pub(crate) fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        fs::read_to_string(self.memory_dir.join(file))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Remove the v1 directories (a no-op while a process remains in one).
    pub(crate) fn remove(&self) {
        for d in &self.joined {
            let _ = fs::remove_dir(d);
        }
    }
}

fn quota_us(millis: u32) -> u64 {
    (u64::from(millis) * CPU_PERIOD_US / 1000).max(1000)
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    fs::write(dir.join(file), value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(file).display())))
}

fn read_u64(file: &Path) -> Option<u64> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// `web.1-7`: a directory name no other process of this dozen uses.
fn unique_name(name: &str) -> String {
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
    format!("{safe}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Enable the memory (required), cpu and pids controllers for the children of `dir`.
fn enable_v2(dir: &Path) -> bool {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| available.split_whitespace().any(|a| a == c);
    if !has("memory") {
        return false;
    }
    for c in ["memory", "cpu", "pids"] {
        if has(c) {
            let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
    fs::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "memory")
}

/// A directory for this supervisor in each writable v1 hierarchy (memory is required).
fn create_v1() -> Option<LimitRoot> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SUPERVISORS: AtomicU64 = AtomicU64::new(0);
    let n = SUPERVISORS.fetch_add(1, Ordering::Relaxed);
    let leaf = if n == 0 {
        format!("dozen.{}", std::process::id())
    } else {
        format!("dozen.{}.{n}", std::process::id())
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let make = |controller: &str, probe: &str| -> Option<PathBuf> {
        let parent = v1_dir(&mountinfo, &own, controller)?;
        let dir = parent.join(&leaf);
        fs::create_dir(&dir).ok()?;
        if !dir.join(probe).exists() {
            let _ = fs::remove_dir(&dir);
            return None;
        }
        Some(dir)
    };
    let memory = make("memory", "memory.limit_in_bytes")?;
    Some(LimitRoot::V1 {
        memory,
        cpu: make("cpu", "cpu.cfs_quota_us"),
        pids: make("pids", "pids.max"),
    })
}

/// dozen's own directory in the v1 hierarchy of `controller`: its mount point joined with
/// dozen's path there (relative to the mount's root, as in a container).
fn v1_dir(mountinfo: &str, own_cgroups: &str, controller: &str) -> Option<PathBuf> {
    let (root, mount) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut r = right.split_whitespace();
        if r.next() != Some("cgroup") {
            return None;
        }
        let options = r.nth(1)?;
        if !options.split(',').any(|o| o == controller) {
            return None;
        }
        let mut l = left.split_whitespace();
        let root = l.nth(3)?;
        let mount = l.next()?;
        Some((root.to_string(), PathBuf::from(mount)))
    })?;
    let path = own_cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.trim().to_string())
    })?;
    let relative = path
        .strip_prefix(root.as_str())
        .filter(|_| root != "/")
        .unwrap_or(&path);
    Some(mount.join(relative.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /kubepods/pod1 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "4:memory:/kubepods/pod1/c1\n2:cpu,cpuacct:/user\n0::/\n";

    #[test]
    fn v1_directories_follow_the_mount_root() {
        assert_eq!(
            v1_dir(MOUNTINFO, OWN, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/c1"))
        );
        assert_eq!(
            v1_dir(MOUNTINFO, OWN, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user"))
        );
        assert_eq!(v1_dir(MOUNTINFO, OWN, "pids"), None);
    }

    #[test]
    fn cpu_quota_per_period() {
        assert_eq!(quota_us(1000), 100_000);
        assert_eq!(quota_us(250), 25_000);
        assert_eq!(quota_us(1), 1000);
    }
}
