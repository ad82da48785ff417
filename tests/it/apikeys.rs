//! API keys: the whole lifecycle, in the CLI and the settings pages: generate,
//! show once, list, search, rotate, revoke, expire, count usage, and every refusal
//! (duplicates, past dates, secret-looking names, members, forged forms, plans).

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

// ---------------------------------------------------------------- helpers

const KEY_LEN: usize = 4 + 10 + 1 + 32 + 6;

fn today() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn days_from_today(n: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(n))
        .format("%Y-%m-%d")
        .to_string()
}

fn keys_page(http: &mut Http, ws: &str) -> Resp {
    http.get(&format!("/settings/api-keys?workspace={ws}"))
}

/// Loads the keys page for its CSRF token, then posts the generate form.
fn generate(http: &mut Http, ws: &str, name: &str, access: &str, expires: &str) -> Resp {
    let page = keys_page(http, ws);
    assert_eq!(page.status, 200, "keys page: {}", page.body);
    let csrf = hidden(&page.body, "csrf_token").expect("the page has a CSRF token");
    http.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &csrf),
            ("workspace_id", ws),
            ("name", name),
            ("access", access),
            ("expires", expires),
        ],
    )
}

/// The full key in the "save your key" page (input id="new-key").
fn shown_key(html: &str) -> Option<String> {
    let at = html.find("id=\"new-key\"")?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let end = tag[v..].find('"')? + v;
    Some(unescape(&tag[v..end]))
}

fn csrf_of(http: &mut Http, ws: &str) -> String {
    let page = keys_page(http, ws);
    hidden(&page.body, "csrf_token").expect("csrf_token")
}

fn rotate_in_page(http: &mut Http, id: &str, csrf: &str) -> Resp {
    http.post_form(
        &format!("/settings/api-keys/{id}/rotate"),
        &[("csrf_token", csrf)],
    )
}

fn revoke_in_page(http: &mut Http, id: &str, csrf: &str, typed: &str) -> Resp {
    http.post_form(
        &format!("/settings/api-keys/{id}/revoke"),
        &[("csrf_token", csrf), ("confirm_name", typed)],
    )
}

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
        .to_string()
}

fn list(db: &TestDb, ws: &str) -> Vec<Value> {
    db.json_lines(&["apikey", "list", "--workspace", ws])
}

fn listed(db: &TestDb, ws: &str, name: &str) -> Value {
    list(db, ws)
        .into_iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no key named {name:?} in the list"))
}

/// `GET /v1/workspace` with the key: 200 or the contract's 401.
fn works(http: &mut Http, key: &str) -> bool {
    let r = http.bearer_get("/v1/workspace", key);
    match r.status {
        200 => true,
        401 => {
            r.assert_v1_error(401, "authentication_error", "invalid_api_key");
            assert!(
                r.header("www-authenticate")
                    .is_some_and(|w| w.starts_with("Bearer") && w.contains("invalid_token")),
                "{:?}",
                r.headers
            );
            false
        }
        other => panic!("unexpected status {other}: {}", r.body),
    }
}

/// The table row of the key with that name in the keys page.
fn row(html: &str, name: &str) -> String {
    let at = html
        .find(&cell(name))
        .unwrap_or_else(|| panic!("no row for {name:?}"));
    let start = html[..at].rfind("<tr>").expect("<tr>");
    let end = at + html[at..].find("</tr>").expect("</tr>");
    html[start..end].to_string()
}

/// A table cell as the keys page renders it.
/// A table cell's text, whatever the cell's attributes.
fn cell(text: &str) -> String {
    format!(">{text}</td>")
}

fn new_user(db: &TestDb) -> (String, String) {
    let email = format!(
        "user-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    (db.create_user(&email), email)
}

fn secret_hash(db: &TestDb, id: &str) -> String {
    db.text(&format!(
        "SELECT secret_hash AS v FROM api_keys WHERE id = '{id}'"
    ))
    .expect("the key's row")
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
    assert!(page.body.contains("No API keys match."));

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

    // The list page: name, prefix, access, creator, usage, last used, expiry,
    // status; never the full key.
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
        format!("<code>{}</code>", s(&rw, "prefix")),
        cell("Read and write"),
        f.owner_email.clone(),
        ">2<br>".to_string(),
        cell("never"),
        "active".to_string(),
    ] {
        assert!(line.contains(&needed), "the row lacks {needed:?}: {line}");
    }
    let used_today = format!(">{} ", chrono::Utc::now().format("%Y-%m-%d"));
    assert!(line.contains(&used_today), "no last-used time: {line}");
    let line = row(&page.body, "reporting");
    for needed in [
        format!("<code>{}</code>", s(&reporting, "prefix")),
        cell("Read only"),
        f.owner_email.clone(),
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

fn base62(mut n: u32) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
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

fn rotate_and_revoke_in_the_pages(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();
    let r = generate(&mut owner, &ws, "crm-sync", "read_write", "");
    let old = shown_key(&r.body).expect("key");
    let row = listed(db, &ws, "crm-sync");
    let id = s(&row, "id");
    let prefix = s(&row, "prefix");
    let mut api = f.server.client();
    assert!(works(&mut api, &old), "cached before the rotation");

    // Rotate: the new secret shown once; the old one refused at once.
    let csrf = csrf_of(&mut owner, &ws);
    let r = rotate_in_page(&mut owner, &id, &csrf);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let new = shown_key(&r.body).expect("the rotated key is shown");
    assert_ne!(new, old);
    assert!(
        new.starts_with(&prefix),
        "the prefix changed: {new} {prefix}"
    );
    assert!(!works(&mut api, &old), "the old secret still works");
    assert!(works(&mut api, &new));
    assert!(!works(&mut api, &old));
    let after = listed(db, &ws, "crm-sync");
    assert_eq!(after["id"], id.as_str());
    assert_eq!(after["prefix"], prefix.as_str());
    assert_eq!(after["status"], "active");
    assert_ne!(secret_hash(db, &id), new);
    let page = keys_page(&mut owner, &ws);
    assert!(!page.body.contains(&new) && !page.body.contains(&old));
    assert!(page.body.contains(&cell("crm-sync")));

    // Revoke with the wrong name typed: refused, the key still works.
    for typed in ["", "crm", "CRM-SYNC", "crm-sync2"] {
        let r = revoke_in_page(&mut owner, &id, &csrf, typed);
        assert!(r.status >= 400 && r.status < 500, "{typed:?}: {}", r.status);
        assert!(r.body.contains("type the key"), "{}", r.body);
        assert!(works(&mut api, &new), "revoked with {typed:?}");
    }
    assert_eq!(listed(db, &ws, "crm-sync")["status"], "active");

    // Revoke with the name typed: refused at once.
    let r = revoke_in_page(&mut owner, &id, &csrf, "crm-sync");
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location().contains("notice=key_revoked"),
        "{}",
        r.location()
    );
    assert!(!works(&mut api, &new), "a revoked key still works");
    assert_eq!(listed(db, &ws, "crm-sync")["status"], "revoked");
    let page = owner.get(&r.location());
    assert_eq!(page.status, 200);
    assert!(page.body.contains("revoked"));
    assert!(
        !page
            .body
            .contains(&format!("/settings/api-keys/{id}/rotate")),
        "a revoked key is offered for rotation"
    );

    // A revoked key cannot be rotated, in the page or the CLI, nor revoked again.
    let hash = secret_hash(db, &id);
    let r = rotate_in_page(&mut owner, &id, &csrf);
    assert!(
        matches!(r.status, 400 | 409),
        "rotated a revoked key: {} {}",
        r.status,
        r.body
    );
    assert!(shown_key(&r.body).is_none());
    db.cli(&["apikey", "rotate", &id]).assert_refused("revoked");
    assert_eq!(secret_hash(db, &id), hash);
    assert_eq!(listed(db, &ws, "crm-sync")["status"], "revoked");
    assert!(!works(&mut api, &new) && !works(&mut api, &old));
    let r = revoke_in_page(&mut owner, &id, &csrf, "crm-sync");
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);
    // Unknown ids.
    let r = rotate_in_page(&mut owner, "no-such-key", &csrf);
    assert_eq!(r.status, 404);
}

fn rotate_and_revoke_in_the_cli(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let v = db.create_api_key(&f.workspace_id, "crm-sync", "read_only");
    let (id, old, prefix) = (s(&v, "id"), s(&v, "key"), s(&v, "prefix"));
    let mut api = f.server.client();
    assert!(works(&mut api, &old));

    let r = db.json(&["apikey", "rotate", &id]);
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["prefix"], prefix.as_str());
    assert_eq!(r["access"], "read_only");
    let new = s(&r, "key");
    assert_ne!(new, old);
    assert!(new.starts_with(&prefix));
    // Right after the command returns, on the running server.
    assert!(!works(&mut api, &old), "the old secret still works");
    assert!(works(&mut api, &new));

    let r = db.json(&["apikey", "revoke", &id]);
    assert_eq!(r, serde_json::json!({"id": id, "status": "revoked"}));
    assert!(!works(&mut api, &new), "a revoked key still works");
    assert_eq!(listed(db, &f.workspace_id, "crm-sync")["status"], "revoked");
    db.cli(&["apikey", "rotate", &id]).assert_refused("revoked");
    db.cli(&["apikey", "revoke", &id]).assert_refused("revoked");
    db.cli(&["apikey", "rotate", "no-such-key"])
        .assert_refused("no-such-key");
    assert!(!works(&mut api, &new));
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

fn expired_key_is_refused_the_moment_it_expires(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    // `--expires` is the last day the key works: it ends at 24:00 UTC that day.
    let v = db.create_api_key_expiring(&ws, "short-lived", "read_only", &today());
    assert_eq!(v["expires_at"], format!("{}T00:00:00Z", days_from_today(1)));
    let (id, key) = (s(&v, "id"), s(&v, "key"));
    // Bring the end close, before the key is ever used (and cached).
    let expires_at = chrono::Utc::now().timestamp() + 2;
    db.execute(&format!(
        "UPDATE api_keys SET expires_at = {expires_at} WHERE id = '{id}'"
    ));
    let mut api = f.server.client();
    assert!(works(&mut api, &key), "refused before it expired");
    assert!(works(&mut api, &key));
    assert_eq!(listed(db, &ws, "short-lived")["status"], "active");
    while chrono::Utc::now().timestamp() < expires_at {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(30));
    assert!(!works(&mut api, &key), "an expired key still works");
    assert_eq!(listed(db, &ws, "short-lived")["status"], "expired");
    let page = keys_page(&mut f.owner(), &ws);
    assert!(page.body.contains("status-expired"), "{}", page.body);
    assert!(!works(&mut api, &key));
}

fn usage_counts_and_last_used(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let used = s(&db.create_api_key(&ws, "busy", "read_write"), "key");
    db.create_api_key(&ws, "idle", "read_only");
    let mut api = f.server.client();
    let n = 7;
    for i in 0..n {
        let r = match i % 3 {
            0 => api.bearer_get("/v1/workspace", &used),
            1 => api.bearer_get("/v1/tags", &used),
            _ => api.bearer_post_json("/v1/forms", &used, &format!(r#"{{"name":"f{i}"}}"#)),
        };
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
    }
    // Failed attempts are no use of the key.
    let mut broken = used.clone().into_bytes();
    broken[20] = if broken[20] == b'a' { b'b' } else { b'a' };
    assert!(!works(&mut api, &String::from_utf8(broken).unwrap()));
    let start = chrono::Utc::now();
    assert!(
        eventually(Duration::from_secs(5), || listed(db, &ws, "busy")
            ["usage_count"]
            == n),
        "usage not counted: {}",
        listed(db, &ws, "busy")
    );
    // Settle, then make sure the count did not overshoot.
    std::thread::sleep(Duration::from_millis(1200));
    let busy = listed(db, &ws, "busy");
    assert_eq!(busy["usage_count"], n, "{busy}");
    let last = chrono::DateTime::parse_from_rfc3339(&s(&busy, "last_used_at")).unwrap();
    let age = (start - last.with_timezone(&chrono::Utc)).num_seconds();
    assert!((-2..=5).contains(&age), "last_used_at {last} vs {start}");
    let idle = listed(db, &ws, "idle");
    assert_eq!(idle["usage_count"], 0);
    assert_eq!(idle["last_used_at"], Value::Null);
    // The page shows the count, and the 30-day chart holds the same requests.
    let page = keys_page(&mut f.owner(), &ws);
    assert!(page.body.contains(&format!(">{n}<br>")), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("{n} requests in the last 30 days")),
        "{}",
        page.body
    );
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

fn search_and_filter_the_list(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();
    assert_eq!(
        generate(&mut owner, &ws, "crm-sync", "read_write", "").status,
        200
    );
    let backup = db.create_api_key(&ws, "CRM backup", "read_only");
    let billing = db.create_api_key(&ws, "billing-export", "read_only");
    let report = db.create_api_key(&ws, "old-report", "read_only");
    db.json(&["apikey", "revoke", &s(&billing, "id")]);
    db.execute(&format!(
        "UPDATE api_keys SET expires_at = {} WHERE id = '{}'",
        chrono::Utc::now().timestamp() - 60,
        s(&report, "id")
    ));
    let all = ["crm-sync", "CRM backup", "billing-export", "old-report"];

    let mut check = |query: &str, expected: &[&str]| {
        let page = owner.get(&format!("/settings/api-keys?workspace={ws}&{query}"));
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        for name in all {
            assert_eq!(
                page.body.contains(&cell(name)),
                expected.contains(&name),
                "{query}: {name}"
            );
        }
        if expected.is_empty() {
            assert!(page.body.contains("No API keys match."));
        }
    };
    check("", &all);
    check("q=crm", &["crm-sync", "CRM backup"]);
    check("q=CRM", &["crm-sync", "CRM backup"]);
    check("q=billing", &["billing-export"]);
    check("q=nothing-like-this", &[]);
    check("status=active", &["crm-sync", "CRM backup"]);
    check("status=expired", &["old-report"]);
    check("status=revoked", &["billing-export"]);
    check("q=crm&status=revoked", &[]);
    check("q=report&status=expired", &["old-report"]);
    // By creator, by workspace name, by prefix.
    let local_part = f.owner_email.split('@').next().unwrap().to_string();
    check(&format!("q={local_part}"), &["crm-sync"]);
    check(
        "q=keygate+CLI",
        &["CRM backup", "billing-export", "old-report"],
    );
    check("q=acme", &all);
    check(&format!("q={}", s(&backup, "prefix")), &["CRM backup"]);
    // The search box keeps what was asked.
    let page = owner.get(&format!(
        "/settings/api-keys?workspace={ws}&q=crm&status=revoked"
    ));
    assert!(page.body.contains("value=\"crm\""));
    assert!(page.body.contains("<option value=\"revoked\" selected>"));

    // The CLI's list filters the same way.
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["apikey", "list", "--workspace", ws.as_str()];
        all.extend_from_slice(args);
        db.json_lines(&all).iter().map(|k| s(k, "name")).collect()
    };
    assert_eq!(names(&["--status", "revoked"]), ["billing-export"]);
    assert_eq!(names(&["--status", "expired"]), ["old-report"]);
    let mut active = names(&["--status", "active"]);
    active.sort();
    assert_eq!(active, ["CRM backup", "crm-sync"]);
    assert_eq!(names(&["--search", "billing"]), ["billing-export"]);
    // Newest first.
    assert_eq!(
        names(&[]),
        ["old-report", "billing-export", "CRM backup", "crm-sync"]
    );
    db.cli(&["apikey", "list", "--workspace", &ws, "--status", "bogus"])
        .assert_refused("status");
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
    refusals_change_nothing,
    rotate_and_revoke_in_the_pages,
    rotate_and_revoke_in_the_cli,
    members_and_outsiders_cannot_manage_keys,
    forged_csrf_changes_nothing,
    expired_key_is_refused_the_moment_it_expires,
    usage_counts_and_last_used,
    plan_without_api_access,
    search_and_filter_the_list,
    far_future_expiry_is_an_rfc3339_time,
    concurrent_generates_make_one_key,
);
