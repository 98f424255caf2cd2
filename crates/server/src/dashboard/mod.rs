//! The web dashboard: apps, releases, processes and live logs in a browser, served on the API's
//! port (same TLS, same tokens).
//!
//! Hand-written HTML, CSS and JavaScript under `assets/`, built into the binary with
//! `include_str!`: nothing is fetched at run time and nothing is built with tools from elsewhere.
//! The pages are static; their script reads the existing `/v1` JSON API with the browser's
//! session ([`crate::auth::session`]) and builds every element with `textContent`, never from
//! markup, since app names, config names and log lines are hostile input.
//!
//! Routes:
//!
//! - `GET /login`, `/`, `/apps/{app}`, `/apps/{app}/logs`, `/apps/{app}/deploy`: the pages;
//! - `GET /dashboard/assets/*`: the script and style sheet;
//! - `POST /dashboard/login` (`{"token"}`, JSON only), `POST /dashboard/logout`,
//!   `GET /dashboard/session` (the token's name and scope, and the CSRF secret the scripts send);
//! - `GET /dashboard/apps/{app}/logs`: the app's log stream as Server-Sent Events ([`logs`]),
//!   authenticated and scope-checked like `/v1` ([`crate::auth`]).
//!
//! Every answer carries a Content-Security-Policy that allows scripts and styles from the
//! server itself only (no inline script or style), and may not be framed.
//!
//! The app page lists the app's add-ons (`GET /v1/apps/{app}/addons`: names, services, plans and
//! the config vars they are attached as, never their URLs). Log drains get a section there once
//! the API has routes for them.

mod login;
mod logs;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::api::AppState;
use crate::auth::Guard;

/// The policy of every dashboard answer: everything from this server only, no inline code, no
/// plugins, no framing, forms and links back to this server only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_JS: &str = include_str!("assets/app.js");
const LOGIN_JS: &str = include_str!("assets/login.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The dashboard's routes that the `/v1` authentication layer guards (merged under it).
pub fn authed_routes() -> Router<AppState> {
    Router::new().route("/dashboard/apps/{app}/logs", get(logs::events))
}

/// The pages, assets and session routes (they authenticate by themselves).
pub fn routes(guard: Guard) -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/apps/{app}", get(index))
        .route("/apps/{app}/logs", get(index))
        .route("/apps/{app}/deploy", get(index))
        .route("/login", get(login_page))
        .route("/dashboard/assets/app.js", get(app_js))
        .route("/dashboard/assets/login.js", get(login_js))
        .route("/dashboard/assets/style.css", get(style_css))
        .route("/dashboard/login", post(login::login))
        .route("/dashboard/logout", post(login::logout))
        .route("/dashboard/session", get(login::session))
        .layer(axum::Extension(guard))
        .layer(middleware::map_response(secure_headers))
}

/// The headers of every dashboard answer.
pub async fn secure_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn login_page() -> Response {
    asset("text/html; charset=utf-8", LOGIN_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn login_js() -> Response {
    asset("text/javascript; charset=utf-8", LOGIN_JS)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `page` has an attribute like ` onclick=`.
    fn has_inline_handler(page: &str) -> bool {
        page.match_indices(" on").any(|(i, _)| {
            let rest = &page[i + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name > 0 && rest[name..].starts_with('=')
        })
    }

    #[test]
    fn the_assets_hold_no_inline_script_or_style() {
        for page in [INDEX_HTML, LOGIN_HTML] {
            assert!(!page.contains("<style"), "{page}");
            assert!(!page.contains(" style="), "{page}");
            assert!(!has_inline_handler(page), "no inline handlers: {page}");
            for script in page.split("<script").skip(1) {
                assert!(
                    script.trim_start().starts_with("src=\"/dashboard/assets/"),
                    "{script}"
                );
            }
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        // Data reaches the page as text: the script never parses markup.
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!APP_JS.contains(forbidden), "app.js uses {forbidden}");
            assert!(!LOGIN_JS.contains(forbidden), "login.js uses {forbidden}");
        }
    }
}
