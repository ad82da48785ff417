//! What may not change API keys: bad input, members and outsiders, forged CSRF
//! tokens and plans without API access; each refusal changes nothing.

use super::*;

fn new_user(db: &TestDb) -> (String, String) {
    let email = format!(
        "user-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    (db.create_user(&email), email)
}

fn refusals_change_nothing(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();
    let r = generate(&mut owner, &ws, "crm-sync", "read_only", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(db.count("api_keys"), 1);

    // Duplicate active name, in the page (also with stray whitespace) and the CLI.
    for name in ["crm-sync", "  crm-sync  "] {
        let r = generate(&mut owner, &ws, name, "read_write", "");
        assert!(
            matches!(r.status, 400 | 409),
            "duplicate name: {} {}",
            r.status,
            r.body
        );
        assert!(r.body.contains("already exists"), "{}", r.body);
        assert!(shown_key(&r.body).is_none());
    }
    db.cli(&[
        "apikey",
        "create",
        "--workspace",
        &ws,
        "--name",
        "crm-sync",
        "--access",
        "read_only",
    ])
    .assert_refused("already exists");
    assert_eq!(db.count("api_keys"), 1);

    // A past expiry date; a malformed one.
    let yesterday = days_from_today(-1);
    let r = generate(&mut owner, &ws, "old", "read_only", &yesterday);
    assert!(matches!(r.status, 400 | 422), "{} {}", r.status, r.body);
    assert!(r.body.contains("past"), "{}", r.body);
    assert!(shown_key(&r.body).is_none());
    db.cli(&[
        "apikey",
        "create",
        "--workspace",
        &ws,
        "--name",
        "old",
        "--access",
        "read_only",
        "--expires",
        &yesterday,
    ])
    .assert_refused("past");
    for bad in ["31/12/2099", "tomorrow", "2099-02-30"] {
        let r = generate(&mut owner, &ws, "odd-date", "read_only", bad);
        assert!(r.status >= 400 && r.status < 500, "{bad}: {}", r.status);
        assert!(shown_key(&r.body).is_none());
        let out = db.cli(&[
            "apikey",
            "create",
            "--workspace",
            &ws,
            "--name",
            "odd-date",
            "--access",
            "read_only",
            "--expires",
            bad,
        ]);
        out.assert_refused("expiry");
    }

    // A name that looks like a secret (somebody pasting a key).
    let pasted = s(&db.create_api_key(&ws, "temporary", "read_only"), "key");
    assert_eq!(db.count("api_keys"), 2);
    for name in [
        pasted.as_str(),
        "kgk_AbCdEfGhIj_0123",
        "a8F3kL0pQ9zX7mN2bV6cR1tY",
        "token a8F3kL0pQ9zX7mN2bV6cR1tYq2w3",
    ] {
        let r = generate(&mut owner, &ws, name, "read_only", "");
        assert!(
            matches!(r.status, 400 | 422),
            "{name}: {} {}",
            r.status,
            r.body
        );
        assert!(r.body.contains("looks like a secret"), "{}", r.body);
        assert!(shown_key(&r.body).is_none());
        db.cli(&[
            "apikey",
            "create",
            "--workspace",
            &ws,
            "--name",
            name,
            "--access",
            "read_only",
        ])
        .assert_refused("secret");
    }
    // Empty name, unknown access level, unknown workspace.
    for (name, access) in [("", "read_only"), ("   ", "read_only"), ("x", "admin")] {
        let r = generate(&mut owner, &ws, name, access, "");
        assert!(r.status >= 400 && r.status < 500, "{name:?} {access}");
        assert!(shown_key(&r.body).is_none());
    }
    let out = db.cli(&[
        "apikey",
        "create",
        "--workspace",
        &ws,
        "--name",
        "x",
        "--access",
        "admin",
    ]);
    out.assert_refused("access");
    let out = db.cli(&[
        "apikey",
        "create",
        "--workspace",
        "no-such-workspace",
        "--name",
        "x",
        "--access",
        "read_only",
    ]);
    assert_ne!(out.code, 0);
    assert_eq!(db.count("api_keys"), 2, "a refusal created a key");

    // A revoked key's name may be used again (only active names are unique).
    let temp = listed(db, &ws, "temporary");
    db.json(&["apikey", "revoke", &s(&temp, "id")]);
    let again = db.create_api_key(&ws, "temporary", "read_only");
    assert!(s(&again, "key").starts_with("kgk_"));
}

fn members_and_outsiders_cannot_manage_keys(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let v = db.create_api_key(&ws, "crm-sync", "read_write");
    let (id, key, prefix) = (s(&v, "id"), s(&v, "key"), s(&v, "prefix"));
    let hash = secret_hash(db, &id);
    let mut api = f.server.client();

    // A member: sees no keys, generates, rotates and revokes nothing.
    let (_, member_email) = f.add_user("member");
    let mut member = f.signed_in(&member_email);
    let page = keys_page(&mut member, &ws);
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(!page.body.contains("crm-sync") && !page.body.contains(&prefix));
    assert!(!page.body.contains("name=\"access\""));
    // Their session's own CSRF token (from the sign-out form): the role decides.
    let csrf = hidden(&page.body, "csrf_token").expect("the session's CSRF token");
    let r = member.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &csrf),
            ("workspace_id", &ws),
            ("name", "member-key"),
            ("access", "read_write"),
            ("expires", ""),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(shown_key(&r.body).is_none());
    let r = rotate_in_page(&mut member, &id, &csrf);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(shown_key(&r.body).is_none());
    let r = revoke_in_page(&mut member, &id, &csrf, "crm-sync");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(db.count("api_keys"), 1);
    assert_eq!(secret_hash(db, &id), hash);
    assert_eq!(listed(db, &ws, "crm-sync")["status"], "active");
    assert!(works(&mut api, &key));

    // An admin may manage keys.
    let (_, admin_email) = f.add_user("admin");
    let mut admin = f.signed_in(&admin_email);
    assert_eq!(keys_page(&mut admin, &ws).status, 200);
    let r = generate(&mut admin, &ws, "admin-key", "read_only", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(shown_key(&r.body).is_some());
    assert_eq!(
        listed(db, &ws, "admin-key")["created_by"],
        admin_email.as_str()
    );

    // The owner of another workspace: nothing of this one.
    let other_ws = db.create_workspace("Globex");
    let (outsider_id, outsider_email) = new_user(db);
    db.add_member(&other_ws, &outsider_id, "owner");
    let mut outsider = f.signed_in(&outsider_email);
    let page = keys_page(&mut outsider, &ws);
    assert!(
        !page.body.contains("crm-sync") && !page.body.contains(&prefix),
        "another workspace's keys shown"
    );
    let csrf = hidden(&page.body, "csrf_token").unwrap();
    let r = outsider.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &csrf),
            ("workspace_id", &ws),
            ("name", "intruder"),
            ("access", "read_write"),
            ("expires", ""),
        ],
    );
    // Another workspace's id answers as an unknown one (see security.rs).
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(shown_key(&r.body).is_none());
    let r = rotate_in_page(&mut outsider, &id, &csrf);
    assert!(matches!(r.status, 403 | 404), "{}", r.status);
    assert!(shown_key(&r.body).is_none());
    let r = revoke_in_page(&mut outsider, &id, &csrf, "crm-sync");
    assert!(matches!(r.status, 403 | 404), "{}", r.status);
    assert_eq!(db.count("api_keys"), 2);
    assert_eq!(secret_hash(db, &id), hash);
    assert!(works(&mut api, &key));

    // Nobody signed in: sent to the login page, nothing changes.
    let mut anon = f.server.client();
    let r = anon.get(&format!("/settings/api-keys?workspace={ws}"));
    assert_eq!(r.status, 302);
    assert!(r.location().starts_with("/login"));
    let r = rotate_in_page(&mut anon, &id, &csrf);
    assert!(matches!(r.status, 302 | 303 | 401 | 403), "{}", r.status);
    assert!(shown_key(&r.body).is_none());
    assert_eq!(secret_hash(db, &id), hash);
}

fn forged_csrf_changes_nothing(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let v = db.create_api_key(&ws, "crm-sync", "read_write");
    let (id, key) = (s(&v, "id"), s(&v, "key"));
    let hash = secret_hash(db, &id);
    let mut api = f.server.client();
    let mut owner = f.owner();
    // Another person's valid token is as forged as a made-up one.
    let (_, admin_email) = f.add_user("admin");
    let mut admin = f.signed_in(&admin_email);
    let others = csrf_of(&mut admin, &ws);
    let mine = csrf_of(&mut owner, &ws);
    assert_ne!(others, mine);

    for forged in ["", "forged", others.as_str(), &mine[..mine.len() - 1]] {
        let r = owner.post_form(
            "/settings/api-keys",
            &[
                ("csrf_token", forged),
                ("workspace_id", &ws),
                ("name", "forged-key"),
                ("access", "read_write"),
                ("expires", ""),
            ],
        );
        assert_eq!(r.status, 403, "generate with {forged:?}: {}", r.body);
        assert!(shown_key(&r.body).is_none());
        let r = rotate_in_page(&mut owner, &id, forged);
        assert_eq!(r.status, 403, "rotate with {forged:?}");
        assert!(shown_key(&r.body).is_none());
        let r = revoke_in_page(&mut owner, &id, forged, "crm-sync");
        assert_eq!(r.status, 403, "revoke with {forged:?}");
    }
    // Without the field at all.
    let r = owner.post_form(
        &format!("/settings/api-keys/{id}/revoke"),
        &[("confirm_name", "crm-sync")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(db.count("api_keys"), 1);
    assert_eq!(secret_hash(db, &id), hash);
    assert_eq!(listed(db, &ws, "crm-sync")["status"], "active");
    assert!(works(&mut api, &key));
    // The real token still works.
    let r = rotate_in_page(&mut owner, &id, &mine);
    assert_eq!(r.status, 200);
}

fn plan_without_api_access(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let key = s(&db.create_api_key(&ws, "crm-sync", "read_write"), "key");
    let mut api = f.server.client();
    assert!(works(&mut api, &key), "cached before the downgrade");
    let mut owner = f.owner();

    let r = db.json(&["workspace", "set-plan", &ws, "--plan", "free"]);
    assert_eq!(r["id"], ws.as_str());
    // Right after the command returns.
    assert!(!works(&mut api, &key), "a free workspace's key still works");
    let r = api.bearer_post_json("/v1/tags", &key, r#"{"name":"x"}"#);
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");

    let page = keys_page(&mut owner, &ws);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Upgrade required"), "{}", page.body);
    // The plan gates API keys only: the page says apps work on every plan.
    assert!(
        page.body
            .contains("Apps that people authorize work on every plan"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("does not include API access"));
    assert!(
        !page.body.contains("Generate API Key"),
        "the drawer's button is offered"
    );
    assert!(
        !page.body.contains("name=\"access\""),
        "the form is offered"
    );
    let csrf = hidden(&page.body, "csrf_token").unwrap();
    let r = owner.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &csrf),
            ("workspace_id", &ws),
            ("name", "sneaky"),
            ("access", "read_write"),
            ("expires", ""),
        ],
    );
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);
    assert!(shown_key(&r.body).is_none());
    db.cli(&[
        "apikey",
        "create",
        "--workspace",
        &ws,
        "--name",
        "sneaky",
        "--access",
        "read_only",
    ])
    .assert_refused("upgrade");
    assert_eq!(db.count("api_keys"), 1);
    assert!(!works(&mut api, &key));

    db.json(&["workspace", "set-plan", &ws, "--plan", "pro"]);
    assert!(
        works(&mut api, &key),
        "the key did not come back with the plan"
    );
    let page = keys_page(&mut owner, &ws);
    assert!(!page.body.contains("Upgrade required"));
    assert!(page.body.contains("name=\"access\""));
    let fresh = s(&db.create_api_key(&ws, "after-upgrade", "read_only"), "key");
    assert!(works(&mut api, &fresh));
    db.cli(&["workspace", "set-plan", &ws, "--plan", "platinum"])
        .assert_refused("plan");
}

both_backends!(
    refusals_change_nothing,
    members_and_outsiders_cannot_manage_keys,
    forged_csrf_changes_nothing,
    plan_without_api_access,
);
