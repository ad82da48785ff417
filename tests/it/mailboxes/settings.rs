//! The mailboxes tab of the settings pages.

use super::*;

/// The `mailbox` parameter of a redirect back to the page.
fn mailbox_of(location: &str) -> String {
    let url = url::Url::parse(&format!("http://x{location}")).expect("location");
    url.query_pairs()
        .find(|(k, _)| k == "mailbox")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no mailbox in {location}"))
}

// ---------------------------------------------------------------- settings

fn settings_mailboxes_tab(b: Backend) {
    let f = Fixture::new(b);
    f.db().verified_domain(&f.workspace_id, "example.com");
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();

    let page = mailboxes_page(&mut owner, &ws, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("aria-current=\"page\">Mailboxes</a>"));
    assert!(page.body.contains("No mailboxes yet."));
    let token = csrf(&mut owner, &ws);

    let r = owner.post_form(
        "/settings/mailboxes",
        &[
            ("csrf_token", &token),
            ("workspace_id", &ws),
            ("address", "Team@Example.com"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let mb = mailbox_of(&r.location());
    let before = counts(db);
    for (address, says) in [
        ("team@EXAMPLE.com", "already taken"),
        ("team", "invalid mailbox address"),
    ] {
        let r = owner.post_form(
            "/settings/mailboxes",
            &[
                ("csrf_token", &token),
                ("workspace_id", &ws),
                ("address", address),
            ],
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(says), "{}", r.body);
        assert!(
            r.body.contains(&format!("value=\"{}\"", address)),
            "what was typed is kept"
        );
    }
    assert_eq!(counts(db), before);

    // The mailbox: SMTP details (the issuer's host), and Create Auth Key.
    let page = mailboxes_page(&mut owner, &ws, Some(&mb));
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "Team@Example.com",
        "<code id=\"smtp-host\">127.0.0.1</code>",
        "587",
        "Create Auth Key",
        "your auth key",
    ] {
        assert!(page.body.contains(text), "{text} not on the page");
    }
    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/auth-keys"),
        &[("csrf_token", &token), ("name", "Outreach Primary")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let key = shown_key(&r.body).expect("the key is shown");
    assert!(key.starts_with("kgm_"));
    assert_eq!(r.body.matches(&key).count(), 1, "shown once");
    assert!(r.body.contains("data-copy=\"new-key\""), "a copy button");
    let listed = auth_keys(db, &mb);
    assert_eq!(listed.len(), 1);
    let kid = s(&listed[0], "id");
    assert!(key.starts_with(&s(&listed[0], "prefix")));
    let page = mailboxes_page(&mut owner, &ws, Some(&mb));
    assert!(!page.body.contains(&key), "never shown again");
    assert!(page.body.contains(&f.owner_email), "the creator");

    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/auth-keys"),
        &[("csrf_token", &token), ("name", "Outreach Primary")],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("already exists"));

    // Disable, enable, rotate, delete (typed name).
    let act = |http: &mut Http, action: &str, extra: &[(&str, &str)]| {
        let mut form = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(extra);
        http.post_form(
            &format!("/settings/mailbox-auth-keys/{kid}/{action}"),
            &form,
        )
    };
    assert_eq!(act(&mut owner, "disable", &[]).status, 303);
    assert_eq!(auth_key(db, &mb, &kid)["status"], "disabled");
    let again = act(&mut owner, "disable", &[]);
    assert_eq!(again.status, 400);
    assert!(again.body.contains("already disabled"));
    assert!(act(&mut owner, "rotate", &[])
        .body
        .contains("cannot be rotated"));
    assert_eq!(act(&mut owner, "enable", &[]).status, 303);
    assert_eq!(auth_key(db, &mb, &kid)["status"], "active");
    let r = act(&mut owner, "rotate", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let rotated = shown_key(&r.body).expect("the new secret");
    assert_ne!(rotated, key);
    let r = act(&mut owner, "delete", &[("confirm_name", "Outreach")]);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("name exactly: Outreach Primary"),
        "{}",
        r.body
    );
    assert_eq!(auth_keys(db, &mb).len(), 1);
    assert_eq!(
        act(
            &mut owner,
            "delete",
            &[("confirm_name", "Outreach Primary")]
        )
        .status,
        303
    );
    assert!(auth_keys(db, &mb).is_empty());

    // The API key form offers the mailbox.
    let keys = owner.get(&format!("/settings/api-keys?workspace={ws}"));
    assert!(keys
        .body
        .contains(&format!("<option value=\"{mb}\">Team@Example.com</option>")));
    let r = owner.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &token),
            ("workspace_id", &ws),
            ("name", "team-only"),
            ("access", "read_only"),
            ("expires", ""),
            ("mailbox_id", &mb),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let restricted = shown_key(&r.body).expect("the API key");
    let mut api = f.server.client();
    assert_eq!(
        api.bearer_get(&format!("/v1/mailboxes/{mb}"), &restricted)
            .status,
        200
    );
    api.bearer_get("/v1/workspace", &restricted)
        .assert_v1_error(403, "permission_error", "insufficient_scope");

    // Members, forged forms and other workspaces are refused; nothing changes.
    let (_, member_email) = f.add_user("member");
    let mut member = f.signed_in(&member_email);
    assert_eq!(mailboxes_page(&mut member, &ws, None).status, 403);
    let member_token =
        hidden(&mailboxes_page(&mut member, &ws, None).body, "csrf_token").expect("csrf");
    let before = counts(db);
    let r = member.post_form(
        "/settings/mailboxes",
        &[
            ("csrf_token", &member_token),
            ("workspace_id", &ws),
            ("address", "m@example.com"),
        ],
    );
    assert_eq!(r.status, 403);
    let r = owner.post_form(
        "/settings/mailboxes",
        &[
            ("csrf_token", "forged"),
            ("workspace_id", &ws),
            ("address", "f@example.com"),
        ],
    );
    assert_eq!(r.status, 403);
    let r = member.post_form(
        &format!("/settings/mailboxes/{mb}/delete"),
        &[
            ("csrf_token", &member_token),
            ("confirm_address", "Team@Example.com"),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(counts(db), before);

    // An unknown id tells nobody more than a known one: the session and the
    // CSRF token are checked first, and only a manager learns it is unknown.
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/auth-keys"),
        &[("csrf_token", &token), ("name", "Probe")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let live = s(&auth_keys(db, &mb)[0], "id");
    let before = counts(db);
    for (known_path, unknown_path) in [
        (
            format!("/settings/mailboxes/{mb}/delete"),
            format!("/settings/mailboxes/{unknown}/delete"),
        ),
        (
            format!("/settings/mailbox-auth-keys/{live}/disable"),
            format!("/settings/mailbox-auth-keys/{unknown}/disable"),
        ),
    ] {
        let mut anonymous = f.server.client();
        let on_known = anonymous.post_form(&known_path, &[("csrf_token", "x")]);
        let on_unknown = anonymous.post_form(&unknown_path, &[("csrf_token", "x")]);
        assert_ne!(on_unknown.status, 404, "{unknown_path}");
        assert_eq!(on_unknown.status, on_known.status, "{unknown_path}");
        assert_eq!(on_unknown.header("location"), on_known.header("location"));
        let forged = owner.post_form(&unknown_path, &[("csrf_token", "forged")]);
        assert_eq!(forged.status, 403, "{unknown_path}");
        assert!(forged.body.contains("CSRF"), "{}", forged.body);
        let r = owner.post_form(&unknown_path, &[("csrf_token", &token)]);
        assert_eq!(r.status, 404, "{unknown_path}");
    }
    assert_eq!(counts(db), before);

    // Delete the mailbox (typed address); its restricted API key stops.
    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/delete"),
        &[("csrf_token", &token), ("confirm_address", "team")],
    );
    assert_eq!(r.status, 400);
    assert_eq!(db.count("mailboxes"), 1);
    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/delete"),
        &[
            ("csrf_token", &token),
            ("confirm_address", "Team@Example.com"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(db.count("mailboxes"), 0);
    api.bearer_get(&format!("/v1/mailboxes/{mb}"), &restricted)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    let log = db.json_lines(&["audit", "list", "--workspace", &ws]);
    assert!(log.iter().any(|e| e["action"] == "mailbox.created"
        && e["actor"] == f.owner_id.as_str()
        && e["client_address"] == "127.0.0.1"));

    // A plan without API access: the page says so and creation is refused.
    db.json(&["workspace", "set-plan", &ws, "--plan", "free"]);
    let page = mailboxes_page(&mut owner, &ws, None);
    assert!(page.body.contains("Upgrade required"), "{}", page.body);
    let r = owner.post_form(
        "/settings/mailboxes",
        &[
            ("csrf_token", &token),
            ("workspace_id", &ws),
            ("address", "late@example.com"),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("upgrade required"));
    assert_eq!(db.count("mailboxes"), 0);
}

both_backends!(settings_mailboxes_tab,);
