//! Backups of the platform's own state: `dozen backup:create FILE` and `dozen backup:restore FILE`.
//!
//! A backup is one `tar.zst` file holding, in this order:
//!
//! 1. `dozen-backup.json`: what it is (format, dozen's version, the store's kind and schema
//!    version, the number of apps, the slugs it needs);
//! 2. `store.sqlite` or `store.pgdump`: a consistent copy of the store (apps, releases, config,
//!    formation, sizes, domains, tokens and whatever later migrations add), taken while the
//!    server runs ([`dozen_store::Store::snapshot_to`]);
//! 3. `slugs/<digest>.tar.zst` and `slugs/<digest>.json` for every slug the store records;
//! 4. `addon-backups/<addon>/b001.dump` (`.sql`): the add-on backups kept in the data
//!    directory (those kept in an S3-compatible bucket are already off the host, and only
//!    their records are in the store).
//!
//! Build caches, log history and unpacked release directories are not in it: the server
//! rebuilds release directories from slugs, and caches only make builds faster. The zstd
//! stream carries a checksum, so a damaged file fails its restore.
//!
//! A restore goes onto an empty data directory (and, for PostgreSQL, an empty database). It
//! checks every slug's digest before anything takes its place, then moves the slugs and the
//! store in; a failure on the way removes what it put there. The backup file holds config
//! values and token hashes, so it is written with mode 0600.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use dozen_store::{Backend, Snapshot, StoreError};
use serde::{Deserialize, Serialize};

use crate::ServerConfig;

/// The first entry of every backup.
pub const MANIFEST: &str = "dozen-backup.json";
/// The format this build writes (2 added the add-on backups); it reads 1 and 2.
pub const FORMAT_VERSION: u32 = 2;
/// Where add-on backups are, in the archive and under the data directory.
const ADDON_BACKUPS: &str = "addon-backups";
const BACKUPS_DIR: &str = "backups";
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// What went wrong with a backup or a restore. Messages name files and steps, never a config
/// value or a password.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store failed (connecting, copying, restoring).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The backup file is not one this dozen can restore.
    #[error("{}: {message}", file.display())]
    Bad {
        /// The backup file.
        file: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The target is not empty.
    #[error("{}: {message}", path.display())]
    NotEmpty {
        /// The data directory.
        path: PathBuf,
        /// What is in it.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The manifest, `dozen-backup.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// The dozen that wrote it.
    pub dozen_version: String,
    /// When (RFC 3339, UTC).
    pub created_at: String,
    /// `sqlite` or `postgresql`.
    pub store: String,
    /// The store's schema version.
    pub schema_version: i64,
    /// How many apps it holds.
    pub apps: i64,
    /// The digests of the slugs in it.
    pub slugs: Vec<String>,
    /// The add-on backups in it, `<addon>/b001.dump`, with their sizes in bytes.
    #[serde(default)]
    pub addon_backups: Vec<(String, u64)>,
}

impl Manifest {
    fn backend(&self) -> Option<Backend> {
        match self.store.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    fn store_entry(&self) -> &'static str {
        match self.backend() {
            Some(Backend::Postgres) => "store.pgdump",
            _ => "store.sqlite",
        }
    }
}

/// Write a backup of the server's state to `file` (which must not exist). The server may be
/// running. Returns its manifest.
pub async fn create(config: &ServerConfig, file: &Path) -> Result<Manifest, BackupError> {
    if file.exists() {
        return Err(BackupError::Bad {
            file: file.to_path_buf(),
            message: "already exists; name a new file".into(),
        });
    }
    let store = crate::open_store(config)
        .await
        .map_err(|e| BackupError::Bad {
            file: config.data_dir.clone(),
            message: format!("opening the store: {e}"),
        })?;
    store.ensure_migrated().await?;
    let work = WorkDir::new(&config.data_dir, "backup")?;
    let store_file = work.path.join("store");
    let snapshot = store
        .snapshot_to(&store_file, config.database_url.as_deref())
        .await;
    store.close().await;
    let snapshot: Snapshot = snapshot?;
    let manifest = Manifest {
        format: FORMAT_VERSION,
        dozen_version: env!("CARGO_PKG_VERSION").into(),
        created_at: now(),
        store: match snapshot.backend {
            Backend::Sqlite => "sqlite".into(),
            Backend::Postgres => "postgresql".into(),
        },
        schema_version: snapshot.schema_version,
        apps: snapshot.apps,
        slugs: snapshot.slugs,
        addon_backups: addon_backup_files(&config.data_dir.join(BACKUPS_DIR))?,
    };
    let slugs = config.data_dir.join(crate::recover::SLUGS);
    let (file, m) = (file.to_path_buf(), manifest.clone());
    tokio::task::spawn_blocking(move || write_archive(&file, &m, &store_file, &slugs))
        .await
        .map_err(|e| BackupError::Bad {
            file: PathBuf::from("backup"),
            message: format!("the writer stopped: {e}"),
        })??;
    drop(work);
    Ok(manifest)
}

fn write_archive(
    file: &Path,
    manifest: &Manifest,
    store_file: &Path,
    slugs: &Path,
) -> Result<(), BackupError> {
    let backups = slugs.with_file_name(BACKUPS_DIR);
    let part = part_path(file);
    let result = (|| {
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&part)
            .map_err(io(&part))?;
        let mut zst = zstd::Encoder::new(BufWriter::new(out), 3).map_err(io(&part))?;
        zst.include_checksum(true).map_err(io(&part))?;
        let mut tar = tar::Builder::new(zst);
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| BackupError::Bad {
            file: part.clone(),
            message: e.to_string(),
        })?;
        append_bytes(&mut tar, MANIFEST, &json).map_err(io(&part))?;
        append_file(&mut tar, manifest.store_entry(), store_file)?;
        for digest in &manifest.slugs {
            for ext in ["tar.zst", "json"] {
                let name = format!("{digest}.{ext}");
                let path = slugs.join(&name);
                if !path.is_file() {
                    return Err(BackupError::Bad {
                        file: path,
                        message: "a slug the store records is missing from the data directory \
                                  (an app destroyed during the backup?); run the backup again"
                            .into(),
                    });
                }
                append_file(&mut tar, &format!("slugs/{name}"), &path)?;
            }
        }
        for (name, size) in &manifest.addon_backups {
            let path = backups.join(name);
            let now = std::fs::metadata(&path).map_err(io(&path))?.len();
            if now != *size {
                return Err(BackupError::Bad {
                    file: path,
                    message: "an add-on backup changed while the backup ran; run it again".into(),
                });
            }
            append_file(&mut tar, &format!("{ADDON_BACKUPS}/{name}"), &path)?;
        }
        let zst = tar.into_inner().map_err(io(&part))?;
        let out = zst.finish().map_err(io(&part))?;
        let out = out.into_inner().map_err(|e| io(&part)(e.into_error()))?;
        out.sync_all().map_err(io(&part))?;
        std::fs::rename(&part, file).map_err(io(file))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, bytes)
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    path: &Path,
) -> Result<(), BackupError> {
    let mut f = File::open(path).map_err(io(path))?;
    let len = f.metadata().map_err(io(path))?.len();
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, &mut f).map_err(io(path))
}

/// What a restore put back.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Migrations this dozen has that the restored store has not had yet (`dozen migrate`).
    pub pending_migrations: bool,
}

/// Restore the backup `file` into the (empty) data directory and store of `config`.
pub async fn restore(config: &ServerConfig, file: &Path) -> Result<Restored, BackupError> {
    let data_dir = &config.data_dir;
    check_empty(data_dir)?;
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    crate::tenancy::secure_data_dir(data_dir).map_err(io(data_dir))?;
    let configured = match config
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        Some(_) => Backend::Postgres,
        None => Backend::Sqlite,
    };
    let work = WorkDir::new(data_dir, "restore")?;
    let (from, into) = (file.to_path_buf(), work.path.clone());
    let manifest = tokio::task::spawn_blocking(move || read_archive(&from, &into, configured))
        .await
        .map_err(|e| BackupError::Bad {
            file: file.to_path_buf(),
            message: format!("the reader stopped: {e}"),
        })??;
    let backend = manifest.backend().unwrap_or(Backend::Sqlite);

    // Slugs first (the data directory has none), then the store; undo the slugs if the store
    // cannot be restored.
    let slugs = data_dir.join(crate::recover::SLUGS);
    if slugs.is_dir() {
        std::fs::remove_dir(&slugs).map_err(io(&slugs))?;
    }
    std::fs::rename(work.path.join("slugs"), &slugs).map_err(io(&slugs))?;
    let backups = data_dir.join(BACKUPS_DIR);
    let restored_backups = work.path.join(BACKUPS_DIR);
    if restored_backups.is_dir() {
        if let Err(e) = std::fs::rename(&restored_backups, &backups) {
            let _ = std::fs::remove_dir_all(&slugs);
            return Err(io(&backups)(e));
        }
    }
    let restored = dozen_store::restore_snapshot(
        &work.path.join(manifest.store_entry()),
        backend,
        data_dir,
        config.database_url.as_deref(),
    )
    .await;
    if let Err(e) = restored {
        let _ = std::fs::remove_dir_all(&slugs);
        if restored_backups.exists() || backups.exists() {
            let _ = std::fs::remove_dir_all(&backups);
        }
        return Err(e.into());
    }
    crate::tenancy::secure_store_files(data_dir).map_err(io(data_dir))?;
    drop(work);
    Ok(Restored {
        pending_migrations: manifest.schema_version < dozen_store::known_schema_version(),
        manifest,
    })
}

/// A data directory a restore may go into: missing, or without a store, slugs or releases.
fn check_empty(data_dir: &Path) -> Result<(), BackupError> {
    let store = data_dir.join(dozen_store::SQLITE_FILE_NAME);
    if store.exists() {
        return Err(BackupError::NotEmpty {
            path: data_dir.to_path_buf(),
            message: format!(
                "holds a store ({}): restore into a new, empty data directory",
                dozen_store::SQLITE_FILE_NAME
            ),
        });
    }
    for dir in [crate::recover::SLUGS, crate::recover::RELEASES, BACKUPS_DIR] {
        let path = data_dir.join(dir);
        if let Ok(mut entries) = std::fs::read_dir(&path)
            && entries.next().is_some()
        {
            return Err(BackupError::NotEmpty {
                path: data_dir.to_path_buf(),
                message: format!("holds {dir}: restore into a new, empty data directory"),
            });
        }
    }
    Ok(())
}

fn read_archive(file: &Path, into: &Path, configured: Backend) -> Result<Manifest, BackupError> {
    let bad = |message: String| BackupError::Bad {
        file: file.to_path_buf(),
        message,
    };
    let f = File::open(file).map_err(io(file))?;
    let zst = zstd::Decoder::new(BufReader::new(f))
        .map_err(|e| bad(format!("not a dozen backup (zstd: {e})")))?;
    let mut tar = tar::Archive::new(zst);
    let mut entries = tar
        .entries()
        .map_err(|e| bad(format!("not a dozen backup (tar: {e})")))?;
    let not_a_backup = || {
        bad(format!(
            "not a dozen backup: its first entry is not {MANIFEST}"
        ))
    };

    let mut first = entries
        .next()
        .ok_or_else(not_a_backup)?
        .map_err(|e| bad(format!("not a dozen backup (tar: {e})")))?;
    if first.path().ok().as_deref() != Some(Path::new(MANIFEST)) {
        return Err(not_a_backup());
    }
    let mut json = Vec::new();
    (&mut first)
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut json)
        .map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
    let manifest: Manifest =
        serde_json::from_slice(&json).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
    if !(1..=FORMAT_VERSION).contains(&manifest.format) {
        return Err(bad(format!(
            "backup format {} (this dozen reads formats 1 to {FORMAT_VERSION})",
            manifest.format
        )));
    }
    let Some(backend) = manifest.backend() else {
        return Err(bad(format!(
            "{MANIFEST}: unknown store {:?}",
            manifest.store
        )));
    };
    let known = dozen_store::known_schema_version();
    if manifest.schema_version > known {
        return Err(bad(format!(
            "made by dozen {} with store schema {}, newer than the {known} this dozen knows; \
             restore it with that dozen or a newer one",
            manifest.dozen_version, manifest.schema_version
        )));
    }
    match (backend, configured) {
        (Backend::Sqlite, Backend::Postgres) => {
            return Err(bad(
                "it holds a SQLite store: unset DATABASE_URL to restore it into the data directory"
                    .into(),
            ));
        }
        (Backend::Postgres, Backend::Sqlite) => {
            return Err(bad(
                "it holds a PostgreSQL store: set DATABASE_URL to a new, empty database to restore it"
                    .into(),
            ));
        }
        _ => {}
    }
    for digest in &manifest.slugs {
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("{MANIFEST}: {digest:?} is not a slug digest")));
        }
    }
    for (name, _) in &manifest.addon_backups {
        if !is_addon_backup_name(name) {
            return Err(bad(format!(
                "{MANIFEST}: {name:?} is not an add-on backup (addon/b001.dump)"
            )));
        }
    }

    let slugs = into.join("slugs");
    std::fs::create_dir(&slugs).map_err(io(&slugs))?;
    let backups = into.join(BACKUPS_DIR);
    let mut have_backups = std::collections::BTreeSet::new();
    let mut have_store = false;
    let mut have = std::collections::BTreeSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("damaged (tar: {e})")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad("holds an entry that is not a regular file".into()));
        }
        let name = entry
            .path()
            .map_err(|e| bad(format!("damaged (tar: {e})")))?
            .to_string_lossy()
            .into_owned();
        let target = if name == manifest.store_entry() {
            have_store = true;
            into.join(&name)
        } else if let Some(slug) = name.strip_prefix("slugs/")
            && let Some((digest, ext)) = slug.split_once('.')
            && manifest.slugs.iter().any(|d| d == digest)
            && (ext == "tar.zst" || ext == "json")
        {
            have.insert(slug.to_string());
            slugs.join(slug)
        } else if let Some(backup) = name
            .strip_prefix(ADDON_BACKUPS)
            .and_then(|n| n.strip_prefix('/'))
            && let Some((_, size)) = manifest.addon_backups.iter().find(|(n, _)| n == backup)
        {
            if entry.header().size().ok() != Some(*size) {
                return Err(bad(format!(
                    "damaged: {name} is not the {size} bytes its manifest says"
                )));
            }
            have_backups.insert(backup.to_string());
            let target = backups.join(backup);
            if let Some(dir) = target.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io(dir))?;
            }
            target
        } else {
            return Err(bad(format!("holds an unexpected entry {name:?}")));
        };
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(io(&target))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| bad(format!("damaged in {name} ({e})")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(&target))?;
        }
        out.sync_all().map_err(io(&target))?;
        if let Some(digest) = name
            .strip_prefix("slugs/")
            .and_then(|s| s.strip_suffix(".tar.zst"))
            && hasher.finalize().to_hex().as_str() != digest
        {
            return Err(bad(format!(
                "damaged: slug {digest} does not match its digest"
            )));
        }
    }
    if !have_store {
        return Err(bad(format!("incomplete: no {}", manifest.store_entry())));
    }
    if let Some((missing, _)) = manifest
        .addon_backups
        .iter()
        .find(|(n, _)| !have_backups.contains(n))
    {
        return Err(bad(format!("incomplete: no {ADDON_BACKUPS}/{missing}")));
    }
    for digest in &manifest.slugs {
        for ext in ["tar.zst", "json"] {
            if !have.contains(&format!("{digest}.{ext}")) {
                return Err(bad(format!("incomplete: no slugs/{digest}.{ext}")));
            }
        }
    }
    // Slug files are read by the apps' users through their release directories only; the
    // archives themselves stay the server's.
    std::fs::set_permissions(&slugs, std::fs::Permissions::from_mode(0o700)).map_err(io(&slugs))?;
    Ok(manifest)
}

/// The add-on backups under `dir` (`<DOZEN_DATA_DIR>/backups`): `<addon>/bNNN.dump` or
/// `.sql` with their sizes, in name order; files of captures in progress are left out.
fn addon_backup_files(dir: &Path) -> Result<Vec<(String, u64)>, BackupError> {
    let mut found = Vec::new();
    let addons = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io(dir)(e)),
    };
    for addon in addons {
        let addon = addon.map_err(io(dir))?;
        if !addon.file_type().map_err(io(dir))?.is_dir() {
            continue;
        }
        let path = addon.path();
        for file in std::fs::read_dir(&path).map_err(io(&path))? {
            let file = file.map_err(io(&path))?;
            let name = format!(
                "{}/{}",
                addon.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            let meta = file.metadata().map_err(io(&file.path()))?;
            if meta.is_file() && is_addon_backup_name(&name) {
                found.push((name, meta.len()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `addon/b001.dump` or `addon/b001.sql`, with an add-on name of lower-case letters, digits
/// and `-`: nothing that could climb out of the backups directory.
fn is_addon_backup_name(name: &str) -> bool {
    let Some((addon, file)) = name.split_once('/') else {
        return false;
    };
    let Some((id, ext)) = file.split_once('.') else {
        return false;
    };
    !addon.is_empty()
        && addon
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.len() >= 2
        && id.starts_with('b')
        && id[1..].bytes().all(|b| b.is_ascii_digit())
        && matches!(ext, "dump" | "sql")
}

/// `FILE.part`, where a backup is written before it takes its name.
fn part_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    file.with_file_name(name)
}

/// A scratch directory inside the data directory, removed when dropped.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn new(data_dir: &Path, what: &str) -> Result<WorkDir, BackupError> {
        std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        let path = data_dir.join(format!(".{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(io(&path))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn now() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}
