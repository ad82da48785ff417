//! Authorizations: the authorized-apps page, revoking there, approving again, and
//! revoking one authorization without touching another.

use super::*;

/// One more approval, left as an unredeemed code: (code, verifier, authorization id).
fn code_with_id(f: &Fixture, scope: &str) -> (String, String, String) {
    let ((code, verifier), id) = new_authorization(f, || f.code(scope));
    (code, verifier, id)
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

both_backends!(
    authorized_apps_page_for_owners_only,
    settings_revoke_needs_csrf_and_confirmation,
    approving_again_makes_a_new_authorization,
    revoking_an_authorization_kills_its_unredeemed_codes,
    one_authorizations_revocation_never_touches_another,
);
