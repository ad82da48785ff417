//! RFC 7662 introspection: live tokens described, wrong hints searched past, for
//! confidential clients only, `active: false` otherwise, expired tokens.

use super::*;

/// The claims of a JWT, read without verifying it.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url payload"),
    )
    .expect("JSON claims")
}

// ---------------------------------------------------------------------------
// POST /oauth/introspect

fn check_access_description(f: &Fixture, v: &Value, token: &str) {
    let c = claims(token);
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["scope"], "workspace:read tags:write", "{v}");
    assert_eq!(v["client_id"], f.client_id.as_str(), "{v}");
    assert_eq!(v["sub"], f.owner_id.as_str(), "{v}");
    assert_eq!(v["workspace_id"], f.workspace_id.as_str(), "{v}");
    assert_eq!(v["iss"], f.server.base.as_str(), "{v}");
    let resource = format!("{}/v1", f.server.base);
    assert!(
        v["aud"] == resource.as_str() || v["aud"] == json!([resource]),
        "aud: {v}"
    );
    assert!(
        v["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "token_type: {v}"
    );
    assert_eq!(v["exp"], c["exp"], "{v}");
    assert_eq!(v["iat"], c["iat"], "{v}");
    let now = chrono::Utc::now().timestamp();
    let iat = v["iat"].as_i64().expect("iat is a number");
    assert!((iat - now).abs() < 120, "iat {iat} is not now ({now})");
    assert_eq!(v["exp"].as_i64().unwrap() - iat, 3600);
}

fn introspection_describes_live_tokens(b: Backend) {
    let f = Fixture::new(b);
    let (a, r) = f.tokens("workspace:read tags:write");
    // Never used yet: read from the database.
    check_access_description(&f, &f.introspect(&a), &a);
    // Used: the node has it in memory.
    assert_live(&f.server, &f, &a);
    check_access_description(&f, &f.introspect(&a), &a);
    // client_secret_post works as well as Basic.
    let resp = post(
        &f.server,
        "/oauth/introspect",
        &[
            ("token", &a),
            ("client_id", &f.client_id),
            ("client_secret", &f.client_secret),
        ],
        None,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    check_access_description(&f, &resp.json(), &a);

    // A live refresh token.
    let v = f.introspect(&r);
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], f.client_id.as_str(), "{v}");
    assert_eq!(v["scope"], "workspace:read tags:write", "{v}");
    assert_eq!(v["sub"], f.owner_id.as_str(), "{v}");
    assert_eq!(v["workspace_id"], f.workspace_id.as_str(), "{v}");
    if let Some(exp) = v.get("exp") {
        assert!(
            exp.as_i64().unwrap() > chrono::Utc::now().timestamp(),
            "{v}"
        );
    }
}

fn introspection_searches_past_a_wrong_hint(b: Backend) {
    let f = Fixture::new(b);
    let (a, r) = f.tokens("workspace:read tags:write");
    // The right hints.
    check_access_description(
        &f,
        &introspect_at(&f.server, &f, &a, Some("access_token")),
        &a,
    );
    assert_eq!(
        introspect_at(&f.server, &f, &r, Some("refresh_token"))["active"],
        true
    );
    // RFC 7662 §2.1: a token not found under the hint is looked for under every
    // other type. A refresh token announced as an access token:
    assert_eq!(
        introspect_at(&f.server, &f, &r, Some("access_token"))["active"],
        true
    );
    // An access token announced as a refresh token, before and after use.
    let v = introspect_at(&f.server, &f, &a, Some("refresh_token"));
    assert_eq!(
        v["active"], true,
        "an access token introspected with token_type_hint=refresh_token was reported inactive: {v}"
    );
    check_access_description(&f, &v, &a);
    assert_live(&f.server, &f, &a);
    let v = introspect_at(&f.server, &f, &a, Some("refresh_token"));
    check_access_description(&f, &v, &a);
}

fn introspection_is_for_confidential_clients(b: Backend) {
    let f = Fixture::new(b);
    let (a, _) = f.tokens(SCOPE);
    let (pa, _) = public_tokens(&f);
    let wrong = basic(&f.client_id, "not-the-secret");
    let public_basic = basic(&f.public_client_id, "");
    for (form, auth) in [
        (vec![("token", a.as_str())], None),
        (vec![("token", a.as_str())], Some(wrong.as_str())),
        (
            vec![
                ("token", a.as_str()),
                ("client_id", f.client_id.as_str()),
                ("client_secret", "not-the-secret"),
            ],
            None,
        ),
        (
            vec![("token", a.as_str()), ("client_id", f.client_id.as_str())],
            None,
        ),
        // Public clients may not introspect, not even their own tokens.
        (
            vec![
                ("token", pa.as_str()),
                ("client_id", f.public_client_id.as_str()),
            ],
            None,
        ),
        (vec![("token", pa.as_str())], Some(public_basic.as_str())),
    ] {
        let resp = post(&f.server, "/oauth/introspect", &form, auth);
        assert_invalid_client(&resp);
        assert!(
            !resp.body.contains("\"active\""),
            "an unauthenticated caller learned something: {}",
            resp.body
        );
    }
    // With authentication, the token parameter is required.
    for form in [vec![], vec![("token", "")]] {
        post(&f.server, "/oauth/introspect", &form, Some(&f.basic()))
            .assert_oauth_error(400, "invalid_request");
    }
}

fn introspection_answers_only_active_false_otherwise(b: Backend) {
    let f = Fixture::new(b);
    // Unknown and malformed tokens.
    let (live, _) = f.tokens(SCOPE);
    let (other_live, _) = f.tokens(SCOPE);
    let parts: Vec<&str> = live.split('.').collect();
    let other_sig = other_live.split('.').nth(2).unwrap();
    let bad_signature = format!("{}.{}.{}", parts[0], parts[1], other_sig);
    let long = "y".repeat(3000);
    for t in [
        "no-such-token",
        "a.b",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        bad_signature.as_str(),
        "kgk_not_a_key",
        "€uro ünïcode",
        long.as_str(),
    ] {
        assert_eq!(f.introspect(t), inactive(), "token {t:?}");
        assert_eq!(
            introspect_at(&f.server, &f, t, Some("refresh_token")),
            inactive(),
            "token {t:?}"
        );
    }

    // Revoked access tokens: one the node had seen, one it had not.
    let (seen, _) = f.tokens(SCOPE);
    let (unseen, _) = f.tokens(SCOPE);
    assert_live(&f.server, &f, &seen);
    revoke_ok(&f, &seen, None);
    revoke_ok(&f, &unseen, None);
    assert_eq!(f.introspect(&seen), inactive());
    assert_eq!(f.introspect(&unseen), inactive());
    // A revoked refresh token, and a used (rotated) one.
    let (_, revoked_refresh) = f.tokens(SCOPE);
    revoke_ok(&f, &revoked_refresh, Some("refresh_token"));
    assert_eq!(f.introspect(&revoked_refresh), inactive());
    let (_, used) = f.tokens(SCOPE);
    let (_, current) = rotate(&f, &used);
    assert_eq!(f.introspect(&used), inactive());
    assert_eq!(f.introspect(&current)["active"], true);

    // Another client's tokens: the public client's, seen by this client...
    let (pa, pr) = public_tokens(&f);
    assert_eq!(f.introspect(&pa), inactive());
    assert_live(&f.server, &f, &pa);
    assert_eq!(f.introspect(&pa), inactive());
    assert_eq!(f.introspect(&pr), inactive());
    // ...and this client's, seen by another confidential client.
    let other = f.db().create_client("Other App", REDIRECT);
    let other_basic = basic(
        other["client_id"].as_str().unwrap(),
        other["client_secret"].as_str().unwrap(),
    );
    let (a, r) = f.tokens(SCOPE);
    for used_first in [false, true] {
        if used_first {
            assert_live(&f.server, &f, &a);
        }
        for t in [&a, &r] {
            let resp = post(
                &f.server,
                "/oauth/introspect",
                &[("token", t)],
                Some(&other_basic),
            );
            assert_eq!(resp.status, 200, "{}", resp.body);
            assert_eq!(resp.json(), inactive(), "another client's token");
        }
    }
    assert_eq!(f.introspect(&a)["active"], true);

    // API keys are not OAuth tokens: one the node has seen, one it has not.
    let seen_key = f.api_key("read_write");
    let unseen_key = f.api_key("read_only");
    assert_live(&f.server, &f, &seen_key);
    for k in [&seen_key, &unseen_key] {
        assert_eq!(f.introspect(k), inactive());
        assert_eq!(
            introspect_at(&f.server, &f, k, Some("access_token")),
            inactive()
        );
    }
}

fn expired_access_tokens_are_inactive(b: Backend) {
    let server = Server::start_with(TestDb::new(b), &[("KEYGATE_ACCESS_TOKEN_TTL", "2")]);
    let f = Fixture::with_server(server);
    let (seen, refresh) = f.tokens(SCOPE);
    assert_live(&f.server, &f, &seen);
    let v = f.introspect(&seen);
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["exp"].as_i64().unwrap() - v["iat"].as_i64().unwrap(), 2);
    let (unseen, _) = f.tokens(SCOPE);

    std::thread::sleep(Duration::from_secs(3));
    assert_dead(&f.server, &seen);
    assert_dead(&f.server, &unseen);
    assert_eq!(f.introspect(&seen), inactive());
    assert_eq!(f.introspect(&unseen), inactive());
    // Revoking an expired token is still a quiet success.
    revoke_ok(&f, &seen, None);

    // The refresh token lives on and issues fresh access tokens.
    assert_eq!(f.introspect(&refresh)["active"], true);
    let r = f.refresh(&refresh);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["expires_in"], 2);
}

both_backends!(
    introspection_describes_live_tokens,
    introspection_searches_past_a_wrong_hint,
    introspection_is_for_confidential_clients,
    introspection_answers_only_active_false_otherwise,
    expired_access_tokens_are_inactive,
);
