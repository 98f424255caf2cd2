//! An app on disk: its root, Procfile and env files, loaded the same way by every command.

use std::path::{Path, PathBuf};

use anyhow::Context;
use dozen_core::{Formation, Instance, PortPlan, Procfile, RunEnv, load_env_files};

use crate::cli::ProjectArgs;

/// The app's files, read and checked.
#[derive(Debug)]
pub struct Project {
    /// Where processes run.
    pub root: PathBuf,
    /// The Procfile's path as shown to the user.
    pub procfile_path: PathBuf,
    /// The Procfile, if it was read.
    pub procfile: Option<Procfile>,
    /// The env files that were read, in order.
    pub env_files: Vec<PathBuf>,
    /// Variables from the env files (later files win), in first-definition order.
    pub env: Vec<(String, String)>,
    /// What the checkout adds to `PATH` as a build of it would ([`dozen_build::local_run_env`]:
    /// `.venv/bin`, `bin`, `node_modules/.bin`... when they exist), so that `web: gunicorn`
    /// runs the same way here as on the server.
    pub run_env: RunEnv,
}

impl Project {
    /// Read the project named by `args`. With `need_procfile`, a missing Procfile is an
    /// error; otherwise it is read only if present.
    pub fn load(args: &ProjectArgs, need_procfile: bool) -> anyhow::Result<Project> {
        let root = match &args.root {
            Some(r) => r.clone(),
            None => PathBuf::from("."),
        };
        if !root.is_dir() {
            anyhow::bail!("{}: the app root (-d) is not a directory", root.display());
        }
        let procfile_path = in_root(&root, &args.procfile);
        let procfile = if need_procfile || procfile_path.exists() {
            Some(Procfile::load(&procfile_path)?)
        } else {
            None
        };
        let env_files: Vec<PathBuf> = if args.env.is_empty() {
            let default = in_root(&root, Path::new(".env"));
            if default.is_file() {
                vec![default]
            } else {
                Vec::new()
            }
        } else {
            args.env.iter().map(|e| in_root(&root, e)).collect()
        };
        let env = load_env_files(&env_files, &|key| std::env::var(key).ok())?;
        let run_env = dozen_build::local_run_env(&root);
        Ok(Project {
            root,
            procfile_path,
            procfile,
            env_files,
            env,
            run_env,
        })
    }

    /// The Procfile (present whenever `load` was asked to need it).
    pub fn procfile(&self) -> anyhow::Result<&Procfile> {
        self.procfile
            .as_ref()
            .with_context(|| format!("{}: no Procfile", self.procfile_path.display()))
    }

    /// The processes to run: the formation (default one of each), only the `only` types if
    /// any are named, ports counted from `base`.
    pub fn plan(
        &self,
        formation: Option<&str>,
        base: u16,
        only: &[String],
    ) -> anyhow::Result<Vec<Instance>> {
        let procfile = self.procfile()?;
        let formation = match formation {
            Some(spec) => Formation::parse(spec).context("-m/--formation")?,
            None => Formation::default(),
        };
        Ok(PortPlan::plan(procfile, &formation, base, only)?)
    }

    /// The environment of one process: the env files' variables, the checkout's
    /// [`run_env`](Self::run_env) in front of `PATH` (the env files' `PATH`, else dozen's),
    /// then `PORT` and `PS`. (dozen's own environment is inherited underneath.)
    pub fn process_env(&self, port: u16, ps: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k != "PORT" && k != "PS")
            .cloned()
            .collect();
        if !self.run_env.is_empty() {
            let root = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
            let inherited = std::env::var("PATH").unwrap_or_default();
            self.run_env.apply(&root, &mut env, &inherited);
        }
        env.push(("PORT".into(), port.to_string()));
        env.push(("PS".into(), ps.to_string()));
        env
    }

    /// The line said once at start when the checkout adds to `PATH`.
    pub fn run_env_note(&self) -> Option<String> {
        self.run_env
            .describe()
            .map(|what| format!("{what} of the checkout, as on dozen server"))
    }
}

/// A path given on the command line, relative to the root unless absolute.
fn in_root(root: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() || root == Path::new(".") {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}
