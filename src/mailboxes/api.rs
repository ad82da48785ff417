//! `/v1/mailboxes`: the workspace's mailboxes as the protected API shows them
//! (`http::v1` maps these onto HTTP).
//! A key restricted to one mailbox sees only that one; any other id, like
//! another workspace's or a made-up one, is unknown.

use super::{lifecycle, Mailbox};
use crate::credentials::cache::CredentialCache;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
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

pub fn list(
    conn: &mut DbConn,
    workspace_id: &str,
    only: Option<&str>,
    limit: i64,
    starting_after: Option<&str>,
) -> Result<MailboxPage> {
    // The caller (`http::v1`) checked `limit` against `/v1`'s bounds.
    let limit = limit.max(1);
    let (rows, has_more) = lifecycle::page(conn, workspace_id, only, limit, starting_after)?;
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
    actor: &str,
    client_address: Option<&str>,
) -> Result<MailboxBody> {
    lifecycle::create(conn, workspace_id, address, actor, client_address).map(body)
}

pub fn delete(
    conn: &mut DbConn,
    cache: &CredentialCache,
    workspace_id: &str,
    id: &str,
    actor: &str,
    client_address: Option<&str>,
) -> Result<()> {
    lifecycle::find_in(conn, workspace_id, id)?;
    lifecycle::delete(conn, cache, id, actor, client_address).map(|_| ())
}
