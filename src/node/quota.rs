//! A bound on successes: at most `limit` per key in each fixed window. Unlike
//! the failure limits, this one stops a caller that keeps succeeding, for
//! actions where each success makes something that stays (a registered
//! client), so one address cannot create thousands.

use super::ratelimit::Digest;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most keys tracked; beyond it the oldest windows are dropped first.
const MAX_TRACKED: usize = 65_536;

pub struct SuccessQuota {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<Digest, (Instant, u32)>>,
}

impl SuccessQuota {
    pub fn new(limit: u32, window_secs: u64) -> Self {
        SuccessQuota {
            limit,
            window: Duration::from_secs(window_secs.max(1)),
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, (Instant, u32)>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds until the window ends)` when the key used its quota.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        match self.lock().get(&Digest::of(key)) {
            Some((start, n)) if *n >= self.limit && now.duration_since(*start) < self.window => {
                Err((self.window - now.duration_since(*start)).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one success.
    pub fn record(&self, key: &str) {
        let now = Instant::now();
        let key = Digest::of(key);
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            let window = self.window;
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= MAX_TRACKED {
                if let Some(oldest) = map.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let e = map.entry(key).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }

    /// Drops windows that have ended.
    pub fn prune(&self) {
        let now = Instant::now();
        let window = self.window;
        self.lock()
            .retain(|_, (start, _)| now.duration_since(*start) < window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_successes_per_key() {
        let q = SuccessQuota::new(2, 3600);
        assert!(q.check("a").is_ok());
        q.record("a");
        q.record("a");
        assert!(q.check("a").is_err());
        assert!(q.check("b").is_ok());
    }
}
