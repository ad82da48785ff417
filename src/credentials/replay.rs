//! Single use of JWT ids across every node (RFC 7523 §3 `jti`, RFC 9449 §11.1):
//! a client assertion, DPoP proof or identity assertion is accepted once. Each
//! use is a row keyed by the SHA-256 of its kind, issuer and `jti`, kept until
//! the JWT could no longer be accepted anyway, then pruned.

use crate::crypto;
use crate::db::schema::used_jtis;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;

/// What a `jti` was used in: each kind is its own namespace.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    ClientAssertion,
    DpopProof,
    IdentityAssertion,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::ClientAssertion => "client_assertion",
            Kind::DpopProof => "dpop",
            Kind::IdentityAssertion => "id_jag",
        }
    }
}

/// Rows deleted per statement when pruning.
const BATCH: i64 = 500;

/// Records the use of `jti` by `issuer`, kept until `expires_at`; `false`
/// when it was used before (a replay), on this node or any other.
pub fn use_once(
    conn: &mut DbConn,
    kind: Kind,
    issuer: &str,
    jti: &str,
    expires_at: i64,
) -> Result<bool> {
    let key = crypto::sha256_hex(&format!("{}\n{issuer}\n{jti}", kind.tag()));
    let inserted = diesel::insert_into(used_jtis::table)
        .values((
            used_jtis::key.eq(&key),
            used_jtis::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if db::is_unique_violation(&e) => {
            // A row left past its expiry (not yet pruned) is no replay.
            let n = diesel::update(
                used_jtis::table
                    .find(&key)
                    .filter(used_jtis::expires_at.lt(db::now())),
            )
            .set(used_jtis::expires_at.eq(expires_at))
            .execute(conn)?;
            Ok(n == 1)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the uses that have expired; returns how many.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    let mut total = 0;
    loop {
        let keys: Vec<String> = used_jtis::table
            .filter(used_jtis::expires_at.lt(now))
            .select(used_jtis::key)
            .limit(BATCH)
            .load(conn)?;
        if keys.is_empty() {
            return Ok(total);
        }
        total +=
            diesel::delete(used_jtis::table.filter(used_jtis::key.eq_any(&keys))).execute(conn)?;
    }
}
