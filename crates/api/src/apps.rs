//! Apps, config vars, domains and tokens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Process;

/// An app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct App {
    /// Its name (`^[a-z][a-z0-9-]{1,29}$`).
    pub name: String,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// The version of the live release, once one went live.
    pub current_release: Option<i64>,
}

/// `POST /v1/apps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateApp {
    /// The new app's name (`^[a-z][a-z0-9-]{1,29}$`).
    pub name: String,
}

/// `GET /v1/apps/{app}`: the app with its live release's process types, its formation and its
/// processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppInfo {
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: String,
    /// The version of the live release.
    pub current_release: Option<i64>,
    /// Process type -> command, of the live release.
    pub process_types: BTreeMap<String, String>,
    /// Process type -> quantity, as stored (a type it does not name runs one `web`, no other).
    pub formation: BTreeMap<String, i64>,
    /// Its processes on the host.
    pub processes: Vec<Process>,
}

/// `DELETE /v1/apps/{app}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Destroyed {
    /// The app that was destroyed.
    pub destroyed: String,
}

/// `PATCH /v1/apps/{app}/config`: a new release with these changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigPatch {
    /// Keys to set, with their values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Keys to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

/// `GET /v1/apps/{app}/domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Domains {
    /// `<app>.DOZEN_DOMAIN`, which every app has.
    pub default: String,
    /// Custom domains, routed to the app too.
    pub custom: Vec<String>,
}

/// `POST /v1/apps/{app}/domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DomainRequest {
    /// The hostname to route to the app.
    pub hostname: String,
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it may do: `admin`, or `deploy` or `read` on one app.
    pub scope: String,
    /// The one app a `deploy` or `read` token is for; none for `admin`.
    pub app: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateToken {
    /// A name for the new token.
    pub name: String,
    /// `admin` (the default without an app), `deploy` (the default with one) or `read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The one app a `deploy` or `read` token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// The answer to `POST /v1/tokens`: the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    /// The secret to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The token's record.
    pub info: Token,
}
