//! The OAuth access token as a presented credential: a JWT (RFC 9068) that is
//! verified with the signing keys, and honoured only while its record and its
//! authorization stand. The issuer's introspection and the `/v1` check both
//! use this; neither imports the other.

use super::cache::CachedToken;
use super::signing_keys::VerifyError;
use super::Credentials;
use crate::crypto;
use crate::db::{self, DbConn};
use crate::error::Result;
use std::sync::Arc;

/// What the memory-only path found.
pub enum Cached {
    Valid(Arc<CachedToken>),
    /// Certainly not valid (expired or revoked).
    Invalid,
    /// Not cached: ask the database.
    Miss,
}

pub fn looks_like_jwt(s: &str) -> bool {
    s.bytes().filter(|b| *b == b'.').count() == 2
}

/// Memory only. While the revocation feed is stale memory proves nothing, and
/// every token is a miss (introspection then asks the database; `/v1` refuses
/// before it gets here).
pub fn cached(creds: &Credentials, token: &str) -> Cached {
    if !creds.cache.feed_fresh() && looks_like_jwt(token) {
        return Cached::Miss;
    }
    cached_while_fresh(creds, token)
}

/// [`cached`] for a caller that has just found the feed fresh (the `/v1`
/// check reads it once for every kind of credential).
pub fn cached_while_fresh(creds: &Credentials, token: &str) -> Cached {
    if !looks_like_jwt(token) {
        return Cached::Invalid;
    }
    let hash = crypto::sha256(token.as_bytes());
    match creds.cache.token(&hash) {
        Some(t) if t.exp > db::now() && !creds.cache.is_revoked(&t.jti) => Cached::Valid(t),
        Some(_) => Cached::Invalid,
        None => Cached::Miss,
    }
}

/// Verifies the signature and claims, then reads the record; caches what is valid.
pub fn stored(
    creds: &Credentials,
    conn: &mut DbConn,
    token: &str,
) -> Result<Option<Arc<CachedToken>>> {
    let fill = creds.cache.fill();
    let claims = match creds.keys.verify(token) {
        Ok(c) => c,
        Err(VerifyError::UnknownKey) => {
            // Perhaps another node rotated the signing key: read the key set
            // again, at most once a second whatever callers send.
            if !creds.keys.reload_if_due(conn, creds.access_token_ttl)? {
                return Ok(None);
            }
            match creds.keys.verify(token) {
                Ok(c) => c,
                Err(_) => return Ok(None),
            }
        }
        Err(_) => return Ok(None),
    };
    if creds.cache.is_revoked(&claims.jti) {
        return Ok(None);
    }
    // No token without its record, and none under a revoked authorization.
    let Some(authorization_id) = creds.stored.tokens.live_access_token(conn, &claims.jti)? else {
        return Ok(None);
    };
    let token_row = Arc::new(CachedToken {
        jti: claims.jti,
        authorization_id,
        client_id: claims.client_id,
        sub: claims.sub,
        workspace_id: claims.workspace_id,
        aud: claims.aud,
        scopes: super::scopes::known(&claims.scope),
        iat: claims.iat,
        exp: claims.exp,
        jkt: claims.cnf.map(|c| c.jkt),
    });
    creds
        .cache
        .put_token(fill, crypto::sha256(token.as_bytes()), token_row.clone());
    Ok(Some(token_row))
}
