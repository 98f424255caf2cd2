//! Dashboard sessions: what a browser presents instead of a bearer token.
//!
//! A login ([`Guard::login`]) verifies a token once and opens a session in the store
//! ([`dozen_store::Store::open_session`]): a random 256-bit id goes to the browser in an
//! `HttpOnly; SameSite=Strict` cookie ([`COOKIE`]); the store keeps the id's blake3 hash, the
//! token's id (never the token) and an expiry. Sessions outlive a server restart (a live-log page
//! reconnects without a new login); a session is found only while its token is live, so revoking
//! a token ends its sessions at once; a logout deletes the session.
//!
//! A request authenticated by the cookie that changes state (any method but `GET` and `HEAD`)
//! must also carry the session's CSRF secret in [`CSRF_HEADER`]; the dashboard's scripts read it
//! from `GET /dashboard/session`, which another site's page cannot read. The secret is derived
//! from the session id with a keyed hash ([`csrf_of`]), so it is stored nowhere and only the
//! holder of the cookie can learn it.
//!
//! Bounds: at most [`dozen_store::MAX_SESSIONS`] sessions; a login past that first drops the
//! expired ones, then the ones closest to expiring. A session lasts [`SESSION_TTL`] from its
//! login.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header;
use dozen_logs::EventKind;
use dozen_store::TokenInfo;

use crate::error::ApiError;

/// The session cookie's name.
pub const COOKIE: &str = "dozen_session";
/// The header that carries the session's CSRF secret on state-changing requests.
pub const CSRF_HEADER: &str = "x-dozen-csrf";
/// How long a session lasts after its login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The context of the keyed hash that makes a session's CSRF secret from its id.
const CSRF_CONTEXT: &str = "dozen 2026 dashboard session csrf secret";

/// The dashboard's own authenticated routes, checked like [`super::ROUTES`].
pub const DASHBOARD_ROUTES: &[super::Route] = &[super::route(
    "GET",
    "/dashboard/apps/{app}/logs",
    super::Need::Read,
    "logs",
)];

/// One open session.
#[derive(Clone)]
pub struct Session {
    /// The live token it was opened with.
    pub token: TokenInfo,
    /// The secret state-changing requests must echo in [`CSRF_HEADER`].
    pub csrf: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CSRF secret is not printed.
        f.debug_struct("Session")
            .field("token", &self.token.name)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `headers` carry this session's CSRF secret.
    pub fn csrf_matches(&self, headers: &HeaderMap) -> bool {
        let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        // Compared as hashes: equal-length digests, compared in constant time by blake3.
        blake3::hash(sent.as_bytes()) == blake3::hash(self.csrf.as_bytes())
    }
}

/// The CSRF secret of the session with id `id`: a keyed hash of the id (64 hex digits), which
/// says nothing about the id.
pub fn csrf_of(id: &str) -> String {
    let key = blake3::derive_key(CSRF_CONTEXT, id.as_bytes());
    blake3::Hash::from(key).to_hex().to_string()
}

/// The session cookie's value in `headers`, if there is one.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that stores session `id` (`secure`: only over HTTPS).
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

impl super::Guard {
    /// Verify `presented` for a dashboard login from `peer`, as a bearer token is verified:
    /// refused with `429` while the address sent too many bad tokens, `401` (and counted) when
    /// wrong. A good token opens a session: its id (the cookie's value) and the session.
    pub async fn login(
        &self,
        peer: std::net::IpAddr,
        presented: &str,
    ) -> Result<(String, Session), ApiError> {
        if let Some(wait) = self.bad().refused_for(peer, Instant::now()) {
            return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
        }
        let token = match self.inner.store.verify_token(presented).await? {
            Some(token) => token,
            None => {
                if self.bad().failed(peer, Instant::now()) {
                    self.say(
                        EventKind::Error,
                        format!(
                            "audit: {} bad tokens from {peer} within {} s: its requests get 429 until the window has passed",
                            super::LIMIT,
                            super::WINDOW.as_secs()
                        ),
                    )
                    .await;
                }
                return Err(ApiError::Unauthorized);
            }
        };
        let (id, record) = self
            .inner
            .store
            .open_session(&token.id, SESSION_TTL)
            .await?;
        self.say(
            EventKind::Info,
            format!(
                "audit: token={} from={peer} action=dashboard:login status=200",
                super::audit::word(&token.name)
            ),
        )
        .await;
        let csrf = csrf_of(&id);
        Ok((
            id,
            Session {
                token: record.token,
                csrf,
            },
        ))
    }

    /// The live session of the cookie in `headers`, if there is one.
    pub async fn session(&self, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
        let Some(id) = cookie_value(headers) else {
            return Ok(None);
        };
        Ok(self.inner.store.session(id).await?.map(|record| Session {
            token: record.token,
            csrf: csrf_of(id),
        }))
    }

    /// The session of the cookie in `headers`: `401` without a live session (none, expired,
    /// logged out, or its token was revoked since the login).
    pub async fn session_token(&self, headers: &HeaderMap) -> Result<Session, ApiError> {
        self.session(headers).await?.ok_or(ApiError::Unauthorized)
    }

    /// End the session of the cookie in `headers` (a logout).
    pub async fn close_session(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(id) = cookie_value(headers) {
            self.inner.store.close_session(id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_csrf_secret_comes_from_the_session_id_and_must_be_sent_as_it_is() {
        let id = "a".repeat(64);
        let s = Session {
            token: TokenInfo {
                id: "tok_1".into(),
                name: "t".into(),
                scope: dozen_store::Scope::Admin,
                app: None,
                created_at: String::new(),
                revoked_at: None,
            },
            csrf: csrf_of(&id),
        };
        assert_eq!(s.csrf.len(), 64);
        assert!(!s.csrf.contains(&id));
        assert_eq!(s.csrf, csrf_of(&id), "the same id, the same secret");
        assert_ne!(s.csrf, csrf_of(&"b".repeat(64)));
        let mut h = HeaderMap::new();
        assert!(!s.csrf_matches(&h));
        h.insert(CSRF_HEADER, HeaderValue::from_static("wrong"));
        assert!(!s.csrf_matches(&h));
        h.insert(CSRF_HEADER, HeaderValue::from_str(&s.csrf).unwrap());
        assert!(s.csrf_matches(&h));
        assert!(!format!("{s:?}").contains(&s.csrf));
    }

    #[test]
    fn the_cookie_is_read_among_others_and_set_http_only_and_strict() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; dozen_session=abc ; b=2"),
        );
        assert_eq!(cookie_value(&h), Some("abc"));
        let c = set_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie("abc", false).contains("Secure"));
    }
}
