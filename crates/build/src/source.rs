//! Source archives: what `dozen deploy` uploads, and how the server unpacks it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::archive::{self, Item, Limits, UnpackStats};
use crate::error::BuildError;

/// The file in an app's root whose gitignore-style patterns leave paths out of the upload.
pub const IGNORE_FILE: &str = ".dozenignore";

/// Directory names never packed, at any depth: git's own data and dozen's local state.
const ALWAYS_SKIPPED: [&str; 2] = [".git", ".dozen"];

/// What [`pack_source`] put in the archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Regular files.
    pub files: u64,
    /// Directories (including those implied by a file's path).
    pub dirs: u64,
    /// Symbolic links (kept as links).
    pub symlinks: u64,
    /// Bytes of file content before compression.
    pub bytes: u64,
    /// Bytes of the compressed archive written to `out`.
    pub compressed_bytes: u64,
    /// True when the file list came from `git ls-files`.
    pub from_git: bool,
    /// Paths left out because they are neither files, directories nor links (sockets, FIFOs),
    /// or because their names are not UTF-8.
    pub skipped: Vec<PathBuf>,
}

/// Pack the app in `dir` as a deterministic `tar.zst` into `out`.
///
/// Which files: when `dir` is inside a git checkout, those `git ls-files -z --cached --others
/// --exclude-standard` lists (tracked files plus untracked ones that are not ignored);
/// otherwise every file under `dir`. In both cases paths matched by the patterns in
/// `dir/.dozenignore` (gitignore syntax) are left out, and so is anything named `.git` or
/// `.dozen`.
///
/// The archive is deterministic: entries sorted by path, mtime 0, uid/gid 0, modes 0644 or
/// 0755, symbolic links stored as links (never followed).
///
/// This runs in the client (`dozen deploy`), which has no process reaper, so it runs `git`
/// with `std::process::Command`; do not call it inside a process that uses
/// `dozen_supervise` (the reaper would race for git's exit status).
pub fn pack_source(dir: &Path, out: impl Write) -> Result<SourceStats, BuildError> {
    let meta = fs::metadata(dir).map_err(|e| BuildError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(BuildError::io(
            dir,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let ignore = load_ignore(dir)?;
    let mut stats = SourceStats::default();
    let mut items = BTreeMap::new();
    match git_files(dir, &mut stats.skipped)? {
        Some(paths) => {
            stats.from_git = true;
            for rel in paths {
                if skipped_name(&rel) || ignored(&ignore, &rel, false) {
                    continue;
                }
                let full = dir.join(&rel);
                match fs::symlink_metadata(&full) {
                    // Listed by git but deleted in the work tree: not part of this upload.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(BuildError::io(full, e)),
                    Ok(m) if m.is_dir() => {
                        // A submodule: git lists its root; take its files as they are.
                        add_parents(&rel, &mut items);
                        items.insert(rel.clone(), Item::Dir);
                        walk(dir, &full, &ignore, &mut items, &mut stats.skipped)?;
                    }
                    Ok(m) => {
                        if let Some(item) = item_for(&full, &m)? {
                            add_parents(&rel, &mut items);
                            items.insert(rel, item);
                        } else {
                            stats.skipped.push(rel.into());
                        }
                    }
                }
            }
        }
        None => walk(dir, dir, &ignore, &mut items, &mut stats.skipped)?,
    }
    for item in items.values() {
        match item {
            Item::Dir => stats.dirs += 1,
            Item::File { .. } => stats.files += 1,
            Item::Symlink { .. } => stats.symlinks += 1,
        }
    }
    let counting = Counting { inner: out, n: 0 };
    let (counting, bytes) = archive::write_tar_zst(&items, counting)?;
    stats.bytes = bytes;
    stats.compressed_bytes = counting.n;
    Ok(stats)
}

/// Unpack a source archive made by [`pack_source`] (or anything else: it is untrusted input)
/// into `dest`, which must not exist yet.
///
/// Refuses, with an error naming the entry: absolute paths, any `..` component, symbolic links
/// whose target (followed through the archive's other links) is absolute or leaves the tree,
/// hard links to anything but a regular file earlier in the archive, paths through a link,
/// devices and FIFOs, duplicates, and more than `limits` allows (content bytes are counted as
/// they are decompressed, so a small archive that expands hugely is stopped at the limit).
/// The compressed size is the caller's to bound while receiving the upload.
///
/// Nothing is half-written: the files go to a temporary directory beside `dest`, renamed to
/// `dest` only on success and removed on any error.
pub fn unpack_source(
    input: impl Read,
    dest: &Path,
    limits: &Limits,
) -> Result<UnpackStats, BuildError> {
    archive::extract(input, dest, limits, |_| Ok(()))
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn load_ignore(dir: &Path) -> Result<Option<Gitignore>, BuildError> {
    let path = dir.join(IGNORE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let mut builder = GitignoreBuilder::new(dir);
    if let Some(err) = builder.add(&path) {
        return Err(BuildError::Ignore {
            path,
            message: err.to_string(),
        });
    }
    builder.build().map(Some).map_err(|err| BuildError::Ignore {
        path,
        message: err.to_string(),
    })
}

fn ignored(ignore: &Option<Gitignore>, rel: &str, is_dir: bool) -> bool {
    ignore
        .as_ref()
        .is_some_and(|gi| gi.matched_path_or_any_parents(rel, is_dir).is_ignore())
}

fn skipped_name(rel: &str) -> bool {
    rel.split('/').any(|c| ALWAYS_SKIPPED.contains(&c))
}

fn add_parents(rel: &str, items: &mut BTreeMap<String, Item>) {
    for (i, _) in rel.match_indices('/') {
        items.entry(rel[..i].to_string()).or_insert(Item::Dir);
    }
}

fn item_for(full: &Path, meta: &fs::Metadata) -> Result<Option<Item>, BuildError> {
    let kind = meta.file_type();
    Ok(if kind.is_symlink() {
        let target = fs::read_link(full).map_err(|e| BuildError::io(full, e))?;
        Some(Item::Symlink { target })
    } else if kind.is_file() {
        Some(Item::File {
            source: full.to_path_buf(),
            executable: meta.permissions().mode() & 0o111 != 0,
        })
    } else if kind.is_dir() {
        Some(Item::Dir)
    } else {
        None
    })
}

/// Add everything under `from` (a directory inside `root`) to `items`, minus ignored paths.
pub(crate) fn walk(
    root: &Path,
    from: &Path,
    ignore: &Option<Gitignore>,
    items: &mut BTreeMap<String, Item>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    let mut pending = vec![from.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let read = fs::read_dir(&dir).map_err(|e| BuildError::io(&dir, e))?;
        for entry in read {
            let entry = entry.map_err(|e| BuildError::io(&dir, e))?;
            let full = entry.path();
            let name = entry.file_name();
            if ALWAYS_SKIPPED.iter().any(|s| name == *s) {
                continue;
            }
            let rel_path = full.strip_prefix(root).unwrap_or(&full);
            let Some(rel) = rel_path.to_str().map(str::to_owned) else {
                skipped.push(rel_path.to_path_buf());
                continue;
            };
            let meta = fs::symlink_metadata(&full).map_err(|e| BuildError::io(&full, e))?;
            if ignored(ignore, &rel, meta.is_dir()) {
                continue;
            }
            match item_for(&full, &meta)? {
                Some(Item::Dir) => {
                    items.insert(rel, Item::Dir);
                    pending.push(full);
                }
                Some(item) => {
                    items.insert(rel, item);
                }
                None => skipped.push(rel.into()),
            }
        }
    }
    Ok(())
}

/// The files git lists for `dir`, relative to it, or `None` when `dir` is not in a git
/// checkout (or git is not installed).
fn git_files(dir: &Path, skipped: &mut Vec<PathBuf>) -> Result<Option<Vec<String>>, BuildError> {
    let inside = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output();
    match inside {
        Ok(out) if out.status.success() && out.stdout.starts_with(b"true") => {}
        _ => return Ok(None),
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BuildError::Git {
            dir: dir.into(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(BuildError::Git {
            dir: dir.into(),
            message: stderr.trim().lines().last().unwrap_or("failed").to_string(),
        });
    }
    let mut files = Vec::new();
    for raw in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        match std::str::from_utf8(raw) {
            Ok(path) => files.push(path.to_owned()),
            Err(_) => skipped.push(PathBuf::from(String::from_utf8_lossy(raw).into_owned())),
        }
    }
    // --cached and --others can name a path twice (e.g. during a merge).
    files.sort();
    files.dedup();
    Ok(Some(files))
}
