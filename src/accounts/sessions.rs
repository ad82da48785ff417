//! People's sign-in sessions: a random id in an HttpOnly cookie, stored only as
//! its SHA-256, with a CSRF token for the forms of that session.

use crate::accounts::{self, User};
use crate::crypto;
use crate::db::schema::sessions;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Starts a session; returns the cookie value (shown nowhere else).
pub fn start(conn: &mut DbConn, user_id: &str, ttl: i64) -> Result<(String, Session)> {
    let cookie = crypto::random_token(32);
    let now = db::now();
    let session = Session {
        id_hash: crypto::sha256_hex(&cookie),
        user_id: user_id.to_string(),
        csrf_token: crypto::random_token(24),
        created_at: now,
        expires_at: now + ttl,
    };
    diesel::insert_into(sessions::table)
        .values(&session)
        .execute(conn)?;
    Ok((cookie, session))
}

/// The live session and its person for a cookie value.
pub fn resolve(conn: &mut DbConn, cookie: &str) -> Result<Option<(Session, User)>> {
    let hash = crypto::sha256_hex(cookie);
    let session: Option<Session> = sessions::table
        .find(&hash)
        .select(Session::as_select())
        .first(conn)
        .optional()?;
    let Some(session) = session.filter(|s| s.expires_at > db::now()) else {
        return Ok(None);
    };
    // A disabled person's sessions end when they are disabled; this check
    // holds even for one started a moment before.
    // A person gone is no session; a database that fails is an error, not
    // a signed-out page.
    let user = match accounts::find_user(conn, &session.user_id) {
        Ok(user) => Some(user).filter(User::may_sign_in),
        Err(crate::error::Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    Ok(user.map(|u| (session, u)))
}

pub fn end(conn: &mut DbConn, id_hash: &str) -> Result<()> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

/// Deletes the sessions that have ended; returns how many.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.lt(now))).execute(conn)?)
}

/// Ends every session of a person (disabled or deleted).
pub fn end_all_of(conn: &mut DbConn, user_id: &str) -> Result<usize> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}
