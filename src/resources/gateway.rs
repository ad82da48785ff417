//! The gateway check (`GET /gateway/check`), for reverse proxies in front of
//! a registered resource (nginx `auth_request`, Traefik `ForwardAuth`, Envoy
//! `ext_authz`): the route table picks the scope the original request needs,
//! then the `/v1` check itself runs (`v1::check`: failure limits, allowlists,
//! the stale-feed rule, usage), with the resource's identifier as the
//! audience. Knows no HTTP; the transport gathers what was forwarded.
//!
//! - A missing or unknown resource, or a gateway that forwarded no method or
//!   URI, is a bad request whatever the credential.
//! - The resource comes from the node's registry in memory; the database is
//!   read only when the registry has to be read again.
//! - A request matching no route, or whose path cannot be read (a broken
//!   escape, non-ASCII, too long), is refused as `/v1` refuses a missing
//!   scope, once the credential has passed: a caller without a valid
//!   credential learns nothing of the routes.

use super::registry::Snapshot;
use super::routes;
use super::{Registry, Resource};
use crate::credentials::bearer::Principal;
use crate::v1::check::{self, Presented};
use crate::v1::V1Error;
use std::net::IpAddr;
use std::sync::Arc;

/// What the gateway check uses of the node: the `/v1` check's, and the
/// registry.
pub trait Node: crate::v1::Node {
    fn resources(&self) -> &Registry;
}

/// What a reverse proxy forwarded.
#[derive(Clone, Copy, Debug)]
pub struct Forwarded<'a> {
    /// `?resource=`: the resource's identifier.
    pub resource: Option<&'a str>,
    /// `X-Forwarded-Method`, else `X-Original-Method`.
    pub method: Option<&'a str>,
    /// `X-Forwarded-Uri`, else `X-Original-URI` (a path, perhaps a query).
    pub uri: Option<&'a str>,
    pub presented: Presented<'a>,
    /// The client's address, as everywhere (`KEYGATE_TRUSTED_PROXIES`).
    pub client: Option<IpAddr>,
}

/// Who may pass.
#[derive(Debug)]
pub struct Allowed {
    pub resource: Arc<Resource>,
    pub principal: Principal,
}

/// Why not.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `400`, whatever the credential.
    BadRequest(V1Error),
    /// What `/v1` would answer, naming this resource's metadata document.
    ByResource(V1Error, String),
}

/// The registry's resources, read again off the async workers when due.
pub async fn snapshot<N: Node>(node: &Arc<N>) -> Result<Arc<Snapshot>, V1Error> {
    if let Some(s) = node.resources().cached() {
        return Ok(s);
    }
    let node = node.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut conn = node.pool().get().map_err(crate::error::Error::from)?;
        node.resources().load(&mut conn)
    });
    match task.await {
        Ok(r) => Ok(r?),
        Err(_) => Err(V1Error::InternalError),
    }
}

/// The resource `identifier` names.
pub async fn resource<N: Node>(
    node: &Arc<N>,
    identifier: Option<&str>,
) -> Result<Arc<Resource>, V1Error> {
    let Some(identifier) = identifier else {
        return Err(V1Error::ParameterMissing(
            "The resource parameter (the resource's identifier) is required.".into(),
        ));
    };
    let snapshot = snapshot(node).await?;
    snapshot.by_identifier(identifier).cloned().ok_or_else(|| {
        V1Error::ParameterInvalid("No resource is registered with this identifier.".into())
    })
}

/// The gateway check.
pub async fn check<N: Node>(node: &Arc<N>, f: Forwarded<'_>) -> Result<Allowed, Refused> {
    let resource = resource(node, f.resource)
        .await
        .map_err(Refused::BadRequest)?;
    let (Some(method), Some(uri)) = (f.method, f.uri) else {
        return Err(Refused::BadRequest(V1Error::ParameterMissing(
            "The original method and URI are required (X-Forwarded-Method and X-Forwarded-Uri, or X-Original-Method and X-Original-URI).".into(),
        )));
    };
    let refused = |e| Refused::ByResource(e, resource.id.clone());
    let audience = resource.identifier.as_str();
    let principal = match routes::route_for(&resource.routes, method, uri) {
        Ok(Some(route)) => {
            let scope = route.scope.as_deref();
            check::check(node, f.presented, f.client, scope, audience).await
        }
        // No route, or no path to match: refused once authenticated.
        Ok(None) | Err(_) => match check::authenticate(node, f.presented, f.client, audience).await
        {
            Ok(_) => Err(V1Error::NoRoute),
            Err(e) => Err(e),
        },
    }
    .map_err(refused)?;
    Ok(Allowed {
        resource,
        principal,
    })
}

#[cfg(test)]
mod tests {
    //! The gateway check without HTTP, on a fresh SQLite database: what each
    //! forwarded request gets, and that it is the `/v1` check's answer.

    use super::*;
    use crate::apikeys::Access;
    use crate::credentials::Credentials;
    use crate::db::Pool;
    use crate::mailboxes::authenticator::FailureLimit;
    use crate::resources::NewResource;
    use crate::v1::testkit::{self, ip, TestNode};
    use std::time::Duration;

    const API: &str = "https://api.example.test";

    struct Gw {
        v1: TestNode,
        registry: Registry,
    }

    impl crate::v1::Node for Gw {
        fn pool(&self) -> &Pool {
            &self.v1.pool
        }
        fn credentials(&self) -> &Credentials {
            &self.v1.credentials
        }
        fn bearer_failures(&self) -> Option<&dyn FailureLimit> {
            Some(&self.v1.failures)
        }
    }

    impl Node for Gw {
        fn resources(&self) -> &Registry {
            &self.registry
        }
    }

    fn gateway() -> (Arc<Gw>, String) {
        gateway_with(Duration::from_secs(60))
    }

    /// `stale_after`: how long the node's revocation feed counts as read.
    fn gateway_with(stale_after: Duration) -> (Arc<Gw>, String) {
        let v1 = Arc::try_unwrap(testkit::node_with(stale_after))
            .ok()
            .expect("one owner");
        let new = NewResource {
            identifier: API,
            name: "Acme API",
            routes: &[
                "GET /tags tags:read".to_string(),
                "POST /tags tags:write".to_string(),
                "* /health -".to_string(),
            ],
        };
        let mut conn = v1.pool.get().unwrap();
        let created = super::super::create(&mut conn, "https://id.example.test/v1", &new).unwrap();
        drop(conn);
        let registry = Registry::new(Duration::from_secs(60));
        (Arc::new(Gw { v1, registry }), created.resource.id)
    }

    fn forwarded<'a>(method: &'a str, uri: &'a str, key: &'a str) -> Forwarded<'a> {
        Forwarded {
            resource: Some(API),
            method: Some(method),
            uri: Some(uri),
            presented: Presented::Bearer(key),
            client: ip("198.51.100.7"),
        }
    }

    #[tokio::test]
    async fn routes_pick_the_scope_of_the_v1_check() {
        let (g, id) = gateway();
        let (key_id, key) = g.v1.key(Access::ReadOnly, None);
        let ok = check(&g, forwarded("GET", "/tags/7?x=1", &key))
            .await
            .unwrap();
        assert_eq!(ok.principal.workspace_id(), g.v1.workspace);
        assert_eq!(ok.resource.id, id);
        check(&g, forwarded("DELETE", "/health", &key))
            .await
            .expect("any credential");
        let (uses, _) = g.v1.credentials.usage.drain();
        assert_eq!(uses.get(&key_id).map(|u| u.count), Some(2));
        let by = |e| Err(Refused::ByResource(e, id.clone()));
        let write = check(&g, forwarded("POST", "/tags", &key)).await;
        assert_eq!(
            write.map(|_| ()),
            by(V1Error::InsufficientScope("tags:write".into()))
        );
        for uri in ["/forms", "/%zz", "/caf\u{e9}", "tags"] {
            let r = check(&g, forwarded("GET", uri, &key)).await;
            assert_eq!(r.map(|_| ()), by(V1Error::NoRoute), "{uri:?}");
        }
        let (uses, _) = g.v1.credentials.usage.drain();
        assert!(uses.is_empty(), "refused requests counted as uses");
        // Without a valid credential, the routes are never the answer.
        let nothing = Forwarded {
            presented: Presented::Nothing,
            ..forwarded("GET", "/forms", &key)
        };
        let unauthenticated = V1Error::InvalidApiKey {
            credential_sent: false,
        };
        assert_eq!(check(&g, nothing).await.map(|_| ()), by(unauthenticated));
        let bad = check(&g, forwarded("GET", "/%zz", "not-a-key")).await;
        let sent = V1Error::InvalidApiKey {
            credential_sent: true,
        };
        assert_eq!(bad.map(|_| ()), by(sent));
    }

    #[tokio::test]
    async fn a_missing_or_unknown_resource_is_a_bad_request() {
        let (g, _) = gateway();
        let (_, key) = g.v1.key(Access::ReadWrite, None);
        for resource in [None, Some("https://unknown.example.test")] {
            let f = Forwarded {
                resource,
                ..forwarded("GET", "/tags", &key)
            };
            assert!(matches!(check(&g, f).await, Err(Refused::BadRequest(_))));
        }
        let f = Forwarded {
            uri: None,
            ..forwarded("GET", "/tags", &key)
        };
        assert!(matches!(check(&g, f).await, Err(Refused::BadRequest(_))));
        let slash = Forwarded {
            resource: Some("https://api.example.test/"),
            ..forwarded("GET", "/tags", &key)
        };
        check(&g, slash).await.expect("one trailing slash ignored");
    }

    #[tokio::test]
    async fn a_stale_feed_is_the_v1_checks_503() {
        let (g, id) = gateway_with(Duration::from_millis(300));
        let (_, key) = g.v1.key(Access::ReadOnly, None);
        check(&g, forwarded("GET", "/tags", &key))
            .await
            .expect("fresh");
        std::thread::sleep(Duration::from_millis(400));
        let r = check(&g, forwarded("GET", "/tags", &key)).await;
        let unavailable = Refused::ByResource(V1Error::ServiceUnavailable, id);
        assert_eq!(r.map(|_| ()), Err(unavailable));
    }

    #[tokio::test]
    async fn allowlists_are_the_v1_checks() {
        let (g, id) = gateway();
        let (_, key) = g.v1.key(Access::ReadOnly, Some("192.0.2.0/24"));
        let r = check(&g, forwarded("GET", "/tags", &key)).await;
        assert_eq!(
            r.map(|_| ()),
            Err(Refused::ByResource(V1Error::IpNotAllowed, id))
        );
    }
}
