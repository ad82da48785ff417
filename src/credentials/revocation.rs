//! Revocation events: the rows through which every node (and the CLI) tells the
//! others that a credential stopped working. Each node applies its own events at
//! once and polls for the others' every `revocation_poll_ms`.

use crate::db::schema::revocation_events;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An access token (by `jti`) no longer works.
    AccessToken,
    /// An API key (by id) was revoked or rotated: drop it from every cache.
    ApiKey,
    /// A workspace's plan changed: look at its cached API keys again.
    Workspace,
    /// An OAuth client (by id) changed its secret or was deleted: drop it from
    /// every node's client cache.
    Client,
    /// A mailbox auth key (by id) was disabled, rotated or deleted.
    MailboxAuthKey,
    /// A mailbox (by id) was deleted: drop every cached key of it.
    Mailbox,
    /// A protected resource (by id) was registered or deleted: every node
    /// reads the resources again (`resources::Registry`).
    Resource,
}

impl EventKind {
    fn as_str(&self) -> &'static str {
        match self {
            EventKind::AccessToken => "jti",
            EventKind::ApiKey => "api_key",
            EventKind::Workspace => "workspace",
            EventKind::Client => "client",
            EventKind::MailboxAuthKey => "mailbox_auth_key",
            EventKind::Mailbox => "mailbox",
            EventKind::Resource => "resource",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "jti" => Some(EventKind::AccessToken),
            "api_key" => Some(EventKind::ApiKey),
            "workspace" => Some(EventKind::Workspace),
            "client" => Some(EventKind::Client),
            "mailbox_auth_key" => Some(EventKind::MailboxAuthKey),
            "mailbox" => Some(EventKind::Mailbox),
            "resource" => Some(EventKind::Resource),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub subject: String,
    /// After this time the event no longer matters (the token expired anyway).
    pub expires_at: i64,
}

impl Event {
    pub fn access_token(jti: &str, expires_at: i64) -> Self {
        Event {
            kind: EventKind::AccessToken,
            subject: jti.to_string(),
            expires_at,
        }
    }
    pub fn api_key(id: &str) -> Self {
        Event {
            kind: EventKind::ApiKey,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
    pub fn workspace(id: &str) -> Self {
        Event {
            kind: EventKind::Workspace,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
    pub fn mailbox_auth_key(id: &str) -> Self {
        Event {
            kind: EventKind::MailboxAuthKey,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
    pub fn mailbox(id: &str) -> Self {
        Event {
            kind: EventKind::Mailbox,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
    pub fn resource(id: &str) -> Self {
        Event {
            kind: EventKind::Resource,
            subject: id.to_string(),
            expires_at: db::now() + 3600,
        }
    }
}

/// The table of the events.
pub const TABLE: &str = "revocation_events";

/// An event's row in [`TABLE`] (`txid` is the column's default): for a
/// statement that writes it together with the change that makes it.
pub fn row(e: &Event, created_at_ms: i64) -> [(&'static str, db::Piece<'_>); 4] {
    use db::Piece::{Int, Text};
    use diesel::Column;
    [
        (revocation_events::kind::NAME, Text(e.kind.as_str())),
        (revocation_events::subject::NAME, Text(&e.subject)),
        (revocation_events::expires_at::NAME, Int(e.expires_at)),
        (revocation_events::created_at_ms::NAME, Int(created_at_ms)),
    ]
}

/// Writes events; call inside the transaction that made the change, so that the
/// events exist exactly when the change does.
pub fn record(conn: &mut DbConn, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now_ms = db::now_ms();
    // One row per statement, kept prepared: batch inserts do not go through
    // a MultiConnection.
    for e in events {
        db::kept::insert(conn, TABLE, &row(e, now_ms))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The feed: reading the events in an order that does not depend on commit timing.
//
// On SQLite writers are serialised (one write lock, held from the first write
// to the commit), so `seq` order is commit order and `seq > cursor` misses
// nothing. On PostgreSQL a `seq` is taken at insert time but seen at commit,
// so a reader that saw seq N can later meet a seq N-1 that committed late; no
// window of the last few values or seconds is safe against a transaction that
// commits later still. Instead each event carries its writer's top-level
// transaction id (`txid`, filled by a column default), and before each read
// the reader takes its snapshot's xmin: every transaction with a lower id had
// ended by then, so its events (if it committed) are in the read that follows.
// The next read asks again for `txid >= that xmin`: exactly the events that
// could still appear, re-read until their writers have ended (applying an event
// twice is harmless). Writers take no lock for this. A long-running writing
// transaction holds the xmin back, and the re-read grows by what was written
// meanwhile, bounded by the retention.

/// Where a node's reading of the feed stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The highest `seq` read. SQLite reads what follows it; on both backends
    /// it tells whether events after it were pruned unread (a gap).
    pub seq: i64,
    /// PostgreSQL: the snapshot xmin taken before the last read; events
    /// written by this transaction id or later are read again.
    pub horizon: i64,
}

/// One read of the feed.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Event>,
    pub next: Cursor,
    /// Events this node never read may have been pruned: the oldest retained
    /// event comes after the cursor's successor. The cache cannot be trusted.
    pub gap: bool,
}

#[derive(QueryableByName)]
struct Xmin {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    xmin: i64,
}

/// PostgreSQL: every transaction with a lower id has ended.
fn snapshot_xmin(conn: &mut diesel::PgConnection) -> Result<i64> {
    Ok(
        diesel::sql_query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin")
            .get_result::<Xmin>(conn)?
            .xmin,
    )
}

/// Where a fresh node starts: after every event, since what it caches from
/// now on is read from the authoritative rows. The horizon is taken first, so
/// that an event whose transaction is still open is read once it commits.
pub fn start(conn: &mut DbConn) -> Result<Cursor> {
    let horizon = match conn {
        DbConn::Postgresql(pg) => snapshot_xmin(pg)?,
        DbConn::Sqlite(_) => 0,
    };
    let seq = revocation_events::table
        .select(diesel::dsl::max(revocation_events::seq))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    Ok(Cursor { seq, horizon })
}

type Row = (i64, String, String, i64);

/// The events this node may not have applied yet, and the cursor after them.
pub fn read(conn: &mut DbConn, cursor: Cursor) -> Result<Batch> {
    let columns = (
        revocation_events::seq,
        revocation_events::kind,
        revocation_events::subject,
        revocation_events::expires_at,
    );
    let (rows, horizon): (Vec<Row>, i64) = match conn {
        DbConn::Postgresql(pg) => {
            let horizon = snapshot_xmin(pg)?;
            let rows = revocation_events::table
                .filter(revocation_events::txid.ge(cursor.horizon))
                .order(revocation_events::seq.asc())
                .select(columns)
                .load(conn)?;
            (rows, horizon)
        }
        DbConn::Sqlite(_) => {
            let rows = revocation_events::table
                .filter(revocation_events::seq.gt(cursor.seq))
                .order(revocation_events::seq.asc())
                .select(columns)
                .load(conn)?;
            (rows, 0)
        }
    };
    // Read after the events: a prune in between can only make this say "gap"
    // when there was none, never the other way round.
    let oldest = revocation_events::table
        .select(diesel::dsl::min(revocation_events::seq))
        .first::<Option<i64>>(conn)?;
    let gap = oldest.is_some_and(|oldest| oldest > cursor.seq + 1);
    let seq = rows.iter().map(|r| r.0).fold(cursor.seq, i64::max);
    let events = rows
        .into_iter()
        .filter_map(|(_, kind, subject, expires_at)| {
            EventKind::parse(&kind).map(|kind| Event {
                kind,
                subject,
                expires_at,
            })
        })
        .collect();
    Ok(Batch {
        events,
        next: Cursor { seq, horizon },
        gap,
    })
}

/// Housekeeping: deletes the events older than `retention_ms`, always a prefix
/// of `seq` (so that a gap shows as the oldest retained event) and never the
/// newest one (so that an idle feed never looks like one). A node that could
/// not read for longer than the stale bound drops its cache on its own, so a
/// retention well beyond that bound removes nothing a live node still needs.
pub fn prune(conn: &mut DbConn, retention_ms: i64) -> Result<usize> {
    let cutoff = db::now_ms() - retention_ms;
    let Some(newest) = revocation_events::table
        .select(diesel::dsl::max(revocation_events::seq))
        .first::<Option<i64>>(conn)?
    else {
        return Ok(0);
    };
    // Clocks of different nodes wrote `created_at_ms`: keep everything from
    // the first event inside the retention on, whatever follows it.
    let keep_from = revocation_events::table
        .filter(revocation_events::created_at_ms.ge(cutoff))
        .select(diesel::dsl::min(revocation_events::seq))
        .first::<Option<i64>>(conn)?
        .unwrap_or(newest)
        .min(newest);
    Ok(
        diesel::delete(revocation_events::table.filter(revocation_events::seq.lt(keep_from)))
            .execute(conn)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated SQLite database of its own, removed afterwards.
    fn temp_db() -> (crate::db::testkit::TestDb, DbConn) {
        let db = crate::db::testkit::TestDb::new();
        let conn = db.conn();
        (db, conn)
    }

    fn age_all(conn: &mut DbConn, by_ms: i64) {
        diesel::update(revocation_events::table)
            .set(revocation_events::created_at_ms.eq(revocation_events::created_at_ms - by_ms))
            .execute(conn)
            .expect("age events");
    }

    #[test]
    fn the_feed_reads_each_event_and_notices_gaps() {
        let (_db, mut conn) = temp_db();
        let start = start(&mut conn).unwrap();
        assert_eq!(start, Cursor::default());
        record(&mut conn, &[Event::api_key("k1"), Event::api_key("k2")]).unwrap();
        let batch = read(&mut conn, start).unwrap();
        assert_eq!(
            batch.events,
            vec![Event::api_key("k1"), Event::api_key("k2")]
        );
        assert!(!batch.gap);
        let caught_up = batch.next;
        assert_eq!(caught_up.seq, 2);
        // Nothing new: nothing read, the cursor stays.
        let again = read(&mut conn, caught_up).unwrap();
        assert!(again.events.is_empty() && !again.gap);
        assert_eq!(again.next, caught_up);

        // A node that stopped reading at k1, while k2 and k3 grow old and are
        // pruned: the newest event is always kept, so the gap shows.
        let behind = Cursor { seq: 1, horizon: 0 };
        record(&mut conn, &[Event::api_key("k3")]).unwrap();
        age_all(&mut conn, 3_600_000);
        assert_eq!(prune(&mut conn, 600_000).unwrap(), 2, "k1 and k2 pruned");
        let batch = read(&mut conn, behind).unwrap();
        assert!(batch.gap, "k2 was pruned unread, and no gap was noticed");
        // A node that had read k2 lost nothing.
        let batch = read(&mut conn, caught_up).unwrap();
        assert!(!batch.gap);
        assert_eq!(batch.events, vec![Event::api_key("k3")]);
        // An idle feed whose every event is old never looks like a gap.
        assert_eq!(prune(&mut conn, 600_000).unwrap(), 0, "the newest is kept");
        assert!(!read(&mut conn, batch.next).unwrap().gap);
    }

    #[test]
    fn pruning_keeps_a_suffix_of_the_sequence() {
        let (_db, mut conn) = temp_db();
        record(&mut conn, &[Event::api_key("old")]).unwrap();
        age_all(&mut conn, 3_600_000);
        record(&mut conn, &[Event::api_key("recent")]).unwrap();
        // Written by a node whose clock runs an hour slow: kept all the same,
        // since an event before it is inside the retention.
        record(&mut conn, &[Event::api_key("skewed")]).unwrap();
        diesel::update(revocation_events::table.filter(revocation_events::subject.eq("skewed")))
            .set(revocation_events::created_at_ms.eq(db::now_ms() - 3_600_000))
            .execute(&mut conn)
            .unwrap();
        record(&mut conn, &[Event::api_key("newest")]).unwrap();
        assert_eq!(prune(&mut conn, 600_000).unwrap(), 1);
        let left: Vec<String> = revocation_events::table
            .order(revocation_events::seq.asc())
            .select(revocation_events::subject)
            .load(&mut conn)
            .unwrap();
        assert_eq!(left, ["recent", "skewed", "newest"]);
    }
}
