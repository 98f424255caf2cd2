//! `dozen logs --on kubernetes`: the output of the app's pods, read through the API server.

use dozen_export::kubernetes::{LABEL_COMPONENT, LABEL_NAME, object_type_name};
use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use tokio::sync::mpsc;

use crate::cluster::Cluster;
use crate::error::KubeError;

/// How many lines may wait for the reader of [`Cluster::logs`]: at the bound, the pods'
/// streams wait (backpressure; nothing is dropped).
pub const LOG_BUFFER: usize = 256;

/// One line of a pod's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The pod.
    pub pod: String,
    /// The line, without its newline.
    pub line: String,
}

/// Which output to read.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    /// Only the pods of this process type (Procfile name), or this one pod.
    pub process: Option<String>,
    /// The last N lines of each pod (all when `None`).
    pub tail: Option<i64>,
    /// Keep following the pods' output until they end (pods that start later are not
    /// picked up).
    pub follow: bool,
}

impl Cluster {
    /// The output of `app`'s pods (or of one process type or pod): a channel that yields
    /// each pod's lines in order, pod after pod without `follow`, interleaved as they come
    /// with it; it closes when every stream has ended. An error reading one pod comes
    /// through the channel and the others go on.
    ///
    /// Fails at once when no pod matches. Must run inside a tokio runtime (it spawns a task
    /// per pod).
    pub async fn logs(
        &self,
        app: &str,
        request: &LogRequest,
    ) -> Result<mpsc::Receiver<Result<LogLine, KubeError>>, KubeError> {
        let mut selector = format!("{LABEL_NAME}={app}");
        let mut one_pod = None;
        if let Some(p) = &request.process {
            match object_type_name(p) {
                Ok(t) if !p.starts_with(&format!("{app}-")) => {
                    selector.push_str(&format!(",{LABEL_COMPONENT}={t}"));
                }
                _ => one_pod = Some(p.clone()),
            }
        }
        let mut pods: Vec<String> = self
            .list::<Pod>(&ListParams::default().labels(&selector))
            .await?
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .filter(|n| one_pod.as_ref().is_none_or(|o| o == n))
            .collect();
        pods.sort();
        if pods.is_empty() {
            return Err(KubeError::Invalid(format!(
                "{app} has no pods{} in namespace {} (see `dozen ps -a {app} --on kubernetes`)",
                request
                    .process
                    .as_ref()
                    .map(|p| format!(" matching `{p}`"))
                    .unwrap_or_default(),
                self.namespace()
            )));
        }
        let (tx, rx) = mpsc::channel(LOG_BUFFER);
        let params = LogParams {
            follow: request.follow,
            tail_lines: request.tail,
            ..LogParams::default()
        };
        if request.follow {
            for pod in pods {
                let api = self.api::<Pod>();
                let tx = tx.clone();
                let params = params.clone();
                tokio::spawn(async move { stream_pod(api, pod, params, tx).await });
            }
        } else {
            let api = self.api::<Pod>();
            tokio::spawn(async move {
                for pod in pods {
                    if !stream_pod(api.clone(), pod, params.clone(), tx.clone()).await {
                        return;
                    }
                }
            });
        }
        Ok(rx)
    }
}

/// Send one pod's lines; false when the reader has gone.
async fn stream_pod(
    api: kube::Api<Pod>,
    pod: String,
    params: LogParams,
    tx: mpsc::Sender<Result<LogLine, KubeError>>,
) -> bool {
    let what = format!("reading the output of pod {pod}");
    let reader = match api.log_stream(&pod, &params).await {
        Ok(r) => r,
        Err(e) => return tx.send(Err(KubeError::request(what, e))).await.is_ok(),
    };
    let mut lines = reader.lines();
    while let Some(line) = lines.next().await {
        let item = match line {
            Ok(line) => Ok(LogLine {
                pod: pod.clone(),
                line,
            }),
            Err(e) => Err(KubeError::Invalid(format!("{what}: {e}"))),
        };
        let stop = item.is_err();
        if tx.send(item).await.is_err() {
            return false;
        }
        if stop {
            break;
        }
    }
    true
}
