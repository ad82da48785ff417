//! DPoP at the protected resource (RFC 9449 §7): an access token bound to a
//! key (`cnf.jkt`) is accepted only as `Authorization: DPoP <token>` with a
//! proof for this request (method, URL, token hash, the bound key, recent,
//! unseen), and only bound tokens are accepted with the `DPoP` scheme. `/v1`
//! passes its own method and URL; the gateway check passes the original
//! request's (from the forwarded headers).

use super::{on_conn, Node, V1Error};
use crate::credentials::bearer::Principal;
use crate::credentials::dpop::{self, Expected};
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
/// verification, and one write for the proof's `jti`.
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
    let proven = dpop::check_proof(proof, &expected, crate::db::now()).map_err(|why| {
        log::debug!("DPoP proof refused: {why}");
        INVALID_PROOF
    })?;
    let fresh = on_conn(node, move |node, conn| {
        // SQLite: in the node's shared transaction, one commit for the proofs
        // that arrive together. PostgreSQL: one statement of its own (a
        // duplicate key would abort a surrounding transaction).
        match (node.writes(), &*conn) {
            (Some(writes), crate::db::DbConn::Sqlite(_)) => {
                Ok(writes.run(conn, move |conn| dpop::use_jti(conn, &proven))?)
            }
            _ => Ok(dpop::use_jti(conn, &proven)?),
        }
    })
    .await?;
    if !fresh {
        return Err(INVALID_PROOF);
    }
    Ok(())
}
