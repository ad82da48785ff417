//! Upgrades on data made before them, on SQLite and (with
//! KEYGATE_TEST_POSTGRES_URL) PostgreSQL: to sending domains
//! (`2026-12-07-150000_domains`: each workspace's own domains become verified,
//! shared ones pending in each); [`upgraded`] runs any upgrade so.

use super::*;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;

const DOMAINS: &str = "2026-12-07-150000";

/// Runs the migrations before the one whose name starts with `upgrade`.
fn migrate_before<C, B>(c: &mut C, source: EmbeddedMigrations, upgrade: &str)
where
    C: MigrationHarness<B>,
    B: diesel::backend::Backend,
    EmbeddedMigrations: MigrationSource<B>,
{
    for m in c.pending_migrations(source).expect("pending") {
        if m.name().to_string().starts_with(upgrade) {
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

/// Runs `check` on a database migrated up to `upgrade`, given `before`'s
/// rows, then upgraded: SQLite, and PostgreSQL when there is one. The areas'
/// own upgrade tests use it too.
pub(crate) fn upgraded(upgrade: &str, before: &str, check: impl Fn(&mut DbConn)) {
    let dir = std::env::temp_dir().join(format!("keygate-upgrade-{}", new_id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("keygate.db").display().to_string();
    let mut raw = SqliteConnection::establish(&path).expect("sqlite");
    migrate_before(&mut raw, SQLITE_MIGRATIONS, upgrade);
    raw.batch_execute(before).expect("old rows");
    drop(raw);
    let mut conn = connect_single(&format!("sqlite://{path}")).expect("migrated");
    check(&mut conn);
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);

    let Some(db) = super::testkit::TestDb::postgres() else {
        return;
    };
    let mut raw = PgConnection::establish(&db.url).expect("the new database");
    migrate_before(&mut raw, POSTGRES_MIGRATIONS, upgrade);
    raw.batch_execute(before).expect("old rows");
    drop(raw);
    let mut conn = connect_single(&db.url).expect("migrated");
    check(&mut conn);
}

#[test]
fn existing_mailboxes_get_their_domains() {
    upgraded(DOMAINS, BEFORE, |conn| assert_eq!(rows(conn), expected()));
}
