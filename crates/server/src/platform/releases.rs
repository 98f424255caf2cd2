//! Releases: reading them, their slugs, and rolling back.

use std::path::PathBuf;

use dozen_store::{Build, Release, ReleaseStatus};

use super::{Platform, PlatformError, PlatformResult};

impl Platform {
    /// The app's releases, newest first, and the version of the live one.
    pub async fn releases(&self, app: &str) -> PlatformResult<(Vec<Release>, Option<i64>)> {
        let current = self.store.app(app).await?.current_release;
        Ok((self.store.releases(app).await?, current))
    }

    /// One release.
    pub async fn release(&self, app: &str, version: i64) -> PlatformResult<Release> {
        Ok(self.store.release(app, version).await?)
    }

    /// The manifest the build recorded beside a slug, as its JSON text.
    pub async fn slug_manifest(&self, digest: &str) -> PlatformResult<String> {
        Ok(self.store.slug(digest).await?.manifest_json)
    }

    /// The file of the slug a release runs, and its digest.
    pub async fn slug_file(&self, app: &str, version: i64) -> PlatformResult<(PathBuf, String)> {
        let r = self.store.release(app, version).await?;
        let digest = r.slug.ok_or_else(|| {
            PlatformError::NotFound(format!(
                "{app} v{} has no slug (nothing was deployed)",
                r.version
            ))
        })?;
        let path = self
            .config
            .data_dir
            .join("slugs")
            .join(format!("{digest}.tar.zst"));
        Ok((path, digest))
    }

    /// The app's builds, newest first.
    pub async fn builds(&self, app: &str) -> PlatformResult<Vec<Build>> {
        Ok(self.store.builds(app).await?)
    }

    /// A new release copying `version`'s slug and config (by default the release that was live
    /// before the current one), rolled out.
    pub async fn rollback(&self, app: &str, version: Option<i64>) -> PlatformResult<Release> {
        let name = app.to_string();
        self.locked(app, move |p| async move {
            let target = match version {
                Some(v) => v,
                None => p.rollback_target(&name).await?,
            };
            let release = p.store.rollback(&name, target).await?;
            crate::deploy::roll_out(&p, release).await
        })
        .await
    }

    /// The release that was live before the current one: the newest succeeded release older
    /// than it.
    async fn rollback_target(&self, app: &str) -> PlatformResult<i64> {
        let current = self.store.app(app).await?.current_release;
        self.store
            .releases(app)
            .await?
            .into_iter()
            .find(|r| {
                r.status == ReleaseStatus::Succeeded
                    && Some(r.version) != current
                    && current.is_none_or(|c| r.version < c)
            })
            .map(|r| r.version)
            .ok_or_else(|| {
                PlatformError::Invalid("there is no earlier release to roll back to".into())
            })
    }
}
