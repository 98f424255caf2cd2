//! Backups of database add-ons (`pg:backups`, `mysql:backups`): `pg_dump` custom-format or
//! `mysqldump` SQL files under `<DOZEN_DATA_DIR>/backups/<addon>/b001.dump` (`.sql`), or, when
//! `DOZEN_BACKUP_S3_URL` names a bucket, objects `<prefix>/<addon>/b001.dump` in it. Recorded
//! in the store with their size, time and (for objects) location, restored into the same
//! add-on or another of the app's add-ons of the same service. Capture and restore hold the
//! owning app's lock, and each is an event in the app's log. Daily schedules are in
//! [`super::schedules`].

use std::path::PathBuf;

use dozen_addons::Service;
use dozen_addons::s3::{Bucket, Object};
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

/// Why a backup is taken: it says so in the app's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Capture {
    /// `backups:capture`.
    Asked,
    /// The add-on's daily schedule.
    Scheduled,
}

/// The bucket of `DOZEN_BACKUP_S3_URL`, with the system's certificate authorities and those
/// of `DOZEN_BACKUP_S3_CA`; `None` when backups stay in the data directory.
pub fn bucket(config: &crate::ServerConfig) -> Result<Option<Bucket>, String> {
    let Some(settings) = &config.backup_s3 else {
        return Ok(None);
    };
    let tls = dozen_logs::drains::tls_config(settings.ca.as_deref())
        .map_err(|e| format!("DOZEN_BACKUP_S3_CA: {e}"))?;
    Bucket::new(settings.clone(), tls)
        .map(Some)
        .map_err(|e| format!("DOZEN_BACKUP_S3_URL: {e}"))
}

impl Platform {
    /// Where the dumps of add-on `name` are kept.
    pub(super) fn backup_dir(&self, name: &str) -> PathBuf {
        self.config.data_dir.join("backups").join(name)
    }

    pub(super) fn backup_file(&self, name: &str, service: Service, number: i64) -> PathBuf {
        self.backup_dir(name).join(format!(
            "{}.{}",
            backup_id(number),
            dozen_addons::dump_extension(service)
        ))
    }

    /// An add-on the app owns that can be backed up, and its service.
    pub(super) async fn backed_up_addon(&self, app: &str, name: &str) -> PlatformResult<Service> {
        let addon = self.owned_addon(app, name).await?;
        let service = Service::parse(&addon.service)?;
        if !dozen_addons::can_back_up(service) {
            return Err(PlatformError::Invalid(format!(
                "{name} is a {service} add-on: backups are for postgresql and mysql add-ons"
            )));
        }
        Ok(service)
    }

    /// The add-on's backups, oldest first.
    pub async fn backups(&self, app: &str, name: &str) -> PlatformResult<Vec<AddonBackup>> {
        self.backed_up_addon(app, name).await?;
        Ok(self.store.backups(name).await?)
    }

    /// Dump the add-on's database now.
    pub async fn capture_backup(&self, app: &str, name: &str) -> PlatformResult<AddonBackup> {
        self.check_not_shutting_down()?;
        let service = self.backed_up_addon(app, name).await?;
        let (owner, addon) = (app.to_string(), name.to_string());
        self.locked(app, move |p| async move {
            p.capture_locked(&owner, &addon, service, Capture::Asked)
                .await
        })
        .await
    }

    /// Dump the add-on's database, holding its owner's lock: written to a partial file,
    /// recorded, then renamed into place, so no record names a file half-written.
    pub(super) async fn capture_locked(
        &self,
        owner: &str,
        addon: &str,
        service: Service,
        why: Capture,
    ) -> PlatformResult<AddonBackup> {
        let dir = self.backup_dir(addon);
        let io = |e: std::io::Error| {
            PlatformError::internal(
                format!("writing a backup of {addon}"),
                format!("{}: {e}", dir.display()),
            )
        };
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let url = self.store.addon_url(addon).await?;
        let partial = dir.join(format!("partial-{}.dump", std::process::id()));
        let size = match dozen_addons::dump(service, &url, &partial).await {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(e.into());
            }
        };
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        // Into the bucket first, under the number the record will get (the owner's lock is
        // held, so no other capture of this add-on runs).
        let object = match &self.backup_bucket {
            None => None,
            Some(bucket) => {
                let number = self
                    .store
                    .backups(addon)
                    .await?
                    .last()
                    .map_or(1, |b| b.number + 1);
                let object = bucket.object(&object_name(addon, service, number));
                let uploaded = bucket.upload(&object, &partial).await;
                let _ = tokio::fs::remove_file(&partial).await;
                uploaded?;
                Some((bucket, object))
            }
        };
        let location = object.as_ref().map(|(_, o)| o.location());
        let backup = match self
            .store
            .record_backup(addon, size, location.as_deref())
            .await
        {
            Ok(b) => b,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                if let Some((bucket, object)) = &object {
                    let _ = bucket.delete(object).await;
                }
                return Err(e.into());
            }
        };
        if object.is_none() {
            tokio::fs::rename(&partial, self.backup_file(addon, service, backup.number))
                .await
                .map_err(io)?;
        }
        let kept = match &location {
            Some(l) => format!(" to {l}"),
            None => String::new(),
        };
        let what = match why {
            Capture::Asked => "backup",
            Capture::Scheduled => "scheduled backup",
        };
        self.runtime
            .event(
                owner,
                EventKind::Info,
                format!(
                    "{what} {} of {addon} captured ({size} bytes){kept}",
                    backup_id(backup.number)
                ),
            )
            .await;
        Ok(backup)
    }

    /// Restore backup `id` of add-on `name` into `into` (another add-on the app owns, of the
    /// same service), or into `name` itself.
    pub async fn restore_backup(
        &self,
        app: &str,
        name: &str,
        id: &str,
        into: Option<&str>,
    ) -> PlatformResult<AddonBackup> {
        self.check_not_shutting_down()?;
        let service = self.backed_up_addon(app, name).await?;
        let number = parse_backup_id(id)?;
        let target = match into.filter(|t| *t != name) {
            None => None,
            Some(t) => {
                let target_service = self.backed_up_addon(app, t).await?;
                if target_service != service {
                    return Err(PlatformError::Invalid(format!(
                        "{t} is a {target_service} add-on: a backup of {name} ({service}) restores into a {service} add-on"
                    )));
                }
                Some(t.to_string())
            }
        };
        let backup = self
            .store
            .backups(name)
            .await?
            .into_iter()
            .find(|b| b.number == number)
            .ok_or_else(|| {
                PlatformError::NotFound(format!("{name} has no backup {}", backup_id(number)))
            })?;
        let id = backup_id(number);
        let fetch = match &backup.location {
            None => None,
            Some(location) => {
                let object = Object::parse(location).ok_or_else(|| {
                    PlatformError::internal(
                        format!("restoring backup {id} of {name}"),
                        format!("its recorded location {location:?} is not s3://bucket/key"),
                    )
                })?;
                let bucket = self.backup_bucket.clone().ok_or_else(|| {
                    PlatformError::Invalid(format!(
                        "backup {id} of {name} is kept in {location}, and this server has no DOZEN_BACKUP_S3_URL to fetch it with"
                    ))
                })?;
                Some((bucket, object))
            }
        };
        let (owner, addon) = (app.to_string(), name.to_string());
        self.locked(app, move |p| async move {
            let fetched = match &fetch {
                None => None,
                Some((bucket, object)) => {
                    Some(p.fetch_backup(&addon, service, bucket, object).await?)
                }
            };
            let file = match &fetched {
                Some(f) => f.path.clone(),
                None => p.backup_file(&addon, service, number),
            };
            let into = target.as_deref().unwrap_or(&addon);
            let url = p.store.addon_url(into).await?;
            let what = match &target {
                None => format!("{addon} from backup {}", backup_id(number)),
                Some(t) => format!("{t} from backup {} of {addon}", backup_id(number)),
            };
            p.runtime
                .event(&owner, EventKind::Info, format!("restoring {what}"))
                .await;
            let restored = dozen_addons::restore(service, &url, &file).await;
            drop(fetched);
            if let Err(e) = restored {
                p.runtime
                    .event(&owner, EventKind::Error, format!("restoring {what} failed"))
                    .await;
                return Err(e.into());
            }
            p.runtime
                .event(&owner, EventKind::Info, format!("restored {what}"))
                .await;
            Ok(backup)
        })
        .await
    }

    /// Forget all but the newest `keep` backups of `addon` and remove their files or objects;
    /// the ids removed.
    pub(super) async fn prune_backups(
        &self,
        addon: &str,
        service: Service,
        keep: i64,
    ) -> PlatformResult<Vec<String>> {
        let gone = self.store.prune_backups(addon, keep).await?;
        self.remove_backup_copies(addon, service, &gone).await;
        Ok(gone.iter().map(|b| backup_id(b.number)).collect())
    }

    /// Remove the dumps of backups the store no longer records: files, or objects in the
    /// bucket. A failure is a warning: the record is gone either way.
    pub(super) async fn remove_backup_copies(
        &self,
        addon: &str,
        service: Service,
        gone: &[AddonBackup],
    ) {
        for b in gone {
            let id = backup_id(b.number);
            match &b.location {
                Some(location) => {
                    let removed = match (&self.backup_bucket, Object::parse(location)) {
                        (Some(bucket), Some(object)) => {
                            bucket.delete(&object).await.map_err(|e| e.to_string())
                        }
                        _ => Err("this server has no DOZEN_BACKUP_S3_URL to delete it with".into()),
                    };
                    if let Err(e) = removed {
                        eprintln!(
                            "dozen server: warning: removing backup {id} of {addon} ({location}): {e}"
                        );
                    }
                }
                None => {
                    let file = self.backup_file(addon, service, b.number);
                    if let Err(e) = tokio::fs::remove_file(&file).await
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        eprintln!(
                            "dozen server: warning: removing backup {id} of {addon} ({}): {e}",
                            file.display()
                        );
                    }
                }
            }
        }
    }

    /// Download a backup kept in the bucket into the add-on's backup directory, for a restore.
    async fn fetch_backup(
        &self,
        addon: &str,
        service: Service,
        bucket: &Bucket,
        object: &Object,
    ) -> PlatformResult<Fetched> {
        let dir = self.backup_dir(addon);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| {
            PlatformError::internal(
                format!("fetching a backup of {addon}"),
                format!("{}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(format!(
            "fetched-{}.{}",
            std::process::id(),
            dozen_addons::dump_extension(service)
        ));
        let _ = tokio::fs::remove_file(&path).await;
        bucket.download(object, &path).await?;
        Ok(Fetched { path })
    }
}

/// `<addon>/b001.dump`: a backup's name under the bucket's prefix.
fn object_name(addon: &str, service: Service, number: i64) -> String {
    format!(
        "{addon}/{}.{}",
        backup_id(number),
        dozen_addons::dump_extension(service)
    )
}

/// A backup downloaded for a restore, removed when dropped.
struct Fetched {
    path: PathBuf,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
