//! Who may call what. Every `/v1` request passes [`authenticate`], which
//!
//! 1. refuses an address that sent too many bad tokens ([`limit`]: `429` with `Retry-After`);
//! 2. verifies the bearer token (`401` when it is missing or wrong);
//! 3. looks up what the method and route need in [`ROUTES`] and refuses a token whose scope
//!    does not cover it (`403`, saying which scope would);
//! 4. writes an audit line to the server's own log for every state change ([`audit`]);
//! 5. runs the request as the token ([`dozen_store::acting_as`]), so the releases it makes
//!    record the token's name as who made them.
//!
//! A token is `admin` (every app, token and server setting), or `deploy` or `read` on one app
//! ([`Scope`]). A method and route missing from [`ROUTES`] needs admin, so a new route stays
//! closed to app tokens until someone decides what it needs. `GET /v1/apps` answers an app token
//! with its own app only.
//!
//! The dashboard's browsers present a session cookie instead of the bearer token ([`session`]);
//! the same scope checks apply, and a state change must also carry the session's CSRF secret.

mod audit;
mod limit;
pub mod session;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dozen_logs::{EventKind, LogSender, PlatformEvent};
use dozen_store::{Scope, Store, TokenInfo};
use serde_json::Value;

use crate::error::ApiError;

pub use limit::{BadTokens, LIMIT, MAX_ADDRESSES, WINDOW};

/// What a route needs of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any valid token; an app token is answered with its own app only.
    AppList,
    /// `read` on the route's app, or more.
    Read,
    /// `deploy` on the route's app, or admin.
    Deploy,
    /// An admin token.
    Admin,
}

/// One method and route of the API, what it needs, and its action's name in audit lines.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The HTTP method (`HEAD` is looked up as `GET`, as the router serves it).
    pub method: &'static str,
    /// The route as the router declares it.
    pub path: &'static str,
    /// What the token needs.
    pub need: Need,
    /// The action, in the CLI's words.
    pub action: &'static str,
}

const fn route(
    method: &'static str,
    path: &'static str,
    need: Need,
    action: &'static str,
) -> Route {
    Route {
        method,
        path,
        need,
        action,
    }
}

/// Every authenticated route. `read` sees an app but never its config values (nor the slug,
/// which is the app's code); `deploy` changes an app but cannot create or destroy apps or
/// touch tokens.
pub const ROUTES: &[Route] = &[
    route("GET", "/v1/apps", Need::AppList, "apps"),
    route("POST", "/v1/apps", Need::Admin, "apps:create"),
    route("GET", "/v1/apps/{app}", Need::Read, "apps:info"),
    route("DELETE", "/v1/apps/{app}", Need::Admin, "apps:destroy"),
    route("GET", "/v1/apps/{app}/config", Need::Deploy, "config"),
    route("PATCH", "/v1/apps/{app}/config", Need::Deploy, "config:set"),
    route("GET", "/v1/apps/{app}/releases", Need::Read, "releases"),
    route(
        "GET",
        "/v1/apps/{app}/releases/{version}",
        Need::Read,
        "releases:info",
    ),
    route(
        "GET",
        "/v1/apps/{app}/releases/{version}/config",
        Need::Deploy,
        "releases:config",
    ),
    route(
        "GET",
        "/v1/apps/{app}/releases/{version}/slug",
        Need::Deploy,
        "releases:slug",
    ),
    route("POST", "/v1/apps/{app}/rollback", Need::Deploy, "rollback"),
    route("GET", "/v1/apps/{app}/builds", Need::Read, "builds"),
    route("POST", "/v1/apps/{app}/builds", Need::Deploy, "deploy"),
    route("GET", "/v1/apps/{app}/formation", Need::Read, "formation"),
    route(
        "GET",
        "/v1/apps/{app}/formation/sizes",
        Need::Read,
        "ps:resize",
    ),
    route(
        "PATCH",
        "/v1/apps/{app}/formation/sizes",
        Need::Deploy,
        "ps:resize",
    ),
    route(
        "PATCH",
        "/v1/apps/{app}/formation",
        Need::Deploy,
        "ps:scale",
    ),
    route("GET", "/v1/apps/{app}/ps", Need::Read, "ps"),
    route(
        "POST",
        "/v1/apps/{app}/ps/restart",
        Need::Deploy,
        "ps:restart",
    ),
    route("POST", "/v1/apps/{app}/run", Need::Deploy, "run"),
    route("GET", "/v1/apps/{app}/logs", Need::Read, "logs"),
    route("GET", "/v1/apps/{app}/domains", Need::Read, "domains"),
    route(
        "POST",
        "/v1/apps/{app}/domains",
        Need::Deploy,
        "domains:add",
    ),
    route(
        "DELETE",
        "/v1/apps/{app}/domains/{hostname}",
        Need::Deploy,
        "domains:remove",
    ),
    // Add-ons: an app's deploy token makes, rotates, backs up and destroys the app's own
    // add-ons; attaching one to another app gives that app its data, so it needs admin.
    route("GET", "/v1/addon-services", Need::Admin, "addons:services"),
    route("GET", "/v1/apps/{app}/addons", Need::Read, "addons"),
    route(
        "POST",
        "/v1/apps/{app}/addons",
        Need::Deploy,
        "addons:create",
    ),
    route(
        "DELETE",
        "/v1/apps/{app}/addons/{addon}",
        Need::Deploy,
        "addons:destroy",
    ),
    route(
        "POST",
        "/v1/apps/{app}/addons/{addon}/rotate",
        Need::Deploy,
        "addons:rotate",
    ),
    route(
        "GET",
        "/v1/apps/{app}/addons/{addon}/backups",
        Need::Read,
        "pg:backups",
    ),
    route(
        "POST",
        "/v1/apps/{app}/addons/{addon}/backups",
        Need::Deploy,
        "pg:backups:capture",
    ),
    route(
        "POST",
        "/v1/apps/{app}/addons/{addon}/backups/{backup}/restore",
        Need::Deploy,
        "pg:backups:restore",
    ),
    route(
        "GET",
        "/v1/apps/{app}/backup-schedules",
        Need::Read,
        "backups:schedules",
    ),
    route(
        "PUT",
        "/v1/apps/{app}/addons/{addon}/backup-schedule",
        Need::Deploy,
        "backups:schedule",
    ),
    route(
        "DELETE",
        "/v1/apps/{app}/addons/{addon}/backup-schedule",
        Need::Deploy,
        "backups:unschedule",
    ),
    route(
        "POST",
        "/v1/apps/{app}/attachments",
        Need::Admin,
        "addons:attach",
    ),
    route(
        "DELETE",
        "/v1/apps/{app}/attachments/{attachment}",
        Need::Deploy,
        "addons:detach",
    ),
    // Drains: an app's deploy token sends the app's logs where it chooses.
    route("GET", "/v1/apps/{app}/drains", Need::Read, "drains"),
    route("POST", "/v1/apps/{app}/drains", Need::Deploy, "drains:add"),
    route(
        "DELETE",
        "/v1/apps/{app}/drains/{drain}",
        Need::Deploy,
        "drains:remove",
    ),
    route("GET", "/v1/tokens", Need::Admin, "tokens"),
    route("POST", "/v1/tokens", Need::Admin, "tokens:create"),
    route("DELETE", "/v1/tokens/{token}", Need::Admin, "tokens:revoke"),
];

/// The entry for `method` on `path` (a route as declared), if there is one.
pub fn lookup(method: &Method, path: &str) -> Option<&'static Route> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .chain(session::DASHBOARD_ROUTES)
        .find(|r| r.method == method && r.path == path)
}

/// Whether `token` may do what `need` asks on `app` (the route's app, if it has one).
pub fn allows(token: &TokenInfo, need: Need, app: Option<&str>) -> bool {
    let required = match (token.scope, need) {
        (Scope::Admin, _) => return true,
        (_, Need::Admin) => return false,
        (_, Need::AppList) => return true,
        (_, Need::Read) => Scope::Read,
        (_, Need::Deploy) => Scope::Deploy,
    };
    token.scope >= required && app.is_some() && token.app.as_deref() == app
}

/// A token's scope as audit lines and messages show it: `admin`, `deploy:shop`.
fn scope_label(token: &TokenInfo) -> String {
    match &token.app {
        Some(app) if token.scope != Scope::Admin => format!("{}:{app}", token.scope),
        _ => token.scope.to_string(),
    }
}

/// Why `token` may not make this request, and which scope would do.
fn refusal(
    token: &TokenInfo,
    method: &Method,
    path: &str,
    need: Need,
    app: Option<&str>,
) -> String {
    let has = match &token.app {
        Some(a) if token.scope != Scope::Admin => format!("{} on {a}", token.scope),
        _ => token.scope.to_string(),
    };
    let needs = match (need, app) {
        (Need::Read, Some(a)) => format!("read or deploy on {a}, or an admin token"),
        (Need::Deploy, Some(a)) => format!("deploy on {a}, or an admin token"),
        _ => "an admin token".to_string(),
    };
    format!(
        "token {} has scope {has}; {method} {path} needs {needs}",
        token.name
    )
}

/// The state [`authenticate`] keeps: the store to verify tokens in, the bad-token table and
/// the server's own log for audit lines.
#[derive(Debug, Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    bad: Mutex<BadTokens>,
    log: Option<LogSender>,
}

impl Guard {
    /// Verify tokens in `store`; audit lines go to `log` (none: not written).
    pub fn new(store: Store, log: Option<LogSender>) -> Guard {
        Guard {
            inner: Arc::new(Inner {
                store,
                bad: Mutex::new(BadTokens::default()),
                log,
            }),
        }
    }

    fn bad(&self) -> std::sync::MutexGuard<'_, BadTokens> {
        // A panic while holding the lock leaves a consistent table (every change is one
        // insert or update), so a poisoned lock is still usable.
        self.inner
            .bad
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn say(&self, kind: EventKind, text: String) {
        if let Some(log) = &self.inner.log {
            let _ = log.event(PlatformEvent::new(kind, text)).await;
        }
    }
}

/// For routes outside `/v1` that take the API token another way (git's HTTP basic auth,
/// [`crate::git`]): the same bad-token limit, verification and audit lines as [`authenticate`].
impl Guard {
    /// The token `presented` by `peer`: `401` when it is wrong, `429` while `peer` is refused
    /// for sending too many bad ones.
    pub(crate) async fn verify(
        &self,
        peer: std::net::IpAddr,
        presented: &str,
    ) -> Result<TokenInfo, ApiError> {
        if let Some(wait) = self.bad().refused_for(peer, Instant::now()) {
            return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
        }
        match self.inner.store.verify_token(presented).await {
            Ok(Some(token)) => Ok(token),
            Ok(None) => {
                if self.bad().failed(peer, Instant::now()) {
                    self.say(
                        EventKind::Error,
                        format!(
                            "audit: {LIMIT} bad tokens from {peer} within {} s: its requests get 429 until the window has passed",
                            WINDOW.as_secs()
                        ),
                    )
                    .await;
                }
                Err(ApiError::Unauthorized)
            }
            Err(e) => Err(ApiError::from(e)),
        }
    }

    /// Write an audit line for `action` on `app` by `token` from `peer`.
    pub(crate) async fn audit(
        &self,
        token: &TokenInfo,
        peer: std::net::IpAddr,
        action: &str,
        app: &str,
        status: u16,
    ) {
        let kind = if status < 400 {
            EventKind::Info
        } else {
            EventKind::Error
        };
        self.say(
            kind,
            format!(
                "audit: token={} scope={} from={peer} action={action} app={} status={status}",
                audit::word(&token.name),
                scope_label(token),
                audit::word(app)
            ),
        )
        .await;
    }
}

/// The largest request body read for an audit line (larger bodies of audited JSON routes are
/// refused, as the JSON extractor would refuse them).
const AUDIT_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The largest app list filtered for an app token.
const LIST_LIMIT: usize = 16 * 1024 * 1024;

/// The bearer token of an `Authorization` header, when there is a non-empty one.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The authentication middleware of every `/v1` route.
pub async fn authenticate(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(limit::UNKNOWN_PEER, |c| c.0.ip());
    let presented = bearer(request.headers()).map(str::to_owned);
    // Without a bearer token, the dashboard's session cookie (found in the store only while its
    // token is live); its requests that change state must carry the session's CSRF secret too.
    let (token, csrf_ok) = match presented {
        Some(presented) => match guard.verify(peer, &presented).await {
            Ok(token) => (token, true),
            Err(e) => return e.into_response(),
        },
        None => match guard.session(request.headers()).await {
            Ok(Some(s)) => {
                let ok = s.csrf_matches(request.headers());
                (s.token, ok)
            }
            Ok(None) => return ApiError::Unauthorized.into_response(),
            Err(e) => return e.into_response(),
        },
    };

    let method = request.method().clone();
    let (mut parts, body) = request.into_parts();
    let matched = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let app = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|params| {
            params
                .iter()
                .find(|(k, _)| *k == "app")
                .map(|(_, v)| v.to_owned())
        });
    let route = matched.as_deref().and_then(|p| lookup(&method, p));
    let need = route.map_or(Need::Admin, |r| r.need);
    let action = route.map_or("?", |r| r.action);
    let path = parts.uri.path().to_owned();
    let who = format!(
        "audit: token={} scope={} from={peer} action={action}{}",
        audit::word(&token.name),
        scope_label(&token),
        app.as_deref()
            .map(|a| format!(" app={}", audit::word(a)))
            .unwrap_or_default()
    );

    let changes_state = method != Method::GET && method != Method::HEAD;
    if changes_state && !csrf_ok {
        guard
            .say(EventKind::Error, format!("{who} csrf=missing status=403"))
            .await;
        return ApiError::Forbidden(format!(
            "{method} {path} from a dashboard session needs the session's CSRF token in the {} header",
            session::CSRF_HEADER
        ))
        .into_response();
    }
    if !allows(&token, need, app.as_deref()) {
        guard
            .say(EventKind::Error, format!("{who} status=403"))
            .await;
        return ApiError::Forbidden(refusal(&token, &method, &path, need, app.as_deref()))
            .into_response();
    }

    let reads_secrets = matches!(action, "config" | "releases:config");
    // The details of an audited JSON request come from its body, read here and handed on.
    let mut details = String::new();
    let body = if changes_state && action != "deploy" && action != "run" {
        match to_bytes(body, AUDIT_BODY_LIMIT).await {
            Ok(bytes) => {
                if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                    details = audit::details(action, &v);
                }
                Body::from(bytes)
            }
            Err(_) => {
                return ApiError::TooLarge(format!(
                    "the request body is over {} bytes",
                    AUDIT_BODY_LIMIT
                ))
                .into_response();
            }
        }
    } else {
        body
    };
    if let Some(rest) = path_detail(action, &path) {
        details.push_str(&rest);
    }
    // Releases the request makes record the token's name as who made them.
    let mut response = dozen_store::acting_as(
        token.name.clone(),
        next.run(Request::from_parts(parts, body)),
    )
    .await;
    if need == Need::AppList && token.scope != Scope::Admin {
        response = only_app(response, token.app.as_deref().unwrap_or_default()).await;
    }
    if changes_state || reads_secrets {
        guard
            .say(
                EventKind::Info,
                format!("{who}{details} status={}", response.status().as_u16()),
            )
            .await;
    }
    response
}

/// Details the path carries (the thing removed), for audit lines.
fn path_detail(action: &str, path: &str) -> Option<String> {
    let last = path.rsplit('/').next()?;
    match action {
        "domains:remove" => Some(format!(" hostname={}", audit::word(last))),
        "tokens:revoke" => Some(format!(" token={}", audit::word(last))),
        "addons:destroy" | "addons:detach" => Some(format!(" name={}", audit::word(last))),
        "drains:remove" => Some(format!(" drain={}", audit::word(last))),
        _ => None,
    }
}

/// The app list in `response`, reduced to `app`.
async fn only_app(response: Response, app: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    if !parts.status.is_success() {
        return Response::from_parts(parts, body);
    }
    let list = match to_bytes(body, LIST_LIMIT).await {
        Ok(bytes) => serde_json::from_slice::<Vec<Value>>(&bytes),
        Err(e) => return ApiError::Internal(format!("reading the app list: {e}")).into_response(),
    };
    let mut list = match list {
        Ok(list) => list,
        Err(e) => return ApiError::Internal(format!("the app list: {e}")).into_response(),
    };
    list.retain(|a| a["name"].as_str() == Some(app));
    parts.headers.remove(header::CONTENT_LENGTH);
    match serde_json::to_vec(&list) {
        Ok(bytes) => Response::from_parts(parts, Body::from(bytes)),
        Err(e) => ApiError::Internal(format!("the app list: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scope: Scope, app: Option<&str>) -> TokenInfo {
        TokenInfo {
            id: "tok_1".into(),
            name: "t".into(),
            scope,
            app: app.map(str::to_owned),
            created_at: String::new(),
            revoked_at: None,
        }
    }

    #[test]
    fn scopes_cover_what_they_say() {
        let admin = token(Scope::Admin, None);
        let deploy = token(Scope::Deploy, Some("shop"));
        let read = token(Scope::Read, Some("shop"));
        for need in [Need::AppList, Need::Read, Need::Deploy, Need::Admin] {
            assert!(allows(&admin, need, Some("blog")));
        }
        assert!(allows(&deploy, Need::Deploy, Some("shop")));
        assert!(allows(&deploy, Need::Read, Some("shop")));
        assert!(!allows(&deploy, Need::Deploy, Some("blog")));
        assert!(!allows(&deploy, Need::Admin, Some("shop")));
        assert!(!allows(&deploy, Need::Deploy, None));
        assert!(allows(&read, Need::Read, Some("shop")));
        assert!(!allows(&read, Need::Deploy, Some("shop")));
        assert!(!allows(&read, Need::Read, Some("blog")));
        assert!(allows(&read, Need::AppList, None));
        let m = refusal(
            &read,
            &Method::PATCH,
            "/v1/apps/shop/config",
            Need::Deploy,
            Some("shop"),
        );
        assert_eq!(
            m,
            "token t has scope read on shop; PATCH /v1/apps/shop/config needs deploy on shop, or an admin token"
        );
    }

    #[test]
    fn head_is_looked_up_as_get_and_unknown_routes_need_admin() {
        assert_eq!(
            lookup(&Method::HEAD, "/v1/apps/{app}/config").map(|r| r.need),
            Some(Need::Deploy)
        );
        assert!(lookup(&Method::PUT, "/v1/apps/{app}/config").is_none());
    }

    #[test]
    fn every_described_route_has_a_scope() {
        let doc: Value = serde_json::from_str(&crate::openapi::document()).expect("json");
        let paths = doc["paths"].as_object().expect("paths");
        let mut described = 0;
        for (path, ops) in paths {
            if !path.starts_with("/v1/") {
                continue;
            }
            for method in ops.as_object().expect("operations").keys() {
                let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
                assert!(
                    lookup(&m, path).is_some(),
                    "{method} {path} has no scope in ROUTES"
                );
                described += 1;
            }
        }
        assert_eq!(
            described,
            ROUTES.len(),
            "ROUTES lists a route the API does not describe"
        );
    }
}
