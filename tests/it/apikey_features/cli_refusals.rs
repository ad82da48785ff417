//! Every bad CLI input for the key features is refused and changes nothing.

use super::*;

// ---------------------------------------------------------------- CLI refusals

fn every_bad_cli_input_is_refused_and_changes_nothing(b: Backend) {
    let db = TestDb::new(b);
    let ws = s(&db.json(&["workspace", "create", "--name", "Acme"]), "id");
    let kept = create(&db, &ws, "kept", &["--access", "read_only"]);
    let id = s(&kept, "id");
    let revoked = create(&db, &ws, "gone", &["--access", "read_only"]);
    db.json(&["apikey", "revoke", &s(&revoked, "id")]);
    let keys = db.count("api_keys");
    let events = db.count("audit_events");
    let hash = secret_hash(&db, &id);
    let base = [
        "apikey",
        "create",
        "--workspace",
        ws.as_str(),
        "--name",
        "new",
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--access", "custom"], "scope"),
        (
            vec!["--access", "custom", "--scope", "tags:delete"],
            "tags:delete",
        ),
        (vec!["--access", "custom", "--scope", ""], "scope"),
        (
            vec!["--access", "read_only", "--scope", "tags:read"],
            "custom",
        ),
        (vec!["--access", "everything"], "access"),
        (
            vec!["--access", "read_only", "--allow-ip", "nope"],
            "allow-ip",
        ),
        (
            vec!["--access", "read_only", "--allow-ip", "203.0.113.7/24"],
            "203.0.113.0/24",
        ),
        (vec!["--access", "read_only", "--allow-ip", ""], "allow-ip"),
        (
            vec!["--access", "read_only", "--allow-ip", "1.2.3.4:80"],
            "allow-ip",
        ),
        (
            vec!["--access", "read_only", "--allow-ip", "10.0.0.0/33"],
            "allow-ip",
        ),
    ];
    for (extra, mentions) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        db.cli(&args).assert_refused(mentions);
    }
    for grace in ["0s", "31d", "1w", "", "--grace=-1h", "1h30m", "soon"] {
        let arg = if grace.starts_with("--") {
            grace.to_string()
        } else {
            format!("--grace={grace}")
        };
        db.cli(&["apikey", "rotate", &id, &arg])
            .assert_refused("grace");
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    db.cli(&["apikey", "rotate", &unknown, "--grace", "1h"])
        .assert_refused("no API key");
    db.cli(&["apikey", "rotate", &s(&revoked, "id"), "--grace", "1h"])
        .assert_refused("revoked");
    db.cli(&["apikey", "list", "--workspace", &ws, "--status", "soon"])
        .assert_refused("status");
    assert_eq!(db.count("api_keys"), keys);
    assert_eq!(db.count("audit_events"), events);
    assert_eq!(secret_hash(&db, &id), hash);
    assert!(db
        .text(&format!(
            "SELECT previous_secret_hash AS v FROM api_keys WHERE id = '{id}'"
        ))
        .is_none());
}

both_backends!(every_bad_cli_input_is_refused_and_changes_nothing,);
