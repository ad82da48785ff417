//! The [`Authenticator`] behind `KEYGATE_SASL_BIND`: an SMTP login is the
//! mailbox address (compared without case) and one of its auth keys.
//!
//! - A verified key is cached in memory by the SHA-256 of the whole key, like
//!   API keys; the revocation events of a disable, rotation, deletion or mailbox
//!   deletion evict it (at once on the node that made the change, within one
//!   poll on the others), so the next authentication reads the database again.
//! - A cache miss reads the database off the async thread, holding a pooled
//!   connection only for that read. A database that cannot answer is
//!   [`Verdict::Unavailable`] (the SMTP client is told to retry), never a `FAIL`.
//! - A key with an address allowlist works only from the client address
//!   Postfix reports (`rip`), and a key with an expiry only until the end of
//!   its last day; both are checked on every login, cached or not.
//! - Success is counted (usage count and last use, batched like the API keys').
//! - Failures are limited per (mailbox address, client address `rip`). The key
//!   is checked first and only failures are throttled, so a right key is never
//!   refused because of someone else's failures: once the limit is reached, each
//!   further failure is answered only after a delay, which holds the guessing
//!   Postfix session (one request at a time per connection) and keeps the
//!   answer within Postfix's 10 s wait.

use super::auth_keys;
use crate::credentials::cache::CachedAuthKey;
use crate::credentials::Credentials;
use crate::db::{self, Pool};
use crate::error::Error;
use crate::smtp::{Attempt, Authenticator, BoxFuture, Verdict};
use std::sync::Arc;
use std::time::Duration;

/// The longest a failure is held once its (mailbox, address) is over the limit.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);

/// An abuse limit that counts failures (the node's `FailureLimiter`).
pub trait FailureLimit: Send + Sync {
    /// `Err(seconds)` while the key is over the limit.
    fn check(&self, key: &str) -> Result<(), u64>;
    fn failure(&self, key: &str);
}

/// What the authenticator needs of the node that runs it.
pub trait Node: Send + Sync + 'static {
    fn pool(&self) -> &Pool;
    fn credentials(&self) -> &Credentials;
    /// `None` when abuse limits are off.
    fn smtp_failures(&self) -> Option<&dyn FailureLimit>;
}

pub struct MailboxAuthenticator<N: Node> {
    node: Arc<N>,
}

impl<N: Node> MailboxAuthenticator<N> {
    pub fn new(node: Arc<N>) -> Self {
        MailboxAuthenticator { node }
    }
}

impl<N: Node> Authenticator for MailboxAuthenticator<N> {
    fn authenticate(&self, attempt: Attempt) -> BoxFuture<Verdict> {
        Box::pin(decide(self.node.clone(), attempt))
    }
}

fn count(outcome: &str) {
    crate::metrics::METRICS
        .smtp_auth
        .with_label_values(&[outcome])
        .inc();
}

/// The longest SMTP username (a mailbox address) worth checking.
const MAX_USERNAME_BYTES: usize = 254;

async fn decide<N: Node>(node: Arc<N>, attempt: Attempt) -> Verdict {
    // Addresses are ASCII (`lifecycle::validate_address`): a username that is
    // not never matches.
    let wanted = attempt.username.to_ascii_lowercase();
    // No address is longer (RFC 5321's path limit): refused before any
    // lookup or count.
    if wanted.len() > MAX_USERNAME_BYTES {
        count("fail");
        return Verdict::Fail;
    }
    match verify(&node, attempt.password).await {
        Ok(Some(key)) if usable(&key, &wanted, attempt.remote_ip) => {
            node.credentials().usage.auth_key_used(&key.id, db::now());
            count("ok");
            Verdict::Ok { user: key.address }
        }
        Ok(_) => {
            count("fail");
            if let Some(limit) = node.smtp_failures() {
                let rip = attempt
                    .remote_ip
                    .map(crate::credentials::address::address_bucket);
                let key = format!("{wanted}|{}", rip.as_deref().unwrap_or("-"));
                if let Err(secs) = limit.check(&key) {
                    tokio::time::sleep(Duration::from_secs(secs).min(MAX_FAILURE_DELAY)).await;
                }
                limit.failure(&key);
            }
            Verdict::Fail
        }
        Err(e) => {
            log::warn!("smtp auth: cannot check the key now: {e}");
            count("unavailable");
            Verdict::Unavailable
        }
    }
}

/// Whether a valid key logs in as `wanted` from `rip` now: the key's own
/// mailbox, inside its address allowlist, before the end of its last day.
/// Each failure is the same `FAIL`.
fn usable(key: &CachedAuthKey, wanted: &str, rip: Option<std::net::IpAddr>) -> bool {
    key.address_lower == wanted
        && key.addresses.allows(rip)
        && key.expires_at.is_none_or(|end| db::now() < end)
}

/// The key if it is a valid, active mailbox auth key (of whichever mailbox).
async fn verify<N: Node>(node: &Arc<N>, password: String) -> Result<Option<CachedAuthKey>, Error> {
    if auth_keys::MAILBOX_AUTH_KEY.parse(&password).is_none() {
        return Ok(None);
    }
    let hash = crate::crypto::sha256(password.as_bytes());
    let cache = &node.credentials().cache;
    // A node that has not heard the revocation feed within its bound must not
    // trust what it remembers (the contract's revocation bound): try again.
    if !cache.feed_fresh() {
        return Err(Error::invalid("the revocation feed is stale"));
    }
    if let Some(key) = cache.auth_key(&hash) {
        return Ok(Some(key));
    }
    // Taken before the read: a revocation that overtakes it is not undone.
    let fill = cache.fill();
    let reader = node.clone();
    let found = tokio::task::spawn_blocking(move || auth_keys::lookup(reader.pool(), &password))
        .await
        .map_err(|_| Error::invalid("the blocking worker failed"))??;
    if let Some(key) = &found {
        cache.put_auth_key(fill, hash, key.clone());
    }
    Ok(found)
}
