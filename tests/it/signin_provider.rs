//! Signing in through the product's identity provider, against a real OpenID
//! provider (node-oidc-provider, tests/node/oidc-provider.mjs): the login page
//! → the provider's own login and consent pages → keygate's callback → the
//! authorization request the person started, on both backends.

use crate::support::*;
use serde_json::json;

/// A keygate node whose people sign in with a fresh provider; the fixture's
/// owner is the provider's account `owner-sub` (verified email), and the
/// provider also knows `stranger-sub` (nobody in keygate) and `unverified-sub`
/// (the owner's email, not verified).
fn setup(b: Backend, extra: &[(&str, &str)]) -> (Fixture, OidcProvider) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let owner_email = format!("owner-{}@example.com", &unique()[..8]);
    let provider = OidcProvider::start(
        &base,
        json!({
            "owner-sub": {"email": owner_email.to_uppercase(), "email_verified": true},
            "stranger-sub": {"email": "stranger@example.com", "email_verified": true},
            "unverified-sub": {"email": owner_email, "email_verified": false},
        }),
    );
    let mut env = provider.keygate_env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let server = Server::spawn(TestDb::new(b), port, &env_refs(&env));
    let f = Fixture::with_server(server);
    f.db().execute(&format!(
        "UPDATE users SET email = '{owner_email}' WHERE id = '{}'",
        f.owner_id
    ));
    let mut f = f;
    f.owner_email = owner_email;
    (f, provider)
}

/// From the login page at `login_path`, through the provider as `account`,
/// back to keygate's callback; returns the callback's answer.
fn sign_in_via_provider(
    http: &mut Http,
    provider: &OidcProvider,
    login_path: &str,
    account: &str,
) -> Resp {
    let page = http.get(login_path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Sign in with Acme ID"), "{}", page.body);
    let csrf = hidden(&page.body, "csrf_token").expect("csrf");
    let next = hidden(&page.body, "next").expect("next");
    let started = http.post_form("/login/oidc", &[("csrf_token", &csrf), ("next", &next)]);
    assert_eq!(started.status, 303, "{}", started.body);
    let to_provider = started.location();
    assert!(to_provider.starts_with(&provider.issuer), "{to_provider}");
    let callback = provider.agent().sign_in_at_provider(&to_provider, account);
    assert!(callback.contains("/login/oidc/callback?"), "{callback}");
    http.get(&callback)
}

fn the_person_resumes_the_authorization_they_started(b: Backend) {
    let (f, provider) = setup(b, &[]);
    let (_, challenge) = pkce();
    let authorize = format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, "workspace:read", &challenge)
    );
    let mut http = f.server.client();
    let to_login = http.get(&authorize);
    assert_eq!(to_login.status, 302, "{}", to_login.body);
    let back = sign_in_via_provider(&mut http, &provider, &to_login.location(), "owner-sub");
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location(), authorize);
    let session = http.cookie("keygate_session").expect("a session cookie");
    let consent = http.get(&back.location());
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains(APP_NAME), "{}", consent.body);
    let approved = approve_page(&f, &mut http, &consent);
    assert_eq!(approved.status, 303, "{}", approved.body);

    // Linked now: a second sign-in is a new session, found by the identity.
    let mut again = f.server.client();
    let back = sign_in_via_provider(&mut again, &provider, "/login", "owner-sub");
    assert_eq!(back.status, 303, "{}", back.body);
    assert_ne!(again.cookie("keygate_session"), Some(session));
    let log = again.get(&format!(
        "/settings/security-log?workspace={}",
        f.workspace_id
    ));
    assert!(
        log.body.contains("Identity provider account linked"),
        "{}",
        log.body
    );
    assert!(log.body.contains("Signed in through the identity provider"));
    // The settings pages show the linked identity.
    assert!(
        log.body
            .contains("signed in through 127.0.0.1 (account owner-sub)"),
        "{}",
        log.body
    );
    let linked = f.db().texts(&format!(
        "SELECT subject AS v FROM identities WHERE user_id = '{}'",
        f.owner_id
    ));
    assert_eq!(linked, vec!["owner-sub".to_string()]);
}

fn unknown_and_unverified_accounts_get_a_page_and_no_session(b: Backend) {
    let (f, provider) = setup(b, &[]);
    let people = f.db().count("users");
    for (account, words) in [
        ("stranger-sub", "unknown to keygate"),
        ("unverified-sub", "has not verified the email address"),
    ] {
        let mut http = f.server.client();
        let r = sign_in_via_provider(&mut http, &provider, "/login", account);
        assert_eq!(r.status, 403, "{account}: {}", r.body);
        assert!(r.body.contains(words), "{account}: {}", r.body);
        assert_eq!(http.cookie("keygate_session"), None);
        assert_eq!(http.get("/settings").status, 302);
    }
    assert_eq!(f.db().count("users"), people);
    assert_eq!(f.db().count("identities"), 0);
    assert!(f
        .server
        .logs()
        .contains("sign-in through the identity provider failed"));
}

fn a_disabled_person_cannot_sign_in(b: Backend) {
    let (f, provider) = setup(b, &[]);
    f.db().execute(&format!(
        "UPDATE users SET disabled_at = 1 WHERE id = '{}'",
        f.owner_id
    ));
    let mut http = f.server.client();
    let r = sign_in_via_provider(&mut http, &provider, "/login", "owner-sub");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("disabled"), "{}", r.body);
    assert_eq!(http.cookie("keygate_session"), None);
}

fn with_creation_on_a_new_verified_email_is_a_person_without_workspaces(b: Backend) {
    let (f, provider) = setup(b, &[("KEYGATE_OIDC_CREATE_PEOPLE", "on")]);
    let mut http = f.server.client();
    let r = sign_in_via_provider(&mut http, &provider, "/login", "stranger-sub");
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(http.cookie("keygate_session").is_some());
    let hash = f
        .db()
        .text("SELECT password_hash AS v FROM users WHERE email = 'stranger@example.com'");
    assert_eq!(hash.as_deref(), Some(""));
}

/// The keys a real provider publishes for each algorithm verify its tokens
/// (RS256 is every other test's).
#[test]
fn ps256_es256_and_eddsa_tokens_of_a_real_provider_verify() {
    for alg in ["PS256", "ES256", "EdDSA"] {
        let port = free_port();
        let provider = OidcProvider::start_with(
            &format!("http://127.0.0.1:{port}"),
            json!({"owner-sub": {"email": "someone@example.com", "email_verified": true}}),
            json!({ "alg": alg }),
        );
        let env = provider.keygate_env();
        let server = Server::spawn(TestDb::new(Backend::Sqlite), port, &env_refs(&env));
        server.db.create_user("someone@example.com");
        let mut http = server.client();
        let r = sign_in_via_provider(&mut http, &provider, "/login", "owner-sub");
        assert_eq!(r.status, 303, "{alg}: {}\n{}", r.body, server.logs());
        assert!(http.cookie("keygate_session").is_some(), "{alg}");
    }
}

/// A provider that gives the email only at UserInfo: keygate asks there.
fn the_email_comes_from_userinfo_when_the_id_token_has_none(b: Backend) {
    let port = free_port();
    let provider = OidcProvider::start_with(
        &format!("http://127.0.0.1:{port}"),
        json!({
            "owner-sub": {"email": "someone@example.com", "email_verified": true},
            "unverified-sub": {"email": "someone@example.com", "email_verified": false},
        }),
        json!({ "email_only_at_userinfo": true }),
    );
    let env = provider.keygate_env();
    let server = Server::spawn(TestDb::new(b), port, &env_refs(&env));
    server.db.create_user("someone@example.com");
    let mut http = server.client();
    let r = sign_in_via_provider(&mut http, &provider, "/login", "unverified-sub");
    assert_eq!(r.status, 403, "{}", r.body);
    let r = sign_in_via_provider(&mut http, &provider, "/login", "owner-sub");
    assert_eq!(r.status, 303, "{}\n{}", r.body, server.logs());
    assert!(http.cookie("keygate_session").is_some());
}

both_backends!(
    the_email_comes_from_userinfo_when_the_id_token_has_none,
    the_person_resumes_the_authorization_they_started,
    unknown_and_unverified_accounts_get_a_page_and_no_session,
    a_disabled_person_cannot_sign_in,
    with_creation_on_a_new_verified_email_is_a_person_without_workspaces,
);
