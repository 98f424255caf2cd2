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
//!   recent lines, kept across restarts in a history per app, and live tails ([`loghub`]);
//!   each app's stream also goes to its drains, syslog or HTTPS receivers ([`drains`]);
//! - **recovery**: after a crash, interrupted builds and releases are marked failed and what
//!   they left under the data directory is removed before anything runs ([`recover`]);
//! - **git push**: the API port speaks git's smart HTTP at `/git/<app>.git`; a push to `main`
//!   builds the pushed commit and releases it, and a failed build refuses the push ([`git`]);
//! - **dashboard**: the same API in a browser, at `/` on the API's port ([`dashboard`]);
//! - **metrics**: the router's traffic, processes' memory, CPU and restarts, builds and drains
//!   in the Prometheus text format at `/metrics` ([`metrics`]);
//! - **tenancy**: run as root, each app builds and runs as a system user of its own, confined
//!   to its own files, `/tmp` and processes ([`tenancy`]).
//!
//! Every change of an app goes through the platform service ([`platform`]), which runs it in a
//! task of its own under the app's lock; the HTTP layer ([`api`]) only parses, authenticates and
//! maps [`platform::PlatformError`] to statuses.
//!
//! It is not the router (app traffic) and, but for the apps' recent logs, keeps nothing it cannot
//! rebuild from the store.

pub mod api;
pub mod auth;
pub mod backup;
pub mod config;
pub mod dashboard;
pub mod deploy;
pub mod drains;
pub mod error;
pub mod frames;
pub mod git;
pub mod listen;
pub mod loghub;
pub mod metrics;
pub mod openapi;
pub mod platform;
pub mod ports;
pub mod recover;
pub mod rotation;
pub mod runtime;
pub mod sizes;
pub mod tenancy;

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
    tenancy::secure_data_dir(&config.data_dir)?;
    let store = Store::connect(config.database_url.as_deref(), &config.data_dir).await?;
    tenancy::secure_store_files(&config.data_dir)?;
    Ok(store)
}

/// Run the server until SIGTERM or SIGINT, reporting its own events to `log`.
pub async fn serve(config: ServerConfig, log: LogSender) -> Result<(), ServerError> {
    // The API's transport is settled before anything else starts: bad certificate files or a
    // plain-HTTP API on a public address stop the start with a message that says why.
    let plain_http_warning = config.check_plain_http().map_err(ServerError::Config)?;
    let api_tls = match &config.api_tls {
        Some(tls) => Some(listen::tls_config(tls).map_err(ServerError::Config)?),
        None => None,
    };
    // So is a bucket for add-on backups that cannot be used (a bad CA file, say).
    platform::backup_bucket(&config).map_err(ServerError::Config)?;
    if let Some(warning) = plain_http_warning {
        say(&log, EventKind::Error, warning).await;
    }
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
    let swept = recover::sweep(&store, &config.data_dir).await?;
    if swept > 0 {
        say(
            &log,
            EventKind::Info,
            format!("removed {swept} leftover file(s) and directories of interrupted work"),
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
    let support = supervisor.limit_support();
    match support.warning() {
        Some(w) => say(&log, EventKind::Error, format!("warning: {w}")).await,
        None => {
            say(
                &log,
                EventKind::Info,
                format!("process sizes are enforced with {}", support.as_str()),
            )
            .await
        }
    }

    // The router: app traffic by Host. Its access events go to each app's log stream through a
    // bounded queue; when the queue is full (a flood of requests), events are counted, not
    // queued without bound, and the count is reported.
    let (access_tx, mut access_rx) =
        tokio::sync::mpsc::channel::<(String, dozen_router::AccessEvent)>(4096);
    let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let dropped_in = dropped.clone();
    let router = dozen_router::Router::new(
        dozen_router::RouterConfig {
            domain: config.domain.clone(),
            ..dozen_router::RouterConfig::default()
        },
        Arc::new(move |app: &str, event: dozen_router::AccessEvent| {
            if access_tx.try_send((app.to_string(), event)).is_err() {
                dropped_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }),
    );
    let rotation = rotation::Rotation::new(router.clone());
    let runtime = runtime::Runtime::new(
        supervisor,
        rotation.clone(),
        config.data_dir.clone(),
        config.log_lines,
        config.boot_timeout,
    )
    .with_app_user_prefix(&config.app_user_prefix);
    let runtime = Arc::new(match config.log_history {
        true => runtime,
        false => runtime.without_log_history(),
    });
    say(&log, EventKind::Info, runtime.tenancy().describe()).await;
    drains::start_with_server(&runtime, &config, &store, &log).await?;
    tokio::spawn(metrics::sample_forever(runtime.clone()));
    let access_runtime = runtime.clone();
    let access_log = log.clone();
    tokio::spawn(async move {
        while let Some((app, event)) = access_rx.recv().await {
            if app.is_empty() {
                continue;
            }
            let mut ev =
                PlatformEvent::new(EventKind::Info, format!("router: {}", event.to_line()));
            if let Some(backend) = &event.backend {
                ev = ev.target(backend.split('@').next().unwrap_or(backend));
            }
            let _ = access_runtime.log(&app).sender().event(ev).await;
            let lost = dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
            if lost > 0 {
                say(
                    &access_log,
                    EventKind::Error,
                    format!(
                        "router access log: {lost} events were not recorded (the queue was full)"
                    ),
                )
                .await;
            }
        }
    });

    // Processes that ran before a restart of the server come back from the store, each app in
    // its own task so that one slow app holds up neither the others nor the API.
    for app in store.apps().await? {
        rotation.set_hosts(&app.name, store.domains(&app.name).await?);
        runtime.sizes.set(&app.name, &store.sizes(&app.name).await?);
        if let Some(release) = store.current_release(&app.name).await? {
            let formation = store.formation(&app.name).await?;
            let runtime = runtime.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let _op = runtime.lock_app(&release.app).await;
                if let Err(e) = runtime.converge(&release, &formation, false).await {
                    say(
                        &log,
                        EventKind::Error,
                        format!(
                            "{}: could not restore v{}: {}",
                            release.app,
                            release.version,
                            e.report()
                        ),
                    )
                    .await;
                }
            });
        }
    }

    let (down_tx, down_rx) = watch::channel(false);
    let state = api::AppState::new(
        store.clone(),
        runtime.clone(),
        Arc::new(config.clone()),
        down_rx.clone(),
    );
    // Daily add-on backups, from the schedules in the store (those missed while the server
    // was down first).
    tokio::spawn(state.platform.clone().run_backup_schedules());
    let bind = config.bind.clone();
    let listener = tokio::net::TcpListener::bind((bind.as_str(), config.port)).await?;
    let router_listener =
        tokio::net::TcpListener::bind((bind.as_str(), config.router_port)).await?;
    let stop_signals = catch_stop_signals();
    say(
        &log,
        EventKind::Info,
        format!(
            "dozen server listening on {}://{} (API) and {} (apps, as <app>.{})",
            if api_tls.is_some() { "https" } else { "http" },
            listener.local_addr()?,
            router_listener.local_addr()?,
            config.domain
        ),
    )
    .await;
    let mut router_down = down_rx.clone();
    let router_task = tokio::spawn(router.clone().serve(router_listener, async move {
        let _ = router_down.wait_for(|d| *d).await;
    }));
    let tls_task = match config.router_tls_port {
        Some(port) => {
            let dir = config.tls_certs.clone().ok_or_else(|| {
                ServerError::Config(
                    "DOZEN_ROUTER_TLS_PORT is set but DOZEN_TLS_CERTS is not".into(),
                )
            })?;
            let tls = config::tls_settings(&dir).map_err(ServerError::Config)?;
            // Check the certificates now, so a bad file stops the start with a clear message.
            dozen_router::server_config(&tls)
                .map_err(|e| ServerError::Config(format!("DOZEN_TLS_CERTS: {e}")))?;
            let tls_listener = tokio::net::TcpListener::bind((bind.as_str(), port)).await?;
            say(
                &log,
                EventKind::Info,
                format!("serving apps over TLS on {}", tls_listener.local_addr()?),
            )
            .await;
            let mut tls_down = down_rx.clone();
            Some(tokio::spawn(router.clone().serve_tls(
                tls_listener,
                tls,
                async move {
                    let _ = tls_down.wait_for(|d| *d).await;
                },
            )))
        }
        None => None,
    };
    let metrics_task = match config.metrics_bind {
        Some(addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(addr).await?;
            say(
                &log,
                EventKind::Info,
                format!(
                    "serving metrics without a token on http://{}/metrics (DOZEN_METRICS_BIND)",
                    metrics_listener.local_addr()?
                ),
            )
            .await;
            let mut metrics_down = down_rx.clone();
            Some(tokio::spawn(listen::serve(
                metrics_listener,
                metrics::open_routes(&state),
                None,
                async move {
                    let _ = metrics_down.wait_for(|d| *d).await;
                },
            )))
        }
        None => None,
    };
    let signal_log = log.clone();
    let guard = auth::Guard::new(store.clone(), Some(log.clone()));
    listen::serve(listener, api::router(state, guard), api_tls, async move {
        let name = wait_for_stop_signal(stop_signals).await;
        say(
            &signal_log,
            EventKind::Stopping,
            format!("received {name}; finishing requests, then stopping app processes"),
        )
        .await;
        let _ = down_tx.send(true);
    })
    .await?;
    let _ = router_task.await;
    if let Some(t) = tls_task {
        let _ = t.await;
    }
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    runtime.shutdown().await;
    drains::settle(&runtime).await;
    store.close().await;
    say(&log, EventKind::Info, "dozen server stopped").await;
    Ok(())
}

async fn say(log: &LogSender, kind: EventKind, text: impl Into<String>) {
    let _ = log.event(PlatformEvent::new(kind, text)).await;
}

/// SIGTERM and SIGINT, caught from now on: installed before the server says it listens, so a
/// signal sent as soon as that line is read is a graceful stop, not the default death.
type StopSignals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

fn catch_stop_signals() -> StopSignals {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => None,
    }
}

async fn wait_for_stop_signal(signals: StopSignals) -> &'static str {
    let Some((mut term, mut int)) = signals else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
