//! The image layout `dozen build --oci` writes is one that skopeo reads and copies: built from
//! a real slug (`dozen_build::pack_slug`) on a stack that skopeo itself wrote.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use dozen_export::oci::{ImageOptions, build_image};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn blob(dir: &Path, bytes: &[u8]) -> String {
    let hex = format!("{:x}", Sha256::digest(bytes));
    fs::write(dir.join("blobs/sha256").join(&hex), bytes).expect("write blob");
    format!("sha256:{hex}")
}

/// A minimal stack: one gzip layer with `/etc/passwd`, `/etc/group` and `/tmp`, as an OCI
/// layout written by hand, then copied by skopeo so the stack the test uses is skopeo's own.
fn stack(root: &Path) -> String {
    let raw = root.join("raw-stack");
    fs::create_dir_all(raw.join("blobs/sha256")).expect("mkdir");
    let mut tar_bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar_bytes);
        for (name, data) in [
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, data.as_bytes())
                .expect("append");
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o1777);
        h.set_size(0);
        b.append_data(&mut h, "tmp/", std::io::empty())
            .expect("append");
        b.finish().expect("tar");
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes).expect("gzip");
    let layer = gz.finish().expect("gzip");
    let layer_digest = blob(&raw, &layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{:x}", Sha256::digest(&tar_bytes))]},
        "history": [{"created_by": "test stack"}],
    }))
    .expect("json");
    let config_digest = blob(&raw, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    }))
    .expect("json");
    let manifest_digest = blob(&raw, &manifest);
    fs::write(
        raw.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "raw"},
        }]}))
        .expect("json"),
    )
    .expect("write");
    fs::write(raw.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
    let stack = root.join("stack");
    skopeo(&[
        "copy",
        &format!("oci:{}:raw", raw.display()),
        &format!("oci:{}:latest", stack.display()),
    ]);
    stack.display().to_string()
}

#[test]
fn skopeo_inspects_and_copies_the_image() {
    if dozen_testkit::tool("skopeo", "apt-get install skopeo").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = tmp.path().join("app");
    fs::create_dir_all(app.join("bin")).expect("mkdir");
    fs::write(app.join("Procfile"), "web: ./bin/serve\n").expect("write");
    fs::write(
        app.join("bin/serve"),
        "#!/bin/sh\nexec python3 -m http.server \"$PORT\"\n",
    )
    .expect("write");
    std::os::unix::fs::symlink("bin/serve", app.join("serve")).expect("symlink");
    let long = app.join("d".repeat(60)).join("e".repeat(60));
    fs::create_dir_all(&long).expect("mkdir");
    fs::write(long.join("f".repeat(60)), "a long path\n").expect("write");
    let slug =
        dozen_build::pack_slug(&app, &tmp.path().join("slugs"), Default::default()).expect("slug");

    let mut opts = ImageOptions::new(stack(tmp.path()));
    opts.stack_ref = Some("latest".into());
    opts.ref_name = "v1".into();
    opts.labels.insert("dev.dozen.app".into(), "shop".into());
    opts.labels
        .insert("dev.dozen.slug".into(), slug.digest.clone());
    opts.cmd = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        "exec ./bin/serve".into(),
    ]);
    let out = tmp.path().join("image");
    let image = build_image(&slug.path, &opts, &out).expect("image");

    let reference = format!("oci:{}:v1", out.display());
    let inspect: Value = serde_json::from_str(&skopeo(&["inspect", &reference])).expect("json");
    assert_eq!(inspect["Digest"], image.manifest_digest);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Labels"]["dev.dozen.app"], "shop");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(2));
    assert_eq!(inspect["Layers"][1], image.layer_digest);
    let config: Value =
        serde_json::from_str(&skopeo(&["inspect", "--config", &reference])).expect("json");
    assert_eq!(config["config"]["User"], "10001:10001");
    assert_eq!(config["config"]["WorkingDir"], "/app");
    assert_eq!(config["rootfs"]["diff_ids"][1], image.layer_diff_id);

    // Copied out (and so every blob read and checked by skopeo).
    let copy = tmp.path().join("copy");
    skopeo(&["copy", &reference, &format!("dir:{}", copy.display())]);
    assert!(copy.join("manifest.json").is_file());
    let layer = fs::read(copy.join(&image.layer_digest["sha256:".len()..])).expect("layer");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
    let names: Vec<String> = archive
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert!(names.contains(&"app/Procfile".to_string()), "{names:?}");
    assert!(names.contains(&"app/serve".to_string()), "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with(&"f".repeat(60))),
        "long paths survive: {names:?}"
    );
}
