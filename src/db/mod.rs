//! Storage: one diesel connection type over SQLite and PostgreSQL, an r2d2 pool
//! whose manager picks the backend from the URL, and the embedded migrations.

pub mod backup;
pub mod batch;
pub mod group;
pub mod kept;
pub mod paging;
mod pool;
pub mod schema;
mod sqlite_c;
pub mod wal;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

pub use diesel::result::Error as DbError;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub use kept::{Kept, Piece};

/// Runs `$body` with `$c` bound to the engine's own connection, compiled
/// once for each engine. A statement run through [`DbConn`] (diesel's
/// multi-connection) writes its SQL text afresh at each run, twice or
/// more (to check it may be cached, then with its binds), even when the
/// statement is prepared already; run on the engine's connection, a
/// statement diesel keeps by its type is found by that type alone. For the
/// lookups on the hot path of a request.
#[macro_export]
macro_rules! on_engine {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgresql($c) => $body,
        }
    };
}
pub use on_engine;
pub use pool::{Health, Pool, PoolError, Pooled, PooledConn};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Where the data lives, decided by the URL's scheme alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("the database URL is empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err("the SQLite database URL names no file".into());
        }
        if path.contains("://") {
            return Err(format!(
                "unsupported database URL scheme in {url:?}: use sqlite://PATH or postgres://…"
            ));
        }
        Ok(DatabaseUrl::Sqlite(path.to_string()))
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(_))
    }
}

/// How long a SQLite connection waits for another process's write lock.
const BUSY_TIMEOUT_MS: u32 = 10_000;

#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    /// Told of every connection attempt's outcome (see `pool`).
    health: std::sync::Arc<Health>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("{0}")]
    Query(#[from] diesel::result::Error),
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = Pooled;
    type Error = ConnectError;

    fn connect(&self) -> Result<Pooled, ConnectError> {
        let opened = self.open();
        match &opened {
            Ok(_) => self.health.connected(),
            Err(e) => self.health.failed(e),
        }
        Ok(Pooled::new(opened?))
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    /// No query: a connection is broken when one of its queries failed
    /// because the connection itself failed (see [`Pooled`]), or when a
    /// transaction could not be ended.
    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.has_broken()
    }
}

impl ConnectionManager {
    fn new(url: DatabaseUrl) -> Self {
        ConnectionManager {
            url,
            health: Default::default(),
        }
    }

    fn open(&self) -> Result<DbConn, ConnectError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => Ok(DbConn::Postgresql(diesel::PgConnection::establish(
                &with_connect_timeout(url),
            )?)),
            DatabaseUrl::Sqlite(path) => {
                sqlite_c::configure();
                let mut conn = diesel::SqliteConnection::establish(path)?;
                // Per-connection settings: WAL lets readers run beside the one writer,
                // busy_timeout makes writers queue instead of failing with "locked".
                // (journal_mode = WAL persists in the file: `connect_single` sets it.)
                // journal_size_limit: a log that grew and started over is cut
                // back to this size on disk.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA cache_size = -{SQLITE_CACHE_KIB}; PRAGMA wal_autocheckpoint = 10000; \
                     PRAGMA journal_size_limit = 67108864;",
                ))?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

/// A PostgreSQL URL with libpq's `connect_timeout` (unless it has one): a
/// server that does not answer at all (a partition) fails a connection
/// attempt in seconds, not at the TCP timeout, so the pool learns that the
/// database is away.
fn with_connect_timeout(url: &str) -> std::borrow::Cow<'_, str> {
    if url.contains("connect_timeout=") {
        return url.into();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={PG_CONNECT_TIMEOUT_SECS}").into()
}

/// libpq's connection timeout, when the URL gives none.
const PG_CONNECT_TIMEOUT_SECS: u32 = 3;

/// The rows of a query of two text columns as a map from the first to the
/// second: how the owners of tables name their rows by id for others (the
/// security log's subjects).
pub fn id_map<'a, Q>(
    conn: &mut DbConn,
    query: Q,
) -> QueryResult<std::collections::HashMap<String, String>>
where
    Q: diesel::query_dsl::LoadQuery<'a, DbConn, (String, String)>,
{
    Ok(query.load::<(String, String)>(conn)?.into_iter().collect())
}

/// Opens the pool, checks that the database answers and runs pending migrations.
/// `pool_size` is `Config::db_pool_size`.
pub fn connect(url: &str, pool_size: Option<u32>) -> Result<Pool, String> {
    let parsed = DatabaseUrl::parse(url)?;
    // Switch to WAL and migrate on one connection before the pool opens others,
    // so that no connection races the schema change for the lock.
    drop(connect_single(url)?);
    // 8 connections on SQLite (one writer at a time anyway), 16 on PostgreSQL.
    let size = pool_size.unwrap_or(if parsed.is_sqlite() { 8 } else { 16 });
    let manager = ConnectionManager::new(parsed.clone());
    let health = manager.health.clone();
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        // No probe query on every checkout (a round trip per request on
        // PostgreSQL): a connection whose query failed at the connection
        // level is dropped when it comes back, and one idle for a while is
        // probed when it is handed out (see `Pool::get`).
        .test_on_check_out(false)
        // A request waits at most this long for a connection before it is
        // answered 503 (the database is away or saturated).
        .connection_timeout(Duration::from_secs(3))
        .build_unchecked(manager);
    match pool.get_timeout(Duration::from_secs(10)) {
        Ok(_) => Ok(Pool::new(pool, health, parsed.is_sqlite())),
        Err(_) => {
            // r2d2 hides the cause; open one connection by hand to report it.
            let mgr = ConnectionManager::new(parsed);
            let err = r2d2::ManageConnection::connect(&mgr).err();
            Err(match err {
                Some(e) => format!("cannot open the database: {e}"),
                None => "cannot open the database: timed out".to_string(),
            })
        }
    }
}

/// One connection without a pool, for short-lived commands: a pool's background
/// threads could still be opening connections (and using libpq's TLS) while the
/// process exits.
pub fn connect_single(url: &str) -> Result<DbConn, String> {
    let mgr = ConnectionManager::new(DatabaseUrl::parse(url)?);
    let mut conn = mgr
        .open()
        .map_err(|e| format!("cannot open the database: {e}"))?;
    if let DbConn::Sqlite(_) = conn {
        // WAL lets readers run beside the one writer; the mode persists in the file.
        conn.batch_execute("PRAGMA journal_mode = WAL")
            .map_err(|e| format!("cannot open the database: {e}"))?;
    }
    run_migrations(&mut conn)?;
    Ok(conn)
}

/// A migration's failure, carried out of diesel's transaction (which needs
/// an error it can make from its own).
struct MigrationFailed(Box<dyn std::error::Error + Send + Sync>);

impl From<DbError> for MigrationFailed {
    fn from(e: DbError) -> Self {
        MigrationFailed(Box::new(e))
    }
}

/// The PostgreSQL advisory lock that migrations hold ("keygate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6579_6761_7465;

pub fn run_migrations(conn: &mut DbConn) -> Result<(), String> {
    let result = match conn {
        // The same on SQLite: the whole run holds the write lock from its
        // start (each migration a savepoint in it), so a second process
        // waits and then finds nothing pending.
        DbConn::Sqlite(c) => c
            .immediate_transaction(|c| {
                c.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|_| ())
                    .map_err(MigrationFailed)
            })
            .map_err(|e: MigrationFailed| e.0),
        DbConn::Postgresql(c) => {
            // Nodes that start together, and a command run beside them,
            // migrate one at a time: the others wait here, then find nothing
            // pending (without it, two could both apply the same migration
            // and one fail on what the other created).
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .map_err(|e| format!("database migration failed: {e}"))?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            let _ = c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
            result
        }
    };
    result.map_err(|e| format!("database migration failed: {e}"))
}

/// True when every embedded migration has been applied.
pub fn migrations_current(conn: &mut DbConn) -> bool {
    let pending = match conn {
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
        DbConn::Postgresql(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
    };
    matches!(pending, Ok(false))
}

static SQLITE_WRITE_GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A write transaction. On SQLite it takes the write lock at BEGIN
/// (`BEGIN IMMEDIATE`), so that a read followed by a write never fails with
/// SQLITE_BUSY on the lock upgrade; writers queue on busy_timeout instead.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<DbError>,
{
    match conn {
        DbConn::Postgresql(_) => conn.transaction(f),
        // Inside a batch's transaction (`db::batch`): a savepoint of it.
        DbConn::Sqlite(_) if batch::in_batch(conn) => batch::savepoint(conn, f),
        DbConn::Sqlite(_) => {
            // Writers of this process queue on a mutex, which wakes the next at
            // once; SQLite's own busy handler (left for other processes) sleeps
            // in steps of milliseconds.
            let _gate = SQLITE_WRITE_GATE.lock().unwrap_or_else(|p| p.into_inner());
            conn.batch_execute("BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(v) => match conn.batch_execute("COMMIT") {
                    Ok(()) => Ok(v),
                    Err(e) => {
                        let _ = conn.batch_execute("ROLLBACK");
                        Err(e.into())
                    }
                },
                Err(e) => {
                    let _ = conn.batch_execute("ROLLBACK");
                    Err(e)
                }
            }
        }
    }
}

/// SQLite's page cache of each connection, in KiB (`PRAGMA cache_size`).
const SQLITE_CACHE_KIB: u32 = 2_000;
/// The cache of a connection while it writes a large batch (see
/// [`with_large_cache`]).
const SQLITE_LARGE_CACHE_KIB: u32 = 48_000;

/// Runs `f` with a large SQLite page cache on `conn`, given back afterwards:
/// a write of thousands of rows scattered over a table (the usage flush of a
/// large working set) otherwise spills its dirty pages to the log before it
/// commits and reads them back. PostgreSQL: `f` alone.
pub fn with_large_cache<T, E>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError>,
{
    if !matches!(conn, DbConn::Sqlite(_)) {
        return f(conn);
    }
    conn.batch_execute(&format!("PRAGMA cache_size = -{SQLITE_LARGE_CACHE_KIB}"))?;
    let result = f(conn);
    conn.batch_execute(&format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}"))?;
    result
}

/// Rows per statement in a many-row write: far under both engines' limits
/// on bound parameters (SQLite 32,766, PostgreSQL 65,535).
pub const ROWS_PER_STATEMENT: usize = 500;

/// Hands `write` the items in slices of at most [`ROWS_PER_STATEMENT`],
/// holding one slice in memory at a time (a flush of a large working set
/// does not build its whole batch first).
fn in_batches<T, E>(
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&[T]) -> Result<(), E>,
) -> Result<(), E> {
    let mut batch = Vec::with_capacity(ROWS_PER_STATEMENT);
    for item in items {
        batch.push(item);
        if batch.len() == ROWS_PER_STATEMENT {
            write(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        write(&batch)?;
    }
    Ok(())
}

/// How a statement's parameters are written: PostgreSQL numbers them
/// (`$1`); SQLite gets anonymous `?`, because it looks each named or
/// numbered one up among those before it, which makes a statement of
/// thousands of them quadratic to prepare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholders {
    Numbered,
    Anonymous,
}

impl Placeholders {
    fn of(conn: &DbConn) -> Self {
        match conn {
            DbConn::Postgresql(_) => Placeholders::Numbered,
            DbConn::Sqlite(_) => Placeholders::Anonymous,
        }
    }
}

/// The placeholders of a `VALUES` list of `rows` rows of `columns` each:
/// `($1, $2), ($3, $4)` or `(?, ?), (?, ?)`. Its columns are `column1`,
/// `column2`, … on both engines when it stands in a `FROM`.
fn values_placeholders(style: Placeholders, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            match style {
                Placeholders::Numbered => out.push_str(&format!("${}", r * columns + c + 1)),
                Placeholders::Anonymous => out.push('?'),
            }
        }
        out.push(')');
    }
    out
}

/// A raw SQL statement whose binds are added in a loop.
pub type BoxedQuery =
    diesel::query_builder::BoxedSqlQuery<'static, MultiBackend, diesel::query_builder::SqlQuery>;

/// Writes `items` with a statement built around a `VALUES` list, a slice of
/// at most [`ROWS_PER_STATEMENT`] rows a statement: `sql` puts the list
/// (its placeholders, `columns` a row) into the statement, and `bind` binds
/// one item's values in column order.
pub fn write_values<T>(
    conn: &mut DbConn,
    items: impl IntoIterator<Item = T>,
    columns: usize,
    sql: impl Fn(&str) -> String,
    bind: impl Fn(BoxedQuery, &T) -> BoxedQuery,
) -> QueryResult<()> {
    let style = Placeholders::of(conn);
    in_batches(items, |chunk| {
        let values = values_placeholders(style, chunk.len(), columns);
        let query = diesel::sql_query(sql(&values)).into_boxed::<MultiBackend>();
        chunk.iter().fold(query, &bind).execute(conn)?;
        Ok(())
    })
}

/// True for a unique-constraint violation, on either backend.
pub fn is_unique_violation(e: &DbError) -> bool {
    matches!(
        e,
        DbError::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Inserts `row` into `table`; a unique key the row repeats is answered by
/// `taken` (a conflict that says what is taken), any other error passes
/// through.
pub fn insert_new<T, R, E>(
    conn: &mut DbConn,
    table: T,
    row: R,
    taken: impl FnOnce(&mut DbConn) -> E,
) -> Result<(), E>
where
    T: Table,
    R: Insertable<T>,
    diesel::query_builder::InsertStatement<T, R::Values>: ExecuteDsl<DbConn>,
    E: From<DbError>,
{
    match diesel::insert_into(table).values(row).execute(conn) {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(taken(conn)),
        Err(e) => Err(e.into()),
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// RFC 3339 UTC, as the contract writes times.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
pub mod testkit;
#[cfg(test)]
pub(crate) mod upgrade_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_placeholders_number_every_column() {
        let n = Placeholders::Numbered;
        assert_eq!(values_placeholders(n, 1, 1), "($1)");
        assert_eq!(values_placeholders(n, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_placeholders(n, 0, 3), "");
        let a = Placeholders::Anonymous;
        assert_eq!(values_placeholders(a, 2, 2), "(?, ?), (?, ?)");
    }

    #[test]
    fn in_batches_hands_every_item_once_in_bounded_slices() {
        for n in [
            0,
            1,
            ROWS_PER_STATEMENT,
            ROWS_PER_STATEMENT + 1,
            3 * ROWS_PER_STATEMENT + 7,
        ] {
            let mut seen = Vec::new();
            in_batches(0..n, |b: &[usize]| {
                assert!(!b.is_empty() && b.len() <= ROWS_PER_STATEMENT);
                seen.extend_from_slice(b);
                Ok::<_, ()>(())
            })
            .unwrap();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
    }
}
