//! API keys and authorizations through `/admin/v1`, and what deleting a
//! workspace or disabling a person does to them: every credential stops at
//! once, on every node.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

fn api_keys_are_made_rotated_and_revoked(b: Backend) {
    let f = Fixture::new(b);
    let mut admin = Admin::new(&f.server);
    let ws = &f.workspace_id;
    let path = format!("/workspaces/{ws}/api-keys");
    let made = admin.post(
        &path,
        &json!({"name": "crm-sync", "access": "read_only", "expires": "2099-01-31"}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let made = made.json();
    let key = s(&made, "key");
    assert!(key.starts_with(made["prefix"].as_str().unwrap()));
    assert_eq!(made["expires_at"], "2099-02-01T00:00:00Z");
    assert_eq!(f.server.v1_status(&key), 200);
    let listed = admin.get(&path).json();
    assert_eq!(listed["data"][0]["id"], made["id"]);
    assert!(listed["data"][0].get("key").is_none());

    let id = s(&made, "id");
    // A body over 64 KiB is refused like on any admin POST, and rotates
    // nothing (with or without an Idempotency-Key).
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    for extra in [&[][..], &[("Idempotency-Key", "big-body")][..]] {
        let refused = admin.send_raw("POST", &format!("/api-keys/{id}/rotate"), &huge, extra);
        assert_admin_error(&refused, 400, "invalid_request");
        assert_eq!(f.server.v1_status(&key), 200, "the key was not rotated");
    }
    let rotated = admin.send("POST", &format!("/api-keys/{id}/rotate"), &json!({}), &[]);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_key = s(&rotated.json(), "key");
    assert_eq!(f.server.v1_status(&key), 401);
    assert_eq!(f.server.v1_status(&new_key), 200);
    let revoked = admin.send("POST", &format!("/api-keys/{id}/revoke"), &json!({}), &[]);
    assert_eq!(revoked.json()["status"], "revoked");
    assert_eq!(f.server.v1_status(&new_key), 401);
    assert_admin_error(
        &admin.send("POST", &format!("/api-keys/{id}/rotate"), &json!({}), &[]),
        409,
        "conflict",
    );
    assert_admin_error(
        &admin.post(&path, &json!({"name": "x", "access": "all"})),
        400,
        "invalid_request",
    );
    assert_admin_error(
        &admin.post(
            "/workspaces/nope/api-keys",
            &json!({"name": "x", "access": "read_only"}),
        ),
        404,
        "not_found",
    );

    let actions = f.db().texts(&format!(
        "SELECT action || ' ' || actor AS v FROM audit_events WHERE subject = '{id}' ORDER BY id"
    ));
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(
        actions.iter().all(|a| a.ends_with(":product-backend")),
        "{actions:?}"
    );
}

fn authorizations_are_listed_and_revoked(b: Backend) {
    let f = Fixture::new(b);
    let mut admin = Admin::new(&f.server);
    let (access, _) = f.tokens("workspace:read");
    assert_eq!(f.server.v1_status(&access), 200);
    let apps = admin
        .get(&format!("/workspaces/{}/authorizations", f.workspace_id))
        .json();
    let app = &apps["data"][0];
    assert_eq!(
        (app["client_id"].as_str(), app["status"].as_str()),
        (Some(f.client_id.as_str()), Some("active"))
    );
    let revoked = admin.send(
        "POST",
        &format!("/authorizations/{}/revoke", s(app, "id")),
        &json!({}),
        &[],
    );
    assert_eq!(revoked.json()["status"], "revoked", "{}", revoked.body);
    assert_eq!(f.server.v1_status(&access), 401);
}

fn deleting_a_workspace_stops_every_credential_under_it_on_every_node(b: Backend) {
    let f = Fixture::new(b);
    let other = second_node(&f, &[]);
    let mut admin = Admin::new(&f.server);
    let key = f.api_key("read_write");
    let (access, refresh) = f.tokens("workspace:read");
    assert_eq!(other.v1_status(&key), 200);
    assert_eq!(other.v1_status(&access), 200);

    assert_eq!(
        admin
            .delete(&format!("/workspaces/{}", f.workspace_id))
            .status,
        204
    );
    assert!(eventually(Duration::from_secs(1), || other.v1_status(&key)
        == 401
        && other.v1_status(&access) == 401));
    assert_eq!(f.server.v1_status(&key), 401);
    f.refresh(&refresh).assert_oauth_error(400, "invalid_grant");
    assert_admin_error(
        &admin.get(&format!("/workspaces/{}", f.workspace_id)),
        404,
        "not_found",
    );
    assert!(f.db().count("audit_events") > 0, "its security log is kept");
    let log = f.db().texts(&format!(
        "SELECT action AS v FROM audit_events WHERE workspace_id = '{}' ORDER BY id DESC",
        f.workspace_id
    ));
    assert_eq!(log[0], "workspace.deleted", "{log:?}");
}

fn disabling_a_person_revokes_the_apps_they_approved(b: Backend) {
    let f = Fixture::new(b);
    let mut admin = Admin::new(&f.server);
    let (access, _) = f.tokens("workspace:read");
    assert_eq!(f.server.v1_status(&access), 200);
    let off = admin.send(
        "PATCH",
        &format!("/people/{}", f.owner_id),
        &json!({"disabled": true}),
        &[],
    );
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(f.server.v1_status(&access), 401);
    assert_eq!(f.apps()[0]["status"], "revoked");
}

both_backends!(
    api_keys_are_made_rotated_and_revoked,
    authorizations_are_listed_and_revoked,
    deleting_a_workspace_stops_every_credential_under_it_on_every_node,
    disabling_a_person_revokes_the_apps_they_approved,
);
