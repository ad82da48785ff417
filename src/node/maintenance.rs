//! The background task of a serving node: applies other nodes' revocations,
//! writes batched usage, and keeps the tables bounded.

use crate::config::Config;
use crate::credentials::usage::{Counts, KeyCounts};
use crate::db::{self, DbConn};
use crate::error::Result;
use crate::node::state::Services;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the probe of a database that is away waits for a connection.
const PROBE_BUDGET: Duration = Duration::from_millis(500);

/// The ten-second step of the feed's age at the last failure logged, so that a
/// long outage is logged every ten seconds, not every attempt.
static FAILING_SINCE_BUCKET: AtomicU64 = AtomicU64::new(u64::MAX);

pub fn spawn(svc: Arc<Services>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    spawn_domain_checks(svc.clone(), stop.clone());
    std::thread::Builder::new()
        .name("keygate-maintenance".into())
        .spawn(move || run(&svc, &stop))
        .expect("spawn maintenance thread")
}

/// The re-verification of sending domains, on a thread of its own: a DNS
/// lookup may wait seconds for an answer, which must not hold up the
/// revocation feed. Every node runs it; each due domain is claimed by one
/// (`mailboxes::domains::recheck_due`), so it is idempotent.
fn spawn_domain_checks(svc: Arc<Services>, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("keygate-domains".into())
        .spawn(move || {
            let dns = crate::mailboxes::domains::dns::Dns::from_config(&svc.config);
            let schedule = crate::mailboxes::domains::Schedule::from_config(&svc.config);
            let connect = || svc.pool.get().map_err(crate::error::Error::from);
            // How often it looks for due domains: a minute, or less when
            // the schedule is shorter (tests).
            let every = Duration::from_secs(schedule.retry_secs().clamp(1, 60) as u64);
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // Short sleeps, so that a stopping node is not held up.
                std::thread::sleep(Duration::from_millis(200));
                if last.elapsed() < every {
                    continue;
                }
                last = Instant::now();
                let cache = &svc.credentials.cache;
                if let Err(e) =
                    crate::mailboxes::domains::recheck_due(&connect, cache, &dns, schedule)
                {
                    log::warn!("checking sending domains failed: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the sending-domain checks: {e}");
    }
}

fn run(svc: &Services, stop: &AtomicBool) {
    let poll = Duration::from_millis(svc.config.revocation_poll_ms);
    let base_flush = Duration::from_millis(svc.config.usage_flush_ms);
    let mut flush_every = base_flush;
    let housekeeping_every = Duration::from_secs(svc.config.housekeeping_secs);
    let mut last_flush = Instant::now();
    let mut last_housekeeping = Instant::now();
    let mut last_checkpoint = Instant::now();
    // Only SQLite's log is ours to keep short.
    let sqlite = matches!(db::DatabaseUrl::parse(&svc.config.database_url), Ok(u) if u.is_sqlite());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(poll);
        // While the database is away, requests are answered 503 at once;
        // this notices it coming back (`db::pool`).
        svc.pool.probe(PROBE_BUDGET);
        poll_revocations(svc);
        if sqlite && last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            bound_wal(svc);
            last_checkpoint = Instant::now();
        }
        if last_flush.elapsed() >= flush_every {
            flush_every = next_flush_interval(base_flush, flush_usage(svc));
            last_flush = Instant::now();
        }
        if last_housekeeping.elapsed() >= housekeeping_every {
            if let Ok(mut conn) = svc.pool.get() {
                if let Err(e) = housekeeping(&mut conn, &svc.config) {
                    log::warn!("housekeeping failed: {e}");
                }
                if let Err(e) = svc
                    .credentials
                    .keys
                    .reload(&mut conn, svc.config.access_token_ttl)
                {
                    log::warn!("reloading signing keys failed: {e}");
                }
            }
            svc.credentials.cache.prune();
            svc.clients.prune();
            if let Some(l) = &svc.limits {
                for (_, limiter) in l.failure_limiters() {
                    limiter.prune();
                }
                l.registrations.prune();
                l.document_fetches.prune();
            }
            last_housekeeping = Instant::now();
        }
    }
    flush_usage(svc);
}

/// How often, at most, the write-ahead log is checkpointed (each poll, with
/// the default poll). Measured: at 300 ms and 1 s the restarts of the log,
/// which wait for a sync with the writers held, had so much more to copy
/// that p99 doubled, and no throughput was gained.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Keeps SQLite's write-ahead log short (see [`db::wal`]).
fn bound_wal(svc: &Services) {
    let result = svc
        .pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| db::wal::bound(&mut conn).map_err(|e| e.to_string()));
    if let Err(e) = result {
        log::warn!("checkpointing the write-ahead log failed: {e}");
    }
}

/// Reads the revocation feed and applies what other nodes revoked. Each
/// success is recorded: past the stale bound without one, this node serves
/// nothing from memory (`/v1` answers 503, `/readyz` says why). A node that
/// comes back after the stale bound, or finds that events it never read were
/// pruned, forgets every cached credential, client and client metadata
/// document before it serves from memory again.
pub fn poll_revocations(svc: &Services) {
    let cache = &svc.credentials.cache;
    let read = svc
        .pool
        .get()
        .map_err(crate::error::Error::from)
        .and_then(|mut conn| crate::credentials::revocation::read(&mut conn, cache.cursor()));
    match read {
        Ok(batch) => {
            let stale = !cache.feed_fresh();
            if stale || batch.gap {
                log::warn!(
                    "revocation feed: {}; dropping every cached credential, client and client metadata document",
                    if batch.gap {
                        "events this node never read were pruned"
                    } else {
                        "read again after the stale bound"
                    }
                );
                cache.clear();
                // A missed event may have been a client's (a rotated secret,
                // a deleted client) or a resource's: those caches go too.
                svc.clients.clear();
                svc.documents.forget_all();
                svc.resources.forget();
            }
            cache.apply(&batch.events);
            if (batch.events.iter())
                .any(|e| e.kind == crate::credentials::revocation::EventKind::Resource)
            {
                svc.resources.forget();
            }
            for id in crate::oauth::clients::changed_clients(&batch.events) {
                svc.clients.remove(id);
                svc.documents.forget(id);
            }
            cache.set_cursor(batch.next);
            cache.feed_read();
            FAILING_SINCE_BUCKET.store(u64::MAX, Ordering::Relaxed);
            if stale {
                log::info!("revocation feed: read again; serving credentials");
            }
        }
        Err(e) => {
            // Once when it starts failing, then once every ten seconds.
            let age = cache.feed_age();
            let bucket = age.as_secs() / 10;
            if FAILING_SINCE_BUCKET.swap(bucket, Ordering::Relaxed) != bucket {
                if cache.feed_fresh() {
                    log::warn!(
                        "reading revocations failed (last read {} ms ago): {e}",
                        age.as_millis()
                    );
                } else {
                    log::error!(
                        "revocation feed stale (last read {} s ago, bound {} s): /v1 refuses credentials until it is read: {e}",
                        age.as_secs(),
                        cache.stale_after().as_secs()
                    );
                }
            }
        }
    }
}

/// How many rows a usage flush may write per second of its interval. A
/// flush that wrote more lengthens the next interval (up to
/// [`MAX_FLUSH_INTERVAL`]), so that the uses of a large working set coalesce
/// in memory rather than rewrite every key's row each second; counts stay
/// exact, last-use times get coarser.
const FLUSH_ROWS_PER_SEC: usize = 5_000;
const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// The interval before the next flush, after one that wrote `rows` rows.
fn next_flush_interval(base: Duration, rows: usize) -> Duration {
    let wanted = Duration::from_secs_f64(rows as f64 / FLUSH_ROWS_PER_SEC as f64);
    wanted.min(MAX_FLUSH_INTERVAL).max(base)
}

/// Writes the usage counted since the last flush; on failure keeps it for
/// later. Answers how many rows it wrote.
pub fn flush_usage(svc: &Services) -> usize {
    let (keys, apps) = svc.credentials.usage.drain();
    let auth_keys = svc.credentials.usage.drain_auth_keys();
    let rows = keys.len() + apps.len() + auth_keys.len();
    if rows == 0 {
        return 0;
    }
    let mut parts = FlushPart::split(keys, apps, auth_keys).into_iter();
    // The part whose transaction failed, if one did.
    let mut failed = None;
    let written = svc
        .pool
        .get()
        .map_err(crate::error::Error::from)
        .and_then(|mut conn| {
            db::with_large_cache(&mut conn, |conn| {
                // Each part its own transaction: the write lock is released
                // between them, so grants are not held up by a large flush.
                for part in parts.by_ref() {
                    if let Err(e) = db::write_tx(conn, |conn| part.write(conn)) {
                        failed = Some(part);
                        return Err(e);
                    }
                }
                Ok(())
            })
        });
    if let Err(e) = written {
        log::warn!("writing usage counts failed, will retry: {e}");
        // What was not written is counted again; parts already committed are not.
        for part in failed.into_iter().chain(parts) {
            svc.credentials.usage.restore(part.keys, part.apps);
            svc.credentials.usage.restore_auth_keys(part.auth_keys);
        }
        return 0;
    }
    rows
}

/// Rows per transaction of a usage flush.
const FLUSH_ROWS_PER_TRANSACTION: usize = 2_000;

/// A slice of one flush's counts, written in one transaction.
#[derive(Default)]
struct FlushPart {
    keys: KeyCounts,
    apps: Counts,
    auth_keys: Counts,
}

impl FlushPart {
    /// The counts in parts of at most [`FLUSH_ROWS_PER_TRANSACTION`] rows,
    /// each kind in order of id: a part then covers a run of neighbouring
    /// rows, so that the parts write few of the same pages (ids are
    /// time-ordered, like the rows on disk).
    fn split(keys: KeyCounts, apps: Counts, auth_keys: Counts) -> Vec<FlushPart> {
        fn sorted<V>(map: HashMap<String, V>) -> Vec<(String, V)> {
            let mut rows: Vec<(String, V)> = map.into_iter().collect();
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            rows
        }
        let mut parts = vec![FlushPart::default()];
        let room = |parts: &mut Vec<FlushPart>| {
            if parts
                .last()
                .is_some_and(|p| p.len() >= FLUSH_ROWS_PER_TRANSACTION)
            {
                parts.push(FlushPart::default());
            }
            parts.len() - 1
        };
        for (id, used) in sorted(keys) {
            let i = room(&mut parts);
            parts[i].keys.insert(id, used);
        }
        for (id, used) in sorted(apps) {
            let i = room(&mut parts);
            parts[i].apps.insert(id, used);
        }
        for (id, used) in sorted(auth_keys) {
            let i = room(&mut parts);
            parts[i].auth_keys.insert(id, used);
        }
        parts
    }

    fn len(&self) -> usize {
        self.keys.len() + self.apps.len() + self.auth_keys.len()
    }

    fn write(&self, conn: &mut DbConn) -> Result<()> {
        write_usage(conn, &self.keys, &self.apps, &self.auth_keys)
    }
}

/// Inside the flush's transaction: the counts and last uses of the API keys,
/// the authorizations and the mailbox auth keys, and their daily totals; a
/// few statements for a whole working set.
fn write_usage(
    conn: &mut DbConn,
    keys: &KeyCounts,
    apps: &Counts,
    auth_keys: &Counts,
) -> Result<()> {
    use crate::apikeys::stored as api_key;
    use crate::credentials::usage::{self, DayCount};
    api_key::add_usage(conn, keys)?;
    let key_days = keys
        .iter()
        .map(|(id, u)| DayCount::of(id, u.last_used, u.count));
    usage::add(conn, usage::API_KEY, key_days)?;
    crate::oauth::authorizations::mark_used(conn, apps)?;
    usage::add(conn, usage::AUTHORIZATION, DayCount::all(apps))?;
    for (id, (count, at)) in auth_keys {
        crate::mailboxes::auth_keys::add_usage(conn, id, *count, *at)?;
    }
    usage::add(conn, usage::MAILBOX_AUTH_KEY, DayCount::all(auth_keys))?;
    Ok(())
}

/// Deletes what can no longer be used, in small batches.
pub fn housekeeping(conn: &mut DbConn, config: &Config) -> Result<usize> {
    let now = db::now();
    let mut total = 0;
    total += crate::oauth::housekeeping::prune(conn, now)?;
    total += crate::accounts::sessions::prune(conn, now)?;
    total += crate::signin::pending::prune(conn, now)?;
    total += crate::credentials::replay::prune(conn, now)?;
    let retention_ms = i64::try_from(config.revocation_retention_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    total += crate::credentials::revocation::prune(conn, retention_ms)?;
    total += crate::oauth::clients::remove_unused(conn, now)?;
    total += crate::credentials::usage::prune(conn, crate::credentials::usage::day_of(now))?;
    total += crate::apikeys::stored::end_grace_periods(conn, now)?;
    total += crate::apikeys::announce_expiring(conn, now)?;
    total += crate::events::prune(conn, now)?;
    total += crate::admin::prune(conn, now)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_flush_lengthens_the_next_interval_within_bounds() {
        let base = Duration::from_secs(1);
        assert_eq!(next_flush_interval(base, 0), base);
        assert_eq!(next_flush_interval(base, FLUSH_ROWS_PER_SEC), base);
        assert_eq!(
            next_flush_interval(base, 3 * FLUSH_ROWS_PER_SEC),
            Duration::from_secs(3)
        );
        assert_eq!(next_flush_interval(base, usize::MAX), MAX_FLUSH_INTERVAL);
        // A configured interval longer than the bound is kept.
        let slow = Duration::from_secs(30);
        assert_eq!(next_flush_interval(slow, usize::MAX), slow);
    }

    #[test]
    fn a_flush_is_split_into_bounded_parts_that_keep_every_count() {
        use crate::credentials::usage::KeyUse;
        let n = FLUSH_ROWS_PER_TRANSACTION;
        let keys: KeyCounts = (0..n + 7)
            .map(|i| {
                let used = KeyUse {
                    count: i as i64,
                    last_used: 1,
                    last_ip: None,
                };
                (format!("k{i}"), used)
            })
            .collect();
        let apps: Counts = (0..n).map(|i| (format!("a{i}"), (1, 2))).collect();
        let auth: Counts = (0..3).map(|i| (format!("m{i}"), (4, 5))).collect();
        let parts = FlushPart::split(keys.clone(), apps.clone(), auth.clone());
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= n && p.len() > 0));
        let mut back = (KeyCounts::new(), Counts::new(), Counts::new());
        for p in parts {
            back.0.extend(p.keys);
            back.1.extend(p.apps);
            back.2.extend(p.auth_keys);
        }
        assert_eq!(back, (keys, apps, auth));
        assert!(
            FlushPart::split(KeyCounts::new(), Counts::new(), Counts::new())
                .iter()
                .all(|p| p.len() == 0)
        );
    }
}
