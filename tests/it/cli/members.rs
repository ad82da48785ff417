//! `keygate member`: add and remove, refusals, and removal revoking what the
//! member approved.

use super::*;

fn member_add_and_remove(b: Backend) {
    let db = TestDb::new(b);
    let ws = workspace(&db, "Acme");
    let mut users = Vec::new();
    for (i, role) in ["owner", "admin", "member"].into_iter().enumerate() {
        let u = user(&db, &format!("u{i}@example.com"));
        let v = db.add_member(&ws, &u, role);
        assert_eq!(v["workspace_id"], ws.as_str());
        assert_eq!(v["user_id"], u.as_str());
        assert_eq!(v["role"], role);
        users.push(u);
    }
    assert_eq!(db.count("memberships"), 3);
    // The same person in a second workspace is a separate membership.
    let other = workspace(&db, "Other");
    db.add_member(&other, &users[2], "admin");
    assert_eq!(db.count("memberships"), 4);

    let out = db.cli(&[
        "--json",
        "member",
        "remove",
        "--workspace",
        &ws,
        "--user",
        &users[2],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert!(v.is_object());
    assert_eq!(db.count("memberships"), 3);
    assert_eq!(
        db.text(&format!(
            "SELECT role AS v FROM memberships WHERE workspace_id = '{other}' AND user_id = '{}'",
            users[2]
        ))
        .as_deref(),
        Some("admin"),
        "removal from one workspace touched another"
    );
    // Removed, the person can be added back with another role.
    db.add_member(&ws, &users[2], "admin");
    assert_eq!(db.count("memberships"), 4);

    // The removal is in the workspace's security log.
    let events = db.json_lines(&["audit", "list", "--workspace", &ws]);
    assert!(
        events.iter().any(|e| e["subject"] == users[2].as_str()),
        "{events:?}"
    );
}

fn member_refusals(b: Backend) {
    let db = TestDb::new(b);
    let ws = workspace(&db, "Acme");
    let u = user(&db, "ada@example.com");
    let outsider = user(&db, "bob@example.com");
    db.add_member(&ws, &u, "member");
    let unknown = uuid::Uuid::new_v4().to_string();
    let add = |w: &str, usr: &str, role: &str| {
        [
            "member",
            "add",
            "--workspace",
            w,
            "--user",
            usr,
            "--role",
            role,
        ]
        .map(str::to_string)
    };
    let run = |args: [String; 8], mentions: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&db, &a, None, mentions);
    };
    run(add(&unknown, &outsider, "admin"), "workspace");
    run(add("not-a-uuid", &outsider, "admin"), "workspace");
    run(add(&ws, &unknown, "admin"), "user");
    for role in ["superuser", "Owner", "ADMIN", "", "viewer"] {
        run(add(&ws, &outsider, role), "role");
    }
    // Already a member: refused, and the role stays as it was.
    run(add(&ws, &u, "owner"), "member");
    assert_eq!(
        db.text(&format!(
            "SELECT role AS v FROM memberships WHERE workspace_id = '{ws}' AND user_id = '{u}'"
        ))
        .as_deref(),
        Some("member")
    );

    let remove = |w: &str, usr: &str| {
        ["member", "remove", "--workspace", w, "--user", usr].map(str::to_string)
    };
    let run = |args: [String; 6], mentions: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&db, &a, None, mentions);
    };
    run(remove(&unknown, &u), "workspace");
    run(remove(&ws, &unknown), "member");
    run(remove(&ws, &outsider), "member");
    assert_eq!(db.count("memberships"), 1);
}

fn member_remove_revokes_their_authorizations(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let (admin_id, admin_email) = f.add_user("admin");
    let (admin_access, admin_refresh) = tokens_approved_by(&f, &admin_email, "workspace:read");
    let (owner_access, _) = f.tokens("workspace:read");
    let mut http = f.server.client();
    assert_eq!(http.bearer_get("/v1/workspace", &admin_access).status, 200);

    let apps = db.json_lines(&["apps", "list", "--workspace", &f.workspace_id]);
    assert_eq!(apps.len(), 2, "{apps:?}");
    for a in &apps {
        assert_uuid(&a["id"]);
        assert_eq!(a["app_name"], "Acme CRM");
        assert_eq!(a["client_id"], f.client_id.as_str());
        assert_eq!(a["workspace_id"], f.workspace_id.as_str());
        assert_eq!(a["scopes"], serde_json::json!(["workspace:read"]));
        assert_time(&a["authorized_at"]);
        assert_eq!(a["status"], "active");
    }
    let before = db.count("authorizations");

    let v = db.json(&[
        "member",
        "remove",
        "--workspace",
        &f.workspace_id,
        "--user",
        &admin_id,
    ]);
    assert!(v.is_object());

    // The admin's approval is revoked (not deleted); the owner's is untouched.
    assert_eq!(
        db.count("authorizations"),
        before,
        "revocation deleted data"
    );
    let apps = db.json_lines(&["apps", "list", "--workspace", &f.workspace_id]);
    assert_eq!(apps.len(), 2);
    let statuses: Vec<&str> = apps.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "revoked").count(),
        1,
        "{apps:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "active").count(),
        1,
        "{apps:?}"
    );
    http.bearer_get("/v1/workspace", &admin_access)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    f.refresh(&admin_refresh)
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(f.introspect(&admin_access)["active"], false);
    assert_eq!(http.bearer_get("/v1/workspace", &owner_access).status, 200);

    // A password given with CRLF works for signing in.
    let out = db.cli_stdin(
        &[
            "user",
            "create",
            "--email",
            "crlf@example.com",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\r\n")),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    f.signed_in("crlf@example.com");
}

both_backends!(
    member_add_and_remove,
    member_refusals,
    member_remove_revokes_their_authorizations,
);
