//! A release as Kubernetes objects.
//!
//! [`manifests`] turns a [`ReleaseSpec`] and [`KubernetesOptions`] into [`Manifests`]:
//!
//! | object | name | what it is for |
//! |---|---|---|
//! | Secret | `<app>-config-v<N>` | the config vars, immutable, pinned to the release so a rollback rolls config too |
//! | Job | `<app>-release-v<N>` | the `release` process type, once per release (its name is unique to the release) |
//! | Deployment | `<app>-<type>` | each long-running process type, `replicas` from the formation |
//! | Service | `<app>` | port 80 to the `web` pods' `PORT` |
//! | HorizontalPodAutoscaler | `<app>-<type>` | `autoscaling/v1`, for the types given in [`KubernetesOptions::autoscale`] |
//!
//! [`one_off_job`] builds the Job of a one-off command (`dozen run --on kubernetes`).
//!
//! Every pod runs its process type's command as `/bin/sh -c` in the image (the way dozen runs
//! it, see [`dozen_core::command`]; `$(` and `$$` are escaped so the kubelet passes them on
//! untouched), in [`KubernetesOptions::workdir`], with `PORT`, `PS` (the
//! pod's name) and the Secret as environment (`envFrom`), and these defaults: CPU and memory
//! requests and limits ([`Resources`]), `runAsNonRoot` with a numeric user, no privilege
//! escalation, all capabilities dropped, the `RuntimeDefault` seccomp profile, a read-only root
//! filesystem with an `emptyDir` at `/tmp`, no service account token and no service-link
//! variables (the environment is the release's config and nothing else).
//! `terminationGracePeriodSeconds` is the release's grace; `web` pods get a readiness probe
//! (HTTP GET on the health-check path when the app declares one, else a TCP connect to
//! `PORT`) and roll with `maxUnavailable: 0`.
//!
//! Labels, on every object and pod: [`LABEL_NAME`] (the app), [`LABEL_COMPONENT`] (the process
//! type; not on the Secret), [`LABEL_VERSION`] and [`LABEL_RELEASE`] (`vN`),
//! [`LABEL_MANAGED_BY`] (`dozen`). Selectors use only the app and component labels, which
//! never change between releases. Process type names become object names in lower case with
//! `_` as `-`; the original name is kept in the [`ANNOTATION_PROCESS_TYPE`] annotation.
//!
//! Only fields that exist in Kubernetes 1.20 are used, so one set of manifests works on every
//! version from 1.20 on (the CI validates them against 1.20 and the newest schemas).

mod resources;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v1::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, SeccompProfile, Secret, SecretEnvSource, SecurityContext, Service, ServicePort,
    ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

pub use resources::{Autoscale, Resources, parse_quantity};

use crate::error::ExportError;
use crate::release::{RELEASE_TYPE, ReleaseSpec};

/// The app's name: `app.kubernetes.io/name`.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// The process type (`web`, `worker`, `release`, `run` for one-offs).
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// The release, `vN`, as Kubernetes' recommended version label.
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";
/// `dozen`.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The release, `vN`, under dozen's own prefix: select a release's pods with
/// `-l dozen.dev/release=v3`.
pub const LABEL_RELEASE: &str = "dozen.dev/release";
/// The Procfile's own name of the process type, when the object name had to change it.
pub const ANNOTATION_PROCESS_TYPE: &str = "dozen.dev/process-type";
/// The value of [`LABEL_MANAGED_BY`].
pub const MANAGER: &str = "dozen";
/// The component label of one-off Jobs.
pub const ONE_OFF_COMPONENT: &str = "run";

/// How the release runs on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesOptions {
    /// The image every container runs (`registry.example/shop:v3`), one made by
    /// `dozen build --oci` or any image with the app at [`workdir`](Self::workdir) and
    /// `/bin/sh`.
    pub image: String,
    /// The namespace of every object; `None` leaves it to the client's context.
    pub namespace: Option<String>,
    /// Resources of each process type not in [`resources`](Self::resources).
    pub default_resources: Resources,
    /// Resources per process type (Procfile name).
    pub resources: BTreeMap<String, Resources>,
    /// Autoscalers per process type (Procfile name). A type with one gets no `replicas` in its
    /// Deployment, so applying again does not fight the autoscaler.
    pub autoscale: BTreeMap<String, Autoscale>,
    /// The numeric user (and group) processes run as; never 0.
    pub run_as_user: i64,
    /// The `PORT` every process gets (each pod has its own network namespace).
    pub port: u16,
    /// Where the app is in the image, the processes' working directory.
    pub workdir: String,
}

/// The user `dozen build --oci` images run as.
pub const DEFAULT_USER: i64 = 10001;
/// The `PORT` of the containers.
pub const DEFAULT_PORT: u16 = 5000;
/// Where `dozen build --oci` puts the app.
pub const DEFAULT_WORKDIR: &str = "/app";

impl KubernetesOptions {
    /// Options for `image` with every default: no namespace, [`Resources::default`], no
    /// autoscaler, user [`DEFAULT_USER`], port [`DEFAULT_PORT`], workdir [`DEFAULT_WORKDIR`].
    pub fn new(image: impl Into<String>) -> Self {
        KubernetesOptions {
            image: image.into(),
            namespace: None,
            default_resources: Resources::default(),
            resources: BTreeMap::new(),
            autoscale: BTreeMap::new(),
            run_as_user: DEFAULT_USER,
            port: DEFAULT_PORT,
            workdir: DEFAULT_WORKDIR.into(),
        }
    }

    fn resources_of(&self, type_name: &str) -> &Resources {
        self.resources
            .get(type_name)
            .unwrap_or(&self.default_resources)
    }

    fn check(&self, release: &ReleaseSpec) -> Result<(), ExportError> {
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            return Err(ExportError::option(
                "image",
                "give an image reference such as registry.example/shop:v3 (no spaces)",
            ));
        }
        if let Some(ns) = &self.namespace {
            dns_label(ns)
                .map_err(|reason| ExportError::option(format!("namespace `{ns}`"), reason))?;
        }
        if self.run_as_user <= 0 {
            return Err(ExportError::option(
                "user",
                "processes must run as a numeric user other than root (0)",
            ));
        }
        if self.port == 0 {
            return Err(ExportError::option("port", "PORT must be 1-65535"));
        }
        if !self.workdir.starts_with('/') {
            return Err(ExportError::option(
                "workdir",
                "the working directory must be an absolute path",
            ));
        }
        self.default_resources.check("default resources")?;
        let known = |name: &str, option: &str| -> Result<(), ExportError> {
            if name == RELEASE_TYPE && option == "--autoscale" {
                return Err(ExportError::option(
                    format!("{option} {name}"),
                    "the release phase runs once per release and cannot be autoscaled",
                ));
            }
            if release.process_types.iter().any(|t| t.name == name) {
                Ok(())
            } else {
                Err(ExportError::UnknownFormationType {
                    name: name.to_string(),
                    known: release
                        .process_types
                        .iter()
                        .map(|t| t.name.clone())
                        .collect(),
                })
            }
        };
        for (name, r) in &self.resources {
            known(name, "--resources")?;
            r.check(&format!("--resources {name}"))?;
        }
        for (name, a) in &self.autoscale {
            known(name, "--autoscale")?;
            a.check(&format!("--autoscale {name}"))?;
        }
        Ok(())
    }
}

/// The objects of one release, in the order to apply them: [`secret`](Self::secret), then
/// [`release_job`](Self::release_job) (wait until it completes), then the rest.
///
/// `Debug` names the objects; it never shows the Secret's data.
#[derive(Clone, PartialEq)]
pub struct Manifests {
    /// The release's config vars.
    pub secret: Secret,
    /// The `release` process type's Job, when the Procfile has one.
    pub release_job: Option<Job>,
    /// One per long-running process type, in Procfile order.
    pub deployments: Vec<Deployment>,
    /// For `web`, when the Procfile has it.
    pub service: Option<Service>,
    /// For the process types given an [`Autoscale`].
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
}

impl fmt::Debug for Manifests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self
            .documents_unrendered()
            .into_iter()
            .map(|(kind, name, _)| format!("{kind}/{name}"))
            .collect::<Vec<_>>();
        f.debug_struct("Manifests")
            .field("objects", &names)
            .finish()
    }
}

/// Which step of a rollout an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The Secret: first, everything else refers to it.
    Config,
    /// The release Job: must complete before the Deployments change.
    Release,
    /// Deployments, the Service and autoscalers.
    Run,
}

impl Phase {
    /// A short name, used as the directory of [`Manifests::files`].
    pub fn dir_name(self) -> &'static str {
        match self {
            Phase::Config => "1-config",
            Phase::Release => "2-release",
            Phase::Run => "3-run",
        }
    }
}

/// One object rendered as YAML.
#[derive(Clone, PartialEq, Eq)]
pub struct Document {
    /// Its kind (`Deployment`).
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// When to apply it.
    pub phase: Phase,
    /// The YAML text, one document, ending with a newline.
    pub yaml: String,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Document {
    /// `<kind>-<name>.yaml` in lower case, under its phase's directory.
    pub fn file_name(&self) -> String {
        format!(
            "{}/{}-{}.yaml",
            self.phase.dir_name(),
            self.kind.to_ascii_lowercase(),
            self.name
        )
    }
}

type Unrendered<'a> = (
    &'static str,
    String,
    Box<dyn FnOnce() -> Result<String, ()> + 'a>,
);

impl Manifests {
    fn documents_unrendered(&self) -> Vec<Unrendered<'_>> {
        fn entry<'a, T: Serialize + k8s_openapi::Metadata<Ty = ObjectMeta>>(
            kind: &'static str,
            obj: &'a T,
        ) -> Unrendered<'a> {
            let name = obj.metadata().name.clone().unwrap_or_default();
            (
                kind,
                name,
                Box::new(move || serde_saphyr::to_string(obj).map_err(|_| ())),
            )
        }
        let mut out = vec![entry("Secret", &self.secret)];
        if let Some(job) = &self.release_job {
            out.push(entry("Job", job));
        }
        out.extend(self.deployments.iter().map(|d| entry("Deployment", d)));
        if let Some(s) = &self.service {
            out.push(entry("Service", s));
        }
        out.extend(
            self.autoscalers
                .iter()
                .map(|h| entry("HorizontalPodAutoscaler", h)),
        );
        out
    }

    /// Every object as YAML, in apply order.
    pub fn documents(&self) -> Result<Vec<Document>, ExportError> {
        self.documents_unrendered()
            .into_iter()
            .map(|(kind, name, render)| {
                let phase = match kind {
                    "Secret" => Phase::Config,
                    "Job" => Phase::Release,
                    _ => Phase::Run,
                };
                let yaml = render().map_err(|()| ExportError::Yaml {
                    what: format!("{kind}/{name}"),
                })?;
                Ok(Document {
                    kind,
                    name,
                    phase,
                    yaml: ensure_newline(yaml),
                })
            })
            .collect()
    }

    /// One YAML stream (`---` between documents) in apply order, for `kubectl apply -f -`.
    pub fn to_yaml(&self) -> Result<String, ExportError> {
        Ok(join_documents(
            self.documents()?.iter().map(|d| d.yaml.as_str()),
        ))
    }
}

/// Documents joined into one stream, each starting with `---`.
pub fn join_documents<'a>(docs: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(d);
        if !d.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn ensure_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Any one object as a YAML document (for a [`one_off_job`], say).
pub fn to_yaml<T: Serialize + k8s_openapi::Resource>(obj: &T) -> Result<String, ExportError> {
    serde_saphyr::to_string(obj)
        .map(ensure_newline)
        .map_err(|_| ExportError::Yaml {
            what: T::KIND.to_string(),
        })
}

/// The objects that run `release` on a cluster. Checks the release and the options first.
pub fn manifests(
    release: &ReleaseSpec,
    opts: &KubernetesOptions,
) -> Result<Manifests, ExportError> {
    release.check()?;
    opts.check(release)?;
    let k = Kube::new(release, opts)?;

    let secret = k.secret();
    let release_job = match release.release_phase() {
        Some(t) => {
            let name = format!("{}-release-{}", release.app, release.version_label());
            Some(k.job(&name, RELEASE_TYPE, &t.command, k.pod_labels(RELEASE_TYPE)?)?)
        }
        None => None,
    };
    let mut deployments = Vec::new();
    let mut autoscalers = Vec::new();
    let mut service = None;
    for t in release.long_running() {
        deployments.push(k.deployment(&t.name, &t.command)?);
        if let Some(a) = opts.autoscale.get(&t.name) {
            autoscalers.push(k.autoscaler(&t.name, a)?);
        }
        if t.name == "web" {
            service = Some(k.service()?);
        }
    }
    Ok(Manifests {
        secret,
        release_job,
        deployments,
        service,
        autoscalers,
    })
}

/// The Job that runs `command` once in the release's environment: the same image, Secret,
/// working directory and hygiene as the release's pods, no retries (`backoffLimit: 0`), and
/// removed an hour after it finishes (`ttlSecondsAfterFinished`, honoured from 1.21, ignored
/// before).
///
/// It has `metadata.generateName` (`<app>-run-`) and no name, so `kubectl create -f` makes a
/// new Job each time; a client that applies it (server-side apply needs a name) sets
/// `metadata.name` first.
pub fn one_off_job(
    release: &ReleaseSpec,
    opts: &KubernetesOptions,
    command: &str,
) -> Result<Job, ExportError> {
    release.check()?;
    opts.check(release)?;
    if command.trim().is_empty() {
        return Err(ExportError::option("command", "give the command to run"));
    }
    let k = Kube::new(release, opts)?;
    let mut labels = k.labels(None);
    labels.insert(LABEL_COMPONENT.into(), ONE_OFF_COMPONENT.into());
    let mut job = k.job("", ONE_OFF_COMPONENT, command, labels)?;
    job.metadata.name = None;
    job.metadata.generate_name = Some(format!("{}-run-", release.app));
    if let Some(spec) = job.spec.as_mut() {
        spec.ttl_seconds_after_finished = Some(3600);
    }
    Ok(job)
}

/// What every object is built from.
struct Kube<'a> {
    release: &'a ReleaseSpec,
    opts: &'a KubernetesOptions,
    /// Procfile name -> the name used in object names and labels.
    names: BTreeMap<String, String>,
}

impl<'a> Kube<'a> {
    fn new(release: &'a ReleaseSpec, opts: &'a KubernetesOptions) -> Result<Self, ExportError> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for t in &release.process_types {
            let k8s = object_type_name(&t.name)?;
            if let Some((other, _)) = names.iter().find(|(_, n)| **n == k8s) {
                return Err(ExportError::InvalidProcessType {
                    name: t.name.clone(),
                    reason: format!(
                        "it and `{other}` both become `{k8s}` in Kubernetes names (lower case, `_` as `-`); rename one in the Procfile"
                    ),
                });
            }
            let full = format!("{}-{k8s}", release.app);
            if full.len() > 63 {
                return Err(ExportError::InvalidProcessType {
                    name: t.name.clone(),
                    reason: format!(
                        "`{full}` is longer than the 63 characters Kubernetes allows in a name; shorten the type or app name"
                    ),
                });
            }
            names.insert(t.name.clone(), k8s);
        }
        Ok(Kube {
            release,
            opts,
            names,
        })
    }

    fn type_name(&self, procfile_name: &str) -> Result<&str, ExportError> {
        self.names
            .get(procfile_name)
            .map(String::as_str)
            .ok_or_else(|| ExportError::UnknownFormationType {
                name: procfile_name.to_string(),
                known: self.names.keys().cloned().collect(),
            })
    }

    fn secret_name(&self) -> String {
        format!(
            "{}-config-{}",
            self.release.app,
            self.release.version_label()
        )
    }

    /// The labels of every object of the release, with the component when given.
    fn labels(&self, component: Option<&str>) -> BTreeMap<String, String> {
        let v = self.release.version_label();
        let mut labels = BTreeMap::from([
            (LABEL_NAME.to_string(), self.release.app.clone()),
            (LABEL_VERSION.to_string(), v.clone()),
            (LABEL_MANAGED_BY.to_string(), MANAGER.to_string()),
            (LABEL_RELEASE.to_string(), v),
        ]);
        if let Some(c) = component {
            labels.insert(LABEL_COMPONENT.into(), c.into());
        }
        labels
    }

    fn pod_labels(&self, procfile_name: &str) -> Result<BTreeMap<String, String>, ExportError> {
        Ok(self.labels(Some(self.type_name(procfile_name)?)))
    }

    fn selector(&self, procfile_name: &str) -> Result<BTreeMap<String, String>, ExportError> {
        Ok(BTreeMap::from([
            (LABEL_NAME.to_string(), self.release.app.clone()),
            (
                LABEL_COMPONENT.to_string(),
                self.type_name(procfile_name)?.to_string(),
            ),
        ]))
    }

    fn meta(
        &self,
        name: String,
        labels: BTreeMap<String, String>,
        procfile_name: Option<&str>,
    ) -> ObjectMeta {
        let annotations = procfile_name
            .filter(|p| self.names.get(*p).is_some_and(|k| k != p))
            .map(|p| BTreeMap::from([(ANNOTATION_PROCESS_TYPE.to_string(), p.to_string())]));
        ObjectMeta {
            name: Some(name),
            namespace: self.opts.namespace.clone(),
            labels: Some(labels),
            annotations,
            ..ObjectMeta::default()
        }
    }

    fn secret(&self) -> Secret {
        let data = self
            .release
            .config
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
            .collect();
        Secret {
            metadata: self.meta(self.secret_name(), self.labels(None), None),
            data: Some(data),
            immutable: Some(true),
            type_: Some("Opaque".into()),
            ..Secret::default()
        }
    }

    fn container(&self, container_name: &str, procfile_name: &str, command: &str) -> Container {
        let line = self.release.run_env.shell_line(&self.opts.workdir, command);
        let [shell, dash_c, line] = dozen_core::command::argv(&line);
        let env = vec![
            EnvVar {
                name: "PORT".into(),
                value: Some(self.opts.port.to_string()),
                ..EnvVar::default()
            },
            EnvVar {
                name: "PS".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
        ];
        Container {
            name: container_name.into(),
            image: Some(self.opts.image.clone()),
            command: Some(vec![shell, dash_c, escape_kubelet(&line)]),
            working_dir: Some(self.opts.workdir.clone()),
            env: Some(env),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: self.secret_name(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]),
            resources: Some(self.opts.resources_of(procfile_name).requirements()),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                privileged: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                run_as_user: Some(self.opts.run_as_user),
                run_as_group: Some(self.opts.run_as_user),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        }
    }

    fn pod_spec(&self, container: Container, restart_policy: Option<&str>) -> PodSpec {
        PodSpec {
            containers: vec![container],
            restart_policy: restart_policy.map(str::to_string),
            termination_grace_period_seconds: Some(i64::from(self.release.grace_seconds)),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(self.opts.run_as_user),
                run_as_group: Some(self.opts.run_as_user),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            volumes: Some(vec![Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }
    }

    fn deployment(&self, procfile_name: &str, command: &str) -> Result<Deployment, ExportError> {
        let type_name = self.type_name(procfile_name)?;
        let name = format!("{}-{type_name}", self.release.app);
        let labels = self.pod_labels(procfile_name)?;
        let mut container = self.container(type_name, procfile_name, command);
        let web = procfile_name == "web";
        if web {
            container.ports = Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(self.opts.port),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]);
            let port = IntOrString::String("http".into());
            let mut probe = Probe {
                period_seconds: Some(5),
                timeout_seconds: Some(2),
                failure_threshold: Some(3),
                ..Probe::default()
            };
            match &self.release.health_check {
                Some(path) => {
                    probe.http_get = Some(HTTPGetAction {
                        path: Some(path.clone()),
                        port,
                        ..HTTPGetAction::default()
                    });
                }
                None => {
                    probe.tcp_socket = Some(TCPSocketAction {
                        port,
                        ..TCPSocketAction::default()
                    });
                }
            }
            container.readiness_probe = Some(probe);
        }
        let replicas = match self.opts.autoscale.contains_key(procfile_name) {
            true => None,
            false => Some(
                i32::try_from(self.release.quantity(procfile_name)).map_err(|_| {
                    ExportError::option(
                        format!("formation {procfile_name}"),
                        "the quantity is above what Kubernetes accepts",
                    )
                })?,
            ),
        };
        let strategy = web.then(|| DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_unavailable: Some(IntOrString::Int(0)),
                max_surge: Some(IntOrString::String("25%".into())),
            }),
        });
        Ok(Deployment {
            metadata: self.meta(name, labels.clone(), Some(procfile_name)),
            spec: Some(DeploymentSpec {
                replicas,
                selector: LabelSelector {
                    match_labels: Some(self.selector(procfile_name)?),
                    ..LabelSelector::default()
                },
                strategy,
                template: PodTemplateSpec {
                    metadata: Some(self.meta_template(labels, procfile_name)),
                    spec: Some(self.pod_spec(container, None)),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        })
    }

    fn meta_template(&self, labels: BTreeMap<String, String>, procfile_name: &str) -> ObjectMeta {
        let mut meta = self.meta(String::new(), labels, Some(procfile_name));
        meta.name = None;
        meta.namespace = None;
        meta
    }

    fn job(
        &self,
        name: &str,
        component: &str,
        command: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Job, ExportError> {
        let container = self.container(component, component, command);
        let mut meta_template = self.meta(String::new(), labels.clone(), None);
        meta_template.name = None;
        meta_template.namespace = None;
        Ok(Job {
            metadata: self.meta(name.to_string(), labels, None),
            spec: Some(JobSpec {
                backoff_limit: Some(0),
                template: PodTemplateSpec {
                    metadata: Some(meta_template),
                    spec: Some(self.pod_spec(container, Some("Never"))),
                },
                ..JobSpec::default()
            }),
            ..Job::default()
        })
    }

    fn service(&self) -> Result<Service, ExportError> {
        let labels = self.pod_labels("web")?;
        Ok(Service {
            metadata: self.meta(self.release.app.clone(), labels, None),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(self.selector("web")?),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        })
    }

    fn autoscaler(
        &self,
        procfile_name: &str,
        a: &Autoscale,
    ) -> Result<HorizontalPodAutoscaler, ExportError> {
        let name = format!("{}-{}", self.release.app, self.type_name(procfile_name)?);
        let int = |n: u32, what: &str| {
            i32::try_from(n).map_err(|_| {
                ExportError::option(
                    format!("--autoscale {procfile_name}"),
                    format!("{what} is too large"),
                )
            })
        };
        Ok(HorizontalPodAutoscaler {
            metadata: self.meta(
                name.clone(),
                self.pod_labels(procfile_name)?,
                Some(procfile_name),
            ),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name,
                },
                min_replicas: Some(int(a.min, "the minimum")?),
                max_replicas: int(a.max, "the maximum")?,
                target_cpu_utilization_percentage: Some(int(a.cpu_percent, "the CPU target")?),
            }),
            ..HorizontalPodAutoscaler::default()
        })
    }
}

/// The name a Procfile process type has in Kubernetes object names and labels: lower case,
/// `_` as `-`; it must then be a DNS label (letters, digits and `-`, starting and ending with
/// a letter or digit).
pub fn object_type_name(procfile_name: &str) -> Result<String, ExportError> {
    let name = procfile_name.to_ascii_lowercase().replace('_', "-");
    dns_label(&name).map_err(|reason| ExportError::InvalidProcessType {
        name: procfile_name.to_string(),
        reason: format!("as a Kubernetes name `{name}`: {reason}; rename it in the Procfile"),
    })?;
    Ok(name)
}

/// `line` with `$` doubled where the kubelet would otherwise read it: before `(` (it expands
/// `$(NAME)` from the container's environment) and before `$` (it turns `$$` into `$`). The
/// shell then sees exactly the Procfile's command.
fn escape_kubelet(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && matches!(chars.peek(), Some('$' | '(')) {
            out.push('$');
        }
    }
    out
}

/// Check an RFC 1123 DNS label: 1-63 of `a-z 0-9 -`, starting and ending with a letter or
/// digit.
fn dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err("it must have 1 to 63 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("{c:?} is not allowed (only a-z, 0-9 and -)"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("it must start and end with a letter or digit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
