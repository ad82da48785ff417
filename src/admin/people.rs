//! Disabling and deleting a person: what follows for their sessions and the
//! apps they approved.

use crate::accounts::{self, audit::Actor, directory, sessions, User};
use crate::credentials::cache::CredentialCache;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};

/// A person's changes (`None`: unchanged).
#[derive(Default)]
pub struct PersonPatch<'a> {
    pub email: Option<&'a str>,
    pub disabled: Option<bool>,
}

/// Changes a person's email and/or disables (or enables) them. Disabling ends
/// their sessions and revokes every authorization they approved, at once;
/// each change is logged in every workspace they belong to.
pub fn update(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    patch: &PersonPatch,
    by: Actor,
) -> Result<User> {
    let events = db::write_tx(conn, |conn| {
        accounts::find_user(conn, id)?;
        let mut events = Vec::new();
        if let Some(email) = patch.email {
            directory::set_email_in_tx(conn, id, email)?;
            log(conn, id, "person.email_changed", by)?;
        }
        if let Some(disabled) = patch.disabled {
            if directory::set_disabled_in_tx(conn, id, disabled)? {
                let action = if disabled {
                    "person.disabled"
                } else {
                    "person.enabled"
                };
                log(conn, id, action, by)?;
            }
            if disabled {
                events = end_access(conn, id, "app.revoked_person_disabled", by)?;
            }
        }
        Ok::<_, Error>(events)
    })?;
    cache.apply(&events);
    accounts::find_user(conn, id)
}

/// Deletes a person: removed from every workspace (refused while they are
/// the last owner of one), sessions ended, authorizations revoked, email and
/// external id freed.
pub fn delete(conn: &mut DbConn, cache: &CredentialCache, id: &str, by: Actor) -> Result<()> {
    let events = db::write_tx(conn, |conn| {
        accounts::find_user(conn, id)?;
        let events = end_access(conn, id, "app.revoked_person_deleted", by)?;
        for (ws, _) in accounts::workspaces_of(conn, id)? {
            accounts::remove_membership(conn, &ws.id, id)?;
            crate::credentials::change::Change::new(id, "member.removed", by)
                .record(conn, &ws.id, None)?;
        }
        directory::mark_person_deleted_in_tx(conn, id)?;
        Ok::<_, Error>(events)
    })?;
    cache.apply(&events);
    Ok(())
}

fn end_access(
    conn: &mut DbConn,
    id: &str,
    action: &str,
    by: Actor,
) -> Result<Vec<crate::credentials::revocation::Event>> {
    sessions::end_all_of(conn, id)?;
    crate::oauth::authorizations::revoke_all_of(conn, None, Some(id), action, by)
}

/// Logs a change of a person in each workspace they belong to.
fn log(conn: &mut DbConn, id: &str, action: &str, by: Actor) -> Result<()> {
    for (ws, _) in accounts::workspaces_of(conn, id)? {
        accounts::audit::Entry {
            workspace_id: &ws.id,
            actor: by,
            action,
            subject: id,
            detail: None,
        }
        .record(conn)?;
    }
    Ok(())
}
