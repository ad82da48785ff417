//! Databases of the tests: a fresh SQLite file, or a fresh PostgreSQL database
//! when KEYGATE_TEST_POSTGRES_URL is set, and direct connections to read or set
//! up rows the HTTP API and the CLI do not show.

use super::unique;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A direct SQLite connection that waits for the server's writers.
fn sqlite_conn(url: &str) -> diesel::SqliteConnection {
    let mut c = diesel::SqliteConnection::establish(url.trim_start_matches("sqlite://"))
        .expect("open sqlite");
    c.batch_execute("PRAGMA busy_timeout = 10000")
        .expect("busy_timeout");
    c
}

pub fn postgres_admin_url() -> Option<String> {
    std::env::var("KEYGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A fresh, empty database of one backend.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    dir: PathBuf,
    /// The PostgreSQL database this handle created, dropped with it: a suite
    /// run leaves no database behind in a shared cluster.
    owned_postgres: Option<String>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let dir = std::env::temp_dir().join(format!("keygate-test-{}", unique()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut owned_postgres = None;
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.join("keygate.db").display()),
            Backend::Postgres => {
                let admin = postgres_admin_url().expect("KEYGATE_TEST_POSTGRES_URL");
                let name = format!("keygate_test_{}", unique());
                let mut conn =
                    diesel::PgConnection::establish(&admin).expect("connect to PostgreSQL");
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create database");
                owned_postgres = Some(name.clone());
                let mut url = url::Url::parse(&admin).expect("admin URL");
                url.set_path(&format!("/{name}"));
                url.to_string()
            }
        };
        TestDb {
            url,
            backend,
            dir,
            owned_postgres,
        }
    }

    /// A second handle on the same database (for a restarted node); it does
    /// not remove the files when dropped.
    pub fn reuse(other: &TestDb) -> TestDb {
        TestDb {
            url: other.url.clone(),
            backend: other.backend,
            dir: PathBuf::new(),
            owned_postgres: None,
        }
    }

    /// Counts rows of a table, straight from the database.
    pub fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let q = format!("SELECT COUNT(*) AS n FROM {table}");
        let rows: Vec<N> = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlite_conn(&self.url);
                diesel::RunQueryDsl::load(diesel::sql_query(q), &mut c).expect("count")
            }
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url).expect("open pg");
                diesel::RunQueryDsl::load(diesel::sql_query(q), &mut c).expect("count")
            }
        };
        rows[0].n
    }

    /// Runs SQL straight on the database (to set up states such as expiry).
    pub fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlite_conn(&self.url);
                c.batch_execute(sql).expect("execute");
            }
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url).expect("open pg");
                c.batch_execute(sql).expect("execute");
            }
        }
    }

    /// One text column of the first row of a query (named `v`).
    pub fn text(&self, sql: &str) -> Option<String> {
        self.texts(sql).into_iter().next()
    }

    /// One text column (named `v`) of every row of a query; NULLs left out.
    pub fn texts(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            v: Option<String>,
        }
        let q = diesel::sql_query(sql.to_string());
        let rows: Vec<T> = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlite_conn(&self.url);
                diesel::RunQueryDsl::load(q, &mut c).expect("query")
            }
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url).expect("open");
                diesel::RunQueryDsl::load(q, &mut c).expect("query")
            }
        };
        rows.into_iter().filter_map(|r| r.v).collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if let (Some(name), Some(admin)) = (self.owned_postgres.take(), postgres_admin_url()) {
            // FORCE: a server the test left running still holds connections.
            if let Ok(mut conn) = diesel::PgConnection::establish(&admin) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}
