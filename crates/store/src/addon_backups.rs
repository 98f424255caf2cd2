//! Backups of add-ons (the dumps are files the server keeps, or objects in an S3-compatible
//! bucket; the store records their number, size, time and, for the latter, where they are) and the schedules that take them daily, with how many to keep.
//!
//! A schedule's next run is stored as a timestamp, so a server that was down when a backup was
//! due finds it due when it starts. Pruning removes the records of the oldest backups in one
//! transaction and says which, so the server can remove their files.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::addons::read_addon;
use crate::store::Store;
use crate::{StoreError, ident};

/// The record of one backup of an add-on (the dump is a file under the data directory, or an
/// object in a bucket).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddonBackup {
    /// The add-on.
    pub addon: String,
    /// Its number, from 1 per add-on (`b001`).
    pub number: i64,
    /// The dump's size in bytes.
    pub size: i64,
    /// When it was taken.
    pub created_at: String,
    /// Where the dump is when it is not under the data directory (`s3://bucket/key`).
    pub location: Option<String>,
}

/// The longest location a backup record stores.
const MAX_LOCATION_BYTES: usize = 2048;

/// A daily backup of an add-on, at a time of day (UTC), keeping the newest `keep` backups.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupSchedule {
    /// The add-on.
    pub addon: String,
    /// The app that owns it.
    pub app: String,
    /// `HH:MM`, UTC.
    pub at: String,
    /// How many backups of the add-on are kept (the oldest beyond go).
    pub keep: i64,
    /// When the next backup is due (RFC 3339, UTC).
    pub next_run: String,
    /// When the schedule was set.
    pub created_at: String,
}

/// The longest `at` a schedule stores.
const MAX_AT_BYTES: usize = 16;

fn schedule_from_row(r: &AnyRow) -> Result<BackupSchedule, StoreError> {
    Ok(BackupSchedule {
        addon: r.try_get("addon")?,
        app: r.try_get("app")?,
        at: r.try_get("at")?,
        keep: r.try_get("keep")?,
        next_run: r.try_get("next_run")?,
        created_at: r.try_get("created_at")?,
    })
}

fn backup_from_row(r: &AnyRow) -> Result<AddonBackup, StoreError> {
    Ok(AddonBackup {
        addon: r.try_get("addon")?,
        number: r.try_get("number")?,
        size: r.try_get("size")?,
        created_at: r.try_get("created_at")?,
        location: r.try_get("location")?,
    })
}

const SCHEDULE_COLUMNS: &str = "s.addon, a.app, s.at, s.keep, s.next_run, s.created_at \
     FROM addon_backup_schedules s JOIN addons a ON a.name = s.addon";

/// Inside `delete_addon`'s transaction: its backups and schedule go with it.
pub(crate) async fn forget(conn: &mut AnyConnection, addon: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM addon_backup_schedules WHERE addon = $1",
        "DELETE FROM addon_backups WHERE addon = $1",
    ] {
        sqlx::query(sql).bind(addon).execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// Record a backup of an add-on, numbered one past its highest (`b001`, `b002`, ...), kept
    /// at `location` (`None`: under the data directory).
    pub async fn record_backup(
        &self,
        addon: &str,
        size: i64,
        location: Option<&str>,
    ) -> Result<AddonBackup, StoreError> {
        if location.is_some_and(|l| l.is_empty() || l.len() > MAX_LOCATION_BYTES) {
            return Err(StoreError::invalid(
                "location",
                "a backup's location is 1 to 2048 bytes",
            ));
        }
        let mut tx = self.write_tx().await?;
        read_addon(&mut tx, addon).await?;
        let max: Option<i64> =
            sqlx::query_scalar("SELECT MAX(number) FROM addon_backups WHERE addon = $1")
                .bind(addon)
                .fetch_one(&mut *tx)
                .await?;
        let backup = AddonBackup {
            addon: addon.to_owned(),
            number: max.unwrap_or(0) + 1,
            size,
            created_at: ident::now(),
            location: location.map(str::to_string),
        };
        sqlx::query(
            "INSERT INTO addon_backups (addon, number, size, created_at, location) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(addon)
        .bind(backup.number)
        .bind(size)
        .bind(&backup.created_at)
        .bind(&backup.location)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(backup)
    }

    /// An add-on's backups, oldest first.
    pub async fn backups(&self, addon: &str) -> Result<Vec<AddonBackup>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_addon(&mut conn, addon).await?;
        let rows = sqlx::query(
            "SELECT addon, number, size, created_at, location FROM addon_backups \
             WHERE addon = $1 ORDER BY number",
        )
        .bind(addon)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Forget all but the newest `keep` backups of an add-on, in one transaction; the records
    /// of those forgotten, oldest first (their files or objects are the caller's to remove).
    pub async fn prune_backups(
        &self,
        addon: &str,
        keep: i64,
    ) -> Result<Vec<AddonBackup>, StoreError> {
        if keep < 1 {
            return Err(StoreError::invalid("keep", "keep at least 1 backup"));
        }
        let mut tx = self.write_tx().await?;
        read_addon(&mut tx, addon).await?;
        let rows = sqlx::query(
            "SELECT addon, number, size, created_at, location FROM addon_backups \
             WHERE addon = $1 ORDER BY number DESC",
        )
        .bind(addon)
        .fetch_all(&mut *tx)
        .await?;
        let mut gone = rows
            .iter()
            .skip(keep as usize)
            .map(backup_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        gone.reverse();
        if let Some(newest_gone) = gone.last() {
            sqlx::query("DELETE FROM addon_backups WHERE addon = $1 AND number <= $2")
                .bind(addon)
                .bind(newest_gone.number)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// Set (or replace) the add-on's daily backup at `at`, keeping `keep`, next due at
    /// `next_run`.
    pub async fn set_backup_schedule(
        &self,
        addon: &str,
        at: &str,
        keep: i64,
        next_run: &str,
    ) -> Result<BackupSchedule, StoreError> {
        if keep < 1 {
            return Err(StoreError::invalid("keep", "keep at least 1 backup"));
        }
        if at.is_empty() || at.len() > MAX_AT_BYTES {
            return Err(StoreError::invalid("at", "a time of day, HH:MM"));
        }
        let mut tx = self.write_tx().await?;
        read_addon(&mut tx, addon).await?;
        sqlx::query("DELETE FROM addon_backup_schedules WHERE addon = $1")
            .bind(addon)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO addon_backup_schedules (addon, at, keep, next_run, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(addon)
        .bind(at)
        .bind(keep)
        .bind(next_run)
        .bind(ident::now())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!("SELECT {SCHEDULE_COLUMNS} WHERE s.addon = $1"))
            .bind(addon)
            .fetch_one(&mut *tx)
            .await?;
        let schedule = schedule_from_row(&row)?;
        tx.commit().await?;
        Ok(schedule)
    }

    /// Remove the add-on's schedule; the schedule removed.
    pub async fn remove_backup_schedule(&self, addon: &str) -> Result<BackupSchedule, StoreError> {
        let mut tx = self.write_tx().await?;
        read_addon(&mut tx, addon).await?;
        let row = sqlx::query(&format!("SELECT {SCHEDULE_COLUMNS} WHERE s.addon = $1"))
            .bind(addon)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("backup schedule", addon))?;
        let schedule = schedule_from_row(&row)?;
        sqlx::query("DELETE FROM addon_backup_schedules WHERE addon = $1")
            .bind(addon)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(schedule)
    }

    /// The schedules of the add-ons `app` owns, or of every add-on (`None`), by add-on.
    pub async fn backup_schedules(
        &self,
        app: Option<&str>,
    ) -> Result<Vec<BackupSchedule>, StoreError> {
        let rows = match app {
            Some(app) => {
                sqlx::query(&format!(
                    "SELECT {SCHEDULE_COLUMNS} WHERE a.app = $1 ORDER BY s.addon"
                ))
                .bind(app)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {SCHEDULE_COLUMNS} ORDER BY s.addon"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(schedule_from_row).collect()
    }

    /// Move the add-on's schedule on to `next_run`, if it is still the one due at `was` (a
    /// schedule set again meanwhile keeps its own time); whether it moved.
    pub async fn advance_backup_schedule(
        &self,
        addon: &str,
        was: &str,
        next_run: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE addon_backup_schedules SET next_run = $1 WHERE addon = $2 AND next_run = $3",
        )
        .bind(next_run)
        .bind(addon)
        .bind(was)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
