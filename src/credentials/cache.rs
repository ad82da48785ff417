//! In-memory state that keeps the `/v1` bearer check off the database in the
//! steady state: verified access tokens, revoked token ids, verified API keys,
//! and batched usage counts. The database stays the authority: a cache miss reads
//! it, and revocation events (local at once, remote by polling) correct the cache.

use crate::credentials::revocation::{Event, EventKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;

/// Beyond this many entries a map is emptied and refilled from the database.
const MAX_ENTRIES: usize = 200_000;

#[derive(Clone, Debug)]
pub struct CachedToken {
    pub jti: String,
    pub authorization_id: String,
    pub client_id: String,
    pub sub: String,
    pub workspace_id: String,
    pub scopes: Vec<String>,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone, Debug)]
pub struct CachedKey {
    pub id: String,
    pub workspace_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    /// Set for a key restricted to one mailbox (`apikey create --mailbox`).
    pub mailbox_id: Option<String>,
}

/// A verified mailbox auth key (SMTP AUTH), by the SHA-256 of the whole key.
#[derive(Clone, Debug)]
pub struct CachedAuthKey {
    pub id: String,
    pub mailbox_id: String,
    pub workspace_id: String,
    /// The mailbox address as stored: what `user=` answers.
    pub address: String,
    /// What the SMTP username is compared with.
    pub address_lower: String,
}

#[derive(Default)]
pub struct CredentialCache {
    /// By SHA-256 of the whole JWT, so that only the exact token verified hits.
    tokens: RwLock<HashMap<[u8; 32], CachedToken>>,
    /// Revoked `jti`s, until the token would have expired anyway.
    revoked_jtis: RwLock<HashMap<String, i64>>,
    /// By SHA-256 of the whole key.
    keys: RwLock<HashMap<[u8; 32], CachedKey>>,
    /// Mailbox auth keys by SHA-256 of the whole key.
    auth_keys: RwLock<HashMap<[u8; 32], CachedAuthKey>>,
    /// Workspace names by id, for `/v1/workspace`.
    workspaces: RwLock<HashMap<String, String>>,
    last_seq: AtomicI64,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl CredentialCache {
    pub fn new(start_seq: i64) -> Self {
        let c = CredentialCache::default();
        c.last_seq.store(start_seq, Ordering::Relaxed);
        c
    }

    /// The cache of a process that serves nothing (the CLI): what it records
    /// reaches the serving nodes through the database's revocation events.
    pub fn detached() -> Self {
        CredentialCache::new(0)
    }

    pub fn token(&self, hash: &[u8; 32]) -> Option<CachedToken> {
        read(&self.tokens).get(hash).cloned()
    }

    pub fn put_token(&self, hash: [u8; 32], token: CachedToken) {
        let mut map = write(&self.tokens);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(hash, token);
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        read(&self.revoked_jtis).contains_key(jti)
    }

    pub fn key(&self, hash: &[u8; 32]) -> Option<CachedKey> {
        read(&self.keys).get(hash).cloned()
    }

    pub fn put_key(&self, hash: [u8; 32], key: CachedKey) {
        let mut map = write(&self.keys);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(hash, key);
    }

    pub fn auth_key(&self, hash: &[u8; 32]) -> Option<CachedAuthKey> {
        read(&self.auth_keys).get(hash).cloned()
    }

    pub fn put_auth_key(&self, hash: [u8; 32], key: CachedAuthKey) {
        let mut map = write(&self.auth_keys);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(hash, key);
    }

    pub fn workspace_name(&self, id: &str) -> Option<String> {
        read(&self.workspaces).get(id).cloned()
    }

    pub fn put_workspace_name(&self, id: &str, name: &str) {
        let mut map = write(&self.workspaces);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(id.to_string(), name.to_string());
    }

    /// Applies revocation events (idempotent).
    pub fn apply(&self, events: &[Event]) {
        let now = crate::db::now();
        for e in events {
            match e.kind {
                EventKind::AccessToken => {
                    if e.expires_at >= now {
                        write(&self.revoked_jtis).insert(e.subject.clone(), e.expires_at);
                    }
                }
                EventKind::ApiKey => write(&self.keys).retain(|_, k| k.id != e.subject),
                EventKind::Workspace => {
                    write(&self.keys).retain(|_, k| k.workspace_id != e.subject);
                    write(&self.auth_keys).retain(|_, k| k.workspace_id != e.subject);
                    write(&self.workspaces).remove(&e.subject);
                }
                EventKind::MailboxAuthKey => {
                    write(&self.auth_keys).retain(|_, k| k.id != e.subject)
                }
                EventKind::Mailbox => {
                    write(&self.auth_keys).retain(|_, k| k.mailbox_id != e.subject);
                    write(&self.keys).retain(|_, k| k.mailbox_id.as_ref() != Some(&e.subject));
                }
            }
        }
    }

    pub fn last_seq(&self) -> i64 {
        self.last_seq.load(Ordering::Relaxed)
    }

    pub fn set_last_seq(&self, seq: i64) {
        self.last_seq.store(seq, Ordering::Relaxed);
    }

    /// Drops what has expired.
    pub fn prune(&self) {
        let now = crate::db::now();
        write(&self.tokens).retain(|_, t| t.exp > now);
        write(&self.revoked_jtis).retain(|_, exp| *exp >= now);
        write(&self.keys).retain(|_, k| k.expires_at.is_none_or(|e| e > now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_revoke_and_evict() {
        let c = CredentialCache::new(0);
        let now = crate::db::now();
        c.put_key(
            [1; 32],
            CachedKey {
                id: "k1".into(),
                workspace_id: "w1".into(),
                scopes: vec![],
                expires_at: None,
                mailbox_id: None,
            },
        );
        c.put_key(
            [2; 32],
            CachedKey {
                id: "k2".into(),
                workspace_id: "w2".into(),
                scopes: vec![],
                expires_at: None,
                mailbox_id: None,
            },
        );
        c.apply(&[Event::api_key("k1"), Event::access_token("j1", now + 60)]);
        assert!(c.key(&[1; 32]).is_none());
        assert!(c.key(&[2; 32]).is_some());
        assert!(c.is_revoked("j1"));
        c.apply(&[Event::workspace("w2")]);
        assert!(c.key(&[2; 32]).is_none());
    }

    #[test]
    fn mailbox_events_evict_auth_keys() {
        let c = CredentialCache::new(0);
        let key = |id: &str, mailbox: &str| CachedAuthKey {
            id: id.into(),
            mailbox_id: mailbox.into(),
            workspace_id: "w1".into(),
            address: "A@example.com".into(),
            address_lower: "a@example.com".into(),
        };
        c.put_auth_key([1; 32], key("a1", "m1"));
        c.put_auth_key([2; 32], key("a2", "m1"));
        c.put_auth_key([3; 32], key("a3", "m2"));
        c.apply(&[Event::mailbox_auth_key("a1")]);
        assert!(c.auth_key(&[1; 32]).is_none());
        assert!(c.auth_key(&[2; 32]).is_some());
        c.apply(&[Event::mailbox("m1")]);
        assert!(c.auth_key(&[2; 32]).is_none());
        assert!(c.auth_key(&[3; 32]).is_some());
        c.apply(&[Event::workspace("w1")]);
        assert!(c.auth_key(&[3; 32]).is_none());
    }
}
