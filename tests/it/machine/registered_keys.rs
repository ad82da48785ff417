//! Clients that bring their keys themselves: RFC 7591 `jwks`/`jwks_uri` at
//! `POST /oauth/register`, and a client ID metadata document that lists
//! `private_key_jwt` with a `jwks_uri`.

use super::private_key_jwt::with_assertion;
use crate::cimd_flow::keygate_for;
use crate::https_server::{HttpsServer, Reply};
use crate::support::*;
use serde_json::json;

fn register(f: &Fixture, body: &serde_json::Value) -> Resp {
    f.server.client().send(
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        &body.to_string(),
    )
}

fn dynamic_registration_with_keys(b: Backend) {
    let f = Fixture::new(b);
    let key = TestKey::es256("dcr-1");
    let r = register(
        &f,
        &json!({
            "redirect_uris": ["https://agent.example.com/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks(&[&key]),
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let reg = r.json();
    assert!(reg.get("client_secret").is_none(), "no secret: {reg}");
    assert_eq!(reg["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(reg["jwks"]["keys"][0]["kid"], "dcr-1");
    let id = s(&reg, "client_id");
    let aud = f.server.url("/oauth/token");
    let a = key.sign(None, false, &assertion_claims(&id, &aud));
    let seen = with_assertion(&f, "/oauth/introspect", &a, &[("token", "not-a-token")]);
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.json()["active"], false);
    // Its keys are the only way in.
    f.server
        .client()
        .post_form_with(
            "/oauth/introspect",
            &[("token", "x")],
            &[("Authorization", &basic(&id, ""))],
        )
        .assert_oauth_error(401, "invalid_client");
    let stranger = TestKey::es256("dcr-1");
    let forged = stranger.sign(None, false, &assertion_claims(&id, &aud));
    with_assertion(&f, "/oauth/introspect", &forged, &[("token", "x")])
        .assert_oauth_error(401, "invalid_client");

    // Refused registrations make no client.
    let before = f.db().count("clients");
    for body in [
        json!({"redirect_uris": ["https://a.example.com/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": ["https://a.example.com/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks(&[&key]), "jwks_uri": "https://a.example.com/jwks"}),
        json!({"redirect_uris": ["https://a.example.com/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://a.example.com/jwks"}),
        json!({"redirect_uris": ["https://a.example.com/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
    ] {
        let r = register(&f, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_client_metadata");
    }
    assert_eq!(f.db().count("clients"), before);
}

/// A document listing both none and private_key_jwt: either works, and a
/// bad assertion is refused, never ignored.
fn metadata_document_with_both_methods(b: Backend) {
    let https = HttpsServer::start();
    let key = TestKey::es256("doc-2");
    let client_id = https.url("/both.json");
    let redirect = "http://127.0.0.1/callback";
    https.set("/jwks.json", Reply::json(&jwks(&[&key])));
    https.set(
        "/both.json",
        Reply::json(&json!({
            "client_id": client_id,
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "jwks_uri": https.url("/jwks.json"),
        })),
    );
    let f = keygate_for(&https, b, &[]);
    let code = |f: &Fixture| {
        let (verifier, challenge) = pkce();
        let mut owner = f.owner();
        let page = owner.get(&authorize_path(
            &client_id,
            redirect,
            "workspace:read",
            &challenge,
        ));
        let r = approve_page(f, &mut owner, &page);
        (code_of(&r), verifier)
    };
    let (c1, v1) = code(&f);
    let plain = exchange_public(&f.server, &client_id, &c1, redirect, &v1);
    assert_eq!(plain.status, 200, "none is listed: {}", plain.body);
    let (c2, v2) = code(&f);
    let exchange = |assertion: &str, c: &str, v: &str| {
        with_assertion(
            &f,
            "/oauth/token",
            assertion,
            &[
                ("grant_type", "authorization_code"),
                ("code", c),
                ("redirect_uri", redirect),
                ("code_verifier", v),
            ],
        )
    };
    let stranger = TestKey::es256("doc-2");
    let aud = f.server.url("/oauth/token");
    let bad = stranger.sign(None, false, &assertion_claims(&client_id, &aud));
    exchange(&bad, &c2, &v2).assert_oauth_error(401, "invalid_client");
    let good = key.sign(None, false, &assertion_claims(&client_id, &aud));
    let r = exchange(&good, &c2, &v2);
    assert_eq!(
        r.status, 200,
        "the code was not spent by the refused request: {}",
        r.body
    );
}

/// A document listing only private_key_jwt: the code exchange needs an
/// assertion signed with a key at its jwks_uri; `none` is refused.
fn metadata_document_with_private_key_jwt(b: Backend) {
    let https = HttpsServer::start();
    let key = TestKey::ed25519("doc-1");
    let client_id = https.url("/agent.json");
    let redirect = "http://127.0.0.1/callback";
    https.set("/jwks.json", Reply::json(&jwks(&[&key])));
    https.set(
        "/agent.json",
        Reply::json(&json!({
            "client_id": client_id,
            "client_name": "Keyed agent",
            "redirect_uris": [redirect],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "jwks_uri": https.url("/jwks.json"),
        })),
    );
    let f = keygate_for(&https, b, &[]);
    let code = |f: &Fixture| {
        let (verifier, challenge) = pkce();
        let mut owner = f.owner();
        let page = owner.get(&authorize_path(
            &client_id,
            redirect,
            "workspace:read",
            &challenge,
        ));
        let r = approve_page(f, &mut owner, &page);
        (code_of(&r), verifier)
    };
    let (c1, v1) = code(&f);
    let plain = exchange_public(&f.server, &client_id, &c1, redirect, &v1);
    plain.assert_oauth_error(401, "invalid_client");
    let (c2, v2) = code(&f);
    let a = key.sign(
        None,
        false,
        &assertion_claims(&client_id, &f.server.url("/oauth/token")),
    );
    let r = with_assertion(
        &f,
        "/oauth/token",
        &a,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c2),
            ("redirect_uri", redirect),
            ("code_verifier", &v2),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(f.server.v1_status(&s(&r.json(), "access_token")), 200);
}

/// `keygate client create --redirect-uri … --jwks-file`: a code-flow client
/// with keys and no secret.
fn operator_client_with_keys(b: Backend) {
    let f = Fixture::new(b);
    let key = TestKey::es256("op-1");
    let path = std::env::temp_dir().join(format!("jwks-{}.json", unique()));
    std::fs::write(&path, jwks(&[&key]).to_string()).unwrap();
    let file = path.to_str().unwrap().to_string();
    let cb = "https://app.example.com/cb";
    let made = f.db().json(&[
        "client",
        "create",
        "--name",
        "Keyed app",
        "--redirect-uri",
        cb,
        "--jwks-file",
        &file,
    ]);
    assert!(made.get("client_secret").is_none(), "{made}");
    let id = s(&made, "client_id");
    let a = key.sign(
        None,
        false,
        &assertion_claims(&id, &f.server.url("/oauth/token")),
    );
    let r = with_assertion(&f, "/oauth/revoke", &a, &[("token", "whatever")]);
    assert_eq!(r.status, 200, "{}", r.body);
    f.server
        .client()
        .post_form_with(
            "/oauth/revoke",
            &[("token", "x")],
            &[("Authorization", &basic(&id, ""))],
        )
        .assert_oauth_error(401, "invalid_client");
    let clients = f.db().count("clients");
    for args in [
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            cb,
            "--public",
            "--jwks-file",
            &file,
        ],
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            cb,
            "--jwks-file",
            "/no/such/file",
        ],
    ] {
        assert_ne!(f.db().cli(&args).code, 0, "{args:?}");
    }
    assert_eq!(f.db().count("clients"), clients);
    let _ = std::fs::remove_file(&path);
}

both_backends!(
    dynamic_registration_with_keys,
    metadata_document_with_private_key_jwt,
    metadata_document_with_both_methods,
    operator_client_with_keys
);
