//! Workspaces, people and their memberships.

use crate::db::schema::{memberships, users, workspaces};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

pub mod audit;
pub mod directory;
pub mod identities;
pub mod members;
mod outbox;
pub mod sessions;

pub use members::remove_membership;
pub use outbox::install_names;

#[derive(Queryable, Selectable, Insertable, Serialize, Clone, Debug)]
#[diesel(table_name = workspaces)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub created_at: i64,
    /// The product's own id for the workspace (unique; admin API).
    pub external_id: Option<String>,
    /// Set when the workspace was deleted: it is then found by no lookup, and
    /// no credential of it works; its security log is kept.
    pub deleted_at: Option<i64>,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    /// An argon2id hash, or [`NO_PASSWORD`] for a person who signs in only
    /// through the product's identity provider.
    pub password_hash: String,
    pub created_at: i64,
    /// The product's own id for the person (unique; admin API).
    pub external_id: Option<String>,
    /// Set while the person is disabled: they cannot sign in at all.
    pub disabled_at: Option<i64>,
    /// Set when the person was deleted: found by no lookup, signs in no way.
    pub deleted_at: Option<i64>,
}

/// The `password_hash` of a person without a password: an empty string is no
/// argon2 hash, so no password ever verifies against it (and
/// [`check_password`] does not even try).
pub const NO_PASSWORD: &str = "";

impl User {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
    pub fn has_password(&self) -> bool {
        self.password_hash != NO_PASSWORD
    }
    /// Whether this person may sign in at all (any way).
    pub fn may_sign_in(&self) -> bool {
        !self.is_disabled() && self.deleted_at.is_none()
    }
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = memberships)]
pub struct Membership {
    pub workspace_id: String,
    pub user_id: String,
    pub role: String,
    pub created_at: i64,
}

/// A workspace's plan says whether it includes API access (API keys on `/v1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    Free,
    Pro,
}

impl Plan {
    pub const ALL: &'static str = "free|pro";

    pub fn parse(s: &str) -> Result<Plan> {
        match s {
            "free" => Ok(Plan::Free),
            "pro" => Ok(Plan::Pro),
            other => Err(Error::invalid(format!(
                "unknown plan {other:?}: expected {}",
                Plan::ALL
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
        }
    }
    pub fn includes_api_access(self) -> bool {
        self == Plan::Pro
    }
}

pub fn plan_includes_api(plan: &str) -> bool {
    Plan::parse(plan)
        .map(Plan::includes_api_access)
        .unwrap_or(false)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(Error::invalid(format!(
                "unknown role {other:?}: expected owner, admin or member"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
    /// Owners and admins authorize apps and manage keys.
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

pub const MAX_NAME_LEN: usize = 100;

/// An invisible formatting character that could disguise a name shown to
/// other people (bidirectional overrides and isolates, zero-width characters,
/// the soft hyphen, interlinear annotations).
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// A display name (shown to other people: workspaces, apps, keys, tags):
/// trimmed, 1 to 100 characters, no control characters and no invisible
/// formatting characters.
pub fn validate_name(what: &str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} must be at most {MAX_NAME_LEN} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_control() || is_invisible_format(c))
    {
        return Err(Error::invalid(format!(
            "{what} must not contain control or invisible formatting characters (found U+{:04X})",
            c as u32
        )));
    }
    Ok(name.to_string())
}

/// `keygate workspace create`: a workspace without an external id (see
/// `directory::create_workspace`, which the admin API calls, for the rule).
pub fn create_workspace(conn: &mut DbConn, name: &str, plan: Plan) -> Result<Workspace> {
    directory::create_workspace(conn, name, plan, None, audit::CLI)
}

pub fn find_workspace(conn: &mut DbConn, id: &str) -> Result<Workspace> {
    workspaces::table
        .find(id)
        .filter(workspaces::deleted_at.is_null())
        .select(Workspace::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no workspace with id {id:?}")))
}

/// Inside a transaction, on PostgreSQL: locks the workspace's row `FOR NO
/// KEY UPDATE` (see `members::lock_team`); SQLite's writers are serialised.
pub(crate) fn lock_workspace_row(conn: &mut DbConn, workspace_id: &str) -> Result<()> {
    if let DbConn::Postgresql(pg) = conn {
        diesel::sql_query("SELECT id FROM workspaces WHERE id = $1 FOR NO KEY UPDATE")
            .bind::<diesel::sql_types::Text, _>(workspace_id)
            .execute(pg)?;
    }
    Ok(())
}

/// Whether the workspace exists and its plan includes API access: what the
/// credential checks ask on a cache miss.
pub fn has_api_access(conn: &mut DbConn, id: &str) -> Result<bool> {
    let plan: Option<String> = workspaces::table
        .find(id)
        .filter(workspaces::deleted_at.is_null())
        .select(workspaces::plan)
        .first(conn)
        .optional()?;
    Ok(plan.is_some_and(|p| plan_includes_api(&p)))
}

/// Inside a transaction: changes the plan. What follows from it for API
/// access is `apikeys::set_plan`'s concern.
pub fn set_plan_in_tx(conn: &mut DbConn, id: &str, plan: Plan) -> Result<Workspace> {
    find_workspace(conn, id)?;
    diesel::update(workspaces::table.find(id))
        .set(workspaces::plan.eq(plan.as_str()))
        .execute(conn)?;
    find_workspace(conn, id)
}

/// A pragmatic address check: one `@`, something on each side, a dot in the domain.
pub fn validate_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(email)
    } else {
        Err(Error::invalid(format!(
            "invalid email address {:?}",
            raw.trim()
        )))
    }
}

pub const MIN_PASSWORD_LEN: usize = 8;

/// The longest password accepted (argon2 hashes all of it).
pub const MAX_PASSWORD_BYTES: usize = 1024;

pub fn create_user(conn: &mut DbConn, email: &str, password: &str) -> Result<User> {
    directory::create_person(
        conn,
        &directory::NewPerson {
            email,
            password: Some(password),
            external_id: None,
        },
    )
}

/// A person without a password, who signs in only through the product's
/// identity provider (`signin`, with `KEYGATE_OIDC_CREATE_PEOPLE=on`).
pub fn create_user_without_password(conn: &mut DbConn, email: &str) -> Result<User> {
    directory::create_person(
        conn,
        &directory::NewPerson {
            email,
            password: None,
            external_id: None,
        },
    )
}

pub fn find_user(conn: &mut DbConn, id: &str) -> Result<User> {
    users::table
        .find(id)
        .filter(users::deleted_at.is_null())
        .select(User::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no user with id {id:?}")))
}

/// The emails of the people among `ids` (unknown ids are left out).
pub fn emails_of(conn: &mut DbConn, ids: &[String]) -> Result<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let named = users::table.filter(users::id.eq_any(ids));
    Ok(db::id_map(conn, named.select((users::id, users::email)))?)
}

/// Each row with the email of the person who created it (`None` for the CLI,
/// a leak report, or a person no longer there): one query for all the rows.
pub fn with_creator_emails<T>(
    conn: &mut DbConn,
    rows: Vec<T>,
    created_by: impl Fn(&T) -> &str,
) -> Result<Vec<(T, Option<String>)>> {
    let ids: Vec<String> = rows.iter().map(|r| created_by(r).to_string()).collect();
    let emails = emails_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let email = emails.get(created_by(&r)).cloned();
            (r, email)
        })
        .collect())
}

pub fn find_user_by_email(conn: &mut DbConn, email: &str) -> Result<Option<User>> {
    let email = email.trim().to_lowercase();
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Checks a password against the account read by `find_user_by_email`; the
/// same work is done whether or not the account exists, and whether or not it
/// may sign in with a password (a disabled person, a person without a
/// password): each of those fails exactly as a wrong password does. It takes
/// no database connection: argon2id costs about 15 ms, and holding a pooled
/// connection meanwhile would let a few dozen failed logins exhaust the pool
/// (OWASP Denial of Service Cheat Sheet: keep expensive work away from shared
/// resources).
pub fn check_password(user: Option<User>, password: &str) -> Option<User> {
    let user = user.filter(|u| u.may_sign_in() && u.has_password());
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.as_str())
        .unwrap_or_else(|| crate::crypto::dummy_password_hash());
    let ok = crate::crypto::verify_password(password, hash);
    user.filter(|_| ok)
}

/// Adds a person to a workspace as the command line (see [`add_member_by`]).
pub fn add_member(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
    role: Role,
) -> Result<Membership> {
    add_member_by(conn, workspace_id, user_id, role, audit::CLI)
}

/// Adds a person to a workspace with a role, logged as `member.added_{role}`
/// by `by` (the event `member.added`).
pub fn add_member_by(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
    role: Role,
    by: audit::Actor,
) -> Result<Membership> {
    db::write_tx(conn, |conn| {
        find_workspace(conn, workspace_id)?;
        find_user(conn, user_id)?;
        members::add_in_tx(conn, workspace_id, user_id, role, by)
    })
}

pub fn membership(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<Membership>> {
    Ok(memberships::table
        .find((workspace_id, user_id))
        .select(Membership::as_select())
        .first(conn)
        .optional()?)
}

/// The condition "the person `user` is an owner or admin of `workspace`"
/// ([`Role::can_manage`] as SQL), for another area's statement to carry: the
/// token grant folds it into its one UPDATE of the authorization, a round
/// trip saved per grant on PostgreSQL. A plain read of the membership, no
/// lock. Written as the pieces of a statement kept prepared (`db::Kept`:
/// diesel would parse a statement with its `EXISTS` afresh each time).
pub fn manages<'a>(workspace: &'a str, user: &'a str) -> [crate::db::Piece<'a>; 9] {
    use crate::db::Piece::{Sql, Text};
    [
        Sql("EXISTS (SELECT 1 FROM memberships WHERE memberships.workspace_id = "),
        Text(workspace),
        Sql(" AND memberships.user_id = "),
        Text(user),
        Sql(" AND memberships.role IN ("),
        Text(Role::Owner.as_str()),
        Sql(", "),
        Text(Role::Admin.as_str()),
        Sql("))"),
    ]
}

/// [`manages`], locking the person's membership row while the statement's
/// transaction lasts (`FOR UPDATE`, PostgreSQL), as [`role_in_locked`] does:
/// a removal of the person and a decision taken on this condition serialise.
pub fn manages_locked<'a>(workspace: &'a str, user: &'a str) -> [crate::db::Piece<'a>; 9] {
    let mut pieces = manages(workspace, user);
    pieces[8] = crate::db::Piece::Sql(") FOR UPDATE)");
    pieces
}

/// The person's role in a workspace, if any.
pub fn role_in(conn: &mut DbConn, workspace_id: &str, user_id: &str) -> Result<Option<Role>> {
    Ok(membership(conn, workspace_id, user_id)?.and_then(|m| Role::parse(&m.role).ok()))
}

/// Inside a write transaction: the person's role, with their membership row
/// locked until the transaction ends. A removal deletes that row first
/// (`remove_membership`), so a decision taken on this role and the removal
/// serialise: either the removal waits and then sees (and revokes) what was
/// written under the role, or this read waits and finds no membership. On
/// PostgreSQL that is `SELECT … FOR UPDATE`; on SQLite the write transaction
/// already holds the database's one write lock.
pub fn role_in_locked(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<Role>> {
    let role: Option<String> = match conn {
        DbConn::Postgresql(pg) => memberships::table
            .find((workspace_id, user_id))
            .select(memberships::role)
            .for_update()
            .first(pg)
            .optional()?,
        DbConn::Sqlite(_) => memberships::table
            .find((workspace_id, user_id))
            .select(memberships::role)
            .first(conn)
            .optional()?,
    };
    Ok(role.and_then(|r| Role::parse(&r).ok()))
}

/// The workspaces a person belongs to, with their role, by name.
pub fn workspaces_of(conn: &mut DbConn, user_id: &str) -> Result<Vec<(Workspace, Role)>> {
    let rows: Vec<(Workspace, String)> = memberships::table
        .inner_join(workspaces::table)
        .filter(memberships::user_id.eq(user_id))
        .filter(workspaces::deleted_at.is_null())
        .order(workspaces::name.asc())
        .select((Workspace::as_select(), memberships::role))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(w, r)| Role::parse(&r).ok().map(|r| (w, r)))
        .collect())
}

/// The workspaces where a person may authorize apps and manage keys.
pub fn managed_workspaces(conn: &mut DbConn, user_id: &str) -> Result<Vec<Workspace>> {
    Ok(workspaces_of(conn, user_id)?
        .into_iter()
        .filter(|(_, r)| r.can_manage())
        .map(|(w, _)| w)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(password: Option<&str>, disabled: bool) -> User {
        User {
            id: db::new_id(),
            email: "ada@example.test".into(),
            password_hash: password
                .map(crate::crypto::hash_password)
                .unwrap_or_else(|| NO_PASSWORD.to_string()),
            created_at: 0,
            external_id: None,
            disabled_at: disabled.then_some(1),
            deleted_at: None,
        }
    }

    #[test]
    fn a_password_signs_in_only_an_enabled_person_who_has_one() {
        let pw = "correct horse";
        assert!(check_password(Some(person(Some(pw), false)), pw).is_some());
        assert!(check_password(Some(person(Some(pw), false)), "wrong one").is_none());
        assert!(check_password(Some(person(Some(pw), true)), pw).is_none());
        assert!(check_password(Some(person(None, false)), "").is_none());
        assert!(check_password(Some(person(None, false)), pw).is_none());
        assert!(check_password(None, pw).is_none());
        assert!(!crate::crypto::verify_password("", NO_PASSWORD));
    }
}
