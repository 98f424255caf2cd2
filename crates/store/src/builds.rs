//! Builds, slug records and crash recovery.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Store, from_json, to_json};
use crate::{Build, BuildStatus, SlugRecord, StoreError, ident, releases, validate};

const BUILD_COLUMNS: &str =
    "id, app, source_digest, status, slug, process_types, error, created_at, finished_at";

/// What [`Store::recover_interrupted`] writes as the failure reason.
pub const INTERRUPTED: &str = "interrupted: the server stopped before it finished";

fn build_from_row(row: &AnyRow) -> Result<Build, StoreError> {
    let status: String = row.try_get("status")?;
    let process_types: String = row.try_get("process_types")?;
    Ok(Build {
        id: row.try_get("id")?,
        app: row.try_get("app")?,
        source_digest: row.try_get("source_digest")?,
        status: BuildStatus::parse(&status)?,
        slug: row.try_get("slug")?,
        process_types: from_json("build process types", &process_types)?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

async fn find_build(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Build, StoreError> {
    validate::lookup_key("build", id)?;
    let sql = format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found("build", id))?;
    build_from_row(&row)
}

impl Store {
    /// Record a build of `app` from the uploaded source with this digest,
    /// status Pending. Ids increase in creation order (see [`Build::id`]).
    pub async fn create_build(&self, app: &str, source_digest: &str) -> Result<Build, StoreError> {
        validate::digest("source digest", source_digest)?;
        let build = Build {
            id: ident::build_id()?,
            app: app.to_owned(),
            source_digest: source_digest.to_owned(),
            status: BuildStatus::Pending,
            slug: None,
            process_types: BTreeMap::new(),
            error: None,
            created_at: ident::now(),
            finished_at: None,
        };
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        sqlx::query(
            "INSERT INTO builds (id, app, source_digest, status, process_types, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&build.id)
        .bind(&build.app)
        .bind(&build.source_digest)
        .bind(build.status.as_str())
        .bind(to_json(&build.process_types)?)
        .bind(&build.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(build)
    }

    /// Finish a pending build. `Succeeded` needs a recorded slug
    /// ([`Store::record_slug`] first); `Failed` takes an error message.
    /// [`StoreError::Conflict`] when the build already finished.
    pub async fn finish_build(
        &self,
        id: &str,
        status: BuildStatus,
        slug: Option<&str>,
        process_types: &BTreeMap<String, String>,
        error: Option<&str>,
    ) -> Result<Build, StoreError> {
        match (status, slug) {
            (BuildStatus::Pending, _) => {
                return Err(StoreError::invalid(
                    "build status",
                    "a build finishes as succeeded or failed",
                ));
            }
            (BuildStatus::Succeeded, None) => {
                return Err(StoreError::invalid(
                    "slug",
                    "a succeeded build must name its slug",
                ));
            }
            _ => {}
        }
        for kind in process_types.keys() {
            validate::process_type(kind)?;
        }
        let mut tx = self.write_tx().await?;
        let build = find_build(&mut tx, id).await?;
        if build.status != BuildStatus::Pending {
            return Err(StoreError::conflict(
                "build",
                id,
                format!("already {}", build.status),
            ));
        }
        if let Some(slug) = slug {
            releases::slug_recorded(&mut tx, slug).await?;
        }
        let error = match status {
            BuildStatus::Failed => error.map(|e| validate::text(e).into_owned()),
            _ => None,
        };
        sqlx::query(
            "UPDATE builds SET status = $1, slug = $2, process_types = $3, error = $4, \
             finished_at = $5 WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(slug)
        .bind(to_json(process_types)?)
        .bind(error)
        .bind(ident::now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let build = find_build(&mut tx, id).await?;
        tx.commit().await?;
        Ok(build)
    }

    /// The app's builds, newest first.
    pub async fn builds(&self, app: &str) -> Result<Vec<Build>, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.app_exists(&mut tx, app).await?;
        let sql = format!("SELECT {BUILD_COLUMNS} FROM builds WHERE app = $1 ORDER BY id DESC");
        let rows = sqlx::query(&sql).bind(app).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(build_from_row).collect()
    }

    /// One build by id.
    pub async fn build(&self, id: &str) -> Result<Build, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_build(&mut conn, id).await
    }

    /// Run once on server start, before anything else writes: builds and
    /// releases left Pending by a crash are marked Failed with
    /// [`INTERRUPTED`] as the reason. Returns (builds, releases) marked.
    /// The apps' current releases are untouched, so the previous release
    /// stays live.
    pub async fn recover_interrupted(&self) -> Result<(usize, usize), StoreError> {
        let now = ident::now();
        let mut tx = self.write_tx().await?;
        let builds = sqlx::query(
            "UPDATE builds SET status = 'failed', error = $1, finished_at = $2 \
             WHERE status = 'pending'",
        )
        .bind(INTERRUPTED)
        .bind(&now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let releases = sqlx::query(
            "UPDATE releases SET status = 'failed', failure_reason = $1 WHERE status = 'pending'",
        )
        .bind(INTERRUPTED)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((
            usize::try_from(builds).unwrap_or(usize::MAX),
            usize::try_from(releases).unwrap_or(usize::MAX),
        ))
    }

    /// Record a slug (the archive is already on disk under its digest).
    /// Recording the same digest again does nothing.
    pub async fn record_slug(
        &self,
        digest: &str,
        size: i64,
        manifest_json: &str,
    ) -> Result<(), StoreError> {
        validate::digest("slug digest", digest)?;
        if size < 0 {
            return Err(StoreError::invalid(
                "slug size",
                "a size cannot be negative",
            ));
        }
        if serde_json::from_str::<serde_json::Value>(manifest_json).is_err() {
            return Err(StoreError::invalid(
                "slug manifest",
                "the manifest is not JSON",
            ));
        }
        sqlx::query(
            "INSERT INTO slugs (digest, size, manifest, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(size)
        .bind(manifest_json)
        .bind(ident::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Digests of recorded slugs that no release and no build names any
    /// more (their apps were destroyed): what a slug collector may delete,
    /// file first, then [`Store::forget_slug`].
    pub async fn unreferenced_slugs(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT digest FROM slugs \
             WHERE NOT EXISTS (SELECT 1 FROM releases WHERE releases.slug = slugs.digest) \
             AND NOT EXISTS (SELECT 1 FROM builds WHERE builds.slug = slugs.digest) \
             ORDER BY digest",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Delete a slug's record. [`StoreError::Conflict`] while a release or
    /// a build still names it; [`StoreError::NotFound`] when unknown.
    pub async fn forget_slug(&self, digest: &str) -> Result<(), StoreError> {
        validate::digest("slug digest", digest)?;
        let mut tx = self.write_tx().await?;
        let users: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM releases WHERE slug = $1) \
             + (SELECT COUNT(*) FROM builds WHERE slug = $1)",
        )
        .bind(digest)
        .fetch_one(&mut *tx)
        .await?;
        if users > 0 {
            return Err(StoreError::conflict(
                "slug",
                digest,
                "is still used by a release or a build",
            ));
        }
        let done = match sqlx::query("DELETE FROM slugs WHERE digest = $1")
            .bind(digest)
            .execute(&mut *tx)
            .await
        {
            Ok(done) => done,
            // A release naming it committed after our count (PostgreSQL).
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_foreign_key_violation()) =>
            {
                return Err(StoreError::conflict(
                    "slug",
                    digest,
                    "is still used by a release or a build",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("slug", digest));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The record of a slug.
    pub async fn slug(&self, digest: &str) -> Result<SlugRecord, StoreError> {
        validate::digest("slug digest", digest)?;
        let row =
            sqlx::query("SELECT digest, size, manifest, created_at FROM slugs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::not_found("slug", digest))?;
        Ok(SlugRecord {
            digest: row.try_get("digest")?,
            size: row.try_get("size")?,
            manifest_json: row.try_get("manifest")?,
            created_at: row.try_get("created_at")?,
        })
    }
}
