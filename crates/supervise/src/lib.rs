//! Process supervision for dozen: the part that `dozen start` on a laptop and `dozen server` on
//! a host share (factor X, dev/prod parity, as code).
//!
//! A [`Supervisor`] runs [`ProcessSpec`]s. Each process:
//!
//! - runs as `/bin/sh -c COMMAND` in a process group of its own, and in a cgroup of its own
//!   where cgroup v2 can be written (`dozen.<pid>/<name>` below dozen's cgroup);
//! - dies with dozen even if dozen is killed with SIGKILL: the direct child through
//!   `PR_SET_PDEATHSIG`, everything else through a small guardian process that kills dozen's
//!   cgroups and process groups when dozen's end of a pipe closes;
//! - has its stdout and stderr read line by line into the log channel (`dozen_logs`), or, for a
//!   one-off a client is attached to, sent to that client byte for byte
//!   ([`Supervisor::run_attached`]);
//! - runs within its [`Limits`] (memory, CPU, processes) where cgroup v2 controllers are
//!   delegated to dozen or cgroup v1 hierarchies are writable ([`LimitSupport`]); when the
//!   kernel kills it for memory, an event says so (Heroku's R15) before it is restarted; what
//!   it uses (memory, CPU time) is read from its cgroup or `/proc` ([`ProcessState::usage`]);
//! - is restarted by the [`Policy`] with exponential backoff, until it exits too often within
//!   a window and dozen gives up, printing its last lines;
//! - is stopped with SIGTERM to its group and every process it started (cgroup members and
//!   descendants, including those that called `setsid`), then SIGKILL after the grace period.
//!
//! Run as root, a process can be confined to a user of its own with a private `/tmp`, the
//! platform's files out of sight and other users' processes invisible ([`Confinement`]).
//!
//! dozen is a child subreaper, so orphans are handed to it; when a run ends it stops any that
//! remain. [`Supervisor::run`] returns only when every descendant is gone.
//!
//! Not for: parsing Procfiles or env files (`dozen_core`), or deciding what to run.
//!
//! dozen reaps its children itself (`waitid` on all children, on a thread of its own), so in a
//! process that uses this crate, start children only through it: `std::process::Command::wait`
//! and `tokio::process` would race with the reaper for exit statuses.

mod attach;
mod cgroup;
mod confine;
mod exit;
mod guardian;
mod limits;
mod net;
mod policy;
mod proctree;
mod reaper;
mod spawn;
mod supervisor;
mod usage;

pub use attach::{Attached, OutputChunk};
pub use confine::Confinement;
pub use exit::{ExitStatus, signal_name};
pub use limits::{LimitSupport, Limits, MemoryGauge};
pub use net::is_listening;
pub use policy::{CrashHistory, Policy, RestartPolicy, Verdict};
pub use supervisor::{
    Outcome, Phase, ProcessHandle, ProcessSpec, ProcessState, Stop, SuperviseError, Supervisor,
};
pub use usage::{Usage, tree_usage};
