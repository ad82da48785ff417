//! Apps that register themselves through RFC 7591 at `/oauth/register`, and
//! RFC 7592's read and delete with the registration access token; the
//! redirect rules of registered apps (private-use schemes, no localhost); the
//! consent page of an unreviewed app; the abuse limits of registration.

use crate::support::*;
use serde_json::{json, Value};

/// `POST /oauth/register` with a JSON body.
pub fn register(server: &Server, body: &Value) -> Resp {
    server.client().send(
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        &body.to_string(),
    )
}

fn bearer_send(server: &Server, method: &str, url: &str, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    server
        .client()
        .send(method, url, &[("Authorization", &auth)], "")
}

fn registration_works(b: Backend) {
    let f = Fixture::new(b);
    let meta = f
        .server
        .client()
        .get("/.well-known/oauth-authorization-server")
        .json();
    assert_eq!(
        meta["registration_endpoint"],
        f.server.url("/oauth/register")
    );
    assert_eq!(meta["client_id_metadata_document_supported"], true);

    // A confidential client (RFC 7591's default client_secret_basic).
    let r = register(
        &f.server,
        &json!({
            "client_name": "Partner Sync",
            "redirect_uris": ["https://partner.example.com/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "workspace:read tags:read",
            "software_id": "partner-sync",
            "x-unknown": {"ignored": true},
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    let client_id = v["client_id"].as_str().unwrap().to_string();
    assert!(v["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(v["client_secret"].as_str().unwrap().starts_with("kgs_"));
    assert_eq!(v["client_secret_expires_at"], 0);
    assert_eq!(v["client_name"], "Partner Sync");
    assert_eq!(
        v["redirect_uris"],
        json!(["https://partner.example.com/cb"])
    );
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        v["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(v["response_types"], json!(["code"]));
    assert_eq!(v["scope"], "workspace:read tags:read");
    assert_eq!(v["software_id"], "partner-sync");
    assert!(v.get("x-unknown").is_none());
    let uri = v["registration_client_uri"].as_str().unwrap().to_string();
    assert_eq!(uri, f.server.url(&format!("/oauth/register/{client_id}")));
    let token = v["registration_access_token"].as_str().unwrap().to_string();
    // Stored hashed only.
    let stored = f
        .db()
        .text(&format!(
            "SELECT registration_token_hash AS v FROM clients WHERE id = '{client_id}'"
        ))
        .unwrap();
    assert_ne!(stored, token);
    assert_eq!(stored.len(), 64);
    assert_eq!(
        f.db()
            .text(&format!(
                "SELECT kind AS v FROM clients WHERE id = '{client_id}'"
            ))
            .as_deref(),
        Some("dynamic")
    );

    // RFC 7592 §2.1: read with the token; 401 with a wrong, missing or another's.
    let read = bearer_send(&f.server, "GET", &uri, &token);
    assert_eq!(read.status, 200, "{}", read.body);
    let rv = read.json();
    assert_eq!(rv["client_id"], client_id.as_str());
    assert_eq!(rv["client_name"], "Partner Sync");
    assert!(
        rv.get("client_secret").is_none(),
        "the secret is shown once"
    );
    let wrong = bearer_send(&f.server, "GET", &uri, &format!("{token}x"));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(wrong.json()["error"], "invalid_token");
    let none = f.server.client().get(&uri);
    assert_eq!(none.status, 401);
    // An unknown client answers exactly as a wrong token does.
    let unknown = bearer_send(
        &f.server,
        "GET",
        "/oauth/register/0190b0f0-0000-7000-8000-000000000000",
        &token,
    );
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.body, wrong.body);
    // An operator's client has no registration to read.
    let operator = bearer_send(
        &f.server,
        "GET",
        &format!("/oauth/register/{}", f.client_id),
        &token,
    );
    assert_eq!(operator.status, 401);

    // The registered client runs the code flow with its secret; it may not
    // ask for scopes beyond those it registered (RFC 7591 §2 `scope`).
    let secret = v["client_secret"].as_str().unwrap();
    let redirect = "https://partner.example.com/cb";
    let (verifier, challenge) = pkce();
    let mut owner = f.owner();
    let over = owner.get(&authorize_path(
        &client_id,
        redirect,
        "tags:write",
        &challenge,
    ));
    assert_eq!(over.status, 302, "{}", over.body);
    assert!(
        over.location().contains("error=invalid_scope"),
        "{}",
        over.location()
    );
    let page = owner.get(&authorize_path(
        &client_id,
        redirect,
        "workspace:read tags:read",
        &challenge,
    ));
    assert!(page.body.contains("registered itself"), "{}", page.body);
    assert!(page.body.contains("partner.example.com"), "{}", page.body);
    let code = code_of(&approve_page(&f, &mut owner, &page));
    let tokens = f.server.client().post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &verifier),
        ],
        &[("Authorization", &basic(&client_id, secret))],
    );
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let access = tokens.json()["access_token"].as_str().unwrap().to_string();
    let refresh = tokens.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(f.server.v1_status(&access), 200);
    // The authorized-apps table marks it as not reviewed.
    let apps = owner.get(&format!(
        "/settings/authorized-apps?workspace={}",
        f.workspace_id
    ));
    assert!(apps.body.contains("Partner Sync"), "{}", apps.body);
    assert!(apps.body.contains("not reviewed"), "{}", apps.body);
    assert!(
        apps.body.contains("Codes go to partner.example.com"),
        "{}",
        apps.body
    );

    // RFC 7592 §2.3: a wrong token deletes nothing; the right one deletes,
    // and every authorization of the client is revoked at once.
    assert_eq!(
        bearer_send(&f.server, "DELETE", &uri, "kgr_wrong").status,
        401
    );
    assert_eq!(f.server.v1_status(&access), 200);
    let deleted = bearer_send(&f.server, "DELETE", &uri, &token);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    f.server
        .client()
        .bearer_get("/v1/workspace", &access)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    let again = f.server.client().post_form_with(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        &[("Authorization", &basic(&client_id, secret))],
    );
    again.assert_oauth_error(401, "invalid_client");
    assert_eq!(bearer_send(&f.server, "GET", &uri, &token).status, 401);
    let row = f.app_row(&client_id);
    assert_eq!(row["status"], "revoked");

    // A public client: `none`, no secret.
    let r = register(
        &f.server,
        &json!({"redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert!(v.get("client_secret").is_none());
    assert!(v.get("client_secret_expires_at").is_none());
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert_eq!(
        v["client_name"], "127.0.0.1",
        "a name derived from the redirect URI"
    );
}

fn bad_metadata_is_refused(b: Backend) {
    let server = Server::start(b);
    let before = server.db.count("clients");
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://localhost:8080/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["myapp:/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["refresh_token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin:everything"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": 42}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "x\u{202e}y"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "http://a.example/logo.png"}),
            "invalid_client_metadata",
        ),
        (json!(["https://a.example/cb"]), "invalid_client_metadata"),
    ];
    for (body, code) in cases {
        let r = register(&server, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["error"], code, "{body}: {}", r.body);
        assert!(r.json()["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    let mut http = server.client();
    let r = http.send(
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        "{not json",
    );
    assert_eq!(r.json()["error"], "invalid_client_metadata");
    let r = http.send(
        "POST",
        "/oauth/register",
        &[("Content-Type", "text/plain")],
        "{}",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_client_metadata");
    // The body size cap.
    let big = json!({"redirect_uris": ["https://a.example/cb"], "client_uri": format!("https://a.example/{}", "x".repeat(20_000))});
    let r = register(&server, &big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(server.db.count("clients"), before, "nothing was stored");
}

fn private_use_scheme_full_flow(b: Backend) {
    let f = Fixture::new(b);
    let redirect = "com.example.notes:/oauth/callback";
    let r = register(
        &f.server,
        &json!({"client_name": "Notes for iOS", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let client_id = r.json()["client_id"].as_str().unwrap().to_string();
    let (verifier, challenge) = pkce();
    let mut owner = f.owner();
    // RFC 8252 §7.1: exact match, so another path of the scheme is refused (a page).
    let other = owner.get(&authorize_path(
        &client_id,
        "com.example.notes:/other",
        "workspace:read",
        &challenge,
    ));
    assert_eq!(other.status, 400, "{}", other.body);
    assert!(other.header("location").is_none());
    let page = owner.get(&authorize_path(
        &client_id,
        redirect,
        "workspace:read",
        &challenge,
    ));
    assert!(
        page.body
            .contains("com.example.notes (an app on this device)"),
        "{}",
        page.body
    );
    let done = approve_page(&f, &mut owner, &page);
    assert!(
        done.location()
            .starts_with("com.example.notes:/oauth/callback?code="),
        "{}",
        done.location()
    );
    let code = code_of(&done);
    let t = exchange_public(&f.server, &client_id, &code, redirect, &verifier);
    assert_eq!(t.status, 200, "{}", t.body);
    let access = t.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(f.server.v1_status(&access), 200);

    // The same rules for the operator's CLI: a private-use scheme is fine,
    // http://localhost is not (RFC 8252 §8.3).
    let ok = f.db().json(&[
        "client",
        "create",
        "--name",
        "Native",
        "--redirect-uri",
        "com.example.native:/cb",
        "--public",
    ]);
    assert!(ok["client_id"].is_string());
    f.db()
        .cli(&[
            "client",
            "create",
            "--name",
            "Local",
            "--redirect-uri",
            "http://localhost:3000/cb",
        ])
        .assert_refused("localhost");
}

fn registration_can_be_turned_off(b: Backend) {
    let server = Server::start_with(TestDb::new(b), &[("KEYGATE_REGISTRATION", "off")]);
    let meta = server
        .client()
        .get("/.well-known/oauth-authorization-server")
        .json();
    assert!(meta.get("registration_endpoint").is_none(), "{meta}");
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    let r = register(&server, &json!({"redirect_uris": ["https://a.example/cb"]}));
    assert_eq!(r.status, 404, "{}", r.body);
}

fn one_address_cannot_register_thousands(b: Backend) {
    let server = Server::start_with(
        TestDb::new(b),
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_REGISTRATION_LIMIT", "3"),
            ("KEYGATE_REGISTRATION_FAILURE_LIMIT", "4"),
        ],
    );
    let good = json!({"redirect_uris": ["https://a.example/cb"]});
    for _ in 0..3 {
        assert_eq!(register(&server, &good).status, 201);
    }
    let r = register(&server, &good);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(server.db.count("clients"), 3);

    // Failures back off on their own (another server, a fresh count).
    let server = Server::start_with(
        TestDb::new(b),
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_REGISTRATION_FAILURE_LIMIT", "4"),
        ],
    );
    for _ in 0..4 {
        assert_eq!(register(&server, &json!({})).status, 400);
    }
    assert_eq!(register(&server, &good).status, 429);
    // Guessing registration access tokens counts as failing too.
    assert_eq!(
        bearer_send(&server, "GET", "/oauth/register/x", "kgr_guess").status,
        429
    );
}

fn cli_lists_and_deletes_every_kind(b: Backend) {
    let f = Fixture::new(b);
    let r = register(
        &f.server,
        &json!({"client_name": "Self Made", "redirect_uris": ["https://s.example/cb"]}),
    );
    let dynamic_id = r.json()["client_id"].as_str().unwrap().to_string();
    let (access, _) = f.tokens("workspace:read");
    let list = f.db().json_lines(&["client", "list"]);
    let kinds: Vec<(&str, &str)> = list
        .iter()
        .map(|c| {
            (
                c["client_id"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&(f.client_id.as_str(), "operator")),
        "{list:?}"
    );
    assert!(
        kinds.contains(&(dynamic_id.as_str(), "dynamic")),
        "{list:?}"
    );
    let crm = list
        .iter()
        .find(|c| c["client_id"] == f.client_id.as_str())
        .unwrap();
    assert_eq!(crm["active_authorizations"], 1);
    assert_eq!(crm["public"], false);
    assert_eq!(crm["redirect_uris"], json!([REDIRECT]));

    let d = f.db().json(&["client", "delete", &f.client_id]);
    assert_eq!(
        d,
        json!({"client_id": f.client_id, "deleted": true, "revoked_authorizations": 1})
    );
    f.server
        .client()
        .bearer_get("/v1/workspace", &access)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    let d = f.db().json(&["client", "delete", &dynamic_id]);
    assert_eq!(d["revoked_authorizations"], 0);
    let list = f.db().json_lines(&["client", "list"]);
    assert!(list
        .iter()
        .all(|c| c["client_id"] != f.client_id.as_str() && c["client_id"] != dynamic_id.as_str()));
    f.db()
        .cli(&["client", "delete", &dynamic_id])
        .assert_refused("no client");
}

fn unused_self_registered_clients_are_removed_after_30_days(b: Backend) {
    let f = Fixture::with_server(Server::start_with(
        TestDb::new(b),
        &[("KEYGATE_HOUSEKEEPING_SECS", "1")],
    ));
    let old = register(
        &f.server,
        &json!({"redirect_uris": ["https://old.example/cb"]}),
    )
    .json();
    let fresh = register(
        &f.server,
        &json!({"redirect_uris": ["https://fresh.example/cb"]}),
    )
    .json();
    let used = register(&f.server, &json!({"redirect_uris": ["https://used.example/cb"], "token_endpoint_auth_method": "none"})).json();
    let (old_id, fresh_id, used_id) = (
        old["client_id"].as_str().unwrap(),
        fresh["client_id"].as_str().unwrap(),
        used["client_id"].as_str().unwrap(),
    );
    let (_, challenge) = pkce();
    let mut owner = f.owner();
    let page = owner.get(&authorize_path(
        used_id,
        "https://used.example/cb",
        "workspace:read",
        &challenge,
    ));
    approve_page(&f, &mut owner, &page);
    let long_ago = chrono::Utc::now().timestamp() - 31 * 24 * 3600;
    f.db().execute(&format!(
        "UPDATE clients SET created_at = {long_ago} WHERE id IN ('{old_id}', '{used_id}', '{}')",
        f.client_id
    ));
    let gone = eventually(std::time::Duration::from_secs(10), || {
        f.db()
            .text(&format!(
                "SELECT id AS v FROM clients WHERE id = '{old_id}'"
            ))
            .is_none()
    });
    assert!(gone, "the unused self-registered client was not removed");
    for kept in [fresh_id, used_id, f.client_id.as_str()] {
        assert!(
            f.db()
                .text(&format!("SELECT id AS v FROM clients WHERE id = '{kept}'"))
                .is_some(),
            "{kept} was removed"
        );
    }
}

/// Issue 25 item 7: a client that registered itself gets what it registered
/// and nothing more: no refresh token and no refresh grant without the
/// `refresh_token` grant type, and no other authentication method than its
/// `token_endpoint_auth_method`.
fn registered_grants_and_auth_method_are_enforced(b: Backend) {
    let f = Fixture::new(b);
    let redirect = "https://codeonly.example.com/cb";
    let r = register(
        &f.server,
        &json!({
            "client_name": "Code Only",
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_post",
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let (id, secret) = (s(&v, "client_id"), s(&v, "client_secret"));
    let code = |f: &Fixture| -> (String, String) {
        let (verifier, challenge) = pkce();
        let mut owner = f.owner();
        let page = owner.get(&authorize_path(&id, redirect, "workspace:read", &challenge));
        (code_of(&approve_page(f, &mut owner, &page)), verifier)
    };
    let exchange = |code: &str, verifier: &str, basic_auth: bool| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ];
        let header = basic(&id, &secret);
        let headers: Vec<(&str, &str)> = match basic_auth {
            true => vec![("Authorization", header.as_str())],
            false => {
                form.extend([
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ]);
                vec![]
            }
        };
        f.server
            .client()
            .post_form_with("/oauth/token", &form, &headers)
    };
    // Another method than the registered one is refused.
    let (c, verifier) = code(&f);
    exchange(&c, &verifier, true).assert_oauth_error(401, "invalid_client");
    // The registered one works, and no refresh token comes with it.
    let (c, verifier) = code(&f);
    let tokens = exchange(&c, &verifier, false);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let t = tokens.json();
    assert!(t["access_token"].is_string());
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert_eq!(f.db().count("refresh_tokens"), 0);
    // The refresh grant is not this client's.
    let refused = f.server.client().post_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "anything"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    refused.assert_oauth_error(400, "unauthorized_client");
}

both_backends!(
    registration_works,
    registered_grants_and_auth_method_are_enforced,
    bad_metadata_is_refused,
    private_use_scheme_full_flow,
    registration_can_be_turned_off,
    one_address_cannot_register_thousands,
    cli_lists_and_deletes_every_kind,
    unused_self_registered_clients_are_removed_after_30_days,
);
