//! Who a verified ID token signs in (the contract's order): the person linked
//! to (issuer, `sub`); else the person whose email is the token's (without
//! case) when the provider says it is verified, who is then linked; else, with
//! `KEYGATE_OIDC_CREATE_PEOPLE=on`, a new person for a verified email no one
//! has; else nobody. Workspaces and roles never come from the provider. The
//! session starts and the security log is written in the same transaction.

use super::Failure;
use crate::accounts::{self, audit, identities, sessions, User};
use crate::db::{self, DbConn};
use crate::error::Error;

/// What the provider says of the person, verified.
pub struct Claimed<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
}

/// How the person was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Already linked to the identity.
    Linked,
    /// Found by verified email, and linked now.
    LinkedNow,
    /// Made now (`KEYGATE_OIDC_CREATE_PEOPLE=on`), and linked.
    Created,
}

/// The person, how they were found, and their new session's cookie value.
pub struct SignedIn {
    pub user: User,
    pub found: Found,
    pub session_cookie: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("user", &self.user.id)
            .field("found", &self.found)
            .finish_non_exhaustive()
    }
}

/// Finds (or links, or makes) the person and starts their session, in one
/// transaction; a lost race with another sign-in of the same person is tried
/// once more.
pub fn sign_in(
    conn: &mut DbConn,
    claimed: &Claimed<'_>,
    create_people: bool,
    session_ttl: i64,
    client_address: &str,
) -> Result<SignedIn, Failure> {
    let attempt = |conn: &mut DbConn| {
        db::write_tx(conn, |conn| {
            let (user, found) = person(conn, claimed, create_people)?;
            let (cookie, _) = sessions::start(conn, &user.id, session_ttl)?;
            record(conn, &user, found, claimed, client_address)?;
            Ok(SignedIn {
                user,
                found,
                session_cookie: cookie,
            })
        })
    };
    match attempt(conn) {
        Err(Failure::Store(Error::Conflict(_))) => attempt(conn),
        other => other,
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Self {
        Failure::Store(e.into())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

fn person(
    conn: &mut DbConn,
    c: &Claimed<'_>,
    create_people: bool,
) -> Result<(User, Found), Failure> {
    if let Some(id) = identities::find_user(conn, c.issuer, c.subject)? {
        return Ok((enabled(accounts::find_user(conn, &id)?)?, Found::Linked));
    }
    let Some(email) = c.email.map(str::trim).filter(|e| !e.is_empty()) else {
        return Err(Failure::UnknownAccount);
    };
    let existing = accounts::find_user_by_email(conn, email)?;
    if existing.is_none() && !create_people {
        return Err(Failure::UnknownAccount);
    }
    if !c.email_verified {
        return Err(Failure::UnverifiedEmail);
    }
    let (user, found) = match existing {
        Some(user) => (enabled(user)?, Found::LinkedNow),
        None => match accounts::create_user_without_password(conn, email) {
            Ok(user) => (user, Found::Created),
            Err(Error::Invalid(_)) => return Err(Failure::UnknownAccount),
            Err(e) => return Err(e.into()),
        },
    };
    identities::link(conn, &user.id, c.issuer, c.subject)?;
    Ok((user, found))
}

fn enabled(user: User) -> Result<User, Failure> {
    if user.may_sign_in() {
        Ok(user)
    } else {
        Err(Failure::Disabled)
    }
}

/// The security log is per workspace: the sign-in (and a new link) is
/// written in each workspace the person belongs to. A person made just now
/// belongs to none; the server log says so.
fn record(
    conn: &mut DbConn,
    user: &User,
    found: Found,
    c: &Claimed<'_>,
    client_address: &str,
) -> Result<(), Failure> {
    let actor = audit::Actor {
        id: &user.id,
        client_address: Some(client_address),
    };
    let identity = format!("{} at {}", c.subject, c.issuer);
    let mut actions = vec![audit::SIGNED_IN_WITH_PROVIDER];
    if found != Found::Linked {
        actions.insert(0, audit::IDENTITY_LINKED);
    }
    for (ws, _) in accounts::workspaces_of(conn, &user.id)? {
        for action in &actions {
            audit::Entry {
                workspace_id: &ws.id,
                actor,
                action,
                subject: &user.id,
                detail: Some(&identity),
            }
            .record(conn)?;
        }
    }
    if found == Found::Created {
        log::info!(
            "a person was created for {identity} (KEYGATE_OIDC_CREATE_PEOPLE=on): {}",
            user.id
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
