//! The RFC 7009 revocation endpoint: access and refresh tokens, hints, client
//! authentication, and other clients' tokens.

use super::*;

fn public_refresh(f: &Fixture, refresh: &str) -> Resp {
    post(
        &f.server,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &f.public_client_id),
        ],
        None,
    )
}

// ---------------------------------------------------------------------------
// POST /oauth/revoke

fn revoking_an_access_token_ends_only_that_token(b: Backend) {
    let f = Fixture::new(b);
    let (a1, r1, id1) = tokens_with_id(&f, SCOPE);
    let (a2, r2, id2) = tokens_with_id(&f, SCOPE);
    assert_live(&f.server, &f, &a1);
    assert_live(&f.server, &f, &a2);

    revoke_ok(&f, &a1, None);
    assert_dead(&f.server, &a1);
    assert_eq!(f.introspect(&a1), inactive());
    // Revoking it again is still a success (RFC 7009 §2.2).
    revoke_ok(&f, &a1, Some("access_token"));

    // Its refresh token still works, and so does what it issues.
    assert_eq!(f.introspect(&r1)["active"], true);
    let (a1b, _) = rotate(&f, &r1);
    assert_live(&f.server, &f, &a1b);
    // Another authorization's tokens are untouched.
    assert_live(&f.server, &f, &a2);
    assert_eq!(f.introspect(&a2)["active"], true);
    assert_eq!(f.introspect(&r2)["active"], true);
    // Both authorizations are still active.
    assert_eq!(status_of(&f, &id1), "active");
    assert_eq!(status_of(&f, &id2), "active");
}

fn revoking_a_refresh_token_ends_its_access_tokens(b: Backend) {
    let f = Fixture::new(b);
    let (a1, r1) = f.tokens(SCOPE);
    assert_live(&f.server, &f, &a1);
    let (a2, r2) = rotate(&f, &r1);
    assert_live(&f.server, &f, &a2);
    let (other_a, other_r) = f.tokens(SCOPE);
    assert_live(&f.server, &f, &other_a);

    // The current refresh token, without a hint: every access token of its
    // grant ends, the one issued with it and the one before.
    revoke_ok(&f, &r2, None);
    assert_dead(&f.server, &a1);
    assert_dead(&f.server, &a2);
    assert_eq!(f.introspect(&a1), inactive());
    assert_eq!(f.introspect(&a2), inactive());
    assert_eq!(f.introspect(&r2), inactive());
    f.refresh(&r2).assert_oauth_error(400, "invalid_grant");

    // The other authorization goes on.
    assert_live(&f.server, &f, &other_a);
    assert_eq!(f.introspect(&other_r)["active"], true);
    let (other_a2, _) = rotate(&f, &other_r);
    assert_live(&f.server, &f, &other_a2);

    // An earlier refresh token of a family ends its later rotations too.
    let (b1, s1) = f.tokens(SCOPE);
    let (b2, s2) = rotate(&f, &s1);
    assert_live(&f.server, &f, &b2);
    revoke_ok(&f, &s1, Some("refresh_token"));
    assert_dead(&f.server, &b1);
    assert_dead(&f.server, &b2);
    assert_eq!(f.introspect(&s2), inactive());
    f.refresh(&s2).assert_oauth_error(400, "invalid_grant");
    assert_live(&f.server, &f, &other_a2);
}

fn token_type_hint_is_honoured_but_not_trusted(b: Backend) {
    let f = Fixture::new(b);
    // An access token sent as a refresh token is still revoked, and alone.
    let (a1, r1) = f.tokens(SCOPE);
    assert_live(&f.server, &f, &a1);
    revoke_ok(&f, &a1, Some("refresh_token"));
    assert_dead(&f.server, &a1);
    assert_eq!(f.introspect(&a1), inactive());
    assert_eq!(f.refresh(&r1).status, 200, "the refresh token must survive");

    // A refresh token sent as an access token is still revoked, with its grant.
    let (a2, r2) = f.tokens(SCOPE);
    assert_live(&f.server, &f, &a2);
    revoke_ok(&f, &r2, Some("access_token"));
    f.refresh(&r2).assert_oauth_error(400, "invalid_grant");
    assert_dead(&f.server, &a2);
    assert_eq!(f.introspect(&r2), inactive());

    // A hint keygate does not know is ignored.
    let (a3, r3) = f.tokens(SCOPE);
    revoke_ok(&f, &a3, Some("something_else"));
    assert_dead(&f.server, &a3);
    revoke_ok(&f, &r3, Some("something_else"));
    f.refresh(&r3).assert_oauth_error(400, "invalid_grant");
}

fn revocation_requires_client_authentication(b: Backend) {
    let f = Fixture::new(b);
    let (a, r) = f.tokens(SCOPE);
    assert_live(&f.server, &f, &a);
    let wrong = basic(&f.client_id, "not-the-secret");
    let unknown = basic("no-such-client", "secret");
    for (form, auth) in [
        (vec![("token", a.as_str())], None),
        (vec![("token", a.as_str())], Some(wrong.as_str())),
        (vec![("token", a.as_str())], Some(unknown.as_str())),
        (vec![("token", r.as_str())], Some(wrong.as_str())),
        (
            vec![
                ("token", a.as_str()),
                ("client_id", f.client_id.as_str()),
                ("client_secret", "not-the-secret"),
            ],
            None,
        ),
        // A confidential client cannot identify itself with client_id alone.
        (
            vec![("token", a.as_str()), ("client_id", f.client_id.as_str())],
            None,
        ),
    ] {
        let resp = post(&f.server, "/oauth/revoke", &form, auth);
        assert_invalid_client(&resp);
    }
    // None of that revoked anything.
    assert_live(&f.server, &f, &a);
    assert_eq!(f.introspect(&a)["active"], true);
    assert_eq!(f.introspect(&r)["active"], true);

    // The token parameter is required (an empty one counts as absent).
    for form in [
        vec![],
        vec![("token", "")],
        vec![("token_type_hint", "access_token")],
    ] {
        post(&f.server, "/oauth/revoke", &form, Some(&f.basic()))
            .assert_oauth_error(400, "invalid_request");
    }

    // Unknown, invalid or garbage tokens: 200 with an empty body.
    let long = "x".repeat(3000);
    let (_, unused_refresh) = f.tokens(SCOPE);
    let tampered = format!("{unused_refresh}x");
    for t in [
        "no-such-token",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        "kgk_not_a_key",
        "  ",
        "€uro ünïcode",
        long.as_str(),
        tampered.as_str(),
    ] {
        revoke_ok(&f, t, None);
        revoke_ok(&f, t, Some("refresh_token"));
    }
    assert_live(&f.server, &f, &a);

    // A public client identifies itself with client_id alone.
    let (pa, pr) = public_tokens(&f);
    assert_live(&f.server, &f, &pa);
    let resp = post(
        &f.server,
        "/oauth/revoke",
        &[("token", &pa), ("client_id", &f.public_client_id)],
        None,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.is_empty(), "{:?}", resp.body);
    assert_dead(&f.server, &pa);
    let v = public_refresh(&f, &pr);
    assert_eq!(
        v.status, 200,
        "public refresh after access revoke: {}",
        v.body
    );
    let pr2 = v.json()["refresh_token"].as_str().unwrap().to_string();
    let pa2 = v.json()["access_token"].as_str().unwrap().to_string();
    let resp = post(
        &f.server,
        "/oauth/revoke",
        &[
            ("token", &pr2),
            ("token_type_hint", "refresh_token"),
            ("client_id", &f.public_client_id),
        ],
        None,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    public_refresh(&f, &pr2).assert_oauth_error(400, "invalid_grant");
    assert_dead(&f.server, &pa2);
}

fn another_clients_token_is_a_silent_no_op(b: Backend) {
    let f = Fixture::new(b);
    let (a, r) = f.tokens(SCOPE);
    let (pa, pr) = public_tokens(&f);
    assert_live(&f.server, &f, &a);
    assert_live(&f.server, &f, &pa);
    let other = f.db().create_client("Other App", REDIRECT);
    let other_basic = basic(
        other["client_id"].as_str().unwrap(),
        other["client_secret"].as_str().unwrap(),
    );

    for t in [&a, &r] {
        for hint in [None, Some("access_token"), Some("refresh_token")] {
            let mut form = vec![("token", t.as_str())];
            if let Some(h) = hint {
                form.push(("token_type_hint", h));
            }
            // Another confidential client.
            let resp = post(&f.server, "/oauth/revoke", &form, Some(&other_basic));
            assert_eq!(resp.status, 200, "{}", resp.body);
            assert!(resp.body.is_empty());
            // The public client.
            form.push(("client_id", f.public_client_id.as_str()));
            let resp = post(&f.server, "/oauth/revoke", &form, None);
            assert_eq!(resp.status, 200, "{}", resp.body);
            assert!(resp.body.is_empty());
        }
    }
    // The confidential client on the public client's tokens.
    revoke_ok(&f, &pa, None);
    revoke_ok(&f, &pr, None);

    // Everything keeps working.
    assert_live(&f.server, &f, &a);
    assert_live(&f.server, &f, &pa);
    assert_eq!(f.introspect(&a)["active"], true);
    assert_eq!(f.introspect(&r)["active"], true);
    assert!(!rotate(&f, &r).0.is_empty());
    let resp = public_refresh(&f, &pr);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(apps(&f).iter().all(|a| a["status"] == "active"));
}

both_backends!(
    revoking_an_access_token_ends_only_that_token,
    revoking_a_refresh_token_ends_its_access_tokens,
    token_type_hint_is_honoured_but_not_trusted,
    revocation_requires_client_authentication,
    another_clients_token_is_a_silent_no_op,
);
