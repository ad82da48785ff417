//! Leak reports for mailbox auth keys (`kgm_…`): the store `http::leaks`
//! routes reported `kgm_` tokens to (see `credentials::leaked`).
//!
//! A leaked auth key is stopped at once on every node: it is disabled, and it
//! can never be enabled again (`auth_keys::enable` refuses a key with a leak on
//! record): its secret is public. One security-log row per key names where it
//! was found; a replayed report finds that row and changes nothing.

use crate::credentials::leaked::{Found, LeakedCredentials, Stop, Stored};
use crate::credentials::revocation::Event;
use crate::db::schema::{mailbox_auth_keys, mailboxes};
use crate::db::DbConn;
use crate::error::Result;
use diesel::prelude::*;

const ACTION: &str = "mailbox_auth_key.leaked";

pub struct MailboxAuthKeyLeaks;

pub static MAILBOX_AUTH_KEYS: MailboxAuthKeyLeaks = MailboxAuthKeyLeaks;

impl LeakedCredentials for MailboxAuthKeyLeaks {
    fn prefix(&self) -> &'static str {
        super::auth_keys::MAILBOX_AUTH_KEY.prefix
    }

    fn action(&self) -> &'static str {
        ACTION
    }

    /// A key is live when it is not disabled.
    fn find(&self, conn: &mut DbConn, hashes: &[&str], _now: i64) -> Result<Found> {
        let rows: Vec<(String, String, String, Option<i64>)> = mailbox_auth_keys::table
            .inner_join(mailboxes::table)
            .filter(mailbox_auth_keys::secret_hash.eq_any(hashes))
            .select((
                mailbox_auth_keys::id,
                mailboxes::workspace_id,
                mailbox_auth_keys::secret_hash,
                mailbox_auth_keys::disabled_at,
            ))
            .load(conn)?;
        let mut found = Found::new();
        for (id, workspace_id, hash, disabled_at) in rows {
            let live = disabled_at.is_none();
            found.insert(
                hash,
                Stored {
                    id,
                    workspace_id,
                    live,
                },
            );
        }
        Ok(found)
    }

    /// A key already disabled is still marked leaked, once, so that it can
    /// never be enabled again.
    fn stop(&self, conn: &mut DbConn, key: &Stored, now: i64) -> Result<Option<Stop>> {
        if leak_on_record(conn, &key.id)? {
            return Ok(None);
        }
        if key.live {
            diesel::update(
                mailbox_auth_keys::table
                    .find(&key.id)
                    .filter(mailbox_auth_keys::disabled_at.is_null()),
            )
            .set(mailbox_auth_keys::disabled_at.eq(now))
            .execute(conn)?;
        }
        Ok(Some(Stop {
            event: Event::mailbox_auth_key(&key.id),
            note: if key.live { "" } else { "(already disabled) " },
        }))
    }
}

/// Whether a leak of this key is on record (it may then never work again).
pub fn leak_on_record(conn: &mut DbConn, key_id: &str) -> Result<bool> {
    crate::accounts::audit::on_record(conn, key_id, ACTION)
}
