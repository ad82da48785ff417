//! Generating an API key, in the settings page and the CLI: shown once, its format,
//! checksum and storage, its expiry, and one key for concurrent submits.

use super::*;

// ---------------------------------------------------------------- helpers

const KEY_LEN: usize = 4 + 10 + 1 + 32 + 6;

fn base62(mut n: u32) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as RFC 3339 writes a UTC time (a four-digit year).
fn is_rfc3339_utc(v: &Value) -> bool {
    let Some(t) = v.as_str() else { return false };
    let b = t.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
        && chrono::DateTime::parse_from_rfc3339(t).is_ok()
}

// ---------------------------------------------------------------- tests

fn generate_in_settings_page_shows_the_key_once(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();

    // The page: a generate form with its CSRF token and the workspace chosen
    // (the drawer's Workspace field, the current one selected).
    let page = keys_page(&mut owner, &ws);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(hidden(&page.body, "csrf_token").is_some_and(|c| c.len() >= 16));
    let workspace_field = page
        .body
        .split("name=\"workspace_id\"")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .expect("a workspace_id field");
    assert!(
        workspace_field.contains(&format!("<option value=\"{ws}\" selected>")),
        "the current workspace is not the chosen one: {workspace_field}"
    );
    assert!(page.body.contains("name=\"access\""));
    assert!(page.body.contains("No API keys yet"));

    // Generate: the full key, once, on a page nobody caches.
    let r = generate(&mut owner, &ws, "crm-sync", "read_write", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let key = shown_key(&r.body).expect("the new key is shown");
    assert!(key.starts_with("kgk_"), "{key}");
    assert_eq!(r.body.matches(&key).count(), 1, "the key is shown once");
    assert!(r.body.contains("crm-sync"));
    assert_eq!(db.count("api_keys"), 1);

    // It works on /v1, for this workspace, with read_write scopes.
    let mut api = f.server.client();
    let w = api.bearer_get("/v1/workspace", &key);
    assert_eq!(w.status, 200, "{}", w.body);
    assert_eq!(w.json()["id"], ws.as_str());
    let t = api.bearer_post_json("/v1/tags", &key, r#"{"name":"from-key"}"#);
    assert_eq!(t.status, 201, "{}", t.body);

    // A read-only key with an expiry date, from the page too.
    let last_day = days_from_today(30);
    let r = generate(&mut owner, &ws, "reporting", "read_only", &last_day);
    assert_eq!(r.status, 200, "{}", r.body);
    let ro = shown_key(&r.body).expect("the new key is shown");
    assert_ne!(ro, key);
    assert_eq!(api.bearer_get("/v1/tags", &ro).status, 200);
    api.bearer_post_json("/v1/tags", &ro, r#"{"name":"nope"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");

    // The CLI list agrees: creator, access, expiry (24:00 UTC of the last day).
    let rw = listed(db, &ws, "crm-sync");
    assert_eq!(rw["access"], "read_write");
    assert_eq!(rw["created_by"], f.owner_email.as_str());
    assert_eq!(rw["status"], "active");
    assert_eq!(rw["expires_at"], Value::Null);
    assert!(key.starts_with(&s(&rw, "prefix")));
    let reporting = listed(db, &ws, "reporting");
    assert_eq!(reporting["access"], "read_only");
    let end = chrono::NaiveDate::parse_from_str(&last_day, "%Y-%m-%d").unwrap()
        + chrono::Duration::days(1);
    assert_eq!(
        reporting["expires_at"],
        format!("{}T00:00:00Z", end.format("%Y-%m-%d"))
    );

    // The list page: name, prefix, access, last used, expiry, status; never
    // the full key. The creator and usage are on the key's page.
    assert!(
        eventually(Duration::from_secs(5), || listed(db, &ws, "crm-sync")
            ["usage_count"]
            == 2),
        "usage of the new key was not counted"
    );
    let page = keys_page(&mut owner, &ws);
    assert_eq!(page.status, 200);
    let line = row(&page.body, "crm-sync");
    for needed in [
        format!(">{}</code>", s(&rw, "prefix")),
        cell("Read and write"),
        cell("never"),
        "active".to_string(),
    ] {
        assert!(line.contains(&needed), "the row lacks {needed:?}: {line}");
    }
    let used_today = format!("title=\"{} ", chrono::Utc::now().format("%Y-%m-%d"));
    assert!(line.contains(&used_today), "no last-used time: {line}");
    let line = row(&page.body, "reporting");
    for needed in [
        format!(">{}</code>", s(&reporting, "prefix")),
        cell("Read only"),
        cell(&last_day),
        "active".to_string(),
    ] {
        assert!(line.contains(&needed), "the row lacks {needed:?}: {line}");
    }
    for secret in [&key, &ro] {
        assert!(!page.body.contains(secret.as_str()), "the list shows a key");
        assert!(
            !page.body.contains(&secret[15..47]),
            "the list shows a secret"
        );
    }
    assert_eq!(
        page.body.matches("/rotate\"").count(),
        2,
        "each key can be rotated"
    );
    // Only a hash is stored.
    for (id, k) in [(s(&rw, "id"), &key), (s(&reporting, "id"), &ro)] {
        assert_ne!(&secret_hash(db, &id), k);
        let all = db
            .text(&format!(
                "SELECT id || '|' || workspace_id || '|' || name || '|' || public_id || '|' \
                 || secret_hash || '|' || access || '|' || created_by AS v \
                 FROM api_keys WHERE id = '{id}'"
            ))
            .unwrap();
        assert!(
            !all.contains(k.as_str()) && !all.contains(&k[15..47]),
            "{all}"
        );
    }
    assert!(!f.server.logs().contains(&key[15..47]), "a key in the logs");

    // Names are text, never markup.
    let r = generate(
        &mut owner,
        &ws,
        "<img src=x onerror=alert(1)>",
        "read_only",
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.body.contains("<img src=x"),
        "unescaped name on the key page"
    );
    let page = keys_page(&mut owner, &ws);
    assert!(
        !page.body.contains("<img src=x"),
        "unescaped name in the list"
    );
    assert!(
        page.body.contains("img src=x onerror=alert(1)"),
        "the name is listed"
    );
}

fn key_format_checksum_and_storage(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let v = db.create_api_key(&f.workspace_id, "crm-sync", "read_write");
    let key = s(&v, "key");
    let prefix = s(&v, "prefix");
    let id = s(&v, "id");
    assert!(key.starts_with("kgk_"), "{key}");
    assert!(key.starts_with(&prefix) && prefix.len() >= 8 && prefix.len() < key.len() / 2);
    assert_eq!(v["access"], "read_write");
    assert_eq!(v["expires_at"], Value::Null);
    assert_eq!(key.len(), KEY_LEN, "{key}");
    assert!(key[4..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_'));

    // Only a hash is stored, and no column holds the key or its secret part.
    let stored = secret_hash(db, &id);
    assert_ne!(stored, key);
    assert!(!stored.contains(&key[15..47]));
    let row = db
        .text(
            "SELECT id || '|' || workspace_id || '|' || name || '|' || public_id || '|' \
             || secret_hash || '|' || access || '|' || created_by AS v FROM api_keys",
        )
        .unwrap();
    assert!(!row.contains(&key[15..47]), "{row}");
    assert_eq!(
        db.count(&format!(
            "audit_events WHERE subject LIKE '%{0}%' OR actor LIKE '%{0}%'",
            &key[15..47]
        )),
        0
    );
    // The listing never prints it.
    let out = db.cli(&["--json", "apikey", "list", "--workspace", &f.workspace_id]);
    assert!(!out.stdout.contains(&key[15..47]));
    assert!(list(db, &f.workspace_id)[0].get("key").is_none());

    let mut http = f.server.client();
    // Typos are caught by the checksum, wherever they are.
    let mut altered = Vec::new();
    for i in [4, 10, 15, 20, 30, 46, 47, 50, KEY_LEN - 1] {
        let mut bytes = key.clone().into_bytes();
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        altered.push(String::from_utf8(bytes).unwrap());
    }
    altered.push(key[..KEY_LEN - 1].to_string());
    altered.push(format!("{key}a"));
    altered.push(key.to_uppercase());
    altered.push(key.replacen("kgk_", "kgx_", 1));
    altered.push(prefix.clone());
    for bad in &altered {
        assert!(!works(&mut http, bad), "{bad} was accepted");
    }
    // A well-formed key with a valid checksum but another secret: the secret
    // itself is checked, not just the public id.
    let body = format!("{}{}", &key[..15], "Z".repeat(32));
    let forged = format!("{body}{}", base62(crc32fast::hash(body.as_bytes())));
    assert!(!works(&mut http, &forged), "forged secret accepted");
    // And the real key still works after all of that.
    assert!(works(&mut http, &key));
    assert!(!f.server.logs().contains(&key[15..47]), "a key in the logs");
}

/// Racing generate forms with one name: one key, the others refused; no 5xx.
fn concurrent_generates_make_one_key(b: Backend) {
    let f = Fixture::new(b);
    let ws = f.workspace_id.clone();
    let mut sessions = Vec::new();
    for _ in 0..6 {
        let mut http = f.owner();
        let csrf = csrf_of(&mut http, &ws);
        sessions.push((http, csrf));
    }
    let handles: Vec<_> = sessions
        .into_iter()
        .map(|(mut http, csrf)| {
            let ws = ws.clone();
            std::thread::spawn(move || {
                http.post_form(
                    "/settings/api-keys",
                    &[
                        ("csrf_token", &csrf),
                        ("workspace_id", &ws),
                        ("name", "race"),
                        ("access", "read_only"),
                        ("expires", ""),
                    ],
                )
            })
        })
        .collect();
    let results: Vec<Resp> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut keys = Vec::new();
    for r in &results {
        assert!(r.status < 500, "{} {}", r.status, r.body);
        match shown_key(&r.body) {
            Some(k) => {
                assert_eq!(r.status, 200);
                keys.push(k);
            }
            None => {
                assert!(matches!(r.status, 400 | 409), "{} {}", r.status, r.body);
                assert!(r.body.contains("already exists"), "{}", r.body);
            }
        }
    }
    assert_eq!(keys.len(), 1, "{} keys for one name", keys.len());
    assert_eq!(f.db().count("api_keys"), 1);
    assert!(works(&mut f.server.client(), &keys[0]));
}

/// The contract's times are RFC 3339, and `--expires` takes any YYYY-MM-DD that
/// is not past: the last possible day must either print a valid time or be
/// refused with one clear line, never `+10000-01-01T00:00:00Z`.
fn far_future_expiry_is_an_rfc3339_time(b: Backend) {
    let db = TestDb::new(b);
    let ws = db.create_workspace("Acme");
    let v = db.create_api_key_expiring(&ws, "next-century", "read_only", "2999-12-31");
    assert_eq!(v["expires_at"], "3000-01-01T00:00:00Z");
    let out = db.cli(&[
        "--json",
        "apikey",
        "create",
        "--workspace",
        &ws,
        "--name",
        "forever-ish",
        "--access",
        "read_only",
        "--expires",
        "9999-12-31",
    ]);
    if out.code == 0 {
        let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert!(
            is_rfc3339_utc(&v["expires_at"]),
            "apikey create printed expires_at {} (not RFC 3339)",
            v["expires_at"]
        );
    } else {
        out.assert_refused("expir");
    }
    for k in list(&db, &ws) {
        assert!(
            is_rfc3339_utc(&k["expires_at"]) && is_rfc3339_utc(&k["created_at"]),
            "apikey list printed {k}"
        );
    }
}

both_backends!(
    generate_in_settings_page_shows_the_key_once,
    key_format_checksum_and_storage,
    far_future_expiry_is_an_rfc3339_time,
    concurrent_generates_make_one_key,
);
