//! Writing exported files so that a reader never sees half an export: everything is written
//! to temporary files first and renamed into place only when all of it is on disk.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::ExportError;

/// The file [`replace_dir`] leaves in a directory it owns.
pub const MARKER: &str = ".dozen-export";

/// One file of an export.
///
/// `Debug` shows the name and mode only: the contents may be secrets (an env file).
#[derive(Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Its path relative to the output directory, with `/` between parts.
    pub name: String,
    /// What to write.
    pub contents: String,
    /// Its permission bits (0o644, or 0o600 for files holding config values).
    pub mode: u32,
}

impl fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputFile")
            .field("name", &self.name)
            .field("mode", &format_args!("{:o}", self.mode))
            .finish_non_exhaustive()
    }
}

impl OutputFile {
    /// A file named `name` (relative) with `contents` and `mode`.
    pub fn new(name: impl Into<String>, contents: impl Into<String>, mode: u32) -> Self {
        OutputFile {
            name: name.into(),
            contents: contents.into(),
            mode,
        }
    }

    fn relative_path(&self) -> Result<PathBuf, ExportError> {
        let path = PathBuf::from(&self.name);
        let plain =
            !self.name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
        if plain {
            Ok(path)
        } else {
            Err(ExportError::Output {
                path,
                reason: "an exported file name must be a plain relative path".into(),
            })
        }
    }
}

/// Make `dest` a directory holding exactly `files` (and a [`MARKER`]).
///
/// `dest` may be missing, empty, or a directory an earlier export wrote (it has the marker);
/// anything else is refused, so a mistyped `-o` never replaces someone's directory. The new
/// tree is written beside `dest` and swapped in with renames; on any error `dest` is as it was.
pub fn replace_dir(dest: &Path, files: &[OutputFile]) -> Result<(), ExportError> {
    let existing = match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {
            let mut entries = fs::read_dir(dest).map_err(|e| ExportError::io(dest, e))?;
            let empty = entries.next().is_none();
            if !empty && !dest.join(MARKER).is_file() {
                return Err(ExportError::Output {
                    path: dest.into(),
                    reason: format!(
                        "the directory exists and was not written by dozen export (no {MARKER} in it); choose a new or empty directory"
                    ),
                });
            }
            true
        }
        Ok(_) => {
            return Err(ExportError::Output {
                path: dest.into(),
                reason: "exists and is not a directory; choose a directory".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(ExportError::io(dest, e)),
    };
    let parent = parent_of(dest);
    fs::create_dir_all(&parent).map_err(|e| ExportError::io(&parent, e))?;
    let base = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{base}.partial-"))
        .tempdir_in(&parent)
        .map_err(|e| ExportError::io(&parent, e))?;
    for f in files {
        let path = tmp.path().join(f.relative_path()?);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| ExportError::io(dir, e))?;
        }
        write_file(&path, f)?;
    }
    let marker = OutputFile::new(
        MARKER,
        "Written by `dozen export`: the next export into this directory replaces all of it.\n",
        0o644,
    );
    write_file(&tmp.path().join(MARKER), &marker)?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
        .map_err(|e| ExportError::io(tmp.path(), e))?;

    if !existing {
        fs::rename(tmp.path(), dest).map_err(|e| ExportError::io(dest, e))?;
        let _ = tmp.keep();
        return Ok(());
    }
    // Swap: the old tree moves aside, the new one takes its place, the old one is removed.
    let old = tempfile::Builder::new()
        .prefix(&format!(".{base}.old-"))
        .tempdir_in(&parent)
        .map_err(|e| ExportError::io(&parent, e))?;
    let aside = old.path().join("tree");
    fs::rename(dest, &aside).map_err(|e| ExportError::io(dest, e))?;
    if let Err(e) = fs::rename(tmp.path(), dest) {
        let _ = fs::rename(&aside, dest);
        return Err(ExportError::io(dest, e));
    }
    let _ = tmp.keep();
    drop(old);
    Ok(())
}

/// Write `files` into the directory `dest` (created if missing), replacing files of the same
/// names and leaving every other file alone, as an export into `/etc/systemd/system` must.
/// Every file is written to a temporary file beside its final name first; only when all are
/// written are they renamed into place.
pub fn write_into(dest: &Path, files: &[OutputFile]) -> Result<(), ExportError> {
    if !dest.exists() {
        return replace_dir(dest, files).and_then(|()| {
            fs::remove_file(dest.join(MARKER)).map_err(|e| ExportError::io(dest.join(MARKER), e))
        });
    }
    if !dest.is_dir() {
        return Err(ExportError::Output {
            path: dest.into(),
            reason: "exists and is not a directory; choose a directory".into(),
        });
    }
    let mut pending = Vec::new();
    for f in files {
        let path = dest.join(f.relative_path()?);
        let dir = parent_of(&path);
        fs::create_dir_all(&dir).map_err(|e| ExportError::io(&dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".dozen-export-")
            .tempfile_in(&dir)
            .map_err(|e| ExportError::io(&dir, e))?;
        write_file(tmp.path(), f)?;
        pending.push((tmp, path));
    }
    for (tmp, path) in pending {
        tmp.persist(&path)
            .map_err(|e| ExportError::io(&path, e.error))?;
    }
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `f` at `path` with its mode; the mode is set before any content is written.
fn write_file(path: &Path, f: &OutputFile) -> Result<(), ExportError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| ExportError::io(path, e))?;
    file.set_permissions(fs::Permissions::from_mode(f.mode))
        .and_then(|()| file.write_all(f.contents.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| ExportError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<OutputFile> {
        vec![
            OutputFile::new("a.yaml", "a\n", 0o644),
            OutputFile::new("sub/b.env", "SECRET=\"x\"\n", 0o600),
        ]
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn replace_dir_creates_and_replaces_only_its_own_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        replace_dir(&out, &files()).expect("written");
        assert_eq!(fs::read_to_string(out.join("a.yaml")).expect("read"), "a\n");
        assert_eq!(mode(&out.join("sub/b.env")), 0o600);
        assert!(out.join(MARKER).is_file());

        replace_dir(&out, &[OutputFile::new("c.yaml", "c\n", 0o644)]).expect("replaced");
        assert!(!out.join("a.yaml").exists());
        assert!(out.join("c.yaml").is_file());

        let theirs = tmp.path().join("theirs");
        fs::create_dir(&theirs).expect("mkdir");
        fs::write(theirs.join("keep"), "x").expect("write");
        let e = replace_dir(&theirs, &files()).unwrap_err().to_string();
        assert!(e.contains("not written by dozen export"), "{e}");
        assert!(theirs.join("keep").is_file());
        // Nothing is left beside it.
        let names: Vec<_> = fs::read_dir(tmp.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn write_into_keeps_other_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(tmp.path().join("other.service"), "x").expect("write");
        write_into(tmp.path(), &files()).expect("written");
        assert!(tmp.path().join("other.service").is_file());
        assert_eq!(mode(&tmp.path().join("sub/b.env")), 0o600);
        assert_eq!(mode(&tmp.path().join("a.yaml")), 0o644);
        let fresh = tmp.path().join("fresh");
        write_into(&fresh, &files()).expect("written");
        assert!(fresh.join("a.yaml").is_file() && !fresh.join(MARKER).exists());
    }

    #[test]
    fn names_must_stay_inside() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for bad in ["../x", "/etc/x", ""] {
            assert!(
                write_into(tmp.path(), &[OutputFile::new(bad, "", 0o644)]).is_err(),
                "{bad}"
            );
        }
        let shown = format!("{:?}", files()[1]);
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
