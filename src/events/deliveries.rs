//! Deliveries: one row per (event, endpoint), written with the event, and the
//! state of sending it: `pending` (with the time of the next attempt),
//! `delivered` or `failed`, the attempts made and the last status code.
//!
//! A node sends a delivery only while it holds its lease: [`claim`] sets
//! `lease_until` and a `lease_owner` of its own on due rows that no one holds
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two nodes claim different
//! rows without waiting on each other; SQLite has one writer at a time), and
//! [`finish`] writes the outcome only if the lease is still this claim's. A
//! node that dies mid-attempt leaves a lease that ends by itself, and the
//! attempt is made again (at least once).

use super::endpoints::Endpoint;
use super::EventRow;
use crate::db::paging::{Listed, Paging};
use crate::db::schema::{webhook_deliveries, webhook_endpoints};
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;

/// Seconds after each failed attempt before the next (5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h, 10 h); a failure after the last is final (`failed`).
pub const SCHEDULE: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// How long a claim holds a delivery: well past the 10 s an attempt may take.
pub const LEASE_SECS: i64 = 60;
/// How long delivered and failed rows are kept.
pub const KEEP_SECS: i64 = 7 * 86_400;

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub next_attempt_at: i64,
    pub lease_until: i64,
    pub lease_owner: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Inside the event's transaction: a pending delivery for every endpoint
/// that wants it, due at once.
pub(super) fn fan_out(conn: &mut DbConn, event: &EventRow) -> Result<()> {
    let rows: Vec<Delivery> = super::endpoints::all(conn)?
        .into_iter()
        .filter(|e| e.wants(&event.event_type))
        .map(|e| Delivery {
            id: db::new_id(),
            endpoint_id: e.id,
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            status: PENDING.into(),
            attempts: 0,
            last_status_code: None,
            next_attempt_at: event.created_at,
            lease_until: 0,
            lease_owner: None,
            created_at: event.created_at,
            updated_at: event.created_at,
        })
        .collect();
    // One statement a row: batch inserts are not portable over MultiConnection,
    // and there are at most `MAX_ENDPOINTS`.
    for row in &rows {
        diesel::insert_into(webhook_deliveries::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// A page of an endpoint's deliveries, newest first.
pub fn list(conn: &mut DbConn, endpoint_id: &str, paging: &Paging) -> Result<Listed<Delivery>> {
    super::endpoints::find(conn, endpoint_id)?;
    let mut q = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .into_boxed();
    if let Some(c) = &paging.cursor {
        q = q.filter(webhook_deliveries::id.lt(c.clone()));
    }
    let rows = q
        .order(webhook_deliveries::id.desc())
        .limit(paging.fetch())
        .select(Delivery::as_select())
        .load(conn)?;
    Ok(paging.page(rows, |d| d.id.clone()))
}

/// A delivery this node holds, with what sending it needs.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: Delivery,
    pub endpoint: Endpoint,
    pub body: String,
}

/// Claims up to `limit` due deliveries for `LEASE_SECS` under `owner` (a
/// value unique to this claim).
pub fn claim(conn: &mut DbConn, owner: &str, limit: i64, now: i64) -> Result<Vec<Claimed>> {
    let until = now + LEASE_SECS;
    db::write_tx(conn, |conn| {
        match conn {
            DbConn::Postgresql(pg) => {
                diesel::sql_query(
                    "UPDATE webhook_deliveries SET lease_until = $1, lease_owner = $2 \
                     WHERE id IN (SELECT id FROM webhook_deliveries \
                     WHERE status = 'pending' AND next_attempt_at <= $3 AND lease_until <= $3 \
                     ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)",
                )
                .bind::<diesel::sql_types::BigInt, _>(until)
                .bind::<diesel::sql_types::Text, _>(owner)
                .bind::<diesel::sql_types::BigInt, _>(now)
                .bind::<diesel::sql_types::BigInt, _>(limit)
                .execute(pg)?;
            }
            DbConn::Sqlite(_) => {
                let ids: Vec<String> = due(now)
                    .order(webhook_deliveries::next_attempt_at.asc())
                    .limit(limit)
                    .select(webhook_deliveries::id)
                    .load(conn)?;
                diesel::update(due(now).filter(webhook_deliveries::id.eq_any(ids)))
                    .set((
                        webhook_deliveries::lease_until.eq(until),
                        webhook_deliveries::lease_owner.eq(owner),
                    ))
                    .execute(conn)?;
            }
        }
        held(conn, owner)
    })
}

type Due = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            webhook_deliveries::table,
            diesel::dsl::Eq<webhook_deliveries::status, &'static str>,
        >,
        diesel::dsl::LtEq<webhook_deliveries::next_attempt_at, i64>,
    >,
    diesel::dsl::LtEq<webhook_deliveries::lease_until, i64>,
>;

fn due(now: i64) -> Due {
    webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(PENDING))
        .filter(webhook_deliveries::next_attempt_at.le(now))
        .filter(webhook_deliveries::lease_until.le(now))
}

fn held(conn: &mut DbConn, owner: &str) -> Result<Vec<Claimed>> {
    let rows: Vec<(Delivery, Endpoint)> = webhook_deliveries::table
        .inner_join(
            webhook_endpoints::table.on(webhook_endpoints::id.eq(webhook_deliveries::endpoint_id)),
        )
        .filter(webhook_deliveries::lease_owner.eq(owner))
        .select((Delivery::as_select(), Endpoint::as_select()))
        .load(conn)?;
    let ids: Vec<String> = rows.iter().map(|(d, _)| d.event_id.clone()).collect();
    let bodies = super::bodies_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .filter_map(|(delivery, endpoint)| {
            let body = bodies.get(&delivery.event_id)?.clone();
            Some(Claimed {
                delivery,
                endpoint,
                body,
            })
        })
        .collect())
}

/// What became of the next state after an attempt: `ok` (a `2xx`), else
/// retried on the schedule or, past its end, failed.
pub fn next_state(attempts_before: i32, ok: bool, now: i64) -> (&'static str, i64) {
    if ok {
        return (DELIVERED, now);
    }
    match SCHEDULE.get(attempts_before.max(0) as usize) {
        Some(wait) => (PENDING, now + wait),
        None => (FAILED, now),
    }
}

/// Writes an attempt's outcome (`status_code` if an answer came), if this
/// claim still holds the delivery; releases the lease.
pub fn finish(
    conn: &mut DbConn,
    claimed: &Delivery,
    ok: bool,
    status_code: Option<u16>,
) -> Result<()> {
    let now = db::now();
    let (status, next) = next_state(claimed.attempts, ok, now);
    diesel::update(
        webhook_deliveries::table
            .find(&claimed.id)
            .filter(webhook_deliveries::lease_owner.eq(claimed.lease_owner.clone())),
    )
    .set((
        webhook_deliveries::status.eq(status),
        webhook_deliveries::attempts.eq(claimed.attempts + 1),
        webhook_deliveries::last_status_code.eq(status_code.map(i32::from)),
        webhook_deliveries::next_attempt_at.eq(next),
        webhook_deliveries::lease_until.eq(0),
        webhook_deliveries::lease_owner.eq(None::<String>),
        webhook_deliveries::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// Deletes delivered and failed rows older than [`KEEP_SECS`].
pub(super) fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    Ok(diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::status.ne(PENDING))
            .filter(webhook_deliveries::updated_at.lt(now - KEEP_SECS)),
    )
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_retries_seven_times_then_fails() {
        let mut waits = Vec::new();
        for attempts in 0..7 {
            let (status, next) = next_state(attempts, false, 1000);
            assert_eq!(status, PENDING);
            waits.push(next - 1000);
        }
        assert_eq!(waits, SCHEDULE.to_vec());
        assert_eq!(next_state(7, false, 1000).0, FAILED);
        assert_eq!(next_state(3, true, 1000).0, DELIVERED);
    }
}
