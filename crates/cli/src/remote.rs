//! The client side of `dozen server`: Heroku's command names, human tables by default, JSON for
//! scripts.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Client;

mod resize;
mod run;
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
fn print(json_out: bool, value: &Value, table: impl FnOnce(&Value)) {
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

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn path(app: &str, rest: &str) -> String {
    format!("/v1/apps/{app}{rest}")
}

pub fn apps(args: AppArgs) -> anyhow::Result<ExitCode> {
    let v = Client::from_env()?.get("/v1/apps")?;
    print(args.json, &v, |v| {
        let mut rows = vec![vec!["APP".into(), "RELEASE".into(), "CREATED".into()]];
        for a in v.as_array().into_iter().flatten() {
            let rel = a["current_release"]
                .as_i64()
                .map(|n| format!("v{n}"))
                .unwrap_or("-".into());
            rows.push(vec![s(&a["name"]), rel, s(&a["created_at"])]);
        }
        table(&rows);
    });
    Ok(ExitCode::SUCCESS)
}

pub fn apps_create(name: &str, args: AppArgs) -> anyhow::Result<ExitCode> {
    let v = Client::from_env()?.call(Method::POST, "/v1/apps", &json!({"name": name}))?;
    print(args.json, &v, |v| println!("created {}", s(&v["name"])));
    Ok(ExitCode::SUCCESS)
}

pub fn apps_destroy(confirm: Option<&str>, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    if confirm != Some(app) {
        bail!(
            "destroying {app} removes its releases, config and processes; run again with --confirm {app}"
        );
    }
    let v = Client::from_env()?.delete(&path(app, ""))?;
    print(args.json, &v, |_| println!("destroyed {app}"));
    Ok(ExitCode::SUCCESS)
}

pub fn apps_info(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v = Client::from_env()?.get(&path(app, ""))?;
    print(args.json, &v, |v| {
        println!("=== {}", s(&v["name"]));
        println!(
            "release:    {}",
            v["current_release"]
                .as_i64()
                .map(|n| format!("v{n}"))
                .unwrap_or("none yet".into())
        );
        println!("created:    {}", s(&v["created_at"]));
        let formation: Vec<String> = v["formation"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        println!(
            "formation:  {}",
            if formation.is_empty() {
                "-".into()
            } else {
                formation.join(" ")
            }
        );
        for (t, cmd) in v["process_types"].as_object().into_iter().flatten() {
            println!("  {t}: {}", s(cmd));
        }
    });
    Ok(ExitCode::SUCCESS)
}

pub fn config(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v = Client::from_env()?.get(&path(app, "/config"))?;
    print(args.json, &v, |v| {
        let rows: Vec<Vec<String>> = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, val)| vec![format!("{k}:"), s(val)])
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
    let v = Client::from_env()?.get(&path(app, "/config"))?;
    match v.get(key) {
        Some(val) => {
            println!("{}", s(val));
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("{app} has no config var {key}"),
    }
}

pub fn config_set(pairs: &[String], args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let mut set = serde_json::Map::new();
    for (i, pair) in pairs.iter().enumerate() {
        let Some((k, v)) = pair.split_once('=') else {
            // Never echo the argument: it may be a secret typed without its key.
            bail!("argument {}: expected KEY=VALUE", i + 1);
        };
        if k.is_empty() {
            bail!("argument {}: expected KEY=VALUE, the key is empty", i + 1);
        }
        set.insert(k.to_string(), Value::String(v.to_string()));
    }
    let keys: Vec<String> = set.keys().cloned().collect();
    let v = Client::from_env()?.call(Method::PATCH, &path(app, "/config"), &json!({"set": set}))?;
    print(args.json, &v, |v| {
        println!(
            "set {} on {app}: release v{}",
            keys.join(", "),
            s(&v["version"])
        )
    });
    Ok(ExitCode::SUCCESS)
}

pub fn config_unset(keys: &[String], args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v = Client::from_env()?.call(
        Method::PATCH,
        &path(app, "/config"),
        &json!({"unset": keys}),
    )?;
    print(args.json, &v, |v| {
        println!(
            "unset {} on {app}: release v{}",
            keys.join(", "),
            s(&v["version"])
        )
    });
    Ok(ExitCode::SUCCESS)
}

fn release_rows(list: &Value) {
    let mut rows = vec![vec![
        "".into(),
        "RELEASE".into(),
        "STATUS".into(),
        "DESCRIPTION".into(),
        "CREATED".into(),
    ]];
    for r in list.as_array().into_iter().flatten() {
        rows.push(vec![
            if r["current"] == true {
                "*".into()
            } else {
                "".into()
            },
            format!("v{}", s(&r["version"])),
            s(&r["status"]),
            s(&r["description"]),
            s(&r["created_at"]),
        ]);
    }
    table(&rows);
}

pub fn releases(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v = Client::from_env()?.get(&path(app, "/releases"))?;
    print(args.json, &v, release_rows);
    Ok(ExitCode::SUCCESS)
}

pub fn releases_info(version: &str, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v = Client::from_env()?.get(&path(
        app,
        &format!("/releases/{}", version.trim_start_matches('v')),
    ))?;
    print(args.json, &v, |r| {
        println!("=== {app} v{}", s(&r["version"]));
        println!("status:       {}", s(&r["status"]));
        if !r["failure_reason"].is_null() {
            println!("failure:      {}", s(&r["failure_reason"]));
        }
        println!("description:  {}", s(&r["description"]));
        println!("slug:         {}", s(&r["slug"]));
        let keys: Vec<String> = r["config_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        println!("config vars:  {}", keys.join(", "));
        println!("created:      {}", s(&r["created_at"]));
    });
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(version: Option<&str>, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let body = match version {
        Some(v) => json!({"version": v}),
        None => json!({}),
    };
    let v = Client::from_env()?.call(Method::POST, &path(app, "/rollback"), &body)?;
    print(args.json, &v, |v| {
        println!("{app}: {} as v{}", s(&v["description"]), s(&v["version"]))
    });
    Ok(ExitCode::SUCCESS)
}

pub fn builds(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v = Client::from_env()?.get(&path(app, "/builds"))?;
    print(args.json, &v, |v| {
        let mut rows = vec![vec![
            "BUILD".into(),
            "STATUS".into(),
            "SLUG".into(),
            "CREATED".into(),
        ]];
        for b in v.as_array().into_iter().flatten() {
            let slug = b["slug"]
                .as_str()
                .map(|d| d.chars().take(12).collect())
                .unwrap_or("-".into());
            rows.push(vec![
                s(&b["id"]),
                s(&b["status"]),
                slug,
                s(&b["created_at"]),
            ]);
        }
        table(&rows);
    });
    Ok(ExitCode::SUCCESS)
}

/// Print one streamed log event for a person.
fn show_event(e: &Value) {
    let proc_name = e["proc"].as_str().unwrap_or("?");
    let text = e["line"].as_str().unwrap_or("");
    let time = e["ts"].as_str().and_then(|t| t.get(11..19)).unwrap_or("");
    println!("{time} {proc_name:<8} | {text}");
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
    let lines = client.upload(&path(&app, "/builds"), reader, len)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut result = None;
    for item in lines {
        let v = item?;
        if v.get("status").is_some() && v.get("proc").is_none() {
            result = Some(v);
            break;
        }
        if args.json {
            println!("{v}");
        } else {
            show_event(&v);
        }
        let _ = std::io::stdout().flush();
    }
    match result {
        Some(v) if v["status"] == "succeeded" => {
            if args.json {
                println!("{v}");
            } else {
                println!("deployed {app}: v{} is live", s(&v["release"]["version"]));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(v) => bail!("deploy failed: {}", s(&v["error"])),
        None => {
            bail!("the server ended the deploy stream without a result; see `dozen logs -a {app}`")
        }
    }
}

pub fn ps(args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let v = Client::from_env()?.get(&path(app, "/ps"))?;
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
        ]];
        let bytes = |v: &Value| {
            v.as_u64()
                .map_or_else(|| "-".to_string(), dozen_core::size::format_bytes)
        };
        for p in v.as_array().into_iter().flatten() {
            rows.push(vec![
                s(&p["name"]),
                s(&p["state"]),
                s(&p["port"]),
                format!("v{}", s(&p["release"])),
                format!("{}s", s(&p["for_seconds"])),
                s(&p["restarts"]),
                s(&p["size"]),
                format!("{} / {}", bytes(&p["memory"]), bytes(&p["memory_limit"])),
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
    let mut body = serde_json::Map::new();
    for (t, n) in parse_scale(changes)? {
        body.insert(t.to_string(), json!(n));
    }
    let v = Client::from_env()?.call(
        Method::PATCH,
        &path(app, "/formation"),
        &Value::Object(body),
    )?;
    print(args.json, &v, |v| {
        let f: Vec<String> = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        println!("scaled {app}: {}", f.join(" "));
    });
    Ok(ExitCode::SUCCESS)
}

pub fn ps_restart(type_name: Option<&str>, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let body = match type_name {
        Some(t) => json!({"type": t}),
        None => json!({}),
    };
    let v = Client::from_env()?.call(Method::POST, &path(app, "/ps/restart"), &body)?;
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
        query.push_str(&format!("&ps={p}"));
    }
    if let Some(src) = source {
        query.push_str(&format!("&source={src}"));
    }
    for item in Client::from_env()?.stream_json(Method::GET, &path(app, &query), None)? {
        let v = item?;
        if args.json {
            println!("{v}");
        } else {
            show_event(&v);
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
    let v = Client::from_env()?.get(&path(app, "/domains"))?;
    print(args.json, &v, |v| {
        println!("{}  (default)", s(&v["default"]));
        for d in v["custom"].as_array().into_iter().flatten() {
            println!("{}", s(d));
        }
    });
    Ok(ExitCode::SUCCESS)
}

pub fn domains_change(hostname: &str, add: bool, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let client = Client::from_env()?;
    let v = if add {
        client.call(
            Method::POST,
            &path(app, "/domains"),
            &json!({"hostname": hostname}),
        )?
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
