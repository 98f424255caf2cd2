//! `GET` and `PATCH /v1/apps/{app}/formation/sizes`: the size of each process type
//! (`dozen ps:resize web=2x`).
//!
//! A resize is stored, then rolled out like a restart of the types it names: a new set of web
//! processes switched to when healthy (web), or the type's processes stopped and started again
//! (other types), each with the new size's limits.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use dozen_core::Size;
use dozen_logs::EventKind;
use serde_json::{Value, json};

use super::{ApiResult, AppState, effective_formation};
use crate::error::ApiError;
use crate::sizes::{enforcement_json, size_json};

/// The sizes of the app's process types, and how this host enforces them.
pub(super) async fn get_sizes(
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    s.store.app(&app).await?;
    Ok(Json(sizes_body(&s, &app).await?))
}

/// Set sizes: `{"web": "2x", "worker": "tiny"}`.
pub(super) async fn patch_sizes(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<BTreeMap<String, String>>,
) -> ApiResult<Json<Value>> {
    if body.is_empty() {
        return Err(ApiError::Invalid(
            "nothing to resize: give TYPE=SIZE".into(),
        ));
    }
    let mut changes: Vec<(String, &'static Size)> = Vec::new();
    for (t, name) in &body {
        let size = Size::parse(name).map_err(|e| ApiError::Invalid(format!("{t}={name}: {e}")))?;
        changes.push((t.clone(), size));
    }
    let _op = s.runtime.lock_app(&app).await;
    let release = s.store.current_release(&app).await?;
    if let Some(release) = &release {
        for (t, _) in &changes {
            if !release.process_types.contains_key(t) || t == "release" {
                let known: Vec<&str> = release
                    .process_types
                    .keys()
                    .map(String::as_str)
                    .filter(|t| *t != "release")
                    .collect();
                return Err(ApiError::Invalid(format!(
                    "no process type `{t}` in the live release (v{}); its types: {}",
                    release.version,
                    known.join(", ")
                )));
            }
        }
    }
    let stored: Vec<(String, String)> = changes
        .iter()
        .map(|(t, size)| (t.clone(), size.name.to_string()))
        .collect();
    let all = s.store.resize(&app, &stored).await?;
    s.runtime.sizes.set(&app, &all);
    let summary: Vec<String> = changes
        .iter()
        .map(|(t, size)| format!("{t}={} ({})", size.name, size.describe()))
        .collect();
    let support = s.runtime.supervisor().limit_support();
    let mut text = format!("resized {}", summary.join(", "));
    if let Some(w) = support.warning() {
        text.push_str(&format!("; warning: {w}"));
    }
    s.runtime.event(&app, EventKind::Info, text).await;
    if let Some(release) = &release {
        let formation = effective_formation(&s, &app).await?;
        if changes.iter().any(|(t, _)| t == "web") {
            // A new set of every process, switched to when the web processes are healthy.
            s.runtime.restart(release, &formation, None).await?;
        } else {
            for (t, _) in &changes {
                s.runtime.restart(release, &formation, Some(t)).await?;
            }
        }
    }
    Ok(Json(sizes_body(&s, &app).await?))
}

async fn sizes_body(s: &AppState, app: &str) -> ApiResult<Value> {
    let mut types: BTreeMap<String, Value> = BTreeMap::new();
    match s.store.current_release(app).await? {
        Some(release) => {
            for (t, size) in s.runtime.sizes_of(&release) {
                types.insert(t, size_json(size));
            }
        }
        None => {
            for (t, name) in s.store.sizes(app).await? {
                if let Ok(size) = Size::parse(&name) {
                    types.insert(t, size_json(size));
                }
            }
        }
    }
    let mut body = enforcement_json(s.runtime.supervisor().limit_support());
    body["sizes"] = json!(types);
    body["available"] = json!(dozen_core::SIZES.iter().map(size_json).collect::<Vec<_>>());
    Ok(body)
}
