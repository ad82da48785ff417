//! The one bearer check of the protected resource, for API keys and OAuth
//! access tokens alike. The cached path touches no database; a miss reads the
//! authoritative rows once.

use super::cache::{CachedKey, CachedToken};
use super::key_format::{API_KEY, KEY_PREFIX};
use super::{access_token, Credentials};
use crate::crypto;
use crate::db::{self, DbConn};
use crate::error::Result;
use std::net::IpAddr;
use std::sync::Arc;

/// Shared with the cache: a hit is a reference count, not a copy.
#[derive(Clone, Debug)]
pub enum Principal {
    ApiKey(Arc<CachedKey>),
    AccessToken(Arc<CachedToken>),
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
        scopes.contains(&scope)
    }
    /// Whether a request from `ip` may use this credential: an API key's
    /// address allowlist (access tokens have none).
    pub fn allows_address(&self, ip: Option<IpAddr>) -> bool {
        match self {
            Principal::ApiKey(k) => k.addresses.allows(ip),
            Principal::AccessToken(_) => true,
        }
    }
    /// Whether this credential is accepted at the resource `audience`
    /// (RFC 8707): an API key at every resource, an access token only at the
    /// one it was issued for.
    pub fn serves(&self, audience: &str) -> bool {
        match self {
            Principal::ApiKey(_) => true,
            Principal::AccessToken(t) => t.aud == audience,
        }
    }
    /// The one mailbox a restricted API key may see; `None` for the whole workspace.
    pub fn mailbox_id(&self) -> Option<&str> {
        match self {
            Principal::ApiKey(k) => k.mailbox_id.as_deref(),
            Principal::AccessToken(_) => None,
        }
    }
    /// Who acted, for the security log: the API key or the person behind the token.
    pub fn actor(&self) -> String {
        match self {
            Principal::ApiKey(k) => format!("api_key:{}", k.id),
            Principal::AccessToken(t) => t.sub.clone(),
        }
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
    /// The revocation feed has not been read within the stale bound: what
    /// memory holds may have been revoked elsewhere, so nothing is served
    /// until the database is back (the contract's revocation bound).
    Unavailable,
}

/// The fast path: memory only.
pub fn check_cached(creds: &Credentials, credential: &str) -> Lookup {
    if !creds.cache.feed_fresh() {
        return Lookup::Unavailable;
    }
    if credential.starts_with(KEY_PREFIX) {
        let hash = crypto::sha256(credential.as_bytes());
        return match creds.cache.key(&hash) {
            Some(k) if k.expires_at.is_none_or(|e| e > db::now()) => {
                Lookup::Found(Principal::ApiKey(k))
            }
            Some(_) => Lookup::Invalid,
            None if API_KEY.parse(credential).is_none() => Lookup::Invalid,
            None => Lookup::Miss,
        };
    }
    match access_token::cached_while_fresh(creds, credential) {
        access_token::Cached::Valid(t) => Lookup::Found(Principal::AccessToken(t)),
        access_token::Cached::Invalid => Lookup::Invalid,
        access_token::Cached::Miss => Lookup::Miss,
    }
}

/// The slow path: verify and read the rows, then cache what is valid.
pub fn check_stored(
    creds: &Credentials,
    conn: &mut DbConn,
    credential: &str,
) -> Result<Option<Principal>> {
    if credential.starts_with(KEY_PREFIX) {
        let fill = creds.cache.fill();
        let found = creds.stored.keys.api_key(conn, credential)?.map(Arc::new);
        if let Some(k) = &found {
            creds
                .cache
                .put_key(fill, crypto::sha256(credential.as_bytes()), k.clone());
        }
        return Ok(found.map(Principal::ApiKey));
    }
    Ok(access_token::stored(creds, conn, credential)?.map(Principal::AccessToken))
}

/// Counts a successful use (batched; written by the node's background task).
pub fn record_use(creds: &Credentials, principal: &Principal) {
    record_use_from(creds, principal, None);
}

/// [`record_use`] from a client address, which an API key keeps as its last.
pub fn record_use_from(creds: &Credentials, principal: &Principal, ip: Option<IpAddr>) {
    let now = db::now();
    match principal {
        Principal::ApiKey(k) => creds.usage.key_used_from(&k.id, now, ip),
        Principal::AccessToken(t) => creds.usage.authorization_used(&t.authorization_id, now),
    }
}
