//! Single use of JWT ids across every node (RFC 7523 §3 `jti`, RFC 9449 §11.1):
//! a client assertion, DPoP proof or identity assertion is accepted once. Each
//! use is a row keyed by the SHA-256 of its kind, issuer and `jti`, kept until
//! the JWT could no longer be accepted anyway, then pruned.

use crate::crypto;
use crate::db::schema::used_jtis;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;

/// What a `jti` was used in: each kind is its own namespace.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    ClientAssertion,
    DpopProof,
    IdentityAssertion,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::ClientAssertion => "client_assertion",
            Kind::DpopProof => "dpop",
            Kind::IdentityAssertion => "id_jag",
        }
    }
}

/// Rows deleted per statement when pruning.
const BATCH: i64 = 500;

/// Records the use of `jti` by `issuer`, kept until `expires_at`; `false`
/// when it was used before (a replay), on this node or any other.
pub fn use_once(
    conn: &mut DbConn,
    kind: Kind,
    issuer: &str,
    jti: &str,
    expires_at: i64,
) -> Result<bool> {
    let used = use_each(conn, &[Use::new(kind, issuer, jti, expires_at)])?;
    Ok(used[0])
}

/// Deletes the uses that have expired; returns how many.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    let mut total = 0;
    loop {
        let keys: Vec<String> = used_jtis::table
            .filter(used_jtis::expires_at.lt(now))
            .select(used_jtis::key)
            .limit(BATCH)
            .load(conn)?;
        if keys.is_empty() {
            return Ok(total);
        }
        total +=
            diesel::delete(used_jtis::table.filter(used_jtis::key.eq_any(&keys))).execute(conn)?;
    }
}

/// One use to record: the row's key and how long it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    key: String,
    expires_at: i64,
}

impl Use {
    pub fn new(kind: Kind, issuer: &str, jti: &str, expires_at: i64) -> Use {
        Use {
            key: crypto::sha256_hex(&format!("{}\n{issuer}\n{jti}", kind.tag())),
            expires_at,
        }
    }
}

/// Records every use in `uses` at once; for each, `true` when it is the first
/// use (a later copy of a use within `uses` is a replay of the earlier one).
/// On PostgreSQL one statement for the whole batch (outside any transaction:
/// a conflict is skipped, not an error); on SQLite one statement per use, in
/// the caller's transaction.
pub fn use_each(conn: &mut DbConn, uses: &[Use]) -> Result<Vec<bool>> {
    let mut first = std::collections::HashSet::with_capacity(uses.len());
    let unique: Vec<&Use> = uses.iter().filter(|u| first.insert(&u.key)).collect();
    let inserted: std::collections::HashSet<String> = match conn {
        DbConn::Postgresql(pg) => {
            let rows: Vec<_> = unique
                .iter()
                .map(|u| {
                    (
                        used_jtis::key.eq(u.key.as_str()),
                        used_jtis::expires_at.eq(u.expires_at),
                    )
                })
                .collect();
            diesel::insert_into(used_jtis::table)
                .values(&rows)
                .on_conflict_do_nothing()
                .returning(used_jtis::key)
                .get_results::<String>(pg)?
                .into_iter()
                .collect()
        }
        DbConn::Sqlite(lite) => {
            let mut fresh = std::collections::HashSet::new();
            for u in &unique {
                let n = diesel::insert_or_ignore_into(used_jtis::table)
                    .values((
                        used_jtis::key.eq(u.key.as_str()),
                        used_jtis::expires_at.eq(u.expires_at),
                    ))
                    .execute(lite)?;
                if n == 1 {
                    fresh.insert(u.key.clone());
                }
            }
            fresh
        }
    };
    let mut answered = std::collections::HashSet::with_capacity(uses.len());
    let mut out = Vec::with_capacity(uses.len());
    for u in uses {
        if !answered.insert(u.key.as_str()) {
            out.push(false);
        } else if inserted.contains(&u.key) {
            out.push(true);
        } else {
            // Seen before, unless the row is one left past its expiry.
            let n = diesel::update(
                used_jtis::table
                    .find(&u.key)
                    .filter(used_jtis::expires_at.lt(db::now())),
            )
            .set(used_jtis::expires_at.eq(u.expires_at))
            .execute(conn)?;
            out.push(n == 1);
        }
    }
    Ok(out)
}

/// Uses waiting to be recorded on one node, so that the requests that arrive
/// together share one write ([`use_each`]) instead of one each: the first to
/// arrive while no write is under way leads (it starts [`Queue::drain`]);
/// the others wait for their answer. Bounded: past [`Queue::MAX_WAITING`] a
/// use is refused a place and recorded on its own.
#[derive(Default)]
pub struct Queue {
    state: std::sync::Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    waiting: Vec<(Use, Answer)>,
    draining: bool,
}

type Answer = tokio::sync::oneshot::Sender<std::result::Result<bool, String>>;

/// Where a use stands once queued.
pub enum Queued {
    /// Queued, and no write is under way: the caller starts [`Queue::drain`].
    Lead(Waiting),
    /// Queued behind a write under way.
    Follow(Waiting),
    /// The queue is full.
    Full,
}

/// The answer a queued use waits for: `true` for a first use.
pub type Waiting = tokio::sync::oneshot::Receiver<std::result::Result<bool, String>>;

impl Queue {
    /// Uses one write records at most.
    pub const MAX_BATCH: usize = 256;
    /// Uses that may wait at once.
    pub const MAX_WAITING: usize = 8192;

    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn enqueue(&self, u: Use) -> Queued {
        let mut state = self.state();
        if state.waiting.len() >= Self::MAX_WAITING {
            return Queued::Full;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        state.waiting.push((u, tx));
        if state.draining {
            Queued::Follow(rx)
        } else {
            state.draining = true;
            Queued::Lead(rx)
        }
    }

    /// Records the waiting uses, a batch at a time, until none is left;
    /// `write` is [`use_each`] in whatever transaction the engine wants.
    pub fn drain(
        &self,
        conn: &mut DbConn,
        mut write: impl FnMut(&mut DbConn, &[Use]) -> Result<Vec<bool>>,
    ) {
        // A write that panics answers every use still waiting, and the
        // next use leads again.
        struct Unwind<'a>(&'a Queue);
        impl Drop for Unwind<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.fail_all("the write of proof uses failed");
                }
            }
        }
        let _unwind = Unwind(self);
        loop {
            let batch: Vec<(Use, Answer)> = {
                let mut state = self.state();
                if state.waiting.is_empty() {
                    state.draining = false;
                    return;
                }
                let n = state.waiting.len().min(Self::MAX_BATCH);
                state.waiting.drain(..n).collect()
            };
            let (uses, answers): (Vec<Use>, Vec<Answer>) = batch.into_iter().unzip();
            match write(conn, &uses) {
                Ok(fresh) => {
                    for (answer, fresh) in answers.into_iter().zip(fresh) {
                        let _ = answer.send(Ok(fresh));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    for answer in answers {
                        let _ = answer.send(Err(why.clone()));
                    }
                }
            }
        }
    }

    /// Answers every waiting use with `why` and ends the drain: for a leader
    /// that could not start one (no connection).
    pub fn fail_all(&self, why: &str) {
        let waiting = {
            let mut state = self.state();
            state.draining = false;
            std::mem::take(&mut state.waiting)
        };
        for (_, answer) in waiting {
            let _ = answer.send(Err(why.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testkit::TestDb;

    fn proof(jti: &str, expires_at: i64) -> Use {
        Use::new(Kind::DpopProof, "jkt", jti, expires_at)
    }

    #[test]
    fn a_batch_records_first_uses_and_refuses_replays_within_and_across_batches() {
        let db = TestDb::new();
        let mut conn = db.conn();
        let later = db::now() + 300;
        let batch = [proof("a", later), proof("b", later), proof("a", later)];
        assert_eq!(use_each(&mut conn, &batch).unwrap(), [true, true, false]);
        assert_eq!(
            use_each(&mut conn, &[proof("b", later), proof("c", later)]).unwrap(),
            [false, true]
        );
        // The single-use path sees the batch's rows, and the other way round.
        assert!(!use_once(&mut conn, Kind::DpopProof, "jkt", "c", later).unwrap());
        assert!(use_once(&mut conn, Kind::DpopProof, "jkt", "d", later).unwrap());
        assert_eq!(use_each(&mut conn, &[proof("d", later)]).unwrap(), [false]);
        // Another kind or issuer is another namespace.
        let other = Use::new(Kind::ClientAssertion, "jkt", "a", later);
        assert_eq!(use_each(&mut conn, &[other]).unwrap(), [true]);
    }

    #[test]
    fn a_row_left_past_its_expiry_is_no_replay() {
        let db = TestDb::new();
        let mut conn = db.conn();
        let past = db::now() - 1;
        assert_eq!(use_each(&mut conn, &[proof("old", past)]).unwrap(), [true]);
        let later = db::now() + 300;
        assert_eq!(use_each(&mut conn, &[proof("old", later)]).unwrap(), [true]);
        assert_eq!(
            use_each(&mut conn, &[proof("old", later)]).unwrap(),
            [false]
        );
    }

    fn answer(w: Waiting) -> std::result::Result<bool, String> {
        w.blocking_recv().expect("answered")
    }

    #[test]
    fn the_first_use_leads_the_rest_follow_and_one_drain_answers_all() {
        let db = TestDb::new();
        let mut conn = db.conn();
        let queue = Queue::default();
        let later = db::now() + 300;
        let Queued::Lead(first) = queue.enqueue(proof("x", later)) else {
            panic!("the first use leads");
        };
        let Queued::Follow(second) = queue.enqueue(proof("x", later)) else {
            panic!("a use behind a drain follows");
        };
        let Queued::Follow(third) = queue.enqueue(proof("y", later)) else {
            panic!("a use behind a drain follows");
        };
        let mut writes = 0;
        queue.drain(&mut conn, |conn, uses| {
            writes += 1;
            use_each(conn, uses)
        });
        assert_eq!(writes, 1, "one write for the uses that waited together");
        assert_eq!(answer(first), Ok(true));
        assert_eq!(answer(second), Ok(false), "the replay within the batch");
        assert_eq!(answer(third), Ok(true));
        // The drain ended: the next use leads again.
        assert!(matches!(queue.enqueue(proof("z", later)), Queued::Lead(_)));
    }

    #[test]
    fn a_failed_write_answers_each_use_with_the_error_and_the_queue_goes_on() {
        let db = TestDb::new();
        let mut conn = db.conn();
        let queue = Queue::default();
        let later = db::now() + 300;
        let Queued::Lead(first) = queue.enqueue(proof("f", later)) else {
            panic!("the first use leads");
        };
        queue.drain(&mut conn, |_, _| {
            Err(crate::error::Error::internal("the disk is gone"))
        });
        assert!(answer(first).is_err());
        // A write that panics answers the uses still waiting.
        let Queued::Lead(second) = queue.enqueue(proof("g", later)) else {
            panic!("the queue leads again after a failed write");
        };
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            queue.drain(&mut conn, |_, _| panic!("a bug"))
        }));
        assert!(unwound.is_err());
        // Its own batch's answers were dropped with the write: the waiter
        // learns it was not recorded.
        assert!(second.blocking_recv().is_err());
        let Queued::Lead(third) = queue.enqueue(proof("g", later)) else {
            panic!("the queue leads again after a panic");
        };
        queue.drain(&mut conn, use_each);
        assert_eq!(
            answer(third),
            Ok(true),
            "the panicked write recorded nothing"
        );
        // A leader without a connection fails everything waiting.
        let Queued::Lead(fourth) = queue.enqueue(proof("h", later)) else {
            panic!("leads");
        };
        queue.fail_all("no connection");
        assert_eq!(answer(fourth), Err("no connection".to_string()));
        assert!(matches!(queue.enqueue(proof("h", later)), Queued::Lead(_)));
    }

    #[test]
    fn the_queue_is_bounded() {
        let queue = Queue::default();
        let later = db::now() + 300;
        let waiting: Vec<Queued> = (0..Queue::MAX_WAITING)
            .map(|i| queue.enqueue(proof(&i.to_string(), later)))
            .collect();
        assert!(waiting.iter().all(|q| !matches!(q, Queued::Full)));
        assert!(matches!(
            queue.enqueue(proof("one more", later)),
            Queued::Full
        ));
    }
}
