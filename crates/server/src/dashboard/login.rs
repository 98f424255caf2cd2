//! Logging in and out of the dashboard, and what a page learns about its session.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::api::AppState;
use crate::api::extract::Json;
use crate::auth::Guard;
use crate::auth::session::{Session, clear_cookie, set_cookie};
use crate::error::ApiError;

/// `POST /dashboard/login`.
#[derive(Deserialize)]
pub struct LoginRequest {
    token: String,
}

/// What a page knows of its session: the token's name and scope, and the CSRF secret its
/// state-changing requests send.
#[derive(Serialize)]
pub struct SessionInfo {
    name: String,
    scope: String,
    app: Option<String>,
    csrf: String,
}

fn info(session: Session) -> SessionInfo {
    SessionInfo {
        name: session.token.name,
        scope: session.token.scope.to_string(),
        app: session.token.app,
        csrf: session.csrf,
    }
}

fn peer(ext: &Extensions) -> std::net::IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip())
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Verify a token and open a session. The body must be JSON (`{"token": "..."}`), which a form
/// on another site cannot send: no one else can log a browser in with their token.
pub async fn login(
    State(s): State<AppState>,
    Extension(guard): Extension<Guard>,
    ext: Extensions,
    Json(body): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let presented = body.token.trim();
    if presented.is_empty() {
        return Err(ApiError::Invalid("token: paste an API token".into()));
    }
    let (id, session) = guard.login(peer(&ext), presented).await?;
    let secure = s.config.api_tls.is_some();
    Ok(with_cookie(
        Json(info(session)).into_response(),
        &set_cookie(&id, secure),
    ))
}

/// End the session (it needs its CSRF secret, as every state change does).
pub async fn logout(
    State(s): State<AppState>,
    Extension(guard): Extension<Guard>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = guard.session_token(&headers).await?;
    if !session.csrf_matches(&headers) {
        return Err(ApiError::Forbidden(
            "logging out needs the session's CSRF token".into(),
        ));
    }
    guard.close_session(&headers).await?;
    let secure = s.config.api_tls.is_some();
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &clear_cookie(secure),
    ))
}

/// The session of this browser: `401` without one (the page then shows the login).
pub async fn session(
    Extension(guard): Extension<Guard>,
    headers: HeaderMap,
) -> Result<Json<SessionInfo>, ApiError> {
    Ok(Json(info(guard.session_token(&headers).await?)))
}
