//! Revocation events: the rows through which every node (and the CLI) tells the
//! others that a credential stopped working. Each node applies its own events at
//! once and polls for the others' every `revocation_poll_ms`.

use crate::db::schema::revocation_events;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An access token (by `jti`) no longer works.
    AccessToken,
    /// An API key (by id) was revoked or rotated: drop it from every cache.
    ApiKey,
    /// A workspace's plan changed: look at its cached API keys again.
    Workspace,
    /// A mailbox auth key (by id) was disabled, rotated or deleted.
    MailboxAuthKey,
    /// A mailbox (by id) was deleted: drop every cached key of it.
    Mailbox,
}

impl EventKind {
    fn as_str(&self) -> &'static str {
        match self {
            EventKind::AccessToken => "jti",
            EventKind::ApiKey => "api_key",
            EventKind::Workspace => "workspace",
            EventKind::MailboxAuthKey => "mailbox_auth_key",
            EventKind::Mailbox => "mailbox",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "jti" => Some(EventKind::AccessToken),
            "api_key" => Some(EventKind::ApiKey),
            "workspace" => Some(EventKind::Workspace),
            "mailbox_auth_key" => Some(EventKind::MailboxAuthKey),
            "mailbox" => Some(EventKind::Mailbox),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub subject: String,
    /// After this time the event no longer matters (the token expired anyway).
    pub expires_at: i64,
}

impl Event {
    pub fn access_token(jti: &str, expires_at: i64) -> Self {
        Event {
            kind: EventKind::AccessToken,
            subject: jti.to_string(),
            expires_at,
        }
    }
    pub fn api_key(id: &str) -> Self {
        Event {
            kind: EventKind::ApiKey,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
    pub fn workspace(id: &str) -> Self {
        Event {
            kind: EventKind::Workspace,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
    pub fn mailbox_auth_key(id: &str) -> Self {
        Event {
            kind: EventKind::MailboxAuthKey,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
    pub fn mailbox(id: &str) -> Self {
        Event {
            kind: EventKind::Mailbox,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = revocation_events)]
struct NewEvent<'a> {
    kind: &'a str,
    subject: &'a str,
    expires_at: i64,
    created_at_ms: i64,
}

/// Writes events; call inside the transaction that made the change, so that the
/// events exist exactly when the change does.
pub fn record(conn: &mut DbConn, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now_ms = db::now_ms();
    // One row per statement: batch inserts do not go through a MultiConnection.
    for e in events {
        diesel::insert_into(revocation_events::table)
            .values(NewEvent {
                kind: e.kind.as_str(),
                subject: &e.subject,
                expires_at: e.expires_at,
                created_at_ms: now_ms,
            })
            .execute(conn)?;
    }
    Ok(())
}

/// Events after `after_seq`, and every event of the last few seconds again: on
/// PostgreSQL a lower sequence number can commit after a higher one, and applying
/// an event twice is harmless.
pub fn since(conn: &mut DbConn, after_seq: i64) -> Result<(Vec<Event>, i64)> {
    let recent_ms = db::now_ms() - 5_000;
    let rows: Vec<(i64, String, String, i64)> = revocation_events::table
        .filter(
            revocation_events::seq
                .gt(after_seq)
                .or(revocation_events::created_at_ms.gt(recent_ms)),
        )
        .order(revocation_events::seq.asc())
        .select((
            revocation_events::seq,
            revocation_events::kind,
            revocation_events::subject,
            revocation_events::expires_at,
        ))
        .load(conn)?;
    let max = rows
        .iter()
        .map(|r| r.0)
        .max()
        .unwrap_or(after_seq)
        .max(after_seq);
    let events = rows
        .into_iter()
        .filter_map(|(_, kind, subject, expires_at)| {
            EventKind::parse(&kind).map(|kind| Event {
                kind,
                subject,
                expires_at,
            })
        })
        .collect();
    Ok((events, max))
}

/// The newest sequence number, where a fresh node starts polling.
pub fn latest_seq(conn: &mut DbConn) -> Result<i64> {
    Ok(revocation_events::table
        .select(diesel::dsl::max(revocation_events::seq))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// Housekeeping: events older than ten minutes have been seen by every live node
/// (a node that starts later reads the authoritative rows, not the events).
pub fn prune(conn: &mut DbConn) -> Result<usize> {
    let cutoff = db::now_ms() - 600_000;
    Ok(
        diesel::delete(
            revocation_events::table.filter(revocation_events::created_at_ms.lt(cutoff)),
        )
        .execute(conn)?,
    )
}
