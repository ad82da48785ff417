//! `/v1/mailboxes`: the workspace's mailboxes as the protected API shows them
//! (`http::v1` maps these onto HTTP).
//! A key restricted to one mailbox sees only that one; any other id, like
//! another workspace's or a made-up one, is unknown.

use super::{lifecycle, Mailbox};
use crate::accounts::audit::Actor;
use crate::credentials::cache::CredentialCache;
use crate::db::schema::mailboxes;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use serde::Serialize;

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct MailboxBody {
    pub id: String,
    pub address: String,
    pub created_at: String,
}

/// `{"data": [...], "has_more": bool}`, newest first.
#[derive(Serialize, Debug)]
pub struct MailboxPage {
    pub data: Vec<MailboxBody>,
    pub has_more: bool,
}

fn body(m: Mailbox) -> MailboxBody {
    MailboxBody {
        id: m.id,
        address: m.address,
        created_at: db::rfc3339(m.created_at),
    }
}

fn unknown(id: &str) -> Error {
    Error::not_found(format!("no mailbox with id {id:?}"))
}

/// One page, newest first: `only` narrows it to the one mailbox a restricted
/// key may see.
pub fn list(
    conn: &mut DbConn,
    workspace_id: &str,
    only: Option<&str>,
    limit: i64,
    starting_after: Option<&str>,
) -> Result<MailboxPage> {
    // The caller (`http::v1`) checked `limit` against `/v1`'s bounds.
    let limit = limit.max(1);
    let mut q = mailboxes::table
        .filter(mailboxes::workspace_id.eq(workspace_id))
        .select(Mailbox::as_select())
        .order(mailboxes::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(id) = only {
        q = q.filter(mailboxes::id.eq(id.to_string()));
    }
    if let Some(after) = starting_after {
        q = q.filter(mailboxes::id.lt(after.to_string()));
    }
    let mut rows: Vec<Mailbox> = q.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(MailboxPage {
        data: rows.into_iter().map(body).collect(),
        has_more,
    })
}

pub fn get(
    conn: &mut DbConn,
    workspace_id: &str,
    only: Option<&str>,
    id: &str,
) -> Result<MailboxBody> {
    if only.is_some_and(|o| o != id) {
        return Err(unknown(id));
    }
    lifecycle::find_in(conn, workspace_id, id).map(body)
}

pub fn create(
    conn: &mut DbConn,
    workspace_id: &str,
    address: &str,
    by: Actor,
) -> Result<MailboxBody> {
    lifecycle::create(conn, workspace_id, address, by).map(body)
}

pub fn delete(
    conn: &mut DbConn,
    cache: &CredentialCache,
    workspace_id: &str,
    id: &str,
    by: Actor,
) -> Result<()> {
    lifecycle::find_in(conn, workspace_id, id)?;
    lifecycle::delete(conn, cache, id, by, &crate::apikeys::RESTRICTED_KEYS).map(|_| ())
}
