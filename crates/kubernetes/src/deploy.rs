//! `dozen deploy --to kubernetes`: apply a release, run its release phase, wait for the
//! rollout, and give the previous state back when the rollout does not become ready.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use dozen_export::ReleaseSpec;
use dozen_export::kubernetes::{
    ANNOTATION_PROCESS_TYPE, KubernetesOptions, LABEL_COMPONENT, LABEL_RELEASE, manifests,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Secret, Service};
use kube::Resource;
use kube::api::{DeleteParams, ListParams};
use kube::core::Request;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::apply::{FIELD_MANAGER, Redactor, apply, send};
use crate::cluster::{Cluster, app_selector};
use crate::error::{GiveBack, KubeError};
use crate::job::{JobEnd, LOG_TAIL_LINES, job_end};
use crate::rollout::{Rollout, RolloutState};
use crate::watch::{Selection, wait_for};

/// The object as `dozen deploy` applied it (JSON, without this annotation), on every
/// Deployment, Service and autoscaler: what a failed rollout re-applies to return to it.
pub const ANNOTATION_APPLIED: &str = "dozen.dev/applied";
/// The release that ran before this one (`vN`), on the Deployments: the default of
/// `dozen rollback --to kubernetes`.
pub const ANNOTATION_PREVIOUS: &str = "dozen.dev/previous-release";
/// The image a release's pods run, on its Secret: what a one-off in it runs.
pub const ANNOTATION_IMAGE: &str = "dozen.dev/image";
/// The Deployments, Service and autoscalers of a release as generated (a JSON array, no
/// config value in it), on its Secret: what a rollback to it applies again.
pub const ANNOTATION_OBJECTS: &str = "dozen.dev/objects";

/// How long to wait, by default, for the release phase and then for the rollout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How [`Cluster::deploy`] goes about it.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// How long the release Job may take, and then how long the rollout may take.
    pub timeout: Duration,
    /// Wait for the rollout (and give back on failure). The release Job is always waited
    /// for: processes never start on a release whose release phase has not completed.
    pub wait: bool,
    /// Return to the previous state when the rollout does not become ready.
    pub give_back: bool,
    /// Procfile types whose replicas come from the release even when their Deployment
    /// exists. The others keep the cluster's replicas (`dozen ps:scale --on kubernetes`
    /// changes them there), and take the release's formation only when new.
    pub formation_from_release: BTreeSet<String>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            timeout: DEFAULT_TIMEOUT,
            wait: true,
            give_back: true,
            formation_from_release: BTreeSet::new(),
        }
    }
}

/// What [`Cluster::deploy`] reports as it goes. `Display` is one line for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An object was applied.
    Applied {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
    /// A Deployment keeps the replicas it has on the cluster.
    KeptReplicas {
        /// The process type.
        process_type: String,
        /// Its replicas.
        replicas: i32,
    },
    /// The release Job of this release had failed before: it is removed to run again.
    RetryingRelease {
        /// The Job.
        job: String,
    },
    /// The release phase already completed for this release (a deploy again).
    ReleaseAlreadyDone {
        /// The Job.
        job: String,
    },
    /// Waiting for the release Job.
    ReleaseRunning {
        /// The Job.
        job: String,
    },
    /// The release Job completed.
    ReleaseDone {
        /// The Job.
        job: String,
    },
    /// A Deployment's rollout changed.
    Rollout(Rollout),
    /// An object of an earlier release that this one does not have was deleted.
    Removed {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
    /// The rollout failed: returning to the previous state.
    GivingBack {
        /// The previous release, when known.
        previous: Option<String>,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Applied { kind, name } => write!(f, "applied {kind}/{name}"),
            Event::KeptReplicas {
                process_type,
                replicas,
            } => write!(
                f,
                "{process_type}: keeps its {replicas} replicas on the cluster (-m {process_type}=N to change them)"
            ),
            Event::RetryingRelease { job } => {
                write!(
                    f,
                    "Job/{job} failed before: deleted, to run the release phase again"
                )
            }
            Event::ReleaseAlreadyDone { job } => {
                write!(f, "release phase: Job/{job} already completed")
            }
            Event::ReleaseRunning { job } => {
                write!(f, "release phase: waiting for Job/{job} to complete")
            }
            Event::ReleaseDone { job } => write!(f, "release phase: Job/{job} completed"),
            Event::Rollout(r) => f.write_str(&r.line()),
            Event::Removed { kind, name } => {
                write!(f, "deleted {kind}/{name} (not in this release)")
            }
            Event::GivingBack { previous } => match previous {
                Some(v) => write!(f, "the rollout failed: applying {v}'s objects again"),
                None => write!(f, "the rollout failed: applying the previous objects again"),
            },
        }
    }
}

/// What a successful [`Cluster::deploy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// `vN`.
    pub release: String,
    /// Where.
    pub namespace: String,
    /// The release that ran before, when one did.
    pub previous: Option<String>,
    /// Whether the rollout was waited for and completed (false with `wait: false`).
    pub rolled_out: bool,
}

/// One object dozen applied before this deploy.
#[derive(Debug, Clone)]
struct Before {
    kind: String,
    name: String,
    /// What was applied (the [`ANNOTATION_APPLIED`]), with the live replicas.
    applied: Option<Value>,
    /// The live `spec.replicas` of a Deployment.
    replicas: Option<i32>,
    release: Option<String>,
    previous: Option<String>,
}

/// What ran before: dozen's Deployments, Service and autoscalers of the app.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    objects: Vec<Before>,
}

impl Snapshot {
    fn release(&self) -> Option<String> {
        self.objects
            .iter()
            .filter(|o| o.kind == "Deployment")
            .find_map(|o| o.release.clone())
    }

    /// The release that ran before the live one, as the live Deployments say.
    fn previous(&self) -> Option<String> {
        self.objects
            .iter()
            .filter(|o| o.kind == "Deployment")
            .find_map(|o| o.previous.clone())
    }

    fn get(&self, kind: &str, name: &str) -> Option<&Before> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
    }
}

/// `obj` with [`ANNOTATION_APPLIED`] set to itself (without that annotation).
pub(crate) fn with_applied_annotation(mut obj: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let empty = match meta.get_mut("annotations").and_then(Value::as_object_mut) {
            Some(a) => {
                a.remove(ANNOTATION_APPLIED);
                a.is_empty()
            }
            None => false,
        };
        if empty {
            meta.remove("annotations");
        }
    }
    let text = obj.to_string();
    set_annotation(&mut obj, ANNOTATION_APPLIED, &text);
    obj
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = Value::Object(serde_json::Map::new());
    }
    obj["metadata"]["annotations"][key] = Value::String(value.to_string());
}

fn to_json<T: Serialize>(obj: &T, what: &str) -> Result<Value, KubeError> {
    serde_json::to_value(obj).map_err(|e| KubeError::decode(what, e))
}

/// The Procfile name of a Deployment's process type: its annotation when the object name
/// had to change it, else its component label.
fn process_type_of(obj: &Value) -> String {
    let meta = &obj["metadata"];
    meta["annotations"][ANNOTATION_PROCESS_TYPE]
        .as_str()
        .or_else(|| meta["labels"][LABEL_COMPONENT].as_str())
        .unwrap_or_default()
        .to_string()
}

fn kind_name(obj: &Value) -> (String, String) {
    (
        obj["kind"].as_str().unwrap_or_default().to_string(),
        obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

impl Cluster {
    /// Run `release` on the cluster, in this order:
    ///
    /// 1. its Secret (immutable, named after the release; annotated with the image and the
    ///    objects of step 3, for a rollback to this release);
    /// 2. its `release` Job, when it has one, and wait until it completes (a failed or
    ///    late Job fails the deploy with its reason and last output, and nothing else
    ///    changes; a Job that failed on an earlier try is deleted first, so a deploy again
    ///    runs it again);
    /// 3. its Deployments, Service and autoscalers (each annotated with what was applied);
    /// 4. with [`DeployOptions::wait`], wait until every Deployment is rolled out
    ///    (`kubectl rollout status`'s checks), reporting each change; if that does not
    ///    happen within the timeout, or the progress deadline passes, apply again what ran
    ///    before (and delete the objects the release added) unless
    ///    [`DeployOptions::give_back`] is off, and fail with why;
    /// 5. delete the Deployments, Service and autoscalers of earlier releases that this one
    ///    does not have.
    ///
    /// Everything is applied server-side as field manager `dozen`, forcing conflicts. The
    /// objects go into [`namespace`](Self::namespace), whatever `opts` says.
    pub async fn deploy(
        &self,
        release: &ReleaseSpec,
        opts: &KubernetesOptions,
        how: &DeployOptions,
        progress: &mut dyn FnMut(&Event),
    ) -> Result<Deployed, KubeError> {
        let mut opts = opts.clone();
        opts.namespace = Some(self.namespace().to_string());
        let m = manifests(release, &opts)?;
        let version = release.version_label();

        let mut objects: Vec<Value> = Vec::new();
        for d in &m.deployments {
            objects.push(to_json(d, "a Deployment")?);
        }
        if let Some(s) = &m.service {
            objects.push(to_json(s, "the Service")?);
        }
        for h in &m.autoscalers {
            objects.push(to_json(h, "an autoscaler")?);
        }

        let mut secret = to_json(&m.secret, "the Secret")?;
        set_annotation(&mut secret, ANNOTATION_IMAGE, &opts.image);
        set_annotation(
            &mut secret,
            ANNOTATION_OBJECTS,
            &Value::Array(objects.clone()).to_string(),
        );
        let redact =
            Redactor::new(release.config.values().map(String::as_str)).with_secret_json(&secret);

        let before = self.snapshot(&release.app).await?;
        self.apply_reported(&secret, &redact, progress).await?;
        if let Some(job) = &m.release_job {
            self.release_phase(job, &version, how.timeout, &redact, progress)
                .await?;
        }
        self.roll(
            &release.app,
            &version,
            objects,
            &before,
            how,
            &redact,
            progress,
        )
        .await
    }

    /// Run again release `version` (`vN`; default: the one that ran before the live one)
    /// of `app`, as it was deployed here: its Deployments, Service and autoscalers, kept on
    /// its Secret, are applied again (with the cluster's replicas), then steps 4 and 5 of
    /// [`deploy`](Self::deploy). Its release phase does not run again, and nothing is asked
    /// of the dozen server: its config is the release's own Secret.
    pub async fn rollback(
        &self,
        app: &str,
        version: Option<&str>,
        how: &DeployOptions,
        progress: &mut dyn FnMut(&Event),
    ) -> Result<Deployed, KubeError> {
        let before = self.snapshot(app).await?;
        let version = match version {
            Some(v) => format!("v{}", v.trim_start_matches('v')),
            None => before.previous().ok_or_else(|| {
                KubeError::Invalid(match before.release() {
                    Some(live) => format!(
                        "{app} runs {live} in namespace {} and no release ran before it here; name one: dozen rollback vN",
                        self.namespace()
                    ),
                    None => format!(
                        "{app} is not deployed in namespace {}: there is nothing to roll back",
                        self.namespace()
                    ),
                })
            })?,
        };
        let name = format!("{app}-config-{version}");
        let secret = self
            .api::<Secret>()
            .get_metadata_opt(&name)
            .await
            .map_err(|e| KubeError::request(format!("reading Secret/{name}"), e))?;
        let objects = secret
            .and_then(|s| s.metadata.annotations)
            .and_then(|mut a| a.remove(ANNOTATION_OBJECTS))
            .ok_or_else(|| {
                KubeError::Invalid(format!(
                    "{app} {version} was not deployed to namespace {} by `dozen deploy` (Secret/{name} with its objects is missing); deploy it with `dozen deploy -a {app} --to kubernetes --release {version}`",
                    self.namespace()
                ))
            })?;
        let objects: Vec<Value> = serde_json::from_str(&objects)
            .map_err(|e| KubeError::decode(format!("the objects kept on Secret/{name}"), e))?;
        self.roll(
            app,
            &version,
            objects,
            &before,
            how,
            &Redactor::default(),
            progress,
        )
        .await
    }

    /// Steps 3 to 5 of [`deploy`](Self::deploy) for `objects` of release `version`.
    #[allow(clippy::too_many_arguments)]
    async fn roll(
        &self,
        app: &str,
        version: &str,
        objects: Vec<Value>,
        before: &Snapshot,
        how: &DeployOptions,
        redact: &Redactor,
        progress: &mut dyn FnMut(&Event),
    ) -> Result<Deployed, KubeError> {
        let previous_release = before.release();
        let mut run_objects: Vec<Value> = Vec::new();
        for mut v in objects {
            let (kind, name) = kind_name(&v);
            if kind == "Deployment" {
                let live = before.get("Deployment", &name);
                let process_type = process_type_of(&v);
                if let (Some(live_replicas), true) = (
                    live.and_then(|l| l.replicas),
                    v["spec"]["replicas"].is_number()
                        && !how.formation_from_release.contains(&process_type),
                ) {
                    if v["spec"]["replicas"].as_i64() != Some(i64::from(live_replicas)) {
                        progress(&Event::KeptReplicas {
                            process_type,
                            replicas: live_replicas,
                        });
                    }
                    v["spec"]["replicas"] = Value::from(live_replicas);
                }
                let previous = match live {
                    Some(l) if l.release.as_deref() == Some(version) => l.previous.clone(),
                    Some(l) => l.release.clone(),
                    None => None,
                };
                if let Some(p) = previous {
                    set_annotation(&mut v, ANNOTATION_PREVIOUS, &p);
                }
            }
            run_objects.push(with_applied_annotation(v));
        }
        for obj in &run_objects {
            self.apply_reported(obj, redact, progress).await?;
        }

        // The rollout.
        let deployments: Vec<String> = run_objects
            .iter()
            .map(kind_name)
            .filter(|(k, _)| k == "Deployment")
            .map(|(_, n)| n)
            .collect();
        let mut rolled_out = false;
        if how.wait {
            match self
                .wait_for_rollout(app, &deployments, how.timeout, progress)
                .await?
            {
                Ok(()) => rolled_out = true,
                Err(mut reasons) => {
                    let gave_back = if !how.give_back {
                        GiveBack::NotAsked
                    } else if before.objects.is_empty() {
                        GiveBack::NothingBefore
                    } else {
                        progress(&Event::GivingBack {
                            previous: previous_release.clone(),
                        });
                        self.give_back(before, &run_objects, progress).await
                    };
                    reasons.extend(before.objects.iter().filter(|o| o.applied.is_none()).map(
                        |o| {
                            format!(
                                "{}/{} was not applied by `dozen deploy` (it has no {ANNOTATION_APPLIED} annotation): it is left as it is",
                                o.kind, o.name
                            )
                        },
                    ));
                    return Err(KubeError::RolloutFailed {
                        release: version.to_string(),
                        reasons,
                        gave_back,
                    });
                }
            }
        }

        // What this release no longer has.
        for b in &before.objects {
            let gone = !run_objects
                .iter()
                .any(|o| kind_name(o) == (b.kind.clone(), b.name.clone()));
            if gone {
                self.delete(&b.kind, &b.name).await?;
                progress(&Event::Removed {
                    kind: b.kind.clone(),
                    name: b.name.clone(),
                });
            }
        }

        Ok(Deployed {
            release: version.to_string(),
            namespace: self.namespace().to_string(),
            previous: previous_release,
            rolled_out,
        })
    }

    async fn apply_reported(
        &self,
        obj: &Value,
        redact: &Redactor,
        progress: &mut dyn FnMut(&Event),
    ) -> Result<Value, KubeError> {
        let stored = apply(self, obj, FIELD_MANAGER, redact).await?;
        let (kind, name) = kind_name(obj);
        progress(&Event::Applied { kind, name });
        Ok(stored)
    }

    async fn release_phase(
        &self,
        job: &Job,
        version: &str,
        timeout: Duration,
        redact: &Redactor,
        progress: &mut dyn FnMut(&Event),
    ) -> Result<(), KubeError> {
        let name = job.metadata.name.clone().unwrap_or_default();
        let api = self.api::<Job>();
        let live = api
            .get_opt(&name)
            .await
            .map_err(|e| KubeError::request(format!("reading Job/{name}"), e))?;
        match live.as_ref().and_then(job_end) {
            Some(JobEnd::Complete) => {
                progress(&Event::ReleaseAlreadyDone { job: name });
                return Ok(());
            }
            Some(JobEnd::Failed(_)) => {
                self.delete("Job", &name).await?;
                self.wait_gone::<Job>(&name, timeout).await?;
                progress(&Event::RetryingRelease { job: name.clone() });
            }
            None => {}
        }
        self.apply_reported(&to_json(job, "the release Job")?, redact, progress)
            .await?;
        progress(&Event::ReleaseRunning { job: name.clone() });
        match self.wait_for_job(&name, timeout).await? {
            Some(JobEnd::Complete) => {
                progress(&Event::ReleaseDone { job: name });
                Ok(())
            }
            Some(JobEnd::Failed(reason)) => Err(KubeError::ReleaseFailed {
                release: version.to_string(),
                logs: self.job_log_tail(&name, LOG_TAIL_LINES).await,
                job: name,
                reason,
            }),
            None => Err(KubeError::ReleaseTimedOut {
                release: version.to_string(),
                state: self.job_state(&name).await,
                logs: self.job_log_tail(&name, LOG_TAIL_LINES).await.into(),
                namespace: self.namespace().to_string(),
                job: name,
                timeout_secs: timeout.as_secs(),
            }),
        }
    }

    /// Wait until every Deployment in `names` is rolled out. `Ok(Err(reasons))` when it does
    /// not happen in time or a progress deadline passes.
    async fn wait_for_rollout(
        &self,
        app: &str,
        names: &[String],
        timeout: Duration,
        progress: &mut dyn FnMut(&Event),
    ) -> Result<Result<(), Vec<String>>, KubeError> {
        let api = self.api::<Deployment>();
        let deadline = Instant::now() + timeout;
        let mut last: BTreeMap<String, Rollout> = BTreeMap::new();
        let mut latest: BTreeMap<String, Deployment> = BTreeMap::new();
        let outcome = wait_for(
            &api,
            &Selection::labels(app_selector(app)),
            deadline,
            "watching the rollout",
            |objects| {
                let mut all_done = true;
                for name in names {
                    let Some(d) = objects.get(name) else {
                        all_done = false;
                        continue;
                    };
                    latest.insert(name.clone(), d.clone());
                    let r = Rollout::of(d);
                    if last.get(name) != Some(&r) {
                        progress(&Event::Rollout(r.clone()));
                        last.insert(name.clone(), r.clone());
                    }
                    if let RolloutState::DeadlineExceeded { .. } = r.state {
                        return Some(false);
                    }
                    all_done &= r.is_complete();
                }
                all_done.then_some(true)
            },
        )
        .await?;
        if outcome == Some(true) {
            return Ok(Ok(()));
        }
        let mut reasons = Vec::new();
        if outcome.is_none() {
            reasons.push(format!("not rolled out within {}s", timeout.as_secs()));
        }
        for name in names {
            let Some(d) = latest.get(name) else {
                reasons.push(format!("Deployment/{name} is missing"));
                continue;
            };
            let r = Rollout::of(d);
            if r.is_complete() {
                continue;
            }
            reasons.extend(self.why_not_ready(name, d, &r).await);
        }
        Ok(Err(reasons))
    }

    /// The state, conditions and recent warning events of a Deployment that is not rolled
    /// out.
    async fn why_not_ready(&self, name: &str, d: &Deployment, r: &Rollout) -> Vec<String> {
        let mut out = vec![format!("Deployment/{name}: {}", r.line())];
        if !r.observed {
            let generation = d.metadata.generation.unwrap_or(0);
            let observed = d
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .map_or("none".to_string(), |g| g.to_string());
            out.push(format!(
                "Deployment/{name}: no Deployment controller has seen generation {generation} (observed: {observed}); is the cluster's controller-manager running?"
            ));
        }
        for c in d
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
        {
            if c.status == "True" && c.type_ != "ReplicaFailure" {
                continue;
            }
            out.push(format!(
                "Deployment/{name}: {} is {}: {}{}",
                c.type_,
                c.status,
                c.reason.unwrap_or_default(),
                c.message.map(|m| format!(" ({m})")).unwrap_or_default()
            ));
        }
        // Warning events of the Deployment, its ReplicaSets and their pods, newest last.
        if let Ok(events) = self
            .api::<KubeEvent>()
            .list(&ListParams::default().fields("type=Warning"))
            .await
        {
            let prefix = format!("{name}-");
            let mut mine: Vec<KubeEvent> = events
                .items
                .into_iter()
                .filter(|e| {
                    e.involved_object
                        .name
                        .as_deref()
                        .is_some_and(|n| n == name || n.starts_with(&prefix))
                })
                .collect();
            mine.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
            for e in mine.iter().rev().take(5).rev() {
                out.push(format!(
                    "{}/{}: {}: {}",
                    e.involved_object.kind.clone().unwrap_or_default(),
                    e.involved_object.name.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default().trim()
                ));
            }
        }
        out
    }

    /// Apply again what ran before; delete what the failed release added.
    async fn give_back(
        &self,
        before: &Snapshot,
        applied: &[Value],
        progress: &mut dyn FnMut(&Event),
    ) -> GiveBack {
        let previous = before.release();
        let redact = Redactor::default();
        for b in &before.objects {
            let Some(obj) = &b.applied else { continue };
            let obj = with_applied_annotation(obj.clone());
            if let Err(e) = self.apply_reported(&obj, &redact, progress).await {
                return GiveBack::Failed {
                    reason: e.to_string(),
                };
            }
        }
        for obj in applied {
            let (kind, name) = kind_name(obj);
            if before.get(&kind, &name).is_none() {
                if let Err(e) = self.delete(&kind, &name).await {
                    return GiveBack::Failed {
                        reason: e.to_string(),
                    };
                }
                progress(&Event::Removed { kind, name });
            }
        }
        GiveBack::Returned { previous }
    }

    /// dozen's Deployments, Service and autoscalers of `app`, with what was applied.
    async fn snapshot(&self, app: &str) -> Result<Snapshot, KubeError> {
        let lp = ListParams::default().labels(&app_selector(app));
        let mut objects = Vec::new();
        for d in self.list::<Deployment>(&lp).await? {
            let replicas = d.spec.as_ref().and_then(|s| s.replicas);
            let mut b = before_of("Deployment", &d.metadata);
            if let (Some(applied), Some(n)) = (b.applied.as_mut(), replicas) {
                if applied["spec"]["replicas"].is_number() {
                    applied["spec"]["replicas"] = Value::from(n);
                }
            }
            b.replicas = replicas;
            objects.push(b);
        }
        for s in self.list::<Service>(&lp).await? {
            objects.push(before_of("Service", &s.metadata));
        }
        for h in self.list::<HorizontalPodAutoscaler>(&lp).await? {
            objects.push(before_of("HorizontalPodAutoscaler", &h.metadata));
        }
        Ok(Snapshot { objects })
    }

    pub(crate) async fn list<K>(&self, lp: &ListParams) -> Result<Vec<K>, KubeError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + fmt::Debug,
    {
        Ok(self
            .api::<K>()
            .list(lp)
            .await
            .map_err(|e| KubeError::request(format!("listing {}s", K::kind(&())), e))?
            .items)
    }

    /// Delete an object dozen applied (its dependents in the background); gone already is
    /// fine.
    pub(crate) async fn delete(&self, kind: &str, name: &str) -> Result<(), KubeError> {
        let what = format!("deleting {kind}/{name}");
        let url = crate::apply::url_path(kind, self.namespace())
            .ok_or_else(|| KubeError::Invalid(format!("{what}: dozen does not manage {kind}s")))?;
        let req = Request::new(url)
            .delete(name, &DeleteParams::background())
            .map_err(|e| KubeError::decode(&what, e))?;
        match send(self, req, &what, None, &Redactor::default()).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn wait_gone<K>(&self, name: &str, timeout: Duration) -> Result<(), KubeError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + fmt::Debug
            + Send
            + 'static,
    {
        let gone = wait_for(
            &self.api::<K>(),
            &Selection::name(name),
            Instant::now() + timeout,
            &format!("waiting for {}/{name} to be deleted", K::kind(&())),
            |objects| objects.is_empty().then_some(()),
        )
        .await?;
        gone.ok_or_else(|| {
            KubeError::Invalid(format!(
                "{}/{name} was deleted but is still there after {}s; delete it by hand and deploy again",
                K::kind(&()),
                timeout.as_secs()
            ))
        })
    }

    /// The release the app's Deployments run (their `dozen.dev/release` label), the one
    /// before it and the image, or `None` when the app has no Deployment here.
    pub async fn live_release(&self, app: &str) -> Result<Option<LiveRelease>, KubeError> {
        let lp = ListParams::default().labels(&app_selector(app));
        let deployments = self.list::<Deployment>(&lp).await?;
        let Some(d) = deployments.first() else {
            return Ok(None);
        };
        let b = before_of("Deployment", &d.metadata);
        let image = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.clone());
        Ok(Some(LiveRelease {
            release: b.release.unwrap_or_default(),
            previous: b.previous,
            image,
        }))
    }

    /// The image release `version` (`vN`) of `app` ran, as its Secret records it.
    pub async fn release_image(
        &self,
        app: &str,
        version: &str,
    ) -> Result<Option<String>, KubeError> {
        let name = format!("{app}-config-{version}");
        let secret = self
            .api::<Secret>()
            .get_metadata_opt(&name)
            .await
            .map_err(|e| KubeError::request(format!("reading Secret/{name}"), e))?;
        Ok(secret.and_then(|s| {
            s.metadata
                .annotations
                .and_then(|mut a| a.remove(ANNOTATION_IMAGE))
        }))
    }
}

/// What runs on the cluster for an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRelease {
    /// `vN`.
    pub release: String,
    /// The release before it, when one ran.
    pub previous: Option<String>,
    /// The image its pods run.
    pub image: Option<String>,
}

fn before_of(
    kind: &str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Before {
    let annotations = meta.annotations.clone().unwrap_or_default();
    Before {
        kind: kind.to_string(),
        name: meta.name.clone().unwrap_or_default(),
        applied: annotations
            .get(ANNOTATION_APPLIED)
            .and_then(|a| serde_json::from_str(a).ok()),
        replicas: None,
        release: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_RELEASE))
            .cloned(),
        previous: annotations.get(ANNOTATION_PREVIOUS).cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_applied_annotation_holds_the_object_without_itself() {
        let obj = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "shop-web", "annotations": {"dozen.dev/process-type": "web"}},
            "spec": {"replicas": 2}
        });
        let once = with_applied_annotation(obj.clone());
        let inner: Value = serde_json::from_str(
            once["metadata"]["annotations"][ANNOTATION_APPLIED]
                .as_str()
                .expect("annotation"),
        )
        .expect("json");
        assert_eq!(inner, obj);
        // Applying again what was applied gives the same object.
        assert_eq!(with_applied_annotation(inner), once);
        // Without other annotations, none is left behind in the inner copy.
        let bare = serde_json::json!({"kind": "Service", "metadata": {"name": "shop"}});
        let inner: Value = serde_json::from_str(
            with_applied_annotation(bare.clone())["metadata"]["annotations"][ANNOTATION_APPLIED]
                .as_str()
                .expect("annotation"),
        )
        .expect("json");
        assert_eq!(inner, bare);
    }

    #[test]
    fn events_read_as_one_line() {
        assert_eq!(
            Event::GivingBack {
                previous: Some("v1".into())
            }
            .to_string(),
            "the rollout failed: applying v1's objects again"
        );
        assert_eq!(
            Event::Applied {
                kind: "Secret".into(),
                name: "shop-config-v2".into()
            }
            .to_string(),
            "applied Secret/shop-config-v2"
        );
    }
}
