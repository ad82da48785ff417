//! Discovery documents (RFC 8414, RFC 9728), also for an issuer with a path.

use super::*;

fn discovery_documents(b: Backend) {
    let s = Server::start(b);
    let mut http = s.client();
    let meta = http.get("/.well-known/oauth-authorization-server");
    assert_eq!(meta.status, 200);
    let m = meta.json();
    assert_eq!(m["issuer"], s.base.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(m[field], format!("{}{path}", s.base), "{field}");
    }
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let methods = m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for needed in ["client_secret_basic", "client_secret_post", "none"] {
        assert!(methods.iter().any(|x| x == needed), "{needed}");
    }
    assert!(m["revocation_endpoint_auth_methods_supported"].is_array());
    assert!(m["introspection_endpoint_auth_methods_supported"].is_array());
    let scopes = m["scopes_supported"].as_array().unwrap();
    for sc in [
        "workspace:read",
        "tags:read",
        "tags:write",
        "forms:read",
        "forms:write",
    ] {
        assert!(scopes.iter().any(|x| x == sc), "{sc}");
    }
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(
        grants.iter().any(|g| g == "authorization_code")
            && grants.iter().any(|g| g == "refresh_token")
    );

    let jwks = http.get("/.well-known/jwks.json").json();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for k in keys {
        assert!(k["kid"].is_string() && k["x"].is_string());
        assert!(k.get("d").is_none(), "private key material published");
    }
    let pr = http.get("/.well-known/oauth-protected-resource").json();
    assert_eq!(pr["resource"], format!("{}/v1", s.base));
    assert_eq!(pr["authorization_servers"][0], s.base.as_str());
}

/// RFC 8414 §3.1: an issuer with a path (`https://host/tenant`, behind a
/// proxy that maps `/tenant` to keygate) publishes its metadata at
/// `/.well-known/oauth-authorization-server/tenant`; RFC 9728 §3.1 likewise
/// for the resource `{issuer}/v1`. The path-less URLs stay.
fn metadata_for_an_issuer_with_a_path(b: Backend) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}/tenant");
    let s = Server::spawn(TestDb::new(b), port, &[("KEYGATE_ISSUER", &issuer)]);
    let mut http = s.client();
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = http.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let meta = r.json();
        assert_eq!(meta["issuer"], issuer.as_str(), "{path}");
        assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth/token"));
    }
    for path in [
        "/.well-known/oauth-authorization-server/other",
        "/.well-known/oauth-authorization-server/tenant/more",
        "/.well-known/oauth-protected-resource/other/v1",
    ] {
        assert_eq!(http.get(path).status, 404, "{path}");
    }
    for path in [
        "/.well-known/oauth-protected-resource/tenant/v1",
        "/.well-known/oauth-protected-resource/v1",
        "/.well-known/oauth-protected-resource",
    ] {
        let r = http.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json()["resource"], format!("{issuer}/v1"), "{path}");
    }
    // An issuer without a path has no path form.
    let plain = Server::start(b);
    assert_eq!(
        plain
            .client()
            .get("/.well-known/oauth-authorization-server/tenant")
            .status,
        404
    );
}

both_backends!(discovery_documents, metadata_for_an_issuer_with_a_path,);
