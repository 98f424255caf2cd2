//! The add-on routes: services, add-ons of an app, attachments, rotation, destroy, backups and
//! their schedules.
//! Thin: each parses, calls the platform service ([`crate::platform`]) and shapes the answer.
//! No answer carries an add-on's URL (it is a config var, shown by `GET /config` alone).

use axum::extract::State;
use axum::http::StatusCode;
use dozen_api as api;

use super::{ApiResult, AppState, Json, Path, views};
use crate::platform::backup_id;

fn addon(a: dozen_store::Addon) -> api::Addon {
    api::Addon {
        name: a.name,
        service: a.service,
        plan: a.plan,
        app: a.app,
        created_at: a.created_at,
        attachments: a
            .attachments
            .into_iter()
            .map(|t| api::AddonAttachment {
                app: t.app,
                var: t.var,
                created_at: t.created_at,
            })
            .collect(),
    }
}

fn addon_release(a: dozen_store::Addon, r: &dozen_store::Release) -> api::AddonRelease {
    api::AddonRelease {
        addon: addon(a),
        release: views::release(r),
    }
}

fn schedule(s: dozen_store::BackupSchedule) -> api::BackupSchedule {
    api::BackupSchedule {
        addon: s.addon,
        app: s.app,
        at: s.at,
        keep: s.keep,
        next_run: s.next_run,
    }
}

fn backup(b: dozen_store::AddonBackup) -> api::AddonBackup {
    api::AddonBackup {
        id: backup_id(b.number),
        addon: b.addon,
        size: b.size,
        created_at: b.created_at,
        location: b.location,
    }
}

pub(super) async fn services(State(s): State<AppState>) -> Json<Vec<api::AddonService>> {
    Json(s.platform.addon_services())
}

pub(super) async fn list(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<api::Addon>>> {
    let list = s.platform.addons(&app).await?;
    Ok(Json(list.into_iter().map(addon).collect()))
}

pub(super) async fn create(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<api::CreateAddon>,
) -> ApiResult<(StatusCode, Json<api::AddonRelease>)> {
    let (a, release) = s
        .platform
        .create_addon(&app, &body.service, body.attach_as)
        .await?;
    Ok((StatusCode::CREATED, Json(addon_release(a, &release))))
}

pub(super) async fn attach(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<api::AttachAddon>,
) -> ApiResult<(StatusCode, Json<api::AddonRelease>)> {
    let (a, release) = s
        .platform
        .attach_addon(&app, &body.addon, body.attach_as)
        .await?;
    Ok((StatusCode::CREATED, Json(addon_release(a, &release))))
}

pub(super) async fn detach(
    State(s): State<AppState>,
    Path((app, attachment)): Path<(String, String)>,
) -> ApiResult<Json<api::AddonRelease>> {
    let (a, release) = s.platform.detach_addon(&app, &attachment).await?;
    Ok(Json(addon_release(a, &release)))
}

pub(super) async fn rotate(
    State(s): State<AppState>,
    Path((app, name)): Path<(String, String)>,
) -> ApiResult<Json<api::RotatedAddon>> {
    let (a, releases) = s.platform.rotate_addon(&app, &name).await?;
    Ok(Json(api::RotatedAddon {
        addon: addon(a),
        releases: releases.iter().map(views::release).collect(),
    }))
}

pub(super) async fn destroy(
    State(s): State<AppState>,
    Path((app, name)): Path<(String, String)>,
) -> ApiResult<Json<api::Destroyed>> {
    s.platform.destroy_addon(&app, &name).await?;
    Ok(Json(api::Destroyed { destroyed: name }))
}

pub(super) async fn backups(
    State(s): State<AppState>,
    Path((app, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<api::AddonBackup>>> {
    let list = s.platform.backups(&app, &name).await?;
    Ok(Json(list.into_iter().map(backup).collect()))
}

pub(super) async fn capture(
    State(s): State<AppState>,
    Path((app, name)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<api::AddonBackup>)> {
    let b = s.platform.capture_backup(&app, &name).await?;
    Ok((StatusCode::CREATED, Json(backup(b))))
}

pub(super) async fn restore(
    State(s): State<AppState>,
    Path((app, name, id)): Path<(String, String, String)>,
    Json(body): Json<api::RestoreBackup>,
) -> ApiResult<Json<api::AddonBackup>> {
    let into = body.into.as_deref();
    Ok(Json(backup(
        s.platform.restore_backup(&app, &name, &id, into).await?,
    )))
}

pub(super) async fn schedules(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Vec<api::BackupSchedule>>> {
    let list = s.platform.backup_schedules(&app).await?;
    Ok(Json(list.into_iter().map(schedule).collect()))
}

pub(super) async fn set_schedule(
    State(s): State<AppState>,
    Path((app, name)): Path<(String, String)>,
    Json(body): Json<api::ScheduleBackups>,
) -> ApiResult<Json<api::BackupSchedule>> {
    let set = s
        .platform
        .schedule_backups(&app, &name, &body.at, body.keep)
        .await?;
    Ok(Json(schedule(set)))
}

pub(super) async fn unschedule(
    State(s): State<AppState>,
    Path((app, name)): Path<(String, String)>,
) -> ApiResult<Json<api::BackupSchedule>> {
    Ok(Json(schedule(
        s.platform.unschedule_backups(&app, &name).await?,
    )))
}
