//! Add-ons (backing services provisioned for an app) and their attachments (an add-on's URL in
//! an app's config var), with the config changes and releases they make.
//!
//! Each attach, detach and rotation is one transaction: the attachment row, the config var and
//! the new release that carries it commit together or not at all. Provisioning on the backing
//! server happens outside the store (in the server); the store only records what exists.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::Store;
use crate::{Release, StoreError, apps, ident, releases, validate};

/// An add-on: a database, cache or queue on a backing server, owned by one app and attached to
/// it and perhaps others. Its URL (a secret) is not part of it: see [`Store::addon_url`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Addon {
    /// `shop-postgresql-1`.
    pub name: String,
    /// `postgresql`, `redis`, `mysql` or `rabbitmq`.
    pub service: String,
    /// The plan it was made with.
    pub plan: String,
    /// The app that owns it (destroying it is that app's decision).
    pub app: String,
    /// Its database, user or vhost on the backing server.
    pub resource: String,
    /// When it was provisioned.
    pub created_at: String,
    /// The apps it is attached to, oldest first (the owner's first).
    pub attachments: Vec<Attachment>,
}

/// An add-on's URL in an app's config var.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    /// The add-on.
    pub addon: String,
    /// The app.
    pub app: String,
    /// The config var holding the URL (`DATABASE_URL`).
    pub var: String,
    /// When it was attached.
    pub created_at: String,
}

/// The longest add-on name.
pub const MAX_ADDON_NAME_BYTES: usize = 63;

/// What a newly provisioned add-on is recorded with.
pub struct NewAddon<'a> {
    /// Its name (`shop-postgresql-1`).
    pub name: &'a str,
    /// The service (`postgresql`, `redis`, `mysql`, `rabbitmq`).
    pub service: &'a str,
    /// The plan.
    pub plan: &'a str,
    /// The app that owns it.
    pub app: &'a str,
    /// The database, user or vhost on the backing server.
    pub resource: &'a str,
    /// The URL apps connect with: a secret.
    pub url: &'a str,
}

impl std::fmt::Debug for NewAddon<'_> {
    // The URL carries a password: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAddon")
            .field("name", &self.name)
            .field("service", &self.service)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// `^[a-z][a-z0-9-]*$`, at most [`MAX_ADDON_NAME_BYTES`].
pub(crate) fn addon_name(name: &str) -> Result<(), StoreError> {
    let ok = name.len() <= MAX_ADDON_NAME_BYTES
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "add-on name",
            format!(
                "`{}`: lower-case letters, digits and dashes, starting with a letter, at most {MAX_ADDON_NAME_BYTES} bytes",
                validate::text(name)
            ),
        ))
    }
}

fn attachment_from_row(row: &AnyRow) -> Result<Attachment, StoreError> {
    Ok(Attachment {
        addon: row.try_get("addon")?,
        app: row.try_get("app")?,
        var: row.try_get("var")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) async fn read_addon(conn: &mut AnyConnection, name: &str) -> Result<Addon, StoreError> {
    validate::lookup_key("add-on", name)?;
    let row = sqlx::query(
        "SELECT name, service, plan, app, resource, created_at FROM addons WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("add-on", name))?;
    let attachments = sqlx::query(
        "SELECT addon, app, var, created_at FROM addon_attachments WHERE addon = $1 \
         ORDER BY created_at, app",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(attachment_from_row)
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Addon {
        name: row.try_get("name")?,
        service: row.try_get("service")?,
        plan: row.try_get("plan")?,
        app: row.try_get("app")?,
        resource: row.try_get("resource")?,
        created_at: row.try_get("created_at")?,
        attachments,
    })
}

/// Inside a write transaction holding the app's lock: set and unset config vars and insert the
/// release that carries them.
async fn config_release(
    conn: &mut AnyConnection,
    app: &str,
    set: &[(&str, &str)],
    unset: &[&str],
    description: String,
) -> Result<Release, StoreError> {
    for (key, value) in set {
        validate::config_value(key, value)?;
        sqlx::query(
            "INSERT INTO config_vars (app, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
        )
        .bind(app)
        .bind(*key)
        .bind(*value)
        .execute(&mut *conn)
        .await?;
    }
    for key in unset {
        sqlx::query("DELETE FROM config_vars WHERE app = $1 AND key = $2")
            .bind(app)
            .bind(*key)
            .execute(&mut *conn)
            .await?;
    }
    let config = apps::read_config(&mut *conn, app).await?;
    let latest = releases::latest_usable_release(&mut *conn, app).await?;
    let (slug, process_types, commit) = match latest {
        Some(r) => (r.slug, r.process_types, r.commit),
        None => (None, BTreeMap::new(), None),
    };
    releases::insert_release(
        conn,
        releases::ReleaseParts {
            app,
            slug,
            config,
            process_types,
            description,
            build_id: None,
            commit,
        },
    )
    .await
}

/// `Conflict` when `var` is already a config var of `app` (set by hand or by another
/// attachment).
async fn var_is_free(conn: &mut AnyConnection, app: &str, var: &str) -> Result<(), StoreError> {
    let by: Option<String> =
        sqlx::query_scalar("SELECT addon FROM addon_attachments WHERE app = $1 AND var = $2")
            .bind(app)
            .bind(var)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(addon) = by {
        return Err(StoreError::conflict(
            "config var",
            var,
            format!("of {app} is the attachment of {addon}: choose another name with --as"),
        ));
    }
    let set: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM config_vars WHERE app = $1 AND key = $2")
            .bind(app)
            .bind(var)
            .fetch_one(&mut *conn)
            .await?;
    if set > 0 {
        return Err(StoreError::conflict(
            "config var",
            var,
            format!("is already set on {app}: unset it first, or choose another name with --as"),
        ));
    }
    Ok(())
}

async fn insert_attachment(
    conn: &mut AnyConnection,
    addon: &str,
    app: &str,
    var: &str,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO addon_attachments (addon, app, var, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(addon)
    .bind(app)
    .bind(var)
    .bind(ident::now())
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if crate::error::is_unique_violation(&e) => Err(StoreError::conflict(
            "add-on",
            addon,
            format!("is already attached to {app}"),
        )),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// The name the next add-on of `service` on `app` gets: `<app>-<service>-N`, N one past
    /// the highest in use (destroyed numbers are not reused while a higher one exists).
    pub async fn next_addon_name(&self, app: &str, service: &str) -> Result<String, StoreError> {
        validate::app_name(app)?;
        let prefix = format!("{app}-{service}-");
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM addons WHERE app = $1 AND service = $2")
                .bind(app)
                .bind(service)
                .fetch_all(&self.pool)
                .await?;
        let highest = names
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix)?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let name = format!("{prefix}{}", highest + 1);
        addon_name(&name)?;
        Ok(name)
    }

    /// Record a provisioned add-on, attach it to its app as `var` and make the release that
    /// carries the URL, in one transaction. [`StoreError::Conflict`] when the name is taken or
    /// `var` is already set on the app: nothing is written then, and the caller removes what
    /// it provisioned.
    pub async fn create_addon(
        &self,
        new: NewAddon<'_>,
        var: &str,
    ) -> Result<(Addon, Release), StoreError> {
        addon_name(new.name)?;
        validate::config_key(var)?;
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, new.app).await?;
        let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM addons WHERE name = $1")
            .bind(new.name)
            .fetch_one(&mut *tx)
            .await?;
        if taken > 0 {
            return Err(StoreError::conflict("add-on", new.name, "already exists"));
        }
        var_is_free(&mut tx, new.app, var).await?;
        let inserted = sqlx::query(
            "INSERT INTO addons (name, service, plan, app, resource, url, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new.name)
        .bind(new.service)
        .bind(new.plan)
        .bind(new.app)
        .bind(new.resource)
        .bind(new.url)
        .bind(ident::now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if crate::error::is_unique_violation(&e) => {
                return Err(StoreError::conflict("add-on", new.name, "already exists"));
            }
            Err(e) => return Err(e.into()),
        }
        insert_attachment(&mut tx, new.name, new.app, var).await?;
        let release = config_release(
            &mut tx,
            new.app,
            &[(var, new.url)],
            &[],
            format!("Attach {} as {var}", new.name),
        )
        .await?;
        let addon = read_addon(&mut tx, new.name).await?;
        tx.commit().await?;
        Ok((addon, release))
    }

    /// One add-on with its attachments.
    pub async fn addon(&self, name: &str) -> Result<Addon, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_addon(&mut conn, name).await
    }

    /// The URL of an add-on, with its password: for the server's own use (rotation, backups),
    /// never for a listing.
    pub async fn addon_url(&self, name: &str) -> Result<String, StoreError> {
        validate::lookup_key("add-on", name)?;
        sqlx::query_scalar("SELECT url FROM addons WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("add-on", name))
    }

    /// Every add-on the app owns or is attached to, by name.
    pub async fn addons_of(&self, app: &str) -> Result<Vec<Addon>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.app_exists(&mut conn, app).await?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM addons WHERE app = $1 \
             UNION SELECT addon FROM addon_attachments WHERE app = $1 ORDER BY 1",
        )
        .bind(app)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(read_addon(&mut conn, &name).await?);
        }
        Ok(out)
    }

    /// Attach an existing add-on to `app` as `var` and make the release that carries its URL.
    pub async fn attach_addon(
        &self,
        addon: &str,
        app: &str,
        var: &str,
    ) -> Result<Release, StoreError> {
        validate::config_key(var)?;
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        read_addon(&mut tx, addon).await?;
        let already: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM addon_attachments WHERE addon = $1 AND app = $2",
        )
        .bind(addon)
        .bind(app)
        .fetch_one(&mut *tx)
        .await?;
        if already > 0 {
            return Err(StoreError::conflict(
                "add-on",
                addon,
                format!("is already attached to {app}"),
            ));
        }
        var_is_free(&mut tx, app, var).await?;
        let url: String = sqlx::query_scalar("SELECT url FROM addons WHERE name = $1")
            .bind(addon)
            .fetch_one(&mut *tx)
            .await?;
        insert_attachment(&mut tx, addon, app, var).await?;
        let release = config_release(
            &mut tx,
            app,
            &[(var, &url)],
            &[],
            format!("Attach {addon} as {var}"),
        )
        .await?;
        tx.commit().await?;
        Ok(release)
    }

    /// Detach the add-on attached to `app` as `var` (its config var unset) and make the
    /// release without it. Returns the add-on's name and the release. `owner_too` allows
    /// detaching from the owning app (only destroy does that).
    pub async fn detach_addon(
        &self,
        app: &str,
        var: &str,
        owner_too: bool,
    ) -> Result<(String, Release), StoreError> {
        validate::lookup_key("attachment", var)?;
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        let addon: String =
            sqlx::query_scalar("SELECT addon FROM addon_attachments WHERE app = $1 AND var = $2")
                .bind(app)
                .bind(var)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::not_found("attachment", format!("{app} {var}")))?;
        let owner: String = sqlx::query_scalar("SELECT app FROM addons WHERE name = $1")
            .bind(&addon)
            .fetch_one(&mut *tx)
            .await?;
        if owner == app && !owner_too {
            return Err(StoreError::conflict(
                "add-on",
                addon,
                format!("belongs to {app}: destroy it instead (addons:destroy)"),
            ));
        }
        sqlx::query("DELETE FROM addon_attachments WHERE app = $1 AND var = $2")
            .bind(app)
            .bind(var)
            .execute(&mut *tx)
            .await?;
        let release =
            config_release(&mut tx, app, &[], &[var], format!("Detach {addon} ({var})")).await?;
        tx.commit().await?;
        Ok((addon, release))
    }

    /// Record an add-on's new URL (after its password changed on the server) and, for every
    /// app it is attached to, set the config var and make a release, all in one transaction.
    /// The releases, one per attached app.
    pub async fn rotate_addon(&self, name: &str, url: &str) -> Result<Vec<Release>, StoreError> {
        let mut tx = self.write_tx().await?;
        let addon = read_addon(&mut tx, name).await?;
        let mut apps: Vec<&Attachment> = addon.attachments.iter().collect();
        // Lock apps in one order, so two rotations never wait on each other.
        apps.sort_by(|a, b| a.app.cmp(&b.app));
        for a in &apps {
            self.lock_app(&mut tx, &a.app).await?;
        }
        sqlx::query("UPDATE addons SET url = $1 WHERE name = $2")
            .bind(url)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(apps.len());
        for a in apps {
            out.push(
                config_release(
                    &mut tx,
                    &a.app,
                    &[(&a.var, url)],
                    &[],
                    format!("Rotate the credentials of {name} ({})", a.var),
                )
                .await?,
            );
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Forget an add-on that is attached nowhere (the server removed it from its backing
    /// server first). [`StoreError::Conflict`] while it is still attached.
    pub async fn delete_addon(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let addon = read_addon(&mut tx, name).await?;
        if !addon.attachments.is_empty() {
            let apps: Vec<&str> = addon.attachments.iter().map(|a| a.app.as_str()).collect();
            return Err(StoreError::conflict(
                "add-on",
                name,
                format!("is attached to {}: detach it first", apps.join(", ")),
            ));
        }
        crate::addon_backups::forget(&mut tx, name).await?;
        sqlx::query("DELETE FROM addons WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Inside `destroy_app`'s transaction: refuse while the app owns add-ons; drop its
/// attachments to other apps' add-ons (its config goes with it).
pub(crate) async fn release_app(conn: &mut AnyConnection, app: &str) -> Result<(), StoreError> {
    let owned: Vec<String> =
        sqlx::query_scalar("SELECT name FROM addons WHERE app = $1 ORDER BY name")
            .bind(app)
            .fetch_all(&mut *conn)
            .await?;
    if !owned.is_empty() {
        return Err(StoreError::conflict(
            "app",
            app,
            format!(
                "owns add-ons ({}): destroy them first (addons:destroy)",
                owned.join(", ")
            ),
        ));
    }
    sqlx::query("DELETE FROM addon_attachments WHERE app = $1")
        .bind(app)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
