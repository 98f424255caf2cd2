//! Slugs: the immutable, content-addressed result of a build, and the way back out of one.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use dozen_core::RunEnv;
use serde::{Deserialize, Serialize};

use crate::archive::{self, Item, Limits, UnpackStats};
use crate::error::BuildError;
use crate::source;

/// The version of dozen that packs slugs, recorded in each manifest.
pub const DOZEN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a slug's manifest says besides what packing measures: filled in from a build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlugMeta {
    /// The Procfile's process types, `(name, command)`, in Procfile order.
    pub process_types: Vec<(String, String)>,
    /// The web health check path from `dozen.toml`.
    pub health_check: Option<String>,
    /// The web boot timeout in seconds from `dozen.toml`.
    pub boot_timeout: Option<u64>,
    /// [`BuildPlan::kind`](crate::BuildPlan::kind): `declared`, `rust`, `python`, ...
    pub build_kind: String,
    /// What the processes need in their environment besides config
    /// ([`run_env_of`](crate::run_env_of) of the built tree).
    pub run_env: RunEnv,
    /// `app.json`: the first release's formation, and the command run after the first deploy.
    pub app_json: AppJsonMeta,
    /// Process sizes declared by `dozen.toml` (`[sizes]`) or `app.json`: type -> size name.
    pub sizes: BTreeMap<String, String>,
}

/// What `app.json` says about the app's first deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppJsonMeta {
    /// `formation`: process type -> quantity, for the app's first release.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub formation: BTreeMap<String, u32>,
    /// `scripts.postdeploy`: run once after the app's first successful deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postdeploy: Option<String>,
}

/// One process type in a slug manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestProcessType {
    /// Its name, such as `web`.
    pub name: String,
    /// Its command line from the Procfile.
    pub command: String,
}

/// The `<digest>.json` written beside each slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlugManifest {
    /// blake3 of the `tar.zst` file's bytes, 64 lowercase hex digits; also its file name.
    pub digest: String,
    /// Size of the `tar.zst` file in bytes.
    pub size: u64,
    /// Regular files in the slug.
    pub files: u64,
    /// Bytes of file content, uncompressed.
    pub content_bytes: u64,
    /// Process types in Procfile order.
    pub process_types: Vec<ManifestProcessType>,
    /// The web health check path, if declared.
    pub health_check: Option<String>,
    /// The web boot timeout in seconds, if declared.
    pub boot_timeout: Option<u64>,
    /// What the build took the app for.
    pub build_kind: String,
    /// What the slug's processes need in their environment besides config: directories put
    /// in front of `PATH`, default variables, the app's profile scripts. Written as
    /// `{"path": [..], "defaults": {..}, "profile": [..]}`; empty when a manifest written
    /// before dozen recorded it has none.
    #[serde(default, with = "crate::run_env")]
    pub run_env: RunEnv,
    /// What `app.json` says about the first deploy (empty when it says nothing).
    #[serde(default, flatten)]
    pub app_json: AppJsonMeta,
    /// Process sizes the app declares (`dozen.toml` `[sizes]`, `app.json`): type -> size.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sizes: BTreeMap<String, String>,
    /// The dozen version that packed it.
    pub dozen_version: String,
}

/// A slug on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug {
    /// blake3 of the `tar.zst` file, 64 lowercase hex digits (the same as `manifest.digest`).
    pub digest: String,
    /// Size of the `tar.zst` file in bytes (the same as `manifest.size`).
    pub size: u64,
    /// `<slugs_dir>/<digest>.tar.zst`.
    pub path: PathBuf,
    /// `<slugs_dir>/<digest>.json`.
    pub manifest_path: PathBuf,
    /// What the manifest says.
    pub manifest: SlugManifest,
}

impl Slug {
    /// The manifest as the JSON text of `<digest>.json`.
    pub fn manifest_json(&self) -> String {
        manifest_text(&self.manifest)
    }

    /// Read the slug named `digest` and its manifest from `slugs_dir`.
    pub fn open(slugs_dir: &Path, digest: &str) -> Result<Slug, BuildError> {
        let path = slugs_dir.join(format!("{digest}.tar.zst"));
        let manifest_path = slugs_dir.join(format!("{digest}.json"));
        let text =
            fs::read_to_string(&manifest_path).map_err(|e| BuildError::io(&manifest_path, e))?;
        let manifest: SlugManifest =
            serde_json::from_str(&text).map_err(|e| BuildError::Manifest {
                file: manifest_path.clone(),
                line: Some(e.line()),
                message: e.to_string(),
            })?;
        if !path.is_file() {
            return Err(BuildError::io(
                &path,
                io::Error::new(io::ErrorKind::NotFound, "slug file missing"),
            ));
        }
        Ok(Slug {
            digest: manifest.digest.clone(),
            size: manifest.size,
            path,
            manifest_path,
            manifest,
        })
    }
}

fn manifest_text(manifest: &SlugManifest) -> String {
    let mut text = serde_json::to_string_pretty(manifest)
        .expect("a SlugManifest holds only strings and integers, which always serialize");
    text.push('\n');
    text
}

/// Pack the built tree `built_dir` into `slugs_dir` as `<blake3 hex>.tar.zst` plus
/// `<blake3 hex>.json` (a [`SlugManifest`]).
///
/// The archive is deterministic (entries sorted by path, mtime 0, uid/gid 0, modes 0644 or
/// 0755, links kept as links, no `.git` or `.dozen` directories, sockets and FIFOs left out),
/// so the same tree always gives the same digest. Both files are written to temporary files in
/// `slugs_dir` and renamed into place, so a reader never sees half a slug; packing a tree whose
/// slug already exists replaces it with identical bytes.
pub fn pack_slug(built_dir: &Path, slugs_dir: &Path, meta: SlugMeta) -> Result<Slug, BuildError> {
    fs::create_dir_all(slugs_dir).map_err(|e| BuildError::io(slugs_dir, e))?;
    let mut items = BTreeMap::new();
    let mut skipped = Vec::new();
    source::walk(built_dir, built_dir, &None, &mut items, &mut skipped)?;
    let files = items
        .values()
        .filter(|i| matches!(i, Item::File { .. }))
        .count() as u64;

    let tmp = tempfile::Builder::new()
        .prefix(".slug-")
        .suffix(".partial")
        .tempfile_in(slugs_dir)
        .map_err(|e| BuildError::io(slugs_dir, e))?;
    let writer = HashingWriter {
        inner: io::BufWriter::new(tmp),
        hasher: blake3::Hasher::new(),
        size: 0,
    };
    let (writer, content_bytes) = archive::write_tar_zst(&items, writer)?;
    let HashingWriter {
        inner,
        hasher,
        size,
    } = writer;
    let tmp = inner
        .into_inner()
        .map_err(|e| BuildError::io(slugs_dir, e.into_error()))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| BuildError::io(tmp.path(), e))?;
    let digest = hasher.finalize().to_hex().to_string();

    let path = slugs_dir.join(format!("{digest}.tar.zst"));
    let manifest_path = slugs_dir.join(format!("{digest}.json"));
    tmp.persist(&path)
        .map_err(|e| BuildError::io(&path, e.error))?;

    let manifest = SlugManifest {
        digest,
        size,
        files,
        content_bytes,
        process_types: meta
            .process_types
            .into_iter()
            .map(|(name, command)| ManifestProcessType { name, command })
            .collect(),
        health_check: meta.health_check,
        boot_timeout: meta.boot_timeout,
        build_kind: meta.build_kind,
        run_env: meta.run_env,
        app_json: meta.app_json,
        sizes: meta.sizes,
        dozen_version: DOZEN_VERSION.to_string(),
    };
    let json = manifest_text(&manifest);
    let mut tmp = tempfile::Builder::new()
        .prefix(".slug-")
        .suffix(".json.partial")
        .tempfile_in(slugs_dir)
        .map_err(|e| BuildError::io(slugs_dir, e))?;
    tmp.write_all(json.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| BuildError::io(tmp.path(), e))?;
    tmp.persist(&manifest_path)
        .map_err(|e| BuildError::io(&manifest_path, e.error))?;

    Ok(Slug {
        digest: manifest.digest.clone(),
        size: manifest.size,
        path,
        manifest_path,
        manifest,
    })
}

/// Extract the slug at `slug_path` (named `<digest>.tar.zst`) into `dest`, which must not
/// exist yet: the fresh directory a release runs from.
///
/// The file's blake3 digest is computed while it is read and compared with its name before
/// `dest` appears; a mismatch is [`BuildError::DigestMismatch`] and leaves nothing behind. The
/// same safety rules as [`unpack_source`](crate::unpack_source) apply (no absolute paths, no
/// `..`, no links out of the tree, no special files), with [`Limits::SLUG`].
pub fn extract_slug(slug_path: &Path, dest: &Path) -> Result<UnpackStats, BuildError> {
    let expected = digest_from_name(slug_path)?;
    let file = fs::File::open(slug_path).map_err(|e| BuildError::io(slug_path, e))?;
    // A second handle on the same open file (it shares the offset): after a failure part-way,
    // the rest is read from it so the digest can still be told.
    let rest = file.try_clone().map_err(|e| BuildError::io(slug_path, e))?;
    let hasher = Arc::new(Mutex::new(blake3::Hasher::new()));
    let reader = HashingReader {
        inner: file,
        hasher: hasher.clone(),
    };
    let finish = |hasher: &Mutex<blake3::Hasher>| {
        hasher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finalize()
            .to_hex()
            .to_string()
    };
    let mismatch = |actual: String| BuildError::DigestMismatch {
        path: slug_path.into(),
        expected: expected.clone(),
        actual,
    };
    let result = archive::extract(reader, dest, &Limits::SLUG, |mut reader| {
        io::copy(&mut reader, &mut io::sink()).map_err(|e| BuildError::io(slug_path, e))?;
        let actual = finish(&hasher);
        if actual == expected {
            Ok(())
        } else {
            Err(mismatch(actual))
        }
    });
    match result {
        Err(BuildError::DigestMismatch { .. }) | Ok(_) => result,
        Err(other) => {
            // A corrupt slug usually fails to decode before its end: say that it is corrupt
            // rather than how the corruption happened to show.
            let mut rest = HashingReader {
                inner: rest,
                hasher: hasher.clone(),
            };
            if io::copy(&mut rest, &mut io::sink()).is_ok() {
                let actual = finish(&hasher);
                if actual != expected {
                    return Err(mismatch(actual));
                }
            }
            Err(other)
        }
    }
}

fn digest_from_name(slug_path: &Path) -> Result<String, BuildError> {
    let name = slug_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match name.strip_suffix(".tar.zst") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(hex.to_ascii_lowercase())
        }
        _ => Err(BuildError::io(
            slug_path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a slug file is named <blake3 hex digest>.tar.zst",
            ),
        )),
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Arc<Mutex<blake3::Hasher>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(&buf[..n]);
        Ok(n)
    }
}
