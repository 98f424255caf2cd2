//! Running a build: copy the source to a fresh directory, run the plan's steps there under
//! the supervisor with a clean environment, and check the Procfile.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dozen_core::Procfile;
use dozen_logs::{EventKind, LogSender, PlatformEvent};
use dozen_supervise::{Confinement, ProcessSpec, Stop, Supervisor};
use tokio::sync::watch;

use crate::archive::Item;
use crate::detect::{BuildPlan, DefaultWeb, Host};
use crate::error::BuildError;
use crate::manifest::AppManifest;
use crate::slug::{AppJsonMeta, SlugMeta};
use crate::source;

/// The name build steps have in the log.
pub const BUILD_PROCESS_NAME: &str = "build";

/// Config vars that are switches of the build itself rather than config of the running app, as
/// Heroku's buildpacks read them: the server passes these (and only these) from the app's config
/// to its builds, so `dozen config:set DISABLE_COLLECTSTATIC=1` works as it does on Heroku.
pub const BUILD_SWITCHES: [&str; 1] = ["DISABLE_COLLECTSTATIC"];

/// Variables passed from dozen's own environment to build steps when set: where toolchains
/// live and how the host reaches the network (proxies, certificate authorities). Platform
/// settings, never the app's config.
pub const PASSED_THROUGH: [&str; 20] = [
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "PYENV_ROOT",
    // Whether a build downloads a Python the host lacks, and from where (a mirror).
    "DOZEN_PYTHON_DOWNLOADS",
    "UV_PYTHON_INSTALL_MIRROR",
    "UV_PYTHON_DOWNLOADS_JSON_URL",
    "GOROOT",
    "JAVA_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    // The host's certificate authorities as Node, pip, requests and curl read them.
    "NODE_EXTRA_CA_CERTS",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Everything one build needs.
#[derive(Debug)]
pub struct BuildRequest<'a> {
    /// Runs the steps (as one-offs, never restarted).
    pub supervisor: &'a Supervisor,
    /// Where the build log goes: the steps' output lines (as process `build`) and the build's
    /// own events (detected kind, each step). The server passes the app's stream.
    pub log: LogSender,
    /// The unpacked source. Only read: the build runs in a copy.
    pub source: &'a Path,
    /// A directory for this build alone (created if missing; must not contain `app`). The
    /// build runs in `work_dir/app`, with `HOME` at `work_dir/home` and `TMPDIR` at
    /// `work_dir/tmp`. The caller removes it after packing the slug.
    pub work_dir: &'a Path,
    /// The app's build cache, kept between builds (created if missing). Steps see it as
    /// `CACHE_DIR`. Two builds of one app must not run at once with the same cache.
    pub cache_dir: &'a Path,
    /// The build's id, given to steps as `DOZEN_BUILD_ID`.
    pub build_id: &'a str,
    /// The source's version (a git commit, say), given to steps as `SOURCE_VERSION`; the build
    /// id when unknown.
    pub source_version: Option<&'a str>,
    /// Extra platform variables for the steps (never the app's config vars: builds must not
    /// depend on them). They override the defaults.
    pub extra_env: Vec<(String, String)>,
    /// Set to anything but [`Stop::Running`] to cancel: the running step is stopped (SIGTERM,
    /// grace, SIGKILL) and the build ends with [`BuildError::Cancelled`].
    pub stop: watch::Receiver<Stop>,
    /// The app's own user and view of the system, for the steps and for detection's questions
    /// to the host (`None`: dozen's own user). The build directory and the cache are given to
    /// that user (mode 0700) and exposed to the steps besides what `confine` shows.
    pub confine: Option<Confinement>,
    /// The most memory the steps may use (each step, with everything it starts), where the
    /// host enforces limits ([`Supervisor::limit_support`]); over it the kernel kills the step.
    pub memory_limit: Option<u64>,
    /// The most disk `work_dir` may use; over it the build is stopped and fails with
    /// [`BuildError::DiskLimit`].
    pub disk_limit: Option<u64>,
}

/// A finished build, ready for [`pack_slug`](crate::pack_slug).
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The built tree (`work_dir/app`).
    pub dir: PathBuf,
    /// What was run.
    pub plan: BuildPlan,
    /// What the app declared.
    pub manifest: AppManifest,
    /// The app's Procfile, read after the build; without one, the stack's default `web`.
    pub procfile: Procfile,
    /// Whether `procfile` is the stack's default rather than the app's own file.
    pub default_procfile: bool,
    /// The Procfile's process types, name -> command (for the release record).
    pub process_types: BTreeMap<String, String>,
    /// What the processes need in their environment ([`run_env_of`](crate::run_env_of) of
    /// the built tree).
    pub run_env: dozen_core::RunEnv,
}

impl BuildOutput {
    /// The slug manifest fields this build determines.
    pub fn slug_meta(&self) -> SlugMeta {
        SlugMeta {
            process_types: self
                .procfile
                .types
                .iter()
                .map(|t| (t.name.clone(), t.command.clone()))
                .collect(),
            health_check: self.manifest.health_check.clone(),
            boot_timeout: self.manifest.boot_timeout,
            build_kind: self.plan.kind.to_string(),
            run_env: self.run_env.clone(),
            app_json: AppJsonMeta {
                formation: self.manifest.formation.clone(),
                postdeploy: self.manifest.postdeploy.clone(),
            },
            sizes: self.manifest.sizes.clone(),
        }
    }
}

/// Build the app in `req.source`: copy it to a fresh directory, read its manifest, detect
/// or take its build command (asking the host which tools and versions it has, with the
/// steps' own environment), check its Procfile, run each step under the supervisor, make a
/// Python virtualenv relocatable, and read the Procfile again (without one: the stack's
/// default `web` process, or [`BuildError::NoProcfile`]).
///
/// Each step is `/bin/sh -c STEP` in the build directory with *only* this environment
/// (`clear_env`): `PATH` (dozen's own), `HOME`, `TMPDIR`, `LANG=C.UTF-8`, `CACHE_DIR`,
/// `DOZEN_BUILD_ID`, `SOURCE_VERSION`, tool caches inside `CACHE_DIR` (`CARGO_HOME`,
/// `npm_config_cache`, `PIP_CACHE_DIR`, `GOCACHE`, `GOMODCACHE`, `GOPATH`,
/// `YARN_CACHE_FOLDER`, `COREPACK_HOME`; pnpm's store is given on its command line), quiet
/// non-interactive tool settings (`PIP_DISABLE_PIP_VERSION_CHECK`, `PYTHONDONTWRITEBYTECODE`,
/// npm's audit, fund and update notices off), `RUSTUP_HOME` (dozen's own, so rustup finds its
/// toolchains although `HOME` is the build's), the
/// [`PASSED_THROUGH`] variables dozen itself has, and `req.extra_env`; under all of these, the
/// app's own `[build.env]` from `dozen.toml` (such as `DISABLE_COLLECTSTATIC=1`). Of the app's config
/// vars, only the [`BUILD_SWITCHES`] the server passes in `extra_env` reach a build.
pub async fn build(req: BuildRequest<'_>) -> Result<BuildOutput, BuildError> {
    /// Ends the task that passes the caller's stop on to the steps, whatever way the build ends.
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    let app_dir = req.work_dir.join("app");
    let home = req.work_dir.join("home");
    let tmp = req.work_dir.join("tmp");
    if fs::symlink_metadata(&app_dir).is_ok() {
        return Err(BuildError::DestinationExists { path: app_dir });
    }
    for dir in [req.work_dir, &home, &tmp, req.cache_dir] {
        fs::create_dir_all(dir).map_err(|e| BuildError::io(dir, e))?;
    }
    let cache_dir =
        fs::canonicalize(req.cache_dir).map_err(|e| BuildError::io(req.cache_dir, e))?;
    let (from, to) = (req.source.to_path_buf(), app_dir.clone());
    blocking(move || copy_tree(&from, &to)).await?;
    let app_dir = fs::canonicalize(&app_dir).map_err(|e| BuildError::io(&app_dir, e))?;
    let home = fs::canonicalize(&home).map_err(|e| BuildError::io(&home, e))?;
    let tmp = fs::canonicalize(&tmp).map_err(|e| BuildError::io(&tmp, e))?;

    let work_dir = fs::canonicalize(req.work_dir).map_err(|e| BuildError::io(req.work_dir, e))?;
    let confine = match &req.confine {
        Some(c) => {
            c.own(&work_dir).map_err(|e| BuildError::io(&work_dir, e))?;
            c.own_once(&cache_dir)
                .map_err(|e| BuildError::io(&cache_dir, e))?;
            Some(c.clone().exposing(&work_dir).exposing(&cache_dir))
        }
        None => None,
    };

    let manifest = AppManifest::load(&app_dir)?;
    let env = build_env(&req, &manifest, &home, &tmp, &cache_dir);
    let host = Host::new(env.clone(), &app_dir).confined(confine.clone());
    let (dir, m) = (app_dir.clone(), manifest.clone());
    let plan = blocking(move || BuildPlan::detect_on(&dir, &m, &host)).await?;
    // Fail before a long build when the Procfile is already wrong, or missing with no default.
    let has_procfile = fs::symlink_metadata(app_dir.join("Procfile")).is_ok();
    if has_procfile {
        load_procfile(&app_dir)?;
    } else if let DefaultWeb::None(reason) = &plan.default_web {
        return Err(BuildError::NoProcfile {
            reason: reason.clone(),
        });
    }

    let detected = match plan.kind {
        "declared" => format!(
            "building with the command from {}",
            manifest
                .build_command_from
                .as_deref()
                .unwrap_or(Path::new("the manifest"))
                .display()
        ),
        "none" => "no build step: no build command declared and no file of a known stack (Cargo.toml, Gemfile, composer.json, pom.xml, build.gradle, go.mod, requirements.txt, Pipfile, poetry.lock, uv.lock, pyproject.toml, package.json)".into(),
        kind => match plan.detected_from {
            Some(file) => format!("detected a {kind} app ({file})"),
            None => format!("detected a {kind} app"),
        },
    };
    info(&req.log, detected).await;
    for note in manifest.warnings.iter().chain(&plan.notes) {
        info(&req.log, note.clone()).await;
    }

    // The steps stop when the caller says so, or when the build directory is over its limit.
    let (step_stop_tx, step_stop) = watch::channel(Stop::Running);
    let step_stop_tx = std::sync::Arc::new(step_stop_tx);
    let forward = {
        let (mut from, to) = (req.stop.clone(), step_stop_tx.clone());
        tokio::spawn(async move {
            while from.changed().await.is_ok() {
                let _ = to.send(*from.borrow_and_update());
            }
        })
    };
    let _forward = AbortOnDrop(forward);
    let disk = req.disk_limit.map(|limit| {
        crate::disk::DiskWatch::start(req.work_dir.to_path_buf(), limit, step_stop_tx.clone())
    });
    let limits = req.memory_limit.map(|m| dozen_supervise::Limits {
        memory: Some(m),
        cpu_millis: None,
        pids: None,
        note: Some("the build's memory limit: raise DOZEN_BUILD_MEMORY on the server".into()),
    });
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        if *req.stop.borrow() != Stop::Running {
            return Err(BuildError::Cancelled { step: step.clone() });
        }
        info(&req.log, format!("step {}/{total}: {step}", i + 1)).await;
        let spec = ProcessSpec {
            name: BUILD_PROCESS_NAME.into(),
            command: step.clone(),
            env: env.clone(),
            cwd: app_dir.clone(),
            port: None,
            color: 0,
            clear_env: true,
            log: Some(req.log.clone()),
            confine: confine.clone(),
            limits: limits.clone(),
        };
        let status = req.supervisor.run_once(spec, step_stop.clone()).await;
        if let Some(d) = &disk {
            if let Some(used) = d.over().await {
                return Err(BuildError::DiskLimit {
                    step: step.clone(),
                    used,
                    limit: d.limit(),
                });
            }
        }
        if *req.stop.borrow() != Stop::Running {
            return Err(BuildError::Cancelled { step: step.clone() });
        }
        if !status.success() {
            return Err(BuildError::StepFailed {
                step: step.clone(),
                status,
            });
        }
    }

    let venv_bin = app_dir.join(".venv").join("bin");
    if venv_bin.is_dir() {
        let n = blocking(move || relocate_venv_scripts(&venv_bin)).await?;
        if n > 0 {
            info(
                &req.log,
                format!("made {n} scripts in .venv/bin relocatable (they find .venv/bin/python beside them)"),
            )
            .await;
        }
    }

    let default_procfile = !has_procfile;
    let procfile = if has_procfile {
        load_procfile(&app_dir)?
    } else {
        let command = match &plan.default_web {
            DefaultWeb::Command(c) => c.clone(),
            DefaultWeb::SingleBinary => single_binary(&app_dir.join("bin"), plan.kind)?,
            DefaultWeb::None(reason) => {
                return Err(BuildError::NoProcfile {
                    reason: reason.clone(),
                });
            }
        };
        info(
            &req.log,
            format!(
                "no Procfile: using the {} default `web: {command}`",
                plan.kind
            ),
        )
        .await;
        Procfile::parse(&format!("web: {command}\n"), Path::new("Procfile"))?
    };
    let names: Vec<&str> = procfile.names().collect();
    info(&req.log, format!("process types: {}", names.join(", "))).await;
    let run_env = crate::run_env::run_env_of(&app_dir, plan.kind);
    if let Some(said) = run_env.describe() {
        info(&req.log, format!("run environment: {said}")).await;
    }
    let process_types = procfile
        .types
        .iter()
        .map(|t| (t.name.clone(), t.command.clone()))
        .collect();
    Ok(BuildOutput {
        dir: app_dir,
        plan,
        manifest,
        procfile,
        default_procfile,
        process_types,
        run_env,
    })
}

/// The `web` command of a Go or Rust app without a Procfile: its only executable in `bin/`.
fn single_binary(bin: &Path, kind: &str) -> Result<String, BuildError> {
    let mut names = Vec::new();
    if let Ok(entries) = fs::read_dir(bin) {
        for entry in entries.flatten() {
            let executable = entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if executable {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    match names.as_slice() {
        [one] => Ok(format!("bin/{one}")),
        [] => Err(BuildError::NoProcfile {
            reason: format!(
                "the {kind} build put no executable in bin/, so there is no default web process; add a Procfile"
            ),
        }),
        many => Err(BuildError::NoProcfile {
            reason: format!(
                "the {kind} build put {} executables in bin/ ({}), so there is no single default web process; add a Procfile that says which one is `web`",
                many.len(),
                many.join(", ")
            ),
        }),
    }
}

/// Run file-system work off the async threads (a large source tree takes a while to copy).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Err(BuildError::io(
            "(build)",
            io::Error::other("the runtime shut down during the build"),
        )),
    }
}

async fn info(log: &LogSender, text: String) {
    // A closed log only loses the build's own narration; the build itself goes on.
    let _ = log
        .event(PlatformEvent::new(EventKind::Info, text).target(BUILD_PROCESS_NAME))
        .await;
}

fn build_env(
    req: &BuildRequest<'_>,
    manifest: &AppManifest,
    home: &Path,
    tmp: &Path,
    cache: &Path,
) -> Vec<(String, String)> {
    // What the app declares for its build comes first: the platform's own settings win.
    let mut env: BTreeMap<String, String> = manifest.build_env.iter().cloned().collect();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let dir = |p: &Path| p.to_string_lossy().into_owned();
    let in_cache = |name: &str| dir(&cache.join(name));
    env.insert("PATH".into(), path);
    env.insert("HOME".into(), dir(home));
    env.insert("TMPDIR".into(), dir(tmp));
    env.insert("LANG".into(), "C.UTF-8".into());
    env.insert("CACHE_DIR".into(), dir(cache));
    env.insert("DOZEN_BUILD_ID".into(), req.build_id.into());
    env.insert(
        "SOURCE_VERSION".into(),
        req.source_version.unwrap_or(req.build_id).into(),
    );
    env.insert("CARGO_HOME".into(), in_cache("cargo-home"));
    env.insert("npm_config_cache".into(), in_cache("npm"));
    // No network calls a build does not need, and no prompts.
    env.insert("npm_config_audit".into(), "false".into());
    env.insert("npm_config_fund".into(), "false".into());
    env.insert("npm_config_update_notifier".into(), "false".into());
    env.insert("PIP_CACHE_DIR".into(), in_cache("pip"));
    env.insert("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into());
    env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    env.insert("GOCACHE".into(), in_cache("go-build"));
    env.insert("GOMODCACHE".into(), in_cache("go-mod"));
    env.insert("GOPATH".into(), in_cache("go"));
    env.insert("YARN_CACHE_FOLDER".into(), in_cache("yarn"));
    env.insert("COREPACK_HOME".into(), in_cache("corepack"));
    env.insert("COREPACK_ENABLE_DOWNLOAD_PROMPT".into(), "0".into());
    for key in PASSED_THROUGH {
        if let Ok(value) = std::env::var(key) {
            env.insert(key.into(), value);
        }
    }
    // rustup finds its toolchains under $HOME/.rustup by default, and HOME is the build's own:
    // point it at dozen's.
    if !env.contains_key("RUSTUP_HOME") {
        if let Some(own_home) = std::env::var_os("HOME") {
            let rustup = Path::new(&own_home).join(".rustup");
            if rustup.is_dir() {
                env.insert("RUSTUP_HOME".into(), dir(&rustup));
            }
        }
    }
    for (k, v) in &req.extra_env {
        env.insert(k.clone(), v.clone());
    }
    env.into_iter().collect()
}

/// Read `app_dir/Procfile`, naming it `Procfile` in errors (the build directory means nothing
/// to the user).
fn load_procfile(app_dir: &Path) -> Result<Procfile, BuildError> {
    let path = app_dir.join("Procfile");
    // The steps may have replaced it with a link: dozen reads only what is in the tree.
    if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
        && !fs::canonicalize(&path).is_ok_and(|p| p.starts_with(app_dir))
    {
        return Err(BuildError::NoProcfile {
            reason: "the Procfile is a link to a file outside the app's directory".into(),
        });
    }
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Procfile::parse(&text, Path::new("Procfile"))?),
        // Missing, unreadable or not UTF-8: let dozen-core say which, with the line.
        Err(_) => match Procfile::load(&path) {
            Ok(p) => Ok(p),
            Err(e) => Err(e.into()),
        },
    }
}

/// Copy `from` to `to` (which must not exist): files with their execute bits, links as links,
/// minus `.git` and `.dozen`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    let mut items = BTreeMap::new();
    let mut skipped = Vec::new();
    source::walk(from, from, &None, &mut items, &mut skipped)?;
    fs::create_dir(to).map_err(|e| BuildError::io(to, e))?;
    for (rel, item) in &items {
        let dest = to.join(rel);
        match item {
            Item::Dir => fs::create_dir_all(&dest).map_err(|e| BuildError::io(&dest, e))?,
            Item::File { source, executable } => {
                fs::copy(source, &dest).map_err(|e| BuildError::io(source, e))?;
                let mode = if *executable { 0o755 } else { 0o644 };
                fs::set_permissions(&dest, fs::Permissions::from_mode(mode))
                    .map_err(|e| BuildError::io(&dest, e))?;
            }
            Item::Symlink { target } => {
                std::os::unix::fs::symlink(target, &dest).map_err(|e| BuildError::io(&dest, e))?
            }
        }
    }
    Ok(())
}

/// Rewrite the `#!<build dir>/.venv/bin/python` line of each script in `.venv/bin` so the
/// script runs the `python` beside it wherever the slug is extracted (the trick pip's own
/// launchers use for long paths). Returns how many scripts were rewritten.
fn relocate_venv_scripts(venv_bin: &Path) -> Result<usize, BuildError> {
    let prefix = format!("#!{}", venv_bin.display());
    let mut rewritten = 0;
    let entries = fs::read_dir(venv_bin).map_err(|e| BuildError::io(venv_bin, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BuildError::io(venv_bin, e))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(|e| BuildError::io(&path, e))?;
        if !meta.is_file() || meta.len() > 1 << 20 {
            continue;
        }
        let mut head = [0u8; 2];
        let mut file = fs::File::open(&path).map_err(|e| BuildError::io(&path, e))?;
        if file.read_exact(&mut head).is_err() || &head != b"#!" {
            continue;
        }
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => continue,
            Err(e) => return Err(BuildError::io(&path, e)),
        };
        let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let Some(interpreter) = first
            .strip_prefix(&prefix)
            .and_then(|s| s.strip_prefix('/'))
        else {
            continue;
        };
        if interpreter.contains(['/', ' ', '\'', '"', '$', '`', '\\']) || interpreter.is_empty() {
            continue;
        }
        let launcher = format!(
            "#!/bin/sh\n'''exec' \"$(dirname -- \"$(readlink -f -- \"$0\")\")/{interpreter}\" \"$0\" \"$@\"\n' '''\n{rest}"
        );
        fs::write(&path, launcher).map_err(|e| BuildError::io(&path, e))?;
        rewritten += 1;
    }
    Ok(rewritten)
}
