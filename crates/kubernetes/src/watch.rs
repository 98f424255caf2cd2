//! Waiting for objects to reach a state by watching them (list, then watch from the list's
//! resource version; list again when the watch ends or its version has expired).

use std::collections::BTreeMap;
use std::fmt::Debug;

use futures_util::{StreamExt, pin_mut};
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::KubeError;

/// Which objects to watch: a label selector, a field selector, or both.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    pub(crate) labels: Option<String>,
    pub(crate) fields: Option<String>,
}

impl Selection {
    pub(crate) fn labels(s: impl Into<String>) -> Selection {
        Selection {
            labels: Some(s.into()),
            fields: None,
        }
    }

    pub(crate) fn name(name: &str) -> Selection {
        Selection {
            labels: None,
            fields: Some(format!("metadata.name={name}")),
        }
    }

    fn list_params(&self) -> ListParams {
        let mut lp = ListParams::default();
        if let Some(l) = &self.labels {
            lp = lp.labels(l);
        }
        if let Some(f) = &self.fields {
            lp = lp.fields(f);
        }
        lp
    }

    fn watch_params(&self, timeout_secs: u32) -> WatchParams {
        let mut wp = WatchParams::default().timeout(timeout_secs);
        if let Some(l) = &self.labels {
            wp = wp.labels(l);
        }
        if let Some(f) = &self.fields {
            wp = wp.fields(f);
        }
        wp
    }
}

/// Watch the objects of `selection` (by name) until `check` returns a value, or `deadline`
/// passes (`Ok(None)`). `check` sees every state, the first as listed.
pub(crate) async fn wait_for<K, T>(
    api: &Api<K>,
    selection: &Selection,
    deadline: Instant,
    what: &str,
    mut check: impl FnMut(&BTreeMap<String, K>) -> Option<T>,
) -> Result<Option<T>, KubeError>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    loop {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        let list = match tokio::time::timeout_at(deadline, api.list(&selection.list_params())).await
        {
            Ok(list) => list.map_err(|e| KubeError::request(what, e))?,
            Err(_) => return Ok(None),
        };
        let version = list.metadata.resource_version.clone().unwrap_or_default();
        let mut objects: BTreeMap<String, K> = list
            .items
            .into_iter()
            .map(|o| (o.meta().name.clone().unwrap_or_default(), o))
            .collect();
        if let Some(t) = check(&objects) {
            return Ok(Some(t));
        }
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        // The server ends a watch after its timeout; a little past the deadline is fine, the
        // deadline below ends the wait.
        let timeout = u32::try_from(left.clamp(1, 290) + 1).unwrap_or(290);
        let stream = match tokio::time::timeout_at(
            deadline,
            api.watch(&selection.watch_params(timeout), &version),
        )
        .await
        {
            Ok(s) => s.map_err(|e| KubeError::request(what, e))?,
            Err(_) => return Ok(None),
        };
        pin_mut!(stream);
        loop {
            let event = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Ok(None),
                // The watch ended (its timeout): list again.
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(KubeError::request(what, e)),
                Ok(Some(Ok(e))) => e,
            };
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    objects.insert(o.meta().name.clone().unwrap_or_default(), o);
                }
                WatchEvent::Deleted(o) => {
                    objects.remove(o.meta().name.as_deref().unwrap_or_default());
                }
                WatchEvent::Bookmark(_) => continue,
                // 410 Gone: the version is too old; list again.
                WatchEvent::Error(e) if e.code == 410 => break,
                WatchEvent::Error(e) => {
                    return Err(KubeError::Api {
                        what: what.to_string(),
                        code: e.code,
                        reason: e.reason,
                        message: e.message,
                    });
                }
            }
            if let Some(t) = check(&objects) {
                return Ok(Some(t));
            }
        }
    }
}
