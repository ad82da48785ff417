//! Workspaces and people as the product's back end manages them (the admin
//! API): the product's own ids (`external_id`), lookups, pages, changes and
//! deletion marks. What a deletion or a disabled person means for
//! credentials is the areas' above (`admin::people`, `admin::workspaces`).

use super::{audit, find_user, find_workspace, validate_email, Plan, User, Workspace};
use crate::db::paging::{Listed, Paging};
use crate::db::schema::{users, workspaces};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

/// The longest `external_id` accepted.
pub const MAX_EXTERNAL_ID: usize = 255;

/// An `external_id` as given: 1 to 255 characters, no control characters.
pub fn validate_external_id(raw: &str) -> Result<String> {
    if raw.is_empty() || raw.chars().count() > MAX_EXTERNAL_ID || raw.chars().any(char::is_control)
    {
        return Err(Error::invalid(format!(
            "external_id must be 1 to {MAX_EXTERNAL_ID} characters without control characters"
        )));
    }
    Ok(raw.to_string())
}

/// Creates a workspace, with the product's id if given; logged as
/// `workspace.created` by `by`.
pub fn create_workspace(
    conn: &mut DbConn,
    name: &str,
    plan: Plan,
    external_id: Option<&str>,
    by: audit::Actor,
) -> Result<Workspace> {
    let ws = Workspace {
        id: db::new_id(),
        name: super::validate_name("workspace name", name)?,
        plan: plan.as_str().to_string(),
        created_at: db::now(),
        external_id: external_id.map(validate_external_id).transpose()?,
        deleted_at: None,
    };
    db::write_tx(conn, |conn| {
        db::insert_new(conn, workspaces::table, &ws, |_| {
            Error::conflict("a workspace with that external_id already exists")
        })?;
        let entry = audit::Entry {
            workspace_id: &ws.id,
            actor: by,
            action: "workspace.created",
            subject: &ws.id,
            detail: None,
        };
        entry.record(conn)?;
        Ok(ws.clone())
    })
}

pub fn workspace_by_external_id(conn: &mut DbConn, external_id: &str) -> Result<Option<Workspace>> {
    Ok(workspaces::table
        .filter(workspaces::external_id.eq(external_id))
        .filter(workspaces::deleted_at.is_null())
        .select(Workspace::as_select())
        .first(conn)
        .optional()?)
}

/// A page of the workspaces, newest first.
pub fn list_workspaces(conn: &mut DbConn, paging: &Paging) -> Result<Listed<Workspace>> {
    let mut q = workspaces::table
        .filter(workspaces::deleted_at.is_null())
        .into_boxed();
    if let Some(c) = &paging.cursor {
        q = q.filter(workspaces::id.lt(c.clone()));
    }
    let rows = q
        .order(workspaces::id.desc())
        .limit(paging.fetch())
        .select(Workspace::as_select())
        .load(conn)?;
    Ok(paging.page(rows, |w| w.id.clone()))
}

/// Inside a transaction: renames a workspace.
pub fn rename_workspace_in_tx(conn: &mut DbConn, id: &str, name: &str) -> Result<()> {
    let name = super::validate_name("workspace name", name)?;
    find_workspace(conn, id)?;
    diesel::update(workspaces::table.find(id))
        .set(workspaces::name.eq(name))
        .execute(conn)?;
    Ok(())
}

/// Inside a transaction: marks a workspace deleted (its rows and security
/// log stay; no lookup finds it).
pub fn mark_workspace_deleted_in_tx(conn: &mut DbConn, id: &str) -> Result<()> {
    find_workspace(conn, id)?;
    diesel::update(workspaces::table.find(id))
        .set((
            workspaces::deleted_at.eq(db::now()),
            workspaces::external_id.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// A person to create: without a password they sign in only through the
/// product's identity provider.
pub struct NewPerson<'a> {
    pub email: &'a str,
    pub password: Option<&'a str>,
    pub external_id: Option<&'a str>,
}

fn check_password_rules(password: &str) -> Result<()> {
    if password.chars().count() < super::MIN_PASSWORD_LEN {
        return Err(Error::invalid(format!(
            "the password must be at least {} characters",
            super::MIN_PASSWORD_LEN
        )));
    }
    if password.len() > super::MAX_PASSWORD_BYTES {
        return Err(Error::invalid("the password must be at most 1024 bytes"));
    }
    Ok(())
}

pub fn create_person(conn: &mut DbConn, new: &NewPerson) -> Result<User> {
    let email = validate_email(new.email)?;
    let external_id = new.external_id.map(validate_external_id).transpose()?;
    let password_hash = match new.password {
        Some(p) => {
            check_password_rules(p)?;
            crate::crypto::hash_password(p)
        }
        None => super::NO_PASSWORD.to_string(),
    };
    let user = User {
        id: db::new_id(),
        email,
        password_hash,
        created_at: db::now(),
        external_id,
        disabled_at: None,
        deleted_at: None,
    };
    db::insert_new(conn, users::table, &user, |_| match &user.external_id {
        None => Error::conflict(format!("a user with email {:?} already exists", user.email)),
        Some(_) => Error::conflict("a person with that email or external_id already exists"),
    })?;
    Ok(user)
}

pub fn person_by_external_id(conn: &mut DbConn, external_id: &str) -> Result<Option<User>> {
    Ok(users::table
        .filter(users::external_id.eq(external_id))
        .filter(users::deleted_at.is_null())
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// A page of the people, newest first.
pub fn list_people(conn: &mut DbConn, paging: &Paging) -> Result<Listed<User>> {
    let mut q = users::table
        .filter(users::deleted_at.is_null())
        .into_boxed();
    if let Some(c) = &paging.cursor {
        q = q.filter(users::id.lt(c.clone()));
    }
    let rows = q
        .order(users::id.desc())
        .limit(paging.fetch())
        .select(User::as_select())
        .load(conn)?;
    Ok(paging.page(rows, |u| u.id.clone()))
}

/// Inside a transaction: a new email for a person.
pub fn set_email_in_tx(conn: &mut DbConn, id: &str, email: &str) -> Result<()> {
    let email = validate_email(email)?;
    find_user(conn, id)?;
    match diesel::update(users::table.find(id))
        .set(users::email.eq(&email))
        .execute(conn)
    {
        Ok(_) => Ok(()),
        Err(e) if db::is_unique_violation(&e) => {
            Err(Error::conflict("a person with that email already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Inside a transaction: disables or enables a person; answers whether that
/// changed anything.
pub fn set_disabled_in_tx(conn: &mut DbConn, id: &str, disabled: bool) -> Result<bool> {
    let user = find_user(conn, id)?;
    if user.is_disabled() == disabled {
        return Ok(false);
    }
    diesel::update(users::table.find(id))
        .set(users::disabled_at.eq(disabled.then(db::now)))
        .execute(conn)?;
    Ok(true)
}

/// Inside a transaction: marks a person deleted. Their email and external id
/// are freed for someone else; the row stays for what refers to it.
pub fn mark_person_deleted_in_tx(conn: &mut DbConn, id: &str) -> Result<()> {
    find_user(conn, id)?;
    let now = db::now();
    diesel::update(users::table.find(id))
        .set((
            users::deleted_at.eq(now),
            users::disabled_at.eq(now),
            users::external_id.eq(None::<String>),
            users::email.eq(format!("deleted+{id}@deleted.invalid")),
            users::password_hash.eq(super::NO_PASSWORD),
        ))
        .execute(conn)?;
    super::identities::remove_all_of(conn, id)?;
    Ok(())
}
