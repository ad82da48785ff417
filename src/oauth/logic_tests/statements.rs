//! What a grant costs in statements (counted, never timed): on PostgreSQL
//! each one is a round trip, so the hot path of a refresh is kept to the
//! lookup and one short transaction (docs/performance.md).

use super::Node;
use diesel::connection::{Connection, InstrumentationEvent};
use std::sync::{Arc, Mutex};

/// The statements `f` runs on `conn`, in order (their SQL, without binds).
pub(super) fn run(
    conn: &mut crate::db::DbConn,
    f: impl FnOnce(&mut crate::db::DbConn),
) -> Vec<String> {
    prepared(conn, f).0
}

fn statements(conn: &mut crate::db::DbConn, f: impl FnOnce(&mut crate::db::DbConn)) -> Vec<String> {
    prepared(conn, f).0
}

#[test]
fn a_refresh_is_a_lookup_and_one_short_transaction() {
    let n = Node::new();
    let run = refresh_statements(&n);
    let writes: Vec<&String> = run
        .iter()
        .filter(|s| s.starts_with("UPDATE") || s.starts_with("INSERT"))
        .collect();
    // The authorization (active, and its approver still manages the
    // workspace: one UPDATE), the refresh token spent, the two new rows.
    assert_eq!(writes.len(), 4, "{run:#?}");
    // One read, the lookup: the membership check rides in the
    // authorization's UPDATE, never a SELECT of its own.
    let reads = run.iter().filter(|s| s.starts_with("SELECT")).count();
    assert_eq!(reads, 1, "{run:#?}");
    assert!(run.len() <= 7, "{run:#?}");
}

#[test]
fn on_postgresql_a_refresh_is_two_round_trips() {
    let Some(n) = Node::postgres() else { return };
    let run = refresh_statements(&n);
    // The lookup, then the write as one statement: no BEGIN or COMMIT.
    assert_eq!(run.len(), 2, "{run:#?}");
    assert!(run[0].starts_with("SELECT"), "{run:#?}");
    let write = &run[1];
    assert!(write.starts_with("WITH a AS (UPDATE"), "{write}");
    for part in [
        "UPDATE refresh_tokens",
        "INSERT INTO refresh_tokens",
        "INSERT INTO access_tokens",
    ] {
        assert!(write.contains(part), "{part} missing from {write}");
    }
}

/// The statements of one refresh on a connection of `n`'s pool; checks that
/// the rotated token works, once.
fn refresh_statements(n: &Node) -> Vec<String> {
    let (_, refresh, _) = n.tokens(&n.owner);
    let mut conn = n.conn();
    let mut next = None;
    let run = statements(&mut conn, |conn| {
        next = Some(n.refresh_on(conn, &refresh).expect("the refresh"));
    });
    let rotated = next
        .and_then(|t| t.refresh_token)
        .expect("a new refresh token");
    assert!(n.refresh(&rotated).is_ok());
    assert!(n.refresh(&rotated).is_err(), "spent once");
    assert!(n.refresh(&refresh).is_err(), "the first one too");
    run
}

/// The statements `f` runs, and those it prepared and kept for the next run.
fn prepared(
    conn: &mut crate::db::DbConn,
    f: impl FnOnce(&mut crate::db::DbConn),
) -> (Vec<String>, Vec<String>) {
    let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let log = seen.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        let mut log = log.lock().expect("log");
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                // Its SQL, without the binds diesel appends.
                let text = query.to_string();
                log.0
                    .push(text.split(" -- binds: ").next().unwrap_or("").to_string())
            }
            InstrumentationEvent::CacheQuery { sql, .. } => log.1.push(sql.to_string()),
            _ => {}
        }
    });
    f(conn);
    conn.set_instrumentation(|_: InstrumentationEvent<'_>| {});
    let out = seen.lock().expect("log").clone();
    out
}

on_both_engines!(
    a_refresh_prepares_its_statements_once_per_connection,
    on_postgresql_a_refresh_prepares_its_statements_once_per_connection,
    prepares_once
);

fn prepares_once(n: Node) {
    let (_, refresh, _) = n.tokens(&n.owner);
    // A connection that has run nothing yet.
    let mut conn = n.fresh_conn();
    let mut next = None;
    let (run, kept) = prepared(&mut conn, |conn| {
        next = n
            .refresh_on(conn, &refresh)
            .expect("the refresh")
            .refresh_token;
    });
    // Every statement of the first refresh was kept prepared (diesel keeps
    // no UPDATE and, on SQLite, no INSERT of its own accord).
    let statements: Vec<&String> = run
        .iter()
        .filter(|s| {
            ["SELECT", "UPDATE", "INSERT", "WITH"]
                .iter()
                .any(|k| s.starts_with(k))
        })
        .collect();
    assert!(statements.len() >= 2, "{run:#?}");
    for s in &statements {
        assert!(kept.contains(s), "not kept prepared: {s}\n{kept:#?}");
    }
    // The next refresh on the connection prepares nothing new.
    let next = next.expect("a rotated refresh token");
    let (again, kept) = prepared(&mut conn, |conn| {
        n.refresh_on(conn, &next).expect("the second refresh");
    });
    assert!(again.len() >= statements.len(), "{again:#?}");
    assert!(kept.is_empty(), "prepared again: {kept:#?}");
}
