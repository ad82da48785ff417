//! The logic tests' kit, as Kanidm's `testkit`: a fresh, migrated SQLite
//! database in one line, removed when the test ends, and the credential
//! services over it. Area tests call the areas' functions on it, without
//! HTTP.

use crate::credentials::cache::{Bounds, CredentialCache};
use crate::credentials::signing_keys::KeyRing;
use crate::credentials::usage::UsageRecorder;
use crate::credentials::{Credentials, Stored};
use crate::db::{self, DbConn, Pool};
use std::path::PathBuf;

/// The issuer of the kit's signing keys.
pub const ISSUER: &str = "https://id.example.test";

/// A fresh database in a folder of its own.
pub struct TestDb {
    dir: PathBuf,
    pub url: String,
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDb {
    pub fn new() -> TestDb {
        let dir = std::env::temp_dir().join(format!("keygate-test-{}", db::new_id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("keygate.db").display());
        TestDb { dir, url }
    }

    /// A pool over it (opening it runs the migrations).
    pub fn pool(&self) -> Pool {
        db::connect(&self.url, None).expect("open and migrate a fresh database")
    }

    /// One connection over it, without a pool.
    pub fn conn(&self) -> DbConn {
        db::connect_single(&self.url).expect("open and migrate a fresh database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node's credential services with an ephemeral signing key: a cache with
/// `bounds` (`None`: a cache detached from any feed), reading stored
/// credentials through `stored`.
pub fn credentials(stored: Stored, bounds: Option<Bounds>) -> Credentials {
    Credentials {
        keys: KeyRing::ephemeral(ISSUER).expect("key ring"),
        cache: match bounds {
            Some(b) => CredentialCache::new(Default::default(), b),
            None => CredentialCache::detached(),
        },
        usage: UsageRecorder::default(),
        access_token_ttl: 3600,
        stored,
        proof_uses: Default::default(),
    }
}
