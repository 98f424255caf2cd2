//! Metrics in the Prometheus text format: `GET /metrics` on the API port with a token, and, with
//! `DOZEN_METRICS_BIND`, the same page without one on a listener of its own.
//!
//! An admin token sees every app and the server's own series; an app's `read` or `deploy` token
//! sees that app's series only. The page is made when asked, from what is already counted:
//!
//! - the router's counters per app ([`dozen_router::Router::traffic`]): requests by status
//!   class, a latency histogram, body bytes both ways, requests in flight;
//! - each process's restarts, and its memory and CPU time from the cgroup the supervisor made
//!   for it or from `/proc` ([`dozen_supervise::ProcessState::usage`]);
//! - builds and their durations, from the store (so they survive restarts of the server);
//! - each log drain's delivered, queued and dropped messages ([`drains`]).
//!
//! [`sample_forever`] reads every process's CPU time every [`cpu::INTERVAL`], for the CPU
//! percentage `ps` shows, and keeps each app's last rows for a scrape that comes while a
//! deploy holds the app's processes.

pub mod cpu;
mod series;
pub mod text;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dozen_api::ErrorBody;
use dozen_store::{Scope, TokenInfo};

use crate::api::AppState;
use crate::auth::Guard;
use crate::error::ApiError;
use crate::runtime::{PsRow, Runtime};
use text::{Kind, Page};

/// How long a scrape waits for an app's processes (a deploy may hold them) before it uses the
/// last rows the sampler read.
const PS_WAIT: Duration = Duration::from_secs(1);

/// Upper bounds of the build duration histogram, in seconds.
pub const BUILD_BUCKETS: [f64; 10] = [
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// What the metrics keep between scrapes: the CPU readings and each app's last `ps` rows.
#[derive(Debug, Default)]
pub struct Metrics {
    /// CPU readings, for the percentage `ps` shows.
    pub cpu: cpu::CpuSampler,
    last: Mutex<HashMap<String, Vec<PsRow>>>,
}

impl Metrics {
    fn keep(&self, app: &str, rows: &[PsRow]) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(app.to_string(), rows.to_vec());
    }

    fn last_rows(&self, app: &str) -> Vec<PsRow> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(app)
            .cloned()
            .unwrap_or_default()
    }

    fn retain(&self, apps: &[String]) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|app, _| apps.contains(app));
        self.cpu.retain(apps);
    }
}

/// Reads every running process's CPU time every [`cpu::INTERVAL`] (and keeps its app's rows),
/// until the server stops.
pub async fn sample_forever(runtime: Arc<Runtime>) {
    let mut tick = tokio::time::interval(cpu::INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let apps = runtime.app_names().await;
        for app in &apps {
            // An app whose processes a deploy holds is read at the next round.
            if let Ok(rows) = tokio::time::timeout(PS_WAIT, runtime.ps(app)).await {
                runtime.metrics.cpu.record(app, &rows, Instant::now());
                runtime.metrics.keep(app, &rows);
            }
        }
        runtime.metrics.retain(&apps);
    }
}

/// `DOZEN_METRICS_BIND`: an address and port (`127.0.0.1:9465`), or unset.
pub fn parse_bind(value: Option<String>) -> Result<Option<SocketAddr>, String> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            "DOZEN_METRICS_BIND must be an IP address and port, such as 127.0.0.1:9465".into()
        }),
    }
}

#[derive(Debug, Clone)]
struct Scrape {
    state: AppState,
    guard: Option<Guard>,
}

/// `GET /metrics` on the API port: a bearer token decides what the page shows.
pub fn routes(state: &AppState, guard: Guard) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape {
            state: state.clone(),
            guard: Some(guard),
        })
}

/// `GET /metrics` on the `DOZEN_METRICS_BIND` listener: every app, without a token.
pub fn open_routes(state: &AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape {
            state: state.clone(),
            guard: None,
        })
}

async fn scrape(
    State(s): State<Scrape>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let only = match &s.guard {
        None => None,
        Some(guard) => match authorize(guard, peer, &headers).await {
            Ok(token) if token.scope == Scope::Admin => None,
            Ok(token) => match token.app {
                Some(app) => Some(app),
                None => return ApiError::Forbidden("the token has no app".into()).into_response(),
            },
            Err(e) => return e.into_response(),
        },
    };
    match render(&s.state, only.as_deref()).await {
        Ok(page) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, text::CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            page,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The bearer token in `headers`, verified: `401` without a valid one, `429` while `peer` is
/// refused for sending too many bad ones.
async fn authorize(
    guard: &Guard,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> Result<TokenInfo, ApiError> {
    let peer = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.0.ip());
    let presented = crate::auth::bearer(headers).ok_or(ApiError::Unauthorized)?;
    guard.verify(peer, presented).await
}

/// One log drain's numbers, as the metrics show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainRow {
    /// The drain's id (`drains -a APP` lists it).
    pub drain: String,
    /// Messages delivered since the server started.
    pub delivered: u64,
    /// Messages waiting in its queue now.
    pub queued: u64,
    /// Messages dropped since the server started (its queue was full).
    pub dropped: u64,
}

/// The log drains of `app` and their numbers, as the drain engine counts them
/// (`dozen_logs::drains`, each running drain's `stats()`).
fn drains(state: &AppState, app: &str) -> Vec<DrainRow> {
    state
        .runtime
        .drains
        .stats(app)
        .into_iter()
        .map(|(drain, s)| DrainRow {
            drain,
            delivered: s.delivered,
            queued: s.queued,
            dropped: s.dropped,
        })
        .collect()
}

/// What one app contributes to the page.
struct AppPart {
    app: String,
    rows: Vec<PsRow>,
    builds: Vec<dozen_store::Build>,
    drains: Vec<DrainRow>,
}

/// The page: every app's series (or `only` that app's), and the server's own when `only` is
/// `None`.
pub async fn render(state: &AppState, only: Option<&str>) -> Result<String, ApiError> {
    let names: Vec<String> = match only {
        Some(app) => vec![app.to_string()],
        None => state
            .store
            .apps()
            .await?
            .into_iter()
            .map(|a| a.name)
            .collect(),
    };
    let mut parts = Vec::with_capacity(names.len());
    for app in names {
        let builds = match state.store.builds(&app).await {
            Ok(b) => b,
            // Destroyed since it was listed.
            Err(dozen_store::StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let rows = match tokio::time::timeout(PS_WAIT, state.runtime.ps(&app)).await {
            Ok(rows) => rows,
            Err(_) => state.runtime.metrics.last_rows(&app),
        };
        let drains = drains(state, &app);
        parts.push(AppPart {
            app,
            rows,
            builds,
            drains,
        });
    }
    let traffic: Vec<dozen_router::Traffic> = state
        .runtime
        .router()
        .traffic()
        .into_iter()
        .filter(|t| parts.iter().any(|p| p.app == t.app))
        .collect();

    let mut page = Page::default();
    series::router(&mut page, &traffic);
    if only.is_none() {
        page.family(
            "dozen_router_unknown_host_requests_total",
            Kind::Counter,
            "Requests for a host no app is served at (answered 404), since the server started.",
        );
        page.sample(
            "dozen_router_unknown_host_requests_total",
            &[],
            state.runtime.router().unknown_host_requests() as f64,
        );
    }
    series::processes(&mut page, &parts);
    series::builds(&mut page, &parts);
    series::drains(&mut page, &parts);
    Ok(page.finish())
}

/// `GET /metrics` as `/openapi.json` describes it (a stand-in, not the handler).
#[allow(dead_code)]
#[utoipa::path(get, path = "/metrics", tag = "server",
    description = "Metrics in the Prometheus text format (version 0.0.4): the router's requests, latency, bytes and requests in flight per app; each process's restarts, memory and CPU time; builds and their durations; each log drain's delivered, queued and dropped messages. An admin token sees every app and the server's own series; an app's read or deploy token sees that app only. With DOZEN_METRICS_BIND the same page is served without a token on that address.",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain"),
        (status = 401, description = "No valid token", body = ErrorBody)))]
pub(crate) fn scrape_doc() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_address_is_an_ip_and_port() {
        assert_eq!(parse_bind(None), Ok(None));
        assert_eq!(parse_bind(Some("  ".into())), Ok(None));
        assert_eq!(
            parse_bind(Some("127.0.0.1:9465".into())),
            Ok(Some(SocketAddr::from(([127, 0, 0, 1], 9465))))
        );
        let err = parse_bind(Some("s3cret-host".into())).expect_err("bad");
        assert!(err.starts_with("DOZEN_METRICS_BIND must be") && !err.contains("s3cret"));
    }

    #[test]
    fn build_seconds_from_the_store_timestamps() {
        let build = dozen_store::Build {
            id: "b".into(),
            app: "shop".into(),
            source_digest: "d".into(),
            status: dozen_store::BuildStatus::Succeeded,
            slug: None,
            process_types: Default::default(),
            error: None,
            created_at: "2026-12-02T14:00:00.000000Z".into(),
            finished_at: Some("2026-12-02T14:01:30.500000Z".into()),
        };
        assert_eq!(series::build_seconds(&build), Some(90.5));
        let pending = dozen_store::Build {
            finished_at: None,
            ..build
        };
        assert_eq!(series::build_seconds(&pending), None);
    }
}
