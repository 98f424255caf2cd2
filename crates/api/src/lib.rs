//! The request and response bodies of the `dozen server` HTTP API: plain serde types that the
//! server writes and the client (`dozen`) reads, so both sides agree by construction.
//!
//! With the `openapi` feature every type also derives utoipa's `ToSchema`, from which the
//! server generates `/openapi.json`; the client leaves it off.
//!
//! Not here: anything that does I/O, the server's store records, HTTP itself. The formation
//! rule that both sides apply ([`effective_formation`]) is here because it is part of what the
//! API means.
//!
//! ```
//! let app: dozen_api::App =
//!     serde_json::from_str(r#"{"name":"shop","created_at":"2026-12-01T00:00:00Z","current_release":3}"#)
//!         .unwrap();
//! assert_eq!(app.current_release, Some(3));
//! ```

mod addons;
mod apps;
mod drains;
mod processes;
mod releases;
mod streams;

use std::collections::BTreeMap;

pub use addons::{
    Addon, AddonAttachment, AddonBackup, AddonRelease, AddonService, AttachAddon, BackupSchedule,
    CreateAddon, DEFAULT_KEEP, RestoreBackup, RotatedAddon, ScheduleBackups,
};
pub use apps::{
    App, AppInfo, ConfigPatch, CreateApp, CreateToken, CreatedToken, Destroyed, DomainRequest,
    Domains, Token,
};
pub use drains::{CreateDrain, Drain};
pub use processes::{Process, RestartRequest, RunExit, RunRequest, RunStarted, SizeInfo, Sizes};
pub use releases::{
    Build, BuildStatus, ManifestProcessType, Release, ReleaseDetail, ReleaseEntry, ReleaseStatus,
    RollbackRequest, SlugManifest,
};
pub use streams::{DeployLine, DeployOutcome, LogLine, RunLine};

/// The process type that runs once before a release goes live; never scaled.
pub const RELEASE_PHASE: &str = "release";

/// Config vars: key -> value.
pub type ConfigVars = BTreeMap<String, String>;

/// Formation: process type -> how many run.
pub type Formation = BTreeMap<String, i64>;

/// An error answer: `{"error": {"status", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The status and a message to show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// The HTTP status.
    pub status: u16,
    /// What was wrong and what to do; never a config value.
    pub message: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always true.
    pub ok: bool,
}

/// How many processes of each of a release's process types run: the stored formation, and for
/// a type it does not mention one `web` and no others, as on Heroku. The release phase is not
/// a process type that runs.
pub fn effective_formation<'a>(
    stored: &BTreeMap<String, i64>,
    process_types: impl IntoIterator<Item = &'a String>,
) -> BTreeMap<String, i64> {
    process_types
        .into_iter()
        .filter(|t| *t != RELEASE_PHASE)
        .map(|t| {
            let n = stored.get(t).copied().unwrap_or(i64::from(t == "web"));
            (t.clone(), n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_web_and_no_other_by_default() {
        let types: Vec<String> = ["web", "worker", "release"].map(String::from).to_vec();
        let stored = BTreeMap::from([("worker".to_string(), 2)]);
        let f = effective_formation(&stored, &types);
        assert_eq!(
            f,
            BTreeMap::from([("web".to_string(), 1), ("worker".to_string(), 2)])
        );
    }
}
