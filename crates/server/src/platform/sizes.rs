//! Process sizes: the size of each process type (`dozen ps:resize web=2x`).
//!
//! A resize is stored, then rolled out like a restart of the types it names: a new set of web
//! processes switched to when healthy (web), or the type's processes stopped and started again
//! (other types), each with the new size's limits.

use std::collections::BTreeMap;

use dozen_api::{SizeInfo, Sizes};
use dozen_core::Size;
use dozen_logs::EventKind;

use super::{Platform, PlatformError, PlatformResult};
use crate::sizes::size_info;

impl Platform {
    /// The sizes of the app's process types, and how this host enforces them.
    pub async fn sizes(&self, app: &str) -> PlatformResult<Sizes> {
        self.store.app(app).await?;
        self.sizes_now(app).await
    }

    /// Set sizes (`TYPE -> SIZE`) and restart the types named with their new limits.
    pub async fn resize(&self, app: &str, body: BTreeMap<String, String>) -> PlatformResult<Sizes> {
        if body.is_empty() {
            return Err(PlatformError::Invalid(
                "nothing to resize: give TYPE=SIZE".into(),
            ));
        }
        let mut changes: Vec<(String, &'static Size)> = Vec::new();
        for (t, name) in &body {
            let size = Size::parse(name)
                .map_err(|e| PlatformError::Invalid(format!("{t}={name}: {e}")))?;
            changes.push((t.clone(), size));
        }
        self.store.app(app).await?;
        let name = app.to_string();
        self.locked(app, move |p| async move {
            let app = name.as_str();
            let release = p.store.current_release(app).await?;
            if let Some(release) = &release {
                super::formation::check_types(release, changes.iter().map(|(t, _)| t))?;
            }
            let stored: Vec<(String, String)> = changes
                .iter()
                .map(|(t, size)| (t.clone(), size.name.to_string()))
                .collect();
            let all = p.store.resize(app, &stored).await?;
            p.runtime.sizes.set(app, &all);
            let summary: Vec<String> = changes
                .iter()
                .map(|(t, size)| format!("{t}={} ({})", size.name, size.describe()))
                .collect();
            let mut text = format!("resized {}", summary.join(", "));
            if let Some(w) = p.runtime.supervisor().limit_support().warning() {
                text.push_str(&format!("; warning: {w}"));
            }
            p.runtime.event(app, EventKind::Info, text).await;
            if let Some(release) = &release {
                let formation = p.effective_formation(app).await?;
                if changes.iter().any(|(t, _)| t == "web") {
                    // A new set of every process, switched to when the web processes are healthy.
                    p.runtime.restart(release, &formation, None).await?;
                } else {
                    for (t, _) in &changes {
                        p.runtime.restart(release, &formation, Some(t)).await?;
                    }
                }
            }
            p.sizes_now(app).await
        })
        .await
    }

    async fn sizes_now(&self, app: &str) -> PlatformResult<Sizes> {
        let mut sizes: BTreeMap<String, SizeInfo> = BTreeMap::new();
        match self.store.current_release(app).await? {
            Some(release) => {
                for (t, size) in self.runtime.sizes_of(&release) {
                    sizes.insert(t, size_info(size));
                }
            }
            None => {
                for (t, name) in self.store.sizes(app).await? {
                    if let Ok(size) = Size::parse(&name) {
                        sizes.insert(t, size_info(size));
                    }
                }
            }
        }
        let support = self.runtime.supervisor().limit_support();
        Ok(Sizes {
            limits: support.as_str().to_string(),
            warning: support.warning().map(|w| w.to_string()),
            sizes,
            available: dozen_core::SIZES.iter().map(size_info).collect(),
        })
    }
}
