//! `keygate resource create`, `list` and `delete`: the contract's JSON
//! shapes, every bad input refused with one line and nothing changed, and a
//! resource's credentials, which obtain no tokens.

use crate::support::*;
use serde_json::json;

const API: &str = "https://api.example.com";

fn create_list_delete(b: Backend) {
    let srv = Server::start(b);
    let created = srv.db.create_resource(
        API,
        &[
            "GET /tags/ tags:read",
            "POST /tags tags:write",
            "* /%68ealth -",
        ],
    );
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "client_id",
            "client_secret",
            "id",
            "identifier",
            "name",
            "routes"
        ]
    );
    assert_eq!(created["identifier"], API);
    assert_eq!(created["name"], "Acme API");
    assert_eq!(
        created["routes"],
        json!([
            {"method": "GET", "path": "/tags", "scope": "tags:read"},
            {"method": "POST", "path": "/tags", "scope": "tags:write"},
            {"method": "*", "path": "/health", "scope": null},
        ])
    );
    let secret = s(&created, "client_secret");
    assert!(secret.len() >= 32);
    let stored = srv
        .db
        .text("SELECT secret_hash AS v FROM resources")
        .unwrap();
    assert!(!stored.contains(&secret), "the secret is stored in clear");

    let listed = srv.db.json_lines(&["resource", "list"]);
    assert_eq!(listed.len(), 1);
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(listed[0], expected, "list shows all but the secret");

    let id = s(&created, "id");
    let deleted = srv.db.json(&["resource", "delete", &id]);
    assert_eq!(deleted, json!({"id": id, "deleted": true}));
    assert!(srv.db.json_lines(&["resource", "list"]).is_empty());
    srv.db
        .cli(&["resource", "delete", &id])
        .assert_refused("no resource");
}

fn bad_input_is_refused_and_changes_nothing(b: Backend) {
    let srv = Server::start(b);
    srv.db.create_resource(API, &[]);
    let v1 = format!("{}/v1", srv.base);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--identifier".into(), "api.example.com".into()],
            "absolute URL",
        ),
        (
            vec!["--identifier".into(), "http://api.example.com".into()],
            "https",
        ),
        (
            vec!["--identifier".into(), "https://x.example.com/#f".into()],
            "fragment",
        ),
        (vec!["--identifier".into(), v1.clone()], "/v1"),
        (vec!["--identifier".into(), format!("{v1}/")], "/v1"),
        (
            vec!["--identifier".into(), format!("{API}/")],
            "already registered",
        ),
        (
            vec![
                "--identifier".into(),
                "https://b.example.com".into(),
                "--route".into(),
                "GET /tags".into(),
            ],
            "METHOD PATH SCOPE",
        ),
        (
            vec![
                "--identifier".into(),
                "https://b.example.com".into(),
                "--route".into(),
                "GET /tags nope:read".into(),
            ],
            "unknown scope",
        ),
        (
            vec![
                "--identifier".into(),
                "https://b.example.com".into(),
                "--route".into(),
                "get /tags -".into(),
            ],
            "method",
        ),
        (
            vec![
                "--identifier".into(),
                "https://b.example.com".into(),
                "--route".into(),
                "GET tags -".into(),
            ],
            "path",
        ),
    ];
    for (extra, mentions) in cases {
        // The operator's CLI knows the issuer, as the server does.
        let mut args = vec!["--issuer", &srv.base, "resource", "create", "--name", "B"];
        args.extend(extra.iter().map(String::as_str));
        srv.db.cli(&args).assert_refused(mentions);
    }
    assert_eq!(
        srv.db.count("resources"),
        1,
        "a refused command changed something"
    );
    // http on a loopback host is allowed, for local use.
    srv.db.create_resource("http://127.0.0.1:8000/mcp", &[]);
}

fn a_resources_credentials_obtain_no_tokens(b: Backend) {
    let f = Fixture::new(b);
    let r = f.db().create_resource(API, &["* / -"]);
    let mut http = f.server.client();
    for grant in ["client_credentials", "refresh_token", "authorization_code"] {
        let resp = http.post_form_with(
            "/oauth/token",
            &[("grant_type", grant), ("refresh_token", "x"), ("code", "x")],
            &[("Authorization", &resource_basic(&r))],
        );
        resp.assert_oauth_error(400, "unauthorized_client");
    }
    let wrong = basic(&s(&r, "client_id"), "not-the-secret");
    let resp = http.post_form_with(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        &[("Authorization", &wrong)],
    );
    resp.assert_oauth_error(401, "invalid_client");
    let resp = http.post_form_with(
        "/oauth/introspect",
        &[("token", "x")],
        &[("Authorization", &wrong)],
    );
    resp.assert_oauth_error(401, "invalid_client");
}

both_backends!(
    create_list_delete,
    bad_input_is_refused_and_changes_nothing,
    a_resources_credentials_obtain_no_tokens
);
