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
use crate::credentials::address::address_bucket;
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
    /// `Authorization: DPoP <token>` with the request's proof (RFC 9449 §7).
    Dpop(super::dpop::DpopPresented<'a>),
}

/// Checks `presented` from the client address `client` for `scope` (`None`:
/// any valid credential of the workspace) at the resource `audience` (`/v1`'s
/// `{issuer}/v1`, or a registered resource's identifier).
pub async fn check<N: Node>(
    node: &Arc<N>,
    presented: Presented<'_>,
    client: Option<IpAddr>,
    scope: Option<&str>,
    audience: &str,
) -> Result<Principal, V1Error> {
    let principal = authenticate(node, presented, client, audience).await?;
    if let Some(scope) = scope.filter(|s| !principal.has_scope(s)) {
        return Err(V1Error::InsufficientScope(scope.to_string()));
    }
    bearer::record_use_from(node.credentials(), &principal, client);
    Ok(principal)
}

/// The check without a scope and without counting a use: the credential is
/// valid, accepted at `audience` and allowed from `client`. A gateway whose
/// request matches no route refuses what passes this.
pub async fn authenticate<N: Node>(
    node: &Arc<N>,
    presented: Presented<'_>,
    client: Option<IpAddr>,
    audience: &str,
) -> Result<Principal, V1Error> {
    let credential = match presented {
        Presented::Nothing => {
            return Err(V1Error::InvalidApiKey {
                credential_sent: false,
            })
        }
        Presented::Malformed => return Err(failed(&**node, client)),
        Presented::Bearer(credential) => credential,
        Presented::Dpop(d) => d.token,
    };
    let m = &*crate::metrics::V1;
    let Some(principal) = verify(node, credential).await? else {
        m.invalid.inc();
        return Err(failed(&**node, client));
    };
    // A token issued for another resource is no credential here, but no
    // failure of the caller's either (RFC 8707 §2, RFC 9068 §4).
    if !principal.serves(audience) {
        m.invalid.inc();
        return Err(V1Error::InvalidApiKey {
            credential_sent: true,
        });
    }
    super::dpop::binding(node, &principal, presented).await?;
    let allowed = principal.allows_address(client);
    m.outcome(principal.kind(), allowed).inc();
    if !allowed {
        return Err(V1Error::IpNotAllowed);
    }
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

/// A failed check, counted against the client address (an IPv6 /64 as one).
fn failed<N: Node>(node: &N, client: Option<IpAddr>) -> V1Error {
    if let Some(limit) = node.bearer_failures() {
        let address = client.map_or_else(|| "unknown".to_string(), address_bucket);
        if let Err(secs) = limit.check(&address) {
            return V1Error::RateLimited { retry_after: secs };
        }
        limit.failure(&address);
    }
    V1Error::InvalidApiKey {
        credential_sent: true,
    }
}

#[cfg(test)]
mod tests {
    //! The check without HTTP, on a fresh SQLite database: every outcome a
    //! gateway would see as well.

    use super::{check, Presented};
    use crate::apikeys::{self, Access};
    use crate::credentials::bearer::Principal;
    use crate::v1::testkit::{ip, node, node_with, TestNode, LIMIT, OWNER};
    use crate::v1::V1Error;
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::time::Duration;

    const FROM: &str = "198.51.100.7";
    /// The audience `/v1` checks for (API keys serve every audience).
    const V1: &str = "https://id.example.test/v1";

    async fn run(
        n: &Arc<TestNode>,
        credential: &str,
        scope: Option<&str>,
    ) -> Result<Principal, V1Error> {
        check(n, Presented::Bearer(credential), ip(FROM), scope, V1).await
    }

    fn uses(n: &TestNode, id: &str) -> Option<(i64, Option<IpAddr>)> {
        let (keys, _) = n.credentials.usage.drain();
        keys.get(id).map(|u| (u.count, u.last_ip))
    }

    #[tokio::test]
    async fn a_valid_key_with_the_scope_passes_and_counts_one_use() {
        let n = node();
        let (id, secret) = n.key(Access::ReadWrite, None);
        for _ in 0..2 {
            // The first from the database, the second from memory.
            let p = run(&n, &secret, Some("tags:write")).await.expect("passes");
            assert_eq!(p.workspace_id(), n.workspace);
            assert_eq!(uses(&n, &id), Some((1, ip(FROM))));
        }
        run(&n, &secret, None).await.expect("any valid credential");
    }

    #[tokio::test]
    async fn a_key_without_the_scope_is_insufficient_scope_and_no_use() {
        let n = node();
        let (id, secret) = n.key(Access::ReadOnly, None);
        assert_eq!(
            run(&n, &secret, Some("tags:write")).await.unwrap_err(),
            V1Error::InsufficientScope("tags:write".into())
        );
        assert_eq!(uses(&n, &id), None);
        run(&n, &secret, Some("tags:read"))
            .await
            .expect("a read scope");
    }

    #[tokio::test]
    async fn nothing_presented_is_unauthenticated_and_counts_no_failure() {
        let n = node();
        for _ in 0..LIMIT * 2 {
            let r = check(&n, Presented::Nothing, ip(FROM), Some("tags:read"), V1).await;
            assert_eq!(
                r.unwrap_err(),
                V1Error::InvalidApiKey {
                    credential_sent: false
                }
            );
        }
        assert!(n.failures.check(FROM).is_ok());
    }

    #[tokio::test]
    async fn failures_are_limited_per_address_but_never_refuse_a_valid_key() {
        let n = node();
        let (_, secret) = n.key(Access::ReadOnly, None);
        let sent = V1Error::InvalidApiKey {
            credential_sent: true,
        };
        // Another last character (one that was `x` already would leave the
        // key as it is: this test failed once in about 60 runs so).
        let last = if secret.ends_with('x') { 'y' } else { 'x' };
        let unknown = format!("{}{last}", &secret[..secret.len() - 1]);
        assert_eq!(run(&n, &unknown, None).await.unwrap_err(), sent);
        assert_eq!(run(&n, "not-a-key", None).await.unwrap_err(), sent);
        let r = check(&n, Presented::Malformed, ip(FROM), None, V1).await;
        assert_eq!(r.unwrap_err(), sent);
        assert!(matches!(
            run(&n, "not-a-key", None).await.unwrap_err(),
            V1Error::RateLimited { retry_after } if retry_after >= 1
        ));
        run(&n, &secret, Some("tags:read"))
            .await
            .expect("the right key still passes");
        let elsewhere = check(
            &n,
            Presented::Bearer("not-a-key"),
            ip("192.0.2.1"),
            None,
            V1,
        )
        .await;
        assert_eq!(
            elsewhere.unwrap_err(),
            sent,
            "another address is not held back"
        );
    }

    #[tokio::test]
    async fn an_ipv6_64_counts_as_one_address() {
        let n = node();
        for i in 1..=LIMIT {
            let from = ip(&format!("2001:db8:5:6::{i:x}"));
            let r = check(&n, Presented::Bearer("not-a-key"), from, None, V1).await;
            assert!(matches!(r.unwrap_err(), V1Error::InvalidApiKey { .. }));
        }
        let same_64 = check(
            &n,
            Presented::Bearer("not-a-key"),
            ip("2001:db8:5:6:ff::1"),
            None,
            V1,
        );
        assert!(matches!(
            same_64.await.unwrap_err(),
            V1Error::RateLimited { .. }
        ));
        let next_64 = check(
            &n,
            Presented::Bearer("not-a-key"),
            ip("2001:db8:5:7::1"),
            None,
            V1,
        );
        assert!(matches!(
            next_64.await.unwrap_err(),
            V1Error::InvalidApiKey { .. }
        ));
    }

    #[tokio::test]
    async fn a_key_outside_its_allowlist_is_refused_without_a_failure() {
        let n = node();
        let (id, secret) = n.key(Access::ReadOnly, Some("192.0.2.0/24"));
        for _ in 0..LIMIT * 2 {
            let r = run(&n, &secret, Some("tags:read")).await;
            assert_eq!(r.unwrap_err(), V1Error::IpNotAllowed);
        }
        assert!(n.failures.check(FROM).is_ok(), "counted as failures");
        assert_eq!(uses(&n, &id), None);
        let inside = check(&n, Presented::Bearer(&secret), ip("192.0.2.9"), None, V1).await;
        inside.expect("from inside the allowlist");
    }

    #[tokio::test]
    async fn a_revoked_key_is_refused_at_once() {
        let n = node();
        let (id, secret) = n.key(Access::ReadOnly, None);
        run(&n, &secret, None).await.expect("cached");
        apikeys::revoke(&mut n.pool.get().unwrap(), &n.credentials.cache, &id, OWNER).unwrap();
        let r = run(&n, &secret, None).await;
        assert_eq!(
            r.unwrap_err(),
            V1Error::InvalidApiKey {
                credential_sent: true
            }
        );
    }

    #[tokio::test]
    async fn a_stale_revocation_feed_refuses_every_credential() {
        let n = node_with(Duration::from_millis(200));
        let (_, secret) = n.key(Access::ReadOnly, None);
        std::thread::sleep(Duration::from_millis(300));
        for credential in [secret.as_str(), "not-a-key"] {
            let r = run(&n, credential, None).await;
            assert_eq!(r.unwrap_err(), V1Error::ServiceUnavailable);
        }
        assert!(n.failures.check(FROM).is_ok());
        n.credentials.cache.feed_read();
        run(&n, &secret, None)
            .await
            .expect("served again once the feed is read");
    }
}
