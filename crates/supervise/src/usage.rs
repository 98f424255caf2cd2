//! What a running process uses now, for `ps` and metrics: memory and CPU time, from the cgroup
//! dozen made for it where it has one, else from `/proc`, summed over the process and every
//! live descendant.
//!
//! From `/proc`, memory is resident memory (`statm`), and pages two processes share (a forking
//! server's workers) count in each; CPU time is each live process's user and system time plus
//! that of the children it has waited for, so time of a descendant that exited and was reaped
//! outside the tree is missed. From a cgroup, memory is what the kernel charges to it (page
//! cache included) and, with cgroup v2, CPU time is the cgroup's own total.

use std::fs;

use crate::supervisor::{Phase, ProcessState};

/// A process's use of memory and CPU now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Bytes of memory, with everything it started.
    pub memory: Option<u64>,
    /// Seconds of CPU time (user and system) it and everything it started have used.
    pub cpu_seconds: Option<f64>,
}

impl ProcessState {
    /// What the process uses now; nothing when it is not running (exited, crashed, or between
    /// restarts without a pid).
    pub fn usage(&self) -> Usage {
        let Some(pid) = self
            .pid
            .filter(|_| !matches!(self.phase, Phase::Exited | Phase::Crashed))
            .and_then(|p| i32::try_from(p).ok())
        else {
            return Usage::default();
        };
        let gauge = self.memory.as_ref();
        let (mut memory, mut cpu) = (
            gauge.and_then(|g| g.current()),
            gauge.and_then(|g| g.cpu_seconds()),
        );
        if memory.is_none() || cpu.is_none() {
            let tree = tree_usage(pid);
            memory = memory.or(tree.memory);
            cpu = cpu.or(tree.cpu_seconds);
        }
        Usage {
            memory,
            cpu_seconds: cpu,
        }
    }
}

/// Memory and CPU time of `root` and its live descendants, from `/proc`; `None` for each when
/// `root` is gone.
pub fn tree_usage(root: i32) -> Usage {
    let Some((rss, ticks)) = one(root) else {
        return Usage::default();
    };
    let (mut rss, mut ticks) = (rss, ticks);
    for pid in crate::proctree::descendants(root) {
        if let Some((r, t)) = one(pid) {
            rss += r;
            ticks += t;
        }
    }
    Usage {
        memory: Some(rss.saturating_mul(page_size())),
        cpu_seconds: Some(ticks as f64 / clock_ticks()),
    }
}

/// Resident pages, and clock ticks of CPU time (its own and its waited-for children's).
fn one(pid: i32) -> Option<(u64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3) is index 0, so utime (14) to cstime (17) are 11 to 14.
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some((resident, ticks))
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

fn clock_ticks() -> f64 {
    // SAFETY: as above.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_tree_uses_memory_and_some_cpu() {
        // Burn CPU until the kernel has charged some (it counts in clock ticks), at most 20 s.
        let me = std::process::id() as i32;
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while tree_usage(me).cpu_seconds == Some(0.0)
            && started.elapsed() < std::time::Duration::from_secs(20)
        {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        let usage = tree_usage(me);
        assert!(usage.memory.is_some_and(|m| m > 1 << 20), "{usage:?}");
        assert!(usage.cpu_seconds.is_some_and(|c| c > 0.0), "{usage:?}");
        assert_eq!(tree_usage(i32::MAX), Usage::default());
    }
}
