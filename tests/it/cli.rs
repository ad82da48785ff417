//! The `keygate` command line: every admin command's success and its refusals
//! (non-zero, one line on stderr, nothing on stdout, no row changed), `--json`,
//! the database URL's precedence and spellings, `serve` on a database it cannot
//! open, and the CLI's revocations taking effect on a running server.

use crate::support::*;
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every table a command could write to.
const TABLES: &[&str] = &[
    "workspaces",
    "users",
    "memberships",
    "clients",
    "authorizations",
    "auth_codes",
    "refresh_tokens",
    "access_tokens",
    "api_keys",
    "tags",
    "forms",
    "audit_events",
    "signing_keys",
    "revocation_events",
    "sessions",
    "consent_requests",
    "usage_daily",
];

/// The row count of every table, read in one query: `table=n, …`.
fn snapshot(db: &TestDb) -> String {
    let parts: Vec<String> = TABLES
        .iter()
        .map(|t| format!("'{t}=' || CAST((SELECT COUNT(*) FROM {t}) AS TEXT)"))
        .collect();
    db.text(&format!("SELECT {} AS v", parts.join(" || ', ' || ")))
        .expect("row counts")
}

/// Runs a command that must be refused, once plainly and once with `--json`:
/// each time non-zero, one line on stderr mentioning `mentions`, nothing on
/// stdout, and not one row added or removed anywhere.
fn refused(db: &TestDb, args: &[&str], stdin: Option<&str>, mentions: &str) {
    let before = snapshot(db);
    for json in [false, true] {
        let mut all: Vec<&str> = if json { vec!["--json"] } else { vec![] };
        all.extend_from_slice(args);
        let out = db.cli_stdin(&all, stdin);
        eprintln!("keygate {all:?} -> {out:?}");
        out.assert_refused(mentions);
        assert_eq!(snapshot(db), before, "keygate {all:?} changed rows");
    }
}

fn assert_uuid(v: &Value) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("id is not a string: {v}"));
    assert!(
        s.len() == 36 && uuid::Uuid::parse_str(s).is_ok(),
        "not a UUID: {s:?}"
    );
    s.to_string()
}

fn assert_time(v: &Value) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("time is not a string: {v}"));
    assert!(
        s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "not RFC 3339 UTC: {s:?}"
    );
    s.to_string()
}

/// Human-readable output: something, and not JSON.
fn assert_human(out: &CliOut) {
    assert_eq!(out.code, 0, "failed: {}", out.stderr);
    assert!(out.stderr.is_empty(), "wrote to stderr: {}", out.stderr);
    assert!(!out.stdout.trim().is_empty(), "printed nothing");
    for line in out.stdout.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_err() || line.trim().is_empty(),
            "human output is JSON: {line:?}"
        );
    }
}

fn workspace(db: &TestDb, name: &str) -> String {
    assert_uuid(&serde_json::json!(db.create_workspace(name)))
}

fn user(db: &TestDb, email: &str) -> String {
    let id = db.create_user(email);
    assert_uuid(&serde_json::json!(id))
}

fn days_from_today(days: i64) -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() + chrono::Duration::days(days)
}

/// True when a test that depends on "today" could straddle midnight UTC.
fn near_midnight() -> bool {
    use chrono::Timelike;
    let t = chrono::Utc::now();
    t.hour() == 23 && t.minute() == 59 && t.second() > 50
}

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

fn client_create(b: Backend) {
    let db = TestDb::new(b);
    let v = db.json(&[
        "client",
        "create",
        "--name",
        "Acme CRM",
        "--redirect-uri",
        "https://crm.example.com/callback",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--redirect-uri",
        "http://[::1]:8000/cb",
        "--redirect-uri",
        "com.example.app:/oauth",
        "--redirect-uri",
        "https://crm.example.com/callback?tenant=1",
    ]);
    let id = assert_uuid(&v["client_id"]);
    let secret = v["client_secret"].as_str().expect("client_secret");
    assert!(secret.len() >= 32, "{secret}");
    let stored = db
        .text(&format!(
            "SELECT redirect_uris AS v FROM clients WHERE id = '{id}'"
        ))
        .unwrap();
    for uri in [
        "https://crm.example.com/callback",
        "http://127.0.0.1/cb",
        "com.example.app:/oauth",
        "tenant=1",
    ] {
        assert!(stored.contains(uri), "{uri} not in {stored}");
    }
    let hash = db
        .text(&format!(
            "SELECT secret_hash AS v FROM clients WHERE id = '{id}'"
        ))
        .unwrap();
    assert!(
        !hash.contains(secret),
        "the client secret is stored in clear"
    );

    let public = db.json(&[
        "client",
        "create",
        "--name",
        "Acme Mobile",
        "--redirect-uri",
        "com.example.app:/oauth",
        "--public",
    ]);
    let public_id = assert_uuid(&public["client_id"]);
    assert!(
        public.get("client_secret").is_none(),
        "a public client got a secret: {public}"
    );
    assert_ne!(public_id, id);
    assert_eq!(db.count("clients"), 2);

    // `--json` after the subcommand, too.
    let out = db.cli(&[
        "client",
        "create",
        "--name",
        "Late flag",
        "--redirect-uri",
        "https://x.example.com/cb",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty());
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_uuid(&v["client_id"]);
    assert!(v["client_secret"].is_string());
    assert_eq!(db.count("clients"), 3);
}

fn client_refusals(b: Backend) {
    let db = TestDb::new(b);
    db.json(&["migrate"]);
    let good = "https://crm.example.com/callback";
    let create = |name: &str, uris: &[&str], public: bool| -> Vec<String> {
        let mut a = vec!["client", "create", "--name", name];
        for u in uris {
            a.push("--redirect-uri");
            a.push(u);
        }
        if public {
            a.push("--public");
        }
        a.into_iter().map(str::to_string).collect()
    };
    let run = |args: Vec<String>, mentions: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&db, &a, None, mentions);
    };
    run(create("", &[good], false), "name");
    run(create("  ", &[good], true), "name");
    run(create(&"n".repeat(101), &[good], false), "100");
    for bad in [
        "not a url",
        "",
        "/callback",
        "crm.example.com/callback",
        "https://",
        "http://crm.example.com/callback",
        "http://192.168.1.10/callback",
        "https://crm.example.com/callback#frag",
        "https://crm.example.com/callback#",
        "http://127.0.0.1/cb#x",
        "javascript:alert(1)",
        "https://user:pass@crm.example.com/callback",
        // RFC 8252 §8.3: loopback by IP literal only.
        "http://localhost:3000/cb",
        "myapp:/cb",
    ] {
        run(create("Acme CRM", &[bad], false), "redirect");
        run(create("Acme CRM", &[bad], true), "redirect");
        // One bad URI among good ones refuses the whole client.
        run(create("Acme CRM", &[good, bad], false), "redirect");
    }
    assert_eq!(db.count("clients"), 0);
}

fn apikey_create(b: Backend) {
    let db = TestDb::new(b);
    let ws = workspace(&db, "Acme");

    let v = db.create_api_key(&ws, "crm-sync", "read_only");
    let id = assert_uuid(&v["id"]);
    let key = v["key"].as_str().expect("key").to_string();
    let prefix = v["prefix"].as_str().expect("prefix").to_string();
    assert!(!prefix.is_empty() && prefix.len() < key.len(), "{prefix}");
    assert!(key.starts_with(&prefix), "{prefix} does not start {key}");
    assert_eq!(v["access"], "read_only");
    assert!(v["expires_at"].is_null(), "{v}");
    assert!(
        v.as_object().unwrap().contains_key("expires_at"),
        "expires_at must be present (null) for a key that never expires"
    );
    // Only a hash is stored.
    let hash = db
        .text(&format!(
            "SELECT secret_hash AS v FROM api_keys WHERE id = '{id}'"
        ))
        .unwrap();
    assert!(!hash.contains(&key));

    let v = db.create_api_key(&ws, "billing", "read_write");
    assert_eq!(v["access"], "read_write");
    assert_ne!(v["key"], key.as_str());
    assert_ne!(v["prefix"], prefix.as_str());

    // --expires is the last day: the key ends at 24:00 UTC, the next day's start.
    let day = days_from_today(30);
    let v = db.json(&[
        "apikey",
        "create",
        "--workspace",
        &ws,
        "--name",
        "expiring",
        "--access",
        "read_only",
        "--expires",
        &day.format("%Y-%m-%d").to_string(),
    ]);
    let expected = format!(
        "{}T00:00:00Z",
        (day + chrono::Duration::days(1)).format("%Y-%m-%d")
    );
    assert_eq!(v["expires_at"], expected.as_str());
    assert_time(&v["expires_at"]);

    // Today is the last day, not the past.
    if !near_midnight() {
        let today = days_from_today(0);
        let v = db.json(&[
            "apikey",
            "create",
            "--workspace",
            &ws,
            "--name",
            "last-day",
            "--access",
            "read_write",
            "--expires",
            &today.format("%Y-%m-%d").to_string(),
        ]);
        let tomorrow = format!(
            "{}T00:00:00Z",
            (today + chrono::Duration::days(1)).format("%Y-%m-%d")
        );
        assert_eq!(v["expires_at"], tomorrow.as_str());
    }
    // A 29 February that exists.
    let v = db.json(&[
        "apikey",
        "create",
        "--workspace",
        &ws,
        "--name",
        "leap",
        "--access",
        "read_only",
        "--expires",
        "2096-02-29",
    ]);
    assert_eq!(v["expires_at"], "2096-03-01T00:00:00Z");

    // The list never shows a secret; it shows what the key is.
    let n = db.count("api_keys");
    let list = db.json_lines(&["apikey", "list", "--workspace", &ws]);
    assert_eq!(list.len() as i64, n);
    let out = db.cli(&["--json", "apikey", "list", "--workspace", &ws]);
    assert!(!out.stdout.contains(&key), "the list shows a full key");
    let row = list
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("listed");
    assert_eq!(row["prefix"], prefix.as_str());
    assert_eq!(row["access"], "read_only");
    assert_eq!(row["status"], "active");
    assert!(row.get("key").is_none(), "{row}");
    for r in &list {
        assert_uuid(&r["id"]);
        assert_time(&r["created_at"]);
    }
    let human = db.cli(&["apikey", "list", "--workspace", &ws]);
    assert_human(&human);
    assert!(human.stdout.contains(&prefix) && !human.stdout.contains(&key));

    // The same name is free again once the key holding it is revoked.
    db.json(&["apikey", "revoke", &id]);
    let again = db.create_api_key(&ws, "crm-sync", "read_only");
    assert_ne!(again["id"], id.as_str());

    // Every creation is in the security log.
    let events = db.json_lines(&["audit", "list", "--workspace", &ws]);
    assert!(events.len() >= 6, "{events:?}");
    for e in &events {
        assert_uuid(&e["id"]);
        assert_eq!(e["workspace_id"], ws.as_str());
        assert!(e["action"].is_string());
        assert_time(&e["created_at"]);
    }
    assert!(events.iter().any(|e| e["subject"] == id.as_str()));
}

fn apikey_create_refusals(b: Backend) {
    let db = TestDb::new(b);
    let ws = workspace(&db, "Acme");
    let free =
        assert_uuid(&db.json(&["workspace", "create", "--name", "Tiny", "--plan", "free"])["id"]);
    db.create_api_key(&ws, "taken", "read_only");
    let unknown = uuid::Uuid::new_v4().to_string();
    let create = |w: &str, name: &str, access: &str, expires: Option<&str>| -> Vec<String> {
        let mut a = vec![
            "apikey",
            "create",
            "--workspace",
            w,
            "--name",
            name,
            "--access",
            access,
        ];
        if let Some(e) = expires {
            a.push("--expires");
            a.push(e);
        }
        a.into_iter().map(str::to_string).collect()
    };
    let run = |args: Vec<String>, mentions: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&db, &a, None, mentions);
    };
    run(create(&unknown, "crm", "read_only", None), "workspace");
    run(create(&free, "crm", "read_only", None), "plan");
    run(create(&ws, "", "read_only", None), "name");
    run(create(&ws, &"k".repeat(101), "read_only", None), "100");
    run(create(&ws, "taken", "read_write", None), "name");
    for access in ["admin", "read", "READ_ONLY", "read-write", ""] {
        run(create(&ws, "crm", access, None), "access");
    }
    let yesterday = days_from_today(-1).format("%Y-%m-%d").to_string();
    for past in [yesterday.as_str(), "2020-01-01"] {
        run(create(&ws, "crm", "read_only", Some(past)), "past");
    }
    for bad in [
        "31/01/2099",
        "2099-13-01",
        "2099-02-30",
        "2099-01-32",
        "2099-01-31T00:00:00Z",
        "2099-01-31 extra",
        "tomorrow",
        "20990131",
        "2099-1-31",
        "99-01-31",
        "+2099-01-31",
        "9999-12-31",
    ] {
        run(create(&ws, "crm", "read_only", Some(bad)), "date");
    }
    assert_eq!(db.count("api_keys"), 1);
}

fn apikey_rotate_revoke_and_list(b: Backend) {
    let db = TestDb::new(b);
    let ws = workspace(&db, "Acme");
    let first = db.create_api_key(&ws, "crm-sync", "read_only");
    let id = assert_uuid(&first["id"]);
    let old_key = first["key"].as_str().unwrap().to_string();
    let old_hash = db.text(&format!(
        "SELECT secret_hash AS v FROM api_keys WHERE id = '{id}'"
    ));

    let v = db.json(&["apikey", "rotate", &id]);
    assert_eq!(v["id"], id.as_str());
    let new_key = v["key"].as_str().expect("the new key is shown").to_string();
    assert_ne!(new_key, old_key);
    assert!(new_key.starts_with(v["prefix"].as_str().unwrap()));
    assert_eq!(v["access"], "read_only");
    let new_hash = db.text(&format!(
        "SELECT secret_hash AS v FROM api_keys WHERE id = '{id}'"
    ));
    assert_ne!(new_hash, old_hash);
    assert_eq!(db.count("api_keys"), 1, "rotation made a new key");

    let other = db.create_api_key(&ws, "billing", "read_write");
    let other_id = assert_uuid(&other["id"]);
    let v = db.json(&["apikey", "revoke", &other_id]);
    assert_eq!(v["id"], other_id.as_str());
    assert_eq!(v["status"], "revoked");
    assert_eq!(db.count("api_keys"), 2, "revocation deletes nothing");

    let list = db.json_lines(&["apikey", "list", "--workspace", &ws]);
    let status = |key_id: &str| {
        list.iter()
            .find(|r| r["id"] == key_id)
            .map(|r| r["status"].clone())
    };
    assert_eq!(status(&id), Some(Value::from("active")));
    assert_eq!(status(&other_id), Some(Value::from("revoked")));
    let revoked = db.json_lines(&["apikey", "list", "--workspace", &ws, "--status", "revoked"]);
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["id"], other_id.as_str());
    let active = db.json_lines(&["apikey", "list", "--workspace", &ws, "--status", "active"]);
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["id"], id.as_str());

    // Refusals: unknown keys, revoking twice, rotating a revoked key.
    let unknown = uuid::Uuid::new_v4().to_string();
    refused(&db, &["apikey", "revoke", &unknown], None, "key");
    refused(&db, &["apikey", "revoke", "kgk_notanid"], None, "key");
    refused(&db, &["apikey", "rotate", &unknown], None, "key");
    let revoked_at = db.text(&format!(
        "SELECT CAST(revoked_at AS TEXT) AS v FROM api_keys WHERE id = '{other_id}'"
    ));
    let other_hash = db.text(&format!(
        "SELECT secret_hash AS v FROM api_keys WHERE id = '{other_id}'"
    ));
    refused(&db, &["apikey", "rotate", &other_id], None, "revoked");
    refused(&db, &["apikey", "revoke", &other_id], None, "revoked");
    assert_eq!(
        db.text(&format!(
            "SELECT secret_hash AS v FROM api_keys WHERE id = '{other_id}'"
        )),
        other_hash,
        "a refused rotation changed the secret"
    );
    assert_eq!(
        db.text(&format!(
            "SELECT CAST(revoked_at AS TEXT) AS v FROM api_keys WHERE id = '{other_id}'"
        )),
        revoked_at
    );
    refused(
        &db,
        &["apikey", "list", "--workspace", &unknown],
        None,
        "workspace",
    );
    refused(
        &db,
        &["apikey", "list", "--workspace", &ws, "--status", "bogus"],
        None,
        "status",
    );
}

fn apps_and_audit_refusals(b: Backend) {
    let db = TestDb::new(b);
    let ws = workspace(&db, "Acme");
    let unknown = uuid::Uuid::new_v4().to_string();
    // A workspace with no authorizations lists none.
    let out = db.cli(&["--json", "apps", "list", "--workspace", &ws]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.trim().is_empty() && out.stderr.is_empty(),
        "{out:?}"
    );
    refused(
        &db,
        &["apps", "list", "--workspace", &unknown],
        None,
        "workspace",
    );
    refused(&db, &["apps", "revoke", &unknown], None, "authorization");
    refused(&db, &["apps", "revoke", "nope"], None, "authorization");
    refused(
        &db,
        &["audit", "list", "--workspace", &unknown],
        None,
        "workspace",
    );
}

fn migrate_and_keys_rotate(b: Backend) {
    let db = TestDb::new(b);
    let v = db.json(&["migrate"]);
    assert!(v.is_object());
    // The schema is there: every table can be counted.
    assert_eq!(db.count("workspaces"), 0);
    // Running again is harmless.
    assert_human(&db.cli(&["migrate"]));
    db.json(&["migrate"]);

    let before = db.count("signing_keys");
    let v = db.json(&["keys", "rotate"]);
    let kid = v["kid"].as_str().expect("kid").to_string();
    assert!(!kid.is_empty());
    assert_eq!(db.count("signing_keys"), before + 1);
    let out = db.cli(&["keys", "rotate"]);
    assert_human(&out);
    assert_eq!(db.count("signing_keys"), before + 2);
    let v = db.json(&["keys", "rotate"]);
    assert_ne!(v["kid"], kid.as_str());
}

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

/// Runs keygate with exactly the given environment (database variables).
fn run_with_env(args: &[&str], env: &[(&str, &str)], dir: Option<&std::path::Path>) -> CliOut {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("KEYGATE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().expect("run keygate");
    CliOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn created_ok(out: &CliOut) {
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

fn database_url_precedence(b: Backend) {
    let a = TestDb::new(b);
    let flag = TestDb::new(b);
    let c = TestDb::new(b);
    // The flag beats KEYGATE_DATABASE_URL and DATABASE_URL, before or after the subcommand.
    let env = [
        ("KEYGATE_DATABASE_URL", a.url.as_str()),
        ("DATABASE_URL", c.url.as_str()),
    ];
    created_ok(&run_with_env(
        &[
            "--database-url",
            &flag.url,
            "--json",
            "workspace",
            "create",
            "--name",
            "F1",
        ],
        &env,
        None,
    ));
    created_ok(&run_with_env(
        &[
            "workspace",
            "create",
            "--name",
            "F2",
            "--database-url",
            &flag.url,
        ],
        &env,
        None,
    ));
    assert_eq!(flag.count("workspaces"), 2);
    // KEYGATE_DATABASE_URL beats DATABASE_URL.
    created_ok(&run_with_env(
        &["workspace", "create", "--name", "K"],
        &env,
        None,
    ));
    assert_eq!(a.count("workspaces"), 1);
    // DATABASE_URL alone is used.
    created_ok(&run_with_env(
        &["workspace", "create", "--name", "D"],
        &[("DATABASE_URL", c.url.as_str())],
        None,
    ));
    assert_eq!(c.count("workspaces"), 1);
    assert_eq!(a.count("workspaces"), 1);
    assert_eq!(flag.count("workspaces"), 2);
    // A flag that names a database that cannot be opened is not saved by the environment.
    let out = run_with_env(
        &[
            "--database-url",
            "sqlite:///nonexistent-dir/x/y.db",
            "workspace",
            "create",
            "--name",
            "X",
        ],
        &env,
        None,
    );
    out.assert_refused("database");
    assert_eq!(a.count("workspaces"), 1);
    assert_eq!(c.count("workspaces"), 1);
}

fn database_url_spellings(b: Backend) {
    let db = TestDb::new(b);
    match b {
        Backend::Sqlite => {
            // A plain path is a SQLite database.
            let path = db.url.trim_start_matches("sqlite://").to_string();
            assert!(!path.contains("://"));
            created_ok(&run_with_env(
                &[
                    "--database-url",
                    &path,
                    "workspace",
                    "create",
                    "--name",
                    "Plain",
                ],
                &[],
                None,
            ));
            created_ok(&run_with_env(
                &["workspace", "create", "--name", "Env"],
                &[("KEYGATE_DATABASE_URL", path.as_str())],
                None,
            ));
            assert_eq!(db.count("workspaces"), 2);
            // Nothing set: sqlite://keygate.db in the working directory.
            let dir =
                std::env::temp_dir().join(format!("keygate-cwd-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            let out = run_with_env(
                &["--json", "workspace", "create", "--name", "Default"],
                &[],
                Some(&dir),
            );
            created_ok(&out);
            assert!(
                dir.join("keygate.db").exists(),
                "no keygate.db in the working directory"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
        Backend::Postgres => {
            // postgresql:// is PostgreSQL too.
            let url = db.url.replacen("postgres://", "postgresql://", 1);
            created_ok(&run_with_env(
                &[
                    "--database-url",
                    &url,
                    "workspace",
                    "create",
                    "--name",
                    "Pg",
                ],
                &[],
                None,
            ));
            assert_eq!(db.count("workspaces"), 1);
        }
    }
}

fn unopenable_url(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite:///nonexistent-dir/x/y.db",
        Backend::Postgres => "postgres://nobody@127.0.0.1:1/x",
    }
}

/// An admin command on a database that cannot be opened: refused like any bad
/// input, with one line on stderr (the contract: stderr holds only the error line).
fn admin_command_on_unopenable_database(b: Backend) {
    let url = unopenable_url(b);
    for args in [
        vec!["--database-url", url, "workspace", "create", "--name", "X"],
        vec!["--json", "--database-url", url, "migrate"],
        vec!["--database-url", url, "keys", "rotate"],
    ] {
        let out = run_with_env(&args, &[], None);
        eprintln!("keygate {args:?} -> {out:?}");
        out.assert_refused("database");
    }
    let out = run_with_env(
        &["--database-url", "mysql://x@127.0.0.1/x", "migrate"],
        &[],
        None,
    );
    out.assert_refused("mysql");
}

/// `serve` on a database it cannot open exits non-zero, saying why, and never
/// starts listening.
fn serve_refuses_unopenable_database(b: Backend) {
    let port = free_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("KEYGATE_DATABASE_URL", unopenable_url(b))
        .env("KEYGATE_BIND", format!("127.0.0.1:{port}"))
        .env("KEYGATE_ISSUER", format!("http://127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keygate");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keygate serve kept running on a database it cannot open");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap();
    assert!(!status.success(), "exit status {status:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on the port"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr:?}");
    assert!(errors[0].contains("cannot open the database"), "{stderr:?}");
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

/// The code flow for the confidential client, approved by `email`: (access, refresh).
fn tokens_approved_by(f: &Fixture, email: &str, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut http = f.signed_in(email);
    let params = f.approve(&mut http, &f.client_id, scope, &challenge);
    let code = param(&params, "code").expect("code");
    let r = f.exchange(code, &verifier);
    assert_eq!(r.status, 200, "token: {}", r.body);
    let v = r.json();
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
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

fn apps_revoke_ends_tokens(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let (access, refresh) = f.tokens("workspace:read");
    let (other_access, other_refresh) = f.tokens("workspace:read");
    let apps = db.json_lines(&["apps", "list", "--workspace", &f.workspace_id]);
    assert_eq!(apps.len(), 2);
    // Newest first: the second approval is the first line.
    let newest = assert_uuid(&apps[0]["id"]);
    let oldest = assert_uuid(&apps[1]["id"]);

    let out = db.cli(&["apps", "revoke", &oldest, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(v["id"], oldest.as_str());
    assert_eq!(v["status"], "revoked");

    let mut http = f.server.client();
    http.bearer_get("/v1/workspace", &access).assert_v1_error(
        401,
        "authentication_error",
        "invalid_api_key",
    );
    f.refresh(&refresh).assert_oauth_error(400, "invalid_grant");
    assert_eq!(f.introspect(&access)["active"], false);
    // The other authorization is untouched.
    assert_eq!(http.bearer_get("/v1/workspace", &other_access).status, 200);
    assert_eq!(f.refresh(&other_refresh).status, 200);

    let apps = db.json_lines(&["apps", "list", "--workspace", &f.workspace_id]);
    let status = |id: &str| {
        apps.iter()
            .find(|a| a["id"] == id)
            .map(|a| a["status"].clone())
    };
    assert_eq!(status(&oldest), Some(Value::from("revoked")));
    assert_eq!(status(&newest), Some(Value::from("active")));
    // The revocation is in the security log.
    let events = db.json_lines(&["audit", "list", "--workspace", &f.workspace_id]);
    assert!(
        events.iter().any(|e| e["subject"] == oldest.as_str()),
        "{events:?}"
    );
    assert_human(&db.cli(&["apps", "list", "--workspace", &f.workspace_id]));
}

fn apikey_changes_take_effect(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let v = db.create_api_key(&f.workspace_id, "crm-sync", "read_only");
    let id = assert_uuid(&v["id"]);
    let old_key = v["key"].as_str().unwrap().to_string();
    let mut http = f.server.client();
    let ws = http.bearer_get("/v1/workspace", &old_key);
    assert_eq!(ws.status, 200, "{}", ws.body);
    assert_eq!(ws.json()["id"], f.workspace_id.as_str());

    // Rotation: the old secret stops at once, the new one works.
    let new_key = db.json(&["apikey", "rotate", &id])["key"]
        .as_str()
        .unwrap()
        .to_string();
    http.bearer_get("/v1/workspace", &old_key).assert_v1_error(
        401,
        "authentication_error",
        "invalid_api_key",
    );
    assert_eq!(http.bearer_get("/v1/workspace", &new_key).status, 200);

    // The free plan has no API access; back on pro the key works again.
    db.json(&["workspace", "set-plan", &f.workspace_id, "--plan", "free"]);
    http.bearer_get("/v1/workspace", &new_key).assert_v1_error(
        401,
        "authentication_error",
        "invalid_api_key",
    );
    db.json(&["workspace", "set-plan", &f.workspace_id, "--plan", "pro"]);
    assert_eq!(http.bearer_get("/v1/workspace", &new_key).status, 200);

    // Revocation: immediate.
    db.json(&["apikey", "revoke", &id]);
    http.bearer_get("/v1/workspace", &new_key).assert_v1_error(
        401,
        "authentication_error",
        "invalid_api_key",
    );
    // An expiring key works until its last day is over.
    let day = days_from_today(1).format("%Y-%m-%d").to_string();
    let v = db.json(&[
        "apikey",
        "create",
        "--workspace",
        &f.workspace_id,
        "--name",
        "short-lived",
        "--access",
        "read_write",
        "--expires",
        &day,
    ]);
    let key = v["key"].as_str().unwrap();
    assert_eq!(http.bearer_get("/v1/workspace", key).status, 200);
    let r = http.bearer_post_json("/v1/tags", key, r#"{"name":"from-key"}"#);
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Commands started together on a fresh database (nodes of one deployment
/// starting at once) each migrate it first: one applies the migrations, the
/// others wait or find them applied, and every command succeeds.
fn first_runs_at_once_migrate_once(b: Backend) {
    let db = TestDb::new(b);
    let outs: Vec<CliOut> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let db = &db;
                s.spawn(move || {
                    db.cli(&[
                        "--json",
                        "workspace",
                        "create",
                        "--name",
                        &format!("Together {i}"),
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(db.count("workspaces"), 6);
}

both_backends!(
    workspace_create_and_set_plan,
    workspace_refusals,
    user_create,
    user_refusals,
    member_add_and_remove,
    member_refusals,
    client_create,
    client_refusals,
    apikey_create,
    apikey_create_refusals,
    apikey_rotate_revoke_and_list,
    apps_and_audit_refusals,
    migrate_and_keys_rotate,
    json_flag_and_human_output,
    database_url_precedence,
    database_url_spellings,
    admin_command_on_unopenable_database,
    serve_refuses_unopenable_database,
    usage_errors_change_nothing,
    member_remove_revokes_their_authorizations,
    apps_revoke_ends_tokens,
    apikey_changes_take_effect,
    first_runs_at_once_migrate_once,
);
