//! Releases, slugs and builds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::RELEASE_PHASE;

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReleaseStatus {
    /// Made; not rolled out yet (or being rolled out).
    Pending,
    /// It went live (it may have been replaced since).
    Succeeded,
    /// Its release phase failed, its processes never became healthy, or it was interrupted.
    Failed,
}

/// A release `vN`, as the API shows it: config keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Release {
    /// The app.
    pub app: String,
    /// `N` in `vN`.
    pub version: i64,
    /// The blake3 digest of the slug it runs; none before the first deploy.
    pub slug: Option<String>,
    /// The keys of its config vars.
    pub config_keys: Vec<String>,
    /// Process type -> command.
    pub process_types: BTreeMap<String, String>,
    /// What made it ("Deploy 1a2b3c4", "Set KEY", "Rollback to v2").
    pub description: String,
    /// Where it stands.
    pub status: ReleaseStatus,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// The build of its slug.
    pub build_id: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// The git commit its slug was built from (a `git push`, or `dozen deploy` from a
    /// checkout); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Who made it: the name of the API token that asked (a deploy, `git push`, config change,
    /// rollback or add-on change), or `dozen` for what the server did itself; null for releases
    /// made before servers recorded it.
    #[serde(default)]
    pub created_by: Option<String>,
}

/// A release in `GET /v1/apps/{app}/releases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseEntry {
    /// The release.
    #[serde(flatten)]
    pub release: Release,
    /// Whether it is the live one.
    pub current: bool,
}

/// `GET /v1/apps/{app}/releases/{version}`: the release and what its build recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseDetail {
    /// The release.
    #[serde(flatten)]
    pub release: Release,
    /// The manifest of its slug (none before the first deploy).
    pub slug_manifest: Option<SlugManifest>,
}

impl ReleaseDetail {
    /// Its process types with their commands in Procfile order (the order the slug's manifest
    /// records; types it does not list come after, by name). The release phase is included.
    pub fn process_types_in_order(&self) -> Vec<(String, String)> {
        let types = &self.release.process_types;
        let mut names: Vec<&String> = self
            .slug_manifest
            .iter()
            .flat_map(|m| &m.process_types)
            .map(|t| &t.name)
            .filter(|n| types.contains_key(*n))
            .collect();
        for n in types.keys() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
            .into_iter()
            .map(|n| (n.clone(), types[n].clone()))
            .collect()
    }

    /// The entries of an app's stored `formation` that apply to this release: its process
    /// types, the release phase left out. A type without an entry runs as
    /// [`effective_formation`](crate::effective_formation) says.
    pub fn formation_from(&self, formation: &BTreeMap<String, i64>) -> BTreeMap<String, u32> {
        formation
            .iter()
            .filter(|(t, _)| self.release.process_types.contains_key(*t) && *t != RELEASE_PHASE)
            .map(|(t, n)| (t.clone(), u32::try_from((*n).max(0)).unwrap_or(u32::MAX)))
            .collect()
    }
}

/// One process type in a slug manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManifestProcessType {
    /// Its name, such as `web`.
    pub name: String,
    /// Its command line from the Procfile.
    pub command: String,
}

/// What a build recorded beside a slug. None of it is config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SlugManifest {
    /// blake3 of the slug's `tar.zst`.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Regular files in it.
    #[serde(default)]
    pub files: u64,
    /// Bytes of file content, uncompressed.
    #[serde(default)]
    pub content_bytes: u64,
    /// Process types in Procfile order.
    pub process_types: Vec<ManifestProcessType>,
    /// The web health check path, if declared.
    #[serde(default)]
    pub health_check: Option<String>,
    /// The web boot timeout in seconds, if declared.
    #[serde(default)]
    pub boot_timeout: Option<u64>,
    /// What the build took the app for.
    #[serde(default)]
    pub build_kind: String,
    /// What the processes need besides config: `{"path": [..], "defaults": {..}, "profile":
    /// [..]}` (the defaults in order).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub run_env: serde_json::Value,
    /// `app.json`'s formation for the first deploy.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub formation: BTreeMap<String, u32>,
    /// `app.json`'s postdeploy script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postdeploy: Option<String>,
    /// The dozen version that packed it.
    #[serde(default)]
    pub dozen_version: String,
}

/// `POST /v1/apps/{app}/rollback` (no body: the release live before the current one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollbackRequest {
    /// The release to copy, `vN` or `N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Where a build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    /// Running.
    Pending,
    /// It made a slug.
    Succeeded,
    /// It did not.
    Failed,
}

/// A build: source in, slug out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Build {
    /// Its id (sorts in creation order).
    pub id: String,
    /// The app.
    pub app: String,
    /// blake3 of the uploaded source.
    pub source_digest: String,
    /// Where it stands.
    pub status: BuildStatus,
    /// The slug it made.
    pub slug: Option<String>,
    /// Process type -> command, from the Procfile.
    pub process_types: BTreeMap<String, String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started.
    pub created_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
}
