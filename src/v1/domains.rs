//! `/v1/domains`: the workspace's sending domains as the protected API shows
//! them; their rules are `crate::mailboxes::domains`'.
//!
//! A key restricted to one mailbox sees no domains (`insufficient_scope`,
//! like every resource but its mailbox). Another workspace's domain, or an
//! unknown id, is `404 not_found`.

use super::wire::{DomainBody, ListQuery, Page};
use super::{on_conn, Node, PageRequest, V1Error};
use crate::accounts::audit::Actor;
use crate::credentials::bearer::Principal;
use crate::db;
use crate::error::Error;
use crate::mailboxes::domains::{self, SendingDomain, Verification};
use std::sync::Arc;

fn body(d: SendingDomain) -> DomainBody {
    DomainBody {
        txt_name: d.txt_name(),
        txt_value: d.txt_value(),
        verified_at: d.verified_at.map(db::rfc3339),
        id: d.id,
        domain: d.domain,
        status: d.status,
    }
}

fn domain_error(e: Error) -> V1Error {
    match e {
        Error::NotFound(_) => V1Error::NotFound("No such domain."),
        Error::Invalid(m) => V1Error::ParameterInvalid(format!("{m}.")),
        Error::Forbidden(m) => V1Error::PlanUpgradeRequired(format!("{m}.")),
        e => e.into(),
    }
}

/// Domains are the workspace's, never one mailbox's.
fn workspace_wide(caller: &Principal, scope: &str) -> Result<(), V1Error> {
    match caller.mailbox_id() {
        Some(_) => Err(V1Error::InsufficientScope(scope.to_string())),
        None => Ok(()),
    }
}

/// `GET /v1/domains`: one page, newest first.
pub async fn list<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    query: ListQuery,
) -> Result<Page<DomainBody>, V1Error> {
    workspace_wide(caller, "mailboxes:read")?;
    let page = PageRequest::from_query(query)?;
    let ws = caller.workspace_id().to_string();
    on_conn(node, move |_, conn| {
        let after = page.starting_after.as_deref();
        let (rows, has_more) = domains::page(conn, &ws, page.limit, after).map_err(domain_error)?;
        Ok(Page {
            data: rows.into_iter().map(body).collect(),
            has_more,
        })
    })
    .await
}

/// `POST /v1/domains`, by the caller from the client address `from`: pending.
pub async fn create<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    domain: String,
    from: String,
) -> Result<DomainBody, V1Error> {
    workspace_wide(caller, "mailboxes:write")?;
    let (ws, actor) = (caller.workspace_id().to_string(), caller.actor());
    on_conn(node, move |_, conn| {
        let by = Actor {
            id: &actor,
            client_address: Some(&from),
        };
        domains::add(conn, &ws, &domain, false, by)
            .map(body)
            .map_err(domain_error)
    })
    .await
}

/// `POST /v1/domains/{id}/verify`: `200` with the domain, or `400
/// domain_not_verified` saying what DNS answered. No connection is held
/// while DNS is asked.
pub async fn verify<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    id: String,
    from: String,
) -> Result<DomainBody, V1Error> {
    workspace_wide(caller, "mailboxes:write")?;
    let ws = caller.workspace_id().to_string();
    let step = on_conn(node, move |_, conn| {
        let d = domains::find_in(conn, &ws, &id).map_err(domain_error)?;
        domains::begin(conn, d).map_err(domain_error)
    })
    .await?;
    let d = match step {
        Verification::Done(d) => return Ok(body(d)),
        Verification::Lookup(d) => d,
    };
    let answer = node.dns().txt(&d.txt_name()).await;
    let actor = caller.actor();
    on_conn(node, move |node, conn| {
        let by = Actor {
            id: &actor,
            client_address: Some(&from),
        };
        let cache = &node.credentials().cache;
        domains::conclude(conn, cache, &d, &answer, by)
            .map(body)
            .map_err(domain_error)
    })
    .await
}
