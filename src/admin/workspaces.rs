//! Changing and deleting a workspace: what follows for its credentials.

use crate::accounts::{self, audit::Actor, directory, Plan, Workspace};
use crate::credentials::cache::CredentialCache;
use crate::credentials::revocation::{self, Event};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};

/// Renames a workspace and/or changes its plan (which every node applies to
/// its cached keys at once, as `workspace set-plan` does); logged as
/// `workspace.updated`.
pub fn update(
    conn: &mut DbConn,
    id: &str,
    name: Option<&str>,
    plan: Option<Plan>,
    by: Actor,
) -> Result<Workspace> {
    db::write_tx(conn, |conn| {
        accounts::find_workspace(conn, id)?;
        if let Some(name) = name {
            directory::rename_workspace_in_tx(conn, id, name)?;
        }
        if let Some(plan) = plan {
            accounts::set_plan_in_tx(conn, id, plan)?;
            revocation::record(conn, &[Event::workspace(id)])?;
        }
        log(conn, id, "workspace.updated", by)?;
        accounts::find_workspace(conn, id)
    })
}

fn log(conn: &mut DbConn, id: &str, action: &str, by: Actor) -> Result<()> {
    accounts::audit::Entry {
        workspace_id: id,
        actor: by,
        action,
        subject: id,
        detail: None,
    }
    .record(conn)
}

/// Deletes a workspace: in one transaction it is marked deleted (no lookup
/// finds it; its API keys and mailbox auth keys fail the workspace check),
/// every node drops its cached credentials (the workspace's revocation
/// event), and every authorization under it is revoked with its tokens. Its
/// security log is kept.
pub fn delete(conn: &mut DbConn, cache: &CredentialCache, id: &str, by: Actor) -> Result<()> {
    let events = db::write_tx(conn, |conn| {
        directory::mark_workspace_deleted_in_tx(conn, id)?;
        let mut events = vec![Event::workspace(id)];
        revocation::record(conn, &events)?;
        events.extend(crate::oauth::authorizations::revoke_all_of(
            conn,
            Some(id),
            None,
            "app.revoked_workspace_deleted",
            by,
        )?);
        log(conn, id, "workspace.deleted", by)?;
        Ok::<_, Error>(events)
    })?;
    cache.apply(&events);
    Ok(())
}
