//! Python: which package manager, which interpreter, and the steps that fill `.venv`.
//!
//! - Package manager, by the first of these files (Heroku's order): `Pipfile.lock` or
//!   `Pipfile` (pipenv), `requirements.txt` (pip), `poetry.lock` (poetry), `uv.lock` (uv),
//!   `pyproject.toml` alone (pip installs the project).
//! - Interpreter: the version in `.python-version` (`3.12`, `3.12.1`) or else `runtime.txt`
//!   (`python-3.12.1`), matched on major.minor against the `python3` / `python3.N`
//!   executables on `PATH` and pyenv's installs (`$PYENV_ROOT/versions`); when none matches, the nearest minor of the same major (ties go to
//!   the newer one), said in the build log; no interpreter of the same major fails the build.
//!   Without a requested version, the host's `python3`.
//! - Everything goes into `.venv` in the app (`python -m venv --copies`), so the slug carries
//!   its interpreter. pipenv, poetry and uv are the host's when on `PATH`, else installed with
//!   pip into `$CACHE_DIR/tools/<tool>` once and reused.
//! - Django (a `manage.py` that mentions django, or django among the requirements):
//!   `manage.py collectstatic --noinput` after the install, unless `DISABLE_COLLECTSTATIC=1`.

use std::path::{Path, PathBuf};

use super::{BuildPlan, DefaultWeb, Host, missing, read_json, read_optional, sh_quote};
use crate::error::BuildError;

/// Django's collectstatic, with what to do when it fails: builds see no config vars.
const COLLECTSTATIC: &str = ".venv/bin/python manage.py collectstatic --noinput || { rc=$?; echo \"collectstatic failed (above). Give the settings it needs a default (builds see no config vars), or skip it: dozen config:set DISABLE_COLLECTSTATIC=1, or DISABLE_COLLECTSTATIC = \\\"1\\\" under [build.env] in dozen.toml\" >&2; exit $rc; }";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Pipenv,
    Pip,
    Poetry,
    Uv,
    PipProject,
}

const MANAGER_FILES: [(&str, Manager); 6] = [
    ("Pipfile.lock", Manager::Pipenv),
    ("Pipfile", Manager::Pipenv),
    ("requirements.txt", Manager::Pip),
    ("poetry.lock", Manager::Poetry),
    ("uv.lock", Manager::Uv),
    ("pyproject.toml", Manager::PipProject),
];

/// A version an app asks for: major, minor and maybe patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asked {
    major: u32,
    minor: u32,
    patch: Option<u32>,
}

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

/// An interpreter the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    version: (u32, u32, u32),
    exe: PathBuf,
}

impl Interpreter {
    fn version(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }
}

pub(super) fn plan(dir: &Path, host: &Host) -> Result<Option<BuildPlan>, BuildError> {
    let found: Vec<(&'static str, Manager)> = MANAGER_FILES
        .iter()
        .copied()
        .filter(|(f, _)| dir.join(f).is_file())
        .collect();
    let Some(&(file, manager)) = found.first() else {
        return Ok(None);
    };
    let mut notes = Vec::new();
    let others: Vec<&str> = found
        .iter()
        .filter(|(_, m)| *m != manager && *m != Manager::PipProject)
        .map(|(f, _)| *f)
        .collect();
    if !others.is_empty() {
        notes.push(format!(
            "warning: found {file} and {}; installing with {file} only (the first of Pipfile.lock, requirements.txt, poetry.lock, uv.lock); remove the others to silence this",
            others.join(", ")
        ));
    }
    if dir.join("Pipfile.lock").is_file() {
        // A lock file that does not parse fails here, naming its line, not deep in pipenv.
        read_json(dir, "Pipfile.lock")?;
    }

    let asked = asked_version(dir)?;
    let interpreters = interpreters(host, asked.map_or(3, |(a, _)| a.major));
    let (python, note) = choose(asked, &interpreters, file)?;
    notes.extend(note);
    let py = sh_quote(&python.exe.to_string_lossy());
    let venv = format!("{py} -m venv --copies .venv");

    let mut steps = Vec::new();
    let tool = |name: &str, steps: &mut Vec<String>, notes: &mut Vec<String>| -> String {
        if let Some(path) = host.which(name) {
            return sh_quote(&path.to_string_lossy());
        }
        let home = format!("\"$CACHE_DIR/tools/{name}\"");
        notes.push(format!(
            "`{name}` is not on the build host's PATH: installing it with pip into the app's build cache ($CACHE_DIR/tools/{name}), once"
        ));
        steps.push(format!(
            "test -x {home}/bin/{name} || {{ {py} -m venv {home} && {home}/bin/python -m pip install --quiet {name}; }}"
        ));
        format!("\"$CACHE_DIR/tools/{name}/bin/{name}\"")
    };
    match manager {
        Manager::Pip => steps.push(format!(
            "{venv} && .venv/bin/python -m pip install -r requirements.txt"
        )),
        Manager::PipProject => steps.push(format!("{venv} && .venv/bin/python -m pip install .")),
        Manager::Pipenv => {
            let pipenv = tool("pipenv", &mut steps, &mut notes);
            let install = if dir.join("Pipfile.lock").is_file() {
                "install --deploy"
            } else {
                "install --skip-lock"
            };
            steps.push(format!(
                "{venv} && PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1 {pipenv} {install}"
            ));
        }
        Manager::Poetry => {
            let poetry = tool("poetry", &mut steps, &mut notes);
            steps.push(format!(
                "{venv} && POETRY_VIRTUALENVS_IN_PROJECT=true POETRY_CACHE_DIR=\"$CACHE_DIR/poetry\" {poetry} install --only main --no-root --no-interaction"
            ));
        }
        Manager::Uv => {
            let uv = tool("uv", &mut steps, &mut notes);
            steps.push(format!(
                "{venv} && UV_PROJECT_ENVIRONMENT=.venv UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_CACHE_DIR=\"$CACHE_DIR/uv\" {uv} sync --locked --no-default-groups --no-install-project --python .venv/bin/python"
            ));
        }
    }

    if is_django(dir)? {
        if host.var("DISABLE_COLLECTSTATIC") == Some("1") {
            notes.push("Django app: DISABLE_COLLECTSTATIC=1, so collectstatic is not run".into());
        } else {
            notes.push(
                "Django app: running `manage.py collectstatic --noinput` after the install (skip it with the config var DISABLE_COLLECTSTATIC=1 or in dozen.toml's [build.env])"
                    .into(),
            );
            steps.push(COLLECTSTATIC.into());
        }
    }

    let mut plan = BuildPlan::new("python", file, steps);
    plan.notes = notes;
    plan.default_web = DefaultWeb::None(
        "a Python app has no default web process (Heroku gives none either): add a Procfile with a line such as `web: gunicorn myproject.wsgi`".into(),
    );
    Ok(Some(plan))
}

/// A Django app: `manage.py` mentions django, or a dependency file names it.
fn is_django(dir: &Path) -> Result<bool, BuildError> {
    let Some(manage) = read_optional(dir, "manage.py")? else {
        return Ok(false);
    };
    if manage.to_ascii_lowercase().contains("django") {
        return Ok(true);
    }
    for file in [
        "requirements.txt",
        "Pipfile",
        "Pipfile.lock",
        "pyproject.toml",
        "poetry.lock",
        "uv.lock",
    ] {
        if read_optional(dir, file)?.is_some_and(|t| t.to_ascii_lowercase().contains("django")) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The version asked for, and the file that asks: `.python-version` first, then
/// `runtime.txt`.
fn asked_version(dir: &Path) -> Result<Option<(Asked, &'static str)>, BuildError> {
    if let Some(text) = read_optional(dir, ".python-version")? {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            return match parse_version(t.strip_prefix("python-").unwrap_or(t)) {
                Some(v) => Ok(Some((v, ".python-version"))),
                None => Err(BuildError::Manifest {
                    file: ".python-version".into(),
                    line: Some(i + 1),
                    message: format!(
                        "`{t}` is not a Python version; write one such as 3.12 or 3.12.1"
                    ),
                }),
            };
        }
    }
    if let Some(text) = read_optional(dir, "runtime.txt")? {
        let t = text.trim();
        let line = text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0) + 1;
        return match t.strip_prefix("python-").and_then(parse_version) {
            Some(v) => Ok(Some((v, "runtime.txt"))),
            None => Err(BuildError::Manifest {
                file: "runtime.txt".into(),
                line: Some(line),
                message: format!(
                    "`{}` is not a Python runtime; write one such as python-3.12.1",
                    t.lines().next().unwrap_or_default()
                ),
            }),
        };
    }
    Ok(None)
}

fn parse_version(s: &str) -> Option<Asked> {
    let parts: Vec<&str> = s.split('.').collect();
    let num = |p: &str| -> Option<u32> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    match parts.as_slice() {
        [a, b] => Some(Asked {
            major: num(a)?,
            minor: num(b)?,
            patch: None,
        }),
        [a, b, c] => Some(Asked {
            major: num(a)?,
            minor: num(b)?,
            patch: Some(num(c)?),
        }),
        _ => None,
    }
}

/// The interpreters of one major version that can make a virtualenv with pip: on `PATH`,
/// `pythonX` first (the host's default), then `pythonX.N`; then those pyenv installed under
/// `$PYENV_ROOT/versions` (when the build environment has `PYENV_ROOT`); each only once.
fn interpreters(host: &Host, major: u32) -> Vec<Interpreter> {
    const PROBE: &str = "import sys, venv, ensurepip; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])";
    let mut names = vec![format!("python{major}")];
    names.extend((0..=30).map(|n| format!("python{major}.{n}")));
    let shims = host.var("PYENV_ROOT").map(|r| Path::new(r).join("shims"));
    let shims = shims.as_deref();
    let mut candidates: Vec<PathBuf> = names
        .iter()
        .enumerate()
        .flat_map(|(i, n)| {
            // pyenv's `pythonX.N` shims are slow scripts that run only the selected version,
            // which its installs below cover; its `pythonX` is the host's default.
            host.which_all(n)
                .into_iter()
                .filter(move |p| i == 0 || shims.is_none_or(|s| !p.starts_with(s)))
        })
        .collect();
    // pyenv's shims only run the versions pyenv has selected: ask its installs directly.
    if let Some(root) = host.var("PYENV_ROOT") {
        let mut installs: Vec<PathBuf> = std::fs::read_dir(Path::new(root).join("versions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin").join(format!("python{major}")))
            .filter(|p| p.is_file() && host.may_run(p))
            .collect();
        installs.sort();
        candidates.extend(installs);
    }
    // Probe them all at once: each is a process start, some of them slow.
    let outputs: Vec<Option<String>> = std::thread::scope(|scope| {
        let probes: Vec<_> = candidates
            .iter()
            .map(|path| scope.spawn(move || host.output(path, &["-c", PROBE])))
            .collect();
        probes
            .into_iter()
            .map(|p| p.join().unwrap_or_default())
            .collect()
    });
    let mut found: Vec<Interpreter> = Vec::new();
    for out in outputs {
        let Some(out) = out else {
            continue;
        };
        let mut lines = out.lines();
        let (Some(exe), Some(version)) = (lines.next(), lines.next()) else {
            continue;
        };
        let v: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
        let [a, b, c] = v[..] else { continue };
        let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| PathBuf::from(exe));
        if found.iter().any(|f| f.exe == exe) {
            continue;
        }
        found.push(Interpreter {
            version: (a, b, c),
            exe,
        });
    }
    found
}

/// Pick the interpreter for `asked` among `have` (the first is the host's default), and what
/// to say about the choice.
fn choose(
    asked: Option<(Asked, &'static str)>,
    have: &[Interpreter],
    detected_from: &'static str,
) -> Result<(Interpreter, Option<String>), BuildError> {
    let Some((asked, file)) = asked else {
        let Some(first) = have.first() else {
            return Err(missing("python3", detected_from, "python"));
        };
        return Ok((
            first.clone(),
            Some(format!(
                "using Python {} ({}), the host's python3: no .python-version or runtime.txt asks for a version",
                first.version(),
                first.exe.display()
            )),
        ));
    };
    let list = || {
        if have.is_empty() {
            "none".to_string()
        } else {
            have.iter()
                .map(|i| format!("{} ({})", i.version(), i.exe.display()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let same_line: Vec<&Interpreter> = have
        .iter()
        .filter(|i| i.version.0 == asked.major && i.version.1 == asked.minor)
        .collect();
    if let Some(exact) = same_line
        .iter()
        .find(|i| asked.patch.is_none_or(|p| i.version.2 == p))
        .or(same_line.first())
    {
        let note = format!(
            "using Python {} ({}): {file} asks for {asked}",
            exact.version(),
            exact.exe.display()
        );
        return Ok(((*exact).clone(), Some(note)));
    }
    let nearest = have
        .iter()
        .filter(|i| i.version.0 == asked.major)
        .min_by_key(|i| {
            let d = i.version.1.abs_diff(asked.minor);
            // Equally far: the newer minor first.
            (d, i.version.1 < asked.minor)
        });
    match nearest {
        Some(n) => Ok((
            n.clone(),
            Some(format!(
                "warning: {file} asks for Python {asked}, which this host does not have; it has {}; using {}, the nearest with the same major version",
                list(),
                n.version()
            )),
        )),
        None => Err(BuildError::PythonVersion {
            file: file.into(),
            asked: asked.to_string(),
            available: list(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{FakeHost, app, plan_on};
    use super::*;

    /// A fake interpreter: answers the probe with its own path and `version`.
    fn fake_python(version: &str) -> String {
        format!("echo \"$0\"; echo {version}")
    }

    fn interp(v: (u32, u32, u32)) -> Interpreter {
        Interpreter {
            version: v,
            exe: PathBuf::from(format!("/usr/bin/python{}.{}", v.0, v.1)),
        }
    }

    fn ask(s: &str) -> Option<(Asked, &'static str)> {
        Some((parse_version(s).expect("version"), "runtime.txt"))
    }

    #[test]
    fn requirements_make_a_venv_with_the_hosts_python3() {
        let py = fake_python("3.11.7");
        let plan =
            plan_on(&[("requirements.txt", "six\n")], &[("python3", &py)], &[]).expect("plan");
        assert_eq!(plan.kind, "python");
        assert_eq!(plan.detected_from, Some("requirements.txt"));
        assert_eq!(plan.steps.len(), 1);
        assert!(
            plan.steps[0].ends_with(
                "/python3 -m venv --copies .venv && .venv/bin/python -m pip install -r requirements.txt"
            ),
            "{plan:?}"
        );
        assert!(matches!(plan.default_web, DefaultWeb::None(ref r) if r.contains("Procfile")));
    }

    #[test]
    fn python_version_exact_then_nearest_same_major_then_error() {
        let have = [interp((3, 11, 7)), interp((3, 9, 18)), interp((3, 13, 0))];
        let (p, note) = choose(ask("3.13"), &have, "requirements.txt").expect("exact");
        assert_eq!(p.version, (3, 13, 0));
        assert!(!note.expect("note").contains("warning"));
        let (p, _) =
            choose(ask("3.11.2"), &have, "requirements.txt").expect("same minor, other patch");
        assert_eq!(p.version, (3, 11, 7));
        let (p, note) = choose(ask("3.12.1"), &have, "requirements.txt").expect("nearest");
        assert_eq!(p.version, (3, 13, 0), "equally far: the newer");
        let note = note.expect("note");
        assert!(note.contains("asks for Python 3.12.1"), "{note}");
        assert!(note.contains("3.9.18"), "lists what the host has: {note}");
        let (p, _) = choose(ask("3.10"), &have, "requirements.txt").expect("nearest");
        assert_eq!(p.version, (3, 11, 7), "3.9 and 3.11 equally far: 3.11");
        let e = choose(ask("4.0"), &have, "requirements.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtime.txt asks for Python 4.0"), "{e}");
        assert!(e.contains("3.11.7"), "{e}");
        let (p, _) = choose(None, &have, "requirements.txt").expect("default");
        assert_eq!(p.version, (3, 11, 7));
    }

    #[test]
    fn python_version_files_are_read_and_bad_ones_named_with_their_line() {
        let dir = app(&[("runtime.txt", "python-3.12.1\n")]);
        let (v, f) = asked_version(dir.path()).expect("ok").expect("some");
        assert_eq!((v.to_string(), f), ("3.12.1".into(), "runtime.txt"));
        let dir = app(&[("runtime.txt", "\npython3.12\n")]);
        let e = asked_version(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("runtime.txt:2:"), "{e}");
        let dir = app(&[
            (".python-version", "# pinned\n3.12\n"),
            ("runtime.txt", "x"),
        ]);
        let (v, f) = asked_version(dir.path()).expect("ok").expect("some");
        assert_eq!((v.to_string(), f), ("3.12".into(), ".python-version"));
        let dir = app(&[(".python-version", "\nsystem\n")]);
        let e = asked_version(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with(".python-version:2:"), "{e}");
    }

    #[test]
    fn interpreters_are_probed_on_path_and_deduplicated() {
        let fake = FakeHost::new(&[
            ("python3", &fake_python("3.11.7")),
            ("python3.11", &fake_python("3.11.7")),
            (
                "python3.12",
                "echo 'pyenv: python3.12: command not found' >&2; exit 127",
            ),
            ("python3.13", &fake_python("3.13.0")),
        ]);
        let dir = app(&[]);
        let found = interpreters(&fake.host(dir.path(), &[]), 3);
        let versions: Vec<_> = found.iter().map(|i| i.version).collect();
        // python3 and python3.11 are two files here, so both count; the failing shim does not.
        assert_eq!(versions, [(3, 11, 7), (3, 11, 7), (3, 13, 0)]);
    }

    #[test]
    fn pyenv_installs_count_although_their_shims_fail() {
        let fake = FakeHost::new(&[("python3", &fake_python("3.11.7"))]);
        let root = tempfile::tempdir().expect("tempdir");
        for v in ["3.13.0", "2.7.18"] {
            let bin = root.path().join("versions").join(v).join("bin");
            std::fs::create_dir_all(&bin).expect("mkdir");
            let major = &v[..1];
            let p = bin.join(format!("python{major}"));
            std::fs::write(&p, format!("#!/bin/sh\n{}\n", fake_python(v))).expect("write");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let dir = app(&[]);
        let root = root.path().display().to_string();
        let host = fake.host(dir.path(), &[("PYENV_ROOT", root.as_str())]);
        let versions: Vec<_> = interpreters(&host, 3).iter().map(|i| i.version).collect();
        assert_eq!(versions, [(3, 11, 7), (3, 13, 0)]);
    }

    #[test]
    fn package_managers_in_herokus_order_with_tools_from_path_or_the_cache() {
        let py = fake_python("3.11.7");
        let plan = plan_on(
            &[
                ("Pipfile", ""),
                ("Pipfile.lock", "{}"),
                ("requirements.txt", ""),
            ],
            &[("python3", &py), ("pipenv", "exit 0")],
            &[],
        )
        .expect("plan");
        assert_eq!(plan.detected_from, Some("Pipfile.lock"));
        assert_eq!(plan.steps.len(), 1, "pipenv from PATH: {plan:?}");
        assert!(
            plan.steps[0].contains("/pipenv install --deploy"),
            "{plan:?}"
        );
        assert!(
            plan.notes.iter().any(|n| n.contains("requirements.txt")),
            "{plan:?}"
        );

        let plan = plan_on(
            &[("poetry.lock", ""), ("pyproject.toml", "")],
            &[("python3", &py)],
            &[],
        )
        .expect("plan");
        assert_eq!(plan.detected_from, Some("poetry.lock"));
        assert!(
            plan.steps[0].contains("pip install --quiet poetry"),
            "{plan:?}"
        );
        assert!(
            plan.steps[1].contains("\"$CACHE_DIR/tools/poetry/bin/poetry\" install --only main"),
            "{plan:?}"
        );
        assert!(
            plan.notes.iter().any(|n| n.contains("build cache")),
            "{plan:?}"
        );

        let plan = plan_on(
            &[("uv.lock", ""), ("pyproject.toml", "")],
            &[("python3", &py), ("uv", "exit 0")],
            &[],
        )
        .expect("plan");
        assert!(plan.steps[0].contains("sync --locked"), "{plan:?}");

        let plan = plan_on(&[("pyproject.toml", "")], &[("python3", &py)], &[]).expect("plan");
        assert!(plan.steps[0].ends_with("pip install ."), "{plan:?}");
    }

    #[test]
    fn broken_pipfile_lock_is_named_with_its_line() {
        let py = fake_python("3.11.7");
        let e = plan_on(
            &[("Pipfile.lock", "{\n\"_meta\": ,\n}")],
            &[("python3", &py)],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("Pipfile.lock:2:"), "{e}");
    }

    #[test]
    fn django_runs_collectstatic_unless_disabled() {
        let py = fake_python("3.11.7");
        let files = [
            ("requirements.txt", "Django==5.0\n"),
            ("manage.py", "import sys\n"),
        ];
        let plan = plan_on(&files, &[("python3", &py)], &[]).expect("plan");
        assert_eq!(plan.steps.last().map(String::as_str), Some(COLLECTSTATIC));
        assert!(COLLECTSTATIC.starts_with(".venv/bin/python manage.py collectstatic --noinput"));
        let plan = plan_on(
            &files,
            &[("python3", &py)],
            &[("DISABLE_COLLECTSTATIC", "1")],
        )
        .expect("plan");
        assert_eq!(plan.steps.len(), 1);
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("DISABLE_COLLECTSTATIC"))
        );
        let plan =
            plan_on(&[("requirements.txt", "flask\n")], &[("python3", &py)], &[]).expect("plan");
        assert_eq!(plan.steps.len(), 1, "not Django: {plan:?}");
    }

    #[test]
    fn no_python_on_the_host_names_the_tool() {
        let e = plan_on(&[("requirements.txt", "")], &[], &[]).unwrap_err();
        assert!(
            matches!(e, BuildError::MissingTool { ref tool, .. } if tool == "python3"),
            "{e}"
        );
    }
}
