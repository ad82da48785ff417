//! Signing in through the product's identity provider in a real browser: the
//! login page's "Sign in with Acme ID" → node-oidc-provider's own login and
//! consent pages (https, a throwaway certificate Chromium is told to trust by
//! its key) → keygate's callback → the consent page of the authorization
//! request the person started.

use crate::support::{
    env_refs, free_port, param, pkce, query_params, unique, Backend, Fixture, OidcProvider, Server,
    TestDb, APP_NAME,
};
use crate::webdriver::browser_test_with;
use serde_json::json;

#[test]
fn browser_sign_in_through_the_identity_provider() {
    let port = free_port();
    let owner_email = format!("owner-{}@example.com", &unique()[..8]);
    let provider = OidcProvider::start(
        &format!("http://127.0.0.1:{port}"),
        json!({"owner-sub": {"email": owner_email, "email_verified": true}}),
    );
    let env = provider.keygate_env();
    let trust = format!(
        "--ignore-certificate-errors-spki-list={}",
        provider.spki_sha256
    );
    let issuer = provider.issuer.clone();
    browser_test_with(
        "browser_sign_in_through_the_identity_provider",
        &[trust],
        |redirect_uri| {
            let server = Server::spawn(TestDb::new(Backend::Sqlite), port, &env_refs(&env));
            let mut fx = Fixture::with_redirect(server, redirect_uri);
            fx.db().execute(&format!(
                "UPDATE users SET email = '{owner_email}' WHERE id = '{}'",
                fx.owner_id
            ));
            fx.owner_email = owner_email;
            fx
        },
        |fx, b| async move {
            let (_, challenge) = pkce();
            let query = fx.authorize_query_with_state(
                &fx.client_id,
                "workspace:read",
                "st-idp",
                &challenge,
            );
            b.goto(&fx.server.url(&format!("/oauth/authorize?{query}")))
                .await;
            let login = b.wait_url("the login page", |u| u.path() == "/login").await;
            let next = param(&query_params(&login), "next")
                .unwrap_or_default()
                .to_string();
            assert!(next.starts_with("/oauth/authorize?"), "next={next:?}");
            b.wait_text("form[action='/login/oidc'] button", "Sign in with Acme ID")
                .await;
            b.screenshot("-login").await;
            b.assert_accessible("the login page with Sign in with Acme ID")
                .await;
            b.click("form[action='/login/oidc'] button[type='submit']")
                .await;

            b.wait_url("the provider's login page", |u| {
                u.as_str().starts_with(&issuer)
            })
            .await;
            b.wait_css("input[name='login']").await;
            b.type_into("input[name='login']", "owner-sub").await;
            b.type_into("input[name='password']", "any password").await;
            b.screenshot("-provider-login").await;
            b.click("button.login-submit").await;
            b.wait_xpath("//input[@name='prompt' and @value='consent']")
                .await;
            b.screenshot("-provider-consent").await;
            b.click("button.login-submit").await;

            // Back at keygate, on the consent page of the request started.
            b.wait_css("button[name='decision'][value='approve']").await;
            let app = b.wait_css(".consent .app-name").await;
            assert_eq!(app.text().await.unwrap(), APP_NAME);
            let at = url::Url::parse(&b.url().await).unwrap();
            assert_eq!(at.path(), "/oauth/authorize");
            assert_eq!(param(&query_params(&at), "state"), Some("st-idp"));
            b.screenshot("").await;
        },
    );
    drop(provider);
}
