//! Revocation takes effect at once: before the CLI returns, and on another node
//! within a second.

use super::*;

fn v1_status(server: &Server, token: &str) -> u16 {
    server.v1_status(token)
}

/// A second keygate process on the fixture's database, with the same issuer.
fn second_node(f: &Fixture) -> Server {
    crate::support::second_node(f, &[])
}

// ---------------------------------------------------------------------------
// Revocation across processes

fn cli_revoke_takes_effect_before_it_returns(b: Backend) {
    let f = Fixture::new(b);
    let (a, r, id) = tokens_with_id(&f, SCOPE);
    let (other, _, other_id) = tokens_with_id(&f, SCOPE);
    for _ in 0..3 {
        assert_live(&f.server, &f, &a);
    }
    assert_eq!(f.introspect(&a)["active"], true);

    let out = f.db().json(&["apps", "revoke", &id]);
    assert_eq!(out, json!({"id": id, "status": "revoked"}));
    // The very next calls, with no pause.
    assert_dead(&f.server, &a);
    assert_eq!(f.introspect(&a), inactive());
    assert_eq!(f.introspect(&r), inactive());
    f.refresh(&r).assert_oauth_error(400, "invalid_grant");

    assert_live(&f.server, &f, &other);
    assert_eq!(status_of(&f, &id), "revoked");
    assert_eq!(status_of(&f, &other_id), "active");
    // Revoking again is harmless.
    let out = f.db().json(&["apps", "revoke", &id]);
    assert_eq!(out["status"], "revoked");
}

fn revocation_reaches_another_node_within_a_second(b: Backend) {
    let f = Fixture::new(b);
    let node_b = second_node(&f);
    let node_a = &f.server;
    let (a1, _) = f.tokens(SCOPE);
    let (a2, r2) = f.tokens(SCOPE);
    let (a3, _, id3) = tokens_with_id(&f, SCOPE);
    let (a4, _, id4) = tokens_with_id(&f, SCOPE);
    let (keep, _) = f.tokens(SCOPE);
    // Node B serves each token first, so that each is in its memory.
    for t in [&a1, &a2, &a3, &a4, &keep] {
        assert_live(&node_b, &f, t);
        assert_eq!(introspect_at(&node_b, &f, t, None)["active"], true);
    }
    let gone_from_b = |t: &str| {
        eventually(Duration::from_secs(1), || {
            v1_status(&node_b, t) == 401 && introspect_at(&node_b, &f, t, None) == inactive()
        })
    };

    // An access token revoked at node A.
    revoke_ok(&f, &a1, None);
    assert_dead(node_a, &a1);
    assert!(
        gone_from_b(&a1),
        "node B still accepts a revoked access token"
    );
    assert_dead(&node_b, &a1);

    // A refresh token revoked at node A ends its access token on node B.
    revoke_ok(&f, &r2, None);
    assert_dead(node_a, &a2);
    assert!(
        gone_from_b(&a2),
        "node B still accepts an access token whose refresh token was revoked"
    );
    let at_b = post(
        &node_b,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
        Some(&f.basic()),
    );
    at_b.assert_oauth_error(400, "invalid_grant");

    // An authorization revoked on node A's settings page.
    let mut owner = f.owner();
    settings_revoke(&f, &mut owner, &id3);
    assert_dead(node_a, &a3);
    assert!(
        gone_from_b(&a3),
        "node B still accepts a token of an authorization revoked in the settings"
    );

    // The CLI waits until every node has it: no pause needed.
    f.db().json(&["apps", "revoke", &id4]);
    assert_dead(&node_b, &a4);
    assert_dead(node_a, &a4);

    // The untouched token works on both nodes.
    assert_live(node_a, &f, &keep);
    assert_live(&node_b, &f, &keep);
    assert_eq!(introspect_at(&node_b, &f, &keep, None)["active"], true);
}

both_backends!(
    cli_revoke_takes_effect_before_it_returns,
    revocation_reaches_another_node_within_a_second,
);
