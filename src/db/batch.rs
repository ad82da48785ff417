//! Group commit: small write transactions that arrive together (the token
//! grants, the consent approval) share one transaction and one commit.
//!
//! One writer per database (a thread owning its own connection, outside the
//! pool, so waiting callers holding pooled connections can never starve it)
//! takes every job waiting, up to `MAX_BATCH`, runs each in its own SAVEPOINT
//! inside one transaction (a job that fails is rolled back alone), commits
//! once, and only then answers each. A failed COMMIT answers every job of the
//! batch `Unavailable`: none of them took effect.

use super::{ConnectionManager, DatabaseUrl, DbConn, DbError};
use diesel::connection::SimpleConnection;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// The most jobs one transaction carries.
pub const MAX_BATCH: usize = 64;

/// A writer with nothing to do for this long ends, closing its connection
/// (a database a test has deleted is not held open); the next job starts one.
const IDLE: Duration = Duration::from_secs(5);

/// Why a job was not answered with its own result.
#[derive(Debug)]
pub enum Batched<E> {
    /// The job ran and failed; its savepoint was rolled back, the others stand.
    Failed(E),
    /// The batch's transaction did not commit (or could not begin): nothing
    /// of this job took effect. Worth a retry.
    Unavailable(String),
}

/// What the writer runs: the job's work inside its savepoint, returning
/// whether it succeeded and how to answer once the batch's fate is known.
type Job = Box<dyn FnOnce(&mut DbConn) -> (bool, Answer) + Send>;
/// Called with `None` once committed, else with why the batch failed.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

struct Writer {
    url: DatabaseUrl,
    /// The running writer's queue; `None` when no writer runs.
    queue: Mutex<Option<Sender<Job>>>,
}

static WRITERS: LazyLock<Mutex<HashMap<DatabaseUrl, Arc<Writer>>>> = LazyLock::new(Mutex::default);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` in the next batched write transaction of the database at `url`
/// and waits until that transaction has committed (or failed).
pub fn run<T, E, F>(url: &str, f: F) -> Result<T, Batched<E>>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
{
    let url = DatabaseUrl::parse(url).map_err(Batched::Unavailable)?;
    let writer = lock(&WRITERS)
        .entry(url.clone())
        .or_insert_with(|| {
            Arc::new(Writer {
                url,
                queue: Mutex::new(None),
            })
        })
        .clone();
    let (job, rx) = job(f);
    writer.submit(job);
    rx.recv().unwrap_or_else(|_| {
        // The job panicked (its answer went with it) or the writer ended.
        Err(Batched::Unavailable("the write batch was lost".into()))
    })
}

/// A job for the writer, and where its answer arrives.
fn job<T, E, F>(f: F) -> (Job, Receiver<Result<T, Batched<E>>>)
where
    T: Send + 'static,
    E: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel::<Result<T, Batched<E>>>(1);
    let job: Job = Box::new(move |conn| {
        let result = f(conn);
        let ok = result.is_ok();
        let answer: Answer = Box::new(move |failed| {
            let _ = tx.send(match failed {
                None => result.map_err(Batched::Failed),
                Some(why) => Err(Batched::Unavailable(why.to_string())),
            });
        });
        (ok, answer)
    });
    (job, rx)
}

impl Writer {
    fn submit(self: &Arc<Self>, job: Job) {
        let mut queue = lock(&self.queue);
        let job = match queue.as_ref() {
            Some(q) => match q.send(job) {
                Ok(()) => return,
                // The writer ended (it panicked): start another.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::channel();
        let _ = tx.send(job);
        *queue = Some(tx);
        let writer = self.clone();
        let spawned = std::thread::Builder::new()
            .name("keygate-writer".into())
            .spawn(move || writer.serve(rx));
        if spawned.is_err() {
            // The queued job's sender is dropped with the queue: it is answered
            // "lost" at once.
            *queue = None;
        }
    }

    fn serve(&self, rx: Receiver<Job>) {
        let mut conn: Option<DbConn> = None;
        loop {
            let first = match rx.recv_timeout(IDLE) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    let mut queue = lock(&self.queue);
                    // Submitters send under this lock: empty now is empty.
                    match rx.try_recv() {
                        Ok(job) => {
                            drop(queue);
                            job
                        }
                        Err(_) => {
                            *queue = None;
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            if conn.is_none() {
                let manager = ConnectionManager {
                    url: self.url.clone(),
                };
                match r2d2::ManageConnection::connect(&manager) {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        let why = format!("cannot open the database: {e}");
                        fail_all(jobs, &why);
                        continue;
                    }
                }
            }
            let c = conn.as_mut().expect("connected above");
            if let Err(why) = run_batch(c, jobs) {
                // The connection's state is unknown after a failed batch:
                // start from a fresh one.
                log::warn!("a batched write transaction failed: {why}");
                conn = None;
            }
        }
    }
}

/// Answers jobs that never ran.
fn fail_all(jobs: Vec<Job>, why: &str) {
    // A job answers only after running; these answer "lost" when dropped,
    // which the caller reports as unavailable.
    drop(jobs);
    log::warn!("a write batch was not run: {why}");
}

/// One transaction for all of `jobs`; each answered after the commit.
fn run_batch(conn: &mut DbConn, jobs: Vec<Job>) -> Result<(), String> {
    let sqlite = matches!(conn, DbConn::Sqlite(_));
    // On SQLite this process's other writers queue on the same gate.
    let _gate = sqlite.then(|| lock(&super::SQLITE_WRITE_GATE));
    let begin = if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
    if let Err(e) = conn.batch_execute(begin) {
        let why = format!("BEGIN: {e}");
        fail_all(jobs, &why);
        return Err(why);
    }
    let mut answers = Vec::with_capacity(jobs.len());
    let mut broken: Option<String> = None;
    for job in jobs {
        if broken.is_some() {
            // Dropped unrun: answered "lost" (unavailable).
            continue;
        }
        if let Err(e) = conn.batch_execute("SAVEPOINT grant_job") {
            broken = Some(format!("SAVEPOINT: {e}"));
            continue;
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| job(conn))) {
            Ok((ok, answer)) => {
                let end = if ok {
                    conn.batch_execute("RELEASE SAVEPOINT grant_job")
                } else {
                    conn.batch_execute(
                        "ROLLBACK TO SAVEPOINT grant_job; RELEASE SAVEPOINT grant_job",
                    )
                };
                answers.push(answer);
                if let Err(e) = end {
                    broken = Some(format!("savepoint: {e}"));
                }
            }
            Err(_) => {
                // Its answer is gone with the panic; undo what it did.
                log::error!("a batched write job panicked");
                if let Err(e) = conn
                    .batch_execute("ROLLBACK TO SAVEPOINT grant_job; RELEASE SAVEPOINT grant_job")
                {
                    broken = Some(format!("savepoint: {e}"));
                }
            }
        }
    }
    let outcome = match broken {
        Some(why) => Err(why),
        None => conn
            .batch_execute("COMMIT")
            .map_err(|e| format!("COMMIT: {e}")),
    };
    match outcome {
        Ok(()) => {
            for answer in answers {
                answer(None);
            }
            Ok(())
        }
        Err(why) => {
            let _ = conn.batch_execute("ROLLBACK");
            for answer in answers {
                answer(Some(&why));
            }
            Err(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    #[test]
    fn a_failing_job_is_undone_alone() {
        let dir = std::env::temp_dir().join(format!("keygate-batch-{}", super::super::new_id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let mut conn = super::super::connect_single(&url).expect("database");
        conn.batch_execute("CREATE TABLE t (n BIGINT PRIMARY KEY NOT NULL)")
            .expect("table");
        let insert = |n: i64, then_fail: bool| {
            job(move |conn: &mut DbConn| {
                diesel::sql_query("INSERT INTO t (n) VALUES ($1)")
                    .bind::<BigInt, _>(n)
                    .execute(conn)?;
                if then_fail {
                    // A duplicate key: the job fails after a write of its own.
                    diesel::sql_query("INSERT INTO t (n) VALUES ($1)")
                        .bind::<BigInt, _>(n)
                        .execute(conn)?;
                }
                Ok::<_, DbError>(n)
            })
        };
        let (a, ra) = insert(1, false);
        let (b, rb) = insert(2, true);
        let (c, rc) = insert(3, false);
        run_batch(&mut conn, vec![a, b, c]).expect("the batch commits");
        assert_eq!(ra.recv().expect("answered").ok(), Some(1));
        assert!(matches!(
            rb.recv().expect("answered"),
            Err(Batched::Failed(_))
        ));
        assert_eq!(rc.recv().expect("answered").ok(), Some(3));
        let rows: Vec<N> = diesel::sql_query("SELECT n FROM t ORDER BY n")
            .load(&mut conn)
            .expect("rows");
        assert_eq!(rows.iter().map(|r| r.n).collect::<Vec<_>>(), vec![1, 3]);
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_writer_answers_after_its_commit() {
        let dir = std::env::temp_dir().join(format!("keygate-batch-{}", super::super::new_id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let mut conn = super::super::connect_single(&url).expect("database");
        conn.batch_execute("CREATE TABLE t (n BIGINT PRIMARY KEY NOT NULL)")
            .expect("table");
        let handles: Vec<_> = (0..8i64)
            .map(|n| {
                let url = url.clone();
                std::thread::spawn(move || {
                    run(&url, move |conn| {
                        diesel::sql_query("INSERT INTO t (n) VALUES ($1)")
                            .bind::<BigInt, _>(n)
                            .execute(conn)?;
                        Ok::<_, DbError>(n)
                    })
                })
            })
            .collect();
        for h in handles {
            let n = h.join().expect("thread").expect("committed");
            // Answered, so committed: another connection sees it.
            let seen: Vec<N> = diesel::sql_query("SELECT n FROM t WHERE n = $1")
                .bind::<BigInt, _>(n)
                .load(&mut conn)
                .expect("read");
            assert_eq!(seen.len(), 1);
        }
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
