//! Abuse limits that count failures only: a caller that keeps succeeding is never
//! slowed. After `threshold` failures within the window, each further failure
//! doubles a lock-out (1 s, 2 s, 4 s … up to 15 min).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry {
    failures: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

pub struct FailureLimiter {
    threshold: u32,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

const MAX_BLOCK: Duration = Duration::from_secs(900);
const MAX_TRACKED: usize = 100_000;

impl FailureLimiter {
    pub fn new(threshold: u32, window_secs: u64) -> Self {
        FailureLimiter {
            threshold: threshold.max(1),
            window: Duration::from_secs(window_secs.max(1)),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` while the key is locked out.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = map.get(key).and_then(|e| e.blocked_until) {
            let now = Instant::now();
            if until > now {
                return Err((until - now).as_secs().max(1));
            }
        }
        Ok(())
    }

    pub fn failure(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, e| {
                now.duration_since(e.window_start) < self.window
                    || e.blocked_until.is_some_and(|u| u > now)
            });
        }
        let e = map.entry(key.to_string()).or_insert(Entry {
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
        e.failures += 1;
        if e.failures >= self.threshold {
            let exp = (e.failures - self.threshold).min(20);
            let block = Duration::from_secs(1u64 << exp).min(MAX_BLOCK);
            e.blocked_until = Some(now + block);
        }
    }

    /// A success clears the count (for logins: the right password was known).
    pub fn success(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
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
}
