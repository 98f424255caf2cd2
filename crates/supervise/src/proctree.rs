//! Reading the process tree from `/proc`: who is whose child.

use std::collections::HashMap;
use std::fs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one reading of the process table serves every caller. Stopping many processes
/// asks the same question for each of them every few milliseconds; one walk of /proc answers
/// them all.
const SNAPSHOT_TTL: Duration = Duration::from_millis(15);

/// Pid -> parent pid.
type ParentMap = Arc<HashMap<i32, i32>>;

static SNAPSHOT: Mutex<Option<(Instant, ParentMap)>> = Mutex::new(None);

/// Parent of every live process, from a snapshot at most [`SNAPSHOT_TTL`] old.
fn parents() -> ParentMap {
    let mut snap = SNAPSHOT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, map)) = snap.as_ref() {
        if at.elapsed() < SNAPSHOT_TTL {
            return map.clone();
        }
    }
    let map = Arc::new(read_parents());
    *snap = Some((Instant::now(), map.clone()));
    map
}

/// Parent of every live process, read from `/proc/<pid>/stat`.
fn read_parents() -> HashMap<i32, i32> {
    let mut map = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return map;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = read_ppid(pid) {
            map.insert(pid, ppid);
        }
    }
    map
}

/// The parent pid of `pid`, or None if it is gone.
pub(crate) fn read_ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        // A zombie has already exited; it needs reaping, not killing.
        return None;
    }
    fields.next()?.parse().ok()
}

/// Every live descendant of `root` (children, their children, …), not `root` itself.
pub(crate) fn descendants(root: i32) -> Vec<i32> {
    let parents = parents();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, &ppid) in parents.iter() {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if let Some(kids) = children.get(&p) {
            for &k in kids {
                out.push(k);
                stack.push(k);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_parent() {
        let me = std::process::id() as i32;
        assert!(read_ppid(me).is_some());
        // The test process has no child at this point in this test, usually; just check that
        // the walk does not include ourselves.
        assert!(!descendants(me).contains(&me));
    }
}
