//! Revocation (RFC 7009), introspection (RFC 7662) and the authorized-apps table:
//! what ends when, on which node, and what stays untouched.

use crate::support::*;
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

mod authorized_apps;
mod introspection;
mod propagation;
mod races;
mod revoke_endpoint;

const SCOPE: &str = "workspace:read tags:read tags:write";

/// RFC 7662 §2.2: the whole answer for a token that is not active.
fn inactive() -> Value {
    json!({ "active": false })
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
    let ((access, refresh), id) = new_authorization(f, || f.tokens(scope));
    (access, refresh, id)
}

/// What `approve` returns, and the id of the one authorization it made.
fn new_authorization<T>(f: &Fixture, approve: impl FnOnce() -> T) -> (T, String) {
    let before = ids(f);
    let made = approve();
    let id = ids(f)
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("the approval made a new authorization");
    (made, id)
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
