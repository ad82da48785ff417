//! `Idempotency-Key` on the admin API's `POST`s, scoped to the admin token and
//! the path: the first request with a key claims it (a row with no answer
//! yet); once it succeeds its answer is kept, without any secret it showed,
//! for 24 hours. The same key with the same body then answers that again and
//! changes nothing; with another body, or while the first is still running,
//! it is a conflict. A first request that fails releases the key, and so does
//! one abandoned for [`ABANDONED_SECS`] (its node died).

use crate::db::schema::idempotency_keys;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

/// How long an answer is kept.
pub const KEEP_SECS: i64 = 24 * 3600;
/// A claim with no answer after this long was abandoned (a node died
/// mid-request): the key may be used again. Every request ends far sooner.
pub const ABANDONED_SECS: i64 = 120;
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Which request: the token, the path and the key.
#[derive(Clone, Debug)]
pub struct Scope {
    pub token_id: String,
    pub path: String,
    pub key: String,
}

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Begin {
    /// The key is this request's: run it, then [`complete`] or [`release`].
    Run,
    /// The first answer: its status and body.
    Replay(u16, String),
}

/// Checks a key as sent.
pub fn check_key(raw: &str) -> Result<String> {
    let key = raw.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(key.to_string())
}

pub fn begin(conn: &mut DbConn, scope: &Scope, body: &[u8]) -> Result<Begin> {
    let body_hash = hex_sha256(body);
    let now = db::now();
    db::write_tx(conn, |conn| {
        let found: Option<(String, i32, Option<String>, i64)> = idempotency_keys::table
            .find((&scope.token_id, &scope.path, &scope.key))
            .select((
                idempotency_keys::body_hash,
                idempotency_keys::status,
                idempotency_keys::response,
                idempotency_keys::created_at,
            ))
            .first(conn)
            .optional()?;
        match found {
            Some((_, _, response, at))
                if at < now - KEEP_SECS || (response.is_none() && at < now - ABANDONED_SECS) =>
            {
                diesel::delete(idempotency_keys::table.find((
                    &scope.token_id,
                    &scope.path,
                    &scope.key,
                )))
                .execute(conn)?;
            }
            Some((hash, _, _, _)) if hash != body_hash => {
                return Err(Error::conflict(
                    "this Idempotency-Key was used with another request body",
                ))
            }
            Some((_, status, Some(response), _)) => {
                return Ok(Begin::Replay(status as u16, response))
            }
            Some(_) => {
                return Err(Error::conflict(
                    "a request with this Idempotency-Key is still being processed",
                ))
            }
            None => {}
        }
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::token_id.eq(&scope.token_id),
                idempotency_keys::path.eq(&scope.path),
                idempotency_keys::idem_key.eq(&scope.key),
                idempotency_keys::body_hash.eq(&body_hash),
                idempotency_keys::status.eq(0),
                idempotency_keys::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(Begin::Run)
    })
}

/// Keeps the first answer (already without secrets).
pub fn complete(conn: &mut DbConn, scope: &Scope, status: u16, response: &str) -> Result<()> {
    diesel::update(idempotency_keys::table.find((&scope.token_id, &scope.path, &scope.key)))
        .set((
            idempotency_keys::status.eq(i32::from(status)),
            idempotency_keys::response.eq(response),
        ))
        .execute(conn)?;
    Ok(())
}

/// Frees the key of a request that failed, so it can be tried again.
pub fn release(conn: &mut DbConn, scope: &Scope) -> Result<()> {
    diesel::delete(
        idempotency_keys::table
            .find((&scope.token_id, &scope.path, &scope.key))
            .filter(idempotency_keys::response.is_null()),
    )
    .execute(conn)?;
    Ok(())
}

pub(super) fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    Ok(diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::created_at.lt(now - KEEP_SECS)),
    )
    .execute(conn)?)
}

fn hex_sha256(body: &[u8]) -> String {
    crate::crypto::hex(&crate::crypto::sha256(body))
}
