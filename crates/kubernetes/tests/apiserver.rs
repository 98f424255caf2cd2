//! `dozen_kubernetes` against a real kube-apiserver (and etcd) from `scripts/kube-apiserver`.
//!
//! Only the API server runs: objects are validated and stored, but no controller acts on
//! them. Where a test needs one (a Job that completes, a Deployment that rolls out), it plays
//! that controller's part itself by writing the object's status, as the controller would.
//! Each test works in a namespace of its own.

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cluster::TestCluster;
use dozen_export::kubernetes::{Autoscale, KubernetesOptions};
use dozen_export::{ProcessType, ReleaseSpec};
use dozen_kubernetes::{
    ANNOTATION_APPLIED, ANNOTATION_IMAGE, ANNOTATION_PREVIOUS, Cluster, DeployOptions, Event,
    GiveBack, KubeError, LogRequest,
};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service, ServiceAccount};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

/// How long any awaited event may take before the test is declared hung (not a timing
/// assertion: it turns a hang into a failure with context).
const HANG: Duration = Duration::from_secs(60);

const SECRET_VALUE: &str = "postgres://shop:pa55-w0rd-xyz@db/shop";

/// A client working in a new namespace `ns`.
async fn cluster_in(tc: &TestCluster, ns: &str) -> Cluster {
    let c = Cluster::from_kubeconfig(&tc.kubeconfig, Some(ns))
        .await
        .expect("the test cluster's kubeconfig");
    let namespaces: Api<Namespace> = Api::all(c.client().clone());
    let mut n = Namespace::default();
    n.metadata.name = Some(ns.to_string());
    namespaces
        .create(&PostParams::default(), &n)
        .await
        .expect("create namespace");
    c
}

fn release(version: u64, types: &[(&str, &str)]) -> ReleaseSpec {
    ReleaseSpec {
        app: "shop".into(),
        version,
        process_types: types
            .iter()
            .map(|(n, c)| ProcessType::new(*n, *c))
            .collect(),
        config: [
            ("DATABASE_URL".to_string(), SECRET_VALUE.to_string()),
            ("GREETING".to_string(), format!("hello from v{version}")),
        ]
        .into(),
        formation: BTreeMap::new(),
        grace_seconds: 25,
        health_check: Some("/healthz".into()),
        boot_timeout: None,
        run_env: Default::default(),
    }
}

fn image(version: u64) -> String {
    format!("registry.example/shop:v{version}")
}

fn no_wait() -> DeployOptions {
    DeployOptions {
        wait: false,
        ..DeployOptions::default()
    }
}

fn short(timeout_secs: u64) -> DeployOptions {
    DeployOptions {
        timeout: Duration::from_secs(timeout_secs),
        ..DeployOptions::default()
    }
}

/// Deploy, collecting the events as lines.
async fn deploy(
    c: &Cluster,
    r: &ReleaseSpec,
    opts: &KubernetesOptions,
    how: &DeployOptions,
) -> (Result<dozen_kubernetes::Deployed, KubeError>, Vec<String>) {
    let mut lines = Vec::new();
    let result = c
        .deploy(r, opts, how, &mut |e: &Event| lines.push(e.to_string()))
        .await;
    (result, lines)
}

async fn get<K>(c: &Cluster, name: &str) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    c.api::<K>()
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("reading {} {name}: {e}", K::kind(&())))
}

/// An object as JSON, to check fields by path.
fn json_of<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).expect("json")
}

fn managers(v: &Value) -> Vec<(String, String)> {
    v["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or_default().to_string(),
                m["operation"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Wait until `name` exists, by watching.
async fn await_exists<K>(api: &Api<K>, name: &str) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    await_object(api, name, |_| true).await
}

/// Wait until `name` exists and `pred` holds for it, by watching.
async fn await_object<K>(api: &Api<K>, name: &str, pred: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let found = async {
        loop {
            let list = api
                .list(&kube::api::ListParams::default().fields(&format!("metadata.name={name}")))
                .await
                .expect("list");
            if let Some(o) = list.items.into_iter().find(|o| pred(o)) {
                return o;
            }
            let version = list.metadata.resource_version.unwrap_or_default();
            let wp = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(30);
            let stream = api.watch(&wp, &version).await.expect("watch");
            futures_util::pin_mut!(stream);
            while let Some(e) = stream.next().await {
                if let Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) = e {
                    if pred(&o) {
                        return o;
                    }
                }
            }
        }
    };
    tokio::time::timeout(HANG, found)
        .await
        .unwrap_or_else(|_| panic!("hung waiting for {name}"))
}

/// Play the Job controller once: wait for Job `name` to exist, then end it.
async fn end_job(c: &Cluster, name: &str, complete: bool) {
    let api = c.api::<Job>();
    await_exists(&api, name).await;
    let condition = if complete {
        json!({"type": "Complete", "status": "True"})
    } else {
        json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
               "message": "Job has reached the specified backoff limit"})
    };
    let status = if complete {
        json!({"status": {"conditions": [condition], "succeeded": 1}})
    } else {
        json!({"status": {"conditions": [condition], "failed": 1}})
    };
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch Job status");
}

/// Play the Deployment controller for a namespace until aborted: every Deployment whose spec
/// is newer than its status becomes fully rolled out.
fn play_deployment_controller(c: &Cluster) -> tokio::task::JoinHandle<()> {
    let api = c.api::<Deployment>();
    tokio::spawn(async move {
        loop {
            let list = api
                .list(&kube::api::ListParams::default())
                .await
                .expect("list");
            for d in &list.items {
                roll_out(&api, d).await;
            }
            let version = list.metadata.resource_version.unwrap_or_default();
            let stream = api
                .watch(&WatchParams::default().timeout(30), &version)
                .await
                .expect("watch");
            futures_util::pin_mut!(stream);
            while let Some(e) = stream.next().await {
                if let Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)) = e {
                    roll_out(&api, &d).await;
                }
            }
        }
    })
}

async fn roll_out(api: &Api<Deployment>, d: &Deployment) {
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = d
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    if observed >= generation {
        return;
    }
    let n = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = json!({"status": {"observedGeneration": generation, "replicas": n,
        "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n}});
    let name = d.metadata.name.clone().unwrap_or_default();
    // A conflict with a newer version is fine: its own event follows.
    let _ = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
}

fn applied(v: &Value) -> Value {
    serde_json::from_str(
        v["metadata"]["annotations"][ANNOTATION_APPLIED]
            .as_str()
            .expect("the applied annotation"),
    )
    .expect("the applied annotation is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_applied_and_every_object_reads_back() {
    let Some(tc) = TestCluster::shared() else {
        return;
    };
    let c = cluster_in(&tc, "t-apply").await;
    let types = [
        ("web", "python3 -m http.server $PORT"),
        ("worker", "./work --queue default"),
        ("clock", "./clock"),
    ];
    let mut r1 = release(1, &types);
    r1.formation = [("web".to_string(), 3), ("worker".to_string(), 2)].into();
    let mut opts = KubernetesOptions::new(image(1));
    opts.autoscale.insert(
        "clock".into(),
        Autoscale {
            min: 1,
            max: 4,
            cpu_percent: 60,
        },
    );
    let (result, events) = deploy(&c, &r1, &opts, &no_wait()).await;
    let done = result.unwrap_or_else(|e| panic!("deploy v1: {e}"));
    assert_eq!(done.release, "v1");
    assert_eq!(done.namespace, "t-apply");
    assert!(!done.rolled_out);
    assert_eq!(done.previous, None);
    assert_eq!(
        events,
        [
            "applied Secret/shop-config-v1",
            "applied Deployment/shop-web",
            "applied Deployment/shop-worker",
            "applied Deployment/shop-clock",
            "applied Service/shop",
            "applied HorizontalPodAutoscaler/shop-clock",
        ]
    );

    // The Secret: the config, immutable, with the image it runs.
    let secret: Secret = get(&c, "shop-config-v1").await;
    let data = secret.data.clone().expect("data");
    assert_eq!(data["DATABASE_URL"].0, SECRET_VALUE.as_bytes());
    assert_eq!(data["GREETING"].0, b"hello from v1");
    assert_eq!(secret.immutable, Some(true));
    let s = json_of(&secret);
    assert_eq!(s["metadata"]["annotations"][ANNOTATION_IMAGE], image(1));
    assert_eq!(s["metadata"]["labels"]["dozen.dev/release"], "v1");
    assert_eq!(
        s["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "dozen"
    );
    assert!(managers(&s).contains(&("dozen".into(), "Apply".into())));

    // web: replicas, labels, PORT, probe, secret reference, grace, hardening.
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["spec"]["replicas"], 3);
    assert!(managers(&web).contains(&("dozen".into(), "Apply".into())));
    let labels = &web["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/name"], "shop");
    assert_eq!(labels["app.kubernetes.io/component"], "web");
    assert_eq!(labels["dozen.dev/release"], "v1");
    assert_eq!(
        web["spec"]["selector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "web"})
    );
    let pod = &web["spec"]["template"]["spec"];
    assert_eq!(
        web["spec"]["template"]["metadata"]["labels"]["dozen.dev/release"],
        "v1"
    );
    assert_eq!(pod["terminationGracePeriodSeconds"], 25);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    let container = &pod["containers"][0];
    assert_eq!(container["image"], image(1));
    assert_eq!(container["command"][0], "/bin/sh");
    assert!(
        container["command"][2]
            .as_str()
            .is_some_and(|c| c.contains("http.server $PORT")),
        "{container}"
    );
    assert_eq!(
        container["env"][0],
        json!({"name": "PORT", "value": "5000"})
    );
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "shop-config-v1"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(container["ports"][0]["containerPort"], 5000);
    let sc = &container["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/tmp");
    assert_eq!(
        web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    // What was applied is kept on the object, and holds no config value.
    let kept = applied(&web);
    assert_eq!(kept["kind"], "Deployment");
    assert_eq!(kept["spec"]["replicas"], 3);
    assert!(!web.to_string().contains("pa55-w0rd"), "{web}");

    let worker = json_of(&get::<Deployment>(&c, "shop-worker").await);
    assert_eq!(worker["spec"]["replicas"], 2);
    assert!(worker["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].is_null());
    // An autoscaled type's Deployment has no replicas of dozen's (the server defaults 1).
    let clock = json_of(&get::<Deployment>(&c, "shop-clock").await);
    assert!(applied(&clock)["spec"]["replicas"].is_null());
    let hpa = json_of(&get::<HorizontalPodAutoscaler>(&c, "shop-clock").await);
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(hpa["spec"]["maxReplicas"], 4);
    assert_eq!(hpa["spec"]["targetCPUUtilizationPercentage"], 60);
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "shop-clock");

    let svc = json_of(&get::<Service>(&c, "shop").await);
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(
        svc["spec"]["selector"],
        json!({"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "web"})
    );

    // ps: the Deployments' counts (no pods: nothing runs them).
    let ps = c.processes("shop").await.expect("ps");
    let names: Vec<&str> = ps.iter().map(|t| t.process_type.as_str()).collect();
    assert_eq!(names, ["clock", "web", "worker"]);
    assert_eq!(ps[1].desired, Some(3));
    assert_eq!(ps[1].ready, Some(0));
    assert_eq!(ps[1].release.as_deref(), Some("v1"));

    // scale: replicas through server-side apply of their own field manager.
    let scaled = c
        .scale("shop", &[("web".to_string(), 2)].into())
        .await
        .expect("scale");
    assert_eq!((scaled[0].from, scaled[0].to), (3, 2));
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["spec"]["replicas"], 2);
    assert!(managers(&web).contains(&("dozen-scale".into(), "Apply".into())));
    let e = c
        .scale("shop", &[("clock".to_string(), 2)].into())
        .await
        .expect_err("an autoscaled type");
    assert!(e.to_string().contains("autoscaled"), "{e}");
    let e = c
        .scale("shop", &[("wrker".to_string(), 2)].into())
        .await
        .expect_err("an unknown type");
    assert_eq!(
        e.to_string(),
        "shop has no process type `wrker` on the cluster; it runs: clock, web, worker"
    );

    // v2 keeps the scaled replicas, records v1 as the one before, runs v2's config.
    let mut r2 = release(2, &types);
    r2.formation = r1.formation.clone();
    let opts2 = KubernetesOptions {
        image: image(2),
        ..opts.clone()
    };
    let (result, events) = deploy(&c, &r2, &opts2, &no_wait()).await;
    let done = result.unwrap_or_else(|e| panic!("deploy v2: {e}"));
    assert_eq!(done.previous.as_deref(), Some("v1"));
    assert!(
        events
            .contains(&"web: keeps its 2 replicas on the cluster (-m web=N to change them)".into()),
        "{events:?}"
    );
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["spec"]["replicas"], 2);
    assert_eq!(web["metadata"]["labels"]["dozen.dev/release"], "v2");
    assert_eq!(web["metadata"]["annotations"][ANNOTATION_PREVIOUS], "v1");
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], image(2));
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "shop-config-v2"
    );
    // The formation named explicitly wins.
    let how = DeployOptions {
        formation_from_release: BTreeSet::from(["web".to_string()]),
        ..no_wait()
    };
    let (result, _) = deploy(&c, &r2, &opts2, &how).await;
    result.unwrap_or_else(|e| panic!("deploy v2 again: {e}"));
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(web["metadata"]["annotations"][ANNOTATION_PREVIOUS], "v1");

    // What rollback reads.
    let live = c
        .live_release("shop")
        .await
        .expect("live")
        .expect("deployed");
    assert_eq!(live.release, "v2");
    assert_eq!(live.previous.as_deref(), Some("v1"));
    assert_eq!(live.image, Some(image(2)));
    assert_eq!(
        c.release_image("shop", "v1").await.expect("image"),
        Some(image(1))
    );
    assert_eq!(c.release_image("shop", "v9").await.expect("image"), None);

    // Rollback: v1's objects again, as kept on its Secret, with the cluster's replicas.
    let mut lines = Vec::new();
    let done = c
        .rollback("shop", None, &no_wait(), &mut |e: &Event| {
            lines.push(e.to_string())
        })
        .await
        .unwrap_or_else(|e| panic!("rollback: {e}"));
    assert_eq!(done.release, "v1");
    assert_eq!(done.previous.as_deref(), Some("v2"));
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("Secret") || l.contains("Job")),
        "{lines:?}"
    );
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(web["metadata"]["labels"]["dozen.dev/release"], "v1");
    assert_eq!(web["metadata"]["annotations"][ANNOTATION_PREVIOUS], "v2");
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], image(1));
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "shop-config-v1"
    );
    // And back again: the one before is v2 now.
    let done = c
        .rollback("shop", None, &no_wait(), &mut |_: &Event| {})
        .await
        .unwrap_or_else(|e| panic!("rollback again: {e}"));
    assert_eq!(done.release, "v2");
    let e = c
        .rollback("shop", Some("v7"), &no_wait(), &mut |_: &Event| {})
        .await
        .expect_err("v7 never ran here");
    assert!(
        e.to_string()
            .starts_with("shop v7 was not deployed to namespace t-apply by `dozen deploy`"),
        "{e}"
    );

    // A one-off: a Job of its own, with the release's environment.
    let job_name = c
        .run_one_off(&r2, &opts2, "./manage.py migrate --check")
        .await
        .expect("one-off");
    assert!(job_name.starts_with("shop-run-"), "{job_name}");
    let job = json_of(&get::<Job>(&c, &job_name).await);
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(
        job["metadata"]["labels"]["app.kubernetes.io/component"],
        "run"
    );
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["command"][2]
            .as_str()
            .is_some_and(|c| c.contains("./manage.py migrate --check")),
        "{container}"
    );
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "shop-config-v2"
    );

    // A pod, as a ReplicaSet would make it (none runs here): ps shows it; with no node to
    // run it, the API server has no output for it, and reading it ends at once.
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "shop-web-7d9f-abcde", "labels": {
            "app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "web",
            "app.kubernetes.io/managed-by": "dozen", "dozen.dev/release": "v2"}},
        "spec": {"automountServiceAccountToken": false,
                 "containers": [{"name": "web", "image": image(2)}]}
    }))
    .expect("pod");
    // The service account admission wants the namespace's `default` account, which the
    // controller-manager would make.
    let mut account = ServiceAccount::default();
    account.metadata.name = Some("default".into());
    c.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await
        .expect("create the default service account");
    c.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let ps = c.processes("shop").await.expect("ps");
    let web = ps.iter().find(|t| t.process_type == "web").expect("web");
    assert_eq!(web.pods.len(), 1);
    assert_eq!(web.pods[0].name, "shop-web-7d9f-abcde");
    assert_eq!(web.pods[0].phase, "Pending");
    assert_eq!(web.pods[0].ready, "0/1");
    assert_eq!(web.pods[0].release.as_deref(), Some("v2"));
    let mut rx = c
        .logs(
            "shop",
            &LogRequest {
                process: Some("web".into()),
                tail: Some(10),
                follow: false,
            },
        )
        .await
        .expect("logs");
    let first = tokio::time::timeout(HANG, rx.recv())
        .await
        .expect("hung reading logs");
    assert!(first.is_none(), "{first:?}");
    let e = c
        .logs(
            "shop",
            &LogRequest {
                process: Some("worker".into()),
                ..LogRequest::default()
            },
        )
        .await
        .expect_err("worker has no pods");
    assert!(
        e.to_string().contains("has no pods matching `worker`"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_the_api_server_rejects_read_as_one_line_per_field() {
    let Some(tc) = TestCluster::shared() else {
        return;
    };
    let c = cluster_in(&tc, "t-invalid").await;
    let r = release(1, &[("web", "./serve"), ("worker", "./work")]);

    // A user id the export accepts (above 0) but Kubernetes does not (above 2^31 - 1).
    let mut opts = KubernetesOptions::new(image(1));
    opts.run_as_user = 4_294_967_296;
    let (result, _) = deploy(&c, &r, &opts, &no_wait()).await;
    let e = result.expect_err("the server rejects the user id");
    let KubeError::Rejected {
        kind, name, causes, ..
    } = &e
    else {
        panic!("not a rejection: {e}");
    };
    assert_eq!((kind.as_str(), name.as_str()), ("Deployment", "shop-web"));
    let fields: Vec<&str> = causes.iter().filter_map(|c| c.field.as_deref()).collect();
    assert!(
        fields.contains(&"spec.template.spec.securityContext.runAsUser")
            && fields.contains(&"spec.template.spec.containers[0].securityContext.runAsUser"),
        "{fields:?}"
    );
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "the API server rejected Deployment/shop-web");
    assert_eq!(lines.len(), causes.len() + 1, "{text}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.starts_with("  Deployment/shop-web: spec.template.spec.")),
        "{text}"
    );
    assert!(
        text.contains("spec.template.spec.securityContext.runAsUser: Invalid value: 4294967296"),
        "{text}"
    );

    // A config key longer than a Secret key may be: the key is named, no value is shown.
    let mut r = release(2, &[("web", "./serve")]);
    let long_key = "K".repeat(300);
    r.config
        .insert(long_key.clone(), "s3cr3t-value-of-the-long-key".into());
    let (result, _) = deploy(&c, &r, &KubernetesOptions::new(image(2)), &no_wait()).await;
    let e = result.expect_err("the server rejects the key");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "the API server rejected Secret/shop-config-v2\n  Secret/shop-config-v2: data["
        ),
        "{text}"
    );
    assert!(text.contains(&long_key), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!text.contains("pa55-w0rd"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_does_not_become_ready_returns_to_the_previous_release() {
    let Some(tc) = TestCluster::shared() else {
        return;
    };
    let c = cluster_in(&tc, "t-giveback").await;
    let r1 = release(1, &[("web", "./serve"), ("worker", "./work")]);
    let (result, _) = deploy(&c, &r1, &KubernetesOptions::new(image(1)), &no_wait()).await;
    result.unwrap_or_else(|e| panic!("deploy v1: {e}"));
    let web_v1 = json_of(&get::<Deployment>(&c, "shop-web").await);

    // v2 adds a process type; no controller runs, so its rollout never becomes ready.
    let r2 = release(
        2,
        &[
            ("web", "./serve --v2"),
            ("worker", "./work"),
            ("clock", "./clock"),
        ],
    );
    let (result, events) = deploy(&c, &r2, &KubernetesOptions::new(image(2)), &short(2)).await;
    let e = result.expect_err("the rollout cannot become ready");
    let KubeError::RolloutFailed {
        release,
        reasons,
        gave_back,
    } = &e
    else {
        panic!("not a failed rollout: {e}");
    };
    assert_eq!(release, "v2");
    assert_eq!(
        gave_back,
        &GiveBack::Returned {
            previous: Some("v1".into())
        }
    );
    assert!(
        reasons.iter().any(|r| r
            .starts_with("Deployment/shop-web: no Deployment controller has seen generation 2")),
        "{reasons:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("the rollout of v2 did not become ready"),
        "{text}"
    );
    assert!(text.contains("web: 0/1 updated, 0 ready"), "{text}");
    assert!(
        text.ends_with("returned to the previous state: v1's objects are applied again"),
        "{text}"
    );
    assert!(
        events.contains(&"the rollout failed: applying v1's objects again".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"deleted Deployment/shop-clock (not in this release)".to_string()),
        "{events:?}"
    );

    // The live objects are v1's again.
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["metadata"]["labels"]["dozen.dev/release"], "v1");
    assert_eq!(web["spec"]["template"], web_v1["spec"]["template"]);
    assert_eq!(applied(&web), applied(&web_v1));
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], image(1));
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "shop-config-v1"
    );
    let worker = json_of(&get::<Deployment>(&c, "shop-worker").await);
    assert_eq!(worker["metadata"]["labels"]["dozen.dev/release"], "v1");
    assert!(
        c.api::<Deployment>()
            .get_opt("shop-clock")
            .await
            .expect("get")
            .is_none(),
        "v2's new process type is removed"
    );
    let svc = json_of(&get::<Service>(&c, "shop").await);
    assert_eq!(svc["metadata"]["labels"]["dozen.dev/release"], "v1");
    let live = c
        .live_release("shop")
        .await
        .expect("live")
        .expect("deployed");
    assert_eq!(live.release, "v1");

    // Without giving back, v2 stays.
    let how = DeployOptions {
        give_back: false,
        ..short(1)
    };
    let (result, _) = deploy(&c, &r2, &KubernetesOptions::new(image(2)), &how).await;
    let e = result.expect_err("still not ready");
    assert!(
        e.to_string().ends_with("v2's objects are left as they are"),
        "{e}"
    );
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["metadata"]["labels"]["dozen.dev/release"], "v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_release_that_does_not_become_ready_is_left_in_place() {
    let Some(tc) = TestCluster::shared() else {
        return;
    };
    let c = cluster_in(&tc, "t-first").await;
    let r1 = release(1, &[("web", "./serve")]);
    let (result, _) = deploy(&c, &r1, &KubernetesOptions::new(image(1)), &short(1)).await;
    let e = result.expect_err("not ready");
    assert!(matches!(
        e,
        KubeError::RolloutFailed {
            gave_back: GiveBack::NothingBefore,
            ..
        }
    ));
    assert!(
        e.to_string().ends_with(
            "nothing ran before v1 on this cluster, so its objects are left as they are"
        ),
        "{e}"
    );
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["metadata"]["labels"]["dozen.dev/release"], "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_phase_runs_before_the_processes_change() {
    let Some(tc) = TestCluster::shared() else {
        return;
    };
    let c = cluster_in(&tc, "t-rollout").await;
    let controller = play_deployment_controller(&c);
    let types = [("web", "./serve"), ("release", "./migrate")];
    let (o1, o2, o3) = (
        KubernetesOptions::new(image(1)),
        KubernetesOptions::new(image(2)),
        KubernetesOptions::new(image(3)),
    );
    let wait = DeployOptions::default();

    // v1: the release Job completes, then the rollout does.
    let mut r1 = release(1, &types);
    r1.formation = [("web".to_string(), 2)].into();
    let (deployed, ()) = tokio::join!(
        deploy(&c, &r1, &o1, &wait),
        end_job(&c, "shop-release-v1", true)
    );
    let (result, events) = deployed;
    let done = result.unwrap_or_else(|e| panic!("deploy v1: {e}"));
    assert!(done.rolled_out);
    let at = |line: &str| {
        events
            .iter()
            .position(|e| e == line)
            .unwrap_or_else(|| panic!("no event {line:?} in {events:?}"))
    };
    assert!(at("applied Secret/shop-config-v1") < at("applied Job/shop-release-v1"));
    assert!(at("release phase: Job/shop-release-v1 completed") < at("applied Deployment/shop-web"));
    assert_eq!(
        events.last().map(String::as_str),
        Some("web: 2/2 updated, 2 ready (rolled out)")
    );

    // v2: the release Job fails; the processes stay on v1, and the error says why.
    let r2 = release(2, &types);
    let (deployed, ()) = tokio::join!(
        deploy(&c, &r2, &o2, &wait),
        end_job(&c, "shop-release-v2", false)
    );
    let e = deployed.0.expect_err("the release phase failed");
    assert_eq!(
        e.to_string(),
        "the release phase of v2 failed (Job shop-release-v2: BackoffLimitExceeded: Job has reached the specified backoff limit); the processes were not changed"
    );
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["metadata"]["labels"]["dozen.dev/release"], "v1");

    // Deploying v2 again runs its release phase again.
    let (deployed, ()) = tokio::join!(deploy(&c, &r2, &o2, &wait), async {
        // The failed Job is deleted and made anew: wait for the new one.
        await_object(&c.api::<Job>(), "shop-release-v2", |j| {
            dozen_kubernetes::job_end(j).is_none()
        })
        .await;
        end_job(&c, "shop-release-v2", true).await;
    });
    let (result, events) = deployed;
    result.unwrap_or_else(|e| panic!("deploy v2 again: {e}"));
    assert!(
        events.contains(
            &"Job/shop-release-v2 failed before: deleted, to run the release phase again".into()
        ),
        "{events:?}"
    );
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["metadata"]["labels"]["dozen.dev/release"], "v2");

    // Once more: the release phase of v2 is done already.
    let (result, events) = deploy(&c, &r2, &o2, &wait).await;
    result.unwrap_or_else(|e| panic!("deploy v2 a third time: {e}"));
    assert!(
        events.contains(&"release phase: Job/shop-release-v2 already completed".into()),
        "{events:?}"
    );

    // v3: nothing completes its Job (no Job controller here): the deploy gives up after the
    // timeout, says what it knows, and the processes stay on v2.
    let r3 = release(3, &types);
    let (result, _) = deploy(&c, &r3, &o3, &short(2)).await;
    let e = result.expect_err("the release phase does not complete");
    assert!(matches!(e, KubeError::ReleaseTimedOut { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("the release phase of v3 did not complete within 2s (Job shop-release-v3: no pod was made for it"),
        "{text}"
    );
    assert!(
        text.contains("kubectl logs -f job/shop-release-v3 -n t-rollout"),
        "{text}"
    );
    let web = json_of(&get::<Deployment>(&c, "shop-web").await);
    assert_eq!(web["metadata"]["labels"]["dozen.dev/release"], "v2");
    controller.abort();
}
