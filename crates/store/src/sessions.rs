//! Dashboard sessions: what a browser holds instead of an API token, kept in the store so that
//! they outlive a server restart.
//!
//! A session id is 32 random bytes (64 hex digits) that only the browser keeps (in its cookie);
//! the store keeps the id's blake3 hash, the token it was opened with (by id, never the token
//! itself), and its expiry. A session is found only while it has not expired and its token is
//! live: revoking a token ends its sessions at once (and deletes them).
//!
//! Bounded: at most [`MAX_SESSIONS`] rows. Opening one more first deletes the expired ones, then
//! the ones closest to expiring.

use std::time::Duration;

use sqlx::Row;

use crate::store::Store;
use crate::{StoreError, TokenInfo, ident};

/// The most sessions kept at once.
pub const MAX_SESSIONS: usize = 1024;

/// An open session, as [`Store::session`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The live token it was opened with.
    pub token: TokenInfo,
    /// When it was opened (RFC 3339, UTC).
    pub created_at: String,
    /// When it ends (RFC 3339, UTC).
    pub expires_at: String,
}

fn session_hash(id: &str) -> String {
    blake3::hash(id.as_bytes()).to_hex().to_string()
}

/// `ttl` from now, as stored.
fn expiry(ttl: Duration) -> Result<String, StoreError> {
    let ttl = jiff::SignedDuration::try_from(ttl)
        .map_err(|_| StoreError::invalid("ttl", "a session lasts at most a few years"))?;
    let at = jiff::Timestamp::now()
        .checked_add(ttl)
        .map_err(|_| StoreError::invalid("ttl", "a session lasts at most a few years"))?;
    Ok(format!("{at:.6}"))
}

impl Store {
    /// Open a session for the live token with id `token_id`, lasting `ttl`: its id (the
    /// browser's secret, not stored) and the session. [`StoreError::NotFound`] when the token
    /// is unknown or revoked.
    pub async fn open_session(
        &self,
        token_id: &str,
        ttl: Duration,
    ) -> Result<(String, SessionRecord), StoreError> {
        let id = ident::session_id()?;
        let created_at = ident::now();
        let expires_at = expiry(ttl)?;
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "SELECT {} FROM api_tokens WHERE id = $1 AND revoked_at IS NULL",
            crate::tokens::TOKEN_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(token_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("token", token_id))?;
        let token = crate::tokens::token_from_row(&row)?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
            .bind(&created_at)
            .execute(&mut *tx)
            .await?;
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dashboard_sessions")
            .fetch_one(&mut *tx)
            .await?;
        let over = kept + 1 - MAX_SESSIONS as i64;
        if over > 0 {
            sqlx::query(
                "DELETE FROM dashboard_sessions WHERE hash IN \
                 (SELECT hash FROM dashboard_sessions ORDER BY expires_at, created_at LIMIT $1)",
            )
            .bind(over)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO dashboard_sessions (hash, token_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(session_hash(&id))
        .bind(&token.id)
        .bind(&created_at)
        .bind(&expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((
            id,
            SessionRecord {
                token,
                created_at,
                expires_at,
            },
        ))
    }

    /// The session with id `id`, while it has not expired and its token is live.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        if id.is_empty() || id.len() > 128 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT t.id AS id, t.name AS name, t.hash AS hash, t.scope AS scope, t.app AS app, \
             t.created_at AS created_at, t.revoked_at AS revoked_at, \
             s.created_at AS session_created_at, s.expires_at AS expires_at \
             FROM dashboard_sessions s JOIN api_tokens t ON t.id = s.token_id \
             WHERE s.hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL",
        )
        .bind(session_hash(id))
        .bind(ident::now())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(SessionRecord {
            token: crate::tokens::token_from_row(&row)?,
            created_at: row.try_get("session_created_at")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// End the session with id `id` (a logout): whether there was one.
    pub async fn close_session(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM dashboard_sessions WHERE hash = $1")
            .bind(session_hash(id))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many sessions are kept (expired ones included until the next login removes them).
    pub async fn session_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM dashboard_sessions")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
