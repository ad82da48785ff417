//! Setting a person's role in a workspace, as `PUT …/members/{person}` means
//! it: added when not a member, else their role changed (leaving owner/admin
//! revokes the apps they approved there; the last owner keeps theirs).

use crate::accounts::{self, audit::Actor, members::Member, Role};
use crate::credentials::cache::CredentialCache;
use crate::db::DbConn;
use crate::error::{Error, Result};

/// The member afterwards, and whether they were added.
pub fn set_role(
    conn: &mut DbConn,
    cache: &CredentialCache,
    workspace_id: &str,
    user_id: &str,
    role: Role,
    by: Actor,
) -> Result<(Member, bool)> {
    accounts::find_workspace(conn, workspace_id)?;
    let added = match accounts::membership(conn, workspace_id, user_id)? {
        None => {
            accounts::add_member_by(conn, workspace_id, user_id, role, by)?;
            true
        }
        Some(_) => {
            crate::oauth::authorizations::change_role(
                conn,
                cache,
                workspace_id,
                user_id,
                role,
                by,
            )?;
            false
        }
    };
    let member = accounts::members::one(conn, workspace_id, user_id)?
        .ok_or_else(|| Error::not_found("that person is not a member of the workspace"))?;
    Ok((member, added))
}

/// Removes a member (`member remove`): the apps they approved there are
/// revoked; the last owner stays.
pub fn remove(
    conn: &mut DbConn,
    cache: &CredentialCache,
    workspace_id: &str,
    user_id: &str,
    by: Actor,
) -> Result<()> {
    accounts::find_workspace(conn, workspace_id)?;
    if accounts::membership(conn, workspace_id, user_id)?.is_none() {
        return Err(Error::not_found(
            "that person is not a member of the workspace",
        ));
    }
    crate::oauth::authorizations::remove_member(conn, cache, workspace_id, user_id, by.id)?;
    Ok(())
}
