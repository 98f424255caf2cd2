//! Formation: how many processes of each type run, scaling, restarts.

use std::collections::BTreeMap;

use dozen_logs::EventKind;

use super::{Platform, PlatformError, PlatformResult};
use crate::runtime::PsRow;

impl Platform {
    /// The formation with defaults filled in for every process type of the live release (types
    /// the store knows but the release no longer has are shown too).
    pub async fn formation(&self, app: &str) -> PlatformResult<BTreeMap<String, i64>> {
        self.store.app(app).await?;
        self.effective_formation(app).await
    }

    pub(super) async fn effective_formation(
        &self,
        app: &str,
    ) -> PlatformResult<BTreeMap<String, i64>> {
        let mut formation = self.store.formation(app).await?;
        if let Some(release) = self.store.current_release(app).await? {
            formation.extend(crate::runtime::effective_formation(&formation, &release));
        }
        Ok(formation)
    }

    /// Scale process types (`TYPE -> N`) and converge the live release to the new formation.
    /// Every type must be one of the live release's (the `release` phase is not scaled).
    pub async fn scale(
        &self,
        app: &str,
        changes: BTreeMap<String, i64>,
    ) -> PlatformResult<BTreeMap<String, i64>> {
        if changes.is_empty() {
            return Err(PlatformError::Invalid(
                "nothing to scale: give TYPE=N".into(),
            ));
        }
        let name = app.to_string();
        self.locked(app, move |p| async move {
            let app = name.as_str();
            let live = p.store.current_release(app).await?;
            if let Some(release) = &live {
                check_types(release, changes.keys())?;
            }
            let changes: Vec<(String, i64)> = changes.into_iter().collect();
            p.store.scale(app, &changes).await?;
            let formation = p.effective_formation(app).await?;
            if let Some(release) = p.store.current_release(app).await? {
                let summary: Vec<String> =
                    changes.iter().map(|(t, n)| format!("{t}={n}")).collect();
                p.runtime
                    .event(
                        app,
                        EventKind::Info,
                        format!("scaled to {}", summary.join(", ")),
                    )
                    .await;
                p.runtime.converge(&release, &formation, false).await?;
            }
            Ok(formation)
        })
        .await
    }

    /// The app's processes on this host.
    pub async fn ps(&self, app: &str) -> PlatformResult<Vec<PsRow>> {
        self.store.app(app).await?;
        Ok(self.runtime.ps(app).await)
    }

    /// Restart all of the app's processes, or those of one type. The live release and the
    /// formation are read after taking the lock, so a deploy that just finished is the one
    /// restarted.
    pub async fn restart(&self, app: &str, only: Option<String>) -> PlatformResult<Vec<PsRow>> {
        let name = app.to_string();
        self.locked(app, move |p| async move {
            let app = name.as_str();
            let release = p.live_release(app).await?;
            let formation = p.effective_formation(app).await?;
            if let Some(t) = &only {
                if !release.process_types.contains_key(t) || t == "release" {
                    return Err(PlatformError::Invalid(format!(
                        "no process type `{t}` in v{}",
                        release.version
                    )));
                }
            }
            p.runtime
                .event(
                    app,
                    EventKind::Info,
                    format!("restarting {}", only.as_deref().unwrap_or("all processes")),
                )
                .await;
            p.runtime
                .restart(&release, &formation, only.as_deref())
                .await?;
            Ok(p.runtime.ps(app).await)
        })
        .await
    }
}

/// Refuse a process type the live release does not have (or its `release` phase), naming the
/// types it has.
pub(super) fn check_types<'a>(
    release: &dozen_store::Release,
    types: impl IntoIterator<Item = &'a String>,
) -> PlatformResult<()> {
    for t in types {
        if !release.process_types.contains_key(t) || t == "release" {
            let known: Vec<&str> = release
                .process_types
                .keys()
                .map(String::as_str)
                .filter(|t| *t != "release")
                .collect();
            return Err(PlatformError::Invalid(format!(
                "no process type `{t}` in the live release (v{}); its types: {}",
                release.version,
                known.join(", ")
            )));
        }
    }
    Ok(())
}
