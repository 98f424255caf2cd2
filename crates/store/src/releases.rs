//! Releases: numbering, snapshots, rollback, status and the live release.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::{Store, from_json, to_json};
use crate::{NewRelease, Release, ReleaseStatus, StoreError, actor, apps, ident, validate};

const RELEASE_COLUMNS: &str = "app, version, slug, config, process_types, description, status, \
                               failure_reason, build_id, created_at, source_commit, created_by";

fn release_from_row(row: &AnyRow) -> Result<Release, StoreError> {
    let status: String = row.try_get("status")?;
    let config: String = row.try_get("config")?;
    let process_types: String = row.try_get("process_types")?;
    Ok(Release {
        app: row.try_get("app")?,
        version: row.try_get("version")?,
        slug: row.try_get("slug")?,
        config: from_json("release config", &config)?,
        process_types: from_json("release process types", &process_types)?,
        description: row.try_get("description")?,
        status: ReleaseStatus::parse(&status)?,
        failure_reason: row.try_get("failure_reason")?,
        build_id: row.try_get("build_id")?,
        created_at: row.try_get("created_at")?,
        commit: row.try_get("source_commit")?,
        created_by: row.try_get("created_by")?,
    })
}

/// Everything a new release row needs; the version is allocated on insert.
pub(crate) struct ReleaseParts<'a> {
    pub app: &'a str,
    pub slug: Option<String>,
    pub config: BTreeMap<String, String>,
    pub process_types: BTreeMap<String, String>,
    pub description: String,
    pub build_id: Option<String>,
    pub commit: Option<String>,
}

/// Insert a release numbered one past the app's highest, made by whoever the current task acts
/// for ([`actor`]). The caller holds
/// the app's lock ([`Store::lock_app`]) inside the same transaction, which
/// is what keeps two writers from taking the same number; the primary key
/// (app, version) would refuse a duplicate anyway.
pub(crate) async fn insert_release(
    conn: &mut AnyConnection,
    parts: ReleaseParts<'_>,
) -> Result<Release, StoreError> {
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM releases WHERE app = $1")
        .bind(parts.app)
        .fetch_one(&mut *conn)
        .await?;
    let release = Release {
        app: parts.app.to_owned(),
        version: max.unwrap_or(0) + 1,
        slug: parts.slug,
        config: parts.config,
        process_types: parts.process_types,
        description: validate::text(&parts.description).into_owned(),
        status: ReleaseStatus::Pending,
        failure_reason: None,
        build_id: parts.build_id,
        created_at: ident::now(),
        commit: parts.commit,
        created_by: Some(validate::text(&actor::recorded()).into_owned()),
    };
    sqlx::query(
        "INSERT INTO releases (app, version, slug, config, process_types, description, status, \
         failure_reason, build_id, created_at, source_commit, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&release.app)
    .bind(release.version)
    .bind(&release.slug)
    .bind(to_json(&release.config)?)
    .bind(to_json(&release.process_types)?)
    .bind(&release.description)
    .bind(release.status.as_str())
    .bind(&release.failure_reason)
    .bind(&release.build_id)
    .bind(&release.created_at)
    .bind(&release.commit)
    .bind(&release.created_by)
    .execute(&mut *conn)
    .await?;
    Ok(release)
}

/// The newest release that did not fail: what a config change builds on.
/// A failed release's slug must not come back through `config:set`; a
/// pending one (a deploy in flight) is what the user last asked for.
pub(crate) async fn latest_usable_release(
    conn: &mut AnyConnection,
    app: &str,
) -> Result<Option<Release>, StoreError> {
    let sql = format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE app = $1 AND status <> 'failed' \
         ORDER BY version DESC LIMIT 1"
    );
    sqlx::query(&sql)
        .bind(app)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(release_from_row)
        .transpose()
}

async fn find_release(
    conn: &mut AnyConnection,
    app: &str,
    version: i64,
) -> Result<Release, StoreError> {
    let sql = format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE app = $1 AND version = $2");
    let row = sqlx::query(&sql)
        .bind(app)
        .bind(version)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found("release", format!("{app} v{version}")))?;
    release_from_row(&row)
}

/// `NotFound` unless a slug with this digest is recorded.
pub(crate) async fn slug_recorded(
    conn: &mut AnyConnection,
    digest: &str,
) -> Result<(), StoreError> {
    validate::digest("slug", digest)?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM slugs WHERE digest = $1")
        .bind(digest)
        .fetch_one(conn)
        .await?;
    if n == 0 {
        return Err(StoreError::not_found("slug", digest));
    }
    Ok(())
}

fn check_process_types(types: &BTreeMap<String, String>) -> Result<(), StoreError> {
    for (kind, command) in types {
        validate::process_type(kind)?;
        if command.trim().is_empty() || command.contains('\0') {
            return Err(StoreError::invalid(
                "process types",
                format!("the command of {kind} is empty or contains a NUL byte"),
            ));
        }
    }
    Ok(())
}

impl Store {
    /// Make release `vN+1` of `app` from `new`, with the app's current config
    /// as its snapshot, status [`ReleaseStatus::Pending`]. The slug must be
    /// recorded ([`Store::record_slug`]) and the build, if given, must be one
    /// of this app's.
    pub async fn create_release(&self, app: &str, new: NewRelease) -> Result<Release, StoreError> {
        check_process_types(&new.process_types)?;
        if let Some(commit) = &new.commit {
            validate::commit(commit)?;
        }
        if new.description.trim().is_empty() {
            return Err(StoreError::invalid(
                "description",
                "a release needs a description",
            ));
        }
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        if let Some(slug) = &new.slug {
            slug_recorded(&mut tx, slug).await?;
        }
        if let Some(id) = &new.build_id {
            validate::lookup_key("build", id)?;
            let owner: Option<String> = sqlx::query_scalar("SELECT app FROM builds WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if owner.as_deref() != Some(app) {
                return Err(StoreError::not_found("build", format!("{app} {id}")));
            }
        }
        let config = apps::read_config(&mut tx, app).await?;
        let release = insert_release(
            &mut tx,
            ReleaseParts {
                app,
                slug: new.slug,
                config,
                process_types: new.process_types,
                description: new.description,
                build_id: new.build_id,
                commit: new.commit,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(release)
    }

    /// Make a new release that copies `vto`'s slug, process types and config,
    /// and make that config the app's current config, in one transaction.
    /// Description "Rollback to vN"; status Pending like every new release.
    pub async fn rollback(&self, app: &str, to: i64) -> Result<Release, StoreError> {
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        let target = find_release(&mut tx, app, to).await?;
        apps::replace_config(&mut tx, app, &target.config).await?;
        let release = insert_release(
            &mut tx,
            ReleaseParts {
                app,
                slug: target.slug,
                config: target.config,
                process_types: target.process_types,
                description: format!("Rollback to v{to}"),
                build_id: target.build_id,
                commit: target.commit,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(release)
    }

    /// The newest release of `app` built from git commit `commit` that has a slug and did not
    /// fail in its build: what a push of a commit built before reuses. A release that failed
    /// in its release phase or rollout still has a good slug, so it counts too.
    pub async fn release_of_commit(
        &self,
        app: &str,
        commit: &str,
    ) -> Result<Option<Release>, StoreError> {
        validate::app_name(app)?;
        validate::commit(commit)?;
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app = $1 AND source_commit = $2 \
             AND slug IS NOT NULL ORDER BY version DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(app)
            .bind(commit)
            .fetch_optional(&mut *conn)
            .await?;
        if row.is_none() {
            self.app_exists(&mut conn, app).await?;
        }
        row.as_ref().map(release_from_row).transpose()
    }

    /// The app's releases, newest first.
    pub async fn releases(&self, app: &str) -> Result<Vec<Release>, StoreError> {
        // One statement, no transaction (see `Store::config`).
        validate::app_name(app)?;
        let mut conn = self.pool.acquire().await?;
        let sql =
            format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE app = $1 ORDER BY version DESC");
        let rows = sqlx::query(&sql).bind(app).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            self.app_exists(&mut conn, app).await?;
        }
        rows.iter().map(release_from_row).collect()
    }

    /// Release `vversion` of `app`.
    pub async fn release(&self, app: &str, version: i64) -> Result<Release, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.app_exists(&mut tx, app).await?;
        let release = find_release(&mut tx, app, version).await?;
        tx.commit().await?;
        Ok(release)
    }

    /// Finish a pending release: `Succeeded` or `Failed` (with a reason).
    /// Setting the status it already has is a no-op; any other change of a
    /// finished release is a [`StoreError::Conflict`]. This does not make a
    /// release live: [`Store::activate_release`] does.
    pub async fn set_release_status(
        &self,
        app: &str,
        version: i64,
        status: ReleaseStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        if status == ReleaseStatus::Pending {
            return Err(StoreError::invalid(
                "release status",
                "a release can only move from pending to succeeded or failed",
            ));
        }
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        let release = find_release(&mut tx, app, version).await?;
        if release.status == status {
            return Ok(());
        }
        if release.status != ReleaseStatus::Pending {
            return Err(StoreError::conflict(
                "release",
                format!("{app} v{version}"),
                format!("already {}", release.status),
            ));
        }
        let reason = match status {
            ReleaseStatus::Failed => reason.map(|r| validate::text(r).into_owned()),
            _ => None,
        };
        sqlx::query(
            "UPDATE releases SET status = $1, failure_reason = $2 WHERE app = $3 AND version = $4",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(app)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Make `vversion` the app's live release and mark it Succeeded, in one
    /// transaction. A failed release cannot go live ([`StoreError::Conflict`]).
    pub async fn activate_release(&self, app: &str, version: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        let release = find_release(&mut tx, app, version).await?;
        if release.status == ReleaseStatus::Failed {
            return Err(StoreError::conflict(
                "release",
                format!("{app} v{version}"),
                "failed and cannot go live",
            ));
        }
        sqlx::query("UPDATE releases SET status = $1 WHERE app = $2 AND version = $3")
            .bind(ReleaseStatus::Succeeded.as_str())
            .bind(app)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE apps SET current_release = $1 WHERE name = $2")
            .bind(version)
            .bind(app)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live release, `None` until one has been activated.
    pub async fn current_release(&self, app: &str) -> Result<Option<Release>, StoreError> {
        validate::app_name(app)?;
        let mut tx = self.pool.begin().await?;
        let current: Option<Option<i64>> =
            sqlx::query_scalar("SELECT current_release FROM apps WHERE name = $1")
                .bind(app)
                .fetch_optional(&mut *tx)
                .await?;
        let release = match current {
            None => return Err(StoreError::not_found("app", app)),
            Some(None) => None,
            Some(Some(version)) => Some(find_release(&mut tx, app, version).await?),
        };
        tx.commit().await?;
        Ok(release)
    }
}
