//! An unmodified third-party client library (the `oauth2` crate) against
//! keygate: discovery → authorize → consent → token → refresh → introspect →
//! revoke.

use crate::support::*;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    PkceCodeChallenge, RedirectUrl, RevocationUrl, Scope, TokenIntrospectionResponse,
    TokenResponse, TokenUrl,
};

fn agent() -> ureq::Agent {
    // RFC 6749 clients must not follow redirects from the token endpoint (SSRF).
    ureq::AgentBuilder::new().redirects(0).build()
}

fn oauth2_crate_runs_the_whole_flow(b: Backend) {
    let f = Fixture::new(b);
    let http = agent();
    // Discovery (RFC 8414).
    let meta: serde_json::Value = http
        .get(&f.server.url("/.well-known/oauth-authorization-server"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let s = |k: &str| meta[k].as_str().unwrap().to_string();
    let client = BasicClient::new(ClientId::new(f.client_id.clone()))
        .set_client_secret(ClientSecret::new(f.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(s("authorization_endpoint")).unwrap())
        .set_token_uri(TokenUrl::new(s("token_endpoint")).unwrap())
        .set_revocation_url(RevocationUrl::new(s("revocation_endpoint")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(s("introspection_endpoint")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("workspace:read".into()))
        .add_scope(Scope::new("forms:write".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The person: signs in, sees consent, approves.
    let mut browser = f.owner();
    let page = browser.get(auth_url.as_str());
    assert_eq!(page.status, 200, "{}", page.body);
    let r = browser.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &hidden(&page.body, "consent_id").unwrap()),
            ("csrf_token", &hidden(&page.body, "csrf_token").unwrap()),
            ("workspace_id", &f.workspace_id),
            ("decision", "approve"),
        ],
    );
    let params = r.location_params();
    assert_eq!(param(&params, "state"), Some(csrf.secret().as_str()));
    assert_eq!(
        param(&params, "iss"),
        Some(meta["issuer"].as_str().unwrap()),
        "RFC 9207 mix-up defence"
    );
    let code = param(&params, "code").unwrap().to_string();

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request(&http)
        .expect("code exchange through the oauth2 crate");
    assert_eq!(token.token_type().as_ref(), "bearer");
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, vec!["workspace:read", "forms:write"]);
    let access = token.access_token().secret().clone();
    assert_eq!(f.server.v1_status(&access), 200);

    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request(&http)
        .expect("refresh through the oauth2 crate");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        token.refresh_token().unwrap().secret()
    );

    let intro = client
        .introspect(refreshed.access_token())
        .request(&http)
        .expect("introspection");
    assert!(intro.active());
    assert_eq!(intro.client_id().unwrap().as_str(), f.client_id);

    // Replaying the first refresh token is refused (ureq 2 reports the 400 as a
    // transport error, so the library cannot show the body) and revokes the grant.
    let replay = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request(&http);
    assert!(format!("{replay:?}").contains("400"), "{replay:?}");
    let still = f
        .server
        .client()
        .bearer_get("/v1/workspace", refreshed.access_token().secret());
    still.assert_v1_error(401, "authentication_error", "invalid_api_key");

    // (The library refuses to revoke over plain http, as RFC 7009 §2 asks of
    // real deployments; revocation is covered by the revocation tests.)
}

fn oauth2_crate_public_client(b: Backend) {
    let f = Fixture::new(b);
    let http = agent();
    let client = BasicClient::new(ClientId::new(f.public_client_id.clone()))
        .set_auth_uri(AuthUrl::new(f.server.url("/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(f.server.url("/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:54321/callback".to_string()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _) = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = f.owner();
    let page = browser.get(auth_url.as_str());
    assert_eq!(
        page.status, 200,
        "loopback redirect URIs match any port: {}",
        page.body
    );
    let r = browser.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &hidden(&page.body, "consent_id").unwrap()),
            ("csrf_token", &hidden(&page.body, "csrf_token").unwrap()),
            ("workspace_id", &f.workspace_id),
            ("decision", "approve"),
        ],
    );
    assert!(r.location().starts_with("http://127.0.0.1:54321/callback?"));
    let code = param(&r.location_params(), "code").unwrap().to_string();
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request(&http)
        .expect("public client code exchange");
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, vec!["workspace:read"]);
}

both_backends!(oauth2_crate_runs_the_whole_flow, oauth2_crate_public_client);
