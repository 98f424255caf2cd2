//! Log drains: where an app's log stream is sent (`dozen drains:add URL`).
//!
//! A drain's URL may carry a password: it is stored as given (the server needs it to connect)
//! and never appears in an error of this module nor in the `Debug` of [`DrainRecord`].

use std::fmt;

use sqlx::Row;

use crate::error::StoreError;
use crate::ident;
use crate::store::Store;

/// The longest drain URL stored.
pub const MAX_DRAIN_URL: usize = 2048;

/// Most drains one app may have.
pub const MAX_DRAINS_PER_APP: i64 = 16;

/// One stored drain.
#[derive(Clone, PartialEq, Eq)]
pub struct DrainRecord {
    /// `drn_` + 16 hex digits.
    pub id: String,
    /// The app whose stream it gets.
    pub app: String,
    /// The URL as given, password included: a secret.
    pub url: String,
    /// When it was added.
    pub created_at: String,
}

impl fmt::Debug for DrainRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainRecord")
            .field("id", &self.id)
            .field("app", &self.app)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Add a drain to `app`. The caller checks the URL's form; the store refuses an empty or
    /// overlong one, the same URL twice on one app ([`StoreError::Conflict`], naming the
    /// drain that has it) and more than [`MAX_DRAINS_PER_APP`].
    pub async fn add_drain(&self, app: &str, url: &str) -> Result<DrainRecord, StoreError> {
        if url.trim().is_empty() || url.len() > MAX_DRAIN_URL {
            return Err(StoreError::invalid(
                "url",
                format!("a drain URL has 1 to {MAX_DRAIN_URL} characters"),
            ));
        }
        let record = DrainRecord {
            id: ident::drain_id()?,
            app: app.to_string(),
            url: url.to_string(),
            created_at: ident::now(),
        };
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM drains WHERE app = $1 AND url = $2")
                .bind(app)
                .bind(url)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = existing {
            return Err(StoreError::conflict("drain", id, "already has this URL"));
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM drains WHERE app = $1")
            .bind(app)
            .fetch_one(&mut *tx)
            .await?;
        if count >= MAX_DRAINS_PER_APP {
            return Err(StoreError::invalid(
                "url",
                format!("{app} has {count} drains, the most an app may have"),
            ));
        }
        sqlx::query("INSERT INTO drains (id, app, url, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&record.id)
            .bind(app)
            .bind(url)
            .bind(&record.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The app's drains, oldest first.
    pub async fn drains(&self, app: &str) -> Result<Vec<DrainRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.app_exists(&mut tx, app).await?;
        let rows = sqlx::query(
            "SELECT id, app, url, created_at FROM drains WHERE app = $1 ORDER BY created_at, id",
        )
        .bind(app)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(record).collect()
    }

    /// Every app's drains (for a server starting up).
    pub async fn all_drains(&self) -> Result<Vec<DrainRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT id, app, url, created_at FROM drains ORDER BY app, created_at, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(record).collect()
    }

    /// Remove drain `id` of `app`; [`StoreError::NotFound`] when the app has no such drain.
    pub async fn remove_drain(&self, app: &str, id: &str) -> Result<DrainRecord, StoreError> {
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        let row =
            sqlx::query("SELECT id, app, url, created_at FROM drains WHERE app = $1 AND id = $2")
                .bind(app)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            return Err(StoreError::not_found("drain", id));
        };
        let removed = record(&row)?;
        sqlx::query("DELETE FROM drains WHERE app = $1 AND id = $2")
            .bind(app)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }
}

fn record(row: &sqlx::any::AnyRow) -> Result<DrainRecord, StoreError> {
    Ok(DrainRecord {
        id: row.try_get(0)?,
        app: row.try_get(1)?,
        url: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}
