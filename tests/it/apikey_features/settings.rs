//! The settings forms for allowlists, scopes and rotation grace.

use super::*;

// ---------------------------------------------------------------- settings pages

fn keys_page(http: &mut Http, ws: &str, query: &str) -> Resp {
    http.get(&format!("/settings/api-keys?workspace={ws}{query}"))
}

fn settings_forms_for_the_new_features(b: Backend) {
    let f = Fixture::new(b);
    let ws = f.workspace_id.clone();
    let db = f.db();
    let mut owner = f.owner();
    let page = keys_page(&mut owner, &ws, "");
    assert_eq!(page.status, 200);
    for scope in [
        "workspace:read",
        "tags:read",
        "tags:write",
        "forms:read",
        "forms:write",
    ] {
        assert!(
            page.body
                .contains(&format!("name=\"scope\" value=\"{scope}\"")),
            "no checkbox for {scope}"
        );
    }
    let csrf = hidden(&page.body, "csrf_token").expect("csrf");
    let r = owner.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &csrf),
            ("workspace_id", &ws),
            ("name", "page-custom"),
            ("access", "custom"),
            ("scope", "tags:read"),
            ("scope", "tags:write"),
            ("expires", ""),
            ("allowed_ips", "127.0.0.1, 2001:db8::/32"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let key = shown_key(&r.body).expect("the key is shown");
    let mut http = f.server.client();
    assert_eq!(http.bearer_get("/v1/tags", &key).status, 200);
    assert_eq!(http.bearer_get("/v1/forms", &key).status, 403);
    let row = db
        .json_lines(&["apikey", "list", "--workspace", &ws])
        .into_iter()
        .find(|k| k["name"] == "page-custom")
        .expect("listed");
    assert_eq!(row["scopes"], json!(["tags:read", "tags:write"]));
    assert_eq!(row["allowed_ips"], json!(["127.0.0.1/32", "2001:db8::/32"]));

    // Bad addresses and an empty custom choice re-show the form with the reason.
    for (fields, says) in [
        (vec![("access", "custom")], "scope"),
        (
            vec![("access", "read_only"), ("allowed_ips", "203.0.113.7/24")],
            "203.0.113.0/24",
        ),
        (
            vec![("access", "read_only"), ("allowed_ips", "example.com")],
            "example.com",
        ),
    ] {
        let n = db.count("api_keys");
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("workspace_id", ws.as_str()),
            ("name", "refused"),
        ];
        form.extend(fields);
        let r = owner.post_form("/settings/api-keys", &form);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(says), "the page does not say {says:?}");
        assert_eq!(db.count("api_keys"), n);
    }

    // A key ending within 7 days is labelled in words and can be filtered.
    let soon = (chrono::Utc::now().date_naive() + chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    create(
        db,
        &ws,
        "ends-soon",
        &["--access", "read_only", "--expires", &soon],
    );
    let page = keys_page(&mut owner, &ws, "");
    assert!(page.body.contains("ends within 7 days"));
    let filtered = keys_page(&mut owner, &ws, "&status=expiring");
    assert!(filtered.body.contains(">ends-soon</a>"));
    assert!(!filtered.body.contains(">page-custom</a>"));
    assert_eq!(
        filtered.body.matches("ends within 7 days</span>").count(),
        1
    );
    let cli = db.json_lines(&["apikey", "list", "--workspace", &ws, "--status", "expiring"]);
    assert_eq!(cli.len(), 1);
    assert_eq!(cli[0]["name"], "ends-soon");
    assert_eq!(cli[0]["expiring_soon"], true);

    // Rotate with a grace period chosen in the page.
    let id = s(&row, "id");
    let r = owner.post_form(
        &format!("/settings/api-keys/{id}/rotate"),
        &[("csrf_token", &csrf), ("grace", "1h")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("keeps working until"), "{}", r.body);
    let new = shown_key(&r.body).expect("new key");
    assert_eq!(http.bearer_get("/v1/tags", &key).status, 200);
    assert_eq!(http.bearer_get("/v1/tags", &new).status, 200);
    let page = keys_page(&mut owner, &ws, "");
    assert!(page.body.contains("old secret works until"));
    let r = owner.post_form(
        &format!("/settings/api-keys/{id}/rotate"),
        &[("csrf_token", &csrf), ("grace", "45d")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("30 days"));
    assert_eq!(http.bearer_get("/v1/tags", &new).status, 200);
    // The last address shows on the key's page, with its scopes and addresses.
    let key_page = format!("/settings/api-keys/{id}");
    assert!(eventually(Duration::from_secs(5), || owner
        .get(&key_page)
        .body
        .contains("from <code>127.0.0.1</code>")));
    let page = owner.get(&key_page);
    assert!(page.body.contains("<code>tags:write</code>"));
    assert!(page.body.contains("127.0.0.1/32, 2001:db8::/32"));
}

both_backends!(settings_forms_for_the_new_features,);
