//! The re-verification of verified (and failed) domains, run by every node's
//! background task: due every 24 h, hourly while the record is missing;
//! after 72 h without it a verified domain fails, and a failed one whose
//! record is back verifies again. Each due domain is claimed first, so one
//! node asks DNS at a time.

use super::dns::{Dns, TxtAnswer};
use super::{
    find, holds_record, not_found_words, set_verified, status_changed, DomainStatus, SendingDomain,
};
use crate::accounts::audit::Actor;
use crate::credentials::cache::CredentialCache;
use crate::credentials::revocation::Event;
use crate::db::schema::sending_domains;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

/// The background check, as the security log names it.
pub const DNS_CHECK: Actor<'static> = Actor {
    id: "dns-check",
    client_address: None,
};

/// When the re-verification runs (`KEYGATE_DOMAIN_RECHECK_SECS`,
/// `KEYGATE_DOMAIN_FAIL_AFTER_SECS`; tests shorten them).
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// A verified or failed domain is looked up again this long after its
    /// last check (24 h).
    pub recheck_secs: i64,
    /// A domain whose record has been missing this long is failed (72 h).
    pub fail_after_secs: i64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            recheck_secs: 24 * 3600,
            fail_after_secs: 72 * 3600,
        }
    }
}

impl Schedule {
    pub fn from_config(config: &crate::config::Config) -> Schedule {
        Schedule {
            recheck_secs: config.domain_recheck_secs,
            fail_after_secs: config.domain_fail_after_secs,
        }
    }

    /// A domain whose last check missed the record is asked again sooner
    /// (hourly by default), so that the 72 h are measured, not rounded up
    /// to the next day; also how often a node looks for due domains, at most
    /// a minute.
    pub fn retry_secs(&self) -> i64 {
        (self.recheck_secs / 24).max(1)
    }
}

/// Domains one pass of the background check looks up at most.
const RECHECK_BATCH: i64 = 20;

/// The background re-verification: looks up the verified and failed domains
/// (not the operator's) whose check is due (every `recheck_secs`, or every
/// `retry_secs` while the record is missing), oldest check first, each
/// claimed first so that one node asks at a time; answers how many it
/// looked up. `connect` gives a
/// connection for each short step; no connection is held during a lookup.
pub fn recheck_due(
    connect: &dyn Fn() -> Result<db::PooledConn>,
    cache: &CredentialCache,
    dns: &Dns,
    schedule: Schedule,
) -> Result<usize> {
    let now = db::now();
    let due: Vec<SendingDomain> = {
        let mut conn = connect()?;
        sending_domains::table
            .filter(sending_domains::by_operator.eq(false))
            .filter(sending_domains::status.ne(DomainStatus::Pending.as_str()))
            .filter(
                sending_domains::checked_at
                    .is_null()
                    .or(sending_domains::missing_since
                        .is_null()
                        .and(sending_domains::checked_at.le(now - schedule.recheck_secs))
                        .or(sending_domains::missing_since
                            .is_not_null()
                            .and(sending_domains::checked_at.le(now - schedule.retry_secs())))),
            )
            .order(sending_domains::checked_at.asc())
            .limit(RECHECK_BATCH)
            .select(SendingDomain::as_select())
            .load(&mut **conn)?
    };
    let mut looked = 0;
    for d in due {
        if !claim(&mut *connect()?, &d, now)? {
            continue;
        }
        looked += 1;
        let answer = dns.txt_blocking(&d.txt_name());
        let events = db::write_tx(&mut *connect()?, |conn| {
            record_check(conn, &d, &answer, now, schedule)
        })?;
        cache.apply(&events);
    }
    Ok(looked)
}

/// Takes the domain's check for this node: only the node whose update moves
/// `checked_at` from what it read looks it up.
fn claim(conn: &mut DbConn, d: &SendingDomain, now: i64) -> Result<bool> {
    let row = sending_domains::table.find(&d.id);
    let n = match d.checked_at {
        Some(at) => diesel::update(row.filter(sending_domains::checked_at.eq(at)))
            .set(sending_domains::checked_at.eq(now))
            .execute(conn)?,
        None => diesel::update(row.filter(sending_domains::checked_at.is_null()))
            .set(sending_domains::checked_at.eq(now))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Inside a transaction: what one background lookup changes. Found: a failed
/// domain verifies again (unless another workspace holds it now). Missing:
/// counted from the first miss; after `fail_after_secs` a verified domain
/// fails.
fn record_check(
    conn: &mut DbConn,
    seen: &SendingDomain,
    answer: &TxtAnswer,
    now: i64,
    schedule: Schedule,
) -> Result<Vec<Event>> {
    let Ok(d) = find(conn, &seen.id) else {
        return Ok(Vec::new());
    };
    if d.status() != seen.status() {
        return Ok(Vec::new());
    }
    let row = sending_domains::table.find(&d.id);
    if holds_record(&d, answer) {
        return match d.status() {
            DomainStatus::Failed => {
                match set_verified(conn, d, DNS_CHECK, Some("its TXT record is back")) {
                    Ok((_, events)) => Ok(events),
                    Err(Error::NotVerified(_)) => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            }
            _ => {
                diesel::update(row)
                    .set(sending_domains::missing_since.eq(None::<i64>))
                    .execute(conn)?;
                Ok(Vec::new())
            }
        };
    }
    let since = d.missing_since.unwrap_or(now);
    diesel::update(row)
        .set(sending_domains::missing_since.eq(since))
        .execute(conn)?;
    log::warn!(
        "sending domain {}: {}",
        d.domain,
        not_found_words(&d, answer)
    );
    if d.status() == DomainStatus::Verified && now - since >= schedule.fail_after_secs {
        diesel::update(row)
            .set(sending_domains::status.eq(DomainStatus::Failed.as_str()))
            .execute(conn)?;
        let detail = format!(
            "its TXT record {} has been missing since {}",
            d.txt_name(),
            db::rfc3339(since)
        );
        let failed = find(conn, &d.id)?;
        return status_changed(
            conn,
            &failed,
            DomainStatus::Failed,
            DNS_CHECK,
            Some(&detail),
        );
    }
    Ok(Vec::new())
}
