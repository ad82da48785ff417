//! Authorizations: one row per approval of an app for a workspace (the
//! authorized-apps table), and their revocation with every token under them.

use crate::accounts::audit::Actor;
use crate::credentials::change::Change;
use crate::credentials::revocation::{self, Event};
use crate::db::schema::{access_tokens, auth_codes, authorizations, clients, refresh_tokens};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use std::collections::HashMap;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = authorizations)]
pub struct Authorization {
    pub id: String,
    pub client_id: String,
    pub workspace_id: String,
    pub user_id: String,
    pub scopes: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The registered resource it was granted for, by identifier (the `aud`
    /// of its access tokens); `None`: `{issuer}/v1`.
    pub resource: Option<String>,
}

/// The authorizations' table.
pub const TABLE: &str = "authorizations";

impl Authorization {
    /// A new, active authorization of `client_id` for the workspace,
    /// approved by `user_id`, to [record](Authorization::record).
    pub fn new(
        client_id: &str,
        (workspace_id, user_id): (&str, &str),
        scopes: &str,
        resource: Option<String>,
    ) -> Authorization {
        Authorization {
            id: db::new_id(),
            client_id: client_id.to_string(),
            workspace_id: workspace_id.to_string(),
            user_id: user_id.to_string(),
            scopes: scopes.to_string(),
            created_at: db::now(),
            revoked_at: None,
            last_used_at: None,
            resource,
        }
    }

    /// Inside the approval's transaction: writes a [new](Authorization::new)
    /// authorization (kept prepared: the flow writes one per approval).
    pub fn record(self, conn: &mut DbConn) -> QueryResult<Authorization> {
        db::kept::insert(conn, TABLE, &self.row())?;
        Ok(self)
    }

    /// Its row in [`TABLE`], as a new authorization (active, never used).
    pub fn row(&self) -> [(&'static str, db::Piece<'_>); 7] {
        use authorizations as a;
        use db::Piece::{Int, OptText, Text};
        use diesel::Column;
        [
            (a::id::NAME, Text(&self.id)),
            (a::client_id::NAME, Text(&self.client_id)),
            (a::workspace_id::NAME, Text(&self.workspace_id)),
            (a::user_id::NAME, Text(&self.user_id)),
            (a::scopes::NAME, Text(&self.scopes)),
            (a::created_at::NAME, Int(self.created_at)),
            (a::resource::NAME, OptText(self.resource.as_deref())),
        ]
    }

    pub fn status(&self) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        }
    }
}

/// A row of the authorized-apps table, with the names people read.
#[derive(Clone, Debug)]
pub struct AppRow {
    pub authorization: Authorization,
    pub app_name: String,
    pub authorized_by: String,
    /// The app (deleted ones too: their authorizations stay listed).
    pub client: super::clients::Client,
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Authorization> {
    authorizations::table
        .find(id)
        .select(Authorization::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no authorization with id {id:?}")))
}

/// Newest first.
pub fn list_for_workspace(conn: &mut DbConn, workspace_id: &str) -> Result<Vec<AppRow>> {
    let rows: Vec<(Authorization, super::clients::Client)> = authorizations::table
        .inner_join(clients::table)
        .filter(authorizations::workspace_id.eq(workspace_id))
        .order(authorizations::id.desc())
        .select((
            Authorization::as_select(),
            super::clients::Client::as_select(),
        ))
        .load(conn)?;
    let rows = crate::accounts::with_creator_emails(conn, rows, |(a, _)| &a.user_id)?;
    Ok(rows
        .into_iter()
        .filter_map(|((authorization, client), authorized_by)| {
            Some(AppRow {
                authorization,
                app_name: client.name.clone(),
                authorized_by: authorized_by?,
                client,
            })
        })
        .collect())
}

/// Batched usage: when each authorization was last used (id → (uses, last
/// use)), hundreds a statement.
pub fn mark_used(
    conn: &mut DbConn,
    used: &std::collections::HashMap<String, (i64, i64)>,
) -> Result<()> {
    use diesel::sql_types::{BigInt, Text};
    db::write_values(
        conn,
        used,
        2,
        |values| {
            format!(
                "UPDATE authorizations SET last_used_at = v.column2 \
                 FROM (VALUES {values}) AS v WHERE authorizations.id = v.column1"
            )
        },
        |q, (id, (_, at))| q.bind::<Text, _>(id.to_string()).bind::<BigInt, _>(*at),
    )?;
    Ok(())
}

/// Inside a transaction: marks the authorization revoked, ends its refresh
/// tokens and unredeemed codes, and its live access tokens by event; when it
/// was active, the change is recorded (`credentials::Change`: the security-log
/// row `action` by `by`, with the events). Deletes nothing. Returns the events.
pub fn revoke_in_tx(
    conn: &mut DbConn,
    id: &str,
    workspace_id: &str,
    action: &str,
    by: Actor,
) -> Result<Vec<Event>> {
    let now = db::now();
    let ended = diesel::update(
        authorizations::table
            .find(id)
            .filter(authorizations::revoked_at.is_null()),
    )
    .set(authorizations::revoked_at.eq(now))
    .execute(conn)?;
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::authorization_id.eq(id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    diesel::update(
        auth_codes::table
            .filter(auth_codes::authorization_id.eq(id))
            .filter(auth_codes::used_at.is_null()),
    )
    .set(auth_codes::used_at.eq(now))
    .execute(conn)?;
    let live = access_tokens::table
        .filter(access_tokens::authorization_id.eq(id))
        .filter(access_tokens::revoked_at.is_null())
        .filter(access_tokens::expires_at.gt(now));
    let tokens: Vec<(String, i64)> = live
        .select((access_tokens::jti, access_tokens::expires_at))
        .load(conn)?;
    diesel::update(live)
        .set(access_tokens::revoked_at.eq(now))
        .execute(conn)?;
    let events: Vec<Event> = tokens
        .iter()
        .map(|(jti, exp)| Event::access_token(jti, *exp))
        .collect();
    if ended == 0 {
        revocation::record(conn, &events)?;
        return Ok(events);
    }
    Change::new(id, action, by)
        .with_events(&events)
        .record(conn, workspace_id, None)
}

/// Why an authorization ends: each cause is its own security-log action.
#[derive(Clone, Copy, Debug)]
pub enum Cause<'a> {
    /// A workspace owner or admin, in the settings pages, or the CLI.
    Person(Actor<'a>),
    /// An authorization code presented twice (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
    CodeReplay,
    /// A used refresh token presented again (RFC 9700 §4.14.2).
    RefreshReuse,
    /// The client revoked a refresh token (RFC 7009 §2.1).
    ClientRevocation,
    /// A grant found that the person who approved the app is no longer an
    /// owner or admin of the workspace.
    ApproverRemoved,
}

impl Cause<'_> {
    fn action(&self) -> &'static str {
        match self {
            Cause::Person(_) => "app.revoked",
            Cause::CodeReplay => "app.revoked_code_replay",
            Cause::RefreshReuse => "app.revoked_refresh_reuse",
            Cause::ClientRevocation => "app.revoked_by_client",
            Cause::ApproverRemoved => "app.revoked_approver_removed",
        }
    }
    /// Who ended it: the person, or for every other cause the app itself.
    fn actor<'b>(&'b self, authorization: &'b Authorization) -> Actor<'b> {
        match self {
            Cause::Person(by) => *by,
            _ => Actor {
                id: &authorization.client_id,
                client_address: None,
            },
        }
    }
}

/// Revokes one authorization (idempotent) and, when it was active, writes the
/// security-log row in the same transaction. Returns the events recorded, for
/// the caller to apply to its cache.
pub fn revoke_recorded(
    conn: &mut DbConn,
    id: &str,
    cause: Cause,
) -> Result<(Authorization, Vec<Event>)> {
    db::write_tx(conn, |conn| {
        let before = find(conn, id)?;
        let (action, by) = (cause.action(), cause.actor(&before));
        let events = revoke_in_tx(conn, id, &before.workspace_id, action, by)?;
        if before.revoked_at.is_none() {
            crate::metrics::METRICS
                .revocations
                .with_label_values(&["authorization"])
                .inc();
        }
        Ok((find(conn, id)?, events))
    })
}

/// Revokes one authorization: recorded, logged, and applied to this node's
/// cache at once (other nodes read the events from the database).
pub fn revoke(
    conn: &mut DbConn,
    cache: &crate::credentials::cache::CredentialCache,
    id: &str,
    cause: Cause,
) -> Result<Authorization> {
    let (authorization, events) = revoke_recorded(conn, id, cause)?;
    cache.apply(&events);
    Ok(authorization)
}

/// Inside a transaction: revokes every active authorization a person approved in
/// a workspace (they were removed from it). Returns the events recorded.
pub fn revoke_approved_by(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
    action: &str,
) -> Result<Vec<Event>> {
    let ids: Vec<String> = authorizations::table
        .filter(authorizations::workspace_id.eq(workspace_id))
        .filter(authorizations::user_id.eq(user_id))
        .filter(authorizations::revoked_at.is_null())
        .select(authorizations::id)
        .load(conn)?;
    let by = Actor {
        id: "keygate",
        client_address: None,
    };
    let mut events = Vec::new();
    for id in &ids {
        events.extend(revoke_in_tx(conn, id, workspace_id, action, by)?);
    }
    Ok(events)
}

/// Inside the transaction that deletes a resource: revokes every active
/// authorization granted for it (by identifier), each logged in its
/// workspace. Returns the events recorded (`resources::RevokeGranted`).
pub fn revoke_for_resource(conn: &mut DbConn, identifier: &str) -> Result<Vec<Event>> {
    let granted: Vec<(String, String)> = authorizations::table
        .filter(authorizations::resource.eq(identifier))
        .filter(authorizations::revoked_at.is_null())
        .select((authorizations::id, authorizations::workspace_id))
        .load(conn)?;
    let by = Actor {
        id: "keygate",
        client_address: None,
    };
    let mut events = Vec::new();
    for (id, workspace_id) in &granted {
        events.extend(revoke_in_tx(
            conn,
            id,
            workspace_id,
            "app.revoked_resource_deleted",
            by,
        )?);
    }
    Ok(events)
}

/// Removes a person from a workspace and, in the same transaction, revokes the
/// apps they authorized there, with the security-log rows; this node's cache
/// forgets their tokens at once. The last owner is never removed. Returns how
/// many authorizations were revoked.
pub fn remove_member(
    conn: &mut DbConn,
    cache: &crate::credentials::cache::CredentialCache,
    workspace_id: &str,
    user_id: &str,
    actor: &str,
) -> Result<usize> {
    let (revoked, events) = db::write_tx(conn, |conn| {
        let revoked: i64 = authorizations::table
            .filter(authorizations::workspace_id.eq(workspace_id))
            .filter(authorizations::user_id.eq(user_id))
            .filter(authorizations::revoked_at.is_null())
            .count()
            .get_result(conn)?;
        crate::accounts::remove_membership(conn, workspace_id, user_id)?;
        let events = revoke_approved_by(conn, workspace_id, user_id, "app.revoked_member_removed")?;
        let by = Actor {
            id: actor,
            client_address: None,
        };
        Change::new(user_id, "member.removed", by).record(conn, workspace_id, None)?;
        Ok::<_, crate::error::Error>((revoked as usize, events))
    })?;
    cache.apply(&events);
    Ok(revoked)
}

/// Changes a member's role and, in the same transaction, when they lose the
/// right to authorize apps (an owner or admin made a member), revokes the
/// apps they authorized in the workspace, as removal does; this node's cache
/// forgets their tokens at once. The last owner keeps theirs.
pub fn change_role(
    conn: &mut DbConn,
    cache: &crate::credentials::cache::CredentialCache,
    workspace_id: &str,
    user_id: &str,
    role: crate::accounts::Role,
    by: Actor,
) -> Result<crate::accounts::Role> {
    let events = db::write_tx(conn, |conn| {
        let before = crate::accounts::members::change_role_in_tx(
            conn,
            workspace_id,
            user_id,
            role,
            by.id,
            by.client_address,
        )?;
        match before.can_manage() && !role.can_manage() {
            true => revoke_approved_by(conn, workspace_id, user_id, "app.revoked_member_demoted"),
            false => Ok(Vec::new()),
        }
    })?;
    cache.apply(&events);
    Ok(role)
}

/// The access tokens' records for the bearer check (`credentials::Stored`).
pub struct Tokens;
pub static TOKENS: Tokens = Tokens;

impl crate::credentials::StoredTokens for Tokens {
    fn live_access_token(&self, conn: &mut DbConn, jti: &str) -> Result<Option<String>> {
        // No token without its record, and none under a revoked authorization.
        let row: Option<(String, Option<i64>, Option<i64>)> = access_tokens::table
            .inner_join(
                authorizations::table.on(authorizations::id.eq(access_tokens::authorization_id)),
            )
            .filter(access_tokens::jti.eq(jti))
            .select((
                access_tokens::authorization_id,
                access_tokens::revoked_at,
                authorizations::revoked_at,
            ))
            .first(conn)
            .optional()?;
        Ok(match row {
            Some((authorization_id, None, None)) => Some(authorization_id),
            _ => None,
        })
    }
}

/// The names of the apps of the authorizations among `ids`, for the
/// security log.
pub fn app_names_of(conn: &mut DbConn, ids: &[String]) -> Result<HashMap<String, String>> {
    let named = authorizations::table
        .inner_join(clients::table.on(clients::id.eq(authorizations::client_id)))
        .filter(authorizations::id.eq_any(ids));
    Ok(db::id_map(
        conn,
        named.select((authorizations::id, clients::name)),
    )?)
}

/// Inside a transaction: revokes every active authorization of a workspace
/// (`workspace_id`), or that a person approved in any workspace (`user_id`),
/// each logged as `action` by `by`. Returns the events recorded.
pub fn revoke_all_of(
    conn: &mut DbConn,
    workspace_id: Option<&str>,
    user_id: Option<&str>,
    action: &str,
    by: Actor,
) -> Result<Vec<Event>> {
    let mut q = authorizations::table
        .filter(authorizations::revoked_at.is_null())
        .into_boxed();
    if let Some(ws) = workspace_id {
        q = q.filter(authorizations::workspace_id.eq(ws.to_string()));
    }
    if let Some(user) = user_id {
        q = q.filter(authorizations::user_id.eq(user.to_string()));
    }
    let rows: Vec<(String, String)> = q
        .select((authorizations::id, authorizations::workspace_id))
        .load(conn)?;
    let mut events = Vec::new();
    for (id, ws) in &rows {
        events.extend(revoke_in_tx(conn, id, ws, action, by)?);
    }
    Ok(events)
}
