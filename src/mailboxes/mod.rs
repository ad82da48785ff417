//! Mailboxes: sending identities of a workspace, and the credentials outside
//! sending tools present for them over SMTP.
//!
//! - `domains`: sending domains a workspace has shown it controls (a TXT
//!   record), the only domains its mailboxes may be in;
//! - `lifecycle`: mailboxes (an address unique across the server, compared
//!   without case, in exactly one workspace): create, find, list, delete;
//! - `auth_keys`: mailbox auth keys (`kgm_…`, the API key's format with its own
//!   prefix): create, list, disable, enable, rotate, delete, and the lookup the
//!   SMTP side makes;
//! - `authenticator`: the [`crate::smtp::Authenticator`] that checks an SMTP
//!   login (address and auth key) against them, with the cache, usage counts
//!   and abuse limits of the node that runs it. The SMTP side itself, the
//!   authentication service Postfix asks when a client says `AUTH`, is the
//!   transport `crate::smtp`, which knows nothing of mailboxes.
//!
//! Every change writes its security-log row, and every change that ends a
//! credential its revocation event, inside the transaction that makes it.

pub mod auth_keys;
pub mod authenticator;
pub mod domains;
pub mod leaks;
pub mod lifecycle;

pub use auth_keys::{AuthKeyStatus, IssuedAuthKey, MailboxAuthKey};
pub use lifecycle::{Mailbox, MailboxRow};

use crate::accounts;
use crate::db::DbConn;
use crate::error::{Error, Result};

/// Mailboxes and their auth keys are part of API access: a workspace whose plan
/// lacks it can neither create them nor authenticate with them.
fn require_api_access(conn: &mut DbConn, workspace_id: &str) -> Result<accounts::Workspace> {
    let ws = accounts::find_workspace(conn, workspace_id)?;
    if !accounts::plan_includes_api(&ws.plan) {
        return Err(Error::forbidden(format!(
            "the workspace's plan ({}) does not include mailbox auth keys: upgrade required \
             (apps that people authorize work on every plan)",
            ws.plan
        )));
    }
    Ok(ws)
}
