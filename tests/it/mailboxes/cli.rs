//! `keygate mailbox`: the lifecycle of mailboxes and auth keys, and refusals that
//! change nothing.

use super::*;

// ---------------------------------------------------------------- CLI

fn mailbox_cli_lifecycle(b: Backend) {
    let f = Fixture::new(b);
    f.db().verified_domain(&f.workspace_id, "example.com");
    let db = f.db();
    let ws = &f.workspace_id;

    let m = db.json(&[
        "mailbox",
        "create",
        "--workspace",
        ws,
        "--address",
        " Sales@Example.com ",
    ]);
    assert_eq!(
        members(&m),
        sorted(&["id", "workspace_id", "address", "created_at"])
    );
    assert_eq!(m["address"], "Sales@Example.com", "kept as given, trimmed");
    assert_eq!(m["workspace_id"], ws.as_str());
    let mb = s(&m, "id");
    assert!(uuid::Uuid::parse_str(&mb).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(&s(&m, "created_at")).is_ok());

    let k = db.json(&[
        "authkey",
        "create",
        "--mailbox",
        &mb,
        "--name",
        "Outreach Primary",
    ]);
    assert_eq!(
        members(&k),
        sorted(&["id", "mailbox_id", "address", "name", "key", "prefix"])
    );
    let (kid, key) = (s(&k, "id"), s(&k, "key"));
    assert_eq!(k["mailbox_id"], mb.as_str());
    assert_eq!(k["address"], "Sales@Example.com");
    assert!(key.starts_with("kgm_") && key.len() == 53, "{key}");
    assert!(key.starts_with(&s(&k, "prefix")));
    assert_eq!(s(&k, "prefix").len(), 14);
    let hash = db
        .text(&format!(
            "SELECT secret_hash AS v FROM mailbox_auth_keys WHERE id = '{kid}'"
        ))
        .expect("row");
    assert_ne!(hash, key, "only a hash is stored");
    assert!(!hash.contains(&key[15..]));
    create_auth_key(db, &mb, "CRM");

    let listed = auth_key(db, &mb, &kid);
    assert_eq!(
        members(&listed),
        sorted(&[
            "allowed_ips",
            "expires_at",
            "id",
            "mailbox_id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "usage_count",
            "status"
        ])
    );
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["usage_count"], 0);
    assert_eq!(listed["last_used_at"], Value::Null);
    assert_eq!(listed["name"], "Outreach Primary");
    let names: Vec<String> = auth_keys(db, &mb).iter().map(|k| s(k, "name")).collect();
    assert_eq!(names, ["CRM", "Outreach Primary"], "newest first");

    let lines = db.json_lines(&["mailbox", "list", "--workspace", ws]);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        members(&lines[0]),
        sorted(&["id", "workspace_id", "address", "created_at", "active_keys"])
    );
    assert_eq!(lines[0]["active_keys"], 2);

    let d = db.json(&["authkey", "disable", &kid]);
    assert_eq!(d, serde_json::json!({"id": kid, "status": "disabled"}));
    assert_eq!(auth_key(db, &mb, &kid)["status"], "disabled");
    assert_eq!(
        db.json_lines(&["mailbox", "list", "--workspace", ws])[0]["active_keys"],
        1
    );
    let e = db.json(&["authkey", "enable", &kid]);
    assert_eq!(e, serde_json::json!({"id": kid, "status": "active"}));

    let r = db.json(&["authkey", "rotate", &kid]);
    assert_eq!(members(&r), sorted(&["id", "key", "prefix"]));
    assert_eq!(r["id"], kid.as_str());
    assert_ne!(s(&r, "key"), key);
    assert_eq!(r["prefix"], k["prefix"], "same key, new secret");

    let gone = db.json(&["authkey", "delete", &kid]);
    assert_eq!(gone, serde_json::json!({"id": kid, "deleted": true}));
    assert_eq!(auth_keys(db, &mb).len(), 1);

    let gone = db.json(&["mailbox", "delete", &mb]);
    assert_eq!(gone, serde_json::json!({"id": mb, "deleted": true}));
    assert_eq!(db.count("mailboxes"), 0);
    assert_eq!(db.count("mailbox_auth_keys"), 0, "its keys went with it");

    let actions: Vec<String> = db
        .json_lines(&["audit", "list", "--workspace", ws])
        .iter()
        .map(|e| s(e, "action"))
        .collect();
    for a in [
        "mailbox.created",
        "mailbox_auth_key.created",
        "mailbox_auth_key.disabled",
        "mailbox_auth_key.enabled",
        "mailbox_auth_key.rotated",
        "mailbox_auth_key.deleted",
        "mailbox.deleted",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
}

fn mailbox_cli_refusals_change_nothing(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let other_ws = s(&db.json(&["workspace", "create", "--name", "Other"]), "id");
    let free_ws = s(
        &db.json(&["workspace", "create", "--name", "Free", "--plan", "free"]),
        "id",
    );
    db.verified_domain(&ws, "example.com");
    let mb = create_mailbox(db, &ws, "ops@example.com");
    let (kid, _) = create_auth_key(db, &mb, "CRM");
    db.json(&["authkey", "disable", &kid]);
    let before = counts(db);
    let unknown = uuid::Uuid::now_v7().to_string();

    let refused: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &unknown,
                "--address",
                "a@example.com",
            ],
            "no workspace",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &ws,
                "--address",
                "not-an-address",
            ],
            "invalid mailbox address",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &ws,
                "--address",
                "a@localhost",
            ],
            "invalid mailbox address",
        ),
        (
            vec!["mailbox", "create", "--workspace", &ws, "--address", ""],
            "must not be empty",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &ws,
                "--address",
                "OPS@Example.COM",
            ],
            "already taken",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &other_ws,
                "--address",
                "ops@example.com",
            ],
            "not in a domain this workspace has verified",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &free_ws,
                "--address",
                "f@example.com",
            ],
            "upgrade required",
        ),
        (
            vec!["mailbox", "list", "--workspace", &unknown],
            "no workspace",
        ),
        (vec!["mailbox", "delete", &unknown], "no mailbox"),
        (
            vec!["authkey", "create", "--mailbox", &unknown, "--name", "x"],
            "no mailbox",
        ),
        (
            vec!["authkey", "create", "--mailbox", &mb, "--name", "CRM"],
            "already exists",
        ),
        (
            vec!["authkey", "create", "--mailbox", &mb, "--name", "  "],
            "must not be empty",
        ),
        (
            vec![
                "authkey",
                "create",
                "--mailbox",
                &mb,
                "--name",
                "kgm_AbCdEfGhIj_x",
            ],
            "looks like a secret",
        ),
        (vec!["authkey", "list", "--mailbox", &unknown], "no mailbox"),
        (vec!["authkey", "disable", &kid], "already disabled"),
        (vec!["authkey", "rotate", &kid], "cannot be rotated"),
        (vec!["authkey", "disable", &unknown], "no mailbox auth key"),
        (vec!["authkey", "enable", &unknown], "no mailbox auth key"),
        (vec!["authkey", "rotate", &unknown], "no mailbox auth key"),
        (vec!["authkey", "delete", &unknown], "no mailbox auth key"),
        (
            vec![
                "apikey",
                "create",
                "--workspace",
                &ws,
                "--name",
                "r",
                "--access",
                "read_only",
                "--mailbox",
                &unknown,
            ],
            "no mailbox",
        ),
        (
            vec![
                "apikey",
                "create",
                "--workspace",
                &other_ws,
                "--name",
                "r",
                "--access",
                "read_only",
                "--mailbox",
                &mb,
            ],
            "no mailbox",
        ),
    ];
    for (args, mentions) in &refused {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        db.cli(&all).assert_refused(mentions);
        assert_eq!(counts(db), before, "keygate {args:?} changed something");
    }
    db.json(&["authkey", "enable", &kid]);
    db.cli(&["authkey", "enable", &kid])
        .assert_refused("not disabled");
    // A command line that is itself wrong is a usage error.
    assert_eq!(db.cli(&["mailbox", "create", "--workspace", &ws]).code, 2);
}

both_backends!(mailbox_cli_lifecycle, mailbox_cli_refusals_change_nothing,);
