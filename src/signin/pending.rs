//! Sign-ins started and not yet finished (the `pending_sign_ins` table): what
//! the callback needs to finish one (the `nonce`, the PKCE verifier, where the
//! person goes next), kept server-side so that any node can take the callback.
//!
//! Each row is found by the SHA-256 of its `state` and only with the browser
//! that started it (the SHA-256 of a cookie set then), so a callback link sent
//! to someone else finishes nothing (OpenID Connect Core §3.1.2.1: `state`
//! binds the request to the browser). Taking a row deletes it: a replayed
//! callback finds nothing. Rows live [`TTL`] seconds and are pruned by
//! housekeeping; one client address holds at most [`MAX_PER_ADDRESS`].

use crate::crypto;
use crate::db::schema::pending_sign_ins;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;

/// How long a started sign-in may take, in seconds.
pub const TTL: i64 = 600;

/// The most unfinished sign-ins one client address may hold at once.
pub const MAX_PER_ADDRESS: i64 = 20;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = pending_sign_ins)]
struct Row {
    state_hash: String,
    browser_hash: String,
    nonce: String,
    pkce_verifier: String,
    next: String,
    client_address: String,
    created_at: i64,
}

/// A sign-in in progress, as the callback needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
}

/// What starting a sign-in hands the browser and the provider.
#[derive(Clone, Debug)]
pub struct Started {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The value of the cookie that binds the attempt to this browser.
    pub browser: String,
}

/// Records a new attempt for `client_address`; `None` when the address
/// already holds [`MAX_PER_ADDRESS`] live ones.
pub fn start(conn: &mut DbConn, next: &str, client_address: &str) -> Result<Option<Started>> {
    let now = db::now();
    db::write_tx(conn, |conn| {
        let live: i64 = pending_sign_ins::table
            .filter(pending_sign_ins::client_address.eq(client_address))
            .filter(pending_sign_ins::created_at.gt(now - TTL))
            .count()
            .get_result(conn)?;
        if live >= MAX_PER_ADDRESS {
            return Ok(None);
        }
        let started = Started {
            state: crypto::random_token(32),
            nonce: crypto::random_token(32),
            // 43 to 128 characters (RFC 7636 §4.1): 48 bytes give 64.
            pkce_verifier: crypto::random_token(48),
            browser: crypto::random_token(32),
        };
        diesel::insert_into(pending_sign_ins::table)
            .values(&Row {
                state_hash: crypto::sha256_hex(&started.state),
                browser_hash: crypto::sha256_hex(&started.browser),
                nonce: started.nonce.clone(),
                pkce_verifier: started.pkce_verifier.clone(),
                next: next.to_string(),
                client_address: client_address.to_string(),
                created_at: now,
            })
            .execute(conn)?;
        Ok(Some(started))
    })
}

/// Takes (deletes) the live attempt of `state` started by `browser`: at most
/// once, even when two callbacks race (the delete's row count decides).
pub fn take(conn: &mut DbConn, state: &str, browser: &str) -> Result<Option<Pending>> {
    let now = db::now();
    let key = pending_sign_ins::table
        .filter(pending_sign_ins::state_hash.eq(crypto::sha256_hex(state)))
        .filter(pending_sign_ins::browser_hash.eq(crypto::sha256_hex(browser)));
    let row: Option<Row> = key
        .clone()
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let deleted = diesel::delete(key).execute(conn)?;
    if deleted != 1 || row.created_at <= now - TTL {
        return Ok(None);
    }
    Ok(Some(Pending {
        nonce: row.nonce,
        pkce_verifier: row.pkce_verifier,
        next: row.next,
    }))
}

/// Deletes the attempts that have expired; returns how many.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    Ok(
        diesel::delete(pending_sign_ins::table.filter(pending_sign_ins::created_at.le(now - TTL)))
            .execute(conn)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_is_taken_once_and_only_by_its_browser() {
        let db = crate::db::testkit::TestDb::new();
        let mut conn = db.conn();
        let s = start(&mut conn, "/settings", "192.0.2.1").unwrap().unwrap();
        assert_eq!(take(&mut conn, &s.state, "another browser").unwrap(), None);
        assert_eq!(take(&mut conn, "another state", &s.browser).unwrap(), None);
        let p = take(&mut conn, &s.state, &s.browser).unwrap().unwrap();
        assert_eq!(p.next, "/settings");
        assert_eq!(p.nonce, s.nonce);
        assert_eq!(take(&mut conn, &s.state, &s.browser).unwrap(), None);
    }

    #[test]
    fn one_address_holds_a_bounded_number_and_expired_ones_are_pruned() {
        let db = crate::db::testkit::TestDb::new();
        let mut conn = db.conn();
        for _ in 0..MAX_PER_ADDRESS {
            assert!(start(&mut conn, "/settings", "192.0.2.1")
                .unwrap()
                .is_some());
        }
        assert!(start(&mut conn, "/settings", "192.0.2.1")
            .unwrap()
            .is_none());
        assert!(start(&mut conn, "/settings", "192.0.2.2")
            .unwrap()
            .is_some());
        assert_eq!(prune(&mut conn, db::now()).unwrap(), 0);
        let n = prune(&mut conn, db::now() + TTL).unwrap();
        assert_eq!(n, MAX_PER_ADDRESS as usize + 1);
        assert!(start(&mut conn, "/settings", "192.0.2.1")
            .unwrap()
            .is_some());
    }
}
