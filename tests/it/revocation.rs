//! Revocation (RFC 7009), introspection (RFC 7662) and the authorized-apps table:
//! what ends when, on which node, and what stays untouched.

use crate::support::*;
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

const SCOPE: &str = "workspace:read tags:read tags:write";

/// RFC 7662 §2.2: the whole answer for a token that is not active.
fn inactive() -> Value {
    json!({ "active": false })
}

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

/// A form POST to `server`, with an `Authorization` header or none.
fn post(server: &Server, path: &str, form: &[(&str, &str)], auth: Option<&str>) -> Resp {
    let mut http = server.client();
    match auth {
        Some(a) => http.post_form_with(path, form, &[("Authorization", a)]),
        None => http.post_form(path, form),
    }
}

/// Revokes as the fixture's confidential client; RFC 7009 §2.2: 200, empty body.
fn revoke_ok(f: &Fixture, token: &str, hint: Option<&str>) {
    let mut form = vec![("token", token)];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    let r = post(&f.server, "/oauth/revoke", &form, Some(&f.basic()));
    assert_eq!(r.status, 200, "revoke ({hint:?}): {}", r.body);
    assert!(
        r.body.is_empty(),
        "revocation answered a body: {:?}",
        r.body
    );
}

/// Introspects at `server` as the fixture's confidential client.
fn introspect_at(server: &Server, f: &Fixture, token: &str, hint: Option<&str>) -> Value {
    let mut form = vec![("token", token)];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    let r = post(server, "/oauth/introspect", &form, Some(&f.basic()));
    assert_eq!(r.status, 200, "introspect: {}", r.body);
    r.json()
}

fn v1_status(server: &Server, token: &str) -> u16 {
    server.v1_status(token)
}

fn assert_live(server: &Server, f: &Fixture, token: &str) {
    let r = server.client().bearer_get("/v1/workspace", token);
    assert_eq!(r.status, 200, "token refused on /v1: {}", r.body);
    assert_eq!(r.json()["id"], f.workspace_id.as_str());
}

fn assert_dead(server: &Server, token: &str) {
    server
        .client()
        .bearer_get("/v1/workspace", token)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
}

/// RFC 6749 §5.2 and the contract: 401, `invalid_client`, `WWW-Authenticate: Basic`.
fn assert_invalid_client(r: &Resp) {
    r.assert_oauth_error(401, "invalid_client");
    let challenge = r.header("www-authenticate").unwrap_or_else(|| {
        panic!("401 without WWW-Authenticate: {}", r.body);
    });
    assert!(
        challenge.to_ascii_lowercase().starts_with("basic"),
        "WWW-Authenticate: {challenge}"
    );
}

/// The authorized-apps rows of the fixture's workspace, from the CLI.
fn apps(f: &Fixture) -> Vec<Value> {
    f.db()
        .json_lines(&["apps", "list", "--workspace", &f.workspace_id])
}

fn status_of(f: &Fixture, id: &str) -> String {
    apps(f)
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no authorization {id} listed"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ids(f: &Fixture) -> Vec<String> {
    apps(f)
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

/// One more approval of the confidential client: (access, refresh, authorization id).
fn tokens_with_id(f: &Fixture, scope: &str) -> (String, String, String) {
    let before = ids(f);
    let (access, refresh) = f.tokens(scope);
    let id = ids(f)
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("the approval made a new authorization");
    (access, refresh, id)
}

/// One more approval, left as an unredeemed code: (code, verifier, authorization id).
fn code_with_id(f: &Fixture, scope: &str) -> (String, String, String) {
    let before = ids(f);
    let (code, verifier) = f.code(scope);
    let id = ids(f)
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("the approval made a new authorization");
    (code, verifier, id)
}

/// Tokens of the public client (PKCE, `client_id` only): (access, refresh).
fn public_tokens(f: &Fixture) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut http = f.owner();
    let params = f.approve(&mut http, &f.public_client_id, SCOPE, &challenge);
    let code = param(&params, "code").expect("code");
    let r = post(
        &f.server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &f.public_client_id),
        ],
        None,
    );
    assert_eq!(r.status, 200, "public token: {}", r.body);
    let v = r.json();
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

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

/// Refreshes and returns the new (access, refresh).
fn rotate(f: &Fixture, refresh: &str) -> (String, String) {
    let r = f.refresh(refresh);
    assert_eq!(r.status, 200, "refresh: {}", r.body);
    let v = r.json();
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

fn apps_url(f: &Fixture) -> String {
    format!("/settings/authorized-apps?workspace={}", f.workspace_id)
}

fn revoke_action(id: &str) -> String {
    format!("/settings/authorized-apps/{id}/revoke")
}

/// The settings page's two steps: Revoke, then the confirmation. Returns the
/// final redirect.
fn settings_revoke(f: &Fixture, owner: &mut Http, id: &str) -> Resp {
    let page = owner.get(&apps_url(f));
    assert_eq!(page.status, 200, "{}", page.body);
    let action = revoke_action(id);
    assert!(
        page.body.contains(&action),
        "no Revoke form for {id}: {}",
        page.body
    );
    let csrf = hidden(&page.body, "csrf_token").expect("csrf_token");
    let confirm = owner.post_form(&action, &[("csrf_token", &csrf)]);
    assert_eq!(confirm.status, 200, "confirmation page: {}", confirm.body);
    assert_eq!(hidden(&confirm.body, "confirm").as_deref(), Some("yes"));
    let csrf = hidden(&confirm.body, "csrf_token").expect("csrf_token");
    let done = owner.post_form(&action, &[("csrf_token", &csrf), ("confirm", "yes")]);
    assert_eq!(done.status, 303, "revoke: {}", done.body);
    done
}

/// A second keygate process on the fixture's database, with the same issuer.
fn second_node(f: &Fixture) -> Server {
    // TestDb owns its directory; this one borrows only the first node's URL.
    let mut db = TestDb::new(f.db().backend);
    db.url = f.db().url.clone();
    Server::spawn(db, free_port(), &[("KEYGATE_ISSUER", &f.server.base)])
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

// ---------------------------------------------------------------------------
// Revocation across processes

fn cli_revoke_takes_effect_before_it_returns(b: Backend) {
    let f = Fixture::new(b);
    let (a, r, id) = tokens_with_id(&f, SCOPE);
    let (other, _, other_id) = tokens_with_id(&f, SCOPE);
    for _ in 0..3 {
        assert_live(&f.server, &f, &a);
    }
    assert_eq!(f.introspect(&a)["active"], true);

    let out = f.db().json(&["apps", "revoke", &id]);
    assert_eq!(out, json!({"id": id, "status": "revoked"}));
    // The very next calls, with no pause.
    assert_dead(&f.server, &a);
    assert_eq!(f.introspect(&a), inactive());
    assert_eq!(f.introspect(&r), inactive());
    f.refresh(&r).assert_oauth_error(400, "invalid_grant");

    assert_live(&f.server, &f, &other);
    assert_eq!(status_of(&f, &id), "revoked");
    assert_eq!(status_of(&f, &other_id), "active");
    // Revoking again is harmless.
    let out = f.db().json(&["apps", "revoke", &id]);
    assert_eq!(out["status"], "revoked");
}

fn revocation_reaches_another_node_within_a_second(b: Backend) {
    let f = Fixture::new(b);
    let node_b = second_node(&f);
    let node_a = &f.server;
    let (a1, _) = f.tokens(SCOPE);
    let (a2, r2) = f.tokens(SCOPE);
    let (a3, _, id3) = tokens_with_id(&f, SCOPE);
    let (a4, _, id4) = tokens_with_id(&f, SCOPE);
    let (keep, _) = f.tokens(SCOPE);
    // Node B serves each token first, so that each is in its memory.
    for t in [&a1, &a2, &a3, &a4, &keep] {
        assert_live(&node_b, &f, t);
        assert_eq!(introspect_at(&node_b, &f, t, None)["active"], true);
    }
    let gone_from_b = |t: &str| {
        eventually(Duration::from_secs(1), || {
            v1_status(&node_b, t) == 401 && introspect_at(&node_b, &f, t, None) == inactive()
        })
    };

    // An access token revoked at node A.
    revoke_ok(&f, &a1, None);
    assert_dead(node_a, &a1);
    assert!(
        gone_from_b(&a1),
        "node B still accepts a revoked access token"
    );
    assert_dead(&node_b, &a1);

    // A refresh token revoked at node A ends its access token on node B.
    revoke_ok(&f, &r2, None);
    assert_dead(node_a, &a2);
    assert!(
        gone_from_b(&a2),
        "node B still accepts an access token whose refresh token was revoked"
    );
    let at_b = post(
        &node_b,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
        Some(&f.basic()),
    );
    at_b.assert_oauth_error(400, "invalid_grant");

    // An authorization revoked on node A's settings page.
    let mut owner = f.owner();
    settings_revoke(&f, &mut owner, &id3);
    assert_dead(node_a, &a3);
    assert!(
        gone_from_b(&a3),
        "node B still accepts a token of an authorization revoked in the settings"
    );

    // The CLI waits until every node has it: no pause needed.
    f.db().json(&["apps", "revoke", &id4]);
    assert_dead(&node_b, &a4);
    assert_dead(node_a, &a4);

    // The untouched token works on both nodes.
    assert_live(node_a, &f, &keep);
    assert_live(&node_b, &f, &keep);
    assert_eq!(introspect_at(&node_b, &f, &keep, None)["active"], true);
}

// ---------------------------------------------------------------------------
// The authorized-apps table

fn authorized_apps_page_for_owners_only(b: Backend) {
    let f = Fixture::new(b);
    let mut owner = f.owner();
    let empty = owner.get(&apps_url(&f));
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(
        empty
            .body
            .contains("No OAuth apps are currently connected to"),
        "{}",
        empty.body
    );

    let (a, _, id) = tokens_with_id(&f, "workspace:read tags:write");
    let page = owner.get(&apps_url(&f));
    assert_eq!(page.status, 200, "{}", page.body);
    let text = unescape(&page.body);
    for needed in [
        "Acme CRM",
        "Create and change tags",
        "See the workspace's name and details",
        f.owner_email.as_str(),
        "active",
    ] {
        assert!(text.contains(needed), "page lacks {needed:?}: {text}");
    }
    assert!(!text.contains("No OAuth apps are currently connected"));
    assert!(text.contains(&revoke_action(&id)));

    // An admin sees it too.
    let (_, admin_email) = f.add_user("admin");
    let mut admin = f.signed_in(&admin_email);
    let p = admin.get(&apps_url(&f));
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("Acme CRM"));

    // A member is refused, clearly, and sees no row.
    let (_, member_email) = f.add_user("member");
    let mut member = f.signed_in(&member_email);
    let p = member.get(&apps_url(&f));
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(
        p.body.contains("Only owners and admins"),
        "no clear refusal: {}",
        p.body
    );
    assert!(!p.body.contains("Acme CRM"), "{}", p.body);
    assert!(!p.body.contains(&revoke_action(&id)));
    // Nor can a member revoke, even with a valid CSRF token of their session.
    let csrf = hidden(&p.body, "csrf_token").expect("the member's session CSRF token");
    let r = member.post_form(
        &revoke_action(&id),
        &[("csrf_token", &csrf), ("confirm", "yes")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(status_of(&f, &id), "active");
    assert_live(&f.server, &f, &a);
}

fn settings_revoke_needs_csrf_and_confirmation(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_only");
    let (a, r, id) = tokens_with_id(&f, SCOPE);
    let created = f
        .server
        .client()
        .bearer_post_json("/v1/tags", &a, r#"{"name":"made-by-app"}"#);
    assert_eq!(created.status, 201, "{}", created.body);

    let mut owner = f.owner();
    let action = revoke_action(&id);
    // A forged or missing CSRF token: refused, nothing revoked.
    for form in [
        vec![("csrf_token", "forged"), ("confirm", "yes")],
        vec![("confirm", "yes")],
        vec![("csrf_token", "forged")],
    ] {
        let resp = owner.post_form(&action, &form);
        assert_eq!(resp.status, 403, "{}", resp.body);
    }
    assert_eq!(status_of(&f, &id), "active");
    assert_live(&f.server, &f, &a);

    // Step one: a confirmation page, and still nothing revoked.
    let page = owner.get(&apps_url(&f));
    let csrf = hidden(&page.body, "csrf_token").unwrap();
    let confirm = owner.post_form(&action, &[("csrf_token", &csrf)]);
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Acme CRM"), "{}", confirm.body);
    assert!(confirm.body.contains(&action));
    assert_eq!(hidden(&confirm.body, "confirm").as_deref(), Some("yes"));
    assert_eq!(status_of(&f, &id), "active");
    assert_live(&f.server, &f, &a);

    // Step two: revoked, and every token fails at once.
    let done = owner.post_form(&action, &[("csrf_token", &csrf), ("confirm", "yes")]);
    assert_eq!(done.status, 303, "{}", done.body);
    let back = done.location();
    assert!(
        back.starts_with(&apps_url(&f)),
        "redirected to {back} after revoking"
    );
    assert_dead(&f.server, &a);
    f.refresh(&r).assert_oauth_error(400, "invalid_grant");
    assert_eq!(f.introspect(&a), inactive());
    assert_eq!(f.introspect(&r), inactive());
    assert_eq!(status_of(&f, &id), "revoked");

    // The table keeps the row, revoked, with no Revoke button.
    let page = owner.get(&back);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Acme CRM"));
    assert!(page.body.contains("revoked"));
    assert!(!page.body.contains(&action), "revoked row still has Revoke");

    // Revoking deletes no data.
    let tags = f.server.client().bearer_get("/v1/tags", &key);
    assert_eq!(tags.status, 200, "{}", tags.body);
    assert!(
        tags.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "made-by-app"),
        "the app's tag is gone: {}",
        tags.body
    );
    assert_eq!(apps(&f).len(), 1);
}

fn approving_again_makes_a_new_authorization(b: Backend) {
    let f = Fixture::new(b);
    let (a1, _, id1) = tokens_with_id(&f, SCOPE);
    f.db().json(&["apps", "revoke", &id1]);
    assert_dead(&f.server, &a1);

    // The consent page is shown again: no silent re-approval.
    let (_, challenge) = pkce();
    let mut owner = f.owner();
    let page = owner.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, SCOPE, &challenge)
    ));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(hidden(&page.body, "consent_id").is_some());
    assert!(page.body.contains("Acme CRM"));

    let (a2, r2, id2) = tokens_with_id(&f, SCOPE);
    assert_ne!(id1, id2);
    assert_live(&f.server, &f, &a2);
    assert_dead(&f.server, &a1);
    assert_eq!(f.introspect(&r2)["active"], true);

    let rows = apps(&f);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let old = rows.iter().find(|r| r["id"] == id1.as_str()).unwrap();
    let new = rows.iter().find(|r| r["id"] == id2.as_str()).unwrap();
    assert_eq!(old["status"], "revoked");
    assert_eq!(new["status"], "active");
    for row in [old, new] {
        assert_eq!(row["client_id"], f.client_id.as_str());
        assert_eq!(row["app_name"], "Acme CRM");
        assert_eq!(row["workspace_id"], f.workspace_id.as_str());
    }
}

fn revoking_an_authorization_kills_its_unredeemed_codes(b: Backend) {
    let f = Fixture::new(b);
    let (code1, verifier1, id1) = code_with_id(&f, SCOPE);
    let (code2, verifier2, id2) = code_with_id(&f, SCOPE);
    assert_eq!(status_of(&f, &id1), "active");

    f.db().json(&["apps", "revoke", &id1]);
    f.exchange(&code1, &verifier1)
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(status_of(&f, &id1), "revoked");

    // The other approval's code still works.
    let r = f.exchange(&code2, &verifier2);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_live(&f.server, &f, r.json()["access_token"].as_str().unwrap());
    assert_eq!(status_of(&f, &id2), "active");
}

fn one_authorizations_revocation_never_touches_another(b: Backend) {
    let f = Fixture::new(b);
    let (a1, _, id1) = tokens_with_id(&f, SCOPE);
    let (a2, r2, _) = tokens_with_id(&f, SCOPE);
    let (a3, r3, id3) = tokens_with_id(&f, SCOPE);
    for t in [&a1, &a2, &a3] {
        assert_live(&f.server, &f, t);
    }

    // The first, on the settings page.
    let mut owner = f.owner();
    settings_revoke(&f, &mut owner, &id1);
    assert_dead(&f.server, &a1);
    assert_live(&f.server, &f, &a2);
    assert_live(&f.server, &f, &a3);
    assert_eq!(f.introspect(&a2)["active"], true);
    assert_eq!(f.introspect(&r2)["active"], true);

    // The second, through its refresh token.
    revoke_ok(&f, &r2, None);
    assert_dead(&f.server, &a2);
    assert_live(&f.server, &f, &a3);
    assert_eq!(f.introspect(&a3)["active"], true);
    assert_eq!(f.introspect(&r3)["active"], true);
    let (a3b, _) = rotate(&f, &r3);
    assert_live(&f.server, &f, &a3b);
    assert_live(&f.server, &f, &a3);
    assert_eq!(status_of(&f, &id1), "revoked");
    assert_eq!(status_of(&f, &id3), "active");
}

// ---------------------------------------------------------------------------
// Races

/// The server's log lines that report failures.
fn server_errors(server: &Server) -> String {
    server
        .logs()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A refresh racing the revocation of the same refresh token: never a 500, and
/// whatever the refresh won is dead once the revocation has answered.
fn refresh_racing_revocation(b: Backend) {
    let f = Fixture::new(b);
    let mut owner = f.owner();
    let mut grants = Vec::new();
    for _ in 0..24 {
        let (verifier, challenge) = pkce();
        let params = f.approve(&mut owner, &f.client_id, SCOPE, &challenge);
        let r = f.exchange(param(&params, "code").unwrap(), &verifier);
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        grants.push((
            v["access_token"].as_str().unwrap().to_string(),
            v["refresh_token"].as_str().unwrap().to_string(),
        ));
    }
    for batch in grants.chunks(8) {
        let barrier = std::sync::Barrier::new(batch.len() * 2);
        let results: Vec<(Resp, Resp)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(_, r)| {
                    let barrier = &barrier;
                    let f = &f;
                    let refreshed = s.spawn(move || {
                        barrier.wait();
                        f.refresh(r)
                    });
                    let revoked = s.spawn(move || {
                        barrier.wait();
                        post(
                            &f.server,
                            "/oauth/revoke",
                            &[("token", r)],
                            Some(&f.basic()),
                        )
                    });
                    (refreshed, revoked)
                })
                .collect();
            handles
                .into_iter()
                .map(|(a, b)| (a.join().unwrap(), b.join().unwrap()))
                .collect()
        });
        for ((access, refresh), (refreshed, revoked)) in batch.iter().zip(results) {
            for (what, r) in [("refresh", &refreshed), ("revoke", &revoked)] {
                assert!(
                    r.status < 500,
                    "{what} racing a revocation answered {}: {}\nserver log:\n{}",
                    r.status,
                    r.body,
                    server_errors(&f.server)
                );
            }
            assert_eq!(revoked.status, 200, "revoke lost a race: {}", revoked.body);
            assert_dead(&f.server, access);
            f.refresh(refresh).assert_oauth_error(400, "invalid_grant");
            match refreshed.status {
                200 => {
                    let v = refreshed.json();
                    assert_dead(&f.server, v["access_token"].as_str().unwrap());
                    f.refresh(v["refresh_token"].as_str().unwrap())
                        .assert_oauth_error(400, "invalid_grant");
                }
                _ => refreshed.assert_oauth_error(400, "invalid_grant"),
            }
        }
    }
}

/// A code exchange racing the revocation of its authorization on the settings
/// page: never a 500, and whatever the exchange won is dead afterwards.
fn code_exchange_racing_revocation(b: Backend) {
    let f = Fixture::new(b);
    let mut owner = f.owner();
    let mut known = Vec::new();
    let mut codes = Vec::new();
    for _ in 0..24 {
        let (verifier, challenge) = pkce();
        let params = f.approve(&mut owner, &f.client_id, SCOPE, &challenge);
        let now = ids(&f);
        let id = now.iter().find(|id| !known.contains(*id)).unwrap().clone();
        known = now;
        codes.push((param(&params, "code").unwrap().to_string(), verifier, id));
    }
    for batch in codes.chunks(8) {
        let barrier = std::sync::Barrier::new(batch.len() * 2);
        let results: Vec<(Resp, Resp)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(code, verifier, id)| {
                    let barrier = &barrier;
                    let f = &f;
                    // The owner's session and its CSRF token, ready before the race.
                    let mut session = f.owner();
                    let page = session.get(&apps_url(f));
                    let csrf = hidden(&page.body, "csrf_token").unwrap();
                    let exchanged = s.spawn(move || {
                        barrier.wait();
                        f.exchange(code, verifier)
                    });
                    let revoked = s.spawn(move || {
                        barrier.wait();
                        session.post_form(
                            &revoke_action(id),
                            &[("csrf_token", &csrf), ("confirm", "yes")],
                        )
                    });
                    (exchanged, revoked)
                })
                .collect();
            handles
                .into_iter()
                .map(|(a, b)| (a.join().unwrap(), b.join().unwrap()))
                .collect()
        });
        let rows = apps(&f);
        for ((_, _, id), (exchanged, revoked)) in batch.iter().zip(results) {
            for (what, r) in [("code exchange", &exchanged), ("revoke", &revoked)] {
                assert!(
                    r.status < 500,
                    "{what} racing a revocation answered {}: {}\nserver log:\n{}",
                    r.status,
                    r.body,
                    server_errors(&f.server)
                );
            }
            assert_eq!(revoked.status, 303, "{}", revoked.body);
            let row = rows.iter().find(|r| r["id"] == id.as_str()).unwrap();
            assert_eq!(row["status"], "revoked");
            match exchanged.status {
                200 => {
                    let v = exchanged.json();
                    assert_dead(&f.server, v["access_token"].as_str().unwrap());
                    f.refresh(v["refresh_token"].as_str().unwrap())
                        .assert_oauth_error(400, "invalid_grant");
                }
                _ => exchanged.assert_oauth_error(400, "invalid_grant"),
            }
        }
    }
}

both_backends!(
    revoking_an_access_token_ends_only_that_token,
    revoking_a_refresh_token_ends_its_access_tokens,
    token_type_hint_is_honoured_but_not_trusted,
    revocation_requires_client_authentication,
    another_clients_token_is_a_silent_no_op,
    introspection_describes_live_tokens,
    introspection_searches_past_a_wrong_hint,
    introspection_is_for_confidential_clients,
    introspection_answers_only_active_false_otherwise,
    expired_access_tokens_are_inactive,
    cli_revoke_takes_effect_before_it_returns,
    revocation_reaches_another_node_within_a_second,
    authorized_apps_page_for_owners_only,
    settings_revoke_needs_csrf_and_confirmation,
    approving_again_makes_a_new_authorization,
    revoking_an_authorization_kills_its_unredeemed_codes,
    one_authorizations_revocation_never_touches_another,
    refresh_racing_revocation,
    code_exchange_racing_revocation,
);
