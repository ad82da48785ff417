//! Group commit: small write transactions that arrive together (the token
//! grants) share one SQLite transaction and one commit.
//!
//! A writer queues its work and waits. The writer at the head of the queue
//! leads: it takes every piece of work waiting (up to [`MAX_BATCH`]), runs
//! each in its own SAVEPOINT inside one write transaction on its own
//! connection (work that fails is rolled back alone), commits once, and only
//! then answers each and hands the lead to the next in the queue. Alone, a
//! writer leads its own one-piece batch at once: nothing is handed to another
//! thread. A failed commit answers every piece of its batch with the error;
//! none of them took effect.
//!
//! On PostgreSQL each piece is its own transaction on its caller's
//! connection: the server already flushes the log once for the commits that
//! wait together, and one leader would serialise what the pool's connections
//! run in parallel.

use super::{write_tx, DbConn, DbError};
use diesel::connection::SimpleConnection;
use diesel::result::DatabaseErrorKind;
use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The most pieces of work one transaction carries.
pub const MAX_BATCH: usize = 64;

/// Shared transactions run, and the pieces of work they carried, since the
/// process started (`/metrics` reads them).
pub static TRANSACTIONS: AtomicU64 = AtomicU64::new(0);
pub static WRITES: AtomicU64 = AtomicU64::new(0);

/// Runs one piece of work in the leader's transaction, keeping its result
/// for the caller; answers whether it succeeded (its savepoint stands).
type Work = Box<dyn FnOnce(&mut DbConn) -> bool + Send>;

struct Waiter {
    /// Taken by the leader that runs it.
    work: Option<Work>,
    /// Set once its batch has committed (`Ok`) or failed.
    outcome: Option<Result<(), String>>,
    wake: Arc<Condvar>,
}

/// The writers of one database waiting for a shared transaction: threads
/// with a connection of their own ([`Group::run`]), and requests served on
/// the async workers ([`Group::batched`], `db::batch`).
#[derive(Default)]
pub struct Group {
    queue: Mutex<VecDeque<Arc<Mutex<Waiter>>>>,
    pub(super) requests: Arc<super::batch::Requests>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The error a piece of work gets when its batch did not commit, or when the
/// work itself panicked.
pub(super) fn failed(why: String) -> DbError {
    DbError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(why))
}

pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    format!("the write panicked: {what}")
}

impl Group {
    /// Runs `f` in a write transaction, shared on SQLite with the writers
    /// waiting at the same moment, and answers once that transaction has
    /// committed: an `Ok` is never answered for work that did not commit.
    /// `conn` must belong to this group's database.
    pub fn run<T, E, F>(&self, conn: &mut DbConn, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        // PostgreSQL; or SQLite inside a batch's transaction (`db::batch`),
        // where this write is a savepoint of it, answered with the batch.
        if !matches!(conn, DbConn::Sqlite(_)) || super::batch::in_batch(conn) {
            return write_tx(conn, f);
        }
        let result: Arc<Mutex<Option<Result<T, E>>>> = Arc::default();
        let slot = result.clone();
        let work: Work = Box::new(move |conn| {
            let r = f(conn);
            let ok = r.is_ok();
            *lock(&slot) = Some(r);
            ok
        });
        let outcome = self.submit(conn, work);
        let mine = lock(&result).take();
        match (outcome, mine) {
            (Ok(()), Some(r)) => r,
            (Ok(()), None) => Err(failed("the write did not run".into()).into()),
            // The batch did not commit: whatever the work answered is void.
            (Err(why), _) => Err(failed(why).into()),
        }
    }

    /// [`run`](Group::run) for work that is atomic on its own on PostgreSQL
    /// (one statement, or a transaction it opens itself when it needs one): it
    /// runs there without a `BEGIN` and `COMMIT` around it (two round trips
    /// fewer); on SQLite it shares a transaction with the writes waiting, as
    /// any other.
    pub fn run_one<T, E, F>(&self, conn: &mut DbConn, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        match conn {
            DbConn::Sqlite(_) => self.run(conn, f),
            _ => f(conn),
        }
    }

    /// Queues `work`, waits to be answered or to lead, and answers how its
    /// batch ended.
    fn submit(&self, conn: &mut DbConn, work: Work) -> Result<(), String> {
        let wake = Arc::new(Condvar::new());
        let me = Arc::new(Mutex::new(Waiter {
            work: Some(work),
            outcome: None,
            wake: wake.clone(),
        }));
        let mut queue = lock(&self.queue);
        queue.push_back(me.clone());
        loop {
            if let Some(outcome) = lock(&me).outcome.take() {
                return outcome;
            }
            if queue.front().is_some_and(|head| Arc::ptr_eq(head, &me)) {
                break;
            }
            queue = wake.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
        // This writer leads: the batch is the queue's head, up to MAX_BATCH.
        let batch: Vec<Arc<Mutex<Waiter>>> = queue.iter().take(MAX_BATCH).cloned().collect();
        drop(queue);
        let works: Vec<Work> = batch.iter().filter_map(|w| lock(w).work.take()).collect();
        TRANSACTIONS.fetch_add(1, Ordering::Relaxed);
        WRITES.fetch_add(works.len() as u64, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| run_batch(conn, works)))
            .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())));
        let mut queue = lock(&self.queue);
        for waiter in queue.drain(..batch.len()) {
            let mut w = lock(&waiter);
            w.outcome = Some(outcome.clone());
            w.wake.notify_one();
        }
        if let Some(next) = queue.front() {
            lock(next).wake.notify_one();
        }
        drop(queue);
        let mine = lock(&me).outcome.take();
        mine.unwrap_or(outcome)
    }
}

/// One write transaction for every piece of work, each in its savepoint
/// (a piece alone needs none: its failure rolls back the transaction).
fn run_batch(conn: &mut DbConn, mut works: Vec<Work>) -> Result<(), String> {
    if works.len() == 1 {
        let work = works.pop().expect("one piece");
        let committed = write_tx(conn, |conn| {
            let ok = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|payload| {
                log::error!("{}", panic_message(payload.as_ref()));
                false
            });
            // A failed piece is rolled back by failing the transaction; what
            // it answered is its own.
            if ok {
                Ok(())
            } else {
                Err(DbError::RollbackTransaction)
            }
        });
        return match committed {
            Ok(()) | Err(DbError::RollbackTransaction) => Ok(()),
            Err(e) => Err(format!("the write transaction failed: {e}")),
        };
    }
    let committed = write_tx(conn, |conn| {
        for work in works {
            conn.batch_execute("SAVEPOINT grouped")?;
            let ok = match catch_unwind(AssertUnwindSafe(|| work(conn))) {
                Ok(ok) => ok,
                Err(payload) => {
                    log::error!("{}", panic_message(payload.as_ref()));
                    false
                }
            };
            if !ok {
                conn.batch_execute("ROLLBACK TO grouped")?;
            }
            conn.batch_execute("RELEASE grouped")?;
        }
        Ok::<_, DbError>(())
    });
    committed.map_err(|e| format!("the write transaction failed: {e}"))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use diesel::prelude::*;
    use std::time::Duration;

    impl Group {
        fn waiting(&self) -> usize {
            lock(&self.queue).len()
        }
    }

    /// A directory of this test's own, removed when it ends.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new() -> Dir {
            let dir =
                std::env::temp_dir().join(format!("keygate-group-{}", super::super::new_id()));
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn database(dir: &Dir) -> (String, DbConn) {
        let path = dir.0.join("g.db").to_string_lossy().into_owned();
        let mut conn = DbConn::Sqlite(SqliteConnection::establish(&path).unwrap());
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE t (n INTEGER PRIMARY KEY,
                 parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        (path, conn)
    }

    fn open(path: &str) -> DbConn {
        let mut conn = DbConn::Sqlite(SqliteConnection::establish(path).unwrap());
        conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
            .unwrap();
        conn
    }

    fn insert(conn: &mut DbConn, n: i64) -> QueryResult<i64> {
        diesel::sql_query("INSERT INTO t (n) VALUES (?)")
            .bind::<diesel::sql_types::BigInt, _>(n)
            .execute(conn)?;
        Ok(n)
    }

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    /// The rows of the scratch table `t` (also `db::batch`'s tests').
    pub(in crate::db) fn rows(conn: &mut DbConn) -> Vec<i64> {
        diesel::sql_query("SELECT n FROM t ORDER BY n")
            .load::<N>(conn)
            .unwrap()
            .into_iter()
            .map(|r| r.n)
            .collect()
    }

    /// Holds this process's writers at the gate until `release` says so,
    /// and waits until `ready` pieces of work are queued (the first of
    /// them leading, stuck at the gate with a batch of itself).
    fn with_gate_held<R>(group: &Group, ready: usize, start: impl FnOnce() -> R) -> R {
        let gate = SQLITE_WRITE_GATE_FOR_TESTS
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let started = start();
        while group.waiting() < ready {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(gate);
        started
    }

    use super::super::SQLITE_WRITE_GATE as SQLITE_WRITE_GATE_FOR_TESTS;

    type TestWork = Box<dyn FnOnce(&mut DbConn) -> QueryResult<i64> + Send>;

    /// A thread that runs `work` through the group on a connection of its own.
    fn writer(
        group: &Arc<Group>,
        path: &str,
        work: TestWork,
    ) -> std::thread::JoinHandle<QueryResult<i64>> {
        let (group, path) = (group.clone(), path.to_string());
        std::thread::spawn(move || group.run(&mut open(&path), work))
    }

    #[test]
    fn concurrent_writers_each_get_their_own_committed_answer() {
        let dir = Dir::new();
        let (path, mut check) = database(&dir);
        let group = Arc::new(Group::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (group, path) = (group.clone(), path.clone());
                std::thread::spawn(move || {
                    let mut conn = open(&path);
                    (0..40)
                        .map(|i| {
                            let n = t * 1000 + i;
                            group.run(&mut conn, move |c| insert(c, n)).unwrap()
                        })
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        let mut answered: Vec<i64> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        answered.sort();
        let expected: Vec<i64> = (0..8)
            .flat_map(|t| (0..40).map(move |i| t * 1000 + i))
            .collect();
        assert_eq!(answered, expected);
        assert_eq!(rows(&mut check), expected);
        assert_eq!(group.waiting(), 0);
    }

    #[test]
    fn a_failing_or_panicking_piece_is_rolled_back_alone() {
        let dir = Dir::new();
        let (path, mut check) = database(&dir);
        let group = Arc::new(Group::default());
        let spawn = |work: TestWork| writer(&group, &path, work);
        let (first, rest) = with_gate_held(&group, 4, || {
            let first = spawn(Box::new(|c| insert(c, 1)));
            while group.waiting() < 1 {
                std::thread::sleep(Duration::from_millis(5));
            }
            // Queued behind the first, so that they share the next batch.
            let rest = vec![
                spawn(Box::new(|c| {
                    insert(c, 2)?;
                    insert(c, 2) // a duplicate key: this piece fails
                })),
                spawn(Box::new(|c| {
                    insert(c, 3)?;
                    panic!("a bug in the work")
                })),
                spawn(Box::new(|c| insert(c, 4))),
            ];
            (first, rest)
        });
        assert_eq!(first.join().unwrap().unwrap(), 1);
        let answers: Vec<QueryResult<i64>> = rest.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(answers[0].is_err(), "{:?}", answers[0]);
        assert!(answers[1].is_err(), "{:?}", answers[1]);
        assert_eq!(answers[2].as_ref().unwrap(), &4);
        assert_eq!(rows(&mut check), vec![1, 4]);
    }

    #[test]
    fn a_piece_alone_that_fails_or_panics_leaves_nothing_behind() {
        let dir = Dir::new();
        let (path, mut check) = database(&dir);
        let group = Arc::new(Group::default());
        let failed = writer(
            &group,
            &path,
            Box::new(|c| {
                insert(c, 1)?;
                insert(c, 1)
            }),
        );
        assert!(failed.join().unwrap().is_err());
        let panicked = writer(
            &group,
            &path,
            Box::new(|c| {
                insert(c, 2)?;
                panic!("a bug in the work")
            }),
        );
        assert!(panicked.join().unwrap().is_err());
        assert_eq!(rows(&mut check), Vec::<i64>::new());
        assert_eq!(
            writer(&group, &path, Box::new(|c| insert(c, 3)))
                .join()
                .unwrap()
                .unwrap(),
            3
        );
        assert_eq!(rows(&mut check), vec![3]);
    }

    #[test]
    fn a_batch_that_does_not_commit_answers_every_piece_with_the_error() {
        let dir = Dir::new();
        let (path, mut check) = database(&dir);
        let group = Arc::new(Group::default());
        let spawn = |work: TestWork| writer(&group, &path, work);
        let (first, rest) = with_gate_held(&group, 3, || {
            let first = spawn(Box::new(|c| insert(c, 1)));
            while group.waiting() < 1 {
                std::thread::sleep(Duration::from_millis(5));
            }
            let rest = vec![
                spawn(Box::new(|c| insert(c, 2))),
                // A deferred foreign key that nothing satisfies: the piece
                // succeeds, and the COMMIT of its batch fails.
                spawn(Box::new(|c| {
                    diesel::sql_query("INSERT INTO t (n, parent) VALUES (3, 99)").execute(c)?;
                    Ok(3)
                })),
            ];
            (first, rest)
        });
        assert_eq!(first.join().unwrap().unwrap(), 1);
        for h in rest {
            let answer = h.join().unwrap();
            assert!(
                answer.is_err(),
                "answered {answer:?} for work that did not commit"
            );
        }
        assert_eq!(rows(&mut check), vec![1]);
        // The group goes on: the next write commits.
        assert_eq!(group.run(&mut open(&path), |c| insert(c, 5)).unwrap(), 5);
        assert_eq!(rows(&mut check), vec![1, 5]);
    }
}
