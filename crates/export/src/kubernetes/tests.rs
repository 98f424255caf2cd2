use serde_json::{Value, json};

use super::*;
use crate::release::ProcessType;

fn release() -> ReleaseSpec {
    ReleaseSpec {
        app: "shop".into(),
        version: 7,
        process_types: vec![
            ProcessType::new("web", "bundle exec puma -p $PORT"),
            ProcessType::new("worker", "./work && echo done"),
            ProcessType::new("release", "./migrate"),
        ],
        config: [
            (
                "DATABASE_URL".to_string(),
                "hunter2-database-password".to_string(),
            ),
            ("LANG".to_string(), "en".to_string()),
        ]
        .into(),
        formation: [("web".to_string(), 3), ("worker".to_string(), 2)].into(),
        grace_seconds: 25,
        health_check: Some("/healthz".into()),
        boot_timeout: None,
        run_env: Default::default(),
    }
}

fn opts() -> KubernetesOptions {
    KubernetesOptions::new("registry.example/shop:v7")
}

fn json_of<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serializes")
}

fn deployment<'a>(m: &'a Manifests, name: &str) -> &'a Deployment {
    m.deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .expect("deployment")
}

#[test]
fn a_deployment_per_long_running_type_with_the_formation_replicas() {
    let m = manifests(&release(), &opts()).expect("manifests");
    let names: Vec<_> = m
        .deployments
        .iter()
        .map(|d| d.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["shop-web", "shop-worker"]);
    let web = json_of(deployment(&m, "shop-web"));
    assert_eq!(web["apiVersion"], "apps/v1");
    assert_eq!(web["kind"], "Deployment");
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(
        json_of(deployment(&m, "shop-worker"))["spec"]["replicas"],
        2
    );

    // A type without a formation entry: web 1, others 0, as dozen server runs it.
    let mut r = release();
    r.formation.clear();
    let m = manifests(&r, &opts()).expect("manifests");
    assert_eq!(json_of(deployment(&m, "shop-web"))["spec"]["replicas"], 1);
    assert_eq!(
        json_of(deployment(&m, "shop-worker"))["spec"]["replicas"],
        0
    );
}

#[test]
fn containers_run_the_command_with_sh_in_the_image() {
    let m = manifests(&release(), &opts()).expect("manifests");
    let web = json_of(deployment(&m, "shop-web"));
    let c = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "web");
    assert_eq!(c["image"], "registry.example/shop:v7");
    assert_eq!(
        c["command"],
        json!(["/bin/sh", "-c", "exec bundle exec puma -p $PORT"])
    );
    assert_eq!(c["workingDir"], "/app");
    assert!(c.get("args").is_none());
    let worker = json_of(deployment(&m, "shop-worker"));
    assert_eq!(
        worker["spec"]["template"]["spec"]["containers"][0]["command"][2],
        "./work && echo done"
    );
}

#[test]
fn port_ps_and_the_secret_are_the_environment() {
    let m = manifests(&release(), &opts()).expect("manifests");
    for d in &m.deployments {
        let pod = &json_of(d)["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(c["env"][0], json!({"name": "PORT", "value": "5000"}));
        assert_eq!(
            c["env"][1],
            json!({"name": "PS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
        );
        assert_eq!(
            c["envFrom"],
            json!([{"secretRef": {"name": "shop-config-v7", "optional": false}}])
        );
        assert_eq!(pod["enableServiceLinks"], false);
        assert_eq!(pod["automountServiceAccountToken"], false);
    }
    let job = json_of(m.release_job.as_ref().expect("job"));
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"],
        "shop-config-v7"
    );
}

#[test]
fn the_secret_holds_the_config_pinned_to_the_release() {
    let m = manifests(&release(), &opts()).expect("manifests");
    let s = json_of(&m.secret);
    assert_eq!(s["apiVersion"], "v1");
    assert_eq!(s["kind"], "Secret");
    assert_eq!(s["metadata"]["name"], "shop-config-v7");
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["immutable"], true);
    // base64 of the value, never a ConfigMap, never stringData.
    assert_eq!(s["data"]["LANG"], "ZW4=");
    assert!(s.get("stringData").is_none());
    assert_eq!(s["metadata"]["labels"][LABEL_RELEASE], "v7");
    let yaml = m.to_yaml().expect("yaml");
    assert!(
        !yaml.contains("hunter2"),
        "the stream has the value only in base64"
    );
    assert!(!yaml.contains("ConfigMap"));
}

#[test]
fn web_has_a_readiness_probe_on_its_health_path_or_tcp() {
    let m = manifests(&release(), &opts()).expect("manifests");
    let web = json_of(deployment(&m, "shop-web"));
    let c = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 5000, "protocol": "TCP"}])
    );
    assert_eq!(
        web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let worker = json_of(deployment(&m, "shop-worker"));
    assert!(
        worker["spec"]["template"]["spec"]["containers"][0]
            .get("readinessProbe")
            .is_none()
    );

    let mut r = release();
    r.health_check = None;
    let m = manifests(&r, &opts()).expect("manifests");
    let web = json_of(deployment(&m, "shop-web"));
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["tcpSocket"],
        json!({"port": "http"})
    );
}

#[test]
fn grace_and_hygiene_on_every_pod() {
    let m = manifests(&release(), &opts()).expect("manifests");
    let mut pods: Vec<Value> = m
        .deployments
        .iter()
        .map(|d| json_of(d)["spec"]["template"]["spec"].clone())
        .collect();
    pods.push(json_of(m.release_job.as_ref().expect("job"))["spec"]["template"]["spec"].clone());
    let one_off = one_off_job(&release(), &opts(), "rake db:seed").expect("job");
    pods.push(json_of(&one_off)["spec"]["template"]["spec"].clone());
    for pod in pods {
        assert_eq!(pod["terminationGracePeriodSeconds"], 25);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 10001);
        assert_eq!(
            pod["securityContext"]["seccompProfile"],
            json!({"type": "RuntimeDefault"})
        );
        assert_eq!(pod["volumes"], json!([{"name": "tmp", "emptyDir": {}}]));
        let c = &pod["containers"][0];
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}));
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["privileged"], false);
        assert_eq!(
            c["volumeMounts"],
            json!([{"name": "tmp", "mountPath": "/tmp"}])
        );
        assert_eq!(
            c["resources"],
            json!({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}})
        );
    }
}

#[test]
fn resources_are_set_per_process_type() {
    let mut o = opts();
    o.resources.insert(
        "worker".into(),
        Resources::default()
            .with("cpu=500m,memory=1Gi,cpu-limit=2", "--resources worker")
            .expect("valid"),
    );
    let m = manifests(&release(), &o).expect("manifests");
    let worker = json_of(deployment(&m, "shop-worker"));
    assert_eq!(
        worker["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}})
    );
    let web = json_of(deployment(&m, "shop-web"));
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "100m"
    );
    o.resources.insert("wrk".into(), Resources::default());
    assert!(manifests(&release(), &o).is_err());
}

#[test]
fn labels_name_app_type_and_release_and_selectors_stay_stable() {
    let m = manifests(&release(), &opts()).expect("manifests");
    let web = json_of(deployment(&m, "shop-web"));
    let want = json!({
        LABEL_NAME: "shop",
        LABEL_COMPONENT: "web",
        LABEL_VERSION: "v7",
        LABEL_MANAGED_BY: "dozen",
        LABEL_RELEASE: "v7",
    });
    assert_eq!(web["metadata"]["labels"], want);
    assert_eq!(web["spec"]["template"]["metadata"]["labels"], want);
    assert_eq!(
        web["spec"]["selector"]["matchLabels"],
        json!({LABEL_NAME: "shop", LABEL_COMPONENT: "web"})
    );
    let svc = json_of(m.service.as_ref().expect("service"));
    assert_eq!(svc["metadata"]["name"], "shop");
    assert_eq!(
        svc["spec"]["selector"],
        json!({LABEL_NAME: "shop", LABEL_COMPONENT: "web"})
    );
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    );
}

#[test]
fn the_release_job_runs_once_per_release() {
    let m = manifests(&release(), &opts()).expect("manifests");
    let job = json_of(m.release_job.as_ref().expect("job"));
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["metadata"]["name"], "shop-release-v7");
    assert_eq!(job["metadata"]["labels"][LABEL_COMPONENT], "release");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert!(job["spec"].get("ttlSecondsAfterFinished").is_none());
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        pod["containers"][0]["command"],
        json!(["/bin/sh", "-c", "exec ./migrate"])
    );
    let mut r = release();
    r.process_types.retain(|t| t.name != "release");
    assert!(
        manifests(&r, &opts())
            .expect("manifests")
            .release_job
            .is_none()
    );
}

#[test]
fn one_off_jobs_run_any_command_in_the_release() {
    let job = one_off_job(&release(), &opts(), "./manage.py shell").expect("job");
    let j = json_of(&job);
    assert!(j["metadata"].get("name").is_none());
    assert_eq!(j["metadata"]["generateName"], "shop-run-");
    assert_eq!(j["metadata"]["labels"][LABEL_COMPONENT], "run");
    assert_eq!(j["spec"]["backoffLimit"], 0);
    assert_eq!(j["spec"]["ttlSecondsAfterFinished"], 3600);
    let c = &j["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["command"],
        json!(["/bin/sh", "-c", "exec ./manage.py shell"])
    );
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "shop-config-v7");
    assert!(one_off_job(&release(), &opts(), " ").is_err());
}

#[test]
fn autoscalers_use_autoscaling_v1_and_leave_replicas_to_them() {
    let mut o = opts();
    o.autoscale.insert(
        "web".into(),
        Autoscale::parse("2-10@70", "--autoscale web").expect("valid"),
    );
    let m = manifests(&release(), &o).expect("manifests");
    assert_eq!(m.autoscalers.len(), 1);
    let h = json_of(&m.autoscalers[0]);
    assert_eq!(h["apiVersion"], "autoscaling/v1");
    assert_eq!(h["metadata"]["name"], "shop-web");
    assert_eq!(
        h["spec"],
        json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-web"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "targetCPUUtilizationPercentage": 70
        })
    );
    assert!(
        json_of(deployment(&m, "shop-web"))["spec"]
            .get("replicas")
            .is_none()
    );
    assert_eq!(
        json_of(deployment(&m, "shop-worker"))["spec"]["replicas"],
        2
    );
    o.autoscale.insert(
        "release".into(),
        Autoscale::parse("1-2", "x").expect("valid"),
    );
    assert!(manifests(&release(), &o).is_err());
}

#[test]
fn namespace_goes_on_every_object_but_not_pod_templates() {
    let mut o = opts();
    o.namespace = Some("shop-prod".into());
    let m = manifests(&release(), &o).expect("manifests");
    for doc in m.documents().expect("documents") {
        assert!(doc.yaml.contains("namespace: shop-prod"), "{}", doc.name);
    }
    let web = json_of(deployment(&m, "shop-web"));
    assert!(
        web["spec"]["template"]["metadata"]
            .get("namespace")
            .is_none()
    );
    o.namespace = Some("Shop_Prod".into());
    let e = manifests(&release(), &o).unwrap_err().to_string();
    assert!(e.starts_with("namespace `Shop_Prod`"), "{e}");
}

#[test]
fn process_type_names_become_kubernetes_names() {
    let mut r = release();
    r.process_types
        .push(ProcessType::new("Fast_Worker", "./fast"));
    let m = manifests(&r, &opts()).expect("manifests");
    let d = json_of(deployment(&m, "shop-fast-worker"));
    assert_eq!(
        d["metadata"]["annotations"][ANNOTATION_PROCESS_TYPE],
        "Fast_Worker"
    );
    assert_eq!(d["metadata"]["labels"][LABEL_COMPONENT], "fast-worker");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["name"],
        "fast-worker"
    );
    assert!(
        json_of(deployment(&m, "shop-web"))["metadata"]
            .get("annotations")
            .is_none()
    );

    r.process_types
        .push(ProcessType::new("fast-worker", "./other"));
    let e = manifests(&r, &opts()).unwrap_err().to_string();
    assert!(e.contains("both become `fast-worker`"), "{e}");

    let mut r = release();
    r.process_types.push(ProcessType::new("_x", "./x"));
    assert!(manifests(&r, &opts()).is_err());
    let mut r = release();
    r.process_types
        .push(ProcessType::new("w".repeat(60), "./x"));
    assert!(
        manifests(&r, &opts())
            .unwrap_err()
            .to_string()
            .contains("63")
    );
}

#[test]
fn the_yaml_stream_is_in_apply_order_and_debug_hides_the_secret() {
    let mut o = opts();
    o.autoscale.insert(
        "worker".into(),
        Autoscale::parse("1-4", "x").expect("valid"),
    );
    let m = manifests(&release(), &o).expect("manifests");
    let docs = m.documents().expect("documents");
    let order: Vec<_> = docs.iter().map(|d| (d.kind, d.phase)).collect();
    assert_eq!(
        order,
        [
            ("Secret", Phase::Config),
            ("Job", Phase::Release),
            ("Deployment", Phase::Run),
            ("Deployment", Phase::Run),
            ("Service", Phase::Run),
            ("HorizontalPodAutoscaler", Phase::Run),
        ]
    );
    assert_eq!(docs[0].file_name(), "1-config/secret-shop-config-v7.yaml");
    assert_eq!(docs[1].file_name(), "2-release/job-shop-release-v7.yaml");
    let yaml = m.to_yaml().expect("yaml");
    assert_eq!(yaml.matches("---\n").count(), 6);
    assert!(yaml.starts_with("---\napiVersion: v1\n"), "{yaml}");
    let shown = format!("{m:?} {:?}", docs[0]);
    assert!(shown.contains("Secret/shop-config-v7"), "{shown}");
    assert!(
        !shown.contains("aHVudGVyMi") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn bad_options_are_named() {
    let mut o = opts();
    o.image = "".into();
    assert!(
        manifests(&release(), &o)
            .unwrap_err()
            .to_string()
            .starts_with("image:")
    );
    let mut o = opts();
    o.run_as_user = 0;
    assert!(
        manifests(&release(), &o)
            .unwrap_err()
            .to_string()
            .starts_with("user:")
    );
}

#[test]
fn dollar_signs_reach_the_shell_unchanged() {
    // The kubelet expands `$(NAME)` and turns `$$` into `$` in a container's command.
    assert_eq!(escape_kubelet("puma -p $PORT"), "puma -p $PORT");
    assert_eq!(escape_kubelet("echo $(date) $$ $"), "echo $$(date) $$$ $");
    for line in ["a $(b) $$ $ $$$ $$(c) $(PORT) $", "$", "$$", "$(", "x$"] {
        assert_eq!(kubelet_expand(&escape_kubelet(line)), line, "{line}");
    }
    let mut r = release();
    r.process_types[1].command = "./work --at $(date +%s) --pid $$".into();
    let m = manifests(&r, &opts()).expect("manifests");
    let worker = json_of(deployment(&m, "shop-worker"));
    assert_eq!(
        worker["spec"]["template"]["spec"]["containers"][0]["command"][2],
        "./work --at $$(date +%s) --pid $$$"
    );
}

/// What the kubelet does to a command (Kubernetes' `expansion.Expand` with every variable
/// defined as "X"): `$$` -> `$`, `$(NAME)` -> value, any other `$` kept.
fn kubelet_expand(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && i + 1 < chars.len() {
            match chars[i + 1] {
                '$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                '(' => {
                    if let Some(end) = chars[i..].iter().position(|c| *c == ')') {
                        out.push('X');
                        i += end + 1;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}
