//! Another workspace's ids answer like unknown ids.

use super::*;

/// OWASP Authorization Cheat Sheet (IDOR): an id that exists in another
/// workspace answers exactly like an unknown id, with or without a session
/// and a valid CSRF token, so the settings pages confirm nothing about other
/// workspaces.
fn other_workspaces_ids_answer_like_unknown_ids(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    f.api_key("read_only");
    let key_id = db.json_lines(&["apikey", "list", "--workspace", &f.workspace_id])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let _ = f.tokens("workspace:read");
    let app_id = db.json_lines(&["apps", "list", "--workspace", &f.workspace_id])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The owner of another workspace, signed in, with their own CSRF token.
    let other = db.json(&["workspace", "create", "--name", "Globex"]);
    let other_ws = other["id"].as_str().unwrap().to_string();
    let email = format!(
        "globex-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let user = db.create_user(&email);
    db.json(&[
        "member",
        "add",
        "--workspace",
        &other_ws,
        "--user",
        &user,
        "--role",
        "owner",
    ]);
    let mut outsider = f.signed_in(&email);
    let page = outsider.get("/settings/api-keys");
    let csrf = hidden(&page.body, "csrf_token").expect("CSRF token");
    let unknown = uuid::Uuid::now_v7().to_string();

    let post = |http: &mut Http, path: String, csrf: &str, extra: &[(&str, &str)]| {
        let mut form = vec![
            ("csrf_token", csrf),
            ("confirm", "yes"),
            ("confirm_name", "x"),
        ];
        form.extend_from_slice(extra);
        let r = http.post_form(&path, &form);
        (r.status, r.header("location").map(str::to_string), r.body)
    };
    let mut anon = f.server.client();
    for (existing, missing) in [
        (
            format!("/settings/api-keys/{key_id}/rotate"),
            format!("/settings/api-keys/{unknown}/rotate"),
        ),
        (
            format!("/settings/api-keys/{key_id}/revoke"),
            format!("/settings/api-keys/{unknown}/revoke"),
        ),
        (
            format!("/settings/authorized-apps/{app_id}/revoke"),
            format!("/settings/authorized-apps/{unknown}/revoke"),
        ),
    ] {
        let a = post(&mut outsider, existing.clone(), &csrf, &[]);
        let b = post(&mut outsider, missing.clone(), &csrf, &[]);
        assert_eq!(a.0, 404, "{existing}: {}", a.2);
        assert_eq!(a, b, "{existing} and {missing} answer differently");
        // A forged CSRF token, and no session at all: alike too.
        let a = post(&mut outsider, existing.clone(), "forged", &[]);
        let b = post(&mut outsider, missing.clone(), "forged", &[]);
        assert_eq!(a, b, "{existing} with a forged CSRF token");
        let a = post(&mut anon, existing.clone(), "forged", &[]);
        let b = post(&mut anon, missing.clone(), "forged", &[]);
        assert_eq!(a, b, "{existing} without a session");
    }
    // Generating a key "in" another workspace, or an unknown one.
    let a = post(
        &mut outsider,
        "/settings/api-keys".into(),
        &csrf,
        &[
            ("workspace_id", &f.workspace_id),
            ("name", "intruder"),
            ("access", "read_write"),
            ("expires", ""),
        ],
    );
    let b = post(
        &mut outsider,
        "/settings/api-keys".into(),
        &csrf,
        &[
            ("workspace_id", &unknown),
            ("name", "intruder"),
            ("access", "read_write"),
            ("expires", ""),
        ],
    );
    assert_eq!(a.0, 404, "{}", a.2);
    assert_eq!(a, b);
    // Nothing changed.
    assert_eq!(db.count("api_keys"), 1);
    assert_eq!(
        db.json_lines(&["apps", "list", "--workspace", &f.workspace_id])[0]["status"],
        "active"
    );
}

both_backends!(other_workspaces_ids_answer_like_unknown_ids,);
