//! Real-browser tests: headless Chromium, driven through chromedriver, signs in,
//! answers the consent page, and manages API keys and authorized apps in the
//! settings pages of a real `keygate serve`. Each test saves a screenshot of the
//! page it checked under `target/screenshots/<test>.png` (and of the steps on the
//! way, `<test>-<step>.png`).
//!
//! Needs chromium and chromedriver on PATH (Debian's `chromium` and
//! `chromium-driver`; `./scripts/test` installs them); without them each test
//! fails with one line saying so.

#[path = "../it/require.rs"]
mod require;
mod signin;
/// The it suite's support (server, database, CLI, HTTP client, fixture), shared.
#[path = "../it/support/mod.rs"]
mod support;
mod webdriver;

use support::{param, pkce, query_params, Fixture, APP_NAME, WORKSPACE_NAME};
use webdriver::{browser_test, Browser, CALLBACK_TEXT};

const SCOPE: &str = "workspace:read tags:write";

/// Opens the authorization request, signs in on the login page it leads to, and
/// waits for the consent page; checks what the consent page says.
async fn reach_consent(fx: &Fixture, b: &Browser, state: &str, challenge: &str, shots: bool) {
    let query = fx.authorize_query_with_state(&fx.client_id, SCOPE, state, challenge);
    b.goto(&fx.server.url(&format!("/oauth/authorize?{query}")))
        .await;
    let login = b.wait_url("the login page", |u| u.path() == "/login").await;
    let login = query_params(&login);
    let next = param(&login, "next").unwrap_or_default();
    assert!(
        next.starts_with("/oauth/authorize?"),
        "the login page does not lead back to the request: next={next:?}"
    );
    b.wait_css("#email").await;
    if shots {
        b.screenshot("-login").await;
    }
    b.sign_in(fx).await;

    b.wait_css("button[name='decision'][value='approve']").await;
    let app = b.wait_css(".consent .app-name").await;
    assert_eq!(app.text().await.unwrap(), APP_NAME);
    let scopes = b.wait_css(".consent ul.scopes").await.text().await.unwrap();
    assert!(
        scopes.contains("Create and change tags"),
        "consent page scopes: {scopes:?}"
    );
    assert!(
        scopes.contains("See the workspace's name and details"),
        "consent page scopes: {scopes:?}"
    );
    let choice = b
        .wait_css(&format!(
            "input[type='radio'][name='workspace_id'][value='{}']",
            fx.workspace_id
        ))
        .await;
    assert!(
        choice.is_selected().await.unwrap(),
        "the only workspace is not preselected"
    );
    let label = b.wait_css("label.choice").await.text().await.unwrap();
    assert!(
        label.contains(WORKSPACE_NAME),
        "workspace choice: {label:?}"
    );
    b.wait_text("button[name='decision'][value='deny']", "Deny")
        .await;
}

/// Waits for the browser to land on the client's redirect URI; returns that URL.
async fn landed(fx: &Fixture, b: &Browser) -> url::Url {
    let uri = fx.redirect_uri.clone();
    let at = b
        .wait_url("the client's redirect URI", move |u| {
            u.as_str().starts_with(&format!("{uri}?"))
        })
        .await;
    b.wait_text("#callback", CALLBACK_TEXT).await;
    at
}

/// Runs the whole browser part of an approval; returns (code, verifier).
async fn approve(fx: &Fixture, b: &Browser, shots: bool) -> (String, String) {
    let (verifier, challenge) = pkce();
    reach_consent(fx, b, "st-approve", &challenge, shots).await;
    if shots {
        b.screenshot("").await;
    }
    b.click("button[name='decision'][value='approve']").await;
    let at = landed(fx, b).await;
    if shots {
        b.screenshot("-callback").await;
    }
    let q = query_params(&at);
    assert_eq!(param(&q, "state"), Some("st-approve"), "{at}");
    assert_eq!(param(&q, "iss"), Some(fx.server.base.as_str()), "{at}");
    assert_eq!(param(&q, "error"), None, "{at}");
    let code = param(&q, "code")
        .unwrap_or_else(|| panic!("no code in {at}"))
        .to_string();
    assert!(!code.is_empty());
    (code, verifier)
}

/// Exchanges a code as the client; returns (access token, refresh token).
fn tokens(fx: &Fixture, code: &str, verifier: &str) -> (String, String) {
    let r = fx.exchange(code, verifier);
    assert_eq!(r.status, 200, "token response: {}", r.body);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer", "{v}");
    assert_eq!(v["workspace_id"], fx.workspace_id.as_str(), "{v}");
    let scope = v["scope"].as_str().unwrap_or_default();
    assert!(
        scope.split(' ').any(|s| s == "tags:write"),
        "granted scope: {scope:?}"
    );
    (
        v["access_token"]
            .as_str()
            .expect("access_token")
            .to_string(),
        v["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string(),
    )
}

fn assert_workspace(fx: &Fixture, credential: &str) {
    let r = fx.server.client().bearer_get("/v1/workspace", credential);
    assert_eq!(r.status, 200, "/v1/workspace: {}", r.body);
    let v = r.json();
    assert_eq!(v["id"], fx.workspace_id.as_str(), "{v}");
    assert_eq!(v["name"], WORKSPACE_NAME, "{v}");
}

fn assert_rejected(fx: &Fixture, credential: &str, what: &str) {
    let r = fx.server.client().bearer_get("/v1/workspace", credential);
    assert_eq!(r.status, 401, "{what} still works on /v1: {}", r.body);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key", "{}", r.body);
}

#[test]
fn browser_login_consent_approve() {
    browser_test("browser_login_consent_approve", |fx, b| async move {
        let (code, verifier) = approve(&fx, &b, true).await;
        let (access, _) = tokens(&fx, &code, &verifier);
        assert_workspace(&fx, &access);
    });
}

#[test]
fn browser_deny() {
    browser_test("browser_deny", |fx, b| async move {
        let (_, challenge) = pkce();
        reach_consent(&fx, &b, "st-deny", &challenge, false).await;
        b.screenshot("-consent").await;
        b.click("button[name='decision'][value='deny']").await;
        let at = landed(&fx, &b).await;
        b.screenshot("").await;
        let q = query_params(&at);
        assert_eq!(param(&q, "error"), Some("access_denied"), "{at}");
        assert_eq!(param(&q, "state"), Some("st-deny"), "{at}");
        assert_eq!(param(&q, "iss"), Some(fx.server.base.as_str()), "{at}");
        assert_eq!(param(&q, "code"), None, "{at}");
    });
}

/// The row of the keys table for a key name.
fn key_row(name: &str) -> String {
    format!("//table//tr[td[1][normalize-space()='{name}'] or td[1]/a[normalize-space()='{name}']]")
}

/// Reads the show-once page: the key, from #new-key.
async fn shown_key(b: &Browser, name: &str) -> String {
    let input = b.wait_css("#new-key").await;
    b.wait_text("#save-title", "Save your API key").await;
    b.wait_text("main", name).await;
    let key = input.prop("value").await.unwrap().unwrap_or_default();
    assert!(key.len() >= 20, "the page shows no usable key: {key:?}");
    let readonly = input.attr("readonly").await.unwrap();
    assert!(readonly.is_some(), "the key field is editable");
    b.wait_css("[data-copy='new-key']").await;
    key
}

/// Leaves the show-once page through its close link; waits for the list with a notice.
async fn close_secret(b: &Browser, notice: &'static str) {
    b.wait_xpath("//a[normalize-space()='I saved it, close']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_url("the API keys list", move |u| {
        u.path() == "/settings/api-keys" && param(&query_params(u), "notice") == Some(notice)
    })
    .await;
    b.wait_css("p.flash.ok").await;
}

#[test]
fn browser_api_key_lifecycle() {
    browser_test("browser_api_key_lifecycle", |fx, b| async move {
        let name = "crm-sync";

        // Signed out, the settings page sends the person to sign in and back.
        b.goto(&fx.server.url("/settings/api-keys")).await;
        b.wait_url("the login page", |u| u.path() == "/login").await;
        b.sign_in(&fx).await;
        b.wait_url("the API keys page", |u| u.path() == "/settings/api-keys")
            .await;

        // Generate a read-write key, in the Generate API Key drawer.
        b.click("[data-opens='generate']").await;
        b.wait_css("dialog#generate-dialog[open]").await;
        b.wait_css("#key-workspace").await;
        b.type_into("#key-name", name).await;
        b.wait_css("#key-access")
            .await
            .select_by_value("read_write")
            .await
            .unwrap();
        b.screenshot("-form").await;
        b.click("form[method='post'][action='/settings/api-keys'] button[type='submit']")
            .await;
        let first = shown_key(&b, name).await;
        b.click("[data-copy='new-key']").await;
        b.wait_text("[data-copy='new-key']", "Copied").await;
        b.screenshot("-created").await;
        assert_workspace(&fx, &first);
        let r =
            fx.server
                .client()
                .bearer_post_json("/v1/tags", &first, r#"{"name":"from-browser"}"#);
        assert_eq!(r.status, 201, "a read_write key cannot write: {}", r.body);

        // The list shows it, active, under its prefix.
        close_secret(&b, "key_created").await;
        let row = b.wait_xpath(&key_row(name)).await;
        let status = row
            .find(fantoccini::Locator::Css("td[class^='status-']"))
            .await;
        assert_eq!(status.unwrap().text().await.unwrap(), "active");
        let prefix = row
            .find(fantoccini::Locator::Css("code"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !prefix.is_empty() && first.starts_with(&prefix),
            "prefix {prefix:?} is not the start of the key"
        );
        let action = row
            .find(fantoccini::Locator::Css("form[action$='/rotate']"))
            .await
            .unwrap()
            .attr("action")
            .await
            .unwrap()
            .unwrap();
        let id = action
            .trim_start_matches("/settings/api-keys/")
            .trim_end_matches("/rotate")
            .to_string();
        b.screenshot("-list").await;

        // Rotate: a new secret, the old one stops working.
        b.click(&format!("button[data-opens='rotate-{id}']")).await;
        b.wait_css(&format!("dialog#rotate-{id}-dialog[open]"))
            .await;
        b.click(&format!(
            "form[action='/settings/api-keys/{id}/rotate'] button[type='submit']"
        ))
        .await;
        let second = shown_key(&b, name).await;
        b.screenshot("-rotated").await;
        assert_ne!(first, second, "rotation showed the same secret");
        assert_rejected(&fx, &first, "the rotated-away key");
        assert_workspace(&fx, &second);
        close_secret(&b, "key_rotated").await;

        // Revoking needs the key's name typed: the button waits for it, and
        // a wrong one keeps the dialog open with the error inside it.
        let revoke_button =
            format!("form[action='/settings/api-keys/{id}/revoke'] button[type='submit']");
        b.click(&format!("button[data-opens='revoke-{id}']")).await;
        b.wait_css(&format!("dialog#revoke-{id}-dialog[open]"))
            .await;
        let button = b.wait_css(&revoke_button).await;
        assert!(
            !button.is_enabled().await.unwrap(),
            "Revoke is active before the name is typed"
        );
        b.type_into(&format!("#confirm-{id}"), "not-the-name").await;
        assert!(
            !button.is_enabled().await.unwrap(),
            "Revoke is active with a wrong name"
        );
        b.press(webdriver::ENTER).await;
        b.wait_text(
            &format!("dialog#revoke-{id}-dialog[open] p.flash.error"),
            "Type it exactly",
        )
        .await;
        b.screenshot("-wrong-name").await;
        assert!(
            b.url().await.ends_with("notice=key_rotated"),
            "the page changed"
        );
        assert_workspace(&fx, &second);

        b.type_into(&format!("#confirm-{id}"), name).await;
        assert!(button.is_enabled().await.unwrap(), "Revoke stays disabled");
        b.click(&revoke_button).await;
        b.wait_url("the API keys list", |u| {
            param(&query_params(u), "notice") == Some("key_revoked")
        })
        .await;
        let row = b.wait_xpath(&key_row(name)).await;
        let status = row
            .find(fantoccini::Locator::Css("td.status-revoked"))
            .await
            .unwrap_or_else(|e| panic!("the row does not show the key revoked: {e}"));
        assert_eq!(status.text().await.unwrap(), "revoked");
        let forms = row
            .find_all(fantoccini::Locator::Css("form"))
            .await
            .unwrap();
        assert!(forms.is_empty(), "a revoked key still offers actions");

        // Usage is written in batches (about every second): the key's page
        // catches up with the four successful calls, and the failed ones do
        // not count.
        row.find(fantoccini::Locator::Css("a[href^='/settings/api-keys/']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.wait_url("the key's page", move |u| u.path().ends_with(&id))
            .await;
        let usage = b.wait_usage(4).await;
        assert_eq!(usage, 4, "usage count of the key");
        let last_used = b.wait_css("#last-used").await.text().await.unwrap();
        assert!(
            !last_used.contains("never"),
            "the key was used: {last_used}"
        );
        b.screenshot("").await;
        assert_rejected(&fx, &second, "the revoked key");
    });
}

#[test]
fn browser_revoke_authorized_app() {
    browser_test("browser_revoke_authorized_app", |fx, b| async move {
        let (code, verifier) = approve(&fx, &b, false).await;
        let (access, refresh_token) = tokens(&fx, &code, &verifier);
        assert_workspace(&fx, &access);

        b.goto(&fx.server.url("/settings/authorized-apps")).await;
        let row_xpath = format!("//table//tr[td[1][normalize-space()='{APP_NAME}']]");
        let row = b.wait_xpath(&row_xpath).await;
        let text = row.text().await.unwrap();
        assert!(text.contains("Create and change tags"), "app row: {text:?}");
        assert!(text.contains(&fx.owner_email), "app row: {text:?}");
        b.screenshot("-list").await;
        row.find(fantoccini::Locator::XPath(
            ".//button[normalize-space()='Revoke']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

        // A confirmation page first; nothing is revoked yet.
        b.wait_text("#confirm-title", &format!("Revoke {APP_NAME}?"))
            .await;
        b.wait_text("main", WORKSPACE_NAME).await;
        b.screenshot("-confirm").await;
        assert_workspace(&fx, &access);
        b.wait_xpath("//button[normalize-space()='Revoke access']")
            .await
            .click()
            .await
            .unwrap();

        b.wait_url("the authorized apps list", |u| {
            u.path() == "/settings/authorized-apps"
                && param(&query_params(u), "notice") == Some("app_revoked")
        })
        .await;
        b.wait_text("p.flash.ok", "revoked").await;
        let row = b.wait_xpath(&row_xpath).await;
        let status = row
            .find(fantoccini::Locator::Css("td.status-revoked"))
            .await
            .unwrap_or_else(|e| panic!("the row does not show the app revoked: {e}"));
        assert_eq!(status.text().await.unwrap(), "revoked");
        b.screenshot("").await;

        assert_rejected(&fx, &access, "the revoked app's access token");
        let r = fx.refresh(&refresh_token);
        assert_eq!(r.status, 400, "refresh after revocation: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_grant", "{}", r.body);
    });
}

/// axe-core and the layout check on the page as it is, in light and in dark
/// mode (emulated), with a screenshot of each.
async fn check_page(b: &Browser, what: &str) {
    for scheme in ["light", "dark"] {
        b.set_color_scheme(scheme).await;
        let what = format!("{what} ({scheme})");
        b.assert_accessible(&what).await;
        b.assert_nothing_clipped(&what).await;
        b.screenshot(&format!("-{}", what.replace([' ', '(', ')'], "-")))
            .await;
    }
    b.set_color_scheme("light").await;
}

/// Opens a dialog with its opener, checks it, and closes it with Escape.
async fn check_dialog(b: &Browser, opener: &str, dialog: &str, what: &str) {
    b.click(opener).await;
    b.wait_css(&format!("{dialog}[open]")).await;
    check_page(b, what).await;
    b.press(webdriver::ESCAPE).await;
    wait_closed(b, dialog).await;
}

async fn wait_closed(b: &Browser, dialog: &str) {
    let closed = b
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(5))
        .for_element(fantoccini::Locator::Css(&format!("{dialog}:not([open])")))
        .await;
    assert!(closed.is_ok(), "Escape did not close {dialog}");
}

/// Every page a person sees, at a phone's width and a laptop's, in light and
/// dark mode: axe-core finds no serious or critical violation, and no control
/// is clipped or off-screen. Dialogs are checked open; confirmation pages and
/// the show-once key are reached as a person reaches them.
#[test]
fn browser_pages_are_accessible_at_every_size() {
    browser_test(
        "browser_pages_are_accessible_at_every_size",
        |fx, b| async move {
            // A key, an authorization, a second member and a mailbox with an
            // auth key, so the tables have rows and every confirmation exists.
            let key = fx
                .db()
                .create_api_key(&fx.workspace_id, "crm-sync", "read_only");
            let key_id = key["id"].as_str().expect("key id").to_string();
            let (_, member_email) = fx.add_user("member");
            let ws = fx.workspace_id.clone();
            fx.db().verified_domain(&ws, "example.com");
            // A pending domain too: its record, copy buttons and Verify.
            fx.db().json(&[
                "domain",
                "add",
                "--workspace",
                &ws,
                "--domain",
                "news.example.com",
            ]);
            let mailbox = fx.db().json(&[
                "mailbox",
                "create",
                "--workspace",
                &ws,
                "--address",
                "sales@example.com",
            ]);
            let mailbox_id = mailbox["id"].as_str().expect("mailbox id").to_string();
            fx.db().json(&[
                "authkey",
                "create",
                "--mailbox",
                &mailbox_id,
                "--name",
                "Outreach Primary",
            ]);
            let _ = fx.code(SCOPE);
            // A service and a trusted identity provider for the machine page.
            fx.db().json(&[
                "client",
                "create",
                "--name",
                "Nightly sync",
                "--workspace",
                &ws,
                "--grant",
                "client_credentials",
                "--scope",
                "workspace:read",
            ]);
            fx.db().json(&[
                "trust",
                "add",
                "--workspace",
                &ws,
                "--idp-issuer",
                "https://idp.example.com",
                "--jwks-uri",
                "https://idp.example.com/jwks",
            ]);
            let (verifier, challenge) = pkce();
            let _ = verifier;
            let pages = [
                (
                    "machine-access",
                    format!("/settings/machine-access?workspace={ws}"),
                ),
                (
                    "authorized-apps",
                    format!("/settings/authorized-apps?workspace={ws}"),
                ),
                ("team", format!("/settings/team?workspace={ws}")),
                (
                    "security-log",
                    format!("/settings/security-log?workspace={ws}"),
                ),
                (
                    "mailboxes",
                    format!("/settings/mailboxes?workspace={ws}&mailbox={mailbox_id}"),
                ),
                ("developer-apps", "/settings/developer-apps".to_string()),
                ("api-key", format!("/settings/api-keys/{key_id}")),
            ];
            for (width, height) in [(390, 844), (1280, 900)] {
                b.set_width(width, height).await;
                // Signed out: the login page.
                b.goto(&fx.server.url("/login")).await;
                b.wait_css("#email").await;
                check_page(&b, &format!("login at {width}px")).await;
                // The consent page.
                let query = fx.authorize_query_with_state(&fx.client_id, SCOPE, "a11y", &challenge);
                b.goto(&fx.server.url(&format!("/oauth/authorize?{query}")))
                    .await;
                b.wait_url("the login page", |u| u.path() == "/login").await;
                b.wait_css("#email").await;
                b.sign_in(&fx).await;
                b.wait_css("button[name='decision'][value='approve']").await;
                check_page(&b, &format!("consent at {width}px")).await;
                for (name, path) in &pages {
                    b.goto(&fx.server.url(path)).await;
                    b.wait_css("main h1").await;
                    check_page(&b, &format!("{name} at {width}px")).await;
                }

                // The API keys page, and each of its dialogs open.
                b.goto(&fx.server.url(&format!("/settings/api-keys?workspace={ws}")))
                    .await;
                b.wait_css("main h1").await;
                check_page(&b, &format!("api-keys at {width}px")).await;
                check_dialog(
                    &b,
                    &format!("button[data-opens='rotate-{key_id}']"),
                    &format!("dialog#rotate-{key_id}-dialog"),
                    &format!("rotate dialog at {width}px"),
                )
                .await;
                check_dialog(
                    &b,
                    &format!("button[data-opens='revoke-{key_id}']"),
                    &format!("dialog#revoke-{key_id}-dialog"),
                    &format!("revoke dialog at {width}px"),
                )
                .await;
                check_dialog(
                    &b,
                    "[data-opens='generate']",
                    "dialog#generate-dialog",
                    &format!("generate drawer at {width}px"),
                )
                .await;
                // The Save your API key dialog.
                b.click("[data-opens='generate']").await;
                b.type_into("#key-name", &format!("a11y-{width}")).await;
                b.click("#generate-dialog button[type='submit']").await;
                b.wait_css("dialog[data-modal][open] #new-key").await;
                check_page(&b, &format!("save-key dialog at {width}px")).await;

                // The confirmation pages.
                b.goto(
                    &fx.server
                        .url(&format!("/settings/authorized-apps?workspace={ws}")),
                )
                .await;
                b.click("td[data-label='Actions'] button.danger").await;
                b.wait_css("#confirm-title").await;
                check_page(&b, &format!("confirm-revoke-app at {width}px")).await;
                b.goto(&fx.server.url(&format!("/settings/team?workspace={ws}")))
                    .await;
                b.wait_xpath(&format!(
                    "//tr[td[contains(., '{member_email}')]]//form[contains(@action, '/remove')]//button"
                ))
                .await
                .click()
                .await
                .unwrap();
                b.wait_css("#confirm-title").await;
                check_page(&b, &format!("confirm-remove-member at {width}px")).await;

                // Sign out for the next width's login page.
                b.goto(&fx.server.url("/settings/team")).await;
                b.click("form[action='/logout'] button[type='submit']")
                    .await;
                b.wait_url("signed out", |u| u.path() == "/login").await;
            }
        },
    );
}

/// Generate, copy, rotate and revoke with the keyboard alone (Tab, Enter,
/// Escape and typing), at a phone's width and a laptop's: every control is
/// reached with Tab, an open dialog keeps the focus inside it, Escape closes
/// it and gives the focus back to its opener.
#[test]
fn browser_api_keys_by_keyboard_only() {
    use webdriver::{ENTER, ESCAPE, TAB};
    browser_test("browser_api_keys_by_keyboard_only", |fx, b| async move {
        b.goto(&fx.server.url("/login")).await;
        b.wait_css("#email").await;
        b.sign_in(&fx).await;
        b.wait_url("the API keys page", |u| u.path() == "/settings/api-keys")
            .await;
        for width in [390, 1280] {
            b.set_width(width, 900).await;
            let name = format!("kbd-{width}");
            b.goto(&fx.server.url("/settings/api-keys")).await;
            b.wait_css("main h1").await;

            // Generate: the opener, then the drawer; Tab stays inside it.
            b.tab_to("a[data-opens='generate']").await;
            b.press(ENTER).await;
            b.wait_css("dialog#generate-dialog[open]").await;
            assert!(
                b.focused("#key-workspace").await,
                "the drawer starts at its first field"
            );
            for _ in 0..40 {
                b.press(TAB).await;
                assert!(
                    b.focused("#generate-dialog *").await,
                    "Tab left the open drawer"
                );
            }
            // Escape closes it and the focus returns to the opener.
            b.press(ESCAPE).await;
            wait_closed(&b, "dialog#generate-dialog").await;
            assert!(
                b.focused("a[data-opens='generate']").await,
                "focus not back on the opener"
            );
            b.press(ENTER).await;
            b.wait_css("dialog#generate-dialog[open]").await;
            b.tab_to("#key-name").await;
            b.press(&name).await;
            b.tab_to("#generate-dialog button[type='submit']").await;
            b.press(ENTER).await;

            // Save your API key: the copy button has the focus; Enter copies.
            let first = shown_key(&b, &name).await;
            b.wait_css("dialog[data-modal][open]").await;
            assert!(
                b.focused("[data-copy='new-key']").await,
                "focus not on Copy key"
            );
            b.press(ENTER).await;
            b.wait_text("[data-copy='new-key']", "Copied").await;
            b.tab_to("a[data-close]").await;
            b.press(ENTER).await;
            b.wait_url("the list", |u| {
                param(&query_params(u), "notice") == Some("key_created")
            })
            .await;
            assert_workspace(&fx, &first);

            // Rotate: the row's Rotate, its dialog, the replacement key in
            // the same dialog; Escape leaves it for the list.
            let row = b.wait_xpath(&key_row(&name)).await;
            let opener = row
                .find(fantoccini::Locator::Css("button[data-opens^='rotate-']"))
                .await
                .unwrap()
                .attr("data-opens")
                .await
                .unwrap()
                .unwrap();
            let id = opener.trim_start_matches("rotate-").to_string();
            b.tab_to(&format!("button[data-opens='rotate-{id}']")).await;
            b.press(ENTER).await;
            b.wait_css(&format!("dialog#rotate-{id}-dialog[open]"))
                .await;
            b.tab_to(&format!("#rotate-{id}-dialog button[type='submit']"))
                .await;
            b.press(ENTER).await;
            let second = shown_key(&b, &name).await;
            assert_ne!(first, second, "rotation showed the same secret");
            b.wait_css("dialog[data-modal][open]").await;
            // The first Escape warns that the key will be gone; the second leaves.
            b.press(ESCAPE).await;
            b.wait_text(
                "dialog[data-modal][open] .escape-warning",
                "cannot be shown again",
            )
            .await;
            assert!(
                b.url().await.contains("/rotate"),
                "Escape threw the key away without a warning"
            );
            b.press(ESCAPE).await;
            b.wait_url("the list", |u| {
                param(&query_params(u), "notice") == Some("key_rotated")
            })
            .await;
            assert_rejected(&fx, &first, "the rotated-away key");
            assert_workspace(&fx, &second);

            // Revoke: the typed name, then Enter.
            b.wait_xpath(&key_row(&name)).await;
            b.tab_to(&format!("button[data-opens='revoke-{id}']")).await;
            b.press(ENTER).await;
            b.wait_css(&format!("dialog#revoke-{id}-dialog[open]"))
                .await;
            assert!(
                b.focused(&format!("#confirm-{id}")).await,
                "focus not on the name field"
            );
            b.press(&name).await;
            b.press(ENTER).await;
            b.wait_url("the list", |u| {
                param(&query_params(u), "notice") == Some("key_revoked")
            })
            .await;
            b.screenshot(&format!("-{width}")).await;
            assert_rejected(&fx, &second, "the revoked key");
        }
    });
}

#[test]
fn browser_mailboxes_tab() {
    browser_test("browser_mailboxes_tab", |fx, b| async move {
        fx.db().verified_domain(&fx.workspace_id, "example.com");
        let address = "sales@example.com";
        let name = "Outreach Primary";
        b.goto(&format!("{}/settings/mailboxes", fx.server.base))
            .await;
        b.wait_url("the login page", |u| u.path() == "/login").await;
        b.sign_in(&fx).await;
        b.wait_url("the Mailboxes tab", |u| u.path() == "/settings/mailboxes")
            .await;
        b.wait_text("nav a[aria-current='page']", "Mailboxes").await;

        // Create a mailbox: the page then shows it with its SMTP details.
        b.type_into("#mailbox-address", address).await;
        b.click("form[method='post'][action='/settings/mailboxes'] button[type='submit']")
            .await;
        b.wait_url("the mailbox", |u| {
            param(&query_params(u), "notice") == Some("mailbox_created")
        })
        .await;
        b.wait_text("#mailbox-title", address).await;
        b.wait_text("#smtp-username", address).await;
        b.wait_text("dl.smtp", "587").await;
        b.screenshot("-mailbox").await;

        // Create an auth key: shown once, with a copy button that works.
        b.type_into("#auth-key-name", name).await;
        b.click("form[action$='/auth-keys'] button[type='submit']")
            .await;
        b.wait_text("#save-title", "Save your auth key").await;
        let input = b.wait_css("#new-key").await;
        let key = input.prop("value").await.unwrap().unwrap_or_default();
        assert!(key.starts_with("kgm_") && key.len() == 53, "shown: {key:?}");
        assert!(input.attr("readonly").await.unwrap().is_some());
        b.wait_text("main", address).await;
        b.click("[data-copy='new-key']").await;
        b.wait_text("[data-copy='new-key']", "Copied").await;
        b.screenshot("-created").await;
        b.press(webdriver::ESCAPE).await;
        b.wait_text(
            "dialog[data-modal][open] .escape-warning",
            "cannot be shown again",
        )
        .await;
        b.screenshot("-escape-warning").await;
        b.wait_xpath("//a[normalize-space()='I saved it, close']")
            .await
            .click()
            .await
            .unwrap();
        b.wait_url("the mailbox again", |u| {
            param(&query_params(u), "notice") == Some("auth_key_created")
        })
        .await;
        let body = b.body_text().await;
        assert!(!body.contains(&key), "the key is shown again");

        // Rotate asks first: the dialog says what happens, and the key is
        // unchanged until it is confirmed.
        let row = key_row(name);
        let opener = b
            .wait_xpath(&format!(
                "{row}//button[starts-with(@data-opens, 'rotate-auth-')]"
            ))
            .await;
        let dialog = opener.attr("data-opens").await.unwrap().unwrap();
        opener.click().await.unwrap();
        b.wait_css(&format!("dialog#{dialog}-dialog[open]")).await;
        b.wait_text(&format!("dialog#{dialog}-dialog"), "stops working")
            .await;
        b.screenshot("-rotate-confirm").await;
        b.press(webdriver::ESCAPE).await;
        wait_closed(&b, &format!("dialog#{dialog}-dialog")).await;
        assert!(
            b.url().await.contains("notice=auth_key_created"),
            "rotated at once"
        );
        opener.click().await.unwrap();
        b.click(&format!("dialog#{dialog}-dialog button[type='submit']"))
            .await;
        b.wait_text("#save-title", "Save your auth key").await;
        let rotated = b
            .wait_css("#new-key")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default();
        assert_ne!(rotated, key, "rotation showed the same key");
        b.wait_xpath("//a[normalize-space()='I saved it, close']")
            .await
            .click()
            .await
            .unwrap();
        b.wait_url("the mailbox after rotating", |u| {
            u.path() == "/settings/mailboxes"
        })
        .await;

        // Disable it: the row says so and offers Enable instead.
        let status = b
            .wait_xpath(&format!("{row}/td[starts-with(@class, 'status-')]"))
            .await;
        assert_eq!(status.text().await.unwrap(), "active");
        b.wait_xpath(&format!(
            "{row}//button[starts-with(normalize-space(), 'Disable')]"
        ))
        .await
        .click()
        .await
        .unwrap();
        b.wait_url("the mailbox after disabling", |u| {
            param(&query_params(u), "notice") == Some("auth_key_disabled")
        })
        .await;
        let status = b
            .wait_xpath(&format!("{row}/td[@class='status-disabled']"))
            .await;
        assert_eq!(status.text().await.unwrap(), "disabled");
        b.wait_xpath(&format!(
            "{row}//button[starts-with(normalize-space(), 'Enable')]"
        ))
        .await;
        b.screenshot("").await;
    });
}

/// Elements of the tables' cells that sit in the label column of the phone
/// layout (a cell's label is 7.5rem wide, its content starts right of it).
async fn in_label_column(b: &Browser) -> Vec<String> {
    let found = b
        .client
        .execute(
            "const out = [];\
             for (const td of document.querySelectorAll('table.cards td:not(.row-actions)')) {\
               const t = td.getBoundingClientRect();\
               for (const el of td.querySelectorAll(':scope > *')) {\
                 if (el.tagName === 'BR') continue;\
                 const r = el.getBoundingClientRect();\
                 if (r.width === 0 && r.height === 0) continue;\
                 if (r.left < t.left + 100) out.push(td.dataset.label + ': ' + el.tagName.toLowerCase() + ' ' + (el.textContent || '').trim().slice(0, 30));\
               }\
             }\
             return out;",
            vec![],
        )
        .await
        .expect("measure the cells");
    found
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// How far each table overflows its box: (scrollWidth, clientWidth) of the
/// first `.table-wrap`, and the width of its first name cell.
async fn table_fit(b: &Browser) -> (i64, i64, i64) {
    let v = b
        .client
        .execute(
            "const w = document.querySelector('.table-wrap');\
             const n = w.querySelector('td.name');\
             return [w.scrollWidth, w.clientWidth, n ? Math.round(n.getBoundingClientRect().width) : 0];",
            vec![],
        )
        .await
        .expect("measure the table");
    (
        v[0].as_i64().unwrap_or(0),
        v[1].as_i64().unwrap_or(0),
        v[2].as_i64().unwrap_or(0),
    )
}

/// Issue 32, defects 1 and 4: a long key name wraps and the keys table fits
/// its box at 1280 px (or, narrower, scrolls inside it with a visible hint);
/// at a phone's width every second line of a cell stays right of its label,
/// and the columns meant for wide screens only are hidden.
#[test]
fn browser_long_names_wrap_and_phone_cells_line_up() {
    browser_test(
        "browser_long_names_wrap_and_phone_cells_line_up",
        |fx, b| async move {
            let ws = fx.workspace_id.clone();
            let long = "integration".repeat(9);
            fx.db().create_api_key(&ws, &long, "read_only");
            fx.db().json(&[
                "apikey",
                "create",
                "--workspace",
                &ws,
                "--name",
                "prod-main-app-eu-west-1-2026-primary",
                "--access",
                "custom",
                "--scope",
                "tags:write",
                "--scope",
                "workspace:read",
                "--allow-ip",
                "203.0.113.0/24",
                "--allow-ip",
                "2001:db8::/32",
            ]);
            for i in 0..12 {
                fx.db()
                    .create_api_key(&ws, &format!("worker-{i}"), "read_write");
            }
            fx.db().verified_domain(&ws, "example.com");
            let mailbox = fx.db().json(&[
                "mailbox",
                "create",
                "--workspace",
                &ws,
                "--address",
                "sales@example.com",
            ]);
            let mailbox_id = mailbox["id"].as_str().expect("mailbox id").to_string();
            fx.db().json(&[
                "authkey",
                "create",
                "--mailbox",
                &mailbox_id,
                "--name",
                "Outreach Primary",
            ]);

            b.set_width(1280, 800).await;
            b.goto(&fx.server.url("/login")).await;
            b.wait_css("#email").await;
            b.sign_in(&fx).await;
            b.wait_url("the API keys page", |u| u.path() == "/settings/api-keys")
                .await;
            b.wait_xpath(&key_row(&long)).await;
            let (scroll, client, name) = table_fit(&b).await;
            assert!(
                scroll <= client + 1,
                "the keys table is {scroll} px wide in a {client} px box at 1280 px"
            );
            assert!(
                name < 400,
                "the long name does not wrap: its cell is {name} px"
            );
            check_page(&b, "api-keys with a long name at 1280px").await;

            // Narrower than the table: it scrolls in its box, and says so.
            b.set_width(800, 800).await;
            b.goto(&fx.server.url("/settings/api-keys")).await;
            b.wait_xpath(&key_row(&long)).await;
            let (scroll, client, _) = table_fit(&b).await;
            if scroll > client + 1 {
                b.wait_text(".scroll-hint.shown", "scroll it sideways")
                    .await;
                b.wait_css(".table-wrap.overflows").await;
            }
            b.assert_nothing_clipped("api-keys at 800px").await;

            b.set_width(390, 844).await;
            for (page, path) in [
                ("api-keys", format!("/settings/api-keys?workspace={ws}")),
                (
                    "mailboxes",
                    format!("/settings/mailboxes?workspace={ws}&mailbox={mailbox_id}"),
                ),
            ] {
                b.goto(&fx.server.url(&path)).await;
                b.wait_css("table.cards").await;
                let misplaced = in_label_column(&b).await;
                b.screenshot(&format!("-390-{page}")).await;
                assert!(
                    misplaced.is_empty(),
                    "{path}: in the label column at 390 px:\n  {}",
                    misplaced.join("\n  ")
                );
                let shown = b
                    .client
                    .execute(
                        "return Array.from(document.querySelectorAll('.hide-sm'))\
                           .filter(e => getComputedStyle(e).display !== 'none').length;",
                        vec![],
                    )
                    .await
                    .expect("count the wide-only cells");
                assert_eq!(shown, serde_json::json!(0), "{path}: hide-sm hides nothing");
                check_page(&b, &format!("{page} at 390px")).await;
            }
        },
    );
}

/// Issue 32, defect 2: a refused Generate shows its error inside the open
/// drawer, in view at a phone's width, with everything chosen kept.
#[test]
fn browser_generate_error_shows_in_the_drawer() {
    browser_test(
        "browser_generate_error_shows_in_the_drawer",
        |fx, b| async move {
            b.set_width(390, 844).await;
            b.goto(&fx.server.url("/login")).await;
            b.wait_css("#email").await;
            b.sign_in(&fx).await;
            b.wait_url("the API keys page", |u| u.path() == "/settings/api-keys")
                .await;
            b.click("[data-opens='generate']").await;
            b.wait_css("dialog#generate-dialog[open]").await;
            b.type_into("#key-name", "billing-export").await;
            b.wait_css("#key-access")
                .await
                .select_by_value("custom")
                .await
                .unwrap();
            b.click("input[name='scope'][value='tags:write']").await;
            b.type_into("#key-ips", "203.0.113.0/24 not-an-address")
                .await;
            b.click("#generate-dialog button[type='submit']").await;
            let error = b
                .wait_css("dialog#generate-dialog[open] #generate-error")
                .await;
            assert!(error.is_displayed().await.unwrap(), "the error is hidden");
            let top = b
                .client
                .execute(
                    "const e = document.getElementById('generate-error');\
                     const r = e.getBoundingClientRect();\
                     const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);\
                     return r.top >= 0 && r.bottom <= window.innerHeight && !!hit && e.contains(hit);",
                    vec![],
                )
                .await
                .expect("locate the error");
            assert_eq!(
                top,
                serde_json::json!(true),
                "the error is covered or out of view"
            );
            let text = error.text().await.unwrap();
            assert!(text.contains("Allowed addresses"), "error: {text:?}");
            let value = |css: &'static str| {
                let b = b.clone();
                async move {
                    b.wait_css(css)
                        .await
                        .prop("value")
                        .await
                        .unwrap()
                        .unwrap_or_default()
                }
            };
            assert_eq!(value("#key-name").await, "billing-export");
            assert_eq!(value("#key-access").await, "custom");
            assert_eq!(value("#key-ips").await, "203.0.113.0/24 not-an-address");
            let ticked = b
                .wait_css("input[name='scope'][value='tags:write']")
                .await
                .is_selected()
                .await
                .unwrap();
            assert!(ticked, "the ticked scope was cleared");
            check_page(&b, "generate drawer with an error at 390px").await;
        },
    );
}

/// Issue 32, defect 6: a developer app's Rotate secret asks first.
#[test]
fn browser_developer_app_rotate_asks_first() {
    browser_test(
        "browser_developer_app_rotate_asks_first",
        |fx, b| async move {
            b.goto(&fx.server.url("/login")).await;
            b.wait_css("#email").await;
            b.sign_in(&fx).await;
            b.wait_url("the API keys page", |u| u.path() == "/settings/api-keys")
                .await;
            b.goto(&fx.server.url("/settings/developer-apps")).await;
            b.type_into("#app-name", "Rotation check").await;
            b.type_into("#app-uris", "https://app.example.com/callback")
                .await;
            b.click("form[action='/settings/developer-apps'] button[type='submit']")
                .await;
            let first = b
                .wait_css("#client-secret")
                .await
                .prop("value")
                .await
                .unwrap()
                .unwrap_or_default();
            b.wait_xpath("//a[normalize-space()='I saved it, close']")
                .await
                .click()
                .await
                .unwrap();
            let opener = b.wait_css("button[data-opens^='rotate-app-']").await;
            let dialog = opener.attr("data-opens").await.unwrap().unwrap();
            opener.click().await.unwrap();
            b.wait_text(&format!("dialog#{dialog}-dialog[open]"), "stops working")
                .await;
            check_page(&b, "rotate secret dialog").await;
            b.click(&format!("dialog#{dialog}-dialog button[type='submit']"))
                .await;
            let second = b
                .wait_css("#client-secret")
                .await
                .prop("value")
                .await
                .unwrap()
                .unwrap_or_default();
            assert_ne!(first, second, "rotation showed the same secret");
        },
    );
}

/// Issue 32, defects 1 and 4: a self-registered app's "not reviewed" note
/// wraps, so the authorized apps table fits its box at 1280 px; at a phone's
/// width the badge stays one line high and the note stays right of its label.
#[test]
fn browser_unreviewed_app_note_wraps() {
    browser_test("browser_unreviewed_app_note_wraps", |fx, b| async move {
        let mut owner = fx.owner();
        let page = owner.get("/settings/developer-apps");
        let csrf = support::hidden(&page.body, "csrf_token").expect("a CSRF token");
        let r = owner.post_form(
            "/settings/developer-apps",
            &[
                ("csrf_token", csrf.as_str()),
                ("name", "Quarterly reporting assistant"),
                ("redirect_uris", fx.redirect_uri.as_str()),
                ("client_type", "public"),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let client_id = support::input_value(&r.body, "client-id").expect("client id");
        let (_, challenge) = pkce();
        fx.approve(&mut owner, &client_id, "tags:read", &challenge);

        b.set_width(1280, 800).await;
        b.goto(&fx.server.url("/login")).await;
        b.wait_css("#email").await;
        b.sign_in(&fx).await;
        b.wait_url("the API keys page", |u| u.path() == "/settings/api-keys")
            .await;
        b.goto(&fx.server.url("/settings/authorized-apps")).await;
        b.wait_text("td.name", "not reviewed").await;
        let (scroll, client, _) = table_fit(&b).await;
        assert!(
            scroll <= client + 1,
            "the authorized apps table is {scroll} px wide in a {client} px box at 1280 px"
        );
        check_page(&b, "authorized-apps with an unreviewed app at 1280px").await;

        b.set_width(390, 844).await;
        b.goto(&fx.server.url("/settings/authorized-apps")).await;
        b.wait_text("td.name", "not reviewed").await;
        let height = b
            .client
            .execute(
                "return document.querySelector('td.name .badge').getBoundingClientRect().height;",
                vec![],
            )
            .await
            .expect("measure the badge")
            .as_f64()
            .unwrap_or(0.0);
        assert!(height < 30.0, "the badge is {height} px high");
        let misplaced = in_label_column(&b).await;
        assert!(
            misplaced.is_empty(),
            "in the label column at 390 px:\n  {}",
            misplaced.join("\n  ")
        );
        check_page(&b, "authorized-apps with an unreviewed app at 390px").await;
    });
}

/// Issue 32: a key's own page, reached from the list, edits the key without
/// rotating it; the error of a refused edit shows in the form, with what was
/// typed kept; the page has no clipped content at a phone's width.
#[test]
fn browser_key_page_edits_without_rotating() {
    browser_test(
        "browser_key_page_edits_without_rotating",
        |fx, b| async move {
            let key = fx.db().create_api_key(
                &fx.workspace_id,
                "prod-main-app-eu-west-1-2026-primary",
                "read_write",
            );
            let secret = key["key"].as_str().expect("key").to_string();
            b.set_width(390, 844).await;
            b.goto(&fx.server.url("/login")).await;
            b.wait_css("#email").await;
            b.sign_in(&fx).await;
            b.wait_url("the API keys page", |u| u.path() == "/settings/api-keys")
                .await;
            b.click("td[data-label='Actions'] a.button").await;
            b.wait_css("#edit-name").await;
            b.assert_nothing_clipped("the key's page at 390px").await;
            // A bad address: the error in the form, the typed values kept.
            b.type_into("#edit-description", "Nightly export").await;
            b.type_into("#edit-ips", "10.0.0.0/99").await;
            b.click("form.stack button[type='submit']").await;
            b.wait_text("#edit-error", "Allowed addresses").await;
            let kept = b
                .wait_css("#edit-description")
                .await
                .prop("value")
                .await
                .unwrap();
            assert_eq!(kept.as_deref(), Some("Nightly export"));
            // A good edit: saved, and the same secret still works.
            b.wait_css("#edit-ips").await.clear().await.unwrap();
            b.wait_css("#edit-access")
                .await
                .select_by_value("read_only")
                .await
                .unwrap();
            b.click("form.stack button[type='submit']").await;
            b.wait_text("p.flash.ok", "Its secret is unchanged").await;
            b.wait_text("main", "Nightly export").await;
            b.screenshot("").await;
            assert_workspace(&fx, &secret);
            let r = fx
                .server
                .client()
                .bearer_post_json("/v1/tags", &secret, r#"{"name":"t"}"#);
            assert_eq!(r.status, 403, "read-only after the edit: {}", r.body);
        },
    );
}
