//! The one bearer check, for API keys and OAuth access tokens alike. The cached
//! path touches no database; a miss reads the authoritative rows once.

use crate::credentials::cache::{CachedKey, CachedToken};
use crate::crypto;
use crate::db::schema::{access_tokens, authorizations};
use crate::db::{self, DbConn};
use crate::error::Result;
use crate::credentials::signing_keys::VerifyError;
use crate::node::state::Services;
use diesel::prelude::*;

#[derive(Clone, Debug)]
pub enum Principal {
    ApiKey(CachedKey),
    AccessToken(CachedToken),
}

impl Principal {
    pub fn workspace_id(&self) -> &str {
        match self {
            Principal::ApiKey(k) => &k.workspace_id,
            Principal::AccessToken(t) => &t.workspace_id,
        }
    }
    pub fn has_scope(&self, scope: &str) -> bool {
        let scopes = match self {
            Principal::ApiKey(k) => &k.scopes,
            Principal::AccessToken(t) => &t.scopes,
        };
        scopes.iter().any(|s| s == scope)
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::ApiKey(_) => "api_key",
            Principal::AccessToken(_) => "access_token",
        }
    }
}

/// What the fast path found.
pub enum Lookup {
    Found(Principal),
    /// Certainly not a valid credential (malformed, expired, revoked).
    Invalid,
    /// Not cached: ask the database.
    Miss,
}

fn looks_like_jwt(s: &str) -> bool {
    s.bytes().filter(|b| *b == b'.').count() == 2
}

/// The fast path: memory only.
pub fn check_cached(svc: &Services, credential: &str) -> Lookup {
    let now = db::now();
    let hash = crypto::sha256(credential.as_bytes());
    if credential.starts_with(crate::apikeys::KEY_PREFIX) {
        return match svc.cache.key(&hash) {
            Some(k) if k.expires_at.is_none_or(|e| e > now) => Lookup::Found(Principal::ApiKey(k)),
            Some(_) => Lookup::Invalid,
            None if crate::apikeys::parse(credential).is_none() => Lookup::Invalid,
            None => Lookup::Miss,
        };
    }
    if !looks_like_jwt(credential) {
        return Lookup::Invalid;
    }
    match svc.cache.token(&hash) {
        Some(t) if t.exp > now && !svc.cache.is_revoked(&t.jti) => {
            Lookup::Found(Principal::AccessToken(t))
        }
        Some(_) => Lookup::Invalid,
        None => Lookup::Miss,
    }
}

/// The slow path: verify and read the rows, then cache what is valid.
pub fn check_stored(
    svc: &Services,
    conn: &mut DbConn,
    credential: &str,
) -> Result<Option<Principal>> {
    let hash = crypto::sha256(credential.as_bytes());
    if credential.starts_with(crate::apikeys::KEY_PREFIX) {
        let found = crate::apikeys::lookup(conn, credential)?;
        if let Some(k) = &found {
            svc.cache.put_key(hash, k.clone());
        }
        return Ok(found.map(Principal::ApiKey));
    }
    let claims = match svc.keys.verify(credential) {
        Ok(c) => c,
        Err(VerifyError::UnknownKey) => {
            // Perhaps another node rotated the signing key: read the key set again.
            svc.keys.reload(conn, svc.config.access_token_ttl)?;
            match svc.keys.verify(credential) {
                Ok(c) => c,
                Err(_) => return Ok(None),
            }
        }
        Err(_) => return Ok(None),
    };
    if svc.cache.is_revoked(&claims.jti) {
        return Ok(None);
    }
    // No token without its record, and none under a revoked authorization.
    let row: Option<(String, Option<i64>, Option<i64>)> = access_tokens::table
        .inner_join(
            authorizations::table.on(authorizations::id.eq(access_tokens::authorization_id)),
        )
        .filter(access_tokens::jti.eq(&claims.jti))
        .select((
            access_tokens::authorization_id,
            access_tokens::revoked_at,
            authorizations::revoked_at,
        ))
        .first(conn)
        .optional()?;
    let Some((authorization_id, None, None)) = row else {
        return Ok(None);
    };
    let token = CachedToken {
        jti: claims.jti,
        authorization_id,
        client_id: claims.client_id,
        sub: claims.sub,
        workspace_id: claims.workspace_id,
        scopes: crate::credentials::scopes::split(&claims.scope),
        iat: claims.iat,
        exp: claims.exp,
    };
    svc.cache.put_token(hash, token.clone());
    Ok(Some(Principal::AccessToken(token)))
}

/// Counts a successful use (batched; written by the maintenance task).
pub fn record_use(svc: &Services, principal: &Principal) {
    let now = db::now();
    match principal {
        Principal::ApiKey(k) => svc.usage.key_used(&k.id, now),
        Principal::AccessToken(t) => svc.usage.authorization_used(&t.authorization_id, now),
    }
}
