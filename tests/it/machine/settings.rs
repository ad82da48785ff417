//! The machine access settings page: owners and admins create, list and
//! revoke services; owners add and remove trusted identity providers; a
//! plain member changes nothing.

use crate::support::*;

const PAGE: &str = "/settings/machine-access";

fn post(http: &mut Http, ws: &str, path: &str, form: &[(&str, &str)]) -> Resp {
    let page = http.get(&format!("{PAGE}?workspace={ws}"));
    let token = hidden(&page.body, "csrf_token").expect("a CSRF token on the page");
    let mut all = vec![("csrf_token", token.as_str()), ("workspace_id", ws)];
    all.extend_from_slice(form);
    http.post_form(path, &all)
}

fn services_and_trust_in_the_settings_pages(b: Backend) {
    let f = Fixture::new(b);
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();
    assert_eq!(owner.get(&format!("{PAGE}?workspace={ws}")).status, 200);
    let made = post(
        &mut owner,
        &ws,
        "/settings/machine-access/services",
        &[
            ("name", "Billing sync"),
            ("scope", "workspace:read"),
            ("scope", "tags:read"),
        ],
    );
    assert_eq!(made.status, 200, "{}", made.body);
    let id = input_value(&made.body, "svc-client-id").expect("client id shown");
    let secret = input_value(&made.body, "svc-client-secret").expect("secret shown once");
    let token = f.server.client().post_form_with(
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        &[("Authorization", &basic(&id, &secret))],
    );
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(token.json()["scope"], "workspace:read tags:read");
    let access = s(&token.json(), "access_token");
    let listed = owner.get(&format!("{PAGE}?workspace={ws}"));
    assert!(listed.body.contains("Billing sync") && !listed.body.contains(&secret));
    let apps = owner.get(&format!("/settings/authorized-apps?workspace={ws}"));
    assert!(
        apps.body.contains("Service of this workspace"),
        "{}",
        apps.body
    );

    // A plain member changes nothing.
    let (_, member_email) = f.add_user("member");
    let mut member = f.signed_in(&member_email);
    let row = f.app_row(&id);
    let authz = s(&row, "id");
    let refused = post(
        &mut member,
        &ws,
        &format!("/settings/machine-access/services/{authz}/revoke"),
        &[],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(f.server.v1_status(&access), 200);

    let gone = post(
        &mut owner,
        &ws,
        &format!("/settings/machine-access/services/{authz}/revoke"),
        &[],
    );
    assert_eq!(gone.status, 303, "{}", gone.body);
    assert_eq!(f.server.v1_status(&access), 401);
    assert_eq!(f.app_row(&id)["status"], "revoked");

    // Trusted identity providers: owners only.
    let (_, admin_email) = f.add_user("admin");
    let mut admin = f.signed_in(&admin_email);
    let by_admin = post(
        &mut admin,
        &ws,
        "/settings/machine-access/trust",
        &[
            ("issuer", "https://idp.example.com"),
            ("jwks_uri", "https://idp.example.com/jwks"),
        ],
    );
    assert_eq!(by_admin.status, 403, "{}", by_admin.body);
    let bad = post(
        &mut owner,
        &ws,
        "/settings/machine-access/trust",
        &[
            ("issuer", "http://idp.example.com"),
            ("jwks_uri", "https://idp.example.com/jwks"),
        ],
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(f.db().count("trusted_issuers"), 0);
    let added = post(
        &mut owner,
        &ws,
        "/settings/machine-access/trust",
        &[
            ("issuer", "https://idp.example.com"),
            ("jwks_uri", "https://idp.example.com/jwks"),
        ],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    let trusts = f.db().json_lines(&["trust", "list", "--workspace", &ws]);
    assert_eq!(trusts.len(), 1);
    let removed = post(
        &mut owner,
        &ws,
        &format!(
            "/settings/machine-access/trust/{}/remove",
            s(&trusts[0], "id")
        ),
        &[],
    );
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert_eq!(f.db().count("trusted_issuers"), 0);
}

both_backends!(services_and_trust_in_the_settings_pages);
