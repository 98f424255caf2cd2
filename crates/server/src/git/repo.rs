//! The bare repository of each app: where it lives, making it, removing it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::command;
use crate::platform::{Platform, PlatformError};

/// Where the repositories live under the data directory.
pub const GIT: &str = "git";

/// The branches a push deploys (Heroku accepts both).
pub const DEPLOY_BRANCHES: &[&str] = &["refs/heads/main", "refs/heads/master"];

/// The `pre-receive` hook of every app's repository. It holds no path and no secret: the
/// server gives both in the environment of each push, so the hook of a repository used by
/// anything but the server fails, and so does that push.
pub const PRE_RECEIVE: &str = "#!/bin/sh\n\
# Written by dozen: a push to this repository deploys through the dozen server that owns it.\n\
exec \"$DOZEN_GIT_HOOK_EXE\" git-hook pre-receive\n";

/// The directory of every app's repository (mode 0700).
pub fn repos_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(GIT)
}

/// The bare repository of `app`.
pub fn repo_path(data_dir: &Path, app: &str) -> PathBuf {
    repos_dir(data_dir).join(format!("{app}.git"))
}

/// The app's repository, made (empty, with the hook and settings a push needs) if it does not
/// exist yet. It is made beside its place and renamed into it, so a crash leaves either no
/// repository or a whole one. The caller has checked that the app exists.
pub async fn ensure_repo(p: &Platform, app: &str) -> Result<PathBuf, PlatformError> {
    let dir = repos_dir(&p.config.data_dir);
    let path = repo_path(&p.config.data_dir, app);
    let failed = |e: std::io::Error| {
        PlatformError::internal(format!("making the git repository of {app}"), e)
    };
    std::fs::create_dir_all(&dir).map_err(failed)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    if !path.join("HEAD").exists() {
        let partial = dir.join(format!(".{app}.git.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        let partial_s = partial.to_string_lossy().into_owned();
        command::check(
            p,
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                &partial_s,
            ],
            &dir,
            Vec::new(),
        )
        .await?;
        for (key, value) in [
            // Deleting the deploy branch would leave the app running code no branch holds.
            ("receive.denyDeletes", "true"),
            // A force push deploys an older commit (as a new release).
            ("receive.denyNonFastForwards", "false"),
            ("core.logAllRefUpdates", "true"),
            ("http.receivepack", "true"),
            ("http.uploadpack", "true"),
        ] {
            command::check(
                p,
                &["--git-dir", &partial_s, "config", key, value],
                &dir,
                Vec::new(),
            )
            .await?;
        }
        write_hook(&partial).map_err(failed)?;
        match std::fs::rename(&partial, &path) {
            Ok(()) => {}
            // Made at the same time by another request: theirs is as good.
            Err(_) if path.join("HEAD").exists() => {
                let _ = std::fs::remove_dir_all(&partial);
            }
            Err(e) => return Err(failed(e)),
        }
    }
    // The hook is written again when it differs (a repository made by an older dozen).
    write_hook(&path).map_err(failed)?;
    Ok(path)
}

fn write_hook(repo: &Path) -> std::io::Result<()> {
    let hooks = repo.join("hooks");
    std::fs::create_dir_all(&hooks)?;
    let hook = hooks.join("pre-receive");
    if std::fs::read_to_string(&hook).ok().as_deref() != Some(PRE_RECEIVE) {
        let tmp = hooks.join(".pre-receive.tmp");
        std::fs::write(&tmp, PRE_RECEIVE)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &hook)?;
    }
    Ok(())
}

/// Remove the repository of `app` (`apps:destroy`), if it has one: renamed out of its place
/// first, so an app created again under the name never finds half of the old one.
pub fn remove_repo(data_dir: &Path, app: &str) -> std::io::Result<()> {
    let path = repo_path(data_dir, app);
    if !path.exists() {
        return Ok(());
    }
    let doomed = repos_dir(data_dir).join(format!(".{app}.git.removed-{}", std::process::id()));
    std::fs::rename(&path, &doomed)?;
    std::fs::remove_dir_all(&doomed)
}
