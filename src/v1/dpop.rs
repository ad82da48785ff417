//! DPoP at the protected resource (RFC 9449 §7): an access token bound to a
//! key (`cnf.jkt`) is accepted only as `Authorization: DPoP <token>` with a
//! proof for this request (method, URL, token hash, the bound key, recent,
//! unseen), and only bound tokens are accepted with the `DPoP` scheme. `/v1`
//! passes its own method and URL; the gateway check passes the original
//! request's (from the forwarded headers).

use super::{on_conn, Node, V1Error};
use crate::credentials::bearer::Principal;
use crate::credentials::dpop::{self, Expected, Proven};
use std::sync::Arc;

/// What a `DPoP` presentation carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopPresented<'a> {
    pub token: &'a str,
    /// The `DPoP` header; `None` when there was none, or more than one.
    pub proof: Option<&'a str>,
    /// The method and URL of the request the proof must name.
    pub htm: &'a str,
    pub htu: &'a str,
}

const INVALID_TOKEN: V1Error = V1Error::InvalidDpop("invalid_token");
const INVALID_PROOF: V1Error = V1Error::InvalidDpop("invalid_dpop_proof");

/// Whether the credential may be used as it was presented: one signature
/// verification, and the proof's `jti` recorded (a share of one write).
pub async fn binding<N: Node>(
    node: &Arc<N>,
    principal: &Principal,
    presented: super::check::Presented<'_>,
) -> Result<(), V1Error> {
    let jkt = match principal {
        Principal::AccessToken(t) => t.jkt.as_deref(),
        Principal::ApiKey(_) => None,
    };
    let dpop = match presented {
        super::check::Presented::Dpop(d) => Some(d),
        _ => None,
    };
    let (jkt, d) = match (jkt, dpop) {
        (None, None) => return Ok(()),
        // A bound token as Bearer, or an unbound credential as DPoP.
        (Some(_), None) | (None, Some(_)) => return Err(INVALID_TOKEN),
        (Some(jkt), Some(d)) => (jkt, d),
    };
    let proof = d.proof.ok_or(INVALID_PROOF)?;
    let expected = Expected {
        htm: d.htm,
        htu: d.htu,
        access_token: Some(d.token),
        jkt: Some(jkt),
    };
    let proven = dpop::check_proof(
        &node.credentials().proof_keys,
        proof,
        &expected,
        crate::db::now(),
    )
    .map_err(|why| {
        log::debug!("DPoP proof refused: {why}");
        INVALID_PROOF
    })?;
    let fresh = record_use(node, proven).await?;
    if !fresh {
        return Err(INVALID_PROOF);
    }
    Ok(())
}

/// Records the proof's `jti` on every node's shared record before the request
/// is answered, so that a replay is refused on any node at once. The proofs
/// that arrive together share one write (`replay::Queue`): the first starts
/// it off the request's own path, each waits for its own answer.
async fn record_use<N: Node>(node: &Arc<N>, proven: Proven) -> Result<bool, V1Error> {
    use crate::credentials::replay::Queued;
    let proof_use = dpop::proof_use(&proven);
    let waiting = match node.credentials().proof_uses.enqueue(proof_use) {
        Queued::Lead(waiting) => {
            let node = node.clone();
            tokio::spawn(async move {
                // After the requests read with this one have queued theirs
                // (the worker polls its sockets first).
                tokio::task::yield_now().await;
                let drained = on_conn(&node, |node, conn| {
                    let queue = &node.credentials().proof_uses;
                    queue.drain(conn, |conn, uses| write_uses(node, conn, uses));
                    Ok(())
                })
                .await;
                if drained.is_err() {
                    node.credentials()
                        .proof_uses
                        .fail_all("no database connection for proof uses");
                }
            });
            waiting
        }
        Queued::Follow(waiting) => waiting,
        // Too many waiting: this one is recorded on its own.
        Queued::Full => {
            return on_conn(node, move |node, conn| {
                Ok(write_uses(node, conn, &[proof_use])?[0])
            })
            .await;
        }
    };
    match waiting.await {
        Ok(Ok(fresh)) => Ok(fresh),
        Ok(Err(why)) => {
            log::warn!("a DPoP proof's use was not recorded: {why}");
            Err(crate::error::Error::internal("the proof's use was not recorded").into())
        }
        Err(_) => Err(crate::error::Error::internal("the proof's use was not recorded").into()),
    }
}

/// One batch of proof uses: on SQLite in the node's shared transaction (one
/// commit for the writes that arrive together); on PostgreSQL one statement
/// of its own.
fn write_uses<N: Node>(
    node: &N,
    conn: &mut crate::db::DbConn,
    uses: &[crate::credentials::replay::Use],
) -> crate::error::Result<Vec<bool>> {
    use crate::credentials::replay::use_each;
    match (node.writes(), &*conn) {
        (Some(writes), crate::db::DbConn::Sqlite(_)) => {
            let uses = uses.to_vec();
            writes.run(conn, move |conn| use_each(conn, &uses))
        }
        (None, crate::db::DbConn::Sqlite(_)) => {
            crate::db::write_tx(conn, |conn| use_each(conn, uses))
        }
        _ => use_each(conn, uses),
    }
}
