//! `dozen export kubernetes|systemd` and `dozen build --oci`: a release beyond one host, over
//! `dozen_export`.
//!
//! A release comes from the server (`-a APP [--release vN]`: its process types, config,
//! formation and slug manifest) or, for systemd, from a Procfile and `.env` on disk.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dozen_core::{Formation, RunEnv};
use dozen_export::kubernetes::{self, Autoscale, KubernetesOptions};
use dozen_export::oci::{self, ImageOptions};
use dozen_export::systemd::{self, SystemdOptions};
use dozen_export::{DEFAULT_GRACE_SECONDS, ProcessType, ReleaseSpec, output};

use crate::cli::ProjectArgs;
use crate::client::Client;
use crate::project::Project;

#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// Kubernetes manifests of a release: Secret, release Job, Deployments, Service, autoscalers.
    Kubernetes(KubernetesArgs),
    /// systemd units: a target, one service per process instance, an env file (mode 0600).
    Systemd(SystemdArgs),
}

/// Which release of which app, on the server.
#[derive(Debug, Args, Clone)]
pub struct ReleaseArgs {
    /// The release, vN (default: the live one).
    #[arg(long, value_name = "vN")]
    pub release: Option<String>,
    /// Replace the formation: web=2,worker=1 (default: the app's formation).
    #[arg(short = 'm', long = "formation", value_name = "FORMATION")]
    pub formation: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when a process stops.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_GRACE_SECONDS)]
    pub grace: u32,
}

#[derive(Debug, Args)]
pub struct KubernetesArgs {
    /// The app on the server (also DOZEN_APP).
    #[arg(short = 'a', long = "app", env = "DOZEN_APP")]
    pub app: Option<String>,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// A directory to write (one file per object, in apply order, with apply.sh), or - for one
    /// YAML stream on stdout.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR|-",
        default_value = "-"
    )]
    pub output: String,
    #[command(flatten)]
    pub objects: ObjectArgs,
}

/// How the objects of a release are made, for `export kubernetes` and `deploy --to
/// kubernetes`.
#[derive(Debug, Args, Clone)]
pub struct ObjectArgs {
    /// The namespace of every object (default: the kubectl context's).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The image to run (default: APP:vN, the name `dozen build --oci -a APP` gives it).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// CPU and memory: [TYPE:]cpu=Q,memory=Q,cpu-limit=Q,memory-limit=Q; without TYPE, for
    /// every type. Repeat for several types.
    #[arg(long = "resources", value_name = "[TYPE:]SPEC")]
    pub resources: Vec<String>,
    /// A HorizontalPodAutoscaler: TYPE=MIN-MAX[@CPU%], e.g. web=2-10@70. Repeatable.
    #[arg(long = "autoscale", value_name = "TYPE=MIN-MAX[@CPU]")]
    pub autoscale: Vec<String>,
    /// The numeric user (and group) every process runs as.
    #[arg(long = "uid", value_name = "UID", default_value_t = kubernetes::DEFAULT_USER)]
    pub uid: i64,
}

#[derive(Debug, Args)]
pub struct SystemdArgs {
    /// Export this app's release from the server (also DOZEN_APP); without it, the Procfile and
    /// env files on disk.
    #[arg(short = 'a', long = "app", env = "DOZEN_APP")]
    pub app: Option<String>,
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The app's name in unit names, for a Procfile export (default: the directory's name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Where to write the units (created if missing; other files in it are left alone).
    #[arg(short = 'o', long = "output", value_name = "DIR", required = true)]
    pub output: PathBuf,
    /// User= of the units.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// WorkingDirectory= of the units (default: the app's directory for a Procfile export,
    /// /srv/APP for a server export).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Where the env file will be on the host (EnvironmentFile=; default: in the output
    /// directory).
    #[arg(long = "env-file-at", value_name = "PATH")]
    pub env_file_at: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Write the image as an OCI image layout into this new directory.
    #[arg(long = "oci", value_name = "DIR", required = true)]
    pub oci: PathBuf,
    /// The stack (base) image: an OCI image layout, DIR or DIR:NAME, e.g. one made by
    /// `skopeo copy docker://debian:bookworm-slim oci:stack:latest`.
    #[arg(long, value_name = "DIR[:NAME]")]
    pub stack: String,
    /// Build the slug of this app's release on the server (also DOZEN_APP) instead of the
    /// local directory.
    #[arg(short = 'a', long = "app", env = "DOZEN_APP")]
    pub app: Option<String>,
    /// The server release whose slug to use, vN (default: the live one).
    #[arg(long, value_name = "vN", requires = "app")]
    pub release: Option<String>,
    /// The app's directory, for a local build.
    #[arg(short = 'd', long = "dir", value_name = "DIR", conflicts_with = "app")]
    pub dir: Option<PathBuf>,
    /// The image's name in the layout (oci:DIR:TAG); default vN for a server release, else
    /// latest.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// The numeric user (and group) the image runs as.
    #[arg(long = "uid", value_name = "UID", default_value_t = 10001)]
    pub uid: u32,
}

pub fn export(target: ExportTarget) -> anyhow::Result<ExitCode> {
    match target {
        ExportTarget::Kubernetes(args) => export_kubernetes(args),
        ExportTarget::Systemd(args) => export_systemd(args),
    }
}

fn export_kubernetes(args: KubernetesArgs) -> anyhow::Result<ExitCode> {
    let app = crate::remote::require_app(args.app.as_deref())?;
    let client = Client::from_env()?;
    let release = server_release(&client, app, &args.release)?;
    let opts = kubernetes_options(&release, &args.objects)?;
    let m = kubernetes::manifests(&release, &opts)?;
    if args.output == "-" {
        let yaml = m.to_yaml()?;
        let mut out = std::io::stdout().lock();
        out.write_all(yaml.as_bytes())
            .and_then(|()| out.flush())
            .context("writing the manifests")?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = PathBuf::from(&args.output);
    let mut files: Vec<output::OutputFile> = m
        .documents()?
        .into_iter()
        .map(|d| {
            // The Secret's file holds the config (base64 is not encryption).
            let mode = if d.kind == "Secret" { 0o600 } else { 0o644 };
            output::OutputFile::new(d.file_name(), d.yaml, mode)
        })
        .collect();
    let template = kubernetes::one_off_job(
        &release,
        &opts,
        "echo 'replace this with the command to run'",
    )?;
    files.push(output::OutputFile::new(
        "templates/one-off-job.yaml",
        format!(
            "# A one-off command in {app} {}: edit the command, then `kubectl create -f` this file.\n{}",
            release.version_label(),
            kubernetes::to_yaml(&template)?
        ),
        0o644,
    ));
    files.push(output::OutputFile::new(
        "apply.sh",
        apply_script(&release, &m, args.objects.namespace.as_deref()),
        0o755,
    ));
    output::replace_dir(&dir, &files)?;
    let secret = m.secret.metadata.name.clone().unwrap_or_default();
    println!(
        "wrote {} objects of {app} {} to {} (the Secret {secret} holds its config: keep the directory private)",
        files.len() - 2,
        release.version_label(),
        dir.display()
    );
    println!(
        "apply them in order with {}",
        dir.join("apply.sh").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The options of a release's objects: the image (default `APP:vN`, said on stderr), the
/// namespace, the user, resources and autoscalers.
pub(crate) fn kubernetes_options(
    release: &ReleaseSpec,
    args: &ObjectArgs,
) -> anyhow::Result<KubernetesOptions> {
    let app = &release.app;
    let image = match args.image.clone() {
        Some(i) => i,
        None => {
            let image = format!("{app}:{}", release.version_label());
            eprintln!(
                "dozen: no --image: the pods run `{image}` (push the image of `dozen build --oci -a {app}` under that name, or give --image)"
            );
            image
        }
    };
    let mut opts = KubernetesOptions::new(image);
    opts.namespace = args.namespace.clone();
    opts.run_as_user = args.uid;
    // The defaults for every type first, then each type's own on top of them.
    for spec in args.resources.iter().filter(|s| !s.contains(':')) {
        opts.default_resources = opts.default_resources.with(spec, "--resources")?;
    }
    for (t, rest) in args.resources.iter().filter_map(|s| s.split_once(':')) {
        let base = opts
            .resources
            .get(t)
            .unwrap_or(&opts.default_resources)
            .clone();
        let r = base.with(rest, &format!("--resources {t}"))?;
        opts.resources.insert(t.to_string(), r);
    }
    for spec in &args.autoscale {
        let (t, range) = spec
            .split_once('=')
            .with_context(|| format!("--autoscale `{spec}`: write TYPE=MIN-MAX, e.g. web=2-10"))?;
        let a = Autoscale::parse(range, &format!("--autoscale {t}"))?;
        opts.autoscale.insert(t.to_string(), a);
    }
    Ok(opts)
}

/// `kubectl` in apply order: config, the release Job (waited for), then the processes.
fn apply_script(
    release: &ReleaseSpec,
    m: &kubernetes::Manifests,
    namespace: Option<&str>,
) -> String {
    let ns = namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
    let mut s = format!(
        "#!/bin/sh\n# {} {}: written by `dozen export kubernetes`. Applies the config, runs the\n# release phase and waits for it, then rolls out the processes. KUBECTL and TIMEOUT may be set.\nset -eu\ncd \"$(dirname \"$0\")\"\nkubectl=\"${{KUBECTL:-kubectl}}\"\n\"$kubectl\" apply -f 1-config/\n",
        release.app,
        release.version_label()
    );
    if let Some(job) = m.release_job.as_ref().and_then(|j| j.metadata.name.clone()) {
        s.push_str(&format!(
            "\"$kubectl\" apply -f 2-release/\n\"$kubectl\"{ns} wait --for=condition=complete --timeout=\"${{TIMEOUT:-600s}}\" job/{job}\n"
        ));
    }
    s.push_str("\"$kubectl\" apply -f 3-run/\n");
    s
}

fn export_systemd(args: SystemdArgs) -> anyhow::Result<ExitCode> {
    let out_abs = absolute(&args.output)?;
    let (release, default_workdir) = match args.app.as_deref() {
        Some(app) => {
            let client = Client::from_env()?;
            let release = server_release(&client, app, &args.release)?;
            (release, PathBuf::from(format!("/srv/{app}")))
        }
        None => {
            let project = Project::load(&args.project, true)?;
            let root = absolute(&project.root)?;
            (local_release(&project, &root, &args)?, root)
        }
    };
    let env_file = match &args.env_file_at {
        Some(p) => p.clone(),
        None => out_abs.join(format!("{}.env", release.app)),
    };
    let mut opts = SystemdOptions::new(args.workdir.clone().unwrap_or(default_workdir), env_file);
    opts.user = args.user.clone();
    opts.base_port = args.project.port;
    let files = systemd::units(&release, &opts)?;
    output::write_into(&args.output, &files)?;
    let units: Vec<&str> = files
        .iter()
        .filter(|f| !f.name.ends_with(".env"))
        .map(|f| f.name.as_str())
        .collect();
    println!(
        "wrote {} to {} and the config to {} (mode 0600)",
        units.join(", "),
        args.output.display(),
        args.output.join(format!("{}.env", release.app)).display()
    );
    if args.env_file_at.is_some() {
        println!(
            "install {}.env at {} (EnvironmentFile=)",
            release.app,
            opts.env_file.display()
        );
    }
    println!(
        "then: systemctl daemon-reload && systemctl enable --now {}.target",
        release.app
    );
    Ok(ExitCode::SUCCESS)
}

/// A release made from the Procfile and env files on disk (version 0: there is no server
/// release), with the formation of `-m` (default one of each, as `dozen start`).
fn local_release(
    project: &Project,
    root: &Path,
    args: &SystemdArgs,
) -> anyhow::Result<ReleaseSpec> {
    let procfile = project.procfile()?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => root
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .to_ascii_lowercase()
                    .replace(['_', '.', ' '], "-")
            })
            .unwrap_or_default(),
    };
    dozen_core::name::validate_app_name(&name).map_err(|e| {
        anyhow::anyhow!("app name `{name}` (from --name or the directory's name): {e}; give a valid one with --name")
    })?;
    let formation = match &args.release.formation {
        Some(spec) => Formation::parse(spec).context("-m/--formation")?,
        None => Formation::default(),
    };
    formation
        .check_against(procfile)
        .context("-m/--formation")?;
    let manifest = dozen_build::AppManifest::load(root)?;
    // The units run this checkout as it is built: its run environment as a build of it
    // would record it.
    let kind = dozen_build::BuildPlan::detect(root, &manifest)?.kind;
    let run_env = dozen_build::run_env_of(root, kind);
    Ok(ReleaseSpec {
        app: name,
        version: 0,
        process_types: procfile
            .types
            .iter()
            .map(|t| ProcessType::new(&t.name, &t.command))
            .collect(),
        config: project.env.iter().cloned().collect(),
        formation: procfile
            .types
            .iter()
            .map(|t| (t.name.clone(), quantity(formation.quantity(&t.name))))
            .filter(|(name, _)| name != dozen_export::RELEASE_TYPE)
            .collect(),
        grace_seconds: args.release.grace,
        health_check: manifest.health_check,
        boot_timeout: manifest.boot_timeout,
        run_env,
    })
}

fn quantity(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The release `args.release` (default: the live one) of `app` on the server, with its config,
/// the app's formation and what its slug's manifest says.
pub(crate) fn server_release(
    client: &Client,
    app: &str,
    args: &ReleaseArgs,
) -> anyhow::Result<ReleaseSpec> {
    let info: dozen_api::AppInfo = client.get(&format!("/v1/apps/{app}"))?;
    let version = match &args.release {
        Some(v) => v
            .trim_start_matches('v')
            .parse::<u64>()
            .ok()
            .with_context(|| format!("--release `{v}`: write a release as vN, e.g. v3"))?,
        None => info
            .current_release
            .and_then(|v| u64::try_from(v).ok())
            .with_context(|| {
                format!("{app} has no live release: deploy it first, or name one with --release vN")
            })?,
    };
    let r: dozen_api::ReleaseDetail = client.get(&format!("/v1/apps/{app}/releases/{version}"))?;
    if r.release.status == dozen_api::ReleaseStatus::Failed {
        eprintln!(
            "dozen: note: {app} v{version} failed on the server ({}); exporting it anyway",
            r.release
                .failure_reason
                .as_deref()
                .unwrap_or("no reason recorded")
        );
    }
    let config: dozen_api::ConfigVars =
        client.get(&format!("/v1/apps/{app}/releases/{version}/config"))?;
    // Procfile order (it decides the port plan) from the slug's manifest.
    let process_types = r
        .process_types_in_order()
        .iter()
        .map(|(name, command)| ProcessType::new(name, command))
        .collect();
    let mut formation = r.formation_from(&info.formation);
    let types = &r.release.process_types;
    if let Some(spec) = &args.formation {
        let f = Formation::parse(spec).context("-m/--formation")?;
        for (t, n) in f.entries() {
            formation.insert(t.to_string(), quantity(n));
        }
        if let Some(all) = f.all() {
            for t in types.keys().filter(|t| *t != dozen_api::RELEASE_PHASE) {
                if f.entries().all(|(name, _)| name != t) {
                    formation.insert(t.clone(), quantity(all));
                }
            }
        }
    }
    let manifest = r.slug_manifest.as_ref();
    Ok(ReleaseSpec {
        app: app.to_string(),
        version,
        process_types,
        config,
        formation,
        grace_seconds: args.grace,
        health_check: manifest.and_then(|m| m.health_check.clone()),
        boot_timeout: manifest.and_then(|m| m.boot_timeout),
        run_env: match manifest {
            Some(m) => dozen_build::run_env_from_json(&m.run_env)
                .context("the run environment in the release's slug manifest")?,
            None => Default::default(),
        },
    })
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().context("the current directory")?;
    let joined = cwd.join(p);
    Ok(std::fs::canonicalize(&joined).unwrap_or(joined))
}

pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let (stack, stack_ref) = split_stack(&args.stack);
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let mut opts = ImageOptions::new(stack);
    opts.stack_ref = stack_ref;
    opts.user = args.uid;
    let (slug_path, app_name, process_types, release, run_env) = match &args.app {
        Some(app) => {
            let (path, types, version, run_env) =
                fetch_slug(app, args.release.as_deref(), tmp.path())?;
            (path, app.clone(), types, Some(version), run_env)
        }
        None => {
            let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
            let (path, types, run_env) = build_local_slug(&dir, tmp.path())?;
            let name = absolute(&dir)?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "app".into());
            (path, name, types, None, run_env)
        }
    };
    let digest = slug_path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_suffix(".tar"))
        .unwrap_or_default()
        .to_string();
    opts.ref_name = args.tag.clone().unwrap_or_else(|| match release {
        Some(v) => format!("v{v}"),
        None => "latest".into(),
    });
    opts.labels = BTreeMap::from([
        (
            "org.opencontainers.image.title".to_string(),
            app_name.clone(),
        ),
        ("dev.dozen.app".to_string(), app_name.clone()),
        ("dev.dozen.slug".to_string(), digest.clone()),
        (
            "dev.dozen.process-types".to_string(),
            process_types
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]);
    if let Some(v) = release {
        opts.labels
            .insert("dev.dozen.release".to_string(), format!("v{v}"));
    }
    opts.cmd = process_types.iter().find(|t| t.name == "web").map(|t| {
        dozen_core::command::argv(&run_env.profile_line(&opts.workdir, &t.command)).to_vec()
    });
    opts.run_env = run_env;
    let image = oci::build_image(&slug_path, &opts, &args.oci)?;
    println!(
        "wrote {} to {}: the slug ({} entries, {} bytes compressed) at /app on the stack",
        image.manifest_digest,
        args.oci.display(),
        image.layer_entries,
        image.layer_size
    );
    println!(
        "push it: skopeo copy oci:{}:{} docker://REGISTRY/{app_name}:{}",
        args.oci.display(),
        opts.ref_name,
        opts.ref_name
    );
    Ok(ExitCode::SUCCESS)
}

/// `DIR` or `DIR:NAME` (skopeo's `oci:` form): a path that exists is a directory even with a
/// colon in it.
fn split_stack(spec: &str) -> (PathBuf, Option<String>) {
    if Path::new(spec).exists() {
        return (PathBuf::from(spec), None);
    }
    match spec.rsplit_once(':') {
        Some((dir, name)) if !name.contains('/') && !name.is_empty() => {
            (PathBuf::from(dir), Some(name.to_string()))
        }
        _ => (PathBuf::from(spec), None),
    }
}

/// Download the slug of `app`'s release into `dir`, checking its blake3 digest; returns its
/// path, the release's process types, its version and its run environment.
fn fetch_slug(
    app: &str,
    release: Option<&str>,
    dir: &Path,
) -> anyhow::Result<(PathBuf, Vec<ProcessType>, u64, RunEnv)> {
    let client = Client::from_env()?;
    let args = ReleaseArgs {
        release: release.map(str::to_string),
        formation: None,
        grace: DEFAULT_GRACE_SECONDS,
    };
    let spec = server_release(&client, app, &args)?;
    let (mut body, digest) =
        client.download(&format!("/v1/apps/{app}/releases/{}/slug", spec.version))?;
    let digest = digest.context("the server did not say the slug's digest")?;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("the server sent an invalid slug digest");
    }
    let path = dir.join(format!("{digest}.tar.zst"));
    let mut file = std::fs::File::create(&path).with_context(|| path.display().to_string())?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = body.read(&mut buf).context("downloading the slug")?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .with_context(|| path.display().to_string())?;
    }
    let actual = hasher.finalize().to_hex().to_string();
    if actual != digest {
        bail!(
            "the slug downloaded from the server is corrupt (blake3 {actual}, expected {digest}); try again"
        );
    }
    Ok((path, spec.process_types, spec.version, spec.run_env))
}

/// Build `dir` the way `dozen server` does (its source archive unpacked into a clean
/// directory, the build steps without config vars, the slug packed), with the build's output
/// on stderr; returns the slug's path, the Procfile's process types and the run environment.
fn build_local_slug(dir: &Path, tmp: &Path) -> anyhow::Result<(PathBuf, Vec<ProcessType>, RunEnv)> {
    let mut archive = Vec::new();
    dozen_build::pack_source(dir, &mut archive)
        .with_context(|| format!("packing {}", dir.display()))?;
    let source = tmp.join("source");
    dozen_build::unpack_source(archive.as_slice(), &source, &dozen_build::Limits::default())?;
    let cache = dir.join(".dozen").join("build-cache");
    let work = tmp.join("build");
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let format = dozen_logs::Format::human(
        color,
        dozen_logs::TimeStyle::None,
        dozen_build::BUILD_PROCESS_NAME.len(),
    );
    let (writer, log) = dozen_logs::LogWriter::spawn(
        format,
        dozen_logs::Output::Writer(Box::new(std::io::stderr())),
    )
    .context("starting the log writer")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the runtime")?;
    let outcome = runtime.block_on(async {
        let supervisor = dozen_supervise::Supervisor::new(
            dozen_supervise::Policy::default(),
            log.clone(),
            true,
        )?;
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(dozen_supervise::Stop::Running);
        let built = dozen_build::build(dozen_build::BuildRequest {
            supervisor: &supervisor,
            log: log.clone(),
            source: &source,
            work_dir: &work,
            cache_dir: &cache,
            build_id: "local",
            source_version: None,
            extra_env: Vec::new(),
            stop: stop_rx,
            confine: None,
            memory_limit: None,
            disk_limit: None,
        })
        .await?;
        anyhow::Ok(built)
    });
    drop(log);
    drop(runtime);
    let _ = writer.finish();
    let built = outcome?;
    let slug = dozen_build::pack_slug(&built.dir, &tmp.join("slugs"), built.slug_meta())?;
    let types = built
        .procfile
        .types
        .iter()
        .map(|t| ProcessType::new(&t.name, &t.command))
        .collect();
    Ok((slug.path, types, slug.manifest.run_env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names() {
        assert_eq!(
            split_stack("/no/such:latest"),
            ("/no/such".into(), Some("latest".into()))
        );
        assert_eq!(split_stack("/no/such"), ("/no/such".into(), None));
        assert_eq!(split_stack("."), (".".into(), None));
    }
}
