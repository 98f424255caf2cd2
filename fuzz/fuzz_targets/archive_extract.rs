//! Source archive extraction (`dozen_build::unpack_source`) on hostile archives: zip-slip
//! paths, absolute paths, symbolic and hard links out of the tree (directly or through other
//! links), devices and FIFOs, duplicate and long (GNU and PAX) names, and archives that expand
//! past their limits. The input is a tar stream (uncompressed; the header checksums are fixed up
//! here so mutations reach the extractor instead of the checksum test), compressed with zstd as
//! dozen receives it. Asserted:
//!
//! - nothing is ever written outside the destination: the directory around it holds, after the
//!   call, the destination (only on success) and an untouched sentinel directory, nothing else;
//! - on failure the destination does not exist (no half-extracted tree);
//! - on success the tree holds only directories, regular files (mode 0644 or 0755) and symbolic
//!   links that, followed through the tree as the kernel would, stay inside it; the reported
//!   counts match the tree and stay within the limits.
#![no_main]

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path};

use dozen_build::{Limits, unpack_source};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_bytes: 16 * 1024,
    max_entries: 64,
};

/// The size a tar header declares (octal, or GNU base-256), if it reads as one.
fn declared_size(header: &[u8]) -> Option<u64> {
    let field = &header[124..136];
    if field[0] & 0x80 != 0 {
        let mut n: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { *b };
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// Rewrites the checksum of every header the tar reader will reach.
fn fix_checksums(tar: &mut [u8]) {
    let mut at = 0usize;
    while at + 512 <= tar.len() {
        let header = &mut tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return;
        }
        header[148..156].fill(b' ');
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        let digits = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(&digits.as_bytes()[..8]);
        let Some(size) = declared_size(header) else {
            return;
        };
        let Some(next) = size
            .checked_add(511)
            .map(|s| s / 512 * 512)
            .and_then(|s| usize::try_from(s).ok())
            .and_then(|s| s.checked_add(at + 512))
        else {
            return;
        };
        at = next;
    }
}

/// Whether the symbolic link at `link` (inside `root`), followed as the kernel would through
/// the links of the tree, stays inside `root`. A loop or a dangling tail counts as inside:
/// nothing outside can be reached through it.
fn stays_inside(root: &Path, link: &Path) -> bool {
    let rel = link.strip_prefix(root).expect("link under root");
    let mut stack: Vec<OsString> = rel.components().map(|c| c.as_os_str().to_owned()).collect();
    stack.pop(); // a link's target is relative to its directory
    let mut pending: VecDeque<OsString> = VecDeque::new();
    let mut hops = 0;
    let mut target = fs::read_link(link).expect("read_link");
    loop {
        if target.has_root() {
            return false;
        }
        let mut next: VecDeque<OsString> = target
            .components()
            .map(|c| c.as_os_str().to_owned())
            .collect();
        next.extend(pending.drain(..));
        pending = next;
        let mut followed = None;
        while let Some(c) = pending.pop_front() {
            match Path::new(&c).components().next() {
                Some(Component::CurDir) | None => {}
                Some(Component::ParentDir) => {
                    if stack.pop().is_none() {
                        return false;
                    }
                }
                Some(Component::RootDir | Component::Prefix(_)) => return false,
                Some(Component::Normal(_)) => {
                    stack.push(c);
                    let here = stack.iter().fold(root.to_path_buf(), |p, c| p.join(c));
                    if fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink()) {
                        stack.pop();
                        followed = Some(fs::read_link(&here).expect("read_link"));
                        break;
                    }
                }
            }
        }
        match followed {
            None => return true,
            Some(_) if hops >= 40 => return true, // ELOOP
            Some(next) => {
                hops += 1;
                target = next;
            }
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, fs::Metadata)>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let meta = fs::symlink_metadata(entry.path()).expect("metadata");
        let is_dir = meta.is_dir();
        out.push((entry.path(), meta));
        if is_dir {
            walk(&entry.path(), out);
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fuzz_target!(|data: &[u8]| {
    let mut tar = data.to_vec();
    fix_checksums(&mut tar);
    let compressed = zstd::encode_all(&tar[..], 1).expect("zstd");

    let base = tempfile::tempdir().expect("tempdir");
    let outside = base.path().join("outside");
    fs::create_dir(&outside).expect("outside");
    fs::write(outside.join("sentinel"), b"untouched").expect("sentinel");
    let dest = base.path().join("dest");

    let result = unpack_source(&compressed[..], &dest, &LIMITS);

    // Nothing outside the destination changed.
    assert_eq!(
        names(&outside),
        ["sentinel"],
        "written outside the destination"
    );
    assert_eq!(
        fs::read(outside.join("sentinel")).expect("sentinel"),
        b"untouched"
    );
    let expected: &[&str] = if result.is_ok() {
        &["dest", "outside"]
    } else {
        &["outside"]
    };
    assert_eq!(names(base.path()), expected, "{result:?}");

    let Ok(stats) = result else {
        return;
    };
    let root = fs::canonicalize(&dest).expect("dest");
    let mut tree = Vec::new();
    walk(&root, &mut tree);
    let (mut files, mut dirs, mut links, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut inodes = HashSet::new();
    for (path, meta) in &tree {
        let kind = meta.file_type();
        let mode = meta.permissions().mode() & 0o7777;
        if kind.is_dir() {
            dirs += 1;
            assert_eq!(mode, 0o755, "{path:?}");
        } else if kind.is_file() {
            files += 1;
            assert!(mode == 0o644 || mode == 0o755, "{path:?} mode {mode:o}");
            if inodes.insert(meta.ino()) {
                bytes += meta.len();
            }
        } else if kind.is_symlink() {
            links += 1;
            assert!(stays_inside(&root, path), "{path:?} leads out of the tree");
        } else {
            panic!("{path:?} is neither a directory, a file nor a link: {kind:?}");
        }
    }
    assert_eq!(
        (stats.files, stats.symlinks, stats.bytes),
        (files, links, bytes)
    );
    assert!(stats.dirs <= dirs);
    assert!(stats.bytes <= LIMITS.max_bytes);
    assert!(stats.files + stats.symlinks + stats.dirs <= LIMITS.max_entries);
});
