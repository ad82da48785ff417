//! Mailboxes over /v1, and API keys restricted to mailboxes.

use super::*;

// ---------------------------------------------------------------- /v1

fn v1_mailboxes(b: Backend) {
    let f = Fixture::new(b);
    f.db().verified_domain(&f.workspace_id, "example.com");
    let db = f.db();
    let mut http = f.server.client();
    let rw = f.api_key("read_write");
    let ro = f.api_key("read_only");

    let r = http.bearer_post_json("/v1/mailboxes", &rw, r#"{"address":"Ops@Example.com"}"#);
    assert_eq!(r.status, 201, "{}", r.body);
    let m = r.json();
    assert_eq!(members(&m), sorted(&["id", "address", "created_at"]));
    assert_eq!(m["address"], "Ops@Example.com");
    let id = s(&m, "id");

    // Bad input: a clear 400 each, and nothing changes.
    let before = counts(db);
    for (body, code) in [
        (r#"{"address":"ops@EXAMPLE.com"}"#, "address_taken"),
        (r#"{"address":"nope"}"#, "parameter_invalid"),
        (r#"{"address":""}"#, "parameter_invalid"),
        (r#"{"address":7}"#, "parameter_invalid"),
        (r#"{}"#, "parameter_missing"),
        (r#"[]"#, "invalid_body"),
        ("not json", "invalid_json"),
    ] {
        http.bearer_post_json("/v1/mailboxes", &rw, body)
            .assert_v1_error(400, "invalid_request_error", code);
    }
    let auth = format!("Bearer {rw}");
    http.send(
        "POST",
        "/v1/mailboxes",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        "{}",
    )
    .assert_v1_error(400, "invalid_request_error", "invalid_content_type");
    http.bearer_post_json("/v1/mailboxes", &ro, r#"{"address":"x@example.com"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    assert_eq!(counts(db), before);

    let list = http.bearer_get("/v1/mailboxes", &ro);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["data"][0]["id"], id.as_str());
    assert_eq!(list.json()["has_more"], false);
    http.bearer_post_json("/v1/mailboxes", &rw, r#"{"address":"second@example.com"}"#);
    let page = http.bearer_get("/v1/mailboxes?limit=1", &ro).json();
    assert_eq!(
        page["data"][0]["address"], "second@example.com",
        "newest first"
    );
    assert_eq!(page["has_more"], true);
    let one = http.bearer_get(&format!("/v1/mailboxes/{id}"), &ro);
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json(), m);

    // Another workspace's mailbox is as unknown as a made-up id.
    let other_ws = s(&db.json(&["workspace", "create", "--name", "Other"]), "id");
    db.verified_domain(&other_ws, "other.example");
    let theirs = create_mailbox(db, &other_ws, "theirs@other.example");
    let unknown = uuid::Uuid::now_v7().to_string();
    for path in [
        format!("/v1/mailboxes/{theirs}"),
        format!("/v1/mailboxes/{unknown}"),
        "/v1/mailboxes/x".into(),
    ] {
        http.bearer_get(&path, &rw)
            .assert_v1_error(404, "invalid_request_error", "not_found");
        http.send("DELETE", &path, &[("Authorization", &auth)], "")
            .assert_v1_error(404, "invalid_request_error", "not_found");
    }
    assert_eq!(db.count("mailboxes"), 3);

    // An OAuth token with the mailbox scopes, whose consent page says them in words.
    let (_, challenge) = pkce();
    let mut owner = f.owner();
    let consent = owner.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, "mailboxes:read mailboxes:write", &challenge)
    ));
    assert!(
        consent.body.contains("See your mailboxes"),
        "{}",
        consent.body
    );
    assert!(consent.body.contains("Create and delete mailboxes"));
    let (token, _) = f.tokens("mailboxes:read");
    assert_eq!(http.bearer_get("/v1/mailboxes", &token).status, 200);
    http.bearer_post_json("/v1/mailboxes", &token, r#"{"address":"t@example.com"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    let meta = http.get("/.well-known/oauth-authorization-server").json();
    for scope in ["mailboxes:read", "mailboxes:write"] {
        assert!(meta["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == scope));
    }

    // Delete: 204, its keys go, and it is gone.
    create_auth_key(db, &id, "CRM");
    let d = http.send(
        "DELETE",
        &format!("/v1/mailboxes/{id}"),
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(d.status, 204, "{}", d.body);
    assert!(d.body.is_empty());
    http.bearer_get(&format!("/v1/mailboxes/{id}"), &rw)
        .assert_v1_error(404, "invalid_request_error", "not_found");
    assert_eq!(db.count("mailbox_auth_keys"), 0);
    let log = db.json_lines(&["audit", "list", "--workspace", &f.workspace_id]);
    assert!(log.iter().any(|e| e["action"] == "mailbox.deleted"
        && e["subject"] == id.as_str()
        && s(e, "actor").starts_with("api_key:")
        && e["client_address"] == "127.0.0.1"));
}

fn v1_mailbox_restricted_keys(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = &f.workspace_id;
    db.verified_domain(ws, "example.com");
    let mut http = f.server.client();
    let mine = create_mailbox(db, ws, "mine@example.com");
    let sibling = create_mailbox(db, ws, "sibling@example.com");

    let workspace_key = db.json(&[
        "apikey",
        "create",
        "--workspace",
        ws,
        "--name",
        "w",
        "--access",
        "read_write",
    ]);
    assert_eq!(workspace_key["mailbox_id"], Value::Null);
    let v = db.json(&[
        "apikey",
        "create",
        "--workspace",
        ws,
        "--name",
        "only-mine",
        "--access",
        "read_write",
        "--mailbox",
        &mine,
    ]);
    assert_eq!(v["mailbox_id"], mine.as_str());
    let key = s(&v, "key");
    let listed = db
        .json_lines(&["apikey", "list", "--workspace", ws])
        .into_iter()
        .find(|k| k["name"] == "only-mine")
        .expect("listed");
    assert_eq!(listed["mailbox_id"], mine.as_str());

    // It sees and reads only its mailbox.
    let list = http.bearer_get("/v1/mailboxes", &key);
    assert_eq!(list.status, 200, "{}", list.body);
    let ids: Vec<String> = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| s(m, "id"))
        .collect();
    assert_eq!(ids, std::slice::from_ref(&mine));
    assert_eq!(
        http.bearer_get(&format!("/v1/mailboxes/{mine}"), &key)
            .status,
        200
    );
    http.bearer_get(&format!("/v1/mailboxes/{sibling}"), &key)
        .assert_v1_error(404, "invalid_request_error", "not_found");

    // It never creates or deletes mailboxes, and nothing else is in its scope.
    let auth = format!("Bearer {key}");
    http.bearer_post_json("/v1/mailboxes", &key, r#"{"address":"new@example.com"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    http.send(
        "DELETE",
        &format!("/v1/mailboxes/{mine}"),
        &[("Authorization", &auth)],
        "",
    )
    .assert_v1_error(403, "permission_error", "insufficient_scope");
    for path in ["/v1/workspace", "/v1/tags", "/v1/forms"] {
        http.bearer_get(path, &key)
            .assert_v1_error(403, "permission_error", "insufficient_scope");
    }
    http.bearer_post_json("/v1/tags", &key, r#"{"name":"t"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    assert_eq!(db.count("mailboxes"), 2);

    // Deleting its mailbox revokes it: at once on this node, and for good.
    db.json(&["mailbox", "delete", &mine]);
    let r = http.bearer_get("/v1/mailboxes", &key);
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    let listed = db
        .json_lines(&["apikey", "list", "--workspace", ws])
        .into_iter()
        .find(|k| k["name"] == "only-mine")
        .expect("listed");
    assert_eq!(listed["status"], "revoked");
    let w = s(&workspace_key, "key");
    assert_eq!(
        http.bearer_get("/v1/workspace", &w).status,
        200,
        "a workspace key is untouched"
    );
    let log = db.json_lines(&["audit", "list", "--workspace", ws]);
    assert!(log
        .iter()
        .any(|e| e["action"] == "api_key.revoked" && e["subject"] == listed["id"]));
}

both_backends!(v1_mailboxes, v1_mailbox_restricted_keys,);
