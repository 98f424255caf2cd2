//! The drain routes: `GET` and `POST /v1/apps/{app}/drains`, `DELETE
//! /v1/apps/{app}/drains/{drain}`. Answers show a drain's URL with its password hidden.

use axum::extract::State;
use axum::http::StatusCode;
use dozen_api as api;
use dozen_logs::drains::DrainState;

use super::extract::{Json, Path};
use super::{ApiResult, AppState};
use crate::platform::DrainInfo;

fn drain(info: DrainInfo) -> api::Drain {
    let url = info.shown_url();
    let (state, error, delivered, queued, dropped) = match info.stats {
        Some(s) => {
            let (state, error) = match s.state {
                DrainState::Starting => ("starting", None),
                DrainState::Up => ("up", None),
                DrainState::Down(why) => ("down", Some(why)),
            };
            (state.to_string(), error, s.delivered, s.queued, s.dropped)
        }
        None => ("stopped".to_string(), None, 0, 0, 0),
    };
    api::Drain {
        id: info.record.id,
        url,
        state,
        error,
        delivered,
        queued,
        dropped,
        created_at: info.record.created_at,
    }
}

/// The app's drains, oldest first.
pub(super) async fn list(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<api::Drain>>> {
    let drains = s.platform.drains(&app).await?;
    Ok(Json(drains.into_iter().map(drain).collect()))
}

/// Add a drain: `{"url": "syslog+tls://logs.example.com:6514"}`.
pub(super) async fn create(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<api::CreateDrain>,
) -> ApiResult<(StatusCode, Json<api::Drain>)> {
    let info = s.platform.add_drain(&app, &body.url).await?;
    Ok((StatusCode::CREATED, Json(drain(info))))
}

/// Remove a drain and what is queued for it.
pub(super) async fn remove(
    State(s): State<AppState>,
    Path((app, id)): Path<(String, String)>,
) -> ApiResult<Json<api::Drain>> {
    let info = s.platform.remove_drain(&app, &id).await?;
    Ok(Json(drain(info)))
}
