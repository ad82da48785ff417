//! The client cache within the revocation bounds: a node that missed a
//! client's revocation event (pruned before it read it) forgets its cached
//! clients with its credentials, and a cached client is read again within the
//! credentials' maximum age, events or not.

use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// The value of a read-only input by id (the developer-app secret page).
fn input_value(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[start..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')? + v;
    Some(unescape(&rest[v..end]))
}

/// The status of a client-authenticated introspection at `server` (200 once
/// the client authenticated, 401 `invalid_client` otherwise).
fn client_auth_status(server: &Server, id: &str, secret: &str) -> u16 {
    server
        .client()
        .post_form_with(
            "/oauth/introspect",
            &[("token", "not-a-token")],
            &[("Authorization", &basic(id, secret))],
        )
        .status
}

fn signal(server: &Server, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(server.pid().to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig}");
}

fn newest_event(db: &TestDb) -> i64 {
    db.text("SELECT CAST(MAX(seq) AS TEXT) AS v FROM revocation_events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn oldest_event(db: &TestDb) -> i64 {
    db.text("SELECT CAST(MIN(seq) AS TEXT) AS v FROM revocation_events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Node B misses the event of a secret rotated on node A (B is stopped while
/// A prunes it); once B reads the feed again it finds the gap and must refuse
/// the old secret and accept the new one, though its cached client would
/// otherwise be served for its whole maximum age.
fn a_gap_drops_the_client_cache(b: Backend) {
    let fast_pruning = [
        ("KEYGATE_REVOCATION_RETENTION_SECS", "1"),
        ("KEYGATE_HOUSEKEEPING_SECS", "1"),
    ];
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &fast_pruning));
    let node_b = Server::spawn(
        TestDb::reuse(f.db()),
        free_port(),
        &[
            ("KEYGATE_ISSUER", &f.server.base),
            ("KEYGATE_CREDENTIAL_CACHE_SECS", "600"),
        ],
    );

    // A developer app, registered and later rotated on node A.
    let email = format!("dev-{}@example.com", &unique()[..8]);
    f.db().create_user(&email);
    let mut dev = f.signed_in(&email);
    let page = dev.get("/settings/developer-apps");
    let csrf = hidden(&page.body, "csrf_token").expect("csrf");
    let r = dev.post_form(
        "/settings/developer-apps",
        &[
            ("csrf_token", &csrf),
            ("name", "Gap Tool"),
            ("redirect_uris", REDIRECT),
            ("client_type", "confidential"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = input_value(&r.body, "client-id").expect("client id");
    let old = input_value(&r.body, "client-secret").expect("secret");
    // Node B caches the client.
    assert_eq!(client_auth_status(&node_b, &id, &old), 200);

    signal(&node_b, "STOP");
    let r = dev.post_form(
        &format!("/settings/developer-apps/{id}/rotate"),
        &[("csrf_token", &csrf)],
    );
    if r.status != 200 {
        signal(&node_b, "CONT");
        panic!("rotation failed: {} {}", r.status, r.body);
    }
    let new = input_value(&r.body, "client-secret").expect("new secret");
    let rotation = newest_event(f.db());
    std::thread::sleep(Duration::from_millis(1100));
    // A newer event, so that the rotation's is not the newest (the newest is
    // always kept) and is pruned once past the retention.
    let key = f
        .db()
        .create_api_key(&f.workspace_id, "filler", "read_only");
    f.db()
        .json(&["apikey", "revoke", key["id"].as_str().expect("key id")]);
    let pruned = eventually(Duration::from_secs(10), || oldest_event(f.db()) > rotation);
    signal(&node_b, "CONT");
    assert!(pruned, "node A did not prune the rotation's event");

    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || {
            client_auth_status(&node_b, &id, &old) == 401
                && client_auth_status(&node_b, &id, &new) == 200
        }),
        "node B still serves the client cached before the gap: old secret {}, new secret {}\n{}",
        client_auth_status(&node_b, &id, &old),
        client_auth_status(&node_b, &id, &new),
        node_b.logs()
    );
    // (The log is read from the process's stderr by a thread of ours.)
    assert!(
        eventually(Duration::from_secs(2), || node_b
            .logs()
            .contains("events this node never read were pruned")),
        "{}",
        node_b.logs()
    );
    eprintln!(
        "gap: node B refuses the rotated-away secret {} ms after it resumed",
        t0.elapsed().as_millis()
    );
}

/// A cached client is read from the database again within the credentials'
/// maximum age, even when no event says it changed (here a secret changed
/// straight in the database, without its event).
fn cached_clients_have_a_maximum_age(b: Backend) {
    let f = Fixture::with_server(Server::start_with(
        TestDb::new(b),
        &[("KEYGATE_CREDENTIAL_CACHE_SECS", "1")],
    ));
    let node = &f.server;
    assert_eq!(
        client_auth_status(node, &f.client_id, &f.client_secret),
        200
    );
    let new = format!("kgs_{}", unique());
    f.db().execute(&format!(
        "UPDATE clients SET secret_hash = '{}' WHERE id = '{}'",
        keygate::crypto::sha256_hex(&new),
        f.client_id
    ));
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || {
            client_auth_status(node, &f.client_id, &f.client_secret) == 401
                && client_auth_status(node, &f.client_id, &new) == 200
        }),
        "a cached client outlived its maximum age"
    );
    eprintln!(
        "secret changed without an event: old refused after {} ms (maximum age 1000 ms)",
        t0.elapsed().as_millis()
    );
}

both_backends!(
    a_gap_drops_the_client_cache,
    cached_clients_have_a_maximum_age
);
