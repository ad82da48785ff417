//! Token revocation (RFC 7009). The hint orders the search but is not trusted;
//! unknown, invalid or foreign tokens are a silent success.

use super::authorizations;
use super::error::OAuthError;
use super::Issuer;
use super::Params;
use crate::credentials::change::Change;
use crate::credentials::revocation::Event;
use crate::crypto;
use crate::db::schema::{access_tokens, refresh_tokens};
use crate::db::{self, DbConn};
use crate::error::Result;
use crate::oauth::clients::Client;
use diesel::prelude::*;

/// The revocation endpoint (RFC 7009 §2): authenticates the client, revokes
/// what it may revoke, and applies the revocation to this node's cache at once
/// (other nodes read it from the database). An unknown or foreign token is no
/// error (§2.2).
pub fn request(
    issuer: &Issuer,
    conn: &mut DbConn,
    authorization_header: Option<&str>,
    params: &Params,
) -> std::result::Result<(), OAuthError> {
    let client = issuer.authenticate(
        conn,
        authorization_header,
        params,
        super::client_auth::Allow::PublicToo,
    )?;
    let token = params
        .get("token")?
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let events = revoke(issuer, conn, &client, token, params)?;
    if !events.is_empty() {
        crate::metrics::METRICS
            .revocations
            .with_label_values(&["token"])
            .inc();
    }
    issuer.credentials.cache.apply(&events);
    Ok(())
}

/// Revokes what the client may revoke; returns the events recorded.
fn revoke(
    issuer: &Issuer,
    conn: &mut DbConn,
    client: &Client,
    token: &str,
    params: &Params,
) -> Result<Vec<Event>> {
    let refresh_first = params.get("token_type_hint").ok().flatten() == Some("refresh_token");
    if refresh_first {
        if let Some(events) = revoke_refresh(conn, client, token)? {
            return Ok(events);
        }
        return revoke_access(issuer, conn, client, token);
    }
    let events = revoke_access(issuer, conn, client, token)?;
    if !events.is_empty() {
        return Ok(events);
    }
    Ok(revoke_refresh(conn, client, token)?.unwrap_or_default())
}

/// An access token ends alone; nothing else issued under its authorization
/// stops. Its write shares a transaction with the grants and revocations
/// that arrive with it (`db::group`).
fn revoke_access(
    issuer: &Issuer,
    conn: &mut DbConn,
    client: &Client,
    token: &str,
) -> Result<Vec<Event>> {
    if token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Ok(Vec::new());
    }
    let Ok(claims) = issuer.credentials.keys.verify(token) else {
        return Ok(Vec::new());
    };
    if claims.client_id != client.id {
        return Ok(Vec::new());
    }
    let client_id = client.id.clone();
    issuer.writes.run_one(conn, move |conn| {
        let live = access_tokens::jti
            .eq(&claims.jti)
            .and(access_tokens::client_id.eq(&client_id))
            .and(access_tokens::revoked_at.is_null());
        let update = db::kept::Update {
            table: "access_tokens",
            column: "revoked_at",
            value: db::now(),
            condition: &live,
        };
        let by = crate::accounts::audit::Actor {
            id: &client_id,
            client_address: None,
        };
        let ended = [Event::access_token(&claims.jti, claims.exp)];
        let change = Change::new(&claims.jti, "access_token.revoked_by_client", by);
        let made =
            (change.with_events(&ended)).record_update(conn, update, &claims.workspace_id, None)?;
        Ok(made.unwrap_or_default())
    })
}

/// A refresh token ends with every token issued under its grant (RFC 7009 §2.1).
/// `None` when the token is not a refresh token of this client.
fn revoke_refresh(conn: &mut DbConn, client: &Client, token: &str) -> Result<Option<Vec<Event>>> {
    let row: Option<(String, String)> = refresh_tokens::table
        .find(crypto::sha256_hex(token))
        .select((refresh_tokens::authorization_id, refresh_tokens::client_id))
        .first(conn)
        .optional()?;
    match row {
        Some((authorization_id, owner)) if owner == client.id => {
            let (_, events) = authorizations::revoke_recorded(
                conn,
                &authorization_id,
                authorizations::Cause::ClientRevocation,
            )?;
            Ok(Some(events))
        }
        _ => Ok(None),
    }
}
