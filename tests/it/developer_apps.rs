//! Developer apps in the settings pages: any signed-in person registers an
//! app, sees its secret once, rotates it and deletes the app, which revokes
//! every authorization of it on every node.

use crate::support::*;
use std::time::Duration;

fn token_with(server: &Server, form: &[(&str, &str)], id: &str, secret: &str) -> Resp {
    server.client().post_form_with(
        "/oauth/token",
        form,
        &[("Authorization", &basic(id, secret))],
    )
}

fn developer_apps_over_http(b: Backend) {
    let f = Fixture::new(b);
    // A person with no workspace at all may register apps.
    let email = "dev@example.com";
    f.db().create_user(email);
    let mut dev = f.signed_in(email);
    let page = dev.get("/settings/developer-apps");
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden(&page.body, "csrf_token").unwrap();

    // Bad redirect URIs are refused with the form kept.
    let r = dev.post_form(
        "/settings/developer-apps",
        &[
            ("csrf_token", &csrf),
            ("name", "Dev Tool"),
            ("redirect_uris", "http://localhost:3000/cb"),
            ("client_type", "confidential"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("RFC 8252"), "{}", r.body);
    // Without the CSRF token: refused.
    let r = dev.post_form(
        "/settings/developer-apps",
        &[("name", "X"), ("redirect_uris", REDIRECT)],
    );
    assert_eq!(r.status, 403);

    let r = dev.post_form(
        "/settings/developer-apps",
        &[
            ("csrf_token", &csrf),
            ("name", "Dev Tool"),
            (
                "redirect_uris",
                &format!("{REDIRECT}\r\ncom.example.devtool:/cb"),
            ),
            ("client_type", "confidential"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let client_id = input_value(&r.body, "client-id").expect("client id shown");
    let secret = input_value(&r.body, "client-secret").expect("secret shown once");
    assert!(secret.starts_with("kgs_"));
    let list = dev.get("/settings/developer-apps?notice=app_created");
    assert!(list.body.contains(&client_id), "{}", list.body);
    assert!(list.body.contains("com.example.devtool:/cb"));
    assert!(
        !list.body.contains(&secret),
        "the secret is shown only once"
    );
    assert_eq!(
        f.db()
            .text(&format!(
                "SELECT kind AS v FROM clients WHERE id = '{client_id}'"
            ))
            .as_deref(),
        Some("developer")
    );

    // A workspace owner authorizes it; the consent page says who registered it.
    let (verifier, challenge) = pkce();
    let mut owner = f.owner();
    let consent = owner.get(&authorize_path(
        &client_id,
        REDIRECT,
        "workspace:read",
        &challenge,
    ));
    assert!(
        consent.body.contains("registered by a keygate user"),
        "{}",
        consent.body
    );
    let code = code_of(&approve_page(&f, &mut owner, &consent));
    let t = token_with(
        &f.server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
        &client_id,
        &secret,
    );
    assert_eq!(t.status, 200, "{}", t.body);
    let access = t.json()["access_token"].as_str().unwrap().to_string();
    let refresh = t.json()["refresh_token"].as_str().unwrap().to_string();

    // Someone else cannot touch the app.
    let mut other = f.owner();
    let other_page = other.get("/settings/developer-apps");
    let other_csrf = hidden(&other_page.body, "csrf_token").unwrap();
    let r = other.post_form(
        &format!("/settings/developer-apps/{client_id}/rotate"),
        &[("csrf_token", &other_csrf)],
    );
    assert_eq!(r.status, 404, "{}", r.body);

    // Rotation: a new secret once; the old one stops at once.
    let r = dev.post_form(
        &format!("/settings/developer-apps/{client_id}/rotate"),
        &[("csrf_token", &csrf)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let new_secret = input_value(&r.body, "client-secret").unwrap();
    assert_ne!(new_secret, secret);
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    token_with(&f.server, &refresh_form, &client_id, &secret)
        .assert_oauth_error(401, "invalid_client");
    let t = token_with(&f.server, &refresh_form, &client_id, &new_secret);
    assert_eq!(t.status, 200, "{}", t.body);

    // A second node has verified the access token (it is in its cache).
    let node2 = Server::spawn(
        TestDb::reuse(f.db()),
        free_port(),
        &[("KEYGATE_ISSUER", &f.server.base)],
    );
    assert_eq!(node2.v1_status(&access), 200);

    // Delete: the confirmation is required; then every authorization ends,
    // on both nodes.
    let r = dev.post_form(
        &format!("/settings/developer-apps/{client_id}/delete"),
        &[("csrf_token", &csrf)],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = dev.post_form(
        &format!("/settings/developer-apps/{client_id}/delete"),
        &[("csrf_token", &csrf), ("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/settings/developer-apps?notice=app_deleted");
    f.server
        .client()
        .bearer_get("/v1/workspace", &access)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    let refused = eventually(Duration::from_secs(1), || node2.v1_status(&access) == 401);
    assert!(refused, "the second node still accepts the token");
    // The client is gone from the second node's client cache too.
    let t = node2.client().post_form_with(
        "/oauth/introspect",
        &[("token", &access)],
        &[("Authorization", &basic(&client_id, &new_secret))],
    );
    t.assert_oauth_error(401, "invalid_client");
    let row = f.app_row(&client_id);
    assert_eq!(row["status"], "revoked");
    let list = dev.get("/settings/developer-apps");
    assert!(!list.body.contains(&client_id));
    // Signed out: the page sends to the login.
    let anon = f.server.client().get("/settings/developer-apps");
    assert_eq!(anon.status, 302);
    assert!(anon.location().starts_with("/login?"));
}

/// Issue 25 item 7: names shown to other people refuse bidirectional and
/// invisible formatting characters (as registration does), and one person
/// keeps a bounded number of developer apps.
fn developer_app_names_and_count_are_bounded(b: Backend) {
    let f = Fixture::new(b);
    let email = "quota-dev@example.com";
    f.db().create_user(email);
    let mut dev = f.signed_in(email);
    let create = |dev: &mut Http, name: &str| {
        let page = dev.get("/settings/developer-apps");
        let csrf = hidden(&page.body, "csrf_token").unwrap();
        dev.post_form(
            "/settings/developer-apps",
            &[
                ("csrf_token", &csrf),
                ("name", name),
                ("redirect_uris", REDIRECT),
                ("client_type", "confidential"),
            ],
        )
    };
    for name in ["Pay\u{202E}lapyaP", "Zero\u{200B}width", "Iso\u{2066}late"] {
        let r = create(&mut dev, name);
        assert_eq!(r.status, 400, "{name:?}: {}", r.body);
        assert!(r.body.contains("invisible formatting"), "{}", r.body);
    }
    // The same rule for a workspace's name at the command line.
    f.db()
        .cli(&["workspace", "create", "--name", "Acme\u{202E}"])
        .assert_refused("invisible formatting");
    let before = f.db().count("clients");
    for i in 0..25 {
        let r = create(&mut dev, &format!("Tool {i}"));
        assert_eq!(r.status, 200, "app {i}: {}", r.body);
    }
    let r = create(&mut dev, "One too many");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("the most one person may keep"),
        "{}",
        r.body
    );
    assert_eq!(
        f.db().count("clients"),
        before + 25,
        "nothing else was made"
    );
}

both_backends!(
    developer_apps_over_http,
    developer_app_names_and_count_are_bounded
);
