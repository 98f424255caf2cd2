//! Apps, their config vars, formation and domains.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::Store;
use crate::{App, Release, StoreError, ident, releases, validate};

fn app_from_row(row: &AnyRow) -> Result<App, StoreError> {
    Ok(App {
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        current_release: row.try_get("current_release")?,
    })
}

impl Store {
    /// Create an app. [`StoreError::Invalid`] for a bad name,
    /// [`StoreError::Conflict`] when the name is taken.
    pub async fn create_app(&self, name: &str) -> Result<App, StoreError> {
        validate::app_name(name)?;
        let app = App {
            name: name.to_owned(),
            created_at: ident::now(),
            current_release: None,
        };
        let mut tx = self.write_tx().await?;
        let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM apps WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if taken > 0 {
            return Err(StoreError::conflict("app", name, "already exists"));
        }
        let inserted = sqlx::query("INSERT INTO apps (name, created_at) VALUES ($1, $2)")
            .bind(name)
            .bind(&app.created_at)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            // Another writer created it between our check and our insert.
            Err(e) if crate::error::is_unique_violation(&e) => {
                return Err(StoreError::conflict("app", name, "already exists"));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(app)
    }

    /// One app, [`StoreError::NotFound`] if there is none by that name.
    pub async fn app(&self, name: &str) -> Result<App, StoreError> {
        validate::app_name(name)?;
        let row = sqlx::query("SELECT name, created_at, current_release FROM apps WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("app", name))?;
        app_from_row(&row)
    }

    /// Every app, by name.
    pub async fn apps(&self) -> Result<Vec<App>, StoreError> {
        sqlx::query("SELECT name, created_at, current_release FROM apps ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(app_from_row)
            .collect()
    }

    /// Delete an app and everything it owns (config, releases, builds,
    /// formation, domains) in one transaction, and revoke its tokens. Slugs
    /// stay: they are shared by content and their files are collected
    /// separately.
    pub async fn destroy_app(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, name).await?;
        crate::addons::release_app(&mut tx, name).await?;
        for sql in [
            "DELETE FROM domains WHERE app = $1",
            "DELETE FROM formation WHERE app = $1",
            "DELETE FROM process_sizes WHERE app = $1",
            "DELETE FROM config_vars WHERE app = $1",
            "DELETE FROM releases WHERE app = $1",
            "DELETE FROM builds WHERE app = $1",
            "DELETE FROM apps WHERE name = $1",
        ] {
            sqlx::query(sql).bind(name).execute(&mut *tx).await?;
        }
        // Its tokens stop working (and stay listed, revoked): an app made later with the same
        // name is not theirs.
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE app = $2 AND revoked_at IS NULL")
            .bind(ident::now())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        crate::tokens::drop_revoked_sessions(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The app's current config vars (what the next release will snapshot).
    pub async fn config(&self, app: &str) -> Result<BTreeMap<String, String>, StoreError> {
        // One statement, no transaction: a read needs no more, and on PostgreSQL each round trip
        // counts. Only an empty answer needs telling apart from a missing app.
        validate::app_name(app)?;
        let mut conn = self.pool.acquire().await?;
        let config = read_config(&mut conn, app).await?;
        if config.is_empty() {
            self.app_exists(&mut conn, app).await?;
        }
        Ok(config)
    }

    /// Set and unset config vars and make the new release that carries them,
    /// in one transaction. The release copies the slug and process types of
    /// the newest release that did not fail (none before the first deploy:
    /// a failed deploy's slug never comes back this way) and is
    /// [`Pending`](crate::ReleaseStatus::Pending) until the server activates it.
    ///
    /// Keys are checked with `dozen_core::name::validate_env_key`; values
    /// may not contain NUL; a key may not be both set and unset, nor set
    /// twice; at least one change is needed. Unsetting a key that is not set
    /// is allowed (Heroku does the same).
    pub async fn set_config(
        &self,
        app: &str,
        set: &[(String, String)],
        unset: &[String],
    ) -> Result<Release, StoreError> {
        if set.is_empty() && unset.is_empty() {
            return Err(StoreError::invalid("config", "nothing to set or unset"));
        }
        let mut seen = BTreeSet::new();
        for (key, value) in set {
            validate::config_key(key)?;
            validate::config_value(key, value)?;
            if !seen.insert(key.as_str()) {
                return Err(StoreError::invalid(
                    "config",
                    format!("{key} is given more than once"),
                ));
            }
        }
        for key in unset {
            validate::config_key(key)?;
            if !seen.insert(key.as_str()) {
                return Err(StoreError::invalid(
                    "config",
                    format!("{key} is both set and unset, or unset twice"),
                ));
            }
        }
        let description = config_description(set, unset);

        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        for (key, value) in set {
            sqlx::query(
                "INSERT INTO config_vars (app, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
            )
            .bind(app)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        for key in unset {
            sqlx::query("DELETE FROM config_vars WHERE app = $1 AND key = $2")
                .bind(app)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        let config = read_config(&mut tx, app).await?;
        let latest = releases::latest_usable_release(&mut tx, app).await?;
        let (slug, process_types, commit) = match latest {
            Some(r) => (r.slug, r.process_types, r.commit),
            None => (None, BTreeMap::new(), None),
        };
        let release = releases::insert_release(
            &mut tx,
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
        .await?;
        tx.commit().await?;
        Ok(release)
    }

    /// The app's formation: process type -> quantity, for every type ever
    /// scaled (quantity 0 included).
    pub async fn formation(&self, app: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.app_exists(&mut tx, app).await?;
        let formation = read_formation(&mut tx, app).await?;
        tx.commit().await?;
        Ok(formation)
    }

    /// Set quantities (absolute, not deltas) in one transaction and return
    /// the whole new formation. Process type names are checked; quantities
    /// must be within `0..=`[`MAX_QUANTITY`](crate::MAX_QUANTITY). Whether a
    /// type exists in the current release is the caller's concern.
    pub async fn scale(
        &self,
        app: &str,
        changes: &[(String, i64)],
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        if changes.is_empty() {
            return Err(StoreError::invalid("formation", "nothing to scale"));
        }
        for (kind, quantity) in changes {
            validate::process_type(kind)?;
            if !(0..=validate::MAX_QUANTITY).contains(quantity) {
                return Err(StoreError::invalid(
                    "quantity",
                    format!(
                        "{kind}={quantity}: a quantity is between 0 and {}",
                        validate::MAX_QUANTITY
                    ),
                ));
            }
        }
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        for (kind, quantity) in changes {
            sqlx::query(
                "INSERT INTO formation (app, process_type, quantity) VALUES ($1, $2, $3) \
                 ON CONFLICT (app, process_type) DO UPDATE SET quantity = excluded.quantity",
            )
            .bind(app)
            .bind(kind)
            .bind(*quantity)
            .execute(&mut *tx)
            .await?;
        }
        let formation = read_formation(&mut tx, app).await?;
        tx.commit().await?;
        Ok(formation)
    }

    /// Route `hostname` to `app`. The name is lowercased and checked (RFC
    /// 1123); adding a domain the app already has does nothing;
    /// [`StoreError::Conflict`] when another app has it.
    pub async fn add_domain(&self, app: &str, hostname: &str) -> Result<(), StoreError> {
        let host = validate::hostname(hostname)?;
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT app FROM domains WHERE hostname = $1")
                .bind(&host)
                .fetch_optional(&mut *tx)
                .await?;
        match owner {
            Some(owner) if owner == app => return Ok(()),
            Some(_) => {
                return Err(StoreError::conflict(
                    "domain",
                    host,
                    "is already routed to another app",
                ));
            }
            None => {}
        }
        let inserted =
            sqlx::query("INSERT INTO domains (hostname, app, created_at) VALUES ($1, $2, $3)")
                .bind(&host)
                .bind(app)
                .bind(ident::now())
                .execute(&mut *tx)
                .await;
        match inserted {
            Ok(_) => {}
            Err(e) if crate::error::is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "domain",
                    host,
                    "is already routed to another app",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stop routing `hostname` to `app`; [`StoreError::NotFound`] when the
    /// app does not have it.
    pub async fn remove_domain(&self, app: &str, hostname: &str) -> Result<(), StoreError> {
        let host = validate::hostname(hostname)?;
        let mut tx = self.write_tx().await?;
        self.lock_app(&mut tx, app).await?;
        let done = sqlx::query("DELETE FROM domains WHERE hostname = $1 AND app = $2")
            .bind(&host)
            .bind(app)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("domain", host));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The app's domains, sorted.
    pub async fn domains(&self, app: &str) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.app_exists(&mut tx, app).await?;
        let hosts =
            sqlx::query_scalar("SELECT hostname FROM domains WHERE app = $1 ORDER BY hostname")
                .bind(app)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(hosts)
    }

    /// Every (hostname, app) pair, sorted by hostname: the router's table.
    pub async fn all_domains(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT hostname, app FROM domains ORDER BY hostname")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// `NotFound` unless the app exists (no lock).
    pub(crate) async fn app_exists(
        &self,
        conn: &mut sqlx::AnyConnection,
        app: &str,
    ) -> Result<(), StoreError> {
        validate::app_name(app)?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM apps WHERE name = $1")
            .bind(app)
            .fetch_one(conn)
            .await?;
        if n == 0 {
            Err(StoreError::not_found("app", app))
        } else {
            Ok(())
        }
    }
}

pub(crate) async fn read_config(
    conn: &mut sqlx::AnyConnection,
    app: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    let rows = sqlx::query("SELECT key, value FROM config_vars WHERE app = $1")
        .bind(app)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Replace the app's whole config (rollback).
pub(crate) async fn replace_config(
    conn: &mut sqlx::AnyConnection,
    app: &str,
    config: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM config_vars WHERE app = $1")
        .bind(app)
        .execute(&mut *conn)
        .await?;
    for (key, value) in config {
        sqlx::query("INSERT INTO config_vars (app, key, value) VALUES ($1, $2, $3)")
            .bind(app)
            .bind(key)
            .bind(value)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn read_formation(
    conn: &mut sqlx::AnyConnection,
    app: &str,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows = sqlx::query("SELECT process_type, quantity FROM formation WHERE app = $1")
        .bind(app)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// "Set A, B", "Unset C", "Set A; unset C".
fn config_description(set: &[(String, String)], unset: &[String]) -> String {
    let set_keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
    let unset_keys: Vec<&str> = unset.iter().map(String::as_str).collect();
    match (set_keys.is_empty(), unset_keys.is_empty()) {
        (false, true) => format!("Set {}", set_keys.join(", ")),
        (true, false) => format!("Unset {}", unset_keys.join(", ")),
        _ => format!(
            "Set {}; unset {}",
            set_keys.join(", "),
            unset_keys.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_keys_only() {
        let set = vec![
            ("A".to_owned(), "secret".to_owned()),
            ("B".to_owned(), "x".to_owned()),
        ];
        assert_eq!(config_description(&set, &[]), "Set A, B");
        assert_eq!(config_description(&[], &["C".to_owned()]), "Unset C");
        assert_eq!(
            config_description(&set[..1], &["C".to_owned()]),
            "Set A; unset C"
        );
    }
}
