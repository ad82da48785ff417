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
//!
//! A checkout costs no query: a PostgreSQL connection whose query failed at
//! the connection level (the server restarted, the backend was ended) is
//! marked and dropped when it comes back to the pool, and one that sat idle
//! longer than [`PROBE_IF_IDLE`] is probed with `SELECT 1` before it is
//! handed out (so a connection the server closed while nobody used it costs
//! no request), the way HikariCP bypasses its alive check for a connection
//! used within the last half second.

use super::{ConnectionManager, DbConn};
use diesel::connection::{Connection, Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::r2d2::R2D2Connection;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection handed out after this long unused is probed first.
const PROBE_IF_IDLE: Duration = Duration::from_secs(1);

/// A pooled connection: the database connection, and whether it failed.
pub struct Pooled {
    conn: DbConn,
    /// Set when one of its queries failed because the connection failed.
    lost: Arc<AtomicBool>,
    /// When the pool last handed it out.
    handed_out: Instant,
}

impl Pooled {
    pub(super) fn new(mut conn: DbConn) -> Pooled {
        let lost = Arc::new(AtomicBool::new(false));
        if let DbConn::Postgresql(_) = conn {
            conn.set_instrumentation(LostWatch(lost.clone()));
        }
        Pooled {
            conn,
            lost,
            handed_out: Instant::now(),
        }
    }

    pub(super) fn has_broken(&mut self) -> bool {
        self.lost.load(Ordering::Acquire) || self.conn.is_broken()
    }

    /// Whether to probe it before handing it out.
    fn stale(&self) -> bool {
        matches!(self.conn, DbConn::Postgresql(_)) && self.handed_out.elapsed() > PROBE_IF_IDLE
    }
}

impl std::ops::Deref for Pooled {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

/// Marks a connection lost when a query fails at the connection level.
struct LostWatch(Arc<AtomicBool>);

impl Instrumentation for LostWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error: Some(e), .. } = event {
            if is_connection_error(e) {
                self.0.store(true, Ordering::Release);
            }
        }
    }
}

/// An error of the connection rather than of the query (libpq reports a
/// connection it found closed as `ClosedConnection`).
fn is_connection_error(e: &DbError) -> bool {
    matches!(
        e,
        DbError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        ) | DbError::BrokenTransactionManager
    )
}

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
    /// No connection for a batch of writes (`db::batch`), said by the
    /// thread that tried.
    #[error("{0}")]
    Unavailable(String),
}

pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// An r2d2 pool with the database's health beside it.
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<ConnectionManager>,
    health: Arc<Health>,
    sqlite: bool,
}

impl Pool {
    pub(super) fn new(
        inner: r2d2::Pool<ConnectionManager>,
        health: Arc<Health>,
        sqlite: bool,
    ) -> Pool {
        Pool {
            inner,
            health,
            sqlite,
        }
    }

    /// Whether the database is SQLite (else PostgreSQL).
    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// A connection: at once an error while the database is known to be
    /// away, else within the pool's timeout.
    pub fn get(&self) -> Result<PooledConn, PoolError> {
        if self.health.is_away() {
            return Err(PoolError::Away);
        }
        // Every stale connection the pool holds may be probed, and one more
        // checkout is then taken as it comes.
        for _ in 0..=self.inner.max_size() {
            let mut conn = self.inner.get().map_err(|e| self.timed_out(e))?;
            if !conn.stale() || conn.batch_execute("SELECT 1").is_ok() {
                conn.handed_out = Instant::now();
                return Ok(conn);
            }
            // Dropped as broken on its way back (its error marked it).
            conn.lost.store(true, Ordering::Release);
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
