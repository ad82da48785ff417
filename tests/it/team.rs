//! The team page: owners add existing users, change roles and remove members
//! (which revokes the apps those members authorized); admins only read; the
//! last owner can never be removed or demoted; every change is in the log.

use crate::support::{hidden, unique, Backend, Fixture, Http, Resp};

fn page(http: &mut Http, ws: &str) -> Resp {
    http.get(&format!("/settings/team?workspace={ws}"))
}

fn csrf(http: &mut Http, ws: &str) -> String {
    hidden(&page(http, ws).body, "csrf_token").expect("a CSRF token on the team page")
}

fn post(http: &mut Http, path: &str, ws: &str, form: &[(&str, &str)]) -> Resp {
    let token = csrf(http, ws);
    let mut all = vec![("csrf_token", token.as_str()), ("workspace_id", ws)];
    all.extend_from_slice(form);
    http.post_form(path, &all)
}

fn roles(fx: &Fixture) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = fx
        .db()
        .texts(&format!(
            "SELECT user_id || '|' || role AS v FROM memberships WHERE workspace_id = '{}'",
            fx.workspace_id
        ))
        .into_iter()
        .filter_map(|r| {
            r.split_once('|')
                .map(|(u, r)| (u.to_string(), r.to_string()))
        })
        .collect();
    v.sort();
    v
}

fn log_actions(fx: &Fixture) -> Vec<String> {
    fx.db().texts(&format!(
        "SELECT action AS v FROM audit_events WHERE workspace_id = '{}' ORDER BY id",
        fx.workspace_id
    ))
}

fn owner_adds_changes_and_removes_members(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let mut owner = fx.owner();
    let listed = page(&mut owner, &ws);
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains(&fx.owner_email), "{}", listed.body);
    assert!(listed.body.contains("Add a member"));

    // Add an existing user by email, as an admin.
    let email = format!("ada-{}@example.com", &unique()[..8]);
    let ada = fx.db().create_user(&email);
    let r = post(
        &mut owner,
        "/settings/team",
        &ws,
        &[("email", &email), ("role", "admin")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().contains("notice=member_added"));
    assert!(roles(&fx).contains(&(ada.clone(), "admin".into())));
    let listed = page(&mut owner, &ws);
    assert!(listed.body.contains(&email));

    // Adding again, or an address with no account, is refused with the reason.
    let r = post(
        &mut owner,
        "/settings/team",
        &ws,
        &[("email", &email), ("role", "member")],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("already a member"), "{}", r.body);
    let r = post(
        &mut owner,
        "/settings/team",
        &ws,
        &[("email", "nobody@example.com"), ("role", "member")],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("must sign up"), "{}", r.body);
    let r = post(
        &mut owner,
        "/settings/team",
        &ws,
        &[("email", &email), ("role", "root")],
    );
    assert_eq!(r.status, 422);
    assert!(
        roles(&fx).contains(&(ada.clone(), "admin".into())),
        "nothing changed"
    );

    // Change the role.
    let r = post(
        &mut owner,
        &format!("/settings/team/{ada}/role"),
        &ws,
        &[("role", "member")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(roles(&fx).contains(&(ada.clone(), "member".into())));

    // Remove: first a confirmation that says what removal does, then removal.
    let r = post(
        &mut owner,
        &format!("/settings/team/{ada}/remove"),
        &ws,
        &[],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("is revoked"),
        "the confirmation says so: {}",
        r.body
    );
    assert!(
        roles(&fx).iter().any(|(u, _)| *u == ada),
        "not removed before confirming"
    );
    let r = post(
        &mut owner,
        &format!("/settings/team/{ada}/remove"),
        &ws,
        &[("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!roles(&fx).iter().any(|(u, _)| *u == ada));

    let log = log_actions(&fx);
    for action in ["member.added_admin", "member.role_member", "member.removed"] {
        assert!(log.iter().any(|a| a == action), "{action} in {log:?}");
    }
}

fn removing_a_member_revokes_their_apps(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let (admin_id, admin_email) = fx.add_user("admin");
    // The admin authorizes the app; the owner removes the admin.
    let mut admin = fx.signed_in(&admin_email);
    let (verifier, challenge) = crate::support::pkce();
    let redirect = fx.approve(&mut admin, &fx.client_id, "workspace:read", &challenge);
    let code = crate::support::param(&redirect, "code")
        .expect("a code")
        .to_string();
    let tokens = fx.exchange(&code, &verifier).json();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let mut api = fx.server.client();
    assert_eq!(api.bearer_get("/v1/workspace", &access).status, 200);

    let mut owner = fx.owner();
    let r = post(
        &mut owner,
        &format!("/settings/team/{admin_id}/remove"),
        &ws,
        &[("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        api.bearer_get("/v1/workspace", &access).status,
        401,
        "the app's token stops at once"
    );
    let refreshed = fx.refresh(tokens["refresh_token"].as_str().unwrap());
    refreshed.assert_oauth_error(400, "invalid_grant");
    assert!(log_actions(&fx)
        .iter()
        .any(|a| a == "app.revoked_member_removed"));
}

/// Issue 25 item 7: an owner or admin made a member may no longer authorize
/// apps, so the apps they authorized end with the demotion, as with a
/// removal; a promotion or a demotion between managers revokes nothing.
fn demoting_a_manager_revokes_their_apps(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let (admin_id, admin_email) = fx.add_user("admin");
    let (access, refresh) = crate::support::tokens_approved_by(&fx, &admin_email, "workspace:read");
    let (owner_access, _) = fx.tokens("workspace:read");
    let mut api = fx.server.client();
    assert_eq!(api.bearer_get("/v1/workspace", &access).status, 200);

    let mut owner = fx.owner();
    let role = |owner: &mut Http, role: &str| {
        let path = format!("/settings/team/{admin_id}/role");
        let r = post(owner, &path, &ws, &[("role", role)]);
        assert_eq!(r.status, 303, "{}", r.body);
    };
    role(&mut owner, "owner");
    assert_eq!(
        api.bearer_get("/v1/workspace", &access).status,
        200,
        "promoted"
    );
    role(&mut owner, "admin");
    assert_eq!(
        api.bearer_get("/v1/workspace", &access).status,
        200,
        "still a manager"
    );
    role(&mut owner, "member");
    assert_eq!(
        api.bearer_get("/v1/workspace", &access).status,
        401,
        "the app's token stops at the demotion"
    );
    fx.refresh(&refresh)
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(
        api.bearer_get("/v1/workspace", &owner_access).status,
        200,
        "the owner's own apps are untouched"
    );
    assert!(log_actions(&fx)
        .iter()
        .any(|a| a == "app.revoked_member_demoted"));
}

fn the_last_owner_stays(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let owner_id = fx.owner_id.clone();
    let mut owner = fx.owner();
    let r = post(
        &mut owner,
        &format!("/settings/team/{owner_id}/role"),
        &ws,
        &[("role", "admin")],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("last owner"), "{}", r.body);
    let r = post(
        &mut owner,
        &format!("/settings/team/{owner_id}/remove"),
        &ws,
        &[("confirm", "yes")],
    );
    assert_eq!(r.status, 422);
    assert!(roles(&fx).contains(&(owner_id.clone(), "owner".into())));
    // The CLI holds the same rule.
    let out = fx
        .db()
        .cli(&["member", "remove", "--workspace", &ws, "--user", &owner_id]);
    out.assert_refused("last owner");
    // With a second owner, the first may step down.
    let (second, _) = fx.add_user("owner");
    let r = post(
        &mut owner,
        &format!("/settings/team/{owner_id}/role"),
        &ws,
        &[("role", "admin")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(roles(&fx).contains(&(second, "owner".into())));
}

fn admins_read_and_members_are_refused(b: Backend) {
    let fx = Fixture::new(b);
    let ws = fx.workspace_id.clone();
    let (_, admin_email) = fx.add_user("admin");
    let (member_id, member_email) = fx.add_user("member");
    let mut admin = fx.signed_in(&admin_email);
    let listed = page(&mut admin, &ws);
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains(&member_email));
    assert!(!listed.body.contains("Add a member"), "admins only read");
    let r = post(
        &mut admin,
        &format!("/settings/team/{member_id}/role"),
        &ws,
        &[("role", "admin")],
    );
    assert_eq!(r.status, 403);
    assert!(roles(&fx).contains(&(member_id.clone(), "member".into())));

    let mut member = fx.signed_in(&member_email);
    let r = page(&mut member, &ws);
    assert_eq!(r.status, 403);
    assert!(
        !r.body.contains(&admin_email),
        "members do not see the team"
    );

    // A post without the CSRF token changes nothing.
    let mut owner = fx.owner();
    let r = owner.post_form(
        &format!("/settings/team/{member_id}/role"),
        &[
            ("workspace_id", &ws),
            ("role", "owner"),
            ("csrf_token", "forged"),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(roles(&fx).contains(&(member_id, "member".into())));
}

both_backends!(
    owner_adds_changes_and_removes_members,
    removing_a_member_revokes_their_apps,
    demoting_a_manager_revokes_their_apps,
    the_last_owner_stays,
    admins_read_and_members_are_refused,
);
