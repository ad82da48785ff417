//! The admin API's refusals: the token, bad bodies and unknown things, each
//! a clear error in the `/v1` envelope that changes nothing.

use crate::support::*;
use serde_json::json;

fn admin_tokens_are_shown_once_and_refused_once_revoked(b: Backend) {
    let server = Server::start(b);
    let made = server
        .db
        .json(&["admin-token", "create", "--name", "backend"]);
    let token = s(&made, "token");
    assert!(token.starts_with("kga_"), "{token}");
    assert!(
        server
            .db
            .text(&format!(
                "SELECT token_hash AS v FROM admin_tokens WHERE token_hash = '{token}'"
            ))
            .is_none(),
        "only a hash is stored"
    );
    let mut admin = Admin::with_token(&server, token.clone());
    assert_eq!(admin.get("/workspaces").status, 200);
    let listed = server.db.json_lines(&["admin-token", "list"]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "backend");
    assert!(listed[0].get("token").is_none() && listed[0]["last_used_at"].is_string());

    // Another node refuses the revoked token at its next request.
    let other = Server::spawn(TestDb::reuse(&server.db), free_port(), &[]);
    let mut elsewhere = Admin::with_token(&other, token.clone());
    assert_eq!(elsewhere.get("/workspaces").status, 200);
    let revoked = server.db.json(&["admin-token", "revoke", &s(&made, "id")]);
    assert_eq!(revoked["revoked"], true);
    assert_admin_error(&elsewhere.get("/workspaces"), 401, "invalid_admin_token");
    assert_admin_error(&admin.get("/workspaces"), 401, "invalid_admin_token");
    let r = admin.get("/workspaces");
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|w| w.starts_with("Bearer")));
    server
        .db
        .cli(&["admin-token", "revoke", &s(&made, "id")])
        .assert_refused("no admin token");

    // No token, a malformed one, an API key: refused alike.
    let mut anon = server.client();
    assert_admin_error(
        &anon.get("/admin/v1/workspaces"),
        401,
        "invalid_admin_token",
    );
    let mut wrong = Admin::with_token(&server, "kga_nope".into());
    assert_admin_error(&wrong.get("/workspaces"), 401, "invalid_admin_token");
    assert_admin_error(
        &wrong.post("/workspaces", &json!({"name": "x"})),
        401,
        "invalid_admin_token",
    );
    assert_eq!(server.db.count("workspaces"), 0);
}

fn bad_input_is_a_clear_400_and_changes_nothing(b: Backend) {
    let server = Server::start(b);
    let mut admin = Admin::new(&server);
    let bad = [
        ("/workspaces", r#"{"name": "A", "colour": "red"}"#, "colour"),
        ("/workspaces", r#"{"name": 7}"#, "string"),
        ("/workspaces", r#"{}"#, "name"),
        ("/workspaces", r#"{"name": ""}"#, "empty"),
        ("/workspaces", r#"{"name": "A", "plan": "gold"}"#, "plan"),
        ("/workspaces", r#"[1]"#, "object"),
        ("/workspaces", r#"{"name": "#, "JSON"),
        ("/people", r#"{"email": "not-an-address"}"#, "email"),
        (
            "/people",
            r#"{"email": "a@example.com", "password": "short"}"#,
            "password",
        ),
        (
            "/people",
            r#"{"email": "a@example.com", "admin": true}"#,
            "admin",
        ),
        (
            "/webhooks",
            r#"{"url": "http://example.com/hook"}"#,
            "https",
        ),
        (
            "/webhooks",
            r#"{"url": "https://10.0.0.1/hook"}"#,
            "special-use",
        ),
        (
            "/webhooks",
            r#"{"url": "https://127.0.0.1/hook"}"#,
            "special-use",
        ),
        (
            "/webhooks",
            r#"{"url": "https://example.com/", "events": ["key.made"]}"#,
            "event type",
        ),
    ];
    for (path, body, says) in bad {
        let r = admin.send_raw("POST", path, body, &[]);
        assert_admin_error(&r, 400, "invalid_request");
        let message = r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(message.contains(says), "{path} {body}: {message}");
    }
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024));
    assert_admin_error(
        &admin.send_raw("POST", "/workspaces", &big, &[]),
        400,
        "invalid_request",
    );
    let r = admin.http.send(
        "POST",
        "/admin/v1/workspaces",
        &[
            ("Authorization", &format!("Bearer {}", admin.token)),
            ("Content-Type", "text/plain"),
        ],
        r#"{"name": "A"}"#,
    );
    assert_admin_error(&r, 400, "invalid_request");
    assert_admin_error(
        &admin.send_raw(
            "POST",
            "/workspaces",
            r#"{"name": "A"}"#,
            &[("Idempotency-Key", "")],
        ),
        400,
        "invalid_request",
    );
    for table in [
        "workspaces",
        "users",
        "webhook_endpoints",
        "idempotency_keys",
    ] {
        assert_eq!(server.db.count(table), 0, "{table}");
    }

    assert_admin_error(&admin.get("/workspaces/nope"), 404, "not_found");
    assert_admin_error(&admin.get("/people/nope"), 404, "not_found");
    assert_admin_error(&admin.get("/nothing-here"), 404, "not_found");
    assert_admin_error(&admin.delete("/webhooks/nope"), 404, "not_found");
    assert_admin_error(
        &admin.send("PATCH", "/workspaces/nope", &json!({"name": "B"}), &[]),
        404,
        "not_found",
    );
    let ws = s(&admin.workspace("Real"), "id");
    let patch = admin.send(
        "PATCH",
        &format!("/workspaces/{ws}"),
        &json!({"name": "B", "owner": 1}),
        &[],
    );
    assert_admin_error(&patch, 400, "invalid_request");
    assert_eq!(
        admin.get(&format!("/workspaces/{ws}")).json()["name"],
        "Real"
    );
    let renamed = admin.send(
        "PATCH",
        &format!("/workspaces/{ws}"),
        &json!({"name": "Renamed", "plan": "free"}),
        &[],
    );
    assert_eq!(
        (
            renamed.json()["name"].as_str(),
            renamed.json()["plan"].as_str()
        ),
        (Some("Renamed"), Some("free"))
    );
}

both_backends!(
    admin_tokens_are_shown_once_and_refused_once_revoked,
    bad_input_is_a_clear_400_and_changes_nothing,
);
