//! `keygate workspace` and `keygate user`: create, set plan, and their refusals.

use super::*;

fn workspace_create_and_set_plan(b: Backend) {
    let db = TestDb::new(b);
    let v = db.json(&["workspace", "create", "--name", "Acme"]);
    let id = assert_uuid(&v["id"]);
    assert_eq!(v["name"], "Acme");
    assert_eq!(db.count("workspaces"), 1);
    assert_eq!(
        db.text(&format!(
            "SELECT plan AS v FROM workspaces WHERE id = '{id}'"
        ))
        .as_deref(),
        Some("pro"),
        "the default plan"
    );

    let free = db.json(&["workspace", "create", "--name", "Tiny", "--plan", "free"]);
    let free_id = assert_uuid(&free["id"]);
    assert_eq!(
        db.text(&format!(
            "SELECT plan AS v FROM workspaces WHERE id = '{free_id}'"
        ))
        .as_deref(),
        Some("free")
    );
    db.json(&["workspace", "create", "--name", "Big", "--plan", "pro"]);

    // 100 characters is the limit, counted as characters, not bytes.
    let long: String = "é".repeat(100);
    let v = db.json(&["workspace", "create", "--name", &long]);
    assert_eq!(v["name"], long.as_str());
    assert_eq!(db.count("workspaces"), 4);

    let v = db.json(&["workspace", "set-plan", &free_id, "--plan", "pro"]);
    assert_eq!(v["id"], free_id.as_str());
    assert_eq!(
        db.text(&format!(
            "SELECT plan AS v FROM workspaces WHERE id = '{free_id}'"
        ))
        .as_deref(),
        Some("pro")
    );
    db.json(&["workspace", "set-plan", &id, "--plan", "free"]);
    assert_eq!(
        db.text(&format!(
            "SELECT plan AS v FROM workspaces WHERE id = '{id}'"
        ))
        .as_deref(),
        Some("free")
    );
    assert_eq!(db.count("workspaces"), 4);
}

fn workspace_refusals(b: Backend) {
    let db = TestDb::new(b);
    let id = workspace(&db, "Acme");
    refused(&db, &["workspace", "create", "--name", ""], None, "name");
    refused(&db, &["workspace", "create", "--name", "   "], None, "name");
    let long = "x".repeat(101);
    refused(&db, &["workspace", "create", "--name", &long], None, "100");
    refused(
        &db,
        &["workspace", "create", "--name", "Acme 2", "--plan", "gold"],
        None,
        "plan",
    );
    refused(
        &db,
        &["workspace", "create", "--name", "Acme 2", "--plan", ""],
        None,
        "plan",
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    refused(
        &db,
        &["workspace", "set-plan", &unknown, "--plan", "free"],
        None,
        "workspace",
    );
    refused(
        &db,
        &["workspace", "set-plan", &id, "--plan", "enterprise"],
        None,
        "plan",
    );
    assert_eq!(
        db.text(&format!(
            "SELECT plan AS v FROM workspaces WHERE id = '{id}'"
        ))
        .as_deref(),
        Some("pro"),
        "a refused set-plan changed the plan"
    );
}

fn user_create(b: Backend) {
    let db = TestDb::new(b);
    let out = db.cli_stdin(
        &[
            "--json",
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        Some("a long password\r\nsecond line is not read\n"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let id = assert_uuid(&v["id"]);
    assert_eq!(v["email"], "ada@example.com");
    assert!(v.get("password").is_none() && v.get("password_hash").is_none());
    // Only a hash is stored.
    let hash = db
        .text(&format!(
            "SELECT password_hash AS v FROM users WHERE id = '{id}'"
        ))
        .unwrap();
    assert!(!hash.contains("a long password"), "{hash}");

    // Exactly eight characters, with no newline at the end of stdin, is enough.
    let out = db.cli_stdin(
        &[
            "user",
            "create",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        Some("12345678"),
    );
    assert_human(&out);
    assert_eq!(db.count("users"), 2);
}

fn user_refusals(b: Backend) {
    let db = TestDb::new(b);
    user(&db, "ada@example.com");
    let create = |email: &'static str| -> Vec<&'static str> {
        vec!["user", "create", "--email", email, "--password-stdin"]
    };
    let good = Some("a long password\n");
    refused(&db, &create("ada@example.com"), good, "exists");
    refused(&db, &create("ADA@Example.com"), good, "exists");
    for bad in [
        "",
        "not-an-email",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "a da@example.com",
    ] {
        let args = ["user", "create", "--email", bad, "--password-stdin"];
        refused(&db, &args, good, "email");
    }
    // Empty stdin, an empty line, too short a password.
    refused(&db, &create("new@example.com"), None, "password");
    refused(&db, &create("new@example.com"), Some(""), "password");
    refused(&db, &create("new@example.com"), Some("\n"), "password");
    refused(
        &db,
        &create("new@example.com"),
        Some("1234567\n"),
        "password",
    );
    refused(&db, &create("new@example.com"), Some("short"), "password");
    assert_eq!(db.count("users"), 1);
}

both_backends!(
    workspace_create_and_set_plan,
    workspace_refusals,
    user_create,
    user_refusals,
);
