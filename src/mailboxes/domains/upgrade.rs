//! The upgrade to sending domains, for data that existed before them.
//!
//! The migration (`2026-12-07-150000_domains`) does the data step in SQL, in
//! the transaction that creates the table: the domain of every existing
//! mailbox is added to the mailbox's workspace, verified on the operator's
//! authority (never looked up) when no other workspace has mailboxes in it,
//! pending in each workspace otherwise. A migration cannot log, so this check
//! runs at every start and names the domains that need attention: shared
//! ones still pending (their mailboxes keep sending until one workspace
//! verifies the domain by DNS; then the others' stop). It changes nothing.

use super::{DomainStatus, SendingDomain};
use crate::db::schema::sending_domains;
use crate::db::DbConn;
use crate::error::Result;
use diesel::prelude::*;
use std::collections::BTreeMap;

/// Who the migration names as the creator of the rows it made.
pub const UPGRADE_ACTOR: &str = "upgrade";

/// The shared domains the upgrade left pending, with their workspaces.
pub fn needing_attention(conn: &mut DbConn) -> Result<BTreeMap<String, Vec<SendingDomain>>> {
    let rows: Vec<SendingDomain> = sending_domains::table
        .filter(sending_domains::created_by.eq(UPGRADE_ACTOR))
        .filter(sending_domains::status.eq(DomainStatus::Pending.as_str()))
        .order(sending_domains::domain.asc())
        .limit(1000)
        .select(SendingDomain::as_select())
        .load(conn)?;
    let mut by_domain: BTreeMap<String, Vec<SendingDomain>> = BTreeMap::new();
    for row in rows {
        by_domain.entry(row.domain.clone()).or_default().push(row);
    }
    Ok(by_domain)
}

/// Logs each shared domain the upgrade left pending (at start).
pub fn report(conn: &mut DbConn) {
    match needing_attention(conn) {
        Ok(found) => {
            for (domain, rows) in found {
                let ids: Vec<String> = rows
                    .iter()
                    .map(|r| format!("{} (domain id {})", r.workspace_id, r.id))
                    .collect();
                log::warn!(
                    "sending domain {domain} needs attention: mailboxes of {} workspaces use it, so the \
                     upgrade added it pending to each ({}); they keep sending until one of them \
                     verifies it by DNS (keygate domain verify ID), then the others' mailboxes stop",
                    rows.len(),
                    ids.join(", ")
                );
            }
        }
        Err(e) => log::warn!("cannot list the sending domains that need attention: {e}"),
    }
}
