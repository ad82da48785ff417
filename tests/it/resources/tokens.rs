//! RFC 8707 through the real server: a token for a registered resource names
//! it as its `aud`, works there and nowhere else (not at `/v1`), is seen by
//! that resource's introspection with the contract's fields, keeps its
//! resource through a refresh, and stops with the resource.

use crate::support::*;
use std::time::Duration;

const API: &str = "https://api.example.com/mcp";
const OTHER: &str = "https://other.example.com";

fn aud_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON claims");
    s(&claims, "aud")
}

fn a_token_for_a_resource_works_there_only(b: Backend) {
    let f = Fixture::new(b);
    let api = f.db().create_resource(API, &["* / -"]);
    let other = f.db().create_resource(OTHER, &["* / -"]);
    let (page, tokens) = resource_tokens(&f, API, "tags:read");
    assert!(
        page.body.contains("Acme API"),
        "the consent page names the resource"
    );
    assert!(page.body.contains(API));
    let access = s(&tokens, "access_token");
    assert_eq!(aud_of(&access), API);

    // Refused at /v1 (401, as any invalid credential) and at another resource.
    let r = f.server.client().bearer_get("/v1/workspace", &access);
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    assert_eq!(
        gateway_check(&f.server, OTHER, "GET", "/", Some(&access)).status,
        401
    );
    assert_eq!(
        gateway_check(&f.server, API, "GET", "/", Some(&access)).status,
        200
    );

    // Introspection: the resource sees it, another does not, the client does.
    let seen = introspect_as(&f.server, &api, &access);
    assert_eq!(seen["active"], true);
    assert_eq!(seen["token_type"], "access_token");
    assert_eq!(seen["client_id"], f.client_id.as_str());
    assert_eq!(seen["sub"], f.owner_id.as_str());
    assert_eq!(seen["workspace_id"], f.workspace_id.as_str());
    assert_eq!(seen["scope"], "tags:read");
    assert!(seen["exp"].as_i64().is_some());
    assert_eq!(introspect_as(&f.server, &other, &access)["active"], false);
    assert_eq!(f.introspect(&access)["active"], true);

    // A refresh keeps the resource; naming another is invalid_target.
    let refresh = s(&tokens, "refresh_token");
    let r = f.server.client().post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("resource", &format!("{}/v1", f.server.base)),
        ],
        &[("Authorization", &f.basic())],
    );
    r.assert_oauth_error(400, "invalid_target");
    let r = f.refresh(&refresh);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(aud_of(&s(&r.json(), "access_token")), API);

    // A /v1 token is not the resource's.
    let (v1_token, _) = f.tokens("workspace:read");
    assert_eq!(introspect_as(&f.server, &api, &v1_token)["active"], false);
}

fn a_resource_sees_every_live_api_key(b: Backend) {
    let f = Fixture::new(b);
    let api = f.db().create_resource(API, &[]);
    let created = f.db().create_api_key(&f.workspace_id, "mcp", "read_only");
    let key = s(&created, "key");
    let seen = introspect_as(&f.server, &api, &key);
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["token_type"], "api_key");
    assert_eq!(seen["key_id"], created["id"]);
    assert_eq!(seen["workspace_id"], f.workspace_id.as_str());
    assert!(
        seen.get("exp").is_none(),
        "a key that never expires has no exp"
    );
    assert!(s(&seen, "scope").contains("tags:read"));
    // A client sees no API key; a revoked key is inactive at once.
    assert_eq!(f.introspect(&key)["active"], false);
    f.db().json(&["apikey", "revoke", &s(&created, "id")]);
    assert_eq!(introspect_as(&f.server, &api, &key)["active"], false);
    assert_eq!(
        introspect_as(&f.server, &api, "not-a-credential")["active"],
        false
    );
}

fn unknown_or_several_resources_are_invalid_target(b: Backend) {
    let f = Fixture::new(b);
    f.db().create_resource(API, &[]);
    let (_, challenge) = pkce();
    let mut http = f.owner();
    let base = f.authorize_query(&f.client_id, "tags:read", &challenge);
    for extra in [
        "resource=https%3A%2F%2Funknown.example.com".to_string(),
        format!("resource={}&resource={}", urlencode(API), urlencode(OTHER)),
    ] {
        let r = http.get(&format!("/oauth/authorize?{base}&{extra}"));
        assert_eq!(r.status, 302, "{}", r.body);
        assert_eq!(param(&r.location_params(), "error"), Some("invalid_target"));
    }
    // One trailing slash is ignored.
    let (_, tokens) = resource_tokens(&f, &format!("{API}/"), "tags:read");
    assert_eq!(aud_of(&s(&tokens, "access_token")), API);
}

fn urlencode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn deleting_a_resource_stops_its_tokens_and_credentials(b: Backend) {
    let f = Fixture::new(b);
    let api = f.db().create_resource(API, &["* / -"]);
    let (_, tokens) = resource_tokens(&f, API, "tags:read");
    let access = s(&tokens, "access_token");
    assert_eq!(
        gateway_check(&f.server, API, "GET", "/", Some(&access)).status,
        200
    );
    assert_eq!(introspect_as(&f.server, &api, &access)["active"], true);
    f.db().json(&["resource", "delete", &s(&api, "id")]);
    // The CLI waited for the feed: the next requests are refused.
    let gone = gateway_check(&f.server, API, "GET", "/", Some(&access));
    gone.assert_v1_error(400, "invalid_request_error", "parameter_invalid");
    assert_eq!(f.introspect(&access)["active"], false);
    let r = f.server.client().post_form_with(
        "/oauth/introspect",
        &[("token", &access)],
        &[("Authorization", &resource_basic(&api))],
    );
    r.assert_oauth_error(401, "invalid_client");
    let r = f.refresh(&s(&tokens, "refresh_token"));
    r.assert_oauth_error(400, "invalid_grant");
    let app = f.app_row(&f.client_id);
    assert_eq!(app["status"], "revoked");
    // Registered again, the identifier does not bring the old token back.
    let again = f.db().create_resource(API, &["* / -"]);
    assert!(eventually(Duration::from_secs(1), || {
        gateway_check(&f.server, API, "GET", "/", Some(&access)).status == 401
    }));
    assert_eq!(introspect_as(&f.server, &again, &access)["active"], false);
}

both_backends!(
    a_token_for_a_resource_works_there_only,
    a_resource_sees_every_live_api_key,
    unknown_or_several_resources_are_invalid_target,
    deleting_a_resource_stops_its_tokens_and_credentials
);
