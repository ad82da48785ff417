//! Denying and consenting, and login failures that say nothing specific.

use super::*;

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

both_backends!(deny_and_consent_rules, login_failures_say_nothing_specific,);
