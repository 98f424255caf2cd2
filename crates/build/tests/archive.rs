//! Source archives and slugs with real files: what is packed, what unpacking refuses, and that
//! slugs are deterministic and verified.
//!
//! This binary runs `git` with `std::process::Command`, so it must never start a
//! `dozen_supervise::Supervisor` (whose reaper would race for git's exit status).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use dozen_build::{
    BuildError, IGNORE_FILE, Limits, SlugMeta, Unsafe, extract_slug, pack_slug, pack_source,
    unpack_source,
};

/// An archive written entry by entry with raw names, so it can say what a hostile client would.
struct Raw {
    tar: tar::Builder<Vec<u8>>,
}

impl Raw {
    fn new() -> Self {
        Raw {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8]) -> tar::Header {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        h
    }

    fn file(mut self, name: &str, data: &[u8]) -> Self {
        let h = Self::header(
            name.as_bytes(),
            tar::EntryType::Regular,
            data.len() as u64,
            b"",
        );
        self.tar.append(&h, data).expect("append");
        self
    }

    fn big_file(mut self, name: &str, size: u64) -> Self {
        let h = Self::header(name.as_bytes(), tar::EntryType::Regular, size, b"");
        self.tar
            .append(&h, io::repeat(0).take(size))
            .expect("append");
        self
    }

    fn link(mut self, name: &str, kind: tar::EntryType, target: &str) -> Self {
        let h = Self::header(name.as_bytes(), kind, 0, target.as_bytes());
        self.tar.append(&h, io::empty()).expect("append");
        self
    }

    fn special(mut self, name: &str, kind: tar::EntryType) -> Self {
        let h = Self::header(name.as_bytes(), kind, 0, b"");
        self.tar.append(&h, io::empty()).expect("append");
        self
    }

    fn zst(self) -> Vec<u8> {
        let tar = self.tar.into_inner().expect("tar");
        zstd::encode_all(tar.as_slice(), 3).expect("zstd")
    }
}

/// Unpack `archive` into a fresh `dest` and expect a refusal naming `entry`; `dest` and any
/// partial directory must be gone afterwards.
fn refused(archive: &[u8], limits: &Limits, entry: &str) -> BuildError {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("dest");
    let err = unpack_source(archive, &dest, limits).expect_err("must be refused");
    assert_eq!(err.entry(), Some(Path::new(entry)), "{err}");
    assert!(err.to_string().contains(entry), "{err}");
    assert!(!dest.exists(), "dest must not exist after a refusal");
    let left: Vec<_> = fs::read_dir(tmp.path()).expect("ls").collect();
    assert!(left.is_empty(), "nothing may be left beside dest: {left:?}");
    err
}

#[test]
fn refuses_absolute_paths() {
    let a = Raw::new()
        .file("ok.txt", b"ok")
        .file("/tmp/dozen-evil", b"x")
        .zst();
    let e = refused(&a, &Limits::default(), "/tmp/dozen-evil");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::AbsolutePath,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn refuses_parent_components() {
    let a = Raw::new().file("../x", b"x").zst();
    let e = refused(&a, &Limits::default(), "../x");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::ParentDir,
                ..
            }
        ),
        "{e:?}"
    );

    let a = Raw::new()
        .file("a/b.txt", b"b")
        .file("a/../../x", b"x")
        .zst();
    let e = refused(&a, &Limits::default(), "a/../../x");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::ParentDir,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn refuses_symlink_to_an_absolute_path() {
    let a = Raw::new()
        .link("passwd", tar::EntryType::Symlink, "/etc/passwd")
        .zst();
    let e = refused(&a, &Limits::default(), "passwd");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::LinkOutside { .. },
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn refuses_symlink_climbing_out() {
    let a = Raw::new()
        .link("d/up", tar::EntryType::Symlink, "../../outside")
        .zst();
    refused(&a, &Limits::default(), "d/up");
}

#[test]
fn refuses_symlink_chain_escaping() {
    // `d/up` -> `..` is the root itself (fine on its own); `esc` -> `d/up/..` looks like `d`
    // when read as text, but through the link it is the parent of the root.
    let a = Raw::new()
        .file("d/keep.txt", b"k")
        .link("d/up", tar::EntryType::Symlink, "..")
        .link("esc", tar::EntryType::Symlink, "d/up/..")
        .zst();
    let e = refused(&a, &Limits::default(), "esc");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::LinkOutside { .. },
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn refuses_symlink_loops() {
    let a = Raw::new()
        .link("a", tar::EntryType::Symlink, "b")
        .link("b", tar::EntryType::Symlink, "a")
        .zst();
    let e = refused(&a, &Limits::default(), "a");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::LinkLoop,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn refuses_writing_through_a_symlink() {
    let a = Raw::new()
        .file("sub/x", b"x")
        .link("l", tar::EntryType::Symlink, "sub")
        .file("l/y", b"y")
        .zst();
    let e = refused(&a, &Limits::default(), "l/y");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::ThroughLink,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn refuses_hardlinks_outside() {
    let a = Raw::new()
        .link("h", tar::EntryType::Link, "../../etc/passwd")
        .zst();
    let e = refused(&a, &Limits::default(), "h");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::HardLinkOutside { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let a = Raw::new()
        .link("h", tar::EntryType::Link, "/etc/passwd")
        .zst();
    refused(&a, &Limits::default(), "h");
    // A hard link to a symlink would smuggle the link's target in under another name.
    let a = Raw::new()
        .link("s", tar::EntryType::Symlink, "x")
        .link("h", tar::EntryType::Link, "s")
        .zst();
    refused(&a, &Limits::default(), "h");
}

#[test]
fn refuses_fifos_and_devices() {
    let a = Raw::new().special("pipe", tar::EntryType::Fifo).zst();
    let e = refused(&a, &Limits::default(), "pipe");
    assert!(
        matches!(
            e,
            BuildError::UnsafeEntry {
                reason: Unsafe::Special { kind: "fifo" },
                ..
            }
        ),
        "{e:?}"
    );
    let a = Raw::new().special("null", tar::EntryType::Char).zst();
    refused(&a, &Limits::default(), "null");
}

#[test]
fn refuses_a_zstd_bomb() {
    // 64 MiB of zeros compresses to almost nothing.
    let a = Raw::new()
        .file("small.txt", b"fine")
        .big_file("bomb.bin", 64 << 20)
        .zst();
    assert!(
        a.len() < 64 * 1024,
        "the bomb must be small compressed: {}",
        a.len()
    );
    let limits = Limits {
        max_bytes: 8 << 20,
        max_entries: 100,
    };
    let e = refused(&a, &limits, "bomb.bin");
    assert!(
        matches!(e, BuildError::TooLarge { limit, .. } if limit == 8 << 20),
        "{e:?}"
    );
}

#[test]
fn refuses_too_many_entries() {
    let mut raw = Raw::new();
    for i in 0..11 {
        raw = raw.file(&format!("f{i:02}"), b"x");
    }
    let limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 10,
    };
    let e = refused(&raw.zst(), &limits, "f10");
    assert!(
        matches!(e, BuildError::TooManyEntries { limit: 10, .. }),
        "{e:?}"
    );
}

#[test]
fn refuses_garbage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("dest");
    let e = unpack_source(&b"not a zstd stream at all"[..], &dest, &Limits::default())
        .expect_err("garbage");
    assert!(matches!(e, BuildError::Archive { .. }), "{e:?}");
    assert!(!dest.exists());
}

#[test]
fn refuses_an_existing_destination() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = Raw::new().file("a", b"a").zst();
    let e = unpack_source(a.as_slice(), tmp.path(), &Limits::default()).expect_err("exists");
    assert!(matches!(e, BuildError::DestinationExists { .. }), "{e:?}");
}

#[test]
fn accepts_links_that_stay_inside() {
    let a = Raw::new()
        .file("lib/real.txt", b"real")
        .link("lib/alias", tar::EntryType::Symlink, "real.txt")
        .link("top", tar::EntryType::Symlink, "lib/../lib/alias")
        .link("hard", tar::EntryType::Link, "lib/real.txt")
        .zst();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("dest");
    let stats = unpack_source(a.as_slice(), &dest, &Limits::default()).expect("unpacks");
    assert_eq!(stats.files, 2);
    assert_eq!(stats.symlinks, 2);
    assert_eq!(fs::read_to_string(dest.join("top")).expect("read"), "real");
    assert_eq!(fs::read_to_string(dest.join("hard")).expect("read"), "real");
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

fn make_executable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn round_trip(dir: &Path) -> (tempfile::TempDir, PathBuf, dozen_build::SourceStats) {
    let mut archive = Vec::new();
    let stats = pack_source(dir, &mut archive).expect("pack");
    assert_eq!(stats.compressed_bytes, archive.len() as u64);
    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("src");
    unpack_source(archive.as_slice(), &dest, &Limits::default()).expect("unpack");
    (out, dest, stats)
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn pack_source_in_a_git_checkout_takes_what_git_lists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    write(&dir.join("Procfile"), "web: ./bin/run\n");
    write(&dir.join("bin/run"), "#!/bin/sh\n");
    make_executable(&dir.join("bin/run"));
    write(&dir.join(".gitignore"), "*.log\nnode_modules/\n");
    write(&dir.join("tracked.log"), "tracked despite the pattern\n");
    symlink("Procfile", dir.join("link")).expect("symlink");
    git(
        dir,
        &[
            "add",
            "-f",
            "Procfile",
            "bin/run",
            ".gitignore",
            "tracked.log",
            "link",
        ],
    );
    write(&dir.join("untracked.txt"), "new\n");
    write(&dir.join("debug.log"), "ignored\n");
    write(&dir.join("node_modules/x/index.js"), "ignored\n");
    write(&dir.join(IGNORE_FILE), "untracked.txt\n");
    write(&dir.join("kept.txt"), "kept\n");

    let (_out, dest, stats) = round_trip(dir);
    assert!(stats.from_git);
    assert!(dest.join("Procfile").is_file());
    assert!(dest.join("tracked.log").is_file(), "tracked files stay");
    assert!(
        dest.join("kept.txt").is_file(),
        "untracked, not ignored files go"
    );
    assert!(
        !dest.join("debug.log").exists(),
        "ignored untracked files stay out"
    );
    assert!(!dest.join("node_modules").exists());
    assert!(
        !dest.join("untracked.txt").exists(),
        ".dozenignore applies too"
    );
    assert!(!dest.join(".git").exists());
    let mode = fs::metadata(dest.join("bin/run"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        fs::read_link(dest.join("link")).expect("still a link"),
        Path::new("Procfile")
    );
}

#[test]
fn pack_source_in_a_plain_directory_honours_dozenignore() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("app");
    write(&dir.join("Procfile"), "web: ./serve\n");
    write(&dir.join("serve"), "#!/bin/sh\n");
    make_executable(&dir.join("serve"));
    write(&dir.join("notes.txt"), "notes\n");
    write(&dir.join("private.key"), "secret\n");
    write(&dir.join("tmp/cache/x"), "x\n");
    write(&dir.join("keep/tmp.txt"), "kept: the pattern is anchored\n");
    write(&dir.join(".dozen/state"), "local\n");
    write(&dir.join(".git/HEAD"), "not a real repo\n");
    write(&dir.join(IGNORE_FILE), "# local things\n*.key\n/tmp/\n");
    fs::create_dir_all(dir.join("empty")).expect("mkdir");

    let (_out, dest, stats) = round_trip(&dir);
    assert!(!stats.from_git);
    assert!(dest.join("Procfile").is_file());
    assert!(dest.join("notes.txt").is_file());
    assert!(dest.join("keep/tmp.txt").is_file());
    assert!(dest.join("empty").is_dir(), "empty directories are kept");
    assert!(!dest.join("private.key").exists());
    assert!(!dest.join("tmp").exists());
    assert!(!dest.join(".dozen").exists());
    assert!(!dest.join(".git").exists());
    let mode = fs::metadata(dest.join("serve"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let mode = fs::metadata(dest.join("notes.txt"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn pack_source_is_deterministic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a");
    write(&a.join("z.txt"), "z");
    write(&a.join("m/n.txt"), "n");
    write(&a.join("a.txt"), "a");
    let mut first = Vec::new();
    pack_source(&a, &mut first).expect("pack");
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Same content, created in another order at another time, with other permissions bits.
    let b = tmp.path().join("b");
    write(&b.join("a.txt"), "a");
    write(&b.join("m/n.txt"), "n");
    write(&b.join("z.txt"), "z");
    fs::set_permissions(b.join("a.txt"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut second = Vec::new();
    pack_source(&b, &mut second).expect("pack");
    assert_eq!(first, second);
}

fn sample_tree(dir: &Path) {
    write(
        &dir.join("Procfile"),
        "web: ./bin/web\nworker: ./bin/work\n",
    );
    write(&dir.join("bin/web"), "#!/bin/sh\necho web\n");
    make_executable(&dir.join("bin/web"));
    write(&dir.join("bin/work"), "#!/bin/sh\necho work\n");
    make_executable(&dir.join("bin/work"));
    write(&dir.join("lib/data.txt"), "data\n");
    symlink("../lib/data.txt", dir.join("bin/data")).expect("symlink");
    write(&dir.join(".git/config"), "never in a slug\n");
}

fn meta() -> SlugMeta {
    SlugMeta {
        process_types: vec![
            ("web".into(), "./bin/web".into()),
            ("worker".into(), "./bin/work".into()),
        ],
        health_check: Some("/healthz".into()),
        boot_timeout: Some(30),
        build_kind: "none".into(),
        run_env: dozen_build::run_env_of(Path::new("/nonexistent"), "python"),
        ..SlugMeta::default()
    }
}

#[test]
fn slug_digest_is_deterministic_and_names_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let one = tmp.path().join("one");
    sample_tree(&one);
    let slugs = tmp.path().join("slugs");
    let a = pack_slug(&one, &slugs, meta()).expect("pack");
    let b = pack_slug(&one, &slugs, meta()).expect("pack again");
    assert_eq!(a.digest, b.digest);

    std::thread::sleep(std::time::Duration::from_millis(20));
    let two = tmp.path().join("two");
    sample_tree(&two);
    let c = pack_slug(&two, &tmp.path().join("slugs2"), meta()).expect("pack copy");
    assert_eq!(
        a.digest, c.digest,
        "same tree elsewhere, later: same digest"
    );

    write(&two.join("lib/data.txt"), "changed\n");
    let d = pack_slug(&two, &tmp.path().join("slugs2"), meta()).expect("pack changed");
    assert_ne!(a.digest, d.digest);

    let bytes = fs::read(&a.path).expect("read slug");
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), a.digest);
    assert_eq!(a.path, slugs.join(format!("{}.tar.zst", a.digest)));
    assert_eq!(a.manifest.size, bytes.len() as u64);
    assert_eq!(a.manifest.files, 4);

    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(&a.manifest_path).expect("manifest")).expect("json");
    assert_eq!(json["digest"], a.digest);
    assert_eq!(json["process_types"][1]["name"], "worker");
    assert_eq!(json["health_check"], "/healthz");
    assert_eq!(json["build_kind"], "none");
    assert_eq!(json["dozen_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        json["run_env"],
        serde_json::json!({"path": [], "defaults": {"PYTHONUNBUFFERED": "1"}, "profile": []})
    );
    assert_eq!(
        a.manifest_json(),
        fs::read_to_string(&a.manifest_path).expect("manifest text")
    );
    assert_eq!(a.size, a.manifest.size);
    let reopened = dozen_build::Slug::open(&slugs, &a.digest).expect("open");
    assert_eq!(reopened, a);
    let names: Vec<_> = fs::read_dir(&slugs)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");

    // A manifest written before slugs recorded a run environment still opens, with none.
    let mut old = json.clone();
    old.as_object_mut().expect("object").remove("run_env");
    fs::write(&a.manifest_path, old.to_string()).expect("write old manifest");
    let reopened = dozen_build::Slug::open(&slugs, &a.digest).expect("open old manifest");
    assert!(reopened.manifest.run_env.is_empty());
    assert_eq!(reopened.digest, a.digest);
}

#[test]
fn slug_extracts_to_the_same_tree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("tree");
    sample_tree(&tree);
    let slug = pack_slug(&tree, &tmp.path().join("slugs"), meta()).expect("pack");
    let release = tmp.path().join("releases/v1");
    let stats = extract_slug(&slug.path, &release).expect("extract");
    assert_eq!(stats.files, 4);
    assert_eq!(stats.symlinks, 1);
    assert_eq!(
        fs::read_to_string(release.join("Procfile")).expect("read"),
        "web: ./bin/web\nworker: ./bin/work\n"
    );
    assert_eq!(
        fs::read_to_string(release.join("bin/data")).expect("read"),
        "data\n"
    );
    let mode = fs::metadata(release.join("bin/web"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(!release.join(".git").exists());
}

#[test]
fn slug_with_wrong_digest_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("tree");
    sample_tree(&tree);
    let slug = pack_slug(&tree, &tmp.path().join("slugs"), meta()).expect("pack");

    // Valid content under another digest.
    let other = tmp.path().join(format!("{}.tar.zst", "0".repeat(64)));
    fs::copy(&slug.path, &other).expect("copy");
    let dest = tmp.path().join("r1");
    let e = extract_slug(&other, &dest).expect_err("mismatch");
    assert!(matches!(e, BuildError::DigestMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains(&slug.digest), "{e}");
    assert!(!dest.exists());

    // The right name, corrupted content.
    let mut bytes = fs::read(&slug.path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&slug.path, &bytes).expect("write");
    let dest = tmp.path().join("r2");
    let e = extract_slug(&slug.path, &dest).expect_err("corrupt");
    assert!(matches!(e, BuildError::DigestMismatch { .. }), "{e:?}");
    assert!(!dest.exists());

    // Appended bytes (past the archive's end) change the digest as well.
    let good = pack_slug(&tree, &tmp.path().join("slugs"), meta()).expect("repack");
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&good.path)
        .expect("open");
    f.write_all(b"trailing").expect("append");
    let dest = tmp.path().join("r3");
    let e = extract_slug(&good.path, &dest).expect_err("trailing");
    assert!(matches!(e, BuildError::DigestMismatch { .. }), "{e:?}");
    assert!(!dest.exists());
}

#[test]
fn damaged_archives_are_errors_not_panics() {
    // A valid archive with a long (GNU) name, a link and an executable, then damaged byte by
    // byte in the tar stream itself (so the damage reaches the tar parser, past zstd).
    let mut tar = tar::Builder::new(Vec::new());
    let long = format!("{}/file.txt", "deep/".repeat(30));
    for (path, data) in [("Procfile", &b"web: ./run\n"[..]), (&long[..], b"long")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        tar.append_data(&mut h, path, data).expect("append");
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    tar.append_link(&mut h, "link", "Procfile").expect("link");
    let clean = tar.into_inner().expect("tar");

    let tmp = tempfile::tempdir().expect("tempdir");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut ok, mut refused) = (0, 0);
    for i in 0..300 {
        let mut damaged = clean.clone();
        for _ in 0..(1 + next() % 4) {
            let at = (next() % damaged.len() as u64) as usize;
            damaged[at] = (next() & 0xff) as u8;
        }
        let zst = zstd::encode_all(damaged.as_slice(), 1).expect("zstd");
        let dest = tmp.path().join(format!("d{i}"));
        match unpack_source(zst.as_slice(), &dest, &Limits::default()) {
            Ok(_) => ok += 1,
            Err(_) => {
                refused += 1;
                assert!(!dest.exists());
            }
        }
    }
    assert!(refused > 0 && ok > 0, "ok {ok}, refused {refused}");
}
