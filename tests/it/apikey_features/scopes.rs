//! Custom scopes on API keys, checked on every /v1 route.

use super::*;

// ---------------------------------------------------------------- custom scopes

fn custom_scopes_on_every_route(b: Backend) {
    let f = Fixture::new(b);
    let ws = &f.workspace_id;
    let db = f.db();
    let v = create(
        db,
        ws,
        "custom",
        &[
            "--access",
            "custom",
            "--scope",
            "forms:write",
            "--scope",
            "tags:read",
        ],
    );
    assert_eq!(v["access"], "custom");
    assert_eq!(v["scopes"], json!(["tags:read", "forms:write"]));
    let listed_v = listed(db, ws, &s(&v, "id"));
    assert_eq!(listed_v["access"], "custom");
    assert_eq!(listed_v["scopes"], json!(["tags:read", "forms:write"]));
    // The fixed levels list their scopes too, unchanged.
    let ro = create(db, ws, "ro", &["--access", "read_only"]);
    assert_eq!(ro["access"], "read_only");
    assert!(ro["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .all(|s| s.as_str().is_some_and(|s| s.ends_with(":read"))));

    let key = s(&v, "key");
    let mut http = f.server.client();
    let refused = |r: Resp| r.assert_v1_error(403, "permission_error", "insufficient_scope");
    refused(http.bearer_get("/v1/workspace", &key));
    assert_eq!(http.bearer_get("/v1/tags", &key).status, 200);
    refused(http.bearer_post_json("/v1/tags", &key, "{\"name\":\"t1\"}"));
    refused(http.bearer_get("/v1/forms", &key));
    let made = http.bearer_post_json("/v1/forms", &key, "{\"name\":\"f1\"}");
    assert_eq!(made.status, 201, "{}", made.body);

    let only_ws = create(
        db,
        ws,
        "only-ws",
        &["--access", "custom", "--scope", "workspace:read"],
    );
    let k = s(&only_ws, "key");
    assert_eq!(http.bearer_get("/v1/workspace", &k).status, 200);
    refused(http.bearer_get("/v1/tags", &k));
    refused(http.bearer_post_json("/v1/tags", &k, "{\"name\":\"t2\"}"));
    refused(http.bearer_get("/v1/forms", &k));
    refused(http.bearer_post_json("/v1/forms", &k, "{\"name\":\"f2\"}"));
}

both_backends!(custom_scopes_on_every_route,);
