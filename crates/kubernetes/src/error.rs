//! [`KubeError`]: what can go wrong running a release on a cluster.

use std::fmt;

use dozen_export::ExportError;

/// Every error names the object (`Deployment/shop-web`), the release (`v3`) or the setting it
/// is about, and what to do. None shows a config value: the Secret's data is never printed,
/// and the API server's messages about the Secret have its values masked.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No cluster configuration was found, or it is unusable.
    #[error(
        "cannot find the Kubernetes cluster to use: {reason}; set KUBECONFIG, write ~/.kube/config, or run inside a pod"
    )]
    Config {
        /// What kube-rs said.
        reason: String,
    },
    /// The release or the options cannot be turned into objects.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The API server could not be reached or did not answer.
    #[error("{what}: {source}")]
    Request {
        /// What was being done (`applying Deployment/shop-web`).
        what: String,
        /// The cause.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server validated an object and rejected it (HTTP 422, or 400 for a malformed
    /// one): one cause per line, each with the object and the field path.
    #[error("{}", rejected(kind, name, message, causes))]
    Rejected {
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The server's summary, used when it gave no causes.
        message: String,
        /// One per invalid field.
        causes: Vec<Cause>,
    },
    /// Any other answer that is not a success (403 forbidden, 404 namespace missing, 409
    /// conflict…).
    #[error("{what}: {message} (HTTP {code}{})", reason_suffix(reason))]
    Api {
        /// What was being done.
        what: String,
        /// The HTTP status.
        code: u16,
        /// The server's reason (`Forbidden`, `NotFound`).
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The answer could not be read as the object expected.
    #[error("{what}: the API server's answer is not what was expected: {reason}")]
    Decode {
        /// What was being done.
        what: String,
        /// Why.
        reason: String,
    },
    /// The release Job failed: the Deployments were not changed.
    #[error(
        "the release phase of {release} failed (Job {job}: {reason}); the processes were not changed{}",
        log_tail(logs)
    )]
    ReleaseFailed {
        /// `vN`.
        release: String,
        /// The Job's name.
        job: String,
        /// The Job's condition reason and message.
        reason: String,
        /// The last lines of its pod's output.
        logs: Vec<String>,
    },
    /// The release Job did not complete in time: the Deployments were not changed.
    #[error(
        "the release phase of {release} did not complete within {}s (Job {job}{}); the processes were not changed; it is left as it is: follow it with `kubectl logs -f job/{job} -n {namespace}`, delete it to run it again on the next deploy{}",
        timeout_secs,
        state_suffix(state),
        log_tail(logs)
    )]
    ReleaseTimedOut {
        /// `vN`.
        release: String,
        /// The Job's name.
        job: String,
        /// Its namespace.
        namespace: String,
        /// How long was waited, in seconds.
        timeout_secs: u64,
        /// What is known about why (no pod, pod pending, …).
        state: String,
        /// The last lines of its pod's output, if it has one.
        logs: Box<[String]>,
    },
    /// The rollout did not become ready (in time, or its progress deadline passed).
    #[error("{}", rollout_failed(release, reasons, gave_back))]
    RolloutFailed {
        /// `vN` being rolled out.
        release: String,
        /// Why, per Deployment: its state, conditions and warning events.
        reasons: Vec<String>,
        /// What happened to the previous state.
        gave_back: GiveBack,
    },
    /// A process type the command names is not running on the cluster.
    #[error(
        "{app} has no process type `{name}` on the cluster; it runs: {}",
        or_none(known)
    )]
    UnknownType {
        /// The app.
        app: String,
        /// The type given.
        name: String,
        /// The types it has.
        known: Vec<String>,
    },
    /// The app has never been deployed to this cluster and namespace.
    #[error(
        "{app} is not deployed in namespace {namespace}: deploy it first with `dozen deploy -a {app} --to kubernetes`"
    )]
    NotDeployed {
        /// The app.
        app: String,
        /// The namespace looked in.
        namespace: String,
    },
    /// Something the user asked for cannot be done.
    #[error("{0}")]
    Invalid(String),
}

/// What a failed rollout left on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveBack {
    /// The previous release's objects were applied again (and those new in the failed
    /// release removed).
    Returned {
        /// `vN` of the previous release, when its objects say.
        previous: Option<String>,
    },
    /// Nothing ran before: the failed release's objects are left as they are.
    NothingBefore,
    /// Giving back was not asked for (`--no-give-back`).
    NotAsked,
    /// Applying the previous state failed too.
    Failed {
        /// Why.
        reason: String,
    },
}

/// One invalid field of a rejected object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The field path (`spec.template.spec.containers[0].resources.limits.cpu`), when given.
    pub field: Option<String>,
    /// The server's reason (`FieldValueInvalid`), when given.
    pub reason: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) if !field.is_empty() => write!(f, "{field}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

fn rejected(kind: &str, name: &str, message: &str, causes: &[Cause]) -> String {
    let mut s = format!("the API server rejected {kind}/{name}");
    if causes.is_empty() {
        s.push_str(": ");
        s.push_str(message);
        return s;
    }
    for c in causes {
        s.push_str(&format!("\n  {kind}/{name}: {c}"));
    }
    s
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(", {reason}")
    }
}

fn state_suffix(state: &str) -> String {
    if state.is_empty() {
        String::new()
    } else {
        format!(": {state}")
    }
}

fn log_tail(logs: &[String]) -> String {
    if logs.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nits last output:");
    for l in logs {
        s.push_str("\n  | ");
        s.push_str(l);
    }
    s
}

fn or_none(known: &[String]) -> String {
    if known.is_empty() {
        "none".into()
    } else {
        known.join(", ")
    }
}

fn rollout_failed(release: &str, reasons: &[String], gave_back: &GiveBack) -> String {
    let mut s = format!("the rollout of {release} did not become ready");
    for r in reasons {
        s.push_str("\n  ");
        s.push_str(r);
    }
    s.push('\n');
    s.push_str(&match gave_back {
        GiveBack::Returned { previous: Some(v) } => {
            format!("returned to the previous state: {v}'s objects are applied again")
        }
        GiveBack::Returned { previous: None } => {
            "returned to the previous state: its objects are applied again".to_string()
        }
        GiveBack::NothingBefore => format!(
            "nothing ran before {release} on this cluster, so its objects are left as they are"
        ),
        GiveBack::NotAsked => format!("{release}'s objects are left as they are"),
        GiveBack::Failed { reason } => {
            format!("returning to the previous state failed too: {reason}")
        }
    });
    s
}

impl KubeError {
    pub(crate) fn request(what: impl Into<String>, source: kube::Error) -> Self {
        KubeError::Request {
            what: what.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn decode(what: impl Into<String>, reason: impl fmt::Display) -> Self {
        KubeError::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// The HTTP status of an API error (`Rejected` is 422), for callers that treat some
    /// answers (404) as a result.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            KubeError::Rejected { .. } => Some(422),
            KubeError::Request { source, .. } => match source.as_ref() {
                kube::Error::Api(e) => Some(e.code),
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_names_the_object_and_field_on_each_line() {
        let e = KubeError::Rejected {
            kind: "Deployment".into(),
            name: "shop-web".into(),
            message: "Deployment.apps \"shop-web\" is invalid".into(),
            causes: vec![
                Cause {
                    field: Some("spec.replicas".into()),
                    reason: Some("FieldValueInvalid".into()),
                    message: "Invalid value: -1: must be greater than or equal to 0".into(),
                },
                Cause {
                    field: None,
                    reason: None,
                    message: "something else".into(),
                },
            ],
        };
        let text = e.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "the API server rejected Deployment/shop-web");
        assert_eq!(
            lines[1],
            "  Deployment/shop-web: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(lines[2], "  Deployment/shop-web: something else");
    }

    #[test]
    fn a_failed_rollout_says_what_was_given_back() {
        let e = KubeError::RolloutFailed {
            release: "v2".into(),
            reasons: vec!["web: 0/1 updated, 0 ready".into()],
            gave_back: GiveBack::Returned {
                previous: Some("v1".into()),
            },
        };
        let text = e.to_string();
        assert!(
            text.contains("rollout of v2 did not become ready"),
            "{text}"
        );
        assert!(text.contains("\n  web: 0/1 updated"), "{text}");
        assert!(text.contains("v1's objects are applied again"), "{text}");
    }
}
