//! A release as systemd units, for a host without `dozen server` (foreman's `export systemd`).
//!
//! [`units`] writes, for app `shop`:
//!
//! - `shop.target`: `Wants=` every instance, `WantedBy=multi-user.target`, so
//!   `systemctl enable --now shop.target` starts the app at boot and now, and
//!   `systemctl stop shop.target` stops all of it;
//! - one unit per process instance, `shop-web-1.service`, `shop-web-2.service`,
//!   `shop-worker-1.service` (concrete units rather than `@` templates: each carries its own
//!   `PORT`, and `systemd-analyze verify` checks each as written). Each is `PartOf=` the target
//!   and runs `/bin/sh -c` with the process type's command (the way dozen runs it) in
//!   [`SystemdOptions::workdir`], with `EnvironmentFile=` the config, `Environment=PORT=` from
//!   dozen's port plan (a block of 100 per process type in Procfile order, as `dozen start`
//!   gives them) and `PS=web.1`, `KillMode=mixed` (SIGTERM to the main process, SIGKILL to what
//!   is left after the grace), `TimeoutStopSec=` the grace and `Restart=on-failure`;
//! - `shop.env`, the config in systemd's `EnvironmentFile=` syntax, every value double-quoted
//!   with `\`, `"`, `` ` `` and `$` escaped. Its mode is 0600: it holds secrets. `PORT` and
//!   `PS` are left out (dozen sets them per process; in an environment file they would win).
//!
//! The `release` process type is not exported: systemd has no "once per release" (run it by
//! hand, `dozen run release`, before restarting the target).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use dozen_core::{Formation, PortPlan, Procfile};

use crate::error::ExportError;
use crate::output::OutputFile;
use crate::release::ReleaseSpec;

/// Where and as whom the units run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdOptions {
    /// `WorkingDirectory=`: the app's directory on the host (absolute).
    pub workdir: PathBuf,
    /// `User=`, when given; else the units run as root (set it).
    pub user: Option<String>,
    /// `EnvironmentFile=`: where the env file will be on the host (absolute). It is written
    /// beside the units as `<app>.env`; install it here.
    pub env_file: PathBuf,
    /// The first port of the port plan.
    pub base_port: u16,
}

impl SystemdOptions {
    /// Options with `User=` unset and the port plan from 5000, as `dozen start`.
    pub fn new(workdir: impl Into<PathBuf>, env_file: impl Into<PathBuf>) -> Self {
        SystemdOptions {
            workdir: workdir.into(),
            user: None,
            env_file: env_file.into(),
            base_port: 5000,
        }
    }

    fn check(&self) -> Result<(), ExportError> {
        for (option, path) in [("workdir", &self.workdir), ("env file", &self.env_file)] {
            let text = path.to_string_lossy();
            if !path.is_absolute() || text.chars().any(char::is_control) {
                return Err(ExportError::option(
                    option,
                    format!("`{text}` must be an absolute path without control characters"),
                ));
            }
        }
        if let Some(user) = &self.user {
            let ok = !user.is_empty()
                && !user.starts_with('-')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !ok {
                return Err(ExportError::option(
                    format!("user `{user}`"),
                    "a user name may use letters, digits, `_`, `-` and `.`, not starting with `-`",
                ));
            }
        }
        Ok(())
    }
}

/// The target, the instance units and the env file of `release` (see the module docs), the
/// target first. Names: `<app>.target`, `<app>-<type>-<n>.service`, `<app>.env`.
pub fn units(release: &ReleaseSpec, opts: &SystemdOptions) -> Result<Vec<OutputFile>, ExportError> {
    release.check()?;
    opts.check()?;
    for key in release.config.keys() {
        let valid = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ExportError::InvalidConfigKey {
                key: key.clone(),
                reason: "systemd accepts only letters, digits and `_` in variable names; rename it"
                    .into(),
            });
        }
    }
    let app = &release.app;
    // A Procfile export has no server release (version 0).
    let version = match release.version {
        0 => "from a Procfile".to_string(),
        _ => format!("release {}", release.version_label()),
    };
    let plan = port_plan(release, opts.base_port)?;

    let mut files = Vec::new();
    let mut wants = Vec::new();
    for inst in &plan {
        let unit = format!("{app}-{}-{}.service", inst.type_name, inst.number);
        let ps = inst.name();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# {app} {ps}, {version}: written by `dozen export systemd`; edits are lost on the next export."
        );
        s.push_str("[Unit]\n");
        let _ = writeln!(
            s,
            "Description={}",
            specifiers(&format!("{app} {ps} (dozen, {version})"))
        );
        let _ = writeln!(s, "PartOf={app}.target");
        s.push_str("After=network.target\n\n[Service]\nType=simple\n");
        if let Some(user) = &opts.user {
            let _ = writeln!(s, "User={user}");
        }
        let _ = writeln!(
            s,
            "WorkingDirectory={}",
            specifiers(&opts.workdir.to_string_lossy())
        );
        let _ = writeln!(
            s,
            "EnvironmentFile={}",
            specifiers(&opts.env_file.to_string_lossy())
        );
        let _ = writeln!(s, "Environment=PORT={}", inst.port);
        let _ = writeln!(s, "Environment=PS={ps}");
        let line = release
            .run_env
            .shell_line(&opts.workdir.to_string_lossy(), &inst.command);
        let [shell, dash_c, line] = dozen_core::command::argv(&line);
        let _ = writeln!(s, "ExecStart={shell} {dash_c} {}", exec_quote(&line));
        s.push_str("KillMode=mixed\nKillSignal=SIGTERM\n");
        let _ = writeln!(s, "TimeoutStopSec={}", release.grace_seconds);
        s.push_str("Restart=on-failure\nRestartSec=1\n");
        let _ = writeln!(s, "SyslogIdentifier={app}-{ps}");
        files.push(OutputFile::new(unit.clone(), s, 0o644));
        wants.push(unit);
    }

    let mut target = String::new();
    let _ = writeln!(
        target,
        "# {app}, {version}: written by `dozen export systemd`; edits are lost on the next export."
    );
    target.push_str("[Unit]\n");
    let _ = writeln!(
        target,
        "Description={}",
        specifiers(&format!("{app} (dozen, {version})"))
    );
    if !wants.is_empty() {
        let _ = writeln!(target, "Wants={}", wants.join(" "));
    }
    target.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    files.insert(0, OutputFile::new(format!("{app}.target"), target, 0o644));
    files.push(OutputFile::new(
        format!("{app}.env"),
        env_file(release),
        0o600,
    ));
    Ok(files)
}

/// The instances to run, with ports: dozen's port plan over the Procfile order (the `release`
/// type keeps its place but runs nothing).
fn port_plan(release: &ReleaseSpec, base: u16) -> Result<Vec<dozen_core::Instance>, ExportError> {
    let procfile = Procfile {
        types: release
            .process_types
            .iter()
            .enumerate()
            .map(|(i, t)| dozen_core::ProcessType {
                name: t.name.clone(),
                command: t.command.clone(),
                line: i + 1,
            })
            .collect(),
    };
    let mut formation = Formation::default();
    for t in &release.process_types {
        formation.set(&t.name, release.quantity(&t.name) as usize);
    }
    let only: Vec<String> = release.long_running().map(|t| t.name.clone()).collect();
    if only.is_empty() {
        return Ok(Vec::new());
    }
    PortPlan::plan(&procfile, &formation, base, &only)
        .map_err(|e| ExportError::option("port plan", e.to_string()))
}

/// The config as an `EnvironmentFile=`: one `KEY="value"` per line, sorted by key, without
/// `PORT` and `PS`.
pub fn env_file(release: &ReleaseSpec) -> String {
    let mut out = format!(
        "# Config vars of {}: written by `dozen export systemd`. Keep this file mode 0600.\n",
        release.app
    );
    let config: BTreeMap<&String, &String> = release
        .config
        .iter()
        .filter(|(k, _)| k.as_str() != "PORT" && k.as_str() != "PS")
        .collect();
    for (k, v) in config {
        out.push_str(k);
        out.push('=');
        out.push_str(&env_quote(v));
        out.push('\n');
    }
    out
}

/// A value in double quotes for systemd's environment-file parser: `\`, `"`, `` ` `` and `$`
/// get a backslash (the only escapes it undoes inside double quotes); everything else,
/// newlines included, stands for itself.
pub fn env_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '`' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One `ExecStart=` argument in double quotes: C escapes for `\`, `"` and control characters,
/// `$$` for `$` (systemd would substitute `$NAME` itself; the shell must see it) and `%%` for
/// `%` (unit specifiers).
pub fn exec_quote(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("$$"),
            '%' => out.push_str("%%"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%` doubled, for settings where systemd expands specifiers.
fn specifiers(text: &str) -> String {
    text.replace('%', "%%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::ProcessType;

    fn release() -> ReleaseSpec {
        ReleaseSpec {
            app: "shop".into(),
            version: 4,
            process_types: vec![
                ProcessType::new("web", "./serve --port $PORT"),
                ProcessType::new("release", "./migrate"),
                ProcessType::new("worker", "./work 100% \"now\" && echo $$"),
            ],
            config: [
                (
                    "DATABASE_URL".to_string(),
                    "postgres://u:p@db/shop".to_string(),
                ),
                ("PORT".to_string(), "1".to_string()),
                (
                    "TRICKY".to_string(),
                    "a \"b\" $c `d` \\e\nline2 'f' %g".to_string(),
                ),
            ]
            .into(),
            formation: [("web".to_string(), 2), ("worker".to_string(), 1)].into(),
            grace_seconds: 15,
            health_check: None,
            boot_timeout: None,
            run_env: Default::default(),
        }
    }

    fn opts() -> SystemdOptions {
        let mut o = SystemdOptions::new("/srv/shop", "/etc/dozen/shop.env");
        o.user = Some("shop".into());
        o
    }

    fn file<'a>(files: &'a [OutputFile], name: &str) -> &'a str {
        &files
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .contents
    }

    #[test]
    fn a_target_and_one_unit_per_instance_with_the_port_plan() {
        let files = units(&release(), &opts()).expect("units");
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "shop.target",
                "shop-web-1.service",
                "shop-web-2.service",
                "shop-worker-1.service",
                "shop.env"
            ]
        );
        let target = file(&files, "shop.target");
        assert!(
            target.contains("Wants=shop-web-1.service shop-web-2.service shop-worker-1.service\n")
        );
        assert!(target.contains("WantedBy=multi-user.target\n"));
        // The worker keeps its Procfile position (third): its block starts at 5200.
        let worker = file(&files, "shop-worker-1.service");
        assert!(worker.contains("Environment=PORT=5200\n"), "{worker}");
        assert!(worker.contains("Environment=PS=worker.1\n"));
        let web2 = file(&files, "shop-web-2.service");
        assert!(web2.contains("Environment=PORT=5001\n"), "{web2}");
        for f in &files[1..4] {
            let s = &f.contents;
            for line in [
                "PartOf=shop.target\n",
                "User=shop\n",
                "WorkingDirectory=/srv/shop\n",
                "EnvironmentFile=/etc/dozen/shop.env\n",
                "KillMode=mixed\n",
                "TimeoutStopSec=15\n",
                "Restart=on-failure\n",
            ] {
                assert!(s.contains(line), "{}: no {line}", f.name);
            }
            assert_eq!(f.mode, 0o644);
        }
    }

    #[test]
    fn exec_start_keeps_the_command_for_the_shell() {
        let files = units(&release(), &opts()).expect("units");
        assert!(
            file(&files, "shop-web-1.service")
                .contains("ExecStart=/bin/sh -c \"exec ./serve --port $$PORT\"\n")
        );
        assert!(
            file(&files, "shop-worker-1.service")
                .contains("ExecStart=/bin/sh -c \"./work 100%% \\\"now\\\" && echo $$$$\"\n")
        );
    }

    #[test]
    fn the_env_file_quotes_values_and_leaves_out_port() {
        let files = units(&release(), &opts()).expect("units");
        let env = files.last().expect("env");
        assert_eq!(env.mode, 0o600);
        assert!(
            env.contents
                .contains("DATABASE_URL=\"postgres://u:p@db/shop\"\n")
        );
        assert!(!env.contents.contains("\nPORT="));
        assert!(
            env.contents
                .contains("TRICKY=\"a \\\"b\\\" \\$c \\`d\\` \\\\e\nline2 'f' %g\"\n")
        );
    }

    #[test]
    fn invalid_input_is_named() {
        let mut r = release();
        r.config.insert("spring.profile".into(), "x".into());
        let e = units(&r, &opts()).unwrap_err().to_string();
        assert!(e.starts_with("config var `spring.profile`"), "{e}");
        let mut o = opts();
        o.workdir = "srv".into();
        assert!(
            units(&release(), &o)
                .unwrap_err()
                .to_string()
                .starts_with("workdir")
        );
        let mut o = opts();
        o.user = Some("-x".into());
        assert!(units(&release(), &o).is_err());
    }

    #[test]
    fn zero_instances_still_give_a_target() {
        let mut r = release();
        r.formation = [("web".to_string(), 0), ("worker".to_string(), 0)].into();
        let files = units(&r, &opts()).expect("units");
        assert_eq!(files.len(), 2);
        assert!(!files[0].contents.contains("Wants="));
    }
}
