//! The authorization-code flow end to end: discovery, login, consent, code,
//! token, refresh, and every refusal on the way.

use crate::support::*;
use serde_json::Value;

fn discovery_documents(b: Backend) {
    let s = Server::start(b);
    let mut http = s.client();
    let meta = http.get("/.well-known/oauth-authorization-server");
    assert_eq!(meta.status, 200);
    let m = meta.json();
    assert_eq!(m["issuer"], s.base.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(m[field], format!("{}{path}", s.base), "{field}");
    }
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let methods = m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for needed in ["client_secret_basic", "client_secret_post", "none"] {
        assert!(methods.iter().any(|x| x == needed), "{needed}");
    }
    assert!(m["revocation_endpoint_auth_methods_supported"].is_array());
    assert!(m["introspection_endpoint_auth_methods_supported"].is_array());
    let scopes = m["scopes_supported"].as_array().unwrap();
    for sc in [
        "workspace:read",
        "tags:read",
        "tags:write",
        "forms:read",
        "forms:write",
    ] {
        assert!(scopes.iter().any(|x| x == sc), "{sc}");
    }
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(
        grants.iter().any(|g| g == "authorization_code")
            && grants.iter().any(|g| g == "refresh_token")
    );

    let jwks = http.get("/.well-known/jwks.json").json();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for k in keys {
        assert!(k["kid"].is_string() && k["x"].is_string());
        assert!(k.get("d").is_none(), "private key material published");
    }
    let pr = http.get("/.well-known/oauth-protected-resource").json();
    assert_eq!(pr["resource"], format!("{}/v1", s.base));
    assert_eq!(pr["authorization_servers"][0], s.base.as_str());
}

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

fn client_authentication_failures(b: Backend) {
    let f = Fixture::new(b);
    let (code, verifier) = f.code("workspace:read");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let mut http = f.server.client();
    for auth in [
        basic(&f.client_id, "wrong"),
        basic("nobody", "x"),
        "Basic !!!".to_string(),
    ] {
        let r = http.post_form_with("/oauth/token", &form, &[("Authorization", &auth)]);
        r.assert_oauth_error(401, "invalid_client");
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    }
    // A confidential client may not skip its secret.
    let mut with_id = form.to_vec();
    with_id.push(("client_id", &f.client_id));
    let r = http.post_form("/oauth/token", &with_id);
    r.assert_oauth_error(401, "invalid_client");
    // No authentication at all.
    http.post_form("/oauth/token", &form)
        .assert_oauth_error(401, "invalid_client");
    // The code survived all that and still works.
    assert_eq!(f.exchange(&code, &verifier).status, 200);
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

fn token_endpoint_request_errors(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    let auth = f.basic();
    let h = [("Authorization", auth.as_str())];
    http.post_form_with("/oauth/token", &[("grant_type", "password")], &h)
        .assert_oauth_error(400, "unsupported_grant_type");
    http.post_form_with("/oauth/token", &[("grant_type", "client_credentials")], &h)
        .assert_oauth_error(400, "unsupported_grant_type");
    http.post_form_with("/oauth/token", &[], &h)
        .assert_oauth_error(400, "invalid_request");
    http.post_form_with("/oauth/token", &[("grant_type", "refresh_token")], &h)
        .assert_oauth_error(400, "invalid_request");
    http.post_form_with(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
        &h,
    )
    .assert_oauth_error(400, "invalid_grant");
    // Repeated parameters (RFC 6749 §3.2).
    http.post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
        ],
        &h,
    )
    .assert_oauth_error(400, "invalid_request");
    // Not a form.
    let r = http.send(
        "POST",
        "/oauth/token",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        "{}",
    );
    r.assert_oauth_error(400, "invalid_request");
    // A resource other than {issuer}/v1.
    let (code, verifier) = f.code("workspace:read");
    let r = http.post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("resource", "https://elsewhere.example/api"),
        ],
        &h,
    );
    r.assert_oauth_error(400, "invalid_target");
    let resource = format!("{}/v1", f.server.base);
    let r = http.post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("resource", &resource),
        ],
        &h,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn authorize_request_errors(b: Backend) {
    let f = Fixture::new(b);
    let (_, challenge) = pkce();
    let mut http = f.owner();
    let base = |extra: &[(&str, &str)], skip: &[&str]| -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("response_type", "code"),
            ("client_id", f.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "st"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ] {
            if !skip.contains(&k) {
                s.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        format!("/oauth/authorize?{}", s.finish())
    };
    // Unknown client, missing or unregistered redirect URI: an error page, no redirect.
    for url in [
        base(&[("client_id", "nobody")], &["client_id"]),
        base(&[], &["client_id"]),
        base(&[], &["redirect_uri"]),
        base(
            &[("redirect_uri", "https://evil.example/cb")],
            &["redirect_uri"],
        ),
        base(
            &[("redirect_uri", "http://127.0.0.1:9/callback/x")],
            &["redirect_uri"],
        ),
    ] {
        let r = http.get(&url);
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        assert!(r.header("location").is_none());
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
    }
    // Everything else is redirected with error, error_description, state and iss.
    for (url, error) in [
        (
            base(&[("response_type", "token")], &["response_type"]),
            "unsupported_response_type",
        ),
        (base(&[], &["response_type"]), "invalid_request"),
        (
            base(&[], &["code_challenge", "code_challenge_method"]),
            "invalid_request",
        ),
        (base(&[], &["code_challenge_method"]), "invalid_request"),
        (
            base(
                &[("code_challenge_method", "plain")],
                &["code_challenge_method"],
            ),
            "invalid_request",
        ),
        (base(&[("scope", "admin:everything")], &[]), "invalid_scope"),
        (
            base(&[("resource", "https://other.example/api")], &[]),
            "invalid_target",
        ),
        (base(&[("state", "again")], &[]), "invalid_request"),
    ] {
        let r = http.get(&url);
        assert_eq!(r.status, 302, "{url}: {}", r.body);
        let p = r.location_params();
        assert!(r.location().starts_with(REDIRECT));
        assert_eq!(param(&p, "error"), Some(error), "{url}");
        assert!(param(&p, "error_description").is_some());
        assert_eq!(param(&p, "iss"), Some(f.server.base.as_str()));
        if !url.contains("again") {
            assert_eq!(param(&p, "state"), Some("st"));
        }
    }
    // A loopback redirect URI registered without a port matches any port.
    let r = http.get(&base(
        &[("redirect_uri", "http://127.0.0.1:51234/callback")],
        &["redirect_uri"],
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    // A broken request never reaches the login page.
    let mut anonymous = f.server.client();
    let r = anonymous.get(&base(
        &[("code_challenge_method", "plain")],
        &["code_challenge_method"],
    ));
    assert_eq!(r.status, 302);
    assert!(r.location().starts_with(REDIRECT));
}

fn deny_and_consent_rules(b: Backend) {
    let f = Fixture::new(b);
    let (_, challenge) = pkce();
    let mut http = f.owner();
    let page = http.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, "tags:read", &challenge)
    ));
    let consent_id = hidden(&page.body, "consent_id").unwrap();
    let csrf = hidden(&page.body, "csrf_token").unwrap();
    // A forged CSRF token is refused, and the request stays answerable.
    let r = http.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &consent_id),
            ("csrf_token", "forged"),
            ("workspace_id", &f.workspace_id),
            ("decision", "approve"),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(r.header("location").is_none());
    let r = http.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &consent_id),
            ("csrf_token", &csrf),
            ("decision", "deny"),
        ],
    );
    assert_eq!(r.status, 303);
    let p = r.location_params();
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert_eq!(param(&p, "state"), Some("xyz-state"));
    assert_eq!(param(&p, "iss"), Some(f.server.base.as_str()));
    // The held request is single use.
    let r = http.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &consent_id),
            ("csrf_token", &csrf),
            ("workspace_id", &f.workspace_id),
            ("decision", "approve"),
        ],
    );
    assert_eq!(r.status, 400);
    assert_eq!(f.db().count("authorizations"), 0);

    // A member (not owner/admin) is told they cannot authorize, and gets no code.
    let (_, member_email) = f.add_user("member");
    let mut member = f.signed_in(&member_email);
    let page = member.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, "tags:read", &challenge)
    ));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("not an owner or admin"), "{}", page.body);
    let consent_id = hidden(&page.body, "consent_id").unwrap();
    let csrf = hidden(&page.body, "csrf_token").unwrap();
    let r = member.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &consent_id),
            ("csrf_token", &csrf),
            ("workspace_id", &f.workspace_id),
            ("decision", "approve"),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(f.db().count("auth_codes"), 0);

    // Consent is asked every time: a second request shows the page again.
    let again = http.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, "tags:read", &challenge)
    ));
    assert_eq!(again.status, 200);
    assert!(again.body.contains("consent_id"));
}

fn login_failures_say_nothing_specific(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    let wrong_password = http.login(&f.owner_email, "wrong password");
    let unknown_user = http.login("nobody@example.com", "wrong password");
    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown_user.status, 401);
    assert!(wrong_password.body.contains("Incorrect email or password"));
    assert!(unknown_user.body.contains("Incorrect email or password"));
    // A login form post without its CSRF cookie is refused.
    let mut fresh = f.server.client();
    let r = fresh.post_form(
        "/login",
        &[
            ("email", &f.owner_email),
            ("password", PASSWORD),
            ("csrf_token", "x"),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(fresh.cookie("keygate_session").is_none());
    // Logout needs the session's CSRF token, then ends the session.
    let mut owner = f.owner();
    let page = owner.get("/settings/api-keys");
    assert_eq!(page.status, 200);
    assert_eq!(
        owner
            .post_form("/logout", &[("csrf_token", "forged")])
            .status,
        403
    );
    assert_eq!(owner.get("/settings/api-keys").status, 200);
    let csrf = hidden(&page.body, "csrf_token").unwrap();
    assert_eq!(
        owner.post_form("/logout", &[("csrf_token", &csrf)]).status,
        303
    );
    assert_eq!(owner.get("/settings/api-keys").status, 302);
    // An open redirect through `next` is not possible.
    let mut h = f.server.client();
    let page = h.get("/login?next=https://evil.example/");
    assert_eq!(hidden(&page.body, "next").as_deref(), Some("/settings"));
}

both_backends!(
    discovery_documents,
    full_flow_confidential_client,
    public_client_and_post_auth,
    client_authentication_failures,
    code_rules,
    concurrent_code_redemption_has_one_winner,
    refresh_rotation_and_reuse,
    token_endpoint_request_errors,
    authorize_request_errors,
    deny_and_consent_rules,
    login_failures_say_nothing_specific,
    metadata_for_an_issuer_with_a_path,
);

/// RFC 8414 §3.1: an issuer with a path (`https://host/tenant`, behind a
/// proxy that maps `/tenant` to keygate) publishes its metadata at
/// `/.well-known/oauth-authorization-server/tenant`; RFC 9728 §3.1 likewise
/// for the resource `{issuer}/v1`. The path-less URLs stay.
fn metadata_for_an_issuer_with_a_path(b: Backend) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}/tenant");
    let s = Server::spawn(TestDb::new(b), port, &[("KEYGATE_ISSUER", &issuer)]);
    let mut http = s.client();
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = http.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let meta = r.json();
        assert_eq!(meta["issuer"], issuer.as_str(), "{path}");
        assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth/token"));
    }
    for path in [
        "/.well-known/oauth-authorization-server/other",
        "/.well-known/oauth-authorization-server/tenant/more",
        "/.well-known/oauth-protected-resource/other/v1",
    ] {
        assert_eq!(http.get(path).status, 404, "{path}");
    }
    for path in [
        "/.well-known/oauth-protected-resource/tenant/v1",
        "/.well-known/oauth-protected-resource/v1",
        "/.well-known/oauth-protected-resource",
    ] {
        let r = http.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json()["resource"], format!("{issuer}/v1"), "{path}");
    }
    // An issuer without a path has no path form.
    let plain = Server::start(b);
    assert_eq!(
        plain
            .client()
            .get("/.well-known/oauth-authorization-server/tenant")
            .status,
        404
    );
}

/// `keygate demo` seeds what is absent, prints how to try the flow, and serves;
/// the printed flow works end to end, and a second start adds nothing.
#[test]
fn demo_seeds_prints_and_serves() {
    let db = TestDb::new(Backend::Sqlite);
    // The same issuer both times (the demo client's redirect URI is built from it).
    let port = free_port();
    for round in 0..2 {
        let issuer = format!("http://127.0.0.1:{port}");
        let mut child = std::process::Command::new(BIN)
            .args(["demo", "--json"])
            .env("KEYGATE_DATABASE_URL", &db.url)
            .env("KEYGATE_ISSUER", &issuer)
            .env("KEYGATE_BIND", format!("127.0.0.1:{port}"))
            .env("KEYGATE_RATE_LIMITS", "off")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let demo: Value = serde_json::from_str(&line).unwrap();
        assert!(eventually(std::time::Duration::from_secs(10), || {
            ureq::get(&format!("{issuer}/healthz")).call().is_ok()
        }));
        let mut http = Http::new(&issuer);
        assert_eq!(
            http.login(
                demo["email"].as_str().unwrap(),
                demo["password"].as_str().unwrap()
            )
            .status,
            303
        );
        let page = http.get(demo["authorize_url"].as_str().unwrap());
        assert_eq!(page.status, 200, "{}", page.body);
        let r = http.post_form(
            "/oauth/authorize",
            &[
                ("consent_id", &hidden(&page.body, "consent_id").unwrap()),
                ("csrf_token", &hidden(&page.body, "csrf_token").unwrap()),
                ("workspace_id", demo["workspace_id"].as_str().unwrap()),
                ("decision", "approve"),
            ],
        );
        assert!(r
            .location()
            .starts_with(&format!("{issuer}/demo/callback?")));
        let code = param(&r.location_params(), "code").unwrap().to_string();
        let callback = http.get(&r.location());
        assert!(
            callback.status == 200 && callback.body.contains("curl"),
            "{}",
            callback.body
        );
        let t = http.post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", demo["redirect_uri"].as_str().unwrap()),
                ("code_verifier", demo["code_verifier"].as_str().unwrap()),
                ("client_id", demo["client_id"].as_str().unwrap()),
            ],
        );
        assert_eq!(t.status, 200, "{}", t.body);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(db.count("workspaces"), 1, "round {round}");
        assert_eq!(db.count("clients"), 1, "round {round}");
    }
}
