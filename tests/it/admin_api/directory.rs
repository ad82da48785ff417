//! Workspaces, people and memberships through `/admin/v1`: the sign-up flow,
//! lookups by external id and email, paging, idempotent retries and the
//! security log.

use crate::support::*;
use serde_json::json;

fn sign_up_creates_a_workspace_and_its_owner(b: Backend) {
    let server = Server::start(b);
    let mut admin = Admin::new(&server);
    let ws = admin.post(
        "/workspaces",
        &json!({"name": "Acme", "plan": "free", "external_id": "org_42"}),
    );
    assert_eq!(ws.status, 201, "{}", ws.body);
    let ws = ws.json();
    assert_eq!(
        (ws["name"].as_str(), ws["plan"].as_str()),
        (Some("Acme"), Some("free"))
    );
    assert_eq!(ws["external_id"], "org_42");
    assert!(ws["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let id = s(&ws, "id");

    let ada = admin.post(
        "/people",
        &json!({"email": "Ada@Example.com", "external_id": "user_7", "password": PASSWORD}),
    );
    assert_eq!(ada.status, 201, "{}", ada.body);
    let ada = ada.json();
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["disabled"], false);
    assert_eq!(ada["identities"], json!([]));
    let ada_id = s(&ada, "id");

    let m = admin.send(
        "PUT",
        &format!("/workspaces/{id}/members/{ada_id}"),
        &json!({"role": "owner"}),
        &[],
    );
    assert_eq!(m.status, 201, "{}", m.body);
    assert_eq!(m.json()["role"], "owner");

    // Lookups by the product's ids and by email: lists of zero or one.
    let found = admin.get("/workspaces?external_id=org_42").json();
    assert_eq!(found["data"][0]["id"], id.as_str());
    assert_eq!(
        admin.get("/workspaces?external_id=nope").json()["data"],
        json!([])
    );
    assert_eq!(
        admin.get("/people?external_id=user_7").json()["data"][0]["id"],
        ada_id.as_str()
    );
    assert_eq!(
        admin.get("/people?email=ada@example.com").json()["data"][0]["id"],
        ada_id.as_str()
    );
    assert_eq!(
        admin.get(&format!("/people/{ada_id}")).json()["external_id"],
        "user_7"
    );
    assert_eq!(
        admin.get(&format!("/workspaces/{id}")).json()["name"],
        "Acme"
    );

    // The owner signs in with the password the product set.
    let mut browser = server.client();
    let login = browser.login("ada@example.com", PASSWORD);
    assert_eq!(login.status, 303, "{}", login.body);

    // external_ids are unique per kind; the second try changes nothing.
    let dup = admin.post(
        "/workspaces",
        &json!({"name": "Other", "external_id": "org_42"}),
    );
    assert_admin_error(&dup, 409, "conflict");
    assert_eq!(server.db.count("workspaces"), 1);

    // Every change is in the workspace's log, the admin token's name as actor.
    let log = server.db.texts(&format!(
        "SELECT action || ' ' || actor AS v FROM audit_events WHERE workspace_id = '{id}' ORDER BY id"
    ));
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].starts_with("workspace.created admin_token:")
            && log[0].ends_with(":product-backend")
    );
    assert!(log[1].starts_with("member.added_owner admin_token:"));
}

fn members_are_added_changed_and_removed_but_the_last_owner_stays(b: Backend) {
    let server = Server::start(b);
    let mut admin = Admin::new(&server);
    let ws = s(&admin.workspace("Team"), "id");
    let owner = s(&admin.person("owner@example.com"), "id");
    let bob = s(&admin.person("bob@example.com"), "id");
    let put = |admin: &mut Admin, who: &str, role: &str| {
        admin.send(
            "PUT",
            &format!("/workspaces/{ws}/members/{who}"),
            &json!({"role": role}),
            &[],
        )
    };
    assert_eq!(put(&mut admin, &owner, "owner").status, 201);
    assert_eq!(put(&mut admin, &bob, "member").status, 201);
    let changed = put(&mut admin, &bob, "admin");
    assert_eq!(
        (changed.status, changed.json()["role"].as_str()),
        (200, Some("admin"))
    );
    assert_admin_error(&put(&mut admin, &owner, "member"), 409, "conflict");
    assert_admin_error(
        &admin.delete(&format!("/workspaces/{ws}/members/{owner}")),
        409,
        "conflict",
    );
    assert_admin_error(&put(&mut admin, &bob, "boss"), 400, "invalid_request");
    let members = admin.get(&format!("/workspaces/{ws}/members")).json();
    assert_eq!(members["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        admin
            .delete(&format!("/workspaces/{ws}/members/{bob}"))
            .status,
        204
    );
    assert_admin_error(
        &admin.delete(&format!("/workspaces/{ws}/members/{bob}")),
        404,
        "not_found",
    );
    let roles = server.db.texts(&format!(
        "SELECT action AS v FROM audit_events WHERE workspace_id = '{ws}' ORDER BY id"
    ));
    assert_eq!(
        roles,
        [
            "workspace.created",
            "member.added_owner",
            "member.added_member",
            "member.role_admin",
            "member.removed"
        ]
    );
}

fn paging_over_more_than_a_page_has_no_gap_or_duplicate(b: Backend) {
    let server = Server::start(b);
    let mut admin = Admin::new(&server);
    for i in 0..7 {
        admin.workspace(&format!("W{i}"));
    }
    let first = admin.get("/workspaces?limit=3").json();
    assert_eq!(first["has_more"], true);
    assert_eq!(first["data"][0]["name"], "W6", "newest first");
    // A workspace made while paging lands before the first page, not between.
    admin.workspace("Late");
    let mut seen: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| s(w, "name"))
        .collect();
    let mut cursor = first["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let page = admin.get(&format!("/workspaces?limit=3&cursor={c}")).json();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| s(w, "name")),
        );
        cursor = page["next_cursor"].as_str().map(str::to_string);
        assert_eq!(page["has_more"], cursor.is_some());
    }
    assert_eq!(seen, ["W6", "W5", "W4", "W3", "W2", "W1", "W0"]);
    assert_eq!(admin.all("/workspaces", 100).len(), 8);
    for bad in ["0", "101", "x"] {
        assert_admin_error(
            &admin.get(&format!("/workspaces?limit={bad}")),
            400,
            "invalid_request",
        );
    }
}

fn a_retried_post_answers_the_first_answer_and_changes_nothing(b: Backend) {
    let server = Server::start(b);
    let mut admin = Admin::new(&server);
    let body = json!({"name": "Once"});
    let key = [("Idempotency-Key", "signup-1")];
    let first = admin.send("POST", "/workspaces", &body, &key);
    let again = admin.send("POST", "/workspaces", &body, &key);
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.json(), again.json());
    assert_eq!(server.db.count("workspaces"), 1);
    let other = admin.send("POST", "/workspaces", &json!({"name": "Twice"}), &key);
    assert_admin_error(&other, 409, "conflict");
    // Another path or another token is another key.
    assert_eq!(
        admin
            .send("POST", "/people", &json!({"email": "k@example.com"}), &key)
            .status,
        201
    );
    let mut second = Admin::with_token(&server, server.db.admin_token("other"));
    assert_eq!(second.send("POST", "/workspaces", &body, &key).status, 201);
    assert_eq!(server.db.count("workspaces"), 2);

    // A secret shown in the first answer is not shown again.
    let ws = s(&first.json(), "id");
    let path = format!("/workspaces/{ws}/api-keys");
    let key_body = json!({"name": "sync", "access": "read_only"});
    let made = admin.send("POST", &path, &key_body, &[("Idempotency-Key", "k1")]);
    assert_eq!(made.status, 201, "{}", made.body);
    assert!(made.json()["key"]
        .as_str()
        .is_some_and(|k| k.starts_with("kgk_")));
    let replay = admin.send("POST", &path, &key_body, &[("Idempotency-Key", "k1")]);
    assert_eq!(replay.status, 201);
    assert!(replay.json().get("key").is_none(), "{}", replay.body);
    assert_eq!(replay.json()["id"], made.json()["id"]);
    assert_eq!(server.db.count("api_keys"), 1);
}

fn disabling_a_person_ends_their_sessions_and_sign_in(b: Backend) {
    let server = Server::start(b);
    let mut admin = Admin::new(&server);
    let made = admin.post(
        "/people",
        &json!({"email": "dee@example.com", "password": PASSWORD}),
    );
    let dee = s(&made.json(), "id");
    let ws = s(&admin.workspace("Dee's"), "id");
    admin.send(
        "PUT",
        &format!("/workspaces/{ws}/members/{dee}"),
        &json!({"role": "owner"}),
        &[],
    );
    let mut browser = server.client();
    assert_eq!(browser.login("dee@example.com", PASSWORD).status, 303);
    assert_eq!(browser.get("/settings/api-keys").status, 200);

    let off = admin.send(
        "PATCH",
        &format!("/people/{dee}"),
        &json!({"disabled": true}),
        &[],
    );
    assert_eq!(
        (off.status, off.json()["disabled"].as_bool()),
        (200, Some(true))
    );
    assert_ne!(
        browser.get("/settings/api-keys").status,
        200,
        "the session ended"
    );
    assert_eq!(server.db.count("sessions"), 0);
    let again = server.client().login("dee@example.com", PASSWORD);
    assert_ne!(again.status, 303, "a disabled person cannot sign in");
    let on = admin.send(
        "PATCH",
        &format!("/people/{dee}"),
        &json!({"disabled": false}),
        &[],
    );
    assert_eq!(on.json()["disabled"], false);
    assert_eq!(
        server.client().login("dee@example.com", PASSWORD).status,
        303
    );

    // A person without a password signs in only through the identity provider.
    admin.person("nopass@example.com");
    assert_ne!(
        server.client().login("nopass@example.com", PASSWORD).status,
        303
    );

    // Deleting a person frees their email; they are found no more.
    let gone = admin.post(
        "/people",
        &json!({"email": "gone@example.com", "external_id": "u9"}),
    );
    let gone = s(&gone.json(), "id");
    assert_eq!(admin.delete(&format!("/people/{gone}")).status, 204);
    assert_admin_error(&admin.get(&format!("/people/{gone}")), 404, "not_found");
    assert_eq!(
        admin.get("/people?external_id=u9").json()["data"],
        json!([])
    );
    assert_eq!(
        admin
            .post("/people", &json!({"email": "gone@example.com"}))
            .status,
        201
    );
    // The last owner of a workspace is not deleted.
    assert_admin_error(&admin.delete(&format!("/people/{dee}")), 409, "conflict");
}

both_backends!(
    sign_up_creates_a_workspace_and_its_owner,
    members_are_added_changed_and_removed_but_the_last_owner_stays,
    paging_over_more_than_a_page_has_no_gap_or_duplicate,
    a_retried_post_answers_the_first_answer_and_changes_nothing,
    disabling_a_person_ends_their_sessions_and_sign_in,
);
