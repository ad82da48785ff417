//! Token introspection (RFC 7662), for confidential clients. A client sees only
//! its own tokens as active; everything else is `{"active": false}`.

use super::clients::Client;
use super::error::OAuthError;
use super::{Issuer, Params};
use crate::credentials::access_token::{self, Cached};
use crate::credentials::cache::CachedToken;
use crate::crypto;
use crate::db::schema::{authorizations, refresh_tokens};
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;
use serde::Serialize;

/// RFC 7662 §2.2; an inactive token carries `active` alone.
#[derive(Serialize, Debug, Default, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// An API key's id, for a resource's introspection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// RFC 9449 §6.2: the DPoP key a bound token needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::credentials::signing_keys::Confirmation>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Introspection::default()
    }
}

fn describe(issuer: &Issuer, client: &Client, t: &CachedToken) -> Introspection {
    if t.client_id != client.id {
        return Introspection::inactive();
    }
    Introspection {
        active: true,
        scope: Some(t.scopes.join(" ")),
        client_id: Some(t.client_id.clone()),
        sub: Some(t.sub.clone()),
        exp: Some(t.exp),
        iat: Some(t.iat),
        iss: Some(issuer.config.issuer.clone()),
        aud: Some(t.aud.clone()),
        jti: Some(t.jti.clone()),
        token_type: Some(if t.jkt.is_some() { "DPoP" } else { "Bearer" }),
        workspace_id: Some(t.workspace_id.clone()),
        key_id: None,
        cnf: t
            .jkt
            .clone()
            .map(|jkt| crate::credentials::signing_keys::Confirmation { jkt }),
    }
}

/// The steady state, from memory alone: a cached client and a cached (or
/// certainly invalid) access token. `None` means the database must be asked.
pub fn from_memory(
    issuer: &Issuer,
    authorization_header: Option<&str>,
    params: &Params,
) -> Option<std::result::Result<Introspection, OAuthError>> {
    // An assertion is checked against the database (its jti is single use).
    if params.get("client_assertion").ok().flatten().is_some() {
        return None;
    }
    if let Some(by_resource) =
        super::resource_clients::introspect_from_memory(issuer, authorization_header, params)
    {
        return Some(by_resource);
    }
    let client = match super::client_auth::authenticate_from_memory(
        issuer.clients,
        authorization_header,
        params,
        super::client_auth::Allow::ConfidentialOnly,
    )? {
        Ok(c) => c,
        Err(e) => return Some(Err(e)),
    };
    let token = params.get("token").ok().flatten()?;
    if params.get("token_type_hint").ok().flatten() == Some("refresh_token") {
        return None;
    }
    match access_token::cached(issuer.credentials, token) {
        Cached::Valid(t) => Some(Ok(describe(issuer, &client, &t))),
        Cached::Invalid if access_token::looks_like_jwt(token) => {
            Some(Ok(Introspection::inactive()))
        }
        _ => None,
    }
}

/// The introspection endpoint (RFC 7662 §2.1).
pub fn request(
    issuer: &Issuer,
    conn: &mut DbConn,
    authorization_header: Option<&str>,
    params: &Params,
) -> std::result::Result<Introspection, OAuthError> {
    if let Some(by_resource) =
        super::resource_clients::introspect(issuer, conn, authorization_header, params)
    {
        return by_resource;
    }
    let client = issuer.authenticate(
        conn,
        authorization_header,
        params,
        super::client_auth::Allow::ConfidentialOnly,
    )?;
    let token = params
        .get("token")?
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    Ok(introspect(issuer, conn, &client, token, params)?)
}

fn introspect(
    issuer: &Issuer,
    conn: &mut DbConn,
    client: &Client,
    token: &str,
    params: &Params,
) -> Result<Introspection> {
    // RFC 7662 §2.1: the hint orders the search; a token not found under it is
    // looked for under the other type.
    if params.get("token_type_hint").ok().flatten() == Some("refresh_token") {
        let v = refresh(issuer, conn, client, token)?;
        if v.active {
            return Ok(v);
        }
        return access(issuer, conn, client, token);
    }
    let v = access(issuer, conn, client, token)?;
    if v.active || access_token::looks_like_jwt(token) {
        return Ok(v);
    }
    refresh(issuer, conn, client, token)
}

fn access(
    issuer: &Issuer,
    conn: &mut DbConn,
    client: &Client,
    token: &str,
) -> Result<Introspection> {
    Ok(match access_token::cached(issuer.credentials, token) {
        Cached::Valid(t) => describe(issuer, client, &t),
        Cached::Invalid => Introspection::inactive(),
        Cached::Miss => match access_token::stored(issuer.credentials, conn, token)? {
            Some(t) => describe(issuer, client, &t),
            None => Introspection::inactive(),
        },
    })
}

/// client, scopes, iat, exp, used, revoked, authorization revoked, user,
/// workspace, the resource it was granted for
type RefreshState = (
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    String,
    Option<String>,
);

fn refresh(
    issuer: &Issuer,
    conn: &mut DbConn,
    client: &Client,
    token: &str,
) -> Result<Introspection> {
    let now = db::now();
    let row: Option<RefreshState> = refresh_tokens::table
        .inner_join(
            authorizations::table.on(authorizations::id.eq(refresh_tokens::authorization_id)),
        )
        .filter(refresh_tokens::token_hash.eq(crypto::sha256_hex(token)))
        .select((
            refresh_tokens::client_id,
            refresh_tokens::scopes,
            refresh_tokens::created_at,
            refresh_tokens::expires_at,
            refresh_tokens::used_at,
            refresh_tokens::revoked_at,
            authorizations::revoked_at,
            authorizations::user_id,
            authorizations::workspace_id,
            authorizations::resource,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((client_id, scopes, iat, exp, None, None, None, sub, workspace_id, resource))
            if client_id == client.id && exp > now =>
        {
            Introspection {
                active: true,
                scope: Some(scopes),
                client_id: Some(client_id),
                sub: Some(sub),
                exp: Some(exp),
                iat: Some(iat),
                iss: Some(issuer.config.issuer.clone()),
                aud: Some(resource.unwrap_or_else(|| issuer.config.resource())),
                jti: None,
                token_type: Some("refresh_token"),
                workspace_id: Some(workspace_id),
                key_id: None,
                cnf: None,
            }
        }
        _ => Introspection::inactive(),
    })
}
