//! `/v1/mailboxes`: the workspace's mailboxes as the protected API shows them;
//! their rules are `crate::mailboxes::lifecycle`'s.
//!
//! A key restricted to one mailbox sees only that one; any other id, like
//! another workspace's or a made-up one, is `404 not_found`. A bad or taken
//! address is `400`.

use super::wire::{ListQuery, MailboxBody, Page};
use super::{on_conn, Node, PageRequest, V1Error};
use crate::accounts::audit::Actor;
use crate::credentials::bearer::Principal;
use crate::db;
use crate::error::Error;
use crate::mailboxes::{lifecycle, Mailbox};
use std::sync::Arc;

fn body(m: Mailbox) -> MailboxBody {
    MailboxBody {
        id: m.id,
        address: m.address,
        created_at: db::rfc3339(m.created_at),
    }
}

/// The contract's codes for what the mailbox rules answer.
fn mailbox_error(e: Error) -> V1Error {
    match e {
        Error::NotFound(_) => V1Error::NotFound("No such mailbox."),
        Error::Invalid(m) => V1Error::ParameterInvalid(format!("{m}.")),
        Error::Conflict(m) => V1Error::AddressTaken(format!("{m}.")),
        Error::Forbidden(m) => V1Error::PlanUpgradeRequired(format!("{m}.")),
        e => e.into(),
    }
}

/// `GET /v1/mailboxes`: one page, newest first.
pub async fn list<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    query: ListQuery,
) -> Result<Page<MailboxBody>, V1Error> {
    let page = PageRequest::from_query(query)?;
    let ws = caller.workspace_id().to_string();
    let only = caller.mailbox_id().map(str::to_string);
    on_conn(node, move |_, conn| {
        let after = page.starting_after.as_deref();
        let (rows, has_more) = lifecycle::page(conn, &ws, only.as_deref(), page.limit, after)
            .map_err(mailbox_error)?;
        Ok(Page {
            data: rows.into_iter().map(body).collect(),
            has_more,
        })
    })
    .await
}

/// `GET /v1/mailboxes/{id}`.
pub async fn get<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    id: String,
) -> Result<MailboxBody, V1Error> {
    let ws = caller.workspace_id().to_string();
    let only = caller.mailbox_id().map(str::to_string);
    on_conn(node, move |_, conn| {
        if only.is_some_and(|o| o != id) {
            return Err(V1Error::NotFound("No such mailbox."));
        }
        lifecycle::find_in(conn, &ws, &id)
            .map(body)
            .map_err(mailbox_error)
    })
    .await
}

/// `POST /v1/mailboxes`, by the caller from the client address `from`.
pub async fn create<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    address: String,
    from: String,
) -> Result<MailboxBody, V1Error> {
    let (ws, actor) = (caller.workspace_id().to_string(), caller.actor());
    on_conn(node, move |_, conn| {
        let by = Actor {
            id: &actor,
            client_address: Some(&from),
        };
        lifecycle::create(conn, &ws, &address, by)
            .map(body)
            .map_err(mailbox_error)
    })
    .await
}

/// `DELETE /v1/mailboxes/{id}`, by the caller from the client address `from`.
pub async fn delete<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    id: String,
    from: String,
) -> Result<(), V1Error> {
    let (ws, actor) = (caller.workspace_id().to_string(), caller.actor());
    on_conn(node, move |node, conn| {
        let by = Actor {
            id: &actor,
            client_address: Some(&from),
        };
        lifecycle::find_in(conn, &ws, &id).map_err(mailbox_error)?;
        lifecycle::delete(conn, &node.credentials().cache, &id, by)
            .map(|_| ())
            .map_err(mailbox_error)
    })
    .await
}
