//! Every `/admin/v1` response of a tour is documented in `/openapi.json`.

use crate::openapi::conforms;
use crate::support::*;
use serde_json::json;

fn admin_responses_match_the_openapi_document(b: Backend) {
    let f = Fixture::new(b);
    let mut admin = Admin::new(&f.server);
    let doc = f.server.client().get("/openapi.json").json();
    let check = |path: &str, method: &str, r: &Resp| conforms(&doc, path, method, r);
    let (ws_path, id_path) = ("/admin/v1/workspaces", "/admin/v1/workspaces/{id}");
    let made = admin.post("/workspaces", &json!({"name": "Doc", "external_id": "d1"}));
    check(ws_path, "post", &made);
    check(
        ws_path,
        "post",
        &admin.post("/workspaces", &json!({"name": "Doc", "external_id": "d1"})),
    );
    check(
        ws_path,
        "post",
        &admin.post("/workspaces", &json!({"nom": "x"})),
    );
    check(ws_path, "get", &admin.get("/workspaces"));
    check(ws_path, "get", &admin.get("/workspaces?limit=0"));
    let mut stranger = Admin::with_token(&f.server, "kga_wrong".into());
    check(ws_path, "get", &stranger.get("/workspaces"));
    let ws = s(&made.json(), "id");
    check(id_path, "get", &admin.get(&format!("/workspaces/{ws}")));
    check(id_path, "get", &admin.get("/workspaces/nope"));
    check(
        id_path,
        "patch",
        &admin.send(
            "PATCH",
            &format!("/workspaces/{ws}"),
            &json!({"plan": "pro"}),
            &[],
        ),
    );

    let person = admin.post("/people", &json!({"email": "doc@example.com"}));
    check("/admin/v1/people", "post", &person);
    check(
        "/admin/v1/people",
        "get",
        &admin.get("/people?email=doc@example.com"),
    );
    let pid = s(&person.json(), "id");
    check(
        "/admin/v1/people/{id}",
        "patch",
        &admin.send(
            "PATCH",
            &format!("/people/{pid}"),
            &json!({"disabled": false}),
            &[],
        ),
    );
    let member = "/admin/v1/workspaces/{id}/members/{person_id}";
    let put = |admin: &mut Admin, role: &str| {
        admin.send(
            "PUT",
            &format!("/workspaces/{ws}/members/{pid}"),
            &json!({"role": role}),
            &[],
        )
    };
    check(member, "put", &put(&mut admin, "owner"));
    check(member, "put", &put(&mut admin, "member"));
    check(
        "/admin/v1/workspaces/{id}/members",
        "get",
        &admin.get(&format!("/workspaces/{ws}/members")),
    );

    let keys = "/admin/v1/workspaces/{id}/api-keys";
    let key = admin.post(
        &format!("/workspaces/{}/api-keys", f.workspace_id),
        &json!({"name": "k", "access": "read_write"}),
    );
    check(keys, "post", &key);
    check(
        keys,
        "get",
        &admin.get(&format!("/workspaces/{}/api-keys", f.workspace_id)),
    );
    let kid = s(&key.json(), "id");
    check(
        "/admin/v1/api-keys/{id}/rotate",
        "post",
        &admin.send("POST", &format!("/api-keys/{kid}/rotate"), &json!({}), &[]),
    );
    check(
        "/admin/v1/api-keys/{id}/revoke",
        "post",
        &admin.send("POST", &format!("/api-keys/{kid}/revoke"), &json!({}), &[]),
    );
    f.tokens("workspace:read");
    let apps = admin.get(&format!("/workspaces/{}/authorizations", f.workspace_id));
    check("/admin/v1/workspaces/{id}/authorizations", "get", &apps);
    let aid = s(&apps.json()["data"][0], "id");
    check(
        "/admin/v1/authorizations/{id}/revoke",
        "post",
        &admin.send(
            "POST",
            &format!("/authorizations/{aid}/revoke"),
            &json!({}),
            &[],
        ),
    );

    check(
        "/admin/v1/webhooks",
        "post",
        &admin.post("/webhooks", &json!({"url": "https://127.0.0.1/x"})),
    );
    check("/admin/v1/webhooks", "get", &admin.get("/webhooks"));
    check(
        "/admin/v1/webhooks/{id}/deliveries",
        "get",
        &admin.get("/webhooks/nope/deliveries"),
    );
    check(
        "/admin/v1/webhooks/{id}",
        "delete",
        &admin.delete("/webhooks/nope"),
    );
    check(
        member,
        "delete",
        &admin.delete(&format!("/workspaces/{ws}/members/{pid}")),
    );
    check(
        id_path,
        "delete",
        &admin.delete(&format!("/workspaces/{ws}")),
    );
    check(
        "/admin/v1/people/{id}",
        "delete",
        &admin.delete(&format!("/people/{pid}")),
    );
}

both_backends!(admin_responses_match_the_openapi_document);
