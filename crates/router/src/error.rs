//! The router's errors: only setting it up can fail; requests fail as HTTP statuses.

use std::path::PathBuf;

/// What went wrong while preparing the router, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// A certificate or key file could not be read or parsed.
    #[error("TLS {what} file {path}: {reason}; give a PEM file")]
    TlsFile {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// rustls refused the key or the configuration.
    #[error("TLS setup for {domain}: {source}")]
    Tls {
        /// The domain whose certificate was refused.
        domain: String,
        /// The cause.
        #[source]
        source: rustls::Error,
    },
    /// No certificates were given.
    #[error("TLS: no certificates configured; give at least one (domain, cert, key) entry")]
    NoCertificates,
}

impl From<RouterError> for std::io::Error {
    fn from(err: RouterError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, err)
    }
}
