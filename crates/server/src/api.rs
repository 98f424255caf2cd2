//! The HTTP API: routes, authentication, and thin handlers that parse a request, call the
//! platform service ([`crate::platform`]) and map its errors to statuses.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dozen_api as api;
use dozen_store::Store;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::loghub::{Entry, Filter, Followed, skipped_note};
use crate::platform::{Platform, PlatformError, parse_version};
use crate::runtime::Runtime;

mod addons;
mod builds;
mod drains;
pub(crate) mod extract;
mod run;
mod views;

use extract::{Json, Path, Query};
mod sizes;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The attached store.
    pub store: Store,
    /// The processes on this host.
    pub runtime: Arc<Runtime>,
    /// The server's configuration.
    pub config: Arc<ServerConfig>,
    /// Becomes true when the server starts shutting down.
    pub shutting_down: watch::Receiver<bool>,
    /// The platform service the handlers call.
    pub platform: Platform,
}

impl AppState {
    /// The state of a server over `store` and the host's processes.
    pub fn new(
        store: Store,
        runtime: Arc<Runtime>,
        config: Arc<ServerConfig>,
        shutting_down: watch::Receiver<bool>,
    ) -> AppState {
        let platform = Platform::new(
            store.clone(),
            runtime.clone(),
            config.clone(),
            shutting_down.clone(),
        );
        AppState {
            store,
            runtime,
            config,
            shutting_down,
            platform,
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The API router. Separate from serving, so tests can call it directly. `guard` checks every
/// `/v1` request's token and scope ([`crate::auth`]).
pub fn router(state: AppState, guard: crate::auth::Guard) -> Router {
    let max_upload = usize::try_from(state.config.max_upload).unwrap_or(usize::MAX);
    // git's smart HTTP for `git push` deploys, with its own authentication (basic auth).
    let git = crate::git::router(&state, guard.clone());
    // Prometheus metrics, with the same tokens (checked by the handler: an app token sees its
    // own app only).
    let metrics = crate::metrics::routes(&state, guard.clone());
    let authed = Router::new()
        .route("/v1/apps", get(list_apps).post(create_app))
        .route("/v1/apps/{app}", get(app_info).delete(destroy_app))
        .route("/v1/apps/{app}/config", get(get_config).patch(patch_config))
        .route("/v1/apps/{app}/releases", get(list_releases))
        .route("/v1/apps/{app}/releases/{version}", get(release_info))
        .route(
            "/v1/apps/{app}/releases/{version}/config",
            get(release_config),
        )
        .route("/v1/apps/{app}/releases/{version}/slug", get(release_slug))
        .route("/v1/apps/{app}/rollback", post(rollback))
        .route(
            "/v1/apps/{app}/builds",
            get(builds::list_builds)
                .post(builds::create_build)
                .layer(DefaultBodyLimit::max(max_upload)),
        )
        .route(
            "/v1/apps/{app}/formation",
            get(get_formation).patch(patch_formation),
        )
        .route(
            "/v1/apps/{app}/formation/sizes",
            get(sizes::get_sizes).patch(sizes::patch_sizes),
        )
        .route("/v1/apps/{app}/ps", get(ps))
        .route("/v1/apps/{app}/ps/restart", post(ps_restart))
        .route("/v1/apps/{app}/run", post(run::run))
        .route("/v1/apps/{app}/logs", get(logs))
        .route("/v1/apps/{app}/domains", get(list_domains).post(add_domain))
        .route(
            "/v1/apps/{app}/domains/{hostname}",
            axum::routing::delete(remove_domain),
        )
        // Add-ons.
        .route("/v1/addon-services", get(addons::services))
        .route(
            "/v1/apps/{app}/addons",
            get(addons::list).post(addons::create),
        )
        .route(
            "/v1/apps/{app}/addons/{addon}",
            axum::routing::delete(addons::destroy),
        )
        .route("/v1/apps/{app}/addons/{addon}/rotate", post(addons::rotate))
        .route(
            "/v1/apps/{app}/addons/{addon}/backups",
            get(addons::backups).post(addons::capture),
        )
        .route(
            "/v1/apps/{app}/addons/{addon}/backups/{backup}/restore",
            post(addons::restore),
        )
        .route(
            "/v1/apps/{app}/addons/{addon}/backup-schedule",
            axum::routing::put(addons::set_schedule).delete(addons::unschedule),
        )
        .route("/v1/apps/{app}/backup-schedules", get(addons::schedules))
        .route("/v1/apps/{app}/attachments", post(addons::attach))
        .route(
            "/v1/apps/{app}/attachments/{attachment}",
            axum::routing::delete(addons::detach),
        )
        .route(
            "/v1/apps/{app}/drains",
            get(drains::list).post(drains::create),
        )
        .route(
            "/v1/apps/{app}/drains/{drain}",
            axum::routing::delete(drains::remove),
        )
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{token}", axum::routing::delete(revoke_token))
        .merge(crate::dashboard::authed_routes())
        .layer(middleware::from_fn_with_state(
            guard.clone(),
            crate::auth::authenticate,
        ));
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { Json(api::Health { ok: true }) }))
        .merge(authed)
        .merge(crate::dashboard::routes(guard))
        .with_state(state)
        .merge(git)
        .merge(metrics)
}

async fn openapi() -> impl IntoResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.get_or_init(crate::openapi::document).as_str(),
    )
}

async fn list_apps(State(s): State<AppState>) -> ApiResult<Json<Vec<api::App>>> {
    let apps = s.platform.apps().await?;
    Ok(Json(apps.into_iter().map(views::app).collect()))
}

async fn create_app(
    State(s): State<AppState>,
    Json(body): Json<api::CreateApp>,
) -> ApiResult<(StatusCode, Json<api::App>)> {
    let app = s.platform.create_app(&body.name).await?;
    Ok((StatusCode::CREATED, Json(views::app(app))))
}

async fn app_info(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<api::AppInfo>> {
    let info = s.platform.app_summary(&app).await?;
    Ok(Json(api::AppInfo {
        name: info.app.name,
        created_at: info.app.created_at,
        current_release: info.app.current_release,
        process_types: info.process_types,
        formation: info.formation,
        processes: views::processes(info.processes),
    }))
}

async fn destroy_app(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<api::Destroyed>> {
    s.platform.destroy_app(&app).await?;
    Ok(Json(api::Destroyed { destroyed: app }))
}

async fn get_config(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<api::ConfigVars>> {
    Ok(Json(s.platform.config(&app).await?))
}

async fn patch_config(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<api::ConfigPatch>,
) -> ApiResult<Json<api::Release>> {
    let release = s.platform.change_config(&app, body.set, body.unset).await?;
    Ok(Json(views::release(&release)))
}

async fn list_releases(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<api::ReleaseEntry>>> {
    let (releases, current) = s.platform.releases(&app).await?;
    Ok(Json(
        releases
            .iter()
            .map(|r| api::ReleaseEntry {
                release: views::release(r),
                current: Some(r.version) == current,
            })
            .collect(),
    ))
}

async fn release_info(
    State(s): State<AppState>,
    Path((app, version)): Path<(String, String)>,
) -> ApiResult<Json<api::ReleaseDetail>> {
    let r = s.platform.release(&app, parse_version(&version)?).await?;
    // What the build recorded about the slug: process types in Procfile order, the web
    // health check and boot timeout (exporters need them; none of it is config).
    let slug_manifest = match &r.slug {
        Some(digest) => Some(
            serde_json::from_str(&s.platform.slug_manifest(digest).await?).map_err(|e| {
                PlatformError::internal(format!("reading the manifest of slug {digest}"), e)
            })?,
        ),
        None => None,
    };
    Ok(Json(api::ReleaseDetail {
        release: views::release(&r),
        slug_manifest,
    }))
}

/// The config vars of one release, as they were when it was made (what a rollback to it
/// restores, and what an export of it carries). Values, like `GET /config`.
async fn release_config(
    State(s): State<AppState>,
    Path((app, version)): Path<(String, String)>,
) -> ApiResult<Json<api::ConfigVars>> {
    let r = s.platform.release(&app, parse_version(&version)?).await?;
    Ok(Json(r.config))
}

/// The slug a release runs, as the `tar.zst` the build packed (its blake3 digest is the
/// `X-Dozen-Slug-Digest` header), streamed in chunks.
async fn release_slug(
    State(s): State<AppState>,
    Path((app, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (path, digest) = s.platform.slug_file(&app, parse_version(&version)?).await?;
    let reading = |e: std::io::Error| {
        PlatformError::internal("reading the slug", format!("{}: {e}", path.display()))
    };
    let mut file = tokio::fs::File::open(&path).await.map_err(reading)?;
    let size = file.metadata().await.map_err(reading)?.len();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/zstd")
        .header(header::CONTENT_LENGTH, size)
        .header("x-dozen-slug-digest", digest)
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn rollback(
    State(s): State<AppState>,
    Path(app): Path<String>,
    body: Option<Json<api::RollbackRequest>>,
) -> ApiResult<Json<api::Release>> {
    let target = body
        .and_then(|b| b.0.version)
        .map(|v| parse_version(&v))
        .transpose()?;
    let release = s.platform.rollback(&app, target).await?;
    Ok(Json(views::release(&release)))
}

/// Stream the app's log entries that pass `filter` until `done` resolves; then a final JSON
/// line made by `last`. The end is found with a marker event sent through the same stream,
/// so every line written before the end is delivered.
fn stream_until_done<T: Send + 'static, L: serde::Serialize>(
    s: AppState,
    app: String,
    mut live: tokio::sync::broadcast::Receiver<Entry>,
    filter: Filter,
    done: tokio::sync::oneshot::Receiver<T>,
    last: impl FnOnce(T) -> L + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        let mut done = done;
        let result = loop {
            tokio::select! {
                r = &mut done => match r {
                    Ok(v) => break v,
                    Err(_) => return,
                },
                entry = live.recv() => {
                    if forward(&tx, &filter, followed(entry)).await.is_err() {
                        return;
                    }
                }
            }
        };
        // A barrier through the app's stream: once it passes, every event sent before the end
        // has been broadcast, so draining what is queued delivers all of it.
        s.runtime.log(&app).sender().barrier().await;
        loop {
            match live.try_recv() {
                Ok(e) => {
                    if forward(&tx, &filter, Followed::Entry(e)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                    let lagged = Followed::Skipped {
                        lines: n,
                        behind: true,
                    };
                    if forward(&tx, &filter, lagged).await.is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let last = serde_json::to_string(&last(result))
            .expect("the API's types hold only strings, numbers, lists and maps");
        let _ = tx.send(Ok(line(&last))).await;
    });
    ndjson(rx)
}

/// What a plain subscription (one that started before the events it wants) received, as
/// [`forward`] takes it.
fn followed(r: Result<Entry, tokio::sync::broadcast::error::RecvError>) -> Followed {
    use tokio::sync::broadcast::error::RecvError;
    match r {
        Ok(e) => Followed::Entry(e),
        Err(RecvError::Lagged(lines)) => Followed::Skipped {
            lines,
            behind: true,
        },
        Err(RecvError::Closed) => Followed::Closed,
    }
}

fn line(s: &str) -> Bytes {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(b'\n');
    Bytes::from(v)
}

fn ndjson(rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn get_formation(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<api::Formation>> {
    Ok(Json(s.platform.formation(&app).await?))
}

async fn patch_formation(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<api::Formation>,
) -> ApiResult<Json<api::Formation>> {
    Ok(Json(s.platform.scale(&app, body).await?))
}

async fn ps(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<api::Process>>> {
    Ok(Json(views::processes(s.platform.ps(&app).await?)))
}

async fn ps_restart(
    State(s): State<AppState>,
    Path(app): Path<String>,
    body: Option<Json<api::RestartRequest>>,
) -> ApiResult<Json<Vec<api::Process>>> {
    let only = body.and_then(|b| b.0.type_name);
    Ok(Json(views::processes(
        s.platform.restart(&app, only).await?,
    )))
}

#[derive(Debug, Deserialize, Default)]
struct LogsQuery {
    lines: Option<usize>,
    tail: Option<bool>,
    ps: Option<String>,
    source: Option<String>,
}

async fn logs(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    s.platform.app(&app).await?;
    if let Some(src) = &q.source {
        if src != "app" && src != "dozen" {
            return Err(ApiError::Invalid(format!(
                "source `{src}`: use app or dozen"
            )));
        }
    }
    let filter = Filter {
        ps: q.ps,
        source: q.source,
    };
    let log = s.runtime.log(&app);
    let (recent, mut live) = log.follow(q.lines.unwrap_or(100), &filter);
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let tail = q.tail.unwrap_or(false);
    let down = until_true(s.shutting_down.clone());
    tokio::spawn(async move {
        tokio::pin!(down);
        for e in recent {
            if tx.send(Ok(line(e.json()))).await.is_err() {
                return;
            }
        }
        if !tail {
            return;
        }
        loop {
            tokio::select! {
                _ = &mut down => return,
                entry = live.recv() => {
                    if forward(&tx, &filter, entry).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(ndjson(rx))
}

async fn list_domains(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<api::Domains>> {
    let custom = s.platform.domains(&app).await?;
    let default = s.platform.default_hostname(&app);
    Ok(Json(api::Domains { default, custom }))
}

async fn add_domain(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<api::DomainRequest>,
) -> ApiResult<(StatusCode, Json<Vec<String>>)> {
    let domains = s.platform.add_domain(&app, &body.hostname).await?;
    Ok((StatusCode::CREATED, Json(domains)))
}

async fn remove_domain(
    State(s): State<AppState>,
    Path((app, hostname)): Path<(String, String)>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(s.platform.remove_domain(&app, &hostname).await?))
}

async fn list_tokens(State(s): State<AppState>) -> ApiResult<Json<Vec<api::Token>>> {
    let tokens = s.store.list_tokens().await?;
    Ok(Json(tokens.into_iter().map(views::token).collect()))
}

async fn create_token(
    State(s): State<AppState>,
    Json(body): Json<api::CreateToken>,
) -> ApiResult<(StatusCode, Json<api::CreatedToken>)> {
    let scope: Option<dozen_store::Scope> = body.scope.as_deref().map(str::parse).transpose()?;
    let (info, token) = match (body.app, scope) {
        (None, None | Some(dozen_store::Scope::Admin)) => s.store.create_token(&body.name).await?,
        (None, Some(scope)) => {
            return Err(ApiError::Invalid(format!(
                "a {scope} token is for one app: give its app"
            )));
        }
        (Some(app), scope) => {
            let scope = scope.unwrap_or(dozen_store::Scope::Deploy);
            s.store.create_app_token(&body.name, &app, scope).await?
        }
    };
    let info = views::token(info);
    Ok((StatusCode::CREATED, Json(api::CreatedToken { token, info })))
}

async fn revoke_token(
    State(s): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<api::Token>> {
    Ok(Json(views::token(s.store.revoke_token(&token).await?)))
}

/// Resolves when the flag becomes true (never, if its sender is dropped first).
async fn until_true(mut flag: watch::Receiver<bool>) {
    if flag.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Send one entry (or a note that entries were skipped) to a streaming client. Err when the
/// client is gone or the stream ended.
async fn forward(
    tx: &mpsc::Sender<Result<Bytes, Infallible>>,
    filter: &Filter,
    entry: Followed,
) -> Result<(), ()> {
    match entry {
        Followed::Entry(e) if filter.accepts(&e) => {
            tx.send(Ok(line(e.json()))).await.map_err(|_| ())
        }
        Followed::Entry(_) => Ok(()),
        Followed::Skipped { lines, behind } => {
            let note = json!({"proc": "dozen", "stream": "event", "line": skipped_note(lines, behind, "client")});
            tx.send(Ok(line(&note.to_string()))).await.map_err(|_| ())
        }
        Followed::Closed => Err(()),
    }
}
