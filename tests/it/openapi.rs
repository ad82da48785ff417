//! The OpenAPI document served at /openapi.json is kept true: every response of
//! a tour of `/v1` and the OAuth endpoints has a documented status for its path
//! and method, and its JSON body validates against the documented schema.

use crate::support::*;
use serde_json::Value;

/// Validates `v` against the subset of JSON Schema the document uses.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let path = r.trim_start_matches("#/");
        let target = path.split('/').fold(doc, |node, part| &node[part]);
        return validate(doc, target, v, at);
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            return Err(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in {e:?}"));
        }
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("boolean") => v.is_boolean(),
        Some(other) => return Err(format!("{at}: schema type {other} not understood")),
    };
    if !ok {
        return Err(format!("{at}: {v} is not a {}", schema["type"]));
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if v.get(name).is_none() {
                return Err(format!("{at}: missing required {name:?} in {v}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        v.as_object(),
    ) {
        for (name, sub) in props {
            if let Some(value) = obj.get(name) {
                validate(doc, sub, value, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Checks one response against the document.
pub(crate) fn conforms(doc: &Value, path: &str, method: &str, r: &Resp) {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let status = r.status.to_string();
    let mut response = op["responses"].get(&status).unwrap_or_else(|| {
        panic!(
            "{method} {path} answered {status}, which is not documented: {}",
            r.body
        )
    });
    if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
        response = reference
            .trim_start_matches("#/")
            .split('/')
            .fold(doc, |node, part| &node[part]);
    }
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return;
    };
    let (media, body) = content.iter().next().expect("a media type");
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with(media.as_str()),
        "{method} {path} {status}: content type {ct}, documented {media}"
    );
    let value: Value =
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e})"));
    if let Err(e) = validate(doc, &body["schema"], &value, "body") {
        panic!("{method} {path} {status}: {e}");
    }
}

fn responses_match_the_openapi_document(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    let served = http.get("/openapi.json");
    assert_eq!(served.status, 200);
    let doc = served.json();
    assert_eq!(doc["openapi"], "3.1.0");

    let rw = f.api_key("read_write");
    let ro = f.api_key("read_only");
    let (access, refresh) = f.tokens("workspace:read tags:read tags:write");

    for cred in [&rw, &access] {
        conforms(
            &doc,
            "/v1/workspace",
            "get",
            &http.bearer_get("/v1/workspace", cred),
        );
        conforms(&doc, "/v1/tags", "get", &http.bearer_get("/v1/tags", cred));
    }
    conforms(&doc, "/v1/workspace", "get", &http.get("/v1/workspace"));
    conforms(
        &doc,
        "/v1/workspace",
        "get",
        &http.bearer_get("/v1/workspace", "nope"),
    );
    conforms(
        &doc,
        "/v1/tags",
        "post",
        &http.bearer_post_json("/v1/tags", &rw, r#"{"name":"a"}"#),
    );
    conforms(
        &doc,
        "/v1/tags",
        "post",
        &http.bearer_post_json("/v1/tags", &rw, r#"{"name":"a"}"#),
    );
    conforms(
        &doc,
        "/v1/tags",
        "post",
        &http.bearer_post_json("/v1/tags", &rw, "not json"),
    );
    conforms(
        &doc,
        "/v1/tags",
        "post",
        &http.bearer_post_json("/v1/tags", &ro, r#"{"name":"b"}"#),
    );
    conforms(
        &doc,
        "/v1/tags",
        "get",
        &http.bearer_get("/v1/tags?limit=0", &rw),
    );
    conforms(
        &doc,
        "/v1/forms",
        "post",
        &http.bearer_post_json("/v1/forms", &rw, r#"{"name":"f"}"#),
    );
    conforms(
        &doc,
        "/v1/forms",
        "get",
        &http.bearer_get("/v1/forms?limit=1", &rw),
    );
    conforms(
        &doc,
        "/v1/forms",
        "get",
        &http.bearer_get("/v1/forms", &access),
    );
    conforms(
        &doc,
        "/v1/forms",
        "post",
        &http.bearer_post_json(
            "/v1/forms",
            &rw,
            &format!("{{\"name\":\"{}\"}}", "x".repeat(70_000)),
        ),
    );

    let created = http.bearer_post_json("/v1/mailboxes", &rw, r#"{"address":"doc@example.com"}"#);
    conforms(&doc, "/v1/mailboxes", "post", &created);
    for (key, body) in [
        (&rw, r#"{"address":"DOC@example.com"}"#),
        (&rw, "{}"),
        (&ro, r#"{"address":"x@example.com"}"#),
    ] {
        conforms(
            &doc,
            "/v1/mailboxes",
            "post",
            &http.bearer_post_json("/v1/mailboxes", key, body),
        );
    }
    conforms(
        &doc,
        "/v1/mailboxes",
        "get",
        &http.bearer_get("/v1/mailboxes", &ro),
    );
    conforms(
        &doc,
        "/v1/mailboxes",
        "get",
        &http.bearer_get("/v1/mailboxes", &access),
    );
    let mailbox = format!(
        "/v1/mailboxes/{}",
        created.json()["id"].as_str().expect("id")
    );
    conforms(
        &doc,
        "/v1/mailboxes/{id}",
        "get",
        &http.bearer_get(&mailbox, &ro),
    );
    conforms(
        &doc,
        "/v1/mailboxes/{id}",
        "get",
        &http.bearer_get("/v1/mailboxes/nope", &ro),
    );
    let bearer = format!("Bearer {rw}");
    for _ in 0..2 {
        let deleted = http.send("DELETE", &mailbox, &[("Authorization", &bearer)], "");
        conforms(&doc, "/v1/mailboxes/{id}", "delete", &deleted);
    }

    let auth = f.basic();
    let h = [("Authorization", auth.as_str())];
    conforms(&doc, "/oauth/token", "post", &f.refresh(&refresh));
    conforms(&doc, "/oauth/token", "post", &f.refresh(&refresh));
    conforms(
        &doc,
        "/oauth/token",
        "post",
        &http.post_form("/oauth/token", &[("grant_type", "refresh_token")]),
    );
    conforms(
        &doc,
        "/oauth/introspect",
        "post",
        &http.post_form_with("/oauth/introspect", &[("token", &access)], &h),
    );
    conforms(
        &doc,
        "/oauth/introspect",
        "post",
        &http.post_form_with("/oauth/introspect", &[("token", "x")], &h),
    );
    conforms(
        &doc,
        "/oauth/introspect",
        "post",
        &http.post_form("/oauth/introspect", &[("token", "x")]),
    );
    conforms(
        &doc,
        "/oauth/revoke",
        "post",
        &http.post_form_with("/oauth/revoke", &[("token", "x")], &h),
    );
    conforms(
        &doc,
        "/oauth/revoke",
        "post",
        &http.post_form_with("/oauth/revoke", &[], &h),
    );
    let reg = crate::registration::register(
        &f.server,
        &serde_json::json!({"redirect_uris": ["https://app.example/cb"], "client_name": "Doc"}),
    );
    conforms(&doc, "/oauth/register", "post", &reg);
    let bad = crate::registration::register(&f.server, &serde_json::json!({}));
    conforms(&doc, "/oauth/register", "post", &bad);
    let info = reg.json();
    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = format!(
        "Bearer {}",
        info["registration_access_token"].as_str().unwrap()
    );
    let path = "/oauth/register/{client_id}";
    conforms(
        &doc,
        path,
        "get",
        &http.get_with(uri, &[("Authorization", &token)]),
    );
    conforms(&doc, path, "get", &http.get(uri));
    let deleted = http.send("DELETE", uri, &[("Authorization", &token)], "");
    conforms(&doc, path, "delete", &deleted);
    conforms(
        &doc,
        path,
        "delete",
        &http.send("DELETE", uri, &[("Authorization", &token)], ""),
    );
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource",
        "/.well-known/jwks.json",
    ] {
        conforms(&doc, path, "get", &http.get(path));
    }
}

both_backends!(responses_match_the_openapi_document);
