//! Client credentials (RFC 6749 §4.4) with an unmodified client library (the
//! `oauth2` crate), and every refusal the contract names.

use crate::support::*;
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::Value;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

/// `keygate client create --grant client_credentials` for the fixture's workspace.
pub fn service(f: &Fixture, scopes: &[&str]) -> Value {
    let mut args = vec![
        "client",
        "create",
        "--name",
        "Nightly sync",
        "--workspace",
        &f.workspace_id,
        "--grant",
        "client_credentials",
    ];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    f.db().json(&args)
}

pub fn introspect_as(f: &Fixture, id: &str, secret: &str, token: &str) -> Value {
    let r = f.server.client().post_form_with(
        "/oauth/introspect",
        &[("token", token)],
        &[("Authorization", &basic(id, secret))],
    );
    assert_eq!(r.status, 200, "introspect: {}", r.body);
    r.json()
}

fn token_request(f: &Fixture, id: &str, secret: &str, form: &[(&str, &str)]) -> Resp {
    f.server.client().post_form_with(
        "/oauth/token",
        form,
        &[("Authorization", &basic(id, secret))],
    )
}

fn client_credentials_with_the_oauth2_crate(b: Backend) {
    let f = Fixture::new(b);
    let created = service(&f, &["workspace:read", "tags:read"]);
    let (id, secret) = (s(&created, "client_id"), s(&created, "client_secret"));
    let client = BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret.clone()))
        .set_token_uri(TokenUrl::new(f.server.url("/oauth/token")).unwrap());
    let http = agent();
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("tags:read".into()))
        .request(&http)
        .expect("client credentials through the oauth2 crate");
    assert!(token.refresh_token().is_none(), "no refresh token");
    let access = token.access_token().secret().clone();
    let mut api = f.server.client();
    assert_eq!(api.bearer_get("/v1/tags", &access).status, 200);
    // Only the scope asked for.
    api.bearer_get("/v1/workspace", &access).assert_v1_error(
        403,
        "permission_error",
        "insufficient_scope",
    );
    let claims = introspect_as(&f, &id, &secret, &access);
    assert_eq!(claims["active"], true);
    assert_eq!(claims["sub"], id.as_str(), "sub is the client itself");
    assert_eq!(claims["workspace_id"], f.workspace_id.as_str());

    // None asked: every registered scope.
    let all = token_request(&f, &id, &secret, &[("grant_type", "client_credentials")]);
    assert_eq!(all.status, 200, "{}", all.body);
    let body = all.json();
    assert_eq!(body["scope"], "workspace:read tags:read");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["workspace_id"], f.workspace_id.as_str());
    assert!(body.get("refresh_token").is_none());
    let whole = s(&body, "access_token");
    assert_eq!(api.bearer_get("/v1/workspace", &whole).status, 200);

    // Listed among the workspace's authorized apps, revocable there.
    let row = f.app_row(&id);
    assert_eq!(row["status"], "active");
    assert_eq!(
        row["scopes"],
        serde_json::json!(["workspace:read", "tags:read"])
    );
    let revoked = f.db().json(&["apps", "revoke", &s(&row, "id")]);
    assert_eq!(revoked["status"], "revoked");
    api.bearer_get("/v1/workspace", &whole).assert_v1_error(
        401,
        "authentication_error",
        "invalid_api_key",
    );
    let after = token_request(&f, &id, &secret, &[("grant_type", "client_credentials")]);
    after.assert_oauth_error(400, "unauthorized_client");
}

fn client_credentials_refusals(b: Backend) {
    let f = Fixture::new(b);
    let created = service(&f, &["workspace:read"]);
    let (id, secret) = (s(&created, "client_id"), s(&created, "client_secret"));
    let before = f.db().count("access_tokens");
    let wider = token_request(
        &f,
        &id,
        &secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "workspace:read tags:write"),
        ],
    );
    wider.assert_oauth_error(400, "invalid_scope");
    let unknown = token_request(
        &f,
        &id,
        &secret,
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    );
    unknown.assert_oauth_error(400, "invalid_scope");
    let wrong = token_request(
        &f,
        &id,
        "kgs_wrong",
        &[("grant_type", "client_credentials")],
    );
    wrong.assert_oauth_error(401, "invalid_client");
    // A code-flow client did not register the grant.
    let code_client = token_request(
        &f,
        &f.client_id,
        &f.client_secret,
        &[("grant_type", "client_credentials")],
    );
    code_client.assert_oauth_error(400, "unauthorized_client");
    // Nor may a service client use the refresh grant.
    let refresh = token_request(
        &f,
        &id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    );
    refresh.assert_oauth_error(400, "unauthorized_client");
    assert_eq!(f.db().count("access_tokens"), before, "nothing was issued");

    // The CLI refuses bad input and makes nothing.
    let clients = f.db().count("clients");
    let ws = f.workspace_id.clone();
    for args in [
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--workspace",
            &ws,
            "--grant",
            "password",
            "--scope",
            "tags:read",
        ],
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--workspace",
            &ws,
            "--grant",
            "client_credentials",
            "--scope",
            "nope",
        ],
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--workspace",
            "no-such-ws",
            "--grant",
            "client_credentials",
            "--scope",
            "tags:read",
        ],
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--workspace",
            &ws,
            "--grant",
            "client_credentials",
        ],
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--workspace",
            &ws,
            "--grant",
            "client_credentials",
            "--scope",
            "tags:read",
            "--jwks-uri",
            "http://example.com/jwks",
        ],
    ] {
        let out = f.db().cli(&args);
        assert_ne!(out.code, 0, "{args:?} must be refused");
    }
    assert_eq!(f.db().count("clients"), clients);
}

/// RFC 8414: the grants, methods and algorithms of machine clients.
fn metadata_lists_the_machine_features(b: Backend) {
    let f = Fixture::new(b);
    let meta = f
        .server
        .client()
        .get("/.well-known/oauth-authorization-server")
        .json();
    let has = |k: &str, v: &str| meta[k].as_array().unwrap().iter().any(|x| x == v);
    assert!(has("grant_types_supported", "client_credentials"));
    assert!(has(
        "grant_types_supported",
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ));
    for k in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        assert!(has(k, "private_key_jwt"), "{k}");
    }
    for alg in ["ES256", "EdDSA", "RS256", "PS256"] {
        assert!(
            has("token_endpoint_auth_signing_alg_values_supported", alg),
            "{alg}"
        );
    }
    assert!(!has(
        "token_endpoint_auth_signing_alg_values_supported",
        "HS256"
    ));
    assert!(has("dpop_signing_alg_values_supported", "ES256"));
    assert!(has("dpop_signing_alg_values_supported", "EdDSA"));
}

both_backends!(
    client_credentials_with_the_oauth2_crate,
    client_credentials_refusals,
    metadata_lists_the_machine_features
);
