//! The run environment of a slug: what its processes need in their environment besides config
//! vars (Heroku's buildpacks write `.profile.d/` scripts for the same purpose).
//!
//! A build records one [`RunEnv`] in the slug's manifest: directories of the app to put in front
//! of `PATH` (`.venv/bin`, `node_modules/.bin`, `bin`) and default variables
//! (`PYTHONUNBUFFERED=1`, `NODE_ENV=production`). Wherever a release runs, [`RunEnv::apply`]
//! merges it with the environment built from config: config vars win over the defaults, and
//! `PATH` is prepended to, never replaced.
//!
//! It also lists the app's own start-up scripts ([`RunEnv::profile`]: `.profile.d/*.sh`, then
//! `.profile`, as Heroku's dynos source them); [`RunEnv::profile_line`] makes the shell source
//! them before the command, keeping the `exec` of [`crate::command`].
//!
//! Where dozen does not spawn the process itself (a Kubernetes pod, a systemd unit, an OCI
//! image), [`RunEnv::shell_line`] has the shell do all of it: prepend `PATH`, set the defaults
//! the environment lacks, source the scripts, then `exec` the command.
//!
//! ```
//! use dozen_core::RunEnv;
//! use std::path::Path;
//!
//! let mut run = RunEnv::default();
//! run.push_path(".venv/bin");
//! run.push_default("PYTHONUNBUFFERED", "1");
//! let mut env = vec![("PATH".to_string(), "/usr/bin".to_string())];
//! run.apply(Path::new("/srv/app"), &mut env, "/bin");
//! assert_eq!(env, [
//!     ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
//!     ("PATH".to_string(), "/srv/app/.venv/bin:/usr/bin".to_string()),
//! ]);
//! assert_eq!(
//!     run.shell_line("/app", "gunicorn app:application"),
//!     "export PATH='/app/.venv/bin'\"${PATH:+:$PATH}\"; \
//!      [ \"${PYTHONUNBUFFERED+set}\" ] || export PYTHONUNBUFFERED='1'; \
//!      exec gunicorn app:application"
//! );
//! ```

use std::path::Path;

use crate::command::exec_form;

/// What a slug's processes need in their environment, recorded by the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEnv {
    /// Directories relative to the app's root, put in front of `PATH` in this order (the first
    /// is searched first). Absolute entries are kept as they are.
    pub path: Vec<String>,
    /// Variables set only when the environment does not already have them, in order.
    pub defaults: Vec<(String, String)>,
    /// The app's own start-up scripts, relative to its root, sourced in this order by the
    /// shell before each process's command: `.profile.d/*.sh` in lexical order, then
    /// `.profile` (what Heroku's dynos do).
    pub profile: Vec<String>,
}

impl RunEnv {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.path.is_empty() && self.defaults.is_empty() && self.profile.is_empty()
    }

    /// One line for a log that says what this adds, such as `PATH starts with .venv/bin, bin;
    /// PYTHONUNBUFFERED=1 unless set; sources .profile`; `None` when it adds nothing. (The
    /// defaults are the build's, never config values.)
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.path.is_empty() {
            parts.push(format!("PATH starts with {}", self.path.join(", ")));
        }
        if !self.defaults.is_empty() {
            let vars: Vec<String> = self
                .defaults
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("{} unless set", vars.join(" ")));
        }
        if !self.profile.is_empty() {
            parts.push(format!("sources {}", self.profile.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// [`RunEnv::path`] as absolute directories under `app_dir`.
    pub fn path_dirs(&self, app_dir: &Path) -> Vec<String> {
        self.path
            .iter()
            .map(|p| {
                if Path::new(p).is_absolute() {
                    p.clone()
                } else {
                    app_dir.join(p).to_string_lossy().into_owned()
                }
            })
            .collect()
    }

    /// The line `sh -c` runs for `command` when the environment itself was already merged
    /// with [`RunEnv::apply`]: the profile scripts (under `app_dir`) sourced, then
    /// [`exec_form`] of the command. With no scripts, just `command`, unchanged (the shell
    /// then adds `exec` itself).
    pub fn profile_line(&self, app_dir: &str, command: &str) -> String {
        if self.profile.is_empty() {
            return command.to_string();
        }
        let mut line = String::new();
        self.push_sourcing(app_dir, &mut line);
        line.push_str(&exec_form(command));
        line
    }

    /// The line `sh -c` runs for `command` where nothing merged the environment beforehand
    /// (exports): `PATH` prepended with the directories under `app_dir`, each default set
    /// when the environment does not have it (an empty value counts as set), the profile
    /// scripts sourced, then [`exec_form`] of the command. With nothing to do, just
    /// `command`, unchanged.
    pub fn shell_line(&self, app_dir: &str, command: &str) -> String {
        if self.is_empty() {
            return command.to_string();
        }
        let mut line = String::new();
        if !self.path.is_empty() {
            let dirs = self.path_dirs(Path::new(app_dir)).join(":");
            line.push_str(&format!(
                "export PATH={}\"${{PATH:+:$PATH}}\"; ",
                sh_quote(&dirs)
            ));
        }
        for (key, value) in &self.defaults {
            if is_shell_name(key) {
                line.push_str(&format!(
                    "[ \"${{{key}+set}}\" ] || export {key}={}; ",
                    sh_quote(value)
                ));
            }
        }
        self.push_sourcing(app_dir, &mut line);
        line.push_str(&exec_form(command));
        line
    }

    fn push_sourcing(&self, app_dir: &str, line: &mut String) {
        for script in &self.profile {
            let path = if Path::new(script).is_absolute() {
                script.clone()
            } else {
                Path::new(app_dir)
                    .join(script)
                    .to_string_lossy()
                    .into_owned()
            };
            line.push_str(". ");
            line.push_str(&sh_quote(&path));
            line.push_str("; ");
        }
    }

    /// Add `dir` to the end of [`RunEnv::path`] unless it is there already.
    pub fn push_path(&mut self, dir: impl Into<String>) {
        let dir = dir.into();
        if !self.path.contains(&dir) {
            self.path.push(dir);
        }
    }

    /// Add a default variable unless `key` has one already (the first one set wins).
    pub fn push_default(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        if !self.defaults.iter().any(|(k, _)| *k == key) {
            self.defaults.push((key, value.into()));
        }
    }

    /// Merge into `env`, the environment of a process whose app lives in `app_dir`: each
    /// default is added when `env` has no such key, and the path entries (resolved against
    /// `app_dir`) go in front of `env`'s `PATH`, or in front of `fallback_path` when `env` has
    /// none. An entry already first in `PATH` is not added twice.
    pub fn apply(&self, app_dir: &Path, env: &mut Vec<(String, String)>, fallback_path: &str) {
        for (key, value) in &self.defaults {
            if !env.iter().any(|(k, _)| k == key) {
                env.push((key.clone(), value.clone()));
            }
        }
        if self.path.is_empty() {
            return;
        }
        let dirs = self.path_dirs(app_dir);
        let current = env
            .iter()
            .position(|(k, _)| k == "PATH")
            .map(|i| env.remove(i).1)
            .unwrap_or_else(|| fallback_path.to_string());
        let rest: Vec<&str> = current
            .split(':')
            .filter(|entry| !entry.is_empty() && !dirs.iter().any(|d| d == entry))
            .collect();
        let mut joined = dirs.join(":");
        for entry in rest {
            joined.push(':');
            joined.push_str(entry);
        }
        env.push(("PATH".into(), joined));
    }
}

/// `text` in single quotes for `sh`, each `'` written as `'\''`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Whether `key` can be named in `${key-...}`: letters, digits and `_`, not starting with a
/// digit. Other keys are left out of [`RunEnv::shell_line`] (the shell could not set them).
fn is_shell_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn path_is_prepended_and_config_wins_over_defaults() {
        let mut run = RunEnv::default();
        run.push_path(".venv/bin");
        run.push_path("bin");
        run.push_default("PYTHONUNBUFFERED", "1");
        run.push_default("NODE_ENV", "production");
        let mut env = vec![
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("NODE_ENV".to_string(), "staging".to_string()),
        ];
        run.apply(Path::new("/srv/app"), &mut env, "/usr/bin");
        assert_eq!(
            get(&env, "PATH"),
            Some("/srv/app/.venv/bin:/srv/app/bin:/usr/bin:/bin")
        );
        assert_eq!(get(&env, "NODE_ENV"), Some("staging"));
        assert_eq!(get(&env, "PYTHONUNBUFFERED"), Some("1"));
    }

    #[test]
    fn fallback_path_is_used_and_entries_are_not_doubled() {
        let mut run = RunEnv::default();
        run.push_path("bin");
        run.push_path("bin");
        let mut env = Vec::new();
        run.apply(Path::new("/a"), &mut env, "/a/bin:/usr/bin");
        assert_eq!(get(&env, "PATH"), Some("/a/bin:/usr/bin"));
    }

    fn sh(line: &str, env: &[(&str, &str)], dir: &Path) -> String {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .current_dir(dir)
            .output()
            .expect("run /bin/sh");
        assert!(out.status.success(), "{line}: {out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn describe_says_what_is_added() {
        let mut run = RunEnv::default();
        assert_eq!(run.describe(), None);
        run.push_path(".venv/bin");
        run.push_path("bin");
        run.push_default("PYTHONUNBUFFERED", "1");
        run.profile.push(".profile".into());
        assert_eq!(
            run.describe().as_deref(),
            Some(
                "PATH starts with .venv/bin, bin; PYTHONUNBUFFERED=1 unless set; sources .profile"
            )
        );
    }

    #[test]
    fn nothing_to_do_leaves_the_command_alone() {
        let run = RunEnv::default();
        assert_eq!(run.shell_line("/app", "./serve"), "./serve");
        assert_eq!(run.profile_line("/app", "./serve"), "./serve");
    }

    #[test]
    fn shell_line_prepends_path_sets_missing_defaults_and_sources_scripts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = dir.path().join("it's here");
        std::fs::create_dir_all(app.join(".profile.d")).expect("mkdir");
        std::fs::create_dir_all(app.join("bin")).expect("mkdir");
        std::fs::write(
            app.join(".profile.d/a.sh"),
            "export FROM_PROFILE_D=\"d:$FROM_PROFILE\"\n",
        )
        .expect("write");
        std::fs::write(app.join(".profile"), "export FROM_PROFILE=p\n").expect("write");
        let mut run = RunEnv::default();
        run.push_path("bin");
        run.push_default("NODE_ENV", "production");
        run.push_default("QUOTED", "it's $HOME");
        run.push_default("EMPTY_IS_SET", "default");
        run.push_default("not-a-shell-name", "x");
        run.profile = vec![".profile.d/a.sh".into(), ".profile".into()];
        let app_dir = app.to_str().expect("utf-8 path");
        let line = run.shell_line(
            app_dir,
            "echo \"$PATH|$NODE_ENV|$QUOTED|$EMPTY_IS_SET|$FROM_PROFILE_D|$FROM_PROFILE\"",
        );
        let out = sh(
            &line,
            &[("NODE_ENV", "staging"), ("EMPTY_IS_SET", "")],
            &app,
        );
        assert_eq!(
            out,
            format!("{app_dir}/bin:/usr/bin:/bin|staging|it's $HOME||d:|p\n")
        );
    }

    #[test]
    fn sourcing_keeps_the_exec_of_a_simple_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".profile"), "GREETING=hi\n").expect("write");
        let run = RunEnv {
            profile: vec![".profile".into()],
            ..RunEnv::default()
        };
        let app_dir = dir.path().to_str().expect("utf-8 path");
        // With `exec`, the inner shell's parent is this test, not the outer shell.
        let line = run.profile_line(app_dir, "sh -c 'echo $PPID'");
        assert!(line.ends_with("; exec sh -c 'echo $PPID'"), "{line}");
        let out = sh(&line, &[], dir.path());
        assert_eq!(out.trim(), std::process::id().to_string());
        // Shell syntax is kept as written, after the scripts.
        let line = run.profile_line(app_dir, "echo $GREETING && echo two");
        assert_eq!(sh(&line, &[], dir.path()), "hi\ntwo\n");
    }
}
