//! The disk a build may use: the size of its build directory, checked while the steps run.
//!
//! The directory is measured (blocks allocated, without following symbolic links) about once a
//! second, less often when measuring takes long (a large `node_modules`), and once more after
//! each step. A build over its limit is stopped like a cancelled one (SIGTERM, grace, SIGKILL)
//! and fails with [`BuildError::DiskLimit`](crate::BuildError::DiskLimit). Between two checks a
//! build may briefly go over.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dozen_supervise::Stop;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The shortest pause between two measurements.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Bytes allocated on disk under `dir` (0 for what cannot be read).
pub(crate) fn usage(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            total = total.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// Watches one build directory; stops the build through `stop` when it grows over `limit`.
pub(crate) struct DiskWatch {
    dir: PathBuf,
    limit: u64,
    over: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl DiskWatch {
    pub(crate) fn start(dir: PathBuf, limit: u64, stop: Arc<watch::Sender<Stop>>) -> DiskWatch {
        let over = Arc::new(AtomicU64::new(0));
        let (d, o) = (dir.clone(), over.clone());
        let task = tokio::spawn(async move {
            loop {
                let dir = d.clone();
                let started = Instant::now();
                let Ok(used) = tokio::task::spawn_blocking(move || usage(&dir)).await else {
                    return;
                };
                if used > limit {
                    o.store(used, Ordering::SeqCst);
                    let _ = stop.send(Stop::Graceful { signal: None });
                    return;
                }
                tokio::time::sleep(MIN_INTERVAL.max(started.elapsed() * 4)).await;
            }
        });
        DiskWatch {
            dir,
            limit,
            over,
            task,
        }
    }

    /// `Some(bytes used)` once the directory is over the limit (measuring again now, so a step
    /// that wrote and exited between two checks is caught).
    pub(crate) async fn over(&self) -> Option<u64> {
        let seen = self.over.load(Ordering::SeqCst);
        if seen > 0 {
            return Some(seen);
        }
        let dir = self.dir.clone();
        let used = tokio::task::spawn_blocking(move || usage(&dir))
            .await
            .unwrap_or(0);
        (used > self.limit).then_some(used)
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }
}

impl Drop for DiskWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_files_below_without_following_links() {
        let dir = tempfile::tempdir().expect("tmp");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("sub/a"), vec![1u8; 200_000]).expect("write");
        std::os::unix::fs::symlink("/usr", dir.path().join("usr")).expect("link");
        let used = usage(dir.path());
        assert!((200_000..1_000_000).contains(&used), "{used}");
    }
}
