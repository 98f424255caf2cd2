//! What a start does after a crash, before anything runs: the data directory is swept of what
//! a killed server left half-done.
//!
//! The store is the truth ([`dozen_store::Store::recover_interrupted`] has already marked
//! interrupted builds and releases failed). Under the data directory a SIGKILL can leave:
//!
//! - a build's working directory (`builds/<id>`) and its upload (`uploads/`): no build runs
//!   at start, so all of them go;
//! - a slug being packed (`slugs/.slug-*.partial`), or a whole slug whose record never reached
//!   the store: unknown to every release, so it goes;
//! - a release directory being extracted (`releases/<app>/.vN.partial-*`), the directories of
//!   releases that no longer run, and those of destroyed apps: only each app's live release is
//!   kept (another is extracted again from its slug when a rollback or a one-off needs it);
//! - the build cache (`cache/<app>`) and log history (`logs/<app>`) of an app destroyed just
//!   before the kill;
//! - under `git/`: a repository being made or removed (`.<app>.git.partial-*`,
//!   `.<app>.git.removed-*`), a push's socket (`.push-*.sock`), the repository of a destroyed
//!   app, and inside each repository what a killed `git receive-pack` leaves: the quarantine of
//!   a push's objects (`objects/tmp_objdir-*`), packs being written (`objects/pack/tmp_*`) and
//!   lock files (`*.lock`), which would refuse every later push of the app. No git runs at start,
//!   so no lock is anyone's.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use dozen_store::Store;

use crate::ServerError;

/// Where each kind of state lives under the data directory.
pub const BUILDS: &str = "builds";
/// Uploaded sources waiting for their build.
pub const UPLOADS: &str = "uploads";
/// Slugs and their manifests, by digest.
pub const SLUGS: &str = "slugs";
/// Extracted release directories, `releases/<app>/vN`.
pub const RELEASES: &str = "releases";
/// Per-app build caches.
pub const CACHE: &str = "cache";
/// Per-app log histories.
pub const LOGS: &str = "logs";

/// Remove what a killed server left under `data_dir`. Returns how many files and directories
/// were removed.
pub async fn sweep(store: &Store, data_dir: &Path) -> Result<usize, ServerError> {
    let mut live: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for app in store.apps().await? {
        live.insert(app.name, app.current_release);
    }
    let mut removed = 0;
    for dir in [BUILDS, UPLOADS] {
        for entry in entries(&data_dir.join(dir))? {
            removed += remove(&entry)?;
        }
    }
    for entry in entries(&data_dir.join(SLUGS))? {
        let name = file_name(&entry);
        let digest = name
            .strip_suffix(".tar.zst")
            .or_else(|| name.strip_suffix(".json"));
        let orphan = match digest {
            _ if name.starts_with(".slug-") => true,
            Some(d) => matches!(
                store.slug(d).await,
                Err(dozen_store::StoreError::NotFound { .. })
            ),
            None => false,
        };
        if orphan {
            removed += remove(&entry)?;
        }
    }
    for entry in entries(&data_dir.join(RELEASES))? {
        let Some(current) = live.get(&file_name(&entry)) else {
            removed += remove(&entry)?;
            continue;
        };
        let keep = current.map(|v| format!("v{v}"));
        for release in entries(&entry)? {
            if keep.as_deref() != Some(file_name(&release).as_str()) {
                removed += remove(&release)?;
            }
        }
    }
    for dir in [CACHE, LOGS] {
        for entry in entries(&data_dir.join(dir))? {
            if !live.contains_key(&file_name(&entry)) {
                removed += remove(&entry)?;
            }
        }
    }
    removed += sweep_git(&live, data_dir)?;
    Ok(removed)
}

/// The git repositories' part of [`sweep`].
fn sweep_git(live: &BTreeMap<String, Option<i64>>, data_dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in entries(&crate::git::repo::repos_dir(data_dir))? {
        let name = file_name(&entry);
        let app = name.strip_suffix(".git").filter(|_| !name.starts_with('.'));
        match app {
            Some(app) if live.contains_key(app) => removed += sweep_repo(&entry)?,
            _ => removed += remove(&entry)?,
        }
    }
    Ok(removed)
}

/// What a killed git left inside one bare repository.
fn sweep_repo(repo: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in entries(&repo.join("objects"))? {
        if file_name(&entry).starts_with("tmp_objdir-") {
            removed += remove(&entry)?;
        }
    }
    for entry in entries(&repo.join("objects").join("pack"))? {
        if file_name(&entry).starts_with("tmp_") {
            removed += remove(&entry)?;
        }
    }
    removed += remove_locks(repo, 0)?;
    Ok(removed)
}

/// The `*.lock` files in `dir` (the repository's own: `HEAD.lock`, `config.lock`,
/// `packed-refs.lock`) and in its `refs/` and `logs/` trees, to a bounded depth.
fn remove_locks(dir: &Path, depth: usize) -> io::Result<usize> {
    let mut removed = 0;
    for entry in entries(dir)? {
        let name = file_name(&entry);
        let is_dir = std::fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir());
        if is_dir {
            let walk = if depth == 0 {
                name == "refs" || name == "logs"
            } else {
                depth < 32
            };
            if walk {
                removed += remove_locks(&entry, depth + 1)?;
            }
        } else if name.ends_with(".lock") {
            removed += remove(&entry)?;
        }
    }
    Ok(removed)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The entries of `dir`; none when it does not exist.
fn entries(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    }
}

/// Remove a file or a directory tree; 1 when something was removed.
fn remove(path: &Path) -> io::Result<usize> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(1),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leftovers_of_a_crash_are_removed_and_live_state_is_kept() {
        let data = tempfile::tempdir().unwrap();
        let store = Store::connect(None, data.path()).await.unwrap();
        store.migrate().await.unwrap();
        store.create_app("shop").await.unwrap();
        let v1 = store
            .set_config("shop", &[("A".into(), "1".into())], &[])
            .await
            .unwrap();
        store.activate_release("shop", v1.version).await.unwrap();
        let d = data.path();
        let mk = |p: &str| std::fs::create_dir_all(d.join(p)).unwrap();
        let touch = |p: &str| std::fs::write(d.join(p), b"x").unwrap();
        mk("builds/20261202-abc/src");
        mk("uploads");
        touch("uploads/shop-1.tar.zst");
        mk("slugs");
        touch("slugs/.slug-XYZ.partial");
        let digest = "a".repeat(64);
        touch(&format!("slugs/{digest}.tar.zst"));
        mk("releases/shop/v1");
        mk("releases/shop/v2");
        mk("releases/shop/.v3.partial-123");
        mk("releases/gone/v3");
        mk("cache/shop");
        mk("cache/gone");
        mk("logs/shop");
        mk("logs/gone");
        // A push killed in its pre-receive hook, and one killed while moving the branch.
        mk("git/shop.git/objects/tmp_objdir-incoming-Ab12/pack");
        mk("git/shop.git/objects/pack");
        touch("git/shop.git/objects/pack/tmp_pack_Xy9");
        touch("git/shop.git/objects/pack/pack-1.pack");
        mk("git/shop.git/refs/heads");
        touch("git/shop.git/refs/heads/main");
        touch("git/shop.git/refs/heads/main.lock");
        mk("git/shop.git/logs/refs/heads");
        touch("git/shop.git/logs/refs/heads/main.lock");
        touch("git/shop.git/HEAD");
        touch("git/shop.git/HEAD.lock");
        mk("git/.blog.git.partial-77");
        mk("git/.shop.git.removed-78");
        touch("git/.push-0123456789abcdef.sock");
        mk("git/gone.git");
        // v1 is live; v2 failed or was replaced.
        let removed = sweep(&store, d).await.unwrap();
        assert_eq!(removed, 9 + 9);
        for gone in [
            "builds/20261202-abc",
            "uploads/shop-1.tar.zst",
            "slugs/.slug-XYZ.partial",
            "releases/shop/v2",
            "releases/shop/.v3.partial-123",
            "releases/gone",
            "cache/gone",
            "logs/gone",
            "git/shop.git/objects/tmp_objdir-incoming-Ab12",
            "git/shop.git/objects/pack/tmp_pack_Xy9",
            "git/shop.git/refs/heads/main.lock",
            "git/shop.git/logs/refs/heads/main.lock",
            "git/shop.git/HEAD.lock",
            "git/.blog.git.partial-77",
            "git/.shop.git.removed-78",
            "git/.push-0123456789abcdef.sock",
            "git/gone.git",
        ] {
            assert!(!d.join(gone).exists(), "{gone} is left");
        }
        assert!(!d.join(format!("slugs/{digest}.tar.zst")).exists());
        for kept in [
            "cache/shop",
            "logs/shop",
            "builds",
            "releases/shop/v1",
            "git/shop.git/HEAD",
            "git/shop.git/refs/heads/main",
            "git/shop.git/objects/pack/pack-1.pack",
        ] {
            assert!(d.join(kept).exists(), "{kept} was removed");
        }
        store.close().await;
    }
}
