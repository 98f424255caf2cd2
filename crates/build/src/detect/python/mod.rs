//! Python: which package manager, which interpreter, and the steps that fill `.venv`.
//!
//! - Package manager, by the first of these files (Heroku's order): `Pipfile.lock` or
//!   `Pipfile` (pipenv), `requirements.txt` (pip), `poetry.lock` (poetry), `uv.lock` (uv),
//!   `pyproject.toml` alone (pip installs the project).
//! - Interpreter: the version in `.python-version` (`3.12`, `3.12.1`) or else `runtime.txt`
//!   (`python-3.12.1`), matched on major.minor against the `python3` / `python3.N`
//!   executables on `PATH` and pyenv's installs (`$PYENV_ROOT/versions`); when none matches,
//!   downloaded with uv and carried in the slug ([`fetch`]), or with `DOZEN_PYTHON_DOWNLOADS=never`
//!   (or a failed download) the nearest minor of the same major (ties go to the newer one),
//!   said in the build log. Without a requested version, the host's `python3`.
//! - Everything goes into `.venv` in the app (`python -m venv --copies`), so the slug carries
//!   its interpreter. pipenv, poetry and uv are the host's when on `PATH`, else installed with
//!   pip into `$CACHE_DIR/tools/<tool>` once and reused.
//! - Django (a `manage.py` that mentions django, or django among the requirements):
//!   `manage.py collectstatic --noinput` after the install, unless `DISABLE_COLLECTSTATIC=1`.

mod fetch;
mod version;

use std::path::Path;

use super::{BuildPlan, DefaultWeb, Host, read_json, read_optional, sh_quote};
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

    let asked = version::asked_version(dir)?;
    let interpreters = version::interpreters(host, asked.map_or(3, |(a, _)| a.major));
    let (pick, note) = version::choose(asked, &interpreters, file, fetch::allowed(host)?)?;
    notes.extend(note);
    let mut steps = Vec::new();
    let tool = |name: &str, py: &str, steps: &mut Vec<String>, notes: &mut Vec<String>| -> String {
        if let Some(path) = host.which(name) {
            return sh_quote(&path.to_string_lossy());
        }
        let home = format!("\"$CACHE_DIR/tools/{name}\"");
        let step = format!(
            "test -x {home}/bin/{name} || {{ {py} -m venv {home} && {home}/bin/python -m pip install --quiet {name}; }}"
        );
        if !steps.contains(&step) {
            notes.push(format!(
                "`{name}` is not on the build host's PATH: installing it with pip into the app's build cache ($CACHE_DIR/tools/{name}), once"
            ));
            steps.push(step);
        }
        format!("\"$CACHE_DIR/tools/{name}/bin/{name}\"")
    };
    // `py` runs pip for the tools; `venv` makes `.venv` (or, once a step made it, checks it).
    let (py, venv, downloaded) = match pick {
        version::Pick::Host(python) => {
            let py = sh_quote(&python.exe.to_string_lossy());
            let venv = format!("{py} -m venv --copies .venv");
            (py, venv, false)
        }
        version::Pick::Download { asked, fallback } => {
            let boot = fallback
                .as_ref()
                .map(|f| sh_quote(&f.exe.to_string_lossy()));
            let uv = match (&boot, host.which("uv")) {
                (_, Some(uv)) => sh_quote(&uv.to_string_lossy()),
                (Some(boot), None) => tool("uv", boot, &mut steps, &mut notes),
                (None, None) => {
                    return Err(BuildError::PythonVersion {
                        file: file.into(),
                        asked: asked.to_string(),
                        available: "none, and no `uv` on PATH to download it with".into(),
                    });
                }
            };
            steps.push(fetch::download_step(&uv, asked, fallback.as_ref()));
            let py = boot.unwrap_or_else(|| ".venv/bin/python".into());
            (py, "test -x .venv/bin/python".into(), true)
        }
    };
    let tool = |name: &str, steps: &mut Vec<String>, notes: &mut Vec<String>| {
        tool(name, &py, steps, notes)
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

    if downloaded {
        steps.push(fetch::FOLD.into());
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

#[cfg(test)]
mod tests {
    use super::super::tests::plan_on;
    use super::version::tests::fake_python;
    use super::*;

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
    fn a_python_the_host_lacks_is_downloaded_then_copied_into_the_venv() {
        let py = fake_python("3.11.7");
        let files = [("requirements.txt", "six\n"), (".python-version", "3.14\n")];
        let plan = plan_on(&files, &[("python3", &py)], &[]).expect("plan");
        assert_eq!(plan.steps.len(), 4, "{plan:#?}");
        assert!(
            plan.steps[0].contains("pip install --quiet uv"),
            "{plan:#?}"
        );
        assert!(
            plan.steps[1].contains("\"$CACHE_DIR/tools/uv/bin/uv\" python install --no-bin 3.14"),
            "{plan:#?}"
        );
        assert!(
            plan.steps[1].contains("/python3 -m venv --copies .venv"),
            "the fallback: {plan:#?}"
        );
        assert_eq!(
            plan.steps[2],
            "test -x .venv/bin/python && .venv/bin/python -m pip install -r requirements.txt"
        );
        assert_eq!(plan.steps[3], fetch::FOLD);

        // uv from PATH; the uv manager's own uv is the same one.
        let files = [
            ("uv.lock", ""),
            ("pyproject.toml", ""),
            (".python-version", "3.14.1\n"),
        ];
        let plan = plan_on(&files, &[("python3", &py), ("uv", "exit 0")], &[]).expect("plan");
        assert_eq!(plan.steps.len(), 3, "{plan:#?}");
        assert!(
            plan.steps[0].contains("/uv python install --no-bin 3.14.1"),
            "{plan:#?}"
        );
        assert!(plan.steps[1].contains("sync --locked"), "{plan:#?}");

        let plan = plan_on(
            &[("requirements.txt", ""), (".python-version", "3.14\n")],
            &[("python3", &py)],
            &[("DOZEN_PYTHON_DOWNLOADS", "never")],
        )
        .expect("plan");
        assert_eq!(plan.steps.len(), 1, "no download: {plan:#?}");
        assert!(
            plan.steps[0].contains("/python3 -m venv --copies .venv"),
            "{plan:#?}"
        );
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
