//! The check of a credential presented to the protected API (`/v1`, and any
//! gateway that asks for the same answer): who it is, whether it may be used
//! from this address and for this scope, and the counting that goes with it.
//! It knows no path and no HTTP; the transport gathers what was presented.
//!
//! - Verify first, throttle only what failed: a valid credential is never
//!   refused because of failures from the same address (many callers share one
//!   behind a proxy or NAT). An address over its limit gets `RateLimited` for
//!   further failures only (OWASP Authentication Cheat Sheet: lock-outs must
//!   not become a denial of service for others).
//! - Memory first, the database on a miss: an API key costs one hash and an
//!   indexed read, an access token one signature check.
//! - A stale revocation feed refuses every credential, good or not
//!   (`ServiceUnavailable`): memory may hold what was revoked elsewhere.
//! - The allowlist is checked after authentication, from the cached key: a
//!   valid key used from elsewhere is `IpNotAllowed`, not a failed check (and
//!   counts no failure).
//! - A check that passes the scope counts as a use of the credential.

use super::{on_conn, Node, V1Error};
use crate::credentials::bearer::{self, Lookup, Principal};
use std::net::IpAddr;
use std::sync::Arc;

/// What a request presented as its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No credential at all.
    Nothing,
    /// Something that is not a credential in the accepted form.
    Malformed,
    /// A bearer credential: an API key or an access token.
    Bearer(&'a str),
}

/// Checks `presented` from the client address `client` for `scope` (`None`:
/// any valid credential of the workspace).
pub async fn check<N: Node>(
    node: &Arc<N>,
    presented: Presented<'_>,
    client: Option<IpAddr>,
    scope: Option<&str>,
) -> Result<Principal, V1Error> {
    let credential = match presented {
        Presented::Nothing => {
            return Err(V1Error::InvalidApiKey {
                credential_sent: false,
            })
        }
        Presented::Malformed => return Err(failed(&**node, client)),
        Presented::Bearer(credential) => credential,
    };
    let m = &*crate::metrics::V1;
    let Some(principal) = verify(node, credential).await? else {
        m.invalid.inc();
        return Err(failed(&**node, client));
    };
    let allowed = principal.allows_address(client);
    m.outcome(principal.kind(), allowed).inc();
    if !allowed {
        return Err(V1Error::IpNotAllowed);
    }
    if let Some(scope) = scope.filter(|s| !principal.has_scope(s)) {
        return Err(V1Error::InsufficientScope(scope.to_string()));
    }
    bearer::record_use_from(node.credentials(), &principal, client);
    Ok(principal)
}

/// The credential if it is valid (whatever its scopes or addresses).
async fn verify<N: Node>(node: &Arc<N>, credential: &str) -> Result<Option<Principal>, V1Error> {
    let m = &*crate::metrics::V1;
    match bearer::check_cached(node.credentials(), credential) {
        Lookup::Found(p) => {
            m.cache_hit.inc();
            Ok(Some(p))
        }
        Lookup::Invalid => Ok(None),
        Lookup::Unavailable => Err(V1Error::ServiceUnavailable),
        Lookup::Miss => {
            m.cache_miss.inc();
            let credential = credential.to_string();
            on_conn(node, move |node, conn| {
                Ok(bearer::check_stored(node.credentials(), conn, &credential)?)
            })
            .await
        }
    }
}

/// A failed check, counted against the client address.
fn failed<N: Node>(node: &N, client: Option<IpAddr>) -> V1Error {
    if let Some(limit) = node.bearer_failures() {
        let address = client.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        if let Err(secs) = limit.check(&address) {
            return V1Error::RateLimited { retry_after: secs };
        }
        limit.failure(&address);
    }
    V1Error::InvalidApiKey {
        credential_sent: true,
    }
}

