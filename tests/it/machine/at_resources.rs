//! Machine clients at registered resources: a service names a resource
//! (RFC 8707) and its token works there only; a DPoP-bound token at the
//! gateway check needs a proof of the original request; a resource's
//! introspection shows the token's key (`cnf`).

use super::client_credentials::service;
use super::dpop::proof;
use crate::support::*;

const API: &str = "https://api.example.test";

fn service_tokens_name_a_registered_resource(b: Backend) {
    let f = Fixture::new(b);
    let resource = f.db().create_resource(API, &["GET /tags tags:read"]);
    let created = service(&f, &["tags:read"]);
    let (id, secret) = (s(&created, "client_id"), s(&created, "client_secret"));
    let token_for = |named: &str| {
        f.server.client().post_form_with(
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("resource", named)],
            &[("Authorization", &basic(&id, &secret))],
        )
    };
    let r = token_for(API);
    assert_eq!(r.status, 200, "{}", r.body);
    let token = s(&r.json(), "access_token");
    let ok = gateway_check(&f.server, API, "GET", "/tags", Some(&token));
    assert_eq!(ok.status, 200, "{}", ok.body);
    // A token for the resource is no credential at /v1.
    let v1 = f.server.client().bearer_get("/v1/tags", &token);
    assert_eq!(v1.status, 401, "{}", v1.body);
    assert_eq!(introspect_as(&f.server, &resource, &token)["active"], true);
    // An unknown resource, or two: invalid_target, and no token.
    for bad in ["https://unknown.example.test", "not a url"] {
        let r = token_for(bad);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_target", "{bad:?}");
    }
}

fn dpop_bound_tokens_at_the_gateway(b: Backend) {
    let f = Fixture::new(b);
    let resource = f.db().create_resource(API, &["GET /tags tags:read"]);
    let created = service(&f, &["tags:read"]);
    let (id, secret) = (s(&created, "client_id"), s(&created, "client_secret"));
    let key = TestKey::es256("gw");
    let p = proof(&key, "POST", &f.server.url("/oauth/token"), None);
    let r = f.server.client().post_form_with(
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("resource", API)],
        &[("Authorization", &basic(&id, &secret)), ("DPoP", &p)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    let token = s(&r.json(), "access_token");
    // A resource's introspection shows the key the token is bound to.
    let seen = introspect_as(&f.server, &resource, &token);
    assert_eq!(seen["cnf"]["jkt"], key.thumbprint().as_str());

    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("resource", API)
        .finish();
    let check = |scheme: &str, proof: Option<&str>, host: &str| {
        let auth = format!("{scheme} {token}");
        let mut headers = vec![
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/tags?page=2"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", host),
            ("Authorization", auth.as_str()),
        ];
        if let Some(p) = proof {
            headers.push(("DPoP", p));
        }
        f.server
            .client()
            .get_with(&format!("/gateway/check?{query}"), &headers)
    };
    // The proof names the original request: method, scheme, host and path.
    let good = proof(&key, "GET", "https://api.example.test/tags", Some(&token));
    let r = check("DPoP", Some(&good), "api.example.test");
    assert_eq!(r.status, 200, "{}", r.body);
    // Replayed, for another host, sent as Bearer, without a proof: 401 DPoP.
    let other_host = proof(&key, "GET", "https://evil.example.test/tags", Some(&token));
    let fresh = proof(&key, "GET", "https://api.example.test/tags", Some(&token));
    for (what, r) in [
        ("replayed", check("DPoP", Some(&good), "api.example.test")),
        (
            "another host",
            check("DPoP", Some(&other_host), "api.example.test"),
        ),
        ("no proof", check("DPoP", None, "api.example.test")),
        (
            "as Bearer",
            check("Bearer", Some(&fresh), "api.example.test"),
        ),
    ] {
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        let w = r.header("www-authenticate").unwrap_or_default();
        assert!(
            w.starts_with("DPoP ") || w.starts_with("Bearer "),
            "{what}: {w}"
        );
        assert!(w.contains("error="), "{what}: {w}");
    }
}

both_backends!(
    service_tokens_name_a_registered_resource,
    dpop_bound_tokens_at_the_gateway,
);
