//! Identity providers a workspace trusts for identity assertion grants
//! (RFC 7523 §2.1 with the identity assertion JWT authorization grant,
//! "ID-JAG"): the provider's issuer and where it publishes its keys. Only
//! the workspace's owners (the CLI, the settings pages) add and remove them;
//! each change is in the workspace's security log.

use crate::accounts::audit::{Actor, Entry};
use crate::db::schema::trusted_issuers;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

/// The most identity providers one workspace trusts.
pub const MAX_PER_WORKSPACE: i64 = 20;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = trusted_issuers)]
pub struct TrustedIssuer {
    pub id: String,
    pub workspace_id: String,
    pub issuer: String,
    pub jwks_uri: String,
    pub created_at: i64,
}

/// An issuer identifier: an `https` URL without query or fragment (OpenID
/// Connect Discovery §3), compared exactly.
fn check_issuer(raw: &str) -> Result<String> {
    let url = url::Url::parse(raw).map_err(|_| Error::invalid(format!("{raw:?} is not a URL")))?;
    if url.scheme() != "https"
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(Error::invalid(format!(
            "the issuer {raw:?} must be an https URL without query or fragment"
        )));
    }
    Ok(raw.to_string())
}

/// Trusts `issuer` (its keys at `jwks_uri`) for `workspace_id`.
pub fn add(
    conn: &mut DbConn,
    workspace_id: &str,
    issuer: &str,
    jwks_uri: &str,
    by: Actor,
) -> Result<TrustedIssuer> {
    let issuer = check_issuer(issuer.trim())?;
    crate::credentials::jose::check_jwks_uri(jwks_uri).map_err(Error::invalid)?;
    db::write_tx(conn, |conn| {
        crate::accounts::find_workspace(conn, workspace_id)?;
        let kept: i64 = trusted_issuers::table
            .filter(trusted_issuers::workspace_id.eq(workspace_id))
            .count()
            .get_result(conn)?;
        if kept >= MAX_PER_WORKSPACE {
            return Err(Error::invalid(format!(
                "a workspace trusts at most {MAX_PER_WORKSPACE} identity providers"
            )));
        }
        let taken = trusted_issuers::table
            .filter(trusted_issuers::workspace_id.eq(workspace_id))
            .filter(trusted_issuers::issuer.eq(&issuer))
            .count()
            .get_result::<i64>(conn)?;
        if taken > 0 {
            return Err(Error::conflict(format!(
                "the workspace already trusts {issuer}"
            )));
        }
        let row = TrustedIssuer {
            id: db::new_id(),
            workspace_id: workspace_id.to_string(),
            issuer: issuer.clone(),
            jwks_uri: jwks_uri.to_string(),
            created_at: db::now(),
        };
        diesel::insert_into(trusted_issuers::table)
            .values(&row)
            .execute(conn)?;
        log(conn, &row, "trust.added", by)?;
        Ok(row)
    })
}

fn log(conn: &mut DbConn, row: &TrustedIssuer, action: &str, by: Actor) -> Result<()> {
    Entry {
        workspace_id: &row.workspace_id,
        actor: by,
        action,
        subject: &row.id,
        detail: Some(&row.issuer),
    }
    .record(conn)
}

/// A workspace's trusted identity providers, oldest first.
pub fn list(conn: &mut DbConn, workspace_id: &str) -> Result<Vec<TrustedIssuer>> {
    crate::accounts::find_workspace(conn, workspace_id)?;
    Ok(trusted_issuers::table
        .filter(trusted_issuers::workspace_id.eq(workspace_id))
        .order(trusted_issuers::created_at.asc())
        .select(TrustedIssuer::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<TrustedIssuer> {
    trusted_issuers::table
        .find(id)
        .select(TrustedIssuer::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no trusted identity provider with id {id:?}")))
}

/// Stops trusting a provider: assertions it signs are refused from now on
/// (tokens already issued stay until revoked or expired, like any app's).
pub fn remove(conn: &mut DbConn, id: &str, by: Actor) -> Result<TrustedIssuer> {
    db::write_tx(conn, |conn| {
        let row = find(conn, id)?;
        diesel::delete(trusted_issuers::table.find(id)).execute(conn)?;
        log(conn, &row, "trust.removed", by)?;
        Ok(row)
    })
}

/// Every workspace's trust of `issuer` (an identity assertion names only its
/// issuer; the person decides which workspace it is for).
pub fn trusting(conn: &mut DbConn, issuer: &str) -> Result<Vec<TrustedIssuer>> {
    Ok(trusted_issuers::table
        .filter(trusted_issuers::issuer.eq(issuer))
        .limit(MAX_PER_WORKSPACE * 5)
        .select(TrustedIssuer::as_select())
        .load(conn)?)
}

/// The person linked to (`issuer`, `subject`) (`accounts::identities`, the
/// links sign-in through an identity provider makes); `None` when there is
/// no such link (the grant then looks for the person by email).
pub fn linked_person(conn: &mut DbConn, issuer: &str, subject: &str) -> Result<Option<String>> {
    crate::accounts::identities::find_user(conn, issuer, subject)
}
