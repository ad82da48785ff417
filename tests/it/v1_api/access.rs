//! /v1 access: scopes decide what a credential may do, workspaces are isolated,
//! and token use is counted for its app.

use super::*;

/// An access token for a workspace of the fixture's owner (Fixture::approve
/// always picks the fixture's workspace).
fn token_for(f: &Fixture, workspace_id: &str, scope: &str) -> String {
    let (verifier, challenge) = pkce();
    let mut http = f.owner();
    let page = http.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, scope, &challenge)
    ));
    let r = approve_consent(&mut http, &page, workspace_id);
    let params = r.location_params();
    let code = param(&params, "code").expect("code").to_string();
    let t = f.exchange(&code, &verifier);
    assert_eq!(t.status, 200, "token: {}", t.body);
    let v = t.json();
    assert_eq!(v["workspace_id"], workspace_id);
    s(&v, "access_token")
}

/// A second workspace with the fixture's owner as its owner.
fn second_workspace(f: &Fixture) -> String {
    let ws = f.db().create_workspace("Globex");
    f.db().add_member(&ws, &f.owner_id, "owner");
    ws
}

fn scopes_decide_what_a_credential_may_do(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    let forbidden = |r: Resp, what: &str| {
        assert_eq!(r.status, 403, "{what}: {}", r.body);
        r.assert_v1_error(403, "permission_error", "insufficient_scope");
    };

    // read_only: every *:read scope, nothing else.
    let ro = f.api_key("read_only");
    for path in ["/v1/workspace", "/v1/tags", "/v1/forms"] {
        assert_eq!(http.bearer_get(path, &ro).status, 200, "{path}");
    }
    for path in ["/v1/tags", "/v1/forms"] {
        forbidden(
            http.bearer_post_json(path, &ro, r#"{"name":"ro"}"#),
            "read_only POST",
        );
        // Even a bad body is refused for the scope, not read.
        forbidden(http.bearer_post_json(path, &ro, "not json"), "bad body");
    }
    // read_write: all scopes.
    let rw = f.api_key("read_write");
    for path in ["/v1/workspace", "/v1/tags", "/v1/forms"] {
        assert_eq!(http.bearer_get(path, &rw).status, 200, "{path}");
    }
    create(&mut http, "/v1/tags", &rw, "rw-tag");
    create(&mut http, "/v1/forms", &rw, "rw-form");

    // OAuth tokens: exactly the scopes granted.
    let (tags_read, _) = f.tokens("tags:read");
    assert_eq!(http.bearer_get("/v1/tags", &tags_read).status, 200);
    forbidden(
        http.bearer_post_json("/v1/tags", &tags_read, r#"{"name":"t"}"#),
        "tags:read POST tags",
    );
    forbidden(http.bearer_get("/v1/forms", &tags_read), "tags:read forms");
    forbidden(
        http.bearer_get("/v1/workspace", &tags_read),
        "tags:read workspace",
    );
    let (forms_write, _) = f.tokens("forms:write");
    create(&mut http, "/v1/forms", &forms_write, "by-app");
    forbidden(
        http.bearer_get("/v1/forms", &forms_write),
        "forms:write GET forms",
    );
    forbidden(
        http.bearer_post_json("/v1/tags", &forms_write, r#"{"name":"t"}"#),
        "forms:write POST tags",
    );
    let (default_scope, _) = f.tokens("workspace:read");
    assert_eq!(http.bearer_get("/v1/workspace", &default_scope).status, 200);
    for path in ["/v1/tags", "/v1/forms"] {
        forbidden(http.bearer_get(path, &default_scope), path);
        forbidden(
            http.bearer_post_json(path, &default_scope, r#"{"name":"t"}"#),
            path,
        );
    }
    assert_eq!(f.db().count("tags"), 1);
    assert_eq!(f.db().count("forms"), 2);
}

fn workspaces_are_isolated(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws1 = f.workspace_id.clone();
    let ws2 = second_workspace(&f);
    let k1 = f.api_key("read_write");
    let k2 = s(&db.create_api_key(&ws2, "globex-key", "read_write"), "key");
    let t1 = token_for(&f, &ws1, ALL_SCOPES);
    let t2 = token_for(&f, &ws2, ALL_SCOPES);
    let mut http = f.server.client();

    let creds = [
        ("k1", k1.as_str(), ws1.as_str(), "Acme"),
        ("t1", t1.as_str(), ws1.as_str(), "Acme"),
        ("k2", k2.as_str(), ws2.as_str(), "Globex"),
        ("t2", t2.as_str(), ws2.as_str(), "Globex"),
    ];
    for (label, cred, ws, name) in creds {
        let w = list(&mut http, "/v1/workspace", cred);
        assert_eq!(w, json!({"id": ws, "name": name}), "{label}");
    }
    // Data created through each credential, and one name in both workspaces.
    let mut ids = std::collections::HashMap::new();
    for path in ["/v1/tags", "/v1/forms"] {
        for (label, cred, _, _) in creds {
            let o = create(&mut http, path, cred, &format!("{label}-item"));
            ids.insert((path, label), s(&o, "id"));
        }
        let a = create(&mut http, path, &k1, "shared");
        let b2 = create(&mut http, path, &t2, "shared");
        assert_ne!(a["id"], b2["id"]);
        // A body naming the other workspace changes nothing.
        let r = http.bearer_post_json(
            path,
            &k1,
            &json!({"name": "sneaky", "workspace_id": ws2}).to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for path in ["/v1/tags", "/v1/forms"] {
        let expected1 = vec!["sneaky", "shared", "t1-item", "k1-item"];
        let expected2 = vec!["shared", "t2-item", "k2-item"];
        for (label, cred, ws, _) in creds {
            let l = list(&mut http, path, cred);
            let got = names(&l);
            let want = if ws == ws1 { &expected1 } else { &expected2 };
            assert_eq!(&got, want, "{label} {path}");
            // A query naming the other workspace changes nothing either.
            let other = if ws == ws1 { &ws2 } else { &ws1 };
            let q = list(
                &mut http,
                &format!("{path}?workspace_id={other}&workspace={other}"),
                cred,
            );
            assert_eq!(names(&q), got, "{label} {path} ?workspace_id");
            // A cursor from the other workspace shows nothing of it.
            let foreign = if ws == ws1 {
                &ids[&(path, "k2")]
            } else {
                &ids[&(path, "k1")]
            };
            let r = http.bearer_get(&format!("{path}?starting_after={foreign}"), cred);
            if r.status == 200 {
                for n in names(&r.json()) {
                    assert!(want.contains(&n.as_str()), "{label}: {n} leaked");
                }
            } else {
                assert_envelope(&r, r.status);
                assert!(r.status == 400 || r.status == 404, "{}", r.status);
            }
        }
    }
    for (ws, n) in [(&ws1, 4), (&ws2, 3)] {
        assert_eq!(db.count(&format!("tags WHERE workspace_id = '{ws}'")), n);
        assert_eq!(db.count(&format!("forms WHERE workspace_id = '{ws}'")), n);
    }
}

/// Each `/v1` call with an OAuth token is a use of its authorization: the
/// authorized-apps row's last use moves and the day's count grows (written
/// in batches by the node's background task).
fn token_use_is_counted_for_its_app(b: Backend) {
    let f = Fixture::new(b);
    let token = token_for(&f, &f.workspace_id, "workspace:read");
    let db = f.db();
    let id = s(&f.app_row(&f.client_id), "id");
    db.execute(&format!(
        "UPDATE authorizations SET last_used_at = 1 WHERE id = '{id}'"
    ));
    let before = chrono::Utc::now().timestamp() - 2;
    for _ in 0..3 {
        assert_eq!(f.server.v1_status(&token), 200);
    }
    let counted =
        format!("usage_daily WHERE kind = 'authorization' AND subject_id = '{id}' AND count = 3");
    assert!(
        eventually(std::time::Duration::from_secs(5), || db.count(&counted)
            == 1),
        "three uses not counted for the authorization"
    );
    let last = s(&f.app_row(&f.client_id), "last_used_at");
    let last = chrono::DateTime::parse_from_rfc3339(&last).expect("rfc3339");
    assert!(last.timestamp() >= before, "last use {last} not moved");
}

both_backends!(
    token_use_is_counted_for_its_app,
    scopes_decide_what_a_credential_may_do,
    workspaces_are_isolated,
);
