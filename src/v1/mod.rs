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
