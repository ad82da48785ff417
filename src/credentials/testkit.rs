//! The logic tests' credential services: a node's, with an ephemeral signing
//! key, over a test database (`db::testkit`).

use super::cache::{Bounds, CredentialCache};
use super::signing_keys::KeyRing;
use super::usage::UsageRecorder;
use super::{Credentials, Stored};

/// The issuer of the kit's signing keys.
pub const ISSUER: &str = "https://id.example.test";

/// A node's credential services with an ephemeral signing key: a cache with
/// `bounds` (`None`: a cache detached from any feed), reading stored
/// credentials through `stored`.
pub fn credentials(stored: Stored, bounds: Option<Bounds>) -> Credentials {
    Credentials {
        keys: KeyRing::ephemeral(ISSUER).expect("key ring"),
        cache: match bounds {
            Some(b) => CredentialCache::new(Default::default(), b),
            None => CredentialCache::detached(),
        },
        usage: UsageRecorder::default(),
        access_token_ttl: 3600,
        stored,
        proof_uses: Default::default(),
        proof_keys: Default::default(),
    }
}
