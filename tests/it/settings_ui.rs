//! The settings pages as a person reads them: the security log names its
//! subjects (key, app, person, mailbox), filters by kind and pages 50 at a time.

use crate::support::{hidden, unique, Backend, Fixture, Resp, APP_NAME};

fn log(fx: &Fixture, query: &str) -> Resp {
    let r = fx.owner().get(&format!(
        "/settings/security-log?workspace={}{query}",
        fx.workspace_id
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

/// The rows of the log table on a page.
fn rows(r: &Resp) -> usize {
    r.body.matches("<tr><td data-label=\"When\"").count()
}

fn security_log_names_subjects_filters_and_pages(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let db = fx.db();
    let key = db.create_api_key(&ws, "crm-sync", "read_only");
    let key_id = key["id"].as_str().expect("key id").to_string();
    let email = format!("ada-{}@example.com", &unique()[..8]);
    let ada = db.create_user(&email);
    // Added through the team page (the CLI's additions are not in the log).
    let mut owner = fx.owner();
    let page = owner.get(&format!("/settings/team?workspace={ws}"));
    let csrf = hidden(&page.body, "csrf_token").expect("a CSRF token");
    let r = owner.post_form(
        "/settings/team",
        &[
            ("csrf_token", &csrf),
            ("workspace_id", &ws),
            ("email", &email),
            ("role", "admin"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    db.verified_domain(&ws, "example.com");
    let address = format!("news-{}@example.com", &unique()[..8]);
    let mailbox = db.json(&[
        "mailbox",
        "create",
        "--workspace",
        &ws,
        "--address",
        &address,
    ]);
    let _ = fx.code("tags:read");

    // Each subject by name, not by id.
    let all = log(&fx, "");
    for name in ["crm-sync", APP_NAME, &email, &address] {
        assert!(all.body.contains(name), "{name} not named: {}", all.body);
    }
    let mailbox_id = mailbox["id"].as_str().expect("mailbox id");
    for id in [key_id.as_str(), ada.as_str(), mailbox_id] {
        assert!(
            !all.body.contains(&format!("<code>{id}</code>")),
            "{id} shown as an id: {}",
            all.body
        );
    }
    // The person who acted is named too: the CLI, or the owner by email.
    assert!(all.body.contains("keygate CLI") && all.body.contains(&fx.owner_email));

    // Filters: each kind only.
    let team = log(&fx, "&kind=team");
    assert!(team.body.contains(&email) && team.body.contains("Member added as admin"));
    assert!(!team.body.contains("API key generated"), "{}", team.body);
    let keys = log(&fx, "&kind=keys");
    assert!(keys.body.contains("API key generated"));
    assert!(!keys.body.contains("Member added") && !keys.body.contains("App authorized"));
    let apps = log(&fx, "&kind=apps");
    assert!(apps.body.contains("App authorized") && apps.body.contains(APP_NAME));
    assert_eq!(rows(&apps), 1, "{}", apps.body);
    let mailboxes = log(&fx, "&kind=mailboxes");
    assert!(mailboxes.body.contains("Mailbox created") && mailboxes.body.contains(&address));
    assert!(
        mailboxes.body.contains("Sending domain verified")
            && mailboxes.body.contains("example.com")
    );
    assert_eq!(
        rows(&mailboxes),
        3,
        "domain added, verified; mailbox created: {}",
        mailboxes.body
    );
    assert!(keys.body.contains("aria-current=\"true\">API keys</a>"));

    // Paging: 59 older key events make 60 in all, 50 on the first page.
    for i in 0..59 {
        db.execute(&format!(
            "INSERT INTO audit_events (id, workspace_id, actor, action, subject, created_at) \
             VALUES ('00000000-0000-0000-0000-{i:012}', '{ws}', 'cli', 'api_key.rotated', '{key_id}', 1)"
        ));
    }
    let first = log(&fx, "&kind=keys");
    assert_eq!(rows(&first), 50);
    assert!(first.body.contains("API key generated"), "newest first");
    assert!(
        first.body.contains("page=2\">Older events</a>"),
        "{}",
        first.body
    );
    assert!(!first.body.contains("Newer events"));
    let second = log(&fx, "&kind=keys&page=2");
    assert_eq!(rows(&second), 10);
    assert!(second.body.contains("page=1\">Newer events</a>"));
    assert!(!second.body.contains("Older events"));
    assert!(!second.body.contains("API key generated"), "no row twice");
    assert!(second.body.contains("crm-sync"), "older rows named too");
    // Unfiltered, the other kinds count as well.
    let total = db.count(&format!("audit_events WHERE workspace_id = '{ws}'"));
    assert!(total > 60);
    let everything = log(&fx, "&page=2");
    assert_eq!(rows(&everything) as i64, total - 50, "{}", everything.body);
    // Past the end: no rows, said so, and a way back.
    let past = log(&fx, "&kind=keys&page=3");
    assert_eq!(rows(&past), 0);
    assert!(past.body.contains("No older events.") && past.body.contains("Newer events"));
}

fn security_log_is_for_managers_only(b: Backend) {
    let fx = Fixture::new(b);
    let (_, member_email) = fx.add_user("member");
    let r = fx.signed_in(&member_email).get(&format!(
        "/settings/security-log?workspace={}&kind=keys",
        fx.workspace_id
    ));
    assert_eq!(r.status, 403);
    assert!(!r.body.contains("<table"), "{}", r.body);
}

/// The Generate API Key drawer's Workspace field: it lists the person's
/// workspaces, and the key is made in the one chosen, if they manage it.
fn the_drawer_generates_in_the_chosen_workspace(b: Backend) {
    let fx = Fixture::new(b);
    let db = fx.db();
    let ws = fx.workspace_id.clone();
    let owner_id = fx.owner_id.clone();
    let other = db.json(&["workspace", "create", "--name", "Beta"]);
    let other = other["id"].as_str().expect("id").to_string();
    db.add_member(&other, &owner_id, "owner");
    let only_member = db.json(&["workspace", "create", "--name", "Gamma"]);
    let only_member = only_member["id"].as_str().expect("id").to_string();
    db.add_member(&only_member, &owner_id, "member");

    let mut owner = fx.owner();
    let page = owner.get(&format!("/settings/api-keys?workspace={ws}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .body
        .contains(&format!("<option value=\"{other}\">Beta</option>")));
    let csrf = hidden(&page.body, "csrf_token").expect("a CSRF token");
    let generate = |owner: &mut crate::support::Http, workspace: &str, name: &str| {
        owner.post_form(
            "/settings/api-keys",
            &[
                ("csrf_token", csrf.as_str()),
                ("workspace_id", workspace),
                ("name", name),
                ("access", "read_only"),
                ("expires", ""),
            ],
        )
    };
    let r = generate(&mut owner, &other, "beta-sync");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Save your API key"));
    assert_eq!(
        db.text("SELECT workspace_id AS v FROM api_keys WHERE name = 'beta-sync'")
            .as_deref(),
        Some(other.as_str())
    );
    // A workspace where the person is only a member: refused, nothing made.
    let r = generate(&mut owner, &only_member, "gamma-sync");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(db.count("api_keys WHERE name = 'gamma-sync'"), 0);
}

/// A workspace without keys says so and offers the first one; a search that
/// finds nothing says that instead; a plan without API access says why.
fn keys_page_empty_states(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let mut owner = fx.owner();
    let r = owner.get(&format!("/settings/api-keys?workspace={ws}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("No API keys yet"), "{}", r.body);
    assert!(r.body.contains("Generate your first API key"), "{}", r.body);
    assert!(!r.body.contains("No API keys match"), "{}", r.body);
    assert!(
        !r.body.contains("id=\"key-search\""),
        "a search box over nothing"
    );

    let r = owner.get(&format!("/settings/api-keys?workspace={ws}&q=zzz-none"));
    assert!(
        r.body.contains("No API keys match this search"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Show all API keys"), "{}", r.body);

    let db = fx.db();
    db.json(&["workspace", "set-plan", &ws, "--plan", "free"]);
    let r = owner.get(&format!("/settings/api-keys?workspace={ws}"));
    assert!(r.body.contains("No API keys yet"), "{}", r.body);
    assert!(r.body.contains("plan does not include them"), "{}", r.body);
    assert!(r
        .body
        .contains("Apps that people authorize work on every plan"));
    assert!(!r.body.contains("No API keys match"), "{}", r.body);
}

/// A person in no workspace gets a page that says what to do, not a link
/// back to the same page.
fn no_workspace_page_says_what_to_do(b: Backend) {
    let fx = Fixture::new(b);
    let email = format!("alone-{}@example.com", &unique()[..8]);
    fx.db().create_user(&email);
    let r = fx.signed_in(&email).get("/settings/api-keys");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("No workspace yet"), "{}", r.body);
    assert!(r.body.contains("Team members"), "{}", r.body);
    assert!(
        r.body.contains("href=\"/settings/developer-apps\""),
        "{}",
        r.body
    );
    assert!(!r.body.contains("href=\"/settings\""), "loops: {}", r.body);
}

/// `/settings/api-access` is the API keys page; unknown URLs get a 404 page
/// in the frame, with ways on.
fn unknown_urls_get_a_404_page_and_api_access_routes(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let mut owner = fx.owner();
    let r = owner.get(&format!("/settings/api-access?workspace={ws}"));
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), format!("/settings/api-keys?workspace={ws}"));
    let r = owner.get("/settings/api-access");
    assert_eq!(r.location(), "/settings/api-keys");
    for path in ["/settings/no-such-page", "/no-such-page"] {
        let r = owner.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(
            r.body.contains("<header class=\"top\">"),
            "{path}: {}",
            r.body
        );
        assert!(r.body.contains("Page not found"), "{path}: {}", r.body);
        assert!(
            r.body.contains(&format!("<code>{path}</code>")),
            "{}",
            r.body
        );
        assert!(r.body.contains("href=\"/settings/api-keys\""), "{}", r.body);
    }
}

/// A refused Generate shows its error inside the drawer, which opens again
/// with everything as it was sent.
fn generate_refusal_keeps_the_form_in_the_drawer(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let mut owner = fx.owner();
    let page = owner.get(&format!("/settings/api-keys?workspace={ws}"));
    let csrf = hidden(&page.body, "csrf_token").expect("a CSRF token");
    let r = owner.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", csrf.as_str()),
            ("workspace_id", &ws),
            ("name", "billing-export"),
            ("access", "custom"),
            ("scope", "tags:write"),
            ("expires", "2031-03-04"),
            ("allowed_ips", "203.0.113.0/24 not-an-address"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let drawer = r.body.find("id=\"generate\"").expect("the drawer");
    let error = r.body.find("id=\"generate-error\"").expect("the error");
    assert!(
        error > drawer,
        "the error is outside the drawer: {}",
        r.body
    );
    assert!(r.body[error..].contains("Allowed addresses"), "{}", r.body);
    assert!(
        r.body[drawer..error].contains("data-open-now"),
        "{}",
        r.body
    );
    assert_eq!(
        r.body.matches("class=\"flash error\"").count(),
        1,
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"billing-export\""));
    assert!(
        r.body.contains("<option value=\"custom\" selected>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"tags:write\" checked>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"2031-03-04\""), "{}", r.body);
    assert!(
        r.body.contains("value=\"203.0.113.0/24 not-an-address\""),
        "{}",
        r.body
    );
    assert_eq!(fx.db().count("api_keys WHERE name = 'billing-export'"), 0);
}

both_backends!(
    security_log_names_subjects_filters_and_pages,
    security_log_is_for_managers_only,
    the_drawer_generates_in_the_chosen_workspace,
    keys_page_empty_states,
    no_workspace_page_says_what_to_do,
    unknown_urls_get_a_404_page_and_api_access_routes,
    generate_refusal_keeps_the_form_in_the_drawer,
);
