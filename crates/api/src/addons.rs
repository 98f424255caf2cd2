//! Add-ons (backing services) and their attachments, backups of them. No type here carries an
//! add-on's URL: that is a config var, shown only where config values are.

use serde::{Deserialize, Serialize};

use crate::Release;

/// `GET /v1/addon-services`: one kind of backing service and whether this server offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddonService {
    /// `postgresql`, `redis`, `mysql` or `rabbitmq`.
    pub name: String,
    /// Whether a server of this kind is attached (its variable is set).
    pub available: bool,
    /// The server's variable that attaches one (`DOZEN_ADDON_POSTGRESQL_URL`).
    pub env_var: String,
    /// The attachment name used when none is given (`DATABASE`: the URL is `DATABASE_URL`).
    pub default_attachment: String,
    /// The plan add-ons get.
    pub plan: String,
}

/// An add-on's attachment to an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddonAttachment {
    /// The app.
    pub app: String,
    /// The config var holding the URL (`DATABASE_URL`).
    pub var: String,
    /// When it was attached.
    pub created_at: String,
}

/// An add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Addon {
    /// `shop-postgresql-1`.
    pub name: String,
    /// The service.
    pub service: String,
    /// The plan.
    pub plan: String,
    /// The app that owns it.
    pub app: String,
    /// When it was provisioned.
    pub created_at: String,
    /// Every app it is attached to, the owner first.
    pub attachments: Vec<AddonAttachment>,
}

/// `POST /v1/apps/{app}/addons`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateAddon {
    /// The service (`postgresql`, `redis`, `mysql`, `rabbitmq`).
    pub service: String,
    /// The attachment name (`CACHE`: the URL goes in `CACHE_URL`); default per service.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub attach_as: Option<String>,
}

/// `POST /v1/apps/{app}/attachments`: attach an existing add-on to the app.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttachAddon {
    /// The add-on.
    pub addon: String,
    /// The attachment name; default per service.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub attach_as: Option<String>,
}

/// An add-on and the release that changed an app's config for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddonRelease {
    /// The add-on, after the change.
    pub addon: Addon,
    /// The app's new release, rolled out.
    pub release: Release,
}

/// `POST /v1/apps/{app}/addons/{addon}/rotate`: the new releases, one per attached app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotatedAddon {
    /// The add-on.
    pub addon: Addon,
    /// One release per attached app, rolled out.
    pub releases: Vec<Release>,
}

/// A backup of an add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddonBackup {
    /// `b001`.
    pub id: String,
    /// The add-on.
    pub addon: String,
    /// The dump's size in bytes.
    pub size: i64,
    /// When it was taken.
    pub created_at: String,
    /// Where the dump is kept: `s3://bucket/key` in the server's S3-compatible bucket, or
    /// absent for the server's data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// `POST /v1/apps/{app}/addons/{addon}/backups/{backup}/restore`: where to restore (by default
/// into the add-on the backup was taken of).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreBackup {
    /// Another add-on the app owns, of the same service, to restore into instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
}

/// The number of backups a schedule keeps when none is given.
pub const DEFAULT_KEEP: i64 = 7;

fn default_keep() -> i64 {
    DEFAULT_KEEP
}

/// `PUT /v1/apps/{app}/addons/{addon}/backup-schedule`: back the add-on up daily.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleBackups {
    /// The time of day, UTC, as `HH:MM` (`02:00`).
    pub at: String,
    /// How many backups of the add-on to keep; the oldest beyond are deleted after each
    /// scheduled backup (default 7).
    #[serde(default = "default_keep")]
    pub keep: i64,
}

/// An add-on's daily backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupSchedule {
    /// The add-on.
    pub addon: String,
    /// The app that owns it.
    pub app: String,
    /// The time of day, UTC (`02:00`).
    pub at: String,
    /// How many backups are kept.
    pub keep: i64,
    /// When the next backup is due (RFC 3339, UTC).
    pub next_run: String,
}
