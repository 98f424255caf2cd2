//! `--to kubernetes` / `--on kubernetes`: `deploy`, `rollback`, `ps`, `ps:scale`, `logs` and
//! `run` against a Kubernetes cluster, over `dozen_kubernetes`.
//!
//! A release comes from the dozen server, as for `dozen export kubernetes` (the same code);
//! the cluster from `KUBECONFIG`, `~/.kube/config` or the pod's service account. Each command
//! here goes to its `remote` counterpart when no target is given.
//!
//! Not against Kubernetes yet: `ps:restart`, `run:detached`'s log lines in `dozen logs`
//! (follow the Job instead), `logs --source` (the cluster's events are not dozen's), following
//! pods that start after `logs --tail` began, and a one-off's standard input.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use dozen_export::kubernetes::KubernetesOptions;
use dozen_export::{DEFAULT_GRACE_SECONDS, RELEASE_TYPE};
use dozen_kubernetes::{Cluster, DeployOptions, Deployed, Event, LogRequest};

use crate::cli::RunArgs;
use crate::client::Client;
use crate::export::{ObjectArgs, ReleaseArgs, kubernetes_options, server_release};
use crate::remote::{self, AppArgs};

/// Where a command acts, instead of the dozen server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A Kubernetes cluster: KUBECONFIG, ~/.kube/config, or the pod's service account.
    #[value(alias = "k8s")]
    Kubernetes,
}

/// `--on kubernetes [--namespace NS]`, for `ps`, `ps:scale` and `logs`.
#[derive(Debug, Args, Clone)]
pub struct OnArgs {
    /// Act on the app's objects on a Kubernetes cluster instead of the dozen server (also
    /// --to). Works with deploy, rollback, ps, ps:scale, logs and run; not yet with
    /// ps:restart, run:detached (use run --detach), logs --source, config:* (set config on
    /// the server, then deploy --to kubernetes) and domains.
    #[arg(long = "on", visible_alias = "to", value_name = "TARGET", value_enum)]
    pub on: Option<Target>,
    /// The cluster's namespace (default: the kubeconfig context's).
    #[arg(long = "namespace", value_name = "NS", requires = "on")]
    pub namespace: Option<String>,
}

/// How long to wait and what to do when it takes too long.
#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// With --to kubernetes: seconds to wait for the release phase, then for the rollout
    /// [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// With --to kubernetes: apply and return without waiting for the rollout (the release
    /// phase is still waited for: processes never run a release whose release phase has not
    /// completed).
    #[arg(long)]
    pub no_wait: bool,
    /// With --to kubernetes: leave a rollout that does not become ready as it is, instead of
    /// applying the previous release's objects again.
    #[arg(long)]
    pub no_give_back: bool,
}

impl WaitArgs {
    fn options(&self, formation_from_release: BTreeSet<String>) -> DeployOptions {
        DeployOptions {
            timeout: self
                .timeout
                .map_or(dozen_kubernetes::DEFAULT_TIMEOUT, Duration::from_secs),
            wait: !self.no_wait,
            give_back: !self.no_give_back,
            formation_from_release,
        }
    }

    fn given(&self) -> Option<&'static str> {
        if self.timeout.is_some() {
            Some("--timeout")
        } else if self.no_wait {
            Some("--no-wait")
        } else if self.no_give_back {
            Some("--no-give-back")
        } else {
            None
        }
    }
}

/// `dozen deploy --to kubernetes` and what goes with it.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Apply a release of the dozen server to a Kubernetes cluster (server-side apply, release
    /// phase, rollout; the previous release back if it does not become ready) instead of
    /// building a directory (also --on).
    #[arg(long = "to", visible_alias = "on", value_name = "TARGET", value_enum)]
    pub to: Option<Target>,
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub objects: ObjectArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `dozen rollback --to kubernetes`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Run an earlier release again on a Kubernetes cluster, as it was deployed there
    /// (default: the one before the live one there); the dozen server is not asked and
    /// makes no new release (also --on).
    #[arg(long = "to", visible_alias = "on", value_name = "TARGET", value_enum)]
    pub to: Option<Target>,
    /// The cluster's namespace (default: the kubeconfig context's).
    #[arg(long = "namespace", value_name = "NS", requires = "to")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `dozen run --on kubernetes`.
#[derive(Debug, Args, Clone)]
pub struct RunOnArgs {
    /// Run the one-off as a Job on a Kubernetes cluster (with -a APP) instead of here or on
    /// the dozen server (also --to).
    #[arg(long = "on", visible_alias = "to", value_name = "TARGET", value_enum)]
    pub on: Option<Target>,
    /// The cluster's namespace (default: the kubeconfig context's).
    #[arg(long = "namespace", value_name = "NS", requires = "on")]
    pub namespace: Option<String>,
    /// The release to run it in, vN (default: the one live on the cluster).
    #[arg(long = "release", value_name = "vN", requires = "on")]
    pub release: Option<String>,
    /// The image (default: the one the release runs on the cluster).
    #[arg(long = "image", value_name = "REF", requires = "on")]
    pub image: Option<String>,
    /// Create the Job and return; follow it with kubectl.
    #[arg(long, requires = "on")]
    pub detach: bool,
    /// Seconds to wait for the one-off's pod to start [default: 300].
    #[arg(long = "start-timeout", value_name = "SECONDS", requires = "on")]
    pub start_timeout: Option<u64>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Print one line now (progress goes out as it happens, even into a pipe).
fn say(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
}

fn report(json: bool, app: &str, done: &Deployed) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "app": app,
                "release": done.release,
                "namespace": done.namespace,
                "previous": done.previous,
                "rolled_out": done.rolled_out,
            })
        );
    } else if done.rolled_out {
        println!(
            "deployed {app} {} to namespace {}: rolled out",
            done.release, done.namespace
        );
    } else {
        println!(
            "applied {app} {} to namespace {} without waiting for the rollout (see `dozen ps -a {app} --on kubernetes --namespace {}`)",
            done.release, done.namespace, done.namespace
        );
    }
}

/// `dozen deploy`: to the cluster with `--to kubernetes`, else to the dozen server.
pub fn deploy(dir: Option<PathBuf>, args: AppArgs, kube: DeployArgs) -> anyhow::Result<ExitCode> {
    if kube.to.is_none() {
        let o = &kube.objects;
        let given = [
            (kube.release.release.is_some(), "--release"),
            (kube.release.formation.is_some(), "-m/--formation"),
            (o.namespace.is_some(), "--namespace"),
            (o.image.is_some(), "--image"),
            (!o.resources.is_empty(), "--resources"),
            (!o.autoscale.is_empty(), "--autoscale"),
            (kube.wait.given().is_some(), kube.wait.given().unwrap_or("")),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag));
        if let Some(flag) = given {
            bail!("{flag} is for `dozen deploy --to kubernetes`");
        }
        return remote::deploy(dir, args);
    }
    if let Some(d) = dir {
        bail!(
            "-d {}: `dozen deploy --to kubernetes` runs a release of the dozen server, not a directory; deploy the directory to the server first (dozen deploy -a APP -d DIR)",
            d.display()
        );
    }
    let app = args.app()?;
    let client = Client::from_env()?;
    let release = server_release(&client, app, &kube.release)?;
    let opts = kubernetes_options(&release, &kube.objects)?;
    let explicit = explicit_formation(&kube.release, &release)?;
    let how = kube.wait.options(explicit);
    let json = args.json;
    runtime()?.block_on(async {
        let cluster = Cluster::connect(kube.objects.namespace.as_deref()).await?;
        say(
            json,
            &format!(
                "deploying {app} {} to namespace {}",
                release.version_label(),
                cluster.namespace()
            ),
        );
        let done = cluster
            .deploy(&release, &opts, &how, &mut |e: &Event| {
                say(json, &e.to_string())
            })
            .await?;
        report(json, app, &done);
        Ok(ExitCode::SUCCESS)
    })
}

/// The process types whose replicas `-m` names (all of them for `all=N`).
fn explicit_formation(
    args: &ReleaseArgs,
    release: &dozen_export::ReleaseSpec,
) -> anyhow::Result<BTreeSet<String>> {
    let Some(spec) = &args.formation else {
        return Ok(BTreeSet::new());
    };
    let f = dozen_core::Formation::parse(spec).context("-m/--formation")?;
    if f.all().is_some() {
        return Ok(release.long_running().map(|t| t.name.clone()).collect());
    }
    Ok(f.entries().map(|(t, _)| t.to_string()).collect())
}

/// `dozen rollback`: on the cluster with `--to kubernetes`, else on the dozen server.
pub fn rollback(
    version: Option<&str>,
    args: AppArgs,
    kube: RollbackArgs,
) -> anyhow::Result<ExitCode> {
    if kube.to.is_none() {
        if let Some(flag) = kube.wait.given() {
            bail!("{flag} is for `dozen rollback --to kubernetes`");
        }
        return remote::rollback(version, args);
    }
    let app = args.app()?;
    let how = kube.wait.options(BTreeSet::new());
    let json = args.json;
    runtime()?.block_on(async {
        let cluster = Cluster::connect(kube.namespace.as_deref()).await?;
        let done = cluster
            .rollback(app, version, &how, &mut |e: &Event| {
                say(json, &e.to_string())
            })
            .await?;
        report(json, app, &done);
        Ok(ExitCode::SUCCESS)
    })
}

/// `dozen ps`: the cluster's Deployments and pods with `--on kubernetes`.
pub fn ps(args: AppArgs, on: OnArgs) -> anyhow::Result<ExitCode> {
    if on.on.is_none() {
        return remote::ps(args);
    }
    let app = args.app()?;
    runtime()?.block_on(async {
        let cluster = Cluster::connect(on.namespace.as_deref()).await?;
        let types = cluster.processes(app).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&types)?);
            return Ok(ExitCode::SUCCESS);
        }
        if types.is_empty() {
            println!(
                "{app} has nothing in namespace {} (dozen deploy -a {app} --to kubernetes)",
                cluster.namespace()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let n = |v: Option<i32>| v.map_or("-".to_string(), |n| n.to_string());
        let mut rows = vec![vec![
            "TYPE".into(),
            "RELEASE".into(),
            "DESIRED".into(),
            "UPDATED".into(),
            "READY".into(),
        ]];
        for t in &types {
            rows.push(vec![
                t.process_type.clone(),
                t.release.clone().unwrap_or_else(|| "-".into()),
                n(t.desired),
                n(t.updated),
                n(t.ready),
            ]);
        }
        remote::table(&rows);
        let mut pods = vec![vec![
            "POD".into(),
            "TYPE".into(),
            "PHASE".into(),
            "READY".into(),
            "RESTARTS".into(),
            "RELEASE".into(),
            "STARTED".into(),
        ]];
        for t in &types {
            for p in &t.pods {
                let phase = match &p.reason {
                    Some(r) => format!("{} ({r})", p.phase),
                    None => p.phase.clone(),
                };
                pods.push(vec![
                    p.name.clone(),
                    t.process_type.clone(),
                    phase,
                    p.ready.clone(),
                    p.restarts.to_string(),
                    p.release.clone().unwrap_or_else(|| "-".into()),
                    p.started.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
        }
        println!();
        if pods.len() == 1 {
            println!("no pods in namespace {}", cluster.namespace());
        } else {
            remote::table(&pods);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `dozen ps:scale`: the cluster's replicas with `--on kubernetes`.
pub fn ps_scale(changes: &[String], args: AppArgs, on: OnArgs) -> anyhow::Result<ExitCode> {
    if on.on.is_none() {
        return remote::ps_scale(changes, args);
    }
    let app = args.app()?;
    let mut wanted = BTreeMap::new();
    for (t, n) in remote::parse_scale(changes)? {
        if t == RELEASE_TYPE {
            bail!("`{t}={n}`: the release phase runs once per release and cannot be scaled");
        }
        wanted.insert(t.to_string(), n);
    }
    runtime()?.block_on(async {
        let cluster = Cluster::connect(on.namespace.as_deref()).await?;
        let scaled = cluster.scale(app, &wanted).await?;
        if args.json {
            let v: serde_json::Map<String, serde_json::Value> = scaled
                .iter()
                .map(|s| (s.process_type.clone(), s.to.into()))
                .collect();
            println!("{}", serde_json::Value::Object(v));
        } else {
            let f: Vec<String> = scaled
                .iter()
                .map(|s| format!("{}={} (was {})", s.process_type, s.to, s.from))
                .collect();
            println!(
                "scaled {app} in namespace {}: {}",
                cluster.namespace(),
                f.join(" ")
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `dozen logs`: the pods' output with `--on kubernetes`.
pub fn logs(
    tail: bool,
    ps: Option<&str>,
    source: Option<&str>,
    lines: usize,
    args: AppArgs,
    on: OnArgs,
) -> anyhow::Result<ExitCode> {
    if on.on.is_none() {
        return remote::logs(tail, ps, source, lines, args);
    }
    if source.is_some() {
        bail!(
            "--source is not available with --on kubernetes: only the pods' output is read (the cluster's events: kubectl get events)"
        );
    }
    let app = args.app()?;
    let request = LogRequest {
        process: ps.map(str::to_string),
        tail: Some(i64::try_from(lines).unwrap_or(i64::MAX)),
        follow: tail,
    };
    runtime()?.block_on(async {
        let cluster = Cluster::connect(on.namespace.as_deref()).await?;
        let mut rx = cluster.logs(app, &request).await?;
        let mut failed = false;
        while let Some(item) = rx.recv().await {
            match item {
                Ok(l) if args.json => {
                    println!("{}", serde_json::json!({"pod": l.pod, "line": l.line}))
                }
                Ok(l) => println!("{} | {}", l.pod, l.line),
                Err(e) => {
                    failed = true;
                    eprintln!("dozen: {e}");
                }
            }
            let _ = std::io::stdout().flush();
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// `dozen run -a APP --on kubernetes CMD` (and `run:detached`): a one-off Job from the
/// export's template, in a release that ran on the cluster; its output is streamed and its
/// exit code returned, unless `--detach`.
pub fn run(command: &[String], app: Option<&str>, on: RunOnArgs) -> anyhow::Result<ExitCode> {
    let app = app.context("which app? give -a APP (or set DOZEN_APP)")?;
    let line = dozen_core::command::shell_line(command);
    let client = Client::from_env()?;
    let rt = runtime()?;
    let (cluster, live) = rt.block_on(async {
        let cluster = Cluster::connect(on.namespace.as_deref()).await?;
        let live = cluster.live_release(app).await?;
        anyhow::Ok((cluster, live))
    })?;
    let version = match (&on.release, &live) {
        (Some(v), _) => format!("v{}", v.trim_start_matches('v')),
        (None, Some(l)) => l.release.clone(),
        (None, None) => bail!(
            "{app} is not deployed in namespace {}: deploy it (dozen deploy -a {app} --to kubernetes) or name a release with --release vN",
            cluster.namespace()
        ),
    };
    let release_args = ReleaseArgs {
        release: Some(version.clone()),
        formation: None,
        grace: DEFAULT_GRACE_SECONDS,
    };
    // The server's client blocks: outside the runtime.
    let release = server_release(&client, app, &release_args)?;
    rt.block_on(async {
        let image = match &on.image {
            Some(i) => i.clone(),
            None => match cluster.release_image(app, &version).await? {
                Some(i) => i,
                None => live
                    .as_ref()
                    .filter(|l| l.release == version)
                    .and_then(|l| l.image.clone())
                    .with_context(|| {
                        format!("which image runs {app} {version}? give --image REF")
                    })?,
            },
        };
        let opts = KubernetesOptions::new(image);
        let job = cluster.run_one_off(&release, &opts, &line).await?;
        let ns = cluster.namespace().to_string();
        eprintln!("dozen: running `{line}` as Job/{job} in namespace {ns} ({app} {version})");
        if on.detach {
            println!("{job}");
            eprintln!("dozen: follow it with `kubectl logs -f job/{job} -n {ns}`");
            return Ok(ExitCode::SUCCESS);
        }
        let start = Duration::from_secs(on.start_timeout.unwrap_or(300));
        let Some(pod) = cluster.await_job_pod(&job, start).await? else {
            let state = cluster.job_state(&job).await;
            bail!(
                "Job/{job} has not started within {}s ({state}); it is left to run: follow it with `kubectl logs -f job/{job} -n {ns}`, or remove it with `kubectl delete job {job} -n {ns}`",
                start.as_secs()
            );
        };
        let mut rx = cluster
            .logs(
                app,
                &LogRequest {
                    process: Some(pod.clone()),
                    tail: None,
                    follow: true,
                },
            )
            .await?;
        while let Some(item) = rx.recv().await {
            match item {
                Ok(l) => println!("{}", l.line),
                Err(e) => eprintln!("dozen: {e}"),
            }
            let _ = std::io::stdout().flush();
        }
        // The output ended with the container; its Job says how.
        cluster
            .wait_for_job(&job, Duration::from_secs(60))
            .await?;
        let code = cluster.pod_exit_code(&pod).await?.unwrap_or(1);
        Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)))
    })
}

/// `dozen run` with `--on kubernetes`.
pub fn run_args(args: RunArgs) -> anyhow::Result<ExitCode> {
    run(&args.command, args.app.as_deref(), args.kube)
}
