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
        Error::NotVerified(m) => V1Error::DomainNotVerified(format!("{m}.")),
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
        let keys = &crate::apikeys::RESTRICTED_KEYS;
        lifecycle::delete(conn, &node.credentials().cache, &id, by, keys)
            .map(|_| ())
            .map_err(mailbox_error)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apikeys::Access;
    use crate::v1::check::{check, Presented};
    use crate::v1::testkit::{node, OWNER};

    #[tokio::test]
    async fn a_restricted_key_sees_only_its_mailbox() {
        let n = node();
        let mut conn = n.pool.get().unwrap();
        crate::mailboxes::domains::add(&mut conn, &n.workspace, "example.com", true, OWNER)
            .unwrap();
        let ours = lifecycle::create(&mut conn, &n.workspace, "sales@example.com", OWNER).unwrap();
        let other = lifecycle::create(&mut conn, &n.workspace, "ops@example.com", OWNER).unwrap();
        drop(conn);
        let (_, secret) = n.key_for(Access::ReadOnly, None, Some(&ours.id));
        let p = check(
            &n,
            Presented::Bearer(&secret),
            None,
            Some("mailboxes:read"),
            "any",
        )
        .await
        .expect("a restricted key reads mailboxes");

        let page = list(&n, &p, ListQuery::default()).await.unwrap();
        let ids: Vec<&str> = page.data.iter().map(|m| m.id.as_str()).collect();
        assert_eq!((ids, page.has_more), (vec![ours.id.as_str()], false));
        assert_eq!(
            get(&n, &p, ours.id.clone()).await.unwrap().address,
            "sales@example.com"
        );
        assert_eq!(
            get(&n, &p, other.id).await.unwrap_err(),
            V1Error::NotFound("No such mailbox.")
        );
        let writes = check(
            &n,
            Presented::Bearer(&secret),
            None,
            Some("mailboxes:write"),
            "any",
        )
        .await;
        assert_eq!(
            writes.unwrap_err(),
            V1Error::InsufficientScope("mailboxes:write".into())
        );
    }

    #[tokio::test]
    async fn mailbox_rules_answer_in_the_contracts_codes() {
        let n = node();
        let mut conn = n.pool.get().unwrap();
        crate::mailboxes::domains::add(&mut conn, &n.workspace, "example.com", true, OWNER)
            .unwrap();
        drop(conn);
        let (_, secret) = n.key(Access::ReadWrite, None);
        let p = check(&n, Presented::Bearer(&secret), None, None, "any")
            .await
            .unwrap();
        let from = || "192.0.2.1".to_string();
        let outside = create(&n, &p, "a@elsewhere.example".into(), from()).await;
        assert_eq!(outside.unwrap_err().code(), "domain_not_verified");
        let made = create(&n, &p, "Sales@Example.com".into(), from())
            .await
            .unwrap();
        let taken = create(&n, &p, "sales@example.COM".into(), from()).await;
        assert_eq!(taken.unwrap_err().code(), "address_taken");
        let bad = create(&n, &p, "no-at-sign".into(), from()).await;
        assert_eq!(bad.unwrap_err().code(), "parameter_invalid");
        delete(&n, &p, made.id.clone(), from()).await.unwrap();
        let gone = delete(&n, &p, made.id, from()).await;
        assert_eq!(gone.unwrap_err(), V1Error::NotFound("No such mailbox."));
    }
}
