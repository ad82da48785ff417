//! In-memory state that keeps the `/v1` bearer check off the database in the
//! steady state: verified access tokens, revoked token ids, verified API keys,
//! and batched usage counts. The database stays the authority: a cache miss reads
//! it, and revocation events (local at once, remote by polling) correct the cache.
//!
//! Memory is trusted only within bounds (the contract's revocation bound): an
//! entry is served for at most `max_age` after its rows were read, and nothing
//! is served from memory once the revocation feed has not been read for
//! `stale_after`. Both checks are an atomic load and a clock read: the steady
//! state takes no lock beyond the maps' read locks it always took.

use crate::credentials::address::AddressRule;
use crate::credentials::revocation::{Cursor, Event, EventKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Beyond this many entries a map is emptied and refilled from the database.
const MAX_ENTRIES: usize = 200_000;

#[derive(Clone, Debug)]
pub struct CachedToken {
    pub jti: String,
    pub authorization_id: String,
    pub client_id: String,
    pub sub: String,
    pub workspace_id: String,
    /// The resource it was issued for (RFC 8707): `{issuer}/v1`, or a
    /// registered resource's identifier. Only that resource accepts it.
    pub aud: String,
    /// The catalogue's names (`scopes::known`).
    pub scopes: Vec<&'static str>,
    pub iat: i64,
    pub exp: i64,
    /// The DPoP key the token is bound to (`cnf.jkt`), if any.
    pub jkt: Option<String>,
}

#[derive(Clone, Debug)]
pub struct CachedKey {
    pub id: String,
    pub workspace_id: String,
    /// The catalogue's names (`scopes::known`).
    pub scopes: Vec<&'static str>,
    /// When this entry stops working: the key's expiry, or the end of a
    /// rotation's grace period when it was verified with the replaced secret.
    pub expires_at: Option<i64>,
    /// The key's address allowlist, checked on every request from here.
    pub addresses: AddressRule,
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
    /// The key's address allowlist, checked against Postfix's `rip`.
    pub addresses: AddressRule,
    /// The end of the key's last day; `None`: never.
    pub expires_at: Option<i64>,
}

/// How far memory is trusted.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// The longest a verified credential is served before its rows are read again.
    pub max_age: Duration,
    /// How long after the feed was last read memory still counts.
    pub stale_after: Duration,
}

impl Bounds {
    pub fn from_config(config: &crate::config::Config) -> Bounds {
        Bounds {
            max_age: Duration::from_secs(config.credential_cache_secs),
            stale_after: Duration::from_secs(config.revocation_stale_secs),
        }
    }
}

/// A cached value and when (ms on the cache's own monotonic clock) it was read
/// from the database.
struct Entry<T> {
    value: T,
    read_at_ms: i64,
}

/// Proof that a database read started before any event applied since: only
/// then may its result be cached (see `CredentialCache::fill`).
#[derive(Clone, Copy, Debug)]
pub struct Fill(u64);

pub struct CredentialCache {
    /// By SHA-256 of the whole JWT, so that only the exact token verified hits.
    tokens: RwLock<HashMap<[u8; 32], Entry<Arc<CachedToken>>>>,
    /// Revoked `jti`s, until the token would have expired anyway.
    revoked_jtis: RwLock<HashMap<String, i64>>,
    /// By SHA-256 of the whole key.
    keys: RwLock<HashMap<[u8; 32], Entry<Arc<CachedKey>>>>,
    /// Mailbox auth keys by SHA-256 of the whole key.
    auth_keys: RwLock<HashMap<[u8; 32], Entry<CachedAuthKey>>>,
    /// Workspace names by id, for `/v1/workspace`.
    workspaces: RwLock<HashMap<String, Arc<str>>>,
    /// Bumped before every change that removes entries; a fill that began
    /// under an older value is not stored (it may have read rows an event
    /// has since overtaken).
    generation: AtomicU64,
    /// The cache's monotonic clock starts here (wall-clock jumps must neither
    /// stretch nor cut the bounds).
    origin: Instant,
    /// When the revocation feed was last read, in ms since `origin`.
    feed_read_at_ms: AtomicI64,
    max_age_ms: i64,
    stale_after_ms: i64,
    /// Where the feed's reading stands: the feed's own state, touched only
    /// by the node's background task, never by a request.
    cursor: Mutex<Cursor>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CredentialCache {
    /// A node's cache, having just read the feed up to `cursor`.
    pub fn new(cursor: Cursor, bounds: Bounds) -> Self {
        CredentialCache {
            tokens: RwLock::default(),
            revoked_jtis: RwLock::default(),
            keys: RwLock::default(),
            auth_keys: RwLock::default(),
            workspaces: RwLock::default(),
            generation: AtomicU64::new(0),
            origin: Instant::now(),
            feed_read_at_ms: AtomicI64::new(0),
            max_age_ms: millis(bounds.max_age),
            stale_after_ms: millis(bounds.stale_after),
            cursor: Mutex::new(cursor),
        }
    }

    /// The cache of a process that serves nothing (the CLI): what it records
    /// reaches the serving nodes through the database's revocation events.
    pub fn detached() -> Self {
        let forever = Duration::from_secs(u32::MAX.into());
        CredentialCache::new(
            Cursor::default(),
            Bounds {
                max_age: forever,
                stale_after: forever,
            },
        )
    }

    fn now_ms(&self) -> i64 {
        millis(self.origin.elapsed())
    }

    fn young(&self, read_at_ms: i64) -> bool {
        self.now_ms().saturating_sub(read_at_ms) < self.max_age_ms
    }

    // -- the revocation feed ------------------------------------------------

    /// Records a successful read of the revocation feed.
    pub fn feed_read(&self) {
        self.feed_read_at_ms.store(self.now_ms(), Ordering::Release);
    }

    /// How long ago the feed was last read.
    pub fn feed_age(&self) -> Duration {
        let ago = self
            .now_ms()
            .saturating_sub(self.feed_read_at_ms.load(Ordering::Acquire));
        Duration::from_millis(ago.max(0) as u64)
    }

    /// True while memory may be served: the feed was read within the stale
    /// bound. Past it this node cannot know what other nodes revoked.
    pub fn feed_fresh(&self) -> bool {
        self.now_ms()
            .saturating_sub(self.feed_read_at_ms.load(Ordering::Acquire))
            <= self.stale_after_ms
    }

    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_after_ms.max(0) as u64)
    }

    pub fn cursor(&self) -> Cursor {
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_cursor(&self, cursor: Cursor) {
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = cursor;
    }

    // -- entries --------------------------------------------------------------

    /// Call before the database read whose result is to be cached.
    pub fn fill(&self) -> Fill {
        Fill(self.generation.load(Ordering::SeqCst))
    }

    /// Bumped before entries go, so that a fill racing the removal either
    /// sees the new value (and stores nothing) or stored before the removal.
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn still(&self, fill: Fill) -> bool {
        self.generation.load(Ordering::SeqCst) == fill.0
    }

    /// A shared handle: a hit copies no field of the entry.
    /// An entry of one of the credential maps, while young enough to serve.
    fn get<T: Clone>(
        &self,
        map: &RwLock<HashMap<[u8; 32], Entry<T>>>,
        hash: &[u8; 32],
    ) -> Option<T> {
        read(map)
            .get(hash)
            .filter(|e| self.young(e.read_at_ms))
            .map(|e| e.value.clone())
    }

    /// Stores what a database read found. `fill` was taken before the read,
    /// so a read that an event overtook is not stored; a full map is emptied
    /// and refilled from the database.
    fn put<T>(
        &self,
        map: &RwLock<HashMap<[u8; 32], Entry<T>>>,
        fill: Fill,
        hash: [u8; 32],
        value: T,
    ) {
        let mut map = write(map);
        if !self.still(fill) {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        let read_at_ms = self.now_ms();
        map.insert(hash, Entry { value, read_at_ms });
    }

    pub fn token(&self, hash: &[u8; 32]) -> Option<Arc<CachedToken>> {
        self.get(&self.tokens, hash)
    }

    pub fn put_token(&self, fill: Fill, hash: [u8; 32], token: Arc<CachedToken>) {
        self.put(&self.tokens, fill, hash, token)
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        read(&self.revoked_jtis).contains_key(jti)
    }

    /// A shared handle: a hit copies no field of the entry.
    pub fn key(&self, hash: &[u8; 32]) -> Option<Arc<CachedKey>> {
        self.get(&self.keys, hash)
    }

    pub fn put_key(&self, fill: Fill, hash: [u8; 32], key: Arc<CachedKey>) {
        self.put(&self.keys, fill, hash, key)
    }

    pub fn auth_key(&self, hash: &[u8; 32]) -> Option<CachedAuthKey> {
        self.get(&self.auth_keys, hash)
    }

    pub fn put_auth_key(&self, fill: Fill, hash: [u8; 32], key: CachedAuthKey) {
        self.put(&self.auth_keys, fill, hash, key)
    }

    pub fn workspace_name(&self, id: &str) -> Option<Arc<str>> {
        read(&self.workspaces).get(id).cloned()
    }

    pub fn put_workspace_name(&self, id: &str, name: &str) {
        let mut map = write(&self.workspaces);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(id.to_string(), Arc::from(name));
    }

    /// Applies revocation events (idempotent).
    pub fn apply(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        self.invalidate();
        let now = crate::db::now();
        for e in events {
            match e.kind {
                EventKind::AccessToken => {
                    if e.expires_at >= now {
                        write(&self.revoked_jtis).insert(e.subject.clone(), e.expires_at);
                    }
                }
                EventKind::ApiKey => write(&self.keys).retain(|_, k| k.value.id != e.subject),
                EventKind::Workspace => {
                    write(&self.keys).retain(|_, k| k.value.workspace_id != e.subject);
                    write(&self.auth_keys).retain(|_, k| k.value.workspace_id != e.subject);
                    write(&self.workspaces).remove(&e.subject);
                }
                EventKind::MailboxAuthKey => {
                    write(&self.auth_keys).retain(|_, k| k.value.id != e.subject)
                }
                EventKind::Mailbox => {
                    write(&self.auth_keys).retain(|_, k| k.value.mailbox_id != e.subject);
                    write(&self.keys)
                        .retain(|_, k| k.value.mailbox_id.as_ref() != Some(&e.subject));
                }
                // The issuer's client cache and the resources are the node's
                // to correct.
                EventKind::Client | EventKind::Resource => {}
            }
        }
    }

    /// Forgets every verified credential and revoked token id (the feed had a
    /// gap or was stale): each is read from the database again when next seen.
    /// Workspace names stay; they never change.
    pub fn clear(&self) {
        self.invalidate();
        write(&self.tokens).clear();
        write(&self.revoked_jtis).clear();
        write(&self.keys).clear();
        write(&self.auth_keys).clear();
    }

    /// Drops what has expired or grown too old to serve.
    pub fn prune(&self) {
        let now = crate::db::now();
        write(&self.tokens).retain(|_, t| t.value.exp > now && self.young(t.read_at_ms));
        write(&self.revoked_jtis).retain(|_, exp| *exp >= now);
        write(&self.keys)
            .retain(|_, k| k.value.expires_at.is_none_or(|e| e > now) && self.young(k.read_at_ms));
        write(&self.auth_keys).retain(|_, k| self.young(k.read_at_ms));
    }

    /// Tests: pretends the feed was last read `ago` back.
    #[cfg(test)]
    fn feed_read_ago(&self, ago: Duration) {
        self.feed_read_at_ms
            .store(self.now_ms() - millis(ago), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, workspace_id: &str) -> CachedKey {
        CachedKey {
            id: id.into(),
            workspace_id: workspace_id.into(),
            scopes: vec![],
            expires_at: None,
            addresses: AddressRule::Anywhere,
            mailbox_id: None,
        }
    }

    #[test]
    fn mailbox_events_evict_auth_keys() {
        let c = cache(MINUTE, MINUTE);
        let key = |id: &str, mailbox: &str| CachedAuthKey {
            id: id.into(),
            mailbox_id: mailbox.into(),
            workspace_id: "w1".into(),
            address: "A@example.com".into(),
            address_lower: "a@example.com".into(),
            addresses: AddressRule::Anywhere,
            expires_at: None,
        };
        c.put_auth_key(c.fill(), [1; 32], key("a1", "m1"));
        c.put_auth_key(c.fill(), [2; 32], key("a2", "m1"));
        c.put_auth_key(c.fill(), [3; 32], key("a3", "m2"));
        c.apply(&[Event::mailbox_auth_key("a1")]);
        assert!(c.auth_key(&[1; 32]).is_none());
        assert!(c.auth_key(&[2; 32]).is_some());
        c.apply(&[Event::mailbox("m1")]);
        assert!(c.auth_key(&[2; 32]).is_none());
        assert!(c.auth_key(&[3; 32]).is_some());
        c.apply(&[Event::workspace("w1")]);
        assert!(c.auth_key(&[3; 32]).is_none());
    }

    fn cache(max_age: Duration, stale_after: Duration) -> CredentialCache {
        CredentialCache::new(
            Cursor::default(),
            Bounds {
                max_age,
                stale_after,
            },
        )
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn events_revoke_and_evict() {
        let c = cache(MINUTE, MINUTE);
        let now = crate::db::now();
        c.put_key(c.fill(), [1; 32], key("k1", "w1").into());
        c.put_key(c.fill(), [2; 32], key("k2", "w2").into());
        c.apply(&[Event::api_key("k1"), Event::access_token("j1", now + 60)]);
        assert!(c.key(&[1; 32]).is_none());
        assert!(c.key(&[2; 32]).is_some());
        assert!(c.is_revoked("j1"));
        c.apply(&[Event::workspace("w2")]);
        assert!(c.key(&[2; 32]).is_none());
    }

    #[test]
    fn a_read_overtaken_by_an_event_is_not_cached() {
        let c = cache(MINUTE, MINUTE);
        // The database said "active", then the revocation was applied, then
        // the reader tries to store what it read: it must not.
        let fill = c.fill();
        c.apply(&[Event::api_key("k1")]);
        c.put_key(fill, [1; 32], key("k1", "w1").into());
        assert!(c.key(&[1; 32]).is_none());
        // The same after the caches were dropped.
        let fill = c.fill();
        c.clear();
        c.put_key(fill, [1; 32], key("k1", "w1").into());
        assert!(c.key(&[1; 32]).is_none());
        // A read that began after the event is cached.
        c.put_key(c.fill(), [1; 32], key("k1", "w1").into());
        assert!(c.key(&[1; 32]).is_some());
    }

    #[test]
    fn entries_have_a_maximum_age() {
        let c = cache(Duration::from_millis(30), MINUTE);
        c.put_key(c.fill(), [1; 32], key("k1", "w1").into());
        assert!(c.key(&[1; 32]).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.key(&[1; 32]).is_none(), "served past its maximum age");
        c.prune();
        assert!(read(&c.keys).is_empty(), "an old entry survived pruning");
    }

    #[test]
    fn a_stale_feed_is_noticed() {
        let c = cache(MINUTE, Duration::from_secs(5));
        assert!(c.feed_fresh(), "a new cache has just read the feed");
        c.feed_read_ago(Duration::from_secs(4));
        assert!(c.feed_fresh());
        c.feed_read_ago(Duration::from_secs(6));
        assert!(!c.feed_fresh(), "fresh 6 s after the last read");
        assert!(c.feed_age() >= Duration::from_secs(6));
        c.feed_read();
        assert!(c.feed_fresh());
        assert!(c.feed_age() < Duration::from_secs(1));
        // The CLI's cache never serves, and never goes stale.
        assert!(CredentialCache::detached().feed_fresh());
    }

    #[test]
    fn clearing_forgets_credentials_but_not_names() {
        let c = cache(MINUTE, MINUTE);
        c.put_key(c.fill(), [1; 32], key("k1", "w1").into());
        c.apply(&[Event::access_token("j1", crate::db::now() + 60)]);
        c.put_workspace_name("w1", "Acme");
        c.clear();
        assert!(c.key(&[1; 32]).is_none());
        assert!(!c.is_revoked("j1"));
        assert_eq!(c.workspace_name("w1").as_deref(), Some("Acme"));
    }
}
