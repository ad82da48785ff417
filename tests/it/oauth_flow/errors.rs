//! Request errors at the authorize and token endpoints, and failed client authentication.

use super::*;

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
    // An escape that decodes to no UTF-8: a malformed header, not a secret.
    let not_utf8 = {
        use base64::Engine;
        let raw = format!("{}:%FF%FE", f.client_id);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    for auth in [
        basic(&f.client_id, "wrong"),
        basic("nobody", "x"),
        "Basic !!!".to_string(),
        not_utf8,
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

fn token_endpoint_request_errors(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    let auth = f.basic();
    let h = [("Authorization", auth.as_str())];
    http.post_form_with("/oauth/token", &[("grant_type", "password")], &h)
        .assert_oauth_error(400, "unsupported_grant_type");
    // Offered to service clients only: this client did not register it.
    http.post_form_with("/oauth/token", &[("grant_type", "client_credentials")], &h)
        .assert_oauth_error(400, "unauthorized_client");
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

both_backends!(
    client_authentication_failures,
    token_endpoint_request_errors,
    authorize_request_errors,
);
