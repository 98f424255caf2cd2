//! Backups of PostgreSQL add-ons: `pg_dump` in its custom format to a file, `pg_restore` back
//! into the same database, both connecting as the add-on's own role (which owns everything in
//! its database). The connection goes through `PG*` variables, never the command line.

use std::ffi::OsStr;
use std::path::Path;

use crate::{AddonError, AdminUrl, STEP_TIMEOUT, Service, target, tool};

/// How long a dump or a restore may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(STEP_TIMEOUT.as_secs() * 20);

fn pg_env(url: &str) -> Result<Vec<(&'static str, String)>, AddonError> {
    let bad = |m: &str| AddonError::BadUrl {
        var: "the add-on's URL",
        message: m.to_string(),
    };
    let u = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let admin = AdminUrl::new(url);
    let (host, port) = target::host_port(Service::Postgresql, &admin, 5432)?;
    let db = u.path().trim_start_matches('/').to_string();
    if db.is_empty() {
        return Err(bad("it names no database"));
    }
    Ok(vec![
        ("PGHOST", host),
        ("PGPORT", port.to_string()),
        ("PGUSER", u.username().to_string()),
        ("PGPASSWORD", u.password().unwrap_or_default().to_string()),
        ("PGDATABASE", db),
        ("PGSERVICEFILE", "/dev/null".to_string()),
        ("PGPASSFILE", "/dev/null".to_string()),
    ])
}

async fn run(
    tool: &'static str,
    args: &[&OsStr],
    envs: &[(&str, String)],
) -> Result<(), AddonError> {
    let out = tokio::time::timeout(TIMEOUT, tool::run(tool, tool, args, envs, None))
        .await
        .map_err(|_| AddonError::Tool {
            tool,
            message: format!("did not finish within {} s", TIMEOUT.as_secs()),
        })??;
    if out.success() {
        return Ok(());
    }
    let hint = if out.code == Some(127) {
        " (install the PostgreSQL client on the dozen server's host)"
    } else {
        ""
    };
    Err(AddonError::Tool {
        tool,
        message: format!("{}{hint}", out.message()),
    })
}

/// Dump the database of the add-on at `url` into `file` (custom format); its size in bytes.
pub async fn dump(url: &str, file: &Path) -> Result<u64, AddonError> {
    let envs = pg_env(url)?;
    let args: Vec<&OsStr> = ["--format=custom", "--no-owner", "--no-privileges", "--file"]
        .iter()
        .map(OsStr::new)
        .chain([file.as_os_str()])
        .collect();
    run("pg_dump", &args, &envs).await?;
    let meta = tokio::fs::metadata(file)
        .await
        .map_err(|e| AddonError::Tool {
            tool: "pg_dump",
            message: format!("{}: {e}", file.display()),
        })?;
    Ok(meta.len())
}

/// Restore `file` (made by [`dump`]) into the database of the add-on at `url`: what the dump
/// holds is dropped and made again, in one transaction.
pub async fn restore(url: &str, file: &Path) -> Result<(), AddonError> {
    let envs = pg_env(url)?;
    let db = envs
        .iter()
        .find(|(k, _)| *k == "PGDATABASE")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let args: Vec<&OsStr> = [
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--dbname",
    ]
    .iter()
    .map(OsStr::new)
    .chain([OsStr::new(db.as_str()), file.as_os_str()])
    .collect();
    run("pg_restore", &args, &envs).await
}
