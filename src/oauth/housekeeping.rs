//! Housekeeping of the OAuth tables: what can no longer be used is deleted,
//! in small batches so that it never holds the write lock long.

use crate::db::schema::{access_tokens, auth_codes, consent_requests, refresh_tokens};
use crate::db::DbConn;
use crate::error::Result;
use diesel::prelude::*;

/// Rows deleted per statement.
const BATCH: i64 = 500;

/// Deletes expired codes, tokens and held consent requests; returns how many.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    let mut total = 0;
    // Codes are kept an hour past expiry so that a replay is still recognised.
    loop {
        let ids: Vec<String> = auth_codes::table
            .filter(auth_codes::expires_at.lt(now - 3600))
            .select(auth_codes::code_hash)
            .limit(BATCH)
            .load(conn)?;
        if ids.is_empty() {
            break;
        }
        total += diesel::delete(auth_codes::table.filter(auth_codes::code_hash.eq_any(&ids)))
            .execute(conn)?;
    }
    loop {
        let ids: Vec<String> = refresh_tokens::table
            .filter(refresh_tokens::expires_at.lt(now))
            .select(refresh_tokens::token_hash)
            .limit(BATCH)
            .load(conn)?;
        if ids.is_empty() {
            break;
        }
        total +=
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::token_hash.eq_any(&ids)))
                .execute(conn)?;
    }
    loop {
        let ids: Vec<String> = access_tokens::table
            .filter(access_tokens::expires_at.lt(now))
            .select(access_tokens::jti)
            .limit(BATCH)
            .load(conn)?;
        if ids.is_empty() {
            break;
        }
        total += diesel::delete(access_tokens::table.filter(access_tokens::jti.eq_any(&ids)))
            .execute(conn)?;
    }
    total += diesel::delete(consent_requests::table.filter(consent_requests::expires_at.lt(now)))
        .execute(conn)?;
    Ok(total)
}
