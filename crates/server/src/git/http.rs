//! git's smart HTTP protocol at `/git/<app>.git/...` on the API port: authentication and
//! scopes here, the protocol in `git http-backend`, run as CGI under the supervisor for each
//! request, with the request body streamed to it and its answer streamed back.
//!
//! `git http-backend` rather than `receive-pack --stateless-rpc` driven by us: it is git's own
//! server side of the protocol, so gzip-compressed requests, protocol v2 fetches (the
//! `Git-Protocol` header) and the advertisement's framing are git's to get right, not ours.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dozen_logs::Stream;
use dozen_store::TokenInfo;
use dozen_supervise::{Attached, OutputChunk, Stop};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::{cgi, command, hook, repo};
use crate::api::AppState;
use crate::auth::{Guard, Need, allows};
use crate::error::ApiError;
use crate::platform::{Platform, PlatformError};

#[derive(Debug, Clone)]
struct GitState {
    platform: Platform,
    guard: Guard,
}

/// The git routes, with their state: merged beside the API's (they authenticate their own way:
/// git sends the token as the password of HTTP basic auth).
pub fn router(state: &AppState, guard: Guard) -> Router {
    Router::new()
        .route("/git/{repo}/info/refs", get(info_refs))
        .route("/git/{repo}/git-upload-pack", post(upload_pack))
        .route("/git/{repo}/git-receive-pack", post(receive_pack))
        .with_state(GitState {
            platform: state.platform.clone(),
            guard,
        })
}

/// Which side of the protocol a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// Fetch and clone: needs `read`.
    UploadPack,
    /// Push: needs `deploy`.
    ReceivePack,
}

impl Service {
    fn need(self) -> Need {
        match self {
            Service::UploadPack => Need::Read,
            Service::ReceivePack => Need::Deploy,
        }
    }

    fn action(self) -> &'static str {
        match self {
            Service::UploadPack => "git:fetch",
            Service::ReceivePack => "git:push",
        }
    }
}

async fn info_refs(
    State(g): State<GitState>,
    Path(repo): Path<String>,
    request: Request,
) -> Response {
    let query = request.uri().query().unwrap_or_default();
    let service = query.split('&').find_map(|kv| kv.strip_prefix("service="));
    let service = match service {
        Some("git-upload-pack") => Service::UploadPack,
        Some("git-receive-pack") => Service::ReceivePack,
        _ => {
            return text(
                StatusCode::FORBIDDEN,
                "dozen speaks git's smart HTTP protocol only (git 1.6.6 or later)",
            );
        }
    };
    serve(g, repo, service, "info/refs", request).await
}

async fn upload_pack(
    State(g): State<GitState>,
    Path(repo): Path<String>,
    request: Request,
) -> Response {
    serve(g, repo, Service::UploadPack, "git-upload-pack", request).await
}

async fn receive_pack(
    State(g): State<GitState>,
    Path(repo): Path<String>,
    request: Request,
) -> Response {
    serve(g, repo, Service::ReceivePack, "git-receive-pack", request).await
}

/// A plain-text answer: git shows its body to the user (as `remote:` lines).
fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn unauthorized(message: &str) -> Response {
    let mut r = text(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"dozen\""),
    );
    r
}

async fn serve(
    g: GitState,
    repo_name: String,
    service: Service,
    tail: &str,
    request: Request,
) -> Response {
    let app = repo_name
        .strip_suffix(".git")
        .unwrap_or(&repo_name)
        .to_string();
    if dozen_core::name::validate_app_name(&app).is_err() {
        return text(StatusCode::NOT_FOUND, format!("no app named {app}"));
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let Some(presented) = basic_password(request.headers()) else {
        return unauthorized("send an API token as the password (see `dozen git:credentials`)");
    };
    let token = match g.guard.verify(peer, &presented).await {
        Ok(t) => t,
        Err(ApiError::Unauthorized) => return unauthorized("that API token is not valid"),
        Err(e) => return text(e.status(), e.to_string()),
    };
    if !allows(&token, service.need(), Some(&app)) {
        g.guard
            .audit(&token, peer, service.action(), &app, 403)
            .await;
        return text(StatusCode::FORBIDDEN, refusal(&token, service, &app));
    }
    let p = &g.platform;
    if let Err(e) = p.app(&app).await {
        return platform_error(e);
    }
    if service == Service::ReceivePack && tail != "info/refs" {
        if let Err(e) = p.check_not_shutting_down() {
            return platform_error(e);
        }
        g.guard.audit(&token, peer, "git:push", &app, 200).await;
    }
    let repo = match repo::ensure_repo(p, &app).await {
        Ok(r) => r,
        Err(e) => return platform_error(e),
    };
    let mut env = cgi_env(p, &app, tail, &token, peer, &request);
    let (ended_tx, ended_rx) = oneshot::channel();
    if service == Service::ReceivePack && tail != "info/refs" {
        match hook::prepare(p, &app, &token.name, &repo, ended_rx) {
            Ok(prepared) => env.extend(prepared.env),
            Err(e) => return platform_error(e),
        }
    }
    run_cgi(p, env, request.into_body(), ended_tx).await
}

fn platform_error(e: PlatformError) -> Response {
    let message = e.report();
    text(ApiError::from(e).status(), message)
}

fn refusal(token: &TokenInfo, service: Service, app: &str) -> String {
    let has = match &token.app {
        Some(a) if token.scope != dozen_store::Scope::Admin => format!("{} on {a}", token.scope),
        _ => token.scope.to_string(),
    };
    let (what, needs) = match service {
        Service::ReceivePack => ("push to", format!("deploy on {app}")),
        Service::UploadPack => ("fetch from", format!("read or deploy on {app}")),
    };
    format!(
        "token {} may not {what} {app}: it has scope {has}; this needs {needs}, or an admin token",
        token.name
    )
}

/// The password of `Authorization: Basic ...` (the user name is ignored).
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?.trim();
    let decoded = String::from_utf8(base64_decode(encoded)?).ok()?;
    let (_, password) = decoded.split_once(':')?;
    let password = password.trim();
    (!password.is_empty()).then(|| password.to_string())
}

/// Standard base64 with padding (RFC 4648 section 4), as HTTP basic auth sends it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 || s.len() > 16 * 1024 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The CGI variables of one request (RFC 3875 section 4.1) and git http-backend's own.
fn cgi_env(
    p: &Platform,
    app: &str,
    tail: &str,
    token: &TokenInfo,
    peer: std::net::IpAddr,
    request: &Request,
) -> Vec<(String, String)> {
    let headers = request.headers();
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut env = vec![
        (
            "GIT_PROJECT_ROOT".to_string(),
            repo::repos_dir(&p.config.data_dir)
                .to_string_lossy()
                .into_owned(),
        ),
        ("GIT_HTTP_EXPORT_ALL".into(), "1".into()),
        ("PATH_INFO".into(), format!("/{app}.git/{tail}")),
        (
            "REQUEST_METHOD".into(),
            request.method().as_str().to_string(),
        ),
        (
            "QUERY_STRING".into(),
            request.uri().query().unwrap_or_default().to_string(),
        ),
        ("REMOTE_USER".into(), token.name.clone()),
        ("REMOTE_ADDR".into(), peer.to_string()),
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
    ];
    if let Some(v) = header(header::CONTENT_TYPE) {
        env.push(("CONTENT_TYPE".into(), v));
    }
    if let Some(v) = header(header::CONTENT_LENGTH) {
        env.push(("CONTENT_LENGTH".into(), v));
    }
    if let Some(v) = header(header::CONTENT_ENCODING) {
        env.push(("HTTP_CONTENT_ENCODING".into(), v));
    }
    // Protocol v2 is asked for with `Git-Protocol: version=2`; only its plain words pass.
    if let Some(v) = headers.get("git-protocol").and_then(|v| v.to_str().ok()) {
        if v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=:._-".contains(&b))
        {
            env.push(("GIT_PROTOCOL".into(), v.to_string()));
        }
    }
    env
}

/// Run `git http-backend` with `env`, the request body on its stdin (at most
/// `DOZEN_MAX_UPLOAD_MB`: past it the body is cut, which fails the push), and answer with what
/// it writes, streamed. `ended` is sent when the process has ended.
///
/// A client that sends nothing of its request body, or reads nothing of the answer, for
/// `DOZEN_GIT_STALL_TIMEOUT` has stalled: the process is stopped (SIGTERM, so git removes its
/// quarantine), which ends the request and, for a push, lets the app's lock go. A server that
/// is quiet while a build runs is not a stall: only the client's side is timed.
async fn run_cgi(
    p: &Platform,
    env: Vec<(String, String)>,
    body: Body,
    ended: oneshot::Sender<()>,
) -> Response {
    let cwd = repo::repos_dir(&p.config.data_dir);
    let spec = command::spec("git http-backend", &["http-backend"], &cwd, env);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(4);
    let (out_tx, mut out_rx) = mpsc::channel::<OutputChunk>(16);
    let max = p.config.max_upload;
    let stall = p.config.git_stall_timeout;
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let stop_tx = std::sync::Arc::new(stop_tx);
    // The process runs while a sender is kept (a dropped one stops it).
    let keep_running = stop_tx.clone();
    let stop = move |what: &str| {
        eprintln!(
            "dozen server: a git client {what} for {} s (DOZEN_GIT_STALL_TIMEOUT): its git http-backend is stopped",
            stall.as_secs()
        );
        let _ = stop_tx.send(Stop::Graceful { signal: None });
    };
    let stop_body = stop.clone();
    tokio::spawn(async move {
        let mut chunks = body.into_data_stream();
        let mut size = 0u64;
        loop {
            let chunk = match tokio::time::timeout(stall, chunks.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(_) => return,
                Err(_) => return stop_body("sent no more of its request"),
            };
            size += chunk.len() as u64;
            if size > max {
                eprintln!(
                    "dozen server: a git request body is over {} MB (DOZEN_MAX_UPLOAD_MB): cut",
                    max / (1024 * 1024)
                );
                return;
            }
            if stdin_tx.send(chunk.to_vec()).await.is_err() {
                return;
            }
        }
    });
    let supervisor_of = p.clone();
    tokio::spawn(async move {
        let _keep_running = keep_running;
        let io = Attached {
            stdin: stdin_rx,
            output: Some(out_tx),
        };
        let status = supervisor_of
            .runtime
            .supervisor()
            .run_attached(spec, stop_rx, io)
            .await;
        if !status.success() {
            eprintln!("dozen server: git http-backend {status}");
        }
        let _ = ended.send(());
    });

    // The head of the answer, then the rest streamed as the body.
    let mut buf = Vec::new();
    let mut stderr = Vec::new();
    let end = loop {
        match out_rx.recv().await {
            Some(c) if c.stream == Stream::Stdout => {
                buf.extend_from_slice(&c.bytes);
                match cgi::head_end(&buf) {
                    Ok(Some(end)) => break Ok(end),
                    Ok(None) => {}
                    Err(e) => break Err(e.to_string()),
                }
            }
            Some(c) => {
                let room = command::STDERR_LIMIT.saturating_sub(stderr.len());
                stderr.extend_from_slice(&c.bytes[..c.bytes.len().min(room)]);
            }
            None => break Err("it ended without an answer".to_string()),
        }
    };
    let head = end.and_then(|end| {
        cgi::parse_head(&buf[..end])
            .map(|h| (h, end))
            .map_err(|e| e.to_string())
    });
    let (head, end) = match head {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "dozen server: error: git http-backend: {e}: {}",
                String::from_utf8_lossy(&stderr).trim()
            );
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "git http-backend failed on the server (its log has the cause)",
            );
        }
    };
    let first = buf.split_off(end);
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let mut next = (!first.is_empty()).then(|| Bytes::from(first));
        loop {
            if let Some(bytes) = next.take() {
                match tokio::time::timeout(stall, tx.send(Ok(bytes))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => return stop("read no more of the answer"),
                }
            }
            match out_rx.recv().await {
                Some(c) if c.stream == Stream::Stdout => next = Some(Bytes::from(c.bytes)),
                Some(_) => {}
                None => return,
            }
        }
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    *response.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::OK);
    for (name, value) in head.headers {
        let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            header::HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response.headers_mut().append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_gives_the_password() {
        let mut h = HeaderMap::new();
        // "dozen:dzn_abc"
        h.insert(
            header::AUTHORIZATION,
            "Basic ZG96ZW46ZHpuX2FiYw==".parse().expect("value"),
        );
        assert_eq!(basic_password(&h).as_deref(), Some("dzn_abc"));
        // ":x" has no padding to strip: "Ojp4" is "::x", the password ":x" after the first colon.
        h.insert(header::AUTHORIZATION, "Basic Ojp4".parse().expect("value"));
        assert_eq!(basic_password(&h).as_deref(), Some(":x"));
        h.insert(header::AUTHORIZATION, "Basic !!!!".parse().expect("value"));
        assert_eq!(basic_password(&h), None);
        h.insert(
            header::AUTHORIZATION,
            "Bearer dzn_abc".parse().expect("value"),
        );
        assert_eq!(basic_password(&h), None);
        // A user name without a password is no token.
        h.insert(
            header::AUTHORIZATION,
            "Basic ZG96ZW46".parse().expect("value"),
        );
        assert_eq!(basic_password(&h), None);
    }

    #[test]
    fn base64_round_trips_every_length() {
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(base64_decode("Y"), None);
    }
}
