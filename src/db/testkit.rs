//! The logic tests' database, as Kanidm's `testkit`: a fresh, migrated
//! SQLite database in one line, removed when the test ends. Area tests call
//! the areas' functions on it, without HTTP.

use super::{self as db, DbConn, Pool};
use std::path::PathBuf;

/// A fresh database in a folder of its own.
pub struct TestDb {
    dir: PathBuf,
    pub url: String,
    /// For a PostgreSQL database: the server's URL and the database's name,
    /// to drop it when the test ends.
    postgres: Option<(String, String)>,
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
        TestDb {
            dir,
            url,
            postgres: None,
        }
    }

    /// A fresh PostgreSQL database on the server of
    /// `KEYGATE_TEST_POSTGRES_URL`, or `None` when it is not set (the test's
    /// PostgreSQL variant is then skipped, as the integration tests' are).
    pub fn postgres() -> Option<TestDb> {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let Ok(server) = std::env::var("KEYGATE_TEST_POSTGRES_URL") else {
            eprintln!("KEYGATE_TEST_POSTGRES_URL is not set: PostgreSQL variant not run");
            return None;
        };
        let name = format!("keygate_unit_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(&server).expect("postgres");
        (admin.batch_execute(&format!("CREATE DATABASE {name}"))).expect("create database");
        let mut url = url::Url::parse(&server).expect("url");
        url.set_path(&name);
        Some(TestDb {
            dir: std::env::temp_dir().join(format!("keygate-test-{}", db::new_id())),
            url: url.to_string(),
            postgres: Some((server, name)),
        })
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
        if let Some((server, name)) = &self.postgres {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            if let Ok(mut admin) = diesel::PgConnection::establish(server) {
                let _ = admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
            }
        }
    }
}
