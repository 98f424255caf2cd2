//! Add-ons: backing services provisioned on the servers the operator attached
//! (`DOZEN_ADDON_*_URL`), recorded in the store and attached to apps as config vars.
//!
//! Every attach, detach and rotation is a config change, so a new release rolled out as any
//! other (new web processes, switched to when healthy). The order of each operation is chosen
//! so that a failure leaves neither a dangling database nor a config var naming nothing:
//!
//! - create: provision on the server, then record add-on + attachment + release in one store
//!   transaction; when the store refuses, what was provisioned is removed again;
//! - rotate: new password on the server, then the new URL and a release per attached app in one
//!   store transaction; when the store refuses, the old password is put back;
//! - destroy: detach from the owner (a release without the var), then remove from the server,
//!   then forget it; a server that fails leaves the add-on recorded and detached, and running
//!   destroy again finishes the job.

use dozen_addons::{AddonError, AdminUrl, Service};
use dozen_logs::EventKind;
use dozen_store::{Addon, NewAddon, Release};

use super::{Platform, PlatformError, PlatformResult};

impl From<AddonError> for PlatformError {
    fn from(e: AddonError) -> Self {
        match e {
            AddonError::NotAttached { .. }
            | AddonError::UnknownService { .. }
            | AddonError::BadName { .. } => PlatformError::Invalid(e.to_string()),
            // The backing server's own words: safe to show (no URL, no password), and what the
            // operator needs to fix it.
            other => PlatformError::Invalid(other.to_string()),
        }
    }
}

/// `CACHE` -> `CACHE_URL`; `CACHE_URL` stays. Upper-cased.
pub fn attachment_var(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper.ends_with("_URL") {
        upper
    } else {
        format!("{upper}_URL")
    }
}

impl Platform {
    /// The services this server knows, and which of them it offers.
    pub fn addon_services(&self) -> Vec<dozen_api::AddonService> {
        Service::ALL
            .iter()
            .map(|s| dozen_api::AddonService {
                name: s.name().to_string(),
                available: self.config.addon_servers.offers(*s),
                env_var: s.env_var().to_string(),
                default_attachment: s.default_attachment().to_string(),
                plan: dozen_addons::PLAN.to_string(),
            })
            .collect()
    }

    fn addon_server(&self, service: Service) -> PlatformResult<&AdminUrl> {
        Ok(self.config.addon_servers.get(service)?)
    }

    /// The add-ons the app owns or is attached to.
    pub async fn addons(&self, app: &str) -> PlatformResult<Vec<Addon>> {
        Ok(self.store.addons_of(app).await?)
    }

    /// An add-on the app owns, or NotFound (an add-on of another app is not the app's to
    /// change).
    pub(super) async fn owned_addon(&self, app: &str, name: &str) -> PlatformResult<Addon> {
        let addon = self.store.addon(name).await?;
        if addon.app != app {
            return Err(PlatformError::NotFound(format!(
                "{app} has no add-on {name} (add-ons are changed through the app that owns them)"
            )));
        }
        Ok(addon)
    }

    /// Provision a new add-on of `service` for `app` and attach it as `attach_as` (default
    /// per service): a new release, rolled out.
    pub async fn create_addon(
        &self,
        app: &str,
        service: &str,
        attach_as: Option<String>,
    ) -> PlatformResult<(Addon, Release)> {
        self.check_not_shutting_down()?;
        let service = Service::parse(service)?;
        let admin = self.addon_server(service)?.clone();
        let var = attachment_var(attach_as.as_deref().unwrap_or(service.default_attachment()));
        let owner = app.to_string();
        self.locked(app, move |p| async move {
            let app = owner.as_str();
            p.store.app(app).await?;
            // Checked before anything is made on the server (the store checks again).
            if p.store.config(app).await?.contains_key(&var) {
                return Err(PlatformError::Conflict(format!(
                    "{var} is already set on {app}: unset it first, or give another name with --as"
                )));
            }
            let name = p.store.next_addon_name(app, service.name()).await?;
            let made = dozen_addons::provision(service, &admin, &name).await?;
            let recorded = p
                .store
                .create_addon(
                    NewAddon {
                        name: &name,
                        service: service.name(),
                        plan: dozen_addons::PLAN,
                        app,
                        resource: &made.resource,
                        url: &made.url,
                    },
                    &var,
                )
                .await;
            let (addon, release) = match recorded {
                Ok(done) => done,
                Err(e) => {
                    let e = PlatformError::from(e);
                    return Err(
                        match dozen_addons::deprovision(service, &admin, &made.resource).await {
                            Ok(()) => e,
                            Err(cleanup) => PlatformError::internal(
                                format!("recording add-on {name}"),
                                format!("{e}; and removing it from the server failed: {cleanup}"),
                            ),
                        },
                    );
                }
            };
            p.runtime
                .event(
                    app,
                    EventKind::Info,
                    format!("add-on {name} ({service}) created, attached as {var}"),
                )
                .await;
            let release = crate::deploy::roll_out(&p, release).await?;
            Ok((addon, release))
        })
        .await
    }

    /// Attach an existing add-on to `app` as `attach_as` (default per service).
    pub async fn attach_addon(
        &self,
        app: &str,
        addon: &str,
        attach_as: Option<String>,
    ) -> PlatformResult<(Addon, Release)> {
        self.check_not_shutting_down()?;
        let found = self.store.addon(addon).await?;
        let service = Service::parse(&found.service)?;
        let var = attachment_var(attach_as.as_deref().unwrap_or(service.default_attachment()));
        let (target, name) = (app.to_string(), addon.to_string());
        self.locked(app, move |p| async move {
            let release = p.store.attach_addon(&name, &target, &var).await?;
            p.runtime
                .event(
                    &target,
                    EventKind::Info,
                    format!("add-on {name} attached as {var}"),
                )
                .await;
            let release = crate::deploy::roll_out(&p, release).await?;
            Ok((p.store.addon(&name).await?, release))
        })
        .await
    }

    /// Detach the add-on attached to `app` as `attachment` (`DATABASE` or `DATABASE_URL`).
    pub async fn detach_addon(
        &self,
        app: &str,
        attachment: &str,
    ) -> PlatformResult<(Addon, Release)> {
        self.check_not_shutting_down()?;
        let var = attachment_var(attachment);
        let target = app.to_string();
        self.locked(app, move |p| async move {
            let (name, release) = p.store.detach_addon(&target, &var, false).await?;
            p.runtime
                .event(
                    &target,
                    EventKind::Info,
                    format!("add-on {name} detached ({var})"),
                )
                .await;
            let release = crate::deploy::roll_out(&p, release).await?;
            Ok((p.store.addon(&name).await?, release))
        })
        .await
    }

    /// Give the add-on a new password and re-release every app it is attached to.
    pub async fn rotate_addon(
        &self,
        app: &str,
        name: &str,
    ) -> PlatformResult<(Addon, Vec<Release>)> {
        self.check_not_shutting_down()?;
        let addon = self.owned_addon(app, name).await?;
        let service = Service::parse(&addon.service)?;
        let admin = self.addon_server(service)?.clone();
        // The server's password and the store's URL change together under the owner's lock,
        // so two rotations cannot cross.
        let (resource, addon_name) = (addon.resource.clone(), name.to_string());
        let releases = self
            .locked(app, move |p| async move {
                let name = addon_name.as_str();
                let old_url = p.store.addon_url(name).await?;
                let new_url = dozen_addons::rotate(service, &admin, &resource).await?;
                match p.store.rotate_addon(name, &new_url).await {
                    Ok(r) => Ok(r),
                    Err(e) => {
                        let e = PlatformError::from(e);
                        Err(
                            match dozen_addons::restore_password(
                                service, &admin, &resource, &old_url,
                            )
                            .await
                            {
                                Ok(()) => e,
                                Err(undo) => PlatformError::internal(
                                    format!("recording the new password of {name}"),
                                    format!(
                                        "{e}; and putting the old password back failed: {undo}"
                                    ),
                                ),
                            },
                        )
                    }
                }
            })
            .await?;
        let mut rolled = Vec::with_capacity(releases.len());
        let mut failures = Vec::new();
        for release in releases {
            let target = release.app.clone();
            let text = format!("add-on {name}: credentials rotated");
            let result = self
                .locked(&target, move |p| async move {
                    p.runtime.event(&release.app, EventKind::Info, text).await;
                    // A newer release made since carries the new URL too: nothing to roll out.
                    let newest = p
                        .store
                        .releases(&release.app)
                        .await?
                        .first()
                        .map(|r| r.version);
                    if newest != Some(release.version) {
                        return Ok(release);
                    }
                    crate::deploy::roll_out(&p, release).await
                })
                .await;
            match result {
                Ok(r) => rolled.push(r),
                Err(e) => failures.push(format!("{target}: {}", e.report())),
            }
        }
        if !failures.is_empty() {
            return Err(PlatformError::Invalid(format!(
                "the password of {name} changed, but rolling out failed for {}",
                failures.join("; ")
            )));
        }
        Ok((self.store.addon(name).await?, rolled))
    }

    /// Remove the add-on from its server and forget it. Refused while it is attached to an app
    /// other than its owner.
    pub async fn destroy_addon(&self, app: &str, name: &str) -> PlatformResult<()> {
        self.check_not_shutting_down()?;
        let addon = self.owned_addon(app, name).await?;
        let others: Vec<&str> = addon
            .attachments
            .iter()
            .filter(|a| a.app != addon.app)
            .map(|a| a.app.as_str())
            .collect();
        if !others.is_empty() {
            return Err(PlatformError::Conflict(format!(
                "{name} is attached to {} too: detach it there first (addons:detach)",
                others.join(", ")
            )));
        }
        let service = Service::parse(&addon.service)?;
        let admin = self.addon_server(service)?.clone();
        let owner = app.to_string();
        let addon_name = name.to_string();
        self.locked(app, move |p| async move {
            let app = owner.as_str();
            let name = addon_name.as_str();
            let addon = p.store.addon(name).await?;
            if let Some(a) = addon.attachments.iter().find(|a| a.app == app) {
                let (_, release) = p.store.detach_addon(app, &a.var, true).await?;
                crate::deploy::roll_out(&p, release).await?;
            }
            dozen_addons::deprovision(service, &admin, &addon.resource)
                .await
                .map_err(|e| {
                    PlatformError::Invalid(format!(
                        "{name} is detached from {app} but could not be removed from its server ({e}); run addons:destroy again"
                    ))
                })?;
            let backups = p.store.backups(name).await?;
            p.store.delete_addon(name).await?;
            let in_bucket: Vec<_> = backups
                .into_iter()
                .filter(|b| b.location.is_some())
                .collect();
            p.remove_backup_copies(name, service, &in_bucket).await;
            let dir = p.backup_dir(name);
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!(
                        "dozen server: warning: removing the backups of {name} ({}): {e}",
                        dir.display()
                    );
                }
            }
            p.runtime
                .event(app, EventKind::Info, format!("add-on {name} destroyed"))
                .await;
            Ok(())
        })
        .await
    }
}
