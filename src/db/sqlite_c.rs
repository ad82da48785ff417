//! The SQLite settings that only its C API can make (diesel gives no handle
//! to the raw connection), made once per process for every connection it
//! opens.
//!
//! - **The query planner stability guarantee** (`SQLITE_DBCONFIG_ENABLE_QPSG`).
//!   Without it, SQLite plans `LIMIT ?` around the value bound, marks the
//!   statement stale at every new bind, and parses and plans it again at each
//!   run: every diesel `.first()` was prepared afresh each time, 15 % of a
//!   refresh grant's CPU. With it, a cached statement runs as prepared (the
//!   limit is read when it runs).
//! - **No memory statistics** (`SQLITE_CONFIG_MEMSTATUS` off): keygate never
//!   reads them, and keeping them takes one process-wide mutex at every
//!   allocation SQLite makes, which connections on different threads contend
//!   for.
//! - **Savepoint journals in memory up to [`SUBJOURNAL_IN_MEMORY`]**
//!   (`SQLITE_CONFIG_STMTJRNL_SPILL`). A savepoint keeps the pages it
//!   changes as they were, to roll back to; past 64 KiB (SQLite's default)
//!   that journal goes to a temporary file, written with a system call per
//!   page, for the rest of the transaction. A batch of token requests
//!   (`db::batch`) runs each in a savepoint and passed it within a few:
//!   a tenth of a refresh grant's CPU went to those writes. A savepoint's
//!   journal is emptied when it is released, and only the one writer has
//!   one, so this bounds what it holds in memory at once.

use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int};
use std::sync::Once;

static REGISTER: Once = Once::new();

/// The bytes of a savepoint's journal kept in memory before it spills to a
/// temporary file.
pub const SUBJOURNAL_IN_MEMORY: c_int = 4 << 20;

/// Before the first connection: the process-wide settings, and the hook that
/// makes the per-connection ones on each connection opened after it.
pub fn configure() {
    REGISTER.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection of this
        // process exists (it answers SQLITE_MISUSE, harmlessly, if SQLite was
        // initialised already); sqlite3_auto_extension takes a function that
        // lives as long as the program.
        unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_STMTJRNL_SPILL, SUBJOURNAL_IN_MEMORY);
            ffi::sqlite3_auto_extension(Some(on_open));
        }
    });
}

/// Called by SQLite on each connection as it opens.
unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection being opened, valid for this call; the
    // option takes an int and an optional int pointer for the old value.
    unsafe {
        ffi::sqlite3_db_config(
            db,
            ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        );
    }
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    #[test]
    fn every_connection_opened_after_configure_has_the_guarantee() {
        configure();
        let mut db: *mut ffi::sqlite3 = std::ptr::null_mut();
        let mut on: c_int = -1;
        // SAFETY: a connection of this test's own, asked for its setting
        // (-1: read only) and closed.
        let (opened, asked) = unsafe {
            let opened = ffi::sqlite3_open(c":memory:".as_ptr(), &mut db);
            let asked = ffi::sqlite3_db_config(
                db,
                ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
                -1 as c_int,
                &mut on as *mut c_int,
            );
            ffi::sqlite3_close(db);
            (opened, asked)
        };
        assert_eq!((opened, asked), (ffi::SQLITE_OK, ffi::SQLITE_OK));
        assert_eq!(on, 1);
    }

    #[test]
    fn a_cached_limit_statement_is_not_prepared_again_at_each_run() {
        configure();
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        // The same query with a different bound limit each run: answered by
        // the limit given, not the one it was prepared with.
        for limit in [1i64, 3, 2] {
            let rows = diesel::sql_query("SELECT count(*) AS n FROM (SELECT x FROM t LIMIT ?)")
                .bind::<diesel::sql_types::BigInt, _>(limit)
                .get_result::<Count>(&mut conn)
                .unwrap();
            assert_eq!(rows.n, limit);
        }
    }
}
