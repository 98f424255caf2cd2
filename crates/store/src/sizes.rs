//! Process sizes: process type -> size name, per app (`dozen ps:resize`).

use std::collections::BTreeMap;

use sqlx::Row;

use crate::error::StoreError;
use crate::store::Store;
use crate::validate;

/// The longest size name stored.
const MAX_SIZE_NAME: usize = 64;

impl Store {
    /// The sizes set for the app's process types (types never resized are absent: they run at
    /// the default size).
    pub async fn sizes(&self, app: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.app_exists(&mut tx, app).await?;
        let rows = sqlx::query("SELECT process_type, size FROM process_sizes WHERE app = $1")
            .bind(app)
            .fetch_all(&mut *tx)
            .await?;
        let sizes = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, StoreError>>()?;
        tx.commit().await?;
        Ok(sizes)
    }

    /// Set sizes in one transaction and return them all. Process type names are checked;
    /// whether a size name is known is the caller's concern (the store keeps names only).
    pub async fn resize(
        &self,
        app: &str,
        changes: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, StoreError> {
        if changes.is_empty() {
            return Err(StoreError::invalid("sizes", "nothing to resize"));
        }
        for (kind, size) in changes {
            validate::process_type(kind)?;
            if size.is_empty() || size.len() > MAX_SIZE_NAME {
                return Err(StoreError::invalid(
                    "size",
                    format!("{kind}: a size name has 1 to {MAX_SIZE_NAME} characters"),
                ));
            }
        }
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        for (kind, size) in changes {
            sqlx::query(
                "INSERT INTO process_sizes (app, process_type, size) VALUES ($1, $2, $3) \
                 ON CONFLICT (app, process_type) DO UPDATE SET size = excluded.size",
            )
            .bind(app)
            .bind(kind)
            .bind(size)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.sizes(app).await
    }
}
