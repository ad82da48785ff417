//! The admin API's own state: admin tokens (who may call `/admin/v1`) and
//! idempotency keys (a retried `POST` answers what the first did). What the
//! API does is the areas' (accounts, apikeys, oauth, webhooks): the same
//! functions the CLI and the settings pages call.

pub mod idempotency;
pub mod members;
pub mod people;
pub mod tokens;
pub mod workspaces;

use crate::db::DbConn;
use crate::error::Result;

/// Housekeeping: forgets idempotency keys past their 24 hours.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    idempotency::prune(conn, now)
}
