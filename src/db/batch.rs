//! Group commit for requests served on the async workers (SQLite): a
//! request's whole database work (its reads, its writes, what it answers)
//! is queued as one job, and one blocking thread runs the jobs queued
//! together in one write transaction on one connection, each in a savepoint
//! of its own, commits once, and only then hands each request its answer.
//!
//! [`db::group`](super::group) shares a commit between threads that each
//! hold a connection; on one core those threads rarely overlap (each grant
//! runs to its end before the next one is read), so each still paid a
//! commit, two thread hand-offs and, on a connection whose page cache the
//! other connections' writes had voided, its reads afresh. Here the first
//! job of a batch lets the worker read the other requests that arrived with
//! it before the batch starts ([`tokio::task::yield_now`]); while a batch
//! runs, the next one queues.
//!
//! Inside a batch a job's own write transactions ([`super::write_tx`],
//! [`super::group::Group::run`]) are savepoints of the batch's transaction
//! ([`in_batch`]): what they answer stands only if the batch commits, and no
//! job is answered before that. A job that panics is rolled back alone; a
//! batch that does not commit answers every job with the error, none took
//! effect. Anything a job changes outside the database (a node's cache of
//! revocations) is changed before the commit, which for a revocation is the
//! safe order.
//!
//! On PostgreSQL a job runs alone on a connection of the pool (the server
//! flushes its log once for the commits that arrive together).

use super::group::{failed, lock, panic_message, Group, TRANSACTIONS, WRITES};
use super::{DbConn, DbError, Pool, PoolError, SQLITE_WRITE_GATE};
use diesel::connection::SimpleConnection;
use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// The most jobs one transaction carries.
pub const MAX_BATCH: usize = 64;
/// Jobs that may wait at once; past it a job runs on its own.
pub const MAX_WAITING: usize = 4096;

/// Why a job was not answered.
#[derive(Debug, thiserror::Error)]
pub enum Unanswered {
    /// No connection for the batch.
    #[error("{0}")]
    Pool(#[from] PoolError),
    /// The batch did not commit, or the job panicked.
    #[error("{0}")]
    Failed(DbError),
}

/// How a batch ended, for each of its jobs.
#[derive(Clone)]
enum Outcome {
    Committed,
    NoConnection { away: bool, why: String },
    Failed(String),
}

/// Hands a job its answer once its batch has ended.
type Deliver = Box<dyn FnOnce(Outcome) + Send>;
/// A job: runs on the batch's connection (or, with none, not at all) and
/// keeps its answer for delivery.
type Job = Box<dyn FnOnce(Option<&mut DbConn>) -> Deliver + Send>;

/// The jobs waiting for a batch.
#[derive(Default)]
pub struct Requests {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// A blocking thread is running batches until the queue is empty.
    draining: bool,
}

thread_local! {
    /// The connection whose batch transaction this thread is running.
    static BATCH: Cell<usize> = const { Cell::new(0) };
}

fn address(conn: &DbConn) -> usize {
    conn as *const DbConn as usize
}

/// Whether `conn` is running a batch's transaction on this thread.
pub fn in_batch(conn: &DbConn) -> bool {
    BATCH.with(|b| b.get()) == address(conn)
}

/// A write transaction inside a batch: a savepoint, released when `f`
/// succeeds, rolled back when it fails.
pub(super) fn savepoint<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<DbError>,
{
    conn.batch_execute("SAVEPOINT write")?;
    match f(conn) {
        Ok(v) => {
            conn.batch_execute("RELEASE write")?;
            Ok(v)
        }
        Err(e) => {
            conn.batch_execute("ROLLBACK TO write; RELEASE write")?;
            Err(e)
        }
    }
}

impl Group {
    /// Runs `f` with a connection: on SQLite in a write transaction shared
    /// with the jobs queued at the same moment on this node, answered once
    /// it has committed (see the module's text); on PostgreSQL alone, on a
    /// blocking thread.
    pub async fn batched<T, F>(&self, pool: &Pool, f: F) -> Result<T, Unanswered>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn: Option<&mut DbConn>| {
            let value = conn.map(f);
            Box::new(move |outcome| {
                let _ = tx.send(match (outcome, value) {
                    (Outcome::Committed, Some(value)) => Ok(value),
                    (Outcome::Committed, None) => {
                        Err(Outcome::Failed("the write did not run".into()))
                    }
                    (other, _) => Err(other),
                });
            })
        });
        // Queued (and whether it leads), or handed back to run on its own:
        // on PostgreSQL, or with too many waiting.
        let queued: Result<bool, Job> = {
            let mut state = lock(&self.requests.state);
            if !pool.is_sqlite() || state.jobs.len() >= MAX_WAITING {
                Err(job)
            } else {
                state.jobs.push_back(job);
                Ok(!std::mem::replace(&mut state.draining, true))
            }
        };
        match queued {
            Err(job) => alone(pool, job),
            Ok(false) => {}
            Ok(true) => {
                // A task of its own, so that a request dropped meanwhile (its
                // client gone) cannot leave the queue with no drain; it yields
                // first, letting the requests read with this one queue their
                // jobs too.
                let requests = self.requests.clone();
                let pool = pool.clone();
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    let _ = tokio::task::spawn_blocking(move || requests.drain(&pool)).await;
                });
            }
        }
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Outcome::NoConnection { away, why })) => Err(Unanswered::Pool(if away {
                PoolError::Away
            } else {
                PoolError::Unavailable(why)
            })),
            Ok(Err(Outcome::Failed(why))) => Err(Unanswered::Failed(failed(why))),
            Ok(Err(Outcome::Committed)) | Err(_) => {
                Err(Unanswered::Failed(failed("the write did not run".into())))
            }
        }
    }
}

/// A job on its own on a blocking thread: its write transactions are its
/// own, committed before it answers.
fn alone(pool: &Pool, job: Job) {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || match pool.get() {
        Ok(mut conn) => job(Some(&mut conn))(Outcome::Committed),
        Err(e) => job(None)(Outcome::no_connection(&e)),
    });
}

impl Outcome {
    fn no_connection(e: &PoolError) -> Outcome {
        Outcome::NoConnection {
            away: matches!(e, PoolError::Away),
            why: e.to_string(),
        }
    }
}

impl Requests {
    /// Runs batches of the waiting jobs until none is left.
    fn drain(&self, pool: &Pool) {
        // A drain that panics (outside a job) answers every job still
        // waiting, and the next job leads again.
        struct Unwind<'a>(&'a Requests);
        impl Drop for Unwind<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0
                        .answer_all(Outcome::Failed("the write of a batch failed".into()));
                }
            }
        }
        let _unwind = Unwind(self);
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(e) => return self.answer_all(Outcome::no_connection(&e)),
        };
        loop {
            let jobs: Vec<Job> = {
                let mut state = lock(&self.state);
                if state.jobs.is_empty() {
                    state.draining = false;
                    return;
                }
                let n = state.jobs.len().min(MAX_BATCH);
                state.jobs.drain(..n).collect()
            };
            TRANSACTIONS.fetch_add(1, Ordering::Relaxed);
            WRITES.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            let mut delivers = Vec::with_capacity(jobs.len());
            let outcome = match run_batch(&mut conn, jobs, &mut delivers) {
                Ok(()) => Outcome::Committed,
                Err(e) => Outcome::Failed(format!("the write transaction failed: {e}")),
            };
            for deliver in delivers {
                deliver(outcome.clone());
            }
        }
    }

    /// Answers every waiting job with `outcome` (none of them ran) and ends
    /// the drain.
    fn answer_all(&self, outcome: Outcome) {
        let jobs = {
            let mut state = lock(&self.state);
            state.draining = false;
            std::mem::take(&mut state.jobs)
        };
        for job in jobs {
            job(None)(outcome.clone());
        }
    }
}

/// One write transaction for the jobs, each in a savepoint of its own (a job
/// that panics is rolled back alone); `delivers` gets the answer of each job
/// that ran.
fn run_batch(
    conn: &mut DbConn,
    jobs: Vec<Job>,
    delivers: &mut Vec<Deliver>,
) -> Result<(), DbError> {
    let _gate = SQLITE_WRITE_GATE.lock().unwrap_or_else(|p| p.into_inner());
    conn.batch_execute("BEGIN IMMEDIATE")?;
    let ran = {
        let _mark = Mark::set(conn);
        run_jobs(conn, jobs, delivers)
    };
    match ran.and_then(|()| conn.batch_execute("COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

fn run_jobs(conn: &mut DbConn, jobs: Vec<Job>, delivers: &mut Vec<Deliver>) -> Result<(), DbError> {
    for job in jobs {
        conn.batch_execute("SAVEPOINT job")?;
        match catch_unwind(AssertUnwindSafe(|| job(Some(&mut *conn)))) {
            Ok(deliver) => {
                conn.batch_execute("RELEASE job")?;
                delivers.push(deliver);
            }
            Err(payload) => {
                // Its request sees its answer dropped: "did not run".
                log::error!("{}", panic_message(payload.as_ref()));
                conn.batch_execute("ROLLBACK TO job; RELEASE job")?;
            }
        }
    }
    Ok(())
}

/// Marks `conn` as running a batch on this thread while it lives.
struct Mark;

impl Mark {
    fn set(conn: &DbConn) -> Mark {
        BATCH.with(|b| b.set(address(conn)));
        Mark
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        BATCH.with(|b| b.set(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::group::tests::rows;
    use crate::db::testkit::TestDb;
    use diesel::prelude::*;
    use std::sync::Arc;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A migrated database with a scratch table `t` whose rows may name a
    /// `parent` checked only at commit (a row naming none fails the commit).
    fn scratch(db: &TestDb) -> Pool {
        let pool = db.pool();
        pool.get()
            .unwrap()
            .batch_execute(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE t (n INTEGER PRIMARY KEY,
                     parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
            )
            .unwrap();
        pool
    }

    /// A job's write, in a write transaction of its own (a savepoint of the
    /// batch's), failing when `n` is negative.
    fn insert(conn: &mut DbConn, n: i64) -> Result<i64, DbError> {
        super::super::write_tx(conn, |conn| {
            diesel::sql_query(format!("INSERT INTO t (n) VALUES ({})", n.abs())).execute(conn)?;
            if n < 0 {
                return Err(DbError::RollbackTransaction);
            }
            Ok(n)
        })
    }

    /// What a job saw: whether it ran in a batch, on which connection, and
    /// the rows before its own write.
    type Seen = (bool, usize, Vec<i64>, Result<i64, DbError>);

    fn job(n: i64) -> impl FnOnce(&mut DbConn) -> Seen + Send + 'static {
        move |conn| {
            let before = rows(conn);
            (in_batch(conn), address(conn), before, insert(conn, n))
        }
    }

    type TestJob<T> = Box<dyn FnOnce(&mut DbConn) -> T + Send>;

    /// Runs the jobs as requests arriving together on one worker.
    fn together<T: Send + 'static>(
        group: &Arc<Group>,
        pool: &Pool,
        jobs: Vec<TestJob<T>>,
    ) -> Vec<Result<T, Unanswered>> {
        runtime().block_on(async {
            let runs = jobs.into_iter().map(|job| {
                let group = group.clone();
                let pool = pool.clone();
                async move { group.batched(&pool, job).await }
            });
            futures_util::future::join_all(runs).await
        })
    }

    #[test]
    fn jobs_that_arrive_together_share_one_transaction_and_each_gets_its_answer() {
        let db = TestDb::new();
        let pool = scratch(&db);
        let group = Arc::new(Group::default());
        let jobs: Vec<TestJob<Seen>> = (1..=5).map(|n| Box::new(job(n)) as _).collect();
        let seen: Vec<Seen> = together(&group, &pool, jobs)
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        // One connection, in a batch, each job seeing the ones before it.
        let conn = seen[0].1;
        for (i, (batched, at, before, written)) in seen.iter().enumerate() {
            assert!(batched);
            assert_eq!(*at, conn);
            assert_eq!(*before, (1..=i as i64).collect::<Vec<_>>());
            assert_eq!(*written.as_ref().unwrap(), i as i64 + 1);
        }
        assert_eq!(rows(&mut pool.get().unwrap()), [1, 2, 3, 4, 5]);
        // Out of a batch, a write is a transaction of its own again.
        let mut conn = pool.get().unwrap();
        assert!(!in_batch(&conn));
        assert_eq!(insert(&mut conn, 6).unwrap(), 6);
        assert_eq!(rows(&mut conn), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_job_that_fails_or_panics_is_rolled_back_alone() {
        let db = TestDb::new();
        let pool = scratch(&db);
        let group = Arc::new(Group::default());
        let jobs: Vec<TestJob<i64>> = vec![
            Box::new(|conn| insert(conn, 1).unwrap()),
            // Its write fails: its own savepoint is rolled back.
            Box::new(|conn| insert(conn, -2).map_or(-1, |n| n)),
            Box::new(|conn| {
                insert(conn, 3).unwrap();
                panic!("a job that panics after its write")
            }),
            Box::new(|conn| insert(conn, 4).unwrap()),
        ];
        let answers = together(&group, &pool, jobs);
        assert_eq!(*answers[0].as_ref().unwrap(), 1);
        assert_eq!(*answers[1].as_ref().unwrap(), -1);
        assert!(matches!(&answers[2], Err(Unanswered::Failed(_))));
        assert_eq!(*answers[3].as_ref().unwrap(), 4);
        assert_eq!(rows(&mut pool.get().unwrap()), [1, 4]);
    }

    #[test]
    fn a_batch_that_does_not_commit_answers_every_job_with_the_error() {
        let db = TestDb::new();
        let pool = scratch(&db);
        let group = Arc::new(Group::default());
        let jobs: Vec<TestJob<i64>> = vec![
            Box::new(|conn| insert(conn, 1).unwrap()),
            // A row naming a parent that does not exist: the commit fails.
            Box::new(|conn| {
                diesel::sql_query("INSERT INTO t (n, parent) VALUES (2, 99)")
                    .execute(conn)
                    .unwrap() as i64
            }),
            Box::new(|conn| insert(conn, 3).unwrap()),
        ];
        for answer in together(&group, &pool, jobs) {
            match answer {
                Err(Unanswered::Failed(e)) => {
                    assert!(e.to_string().contains("FOREIGN KEY"), "{e}")
                }
                other => panic!("answered {:?}", other.map(|_| ())),
            }
        }
        assert!(rows(&mut pool.get().unwrap()).is_empty());
        // The next batch starts afresh.
        let jobs: Vec<TestJob<i64>> = vec![Box::new(|conn| insert(conn, 4).unwrap())];
        assert_eq!(*together(&group, &pool, jobs)[0].as_ref().unwrap(), 4);
        assert_eq!(rows(&mut pool.get().unwrap()), [4]);
    }

    #[test]
    fn a_request_dropped_after_queueing_leaves_the_queue_drained() {
        let db = TestDb::new();
        let pool = scratch(&db);
        let group = Arc::new(Group::default());
        runtime().block_on(async {
            // Polled once (queued, leading), then dropped.
            use futures_util::FutureExt;
            let first = group.batched(&pool, |conn| insert(conn, 1).unwrap());
            assert!(first.now_or_never().is_none());
            let second = group.batched(&pool, |conn| insert(conn, 2).unwrap());
            let answered = tokio::time::timeout(std::time::Duration::from_secs(10), second)
                .await
                .expect("answered, not stuck behind a drain that never started");
            assert_eq!(answered.unwrap(), 2);
        });
        // The dropped request's job ran all the same (as a blocking thread
        // whose request went away does).
        assert_eq!(rows(&mut pool.get().unwrap()), [1, 2]);
    }

    #[test]
    fn on_postgresql_a_job_runs_alone() {
        let Some(db) = TestDb::postgres() else { return };
        let pool = db.pool();
        pool.get()
            .unwrap()
            .batch_execute("CREATE TABLE t (n BIGINT PRIMARY KEY)")
            .unwrap();
        let group = Arc::new(Group::default());
        let jobs: Vec<TestJob<(bool, i64)>> = (1..=3)
            .map(|n| {
                Box::new(move |conn: &mut DbConn| (in_batch(conn), insert(conn, n).unwrap())) as _
            })
            .collect();
        for (i, answer) in together(&group, &pool, jobs).into_iter().enumerate() {
            assert_eq!(answer.unwrap(), (false, i as i64 + 1));
        }
        assert_eq!(rows(&mut pool.get().unwrap()), [1, 2, 3]);
    }
}
