//! Build, release, run: a source upload becomes a slug, the slug and config become a release,
//! and the release goes live after its release phase.

use std::io::Write;
use std::path::PathBuf;

use dozen_logs::EventKind;
use dozen_store::{BuildStatus, NewRelease, Release, ReleaseStatus};
use dozen_supervise::Stop;
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};

use crate::platform::{Platform, PlatformError};

/// An upload saved to disk.
#[derive(Debug)]
pub struct Upload {
    path: PathBuf,
    digest: String,
    size: u64,
    /// The git commit the source is a tree of, when known (a push, a deploy from a checkout).
    commit: Option<String>,
    /// The commit a checkout with uncommitted changes was at: named in the release's
    /// description only, never recorded as its commit (the source is not that commit's tree).
    dirty_base: Option<String>,
}

impl Upload {
    /// A source archive (`tar.zst`) already saved under the data directory.
    pub(crate) fn saved(path: PathBuf, digest: String, size: u64) -> Upload {
        Upload {
            path,
            digest,
            size,
            commit: None,
            dirty_base: None,
        }
    }

    /// The same upload, recorded as the tree of git commit `commit`.
    pub fn of_commit(mut self, commit: Option<String>) -> Upload {
        self.commit = commit;
        self
    }

    /// The same upload, the work tree of a checkout at `commit` with changes not committed.
    pub fn of_dirty_checkout(mut self, commit: String) -> Upload {
        self.commit = None;
        self.dirty_base = Some(commit);
        self
    }

    /// What a release of this upload is called: `Deploy` and the commit (`1a2b3c4`,
    /// `1a2b3c4-dirty` for a checkout with uncommitted changes, as `git describe --dirty`
    /// says), else the digest of the slug it built.
    fn description(&self, slug: &str) -> String {
        let short = |s: &str| s[..s.len().min(7)].to_string();
        match (&self.commit, &self.dirty_base) {
            (Some(c), _) => format!("Deploy {}", short(c)),
            (None, Some(c)) => format!("Deploy {}-dirty", short(c)),
            (None, None) => format!("Deploy {}", short(slug)),
        }
    }
}

/// Save an upload (a stream of chunks: the request body) to a file under the data directory,
/// refusing more than the configured maximum. The digest names the source in the build record.
/// A chunk that fails with [`std::io::ErrorKind::FileTooLarge`] means the sender's own limit
/// was reached.
pub async fn receive_upload<S>(
    s: &Platform,
    app: &str,
    mut upload: S,
) -> Result<Upload, PlatformError>
where
    S: Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin,
{
    let too_large = || {
        PlatformError::TooLarge(format!(
            "the upload is larger than the server accepts ({} MB, DOZEN_MAX_UPLOAD_MB)",
            s.config.max_upload / (1024 * 1024)
        ))
    };
    let dir = s.config.data_dir.join("uploads");
    std::fs::create_dir_all(&dir).map_err(|e| {
        PlatformError::internal("saving the upload", format!("{}: {e}", dir.display()))
    })?;
    let path = dir.join(format!(
        "{app}-{}.tar.zst",
        std::process::id() as u128 * 1_000_000 + nanos()
    ));
    let mut file = std::fs::File::create(&path).map_err(|e| {
        PlatformError::internal("saving the upload", format!("{}: {e}", path.display()))
    })?;
    let mut hasher = blake3::Hasher::new();
    let mut size: u64 = 0;
    let result: Result<(), PlatformError> = async {
        while let Some(chunk) = upload.next().await {
            let chunk = chunk.map_err(|e| match e.kind() {
                std::io::ErrorKind::FileTooLarge => too_large(),
                _ => PlatformError::Invalid(format!("reading the upload: {e}")),
            })?;
            size += chunk.len() as u64;
            if size > s.config.max_upload {
                return Err(too_large());
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(|e| {
                PlatformError::internal("saving the upload", format!("{}: {e}", path.display()))
            })?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    if size == 0 {
        let _ = std::fs::remove_file(&path);
        return Err(PlatformError::Invalid(
            "the upload is empty: send the app's source as tar.zst".into(),
        ));
    }
    Ok(Upload {
        path,
        digest: hasher.finalize().to_hex().to_string(),
        size,
        commit: None,
        dirty_base: None,
    })
}

/// Start deploying `upload` to `app` in a task of its own (a client that goes away does not
/// stop it); resolves to the new release.
pub fn start(
    s: &Platform,
    app: &str,
    upload: Upload,
) -> tokio::sync::oneshot::Receiver<Result<Release, PlatformError>> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (p, app) = (s.clone(), app.to_string());
    // As whoever asked for the deploy: its release records them.
    tokio::spawn(dozen_store::actor::inherit(async move {
        let _ = done_tx.send(deploy(&p, &app, upload).await);
    }));
    done_rx
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000)
        .unwrap_or(0)
}

/// The whole deploy: build the upload into a slug, make a release of it, roll it out.
pub async fn deploy(s: &Platform, app: &str, upload: Upload) -> Result<Release, PlatformError> {
    let _op = s.runtime.lock_app(app).await;
    deploy_locked(s, app, upload).await
}

/// [`deploy`] for a caller that holds the app's lock already (a git push holds it until the
/// branch has moved).
pub async fn deploy_locked(
    s: &Platform,
    app: &str,
    upload: Upload,
) -> Result<Release, PlatformError> {
    let build = s.store.create_build(app, &upload.digest).await?;
    s.runtime
        .event(
            app,
            EventKind::Info,
            format!(
                "build {} started ({} bytes of source)",
                build.id, upload.size
            ),
        )
        .await;
    let work = s.config.data_dir.join("builds").join(&build.id);
    let outcome = build_slug(s, app, &build.id, &upload, &work).await;
    let _ = std::fs::remove_file(&upload.path);
    let _ = std::fs::remove_dir_all(&work);
    let (digest, process_types, app_json) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let message = e.to_string();
            let _ = s
                .store
                .finish_build(
                    &build.id,
                    BuildStatus::Failed,
                    None,
                    &Default::default(),
                    Some(&message),
                )
                .await;
            s.runtime
                .event(
                    app,
                    EventKind::Error,
                    format!("build {} failed: {message}", build.id),
                )
                .await;
            return Err(e);
        }
    };
    s.store
        .finish_build(
            &build.id,
            BuildStatus::Succeeded,
            Some(&digest),
            &process_types,
            None,
        )
        .await?;
    // app.json's formation and postdeploy are for the app's first successful deploy only.
    let first = !s
        .store
        .releases(app)
        .await?
        .iter()
        .any(|r| r.slug.is_some() && r.status == ReleaseStatus::Succeeded);
    let release = s
        .store
        .create_release(
            app,
            NewRelease {
                slug: Some(digest.clone()),
                process_types,
                description: upload.description(&digest),
                build_id: Some(build.id.clone()),
                commit: upload.commit.clone(),
            },
        )
        .await?;
    if first {
        first_formation(s, &release, &app_json.formation).await?;
    }
    let release = roll_out(s, release).await?;
    if let (true, Some(command)) = (first, &app_json.postdeploy) {
        postdeploy(s, &release, command).await;
    }
    Ok(release)
}

/// Scale the app to `app.json`'s formation before its first release runs (instead of one
/// `web`), for the types the release has.
async fn first_formation(
    s: &Platform,
    release: &Release,
    formation: &std::collections::BTreeMap<String, u32>,
) -> Result<(), PlatformError> {
    let (known, unknown): (Vec<_>, Vec<_>) = formation
        .iter()
        .partition(|(t, _)| release.process_types.contains_key(*t) && *t != "release");
    for (t, _) in unknown {
        s.runtime
            .event(
                &release.app,
                EventKind::Error,
                format!(
                    "app.json: formation names `{t}`, which the Procfile does not define; ignored"
                ),
            )
            .await;
    }
    if known.is_empty() {
        return Ok(());
    }
    let changes: Vec<(String, i64)> = known
        .iter()
        .map(|(t, n)| ((*t).clone(), i64::from(**n)))
        .collect();
    let text: Vec<String> = changes.iter().map(|(t, n)| format!("{t}={n}")).collect();
    s.store.scale(&release.app, &changes).await?;
    s.runtime
        .event(
            &release.app,
            EventKind::Info,
            format!("first deploy: formation {} from app.json", text.join(" ")),
        )
        .await;
    Ok(())
}

/// Run `app.json`'s `scripts.postdeploy` once in the new release, after the app's first
/// successful deploy. The release is live already: a failure is reported, not undone.
async fn postdeploy(s: &Platform, release: &Release, command: &str) {
    let (app, version) = (&release.app, release.version);
    s.runtime
        .event(
            app,
            EventKind::Info,
            format!("v{version}: running app.json's postdeploy script"),
        )
        .await;
    let (_stop_tx, stop_rx) = watch::channel(Stop::Running);
    let (kind, text) = match s
        .runtime
        .run_once(release, "postdeploy", command, stop_rx, None)
        .await
    {
        Ok(status) if status.success() => (
            EventKind::Info,
            format!("v{version}: postdeploy script {status}"),
        ),
        Ok(status) => (
            EventKind::Error,
            format!("v{version}: the postdeploy script {status}; the release stays live"),
        ),
        Err(e) => (
            EventKind::Error,
            format!("v{version}: the postdeploy script could not run: {e}"),
        ),
    };
    s.runtime.event(app, kind, text).await;
}

async fn build_slug(
    s: &Platform,
    app: &str,
    build_id: &str,
    upload: &Upload,
    work: &std::path::Path,
) -> Result<
    (
        String,
        std::collections::BTreeMap<String, String>,
        dozen_build::AppJsonMeta,
    ),
    PlatformError,
> {
    let src = work.join("src");
    let limits = dozen_build::Limits::default();
    let (archive, dest) = (upload.path.clone(), src.clone());
    let file = std::fs::File::open(&archive).map_err(|e| {
        PlatformError::internal("reading the upload", format!("{}: {e}", archive.display()))
    })?;
    tokio::task::spawn_blocking(move || dozen_build::unpack_source(file, &dest, &limits))
        .await
        .map_err(|e| PlatformError::internal("unpacking the upload", e))?
        .map_err(|e| PlatformError::Invalid(format!("the upload: {e}")))?;

    // The build is stopped (SIGTERM, then SIGKILL) when it takes longer than
    // DOZEN_BUILD_TIMEOUT or the server shuts down.
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let timeout = s.config.build_timeout;
    let mut down = s.shutting_down.clone();
    let guard = tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(timeout) => {}
            _ = down.wait_for(|d| *d) => {}
        }
        let _ = stop_tx.send(Stop::Graceful { signal: None });
    });
    let config = s.store.config(app).await?;
    let switches = dozen_build::BUILD_SWITCHES
        .iter()
        .filter_map(|k| config.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let log = s.runtime.log(app).sender();
    let confine = s
        .runtime
        .app_user(app)
        .await?
        .map(|u| crate::tenancy::confinement(u, &s.config.data_dir, &[]));
    let output = dozen_build::build(dozen_build::BuildRequest {
        supervisor: s.runtime.supervisor(),
        source: &src,
        work_dir: &work.join("work"),
        cache_dir: &s.config.data_dir.join("cache").join(app),
        build_id,
        source_version: upload.commit.as_deref(),
        extra_env: switches,
        log,
        stop: stop_rx,
        confine,
        memory_limit: s.config.build_memory,
        disk_limit: s.config.build_disk,
    })
    .await;
    guard.abort();
    let output = output.map_err(|e| match e {
        dozen_build::BuildError::Cancelled { .. } if *s.shutting_down.borrow() => {
            PlatformError::Invalid(
                "the build was stopped because the server is shutting down; deploy again".into(),
            )
        }
        dozen_build::BuildError::Cancelled { .. } => PlatformError::Invalid(format!(
            "the build took longer than {} s (DOZEN_BUILD_TIMEOUT) and was stopped",
            timeout.as_secs()
        )),
        other => PlatformError::Invalid(other.to_string()),
    })?;
    let slugs = s.config.data_dir.join("slugs");
    let built = output.dir.clone();
    let meta = output.slug_meta();
    let slug = tokio::task::spawn_blocking(move || dozen_build::pack_slug(&built, &slugs, meta))
        .await
        .map_err(|e| PlatformError::internal("packing the slug", e))?
        .map_err(|e| PlatformError::internal("packing the slug", e))?;
    s.store
        .record_slug(
            &slug.digest,
            i64::try_from(slug.size).unwrap_or(i64::MAX),
            &slug.manifest_json(),
        )
        .await?;
    s.runtime
        .event(
            app,
            EventKind::Info,
            format!(
                "slug {} ({} bytes)",
                &slug.digest[..12.min(slug.digest.len())],
                slug.size
            ),
        )
        .await;
    Ok((slug.digest, output.process_types, slug.manifest.app_json))
}

/// Take a new release live: run its release phase (if it has one), mark it live, converge the
/// formation to it. If the release phase fails, the release is marked failed and the running
/// one stays. The caller holds the app's lock ([`crate::runtime::Runtime::lock_app`]).
pub async fn roll_out(s: &Platform, release: Release) -> Result<Release, PlatformError> {
    let app = release.app.clone();
    let version = release.version;
    if release.slug.is_none() {
        // Config changes before the first deploy: nothing to run yet.
        s.store.activate_release(&app, version).await?;
        s.runtime
            .event(
                &app,
                EventKind::Info,
                format!("v{version}: {} (no code deployed yet)", release.description),
            )
            .await;
        return Ok(s.store.release(&app, version).await?);
    }
    if let Some(command) = release.process_types.get("release").cloned() {
        s.runtime
            .event(
                &app,
                EventKind::Info,
                format!("v{version}: running the release phase"),
            )
            .await;
        let (_stop_tx, stop_rx) = watch::channel(Stop::Running);
        let status = s
            .runtime
            .run_once(&release, "release", &command, stop_rx, None)
            .await?;
        if !status.success() {
            let reason = format!("the release phase {status}");
            s.store
                .set_release_status(&app, version, ReleaseStatus::Failed, Some(&reason))
                .await?;
            s.runtime
                .event(
                    &app,
                    EventKind::Error,
                    format!("v{version} failed: {reason}; the running release stays"),
                )
                .await;
            return Err(PlatformError::Invalid(format!(
                "v{version} failed: {reason}; the running release stays"
            )));
        }
    }
    let formation = s.store.formation(&app).await?;
    // The new processes must be healthy before the release goes live in the store and in the
    // router; otherwise the release fails and the running one stays.
    if let Err(e) = s.runtime.converge(&release, &formation, false).await {
        let reason = e.to_string();
        s.store
            .set_release_status(&app, version, ReleaseStatus::Failed, Some(&reason))
            .await?;
        s.runtime
            .event(
                &app,
                EventKind::Error,
                format!("v{version} failed: {reason}"),
            )
            .await;
        return Err(PlatformError::Invalid(format!(
            "v{version} failed: {reason}"
        )));
    }
    s.store.activate_release(&app, version).await?;
    s.runtime
        .event(
            &app,
            EventKind::Info,
            format!("v{version} is live: {}", release.description),
        )
        .await;
    Ok(s.store.release(&app, version).await?)
}
