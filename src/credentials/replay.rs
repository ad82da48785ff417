//! Single use of JWT ids across every node (RFC 7523 §3 `jti`, RFC 9449 §11.1):
//! a client assertion, DPoP proof or identity assertion is accepted once. Each
//! use is a row keyed by when the JWT stops being acceptable and the SHA-256 of
//! its kind, issuer and `jti`, kept until then (and [`PRUNE_MARGIN`] more),
//! then pruned. Both parts come from the JWT itself, so a replay of it is the
//! same row: inserting a row that is already there is the refusal. The rows are
//! in expiry order, so the uses recorded together share a few pages and the
//! prune deletes from one end.

use crate::crypto;
use crate::db::schema::used_jtis;
use crate::db::DbConn;
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

/// How long a use is kept past its expiry: for nodes whose clocks disagree
/// (one that runs behind may still accept the JWT after another's clock has
/// passed its expiry).
pub const PRUNE_MARGIN: i64 = 60;

/// Records the use of `jti` by `issuer`, a JWT acceptable until `expires_at`
/// (a time the JWT itself names, so that a replay names it too); `false` when
/// it was used before (a replay), on this node or any other.
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

/// Deletes the uses expired more than [`PRUNE_MARGIN`] ago, one second of
/// expiries per statement (each a range at the table's start); returns how
/// many.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    let cutoff = now - PRUNE_MARGIN;
    let mut total = 0;
    loop {
        let oldest: Option<i64> = used_jtis::table
            .select(diesel::dsl::min(used_jtis::expires_at))
            .first(conn)?;
        match oldest {
            Some(second) if second < cutoff => {
                total += diesel::delete(used_jtis::table.filter(used_jtis::expires_at.le(second)))
                    .execute(conn)?;
            }
            _ => return Ok(total),
        }
    }
}

/// One use to record: the JWT's expiry and the digest of what names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Use {
    expires_at: i64,
    key: [u8; 32],
}

impl Use {
    pub fn new(kind: Kind, issuer: &str, jti: &str, expires_at: i64) -> Use {
        Use {
            expires_at,
            key: crypto::sha256(format!("{}\n{issuer}\n{jti}", kind.tag()).as_bytes()),
        }
    }
}

/// Records every use in `uses` at once; for each, `true` when it is the first
/// use (a later copy of a use within `uses` is a replay of the earlier one).
/// On PostgreSQL one statement for the whole batch (outside any transaction:
/// a conflict is skipped, not an error); on SQLite one statement per use, in
/// the caller's transaction.
pub fn use_each(conn: &mut DbConn, uses: &[Use]) -> Result<Vec<bool>> {
    use std::collections::HashSet;
    let mut first = HashSet::with_capacity(uses.len());
    let unique: Vec<&Use> = uses.iter().filter(|u| first.insert(**u)).collect();
    let row = |u: &&Use| {
        (
            used_jtis::expires_at.eq(u.expires_at),
            used_jtis::key.eq(u.key.to_vec()),
        )
    };
    let inserted: HashSet<Use> = match conn {
        DbConn::Postgresql(pg) => {
            let rows: Vec<_> = unique.iter().map(row).collect();
            diesel::insert_into(used_jtis::table)
                .values(&rows)
                .on_conflict_do_nothing()
                .returning((used_jtis::expires_at, used_jtis::key))
                .get_results::<(i64, Vec<u8>)>(pg)?
                .into_iter()
                .filter_map(|(expires_at, key)| {
                    Some(Use {
                        expires_at,
                        key: key.try_into().ok()?,
                    })
                })
                .collect()
        }
        DbConn::Sqlite(lite) => {
            let mut fresh = HashSet::with_capacity(unique.len());
            for u in &unique {
                let n = diesel::insert_or_ignore_into(used_jtis::table)
                    .values(row(u))
                    .execute(lite)?;
                if n == 1 {
                    fresh.insert(**u);
                }
            }
            fresh
        }
    };
    let mut answered = HashSet::with_capacity(uses.len());
    Ok(uses
        .iter()
        .map(|u| answered.insert(*u) && inserted.contains(u))
        .collect())
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
    use crate::db;
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
    fn a_use_is_kept_until_its_expiry_and_the_margin_then_pruned() {
        let db = TestDb::new();
        let mut conn = db.conn();
        let now = db::now();
        let gone = now - PRUNE_MARGIN - 1;
        let kept = now - PRUNE_MARGIN + 1;
        let uses = [
            proof("gone", gone),
            proof("kept", kept),
            proof("later", now + 300),
        ];
        assert_eq!(use_each(&mut conn, &uses).unwrap(), [true, true, true]);
        assert_eq!(prune(&mut conn, now).unwrap(), 1);
        // Within the margin a replay is still refused; the pruned one could
        // no longer be accepted anyway.
        assert_eq!(
            use_each(&mut conn, &[proof("kept", kept), proof("later", now + 300)]).unwrap(),
            [false, false]
        );
        assert_eq!(prune(&mut conn, now).unwrap(), 0);
        // The same jti with another expiry is another JWT (only its signer
        // could make one), not a replay of this one.
        assert_eq!(
            use_each(&mut conn, &[proof("later", now + 299)]).unwrap(),
            [true]
        );
    }

    #[test]
    fn a_jwt_used_before_the_time_ordered_table_is_still_a_replay_after() {
        let exp = db::now() + 600;
        let key = crypto::sha256_hex("client_assertion\nclient-1\nj-1");
        let before = format!(
            "INSERT INTO used_jtis (key, expires_at) VALUES ('{key}', {exp}), ('not hex', {exp});"
        );
        db::upgrade_tests::upgraded("2026-12-07-190000", &before, |conn| {
            let used = |conn: &mut DbConn, jti: &str| {
                use_once(conn, Kind::ClientAssertion, "client-1", jti, exp).expect("recorded")
            };
            assert!(!used(conn, "j-1"), "the use recorded before the upgrade");
            assert!(used(conn, "j-2"));
            assert!(!used(conn, "j-2"));
        });
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
