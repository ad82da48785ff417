//! CLI output: `--json` and human output, and usage errors that change nothing.

use super::*;

fn json_flag_and_human_output(b: Backend) {
    let db = TestDb::new(b);
    for args in [
        vec!["--json", "workspace", "create", "--name", "Before"],
        vec!["workspace", "create", "--name", "After", "--json"],
        vec!["workspace", "--json", "create", "--name", "Between"],
    ] {
        let out = db.cli(&args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout.lines().count(), 1, "{args:?}: {}", out.stdout);
        let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
        assert!(v.is_object());
        assert_uuid(&v["id"]);
        assert_eq!(
            v["name"],
            args[args.iter().position(|a| *a == "--name").unwrap() + 1]
        );
    }
    assert_eq!(db.count("workspaces"), 3);

    // Human-readable output of every command: something, not JSON, no stderr.
    let out = db.cli(&["workspace", "create", "--name", "Plain"]);
    assert_human(&out);
    let ws = workspace(&db, "Acme");
    assert_human(&db.cli(&["workspace", "set-plan", &ws, "--plan", "pro"]));
    let out = db.cli_stdin(
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--password-stdin",
        ],
        Some("a long password\n"),
    );
    assert_human(&out);
    let u = user(&db, "bob@example.com");
    assert_human(&db.cli(&[
        "member",
        "add",
        "--workspace",
        &ws,
        "--user",
        &u,
        "--role",
        "admin",
    ]));
    assert_human(&db.cli(&["member", "remove", "--workspace", &ws, "--user", &u]));
    let out = db.cli(&[
        "client",
        "create",
        "--name",
        "Acme CRM",
        "--redirect-uri",
        REDIRECT,
    ]);
    assert_human(&out);
    assert!(out.stdout.contains("kgs_") || out.stdout.to_lowercase().contains("secret"));
    assert_human(&db.cli(&[
        "client",
        "create",
        "--name",
        "Acme Mobile",
        "--redirect-uri",
        REDIRECT,
        "--public",
    ]));
    let out = db.cli(&[
        "apikey",
        "create",
        "--workspace",
        &ws,
        "--name",
        "crm",
        "--access",
        "read_only",
    ]);
    assert_human(&out);
    assert!(
        out.stdout.contains("kgk_"),
        "the key is shown: {}",
        out.stdout
    );
    let id = db.json_lines(&["apikey", "list", "--workspace", &ws])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_human(&db.cli(&["apikey", "rotate", &id]));
    assert_human(&db.cli(&["apikey", "revoke", &id]));
    assert_human(&db.cli(&["audit", "list", "--workspace", &ws]));

    // Every --json listing line is one object.
    let out = db.cli(&["audit", "list", "--workspace", &ws, "--json"]);
    assert_eq!(out.code, 0);
    assert!(out.stderr.is_empty());
    assert!(out.stdout.lines().count() >= 3);
    for line in out.stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        assert!(v.is_object(), "{line}");
    }
}

/// A usage error (a missing or unknown argument) exits non-zero, prints nothing
/// on stdout and changes nothing.
fn usage_errors_change_nothing(b: Backend) {
    let db = TestDb::new(b);
    let ws = workspace(&db, "Acme");
    let before = snapshot(&db);
    for args in [
        vec!["workspace", "create"],
        vec!["workspace", "create", "--name", "X", "--colour", "red"],
        vec!["user", "create", "--email", "ada@example.com"],
        vec!["member", "add", "--workspace", &ws, "--role", "owner"],
        vec!["client", "create", "--name", "No redirect"],
        vec!["apikey", "create", "--workspace", &ws, "--name", "crm"],
        vec!["apikey", "rotate"],
        vec!["apps", "revoke"],
        vec!["frobnicate"],
    ] {
        let out = db.cli_stdin(&args, Some("a long password\n"));
        assert_ne!(out.code, 0, "{args:?} succeeded: {}", out.stdout);
        assert!(out.stdout.is_empty(), "{args:?} printed {}", out.stdout);
        assert!(
            out.stderr.starts_with("error:"),
            "{args:?}: {:?}",
            out.stderr
        );
        assert_eq!(snapshot(&db), before, "{args:?} changed rows");
    }
}

both_backends!(json_flag_and_human_output, usage_errors_change_nothing,);
