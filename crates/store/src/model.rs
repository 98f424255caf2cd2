//! The records the store hands out. They are plain data: reading one never
//! touches the database again.
//!
//! Timestamps are RFC 3339 strings in UTC with microseconds
//! (`2026-11-25T21:30:12.123456Z`), so they sort as text and serialise as is.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::StoreError;

/// An app: a name that owns config vars, releases, builds, a formation and
/// domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    /// The app's name (`^[a-z][a-z0-9-]{1,29}$`).
    pub name: String,
    /// When it was created.
    pub created_at: String,
    /// Version of the live release, once one has been activated.
    pub current_release: Option<i64>,
}

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseStatus {
    /// Created; its release phase has not finished (or it has not been
    /// rolled out yet).
    Pending,
    /// It went live (it may have been replaced since).
    Succeeded,
    /// Its release phase failed or it was interrupted; it never went live.
    Failed,
}

impl ReleaseStatus {
    /// The word stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Pending => "pending",
            ReleaseStatus::Succeeded => "succeeded",
            ReleaseStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(ReleaseStatus::Pending),
            "succeeded" => Ok(ReleaseStatus::Succeeded),
            "failed" => Ok(ReleaseStatus::Failed),
            _ => Err(StoreError::Corrupt {
                what: "release status",
                message: format!("unknown status {s:?}"),
            }),
        }
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A release `vN`: a slug, a config snapshot and process types, immutable
/// except for its status.
///
/// `Debug` prints the config keys only; `Serialize` writes everything
/// (the API layer decides what to show).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    /// The app it belongs to.
    pub app: String,
    /// `N` in `vN`, from 1, per app.
    pub version: i64,
    /// Digest of the slug it runs, `None` before the first build.
    pub slug: Option<String>,
    /// The config vars, as they were when the release was made.
    pub config: BTreeMap<String, String>,
    /// Process type -> command, from the build's Procfile.
    pub process_types: BTreeMap<String, String>,
    /// What made it: "Deploy 3f2a9c1", "Set KEY", "Rollback to v2".
    pub description: String,
    /// Where it stands.
    pub status: ReleaseStatus,
    /// Why it failed, when it did.
    pub failure_reason: Option<String>,
    /// The build that produced its slug, for deploys.
    pub build_id: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// The git commit (40 or 64 hex digits) its slug was built from, when known.
    pub commit: Option<String>,
    /// Who made it: the API token's name, or [`SERVER_ACTOR`](crate::SERVER_ACTOR) for the
    /// server's own releases ([`actor`](crate::actor)); `None` for releases made before the
    /// store recorded it.
    pub created_by: Option<String>,
}

impl Release {
    /// The config keys, sorted: what may be shown where values may not.
    pub fn config_keys(&self) -> Vec<&str> {
        self.config.keys().map(String::as_str).collect()
    }
}

impl fmt::Debug for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Release")
            .field("app", &self.app)
            .field("version", &self.version)
            .field("slug", &self.slug)
            .field("config_keys", &self.config_keys())
            .field("process_types", &self.process_types)
            .field("description", &self.description)
            .field("status", &self.status)
            .field("failure_reason", &self.failure_reason)
            .field("build_id", &self.build_id)
            .field("created_at", &self.created_at)
            .field("commit", &self.commit)
            .field("created_by", &self.created_by)
            .finish()
    }
}

/// What a caller supplies to make a release; the config snapshot is taken
/// from the app's current config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NewRelease {
    /// Digest of a slug already recorded with [`Store::record_slug`](crate::Store::record_slug).
    pub slug: Option<String>,
    /// Process type -> command.
    pub process_types: BTreeMap<String, String>,
    /// What made it.
    pub description: String,
    /// The build that produced the slug (must belong to the same app).
    pub build_id: Option<String>,
    /// The git commit the slug was built from (40 or 64 hex digits), when known.
    pub commit: Option<String>,
}

/// Where a build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    /// Running (or interrupted, until [`Store::recover_interrupted`](crate::Store::recover_interrupted) runs).
    Pending,
    /// Produced a slug.
    Succeeded,
    /// Did not produce a slug.
    Failed,
}

impl BuildStatus {
    /// The word stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(BuildStatus::Pending),
            "succeeded" => Ok(BuildStatus::Succeeded),
            "failed" => Ok(BuildStatus::Failed),
            _ => Err(StoreError::Corrupt {
                what: "build status",
                message: format!("unknown status {s:?}"),
            }),
        }
    }
}

impl fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A build: source tarball in, slug out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    /// Unique id that sorts in creation order: UTC time to the nanosecond
    /// (strictly increasing within one server), then random hex
    /// (`20261125213012123456789-9f3ac01b`).
    pub id: String,
    /// The app it builds.
    pub app: String,
    /// Digest of the uploaded source archive.
    pub source_digest: String,
    /// Where it stands.
    pub status: BuildStatus,
    /// Digest of the slug it produced.
    pub slug: Option<String>,
    /// Process types found in the source's Procfile.
    pub process_types: BTreeMap<String, String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// When it started.
    pub created_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One app: list it, its info, releases, builds, formation, processes, domains and logs;
    /// never its config values.
    Read,
    /// One app: everything `read` allows, plus deploys, config (values too), scaling, one-offs,
    /// restarts, rollbacks and domains.
    Deploy,
    /// Every app, token and server setting. Tokens made before scopes existed are admin.
    Admin,
}

impl Scope {
    /// The word stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Deploy => "deploy",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Scope::Read),
            "deploy" => Ok(Scope::Deploy),
            "admin" => Ok(Scope::Admin),
            other => Err(StoreError::invalid(
                "scope",
                format!("`{other}` is not a scope: use admin, deploy or read"),
            )),
        }
    }
}

/// An API token as listed: never the token itself, which only
/// [`Store::create_token`](crate::Store::create_token) returns, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Random id (`tok_` + 16 hex digits).
    pub id: String,
    /// A name for people; unique among tokens that are not revoked.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// The one app a `deploy` or `read` token is for; `None` for `admin`.
    pub app: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// When it was revoked; a revoked token authenticates nothing.
    pub revoked_at: Option<String>,
}

/// The record of a slug. The archive itself lives on disk, named by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlugRecord {
    /// Content digest (the file's name).
    pub digest: String,
    /// Size of the archive in bytes.
    pub size: i64,
    /// The slug's manifest, as JSON text.
    pub manifest_json: String,
    /// When it was first recorded.
    pub created_at: String,
}
