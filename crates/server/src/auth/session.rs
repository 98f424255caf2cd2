//! Dashboard sessions: what a browser presents instead of a bearer token.
//!
//! A login ([`Guard::login`]) verifies a token once and opens a session on the server: a random
//! 256-bit id goes to the browser in an `HttpOnly; SameSite=Strict` cookie ([`COOKIE`]), and the
//! server keeps, under the id's blake3 hash, the token (verified again on every request, so a
//! revoked token ends its sessions at once), a CSRF secret and an expiry. The token itself never
//! travels in the cookie.
//!
//! A request authenticated by the cookie that changes state (any method but `GET` and `HEAD`)
//! must also carry the session's CSRF secret in [`CSRF_HEADER`]; the dashboard's scripts read it
//! from `GET /dashboard/session`, which another site's page cannot read.
//!
//! Bounds: at most [`MAX_SESSIONS`] sessions; opening one more first drops the expired ones,
//! then the one closest to expiring. A session lasts [`SESSION_TTL`] from its login. Sessions
//! live in memory: a restarted server asks its browsers to log in again.

use std::collections::HashMap;
use std::sync::Mutex;
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
/// The most sessions kept at once.
pub const MAX_SESSIONS: usize = 256;
/// How long a session lasts after its login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

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
    /// The token it was opened with (verified again on every request).
    pub(crate) token: String,
    /// The secret state-changing requests must echo in [`CSRF_HEADER`].
    pub csrf: String,
    expires: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the token nor the CSRF secret is printed.
        f.debug_struct("Session")
            .field("expires", &self.expires)
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

/// The open sessions, bounded ([`MAX_SESSIONS`]).
#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("no random numbers from the operating system: {0}")]
pub struct NoRandom(String);

fn random_hex() -> Result<String, NoRandom> {
    use std::fmt::Write as _;
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| NoRandom(e.to_string()))?;
    let mut s = String::with_capacity(64);
    for b in buf {
        let _ = write!(s, "{b:02x}");
    }
    Ok(s)
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // Every change is one insert or remove: a poisoned map is still consistent.
        self.by_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Open a session for `token`: its id (the cookie's value) and the session.
    pub fn open(&self, token: String) -> Result<(String, Session), NoRandom> {
        self.open_at(token, Instant::now())
    }

    fn open_at(&self, token: String, now: Instant) -> Result<(String, Session), NoRandom> {
        let id = random_hex()?;
        let session = Session {
            token,
            csrf: random_hex()?,
            expires: now + SESSION_TTL,
        };
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= MAX_SESSIONS {
            let soonest = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k);
            if let Some(k) = soonest {
                map.remove(&k);
            }
        }
        map.insert(*blake3::hash(id.as_bytes()).as_bytes(), session.clone());
        Ok((id, session))
    }

    /// The live session with cookie value `id`.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let key = *blake3::hash(id.as_bytes()).as_bytes();
        let mut map = self.map();
        match map.get(&key) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// End the session with cookie value `id` (a logout).
    pub fn close(&self, id: &str) {
        self.map().remove(blake3::hash(id.as_bytes()).as_bytes());
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
    /// The open sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Verify `presented` for a dashboard login from `peer`, as a bearer token is verified:
    /// refused with `429` while the address sent too many bad tokens, `401` (and counted) when
    /// wrong. A good token opens a session.
    pub async fn login(
        &self,
        peer: std::net::IpAddr,
        presented: &str,
    ) -> Result<(TokenInfo, String, Session), ApiError> {
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
        let (id, session) = self
            .inner
            .sessions
            .open(presented.to_owned())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        self.say(
            EventKind::Info,
            format!(
                "audit: token={} from={peer} action=dashboard:login status=200",
                super::audit::word(&token.name)
            ),
        )
        .await;
        Ok((token, id, session))
    }

    /// The token and session of the session cookie in `headers`: `401` without a live session,
    /// or when its token was revoked since the login.
    pub async fn session_token(
        &self,
        headers: &HeaderMap,
    ) -> Result<(TokenInfo, Session), ApiError> {
        let session = cookie_value(headers)
            .and_then(|id| self.inner.sessions.get(id))
            .ok_or(ApiError::Unauthorized)?;
        match self.inner.store.verify_token(&session.token).await? {
            Some(token) => Ok((token, session)),
            None => Err(ApiError::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_session_is_found_by_its_id_until_it_expires_or_is_closed() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let (id, s) = sessions.open_at("dzn_secret".into(), now).unwrap();
        assert_ne!(id, "dzn_secret");
        assert!(!id.contains("dzn_secret") && !s.csrf.contains("dzn_secret"));
        assert_eq!(sessions.get_at(&id, now).unwrap().token, "dzn_secret");
        assert!(sessions.get_at("not-an-id", now).is_none());
        assert!(sessions.get_at(&id, now + SESSION_TTL).is_none());
        assert!(
            sessions.is_empty(),
            "an expired session is dropped when seen"
        );
        let (id, _) = sessions.open_at("t".into(), now).unwrap();
        sessions.close(&id);
        assert!(sessions.get_at(&id, now).is_none());
    }

    #[test]
    fn at_the_bound_the_session_closest_to_expiring_goes() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let (first, _) = sessions.open_at("t".into(), start).unwrap();
        for n in 1..MAX_SESSIONS {
            sessions
                .open_at("t".into(), start + Duration::from_secs(n as u64))
                .unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        let later = start + Duration::from_secs(MAX_SESSIONS as u64);
        let (newest, _) = sessions.open_at("t".into(), later).unwrap();
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get_at(&first, later).is_none());
        assert!(sessions.get_at(&newest, later).is_some());
    }

    #[test]
    fn the_csrf_secret_must_be_sent_as_it_is() {
        let sessions = Sessions::default();
        let (_, s) = sessions.open("t".into()).unwrap();
        let mut h = HeaderMap::new();
        assert!(!s.csrf_matches(&h));
        h.insert(CSRF_HEADER, HeaderValue::from_static("wrong"));
        assert!(!s.csrf_matches(&h));
        h.insert(CSRF_HEADER, HeaderValue::from_str(&s.csrf).unwrap());
        assert!(s.csrf_matches(&h));
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
