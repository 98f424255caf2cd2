//! Apps, their config vars and their domains.

use std::collections::BTreeMap;

use dozen_logs::EventKind;
use dozen_store::{App, Release};

use super::{Platform, PlatformError, PlatformResult};
use crate::runtime::PsRow;

/// What `apps:info` shows: the app, its live release's process types, its formation and its
/// processes.
#[derive(Debug, Clone)]
pub struct AppSummary {
    /// The app's record.
    pub app: App,
    /// Process type -> command of the live release (empty before the first deploy).
    pub process_types: BTreeMap<String, String>,
    /// The stored formation.
    pub formation: BTreeMap<String, i64>,
    /// Its processes on this host.
    pub processes: Vec<PsRow>,
}

impl Platform {
    /// Every app.
    pub async fn apps(&self) -> PlatformResult<Vec<App>> {
        Ok(self.store.apps().await?)
    }

    /// One app, or NotFound.
    pub async fn app(&self, app: &str) -> PlatformResult<App> {
        Ok(self.store.app(app).await?)
    }

    /// A new app, routed from now on (503 rather than 404 until its first deploy).
    pub async fn create_app(&self, name: &str) -> PlatformResult<App> {
        let name = name.to_string();
        self.locked(&name.clone(), move |p| async move {
            let app = p.store.create_app(&name).await?;
            p.runtime.refresh_routes(&p.store, &app.name).await?;
            p.runtime
                .event(
                    &app.name,
                    EventKind::Info,
                    format!("app {} created", app.name),
                )
                .await;
            Ok(app)
        })
        .await
    }

    /// The app, its live release's process types, formation and processes.
    pub async fn app_summary(&self, app: &str) -> PlatformResult<AppSummary> {
        let info = self.store.app(app).await?;
        let formation = self.store.formation(app).await?;
        let processes = self.runtime.ps(app).await;
        let current: Option<Release> = self.store.current_release(app).await?;
        Ok(AppSummary {
            app: info,
            process_types: current.map(|r| r.process_types).unwrap_or_default(),
            formation,
            processes,
        })
    }

    /// Stop every process of the app and remove it with everything it has. Holds the app's
    /// lock, so a deploy under way finishes first and one waiting finds no app.
    pub async fn destroy_app(&self, app: &str) -> PlatformResult<()> {
        self.store.app(app).await?;
        self.runtime
            .event(app, EventKind::Info, format!("destroying {app}"))
            .await;
        let name = app.to_string();
        self.locked(app, move |p| async move {
            p.store.app(&name).await?;
            p.runtime.stop_app(&name).await;
            p.store.destroy_app(&name).await?;
            p.runtime.forget_app(&name);
            if let Err(e) = crate::git::remove_repo(&p.config.data_dir, &name) {
                eprintln!("dozen server: error: removing the git repository of {name}: {e}");
            }
            Ok(())
        })
        .await
    }

    /// The app's config vars (values: this is what `config` shows its owner).
    pub async fn config(&self, app: &str) -> PlatformResult<BTreeMap<String, String>> {
        Ok(self.store.config(app).await?)
    }

    /// Set and unset config vars: a new release, rolled out.
    pub async fn change_config(
        &self,
        app: &str,
        set: BTreeMap<String, String>,
        unset: Vec<String>,
    ) -> PlatformResult<Release> {
        if set.is_empty() && unset.is_empty() {
            return Err(PlatformError::Invalid(
                "nothing to change: give `set` and/or `unset`".into(),
            ));
        }
        let name = app.to_string();
        self.locked(app, move |p| async move {
            let set: Vec<(String, String)> = set.into_iter().collect();
            let release = p.store.set_config(&name, &set, &unset).await?;
            crate::deploy::roll_out(&p, release).await
        })
        .await
    }

    /// The app's custom domains.
    pub async fn domains(&self, app: &str) -> PlatformResult<Vec<String>> {
        self.store.app(app).await?;
        Ok(self.store.domains(app).await?)
    }

    /// The hostname every app has: `<app>.DOZEN_DOMAIN`.
    pub fn default_hostname(&self, app: &str) -> String {
        format!("{app}.{}", self.config.domain)
    }

    /// Route `hostname` to the app too; its custom domains after.
    pub async fn add_domain(&self, app: &str, hostname: &str) -> PlatformResult<Vec<String>> {
        let (name, host) = (app.to_string(), hostname.to_string());
        self.locked(app, move |p| async move {
            p.store.add_domain(&name, &host).await?;
            p.runtime.refresh_routes(&p.store, &name).await?;
            p.runtime
                .event(
                    &name,
                    EventKind::Info,
                    format!("domain {} added", host.to_ascii_lowercase()),
                )
                .await;
            Ok(p.store.domains(&name).await?)
        })
        .await
    }

    /// Stop routing `hostname` to the app; its custom domains after.
    pub async fn remove_domain(&self, app: &str, hostname: &str) -> PlatformResult<Vec<String>> {
        let (name, host) = (app.to_string(), hostname.to_string());
        self.locked(app, move |p| async move {
            p.store.remove_domain(&name, &host).await?;
            p.runtime.refresh_routes(&p.store, &name).await?;
            p.runtime
                .event(&name, EventKind::Info, format!("domain {host} removed"))
                .await;
            Ok(p.store.domains(&name).await?)
        })
        .await
    }
}
