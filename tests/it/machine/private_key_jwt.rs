//! private_key_jwt (RFC 7523 §2.2) at the token, revocation and
//! introspection endpoints, with keys given at creation (`--jwks-file`) or
//! published at a URL (`--jwks-uri`, served over loopback HTTPS), and every
//! assertion the contract refuses.

use crate::https_server::{HttpsServer, Reply};
use crate::support::*;
use serde_json::{json, Value};

/// A service client of the fixture's workspace with these keys in a file.
pub fn keyed_service(f: &Fixture, keys: &[&TestKey]) -> String {
    let path = std::env::temp_dir().join(format!("jwks-{}.json", unique()));
    std::fs::write(&path, jwks(keys).to_string()).unwrap();
    let created = f.db().json(&[
        "client",
        "create",
        "--name",
        "Keyed agent",
        "--workspace",
        &f.workspace_id,
        "--grant",
        "client_credentials",
        "--scope",
        "workspace:read",
        "--jwks-file",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(
        created.get("client_secret").is_none(),
        "no secret for a keyed client"
    );
    s(&created, "client_id")
}

pub fn with_assertion(f: &Fixture, path: &str, assertion: &str, form: &[(&str, &str)]) -> Resp {
    let mut all = vec![
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    all.extend_from_slice(form);
    f.server.client().post_form(path, &all)
}

const CC: &[(&str, &str)] = &[("grant_type", "client_credentials")];

fn private_key_jwt_at_every_client_endpoint(b: Backend) {
    let f = Fixture::new(b);
    let (es, ed) = (TestKey::es256("es-1"), TestKey::ed25519("ed-1"));
    let id = keyed_service(&f, &[&es, &ed]);
    let issuer = f.server.url("");
    let token_url = f.server.url("/oauth/token");
    // ES256 with the issuer as audience, EdDSA with the token endpoint.
    let a1 = es.sign(
        None,
        false,
        &assertion_claims(&id, issuer.trim_end_matches('/')),
    );
    let r = with_assertion(&f, "/oauth/token", &a1, CC);
    assert_eq!(r.status, 200, "{}", r.body);
    let access = s(&r.json(), "access_token");
    let a2 = ed.sign(None, false, &assertion_claims(&id, &token_url));
    let r2 = with_assertion(&f, "/oauth/token", &a2, CC);
    assert_eq!(r2.status, 200, "{}", r2.body);
    // "Ed25519" (RFC 9864) names the same algorithm.
    let named = ed.sign_as("Ed25519", &assertion_claims(&id, &token_url));
    let r3 = with_assertion(&f, "/oauth/token", &named, CC);
    assert_eq!(r3.status, 200, "{}", r3.body);
    // The replayed assertion: invalid_client, nothing issued.
    let before = f.db().count("access_tokens");
    with_assertion(&f, "/oauth/token", &a1, CC).assert_oauth_error(401, "invalid_client");
    assert_eq!(f.db().count("access_tokens"), before);

    // Introspection and revocation accept the method too.
    let a3 = es.sign(None, false, &assertion_claims(&id, &token_url));
    let seen = with_assertion(&f, "/oauth/introspect", &a3, &[("token", &access)]);
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.json()["active"], true);
    let a4 = es.sign(None, false, &assertion_claims(&id, &token_url));
    let gone = with_assertion(&f, "/oauth/revoke", &a4, &[("token", &access)]);
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(f.server.v1_status(&access), 401);

    // A keyed client cannot authenticate otherwise.
    let mut http = f.server.client();
    http.post_form_with("/oauth/token", CC, &[("Authorization", &basic(&id, ""))])
        .assert_oauth_error(401, "invalid_client");
    http.post_form(
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", &id)],
    )
    .assert_oauth_error(401, "invalid_client");
}

fn refused_assertions(b: Backend) {
    let f = Fixture::new(b);
    let key = TestKey::es256("k1");
    let stranger = TestKey::es256("k1");
    let id = keyed_service(&f, &[&key]);
    let aud = f.server.url("/oauth/token");
    let claims = |edit: &dyn Fn(&mut Value)| {
        let mut c = assertion_claims(&id, &aud);
        edit(&mut c);
        c
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            key.sign(None, false, &claims(&|c| c["exp"] = json!(now() - 5))),
        ),
        (
            "exp over 60 minutes ahead",
            key.sign(None, false, &claims(&|c| c["exp"] = json!(now() + 3700))),
        ),
        (
            "no exp",
            key.sign(
                None,
                false,
                &claims(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
        ),
        (
            "no jti",
            key.sign(
                None,
                false,
                &claims(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            ),
        ),
        (
            "wrong audience",
            key.sign(
                None,
                false,
                &claims(&|c| c["aud"] = json!("https://elsewhere.example.com")),
            ),
        ),
        (
            "wrong issuer",
            key.sign(None, false, &claims(&|c| c["iss"] = json!("someone-else"))),
        ),
        ("another key", stranger.sign(None, false, &claims(&|_| {}))),
        (
            "alg none",
            unsigned(&json!({"alg": "none", "kid": "k1"}), &claims(&|_| {})),
        ),
        (
            "HMAC keyed with the public key",
            key.hmac_with_public_key(&claims(&|_| {})),
        ),
        ("unknown kid", {
            let other = TestKey::es256("k2");
            other.sign(None, false, &claims(&|_| {}))
        }),
    ];
    let before = (f.db().count("access_tokens"), f.db().count("used_jtis"));
    for (what, assertion) in cases {
        let r = with_assertion(&f, "/oauth/token", &assertion, CC);
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_client", "{what}");
    }
    assert_eq!(
        (f.db().count("access_tokens"), f.db().count("used_jtis")),
        before,
        "a refused assertion changes nothing"
    );
    // A secret besides the assertion: one method only.
    let good = key.sign(None, false, &claims(&|_| {}));
    let mixed = f.server.client().post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &good),
        ],
        &[("Authorization", &basic(&id, "x"))],
    );
    mixed.assert_oauth_error(400, "invalid_request");
}

fn keys_at_a_url_are_fetched_and_cached(b: Backend) {
    let jwks_server = HttpsServer::start();
    let key = TestKey::ed25519("ed-a");
    jwks_server.set("/jwks.json", Reply::json(&jwks(&[&key])));
    let db = TestDb::new(b);
    let server = Server::start_with(
        db,
        &[
            ("KEYGATE_CIMD_ALLOWED_HOSTS", "127.0.0.1"),
            (
                "KEYGATE_CIMD_CA_FILE",
                jwks_server.ca_file().to_str().unwrap(),
            ),
        ],
    );
    let f = Fixture::with_server(server);
    let url = jwks_server.url("/jwks.json");
    let created = f.db().json(&[
        "client",
        "create",
        "--name",
        "Fetched keys",
        "--workspace",
        &f.workspace_id,
        "--grant",
        "client_credentials",
        "--scope",
        "workspace:read",
        "--jwks-uri",
        &url,
    ]);
    let id = s(&created, "client_id");
    let aud = f.server.url("/oauth/token");
    for _ in 0..3 {
        let a = key.sign(None, false, &assertion_claims(&id, &aud));
        let r = with_assertion(&f, "/oauth/token", &a, CC);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(jwks_server.hits("/jwks.json"), 1, "the set is cached");
    // Unknown kids fetch again at most once a minute, whatever is sent.
    for i in 0..3 {
        let other = TestKey::ed25519(&format!("made-up-{i}"));
        let a = other.sign(None, false, &assertion_claims(&id, &aud));
        with_assertion(&f, "/oauth/token", &a, CC).assert_oauth_error(401, "invalid_client");
    }
    assert_eq!(jwks_server.hits("/jwks.json"), 1);
}

both_backends!(
    private_key_jwt_at_every_client_endpoint,
    refused_assertions,
    keys_at_a_url_are_fetched_and_cached
);
