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
