//! The client side of `dozen server`: Heroku's command names, human tables by default, JSON for
//! scripts.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::Method;

use crate::client::Client;

pub(crate) mod addons;
pub(crate) mod drains;
mod resize;
mod run;
pub use addons::AddonCommand;
pub use drains::DrainCommand;
pub(crate) mod backups;
pub use backups::BackupCommand;
pub use resize::ps_resize;
pub use run::run;

/// Which app, and how to print.
#[derive(Debug, Args, Clone)]
pub struct AppArgs {
    /// The app (also DOZEN_APP).
    #[arg(short = 'a', long = "app", env = "DOZEN_APP")]
    pub app: Option<String>,
    /// Print JSON (a JSON array for lists).
    #[arg(long)]
    pub json: bool,
}

impl AppArgs {
    pub(crate) fn app(&self) -> anyhow::Result<&str> {
        require_app(self.app.as_deref())
    }
}

/// The app named by `-a APP` or `DOZEN_APP`, or an error that says how to name one.
pub(crate) fn require_app(app: Option<&str>) -> anyhow::Result<&str> {
    app.context("which app? give -a APP (or set DOZEN_APP)")
}

/// The `TYPE=N` arguments of `ps:scale`, in the order given.
pub(crate) fn parse_scale(changes: &[String]) -> anyhow::Result<Vec<(&str, u32)>> {
    changes
        .iter()
        .map(|c| {
            let (t, n) = c
                .split_once('=')
                .with_context(|| format!("`{c}`: expected TYPE=N, e.g. web=3"))?;
            let n: u32 = n
                .parse()
                .ok()
                .with_context(|| format!("`{c}`: N must be a whole number, 0 or more"))?;
            Ok((t, n))
        })
        .collect()
}

/// Print JSON or a table.
fn print<T: serde::Serialize>(json_out: bool, value: &T, table: impl FnOnce(&T)) {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        table(value);
    }
}

/// Print rows as aligned columns.
pub(crate) fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// An optional value for a table: `-` when there is none.
fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn path(app: &str, rest: &str) -> String {
    format!("/v1/apps/{app}{rest}")
}

/// `web=2 worker=1`.
fn formation_text(f: &dozen_api::Formation) -> String {
    f.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn apps(args: AppArgs) -> anyhow::Result<ExitCode> {
    let v: Vec<dozen_api::App> = Client::from_env()?.get("/v1/apps")?;
    print(args.json, &v, |v| {
        let mut rows = vec![vec!["APP".into(), "RELEASE".into(), "CREATED".into()]];
        for a in v {
            let rel = or_dash(a.current_release.map(|n| format!("v{n}")));
            rows.push(vec![a.name.clone(), rel, a.created_at.clone()]);
        }
        table(&rows);
    });
    Ok(ExitCode::SUCCESS)
}

pub fn apps_create(name: &str, args: AppArgs) -> anyhow::Result<ExitCode> {
    let body = dozen_api::CreateApp {
        name: name.to_string(),
    };
    let v: dozen_api::App = Client::from_env()?.call(Method::POST, "/v1/apps", &body)?;
    print(args.json, &v, |v| println!("created {}", v.name));
    Ok(ExitCode::SUCCESS)
}

pub fn apps_destroy(confirm: Option<&str>, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    if confirm != Some(app) {
        bail!(
            "destroying {app} removes its releases, config and processes; run again with --confirm {app}"
        );
    }
    let v: dozen_api::Destroyed = Client::from_env()?.delete(&path(app, ""))?;
    print(args.json, &v, |_| println!("destroyed {app}"));
    Ok(ExitCode::SUCCESS)
}

pub fn apps_info(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v: dozen_api::AppInfo = Client::from_env()?.get(&path(app, ""))?;
    print(args.json, &v, |v| {
        println!("=== {}", v.name);
        println!(
            "release:    {}",
            v.current_release
                .map(|n| format!("v{n}"))
                .unwrap_or("none yet".into())
        );
        println!("created:    {}", v.created_at);
        let formation = formation_text(&v.formation);
        println!(
            "formation:  {}",
            if formation.is_empty() {
                "-"
            } else {
                &formation
            }
        );
        for (t, cmd) in &v.process_types {
            println!("  {t}: {cmd}");
        }
    });
    Ok(ExitCode::SUCCESS)
}

pub fn config(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v: dozen_api::ConfigVars = Client::from_env()?.get(&path(app, "/config"))?;
    print(args.json, &v, |v| {
        let rows: Vec<Vec<String>> = v
            .iter()
            .map(|(k, val)| vec![format!("{k}:"), val.clone()])
            .collect();
        if rows.is_empty() {
            println!("{app} has no config vars");
        }
        table(&rows);
    });
    Ok(ExitCode::SUCCESS)
}

pub fn config_get(key: &str, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v: dozen_api::ConfigVars = Client::from_env()?.get(&path(app, "/config"))?;
    match v.get(key) {
        Some(val) => {
            println!("{val}");
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("{app} has no config var {key}"),
    }
}

pub fn config_set(pairs: &[String], args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let mut patch = dozen_api::ConfigPatch::default();
    for (i, pair) in pairs.iter().enumerate() {
        let Some((k, v)) = pair.split_once('=') else {
            // Never echo the argument: it may be a secret typed without its key.
            bail!("argument {}: expected KEY=VALUE", i + 1);
        };
        if k.is_empty() {
            bail!("argument {}: expected KEY=VALUE, the key is empty", i + 1);
        }
        patch.set.insert(k.to_string(), v.to_string());
    }
    let keys: Vec<String> = patch.set.keys().cloned().collect();
    let v: dozen_api::Release =
        Client::from_env()?.call(Method::PATCH, &path(app, "/config"), &patch)?;
    print(args.json, &v, |v| {
        println!("set {} on {app}: release v{}", keys.join(", "), v.version)
    });
    Ok(ExitCode::SUCCESS)
}

pub fn config_unset(keys: &[String], args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let patch = dozen_api::ConfigPatch {
        unset: keys.to_vec(),
        ..Default::default()
    };
    let v: dozen_api::Release =
        Client::from_env()?.call(Method::PATCH, &path(app, "/config"), &patch)?;
    print(args.json, &v, |v| {
        println!("unset {} on {app}: release v{}", keys.join(", "), v.version)
    });
    Ok(ExitCode::SUCCESS)
}

fn status_word(s: dozen_api::ReleaseStatus) -> &'static str {
    match s {
        dozen_api::ReleaseStatus::Pending => "pending",
        dozen_api::ReleaseStatus::Succeeded => "succeeded",
        dozen_api::ReleaseStatus::Failed => "failed",
    }
}

fn release_rows(list: &Vec<dozen_api::ReleaseEntry>) {
    let mut rows = vec![vec![
        "".into(),
        "RELEASE".into(),
        "STATUS".into(),
        "COMMIT".into(),
        "DESCRIPTION".into(),
        "BY".into(),
        "CREATED".into(),
    ]];
    for r in list {
        let commit = r.release.commit.as_deref().map(|c| &c[..c.len().min(7)]);
        rows.push(vec![
            if r.current { "*".into() } else { "".into() },
            format!("v{}", r.release.version),
            status_word(r.release.status).into(),
            commit.unwrap_or("-").into(),
            r.release.description.clone(),
            or_dash(r.release.created_by.as_ref()),
            r.release.created_at.clone(),
        ]);
    }
    table(&rows);
}

pub fn releases(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v: Vec<dozen_api::ReleaseEntry> = Client::from_env()?.get(&path(app, "/releases"))?;
    print(args.json, &v, release_rows);
    Ok(ExitCode::SUCCESS)
}

pub fn releases_info(version: &str, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v: dozen_api::ReleaseDetail = Client::from_env()?.get(&path(
        app,
        &format!("/releases/{}", version.trim_start_matches('v')),
    ))?;
    print(args.json, &v, |d| {
        let r = &d.release;
        println!("=== {app} v{}", r.version);
        println!("status:       {}", status_word(r.status));
        if let Some(reason) = &r.failure_reason {
            println!("failure:      {reason}");
        }
        println!("description:  {}", r.description);
        println!("slug:         {}", or_dash(r.slug.as_ref()));
        if let Some(commit) = &r.commit {
            println!("commit:       {commit}");
        }
        println!("config vars:  {}", r.config_keys.join(", "));
        println!("created:      {}", r.created_at);
        println!("by:           {}", or_dash(r.created_by.as_ref()));
    });
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(version: Option<&str>, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let body = dozen_api::RollbackRequest {
        version: version.map(str::to_string),
    };
    let v: dozen_api::Release =
        Client::from_env()?.call(Method::POST, &path(app, "/rollback"), &body)?;
    print(args.json, &v, |v| {
        println!("{app}: {} as v{}", v.description, v.version)
    });
    Ok(ExitCode::SUCCESS)
}

pub fn builds(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v: Vec<dozen_api::Build> = Client::from_env()?.get(&path(app, "/builds"))?;
    print(args.json, &v, |v| {
        let mut rows = vec![vec![
            "BUILD".into(),
            "STATUS".into(),
            "SLUG".into(),
            "CREATED".into(),
        ]];
        for b in v {
            let slug = or_dash(
                b.slug
                    .as_ref()
                    .map(|d| d.chars().take(12).collect::<String>()),
            );
            let status = match b.status {
                dozen_api::BuildStatus::Pending => "pending",
                dozen_api::BuildStatus::Succeeded => "succeeded",
                dozen_api::BuildStatus::Failed => "failed",
            };
            rows.push(vec![
                b.id.clone(),
                status.into(),
                slug,
                b.created_at.clone(),
            ]);
        }
        table(&rows);
    });
    Ok(ExitCode::SUCCESS)
}

/// Print one streamed log event for a person.
fn show_event(e: &dozen_api::LogLine) {
    let time = e.ts.as_deref().and_then(|t| t.get(11..19)).unwrap_or("");
    println!("{time} {:<8} | {}", e.proc, e.line);
}

/// Print one streamed log event as `--json` asks: one object per line.
fn show_json(e: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(e).unwrap_or_default());
}

/// The query that tells the server which commit `dir` is (`?commit=SHA`, with `&dirty=true`
/// when the checkout has changes not committed), saying on stderr when none is recorded.
fn commit_query(dir: &std::path::Path) -> String {
    match crate::git::checkout_of(dir) {
        crate::git::Checkout::Clean(head) => format!("?commit={head}"),
        crate::git::Checkout::Dirty(head) => {
            eprintln!(
                "note: {} has changes not committed: the release is named {}-dirty and records no commit (commit first, or push with git)",
                dir.display(),
                &head[..head.len().min(7)]
            );
            format!("?commit={head}&dirty=true")
        }
        crate::git::Checkout::Below { top } => {
            eprintln!(
                "note: {} is inside the git checkout {}: the release records no commit (a commit is the whole checkout's tree)",
                dir.display(),
                top.display()
            );
            String::new()
        }
        crate::git::Checkout::None | crate::git::Checkout::Unborn => String::new(),
    }
}

pub fn deploy(dir: Option<PathBuf>, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?.to_string();
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let client = Client::from_env()?;
    let archive =
        tempfile::NamedTempFile::new().context("creating a temporary file for the upload")?;
    let stats = dozen_build::pack_source(&dir, archive.as_file())
        .with_context(|| format!("packing {}", dir.display()))?;
    let len = archive.as_file().metadata()?.len();
    let file = archive.reopen()?;
    let progress = std::io::stderr().is_terminal() && !args.json;
    if progress {
        eprintln!("uploading {} files ({len} bytes) to {app}", stats.files);
    }
    let bar = if progress {
        Some(indicatif::ProgressBar::new(len))
    } else {
        None
    };
    let reader: Box<dyn std::io::Read + Send> = match &bar {
        Some(b) => Box::new(b.wrap_read(file)),
        None => Box::new(file),
    };
    let target = path(&app, &format!("/builds{}", commit_query(&dir)));
    let lines = client.upload::<dozen_api::DeployLine>(&target, reader, len)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut result = None;
    for item in lines {
        match item? {
            dozen_api::DeployLine::Outcome(outcome) => {
                result = Some(outcome);
                break;
            }
            dozen_api::DeployLine::Log(e) if args.json => show_json(&e),
            dozen_api::DeployLine::Log(e) => show_event(&e),
        }
        let _ = std::io::stdout().flush();
    }
    match result {
        Some(outcome @ dozen_api::DeployOutcome::Succeeded { .. }) if args.json => {
            show_json(&outcome);
            Ok(ExitCode::SUCCESS)
        }
        Some(dozen_api::DeployOutcome::Succeeded { release }) => {
            println!("deployed {app}: v{} is live", release.version);
            Ok(ExitCode::SUCCESS)
        }
        Some(dozen_api::DeployOutcome::Failed { error }) => bail!("deploy failed: {error}"),
        None => {
            bail!("the server ended the deploy stream without a result; see `dozen logs -a {app}`")
        }
    }
}

pub fn ps(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v: Vec<dozen_api::Process> = Client::from_env()?.get(&path(app, "/ps"))?;
    print(args.json, &v, |v| {
        let mut rows = vec![vec![
            "PROCESS".into(),
            "STATE".into(),
            "PORT".into(),
            "RELEASE".into(),
            "FOR".into(),
            "RESTARTS".into(),
            "SIZE".into(),
            "MEMORY".into(),
            "CPU".into(),
        ]];
        let bytes =
            |v: Option<u64>| v.map_or_else(|| "-".to_string(), dozen_core::size::format_bytes);
        for p in v {
            rows.push(vec![
                p.name.clone(),
                p.state.clone(),
                p.port.to_string(),
                format!("v{}", p.release),
                format!("{}s", p.for_seconds),
                p.restarts.to_string(),
                p.size.clone(),
                format!("{} / {}", bytes(p.memory), bytes(p.memory_limit)),
                p.cpu_percent
                    .map_or_else(|| "-".to_string(), |c| format!("{c:.1}%")),
            ]);
        }
        if rows.len() == 1 {
            println!("{app} has no processes");
        } else {
            table(&rows);
        }
    });
    Ok(ExitCode::SUCCESS)
}

pub fn ps_scale(changes: &[String], args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let body: dozen_api::Formation = parse_scale(changes)?
        .into_iter()
        .map(|(t, n)| (t.to_string(), i64::from(n)))
        .collect();
    let v: dozen_api::Formation =
        Client::from_env()?.call(Method::PATCH, &path(app, "/formation"), &body)?;
    print(args.json, &v, |v| {
        println!("scaled {app}: {}", formation_text(v));
    });
    Ok(ExitCode::SUCCESS)
}

pub fn ps_restart(type_name: Option<&str>, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let body = dozen_api::RestartRequest {
        type_name: type_name.map(str::to_string),
    };
    let v: Vec<dozen_api::Process> =
        Client::from_env()?.call(Method::POST, &path(app, "/ps/restart"), &body)?;
    print(args.json, &v, |_| {
        println!(
            "restarted {} of {app}",
            type_name.unwrap_or("all processes")
        )
    });
    Ok(ExitCode::SUCCESS)
}

pub fn logs(
    tail: bool,
    ps: Option<&str>,
    source: Option<&str>,
    lines: usize,
    args: AppArgs,
) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let mut query = format!("/logs?lines={lines}&tail={tail}");
    if let Some(p) = ps {
        query.push_str(&format!("&ps={}", percent_encode(p)));
    }
    if let Some(src) = source {
        query.push_str(&format!("&source={}", percent_encode(src)));
    }
    for item in Client::from_env()?.stream::<dozen_api::LogLine>(&path(app, &query))? {
        let e = item?;
        if args.json {
            show_json(&e);
        } else {
            show_event(&e);
        }
        let _ = std::io::stdout().flush();
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encode a query value (everything but unreserved characters).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn domains(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v: dozen_api::Domains = Client::from_env()?.get(&path(app, "/domains"))?;
    print(args.json, &v, |v| {
        println!("{}  (default)", v.default);
        for d in &v.custom {
            println!("{d}");
        }
    });
    Ok(ExitCode::SUCCESS)
}

pub fn domains_change(hostname: &str, add: bool, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let client = Client::from_env()?;
    let v: Vec<String> = if add {
        let body = dozen_api::DomainRequest {
            hostname: hostname.to_string(),
        };
        client.call(Method::POST, &path(app, "/domains"), &body)?
    } else {
        client.delete(&path(
            app,
            &format!("/domains/{}", percent_encode(hostname)),
        ))?
    };
    print(args.json, &v, |_| {
        println!(
            "{} {hostname} {} {app}",
            if add { "added" } else { "removed" },
            if add { "to" } else { "from" }
        )
    });
    Ok(ExitCode::SUCCESS)
}
