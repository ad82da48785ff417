//! A workspace's team: who belongs to it, with which role. Every change is in
//! the workspace's security log, and a workspace always keeps an owner.

use super::{audit, find_user, find_user_by_email, find_workspace, Membership, Role};
use crate::db::schema::{memberships, users};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

/// A member as the team page lists them.
#[derive(Clone, Debug)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub joined_at: i64,
}

/// Owners first, then admins, then members; by email within a role.
pub fn list(conn: &mut DbConn, workspace_id: &str) -> Result<Vec<Member>> {
    let rows: Vec<(String, String, String, i64)> = memberships::table
        .inner_join(users::table)
        .filter(memberships::workspace_id.eq(workspace_id))
        .select((
            memberships::user_id,
            users::email,
            memberships::role,
            memberships::created_at,
        ))
        .load(conn)?;
    let mut members: Vec<Member> = rows
        .into_iter()
        .filter_map(|(user_id, email, role, joined_at)| {
            Some(Member {
                user_id,
                email,
                role: Role::parse(&role).ok()?,
                joined_at,
            })
        })
        .collect();
    members.sort_by(|a, b| {
        rank(a.role)
            .cmp(&rank(b.role))
            .then_with(|| a.email.cmp(&b.email))
    });
    Ok(members)
}

fn rank(r: Role) -> u8 {
    match r {
        Role::Owner => 0,
        Role::Admin => 1,
        Role::Member => 2,
    }
}

/// Inside a transaction: serialises changes to one workspace's team, so that
/// two owners demoting each other at once cannot leave it with none. SQLite's
/// writers are serialised already (`BEGIN IMMEDIATE`); PostgreSQL locks the
/// workspace row `FOR NO KEY UPDATE`: two team changes exclude each other, but
/// the `KEY SHARE` lock that inserting a row referring to the workspace takes
/// (an approval's authorization) does not wait on it, so an approval holding
/// the membership row and a removal holding the workspace row cannot deadlock.
pub fn lock_team(conn: &mut DbConn, workspace_id: &str) -> Result<()> {
    super::lock_workspace_row(conn, workspace_id)
}

fn owners(conn: &mut DbConn, workspace_id: &str) -> Result<i64> {
    Ok(memberships::table
        .filter(memberships::workspace_id.eq(workspace_id))
        .filter(memberships::role.eq(Role::Owner.as_str()))
        .count()
        .get_result(conn)?)
}

fn current_role(conn: &mut DbConn, workspace_id: &str, user_id: &str) -> Result<Role> {
    let m: Option<Membership> = memberships::table
        .find((workspace_id, user_id))
        .select(Membership::as_select())
        .first(conn)
        .optional()?;
    let m = m.ok_or_else(|| Error::not_found("that user is not a member of the workspace"))?;
    Role::parse(&m.role)
}

/// Inside a transaction: refuses a change that would leave the workspace
/// without an owner.
fn keep_an_owner(conn: &mut DbConn, workspace_id: &str, user_id: &str) -> Result<()> {
    if current_role(conn, workspace_id, user_id)? == Role::Owner && owners(conn, workspace_id)? <= 1
    {
        return Err(Error::conflict(
            "the last owner of a workspace cannot be removed or demoted; make someone else an owner first",
        ));
    }
    Ok(())
}

/// Adds an existing user, found by email, with a role (the settings pages'
/// team form; the same insert and log row as [`add_in_tx`]).
pub fn add_by_email(
    conn: &mut DbConn,
    workspace_id: &str,
    email: &str,
    role: Role,
    actor: &str,
    client_address: Option<&str>,
) -> Result<Member> {
    let email = super::validate_email(email)?;
    let by = audit::Actor {
        id: actor,
        client_address,
    };
    db::write_tx(conn, |conn| {
        find_workspace(conn, workspace_id)?;
        let user = find_user_by_email(conn, &email)?.ok_or_else(|| {
            Error::not_found(format!(
                "no keygate account uses {email}; they must sign up before they can be added"
            ))
        })?;
        let m = add_in_tx(conn, workspace_id, &user.id, role, by).map_err(|e| match e {
            Error::Conflict(_) => {
                Error::conflict(format!("{email} is already a member of this workspace"))
            }
            e => e,
        })?;
        Ok(Member {
            user_id: user.id,
            email: user.email,
            role,
            joined_at: m.created_at,
        })
    })
}

/// Inside a transaction: adds a person (who exists) to a workspace with a
/// role, logged as `member.added_{role}` by `by` (the event `member.added`).
/// Every way of adding a member comes here.
pub fn add_in_tx(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
    role: Role,
    by: audit::Actor,
) -> Result<Membership> {
    let m = Membership {
        workspace_id: workspace_id.to_string(),
        user_id: user_id.to_string(),
        role: role.as_str().to_string(),
        created_at: db::now(),
    };
    match diesel::insert_into(memberships::table)
        .values(&m)
        .execute(conn)
    {
        Ok(_) => {}
        Err(e) if db::is_unique_violation(&e) => return Err(Error::conflict(
            "that user is already a member of the workspace (remove them first to change the role)",
        )),
        Err(e) => return Err(e.into()),
    }
    audit::Entry {
        workspace_id,
        actor: by,
        action: &format!("member.added_{}", role.as_str()),
        subject: user_id,
        detail: None,
    }
    .record(conn)?;
    Ok(m)
}

/// Inside a transaction: changes a member's role (the last owner keeps
/// theirs) and returns the role they had. A demotion from owner or admin also
/// ends the apps they approved: `oauth::authorizations::change_role` does both.
pub fn change_role_in_tx(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
    role: Role,
    actor: &str,
    client_address: Option<&str>,
) -> Result<Role> {
    lock_team(conn, workspace_id)?;
    let before = current_role(conn, workspace_id, user_id)?;
    if before == role {
        return Ok(before);
    }
    if before == Role::Owner {
        keep_an_owner(conn, workspace_id, user_id)?;
    }
    find_user(conn, user_id)?;
    diesel::update(memberships::table.find((workspace_id, user_id)))
        .set(memberships::role.eq(role.as_str()))
        .execute(conn)?;
    audit::record(
        conn,
        workspace_id,
        actor,
        &format!("member.role_{}", role.as_str()),
        user_id,
        client_address,
    )?;
    Ok(before)
}

/// Inside a transaction: removes a person's membership; the last owner stays.
/// Removing a member also ends the apps they approved:
/// `oauth::authorizations::remove_member` does both.
pub fn remove_membership(conn: &mut DbConn, workspace_id: &str, user_id: &str) -> Result<()> {
    find_workspace(conn, workspace_id)?;
    lock_team(conn, workspace_id)?;
    keep_an_owner(conn, workspace_id, user_id)?;
    diesel::delete(memberships::table.find((workspace_id, user_id))).execute(conn)?;
    Ok(())
}

/// A page of a workspace's members, newest membership first; the cursor is
/// `{created_at}:{user_id}` of the last one shown.
pub fn page(
    conn: &mut DbConn,
    workspace_id: &str,
    paging: &crate::db::paging::Paging,
) -> Result<crate::db::paging::Listed<Member>> {
    find_workspace(conn, workspace_id)?;
    let mut q = memberships::table
        .inner_join(users::table)
        .filter(memberships::workspace_id.eq(workspace_id))
        .into_boxed();
    if let Some(c) = &paging.cursor {
        let (at, user) = c
            .split_once(':')
            .and_then(|(a, u)| Some((a.parse::<i64>().ok()?, u.to_string())))
            .ok_or_else(|| Error::invalid("cursor is not one this API gave"))?;
        q = q.filter(
            memberships::created_at.lt(at).or(memberships::created_at
                .eq(at)
                .and(memberships::user_id.lt(user))),
        );
    }
    let rows: Vec<(String, String, String, i64)> = q
        .order((memberships::created_at.desc(), memberships::user_id.desc()))
        .limit(paging.fetch())
        .select((
            memberships::user_id,
            users::email,
            memberships::role,
            memberships::created_at,
        ))
        .load(conn)?;
    let members = rows
        .into_iter()
        .filter_map(|(user_id, email, role, joined_at)| {
            Some(Member {
                user_id,
                email,
                role: Role::parse(&role).ok()?,
                joined_at,
            })
        })
        .collect();
    Ok(paging.page(members, |m| format!("{}:{}", m.joined_at, m.user_id)))
}

/// One member of a workspace, if they are one.
pub fn one(conn: &mut DbConn, workspace_id: &str, user_id: &str) -> Result<Option<Member>> {
    let row: Option<(String, String, String, i64)> = memberships::table
        .inner_join(users::table)
        .filter(memberships::workspace_id.eq(workspace_id))
        .filter(memberships::user_id.eq(user_id))
        .select((
            memberships::user_id,
            users::email,
            memberships::role,
            memberships::created_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.and_then(|(user_id, email, role, joined_at)| {
        Some(Member {
            user_id,
            email,
            role: Role::parse(&role).ok()?,
            joined_at,
        })
    }))
}
