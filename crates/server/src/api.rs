//! The HTTP API: routes, authentication, and the handlers that turn requests into store changes
//! and runtime actions.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dozen_logs::EventKind;
use dozen_store::{Release, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::config::ServerConfig;
use crate::deploy;
use crate::error::ApiError;
use crate::loghub::{Entry, Filter};
use crate::runtime::Runtime;

mod run;
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
}

type ApiResult<T> = Result<T, ApiError>;

/// The API router. Separate from serving, so tests can call it directly.
pub fn router(state: AppState) -> Router {
    let max_upload = usize::try_from(state.config.max_upload).unwrap_or(usize::MAX);
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
            get(list_builds)
                .post(create_build)
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
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{token}", axum::routing::delete(revoke_token))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { Json(json!({"ok": true})) }))
        .merge(authed)
        .with_state(state)
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return ApiError::Unauthorized.into_response();
    };
    match state.store.verify_token(token).await {
        Ok(Some(_)) => next.run(request).await,
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT,
    )
}

#[derive(Debug, Deserialize)]
struct CreateApp {
    name: String,
}

async fn list_apps(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.store.apps().await?)))
}

async fn create_app(
    State(s): State<AppState>,
    Json(body): Json<CreateApp>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let app = s.store.create_app(&body.name).await?;
    // Routed from now on: 503 (no web process) rather than 404 (unknown app) until a deploy.
    s.runtime.refresh_routes(&s.store, &app.name).await?;
    s.runtime
        .event(
            &app.name,
            EventKind::Info,
            format!("app {} created", app.name),
        )
        .await;
    Ok((StatusCode::CREATED, Json(json!(app))))
}

async fn app_info(State(s): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Value>> {
    let info = s.store.app(&app).await?;
    let formation = s.store.formation(&app).await?;
    let ps = s.runtime.ps(&app).await;
    let current = s.store.current_release(&app).await?;
    Ok(Json(json!({
        "name": info.name,
        "created_at": info.created_at,
        "current_release": info.current_release,
        "process_types": current.as_ref().map(|r| r.process_types.clone()).unwrap_or_default(),
        "formation": formation,
        "processes": ps,
    })))
}

async fn destroy_app(State(s): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Value>> {
    s.store.app(&app).await?;
    s.runtime.stop_app(&app).await;
    s.store.destroy_app(&app).await?;
    Ok(Json(json!({"destroyed": app})))
}

async fn get_config(State(s): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.store.config(&app).await?)))
}

#[derive(Debug, Deserialize, Default)]
struct ConfigPatch {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    unset: Vec<String>,
}

async fn patch_config(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<ConfigPatch>,
) -> ApiResult<Json<Value>> {
    if body.set.is_empty() && body.unset.is_empty() {
        return Err(ApiError::Invalid(
            "nothing to change: give `set` and/or `unset`".into(),
        ));
    }
    let set: Vec<(String, String)> = body.set.into_iter().collect();
    let _op = s.runtime.lock_app(&app).await;
    let release = s.store.set_config(&app, &set, &body.unset).await?;
    let release = deploy::roll_out(&s, release).await?;
    Ok(Json(release_json(&release)))
}

/// A release as the API shows it: config keys, never values.
pub fn release_json(r: &Release) -> Value {
    json!({
        "app": r.app,
        "version": r.version,
        "slug": r.slug,
        "config_keys": r.config_keys(),
        "process_types": r.process_types,
        "description": r.description,
        "status": r.status,
        "failure_reason": r.failure_reason,
        "build_id": r.build_id,
        "created_at": r.created_at,
    })
}

async fn list_releases(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    let current = s.store.app(&app).await?.current_release;
    let list: Vec<Value> = s
        .store
        .releases(&app)
        .await?
        .iter()
        .map(|r| {
            let mut v = release_json(r);
            v["current"] = json!(Some(r.version) == current);
            v
        })
        .collect();
    Ok(Json(json!(list)))
}

fn parse_version(v: &str) -> ApiResult<i64> {
    v.trim_start_matches('v')
        .parse()
        .map_err(|_| ApiError::Invalid(format!("release `{v}`: write a release as vN, e.g. v3")))
}

async fn release_info(
    State(s): State<AppState>,
    Path((app, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = s.store.release(&app, parse_version(&version)?).await?;
    let mut v = release_json(&r);
    // What the build recorded about the slug: process types in Procfile order, the web
    // health check and boot timeout (exporters need them; none of it is config).
    v["slug_manifest"] = match &r.slug {
        Some(digest) => serde_json::from_str(&s.store.slug(digest).await?.manifest_json)
            .map_err(|e| ApiError::Internal(format!("the manifest of slug {digest}: {e}")))?,
        None => Value::Null,
    };
    Ok(Json(v))
}

/// The config vars of one release, as they were when it was made (what a rollback to it
/// restores, and what an export of it carries). Values, like `GET /config`.
async fn release_config(
    State(s): State<AppState>,
    Path((app, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = s.store.release(&app, parse_version(&version)?).await?;
    Ok(Json(json!(r.config)))
}

/// The slug a release runs, as the `tar.zst` the build packed (its blake3 digest is the
/// `X-Dozen-Slug-Digest` header), streamed in chunks.
async fn release_slug(
    State(s): State<AppState>,
    Path((app, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = s.store.release(&app, parse_version(&version)?).await?;
    let digest = r.slug.ok_or_else(|| {
        ApiError::NotFound(format!(
            "{app} v{} has no slug (nothing was deployed)",
            r.version
        ))
    })?;
    let path = s
        .config
        .data_dir
        .join("slugs")
        .join(format!("{digest}.tar.zst"));
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?
        .len();
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

#[derive(Debug, Deserialize, Default)]
struct RollbackBody {
    version: Option<String>,
}

async fn rollback(
    State(s): State<AppState>,
    Path(app): Path<String>,
    body: Option<Json<RollbackBody>>,
) -> ApiResult<Json<Value>> {
    let target = match body.and_then(|b| b.0.version) {
        Some(v) => parse_version(&v)?,
        None => {
            // The release that was live before the current one.
            let current = s.store.app(&app).await?.current_release;
            s.store
                .releases(&app)
                .await?
                .into_iter()
                .find(|r| {
                    r.status == dozen_store::ReleaseStatus::Succeeded
                        && Some(r.version) != current
                        && current.is_none_or(|c| r.version < c)
                })
                .map(|r| r.version)
                .ok_or_else(|| {
                    ApiError::Invalid("there is no earlier release to roll back to".into())
                })?
        }
    };
    let _op = s.runtime.lock_app(&app).await;
    let release = s.store.rollback(&app, target).await?;
    let release = deploy::roll_out(&s, release).await?;
    Ok(Json(release_json(&release)))
}

async fn list_builds(State(s): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.store.builds(&app).await?)))
}

/// Upload a source archive (`tar.zst`) and stream the build and release as NDJSON.
async fn create_build(
    State(s): State<AppState>,
    Path(app): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    s.store.app(&app).await?;
    if *s.shutting_down.borrow() {
        return Err(ApiError::Unavailable);
    }
    let upload = deploy::receive_upload(&s, &app, body).await?;
    let log = s.runtime.log(&app);
    let live = log.subscribe();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let state = s.clone();
    let app_name = app.clone();
    tokio::spawn(async move {
        let result = deploy::deploy(&state, &app_name, upload).await;
        let _ = done_tx.send(result);
    });
    let filter = Filter {
        ps: None,
        source: None,
    };
    Ok(stream_until_done(
        s,
        app,
        live,
        filter,
        done_rx,
        |result| match result {
            Ok(release) => json!({"status": "succeeded", "release": release_json(&release)}),
            Err(e) => json!({"status": "failed", "error": e.to_string()}),
        },
    ))
}

/// Stream the app's log entries that pass `filter` until `done` resolves; then a final JSON
/// line made by `last`. The end is found with a marker event sent through the same stream,
/// so every line written before the end is delivered.
fn stream_until_done<T: Send + 'static>(
    s: AppState,
    app: String,
    mut live: tokio::sync::broadcast::Receiver<Entry>,
    filter: Filter,
    done: tokio::sync::oneshot::Receiver<T>,
    last: impl FnOnce(T) -> Value + Send + 'static,
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
                    if forward(&tx, &filter, entry).await.is_err() {
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
                    if forward(&tx, &filter, Ok(e)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                    let lagged = Err(tokio::sync::broadcast::error::RecvError::Lagged(n));
                    if forward(&tx, &filter, lagged).await.is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(Ok(line(&last(result).to_string()))).await;
    });
    ndjson(rx)
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
) -> ApiResult<Json<Value>> {
    s.store.app(&app).await?;
    Ok(Json(json!(effective_formation(&s, &app).await?)))
}

/// The app's live release, or a clear error when nothing is deployed yet.
async fn live_release(s: &AppState, app: &str) -> ApiResult<Release> {
    s.store
        .current_release(app)
        .await?
        .ok_or_else(|| ApiError::Invalid(format!("{app} has no release yet: deploy first")))
}

/// The formation with defaults filled in for every process type of the live release (types the
/// store knows but the release no longer has are shown too).
async fn effective_formation(s: &AppState, app: &str) -> ApiResult<BTreeMap<String, i64>> {
    let mut formation = s.store.formation(app).await?;
    if let Some(release) = s.store.current_release(app).await? {
        formation.extend(crate::runtime::effective_formation(&formation, &release));
    }
    Ok(formation)
}

async fn patch_formation(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<BTreeMap<String, i64>>,
) -> ApiResult<Json<Value>> {
    if body.is_empty() {
        return Err(ApiError::Invalid("nothing to scale: give TYPE=N".into()));
    }
    let _op = s.runtime.lock_app(&app).await;
    if let Some(release) = s.store.current_release(&app).await? {
        for t in body.keys() {
            if !release.process_types.contains_key(t) || t == "release" {
                let known: Vec<&str> = release
                    .process_types
                    .keys()
                    .map(String::as_str)
                    .filter(|t| *t != "release")
                    .collect();
                return Err(ApiError::Invalid(format!(
                    "no process type `{t}` in the live release (v{}); its types: {}",
                    release.version,
                    known.join(", ")
                )));
            }
        }
    }
    let changes: Vec<(String, i64)> = body.into_iter().collect();
    s.store.scale(&app, &changes).await?;
    let formation = effective_formation(&s, &app).await?;
    if let Some(release) = s.store.current_release(&app).await? {
        let summary: Vec<String> = changes.iter().map(|(t, n)| format!("{t}={n}")).collect();
        s.runtime
            .event(
                &app,
                EventKind::Info,
                format!("scaled to {}", summary.join(", ")),
            )
            .await;
        s.runtime.converge(&release, &formation, false).await?;
    }
    Ok(Json(json!(formation)))
}

async fn ps(State(s): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Value>> {
    s.store.app(&app).await?;
    Ok(Json(json!(s.runtime.ps(&app).await)))
}

#[derive(Debug, Deserialize, Default)]
struct RestartBody {
    #[serde(rename = "type")]
    type_name: Option<String>,
}

async fn ps_restart(
    State(s): State<AppState>,
    Path(app): Path<String>,
    body: Option<Json<RestartBody>>,
) -> ApiResult<Json<Value>> {
    let release = live_release(&s, &app).await?;
    let formation = effective_formation(&s, &app).await?;
    let only = body.and_then(|b| b.0.type_name);
    if let Some(t) = &only {
        if !release.process_types.contains_key(t) || t == "release" {
            return Err(ApiError::Invalid(format!(
                "no process type `{t}` in v{}",
                release.version
            )));
        }
    }
    let _op = s.runtime.lock_app(&app).await;
    s.runtime
        .event(
            &app,
            EventKind::Info,
            format!("restarting {}", only.as_deref().unwrap_or("all processes")),
        )
        .await;
    s.runtime
        .restart(&release, &formation, only.as_deref())
        .await?;
    Ok(Json(json!(s.runtime.ps(&app).await)))
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
    s.store.app(&app).await?;
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
    let mut live = log.subscribe();
    let recent = log.recent(q.lines.unwrap_or(100), &filter);
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let tail = q.tail.unwrap_or(false);
    let down = until_true(s.shutting_down.clone());
    tokio::spawn(async move {
        tokio::pin!(down);
        for e in recent {
            if tx.send(Ok(line(&e.json))).await.is_err() {
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

#[derive(Debug, Deserialize)]
struct DomainBody {
    hostname: String,
}

async fn list_domains(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    s.store.app(&app).await?;
    let default = format!("{app}.{}", s.config.domain);
    Ok(Json(
        json!({"default": default, "custom": s.store.domains(&app).await?}),
    ))
}

async fn add_domain(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<DomainBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    s.store.add_domain(&app, &body.hostname).await?;
    s.runtime.refresh_routes(&s.store, &app).await?;
    s.runtime
        .event(
            &app,
            EventKind::Info,
            format!("domain {} added", body.hostname.to_ascii_lowercase()),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(json!(s.store.domains(&app).await?)),
    ))
}

async fn remove_domain(
    State(s): State<AppState>,
    Path((app, hostname)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    s.store.remove_domain(&app, &hostname).await?;
    s.runtime.refresh_routes(&s.store, &app).await?;
    s.runtime
        .event(&app, EventKind::Info, format!("domain {hostname} removed"))
        .await;
    Ok(Json(json!(s.store.domains(&app).await?)))
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    name: String,
}

async fn list_tokens(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.store.list_tokens().await?)))
}

async fn create_token(
    State(s): State<AppState>,
    Json(body): Json<TokenBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (info, plaintext) = s.store.create_token(&body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": plaintext, "info": info})),
    ))
}

async fn revoke_token(
    State(s): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.store.revoke_token(&token).await?)))
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
    entry: Result<Entry, tokio::sync::broadcast::error::RecvError>,
) -> Result<(), ()> {
    match entry {
        Ok(e) if filter.accepts(&e) => tx.send(Ok(line(&e.json))).await.map_err(|_| ()),
        Ok(_) => Ok(()),
        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
            let note = json!({"proc": "dozen", "stream": "event", "line": format!("{n} lines skipped: this client fell behind")});
            tx.send(Ok(line(&note.to_string()))).await.map_err(|_| ())
        }
        Err(_) => Err(()),
    }
}
