//! The pool of one database, which fails fast while the database is away.
//!
//! A request that needs a connection waits at most the pool's timeout (3 s)
//! for one. While the database is away, every such request would wait that
//! long before its 503: a load balancer's health check with a shorter
//! timeout would see a timeout rather than the 503, and the node would serve
//! a few requests a second. So once a connection attempt has failed, the pool
//! knows the database is away and answers every checkout at once with
//! [`PoolError::Away`]; the node's background task [probes](Pool::probe)
//! every poll, and the first connection that opens again ends it. A checkout
//! that times out because every connection is busy (the pool is saturated,
//! the database answers) marks nothing.

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
}

impl Health {
    pub(super) fn connected(&self) {
        if self.away.swap(false, Ordering::AcqRel) {
            log::info!("the database answers again");
        }
    }
    pub(super) fn failed(&self, why: &dyn std::fmt::Display) {
        if !self.away.swap(true, Ordering::AcqRel) {
            log::warn!("the database is away ({why}): requests that need it get 503 at once until it is back");
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
        Ok(self.inner.get()?)
    }

    /// A connection within `budget` (for `/readyz`'s own short budget); at
    /// once an error while the database is known to be away.
    pub fn get_within(&self, budget: Duration) -> Result<PooledConn, PoolError> {
        if self.health.is_away() {
            return Err(PoolError::Away);
        }
        Ok(self.inner.get_timeout(budget)?)
    }

    pub fn is_away(&self) -> bool {
        self.health.is_away()
    }

    /// While the database is away: tries one connection within `budget`,
    /// whatever the pool knows, and returns whether the database answers
    /// (a connection that opens ends the away state).
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
