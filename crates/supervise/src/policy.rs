//! When to restart a process, how long to wait first, and when to give up.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::exit::ExitStatus;

/// Which exits are followed by a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never restart: the first exit of any process stops them all (foreman's behaviour).
    Never,
    /// Restart after a non-zero exit or a death by signal; a clean exit ends that process.
    OnFailure,
    /// Restart after every exit.
    Always,
}

/// How processes are restarted and stopped.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Which exits restart.
    pub restart: RestartPolicy,
    /// The delay before the first restart; it doubles with each failure in the window.
    pub backoff_initial: Duration,
    /// The longest delay between restarts.
    pub backoff_max: Duration,
    /// Give up once this many restartable exits happen within `crash_window`.
    pub crash_limit: u32,
    /// The window for `crash_limit`.
    pub crash_window: Duration,
    /// How long a process may take to exit after SIGTERM before SIGKILL.
    pub grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            restart: RestartPolicy::Never,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            crash_limit: 5,
            crash_window: Duration::from_secs(60),
            grace: Duration::from_secs(5),
        }
    }
}

impl Policy {
    /// Whether this exit is followed by a restart under the policy.
    pub fn restarts_after(&self, status: ExitStatus) -> bool {
        match self.restart {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !status.success(),
            RestartPolicy::Always => true,
        }
    }
}

/// What to do after an exit that the policy restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wait this long, then start again. `failures` counts the exits in the window.
    RestartIn { delay: Duration, failures: u32 },
    /// Too many exits within the window.
    GiveUp { failures: u32 },
}

/// The record of recent restartable exits of one process.
#[derive(Debug, Default)]
pub struct CrashHistory {
    exits: VecDeque<Instant>,
}

impl CrashHistory {
    /// Record an exit at `now` and decide.
    pub fn record(&mut self, policy: &Policy, now: Instant) -> Verdict {
        while let Some(&first) = self.exits.front() {
            if now.duration_since(first) > policy.crash_window {
                self.exits.pop_front();
            } else {
                break;
            }
        }
        self.exits.push_back(now);
        let failures = u32::try_from(self.exits.len()).unwrap_or(u32::MAX);
        if failures >= policy.crash_limit.max(1) {
            return Verdict::GiveUp { failures };
        }
        let factor = 1u32 << (failures - 1).min(20);
        let delay = policy
            .backoff_initial
            .checked_mul(factor)
            .unwrap_or(policy.backoff_max)
            .min(policy.backoff_max);
        Verdict::RestartIn { delay, failures }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_gives_up() {
        let policy = Policy {
            restart: RestartPolicy::OnFailure,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            crash_limit: 4,
            crash_window: Duration::from_secs(60),
            grace: Duration::from_secs(1),
        };
        let mut h = CrashHistory::default();
        let t = Instant::now();
        let delays: Vec<_> = (0..3).map(|_| h.record(&policy, t)).collect();
        assert_eq!(
            delays,
            vec![
                Verdict::RestartIn {
                    delay: Duration::from_millis(100),
                    failures: 1
                },
                Verdict::RestartIn {
                    delay: Duration::from_millis(200),
                    failures: 2
                },
                Verdict::RestartIn {
                    delay: Duration::from_millis(350),
                    failures: 3
                },
            ]
        );
        assert_eq!(h.record(&policy, t), Verdict::GiveUp { failures: 4 });
    }

    #[test]
    fn old_exits_leave_the_window() {
        let policy = Policy {
            restart: RestartPolicy::OnFailure,
            crash_limit: 2,
            crash_window: Duration::from_secs(10),
            ..Policy::default()
        };
        let mut h = CrashHistory::default();
        let t = Instant::now();
        assert!(matches!(h.record(&policy, t), Verdict::RestartIn { .. }));
        let later = t + Duration::from_secs(11);
        assert!(matches!(
            h.record(&policy, later),
            Verdict::RestartIn { failures: 1, .. }
        ));
    }

    #[test]
    fn policy_decides_restart() {
        let mut p = Policy::default();
        assert!(!p.restarts_after(ExitStatus::Code(1)));
        p.restart = RestartPolicy::OnFailure;
        assert!(p.restarts_after(ExitStatus::Code(1)));
        assert!(p.restarts_after(ExitStatus::Signal(9)));
        assert!(!p.restarts_after(ExitStatus::Code(0)));
        p.restart = RestartPolicy::Always;
        assert!(p.restarts_after(ExitStatus::Code(0)));
    }
}
