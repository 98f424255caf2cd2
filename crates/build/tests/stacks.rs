//! Real builds of each stack with real packages from PyPI and npm, as users' apps have them,
//! and the errors a user sees when the build host lacks a stack's tool.

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use dozen_build::{BuildError, Slug, extract_slug, pack_slug};
use support::Harness;

/// A `PATH` for the build steps holding only links to the given host tools: what a build
/// host without the others looks like.
fn path_with_only(h: &Harness, tools: &[&str]) -> Vec<(String, String)> {
    let bin = h.tmp.path().join(format!("only-{}", tools.join("-")));
    fs::create_dir_all(&bin).expect("mkdir");
    for tool in tools {
        let real = which(tool).unwrap_or_else(|| panic!("the test host needs `{tool}`"));
        symlink(real, bin.join(tool)).expect("symlink");
    }
    vec![("PATH".into(), bin.display().to_string())]
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "current_thread")]
async fn python_requirements_install_a_real_package_into_a_venv_that_travels_in_the_slug() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: python -c 'import six'\n"),
        ("requirements.txt", "six==1.16.0\n"),
        // A version no host has: the build says so and goes on with the nearest 3.x.
        ("runtime.txt", "python-3.99.0\n"),
        ("app.py", "import six\nprint('six', six.__version__)\n"),
    ]);
    let out = h.build(&source, h.running()).await.expect("python build");
    assert_eq!(out.plan.kind, "python");
    assert_eq!(out.plan.detected_from, Some("requirements.txt"));

    let slugs = h.tmp.path().join("slugs");
    let slug = pack_slug(&out.dir, &slugs, out.slug_meta()).expect("pack");
    let release = h.tmp.path().join("release");
    extract_slug(&slug.path, &release).expect("extract");
    let status = h.run(".venv/bin/python app.py", &release).await;
    assert!(status.success(), "{status}");

    let second = h.build(&source, h.running()).await.expect("warm build");
    assert!(second.dir.join(".venv/bin/python").is_file());

    let (log, _tmp) = h.finish().await;
    assert!(
        log.contains("detected a python app (requirements.txt)"),
        "{log}"
    );
    assert!(
        log.contains("runtime.txt asks for Python 3.99.0, which this host does not have"),
        "{log}"
    );
    assert!(log.contains(r#""line":"six 1.16.0""#), "{log}");
}

#[tokio::test(flavor = "current_thread")]
async fn python_version_without_a_compatible_interpreter_fails_before_any_step() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: python app.py\n"),
        ("requirements.txt", "six\n"),
        ("runtime.txt", "python-4.0.1\n"),
    ]);
    let err = h
        .build(&source, h.running())
        .await
        .expect_err("no Python 4");
    assert!(matches!(err, BuildError::PythonVersion { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("runtime.txt asks for Python 4.0.1, but the build host has no Python of the same major version"),
        "{msg}"
    );
    assert!(
        !h.tmp.path().join("work1/app/.venv").exists(),
        "no step ran"
    );
    h.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn uv_app_installs_uv_into_the_cache_and_syncs_without_dev_dependencies() {
    let mut h = Harness::new();
    let source = h.fixture("uv-app");
    // The host's PATH without any uv, so the build installs its own.
    let mut env = path_with_only(&h, &["python3"]);
    let path = format!("{}:/usr/bin:/bin", env[0].1);
    env[0].1 = path;
    let out = h
        .build_with(&source, h.running(), env)
        .await
        .expect("uv build");
    assert_eq!(out.plan.detected_from, Some("uv.lock"));
    assert!(
        h.tmp.path().join("cache/tools/uv/bin/uv").is_file(),
        "uv is installed in the build cache"
    );
    let site = fs::read_dir(out.dir.join(".venv/lib"))
        .expect("venv lib")
        .next()
        .expect("pythonX.Y")
        .expect("entry")
        .path()
        .join("site-packages");
    assert!(site.join("six.py").is_file(), "the dependency is installed");
    assert!(
        !site.join("iniconfig").exists(),
        "the dev group is not installed"
    );
    let status = h.run(".venv/bin/python app.py", &out.dir).await;
    assert!(status.success(), "{status}");
    let (log, _tmp) = h.finish().await;
    assert!(
        log.contains("`uv` is not on the build host's PATH: installing it with pip into the app's build cache"),
        "{log}"
    );
    assert!(log.contains(r#""line":"six 1.16.0""#), "{log}");
}

const DJANGO_MANAGE: &str = r#"#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_conf.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"#;

fn django_settings(static_root: bool) -> String {
    let root = if static_root {
        "STATIC_ROOT = BASE_DIR / 'staticfiles'\n"
    } else {
        ""
    };
    format!(
        r#"import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Builds see no config vars (as on Heroku): the app guards for a missing key.
SECRET_KEY = os.environ.get("SECRET_KEY", "build-time-only")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles"]
ROOT_URLCONF = "site_conf.urls"
DATABASES = {{}}
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "assets"]
{root}"#
    )
}

#[tokio::test(flavor = "current_thread")]
async fn django_collectstatic_runs_fails_the_build_or_is_disabled() {
    let mut h = Harness::new();
    let files = |settings: &str| -> Vec<(&'static str, String)> {
        vec![
            ("Procfile", "web: gunicorn site_conf.wsgi\n".into()),
            ("requirements.txt", "Django==4.2.16\n".into()),
            ("manage.py", DJANGO_MANAGE.into()),
            ("site_conf/__init__.py", String::new()),
            ("site_conf/urls.py", "urlpatterns = []\n".into()),
            ("site_conf/settings.py", settings.into()),
            ("assets/hello.txt", "hello static\n".into()),
        ]
    };
    let write = |h: &Harness, name: &str, files: &[(&'static str, String)]| {
        let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
        h.app_in(name, &refs)
    };

    // Without STATIC_ROOT, collectstatic fails, and so does the build, with Django's words.
    let broken = write(&h, "broken", &files(&django_settings(false)));
    let err = h
        .build(&broken, h.running())
        .await
        .expect_err("collectstatic fails");
    match &err {
        BuildError::StepFailed { step, .. } => assert!(step.contains("collectstatic"), "{step}"),
        other => panic!("expected StepFailed, got {other:?}"),
    }
    let log = h.log_so_far();
    assert!(log.contains("STATIC_ROOT"), "{log}");
    assert!(
        log.contains(
            r#""stream":"stderr","line":"collectstatic failed (above). Give the settings it needs a default"#
        ),
        "the failure says what to do: {log}"
    );

    // DISABLE_COLLECTSTATIC=1, declared for the build: the same app builds.
    let mut disabled = files(&django_settings(false));
    disabled.push((
        "dozen.toml",
        "[build.env]\nDISABLE_COLLECTSTATIC = \"1\"\n".into(),
    ));
    let disabled = write(&h, "disabled", &disabled);
    let out = h
        .build(&disabled, h.running())
        .await
        .expect("collectstatic disabled");
    assert!(!out.dir.join("staticfiles").exists());

    // A correct app: its own and the admin's static files are collected into the slug.
    let good = write(&h, "good", &files(&django_settings(true)));
    let out = match h.build(&good, h.running()).await {
        Ok(out) => out,
        Err(e) => panic!("django build: {e}: {}", h.log_so_far()),
    };
    assert_eq!(
        fs::read_to_string(out.dir.join("staticfiles/hello.txt")).expect("collected"),
        "hello static\n"
    );
    assert!(out.dir.join("staticfiles/admin/css/base.css").is_file());
    let (log, _tmp) = h.finish().await;
    assert!(
        log.contains("Django app: DISABLE_COLLECTSTATIC=1, so collectstatic is not run"),
        "{log}"
    );
    assert!(log.contains("static files copied"), "{log}");
}

#[tokio::test(flavor = "current_thread")]
async fn express_app_without_a_lockfile_builds_prunes_dev_dependencies_and_gets_npm_start() {
    let mut h = Harness::new();
    let source = h.app(&[
        (
            "package.json",
            r#"{
  "name": "express-app",
  "version": "1.0.0",
  "private": true,
  "engines": {"node": ">=18"},
  "scripts": {
    "start": "node server.js",
    "build": "node -e \"require('is-number'); require('fs').writeFileSync('public.txt', 'built with a dev dependency')\""
  },
  "dependencies": {"express": "4.21.2"},
  "devDependencies": {"is-number": "7.0.0"}
}
"#,
        ),
        (
            "server.js",
            "const express = require('express');\nconst app = express();\napp.get('/', (req, res) => res.send('hello'));\napp.listen(process.env.PORT || 5000);\n",
        ),
    ]);
    let out = h.build(&source, h.running()).await.expect("node build");
    assert_eq!(
        out.plan.steps,
        ["npm install", "npm run build", "npm prune --omit=dev"]
    );
    assert_eq!(
        fs::read_to_string(out.dir.join("public.txt")).expect("the build script ran"),
        "built with a dev dependency"
    );
    assert!(out.dir.join("node_modules/express/package.json").is_file());
    assert!(
        !out.dir.join("node_modules/is-number").exists(),
        "the dev dependency is pruned"
    );
    assert!(out.default_procfile);
    assert_eq!(
        out.process_types.get("web").map(String::as_str),
        Some("npm start")
    );
    let status = h.run("node -e \"require('express')\"", &out.dir).await;
    assert!(status.success(), "{status}: {}", h.log_so_far());
    assert!(
        h.tmp.path().join("cache/npm").is_dir(),
        "npm's cache is the build cache"
    );
    let (log, _tmp) = h.finish().await;
    assert!(log.contains("satisfies engines.node `>=18`"), "{log}");
    assert!(
        log.contains("no Procfile: using the node default `web: npm start`"),
        "{log}"
    );
}

/// An app's files, the host tools its build may see, and the tool and file the error names.
type MissingToolCase<'a> = (
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [&'a str],
    &'a str,
    &'a str,
);

#[tokio::test(flavor = "current_thread")]
async fn missing_stack_tools_fail_at_once_naming_the_tool_and_the_file() {
    let mut h = Harness::new();
    let cases: [MissingToolCase; 4] = [
        (
            "yarn",
            &[
                ("package.json", "{}"),
                ("yarn.lock", ""),
                ("Procfile", "web: node .\n"),
            ],
            &["node"],
            "yarn",
            "yarn.lock",
        ),
        (
            "ruby",
            &[
                ("Gemfile", "source 'https://rubygems.org'\n"),
                ("Procfile", "web: ruby app.rb\n"),
            ],
            &[],
            "ruby",
            "Gemfile",
        ),
        (
            "php",
            &[
                ("composer.json", "{}"),
                ("Procfile", "web: php -S 0.0.0.0:$PORT\n"),
            ],
            &[],
            "php",
            "composer.json",
        ),
        (
            "go",
            &[
                ("go.mod", "module example.com/app\n"),
                ("Procfile", "web: bin/app\n"),
            ],
            &[],
            "go",
            "go.mod",
        ),
    ];
    for (name, files, tools, tool, file) in cases {
        let source = h.app_in(name, files);
        let env = path_with_only(&h, tools);
        let err = h
            .build_with(&source, h.running(), env)
            .await
            .expect_err("missing tool");
        match &err {
            BuildError::MissingTool {
                tool: t, file: f, ..
            } => {
                assert_eq!((t.as_str(), f.to_str()), (tool, Some(file)), "{err}");
            }
            other => panic!("{name}: expected MissingTool, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{file} makes this a "))
                && msg.contains(&format!("no `{tool}`")),
            "{msg}"
        );
    }
    assert!(
        !h.tmp.path().join("work1/app/node_modules").exists(),
        "nothing ran"
    );
    h.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn python_without_a_procfile_says_there_is_no_default_web_process() {
    let mut h = Harness::new();
    let source = h.app(&[("requirements.txt", "six\n")]);
    let err = h
        .build(&source, h.running())
        .await
        .expect_err("no Procfile");
    assert!(matches!(err, BuildError::NoProcfile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("Python app has no default web process"),
        "{msg}"
    );
    assert!(msg.contains("web: gunicorn"), "{msg}");
    h.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn app_json_formation_and_postdeploy_reach_the_slug_manifest() {
    let mut h = Harness::new();
    let source = h.app(&[
        ("Procfile", "web: ./serve\nworker: ./work\n"),
        (
            "app.json",
            r#"{"formation": {"web": {"quantity": 2, "size": "standard-2x"}, "worker": {"quantity": 1}},
 "scripts": {"postdeploy": "./seed"}}"#,
        ),
    ]);
    let out = h.build(&source, h.running()).await.expect("build");
    let slugs = h.tmp.path().join("slugs");
    let slug = pack_slug(&out.dir, &slugs, out.slug_meta()).expect("pack");
    let read = Slug::open(&slugs, &slug.digest).expect("open");
    let formation: Vec<_> = read
        .manifest
        .app_json
        .formation
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(formation, [("web", 2), ("worker", 1)]);
    assert_eq!(read.manifest.app_json.postdeploy.as_deref(), Some("./seed"));
    // Heroku's size names are read as dozen's sizes, recorded for the runtime.
    assert_eq!(
        read.manifest.sizes,
        std::collections::BTreeMap::from([("web".to_string(), "2x".to_string())])
    );
    let (log, _tmp) = h.finish().await;
    assert!(!log.contains("is ignored"), "{log}");
}
