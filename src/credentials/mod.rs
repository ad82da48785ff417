//! What a presented credential is: the API key format, the access-token signing
//! keys, the one bearer check with its cache, the revocation events that keep
//! the cache true, and usage counting.

pub mod access_token;
pub mod address;
pub mod bearer;
pub mod cache;
pub mod change;
pub mod dpop;
pub mod expiry;
pub mod jose;
pub mod key_format;
pub mod leaked;
pub mod replay;
pub mod revocation;
pub mod scopes;
pub mod sealing;
pub mod signing_keys;
#[cfg(test)]
pub mod testkit;
pub mod usage;

use crate::db::DbConn;
use crate::error::Result;
use cache::{CachedKey, CredentialCache};
use signing_keys::KeyRing;
use usage::UsageRecorder;

/// What checking a credential needs: the signing keys, the cache kept true by
/// revocation events, and the usage counters.
pub struct Credentials {
    pub keys: KeyRing,
    pub cache: CredentialCache,
    pub usage: UsageRecorder,
    pub access_token_ttl: i64,
    /// The rows behind the bearer check's slow path.
    pub stored: Stored,
    /// DPoP proofs' `jti`s waiting for their shared record (`replay`).
    pub proof_uses: replay::Queue,
    /// The keys of the DPoP proofs verified on this node.
    pub proof_keys: dpop::ProofKeys,
}

/// The tables the bearer check reads on a cache miss, through the areas that
/// own them: API keys (`apikeys::stored::KEYS`) and access-token records
/// (`oauth::authorizations::TOKENS`).
#[derive(Clone, Copy)]
pub struct Stored {
    pub keys: &'static dyn StoredKeys,
    pub tokens: &'static dyn StoredTokens,
}

/// The API keys' store.
pub trait StoredKeys: Sync {
    /// The key `presented` is, if it is well formed, known, and works now.
    fn api_key(&self, conn: &mut DbConn, presented: &str) -> Result<Option<CachedKey>>;
}

/// The access tokens' records.
pub trait StoredTokens: Sync {
    /// The authorization of the access token `jti`, if its record exists and
    /// neither it nor its authorization is revoked.
    fn live_access_token(&self, conn: &mut DbConn, jti: &str) -> Result<Option<String>>;
}

/// At most `max` characters of `raw`, with `…` where it was cut: what an error
/// or a log row echoes of input it did not choose. Counts characters, so a
/// multi-byte character is never split.
pub fn excerpt(raw: &str, max: usize) -> String {
    let mut chars = raw.chars();
    let mut out: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}
