//! Processes, restarts and one-offs.

use serde::{Deserialize, Serialize};

/// A row of `ps`: one process of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
