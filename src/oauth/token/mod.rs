//! The token endpoint's grants (RFC 6749 §4.1.3 and §6), each in one short
//! transaction. Codes and refresh tokens are single-use by a conditional UPDATE,
//! so that a lost race is an `invalid_grant`, never a 500.

use super::authorizations::{self, Authorization};
use super::error::OAuthError;
use crate::credentials::signing_keys::{AccessClaims, KeyRing};
use super::{engine, Params};
use crate::credentials::scopes;
use crate::oauth::clients::Client;
use crate::config::Config;
use crate::crypto;
use crate::db::schema::{access_tokens, auth_codes, authorizations as authz, refresh_tokens};
use crate::db::{self, DbConn};
use crate::credentials::revocation::Event;
use diesel::prelude::*;
use serde::Serialize;

#[derive(Serialize, Debug)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub scope: String,
    pub workspace_id: String,
}

/// What a grant produced: the response, or an error plus revocation events to
/// apply (a replayed code or refresh token revokes its authorization).
pub type GrantResult = Result<TokenResponse, (OAuthError, Vec<Event>)>;

#[derive(Queryable, Selectable)]
#[diesel(table_name = auth_codes)]
struct CodeRow {
    authorization_id: String,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    expires_at: i64,
    used_at: Option<i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshRow {
    authorization_id: String,
    client_id: String,
    scopes: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

fn plain(e: OAuthError) -> (OAuthError, Vec<Event>) {
    (e, Vec::new())
}

fn internal(e: impl Into<OAuthError>) -> (OAuthError, Vec<Event>) {
    (e.into(), Vec::new())
}

/// Revokes the authorization behind a replayed code or refresh token and answers
/// `invalid_grant`.
fn replayed(conn: &mut DbConn, authorization_id: &str, what: &str) -> (OAuthError, Vec<Event>) {
    // Lost to a revocation rather than replayed: nothing more to revoke.
    if let Ok(a) = authorizations::find(conn, authorization_id) {
        if a.revoked_at.is_some() {
            return plain(OAuthError::invalid_grant(
                "the authorization has been revoked",
            ));
        }
    }
    log::warn!("{what} replayed: revoking authorization {authorization_id}");
    let events = match authorizations::revoke(conn, authorization_id) {
        Ok((_, events)) => events,
        Err(e) => return internal(e),
    };
    (
        OAuthError::invalid_grant(format!(
            "the {what} was already used; every token issued from it has been revoked"
        )),
        events,
    )
}

/// Inside a transaction: refresh token and access token for an authorization.
fn issue(
    conn: &mut DbConn,
    config: &Config,
    keys: &KeyRing,
    authorization: &Authorization,
    refresh_scopes: &str,
    access_scopes: &str,
) -> Result<TokenResponse, OAuthError> {
    let now = db::now();
    let refresh_token = crypto::random_token(32);
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(crypto::sha256_hex(&refresh_token)),
            refresh_tokens::authorization_id.eq(&authorization.id),
            refresh_tokens::client_id.eq(&authorization.client_id),
            refresh_tokens::scopes.eq(refresh_scopes),
            refresh_tokens::created_at.eq(now),
            refresh_tokens::expires_at.eq(now + config.refresh_token_ttl),
        ))
        .execute(conn)?;
    let claims = AccessClaims {
        iss: config.issuer.clone(),
        sub: authorization.user_id.clone(),
        aud: config.resource(),
        client_id: authorization.client_id.clone(),
        scope: access_scopes.to_string(),
        jti: db::new_id(),
        iat: now,
        exp: now + config.access_token_ttl,
        workspace_id: authorization.workspace_id.clone(),
    };
    diesel::insert_into(access_tokens::table)
        .values((
            access_tokens::jti.eq(&claims.jti),
            access_tokens::authorization_id.eq(&authorization.id),
            access_tokens::client_id.eq(&claims.client_id),
            access_tokens::created_at.eq(now),
            access_tokens::expires_at.eq(claims.exp),
        ))
        .execute(conn)?;
    let access_token = keys.sign(&claims)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: config.access_token_ttl,
        refresh_token,
        scope: access_scopes.to_string(),
        workspace_id: authorization.workspace_id.clone(),
    })
}

/// Inside a transaction: marks the authorization used if it is still active.
/// The row lock this takes orders the grant against a concurrent revocation,
/// which locks the same row first.
fn touch_active(conn: &mut DbConn, authorization_id: &str) -> Result<bool, OAuthError> {
    let n = diesel::update(
        authz::table
            .find(authorization_id)
            .filter(authz::revoked_at.is_null()),
    )
    .set(authz::last_used_at.eq(db::now()))
    .execute(conn)?;
    Ok(n == 1)
}

enum Redeemed {
    Issued(TokenResponse),
    Replayed,
    Refused(OAuthError),
}

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).
pub fn authorization_code(
    conn: &mut DbConn,
    config: &Config,
    keys: &KeyRing,
    client: &Client,
    params: &Params,
) -> GrantResult {
    let code = params
        .get("code")
        .map_err(plain)?
        .ok_or_else(|| plain(OAuthError::invalid_request("code is required")))?;
    let redirect_uri = params
        .get("redirect_uri")
        .map_err(plain)?
        .ok_or_else(|| plain(OAuthError::invalid_request("redirect_uri is required")))?;
    let verifier = params.get("code_verifier").map_err(plain)?.ok_or_else(|| {
        plain(OAuthError::invalid_request(
            "code_verifier is required (PKCE)",
        ))
    })?;
    super::check_resource(params, &config.resource()).map_err(plain)?;

    let code_hash = crypto::sha256_hex(code);
    // The authorization comes along: what a grant needs of it never changes.
    let row: Option<(CodeRow, Authorization)> = auth_codes::table
        .find(&code_hash)
        .inner_join(authz::table.on(authz::id.eq(auth_codes::authorization_id)))
        .select((CodeRow::as_select(), Authorization::as_select()))
        .first(conn)
        .optional()
        .map_err(internal)?;
    let invalid = |why: &str| plain(OAuthError::invalid_grant(why));
    let Some((row, authorization)) = row else {
        return Err(invalid("the authorization code is invalid"));
    };
    if row.client_id != client.id {
        return Err(invalid(
            "the authorization code was issued to another client",
        ));
    }
    if row.used_at.is_some() {
        return Err(replayed(conn, &row.authorization_id, "authorization code"));
    }
    if row.expires_at < db::now() {
        return Err(invalid("the authorization code has expired"));
    }
    if row.redirect_uri != redirect_uri {
        return Err(invalid(
            "redirect_uri does not match the authorization request",
        ));
    }
    if !engine::verify(&row.code_challenge, verifier) {
        return Err(invalid(
            "the code_verifier does not match the code_challenge",
        ));
    }
    let outcome = db::write_tx(conn, |conn| {
        // The authorization row first: a revocation locks it first too, so the
        // two never wait on each other in opposite orders.
        if !touch_active(conn, &authorization.id)? {
            return Ok(Redeemed::Refused(OAuthError::invalid_grant(
                "the authorization has been revoked",
            )));
        }
        let now = db::now();
        let n = diesel::update(
            auth_codes::table
                .find(&code_hash)
                .filter(auth_codes::used_at.is_null()),
        )
        .set(auth_codes::used_at.eq(now))
        .execute(conn)?;
        if n == 0 {
            return Ok(Redeemed::Replayed);
        }
        let granted = authorization.scopes.clone();
        issue(conn, config, keys, &authorization, &granted, &granted).map(Redeemed::Issued)
    })
    .map_err(plain)?;
    match outcome {
        Redeemed::Issued(r) => Ok(r),
        Redeemed::Refused(e) => Err(plain(e)),
        Redeemed::Replayed => Err(replayed(conn, &row.authorization_id, "authorization code")),
    }
}

/// `grant_type=refresh_token` (RFC 6749 §6): rotates on every use; a used one
/// presented again revokes the whole authorization (RFC 9700 §4.14.2).
pub fn refresh_token(
    conn: &mut DbConn,
    config: &Config,
    keys: &KeyRing,
    client: &Client,
    params: &Params,
) -> GrantResult {
    let token = params
        .get("refresh_token")
        .map_err(plain)?
        .ok_or_else(|| plain(OAuthError::invalid_request("refresh_token is required")))?;
    let requested_scope = params.get("scope").map_err(plain)?;
    super::check_resource(params, &config.resource()).map_err(plain)?;

    let hash = crypto::sha256_hex(token);
    // The authorization comes along: what a grant needs of it never changes.
    let row: Option<(RefreshRow, Authorization)> = refresh_tokens::table
        .find(&hash)
        .inner_join(authz::table.on(authz::id.eq(refresh_tokens::authorization_id)))
        .select((RefreshRow::as_select(), Authorization::as_select()))
        .first(conn)
        .optional()
        .map_err(internal)?;
    let invalid = |why: &str| plain(OAuthError::invalid_grant(why));
    let Some((row, authorization)) = row else {
        return Err(invalid("the refresh token is invalid"));
    };
    if row.client_id != client.id {
        return Err(invalid("the refresh token was issued to another client"));
    }
    if row.revoked_at.is_some() {
        return Err(invalid("the refresh token has been revoked"));
    }
    if row.used_at.is_some() {
        return Err(replayed(conn, &row.authorization_id, "refresh token"));
    }
    if row.expires_at < db::now() {
        return Err(invalid("the refresh token has expired"));
    }
    // RFC 6749 §6: a narrower scope may be asked for; never a wider one.
    let granted = scopes::split(&row.scopes);
    let access_scopes = match requested_scope {
        None => row.scopes.clone(),
        Some(s) => {
            let wanted = scopes::parse(Some(s)).map_err(|e| plain(e.into()))?;
            if let Some(extra) = wanted.iter().find(|w| !granted.iter().any(|g| g == *w)) {
                return Err(plain(OAuthError::invalid_scope(format!(
                    "scope {extra:?} was not granted to this refresh token"
                ))));
            }
            scopes::join(&wanted)
        }
    };
    let outcome = db::write_tx(conn, |conn| {
        // Lock order as in the code exchange: authorization, then token.
        if !touch_active(conn, &authorization.id)? {
            return Ok(Redeemed::Refused(OAuthError::invalid_grant(
                "the authorization has been revoked",
            )));
        }
        let now = db::now();
        let n = diesel::update(
            refresh_tokens::table
                .find(&hash)
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::used_at.eq(now))
        .execute(conn)?;
        if n == 0 {
            return Ok(Redeemed::Replayed);
        }
        issue(
            conn,
            config,
            keys,
            &authorization,
            &row.scopes,
            &access_scopes,
        )
        .map(Redeemed::Issued)
    })
    .map_err(plain)?;
    match outcome {
        Redeemed::Issued(r) => Ok(r),
        Redeemed::Refused(e) => Err(plain(e)),
        Redeemed::Replayed => Err(replayed(conn, &row.authorization_id, "refresh token")),
    }
}
