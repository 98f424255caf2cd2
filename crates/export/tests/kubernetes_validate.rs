//! Every manifest `dozen export kubernetes` writes validates against the official schemas of
//! the oldest and newest Kubernetes we support, with PyPI's `kubernetes-validate --strict`
//! (unknown fields are errors).
//!
//! Newer releases of kubernetes-validate only carry schemas from 1.25 on, so 1.20 is checked
//! with release 1.28.3 (schemas 1.20 to 1.28), installed apart from the newest one:
//!
//! ```sh
//! python3 -m pip install kubernetes-validate                     # newest schemas, on PATH
//! python3 -m venv ~/.cache/dozen/kubernetes-validate-1.28
//! ~/.cache/dozen/kubernetes-validate-1.28/bin/pip install kubernetes-validate==1.28.3
//! ```
//!
//! (or point `DOZEN_KUBERNETES_VALIDATE_OLD` at another such `kubernetes-validate`). Each
//! tool that is missing fails the test on CI (`dozen_testkit`), and is skipped with a printed
//! reason elsewhere; `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::process::Command;

use dozen_export::kubernetes::{
    Autoscale, KubernetesOptions, Resources, manifests, one_off_job, to_yaml,
};
use dozen_export::{ProcessType, ReleaseSpec};

fn release(health_check: Option<&str>) -> ReleaseSpec {
    ReleaseSpec {
        app: "shop".into(),
        version: 42,
        process_types: vec![
            ProcessType::new("web", "bundle exec puma -p $PORT -C config/puma.rb"),
            ProcessType::new("worker", "bundle exec sidekiq 2>&1 | tee /tmp/log"),
            ProcessType::new("clock_tick", "./clock"),
            ProcessType::new("release", "bundle exec rake db:migrate"),
        ],
        config: [
            (
                "DATABASE_URL".to_string(),
                "postgres://u:p@db/shop".to_string(),
            ),
            ("spring.profiles-active".to_string(), "prod".to_string()),
            (
                "MULTI".to_string(),
                "line one\nline two: 'x' \"y\"".to_string(),
            ),
        ]
        .into(),
        formation: [("web".to_string(), 2), ("worker".to_string(), 1)].into(),
        grace_seconds: 30,
        health_check: health_check.map(str::to_string),
        boot_timeout: Some(60),
        run_env: Default::default(),
    }
}

/// Write every document of two exports (HTTP and TCP probes, with and without a namespace
/// and autoscalers) and a one-off Job to `dir`; returns the files and how many objects they
/// hold.
fn write_manifests(dir: &Path) -> (Vec<PathBuf>, usize) {
    let mut files = Vec::new();
    let mut objects = 0;
    let mut opts = KubernetesOptions::new(
        "registry.example/shop@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );
    opts.namespace = Some("shop-prod".into());
    opts.resources.insert(
        "worker".into(),
        Resources::default()
            .with("cpu=500m,memory=1Gi,cpu-limit=2", "--resources worker")
            .expect("valid"),
    );
    opts.autoscale.insert(
        "web".into(),
        Autoscale::parse("2-10@70", "--autoscale web").expect("valid"),
    );
    for (i, (health, opts)) in [
        (Some("/healthz"), opts.clone()),
        (None, KubernetesOptions::new("shop:v42")),
    ]
    .into_iter()
    .enumerate()
    {
        let m = manifests(&release(health), &opts).expect("manifests");
        let docs = m.documents().expect("documents");
        // Each document alone, and all of them again in one stream.
        objects += 2 * docs.len() + 1;
        for doc in docs {
            let path = dir.join(format!("{i}-{}-{}.yaml", doc.kind, doc.name));
            std::fs::write(&path, &doc.yaml).expect("write");
            files.push(path);
        }
        let stream = dir.join(format!("{i}-stream.yaml"));
        std::fs::write(&stream, m.to_yaml().expect("yaml")).expect("write");
        files.push(stream);
        let mut job =
            one_off_job(&release(health), &opts, "bundle exec rails console").expect("job");
        job.metadata.name = Some("shop-run-1".into());
        let path = dir.join(format!("{i}-one-off.yaml"));
        std::fs::write(&path, to_yaml(&job).expect("yaml")).expect("write");
        files.push(path);
    }
    (files, objects)
}

/// A way to run kubernetes-validate: a program and the arguments before its own.
struct Tool {
    program: PathBuf,
    prefix: Vec<&'static str>,
}

impl Tool {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.prefix);
        c
    }

    fn show(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.prefix {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// The newest kubernetes-validate: the one on PATH, else the module of `python3` (pip may put
/// the script where PATH does not look).
fn newest_tool() -> Option<(Tool, (u32, u32))> {
    [
        Tool {
            program: "kubernetes-validate".into(),
            prefix: vec![],
        },
        Tool {
            program: "python3".into(),
            prefix: vec!["-m", "kubernetes_validate"],
        },
    ]
    .into_iter()
    .find_map(|t| tool_version(&t).map(|v| (t, v)))
}

/// `kubernetes-validate --version` as (major, minor), if the tool runs.
fn tool_version(tool: &Tool) -> Option<(u32, u32)> {
    let out = tool.command().arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.trim().split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Validate `files` against `version`; every one of the `objects` must be reported valid
/// (an apiVersion the schemas do not know is only a warning for the tool: it fails here).
fn validate(tool: &Tool, version: &str, files: &[PathBuf], objects: usize) {
    let out = tool
        .command()
        .args(["--strict", "--no-warn", "-k", version])
        .args(files)
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = text.lines().filter(|l| l.contains(" passed ")).count();
    assert!(
        out.status.success() && !text.contains("ERROR"),
        "{} --strict -k {version}:\n{text}",
        tool.show()
    );
    assert_eq!(
        passed, objects,
        "every object is checked against {version}:\n{text}"
    );
    println!(
        "{passed} objects valid against Kubernetes {version} ({})",
        tool.show()
    );
}

#[test]
fn manifests_validate_against_1_20_and_the_newest_schemas() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (files, objects) = write_manifests(tmp.path());

    let newest = newest_tool();
    match &newest {
        Some((tool, (major, minor))) => {
            validate(tool, &format!("{major}.{minor}.0"), &files, objects)
        }
        None => dozen_testkit::unavailable(
            "kubernetes-validate (newest schemas)",
            "it is not installed",
            "python3 -m pip install kubernetes-validate",
        ),
    }

    // Schemas of 1.20 ship with kubernetes-validate up to 1.28.
    let knows_1_20 = |(major, minor): (u32, u32)| major == 1 && minor <= 28;
    let old = std::env::var_os("DOZEN_KUBERNETES_VALIDATE_OLD")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                Path::new(&h).join(".cache/dozen/kubernetes-validate-1.28/bin/kubernetes-validate")
            })
        })
        .map(|program| Tool {
            program,
            prefix: vec![],
        });
    let with_1_20 = newest
        .filter(|(_, v)| knows_1_20(*v))
        .map(|(t, _)| t)
        .or_else(|| old.filter(|t| tool_version(t).is_some_and(knows_1_20)));
    match with_1_20 {
        Some(tool) => validate(&tool, "1.20.0", &files, objects),
        None => dozen_testkit::unavailable(
            "kubernetes-validate 1.28 (Kubernetes 1.20 schemas)",
            "no kubernetes-validate 1.28 or older was found (DOZEN_KUBERNETES_VALIDATE_OLD names one)",
            "python3 -m venv ~/.cache/dozen/kubernetes-validate-1.28 && \
             ~/.cache/dozen/kubernetes-validate-1.28/bin/pip install kubernetes-validate==1.28.3",
        ),
    }
}
