//! `GET` and `PATCH /v1/apps/{app}/formation/sizes`: the size of each process type
//! (`dozen ps:resize web=2x`), through the platform service.

use std::collections::BTreeMap;

use axum::extract::State;
use dozen_api as api;

use super::extract::{Json, Path};
use super::{ApiResult, AppState};

/// The sizes of the app's process types, and how this host enforces them.
pub(super) async fn get_sizes(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<api::Sizes>> {
    Ok(Json(s.platform.sizes(&app).await?))
}

/// Set sizes: `{"web": "2x", "worker": "tiny"}`.
pub(super) async fn patch_sizes(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<BTreeMap<String, String>>,
) -> ApiResult<Json<api::Sizes>> {
    Ok(Json(s.platform.resize(&app, body).await?))
}
