//! [`ReleaseSpec`]: everything an exporter needs to know about one release.

use std::collections::BTreeMap;
use std::fmt;

use dozen_core::RunEnv;
use dozen_core::name::{validate_app_name, validate_env_key, validate_process_type};

use crate::error::ExportError;

/// The process type that runs once per release, before the release goes live.
pub const RELEASE_TYPE: &str = "release";

/// Seconds a process gets between SIGTERM and SIGKILL when nothing else is said: the grace
/// `dozen server` gives its own processes.
pub const DEFAULT_GRACE_SECONDS: u32 = 10;

/// One Procfile entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    /// Its name, such as `web`.
    pub name: String,
    /// Its command line, run as `/bin/sh -c` (see [`dozen_core::command`]).
    pub command: String,
}

impl ProcessType {
    /// A process type from its name and command.
    pub fn new(name: impl Into<String>, command: impl Into<String>) -> Self {
        ProcessType {
            name: name.into(),
            command: command.into(),
        }
    }
}

/// A release as the exporters see it: the app's name, the release number, the Procfile's
/// process types, the config snapshot, the formation, what the app's manifest
/// (`dozen.toml`) declares about its web process and the run environment its slug records.
///
/// Build one from the server's API (`dozen export -a APP`) or from a Procfile and `.env`
/// (`dozen export systemd --procfile`), then hand it to
/// [`kubernetes::manifests`](crate::kubernetes::manifests) or
/// [`systemd::units`](crate::systemd::units). [`check`](Self::check) runs first in both.
///
/// `Debug` shows the config keys, never their values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ReleaseSpec {
    /// The app's name (`^[a-z][a-z0-9-]{1,29}$`).
    pub app: String,
    /// `N` in `vN`.
    pub version: u64,
    /// The process types, in Procfile order (the order gives the port plan's blocks).
    pub process_types: Vec<ProcessType>,
    /// The config vars: every process gets them as environment variables.
    pub config: BTreeMap<String, String>,
    /// Process type -> how many run. A type missing here runs as `dozen server` would run it:
    /// one `web`, no other (see [`quantity`](Self::quantity)). The `release` type never
    /// appears: it runs once per release.
    pub formation: BTreeMap<String, u32>,
    /// Seconds between SIGTERM and SIGKILL on stop.
    pub grace_seconds: u32,
    /// The web process's health-check path (`[web] health_check` in `dozen.toml`), starting
    /// with `/`.
    pub health_check: Option<String>,
    /// Seconds the web process has to come up (`[web] boot_timeout`).
    pub boot_timeout: Option<u64>,
    /// What the processes need besides config (the slug manifest's `run_env`): every
    /// exported command line puts its directories in front of `PATH`, sets its defaults the
    /// config does not set and sources the app's profile scripts before `exec`ing the
    /// command ([`RunEnv::shell_line`]).
    pub run_env: RunEnv,
}

impl fmt::Debug for ReleaseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseSpec")
            .field("app", &self.app)
            .field("version", &self.version)
            .field("process_types", &self.process_types)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("formation", &self.formation)
            .field("grace_seconds", &self.grace_seconds)
            .field("health_check", &self.health_check)
            .field("boot_timeout", &self.boot_timeout)
            .field("run_env", &self.run_env)
            .finish()
    }
}

impl ReleaseSpec {
    /// How many processes of `type_name` run: the formation's number, else 1 for `web` and 0
    /// for any other type (the default of `dozen server`). Always 0 for `release`.
    pub fn quantity(&self, type_name: &str) -> u32 {
        if type_name == RELEASE_TYPE {
            return 0;
        }
        self.formation
            .get(type_name)
            .copied()
            .unwrap_or(u32::from(type_name == "web"))
    }

    /// The process types that run continuously (every type but `release`), in Procfile order.
    pub fn long_running(&self) -> impl Iterator<Item = &ProcessType> {
        self.process_types.iter().filter(|t| t.name != RELEASE_TYPE)
    }

    /// The `release` process type, when the Procfile has one.
    pub fn release_phase(&self) -> Option<&ProcessType> {
        self.process_types.iter().find(|t| t.name == RELEASE_TYPE)
    }

    /// `vN`.
    pub fn version_label(&self) -> String {
        format!("v{}", self.version)
    }

    /// Check what every exporter relies on: a valid app name, at least one process type,
    /// valid and distinct process type names with commands, a formation that names only
    /// known types, valid config keys and a health-check path that starts with `/`.
    pub fn check(&self) -> Result<(), ExportError> {
        validate_app_name(&self.app).map_err(|reason| ExportError::InvalidApp {
            app: self.app.clone(),
            reason,
        })?;
        if self.process_types.is_empty() {
            return Err(ExportError::NoProcessTypes {
                app: self.app.clone(),
            });
        }
        for (i, t) in self.process_types.iter().enumerate() {
            validate_process_type(&t.name).map_err(|reason| ExportError::InvalidProcessType {
                name: t.name.clone(),
                reason: reason.to_string(),
            })?;
            if t.command.trim().is_empty() {
                return Err(ExportError::InvalidProcessType {
                    name: t.name.clone(),
                    reason: "its command is empty".into(),
                });
            }
            if self.process_types[..i].iter().any(|o| o.name == t.name) {
                return Err(ExportError::InvalidProcessType {
                    name: t.name.clone(),
                    reason: "it is defined twice".into(),
                });
            }
        }
        for name in self.formation.keys() {
            if name == RELEASE_TYPE || !self.process_types.iter().any(|t| &t.name == name) {
                return Err(ExportError::UnknownFormationType {
                    name: name.clone(),
                    known: self.long_running().map(|t| t.name.clone()).collect(),
                });
            }
        }
        for key in self.config.keys() {
            validate_env_key(key).map_err(|reason| ExportError::InvalidConfigKey {
                key: key.clone(),
                reason: reason.to_string(),
            })?;
        }
        if let Some(path) = &self.health_check {
            if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ExportError::InvalidHealthCheck { path: path.clone() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ReleaseSpec {
        ReleaseSpec {
            app: "shop".into(),
            version: 3,
            process_types: vec![
                ProcessType::new("web", "./serve"),
                ProcessType::new("worker", "./work"),
                ProcessType::new("release", "./migrate"),
            ],
            config: [(
                "DATABASE_URL".to_string(),
                "postgres://secret@db/shop".to_string(),
            )]
            .into(),
            formation: [("worker".to_string(), 2)].into(),
            grace_seconds: 10,
            health_check: Some("/healthz".into()),
            boot_timeout: None,
            run_env: RunEnv::default(),
        }
    }

    #[test]
    fn quantities_follow_the_server_defaults() {
        let s = spec();
        assert_eq!(s.quantity("web"), 1);
        assert_eq!(s.quantity("worker"), 2);
        assert_eq!(s.quantity("release"), 0);
        assert_eq!(s.long_running().count(), 2);
        assert_eq!(
            s.release_phase().map(|t| t.command.as_str()),
            Some("./migrate")
        );
        s.check().expect("valid");
    }

    #[test]
    fn debug_hides_config_values() {
        let shown = format!("{:?}", spec());
        assert!(shown.contains("DATABASE_URL"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn check_names_what_is_wrong() {
        let mut s = spec();
        s.app = "Shop".into();
        assert!(
            s.check()
                .unwrap_err()
                .to_string()
                .contains("app name `Shop`")
        );

        let mut s = spec();
        s.formation.insert("wrker".into(), 1);
        let e = s.check().unwrap_err().to_string();
        assert!(e.contains("`wrker`") && e.contains("web, worker"), "{e}");

        let mut s = spec();
        s.formation.insert("release".into(), 1);
        assert!(s.check().is_err());

        let mut s = spec();
        s.config.insert("2FA".into(), "x".into());
        assert!(s.check().unwrap_err().to_string().contains("`2FA`"));

        let mut s = spec();
        s.health_check = Some("healthz".into());
        assert!(s.check().unwrap_err().to_string().contains("health"));

        let mut s = spec();
        s.process_types.push(ProcessType::new("web", "again"));
        assert!(s.check().unwrap_err().to_string().contains("twice"));

        let mut s = spec();
        s.process_types.clear();
        assert!(s.check().is_err());
    }
}
