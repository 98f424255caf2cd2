//! Backups of PostgreSQL add-ons (`pg:backups`): `pg_dump` custom-format files under
//! `<DOZEN_DATA_DIR>/backups/<addon>/b001.dump`, recorded in the store with their size and
//! time, restored into the same add-on. Capture and restore hold the owning app's lock, and a
//! restore is an event in the app's log.

use std::path::PathBuf;

use dozen_logs::EventKind;
use dozen_store::AddonBackup;

use super::{Platform, PlatformError, PlatformResult};

/// `b001` for backup 1.
pub fn backup_id(number: i64) -> String {
    format!("b{number:03}")
}

fn parse_backup_id(id: &str) -> PlatformResult<i64> {
    id.trim_start_matches('b')
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            PlatformError::Invalid(format!("backup `{id}`: write a backup as bNNN, e.g. b001"))
        })
}

impl Platform {
    /// Where the dumps of add-on `name` are kept.
    pub(super) fn backup_dir(&self, name: &str) -> PathBuf {
        self.config.data_dir.join("backups").join(name)
    }

    fn backup_file(&self, name: &str, number: i64) -> PathBuf {
        self.backup_dir(name)
            .join(format!("{}.dump", backup_id(number)))
    }

    async fn postgres_addon(&self, app: &str, name: &str) -> PlatformResult<()> {
        let addon = self.owned_addon(app, name).await?;
        if addon.service != dozen_addons::Service::Postgresql.name() {
            return Err(PlatformError::Invalid(format!(
                "{name} is a {} add-on: backups are for postgresql add-ons",
                addon.service
            )));
        }
        Ok(())
    }

    /// The add-on's backups, oldest first.
    pub async fn backups(&self, app: &str, name: &str) -> PlatformResult<Vec<AddonBackup>> {
        self.postgres_addon(app, name).await?;
        Ok(self.store.backups(name).await?)
    }

    /// Dump the add-on's database now.
    pub async fn capture_backup(&self, app: &str, name: &str) -> PlatformResult<AddonBackup> {
        self.check_not_shutting_down()?;
        self.postgres_addon(app, name).await?;
        let (owner, addon) = (app.to_string(), name.to_string());
        self.locked(app, move |p| async move {
            let dir = p.backup_dir(&addon);
            let io = |e: std::io::Error| {
                PlatformError::internal(
                    format!("writing a backup of {addon}"),
                    format!("{}: {e}", dir.display()),
                )
            };
            tokio::fs::create_dir_all(&dir).await.map_err(io)?;
            let url = p.store.addon_url(&addon).await?;
            let partial = dir.join(format!("partial-{}.dump", std::process::id()));
            let size = match dozen_addons::dump(&url, &partial).await {
                Ok(size) => size,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(e.into());
                }
            };
            let size = i64::try_from(size).unwrap_or(i64::MAX);
            let backup = match p.store.record_backup(&addon, size).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(e.into());
                }
            };
            tokio::fs::rename(&partial, p.backup_file(&addon, backup.number))
                .await
                .map_err(io)?;
            p.runtime
                .event(
                    &owner,
                    EventKind::Info,
                    format!(
                        "backup {} of {addon} captured ({size} bytes)",
                        backup_id(backup.number)
                    ),
                )
                .await;
            Ok(backup)
        })
        .await
    }

    /// Restore backup `id` into the add-on it was taken of.
    pub async fn restore_backup(
        &self,
        app: &str,
        name: &str,
        id: &str,
    ) -> PlatformResult<AddonBackup> {
        self.check_not_shutting_down()?;
        self.postgres_addon(app, name).await?;
        let number = parse_backup_id(id)?;
        let backup = self
            .store
            .backups(name)
            .await?
            .into_iter()
            .find(|b| b.number == number)
            .ok_or_else(|| {
                PlatformError::NotFound(format!("{name} has no backup {}", backup_id(number)))
            })?;
        let (owner, addon) = (app.to_string(), name.to_string());
        self.locked(app, move |p| async move {
            let file = p.backup_file(&addon, number);
            let url = p.store.addon_url(&addon).await?;
            let id = backup_id(number);
            p.runtime
                .event(
                    &owner,
                    EventKind::Info,
                    format!("restoring {addon} from backup {id}"),
                )
                .await;
            if let Err(e) = dozen_addons::restore(&url, &file).await {
                p.runtime
                    .event(
                        &owner,
                        EventKind::Error,
                        format!("restoring {addon} from backup {id} failed"),
                    )
                    .await;
                return Err(e.into());
            }
            p.runtime
                .event(
                    &owner,
                    EventKind::Info,
                    format!("restored {addon} from backup {id}"),
                )
                .await;
            Ok(backup)
        })
        .await
    }
}
