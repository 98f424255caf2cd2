//! `dozen ps:scale --on kubernetes`: set the replicas of process types on the cluster.

use std::collections::BTreeMap;

use dozen_export::kubernetes::{ANNOTATION_PROCESS_TYPE, LABEL_COMPONENT, object_type_name};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use kube::api::ListParams;
use serde_json::json;

use crate::apply::{Redactor, apply};
use crate::cluster::{Cluster, app_selector};
use crate::error::KubeError;

/// The field manager of `dozen ps:scale --on kubernetes`: it owns `spec.replicas` apart from
/// the rest of the Deployment, which `dozen deploy` owns.
pub const SCALE_FIELD_MANAGER: &str = "dozen-scale";

/// One process type scaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaled {
    /// The Procfile's name.
    pub process_type: String,
    /// Replicas before.
    pub from: i32,
    /// Replicas now.
    pub to: i32,
}

impl Cluster {
    /// Set the replicas of `app`'s process types (Procfile name -> quantity) with
    /// server-side apply of `spec.replicas` alone. Later deploys keep them (see
    /// [`DeployOptions::formation_from_release`](crate::DeployOptions::formation_from_release)):
    /// the cluster's Deployments are the record of the app's formation there.
    ///
    /// Checks every type first: nothing changes when one is unknown or autoscaled.
    pub async fn scale(
        &self,
        app: &str,
        changes: &BTreeMap<String, u32>,
    ) -> Result<Vec<Scaled>, KubeError> {
        let lp = ListParams::default().labels(&app_selector(app));
        let deployments = self.list::<Deployment>(&lp).await?;
        if deployments.is_empty() {
            return Err(KubeError::NotDeployed {
                app: app.to_string(),
                namespace: self.namespace().to_string(),
            });
        }
        let autoscalers = self.list::<HorizontalPodAutoscaler>(&lp).await?;
        let type_of = |d: &Deployment| {
            d.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_PROCESS_TYPE))
                .or_else(|| {
                    d.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(LABEL_COMPONENT))
                })
                .cloned()
                .unwrap_or_default()
        };
        let known: Vec<String> = deployments.iter().map(type_of).collect();
        let mut plan = Vec::new();
        for (t, n) in changes {
            let Some(d) = deployments.iter().find(|d| type_of(d) == *t) else {
                return Err(KubeError::UnknownType {
                    app: app.to_string(),
                    name: t.clone(),
                    known,
                });
            };
            let name = d.metadata.name.clone().unwrap_or_default();
            if let Some(h) = autoscalers.iter().find(|h| {
                h.spec
                    .as_ref()
                    .is_some_and(|s| s.scale_target_ref.name == name)
            }) {
                return Err(KubeError::Invalid(format!(
                    "{t} is autoscaled by HorizontalPodAutoscaler/{}: deploy with another --autoscale {t}=MIN-MAX instead",
                    h.metadata.name.clone().unwrap_or_default()
                )));
            }
            let to = i32::try_from(*n).map_err(|_| {
                KubeError::Invalid(format!("{t}={n}: more replicas than Kubernetes accepts"))
            })?;
            // Only to check the name is one dozen would make.
            object_type_name(t)?;
            let from = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            plan.push((name, t.clone(), from, to));
        }
        let mut out = Vec::new();
        for (name, process_type, from, to) in plan {
            let obj = json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {"replicas": to},
            });
            apply(self, &obj, SCALE_FIELD_MANAGER, &Redactor::default()).await?;
            out.push(Scaled {
                process_type,
                from,
                to,
            });
        }
        Ok(out)
    }
}
