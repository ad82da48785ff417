//! The seam between leak reports and the credentials they name.
//!
//! A leak report (`apikeys::leak_reports`) routes each reported token by its
//! prefix to the store that owns that kind of credential: API keys (`kgk_`)
//! today, mailbox auth keys (`kgm_`) once their table exists. A store is this
//! trait; it lives here, below the areas, so that each area implements it for
//! its own table without the areas importing one another. A prefix no store
//! claims is answered `false_positive`.

use super::revocation::Event;
use crate::accounts::audit;
use crate::db::DbConn;
use crate::error::Result;
use std::collections::{HashMap, HashSet};

/// One reported token, as a store sees it: never the token itself, only the
/// hex SHA-256 it is stored under, and where it was found.
#[derive(Clone, Copy, Debug)]
pub struct LeakedToken<'a> {
    pub token_hash: &'a str,
    /// Where the reporter found it (GitHub's `url`).
    pub url: Option<&'a str>,
    /// What kind of place that is (GitHub's `source`: `content`, `commit`, …).
    pub source: Option<&'a str>,
}

/// What a store did with a batch.
#[derive(Debug, Default)]
pub struct LeakOutcome {
    /// Per token, in order: whether it is one of this store's credentials
    /// (`true_positive`), live or not.
    pub real: Vec<bool>,
    /// Revocation events written for the credentials revoked now, for the
    /// caller to apply to its cache after the commit.
    pub events: Vec<Event>,
}

/// A stored credential a reported hash names.
#[derive(Clone, Debug)]
pub struct Stored {
    pub id: String,
    pub workspace_id: String,
    /// Whether it still works (what that means is the store's to say).
    pub live: bool,
}

/// The credentials a store found, by the hash they were reported under.
pub type Found = HashMap<String, Stored>;

/// What stopping a credential wrote, for its security-log row.
pub struct Stop {
    /// The revocation event, recorded with the row.
    pub event: Event,
    /// Said before where it was found (`(already disabled) `), or nothing.
    pub note: &'static str,
}

/// Hashes per lookup query: two lists of this many bind parameters stay far
/// below SQLite's and PostgreSQL's limits.
pub const LOOKUP_CHUNK: usize = 400;

/// A kind of credential that leak reports can revoke.
pub trait LeakedCredentials: Sync {
    /// The token prefix this store owns (`kgk_`, `kgm_`).
    fn prefix(&self) -> &'static str;

    /// The security-log action of a credential stopped for a leak.
    fn action(&self) -> &'static str;

    /// The stored credentials among `hashes` (at most [`LOOKUP_CHUNK`], one
    /// query by index), as they are at `now`.
    fn find(&self, conn: &mut DbConn, hashes: &[&str], now: i64) -> Result<Found>;

    /// Stops a credential found, at `now`; `None` when there is nothing to
    /// stop or to log (a replayed report, or a secret that no longer works).
    fn stop(&self, conn: &mut DbConn, found: &Stored, now: i64) -> Result<Option<Stop>>;

    /// Runs inside the report's write transaction. Looks the tokens up by
    /// hash (in batches, by index), stops every credential among them at
    /// once, with one security-log row each that names `url` and `source`,
    /// and records their revocation events. A credential already stopped is
    /// still real, and changes nothing: a replayed report is harmless.
    /// `reporter` is the client address of the report.
    fn revoke_leaked(
        &self,
        conn: &mut DbConn,
        tokens: &[LeakedToken<'_>],
        reporter: Option<&str>,
    ) -> Result<LeakOutcome> {
        let now = crate::db::now();
        let mut wanted: Vec<&str> = tokens.iter().map(|t| t.token_hash).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found = Found::new();
        for chunk in wanted.chunks(LOOKUP_CHUNK) {
            found.extend(self.find(conn, chunk, now)?);
        }
        let mut outcome = LeakOutcome::default();
        let mut stopped: HashSet<&str> = HashSet::new();
        for token in tokens {
            let Some(key) = found.get(token.token_hash) else {
                outcome.real.push(false);
                continue;
            };
            outcome.real.push(true);
            if stopped.contains(key.id.as_str()) {
                continue;
            }
            let Some(stop) = self.stop(conn, key, now)? else {
                continue;
            };
            stopped.insert(&key.id);
            let by = audit::Actor {
                id: audit::LEAK_REPORT_ACTOR,
                client_address: reporter,
            };
            let found_at = format!("{}{}", stop.note, detail(token.url, token.source));
            let events = super::change::Change::new(&key.id, self.action(), by)
                .with_events(std::slice::from_ref(&stop.event))
                .record(conn, &key.workspace_id, Some(&found_at))?;
            outcome.events.extend(events);
        }
        Ok(outcome)
    }
}

/// The security-log text of a leak: where it was found, bounded so a hostile
/// report cannot fill the log with one row.
pub fn detail(url: Option<&str>, source: Option<&str>) -> String {
    const MAX: usize = 500;
    let bounded = |s: &str| super::excerpt(s, MAX);
    format!(
        "reported leaked at {} (source: {})",
        url.map_or_else(|| "an unnamed place".to_string(), bounded),
        source.map_or_else(|| "unknown".to_string(), bounded),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn detail_names_url_and_source_within_bounds() {
        let d = super::detail(
            Some("https://github.com/o/r/blob/main/.env"),
            Some("content"),
        );
        assert_eq!(
            d,
            "reported leaked at https://github.com/o/r/blob/main/.env (source: content)"
        );
        assert!(super::detail(None, None).contains("unknown"));
        let long = "x".repeat(10_000);
        assert!(super::detail(Some(&long), Some(&long)).chars().count() < 1_100);
    }
}
