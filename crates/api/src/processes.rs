//! Processes, restarts and one-offs.

use serde::{Deserialize, Serialize};

/// A row of `ps`: one process of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Process {
    /// `web.1`.
    pub name: String,
    /// `web`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// starting, running, up, restarting, stopping, exited, crashed.
    pub state: String,
    /// Its pid, while it has one.
    pub pid: Option<u32>,
    /// The port it listens on (given as `PORT`).
    pub port: u16,
    /// The release it runs.
    pub release: i64,
    /// Seconds since it entered its state.
    pub for_seconds: u64,
    /// How often it was restarted.
    pub restarts: u32,
    /// Its size (`1x`; `dozen ps:resize`).
    #[serde(default)]
    pub size: String,
    /// Bytes of memory it uses now (with everything it started), where the host measures it.
    #[serde(default)]
    pub memory: Option<u64>,
    /// The most memory its size allows, in bytes.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    /// Seconds of CPU time (user and system) it and everything it started have used.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// The percentage of one core it used over the last 5 seconds (up to 100 per core it
    /// keeps busy); unset for its first seconds, until the server has read its CPU time twice.
    #[serde(default)]
    pub cpu_percent: Option<f64>,
}

/// `POST /v1/apps/{app}/ps/restart` (no body: every process).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestartRequest {
    /// Only this process type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
}

/// `POST /v1/apps/{app}/run` with a JSON body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunRequest {
    /// A command line, run by `sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The words to run: one is a command line, several are each shell-quoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Run it with its output in the app's log, and answer at once.
    #[serde(default)]
    pub detached: bool,
}

/// The answer to a detached run (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunStarted {
    /// `run.N`: follow it with `logs?ps=run.N`.
    pub name: String,
}

/// How a one-off ended: the last line of its stream, or the payload of its exit frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunExit {
    /// `run.N`.
    pub name: String,
    /// Its exit code as a shell reports it (128+N for signal N).
    pub exit: i32,
    /// Why it could not run, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One process size: its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SizeInfo {
    /// Its name (`1x`).
    pub size: String,
    /// The memory limit, in bytes.
    pub memory: u64,
    /// The memory limit for people (`512 MiB`).
    pub memory_text: String,
    /// The share of CPU time (`0.25`, `1`, `2`).
    pub cpu: String,
    /// The most processes and threads.
    pub pids: u64,
}

/// `GET` and `PATCH /v1/apps/{app}/formation/sizes`: the size of each process type, every size
/// there is, and how this host enforces them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sizes {
    /// How limits are enforced here: `cgroup v2`, `cgroup v1` or `none`.
    pub limits: String,
    /// Why limits are not enforced, when they are not.
    pub warning: Option<String>,
    /// Process type -> its size.
    pub sizes: std::collections::BTreeMap<String, SizeInfo>,
    /// Every size, smallest first.
    pub available: Vec<SizeInfo>,
}
