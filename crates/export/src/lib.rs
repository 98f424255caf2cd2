//! dozen beyond one host: a release as Kubernetes manifests, as systemd units, or as an OCI
//! image.
//!
//! Everything here is pure data in, files or objects out: no network, no async runtime, no
//! processes. The CLI (`dozen export`, `dozen build --oci`) and a deployer that applies the
//! objects to a cluster build on it.
//!
//! - [`ReleaseSpec`]: the release (app, `vN`, process types, config, formation, grace,
//!   health check), read from `dozen server` or from a Procfile and `.env`.
//! - [`kubernetes`]: [`kubernetes::manifests`] gives typed objects ([`k8s_openapi`]) —
//!   a Secret pinned to the release, the `release` Job, a Deployment per process type, a
//!   Service for `web`, optional HorizontalPodAutoscalers — with hardened pod defaults;
//!   [`kubernetes::one_off_job`] gives the Job of a one-off command;
//!   [`kubernetes::Manifests::to_yaml`] renders them for `kubectl apply`.
//! - [`systemd`]: [`systemd::units`] gives a target, one unit per process instance and an
//!   env file, as foreman's `export systemd` does.
//! - [`oci`]: [`oci::build_image`] puts a slug at `/app` on top of a stack image and writes an
//!   OCI image layout that `skopeo`, `podman` or `crane` can push.
//! - [`output`]: [`output::replace_dir`] and [`output::write_into`] write an export without
//!   ever leaving half of it on disk.
//!
//! It is **not** for talking to a cluster, a registry or the dozen server, nor for building
//! slugs (`dozen_build`).
//!
//! Config values are secrets: no `Debug` output and no error of this crate shows one (the
//! keys are shown).
//!
//! # Example
//!
//! ```
//! use dozen_export::kubernetes::{KubernetesOptions, manifests};
//! use dozen_export::{ProcessType, ReleaseSpec};
//!
//! let release = ReleaseSpec {
//!     app: "shop".into(),
//!     version: 3,
//!     process_types: vec![ProcessType::new("web", "./serve"), ProcessType::new("release", "./migrate")],
//!     config: [("DATABASE_URL".to_string(), "postgres://db/shop".to_string())].into(),
//!     formation: [("web".to_string(), 2)].into(),
//!     grace_seconds: 10,
//!     health_check: Some("/healthz".into()),
//!     boot_timeout: None,
//!     run_env: Default::default(),
//! };
//! let m = manifests(&release, &KubernetesOptions::new("registry.example/shop:v3"))?;
//! assert_eq!(m.secret.metadata.name.as_deref(), Some("shop-config-v3"));
//! assert_eq!(m.release_job.as_ref().and_then(|j| j.metadata.name.as_deref()), Some("shop-release-v3"));
//! assert!(m.to_yaml()?.contains("kind: Deployment"));
//! # Ok::<(), dozen_export::ExportError>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
pub mod kubernetes;
pub mod oci;
pub mod output;
mod release;
pub mod systemd;

pub use error::ExportError;
pub use release::{DEFAULT_GRACE_SECONDS, ProcessType, RELEASE_TYPE, ReleaseSpec};
