//! Keeping SQLite's write-ahead log short under sustained writes.
//!
//! SQLite's automatic checkpoint is passive: it copies logged pages into the
//! database, but the log starts over from its beginning only when a writer
//! finds every frame copied and no reader still using one. With readers and
//! writers always overlapping (a busy node), that moment never comes, so the
//! log grows without end (a gigabyte in a minute of refresh grants) and every
//! page read searches a longer index of it. The maintenance task calls
//! [`bound`] often: a passive checkpoint outside the write lock does the
//! copying, and once the log is past [`RESET_FRAMES`] a restarting checkpoint
//! taken with this process's writers held off lets it start over.

use super::{DbConn, SQLITE_WRITE_GATE};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Integer;

/// Frames (pages) in the log past which it is made to start over: 16 MiB of
/// 4 KiB pages.
pub const RESET_FRAMES: i32 = 4096;

/// How long the restarting checkpoint waits for readers still on the log
/// (keygate's reads are short); past it, the next call tries again.
const RESET_WAIT_MS: u32 = 250;

#[derive(QueryableByName, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// 1 when the checkpoint could not do all it was asked (a reader or a
    /// writer was in the way).
    #[diesel(sql_type = Integer)]
    pub busy: i32,
    /// Frames in the log (-1 when the database is not in WAL mode).
    #[diesel(sql_type = Integer)]
    pub log: i32,
    /// Frames of it copied into the database.
    #[diesel(sql_type = Integer)]
    pub checkpointed: i32,
}

fn checkpoint(conn: &mut DbConn, mode: &str) -> QueryResult<Checkpoint> {
    diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result::<Checkpoint>(conn)
}

/// Copies the log into the database and, when it has grown past
/// [`RESET_FRAMES`], makes it start over. Returns the passive checkpoint's
/// account, or `None` on PostgreSQL, which manages its own log.
pub fn bound(conn: &mut DbConn) -> QueryResult<Option<Checkpoint>> {
    if !matches!(conn, DbConn::Sqlite(_)) {
        return Ok(None);
    }
    let passive = checkpoint(conn, "PASSIVE")?;
    if passive.log >= RESET_FRAMES {
        // Writers of this process queue on the gate meanwhile (as they would
        // behind any writer); a writer of another process meets the busy
        // timeout. What is left to copy is what arrived since the passive run.
        let _gate = SQLITE_WRITE_GATE.lock().unwrap_or_else(|p| p.into_inner());
        conn.batch_execute(&format!("PRAGMA busy_timeout = {RESET_WAIT_MS}"))?;
        let restarted = checkpoint(conn, "RESTART");
        conn.batch_execute(&format!("PRAGMA busy_timeout = {}", super::BUSY_TIMEOUT_MS))?;
        restarted?;
    }
    Ok(Some(passive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn open(path: &str) -> DbConn {
        let mut c = DbConn::Sqlite(diesel::SqliteConnection::establish(path).unwrap());
        c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
        c
    }

    fn frames(conn: &mut DbConn) -> i32 {
        checkpoint(conn, "PASSIVE").unwrap().log
    }

    #[test]
    fn a_long_log_starts_over_although_a_reader_was_on_it() {
        let dir = std::env::temp_dir().join(format!("keygate-wal-{}", super::super::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.db").to_string_lossy().into_owned();
        let mut writer = open(&path);
        writer
            .batch_execute(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY, b BLOB);
                 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000)
                 INSERT INTO t SELECT x, randomblob(3000) FROM c;",
            )
            .unwrap();
        // A reader's snapshot stops a passive checkpoint short of the log's
        // end; the writes after it keep the log from starting over by itself.
        let mut reader = open(&path);
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM t;")
            .unwrap();
        writer
            .batch_execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000)
                 INSERT INTO t SELECT 10000 + x, randomblob(3000) FROM c;",
            )
            .unwrap();
        let before = frames(&mut writer);
        assert!(before >= RESET_FRAMES, "{before}");
        let done = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            reader.batch_execute("COMMIT").unwrap();
        });
        let passive = bound(&mut open(&path)).unwrap().unwrap();
        assert!(passive.checkpointed < passive.log, "{passive:?}");
        done.join().unwrap();
        // The next commit writes from the log's beginning.
        writer
            .batch_execute("INSERT INTO t VALUES (1000000, x'00')")
            .unwrap();
        let after = frames(&mut writer);
        assert!(
            after < 10,
            "the log did not start over: {after} frames (was {before})"
        );
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
