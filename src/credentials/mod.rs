//! What a presented credential is: the API key format, the access-token signing
//! keys, the one bearer check with its cache, the revocation events that keep
//! the cache true, and usage counting.

pub mod access_token;
pub mod address;
pub mod api_key;
pub mod bearer;
pub mod cache;
pub mod change;
pub mod grace;
pub mod leaked;
pub mod revocation;
pub mod scopes;
pub mod sealing;
pub mod signing_keys;
pub mod usage;

use cache::CredentialCache;
use signing_keys::KeyRing;
use usage::UsageRecorder;

/// What checking a credential needs: the signing keys, the cache kept true by
/// revocation events, and the usage counters.
pub struct Credentials {
    pub keys: KeyRing,
    pub cache: CredentialCache,
    pub usage: UsageRecorder,
    pub access_token_ttl: i64,
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
