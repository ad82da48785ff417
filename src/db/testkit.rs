//! The logic tests' database, as Kanidm's `testkit`: a fresh, migrated
//! SQLite database in one line, removed when the test ends. Area tests call
//! the areas' functions on it, without HTTP.

use super::{self as db, DbConn, Pool};
use std::path::PathBuf;

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
