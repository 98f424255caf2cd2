//! dozen on a Kubernetes cluster: run a release there, and look after it.
//!
//! `dozen deploy --to kubernetes` and the commands that act on that target (`ps`, `logs`,
//! `ps:scale`, `rollback`, `run --on kubernetes`) build on this crate. The objects come from
//! [`dozen_export::kubernetes`]; this crate talks to the API server with kube-rs (over
//! rustls with *ring*, like the rest of dozen):
//!
//! - [`Cluster`]: a client and a namespace, found the way `kubectl` finds them
//!   ([`Cluster::connect`]: `KUBECONFIG`, `~/.kube/config`, or the pod's service account).
//! - [`Cluster::deploy`]: server-side apply (field manager `dozen`, forcing conflicts) of
//!   the Secret, then the `release` Job, waited for, then the Deployments, Service and
//!   autoscalers; waits for the rollout with the checks of `kubectl rollout status`
//!   ([`Rollout`]), reporting each change as an [`Event`]; gives the previous state back when
//!   the rollout does not become ready ([`GiveBack`]).
//! - [`Cluster::rollback`]: a release deployed here before, applied again from what its
//!   Secret keeps ([`ANNOTATION_OBJECTS`]).
//! - [`Cluster::processes`], [`Cluster::logs`], [`Cluster::scale`],
//!   [`Cluster::run_one_off`], [`Cluster::live_release`]: `ps`, `logs`, `ps:scale` and
//!   one-offs.
//! - [`KubeError`]: a rejected object comes back as one line per invalid field, with the
//!   object and the field path ([`KubeError::Rejected`]).
//!
//! It is **not** for making manifests (that is [`dozen_export`]), for talking to the dozen
//! server, or for printing: callers render [`Event`]s and results.
//!
//! Config values are secrets: the Secret's data is never printed, and the API server's
//! messages about an object have the release's config values masked.
//!
//! # What a deploy leaves on the cluster
//!
//! Every Deployment, Service and autoscaler carries, in the [`ANNOTATION_APPLIED`]
//! annotation, the JSON that was applied (no config value is in it: pods take the config
//! from the release's Secret). When a rollout fails, those annotations are what is applied
//! again. Each release's Secret (`<app>-config-vN`) stays, annotated with its image
//! ([`ANNOTATION_IMAGE`]) and its other objects ([`ANNOTATION_OBJECTS`]), so a rollback to
//! it needs nothing but the cluster.
//!
//! # Example
//!
//! ```no_run
//! use dozen_export::kubernetes::KubernetesOptions;
//! use dozen_export::{ProcessType, ReleaseSpec};
//! use dozen_kubernetes::{Cluster, DeployOptions};
//!
//! # async fn f() -> Result<(), dozen_kubernetes::KubeError> {
//! let release = ReleaseSpec {
//!     app: "shop".into(),
//!     version: 3,
//!     process_types: vec![ProcessType::new("web", "./serve")],
//!     ..ReleaseSpec::default()
//! };
//! let cluster = Cluster::connect(Some("shop")).await?;
//! let opts = KubernetesOptions::new("registry.example/shop:v3");
//! let done = cluster
//!     .deploy(&release, &opts, &DeployOptions::default(), &mut |e| eprintln!("{e}"))
//!     .await?;
//! println!("{} is live in {}", done.release, done.namespace);
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod apply;
mod cluster;
mod deploy;
mod error;
mod job;
mod logs;
mod ps;
mod rollout;
mod scale;
mod watch;

pub use apply::FIELD_MANAGER;
pub use cluster::Cluster;
pub use deploy::{
    ANNOTATION_APPLIED, ANNOTATION_IMAGE, ANNOTATION_OBJECTS, ANNOTATION_PREVIOUS, DEFAULT_TIMEOUT,
    DeployOptions, Deployed, Event, LiveRelease,
};
pub use error::{Cause, GiveBack, KubeError};
pub use job::{JobEnd, LOG_TAIL_LINES, job_end, pod_state};
pub use logs::{LOG_BUFFER, LogLine, LogRequest};
pub use ps::{PodStatus, ProcessTypeStatus, pod_status};
pub use rollout::{Rollout, RolloutState};
pub use scale::{SCALE_FIELD_MANAGER, Scaled};
