//! Abuse limits that count failures only: a caller that keeps succeeding is never
//! slowed. After `threshold` failures within the window, each further failure
//! doubles a lock-out (1 s, 2 s, 4 s … up to 15 min).
//!
//! Keys are caller text (a client id, an email, an SMTP username), so each is
//! kept as a keyed 128-bit digest ([`Digest`]): a limiter's memory is bounded
//! by its entry count alone, whatever the callers send.

use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A limiter key as a fixed-size digest, keyed per process so that callers
/// cannot choose colliding keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 16]);

static DIGEST_KEY: std::sync::LazyLock<[u8; 32]> =
    std::sync::LazyLock::new(crate::crypto::random_bytes32);

impl Digest {
    pub fn of(key: &str) -> Digest {
        let mut h = Sha256::new();
        h.update(*DIGEST_KEY);
        h.update(key.as_bytes());
        let full = h.finalize();
        let mut d = [0u8; 16];
        d.copy_from_slice(&full[..16]);
        Digest(d)
    }
}

struct Entry {
    failures: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

/// Failures by key, in shards so that callers rarely wait on one lock. Each
/// shard holds at most `MAX_TRACKED / SHARDS` keys: a caller sending endless
/// distinct keys (any string can be a client id) evicts an entry, which can
/// only make the limit laxer for that key, never lock anyone out, and costs
/// O(1) per failure.
pub struct FailureLimiter {
    threshold: u32,
    window: Duration,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Digest, Entry>>>,
}

const MAX_BLOCK: Duration = Duration::from_secs(900);
/// The most keys a limiter tracks.
pub const MAX_TRACKED: usize = 65_536;
const SHARDS: usize = 16;
const PER_SHARD: usize = MAX_TRACKED / SHARDS;

impl FailureLimiter {
    pub fn new(threshold: u32, window_secs: u64) -> Self {
        FailureLimiter {
            threshold: threshold.max(1),
            window: Duration::from_secs(window_secs.max(1)),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &Digest) -> std::sync::MutexGuard<'_, HashMap<Digest, Entry>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many keys are tracked now (at most `MAX_TRACKED`).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// `Err(seconds)` while the key is locked out.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let key = Digest::of(key);
        let map = self.shard(&key);
        if let Some(until) = map.get(&key).and_then(|e| e.blocked_until) {
            let now = Instant::now();
            if until > now {
                return Err((until - now).as_secs().max(1));
            }
        }
        Ok(())
    }

    pub fn failure(&self, key: &str) {
        let now = Instant::now();
        let key = Digest::of(key);
        let mut map = self.shard(&key);
        if map.len() >= PER_SHARD && !map.contains_key(&key) {
            // Any entry will do: the first one the table yields.
            if let Some(victim) = map.keys().next().copied() {
                map.remove(&victim);
            }
        }
        let e = map.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now,
            blocked_until: None,
        });
        if now.duration_since(e.window_start) > self.window
            && e.blocked_until.is_none_or(|u| u <= now)
        {
            e.failures = 0;
            e.window_start = now;
        }
        e.failures = e.failures.saturating_add(1);
        if e.failures >= self.threshold {
            let exp = (e.failures - self.threshold).min(20);
            let block = Duration::from_secs(1u64 << exp).min(MAX_BLOCK);
            e.blocked_until = Some(now + block);
        }
    }

    /// A success clears the count (for logins: the right password was known).
    pub fn success(&self, key: &str) {
        let key = Digest::of(key);
        self.shard(&key).remove(&key);
    }

    /// Failures counted for the key in its current window (0 when none).
    pub fn failures(&self, key: &str) -> u32 {
        let key = Digest::of(key);
        let now = Instant::now();
        match self.shard(&key).get(&key) {
            Some(e) if now.duration_since(e.window_start) <= self.window => e.failures,
            Some(e) if e.blocked_until.is_some_and(|u| u > now) => e.failures,
            _ => 0,
        }
    }

    /// Drops entries whose window and block have both passed.
    pub fn prune(&self) {
        let now = Instant::now();
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, e| {
                    now.duration_since(e.window_start) < self.window
                        || e.blocked_until.is_some_and(|u| u > now)
                });
        }
    }
}

impl crate::mailboxes::authenticator::FailureLimit for FailureLimiter {
    fn check(&self, key: &str) -> Result<(), u64> {
        FailureLimiter::check(self, key)
    }
    fn failure(&self, key: &str) {
        FailureLimiter::failure(self, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_threshold_only() {
        let l = FailureLimiter::new(3, 60);
        l.failure("a");
        l.failure("a");
        assert!(l.check("a").is_ok());
        l.failure("a");
        assert!(l.check("a").is_err());
        assert!(l.check("b").is_ok());
        l.success("a");
        assert!(l.check("a").is_ok());
    }

    #[test]
    fn distinct_keys_stay_under_the_cap() {
        let l = FailureLimiter::new(3, 60);
        for i in 0..100_000 {
            l.failure(&format!("client:made-up-{i}"));
        }
        assert!(l.tracked() <= MAX_TRACKED);
        // A key failing now is still tracked and limited.
        for _ in 0..3 {
            l.failure("client:victim");
        }
        assert!(l.check("client:victim").is_err());
    }

    /// The resident set of this process, from /proc (Linux).
    fn rss_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn hostile_64_kib_keys_keep_memory_flat() {
        let l = FailureLimiter::new(3, 60);
        // Warm the map to its cap first, so the measured part adds no entries.
        for i in 0..MAX_TRACKED {
            l.failure(&format!("warm-{i}"));
        }
        let before = rss_bytes();
        let mut key = "k".repeat(64 * 1024);
        for i in 0..100_000u32 {
            key.replace_range(..8, &format!("{i:08}"));
            l.failure(&key);
        }
        let grown = rss_bytes().saturating_sub(before);
        assert!(l.tracked() <= MAX_TRACKED);
        // 100,000 keys of 64 KiB are 6.25 GiB of caller text; kept as text,
        // the capped map alone would hold 4 GiB of it. (The bound leaves room
        // for the tests that run beside this one in the same process.)
        assert!(grown < 256 << 20, "RSS grew by {} MiB", grown >> 20);
    }
}
