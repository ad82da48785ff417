//! The authorization-code flow: confidential and public clients, code rules,
//! concurrent redemption, refresh rotation and reuse.

use super::*;

fn full_flow_confidential_client(b: Backend) {
    let f = Fixture::new(b);
    let (verifier, challenge) = pkce();
    let mut http = f.server.client();
    // Without a session the person is sent to /login and back.
    let q = f.authorize_query(&f.client_id, "workspace:read tags:write", &challenge);
    let r = http.get(&format!("/oauth/authorize?{q}"));
    assert_eq!(r.status, 302);
    let login_url = r.location();
    assert!(login_url.starts_with("/login?next="), "{login_url}");
    let page = http.get(&login_url);
    assert_eq!(page.status, 200);
    let csrf = hidden(&page.body, "csrf_token").unwrap();
    let next = hidden(&page.body, "next").unwrap();
    assert!(next.starts_with("/oauth/authorize?"), "{next}");
    let r = http.post_form(
        "/login",
        &[
            ("email", &f.owner_email),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("next", &next),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), next);
    let cookie = r.header("set-cookie").unwrap_or("").to_string();
    assert!(
        cookie.to_lowercase().contains("httponly")
            && cookie.to_lowercase().contains("samesite=lax"),
        "{cookie}"
    );
    assert!(
        !cookie.to_lowercase().contains("secure"),
        "Secure on an http issuer: {cookie}"
    );

    // The consent page: app name, scopes in words, workspace, framing refused.
    let consent = http.get(&next);
    assert_eq!(consent.status, 200);
    assert!(consent.body.contains("Acme CRM"));
    assert!(consent.body.contains("Create and change tags"));
    assert!(consent.body.contains("Acme"));
    assert_eq!(consent.header("x-frame-options"), Some("DENY"));
    assert!(consent
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let consent_id = hidden(&consent.body, "consent_id").unwrap();
    let csrf = hidden(&consent.body, "csrf_token").unwrap();
    let r = http.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &consent_id),
            ("csrf_token", &csrf),
            ("workspace_id", &f.workspace_id),
            ("decision", "approve"),
        ],
    );
    assert_eq!(r.status, 303);
    let params = r.location_params();
    assert_eq!(param(&params, "state"), Some("xyz-state"));
    assert_eq!(param(&params, "iss"), Some(f.server.base.as_str()));
    let code = param(&params, "code").unwrap().to_string();

    let t = f.exchange(&code, &verifier);
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.header("cache-control"), Some("no-store"));
    let v = t.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], "workspace:read tags:write");
    assert_eq!(v["workspace_id"], f.workspace_id.as_str());
    assert!(v["refresh_token"].as_str().unwrap().len() >= 32);
    let access = v["access_token"].as_str().unwrap();

    // An RFC 9068 JWT with the contract's claims.
    let parts: Vec<&str> = access.split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine;
    let dec = |s: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    let header = dec(parts[0]);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let kid = header["kid"].as_str().unwrap();
    let jwks = http.get("/.well-known/jwks.json").json();
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == kid));
    let claims = dec(parts[1]);
    assert_eq!(claims["iss"], f.server.base.as_str());
    assert_eq!(claims["sub"], f.owner_id.as_str());
    assert_eq!(claims["aud"], format!("{}/v1", f.server.base));
    assert_eq!(claims["client_id"], f.client_id.as_str());
    assert_eq!(claims["scope"], "workspace:read tags:write");
    assert_eq!(claims["workspace_id"], f.workspace_id.as_str());
    assert!(claims["jti"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    // The token works on /v1, for its workspace only and its scopes only.
    let ws = http.bearer_get("/v1/workspace", access);
    assert_eq!(ws.status, 200, "{}", ws.body);
    assert_eq!(ws.json()["id"], f.workspace_id.as_str());
    let created = http.bearer_post_json("/v1/tags", access, r#"{"name":"from-app"}"#);
    assert_eq!(created.status, 201, "{}", created.body);
    http.bearer_get("/v1/tags", access).assert_v1_error(
        403,
        "permission_error",
        "insufficient_scope",
    );

    // The authorized-apps table has the row.
    let apps = f
        .db()
        .json_lines(&["apps", "list", "--workspace", &f.workspace_id]);
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["app_name"], "Acme CRM");
    assert_eq!(apps[0]["status"], "active");
    assert_eq!(
        apps[0]["scopes"],
        serde_json::json!(["workspace:read", "tags:write"])
    );
}

fn public_client_and_post_auth(b: Backend) {
    let f = Fixture::new(b);
    let (verifier, challenge) = pkce();
    let mut http = f.owner();
    let params = f.approve(&mut http, &f.public_client_id, "", &challenge);
    let code = param(&params, "code").unwrap();
    let r = f.server.client().post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &f.public_client_id),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["scope"], "workspace:read",
        "no scope asked means workspace:read"
    );
    assert!(v["refresh_token"].is_string());
    // The public client refreshes with its client_id alone.
    let r = f.server.client().post_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", v["refresh_token"].as_str().unwrap()),
            ("client_id", &f.public_client_id),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["workspace_id"], f.workspace_id.as_str());

    // client_secret_post for the confidential client.
    let (code, verifier) = f.code("tags:read");
    let r = f.server.client().post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &f.client_id),
            ("client_secret", &f.client_secret),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn code_rules(b: Backend) {
    let f = Fixture::new(b);
    // Wrong verifier, wrong redirect, wrong client: invalid_grant, code untouched.
    let (code, verifier) = f.code("workspace:read");
    let (other_verifier, _) = pkce();
    f.exchange(&code, &other_verifier)
        .assert_oauth_error(400, "invalid_grant");
    let r = f.server.client().post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", &verifier),
        ],
        &[("Authorization", &f.basic())],
    );
    r.assert_oauth_error(400, "invalid_grant");
    let r = f.server.client().post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &f.public_client_id),
        ],
    );
    r.assert_oauth_error(400, "invalid_grant");
    let r = f.server.client().post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        &[("Authorization", &f.basic())],
    );
    r.assert_oauth_error(400, "invalid_request");

    // First use works; the second fails and revokes what the first issued.
    let first = f.exchange(&code, &verifier);
    assert_eq!(first.status, 200);
    let v = first.json();
    let access = v["access_token"].as_str().unwrap();
    let refresh = v["refresh_token"].as_str().unwrap();
    assert_eq!(f.server.v1_status(access), 200);
    f.exchange(&code, &verifier)
        .assert_oauth_error(400, "invalid_grant");
    f.server
        .client()
        .bearer_get("/v1/workspace", access)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    f.refresh(refresh).assert_oauth_error(400, "invalid_grant");
    assert_eq!(f.introspect(access)["active"], false);

    // Expired code (older than 60 s).
    let (code, verifier) = f.code("workspace:read");
    f.db()
        .execute("UPDATE auth_codes SET expires_at = expires_at - 61 WHERE used_at IS NULL");
    f.exchange(&code, &verifier)
        .assert_oauth_error(400, "invalid_grant");
    // Garbage code.
    f.exchange("not-a-code", &verifier)
        .assert_oauth_error(400, "invalid_grant");
}

fn concurrent_code_redemption_has_one_winner(b: Backend) {
    let f = Fixture::new(b);
    let (code, verifier) = f.code("workspace:read");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| f.exchange(&code, &verifier).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        7,
        "{statuses:?}"
    );
}

fn refresh_rotation_and_reuse(b: Backend) {
    let f = Fixture::new(b);
    let (access1, refresh1) = f.tokens("workspace:read tags:read");
    let r = f.refresh(&refresh1);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let refresh2 = v["refresh_token"].as_str().unwrap().to_string();
    let access2 = v["access_token"].as_str().unwrap().to_string();
    assert_ne!(refresh1, refresh2, "refresh tokens rotate");
    assert_eq!(v["scope"], "workspace:read tags:read");
    assert_eq!(v["workspace_id"], f.workspace_id.as_str());
    // A narrower scope may be asked for; a wider one not.
    let r = f.server.client().post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
            ("scope", "forms:read"),
        ],
        &[("Authorization", &f.basic())],
    );
    r.assert_oauth_error(400, "invalid_scope");
    let r = f.server.client().post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
            ("scope", "tags:read"),
        ],
        &[("Authorization", &f.basic())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["scope"], "tags:read");
    let refresh3 = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(f.server.v1_status(&access2), 200);

    // Replaying a used refresh token revokes the whole authorization.
    f.refresh(&refresh1)
        .assert_oauth_error(400, "invalid_grant");
    f.refresh(&refresh3)
        .assert_oauth_error(400, "invalid_grant");
    for t in [&access1, &access2] {
        f.server
            .client()
            .bearer_get("/v1/workspace", t)
            .assert_v1_error(401, "authentication_error", "invalid_api_key");
    }
    let apps = f
        .db()
        .json_lines(&["apps", "list", "--workspace", &f.workspace_id]);
    assert_eq!(apps[0]["status"], "revoked");
}

both_backends!(
    full_flow_confidential_client,
    public_client_and_post_auth,
    code_rules,
    concurrent_code_redemption_has_one_winner,
    refresh_rotation_and_reuse,
);
