//! Acting on a verified leak report (GitHub's secret-scanning partner
//! program; the wire format, signatures and key patterns are in [`super::leaks`]).
//!
//! Each reported token with a keygate shape and a valid checksum is routed by
//! its prefix to the store that owns it ([`LeakedCredentials`]): API keys here
//! ([`API_KEYS`]), mailbox auth keys once their store is passed in. Every live
//! credential named is revoked at once, in one write transaction for the whole
//! report, with one security-log row each (the report's `url` and `source`);
//! the revocation events reach this node's cache after the commit and every
//! other node's within its poll. GitHub's documentation asks partners to answer
//! within seconds and sends matches in batches, so lookups go by the hash
//! index a chunk at a time rather than one query per token.

use super::leaks::{LeakAnswer, LeakReport};
use crate::credentials::cache::CredentialCache;
use crate::credentials::leaked::{Found, LeakedCredentials, LeakedToken, Stop, Stored};
use crate::credentials::revocation::Event;
use crate::db::schema::api_keys;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;
use std::collections::HashSet;

/// Who revoked a key in the security log.
pub const LEAK_REPORT_ACTOR: &str = crate::accounts::audit::LEAK_REPORT_ACTOR;
/// The security-log action of a key revoked because it was found in public.
pub const LEAKED_ACTION: &str = "api_key.revoked_leaked";

/// Handles a verified, parsed report: one answer row per report, in order.
/// `stores` are the credential kinds that can be revoked, by prefix; a token
/// whose prefix none of them claims is a false positive.
pub fn process(
    conn: &mut DbConn,
    cache: &CredentialCache,
    reports: &[LeakReport],
    stores: &[&dyn LeakedCredentials],
    reporter: Option<&str>,
) -> Result<Vec<LeakAnswer>> {
    // Shape and checksum first: noise never reaches the database.
    let owner: Vec<Option<usize>> = reports
        .iter()
        .map(|r| {
            r.kind()?;
            stores.iter().position(|s| r.token.starts_with(s.prefix()))
        })
        .collect();
    let hashes: Vec<String> = reports.iter().map(LeakReport::token_hash).collect();
    let mut real = vec![false; reports.len()];
    let events = db::write_tx(conn, |conn| {
        let mut events = Vec::new();
        for (index, store) in stores.iter().enumerate() {
            let mine: Vec<usize> = (0..reports.len())
                .filter(|&i| owner[i] == Some(index))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let tokens: Vec<LeakedToken<'_>> = mine
                .iter()
                .map(|&i| LeakedToken {
                    token_hash: &hashes[i],
                    url: reports[i].url.as_deref(),
                    source: reports[i].source.as_deref(),
                })
                .collect();
            let outcome = store.revoke_leaked(conn, &tokens, reporter)?;
            for (&i, &is_real) in mine.iter().zip(&outcome.real) {
                real[i] = is_real;
            }
            events.extend(outcome.events);
        }
        Ok::<_, crate::error::Error>(events)
    })?;
    cache.apply(&events);
    crate::metrics::METRICS
        .revocations
        .with_label_values(&["api_key"])
        .inc_by(events.len() as u64);
    if !events.is_empty() {
        log::warn!(
            "leak report: {} credential(s) revoked ({} reported)",
            events.len(),
            reports.len()
        );
    }
    Ok(reports
        .iter()
        .zip(real)
        .map(|(r, is_real)| LeakAnswer::new(r, is_real))
        .collect())
}

/// The API keys' store.
pub struct ApiKeyLeaks;

/// The store to pass to [`process`] for API keys (`kgk_`).
pub const API_KEYS: ApiKeyLeaks = ApiKeyLeaks;

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

impl LeakedCredentials for ApiKeyLeaks {
    fn prefix(&self) -> &'static str {
        crate::credentials::key_format::KEY_PREFIX
    }

    fn action(&self) -> &'static str {
        LEAKED_ACTION
    }

    /// A key is live when it is not revoked and the hash is its current
    /// secret or a replaced one inside its grace period. (An expired key is
    /// live here too: it is revoked so that its record says it leaked.)
    fn find(&self, conn: &mut DbConn, hashes: &[&str], now: i64) -> Result<Found> {
        let chunk = hashes.to_vec();
        let rows: Vec<Row> = api_keys::table
            .filter(
                api_keys::secret_hash
                    .eq_any(&chunk)
                    .or(api_keys::previous_secret_hash.eq_any(&chunk)),
            )
            .select((
                api_keys::id,
                api_keys::workspace_id,
                api_keys::secret_hash,
                api_keys::previous_secret_hash,
                api_keys::previous_secret_expires_at,
                api_keys::revoked_at,
            ))
            .load(conn)?;
        let in_chunk: HashSet<&str> = chunk.iter().copied().collect();
        let mut found = Found::new();
        for (id, workspace_id, current, previous, grace_end, revoked_at) in rows {
            let open = revoked_at.is_none();
            if in_chunk.contains(current.as_str()) {
                let key = Stored {
                    id: id.clone(),
                    workspace_id: workspace_id.clone(),
                    live: open,
                };
                found.insert(current, key);
            }
            // A replaced secret is real; it is live only in its grace
            // period. Past it, the secret no longer works, and revoking the
            // key would only break the secret that replaced it.
            if let Some(previous) = previous.filter(|p| in_chunk.contains(p.as_str())) {
                let live = open && grace_end.is_some_and(|e| e > now);
                found.entry(previous).or_insert(Stored {
                    id,
                    workspace_id,
                    live,
                });
            }
        }
        Ok(found)
    }

    fn stop(&self, conn: &mut DbConn, key: &Stored, now: i64) -> Result<Option<Stop>> {
        if !key.live {
            return Ok(None);
        }
        // Conditional, one key at a time: a concurrent report of the same
        // key (a replay) finds it revoked and writes no second log row.
        let n = diesel::update(
            api_keys::table
                .find(&key.id)
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(now))
        .execute(conn)?;
        Ok((n > 0).then(|| Stop {
            event: Event::api_key(&key.id),
            note: "",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{self, Plan};
    use crate::apikeys::stored as api_key;
    use crate::apikeys::{self, Access};

    fn fresh() -> (DbConn, crate::db::testkit::TestDb) {
        let db = crate::db::testkit::TestDb::new();
        (db.conn(), db)
    }

    fn report(token: &str) -> LeakReport {
        LeakReport {
            token: token.to_string(),
            token_type: "keygate_api_key".into(),
            url: Some("https://github.com/o/r/blob/main/.env".into()),
            source: Some("commit".into()),
        }
    }

    #[test]
    fn live_keys_are_revoked_once_and_replays_change_nothing() {
        let (mut conn, _db) = fresh();
        let ws = accounts::create_workspace(&mut conn, "Acme", Plan::Pro).expect("ws");
        let issued = |conn: &mut DbConn, name: &str| {
            apikeys::create(
                conn,
                &ws.id,
                name,
                Access::ReadOnly,
                None,
                crate::accounts::audit::CLI,
            )
            .expect("key")
        };
        let leaked = issued(&mut conn, "leaked");
        let rotated = issued(&mut conn, "rotated");
        let cache = CredentialCache::detached();
        let graced = apikeys::rotate_with_grace(
            &mut conn,
            &cache,
            &rotated.key.id,
            Some(3600),
            crate::accounts::audit::CLI,
        )
        .expect("rotate");
        let reports = vec![
            report(&leaked.secret),
            report(&leaked.secret),
            report(&rotated.secret),
            report("kgk_nonsense"),
        ];
        let stores: &[&dyn LeakedCredentials] = &[&API_KEYS];
        let answer =
            process(&mut conn, &cache, &reports, stores, Some("192.0.2.1")).expect("process");
        let labels: Vec<bool> = answer
            .iter()
            .map(|a| a.label == crate::apikeys::leaks::Label::TruePositive)
            .collect();
        assert_eq!(labels, vec![true, true, true, false]);
        // The replaced secret, still in its grace period, took the whole key with it.
        assert!(api_key::lookup(&mut conn, &graced.secret)
            .expect("lookup")
            .is_none());
        assert!(api_key::lookup(&mut conn, &leaked.secret)
            .expect("lookup")
            .is_none());
        let logged = |conn: &mut DbConn| {
            accounts::audit::list(conn, &ws.id, 100)
                .expect("log")
                .into_iter()
                .filter(|e| e.action == LEAKED_ACTION)
                .count()
        };
        assert_eq!(logged(&mut conn), 2);
        let again = process(&mut conn, &cache, &reports, stores, None).expect("replay");
        assert_eq!(again, answer);
        assert_eq!(logged(&mut conn), 2);
        // No store for a prefix: a false positive, whatever its shape.
        let none: &[&dyn LeakedCredentials] = &[];
        let unrouted = process(&mut conn, &cache, &reports[..1], none, None).expect("unrouted");
        assert_eq!(
            unrouted[0].label,
            crate::apikeys::leaks::Label::FalsePositive
        );
        drop(conn);
    }
}
