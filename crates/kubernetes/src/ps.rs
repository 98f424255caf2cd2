//! `dozen ps --on kubernetes`: each process type's Deployment and pods.

use std::collections::BTreeMap;

use dozen_export::kubernetes::{ANNOTATION_PROCESS_TYPE, LABEL_COMPONENT, LABEL_RELEASE};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde::Serialize;

use crate::cluster::{Cluster, app_selector};
use crate::error::KubeError;
use crate::rollout::Rollout;

/// One process type on the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessTypeStatus {
    /// The Procfile's name of the type (`web`; `release` and `run` for Jobs' pods).
    pub process_type: String,
    /// Its Deployment, when it is a long-running type.
    pub deployment: Option<String>,
    /// The release its Deployment runs.
    pub release: Option<String>,
    /// Replicas asked for.
    pub desired: Option<i32>,
    /// Pods of the current template.
    pub updated: Option<i32>,
    /// Ready pods.
    pub ready: Option<i32>,
    /// Its pods, by name.
    pub pods: Vec<PodStatus>,
}

/// One pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodStatus {
    /// The pod's name.
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// Ready containers / containers.
    pub ready: String,
    /// Container restarts, summed.
    pub restarts: i32,
    /// The release it runs (`vN`).
    pub release: Option<String>,
    /// When it started (RFC 3339), if it has.
    pub started: Option<String>,
    /// What a waiting or ended container says (`CrashLoopBackOff`, `OOMKilled`).
    pub reason: Option<String>,
}

impl Cluster {
    /// Every process type of `app` that has a Deployment or pods here, in name order: the
    /// Deployments' rollout counts and each pod's phase, readiness and restarts.
    pub async fn processes(&self, app: &str) -> Result<Vec<ProcessTypeStatus>, KubeError> {
        let lp = ListParams::default().labels(&app_selector(app));
        let deployments = self.list::<Deployment>(&lp).await?;
        let pods = self.list::<Pod>(&lp).await?;
        let mut types: BTreeMap<String, ProcessTypeStatus> = BTreeMap::new();
        let mut component_to_type: BTreeMap<String, String> = BTreeMap::new();
        for d in &deployments {
            let r = Rollout::of(d);
            let labels = d.metadata.labels.clone().unwrap_or_default();
            let component = labels.get(LABEL_COMPONENT).cloned().unwrap_or_default();
            let process_type = d
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_PROCESS_TYPE))
                .cloned()
                .unwrap_or_else(|| component.clone());
            component_to_type.insert(component, process_type.clone());
            types.insert(
                process_type.clone(),
                ProcessTypeStatus {
                    process_type,
                    deployment: d.metadata.name.clone(),
                    release: labels.get(LABEL_RELEASE).cloned(),
                    desired: Some(r.desired),
                    updated: Some(r.updated),
                    ready: Some(r.ready),
                    pods: Vec::new(),
                },
            );
        }
        for p in &pods {
            let component = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_COMPONENT))
                .cloned()
                .unwrap_or_default();
            let process_type = component_to_type
                .get(&component)
                .cloned()
                .unwrap_or(component);
            types
                .entry(process_type.clone())
                .or_insert_with(|| ProcessTypeStatus {
                    process_type,
                    deployment: None,
                    release: None,
                    desired: None,
                    updated: None,
                    ready: None,
                    pods: Vec::new(),
                })
                .pods
                .push(pod_status(p));
        }
        let mut out: Vec<ProcessTypeStatus> = types.into_values().collect();
        for t in &mut out {
            t.pods.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(out)
    }
}

/// What `dozen ps` shows of a pod.
pub fn pod_status(p: &Pod) -> PodStatus {
    let status = p.status.clone().unwrap_or_default();
    let containers = p.spec.as_ref().map_or(0, |s| s.containers.len());
    let statuses = status.container_statuses.unwrap_or_default();
    let ready = statuses.iter().filter(|c| c.ready).count();
    let restarts = statuses.iter().map(|c| c.restart_count).sum();
    let reason = statuses.iter().find_map(|c| {
        let state = c.state.as_ref()?;
        state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .or_else(|| state.terminated.as_ref().and_then(|t| t.reason.clone()))
    });
    PodStatus {
        name: p.metadata.name.clone().unwrap_or_default(),
        phase: status.phase.unwrap_or_else(|| "Pending".into()),
        ready: format!("{ready}/{containers}"),
        restarts,
        release: p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_RELEASE))
            .cloned(),
        started: status.start_time.map(|t| t.0.to_string()),
        reason: reason.or(status.reason),
    }
}
