//! `/v1/apps/{app}/builds`: the builds of an app, and a deploy of an uploaded source archive
//! (`dozen deploy`), which may say which git commit the source is.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use dozen_api as api;
use serde::Deserialize;
use tokio_stream::StreamExt;

use super::{ApiResult, AppState, Json, Path, Query, stream_until_done, views};
use crate::deploy::{self, Upload};
use crate::error::ApiError;
use crate::loghub::Filter;

pub(super) async fn list_builds(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<api::Build>>> {
    let builds = s.platform.builds(&app).await?;
    Ok(Json(builds.into_iter().map(views::build).collect()))
}

/// What the uploader says of the source.
#[derive(Debug, Deserialize, Default)]
pub(super) struct BuildQuery {
    /// The git commit (HEAD of the checkout) the source was packed from.
    commit: Option<String>,
    /// True: the checkout had changes not committed, so the source is not `commit`'s tree.
    dirty: Option<bool>,
}

impl BuildQuery {
    /// The upload as the query describes it; a bad query is refused before the body is read.
    fn describe(&self) -> Result<impl FnOnce(Upload) -> Upload, ApiError> {
        let commit = match &self.commit {
            Some(c) if crate::git::hook::is_object_id(c) => Some(c.clone()),
            Some(_) => {
                return Err(ApiError::Invalid(
                    "commit: not a git commit id (40 or 64 lowercase hex digits)".into(),
                ));
            }
            None if self.dirty.is_some() => {
                return Err(ApiError::Invalid(
                    "dirty: it says whether the checkout at `commit` had changes; give commit too"
                        .into(),
                ));
            }
            None => None,
        };
        let dirty = self.dirty.unwrap_or(false);
        Ok(move |upload: Upload| match commit {
            Some(c) if dirty => upload.of_dirty_checkout(c),
            c => upload.of_commit(c),
        })
    }
}

/// Upload a source archive (`tar.zst`) and stream the build and release as NDJSON.
pub(super) async fn create_build(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Query(q): Query<BuildQuery>,
    body: Body,
) -> ApiResult<Response> {
    let describe = q.describe()?;
    s.platform.app(&app).await?;
    s.platform.check_not_shutting_down()?;
    // The body limit of this route (DefaultBodyLimit) shows as an error saying "length limit".
    let chunks = body.into_data_stream().map(|chunk| {
        chunk.map_err(|e| {
            let kind = if e.to_string().contains("length limit") {
                std::io::ErrorKind::FileTooLarge
            } else {
                std::io::ErrorKind::Other
            };
            std::io::Error::new(kind, e)
        })
    });
    let upload = describe(deploy::receive_upload(&s.platform, &app, chunks).await?);
    let live = s.runtime.log(&app).subscribe();
    let done_rx = deploy::start(&s.platform, &app, upload);
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
            Ok(release) => api::DeployOutcome::Succeeded {
                release: views::release(&release),
            },
            Err(e) => api::DeployOutcome::Failed { error: e.report() },
        },
    ))
}
