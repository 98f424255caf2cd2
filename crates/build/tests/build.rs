//! Real builds: real files, real processes under the supervisor, the build log through a
//! `LogSender`.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use dozen_build::{BuildError, BuildOutput, extract_slug, pack_slug};
use dozen_supervise::{ExitStatus, Stop};
use support::Harness;
use tokio::sync::watch;

#[tokio::test(flavor = "current_thread")]
async fn shell_app_builds_in_a_copy_with_a_clean_environment() {
    // SAFETY: set before this test starts any thread that reads the environment.
    unsafe { std::env::set_var("DOZEN_TEST_SECRET", "runtime-config-value") };
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: ./serve\nworker: ./work\n"),
        (
            "dozen.toml",
            "[build]\ncommand = \"echo building now; echo made > built.txt; env > build-env.txt; echo \\\"secret=[${DOZEN_TEST_SECRET:-unset}]\\\"\"\n\n[web]\nhealth_check = \"/up\"\n\n[doctor]\nignore = []\n",
        ),
        ("serve", "#!/bin/sh\n"),
    ]);
    let out = h.build(&source, h.running()).await.expect("build succeeds");

    assert_eq!(out.plan.kind, "declared");
    assert!(
        out.dir.join("built.txt").is_file(),
        "the step ran in the build dir"
    );
    assert!(
        !source.join("built.txt").exists(),
        "the source is not touched"
    );
    assert_eq!(
        out.procfile.names().collect::<Vec<_>>(),
        ["web", "worker"],
        "process types come from the Procfile"
    );
    assert_eq!(
        out.process_types.get("worker").map(String::as_str),
        Some("./work")
    );
    let meta = out.slug_meta();
    assert_eq!(meta.health_check.as_deref(), Some("/up"));
    assert_eq!(meta.process_types[0], ("web".into(), "./serve".into()));

    let env = fs::read_to_string(out.dir.join("build-env.txt")).expect("env");
    let vars: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| vars.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    assert_eq!(
        get("DOZEN_TEST_SECRET"),
        None,
        "runtime env must not reach the build"
    );
    assert_eq!(get("LANG"), Some("C.UTF-8"));
    assert_eq!(get("SOURCE_VERSION"), Some("abc123"));
    assert_eq!(get("DOZEN_BUILD_ID"), Some("b-test"));
    assert!(
        get("CACHE_DIR").is_some_and(|d| d.ends_with("/cache")),
        "{env}"
    );
    assert!(
        get("HOME").is_some_and(|d| d.ends_with("/work1/home")),
        "{env}"
    );
    assert!(get("PATH").is_some());

    let (log, _tmp) = h.finish().await;
    assert!(
        log.contains(r#""proc":"build","stream":"stdout","line":"building now""#),
        "{log}"
    );
    assert!(log.contains(r#""line":"secret=[unset]""#), "{log}");
    assert!(!log.contains("runtime-config-value"), "{log}");
    assert!(log.contains("step 1/1"), "{log}");
}

#[tokio::test(flavor = "current_thread")]
async fn failing_step_is_step_failed() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: ./serve\n"),
        (
            "app.json",
            "{\"scripts\": {\"build\": \"echo about to fail; exit 3\"}}",
        ),
    ]);
    let err = h.build(&source, h.running()).await.expect_err("must fail");
    match &err {
        BuildError::StepFailed { step, status } => {
            assert_eq!(step, "echo about to fail; exit 3");
            assert_eq!(*status, ExitStatus::Code(3));
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("exited with code 3"), "{err}");
    let (log, _tmp) = h.finish().await;
    assert!(log.contains(r#""line":"about to fail""#), "{log}");
}

#[tokio::test(flavor = "current_thread")]
async fn procfile_errors_name_the_line_before_anything_runs() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: ./serve\nthis line has no colon\n"),
        ("dozen.toml", "[build]\ncommand = \"touch ran\"\n"),
    ]);
    let err = h
        .build(&source, h.running())
        .await
        .expect_err("bad Procfile");
    assert!(matches!(err, BuildError::Procfile(_)), "{err:?}");
    assert!(err.to_string().starts_with("Procfile:2:"), "{err}");
    assert!(!h.tmp.path().join("work1/app/ran").exists(), "no step ran");

    let source2 = h.tmp.path().join("no-procfile");
    fs::create_dir_all(&source2).expect("mkdir");
    let err = h
        .build(&source2, h.running())
        .await
        .expect_err("no Procfile");
    assert!(matches!(err, BuildError::NoProcfile { .. }), "{err:?}");
    assert!(err.to_string().starts_with("Procfile: missing"), "{err}");
    h.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn cache_dir_survives_between_builds() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: ./serve\n"),
        (
            "dozen.toml",
            "[build]\ncommand = 'echo once >> \"$CACHE_DIR/count\"; wc -l < \"$CACHE_DIR/count\" > seen.txt'\n",
        ),
    ]);
    let first = h.build(&source, h.running()).await.expect("first build");
    let second = h.build(&source, h.running()).await.expect("second build");
    assert_ne!(first.dir, second.dir, "each build gets a fresh directory");
    let seen = |o: &BuildOutput| fs::read_to_string(o.dir.join("seen.txt")).expect("seen");
    assert_eq!(seen(&first).trim(), "1");
    assert_eq!(seen(&second).trim(), "2");
    h.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_build_runs_nothing() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: ./serve\n"),
        ("dozen.toml", "[build]\ncommand = \"touch ran\"\n"),
    ]);
    let (tx, rx) = watch::channel(Stop::Running);
    tx.send(Stop::Graceful { signal: None }).expect("send");
    let err = h.build(&source, rx).await.expect_err("cancelled");
    assert!(matches!(err, BuildError::Cancelled { .. }), "{err:?}");
    assert!(!h.tmp.path().join("work1/app/ran").exists());
    h.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn python_app_gets_a_relocatable_venv_inside_the_slug() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: .venv/bin/python -m http.server $PORT\n"),
        ("requirements.txt", "# no dependencies yet\n"),
        ("app.py", "print('hello')\n"),
    ]);
    let out = h.build(&source, h.running()).await.expect("python build");
    assert_eq!(out.plan.kind, "python");
    let python = out.dir.join(".venv/bin/python");
    let meta = fs::symlink_metadata(&python).expect("venv python exists");
    assert!(meta.is_file(), "a copy, not a link out of the tree");
    assert!(meta.permissions().mode() & 0o111 != 0);

    let slugs = h.tmp.path().join("slugs");
    let slug = pack_slug(&out.dir, &slugs, out.slug_meta()).expect("pack slug");
    assert_eq!(slug.manifest.build_kind, "python");
    assert_eq!(slug.manifest.run_env.path, [".venv/bin"]);
    assert_eq!(
        slug.manifest.run_env.defaults,
        [("PYTHONUNBUFFERED".to_string(), "1".to_string())]
    );
    let release = h.tmp.path().join("releases/v1");
    extract_slug(&slug.path, &release).expect("extract slug");
    // Remove the build directory: the release must stand on its own.
    fs::remove_dir_all(h.tmp.path().join("work1")).expect("rm work");
    let status = h
        .run(
            ".venv/bin/python app.py && .venv/bin/pip --version",
            &release,
        )
        .await;
    assert!(status.success(), "{status}");

    let (log, _tmp) = h.finish().await;
    assert!(log.contains("detected a python app"), "{log}");
    assert!(
        log.contains(r#""proc":"check","stream":"stdout","line":"hello""#),
        "{log}"
    );
    assert!(log.contains("relocatable"), "{log}");
}

#[tokio::test(flavor = "current_thread")]
async fn rust_app_binary_lands_in_bin_and_target_stays_in_the_cache() {
    let mut h = Harness::new();
    // No Procfile: the only binary in bin/ is the web process.
    let source = h.app(&[
        (
            "Cargo.toml",
            "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
        ),
        (
            "src/main.rs",
            "fn main() { println!(\"hello from rust\"); }\n",
        ),
    ]);
    let out = h.build(&source, h.running()).await.expect("rust build");
    assert_eq!(out.plan.kind, "rust");
    assert!(out.dir.join("bin/hello").is_file());
    assert!(
        !out.dir.join("target").exists() && !out.dir.join("bin/deps").exists(),
        "only the executables are copied into the slug"
    );
    assert!(out.default_procfile);
    assert_eq!(
        out.process_types.get("web").map(String::as_str),
        Some("bin/hello")
    );
    assert!(
        h.tmp
            .path()
            .join("cache/cargo-target/release/hello")
            .is_file()
    );
    let status = h.run("bin/hello", &out.dir).await;
    assert!(status.success(), "{status}");
    let (log, _tmp) = h.finish().await;
    assert!(log.contains(r#""line":"hello from rust""#), "{log}");
}

#[tokio::test(flavor = "current_thread")]
async fn node_app_installs_and_runs_its_build_script() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: node server.js\n"),
        (
            "package.json",
            r#"{"name": "napp", "version": "1.0.0", "scripts": {"build": "node -e \"require('fs').writeFileSync('dist.txt', 'built')\""}}"#,
        ),
    ]);
    let out = h.build(&source, h.running()).await.expect("node build");
    assert_eq!(out.plan.kind, "node");
    assert_eq!(
        out.plan.steps,
        ["npm install", "npm run build"],
        "nothing to prune"
    );
    assert_eq!(
        fs::read_to_string(out.dir.join("dist.txt")).expect("the build script ran"),
        "built"
    );
    h.finish().await;
}
