//! [`ExportError`]: what can go wrong turning a release into manifests, units or an image.

use std::path::PathBuf;

use dozen_core::NameError;

/// Every error names the app, process type, config key, option, file or image part it is
/// about, and never a config value.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The app name breaks the rules.
    #[error("app name `{app}`: {reason}")]
    InvalidApp {
        /// The name given.
        app: String,
        /// Why it is rejected.
        reason: NameError,
    },
    /// The release has no process types.
    #[error("{app}: the release has no process types; its Procfile must define at least one")]
    NoProcessTypes {
        /// The app.
        app: String,
    },
    /// A process type's name or command is not acceptable.
    #[error("process type `{name}`: {reason}")]
    InvalidProcessType {
        /// The process type.
        name: String,
        /// Why.
        reason: String,
    },
    /// The formation (or an option) names a process type the release does not have.
    #[error("unknown process type `{name}`; the release runs: {}", known.join(", "))]
    UnknownFormationType {
        /// The name given.
        name: String,
        /// The release's long-running process types.
        known: Vec<String>,
    },
    /// A config key is not a valid variable name for the target.
    #[error("config var `{key}`: {reason}")]
    InvalidConfigKey {
        /// The key (never the value).
        key: String,
        /// Why.
        reason: String,
    },
    /// The health-check path is not a URL path.
    #[error(
        "health check `{path}`: it must be a URL path starting with `/` and without spaces, such as /healthz"
    )]
    InvalidHealthCheck {
        /// The path given.
        path: String,
    },
    /// An option of an exporter is not acceptable.
    #[error("{option}: {reason}")]
    InvalidOption {
        /// The option, as the user wrote it (`--resources web`, `image`).
        option: String,
        /// Why.
        reason: String,
    },
    /// A manifest could not be written as YAML.
    #[error("{what}: cannot be written as YAML")]
    Yaml {
        /// `kind/name` of the object.
        what: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The output already exists and is not something this exporter may replace.
    #[error("{}: {reason}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// What is in the way and what to do.
        reason: String,
    },
    /// The stack image or slug given to [`oci::build_image`](crate::oci::build_image) is not
    /// usable.
    #[error("{}: {reason}", path.display())]
    Image {
        /// The file or directory at fault (the stack layout, one of its blobs, the slug).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl ExportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn option(option: impl Into<String>, reason: impl Into<String>) -> Self {
        ExportError::InvalidOption {
            option: option.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn image(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ExportError::Image {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
