//! Leak reports for mailbox auth keys (`kgm_…`): the store `http::leaks`
//! routes reported `kgm_` tokens to (see `credentials::leaked`).
//!
//! A leaked auth key is stopped at once on every node: it is disabled, and it
//! can never be enabled again (`auth_keys::enable` refuses a key with a leak on
//! record): its secret is public. One security-log row per key names where it
//! was found; a replayed report finds that row and changes nothing.

use crate::accounts::audit;
use crate::credentials::leaked::{self, LeakOutcome, LeakedCredentials, LeakedToken};
use crate::credentials::revocation::{self, Event};
use crate::db::schema::{mailbox_auth_keys, mailboxes};
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};

/// Who acted, in the security log.
const ACTOR: &str = crate::accounts::audit::LEAK_REPORT_ACTOR;
const ACTION: &str = "mailbox_auth_key.leaked";
/// Hashes looked up per query.
const CHUNK: usize = 400;

pub struct MailboxAuthKeyLeaks;

pub static MAILBOX_AUTH_KEYS: MailboxAuthKeyLeaks = MailboxAuthKeyLeaks;

struct Found {
    id: String,
    workspace_id: String,
    live: bool,
}

impl LeakedCredentials for MailboxAuthKeyLeaks {
    fn prefix(&self) -> &'static str {
        super::auth_keys::MAILBOX_AUTH_KEY.prefix
    }

    fn revoke_leaked(
        &self,
        conn: &mut DbConn,
        tokens: &[LeakedToken<'_>],
        reporter: Option<&str>,
    ) -> Result<LeakOutcome> {
        let mut wanted: Vec<&str> = tokens.iter().map(|t| t.token_hash).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found: HashMap<String, Found> = HashMap::new();
        for chunk in wanted.chunks(CHUNK) {
            let rows: Vec<(String, String, String, Option<i64>)> = mailbox_auth_keys::table
                .inner_join(mailboxes::table)
                .filter(mailbox_auth_keys::secret_hash.eq_any(chunk))
                .select((
                    mailbox_auth_keys::id,
                    mailboxes::workspace_id,
                    mailbox_auth_keys::secret_hash,
                    mailbox_auth_keys::disabled_at,
                ))
                .load(conn)?;
            for (id, workspace_id, hash, disabled_at) in rows {
                let live = disabled_at.is_none();
                found.insert(
                    hash,
                    Found {
                        id,
                        workspace_id,
                        live,
                    },
                );
            }
        }
        let mut outcome = LeakOutcome::default();
        let mut stopped: HashSet<String> = HashSet::new();
        let now = db::now();
        for token in tokens {
            let Some(key) = found.get(token.token_hash) else {
                outcome.real.push(false);
                continue;
            };
            outcome.real.push(true);
            if stopped.contains(&key.id) {
                continue;
            }
            if leak_on_record(conn, &key.id)? {
                continue;
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
            stopped.insert(key.id.clone());
            let event = Event::mailbox_auth_key(&key.id);
            revocation::record(conn, std::slice::from_ref(&event))?;
            audit::record_detailed(
                conn,
                &key.workspace_id,
                ACTOR,
                ACTION,
                &key.id,
                reporter,
                Some(&format!(
                    "{}{}",
                    if key.live { "" } else { "(already disabled) " },
                    leaked::detail(token.url, token.source)
                )),
            )?;
            outcome.events.push(event);
        }
        Ok(outcome)
    }
}

/// Whether a leak of this key is on record (it may then never work again).
pub fn leak_on_record(conn: &mut DbConn, key_id: &str) -> Result<bool> {
    use crate::db::schema::audit_events;
    let n: i64 = audit_events::table
        .filter(audit_events::subject.eq(key_id))
        .filter(audit_events::action.eq(ACTION))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
