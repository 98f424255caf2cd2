//! The lines of streaming answers (NDJSON): log events, then a final result.

use serde::{Deserialize, Serialize};

use crate::Release;

/// One log event: a line of a process's output or a platform event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    /// When (RFC 3339, UTC); a note of the server about the stream has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// `web.1`, `run.2`, `build`, or `dozen` for platform events.
    pub proc: String,
    /// stdout, stderr or event.
    pub stream: String,
    /// The text.
    pub line: String,
    /// The line was cut at the length limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<bool>,
    /// For platform events: which (started, exited, info, error, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// For platform events: the process it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// For platform events: its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    /// For platform events: its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// For platform events: its exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// For platform events: the signal that ended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i64>,
    /// For platform events: the delay before its restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<i64>,
}

/// The last line of a deploy's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "lowercase")]
// One of these ends each deploy's stream: the size of a release is no cost worth a Box (which
// would show in every match of it).
#[allow(clippy::large_enum_variant)]
pub enum DeployOutcome {
    /// The release is live.
    Succeeded {
        /// The new release.
        release: Release,
    },
    /// The build or the rollout failed; the running release stays.
    Failed {
        /// Why, in words to act on.
        error: String,
    },
}

/// A line of a deploy's stream: a log event, or the outcome (the last line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum DeployLine {
    /// How it ended.
    Outcome(DeployOutcome),
    /// A log event of the build or the rollout.
    Log(LogLine),
}

/// A line of an attached one-off's NDJSON stream: a line of its output, or how it ended (the
/// last line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum RunLine {
    /// How it ended.
    Exit(crate::RunExit),
    /// A line of its output.
    Log(LogLine),
}
