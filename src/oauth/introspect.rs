//! Token introspection (RFC 7662), for confidential clients. A client sees only
//! its own tokens as active; everything else is `{"active": false}`.

use super::Params;
use crate::credentials::bearer::{self, Lookup, Principal};
use crate::oauth::clients::Client;
use crate::crypto;
use crate::db::schema::{authorizations, refresh_tokens};
use crate::db::{self, DbConn};
use crate::error::Result;
use crate::node::state::Services;
use diesel::prelude::*;
use serde_json::{json, Value};

fn inactive() -> Value {
    json!({ "active": false })
}

/// The fast path for access tokens: memory only. `None` means ask the database.
pub fn cached(svc: &Services, client: &Client, token: &str) -> Option<Value> {
    match bearer::check_cached(svc, token) {
        Lookup::Found(p) => Some(describe(svc, client, &p)),
        Lookup::Invalid
            if !token.starts_with(crate::apikeys::KEY_PREFIX) && token.contains('.') =>
        {
            Some(inactive())
        }
        _ => None,
    }
}

fn describe(svc: &Services, client: &Client, principal: &Principal) -> Value {
    match principal {
        Principal::AccessToken(t) if t.client_id == client.id => json!({
            "active": true,
            "scope": t.scopes.join(" "),
            "client_id": t.client_id,
            "sub": t.sub,
            "exp": t.exp,
            "iat": t.iat,
            "iss": svc.config.issuer,
            "aud": svc.config.resource(),
            "jti": t.jti,
            "token_type": "Bearer",
            "workspace_id": t.workspace_id,
        }),
        _ => inactive(),
    }
}

pub fn introspect(
    svc: &Services,
    conn: &mut DbConn,
    client: &Client,
    params: &Params,
) -> Result<Value> {
    let Ok(Some(token)) = params.get("token") else {
        return Ok(inactive());
    };
    // RFC 7662 §2.1: the hint orders the search; a token not found under it is
    // looked for under the other type.
    if params.get("token_type_hint").ok().flatten() == Some("refresh_token") {
        let v = refresh(svc, conn, client, token)?;
        if v["active"] == true {
            return Ok(v);
        }
        return access(svc, conn, client, token);
    }
    let v = access(svc, conn, client, token)?;
    if v["active"] == true || token.contains('.') {
        return Ok(v);
    }
    refresh(svc, conn, client, token)
}

fn access(svc: &Services, conn: &mut DbConn, client: &Client, token: &str) -> Result<Value> {
    if let Some(v) = cached(svc, client, token) {
        return Ok(v);
    }
    if !token.contains('.') {
        return Ok(inactive());
    }
    Ok(match bearer::check_stored(svc, conn, token)? {
        Some(p) => describe(svc, client, &p),
        None => inactive(),
    })
}

/// client, scopes, iat, exp, used, revoked, authorization revoked, user, workspace
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
);

fn refresh(svc: &Services, conn: &mut DbConn, client: &Client, token: &str) -> Result<Value> {
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
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((client_id, scopes, iat, exp, None, None, None, sub, workspace_id))
            if client_id == client.id && exp > now =>
        {
            json!({
                "active": true,
                "scope": scopes,
                "client_id": client_id,
                "sub": sub,
                "exp": exp,
                "iat": iat,
                "iss": svc.config.issuer,
                "aud": svc.config.resource(),
                "token_type": "refresh_token",
                "workspace_id": workspace_id,
            })
        }
        _ => inactive(),
    })
}
