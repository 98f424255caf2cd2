//! The one place that collects exit statuses: `waitid(2)` on a thread of its own.
//!
//! dozen marks itself a child subreaper, so processes orphaned by its children (a daemon that
//! double-forked, a `setsid` child whose parent exited) become dozen's children instead of
//! init's, where they can still be found and stopped. Someone must collect their exit statuses
//! too, or they linger as zombies. This thread waits for any child, hands the status of a
//! registered child to its waiter, and quietly reaps the rest.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::exit::ExitStatus;

/// Shared registry of children whose exit someone awaits.
#[derive(Debug, Default)]
pub(crate) struct Reaper {
    waiting: Mutex<HashMap<i32, oneshot::Sender<ExitStatus>>>,
    wake: Condvar,
}

static REAPER: OnceLock<Arc<Reaper>> = OnceLock::new();

impl Reaper {
    /// The process-wide reaper, started on first use.
    pub(crate) fn get() -> io::Result<Arc<Reaper>> {
        if let Some(r) = REAPER.get() {
            return Ok(r.clone());
        }
        let reaper = Arc::new(Reaper::default());
        let mut started = None;
        let r = REAPER.get_or_init(|| {
            // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integer arguments.
            unsafe {
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            }
            let for_thread = reaper.clone();
            started = Some(
                std::thread::Builder::new()
                    .name("dozen-reaper".into())
                    .spawn(move || for_thread.run()),
            );
            reaper
        });
        if let Some(Err(e)) = started {
            return Err(e);
        }
        Ok(r.clone())
    }

    /// Lock the registry. Hold the guard across spawning a child and registering it, so that a
    /// child that exits at once is not reaped before its waiter is known.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<i32, oneshot::Sender<ExitStatus>>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A child was spawned: wake the thread if it was idle.
    pub(crate) fn notify(&self) {
        self.wake.notify_all();
    }

    fn run(&self) {
        loop {
            // Peek at a child that has exited without collecting it yet.
            // SAFETY: siginfo_t is plain data; waitid writes into it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: valid pointer to a siginfo_t; flags are valid for waitid.
            let rc =
                unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if rc != 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                // No children at all: sleep until one is spawned (or an orphan may have been
                // handed to us; look again soon).
                let guard = self.lock();
                let _ = self.wake.wait_timeout(guard, Duration::from_millis(200));
                continue;
            }
            // SAFETY: waitid succeeded, so si_pid is set for the exited child.
            let pid = unsafe { info.si_pid() };
            if pid <= 0 {
                continue;
            }
            // Take the lock before collecting: a spawner holds it until its child is registered.
            let mut waiting = self.lock();
            let mut status: libc::c_int = 0;
            // SAFETY: plain syscall on a pid we just saw exit.
            let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if got == pid {
                if let Some(tx) = waiting.remove(&pid) {
                    let _ = tx.send(ExitStatus::from_raw(status));
                }
            }
        }
    }
}
