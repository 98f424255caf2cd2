//! The control plane of `dozen server`: a self-hosted Heroku for one host.
//!
//! [`serve`] reads its configuration from the environment ([`ServerConfig`]), attaches the
//! store (`dozen_store`: SQLite under `DOZEN_DATA_DIR`, or PostgreSQL from `DATABASE_URL`),
//! restores every app's formation from it, and serves the JSON API ([`api::router`]):
//!
//! - **build, release, run**: an uploaded source archive is unpacked and built in a fresh
//!   directory without runtime config (`dozen_build`), packed into a slug named by its digest,
//!   and combined with the app's config into release `vN`; its `release` process runs once, then
//!   the formation converges to it ([`deploy`]);
//! - **config vars**: each change is a new release, rolled out the same way; so is a rollback;
//! - **formation and processes**: every process runs under the same supervisor as `dozen start`
//!   (`dozen_supervise`), restarted with backoff when it crashes ([`runtime`]);
//! - **logs**: one stream per app of process output and platform events, a bounded buffer of
//!   recent lines and live tails ([`loghub`]).
//!
//! It is not the router (app traffic) and keeps nothing it cannot rebuild from the store.

pub mod api;
pub mod config;
pub mod deploy;
pub mod error;
pub mod loghub;
pub mod openapi;
pub mod runtime;

use std::sync::Arc;
use std::time::Duration;

pub use config::ServerConfig;
use dozen_logs::{EventKind, LogSender, PlatformEvent};
use dozen_store::Store;
use dozen_supervise::{Policy, RestartPolicy, Supervisor};
use tokio::sync::watch;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened or is not migrated.
    #[error(transparent)]
    Store(#[from] dozen_store::StoreError),
    /// The API port could not be bound, or serving failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Process supervision could not be set up.
    #[error(transparent)]
    Supervise(#[from] dozen_supervise::SuperviseError),
    /// A configuration variable was refused (the message names it, never its value).
    #[error("{0}")]
    Config(String),
}

/// Open the store named by the configuration (no migration).
pub async fn open_store(config: &ServerConfig) -> Result<Store, ServerError> {
    std::fs::create_dir_all(&config.data_dir)?;
    Ok(Store::connect(config.database_url.as_deref(), &config.data_dir).await?)
}

/// Run the server until SIGTERM or SIGINT, reporting its own events to `log`.
pub async fn serve(config: ServerConfig, log: LogSender) -> Result<(), ServerError> {
    let store = open_store(&config).await?;
    store.ensure_migrated().await?;
    if let Some(token) = &config.api_token {
        store
            .ensure_token("bootstrap", token)
            .await
            .map_err(|e| ServerError::Config(format!("DOZEN_API_TOKEN: {e}")))?;
    }
    let (builds, releases) = store.recover_interrupted().await?;
    if builds + releases > 0 {
        say(
            &log,
            EventKind::Info,
            format!("marked {builds} interrupted build(s) and {releases} release(s) as failed"),
        )
        .await;
    }
    let policy = Policy {
        restart: RestartPolicy::Always,
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
        crash_limit: 10,
        crash_window: Duration::from_secs(600),
        grace: Duration::from_secs(10),
    };
    let supervisor = Supervisor::new(policy, log.clone(), true)?;
    let runtime = Arc::new(runtime::Runtime::new(
        supervisor,
        config.data_dir.clone(),
        config.log_lines,
    ));

    // Processes that ran before a restart of the server come back from the store.
    for app in store.apps().await? {
        if let Some(release) = store.current_release(&app.name).await? {
            let mut formation = store.formation(&app.name).await?;
            for t in release.process_types.keys().filter(|t| *t != "release") {
                formation.entry(t.clone()).or_insert(i64::from(t == "web"));
            }
            if let Err(e) = runtime.converge(&release, &formation).await {
                say(
                    &log,
                    EventKind::Error,
                    format!("{}: could not restore v{}: {e}", app.name, release.version),
                )
                .await;
            }
        }
    }

    let (down_tx, down_rx) = watch::channel(false);
    let state = api::AppState {
        store: store.clone(),
        runtime: runtime.clone(),
        config: Arc::new(config.clone()),
        shutting_down: down_rx,
    };
    let bind = std::env::var("DOZEN_BIND").unwrap_or_else(|_| "127.0.0.1".into());
    let listener = tokio::net::TcpListener::bind((bind.as_str(), config.port)).await?;
    say(
        &log,
        EventKind::Info,
        format!("dozen server listening on {}", listener.local_addr()?),
    )
    .await;
    let signal_log = log.clone();
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(async move {
            let name = wait_for_stop_signal().await;
            say(
                &signal_log,
                EventKind::Stopping,
                format!("received {name}; finishing requests, then stopping app processes"),
            )
            .await;
            let _ = down_tx.send(true);
        })
        .await?;
    if let Ok(runtime) = Arc::try_unwrap(runtime) {
        runtime.shutdown().await;
    } else {
        say(
            &log,
            EventKind::Error,
            "requests still hold the runtime; stopping without waiting for them",
        )
        .await;
    }
    store.close().await;
    say(&log, EventKind::Info, "dozen server stopped").await;
    Ok(())
}

async fn say(log: &LogSender, kind: EventKind, text: impl Into<String>) {
    let _ = log.event(PlatformEvent::new(kind, text)).await;
}

async fn wait_for_stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
