//! What a push does on the server: check the ref updates, take the app's lock, build the
//! pushed commit (or reuse the slug of a release built from it before), release and roll out,
//! with the app's log stream sent to the pusher as it happens.

use std::io::Write;
use std::path::Path;

use dozen_logs::{EventKind, Stream};
use dozen_store::NewRelease;
use dozen_supervise::{Attached, OutputChunk, Stop};
use tokio::sync::{OwnedMutexGuard, broadcast, mpsc, watch};

use super::command;
use super::hook::{HookRequest, Output, RefUpdate, is_zero};
use super::repo::DEPLOY_BRANCHES;
use crate::deploy::{self, Upload};
use crate::loghub::Entry;
use crate::platform::{Platform, PlatformError};

/// Deploy what the hook's `request` pushes to `app`. On success the app's lock is returned
/// held: the caller keeps it until git has moved the branch.
pub(crate) async fn deploy_push(
    p: &Platform,
    app: &str,
    repo: &Path,
    request: &HookRequest,
    out: &mut Output,
) -> (Result<(), PlatformError>, Option<OwnedMutexGuard<()>>) {
    let update = match deploy_ref(&request.updates) {
        Ok(u) => u.clone(),
        Err(e) => return (Err(e), None),
    };
    let objects = match quarantine_env(repo, request) {
        Ok(env) => env,
        Err(e) => return (Err(e), None),
    };
    let short = &update.new[..7];
    let branch = update.name.trim_start_matches("refs/heads/");
    out.say(&format!(
        "-----> dozen: deploying {short} ({branch}) to {app}"
    ))
    .await;
    let lock = p.runtime.lock_app(app).await;
    let result = async {
        p.check_not_shutting_down()?;
        // The app may have gone while this push waited.
        p.store.app(app).await?;
        check_unmoved(p, repo, &update).await?;
        let kind = command::check(p, &["cat-file", "-t", &update.new], repo, objects.clone())
            .await
            .unwrap_or_default();
        if kind != "commit" {
            return Err(PlatformError::Invalid(format!(
                "{} must point at a commit (it is a {kind})",
                update.name
            )));
        }
        let release = with_output(
            p,
            app,
            out,
            deploy_commit(p, app, repo, &update.new, objects),
        )
        .await?;
        // A clone checks out the branch that deploys.
        command::check(p, &["symbolic-ref", "HEAD", &update.name], repo, Vec::new()).await?;
        out.say(&format!(
            "-----> dozen: v{} of {app} is live ({short})",
            release.version
        ))
        .await;
        Ok(())
    }
    .await;
    (result, Some(lock))
}

/// The one update of a deploy branch in `updates`, or why the push is refused.
fn deploy_ref(updates: &[RefUpdate]) -> Result<&RefUpdate, PlatformError> {
    let hint = "dozen deploys the branch main (or master): push with `git push dozen HEAD:main`";
    if let Some(other) = updates
        .iter()
        .find(|u| !DEPLOY_BRANCHES.contains(&u.name.as_str()))
    {
        return Err(PlatformError::Invalid(format!(
            "{} is not a deploy branch; {hint}",
            other.name
        )));
    }
    match updates {
        [] => Err(PlatformError::Invalid(format!(
            "the push changes no ref; {hint}"
        ))),
        [one] if is_zero(&one.new) => Err(PlatformError::Invalid(format!(
            "deleting {} is refused: the app runs its code; destroy the app instead",
            one.name
        ))),
        [one] => Ok(one),
        _ => Err(PlatformError::Invalid(
            "push main or master, not both at once".into(),
        )),
    }
}

/// The variables that let git see the pushed objects (still in git's quarantine), after
/// checking that they are inside the repository.
fn quarantine_env(repo: &Path, r: &HookRequest) -> Result<Vec<(String, String)>, PlatformError> {
    let mut env = Vec::new();
    for (key, value) in [
        ("GIT_OBJECT_DIRECTORY", &r.object_directory),
        (
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            &r.alternate_object_directories,
        ),
    ] {
        let Some(value) = value else { continue };
        for dir in value.split(':') {
            let dir = Path::new(dir);
            if !dir.is_absolute()
                || !dir.starts_with(repo)
                || dir
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(PlatformError::Invalid(format!(
                    "the hook gave {key} outside the app's repository"
                )));
            }
        }
        env.push((key.to_string(), value.clone()));
    }
    Ok(env)
}

/// Refuse the push when the branch moved since the pusher looked (another push of the app
/// deployed while this one waited for the lock), as git refuses a stale update.
async fn check_unmoved(p: &Platform, repo: &Path, u: &RefUpdate) -> Result<(), PlatformError> {
    let now = command::run(
        p,
        &["rev-parse", "--verify", "--quiet", &u.name],
        repo,
        Vec::new(),
        4096,
    )
    .await?;
    let now = if now.status.success() {
        now.text()
    } else {
        String::new()
    };
    let was = if is_zero(&u.old) { "" } else { u.old.as_str() };
    if now != was {
        let at = if now.is_empty() {
            "nowhere".to_string()
        } else {
            now[..7.min(now.len())].to_string()
        };
        return Err(PlatformError::Conflict(format!(
            "{} moved while this push waited for another deploy (it is at {at} now): fetch and push again",
            u.name
        )));
    }
    Ok(())
}

/// Build `commit` and roll it out (the caller holds the app's lock). A commit a release was
/// built from before gets a new release of that slug, without a build.
async fn deploy_commit(
    p: &Platform,
    app: &str,
    repo: &Path,
    commit: &str,
    objects: Vec<(String, String)>,
) -> Result<dozen_store::Release, PlatformError> {
    if let Some(before) = p.store.release_of_commit(app, commit).await? {
        if let Some(slug) = before.slug.clone().filter(|_| before.build_id.is_some()) {
            if p.store.slug(&slug).await.is_ok() {
                p.runtime
                    .event(
                        app,
                        EventKind::Info,
                        format!(
                            "commit {} was built before (v{}): its slug {} is used again, without a build",
                            &commit[..7],
                            before.version,
                            &slug[..12.min(slug.len())]
                        ),
                    )
                    .await;
                let release = p
                    .store
                    .create_release(
                        app,
                        NewRelease {
                            slug: Some(slug),
                            process_types: before.process_types,
                            description: format!("Deploy {}", &commit[..7]),
                            build_id: before.build_id,
                            commit: Some(commit.to_string()),
                        },
                    )
                    .await?;
                return deploy::roll_out(p, release).await;
            }
        }
    }
    let upload = archive(p, app, repo, commit, objects).await?;
    deploy::deploy_locked(p, app, upload).await
}

/// `git archive` of the commit's tree, compressed into an upload as `dozen deploy` sends it.
async fn archive(
    p: &Platform,
    app: &str,
    repo: &Path,
    commit: &str,
    objects: Vec<(String, String)>,
) -> Result<Upload, PlatformError> {
    let dir = p.config.data_dir.join(crate::recover::UPLOADS);
    let failed = |e: std::io::Error| PlatformError::internal("saving the pushed source", e);
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let path = dir.join(format!("{app}-git-{commit}.tar.zst"));
    let file = std::fs::File::create(&path).map_err(failed)?;
    // The tree, not the commit: no pax header with the commit id, which is not the app's.
    let tree = format!("{commit}^{{tree}}");
    let spec = command::spec(
        "git archive",
        &["archive", "--format=tar", &tree],
        repo,
        objects,
    );
    let (out_tx, mut out_rx) = mpsc::channel::<OutputChunk>(16);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(1);
    drop(stdin_tx);
    let (_stop_tx, stop_rx) = watch::channel(Stop::Running);
    let process = p.runtime.supervisor().run_attached(
        spec,
        stop_rx,
        Attached {
            stdin: stdin_rx,
            output: Some(out_tx),
        },
    );
    let max = p.config.max_upload;
    let write = async move {
        let mut encoder = zstd::Encoder::new(file, 3).map_err(failed)?;
        let mut hasher = blake3::Hasher::new();
        let (mut size, mut stderr) = (0u64, Vec::new());
        while let Some(chunk) = out_rx.recv().await {
            if chunk.stream != Stream::Stdout {
                let room = command::STDERR_LIMIT.saturating_sub(stderr.len());
                stderr.extend_from_slice(&chunk.bytes[..chunk.bytes.len().min(room)]);
                continue;
            }
            size += chunk.bytes.len() as u64;
            if size > max {
                // Closing the pipe ends git archive.
                return Err(PlatformError::TooLarge(format!(
                    "the source of the pushed commit is larger than the server accepts ({} MB, DOZEN_MAX_UPLOAD_MB)",
                    max / (1024 * 1024)
                )));
            }
            hasher.update(&chunk.bytes);
            encoder.write_all(&chunk.bytes).map_err(failed)?;
        }
        encoder.finish().map_err(failed)?;
        Ok((hasher.finalize().to_hex().to_string(), size, stderr))
    };
    let (status, written) = tokio::join!(process, write);
    let result = written.and_then(|(digest, size, stderr)| {
        if status.success() {
            Ok(Upload::saved(path.clone(), digest, size).of_commit(Some(commit.to_string())))
        } else {
            Err(PlatformError::internal(
                format!("git archive of {}", &commit[..7]),
                format!("{status}: {}", String::from_utf8_lossy(&stderr).trim()),
            ))
        }
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// Run `work`, sending the app's log stream to the pusher while it runs, and all of it that
/// was written before `work` ended.
async fn with_output<T>(
    p: &Platform,
    app: &str,
    out: &mut Output,
    work: impl std::future::Future<Output = T>,
) -> T {
    let mut live = p.runtime.log(app).subscribe();
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            entry = live.recv() => match entry {
                Ok(e) => forward(out, &e).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    out.say(&format!("({n} lines skipped: this push fell behind)")).await
                }
                Err(broadcast::error::RecvError::Closed) => {}
            },
        }
    };
    p.runtime.log(app).sender().barrier().await;
    while let Ok(e) = live.try_recv() {
        forward(out, &e).await;
    }
    result
}

/// One log entry as the pusher sees it: build output as it is, platform events marked, other
/// processes' lines (the release phase, new web processes) with their name.
async fn forward(out: &mut Output, entry: &Entry) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(entry.json()) else {
        return;
    };
    let line = v["line"].as_str().unwrap_or_default();
    let proc = v["proc"].as_str().unwrap_or_default();
    let text = match proc {
        // Requests the running release answers are not part of the deploy.
        "dozen" if line.starts_with("router: ") => return,
        "dozen" => format!("-----> {line}"),
        "build" => line.to_string(),
        other => format!("{other}: {line}"),
    };
    out.say(&text).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, new: &str) -> RefUpdate {
        RefUpdate {
            old: "0".repeat(40),
            new: new.into(),
            name: name.into(),
        }
    }

    #[test]
    fn only_one_deploy_branch_deploys() {
        let a = "a".repeat(40);
        let main = update("refs/heads/main", &a);
        assert_eq!(
            deploy_ref(std::slice::from_ref(&main)).expect("main"),
            &main
        );
        let master = update("refs/heads/master", &a);
        assert!(deploy_ref(std::slice::from_ref(&master)).is_ok());
        let e = deploy_ref(&[update("refs/heads/feature", &a)]).unwrap_err();
        assert!(e.to_string().contains("HEAD:main"), "{e}");
        let e = deploy_ref(&[main.clone(), master]).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = deploy_ref(&[update("refs/heads/main", &"0".repeat(40))]).unwrap_err();
        assert!(e.to_string().contains("deleting"), "{e}");
        assert!(deploy_ref(&[]).is_err());
    }

    #[test]
    fn quarantine_paths_stay_in_the_repository() {
        let repo = Path::new("/data/git/shop.git");
        let mut r = HookRequest {
            secret: String::new(),
            updates: Vec::new(),
            object_directory: Some("/data/git/shop.git/objects/tmp_objdir-incoming-x".into()),
            alternate_object_directories: Some("/data/git/shop.git/objects".into()),
        };
        assert_eq!(quarantine_env(repo, &r).expect("inside").len(), 2);
        r.alternate_object_directories = Some("/data/git/blog.git/objects".into());
        assert!(quarantine_env(repo, &r).is_err());
        r.alternate_object_directories = Some("/data/git/shop.git/../blog.git/objects".into());
        assert!(quarantine_env(repo, &r).is_err());
    }
}
