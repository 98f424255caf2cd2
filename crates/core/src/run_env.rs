//! The run environment of a slug: what its processes need in their environment besides config
//! vars (Heroku's buildpacks write `.profile.d/` scripts for the same purpose).
//!
//! A build records one [`RunEnv`] in the slug's manifest: directories of the app to put in front
//! of `PATH` (`.venv/bin`, `node_modules/.bin`, `bin`) and default variables
//! (`PYTHONUNBUFFERED=1`, `NODE_ENV=production`). Wherever a release runs, [`RunEnv::apply`]
//! merges it with the environment built from config: config vars win over the defaults, and
//! `PATH` is prepended to, never replaced.

use std::path::Path;

/// What a slug's processes need in their environment, recorded by the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEnv {
    /// Directories relative to the app's root, put in front of `PATH` in this order (the first
    /// is searched first). Absolute entries are kept as they are.
    pub path: Vec<String>,
    /// Variables set only when the environment does not already have them, in order.
    pub defaults: Vec<(String, String)>,
}

impl RunEnv {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.path.is_empty() && self.defaults.is_empty()
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
        let dirs: Vec<String> = self
            .path
            .iter()
            .map(|p| {
                if Path::new(p).is_absolute() {
                    p.clone()
                } else {
                    app_dir.join(p).to_string_lossy().into_owned()
                }
            })
            .collect();
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
}
