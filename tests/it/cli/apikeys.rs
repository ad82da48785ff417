//! `keygate apikey`: create, rotate, revoke and list, refusals, and changes taking
//! effect on a running server.

use super::*;

fn days_from_today(days: i64) -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() + chrono::Duration::days(days)
}

/// True when a test that depends on "today" could straddle midnight UTC.
fn near_midnight() -> bool {
    use chrono::Timelike;
    let t = chrono::Utc::now();
    t.hour() == 23 && t.minute() == 59 && t.second() > 50
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

both_backends!(
    apikey_create,
    apikey_create_refusals,
    apikey_rotate_revoke_and_list,
    apikey_changes_take_effect,
);
