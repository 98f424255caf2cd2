//! An OCI image from a slug: the stack image's layers, plus one layer holding the slug at
//! `/app`, written as an [OCI image layout] (`oci-layout`, `index.json`, `blobs/sha256/…`)
//! that `skopeo copy oci:DIR docker://REGISTRY/NAME:TAG` (or podman, crane, …) pushes.
//!
//! The stack is itself an OCI image layout, such as the one
//! `skopeo copy docker://debian:bookworm-slim oci:stack:latest` writes. Its layers are copied
//! as they are (each one's digest checked); its config is kept, with these changes:
//! `WorkingDir` is the app directory, `User` is a numeric non-root user, `Entrypoint` is
//! removed, `Cmd` is the web process (when given), `Env` gets `HOME=/tmp` (writable under a
//! read-only root filesystem) and `LANG=C.UTF-8`, the slug's run environment
//! ([`ImageOptions::run_env`]: its directories in front of the stack's `PATH`, its defaults
//! where the stack sets none, so they stay defaults that `docker run -e` or a pod's config
//! override), the labels are added, and the new layer is appended to `rootfs.diff_ids` and
//! `history`.
//!
//! **No config var goes into the image** (factor III): the image is the same for every
//! release made from the slug, and the config comes from the release's Secret at run time.
//!
//! The new layer is a deterministic tar (entries in the slug's sorted order under `app/`,
//! mtime 0, owner root, modes 0644/0755, so the app cannot change its own code) compressed
//! with gzip, the layer compression every container runtime accepts; the same slug on the
//! same stack always gives the same image digest.
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use dozen_core::RunEnv;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `PATH` when the stack's config has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

use crate::error::ExportError;

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of the slug layer.
pub const GZIP_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation naming an image in a layout's `index.json` (the `:TAG` of `oci:DIR:TAG`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const LAYER_MEDIA_TYPES: [&str; 3] = [
    "application/vnd.oci.image.layer.v1.tar",
    GZIP_LAYER_MEDIA_TYPE,
    "application/vnd.oci.image.layer.v1.tar+zstd",
];

/// What the image is built from and how it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOptions {
    /// The stack image: an OCI image layout directory.
    pub stack: PathBuf,
    /// Which image of the stack layout (its `org.opencontainers.image.ref.name`, the `TAG` of
    /// `oci:DIR:TAG`); `None` when the layout holds exactly one.
    pub stack_ref: Option<String>,
    /// The numeric user and group processes run as; never 0.
    pub user: u32,
    /// Where the slug goes, and the working directory.
    pub workdir: String,
    /// Image labels (`org.opencontainers.image.*`, `dev.dozen.*`). Never put a config value
    /// here.
    pub labels: BTreeMap<String, String>,
    /// The default command (`Cmd`), usually the web process as `["/bin/sh", "-c", …]`.
    pub cmd: Option<Vec<String>>,
    /// The name of the image in the output layout's `index.json` (`oci:OUT:REF`).
    pub ref_name: String,
    /// The slug's run environment: its `PATH` entries (under [`workdir`](Self::workdir)) and
    /// defaults go into `Env`. (Its profile scripts belong in [`cmd`](Self::cmd), through
    /// [`RunEnv::profile_line`].)
    pub run_env: RunEnv,
}

impl ImageOptions {
    /// Options with user 10001, workdir `/app`, no labels, no command, ref name `latest`.
    pub fn new(stack: impl Into<PathBuf>) -> Self {
        ImageOptions {
            stack: stack.into(),
            stack_ref: None,
            user: 10001,
            workdir: "/app".into(),
            labels: BTreeMap::new(),
            cmd: None,
            ref_name: "latest".into(),
            run_env: RunEnv::default(),
        }
    }
}

/// The image written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:…` of the manifest: the image's digest once pushed.
    pub manifest_digest: String,
    /// `sha256:…` of the config.
    pub config_digest: String,
    /// `sha256:…` of the compressed slug layer.
    pub layer_digest: String,
    /// Size of the compressed slug layer in bytes.
    pub layer_size: u64,
    /// `sha256:…` of the uncompressed slug layer (its diff id).
    pub layer_diff_id: String,
    /// Files, directories and links in the slug layer.
    pub layer_entries: u64,
}

/// Build the image of the slug `slug_tar_zst` (a dozen slug, `tar.zst`) on `opts.stack` into
/// the new OCI image layout directory `out`.
///
/// `out` must not exist or be an empty directory. The layout is written beside it and renamed
/// into place, so `out` is either complete or absent.
pub fn build_image(
    slug_tar_zst: &Path,
    opts: &ImageOptions,
    out: &Path,
) -> Result<Image, ExportError> {
    check_options(opts)?;
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ExportError::Output {
                    path: out.into(),
                    reason: "the directory exists and is not empty; remove it or choose another"
                        .into(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ExportError::io(out, e)),
    }
    let stack = Stack::open(&opts.stack, opts.stack_ref.as_deref())?;

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| ExportError::io(&parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".oci-image.partial-")
        .tempdir_in(&parent)
        .map_err(|e| ExportError::io(&parent, e))?;
    let blobs = tmp.path().join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| ExportError::io(&blobs, e))?;

    for layer in &stack.layers {
        copy_blob(&opts.stack, layer, &blobs)?;
    }
    let layer = write_slug_layer(slug_tar_zst, &opts.workdir, &blobs)?;

    let mut config = stack.config.clone();
    edit_config(&mut config, opts, &layer);
    let config_bytes = to_json_bytes(&config);
    let config_digest = write_blob(&blobs, &config_bytes)?;

    let mut layers: Vec<Value> = stack.layers.clone();
    layers.push(json!({
        "mediaType": GZIP_LAYER_MEDIA_TYPE,
        "digest": layer.digest,
        "size": layer.size,
    }));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": layers,
    });
    let manifest_bytes = to_json_bytes(&manifest);
    let manifest_digest = write_blob(&blobs, &manifest_bytes)?;

    let mut platform = json!({
        "architecture": config["architecture"].as_str().unwrap_or("amd64"),
        "os": config["os"].as_str().unwrap_or("linux"),
    });
    if let Some(variant) = config["variant"].as_str() {
        platform["variant"] = json!(variant);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {REF_NAME: opts.ref_name},
            "platform": platform,
        }],
    });
    write_file(&tmp.path().join("index.json"), &to_json_bytes(&index))?;
    write_file(
        &tmp.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(|e| ExportError::io(tmp.path(), e))?;
    if out.exists() {
        fs::remove_dir(out).map_err(|e| ExportError::io(out, e))?;
    }
    fs::rename(tmp.path(), out).map_err(|e| ExportError::io(out, e))?;
    let _ = tmp.keep();
    Ok(Image {
        manifest_digest,
        config_digest,
        layer_digest: layer.digest,
        layer_size: layer.size,
        layer_diff_id: layer.diff_id,
        layer_entries: layer.entries,
    })
}

fn check_options(opts: &ImageOptions) -> Result<(), ExportError> {
    if opts.user == 0 {
        return Err(ExportError::option(
            "user",
            "the image must run as a numeric user other than root (0)",
        ));
    }
    let workdir = Path::new(&opts.workdir);
    let plain = workdir.is_absolute()
        && workdir.components().count() > 1
        && workdir
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain {
        return Err(ExportError::option(
            "workdir",
            format!(
                "`{}` must be an absolute path below / without `..`",
                opts.workdir
            ),
        ));
    }
    let ref_ok = !opts.ref_name.is_empty()
        && opts
            .ref_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
    if !ref_ok {
        return Err(ExportError::option(
            format!("image name `{}`", opts.ref_name),
            "use letters, digits, `.`, `_`, `-`, `:` and `/`",
        ));
    }
    Ok(())
}

/// The stack image: its config and its layer descriptors.
struct Stack {
    config: Value,
    layers: Vec<Value>,
}

impl Stack {
    fn open(dir: &Path, reference: Option<&str>) -> Result<Stack, ExportError> {
        let layout_file = dir.join("oci-layout");
        let layout = read_json(
            &layout_file,
            "is not an OCI image layout (make one with `skopeo copy docker://debian:bookworm-slim oci:DIR:latest`)",
        )?;
        if layout["imageLayoutVersion"] != "1.0.0" {
            return Err(ExportError::image(
                &layout_file,
                "imageLayoutVersion is not 1.0.0",
            ));
        }
        let index_file = dir.join("index.json");
        let index = read_json(&index_file, "is missing or not JSON")?;
        let entries = index["manifests"].as_array().cloned().unwrap_or_default();
        let chosen = match reference {
            Some(r) => entries
                .iter()
                .find(|m| m["annotations"][REF_NAME] == r)
                .ok_or_else(|| {
                    ExportError::image(
                        &index_file,
                        format!("no image named `{r}`; it has: {}", ref_names(&entries)),
                    )
                })?,
            None => match entries.as_slice() {
                [one] => one,
                [] => return Err(ExportError::image(&index_file, "holds no image")),
                _ => {
                    return Err(ExportError::image(
                        &index_file,
                        format!(
                            "holds several images; name one as DIR:NAME ({})",
                            ref_names(&entries)
                        ),
                    ));
                }
            },
        };
        let mut descriptor = chosen.clone();
        // An index (a multi-platform image): take this machine's platform.
        for _ in 0..4 {
            if descriptor["mediaType"] != INDEX_MEDIA_TYPE {
                break;
            }
            let nested = read_blob_json(dir, &descriptor)?;
            let arch = host_architecture();
            descriptor = nested["manifests"]
                .as_array()
                .and_then(|list| {
                    list.iter().find(|m| {
                        m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch
                    })
                })
                .cloned()
                .ok_or_else(|| {
                    ExportError::image(dir, format!("the stack image has no linux/{arch} variant"))
                })?;
        }
        if descriptor["mediaType"] != MANIFEST_MEDIA_TYPE {
            return Err(ExportError::image(
                dir,
                format!(
                    "the stack's manifest has media type {}; an OCI image manifest is needed (skopeo writes one with `oci:`)",
                    descriptor["mediaType"]
                ),
            ));
        }
        let manifest = read_blob_json(dir, &descriptor)?;
        let config = read_blob_json(dir, &manifest["config"])?;
        if !config.is_object() {
            return Err(ExportError::image(
                dir,
                "the stack's image config is not an object",
            ));
        }
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        for l in &layers {
            let media = l["mediaType"].as_str().unwrap_or_default();
            if !LAYER_MEDIA_TYPES.contains(&media) {
                return Err(ExportError::image(
                    dir,
                    format!(
                        "the stack has a layer of media type `{media}`, which is not an OCI layer"
                    ),
                ));
            }
        }
        Ok(Stack { config, layers })
    }
}

fn ref_names(entries: &[Value]) -> String {
    let names: Vec<&str> = entries
        .iter()
        .filter_map(|m| m["annotations"][REF_NAME].as_str())
        .collect();
    if names.is_empty() {
        "no names".into()
    } else {
        names.join(", ")
    }
}

fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn read_json(path: &Path, what: &str) -> Result<Value, ExportError> {
    let bytes = fs::read(path).map_err(|_| ExportError::image(path, what))?;
    serde_json::from_slice(&bytes).map_err(|e| ExportError::image(path, format!("{what}: {e}")))
}

/// The path of a descriptor's blob, after checking the digest's form.
fn blob_path(layout: &Path, descriptor: &Value) -> Result<(PathBuf, String), ExportError> {
    let digest = descriptor["digest"].as_str().unwrap_or_default();
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ExportError::image(
            layout,
            format!("descriptor digest `{digest}` is not sha256:<64 hex digits>"),
        ));
    }
    Ok((
        layout.join("blobs").join("sha256").join(hex),
        digest.to_string(),
    ))
}

fn read_blob_json(layout: &Path, descriptor: &Value) -> Result<Value, ExportError> {
    let (path, digest) = blob_path(layout, descriptor)?;
    let bytes = fs::read(&path).map_err(|e| ExportError::io(&path, e))?;
    let actual = format!("sha256:{:x}", Sha256::digest(&bytes));
    if actual != digest {
        return Err(ExportError::image(
            &path,
            format!("the blob's digest is {actual}, not {digest}: the layout is corrupt"),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| ExportError::image(&path, format!("not JSON: {e}")))
}

/// Copy a stack layer into `blobs`, checking its digest and size on the way.
fn copy_blob(layout: &Path, descriptor: &Value, blobs: &Path) -> Result<(), ExportError> {
    let (from, digest) = blob_path(layout, descriptor)?;
    let file = fs::File::open(&from).map_err(|e| ExportError::io(&from, e))?;
    let to = blobs.join(&digest["sha256:".len()..]);
    let mut out = fs::File::create(&to).map_err(|e| ExportError::io(&to, e))?;
    let mut hashing = Hashing::new(&mut out);
    io::copy(&mut io::BufReader::new(file), &mut hashing).map_err(|e| ExportError::io(&from, e))?;
    let (actual, size) = hashing.finish();
    if actual != digest {
        return Err(ExportError::image(
            &from,
            format!("the layer's digest is {actual}, not {digest}: the layout is corrupt"),
        ));
    }
    if descriptor["size"].as_u64().is_some_and(|s| s != size) {
        return Err(ExportError::image(
            &from,
            format!(
                "the layer has {size} bytes, not the {} its descriptor says",
                descriptor["size"]
            ),
        ));
    }
    out.sync_all().map_err(|e| ExportError::io(&to, e))
}

/// Write `bytes` as a blob; returns its `sha256:` digest.
fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<String, ExportError> {
    let hex = format!("{:x}", Sha256::digest(bytes));
    write_file(&blobs.join(&hex), bytes)?;
    Ok(format!("sha256:{hex}"))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let mut f = fs::File::create(path).map_err(|e| ExportError::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| ExportError::io(path, e))
}

fn to_json_bytes(v: &Value) -> Vec<u8> {
    // serde_json's maps are sorted by key here (no `preserve_order`): stable bytes.
    serde_json::to_vec(v).expect("a JSON value always serializes")
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The `sha256:` digest and byte count so far.
    fn finish(self) -> (String, u64) {
        let (_, digest, size) = self.into_parts();
        (digest, size)
    }

    /// The writer, the `sha256:` digest and the byte count.
    fn into_parts(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{:x}", self.hasher.finalize()),
            self.size,
        )
    }
}

impl<W: Write> Write for Hashing<W> {
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

struct Layer {
    digest: String,
    size: u64,
    diff_id: String,
    entries: u64,
}

/// Re-pack the slug's entries under `workdir` (without its leading `/`) as a gzip layer in
/// `blobs`.
fn write_slug_layer(slug: &Path, workdir: &str, blobs: &Path) -> Result<Layer, ExportError> {
    let prefix = workdir.trim_start_matches('/').trim_end_matches('/');
    let file = fs::File::open(slug).map_err(|e| ExportError::io(slug, e))?;
    let decoder = zstd::Decoder::new(file)
        .map_err(|e| ExportError::image(slug, format!("not a zstd slug: {e}")))?;
    let mut archive = tar::Archive::new(decoder);

    let mut tmp = tempfile::Builder::new()
        .prefix(".layer-")
        .tempfile_in(blobs)
        .map_err(|e| ExportError::io(blobs, e))?;
    let compressed = Hashing::new(io::BufWriter::new(tmp.as_file_mut()));
    let gzip = flate2::write::GzEncoder::new(compressed, flate2::Compression::new(6));
    let mut builder = tar::Builder::new(Hashing::new(gzip));

    let bad = |reason: String| ExportError::image(slug, reason);
    let mut entries = 0u64;
    // The directories above the app, then the app directory itself.
    let mut above = PathBuf::new();
    for part in Path::new(prefix).components() {
        above.push(part);
        append_dir(&mut builder, &above).map_err(|e| ExportError::io(slug, e))?;
        entries += 1;
    }
    let iter = archive
        .entries()
        .map_err(|e| bad(format!("cannot read the slug: {e}")))?;
    for entry in iter {
        let mut entry = entry.map_err(|e| bad(format!("cannot read the slug: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("an entry has an unreadable path: {e}")))?
            .into_owned();
        let inside = path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(bad(format!(
                "entry `{}` is not a plain relative path",
                path.display()
            )));
        }
        let relative: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = Path::new(prefix).join(&relative);
        let kind = entry.header().entry_type();
        let mode = if entry.header().mode().unwrap_or(0o644) & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let result = match kind {
            tar::EntryType::Directory => append_dir(&mut builder, &target),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode);
                header.set_size(entry.size());
                builder.append_data(&mut header, &target, &mut entry)
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad(format!("`{}`: unreadable link: {e}", path.display())))?
                    .ok_or_else(|| bad(format!("`{}`: a link without a target", path.display())))?
                    .into_owned();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, &target, &link)
            }
            other => {
                return Err(bad(format!(
                    "entry `{}` is a {other:?}; a slug holds only files, directories and symbolic links",
                    path.display()
                )));
            }
        };
        result.map_err(|e| ExportError::io(slug, e))?;
        entries += 1;
    }
    let (gzip, diff_id, _) = builder
        .into_inner()
        .map_err(|e| ExportError::io(blobs, e))?
        .into_parts();
    let (buffered, digest, size) = gzip
        .finish()
        .map_err(|e| ExportError::io(blobs, e))?
        .into_parts();
    buffered
        .into_inner()
        .map_err(|e| ExportError::io(blobs, e.into_error()))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ExportError::io(tmp.path(), e))?;
    let final_path = blobs.join(&digest["sha256:".len()..]);
    tmp.persist(&final_path)
        .map_err(|e| ExportError::io(&final_path, e.error))?;
    Ok(Layer {
        digest,
        size,
        diff_id,
        entries,
    })
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &Path) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    let mut name = path.as_os_str().to_owned();
    name.push("/");
    builder.append_data(&mut header, PathBuf::from(name), io::empty())
}

/// The stack's config, changed as the module docs say.
fn edit_config(config: &mut Value, opts: &ImageOptions, layer: &Layer) {
    let c = &mut config["config"];
    if !c.is_object() {
        *c = json!({});
    }
    let mut env: Vec<String> = c["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    env.retain(|e| !e.starts_with("HOME=") && !e.starts_with("LANG="));
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    env.push("HOME=/tmp".into());
    env.push("LANG=C.UTF-8".into());
    let mut pairs: Vec<(String, String)> = env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect();
    opts.run_env
        .apply(Path::new(&opts.workdir), &mut pairs, DEFAULT_PATH);
    let env: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    c["Env"] = json!(env);
    c["WorkingDir"] = json!(opts.workdir);
    c["User"] = json!(format!("{0}:{0}", opts.user));
    if let Some(obj) = c.as_object_mut() {
        obj.remove("Entrypoint");
    }
    match &opts.cmd {
        Some(cmd) => c["Cmd"] = json!(cmd),
        None => {
            if let Some(obj) = c.as_object_mut() {
                obj.remove("Cmd");
            }
        }
    }
    if !opts.labels.is_empty() {
        if !c["Labels"].is_object() {
            c["Labels"] = json!({});
        }
        for (k, v) in &opts.labels {
            c["Labels"][k] = json!(v);
        }
    }
    if !config["rootfs"].is_object() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    match config["rootfs"]["diff_ids"].as_array_mut() {
        Some(ids) => ids.push(json!(layer.diff_id)),
        None => config["rootfs"]["diff_ids"] = json!([layer.diff_id]),
    }
    let entry = json!({
        "created_by": format!("dozen build --oci: the slug at {}", opts.workdir),
        "comment": "dozen",
    });
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = json!([entry]),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A slug with a file, an executable, a directory and a link, as dozen packs one.
    fn slug(dir: &Path) -> PathBuf {
        let path = dir.join("slug.tar.zst");
        let file = fs::File::create(&path).expect("create");
        let enc = zstd::Encoder::new(file, 3).expect("zstd");
        let mut b = tar::Builder::new(enc);
        let mut add =
            |name: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(kind);
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                match link {
                    Some(l) => b.append_link(&mut h, name, l).expect("link"),
                    None => b.append_data(&mut h, name, data).expect("data"),
                }
            };
        add(
            "Procfile",
            tar::EntryType::Regular,
            0o644,
            b"web: ./serve\n",
            None,
        );
        add("bin/", tar::EntryType::Directory, 0o755, b"", None);
        add(
            "bin/serve",
            tar::EntryType::Regular,
            0o755,
            b"#!/bin/sh\n",
            None,
        );
        add(
            "serve",
            tar::EntryType::Symlink,
            0o777,
            b"",
            Some("bin/serve"),
        );
        b.into_inner().expect("tar").finish().expect("zstd");
        path
    }

    /// A stack layout with one gzip layer holding `etc/os-release`.
    fn stack(dir: &Path) -> PathBuf {
        let layout = dir.join("stack");
        let blobs = layout.join("blobs/sha256");
        fs::create_dir_all(&blobs).expect("mkdir");
        let mut tar_bytes = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tar_bytes);
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(3);
            b.append_data(&mut h, "etc/os-release", &b"x=1"[..])
                .expect("append");
            b.finish().expect("finish");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_bytes).expect("gzip");
        let layer = gz.finish().expect("gzip");
        let layer_digest = write_blob(&blobs, &layer).expect("blob");
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin", "HOME=/root"], "Cmd": ["bash"], "Entrypoint": ["/x"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{:x}", Sha256::digest(&tar_bytes))]},
            "history": [{"created_by": "stack"}],
        });
        let config_bytes = to_json_bytes(&config);
        let config_digest = write_blob(&blobs, &config_bytes).expect("blob");
        let manifest = json!({
            "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_bytes.len()},
            "layers": [{"mediaType": GZIP_LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer.len()}],
        });
        let manifest_bytes = to_json_bytes(&manifest);
        let manifest_digest = write_blob(&blobs, &manifest_bytes).expect("blob");
        let index = json!({"schemaVersion": 2, "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE, "digest": manifest_digest, "size": manifest_bytes.len(),
            "annotations": {REF_NAME: "bookworm"},
        }]});
        fs::write(layout.join("index.json"), to_json_bytes(&index)).expect("write");
        fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .expect("write");
        layout
    }

    fn read_blob(out: &Path, digest: &str) -> Vec<u8> {
        fs::read(out.join("blobs/sha256").join(&digest[7..])).expect("blob")
    }

    #[test]
    fn the_slug_lands_at_app_on_the_stack() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut opts = ImageOptions::new(stack(tmp.path()));
        opts.labels.insert("dev.dozen.app".into(), "shop".into());
        opts.cmd = Some(vec!["/bin/sh".into(), "-c".into(), "exec ./serve".into()]);
        opts.ref_name = "v3".into();
        let out = tmp.path().join("image");
        let image = build_image(&slug(tmp.path()), &opts, &out).expect("image");

        let index: Value =
            serde_json::from_slice(&fs::read(out.join("index.json")).expect("index"))
                .expect("json");
        assert_eq!(index["manifests"][0]["digest"], image.manifest_digest);
        assert_eq!(index["manifests"][0]["annotations"][REF_NAME], "v3");
        assert_eq!(
            index["manifests"][0]["platform"],
            json!({"architecture": "amd64", "os": "linux"})
        );
        let manifest: Value =
            serde_json::from_slice(&read_blob(&out, &image.manifest_digest)).expect("json");
        assert_eq!(manifest["layers"].as_array().expect("layers").len(), 2);
        assert_eq!(manifest["layers"][1]["digest"], image.layer_digest);
        let config: Value =
            serde_json::from_slice(&read_blob(&out, &image.config_digest)).expect("json");
        let c = &config["config"];
        assert_eq!(c["WorkingDir"], "/app");
        assert_eq!(c["User"], "10001:10001");
        assert_eq!(
            c["Env"],
            json!(["PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"])
        );
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "exec ./serve"]));
        assert!(c.get("Entrypoint").is_none());
        assert_eq!(c["Labels"]["dev.dozen.app"], "shop");
        assert_eq!(config["rootfs"]["diff_ids"][1], image.layer_diff_id);
        assert_eq!(config["history"].as_array().expect("history").len(), 2);

        // The layer: app/ first, then the slug under it, owned by root, mtime 0.
        let layer = read_blob(&out, &image.layer_digest);
        assert_eq!(
            format!("sha256:{:x}", Sha256::digest(&layer)),
            image.layer_digest
        );
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&layer[..])
            .read_to_end(&mut plain)
            .expect("gunzip");
        assert_eq!(
            format!("sha256:{:x}", Sha256::digest(&plain)),
            image.layer_diff_id
        );
        let mut archive = tar::Archive::new(&plain[..]);
        let mut seen = Vec::new();
        for e in archive.entries().expect("entries") {
            let e = e.expect("entry");
            let h = e.header();
            assert_eq!((h.uid().expect("uid"), h.mtime().expect("mtime")), (0, 0));
            seen.push((
                e.path().expect("path").display().to_string(),
                h.mode().expect("mode"),
            ));
        }
        assert_eq!(
            seen,
            [
                ("app/".to_string(), 0o755),
                ("app/Procfile".into(), 0o644),
                ("app/bin/".into(), 0o755),
                ("app/bin/serve".into(), 0o755),
                ("app/serve".into(), 0o777),
            ]
        );
        assert_eq!(image.layer_entries, 5);

        // Deterministic: the same inputs give the same digest.
        let again =
            build_image(&slug(tmp.path()), &opts, &tmp.path().join("image2")).expect("image");
        assert_eq!(again, image);
    }

    #[test]
    fn bad_stacks_and_outputs_are_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = slug(tmp.path());
        let e = build_image(
            &s,
            &ImageOptions::new(tmp.path().join("nope")),
            &tmp.path().join("o"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not an OCI image layout"), "{e}");
        let layout = stack(tmp.path());
        let mut opts = ImageOptions::new(&layout);
        opts.stack_ref = Some("sid".into());
        let e = build_image(&s, &opts, &tmp.path().join("o"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no image named `sid`; it has: bookworm"), "{e}");
        opts.stack_ref = Some("bookworm".into());
        // A corrupt layer blob is caught by its digest.
        let blobs = layout.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).expect("ls") {
            let p = entry.expect("entry").path();
            let bytes = fs::read(&p).expect("read");
            if bytes.starts_with(&[0x1f, 0x8b]) {
                fs::write(&p, [&bytes[..], b"x"].concat()).expect("write");
            }
        }
        let e = build_image(&s, &opts, &tmp.path().join("o"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("the layout is corrupt"), "{e}");
        assert!(!tmp.path().join("o").exists());
        opts.user = 0;
        assert!(build_image(&s, &opts, &tmp.path().join("o")).is_err());
        let full = tmp.path().join("full");
        fs::create_dir(&full).expect("mkdir");
        fs::write(full.join("x"), "").expect("write");
        let e = build_image(&s, &ImageOptions::new(stack(&tmp.path().join("b"))), &full)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not empty"), "{e}");
    }
}
