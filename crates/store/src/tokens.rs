//! API tokens. The store keeps a blake3 hash of each token, never the token.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::Store;
use crate::{Scope, StoreError, TokenInfo, ident, validate};

/// Shortest token [`Store::ensure_token`] accepts, in bytes.
pub const MIN_TOKEN_BYTES: usize = 16;

pub(crate) const TOKEN_COLUMNS: &str = "id, name, hash, scope, app, created_at, revoked_at";

pub(crate) fn token_from_row(row: &AnyRow) -> Result<TokenInfo, StoreError> {
    let scope: String = row.try_get("scope")?;
    Ok(TokenInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: scope.parse()?,
        app: row.try_get("app")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Create a token and return it with its plaintext (`dzn_` + 64 hex
    /// digits), which is shown once and never stored.
    /// [`StoreError::Conflict`] when a live token already has the name.
    /// The token is an admin token; [`Store::create_app_token`] makes one for one app.
    pub async fn create_token(&self, name: &str) -> Result<(TokenInfo, String), StoreError> {
        validate::token_name(name)?;
        let plaintext = ident::new_token()?;
        let mut tx = self.write_tx().await?;
        let info = insert_token(&mut tx, name, Scope::Admin, None, &plaintext).await?;
        tx.commit().await?;
        Ok((info, plaintext))
    }

    /// Create a token that may `deploy` to or `read` one existing app, and return it with its
    /// plaintext, as [`Store::create_token`] does. [`StoreError::Invalid`] for
    /// [`Scope::Admin`] (an admin token is for every app), [`StoreError::NotFound`] when the
    /// app does not exist.
    pub async fn create_app_token(
        &self,
        name: &str,
        app: &str,
        scope: Scope,
    ) -> Result<(TokenInfo, String), StoreError> {
        validate::token_name(name)?;
        validate::app_name(app)?;
        if scope == Scope::Admin {
            return Err(StoreError::invalid(
                "scope",
                "an admin token is for every app: make it without an app, or give scope deploy or read",
            ));
        }
        let plaintext = ident::new_token()?;
        let mut tx = self.write_tx().await?;
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM apps WHERE name = $1")
            .bind(app)
            .fetch_one(&mut *tx)
            .await?;
        if exists == 0 {
            return Err(StoreError::not_found("app", app));
        }
        let info = insert_token(&mut tx, name, scope, Some(app), &plaintext).await?;
        tx.commit().await?;
        Ok((info, plaintext))
    }

    /// The live token matching `presented`, or `None` when it is unknown or
    /// revoked. The lookup is by hash (it reveals nothing about stored
    /// tokens) and the hashes are compared again in constant time.
    pub async fn verify_token(&self, presented: &str) -> Result<Option<TokenInfo>, StoreError> {
        if presented.is_empty() {
            return Ok(None);
        }
        let hash = ident::token_hash(presented);
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(hash.to_hex().as_str())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let stored: String = row.try_get("hash")?;
        let matches = blake3::Hash::from_hex(stored.as_bytes()).is_ok_and(|h| h == hash); // constant time
        let info = token_from_row(&row)?;
        Ok((matches && info.revoked_at.is_none()).then_some(info))
    }

    /// Every token, live and revoked, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id");
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    /// Revoke a token by id (`tok_...`) or by the name of a live token.
    /// Revoking a revoked token by id returns it unchanged.
    pub async fn revoke_token(&self, id_or_name: &str) -> Result<TokenInfo, StoreError> {
        validate::lookup_key("token", id_or_name)?;
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1 \
             OR (name = $1 AND revoked_at IS NULL) ORDER BY created_at"
        );
        let row = sqlx::query(&sql)
            .bind(id_or_name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("token", id_or_name))?;
        let mut info = token_from_row(&row)?;
        if info.revoked_at.is_none() {
            let now = ident::now();
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
                .bind(&now)
                .bind(&info.id)
                .execute(&mut *tx)
                .await?;
            info.revoked_at = Some(now);
        }
        drop_revoked_sessions(&mut tx).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Make sure `plaintext` (from `DOZEN_API_TOKEN`) is a live token named
    /// `name`, for bootstrapping a server.
    ///
    /// - already a live token: returned as is (whatever its name);
    /// - a live token named `name` with another value (the operator rotated
    ///   the variable): that one is revoked and this one created;
    /// - this token was revoked: [`StoreError::Conflict`], because reviving
    ///   a revoked secret would undo the revocation; set a new value.
    ///
    /// The token must have at least [`MIN_TOKEN_BYTES`] bytes.
    pub async fn ensure_token(&self, name: &str, plaintext: &str) -> Result<TokenInfo, StoreError> {
        validate::token_name(name)?;
        if plaintext.len() < MIN_TOKEN_BYTES {
            return Err(StoreError::invalid(
                "token",
                format!("a token needs at least {MIN_TOKEN_BYTES} characters"),
            ));
        }
        let hash = ident::token_hash(plaintext).to_hex();
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1");
        if let Some(row) = sqlx::query(&sql)
            .bind(hash.as_str())
            .fetch_optional(&mut *tx)
            .await?
        {
            let info = token_from_row(&row)?;
            if info.revoked_at.is_some() {
                return Err(StoreError::conflict(
                    "token",
                    info.name,
                    "was revoked; set a new value (for example from `dozen tokens:create`)",
                ));
            }
            if info.scope != Scope::Admin {
                return Err(StoreError::conflict(
                    "token",
                    info.name,
                    format!(
                        "has scope {} on one app; the bootstrap token must be an admin token: set a new value",
                        info.scope
                    ),
                ));
            }
            return Ok(info);
        }
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(ident::now())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        drop_revoked_sessions(&mut tx).await?;
        let info = insert_token(&mut tx, name, Scope::Admin, None, plaintext).await?;
        tx.commit().await?;
        Ok(info)
    }
}

/// Delete the dashboard sessions of revoked tokens (they are never found anyway), inside the
/// caller's write transaction.
pub(crate) async fn drop_revoked_sessions(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM dashboard_sessions WHERE token_id IN \
         (SELECT id FROM api_tokens WHERE revoked_at IS NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Insert a live token inside the caller's write transaction.
async fn insert_token(
    conn: &mut AnyConnection,
    name: &str,
    scope: Scope,
    app: Option<&str>,
    plaintext: &str,
) -> Result<TokenInfo, StoreError> {
    let info = TokenInfo {
        id: ident::token_id()?,
        name: name.to_owned(),
        scope,
        app: app.map(str::to_owned),
        created_at: ident::now(),
        revoked_at: None,
    };
    let taken: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens WHERE name = $1 AND revoked_at IS NULL",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    if taken > 0 {
        return Err(StoreError::conflict("token", name, "already exists"));
    }
    let inserted = sqlx::query(
        "INSERT INTO api_tokens (id, name, hash, scope, app, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&info.id)
    .bind(&info.name)
    .bind(ident::token_hash(plaintext).to_hex().as_str())
    .bind(info.scope.as_str())
    .bind(info.app.as_deref())
    .bind(&info.created_at)
    .execute(&mut *conn)
    .await;
    match inserted {
        // A unique key refused it: the name (a race) or the hash (the same
        // secret twice, which only ensure_token could try).
        Err(e) if crate::error::is_unique_violation(&e) => {
            Err(StoreError::conflict("token", name, "already exists"))
        }
        Err(e) => Err(e.into()),
        Ok(_) => Ok(info),
    }
}
