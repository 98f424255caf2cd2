//! The parallel, `.gitignore`-aware walk over the repository and the classification of files.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

/// What kind of file this is, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Python,
    JavaScript,
    Ruby,
    Go,
    Java,
    Rust,
    Php,
    Shell,
    Dockerfile,
    Compose,
    Procfile,
    AppJson,
    K8s,
    Yaml,
    Json,
    Toml,
    Properties,
    Xml,
    Ini,
    EnvFile,
    Conf,
    Other,
}

/// Where a file sits: tests, docs and examples are not the app and most rules skip them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Context {
    pub test: bool,
    pub doc: bool,
    pub example: bool,
    /// Build tooling configuration (webpack, vite, babel...), which may branch on build mode.
    pub build_config: bool,
    /// Marked `Code generated ... DO NOT EDIT`.
    pub generated: bool,
}

impl Context {
    /// Is this file part of the running application (not a test, doc, example or generated)?
    pub(crate) fn is_app(self) -> bool {
        !(self.test || self.doc || self.example || self.generated)
    }
}

/// A file that was read.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub rel: String,
    pub kind: Kind,
    pub ctx: Context,
    pub text: Vec<u8>,
}

/// Directory names that hold vendored, generated or tool state, never the app's own code.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "bower_components",
    "jspm_packages",
    "vendor",
    "target",
    "dist",
    "build",
    ".next",
    ".nuxt",
    ".svelte-kit",
    ".output",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "site-packages",
    ".gradle",
    ".idea",
    ".terraform",
    "Pods",
    ".bundle",
    ".cache",
    ".yarn",
    ".pnpm-store",
    "staticfiles",
    "coverage",
    "htmlcov",
    ".dozen",
    ".turbo",
    ".parcel-cache",
    ".angular",
    "elm-stuff",
    "_build",
    "deps",
    ".eggs",
];

/// File names whose content never matters (lockfiles are noted by name only).
fn skip_content(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "Gemfile.lock",
        "composer.lock",
        "Pipfile.lock",
        "poetry.lock",
        "uv.lock",
        "pdm.lock",
        "Cargo.lock",
        "go.sum",
        "npm-shrinkwrap.json",
        "bun.lockb",
        "bun.lock",
    ];
    const EXTS: &[&str] = &[
        ".min.js",
        ".min.css",
        ".chunk.js",
        ".bundle.js",
        ".map",
        ".svg",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".ico",
        ".webp",
        ".woff",
        ".woff2",
        ".ttf",
        ".eot",
        ".otf",
        ".pdf",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".jar",
        ".war",
        ".class",
        ".so",
        ".dylib",
        ".dll",
        ".exe",
        ".o",
        ".a",
        ".pyc",
        ".mo",
        ".po",
        ".pot",
        ".sqlite",
        ".sqlite3",
        ".db",
        ".mp3",
        ".mp4",
        ".wav",
        ".ogg",
        ".webm",
        ".psd",
        ".snap",
        ".lock",
        ".csv",
        ".tsv",
        ".parquet",
        ".wasm",
    ];
    NAMES.contains(&name) || EXTS.iter().any(|e| name.ends_with(e))
}

/// Classify a path (relative, `/`-separated) by its name.
pub(crate) fn classify(rel: &str) -> (Kind, Context) {
    let lower = rel.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let orig_name = rel.rsplit('/').next().unwrap_or(rel);
    let dirs: Vec<&str> = lower.split('/').collect();
    let dirs = &dirs[..dirs.len().saturating_sub(1)];
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);

    let kind = if orig_name == "Procfile"
        || (orig_name.starts_with("Procfile.") && !orig_name.ends_with(".md"))
    {
        Kind::Procfile
    } else if name == "dockerfile"
        || name.starts_with("dockerfile.")
        || name.ends_with(".dockerfile")
        || name == "containerfile"
    {
        Kind::Dockerfile
    } else if (name.starts_with("docker-compose")
        || name.starts_with("compose.")
        || name == "compose.yml"
        || name == "compose.yaml")
        && matches!(ext, "yml" | "yaml")
    {
        Kind::Compose
    } else if name == "app.json" {
        Kind::AppJson
    } else if name == ".env" || name.starts_with(".env.") || name.ends_with(".env") {
        Kind::EnvFile
    } else {
        match ext {
            "py" | "pyw" => Kind::Python,
            "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" | "mts" | "cts" => Kind::JavaScript,
            "rb" | "rake" | "ru" => Kind::Ruby,
            "go" => Kind::Go,
            "java" | "kt" | "kts" | "groovy" | "scala" => Kind::Java,
            "rs" => Kind::Rust,
            "php" => Kind::Php,
            "sh" | "bash" | "zsh" => Kind::Shell,
            "yml" | "yaml" => Kind::Yaml,
            "json" => Kind::Json,
            "toml" => Kind::Toml,
            "properties" => Kind::Properties,
            "xml" => Kind::Xml,
            "ini" | "cfg" => Kind::Ini,
            "conf" => Kind::Conf,
            _ if name == "gemfile" || name == "rakefile" || name == "puma.rb" => Kind::Ruby,
            _ => Kind::Other,
        }
    };

    let test_dir = dirs.iter().any(|d| {
        matches!(
            *d,
            "test"
                | "tests"
                | "spec"
                | "specs"
                | "__tests__"
                | "__mocks__"
                | "testdata"
                | "fixtures"
                | "__fixtures__"
                | "e2e"
                | "cypress"
                | "testing"
                | "test-fixtures"
                | "testfixtures"
                | "integration-tests"
        )
    });
    let stem = name.split('.').next().unwrap_or(name);
    let ci = lower.starts_with(".github/")
        || lower.starts_with(".circleci/")
        || lower.starts_with(".buildkite/")
        || matches!(
            name,
            ".travis.yml"
                | ".gitlab-ci.yml"
                | "azure-pipelines.yml"
                | "bitbucket-pipelines.yml"
                | "jenkinsfile"
                | "cloudbuild.yaml"
        );
    let test_name = ci
        || stem == "tests"
        || stem == "test"
        || name.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_spec")
        || stem.ends_with("_tests")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name == "conftest.py"
        || orig_name.ends_with("Test.java")
        || orig_name.ends_with("Tests.java")
        || orig_name.ends_with("Test.kt")
        || orig_name.ends_with("Test.php");
    let doc_dir = dirs.iter().any(|d| {
        matches!(
            *d,
            "doc"
                | "docs"
                | "documentation"
                | "man"
                | "website"
                | "site-docs"
                | "translations"
                | "locale"
                | "locales"
                | "i18n"
                | "lc_messages"
                | "lang"
        )
    });
    let doc_ext = matches!(
        ext,
        "md" | "markdown" | "rst" | "adoc" | "txt" | "html" | "htm" | "ipynb"
    ) && !name.starts_with("requirements")
        && dirs.last() != Some(&"requirements")
        && !name.starts_with("constraints")
        && name != "aptfile"
        && name != "apt.txt"
        && name != "packages.txt"
        && name != "runtime.txt";
    let example_dir = dirs.iter().any(|d| {
        matches!(
            *d,
            "example"
                | "examples"
                | "sample"
                | "samples"
                | "demo"
                | "demos"
                | "_examples"
                | "templates"
                | "skeleton"
        )
    });
    let example_name = name.ends_with(".example")
        || name.ends_with(".sample")
        || name.ends_with(".dist")
        || name.ends_with(".template")
        || name.ends_with(".tpl")
        || name.ends_with(".tmpl")
        || name.contains(".example.")
        || name.contains(".sample.")
        || name.contains("-example.")
        || name.contains("_example.");
    let build_config = [
        "webpack",
        "vite.config",
        "vitest.config",
        "babel.config",
        ".babelrc",
        "rollup.config",
        "next.config",
        "nuxt.config",
        "tailwind.config",
        "postcss.config",
        "jest.config",
        "karma.conf",
        "gulpfile",
        "gruntfile",
        ".eslintrc",
        "eslint.config",
        "svelte.config",
        "astro.config",
        "playwright.config",
        "tsup.config",
        "esbuild",
    ]
    .iter()
    .any(|p| name.starts_with(p));

    let ctx = Context {
        test: test_dir || test_name,
        doc: doc_dir || doc_ext,
        example: example_dir || example_name,
        build_config,
        generated: false,
    };
    (kind, ctx)
}

/// Everything the walk collected.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// Every file path seen (read or not), relative and `/`-separated.
    pub paths: Vec<String>,
    /// Files the rules that look at the whole repository need (Procfile, manifests...).
    pub kept: Vec<SourceFile>,
    /// How many files were read and checked.
    pub scanned: usize,
}

/// Is this file needed again after the per-file pass?
fn keep_for_repo_rules(rel: &str, kind: Kind, text: &[u8]) -> bool {
    let text_len = text.len();
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let lower = name.to_ascii_lowercase();
    // Extension-less scripts (bin/docker-entrypoint) are start scripts too.
    (kind == Kind::Other && text.starts_with(b"#!") && text_len < 64 * 1024)
        || matches!(
            kind,
            Kind::Procfile
                | Kind::Dockerfile
                | Kind::Compose
                | Kind::AppJson
                | Kind::K8s
                | Kind::EnvFile
        )
        || (kind == Kind::Shell && text_len < 64 * 1024)
        || matches!(
            name,
            "package.json"
                | "requirements.txt"
                | "Pipfile"
                | "pyproject.toml"
                | "setup.py"
                | "setup.cfg"
                | "Gemfile"
                | "composer.json"
                | "go.mod"
                | "Cargo.toml"
                | "pom.xml"
                | "build.gradle"
                | "build.gradle.kts"
                | "Aptfile"
                | "apt.txt"
                | "packages.txt"
                | "nixpacks.toml"
                | "flake.nix"
                | "shell.nix"
                | "default.nix"
                | ".buildpacks"
                | "Brewfile"
                | "bindep.txt"
                | "project.toml"
                | "database.yml"
                | "twelve-factor.toml"
                | "dozen.toml"
                | "crontab"
                | "environment.yml"
        )
        || (lower.starts_with("requirements") && lower.ends_with(".txt"))
        || (lower.ends_with(".txt") && rel.split('/').rev().nth(1) == Some("requirements"))
        || rel.starts_with("bin/")
}

/// Read at most `max` bytes; `None` when the file is larger, unreadable or binary.
fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > max {
        return None;
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max).read_to_end(&mut buf).ok()?;
    let head = &buf[..buf.len().min(8192)];
    if head.contains(&0) {
        return None;
    }
    Some(buf)
}

fn is_generated(text: &[u8], kind: Kind) -> bool {
    let head = &text[..text.len().min(600)];
    let s = String::from_utf8_lossy(head);
    if (s.contains("Code generated") && s.contains("DO NOT EDIT")) || s.contains("@generated") {
        return true;
    }
    // Minified bundles: a very long line near the top of a JavaScript, CSS or JSON file.
    matches!(kind, Kind::JavaScript | Kind::Json | Kind::Other)
        && text.split(|&b| b == b'\n').any(|l| l.len() > 1000)
}

fn looks_k8s(text: &[u8]) -> bool {
    let head = &text[..text.len().min(4096)];
    let s = String::from_utf8_lossy(head);
    s.lines().any(|l| l.starts_with("apiVersion:")) && s.lines().any(|l| l.starts_with("kind:"))
}

/// A worker's buffers; flushed into the shared result when full and when the worker ends.
struct Local<'a, T> {
    walked: &'a Mutex<Walked>,
    results: &'a Mutex<Vec<T>>,
    paths: Vec<String>,
    kept: Vec<SourceFile>,
    res: Vec<T>,
    scanned: usize,
}

impl<T> Local<'_, T> {
    fn flush(&mut self) {
        let mut w = self.walked.lock().unwrap_or_else(|p| p.into_inner());
        w.paths.append(&mut self.paths);
        w.kept.append(&mut self.kept);
        w.scanned += std::mem::take(&mut self.scanned);
        drop(w);
        if !self.res.is_empty() {
            self.results
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&mut self.res);
        }
    }
}

impl<T> Drop for Local<'_, T> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Walk `root` with `threads` workers; call `per_file` on each file that was read.
/// `per_file` returns items that are collected per thread and returned in one vector.
pub(crate) fn walk<T: Send>(
    root: &Path,
    max_file_size: u64,
    threads: usize,
    per_file: &(dyn Fn(&SourceFile) -> Vec<T> + Sync),
) -> (Walked, Vec<T>) {
    let walked = Mutex::new(Walked::default());
    let results: Mutex<Vec<T>> = Mutex::new(Vec::new());
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .ignore(true)
        .parents(true)
        .follow_links(false)
        .threads(threads)
        .filter_entry(|e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !(is_dir
                && e.depth() > 0
                && SKIP_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
        });
    builder.build_parallel().run(|| {
        let mut local = Local {
            walked: &walked,
            results: &results,
            paths: Vec::new(),
            kept: Vec::new(),
            res: Vec::new(),
            scanned: 0,
        };
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let Ok(rel) = entry.path().strip_prefix(root) else {
                return WalkState::Continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            let name = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
            local.paths.push(rel.clone());
            if !skip_content(&name)
                && let Some(text) = read_bounded(entry.path(), max_file_size)
            {
                let (mut kind, mut ctx) = classify(&rel);
                ctx.generated = is_generated(&text, kind);
                if kind == Kind::Yaml && looks_k8s(&text) {
                    kind = Kind::K8s;
                }
                let file = SourceFile {
                    rel,
                    kind,
                    ctx,
                    text,
                };
                local.scanned += 1;
                local.res.extend(per_file(&file));
                if keep_for_repo_rules(&file.rel, file.kind, &file.text) {
                    local.kept.push(file);
                }
            }
            if local.paths.len() >= 1024 || local.kept.len() >= 64 {
                local.flush();
            }
            WalkState::Continue
        })
    });
    let mut walked = walked.into_inner().unwrap_or_else(|p| p.into_inner());
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    walked.paths.sort();
    walked.kept.sort_by(|a, b| a.rel.cmp(&b.rel));
    (walked, results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify("Procfile").0, Kind::Procfile);
        assert_eq!(classify("Procfile.dev").0, Kind::Procfile);
        assert_eq!(classify("crates/core/src/procfile.rs").0, Kind::Rust);
        assert_eq!(classify("docker/Dockerfile.prod").0, Kind::Dockerfile);
        assert_eq!(classify("docker-compose.override.yml").0, Kind::Compose);
        assert_eq!(classify(".env.example").0, Kind::EnvFile);
        assert!(classify(".env.example").1.example);
        assert!(classify("tests/test_app.py").1.test);
        assert!(classify("app/models_test.go").1.test);
        assert!(classify("docs/setup.md").1.doc);
        assert!(!classify("requirements.txt").1.doc);
        assert!(classify("webpack.config.js").1.build_config);
        assert!(classify("app/settings.py").1.is_app());
    }
}
