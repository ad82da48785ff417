//! The upgrade to sending domains (`2026-12-07-150000_domains`) on data made
//! before it, on SQLite and (with KEYGATE_TEST_POSTGRES_URL) PostgreSQL:
//! each workspace's own domains become verified, shared ones pending in each.

use super::*;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;

const DOMAINS: &str = "2026-12-07-150000";

/// Runs the migrations before the domains' one.
fn migrate_before<C, B>(c: &mut C, source: EmbeddedMigrations)
where
    C: MigrationHarness<B>,
    B: diesel::backend::Backend,
    EmbeddedMigrations: MigrationSource<B>,
{
    for m in c.pending_migrations(source).expect("pending") {
        if m.name().to_string().starts_with(DOMAINS) {
            break;
        }
        c.run_migration(&*m).expect("an older migration");
    }
}

const BEFORE: &str = "
    INSERT INTO workspaces (id, name, plan, created_at) VALUES ('w1', 'One', 'pro', 1), ('w2', 'Two', 'pro', 1);
    INSERT INTO mailboxes (id, workspace_id, address, address_lower, created_at, created_by) VALUES
      ('m1', 'w1', 'A@Own.example', 'a@own.example', 1, 'cli'),
      ('m2', 'w1', 'b@own.example', 'b@own.example', 1, 'cli'),
      ('m3', 'w1', 'c@shared.example', 'c@shared.example', 1, 'cli'),
      ('m4', 'w2', 'd@shared.example', 'd@shared.example', 1, 'cli'),
      ('m5', 'w2', 'e@two.example', 'e@two.example', 1, 'cli');";

/// (workspace, domain, status, by_operator) of every row, sorted.
fn rows(conn: &mut DbConn) -> Vec<(String, String, String, bool)> {
    use crate::db::schema::sending_domains as d;
    d::table
        .select((d::workspace_id, d::domain, d::status, d::by_operator))
        .order((d::workspace_id, d::domain))
        .load(conn)
        .expect("rows")
}

fn expected() -> Vec<(String, String, String, bool)> {
    [
        ("w1", "own.example", "verified", true),
        ("w1", "shared.example", "pending", false),
        ("w2", "shared.example", "pending", false),
        ("w2", "two.example", "verified", true),
    ]
    .iter()
    .map(|(w, d, s, o)| (w.to_string(), d.to_string(), s.to_string(), *o))
    .collect()
}

#[test]
fn existing_mailboxes_get_their_domains_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("keygate-upgrade-{}", new_id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("keygate.db").display().to_string();
    let mut raw = SqliteConnection::establish(&path).expect("sqlite");
    migrate_before(&mut raw, SQLITE_MIGRATIONS);
    raw.batch_execute(BEFORE).expect("old rows");
    drop(raw);
    let mut conn = connect_single(&format!("sqlite://{path}")).expect("migrated");
    let found = rows(&mut conn);
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found, expected());
}

#[test]
fn existing_mailboxes_get_their_domains_on_postgres() {
    let Ok(admin_url) = std::env::var("KEYGATE_TEST_POSTGRES_URL") else {
        eprintln!("KEYGATE_TEST_POSTGRES_URL is not set: PostgreSQL variant not run");
        return;
    };
    let name = format!("keygate_upgrade_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&admin_url).expect("postgres");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let mut url = url::Url::parse(&admin_url).expect("url");
    url.set_path(&name);
    let mut raw = PgConnection::establish(url.as_str()).expect("the new database");
    migrate_before(&mut raw, POSTGRES_MIGRATIONS);
    raw.batch_execute(BEFORE).expect("old rows");
    drop(raw);
    let mut conn = connect_single(url.as_str()).expect("migrated");
    let found = rows(&mut conn);
    drop(conn);
    let _ = admin.batch_execute(&format!("DROP DATABASE {name}"));
    assert_eq!(found, expected());
}
