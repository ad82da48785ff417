//! The pool of one database, which fails fast while the database is away.
//!
//! A request that needs a connection waits at most the pool's timeout (3 s)
//! for one. While the database is away, every such request would wait that
//! long before its 503: a load balancer's health check with a shorter
//! timeout would see a timeout rather than the 503, and the node would serve
//! a few requests a second. So once a checkout has timed out while the last
//! connection attempt failed, the pool knows the database is away and answers
//! every checkout at once with [`PoolError::Away`]; the node's background
//! task (which checks out a connection every poll, so it learns it within
//! the pool's timeout) [probes](Pool::probe) every poll, and the first
//! connection that works again ends it. A checkout that times out because
//! every connection is busy while new ones open (the pool is saturated, the
//! database answers) marks nothing, and neither does a refused connection
//! while pooled ones still serve.

use super::ConnectionManager;
use diesel::connection::SimpleConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Whether the database is known to be away, shared by the pool and its
/// connection manager (which sees every connection attempt).
#[derive(Debug, Default)]
pub struct Health {
    away: AtomicBool,
    /// Whether the last connection attempt failed.
    connect_failing: AtomicBool,
}

impl Health {
    /// A connection opened (or answered): the database is there.
    pub(super) fn connected(&self) {
        self.connect_failing.store(false, Ordering::Release);
        if self.away.swap(false, Ordering::AcqRel) {
            log::info!("the database answers again");
        }
    }
    /// A connection attempt failed.
    pub(super) fn failed(&self, _why: &dyn std::fmt::Display) {
        self.connect_failing.store(true, Ordering::Release);
    }
    /// A checkout timed out: away if connections cannot be opened.
    fn timed_out(&self, why: &dyn std::fmt::Display) {
        if self.connect_failing.load(Ordering::Acquire) && !self.away.swap(true, Ordering::AcqRel) {
            log::warn!(
                "the database is away ({why}): requests that need it get 503 at once until it is back"
            );
        }
    }
    pub fn is_away(&self) -> bool {
        self.away.load(Ordering::Acquire)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// No connection within the pool's timeout.
    #[error("{0}")]
    Checkout(#[from] r2d2::Error),
    /// The database is known to be away: answered without waiting.
    #[error("the database is away")]
    Away,
}

pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// An r2d2 pool with the database's health beside it.
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<ConnectionManager>,
    health: Arc<Health>,
}

impl Pool {
    pub(super) fn new(inner: r2d2::Pool<ConnectionManager>, health: Arc<Health>) -> Pool {
        Pool { inner, health }
    }

    /// A connection: at once an error while the database is known to be
    /// away, else within the pool's timeout.
    pub fn get(&self) -> Result<PooledConn, PoolError> {
        if self.health.is_away() {
            return Err(PoolError::Away);
        }
        self.inner.get().map_err(|e| self.timed_out(e))
    }

    fn timed_out(&self, e: r2d2::Error) -> PoolError {
        self.health.timed_out(&e);
        PoolError::Checkout(e)
    }

    /// A connection within `budget` (for `/readyz`'s own short budget); at
    /// once an error while the database is known to be away.
    pub fn get_within(&self, budget: Duration) -> Result<PooledConn, PoolError> {
        if self.health.is_away() {
            return Err(PoolError::Away);
        }
        self.inner
            .get_timeout(budget)
            .map_err(|e| self.timed_out(e))
    }

    /// While the database is away: tries one connection within `budget`,
    /// whatever the pool knows, and returns whether the database answers
    /// (a connection that works ends the away state).
    pub fn probe(&self, budget: Duration) -> bool {
        if !self.health.is_away() {
            return true;
        }
        match self.inner.get_timeout(budget) {
            Ok(mut conn) => match conn.batch_execute("SELECT 1") {
                Ok(()) => {
                    self.health.connected();
                    true
                }
                Err(e) => {
                    self.health.failed(&e);
                    false
                }
            },
            Err(_) => false,
        }
    }

    pub fn state(&self) -> r2d2::State {
        self.inner.state()
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn away_only_when_a_checkout_times_out_while_connections_fail() {
        let h = Health::default();
        // A saturated pool: checkouts time out, connections still open.
        h.timed_out(&"timed out");
        assert!(!h.is_away());
        // A refused connection while pooled ones serve: not away either.
        h.failed(&"refused");
        assert!(!h.is_away());
        // Both: the database is away, until a connection works again.
        h.timed_out(&"timed out");
        assert!(h.is_away());
        h.connected();
        assert!(!h.is_away());
        h.timed_out(&"timed out");
        assert!(!h.is_away(), "a connection opened since");
    }
}
