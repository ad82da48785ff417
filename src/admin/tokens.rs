//! Admin tokens: `kga_…` bearer tokens for `/admin/v1`, shown once and
//! stored as their SHA-256. Every request reads the token's row (no cache),
//! so a revoked token is refused by every node at its next request.

use crate::credentials::key_format::SecretFormat;
use crate::db::schema::admin_tokens;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use serde::Serialize;

pub const ADMIN_TOKEN: SecretFormat = SecretFormat { prefix: "kga_" };
/// `last_used_at` is written at most this often per token.
const LAST_USED_EVERY_SECS: i64 = 60;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = admin_tokens)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub token_hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl AdminToken {
    /// The security log's actor for changes made with this token.
    pub fn actor_id(&self) -> String {
        crate::accounts::audit::admin_token_actor(&self.id, &self.name)
    }
}

/// A token as `admin-token list` prints it.
#[derive(Serialize, Clone, Debug)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// Creates a token named `name`; answers it with the token, shown once.
pub fn create(conn: &mut DbConn, name: &str) -> Result<(AdminToken, String)> {
    let name = crate::accounts::validate_name("admin token name", name)?;
    let minted = ADMIN_TOKEN.mint();
    let row = AdminToken {
        id: db::new_id(),
        name,
        token_hash: minted.hash,
        created_at: db::now(),
        last_used_at: None,
        revoked_at: None,
    };
    diesel::insert_into(admin_tokens::table)
        .values(&row)
        .execute(conn)?;
    Ok((row, minted.secret))
}

/// The tokens not revoked, oldest first.
pub fn list(conn: &mut DbConn) -> Result<Vec<TokenView>> {
    let rows: Vec<AdminToken> = admin_tokens::table
        .filter(admin_tokens::revoked_at.is_null())
        .order(admin_tokens::id.asc())
        .select(AdminToken::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            name: t.name,
            created_at: db::rfc3339(t.created_at),
            last_used_at: t.last_used_at.map(db::rfc3339),
        })
        .collect())
}

/// Revokes a token (refused from its next request on, on every node).
pub fn revoke(conn: &mut DbConn, id: &str) -> Result<()> {
    let n = diesel::update(
        admin_tokens::table
            .find(id)
            .filter(admin_tokens::revoked_at.is_null()),
    )
    .set(admin_tokens::revoked_at.eq(db::now()))
    .execute(conn)?;
    if n == 0 {
        return Err(Error::not_found(format!("no admin token with id {id:?}")));
    }
    Ok(())
}

/// The live token a presented bearer value is, if any.
pub fn authenticate(conn: &mut DbConn, presented: &str) -> Result<Option<AdminToken>> {
    if !presented.starts_with(ADMIN_TOKEN.prefix) || presented.len() != ADMIN_TOKEN.len() {
        return Ok(None);
    }
    let hash = crate::crypto::sha256_hex(presented);
    let token: Option<AdminToken> = admin_tokens::table
        .filter(admin_tokens::token_hash.eq(&hash))
        .filter(admin_tokens::revoked_at.is_null())
        .select(AdminToken::as_select())
        .first(conn)
        .optional()?;
    let now = db::now();
    if let Some(t) = &token {
        if t.last_used_at
            .is_none_or(|at| now - at >= LAST_USED_EVERY_SECS)
        {
            diesel::update(admin_tokens::table.find(&t.id))
                .set(admin_tokens::last_used_at.eq(now))
                .execute(conn)?;
        }
    }
    Ok(token)
}
