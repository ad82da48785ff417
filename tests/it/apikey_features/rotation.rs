//! Rotation with a grace period, seen on two nodes.

use super::*;

fn unix(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("RFC 3339")
        .timestamp()
}

fn now_secs_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

// ---------------------------------------------------------------- rotation with grace

fn rotation_with_a_grace_period_on_two_nodes(b: Backend) {
    let env = [("KEYGATE_HOUSEKEEPING_SECS", "1")];
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &env));
    let node_b = second_node(&f, &env);
    let ws = &f.workspace_id;
    let db = f.db();
    let created = create(db, ws, "graceful", &["--access", "read_only"]);
    let (id, old) = (s(&created, "id"), s(&created, "key"));
    // Both nodes hold the old secret in memory.
    assert_eq!(f.server.v1_status(&old), 200);
    assert_eq!(node_b.v1_status(&old), 200);

    let rotated = db.json(&["apikey", "rotate", &id, "--grace", "4s"]);
    let new = s(&rotated, "key");
    let end = unix(&s(&rotated, "previous_secret_expires_at"));
    assert_eq!(
        listed(db, ws, &id)["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );
    // Before the end: both secrets work on both nodes (twice: miss, then cache).
    for _ in 0..2 {
        for node in [&f.server, &node_b] {
            assert!((now_secs_f64() as i64) < end, "the test ran too slowly");
            assert_eq!(node.v1_status(&old), 200);
            assert_eq!(node.v1_status(&new), 200);
        }
    }
    // At the end it stops, on every node, without anyone telling them.
    let wait = end as f64 - now_secs_f64();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    assert!(
        eventually(Duration::from_millis(500), || f.server.v1_status(&old)
            == 401
            && node_b.v1_status(&old) == 401),
        "the old secret outlived its grace period"
    );
    assert_eq!(f.server.v1_status(&new), 200);
    assert_eq!(node_b.v1_status(&new), 200);
    // Housekeeping forgets the replaced secret.
    assert!(eventually(Duration::from_secs(5), || db
        .text(&format!(
            "SELECT previous_secret_hash AS v FROM api_keys WHERE id = '{id}'"
        ))
        .is_none()));
    assert!(listed(db, ws, &id)["previous_secret_expires_at"].is_null());

    // A rotation without --grace ends a grace period in progress at once.
    let second = db.json(&["apikey", "rotate", &id, "--grace", "1h"]);
    let third = db.json(&["apikey", "rotate", &id]);
    assert!(third["previous_secret_expires_at"].is_null());
    for node in [&f.server, &node_b] {
        assert_eq!(node.v1_status(&new), 401);
        assert_eq!(node.v1_status(&s(&second, "key")), 401);
        assert_eq!(node.v1_status(&s(&third, "key")), 200);
    }
    // The security log says until when the old secret worked.
    assert!(audit(db, ws)
        .iter()
        .any(|e| e["action"] == "api_key.rotated"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("the old secret works until"))));
}

both_backends!(rotation_with_a_grace_period_on_two_nodes,);
