//! Backup and restore: under load, refusals, a database in use.

use super::*;

/// A scratch directory, removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("keygate-ops-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command that must be refused: exit 1, one line on stderr that
/// mentions `mentions`, nothing on stdout (with and without `--json`).
fn refused(db: &TestDb, args: &[&str], mentions: &str) {
    for json in [false, true] {
        let mut all: Vec<&str> = if json { vec!["--json"] } else { vec![] };
        all.extend_from_slice(args);
        let out = db.cli(&all);
        out.assert_refused(mentions);
        assert_eq!(out.code, 1, "{out:?}");
    }
}

#[test]
fn backup_under_load_then_restore() {
    let f = Fixture::new(Backend::Sqlite);
    let key = f.api_key("read_write");
    let reader = f.api_key("read_only");
    let mut http = f.server.client();
    for i in 1..=5 {
        let r = http.bearer_post_json("/v1/tags", &key, &format!(r#"{{"name":"before-{i}"}}"#));
        assert_eq!(r.status, 201, "{}", r.body);
    }

    // Writes go on through /v1 while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, done, key) = (stop.clone(), done.clone(), key.clone());
        let mut http = f.server.client();
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r =
                    http.bearer_post_json("/v1/tags", &key, &format!(r#"{{"name":"load-{i}"}}"#));
                assert_eq!(
                    r.status, 201,
                    "a write failed during the backup: {}",
                    r.body
                );
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    assert!(eventually(Duration::from_secs(10), || done
        .load(Ordering::SeqCst)
        >= 5));
    let scratch = Scratch::new();
    let file = scratch.path("keygate-backup.db");
    let done_before = done.load(Ordering::SeqCst);
    let out = f.db().json(&["backup", "--to", &file]);
    let done_after = done.load(Ordering::SeqCst);
    eprintln!("writes: {done_before} before the backup, {done_after} by its end");
    assert_eq!(out["backup"], file.as_str());
    let bytes = std::fs::metadata(&file).unwrap().len();
    assert!(bytes > 0);
    assert_eq!(out["bytes"].as_u64(), Some(bytes));
    // The server goes on writing after the backup.
    assert!(eventually(Duration::from_secs(10), || done
        .load(Ordering::SeqCst)
        >= done_after + 5));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer saw no failure");

    // Restore into a fresh database and serve it.
    let fresh = TestDb::new(Backend::Sqlite);
    let restored = f
        .db()
        .json(&["restore", "--from", &file, "--database-url", &fresh.url]);
    assert_eq!(restored["restored"], file.as_str());
    assert_eq!(restored["bytes"].as_u64(), Some(bytes));
    let restored_path = fresh.url.trim_start_matches("sqlite://").to_string();
    assert_eq!(restored["database"], restored_path.as_str());
    let s2 = Server::start_with(fresh, &[]);
    let mut http2 = s2.client();
    for credential in [&key, &reader] {
        let ws = http2.bearer_get("/v1/workspace", credential);
        assert_eq!(ws.status, 200, "{}", ws.body);
        assert_eq!(ws.json()["id"], f.workspace_id.as_str());
    }
    // Everything written before the backup started is there; nothing written
    // after it ended is.
    let names = tag_names(&s2, &reader);
    for i in 1..=5 {
        assert!(names.contains(&format!("before-{i}")), "{names:?}");
    }
    let load = names.iter().filter(|n| n.starts_with("load-")).count();
    assert!(
        (done_before..=done_after + 1).contains(&load),
        "{load} load tags, {done_before} written before the backup, {done_after} by its end"
    );
    for i in 1..=done_before {
        assert!(names.contains(&format!("load-{i}")), "load-{i} missing");
    }
    // The restored node takes writes.
    assert_eq!(
        http2
            .bearer_post_json("/v1/tags", &key, r#"{"name":"after-restore"}"#)
            .status,
        201
    );
}

fn backup_and_restore_refusals(b: Backend) {
    let db = TestDb::new(b);
    let ws = db.create_workspace("Kept");
    let scratch = Scratch::new();
    let file = scratch.path("backup.db");
    if b == Backend::Postgres {
        refused(&db, &["backup", "--to", &file], "pg_dump");
        assert!(!Path::new(&file).exists());
        std::fs::write(&file, "anything").unwrap();
        refused(&db, &["restore", "--from", &file], "pg_restore");
        assert_eq!(db.count("workspaces"), 1);
        return;
    }
    let before = state(&db);
    assert!(before.ends_with(ws.as_str()), "{before}");
    let db_path = PathBuf::from(db.url.trim_start_matches("sqlite://"));
    let db_dir = db_path.parent().unwrap().to_path_buf();

    // Backing up over an existing file.
    std::fs::write(&file, "keep me").unwrap();
    refused(&db, &["backup", "--to", &file], "already exists");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // Into a directory that does not exist.
    let nowhere = scratch.path("no/such/dir/backup.db");
    refused(&db, &["backup", "--to", &nowhere], "no/such/dir");
    assert!(!Path::new(&nowhere).exists());

    // Restoring from things that are not keygate backups.
    let text = scratch.path("notes.txt");
    std::fs::write(&text, "not a database at all\n").unwrap();
    refused(&db, &["restore", "--from", &text], "not a SQLite database");
    let empty = scratch.path("empty.db");
    std::fs::write(&empty, "").unwrap();
    refused(&db, &["restore", "--from", &empty], "not a SQLite database");
    refused(
        &db,
        &["restore", "--from", &scratch.path("missing.db")],
        "missing.db",
    );
    refused(
        &db,
        &["restore", "--from", &scratch.0.display().to_string()],
        "not a file",
    );
    let other = scratch.path("other.db");
    diesel::SqliteConnection::establish(&other)
        .unwrap()
        .batch_execute("CREATE TABLE things (x TEXT); INSERT INTO things VALUES ('a');")
        .unwrap();
    refused(
        &db,
        &["restore", "--from", &other],
        "not a keygate database",
    );
    // A damaged backup fails the integrity check.
    let good = scratch.path("good.db");
    db.json(&["backup", "--to", &good]);
    let mut bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() > 40_000, "{}", bytes.len());
    for b in &mut bytes[8192..40_000] {
        *b = 0x5a;
    }
    let damaged = scratch.path("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();
    refused(&db, &["restore", "--from", &damaged], "damaged.db");

    // Nothing changed, and no temporary file was left beside the database.
    assert_eq!(state(&db), before);
    let leftovers: Vec<String> = std::fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restore"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The good backup restores over the existing database, stale journal files
    // and all, and brings back what it held.
    db.create_workspace("After the backup");
    assert_eq!(db.count("workspaces"), 2);
    std::fs::write(db_dir.join("keygate.db-journal"), "stale").unwrap();
    let out = db.json(&["restore", "--from", &good]);
    assert_eq!(out["restored"], good.as_str());
    assert!(!db_dir.join("keygate.db-journal").exists());
    assert_eq!(state(&db), before);
}

#[test]
fn restore_refuses_a_database_in_use() {
    let db = TestDb::new(Backend::Sqlite);
    db.create_workspace("Live");
    // In WAL mode every open connection holds a shared lock on the file, which
    // is how restore sees a running keygate.
    db.execute("PRAGMA journal_mode = WAL");
    let s = Server::start_with(db, &[]);
    let scratch = Scratch::new();
    let file = scratch.path("live-backup.db");
    s.db.json(&["backup", "--to", &file]);
    let before = state(&s.db);
    refused(&s.db, &["restore", "--from", &file], "stop keygate");
    assert_eq!(state(&s.db), before);
    let r = s.client().get("/readyz");
    assert_eq!(r.status, 200, "{}", r.body);
}

both_backends!(backup_and_restore_refusals,);
