//! Deterministic `tar.zst` writing and safe extraction, shared by source archives and slugs.
//!
//! Writing: entries sorted by path, every header with mtime 0, uid/gid 0, no user or group
//! names, mode 0644 or 0755 (0755 for directories and for files with any execute bit), and
//! symbolic links kept as links. The same tree always gives the same bytes (for one zstd
//! version and level).
//!
//! Extraction never writes through a link and never outside the destination: see
//! [`extract`] for the rules.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{BuildError, Unsafe};

/// The zstd level for every archive dozen writes: fast, and much smaller than plain tar.
pub(crate) const ZSTD_LEVEL: i32 = 3;

/// How many symbolic links one path may go through (Linux's own limit).
const MAX_LINK_HOPS: usize = 40;

/// Bounds on what an archive may unpack to. Checked while reading, so an archive that is
/// small compressed and huge expanded (a "zip bomb") is refused after at most `max_bytes` of
/// output, and nothing is left behind.
///
/// A file's declared size is checked before any of it is written. The whole decompressed
/// stream is also capped (at `max_bytes` plus room for headers), which bounds what the tar
/// reader may hold in memory for long-name and PAX metadata entries: at worst about
/// `max_bytes`, so keep it at a size the host can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of file content, summed over all files.
    pub max_bytes: u64,
    /// The most entries (files, directories and links).
    pub max_entries: u64,
}

impl Default for Limits {
    /// 1 GiB in at most 100 000 entries: generous for source, tight enough for one host.
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 30,
            max_entries: 100_000,
        }
    }
}

impl Limits {
    /// The limits for slugs, which dozen built itself and verifies by digest: 16 GiB in
    /// 2 000 000 entries (a `node_modules` can be large).
    pub const SLUG: Limits = Limits {
        max_bytes: 16 << 30,
        max_entries: 2_000_000,
    };
}

/// What an unpack or extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Regular files (hard links included).
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// One thing to put in an archive, at a relative path with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Dir,
    File { source: PathBuf, executable: bool },
    Symlink { target: PathBuf },
}

/// Writes `items` (path relative to the archive root -> item) as a deterministic `tar.zst`.
/// The map's order (bytewise by path) is the archive's order, so parents precede children.
/// Returns the number of file content bytes written.
pub(crate) fn write_tar_zst<W: Write>(
    items: &BTreeMap<String, Item>,
    out: W,
) -> Result<(W, u64), BuildError> {
    let encoder = zstd::Encoder::new(out, ZSTD_LEVEL).map_err(|e| archive_io(None, e))?;
    let mut tar = tar::Builder::new(encoder);
    let mut bytes = 0;
    for (path, item) in items {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let result = match item {
            Item::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), io::empty())
            }
            Item::File { source, executable } => {
                let file = fs::File::open(source).map_err(|e| BuildError::io(source, e))?;
                let len = file
                    .metadata()
                    .map_err(|e| BuildError::io(source, e))?
                    .len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                header.set_size(len);
                bytes += len;
                // A file that changes size while being packed would corrupt the archive:
                // read exactly `len` bytes and fail if fewer are there.
                let reader = ExactReader {
                    inner: file.take(len),
                    remaining: len,
                };
                tar.append_data(&mut header, path, reader)
                    .map_err(|e| BuildError::io(source, e))?;
                Ok(())
            }
            Item::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, path, target)
            }
        };
        result.map_err(|e| archive_io(Some(path.into()), e))?;
    }
    let encoder = tar.into_inner().map_err(|e| archive_io(None, e))?;
    let out = encoder.finish().map_err(|e| archive_io(None, e))?;
    Ok((out, bytes))
}

/// Reads exactly `remaining` bytes or fails (the file shrank while being packed).
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being packed",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn archive_io(entry: Option<PathBuf>, source: io::Error) -> BuildError {
    BuildError::Archive { entry, source }
}

/// What extraction has put at one path, so later entries and links can be checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink(String),
}

/// Counts decompressed bytes and fails once more than `budget` have been read: bounds the work
/// and memory a hostile archive can cause, including through oversized metadata entries.
struct Budget<R> {
    inner: R,
    left: u64,
    exceeded: Arc<AtomicBool>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Only an error if there is more: probe one byte.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.store(true, Ordering::Relaxed);
                    Err(io::Error::other(
                        "the archive expands beyond its size limit",
                    ))
                }
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Extract a `tar.zst` from `input` into `dest`, which must not exist yet.
///
/// Everything is written into a fresh directory beside `dest` and renamed to `dest` only when
/// every entry has been checked and written (and `verify` has accepted the input), so an error
/// leaves nothing at `dest` and no partial directory behind.
///
/// Refused, with the entry's path in the error: absolute paths; any `..` component; devices,
/// FIFOs and other special entries; paths that go through a symbolic link of the archive;
/// symbolic links whose target, followed through the archive's other links, is absolute or
/// leaves the tree; hard links to anything but a regular file earlier in the archive; the same
/// path twice; more than `limits.max_entries` entries or `limits.max_bytes` of content.
///
/// `verify` receives the input after the last entry (to read it to its end and check a digest).
pub(crate) fn extract<R: Read>(
    input: R,
    dest: &Path,
    limits: &Limits,
    verify: impl FnOnce(R) -> Result<(), BuildError>,
) -> Result<UnpackStats, BuildError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(BuildError::DestinationExists { path: dest.into() });
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unpack".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(parent)
        .map_err(|e| BuildError::io(parent, e))?;

    let exceeded = Arc::new(AtomicBool::new(false));
    // Content plus headers (up to three 512-byte blocks per entry with long names) plus slack.
    let budget = limits
        .max_bytes
        .saturating_add(limits.max_entries.saturating_mul(3 * 512))
        .saturating_add(1 << 20);
    let decoder = zstd::Decoder::new(input).map_err(|e| archive_io(None, e))?;
    let reader = Budget {
        inner: decoder,
        left: budget,
        exceeded: exceeded.clone(),
    };
    let mut archive = tar::Archive::new(reader);
    let mut state = Extraction {
        root: tmp.path().to_path_buf(),
        limits: *limits,
        nodes: BTreeMap::new(),
        stats: UnpackStats::default(),
        entries: 0,
    };
    let over_budget = |entry: Option<PathBuf>, e: io::Error| {
        if exceeded.load(Ordering::Relaxed) {
            BuildError::TooLarge {
                entry: entry.unwrap_or_else(|| PathBuf::from("(archive headers)")),
                limit: limits.max_bytes,
            }
        } else {
            archive_io(entry, e)
        }
    };
    let mut last: Option<PathBuf> = None;
    let entries = archive
        .entries()
        .map_err(|e| over_budget(last.clone(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| over_budget(last.clone(), e))?;
        let shown = PathBuf::from(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        last = Some(shown.clone());
        state.entry(entry, &shown).map_err(|e| match e {
            BuildError::Archive { entry, source } => over_budget(entry, source),
            other => other,
        })?;
    }
    state.check_links()?;

    let decoder = archive.into_inner().inner;
    verify(decoder.finish().into_inner())?;

    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
        .map_err(|e| BuildError::io(tmp.path(), e))?;
    fs::rename(tmp.path(), dest).map_err(|e| BuildError::io(dest, e))?;
    // Renamed away: nothing left for the guard to remove.
    let _ = tmp.keep();
    Ok(state.stats)
}

struct Extraction {
    root: PathBuf,
    limits: Limits,
    nodes: BTreeMap<String, Node>,
    stats: UnpackStats,
    entries: u64,
}

impl Extraction {
    fn entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        shown: &Path,
    ) -> Result<(), BuildError> {
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(BuildError::TooManyEntries {
                entry: shown.into(),
                limit: self.limits.max_entries,
            });
        }
        let is_dir = kind == tar::EntryType::Directory;
        let Some(path) = normalize(&entry.path_bytes(), shown)? else {
            return if is_dir {
                Ok(()) // `./`: the root itself
            } else {
                Err(BuildError::unsafe_entry(shown, Unsafe::BadName))
            };
        };
        let special =
            |kind: &'static str| Err(BuildError::unsafe_entry(shown, Unsafe::Special { kind }));
        match kind {
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::Directory
            | tar::EntryType::Symlink
            | tar::EntryType::Link => {}
            tar::EntryType::Char => return special("character device"),
            tar::EntryType::Block => return special("block device"),
            tar::EntryType::Fifo => return special("fifo"),
            tar::EntryType::GNUSparse => return special("sparse file"),
            _ => return special("unknown"),
        }
        self.check_parents(&path, shown)?;
        match self.nodes.get(&path) {
            None => {}
            Some(Node::Dir) if is_dir => return Ok(()),
            Some(_) => return Err(BuildError::unsafe_entry(shown, Unsafe::Duplicate)),
        }
        let target_path = self.root.join(&path);
        if let Some(parent) = target_path.parent() {
            fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir(&target_path).map_err(|e| BuildError::io(shown, e))?;
                fs::set_permissions(&target_path, fs::Permissions::from_mode(0o755))
                    .map_err(|e| BuildError::io(shown, e))?;
                self.nodes.insert(path, Node::Dir);
                self.stats.dirs += 1;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .and_then(|t| String::from_utf8(t.into_owned()).ok())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| BuildError::unsafe_entry(shown, Unsafe::BadName))?;
                if target.starts_with('/') {
                    return Err(BuildError::unsafe_entry(
                        shown,
                        Unsafe::LinkOutside {
                            target: target.into(),
                        },
                    ));
                }
                std::os::unix::fs::symlink(&target, &target_path)
                    .map_err(|e| BuildError::io(shown, e))?;
                self.nodes.insert(path, Node::Symlink(target));
                self.stats.symlinks += 1;
            }
            tar::EntryType::Link => {
                let raw = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target_shown = PathBuf::from(String::from_utf8_lossy(&raw).into_owned());
                let outside = || {
                    BuildError::unsafe_entry(
                        shown,
                        Unsafe::HardLinkOutside {
                            target: target_shown.clone(),
                        },
                    )
                };
                let target = normalize(&raw, shown)
                    .map_err(|_| outside())?
                    .ok_or_else(outside)?;
                if self.nodes.get(&target) != Some(&Node::File) {
                    return Err(outside());
                }
                fs::hard_link(self.root.join(&target), &target_path)
                    .map_err(|e| BuildError::io(shown, e))?;
                self.nodes.insert(path, Node::File);
                self.stats.files += 1;
            }
            _ => {
                let size = entry.size();
                if self.stats.bytes.saturating_add(size) > self.limits.max_bytes {
                    return Err(BuildError::TooLarge {
                        entry: shown.into(),
                        limit: self.limits.max_bytes,
                    });
                }
                // create_new: never opens through an existing link (O_CREAT|O_EXCL).
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target_path)
                    .map_err(|e| BuildError::io(shown, e))?;
                let written = copy_entry(&mut entry, &mut file, shown)?;
                self.stats.bytes += written;
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                fs::set_permissions(&target_path, fs::Permissions::from_mode(mode))
                    .map_err(|e| BuildError::io(shown, e))?;
                self.nodes.insert(path, Node::File);
                self.stats.files += 1;
            }
        }
        Ok(())
    }

    /// Every proper prefix of `path` must be a directory (or not yet seen, then it is created
    /// as one); never a link or a file.
    fn check_parents(&mut self, path: &str, shown: &Path) -> Result<(), BuildError> {
        for (i, _) in path.match_indices('/') {
            let prefix = &path[..i];
            match self.nodes.get(prefix) {
                Some(Node::Dir) => {}
                Some(Node::Symlink(_)) => {
                    return Err(BuildError::unsafe_entry(shown, Unsafe::ThroughLink));
                }
                Some(Node::File) => {
                    return Err(BuildError::unsafe_entry(shown, Unsafe::ParentIsFile));
                }
                None => {
                    self.nodes.insert(prefix.to_string(), Node::Dir);
                }
            }
        }
        Ok(())
    }

    /// Follow every symbolic link through the archive's own links, as the kernel would, and
    /// refuse any that leaves the tree.
    fn check_links(&self) -> Result<(), BuildError> {
        for (path, node) in &self.nodes {
            let Node::Symlink(target) = node else {
                continue;
            };
            let fail = |reason| BuildError::unsafe_entry(path, reason);
            let mut stack: Vec<&str> = path.split('/').collect();
            stack.pop(); // the link itself: its target is relative to its directory
            let mut pending: VecDeque<&str> = components(target).collect();
            let mut hops = 0;
            while let Some(c) = pending.pop_front() {
                if c == ".." {
                    if stack.pop().is_none() {
                        return Err(fail(Unsafe::LinkOutside {
                            target: target.into(),
                        }));
                    }
                    continue;
                }
                stack.push(c);
                if let Some(Node::Symlink(next)) = self.nodes.get(&stack.join("/")) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(fail(Unsafe::LinkLoop));
                    }
                    stack.pop();
                    if next.starts_with('/') {
                        return Err(fail(Unsafe::LinkOutside {
                            target: target.into(),
                        }));
                    }
                    for c in components(next).rev() {
                        pending.push_front(c);
                    }
                }
            }
        }
        Ok(())
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// A safe relative path with `/` separators, or `None` for the root itself.
fn normalize(raw: &[u8], shown: &Path) -> Result<Option<String>, BuildError> {
    let text =
        std::str::from_utf8(raw).map_err(|_| BuildError::unsafe_entry(shown, Unsafe::BadName))?;
    if text.starts_with('/') {
        return Err(BuildError::unsafe_entry(shown, Unsafe::AbsolutePath));
    }
    if text.contains('\0') {
        return Err(BuildError::unsafe_entry(shown, Unsafe::BadName));
    }
    let mut parts = Vec::new();
    for c in components(text) {
        if c == ".." {
            return Err(BuildError::unsafe_entry(shown, Unsafe::ParentDir));
        }
        parts.push(c);
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn copy_entry(from: &mut impl Read, to: &mut fs::File, shown: &Path) -> Result<u64, BuildError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(archive_io(Some(shown.into()), e)),
        };
        to.write_all(&buf[..n])
            .map_err(|e| BuildError::io(shown, e))?;
        total += n as u64;
    }
}
