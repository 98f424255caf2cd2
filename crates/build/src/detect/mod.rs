//! Which commands build an app: the one it declares, else one detected from its files, as
//! Heroku's classic buildpacks detect them (one module per stack).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::BuildError;
use crate::manifest::AppManifest;

mod go;
mod java;
mod node;
mod php;
mod python;
mod ruby;
mod rust;

pub use rust::CARGO_TARGET_IN_CACHE;

/// The shell commands that build an app, in order, and what kind of app it was taken for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// Shell commands (`/bin/sh -c`), run in order in the build directory; the first that
    /// fails ends the build.
    pub steps: Vec<String>,
    /// `declared`, `python`, `node`, `rust`, `go`, `ruby`, `php`, `java`, or `none`
    /// (nothing to build).
    pub kind: &'static str,
    /// The file that made the build pick this stack (`requirements.txt`, `package.json`, ...).
    pub detected_from: Option<&'static str>,
    /// What the build says before its steps: the interpreter chosen, warnings about versions
    /// and tools.
    pub notes: Vec<String>,
    /// The `web` process the stack gives an app without a Procfile.
    pub default_web: DefaultWeb,
}

/// The `web` process of an app that has no Procfile, as Heroku's buildpacks give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultWeb {
    /// This command.
    Command(String),
    /// The only executable in the slug's `bin/` after the build (Go, Rust).
    SingleBinary,
    /// None: the app needs a Procfile. The text says why, for the error.
    None(String),
}

impl BuildPlan {
    fn new(kind: &'static str, detected_from: &'static str, steps: Vec<String>) -> BuildPlan {
        BuildPlan {
            steps,
            kind,
            detected_from: Some(detected_from),
            notes: Vec::new(),
            default_web: DefaultWeb::None(format!("a {kind} app has no default web process")),
        }
    }

    /// Decide how to build the app in `dir`, looking for tools on dozen's own `PATH`. See
    /// [`BuildPlan::detect_on`].
    pub fn detect(dir: &Path, manifest: &AppManifest) -> Result<BuildPlan, BuildError> {
        Self::detect_on(dir, manifest, &Host::current(dir))
    }

    /// Decide how to build the app in `dir` with the tools `host` has.
    ///
    /// A command declared in `dozen.toml` or `app.json` wins. Otherwise the first stack whose
    /// file is there, in this order (the stack modules document their steps):
    ///
    /// | file | kind |
    /// |---|---|
    /// | `Cargo.toml` | `rust` |
    /// | `Gemfile` | `ruby` |
    /// | `composer.json` | `php` |
    /// | `pom.xml`, `build.gradle`, `build.gradle.kts` | `java` |
    /// | `go.mod` | `go` |
    /// | `Pipfile.lock`, `Pipfile`, `requirements.txt`, `poetry.lock`, `uv.lock`, `pyproject.toml` | `python` |
    /// | `package.json` | `node` |
    /// | none | `none` (no step) |
    ///
    /// Errors: a malformed `package.json`, `Pipfile.lock`, `runtime.txt` or `.python-version`
    /// (named with its line); a tool the stack needs that the host does not have
    /// ([`BuildError::MissingTool`]); a Python version no interpreter of the host is
    /// compatible with.
    pub fn detect_on(
        dir: &Path,
        manifest: &AppManifest,
        host: &Host,
    ) -> Result<BuildPlan, BuildError> {
        if let Some(command) = &manifest.build_command {
            return Ok(BuildPlan {
                steps: vec![command.clone()],
                kind: "declared",
                detected_from: None,
                notes: Vec::new(),
                default_web: DefaultWeb::None(
                    "the app declares its own build command, so no stack gives it a default web process"
                        .into(),
                ),
            });
        }
        let has = |name: &str| dir.join(name).is_file();
        if has("Cargo.toml") {
            return rust::plan(host);
        }
        if has("Gemfile") {
            return ruby::plan(dir, host);
        }
        if has("composer.json") {
            return php::plan(dir, host);
        }
        if let Some(plan) = java::plan(dir, host)? {
            return Ok(plan);
        }
        if has("go.mod") {
            return go::plan(dir, host);
        }
        if let Some(plan) = python::plan(dir, host)? {
            return Ok(plan);
        }
        if has("package.json") {
            return node::plan(dir, host);
        }
        Ok(BuildPlan {
            steps: Vec::new(),
            kind: "none",
            detected_from: None,
            notes: Vec::new(),
            default_web: DefaultWeb::None(
                "no build command declared and no file of a known stack, so there is no default web process"
                    .into(),
            ),
        })
    }
}

/// The build host as the build steps will see it: their environment (for `PATH` and the
/// settings that change what a step does, such as `DISABLE_COLLECTSTATIC`) and the build
/// directory. Detection asks it which tools exist and which versions they are.
#[derive(Debug, Clone)]
pub struct Host {
    env: Vec<(String, String)>,
    cwd: PathBuf,
    confine: Option<dozen_supervise::Confinement>,
}

impl Host {
    /// The steps' environment `env` (exactly what they get) and the build directory.
    pub fn new(env: Vec<(String, String)>, cwd: &Path) -> Host {
        Host {
            env,
            cwd: cwd.to_path_buf(),
            confine: None,
        }
    }

    /// Ask the host as the steps' user, with their view of the system (a toolchain in the
    /// server's own home may be out of their reach).
    pub fn confined(mut self, confine: Option<dozen_supervise::Confinement>) -> Host {
        self.confine = confine;
        self
    }

    /// dozen's own environment, with `cwd` as the build directory.
    pub fn current(cwd: &Path) -> Host {
        Host::new(std::env::vars().collect(), cwd)
    }

    /// The value of `key` in the steps' environment.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn path_dirs(&self) -> Vec<PathBuf> {
        self.var("PATH")
            .unwrap_or_default()
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    /// Every executable called `tool` on `PATH`, in `PATH` order.
    fn which_all(&self, tool: &str) -> Vec<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        self.path_dirs()
            .into_iter()
            .map(|d| d.join(tool))
            .filter(|p| {
                fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
            .filter(|p| self.may_run(p))
            .collect()
    }

    /// Whether the steps' user may run `program` (always, without a confinement).
    pub(crate) fn may_run(&self, program: &Path) -> bool {
        self.confine.as_ref().is_none_or(|c| c.may_run(program))
    }

    /// The executable `tool` a step would run, if `PATH` has one.
    pub fn which(&self, tool: &str) -> Option<PathBuf> {
        self.which_all(tool).into_iter().next()
    }

    /// Run `program args` in the build directory with the steps' environment; its standard
    /// output, when it printed something and did not fail.
    ///
    /// The exit status is read when it can be: in a process that runs a supervisor, its reaper
    /// may collect the child first (a subreaper waits for any child), so the output itself,
    /// read to its end, is what counts.
    fn output(&self, program: &Path, args: &[&str]) -> Option<String> {
        use std::io::Read;
        // Through `sh`, whose own exec cannot fail: when the program's does, std would wait for
        // the child to say why, and the supervisor's reaper may have collected it already.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("exec \"$0\" \"$@\"")
            .arg(program)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(c) = &self.confine {
            c.apply_to(&mut cmd, &self.cwd).ok()?;
        }
        let mut child = cmd.spawn().ok()?;
        let mut out = Vec::new();
        let read = child.stdout.take().map(|mut s| s.read_to_end(&mut out));
        // Err: already reaped by the supervisor's reaper; the output decides.
        if let Ok(status) = child.wait() {
            if !status.success() {
                return None;
            }
        }
        if !matches!(read, Some(Ok(_))) || out.is_empty() {
            return None;
        }
        String::from_utf8(out).ok()
    }
}

/// The error for a tool the stack needs and the host lacks.
fn missing(tool: &str, file: &'static str, kind: &'static str) -> BuildError {
    BuildError::MissingTool {
        tool: tool.into(),
        file: file.into(),
        kind,
    }
}

/// Read an app file that is known to exist, as UTF-8; errors name the file.
fn read_text(dir: &Path, name: &str) -> Result<String, BuildError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            BuildError::Manifest {
                file: name.into(),
                line: Some(e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1),
                message: "not valid UTF-8".into(),
            }
        }),
        Err(e) => Err(BuildError::io(path, e)),
    }
}

/// Read an app file if it exists.
fn read_optional(dir: &Path, name: &str) -> Result<Option<String>, BuildError> {
    if !dir.join(name).is_file() {
        return Ok(None);
    }
    read_text(dir, name).map(Some)
}

/// Parse an app's JSON file (`package.json`, `Pipfile.lock`, `composer.json`); errors name
/// the file and line.
fn read_json(dir: &Path, name: &str) -> Result<serde_json::Value, BuildError> {
    let text = read_text(dir, name)?;
    serde_json::from_str(&text).map_err(|e| BuildError::Manifest {
        file: name.into(),
        line: Some(e.line()),
        message: format!("invalid JSON: {e}"),
    })
}

/// Quote `s` for `/bin/sh` (single quotes).
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@%,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A host whose `PATH` holds only the given fake tools (shell scripts).
    pub(crate) struct FakeHost {
        pub dir: tempfile::TempDir,
    }

    impl FakeHost {
        pub fn new(tools: &[(&str, &str)]) -> FakeHost {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().expect("tempdir");
            for (name, script) in tools {
                let p = dir.path().join(name);
                fs::write(&p, format!("#!/bin/sh\n{script}\n")).expect("write tool");
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
            }
            FakeHost { dir }
        }

        pub fn host(&self, app: &Path, extra: &[(&str, &str)]) -> Host {
            let mut env = vec![("PATH".to_string(), self.dir.path().display().to_string())];
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            Host::new(env, app)
        }
    }

    pub(crate) fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            let p = dir.path().join(name);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(p, text).expect("write");
        }
        dir
    }

    pub(crate) fn plan_on(
        files: &[(&str, &str)],
        tools: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Result<BuildPlan, BuildError> {
        let dir = app(files);
        let fake = FakeHost::new(tools);
        let manifest = AppManifest::load(dir.path())?;
        BuildPlan::detect_on(dir.path(), &manifest, &fake.host(dir.path(), env))
    }

    #[test]
    fn declared_command_wins_over_detection() {
        let plan = plan_on(
            &[
                ("Cargo.toml", "[package]\n"),
                ("dozen.toml", "[build]\ncommand = \"./build.sh\"\n"),
            ],
            &[],
            &[],
        )
        .expect("plan");
        assert_eq!(plan.kind, "declared");
        assert_eq!(plan.steps, ["./build.sh"]);
    }

    #[test]
    fn nothing_to_build() {
        let plan = plan_on(&[("Procfile", "web: ./server\n")], &[], &[]).expect("plan");
        assert_eq!(plan.kind, "none");
        assert!(plan.steps.is_empty());
        assert!(matches!(plan.default_web, DefaultWeb::None(_)));
    }

    #[test]
    fn which_finds_only_executables_on_path() {
        let fake = FakeHost::new(&[("tool", "exit 0")]);
        fs::write(fake.dir.path().join("plain"), "x").expect("write");
        let host = fake.host(Path::new("/"), &[]);
        assert!(host.which("tool").is_some());
        assert!(host.which("plain").is_none());
        assert!(host.which("absent").is_none());
    }

    #[test]
    fn sh_quote_leaves_plain_words_alone() {
        assert_eq!(sh_quote("/usr/bin/python3.11"), "/usr/bin/python3.11");
        assert_eq!(sh_quote("a b'c"), r"'a b'\''c'");
    }
}
