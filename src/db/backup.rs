//! Operations on a node's data: online SQLite backups, restores, and shell
//! completions. PostgreSQL has its own tools (`pg_dump`, `pg_restore`).

use crate::db::{self, DatabaseUrl};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// Tables every keygate database has; a file without them is not one.
const KEYGATE_TABLES: [&str; 5] = [
    "workspaces",
    "users",
    "clients",
    "api_keys",
    "__diesel_schema_migrations",
];

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The SQLite file behind a database URL; PostgreSQL is refused with the tool to use.
fn sqlite_path(database_url: &str, command: &str, instead: &str) -> Result<PathBuf, String> {
    match DatabaseUrl::parse(database_url)? {
        DatabaseUrl::Sqlite(path) => Ok(PathBuf::from(path)),
        DatabaseUrl::Postgres(_) => Err(format!(
            "keygate {command} works on SQLite only: for PostgreSQL use {instead}"
        )),
    }
}

/// A path as SQLite reads a file name: relative paths get `./` so that a name
/// such as `file:x` is never taken for a URI.
fn sqlite_name(path: &Path) -> Result<String, String> {
    let s = path
        .to_str()
        .ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))?;
    Ok(if path.is_absolute() || s.starts_with("./") {
        s.to_string()
    } else {
        format!("./{s}")
    })
}

/// `PATH` with a suffix appended to its file name (`keygate.db` → `keygate.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_present(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

fn sync_file(path: &Path) -> Result<(), String> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", path.display()))
}

/// Writes a consistent snapshot of the SQLite database into `to`, a new file.
/// Safe while keygate serves: `VACUUM INTO` reads one transaction's view of
/// the database, and writers only wait for it. Returns the size of the backup.
pub fn backup(database_url: &str, to: &Path) -> Result<u64, String> {
    let source = sqlite_path(database_url, "backup", "pg_dump -Fc")?;
    if !source.is_file() {
        return Err(format!("no SQLite database at {}", source.display()));
    }
    let name = sqlite_name(to)?;
    // Claim the name first: an existing file is never overwritten, and VACUUM
    // INTO accepts an empty one.
    match OpenOptions::new().write(true).create_new(true).open(to) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(format!(
                "{} already exists: back up to a new file",
                to.display()
            ))
        }
        Err(e) => return Err(format!("cannot create {}: {e}", to.display())),
    }
    let written = db::connect_single(database_url).and_then(|mut conn| {
        conn.batch_execute(&format!("VACUUM INTO '{}'", name.replace('\'', "''")))
            .map_err(|e| format!("backup failed: {e}"))?;
        drop(conn);
        sync_file(to)?;
        fs::metadata(to)
            .map(|m| m.len())
            .map_err(|e| format!("cannot read {}: {e}", to.display()))
    });
    if written.is_err() {
        // The file is ours (created above): leave no half-written backup.
        let _ = fs::remove_file(to);
    }
    written
}

/// Replaces the configured SQLite database with the backup `from`, after
/// checking that it is a sound keygate database. keygate must be stopped.
/// Returns the database path and its new size.
pub fn restore(database_url: &str, from: &Path) -> Result<(PathBuf, u64), String> {
    let target = sqlite_path(database_url, "restore", "pg_restore")?;
    check_sqlite_file(from)?;
    let live_wal = with_suffix(from, "-wal");
    if fs::metadata(&live_wal).is_ok_and(|m| m.len() > 0) {
        return Err(format!(
            "{} has a write-ahead log beside it ({}): it is a live database, not a backup; make one with keygate backup",
            from.display(),
            live_wal.display()
        ));
    }
    if let (Ok(a), Ok(b)) = (fs::canonicalize(from), fs::canonicalize(&target)) {
        if a == b {
            return Err(format!(
                "{} is the configured database itself",
                from.display()
            ));
        }
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "the directory of the database, {}, does not exist",
            dir.display()
        ));
    }
    if target.exists() {
        refuse_if_in_use(&target)?;
    }
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keygate.db".into());
    let tmp = dir.join(format!(
        ".{file_name}.restore-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let result = install(from, &tmp, &target);
    if result.is_err() {
        for p in [
            tmp.clone(),
            with_suffix(&tmp, "-wal"),
            with_suffix(&tmp, "-shm"),
            with_suffix(&tmp, "-journal"),
        ] {
            let _ = fs::remove_file(p);
        }
    }
    result.map(|bytes| (target, bytes))
}

/// Copies the backup beside the target, checks the copy (what will be
/// installed, and the backup itself stays untouched), then renames it over the
/// target.
fn install(from: &Path, tmp: &Path, target: &Path) -> Result<u64, String> {
    fs::copy(from, tmp).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    check_keygate_database(tmp, &from.display().to_string())?;
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_present(&with_suffix(tmp, suffix))?;
    }
    sync_file(tmp)?;
    // The target's write-ahead log, shared memory and rollback journal belong
    // to the old file: left beside the new one they would be replayed into it.
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_present(&with_suffix(target, suffix))?;
    }
    fs::rename(tmp, target).map_err(|e| format!("cannot replace {}: {e}", target.display()))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename itself durable.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    fs::metadata(target)
        .map(|m| m.len())
        .map_err(|e| format!("cannot read {}: {e}", target.display()))
}

/// A regular file that starts with SQLite's header.
fn check_sqlite_file(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let mut head = [0u8; 16];
    let read = File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|_| head == *SQLITE_MAGIC);
    match read {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("{} is not a SQLite database", path.display())),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            Err(format!("{} is not a SQLite database", path.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[derive(diesel::QueryableByName)]
struct IntegrityLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

#[derive(diesel::QueryableByName)]
struct TableName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// Passes `PRAGMA integrity_check` and has keygate's tables; `shown` names
/// the file in messages.
fn check_keygate_database(path: &Path, shown: &str) -> Result<(), String> {
    let mut conn = SqliteConnection::establish(&sqlite_name(path)?)
        .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let lines: Vec<IntegrityLine> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .map_err(|e| format!("{shown} is not a sound SQLite database: {e}"))?;
    match lines.first() {
        Some(l) if lines.len() == 1 && l.integrity_check == "ok" => {}
        Some(l) => {
            return Err(format!(
                "{shown} fails SQLite's integrity check: {}",
                l.integrity_check.lines().next().unwrap_or("")
            ))
        }
        None => return Err(format!("{shown} fails SQLite's integrity check")),
    }
    let tables: Vec<TableName> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .load(&mut conn)
            .map_err(|e| format!("cannot read the tables of {shown}: {e}"))?;
    if let Some(missing) = KEYGATE_TABLES
        .iter()
        .find(|t| !tables.iter().any(|n| n.name == **t))
    {
        return Err(format!(
            "{shown} is not a keygate database (it has no {missing} table)"
        ));
    }
    Ok(())
}

/// Refuses while another process has the database open (a running keygate).
/// Connections to a database in WAL mode hold a shared lock on it for as long
/// as they are open, so an exclusive lock taken without waiting fails; in
/// rollback-journal mode only a transaction under way is seen, which is why
/// keygate must be stopped first.
fn refuse_if_in_use(target: &Path) -> Result<(), String> {
    let mut conn = SqliteConnection::establish(&sqlite_name(target)?)
        .map_err(|e| format!("cannot open {}: {e}", target.display()))?;
    let probe = conn.batch_execute(
        "PRAGMA busy_timeout = 0; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;",
    );
    match probe {
        // "database is locked" (SQLITE_BUSY); any other failure (a file that is
        // not a database) is no sign of a running keygate.
        Err(e) if e.to_string().contains("locked") => Err(format!(
            "{} is in use: stop keygate before restoring",
            target.display()
        )),
        _ => Ok(()),
    }
}
