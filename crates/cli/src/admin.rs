//! Commands run on the server host itself: `dozen server`, and the one-off admin commands
//! `dozen migrate`, `dozen tokens:*` and `dozen backup:*`, which work on the store directly (factor XII).

use std::process::ExitCode;

use anyhow::Context;
use dozen_logs::{Format, LogWriter, Output, TimeStyle};
use dozen_server::ServerConfig;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn config() -> anyhow::Result<ServerConfig> {
    ServerConfig::from_env().map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

/// `dozen server`.
pub fn server() -> anyhow::Result<ExitCode> {
    let config = config()?;
    let format = if std::env::var("DOZEN_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
    {
        Format::json()
    } else {
        Format::human(false, TimeStyle::Local, 8)
    };
    let (writer, log) =
        LogWriter::spawn(format, Output::Stdout).context("starting the log writer")?;
    let rt = runtime()?;
    let result = rt.block_on(dozen_server::serve(config, log));
    drop(rt);
    let _ = writer.finish();
    result.context("dozen server")?;
    Ok(ExitCode::SUCCESS)
}

/// `dozen migrate`.
pub fn migrate() -> anyhow::Result<ExitCode> {
    let config = config()?;
    runtime()?.block_on(async {
        let store = dozen_server::open_store(&config).await?;
        let applied = store.migrate().await?;
        if applied.is_empty() {
            println!("the store is up to date");
        } else {
            println!("applied migrations {applied:?}");
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `dozen tokens`, `tokens:create NAME`, `tokens:revoke ID|NAME`.
pub fn tokens(action: TokenAction) -> anyhow::Result<ExitCode> {
    let config = config()?;
    runtime()?.block_on(async {
        let store = dozen_server::open_store(&config).await?;
        store.ensure_migrated().await?;
        match action {
            TokenAction::List => {
                for t in store.list_tokens().await? {
                    println!("{}", serde_json::to_string(&t)?);
                }
            }
            TokenAction::Create { name, app, scope } => {
                let (info, secret) = match (app, scope) {
                    (None, None | Some(TokenScope::Admin)) => store.create_token(&name).await?,
                    (None, Some(scope)) => anyhow::bail!(
                        "a {} token is for one app: give it with --app APP",
                        scope.store()
                    ),
                    (Some(_), Some(TokenScope::Admin)) => anyhow::bail!(
                        "an admin token is for every app: leave out --app, or use --scope deploy or --scope read"
                    ),
                    (Some(app), scope) => {
                        let scope = scope.unwrap_or(TokenScope::Deploy).store();
                        store.create_app_token(&name, &app, scope).await?
                    }
                };
                let what = match &info.app {
                    Some(app) => format!("{} on {app}", info.scope),
                    None => info.scope.to_string(),
                };
                eprintln!(
                    "created token {} ({}, {what}); it is shown once:",
                    info.name, info.id
                );
                println!("{secret}");
            }
            TokenAction::Revoke(id) => {
                let info = store.revoke_token(&id).await?;
                println!("revoked token {} ({})", info.name, info.id);
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `dozen backup:create FILE`.
pub fn backup_create(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = config()?;
    let manifest = runtime()?.block_on(dozen_server::backup::create(&config, file))?;
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    println!(
        "backed up {} app(s), {} slug(s) and the {} store (schema {}) to {} ({size} bytes)",
        manifest.apps,
        manifest.slugs.len(),
        manifest.store,
        manifest.schema_version,
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `dozen backup:restore FILE`.
pub fn backup_restore(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = config()?;
    let restored = runtime()?.block_on(dozen_server::backup::restore(&config, file))?;
    let m = &restored.manifest;
    println!(
        "restored {} app(s) and {} slug(s) from {} (made {} by dozen {})",
        m.apps,
        m.slugs.len(),
        file.display(),
        m.created_at,
        m.dozen_version
    );
    if restored.pending_migrations {
        println!(
            "the backup's store is older than this dozen: run `dozen migrate` before `dozen server`"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What `tokens` does.
#[derive(Debug)]
pub enum TokenAction {
    /// List.
    List,
    /// Create one with this name, for one app or (without) every app.
    Create {
        /// Its name.
        name: String,
        /// The one app it is for.
        app: Option<String>,
        /// What it may do.
        scope: Option<TokenScope>,
    },
    /// Revoke by id or name.
    Revoke(String),
}

/// A token's scope, as `tokens:create --scope` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenScope {
    /// Every app, every token, server settings.
    Admin,
    /// One app: deploys, config, scaling, one-offs, logs, restarts, rollbacks, domains.
    Deploy,
    /// One app: info, releases, builds, processes, logs; no config values.
    Read,
}

impl TokenScope {
    fn store(self) -> dozen_store::Scope {
        match self {
            TokenScope::Admin => dozen_store::Scope::Admin,
            TokenScope::Deploy => dozen_store::Scope::Deploy,
            TokenScope::Read => dozen_store::Scope::Read,
        }
    }
}
