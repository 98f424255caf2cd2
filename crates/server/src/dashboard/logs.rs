//! An app's log stream as Server-Sent Events, for the dashboard's log and deploy pages.
//!
//! Each event's data is one log entry's JSON, as `GET /v1/apps/{app}/logs` sends it. The stream
//! starts with the recent entries that pass the filter, then follows live ones until the client
//! goes or the server stops; a browser's `EventSource` then reconnects by itself (after
//! [`RETRY_MS`]) and starts again from the recent entries, so the page replaces what it shows.
//!
//! A stream lasts only as long as what opened it: every [`RECHECK`] the session (or bearer
//! token) is looked up again, and the stream ends once the session was logged out, expired or
//! its token revoked; the browser's reconnection is then refused with `401`.
//!
//! Bounds: a client that falls more than [`crate::loghub::TAIL_BACKLOG`] entries behind is sent
//! a note of how many it missed instead; at most [`MAX_RECENT`] recent entries are sent.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozen_store::Store;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::AppState;
use crate::api::extract::{Path, Query};
use crate::auth::session::cookie_value;
use crate::error::ApiError;
use crate::loghub::{Entry, Filter, Followed, skipped_note};

/// How long a browser waits before it reconnects.
pub const RETRY_MS: u64 = 1000;
/// The most recent entries sent when a stream starts.
pub const MAX_RECENT: usize = 1500;
/// A comment is sent this often when nothing else is, so a dead connection is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How often a stream checks that its session or token still holds.
pub const RECHECK: Duration = Duration::from_secs(5);

/// What a stream was opened with, to check again while it runs.
enum Opener {
    /// A dashboard session's id (the cookie's value).
    Session(String),
    /// A bearer token.
    Token(String),
}

impl Opener {
    fn of(headers: &HeaderMap) -> Option<Opener> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match bearer {
            Some(t) => Some(Opener::Token(t.to_owned())),
            None => cookie_value(headers).map(|id| Opener::Session(id.to_owned())),
        }
    }

    /// Whether it still holds (a store that does not answer is given the benefit of the doubt:
    /// the next check asks again).
    async fn holds(&self, store: &Store) -> bool {
        match self {
            Opener::Session(id) => store.session(id).await.map_or(true, |s| s.is_some()),
            Opener::Token(t) => store.verify_token(t).await.map_or(true, |t| t.is_some()),
        }
    }
}

/// The query of the stream.
#[derive(Debug, Deserialize, Default)]
pub struct EventsQuery {
    /// Only this process (`web.1`) or type (`web`).
    ps: Option<String>,
    /// `app` (process output), `dozen` (platform events) or `deploy` (builds, the release
    /// phase and platform events: what a deploy shows).
    source: Option<String>,
    /// How many recent entries to start with (at most [`MAX_RECENT`]; 200 by default).
    lines: Option<usize>,
}

/// Which entries a stream sends.
struct Which {
    filter: Filter,
    deploy_only: bool,
}

impl Which {
    fn accepts(&self, e: &Entry) -> bool {
        if self.deploy_only {
            let name = e.proc_name.as_ref();
            let deploy = name == "dozen"
                || name == "build"
                || name == "release"
                || name.starts_with("release.");
            if !deploy {
                return false;
            }
        }
        self.filter.accepts(e)
    }
}

fn event(json: &str) -> Bytes {
    // An entry's JSON is one line; a stray line break would end the event early, so the data
    // is split on line breaks as the format asks.
    let mut out = String::with_capacity(json.len() + 8);
    for line in json.split(['\n', '\r']) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// `GET /dashboard/apps/{app}/logs`.
pub async fn events(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The authentication layer let the request in, so one of the two is there.
    let opener = Opener::of(&headers).ok_or(ApiError::Unauthorized)?;
    let store = s.store.clone();
    s.platform.app(&app).await?;
    let deploy_only = q.source.as_deref() == Some("deploy");
    let source = match q.source.as_deref() {
        None | Some("" | "deploy") => None,
        Some("app" | "dozen") => q.source.clone(),
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "source `{other}`: use app, dozen or deploy"
            )));
        }
    };
    let which = Which {
        filter: Filter {
            ps: q.ps.filter(|p| !p.is_empty()),
            source,
        },
        deploy_only,
    };
    let log = s.runtime.log(&app);
    // The ring is filtered on the way out: ask for all of it, keep the last `lines` that pass.
    let wanted = q.lines.unwrap_or(200).min(MAX_RECENT);
    let (recent, mut live) = log.follow(usize::MAX, &which.filter);
    let mut recent: Vec<Entry> = recent.into_iter().filter(|e| which.accepts(e)).collect();
    let skip = recent.len().saturating_sub(wanted);
    recent.drain(..skip);
    let mut down = s.shutting_down.clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        if tx
            .send(Ok(Bytes::from(format!("retry: {RETRY_MS}\n\n"))))
            .await
            .is_err()
        {
            return;
        }
        for e in recent {
            if tx.send(Ok(event(e.json()))).await.is_err() {
                return;
            }
        }
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        loop {
            let out = tokio::select! {
                r = down.wait_for(|d| *d) => {
                    // Stopping (or the flag is gone): end the stream; the browser reconnects.
                    let _ = r;
                    return;
                }
                _ = keepalive.tick() => Some(Bytes::from_static(b": keepalive\n\n")),
                _ = recheck.tick() => None,
                entry = live.recv() => match entry {
                    Followed::Entry(e) if which.accepts(&e) => Some(event(e.json())),
                    Followed::Entry(_) => continue,
                    Followed::Skipped { lines, behind } => {
                        let note = serde_json::json!({
                            "proc": "dozen",
                            "stream": "event",
                            "line": skipped_note(lines, behind, "page"),
                        });
                        Some(event(&note.to_string()))
                    }
                    Followed::Closed => return,
                },
            };
            let Some(out) = out else {
                if opener.holds(&store).await {
                    continue;
                }
                // Logged out, expired or revoked: end the stream; the reconnection gets 401.
                return;
            };
            if tx.send(Ok(out)).await.is_err() {
                return;
            }
        }
    });
    let mut response = Body::from_stream(ReceiverStream::new(rx)).into_response();
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_data_line_per_line_of_its_text() {
        assert_eq!(&event("{\"a\":1}")[..], b"data: {\"a\":1}\n\n");
        assert_eq!(&event("x\ny")[..], b"data: x\ndata: y\n\n");
    }
}
