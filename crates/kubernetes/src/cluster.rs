//! [`Cluster`]: a connection to one namespace of one cluster.

use std::fmt;

use kube::{Api, Client};
use serde::de::DeserializeOwned;

use crate::error::KubeError;

/// A client of one Kubernetes API server, working in one namespace.
///
/// [`connect`](Self::connect) finds the cluster the way `kubectl` does (`KUBECONFIG`, then
/// `~/.kube/config`, then the service account of the pod it runs in);
/// [`new`](Self::new) takes a client made otherwise (tests, other configurations).
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    namespace: String,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connect to the cluster of the current kubeconfig context (or the pod's own), in
    /// `namespace` or else the context's namespace (`default` when it names none).
    ///
    /// Needs a tokio runtime: the client runs on it.
    pub async fn connect(namespace: Option<&str>) -> Result<Cluster, KubeError> {
        let config = kube::Config::infer().await.map_err(|e| KubeError::Config {
            reason: e.to_string(),
        })?;
        let client = Client::try_from(config).map_err(|e| KubeError::Config {
            reason: e.to_string(),
        })?;
        Ok(Cluster::new(client, namespace))
    }

    /// Connect with the current context of the kubeconfig file at `path`, in `namespace` or
    /// else the context's.
    pub async fn from_kubeconfig(
        path: &std::path::Path,
        namespace: Option<&str>,
    ) -> Result<Cluster, KubeError> {
        let config_error = |reason: String| KubeError::Config {
            reason: format!("{}: {reason}", path.display()),
        };
        let kubeconfig =
            kube::config::Kubeconfig::read_from(path).map_err(|e| config_error(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| config_error(e.to_string()))?;
        let client = Client::try_from(config).map_err(|e| config_error(e.to_string()))?;
        Ok(Cluster::new(client, namespace))
    }

    /// Work through `client` in `namespace`, or else the client's default namespace.
    pub fn new(client: Client, namespace: Option<&str>) -> Cluster {
        let namespace = match namespace {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => client.default_namespace().to_string(),
        };
        Cluster { client, namespace }
    }

    /// The namespace every object is read from and written to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The API of one namespaced kind in [`namespace`](Self::namespace).
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// `app.kubernetes.io/name=APP,app.kubernetes.io/managed-by=dozen`: every object dozen made
/// for the app.
pub(crate) fn app_selector(app: &str) -> String {
    use dozen_export::kubernetes::{LABEL_MANAGED_BY, LABEL_NAME, MANAGER};
    format!("{LABEL_NAME}={app},{LABEL_MANAGED_BY}={MANAGER}")
}
