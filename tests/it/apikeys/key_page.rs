//! The page of one API key: what it shows, the edit without rotation (and
//! its refusals, which keep what was typed and change nothing), who may see
//! it, and the generate form's expiry presets.

use super::*;

fn key_page(http: &mut Http, id: &str) -> Resp {
    http.get(&format!("/settings/api-keys/{id}"))
}

fn edit(http: &mut Http, id: &str, csrf: &str, fields: &[(&str, &str)]) -> Resp {
    let mut form = vec![("csrf_token", csrf)];
    form.extend_from_slice(fields);
    http.post_form(&format!("/settings/api-keys/{id}"), &form)
}

/// The API key's stored name, access, scopes, addresses and description.
fn stored(db: &TestDb, id: &str) -> (String, String, String, String, String) {
    let v = |col: &str| {
        db.text(&format!(
            "SELECT COALESCE({col}, '') AS v FROM api_keys WHERE id = '{id}'"
        ))
        .expect("the key's row")
    };
    (
        v("name"),
        v("access"),
        v("scopes"),
        v("allowed_ips"),
        v("description"),
    )
}

fn page_shows_the_key_and_edits_it_without_rotating(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let v = db.create_api_key(&ws, "crm-sync", "read_write");
    let (id, key) = (s(&v, "id"), s(&v, "key"));
    let mut api = f.server.client();
    assert_eq!(api.bearer_get("/v1/tags", &key).status, 200);
    let mut owner = f.owner();
    assert!(eventually(Duration::from_secs(5), || {
        listed(db, &ws, "crm-sync")["usage_count"] == 1
    }));
    let page = key_page(&mut owner, &id);
    assert_eq!(page.status, 200, "{}", page.body);
    for needed in [
        "crm-sync",
        "Read and write",
        "tags:write",
        "Any address",
        "Never expires",
        "keygate CLI",
        "1 in all, 1 in the last 30 days",
        "<time datetime=",
        "from <code>127.0.0.1</code>",
        "API key generated",
        "class=\"usage-chart\"",
    ] {
        assert!(page.body.contains(needed), "the page lacks {needed:?}");
    }
    assert!(!page.body.contains(&key), "the page shows the secret");
    let csrf = hidden(&page.body, "csrf_token").expect("csrf");

    // Edit: a new name, a description, fewer scopes and an allowlist.
    let r = edit(
        &mut owner,
        &id,
        &csrf,
        &[
            ("name", "crm-sync-eu"),
            ("description", "The CRM's nightly sync.\nOwner: data team"),
            ("access", "custom"),
            ("scope", "tags:read"),
            ("allowed_ips", "127.0.0.0/8, ::1"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().contains("notice=key_updated"));
    let (name, access, scopes, _, description) = stored(db, &id);
    assert_eq!((name.as_str(), access.as_str()), ("crm-sync-eu", "custom"));
    assert_eq!(scopes, "tags:read");
    assert_eq!(description, "The CRM's nightly sync.\nOwner: data team");
    // The same secret works, with the new scopes at once.
    assert_eq!(api.bearer_get("/v1/tags", &key).status, 200);
    let r = api.bearer_post_json("/v1/tags", &key, r#"{"name":"t"}"#);
    r.assert_v1_error(403, "permission_error", "insufficient_scope");
    let page = key_page(&mut owner, &id);
    assert!(page.body.contains("API key edited"), "{}", page.body);
    assert!(page.body.contains("renamed from"), "{}", page.body);
    assert!(page.body.contains("Owner: data team"));

    // An allowlist that excludes this client: refused at once.
    let r = edit(
        &mut owner,
        &id,
        &csrf,
        &[
            ("name", "crm-sync-eu"),
            ("access", "read_only"),
            ("allowed_ips", "203.0.113.0/24"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    api.bearer_get("/v1/tags", &key)
        .assert_v1_error(403, "permission_error", "ip_not_allowed");
}

fn bad_edits_keep_the_form_and_change_nothing(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let id = s(&db.create_api_key(&ws, "billing", "read_only"), "id");
    db.create_api_key(&ws, "taken-name", "read_only");
    let before = stored(db, &id);
    let mut owner = f.owner();
    let csrf = hidden(&key_page(&mut owner, &id).body, "csrf_token").expect("csrf");
    let long = "x".repeat(501);
    for (fields, says) in [
        (
            vec![("name", ""), ("access", "read_only")],
            "must not be empty",
        ),
        (
            vec![("name", "taken-name"), ("access", "read_only")],
            "already exists",
        ),
        (vec![("name", "billing"), ("access", "admin")], "access"),
        (
            vec![
                ("name", "billing"),
                ("access", "read_only"),
                ("allowed_ips", "10.0.0.0/33"),
            ],
            "Allowed addresses",
        ),
        (
            vec![
                ("name", "billing"),
                ("access", "read_only"),
                ("description", long.as_str()),
            ],
            "at most 500",
        ),
        (
            vec![
                ("name", "billing"),
                ("access", "read_only"),
                ("description", "a\u{202e}b"),
            ],
            "invisible",
        ),
    ] {
        let r = edit(&mut owner, &id, &csrf, &fields);
        assert_eq!(r.status, 400, "{fields:?}: {}", r.body);
        assert!(
            r.body.contains(says),
            "{fields:?}: no {says:?} in {}",
            r.body
        );
        assert!(r.body.contains("id=\"edit-error\""), "{fields:?}");
        // What was typed is still in the form.
        let typed = fields[0].1;
        if !typed.is_empty() {
            assert!(r.body.contains(&format!("value=\"{typed}\"")), "{fields:?}");
        }
        assert_eq!(stored(db, &id), before, "{fields:?} changed the key");
    }
    // A forged form changes nothing.
    let r = edit(
        &mut owner,
        &id,
        "forged",
        &[("name", "x"), ("access", "read_only")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(stored(db, &id), before);
    // A revoked key is not edited.
    assert_eq!(db.cli(&["apikey", "revoke", &id]).code, 0);
    let r = edit(
        &mut owner,
        &id,
        &csrf,
        &[("name", "again"), ("access", "read_only")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("revoked"), "{}", r.body);
    assert_eq!(stored(db, &id).0, "billing");
}

fn strangers_and_members_get_not_found(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let id = s(&db.create_api_key(&ws, "private", "read_only"), "id");
    let before = stored(db, &id);
    let (_, member) = f.add_user("member");
    let other = db.create_workspace("Elsewhere");
    let stranger = format!("stranger-{}@example.com", &id[..8]);
    let stranger_id = db.create_user(&stranger);
    db.add_member(&other, &stranger_id, "owner");
    for email in [&member, &stranger] {
        let mut http = f.signed_in(email);
        let r = key_page(&mut http, &id);
        assert_eq!(r.status, 404, "{email}: {}", r.body);
        assert!(!r.body.contains("private"), "{email} sees the key's name");
        let unknown = key_page(&mut http, "00000000-0000-0000-0000-000000000000");
        assert_eq!(unknown.status, 404);
        assert_eq!(
            r.body.len(),
            unknown.body.len(),
            "{email}: a key tells itself apart"
        );
    }
    let anonymous = f.server.client().get(&format!("/settings/api-keys/{id}"));
    assert_eq!(anonymous.status, 302);
    assert_eq!(stored(db, &id), before);
}

fn expiry_presets_and_the_unused_filters(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();
    let csrf = csrf_of(&mut owner, &ws);
    let post = |http: &mut Http, name: &str, expiry: &str, date: &str| {
        http.post_form(
            "/settings/api-keys",
            &[
                ("csrf_token", &csrf),
                ("workspace_id", &ws),
                ("name", name),
                ("access", "read_only"),
                ("expiry", expiry),
                ("expires", date),
            ],
        )
    };
    assert_eq!(post(&mut owner, "month", "30", "").status, 200);
    assert_eq!(
        post(&mut owner, "forever", "never", "2099-01-01").status,
        200
    );
    assert_eq!(
        post(&mut owner, "dated", "date", &days_from_today(3)).status,
        200
    );
    let end = |n: i64| format!("{}T00:00:00Z", days_from_today(n + 1));
    assert_eq!(listed(db, &ws, "month")["expires_at"], end(30));
    assert_eq!(listed(db, &ws, "forever")["expires_at"], Value::Null);
    assert_eq!(listed(db, &ws, "dated")["expires_at"], end(3));
    for bad in ["0", "9999", "soon"] {
        let r = post(&mut owner, "bad", bad, "");
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body.contains("Expiration"), "{}", r.body);
    }
    assert_eq!(list(db, &ws).len(), 3, "a refused preset made a key");
    // The page warns about the key that ends within 7 days.
    let page = keys_page(&mut owner, &ws);
    assert!(row(&page.body, "dated").contains("ends within 7 days"));
    assert!(!row(&page.body, "month").contains("ends within 7 days"));

    // Never used, and unused for 30 days.
    let old_id = s(&listed(db, &ws, "forever"), "id");
    let long_ago = chrono::Utc::now().timestamp() - 40 * 86_400;
    db.execute(&format!(
        "UPDATE api_keys SET last_used_at = {long_ago} WHERE id = '{old_id}'"
    ));
    let filtered = |http: &mut Http, status: &str| {
        http.get(&format!(
            "/settings/api-keys?workspace={ws}&status={status}"
        ))
        .body
    };
    let never = filtered(&mut owner, "never_used");
    assert!(never.contains(&name_cell("month")) && never.contains(&name_cell("dated")));
    assert!(!never.contains(&name_cell("forever")));
    let unused = filtered(&mut owner, "unused");
    assert!(unused.contains(&name_cell("forever")));
    assert!(!unused.contains(&name_cell("month")));
    assert!(row(&unused, "forever").contains("unused for 30 days"));
}

both_backends!(
    page_shows_the_key_and_edits_it_without_rotating,
    bad_edits_keep_the_form_and_change_nothing,
    strangers_and_members_get_not_found,
    expiry_presets_and_the_unused_filters,
);
