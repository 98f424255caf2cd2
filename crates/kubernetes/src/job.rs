//! Jobs: the release phase (wait until it completes, say why when it does not) and one-off
//! commands (`dozen run --on kubernetes`).

use std::time::Duration;

use dozen_export::ReleaseSpec;
use dozen_export::kubernetes::{KubernetesOptions, one_off_job};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams, PostParams};
use kube::core::Request;
use tokio::time::Instant;

use crate::apply::{Redactor, send};
use crate::cluster::Cluster;
use crate::error::KubeError;
use crate::watch::{Selection, wait_for};

/// How many lines of a failed pod's output an error shows.
pub const LOG_TAIL_LINES: i64 = 20;

/// How a Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Its `Complete` condition is true.
    Complete,
    /// Its `Failed` condition is true: the reason and message.
    Failed(String),
}

/// The end of `job` as its conditions say, if it has ended.
pub fn job_end(job: &Job) -> Option<JobEnd> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    for c in conditions {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => return Some(JobEnd::Complete),
            "Failed" => {
                let reason = c.reason.clone().unwrap_or_else(|| "Failed".into());
                return Some(JobEnd::Failed(match c.message.as_deref() {
                    Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                    _ => reason,
                }));
            }
            _ => {}
        }
    }
    None
}

impl Cluster {
    /// Wait until Job `name` completes or fails, or `timeout` passes (`Ok(None)`).
    pub async fn wait_for_job(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<JobEnd>, KubeError> {
        let api = self.api::<Job>();
        let deadline = Instant::now() + timeout;
        wait_for(
            &api,
            &Selection::name(name),
            deadline,
            &format!("watching Job/{name}"),
            |jobs| jobs.get(name).and_then(job_end),
        )
        .await
    }

    /// The pods of Job `name`, newest first.
    pub async fn job_pods(&self, name: &str) -> Result<Vec<Pod>, KubeError> {
        let mut pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&format!("job-name={name}")))
            .await
            .map_err(|e| KubeError::request(format!("listing the pods of Job/{name}"), e))?
            .items;
        pods.sort_by(|a, b| {
            b.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .cmp(&a.metadata.creation_timestamp.as_ref().map(|t| t.0))
        });
        Ok(pods)
    }

    /// The last `lines` lines of the newest pod of Job `name`; empty when it has no pod or
    /// its output cannot be read (the pod never started, its node is gone).
    pub async fn job_log_tail(&self, name: &str, lines: i64) -> Vec<String> {
        let Ok(pods) = self.job_pods(name).await else {
            return Vec::new();
        };
        let Some(pod) = pods.first().and_then(|p| p.metadata.name.clone()) else {
            return Vec::new();
        };
        let lp = LogParams {
            tail_lines: Some(lines),
            ..LogParams::default()
        };
        match self.api::<Pod>().logs(&pod, &lp).await {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Why Job `name` has not ended: no pod yet (and a hint when nothing makes pods), or its
    /// newest pod's state.
    pub async fn job_state(&self, name: &str) -> String {
        match self.job_pods(name).await {
            Ok(pods) if pods.is_empty() => {
                "no pod was made for it (is the cluster's controller-manager running, and is there quota?)".into()
            }
            Ok(pods) => pod_state(&pods[0]),
            Err(e) => format!("its pods cannot be listed: {e}"),
        }
    }

    /// Wait until a pod of Job `name` has started (it runs, or has already ended), or
    /// `timeout` passes (`Ok(None)`); returns the pod's name.
    pub async fn await_job_pod(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<String>, KubeError> {
        let api = self.api::<Pod>();
        wait_for(
            &api,
            &Selection::labels(format!("job-name={name}")),
            Instant::now() + timeout,
            &format!("watching the pods of Job/{name}"),
            |pods| {
                pods.values()
                    .find(|p| {
                        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                        matches!(phase, Some("Running" | "Succeeded" | "Failed"))
                    })
                    .and_then(|p| p.metadata.name.clone())
            },
        )
        .await
    }

    /// The exit code of pod `name`'s first container, once it has ended.
    pub async fn pod_exit_code(&self, name: &str) -> Result<Option<i32>, KubeError> {
        let pod = self
            .api::<Pod>()
            .get_opt(name)
            .await
            .map_err(|e| KubeError::request(format!("reading pod {name}"), e))?;
        Ok(pod
            .and_then(|p| p.status)
            .and_then(|s| s.container_statuses)
            .and_then(|c| c.into_iter().next())
            .and_then(|c| c.state)
            .and_then(|s| s.terminated)
            .map(|t| t.exit_code))
    }

    /// Create the Job that runs `command` once in `release`'s environment (the Job of
    /// [`one_off_job`]); returns its name (`<app>-run-xxxxx`, made by the API server).
    pub async fn run_one_off(
        &self,
        release: &ReleaseSpec,
        opts: &KubernetesOptions,
        command: &str,
    ) -> Result<String, KubeError> {
        let mut opts = opts.clone();
        opts.namespace = Some(self.namespace().to_string());
        let job = one_off_job(release, &opts, command)?;
        let body = serde_json::to_vec(&job).map_err(|e| KubeError::decode("the one-off Job", e))?;
        let url = <Job as kube::Resource>::url_path(&(), Some(self.namespace()));
        let req = Request::new(url)
            .create(
                &PostParams {
                    field_manager: Some(crate::apply::FIELD_MANAGER.into()),
                    ..PostParams::default()
                },
                body,
            )
            .map_err(|e| KubeError::decode("creating the one-off Job", e))?;
        let redact = Redactor::new(release.config.values().map(String::as_str));
        let name = format!("{}-run-…", release.app);
        let created = send(
            self,
            req,
            "creating the one-off Job",
            Some(("Job", &name)),
            &redact,
        )
        .await?;
        created["metadata"]["name"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                KubeError::decode("creating the one-off Job", "the created Job has no name")
            })
    }
}

/// One line on a pod: its phase, and what its container waits for or why it ended.
pub fn pod_state(pod: &Pod) -> String {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let Some(status) = &pod.status else {
        return format!("pod {name} has no status yet");
    };
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let mut s = format!("pod {name} is {phase}");
    if status.container_statuses.as_ref().is_none_or(Vec::is_empty) {
        if let Some(c) = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.status != "True" && c.message.is_some())
        {
            s.push_str(&format!(
                " ({}: {})",
                c.reason.clone().unwrap_or_else(|| c.type_.clone()),
                c.message.clone().unwrap_or_default()
            ));
        } else if pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_none()
        {
            s.push_str(" (not scheduled to a node)");
        }
    }
    for c in status.container_statuses.iter().flatten() {
        let Some(state) = &c.state else { continue };
        if let Some(w) = &state.waiting {
            s.push_str(&format!(
                "; {} waiting: {}{}",
                c.name,
                w.reason.clone().unwrap_or_default(),
                w.message
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ));
        }
        if let Some(t) = &state.terminated {
            s.push_str(&format!(
                "; {} exited with code {}{}",
                c.name,
                t.exit_code,
                t.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

    #[test]
    fn a_job_ends_by_its_conditions() {
        let mut job = Job::default();
        assert_eq!(job_end(&job), None);
        job.status = Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("BackoffLimitExceeded".into()),
                message: Some("Job has reached the specified backoff limit".into()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        });
        assert_eq!(
            job_end(&job),
            Some(JobEnd::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            ))
        );
        job.status = Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: "Complete".into(),
                status: "True".into(),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        });
        assert_eq!(job_end(&job), Some(JobEnd::Complete));
    }
}
