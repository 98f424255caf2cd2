//! `dozen export kubernetes|systemd` and `dozen build --oci` end to end: the real binary, from a
//! Procfile on disk and from a real `dozen server` (SQLite).

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use sha2::Digest;
use support::*;

const TOKEN: &str = "dzn_export_test_token_0123456789";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

fn systemd_verify(dir: &Path) {
    let Some(analyze) = dozen_testkit::tool("systemd-analyze", "apt-get install systemd") else {
        return;
    };
    let mut units: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "service" || e == "target")
        })
        .collect();
    units.sort();
    let out = Command::new(analyze)
        .arg("verify")
        .args(&units)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .output()
        .expect("systemd-analyze");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "verify:\n{text}"
    );
}

#[test]
fn systemd_from_a_procfile_and_env_without_a_server() {
    let app = App::with("web: ./serve --port $PORT\nrelease: ./migrate\nworker: ./work\n");
    app.write(
        ".env",
        "DATABASE_URL=postgres://u:s3cr3t@db/shop\nQUOTED='a $b \"c\"'\n",
    );
    let out = app.output(&[
        "export", "systemd", "--name", "shop", "-m", "web=2", "-o", "units", "--user", "shop",
    ]);
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("s3cr3t") && !out.stderr.contains("s3cr3t"));
    let units = app.path().join("units");
    let mut names: Vec<String> = std::fs::read_dir(&units)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "shop-web-1.service",
            "shop-web-2.service",
            "shop-worker-1.service",
            "shop.env",
            "shop.target"
        ]
    );
    let web2 = std::fs::read_to_string(units.join("shop-web-2.service")).expect("read");
    assert!(web2.contains("Environment=PORT=5001\n"), "{web2}");
    assert!(web2.contains("User=shop\n"));
    let root = std::fs::canonicalize(app.path()).expect("canonical");
    assert!(
        web2.contains(&format!("WorkingDirectory={}\n", root.display())),
        "{web2}"
    );
    assert!(web2.contains(&format!(
        "EnvironmentFile={}\n",
        root.join("units/shop.env").display()
    )));
    // The worker is third in the Procfile: its ports start at 5200.
    let worker = std::fs::read_to_string(units.join("shop-worker-1.service")).expect("read");
    assert!(worker.contains("Environment=PORT=5200\n"), "{worker}");
    let env = std::fs::read_to_string(units.join("shop.env")).expect("read");
    assert!(env.contains("QUOTED=\"a \\$b \\\"c\\\"\"\n"), "{env}");
    assert_eq!(mode(&units.join("shop.env")), 0o600);
    systemd_verify(&units);

    // Bad input: the Procfile's line is named, nothing is written.
    let bad = App::with("web ./serve\n");
    let out = bad.output(&["export", "systemd", "--name", "shop", "-o", "units"]);
    assert_ne!(out.code(), Some(0));
    assert!(out.stderr.contains("Procfile:1:"), "{}", out.stderr);
    assert!(!bad.path().join("units").exists());
    // A variable systemd cannot hold is named, nothing is written.
    let bad = App::with("web: ./serve\n");
    bad.write(".env", "spring.profile=prod\n");
    let out = bad.output(&["export", "systemd", "--name", "shop", "-o", "units"]);
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr.contains("config var `spring.profile`"),
        "{}",
        out.stderr
    );
    assert!(!bad.path().join("units").exists());
}

/// A running `dozen server` on SQLite.
struct Server {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let data = tempfile::tempdir().expect("tmp");
        let (port, router) = (free_port(), free_port());
        let admin = |args: &[&str]| {
            let mut c = Command::new(dozen_bin());
            c.args(args)
                .env("PORT", port.to_string())
                .env("DOZEN_ROUTER_PORT", router.to_string())
                .env("DOZEN_DATA_DIR", data.path())
                .env("DOZEN_API_TOKEN", TOKEN)
                .env("DOZEN_BIND", "127.0.0.1")
                .env("DOZEN_APP_USER_PREFIX", format!("dz{}-", port))
                .env_remove("DATABASE_URL")
                .env("NO_COLOR", "1");
            c
        };
        let migrate = admin(&["migrate"]).output().expect("migrate");
        assert!(migrate.status.success(), "migrate failed");
        let mut child = admin(&["server"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server");
        let out = child.stdout.take().expect("stdout");
        await_listening(line_reader(out));
        Server {
            child,
            port,
            _data: data,
        }
    }

    fn client(&self, dir: &Path, args: &[&str]) -> Output {
        let out = Command::new(dozen_bin())
            .args(args)
            .current_dir(dir)
            .env("DOZEN_URL", format!("http://127.0.0.1:{}", self.port))
            .env("DOZEN_API_TOKEN", TOKEN)
            .env_remove("DOZEN_APP")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("client");
        Output::from(out)
    }

    #[track_caller]
    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        self.client(dir, args).expect_code(0, args).stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A minimal stack image as an OCI layout: one empty gzip layer.
fn stack(dir: &Path) {
    let sha256_hex = |bytes: &[u8]| format!("{:x}", sha2::Sha256::digest(bytes));
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    let blob = |bytes: &[u8]| {
        let hex = sha256_hex(bytes);
        std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).expect("write");
        format!("sha256:{hex}")
    };
    let mut tar_bytes = Vec::new();
    tar::Builder::new(&mut tar_bytes).finish().expect("tar");
    // An empty layer, uncompressed (the plain tar media type is as valid as gzip).
    let layer = blob(&tar_bytes);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    }))
    .expect("json");
    let config_digest = blob(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": tar_bytes.len()}],
    }))
    .expect("json");
    let manifest_digest = blob(&manifest);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }]}))
        .expect("json"),
    )
    .expect("write");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
}

fn index_of(layout: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index")).expect("json")
}

#[test]
fn kubernetes_systemd_and_images_from_server_releases() {
    let server = Server::start();
    let app = App::with(
        "web: python3 -m http.server $PORT\nrelease: echo migrated\nworker: sleep 1000\n",
    );
    app.write("dozen.toml", "[web]\nhealth_check = \"/\"\n");
    let dir = app.path();
    server.ok(dir, &["apps:create", "shop"]);
    server.ok(dir, &["deploy", "-a", "shop", "-d", "."]);
    server.ok(
        dir,
        &[
            "config:set",
            "-a",
            "shop",
            "SECRET_TOKEN=s3cr3t-value",
            "LANG=fr",
        ],
    );
    server.ok(dir, &["ps:scale", "-a", "shop", "web=2"]);

    // The live release (v2) as one stream.
    let out = server.client(
        dir,
        &[
            "export",
            "kubernetes",
            "-a",
            "shop",
            "--image",
            "reg.example/shop:v2",
        ],
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let yaml = out.stdout;
    assert!(
        !yaml.contains("s3cr3t-value"),
        "config values are only in base64"
    );
    assert!(yaml.contains("name: shop-config-v2"), "{yaml}");
    assert!(yaml.contains("name: shop-release-v2"));
    assert!(yaml.contains("replicas: 2"));
    assert!(
        yaml.contains("path: /"),
        "the health check of dozen.toml: {yaml}"
    );
    assert!(yaml.contains("image: reg.example/shop:v2"));
    assert!(yaml.contains("exec python3 -m http.server $PORT"));
    assert_eq!(yaml.matches("kind: Deployment").count(), 2);

    // An earlier release: its own config and Secret; a directory with apply.sh.
    let out = server.client(
        dir,
        &[
            "export",
            "kubernetes",
            "-a",
            "shop",
            "--release",
            "v1",
            "-o",
            "k8s",
            "-n",
            "shop-prod",
        ],
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("shop:v1"),
        "the default image is named: {}",
        out.stderr
    );
    let k8s = dir.join("k8s");
    let secret = k8s.join("1-config/secret-shop-config-v1.yaml");
    let text = std::fs::read_to_string(&secret).expect("secret");
    assert!(
        !text.contains("SECRET_TOKEN"),
        "v1 had no config yet: {text}"
    );
    assert_eq!(mode(&secret), 0o600);
    assert!(k8s.join("2-release/job-shop-release-v1.yaml").is_file());
    assert!(k8s.join("3-run/deployment-shop-web.yaml").is_file());
    assert!(k8s.join("3-run/service-shop.yaml").is_file());
    assert!(k8s.join("templates/one-off-job.yaml").is_file());
    let apply = std::fs::read_to_string(k8s.join("apply.sh")).expect("apply.sh");
    assert!(
        apply.contains("-n shop-prod wait --for=condition=complete"),
        "{apply}"
    );
    assert_eq!(mode(&k8s.join("apply.sh")), 0o755);
    // Exporting again replaces the directory it wrote.
    server.ok(dir, &["export", "kubernetes", "-a", "shop", "-o", "k8s"]);
    assert!(k8s.join("1-config/secret-shop-config-v2.yaml").is_file());
    assert!(!secret.exists());
    // But never someone else's directory, and bad flags are named.
    std::fs::create_dir(dir.join("mine")).expect("mkdir");
    std::fs::write(dir.join("mine/notes"), "x").expect("write");
    let out = server.client(dir, &["export", "kubernetes", "-a", "shop", "-o", "mine"]);
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr.contains("not written by dozen export"),
        "{}",
        out.stderr
    );
    let out = server.client(
        dir,
        &[
            "export",
            "kubernetes",
            "-a",
            "shop",
            "--resources",
            "web:cpu=lots",
        ],
    );
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr.contains("--resources web: cpu: `lots`"),
        "{}",
        out.stderr
    );
    let out = server.client(
        dir,
        &["export", "kubernetes", "-a", "shop", "--release", "v9"],
    );
    assert_ne!(out.code(), Some(0));

    // systemd from the server's release.
    let out = server.ok(
        dir,
        &[
            "export",
            "systemd",
            "-a",
            "shop",
            "-o",
            "units",
            "--workdir",
            "/srv/shop",
        ],
    );
    assert!(!out.contains("s3cr3t-value"));
    let env = std::fs::read_to_string(dir.join("units/shop.env")).expect("env");
    assert!(env.contains("SECRET_TOKEN=\"s3cr3t-value\"\n"), "{env}");
    assert!(dir.join("units/shop-web-2.service").is_file());
    assert!(
        !dir.join("units/shop-worker-1.service").exists(),
        "worker is scaled to 0"
    );
    systemd_verify(&dir.join("units"));

    // Images: of a server release's slug, and of a local build.
    stack(&dir.join("stack"));
    let out = server.ok(
        dir,
        &[
            "build",
            "--oci",
            "image-v1",
            "--stack",
            "stack:latest",
            "-a",
            "shop",
            "--release",
            "v1",
        ],
    );
    assert!(out.contains("skopeo copy oci:image-v1:v1"), "{out}");
    let index = index_of(&dir.join("image-v1"));
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    let local = App::with("web: ./serve\n");
    local.write(
        "serve",
        "#!/bin/sh\nexec python3 -m http.server \"$PORT\"\n",
    );
    let stack_dir = dir.join("stack");
    let out = local.output(&[
        "build",
        "--oci",
        "image",
        "--stack",
        stack_dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
    assert!(local.path().join("image/oci-layout").is_file());
    if dozen_testkit::tool("skopeo", "apt-get install skopeo").is_some() {
        for layout in [dir.join("image-v1"), local.path().join("image")] {
            let inspect = Command::new("skopeo")
                .args([
                    "--insecure-policy",
                    "inspect",
                    &format!("oci:{}", layout.display()),
                ])
                .output()
                .expect("skopeo");
            assert!(
                inspect.status.success(),
                "{}",
                String::from_utf8_lossy(&inspect.stderr)
            );
            let v: Value = serde_json::from_slice(&inspect.stdout).expect("json");
            assert!(v["Labels"]["dev.dozen.app"].is_string(), "{v}");
        }
    }
    let _ = std::io::stdout().flush();
}
