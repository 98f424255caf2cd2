//! When is a Deployment rolled out: the checks of `kubectl rollout status`, as a pure
//! function of the Deployment.

use k8s_openapi::api::apps::v1::Deployment;

/// Where one Deployment's rollout is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The process type (the component label, else the Deployment's name).
    pub process_type: String,
    /// The replicas asked for (`spec.replicas`, 1 when unset as the API server defaults it).
    pub desired: i32,
    /// Pods of the current template (`status.updatedReplicas`).
    pub updated: i32,
    /// Ready pods (`status.readyReplicas`).
    pub ready: i32,
    /// Available pods (`status.availableReplicas`).
    pub available: i32,
    /// Pods in all, old ones included (`status.replicas`).
    pub total: i32,
    /// Whether the controller has seen the current spec (`observedGeneration >= generation`).
    pub observed: bool,
    /// What the rollout is doing.
    pub state: RolloutState,
}

/// The verdict of `kubectl rollout status` on a Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// The Deployment controller has not yet seen the new spec.
    Waiting,
    /// New pods are being made ready, or old ones removed.
    Progressing,
    /// Every desired pod runs the new template and is available.
    Complete,
    /// The `Progressing` condition says `ProgressDeadlineExceeded`: Kubernetes gave up.
    DeadlineExceeded {
        /// The condition's message.
        message: String,
    },
}

impl Rollout {
    /// The state of `d`, as `kubectl rollout status` decides it: the spec must be observed;
    /// then the progress deadline must not have passed, every desired replica must be
    /// updated, no old replica may be left, and every updated replica must be available.
    pub fn of(d: &Deployment) -> Rollout {
        let status = d.status.clone().unwrap_or_default();
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let generation = d.metadata.generation.unwrap_or(0);
        let observed = status.observed_generation.unwrap_or(-1) >= generation;
        let updated = status.updated_replicas.unwrap_or(0);
        let ready = status.ready_replicas.unwrap_or(0);
        let available = status.available_replicas.unwrap_or(0);
        let total = status.replicas.unwrap_or(0);
        let deadline = status
            .conditions
            .iter()
            .flatten()
            .find(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
            .map(|c| c.message.clone().unwrap_or_default());
        let state = if !observed {
            RolloutState::Waiting
        } else if let Some(message) = deadline {
            RolloutState::DeadlineExceeded { message }
        } else if updated < desired || total > updated || available < updated {
            RolloutState::Progressing
        } else {
            RolloutState::Complete
        };
        let process_type = d
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(dozen_export::kubernetes::LABEL_COMPONENT))
            .cloned()
            .or_else(|| d.metadata.name.clone())
            .unwrap_or_default();
        Rollout {
            process_type,
            desired,
            updated,
            ready,
            available,
            total,
            observed,
            state,
        }
    }

    /// Whether the rollout is done.
    pub fn is_complete(&self) -> bool {
        self.state == RolloutState::Complete
    }

    /// One line for a person: `web: 1/3 updated, 0 ready`, with what it waits for.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}: {}/{} updated, {} ready",
            self.process_type, self.updated, self.desired, self.ready
        );
        match &self.state {
            RolloutState::Waiting => {
                s.push_str(" (waiting for the Deployment controller to see the new spec)")
            }
            RolloutState::Progressing if self.total > self.updated => {
                s.push_str(&format!(
                    ", {} old pending termination",
                    self.total - self.updated
                ));
            }
            RolloutState::Progressing => {}
            RolloutState::Complete => s.push_str(" (rolled out)"),
            RolloutState::DeadlineExceeded { .. } => s.push_str(" (progress deadline exceeded)"),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(generation: i64, spec: i32, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("shop-web".into()),
                generation: Some(generation),
                labels: Some(
                    [(
                        dozen_export::kubernetes::LABEL_COMPONENT.to_string(),
                        "web".to_string(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(spec),
                ..DeploymentSpec::default()
            }),
            status: Some(status),
        }
    }

    fn status(
        observed: i64,
        total: i32,
        updated: i32,
        ready: i32,
        available: i32,
    ) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(total),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            ..DeploymentStatus::default()
        }
    }

    #[test]
    fn the_states_of_kubectl_rollout_status() {
        // Not yet observed: whatever the counts say, it waits.
        let r = Rollout::of(&deployment(2, 3, status(1, 3, 3, 3, 3)));
        assert_eq!(r.state, RolloutState::Waiting);
        // No status at all (no controller ever ran).
        let mut d = deployment(1, 3, DeploymentStatus::default());
        d.status = None;
        assert_eq!(Rollout::of(&d).state, RolloutState::Waiting);
        // Updating.
        let r = Rollout::of(&deployment(2, 3, status(2, 4, 1, 3, 3)));
        assert_eq!(r.state, RolloutState::Progressing);
        assert_eq!(
            r.line(),
            "web: 1/3 updated, 3 ready, 3 old pending termination"
        );
        // All updated, one not yet available.
        let r = Rollout::of(&deployment(2, 3, status(2, 3, 3, 2, 2)));
        assert_eq!(r.state, RolloutState::Progressing);
        // Done.
        let r = Rollout::of(&deployment(2, 3, status(2, 3, 3, 3, 3)));
        assert!(r.is_complete());
        assert_eq!(r.line(), "web: 3/3 updated, 3 ready (rolled out)");
        // Scaled to zero: done at once.
        assert!(Rollout::of(&deployment(2, 0, status(2, 0, 0, 0, 0))).is_complete());
        // The controller gave up.
        let mut s = status(2, 4, 1, 3, 3);
        s.conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            message: Some("ReplicaSet \"shop-web-5d\" has timed out progressing.".into()),
            ..DeploymentCondition::default()
        }]);
        assert!(matches!(
            Rollout::of(&deployment(2, 3, s)).state,
            RolloutState::DeadlineExceeded { .. }
        ));
    }
}
