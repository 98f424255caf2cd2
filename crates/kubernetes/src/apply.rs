//! Server-side apply, and requests whose errors keep the API server's causes.
//!
//! kube-rs turns an error answer into its message alone; a 422 carries one cause per invalid
//! field (`details.causes`), and the user needs each of them with its field path. So the
//! requests that write go through [`send`], which reads the `Status` itself.

use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Patch, PatchParams};
use kube::core::Request;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::{Cause, KubeError};

/// The field manager of everything `dozen deploy` applies.
pub const FIELD_MANAGER: &str = "dozen";

/// Masks config values in text that came from the API server (its messages may quote a
/// field's value).
#[derive(Default, Clone)]
pub(crate) struct Redactor {
    values: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    /// Mask each of `values` (and the base64 strings of a Secret's `data`, given as they are
    /// in its JSON). Values shorter than 4 characters are left alone: masking `1` would mask
    /// every digit of the message.
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= 4)
            .map(str::to_string)
            .collect();
        // Longest first, so a value containing another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// Add the base64 strings of a Secret's `data` as serialized.
    pub(crate) fn with_secret_json(mut self, secret: &Value) -> Redactor {
        if let Some(data) = secret["data"].as_object() {
            self.values.extend(
                data.values()
                    .filter_map(Value::as_str)
                    .filter(|v| v.len() >= 4)
                    .map(str::to_string),
            );
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.values.dedup();
        self
    }

    pub(crate) fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "[config value]");
            }
        }
        out
    }
}

/// The collection URL of a kind dozen writes, in `namespace`.
pub(crate) fn url_path(kind: &str, namespace: &str) -> Option<String> {
    use kube::Resource;
    let ns = Some(namespace);
    Some(match kind {
        "Secret" => Secret::url_path(&(), ns),
        "Job" => Job::url_path(&(), ns),
        "Deployment" => Deployment::url_path(&(), ns),
        "Service" => Service::url_path(&(), ns),
        "HorizontalPodAutoscaler" => HorizontalPodAutoscaler::url_path(&(), ns),
        _ => return None,
    })
}

/// Apply `obj` (with `apiVersion`, `kind` and `metadata.name`) with server-side apply as
/// `manager`, taking over conflicting fields; returns the object as stored.
pub(crate) async fn apply(
    cluster: &Cluster,
    obj: &Value,
    manager: &str,
    redact: &Redactor,
) -> Result<Value, KubeError> {
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let what = format!("applying {kind}/{name}");
    let url = url_path(&kind, cluster.namespace())
        .ok_or_else(|| KubeError::Invalid(format!("{what}: dozen does not apply {kind}s")))?;
    let mut obj = obj.clone();
    // The object goes where the cluster works, whatever the manifest said.
    obj["metadata"]["namespace"] = Value::String(cluster.namespace().to_string());
    let params = PatchParams::apply(manager).force();
    let req = Request::new(url)
        .patch(&name, &params, &Patch::Apply(&obj))
        .map_err(|e| KubeError::decode(&what, e))?;
    send(cluster, req, &what, Some((&kind, &name)), redact).await
}

/// Send one request; a success is its JSON body, an error answer becomes
/// [`KubeError::Rejected`] (422 and 400 on `object`) or [`KubeError::Api`].
pub(crate) async fn send(
    cluster: &Cluster,
    req: http::Request<Vec<u8>>,
    what: &str,
    object: Option<(&str, &str)>,
    redact: &Redactor,
) -> Result<Value, KubeError> {
    let resp = cluster
        .client()
        .send(req.map(kube::client::Body::from))
        .await
        .map_err(|e| KubeError::request(what, e))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| KubeError::request(what, e))?
        .to_bytes();
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| KubeError::decode(what, e));
    }
    Err(error_from(status.as_u16(), &body, what, object, redact))
}

/// The error of a non-success answer.
pub(crate) fn error_from(
    code: u16,
    body: &[u8],
    what: &str,
    object: Option<(&str, &str)>,
    redact: &Redactor,
) -> KubeError {
    let parsed: Option<Status> = serde_json::from_slice(body).ok();
    let Some(s) = parsed else {
        let text = String::from_utf8_lossy(body);
        return KubeError::Api {
            what: what.to_string(),
            code,
            reason: String::new(),
            message: redact.clean(text.trim()),
        };
    };
    let message = redact.clean(s.message.as_deref().unwrap_or_default());
    let reason = s.reason.clone().unwrap_or_default();
    match object {
        Some((kind, name)) if code == 422 || (code == 400 && reason == "BadRequest") => {
            let causes = s
                .details
                .and_then(|d| d.causes)
                .unwrap_or_default()
                .into_iter()
                .map(|c| Cause {
                    field: c.field,
                    reason: c.reason,
                    message: redact.clean(c.message.as_deref().unwrap_or_default()),
                })
                .collect();
            KubeError::Rejected {
                kind: kind.to_string(),
                name: name.to_string(),
                message,
                causes,
            }
        }
        _ => KubeError::Api {
            what: what.to_string(),
            code,
            reason,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_come_through_with_their_fields_and_values_are_masked() {
        let body = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "Secret \"shop-config-v1\" is invalid: data[TOKEN]: Invalid value: \"hunter2-secret\"",
            "reason": "Invalid",
            "details": {"name": "shop-config-v1", "kind": "Secret", "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: \"hunter2-secret\": bad", "field": "data[TOKEN]"}
            ]},
            "code": 422
        });
        let redact = Redactor::new(["hunter2-secret", "x"]);
        let e = error_from(
            422,
            body.to_string().as_bytes(),
            "applying Secret/shop-config-v1",
            Some(("Secret", "shop-config-v1")),
            &redact,
        );
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains(
                "Secret/shop-config-v1: data[TOKEN]: Invalid value: \"[config value]\": bad"
            ),
            "{text}"
        );
    }

    #[test]
    fn other_answers_keep_code_and_reason() {
        let body = br#"{"kind":"Status","status":"Failure","message":"namespaces \"nope\" not found","reason":"NotFound","code":404}"#;
        let e = error_from(
            404,
            body,
            "applying Secret/a",
            Some(("Secret", "a")),
            &Redactor::default(),
        );
        assert_eq!(
            e.to_string(),
            "applying Secret/a: namespaces \"nope\" not found (HTTP 404, NotFound)"
        );
        let e = error_from(502, b"bad gateway", "x", None, &Redactor::default());
        assert_eq!(e.to_string(), "x: bad gateway (HTTP 502)");
    }
}
