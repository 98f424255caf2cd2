//! [`AddonError`]: why an add-on could not be made, changed or removed. Messages name the
//! service, the server (scheme, host and port), the step and the server's own words; never a
//! password or a URL with one.

use crate::{AdminUrl, Service};

/// An error of the add-on provisioners.
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    /// No server of this kind is attached.
    #[error(
        "this dozen server has no {service} server attached: its operator sets {var} to an admin URL of one"
    )]
    NotAttached {
        /// The service.
        service: &'static str,
        /// The variable that would attach one.
        var: &'static str,
    },
    /// Not a service dozen knows.
    #[error("unknown service `{name}`: use postgresql, redis, mysql or rabbitmq")]
    UnknownService {
        /// What was asked for.
        name: String,
    },
    /// A name unfit for a database, user or vhost.
    #[error("`{name}` cannot name a database or user: lower-case letters, digits, - and _")]
    BadName {
        /// The name.
        name: String,
    },
    /// An admin URL (or an add-on's URL) that does not parse or lacks a part.
    #[error("{var}: {message}")]
    BadUrl {
        /// Which URL.
        var: &'static str,
        /// What is wrong (never the URL).
        message: String,
    },
    /// The backing server refused or failed a step.
    #[error("{service} at {server}: {step}: {message}")]
    Server {
        /// The service.
        service: &'static str,
        /// `scheme://host:port`.
        server: String,
        /// What dozen was doing ("creating the role").
        step: String,
        /// The server's (or the tool's) message.
        message: String,
    },
    /// A tool dozen runs (`rabbitmqctl`, `pg_dump`) is missing or failed to start.
    #[error("{tool}: {message}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// What happened.
        message: String,
    },
    /// The S3-compatible service that keeps backups refused or failed a request.
    #[error("{what}: {message}")]
    Storage {
        /// The request (`PUT s3://bucket/key`).
        what: String,
        /// The service's error code and message, or the network's.
        message: String,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

impl AddonError {
    pub(crate) fn server(
        service: Service,
        admin: &AdminUrl,
        step: &str,
        message: impl std::fmt::Display,
    ) -> AddonError {
        AddonError::Server {
            service: service.name(),
            server: admin.server(),
            step: step.to_string(),
            message: message.to_string(),
        }
    }

    /// The same error with a note that cleaning up after it failed too.
    pub(crate) fn and_cleanup(self, cleanup: Result<(), AddonError>) -> AddonError {
        match (self, cleanup) {
            (e, Ok(())) => e,
            (
                AddonError::Server {
                    service,
                    server,
                    step,
                    message,
                },
                Err(c),
            ) => AddonError::Server {
                service,
                server,
                step,
                message: format!(
                    "{message}; and removing what was made failed, remove it by hand: {c}"
                ),
            },
            (e, Err(_)) => e,
        }
    }
}
