//! Log drains: where an app's log stream is sent (`drains:add`). No type here carries a drain
//! URL's password: answers show the URL with it replaced by `***`.

use serde::{Deserialize, Serialize};

/// One drain of an app and how its delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Drain {
    /// `drn_` and 16 hex digits.
    pub id: String,
    /// The URL, its password (if any) shown as `***`.
    pub url: String,
    /// `starting` (nothing sent yet), `up` (the last attempt succeeded) or `down`.
    pub state: String,
    /// Why the last attempt failed, when `state` is `down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Messages delivered since the server started.
    pub delivered: u64,
    /// Messages waiting in the drain's queue.
    pub queued: u64,
    /// Messages dropped since the server started because the queue was full.
    pub dropped: u64,
    /// When it was added.
    pub created_at: String,
}

/// `POST /v1/apps/{app}/drains`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateDrain {
    /// `syslog://host:port`, `syslog+tls://host:port` or `https://[user:password@]host/path`.
    pub url: String,
}
