//! The security log's names for what it does not own, asked of the areas
//! that own each table (`accounts::audit::NameSource`).

use crate::accounts::audit::{NameSource, Named};
use crate::db::DbConn;
use crate::error::Result;
use std::collections::HashMap;

/// Names from the areas' own tables.
pub struct AreaNames;

impl NameSource for AreaNames {
    fn names(
        &self,
        conn: &mut DbConn,
        what: Named,
        ids: &[String],
    ) -> Result<HashMap<String, String>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        match what {
            Named::ApiKey => crate::apikeys::names_of(conn, ids),
            Named::Authorization => crate::oauth::authorizations::app_names_of(conn, ids),
            Named::Client => crate::oauth::clients::names_of(conn, ids),
            Named::Mailbox => crate::mailboxes::lifecycle::addresses_of(conn, ids),
            Named::MailboxAuthKey => crate::mailboxes::auth_keys::names_of(conn, ids),
            Named::Domain => crate::mailboxes::domains::names_of(conn, ids),
        }
    }
}
