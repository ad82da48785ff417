//! The seam between leak reports and the credentials they name.
//!
//! A leak report (`apikeys::leak_reports`) routes each reported token by its
//! prefix to the store that owns that kind of credential: API keys (`kgk_`)
//! today, mailbox auth keys (`kgm_`) once their table exists. A store is this
//! trait; it lives here, below the areas, so that each area implements it for
//! its own table without the areas importing one another. A prefix no store
//! claims is answered `false_positive`.

use super::revocation::Event;
use crate::db::DbConn;
use crate::error::Result;

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

/// A kind of credential that leak reports can revoke.
pub trait LeakedCredentials: Sync {
    /// The token prefix this store owns (`kgk_`, `kgm_`).
    fn prefix(&self) -> &'static str;

    /// Runs inside the report's write transaction. Looks the tokens up by
    /// hash (in batches, by index), revokes every live credential among them
    /// at once, with one security-log row each that names `url` and `source`,
    /// and records their revocation events. A credential already revoked is
    /// still real, and changes nothing: a replayed report is harmless.
    /// `reporter` is the client address of the report.
    fn revoke_leaked(
        &self,
        conn: &mut DbConn,
        tokens: &[LeakedToken<'_>],
        reporter: Option<&str>,
    ) -> Result<LeakOutcome>;
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
