//! The security log of a workspace: who did what to which credential, when, from where.

use crate::db::schema::audit_events;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;
use serde::Serialize;

#[derive(Queryable, Selectable, Insertable, Serialize, Clone, Debug)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub workspace_id: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub client_address: Option<String>,
    pub created_at: i64,
    /// What else the event needs said, in words (a leak report's URL and source,
    /// the end of a rotation's grace period); `None` for most events.
    pub detail: Option<String>,
}

pub fn record(
    conn: &mut DbConn,
    workspace_id: &str,
    actor: &str,
    action: &str,
    subject: &str,
    client_address: Option<&str>,
) -> Result<()> {
    record_detailed(
        conn,
        workspace_id,
        actor,
        action,
        subject,
        client_address,
        None,
    )
}

/// [`record`] with a detail text.
pub fn record_detailed(
    conn: &mut DbConn,
    workspace_id: &str,
    actor: &str,
    action: &str,
    subject: &str,
    client_address: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    diesel::insert_into(audit_events::table)
        .values(&AuditEvent {
            id: db::new_id(),
            workspace_id: workspace_id.to_string(),
            actor: actor.to_string(),
            action: action.to_string(),
            subject: subject.to_string(),
            client_address: client_address.map(str::to_string),
            created_at: db::now(),
            detail: detail.map(str::to_string),
        })
        .execute(conn)?;
    Ok(())
}

/// Newest first.
pub fn list(conn: &mut DbConn, workspace_id: &str, limit: i64) -> Result<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::workspace_id.eq(workspace_id))
        .order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}
