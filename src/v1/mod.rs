//! The protected API, `/v1`: what a credential presented to it may do.
//!
//! - `check`: the check every presented credential passes (failure limits per
//!   address, the address allowlist, the revocation-feed staleness rule, the
//!   scope, usage counting), independent of any path;
//! - `resources`: tags and forms; `mailboxes`: the workspace's mailboxes as
//!   `/v1` shows them (their rules stay in `crate::mailboxes`);
//! - `wire`: the request and response shapes; `error`: [`V1Error`].
//!
//! Every function takes the [`Principal`] the check gave: the credential picks
//! the workspace, no request names one. `http::v1` parses, calls one of them
//! and maps the result.

pub mod check;
pub mod domains;
pub mod dpop;
pub mod error;
pub mod mailboxes;
pub mod resources;
pub mod wire;

pub use error::V1Error;

use crate::credentials::bearer::Principal;
use crate::credentials::Credentials;
use crate::db::{DbConn, Pool};
use crate::mailboxes::authenticator::FailureLimit;
use std::sync::Arc;
use wire::{ListQuery, WorkspaceBody};

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

/// What `/v1` uses of the node that serves it.
pub trait Node: Send + Sync + 'static {
    fn pool(&self) -> &Pool;
    fn credentials(&self) -> &Credentials;
    /// Failed bearer checks per client address; `None` when abuse limits are off.
    fn bearer_failures(&self) -> Option<&dyn FailureLimit>;
    /// Where sending domains are looked up.
    fn dns(&self) -> crate::mailboxes::domains::dns::Dns {
        crate::mailboxes::domains::dns::Dns::default()
    }

    /// The node's shared write transactions (SQLite group commit), where a
    /// DPoP proof's `jti` is recorded; `None`: each its own write.
    fn writes(&self) -> Option<&crate::db::group::Group> {
        None
    }
}

/// Runs `f` with a pooled connection off the async thread, so that only a
/// read that needs the database waits for one.
async fn on_conn<N, T, F>(node: &Arc<N>, f: F) -> Result<T, V1Error>
where
    N: Node,
    T: Send + 'static,
    F: FnOnce(&N, &mut DbConn) -> Result<T, V1Error> + Send + 'static,
{
    let node = node.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut conn = node.pool().get().map_err(crate::error::Error::from)?;
        f(&node, &mut conn)
    });
    match task.await {
        Ok(r) => r,
        Err(_) => Err(crate::error::Error::internal("a database task failed").into()),
    }
}

/// A list request's bounds: how many, and after which id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub starting_after: Option<String>,
}

impl PageRequest {
    /// `limit` a whole number from 1 to [`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]);
    /// `starting_after` an id from a previous page (ids are UUIDs), or empty.
    pub fn from_query(q: ListQuery) -> Result<PageRequest, V1Error> {
        let limit = match q.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(V1Error::ParameterInvalid(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}."
                    )))
                }
            },
        };
        let starting_after = match q.starting_after {
            None => None,
            Some(a) if a.is_empty() => None,
            Some(a) if uuid::Uuid::parse_str(&a).is_ok() => Some(a),
            Some(_) => {
                return Err(V1Error::ParameterInvalid(
                    "starting_after must be an id from a previous page.".into(),
                ))
            }
        };
        Ok(PageRequest {
            limit,
            starting_after,
        })
    }
}

/// `GET /v1/workspace`. Names never change once a workspace exists: memory
/// answers after the first read.
pub async fn workspace<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
) -> Result<WorkspaceBody, V1Error> {
    let id = caller.workspace_id().to_string();
    let cache = &node.credentials().cache;
    if let Some(name) = cache.workspace_name(&id) {
        return Ok(WorkspaceBody {
            id,
            name: name.to_string(),
        });
    }
    let ws = on_conn(node, move |_, conn| {
        Ok(crate::accounts::find_workspace(conn, &id)?)
    })
    .await?;
    cache.put_workspace_name(&ws.id, &ws.name);
    Ok(WorkspaceBody {
        id: ws.id,
        name: ws.name,
    })
}

/// A fresh node for the area's logic tests (as `oauth::logic_tests` sets one
/// up): a new SQLite database, a Pro workspace, and real abuse limits.
#[cfg(test)]
pub(crate) mod testkit {
    use super::Node;
    use crate::accounts::{self, audit::Actor, Plan};
    use crate::apikeys::{self, Access, IpAllowList, NewKey};
    use crate::credentials::cache::Bounds;
    use crate::credentials::Credentials;
    use crate::db::Pool;
    use crate::mailboxes::authenticator::FailureLimit;
    use crate::node::ratelimit::FailureLimiter;
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::time::Duration;

    /// Failures per address before it is held back.
    pub const LIMIT: u32 = 3;

    pub const OWNER: Actor<'static> = Actor {
        id: "test",
        client_address: None,
    };

    pub struct TestNode {
        pub pool: Pool,
        pub credentials: Credentials,
        pub failures: FailureLimiter,
        pub workspace: String,
        /// The database, removed when the node is dropped.
        _db: crate::db::testkit::TestDb,
    }

    impl Node for TestNode {
        fn pool(&self) -> &Pool {
            &self.pool
        }
        fn credentials(&self) -> &Credentials {
            &self.credentials
        }
        fn bearer_failures(&self) -> Option<&dyn FailureLimit> {
            Some(&self.failures)
        }
    }

    /// `stale_after`: how long the node's revocation feed counts as read.
    pub fn node_with(stale_after: Duration) -> Arc<TestNode> {
        let db = crate::db::testkit::TestDb::new();
        let pool = db.pool();
        let bounds = Bounds {
            max_age: Duration::from_secs(60),
            stale_after,
        };
        let stored = crate::credentials::Stored {
            keys: &crate::apikeys::stored::KEYS,
            tokens: &crate::oauth::authorizations::TOKENS,
        };
        let credentials = crate::credentials::testkit::credentials(stored, Some(bounds));
        credentials.cache.feed_read();
        let mut conn = pool.get().expect("connection");
        let ws = accounts::create_workspace(&mut conn, "Acme", Plan::Pro).unwrap();
        drop(conn);
        Arc::new(TestNode {
            pool,
            credentials,
            failures: FailureLimiter::new(LIMIT, 60),
            workspace: ws.id,
            _db: db,
        })
    }

    pub fn node() -> Arc<TestNode> {
        node_with(Duration::from_secs(60))
    }

    pub fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("an address"))
    }

    impl TestNode {
        /// A new key of the workspace (`allowed`: its address allowlist);
        /// returns its id and secret.
        pub fn key(&self, access: Access, allowed: Option<&str>) -> (String, String) {
            self.key_for(access, allowed, None)
        }

        /// A key restricted to one mailbox when `mailbox_id` is set.
        pub fn key_for(
            &self,
            access: Access,
            allowed: Option<&str>,
            mailbox_id: Option<&str>,
        ) -> (String, String) {
            let spec = NewKey {
                workspace_id: &self.workspace,
                name: "crm-sync",
                access,
                expires_at: None,
                allowed_ips: allowed.map(|a| IpAllowList::parse_entries(&[a]).unwrap()),
                mailbox_id,
            };
            let mut conn = self.pool.get().expect("connection");
            let issued = apikeys::create_key(&mut conn, &spec, OWNER).expect("a new key");
            (issued.key.id, issued.secret)
        }
    }
}

#[cfg(test)]
mod page_tests {
    use super::{ListQuery, PageRequest, V1Error, DEFAULT_LIMIT};

    fn page(limit: Option<&str>, after: Option<&str>) -> Result<PageRequest, V1Error> {
        PageRequest::from_query(ListQuery {
            limit: limit.map(str::to_string),
            starting_after: after.map(str::to_string),
        })
    }

    #[test]
    fn list_bounds() {
        let id = "0190a0b2-0000-7000-8000-000000000001";
        assert_eq!(page(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(page(Some("100"), Some("")).unwrap().starting_after, None);
        let after = page(Some("1"), Some(id)).unwrap().starting_after;
        assert_eq!(after.as_deref(), Some(id));
        for limit in ["0", "101", "-1", "ten", ""] {
            let e = page(Some(limit), None).unwrap_err();
            assert_eq!(e.code(), "parameter_invalid", "limit={limit:?}");
        }
        assert_eq!(
            page(None, Some("7")).unwrap_err().code(),
            "parameter_invalid"
        );
    }
}
